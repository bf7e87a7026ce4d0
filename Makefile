# netaug: every command a user or CI runs. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
# Where the release binary lands.
NETAUG := target/release/netaug
# Fashion-MNIST, the embedded default dataset, from Debian's package.
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# LibTorch for `--features tch`: the PyPI torch wheel the GPU machines run, in a venv.
TORCH_VENV ?= .venv-torch
TORCH_VERSION ?= 2.11.0
TORCHVISION_VERSION ?= 0.26.0
NETAUG_TCH := target-tch/release/netaug

.PHONY: help setup build build-mpi mpi-deps build-tch test test-tch fixtures fmt hostile lint profile-table onnx-eval tflite-int8 sweep clean

help: ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: ## Install what the project needs: rustfmt, clippy, Debian's dataset-fashion-mnist.
	@command -v $(CARGO) >/dev/null || { echo "error: cargo not found; install Rust with rustup first" >&2; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
	@test -f $(FMNIST) || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; } || \
		echo "warning: could not install dataset-fashion-mnist; the tests that need it will say SKIPPED" >&2

build: setup ## Build the netaug binary (release, default pure-Rust backend).
	$(CARGO) build --release --locked -p netaug-cli

# Open MPI and libclang (rsmpi generates its bindings with it), for `--features mpi`.
MPI_PKGS := openmpi-bin libopenmpi-dev libclang-dev
mpi-deps:
	@command -v mpirun >/dev/null && test -n "$$(ls /usr/lib/llvm-*/lib/libclang*.so* 2>/dev/null)" || \
		{ $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(MPI_PKGS); }

build-mpi: setup mpi-deps ## Build netaug with MPI (one run over several processes, mpirun/srun; docs/training.md).
	$(CARGO) build --release --locked -p netaug-cli --features mpi

$(TORCH_VENV)/bin/python:
	python3 -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/pip install -q torch==$(TORCH_VERSION)

build-tch: $(TORCH_VENV)/bin/python ## Build netaug with LibTorch (devices tch-cpu, tch-cuda) into target-tch/.
	PATH=$(abspath $(TORCH_VENV))/bin:$$PATH LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1 \
		CARGO_TARGET_DIR=target-tch $(CARGO) build --release --locked -p netaug-cli --features tch
	@echo "built $(NETAUG_TCH); run it with LD_LIBRARY_PATH set as in docs/backends.md"

