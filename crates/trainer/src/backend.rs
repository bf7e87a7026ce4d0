//! Device names of run configs and the burn devices they stand for. Cargo features pick
//! what is compiled in (`tch`, `cuda`); the name picks among them at run time.

use burn::tensor::Device;

use crate::error::TrainError;

/// Every device name a config may use, compiled in or not.
pub const DEVICES: &[&str] = &["cpu", "tch-cpu", "tch-cuda", "cuda"];

/// A backend: what a device name's part before `:` says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceKind {
    /// burn's flex, pure Rust (the default).
    #[default]
    Cpu,
    /// LibTorch on the CPU.
    TchCpu,
    /// LibTorch on a CUDA GPU.
    TchCuda,
    /// burn's CUDA backend.
    Cuda,
}

impl DeviceKind {
    const ALL: [Self; 4] = [Self::Cpu, Self::TchCpu, Self::TchCuda, Self::Cuda];

    /// The name in configs and on the command line.
    pub fn name(self) -> &'static str {
        DEVICES[Self::ALL
            .iter()
            .position(|k| *k == self)
            .expect("every kind is listed")]
    }

    /// Whether this binary was built with the backend.
    pub fn compiled(self) -> bool {
        match self {
            Self::Cpu => true,
            Self::TchCpu | Self::TchCuda => cfg!(feature = "tch"),
            Self::Cuda => cfg!(feature = "cuda"),
        }
    }
}

/// A device of a run config or a `--device` argument: `cpu`, `tch-cpu`, `tch-cuda[:N]`,
/// `cuda[:N]` (N: the GPU, default 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceName {
    /// The backend.
    pub kind: DeviceKind,
    /// The GPU index; `None` when the name gives none.
    pub index: Option<usize>,
}

impl std::str::FromStr for DeviceName {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        let (kind, index) = match name.split_once(':') {
            Some((k, i)) => {
                let i = i
                    .parse::<usize>()
                    .map_err(|_| format!("`{name}`: `{i}` is not a GPU index"))?;
                (k, Some(i))
            }
            None => (name, None),
        };
        let kind = DeviceKind::ALL
            .into_iter()
            .find(|k| k.name() == kind)
            .ok_or_else(|| format!("unknown device `{name}` (known: {})", DEVICES.join(", ")))?;
        Ok(Self { kind, index })
    }
}

impl std::fmt::Display for DeviceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind.name())?;
        match self.index {
            Some(i) => write!(f, ":{i}"),
            None => Ok(()),
        }
    }
}

impl serde::Serialize for DeviceName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The device names this binary can run.
pub fn compiled() -> Vec<&'static str> {
    DeviceKind::ALL
        .into_iter()
        .filter(|k| k.compiled())
        .map(DeviceKind::name)
        .collect()
}

/// The burn device of `name`; a backend not compiled into this binary is refused.
pub fn device(name: &DeviceName) -> Result<Device, TrainError> {
    if !name.kind.compiled() {
        return Err(TrainError::setting(
            "device",
            format!(
                "`{name}` is not compiled into this binary (compiled: {}); rebuild with \
                 --features {} (see README, Backends)",
                compiled().join(", "),
                if name.kind == DeviceKind::Cuda {
                    "cuda"
                } else {
                    "tch"
                }
            ),
        ));
    }
    Ok(make(name.kind, name.index.unwrap_or(0)))
}

#[allow(deprecated)] // burn-tch is deprecated upstream but is our fast GPU path.
#[allow(unused_variables)]
fn make(kind: DeviceKind, index: usize) -> Device {
    match kind {
        #[cfg(feature = "tch")]
        DeviceKind::TchCpu => Device::libtorch(),
        #[cfg(feature = "tch")]
        DeviceKind::TchCuda => Device::libtorch_cuda(index),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => Device::cuda(index),
        _ => Device::flex(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_print_and_refuse_unknown_or_uncompiled_ones() {
        let cpu: DeviceName = "cpu".parse().unwrap();
        assert!(device(&cpu).is_ok());
        for name in ["cpu", "tch-cuda:1", "cuda"] {
            assert_eq!(name.parse::<DeviceName>().unwrap().to_string(), name);
        }
        let e = "tpu".parse::<DeviceName>().unwrap_err();
        assert!(e.starts_with("unknown device `tpu`"), "{e}");
        let e = "cpu:x".parse::<DeviceName>().unwrap_err();
        assert!(e.contains("not a GPU index"), "{e}");
        if !cfg!(feature = "tch") {
            let e = device(&"tch-cuda".parse().unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains("not compiled into this binary"), "{e}");
        }
    }
}