# The torch wheel's libraries, for running what build-tch and test-tch build.
TORCH_LIBS = $$(d=$$($(TORCH_VENV)/bin/python -c 'import site; print(site.getsitepackages()[0])'); \
	echo $$d/torch/lib:$$(ls -d $$d/nvidia/*/lib 2>/dev/null | paste -sd:))

test-tch: $(TORCH_VENV)/bin/python ## The LibTorch tests: kernels vs burn's ops, replicas' gradients, on tch-cpu.
	PATH=$(abspath $(TORCH_VENV))/bin:$$PATH LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1 \
		LD_LIBRARY_PATH=$(TORCH_LIBS) CARGO_TARGET_DIR=target-tch \
		sh -c '$(CARGO) test --release --locked -p netaug-kernels --features tch && \
		$(CARGO) test --release --locked -p netaug-trainer --features tch --lib'

# The official NetAug code (the netaug/ folder of github mit-han-lab/tinyml) for `make fixtures`.
OFFICIAL ?=
FIXTURES := crates/trainer/tests/fixtures/official

fixtures: $(TORCH_VENV)/bin/python ## Remake the fidelity fixtures by driving the official code (OFFICIAL=.../tinyml/netaug).
	@test -n "$(OFFICIAL)" -a -f "$(OFFICIAL)/setup.py" || { echo "error: set OFFICIAL to the official netaug/ folder (github mit-han-lab/tinyml)" >&2; exit 2; }
	$(TORCH_VENV)/bin/pip install -q torchvision==$(TORCHVISION_VERSION) torchprofile tqdm pyyaml
	$(TORCH_VENV)/bin/python tools/official_fixtures.py --official $(OFFICIAL) --out $(FIXTURES)

# Slurm and munge, for the Slurm executor's test against a real single-node cluster.
SLURM_PKGS := slurmctld slurmd slurm-client munge

# TensorBoard's own reader, for the test that reads a run's event files back.
TB_VENV ?= .venv-tb
TB_VERSION ?= 2.21.0
$(TB_VENV)/bin/python:
	@python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	python3 -m venv $(TB_VENV)
	$(TB_VENV)/bin/pip install -q tensorboard==$(TB_VERSION)

# The tests build the CLI with MPI, so that the multi-process tests run under mpirun.
TEST_FEATURES := --features netaug-cli/mpi
test: setup mpi-deps $(TB_VENV)/bin/python ## Format check, clippy (-D warnings), code shape and every test: what CI runs.
	@command -v slurmctld >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SLURM_PKGS); } || \
		echo "warning: could not install $(SLURM_PKGS); the Slurm test fails under CI=true and is skipped elsewhere" >&2
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets $(TEST_FEATURES) -- -D warnings
	$(CARGO) clippy --locked -p netaug-cli -- -D warnings
	python3 tools/code_shape.py
	NETAUG_TB_PYTHON=$(abspath $(TB_VENV))/bin/python $(CARGO) test --locked --workspace $(TEST_FEATURES)
	bash tools/hostile.sh target/debug/netaug

hostile: build ## A hostile user's pass over the CLI (tools/hostile.sh): bad input, user-owned folders, damaged results.
	bash tools/hostile.sh target/release/netaug

fmt: ## Format the code.
	$(CARGO) fmt --all

profile-table: build ## Params, MACs, int8 flash and peak SRAM of the paper's seven nets at their resolutions.
	@for m in tinymbv2:144 mbv2-0.35:160 proxylessnas-0.35:160 mcunet:176 mbv3-0.35:160 mbv2-1.0:224 resnet50:224; do \
		$(NETAUG) profile --model $${m%:*} --resolution $${m#*:}; done

# onnxruntime (and PIL, numpy) for tools/onnx_eval.py, and TensorFlow for
# tools/tflite_int8.py, in venvs.
ONNX_VENV ?= .venv-onnx
ONNX_PKGS := onnxruntime==1.32.0 numpy pillow
$(ONNX_VENV)/bin/python:
	python3 -m venv $(ONNX_VENV)
	$(ONNX_VENV)/bin/pip install -q $(ONNX_PKGS)
TFLITE_VENV ?= .venv-tflite
$(TFLITE_VENV)/bin/python:
	python3 -m venv $(TFLITE_VENV)
	$(TFLITE_VENV)/bin/pip install -q tensorflow-cpu==2.21.0 onnx==1.23.2 $(ONNX_PKGS)

ONNX ?=
onnx-eval: $(ONNX_VENV)/bin/python ## Top-1 of an exported ONNX file by onnxruntime (ONNX=file; DATA=image folder, default Fashion-MNIST).
	@test -n "$(ONNX)" || { echo "error: set ONNX to a file from netaug export --format onnx" >&2; exit 2; }
	$(ONNX_VENV)/bin/python tools/onnx_eval.py --onnx $(ONNX) \
		$(if $(DATA),--folder $(DATA),--fashion-mnist /usr/share/datasets/fashion-mnist)

tflite-int8: $(TFLITE_VENV)/bin/python ## int8 TFLite of an exported ONNX file, with float and int8 top-1 (ONNX=file; DATA=image folder).
	@test -n "$(ONNX)" || { echo "error: set ONNX to a file from netaug export --format onnx" >&2; exit 2; }
	TF_CPP_MIN_LOG_LEVEL=2 $(TFLITE_VENV)/bin/python tools/tflite_int8.py --onnx $(ONNX) --out $(basename $(ONNX)).tflite \
		$(if $(DATA),--folder $(DATA),--fashion-mnist /usr/share/datasets/fashion-mnist)

SWEEP ?= experiments/fashion-mnist.yaml
SWEEP_NAME = $(shell sed -n 's/^name: *//p' $(SWEEP) | head -1)
SWEEP_OUT ?= results/$(SWEEP_NAME)
# Runs at a time; each gets its share of the cores (a tiny net keeps one core busier
# than two threads keep two).
JOBS ?= 2

# The pasted Fashion-MNIST detection set that experiments/detection-pasted.yaml reads.
PASTED := data/pasted
$(PASTED)/annotations/instances_val.json: | build
	$(NETAUG) data pasted --out $(PASTED) --train 1000 --val 300 --canvas 64 --max-items 3 --sides 16 40

sweep: build $(if $(findstring detection-pasted,$(SWEEP)),$(PASTED)/annotations/instances_val.json) ## Run a sweep and report it (SWEEP=file, DATA=root, JOBS=n; default: Fashion-MNIST).
	$(NETAUG) sweep $(SWEEP) --out $(SWEEP_OUT) --jobs $(JOBS) $(if $(DATA),--set data.root=$(DATA))
	$(NETAUG) report $(SWEEP_OUT) --paper experiments/paper/results.csv
	@echo "table: $(SWEEP_OUT)/tables/   plots: $(SWEEP_OUT)/plots/   per run: $(SWEEP_OUT)/summary.csv"

clean: ## Remove build outputs (results/ is kept).
	$(CARGO) clean
