//! Device names of run configs and the burn devices they stand for. Cargo features pick
//! what is compiled in (`tch`, `cuda`); the name picks among them at run time.

use burn::tensor::Device;

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

    /// Whether the backend runs on a GPU.
    pub fn is_gpu(self) -> bool {
        matches!(self, Self::TchCuda | Self::Cuda)
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
        if index.is_some() && !kind.is_gpu() {
            return Err(format!(
                "`{name}`: {} is a CPU backend and takes no GPU index",
                kind.name()
            ));
        }
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

/// The devices of a run config: one name, or a list of one backend's devices with one
/// replica of the run on each (`device: [tch-cuda:0, tch-cuda:1]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Devices(Vec<DeviceName>);

impl Default for Devices {
    fn default() -> Self {
        Self(vec![DeviceName::default()])
    }
}

impl Devices {
    /// A list of devices: not empty, one backend, no GPU twice.
    pub fn new(names: Vec<DeviceName>) -> Result<Self, String> {
        let Some(first) = names.first() else {
            return Err("the device list is empty".into());
        };
        if let Some(other) = names.iter().find(|n| n.kind != first.kind) {
            return Err(format!(
                "`{first}` and `{other}`: the devices of a run are of one backend"
            ));
        }
        let gpu = first.kind.is_gpu();
        for (i, a) in names.iter().enumerate() {
            let index = |n: &DeviceName| n.index.unwrap_or(0);
            if gpu && names[..i].iter().any(|b| index(b) == index(a)) {
                return Err(format!(
                    "`{a}` is listed twice; give each replica its own GPU"
                ));
            }
        }
        Ok(Self(names))
    }

    /// The main device: the first, where the weights, the optimizer and replica 0 live.
    pub fn main(&self) -> DeviceName {
        self.0[0]
    }

    /// Every device, in replica order.
    pub fn names(&self) -> &[DeviceName] {
        &self.0
    }
}

impl std::fmt::Display for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{name}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Devices {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Devices {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// One name or a list of names; anything else is refused saying what fits
        /// (an untagged enum's error named neither).
        struct Names;
        impl<'de> serde::de::Visitor<'de> for Names {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(
                    f,
                    "a device name ({}) or a list of them",
                    DEVICES.join(", ")
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(vec![v.to_string()])
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(n) = seq.next_element::<String>()? {
                    out.push(n);
                }
                Ok(out)
            }
        }
        let names = d.deserialize_any(Names)?;
        let names = names
            .iter()
            .map(|n| n.parse())
            .collect::<Result<Vec<_>, String>>()
            .map_err(serde::de::Error::custom)?;
        Self::new(names).map_err(serde::de::Error::custom)
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

/// A device that this binary or this machine does not have.
#[derive(Debug, thiserror::Error)]
#[error("device: {0}")]
pub struct DeviceError(String);

/// Refuses a device whose backend is not compiled into this binary.
pub fn check_compiled(name: &DeviceName) -> Result<(), DeviceError> {
    if name.kind.compiled() {
        return Ok(());
    }
    Err(DeviceError(format!(
        "`{name}` is not compiled into this binary (compiled: {}); rebuild with \
             --features {} (see docs/backends.md)",
        compiled().join(", "),
        if name.kind == DeviceKind::Cuda {
            "cuda"
        } else {
            "tch"
        }
    )))
}

/// The burn device of `name`; a backend not compiled into this binary is refused.
pub fn device(name: &DeviceName) -> Result<Device, DeviceError> {
    check_compiled(name)?;
    let index = name.index.unwrap_or(0);
    if let Some(found) = gpus(name.kind)
        && index >= found
    {
        return Err(DeviceError(format!(
            "`{name}`: no such GPU; this machine shows {found} to {} ({}CUDA_VISIBLE_DEVICES: {})",
            name.kind.name(),
            if found == 0 {
                "no driver or no GPU; "
            } else {
                ""
            },
            std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_else(|_| "unset".into())
        )));
    }
    Ok(make(name.kind, index))
}

/// The GPUs a GPU backend finds (`None` for CPU backends). A backend whose enumeration
/// fails (no driver) finds none.
#[allow(unreachable_code, unused_variables)]
fn gpus(kind: DeviceKind) -> Option<usize> {
    let kind: burn::tensor::DeviceType = match kind {
        DeviceKind::Cpu | DeviceKind::TchCpu => return None,
        #[cfg(feature = "tch")]
        DeviceKind::TchCuda => burn::tensor::DeviceType::LibTorch,
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => burn::tensor::DeviceType::Cuda,
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    let listed = std::panic::catch_unwind(|| Device::enumerate(kind).into_vec().len());
    Some(listed.unwrap_or(0))
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
        // A device list reads and writes back as a list, one device as a name.
        let parse = |y: &str| serde_yaml_ng::from_str::<Devices>(y);
        let two = parse("[tch-cuda:0, tch-cuda:1]").unwrap();
        assert_eq!(two.names().len(), 2);
        assert_eq!(two.main().to_string(), "tch-cuda:0");
        assert_eq!(two.to_string(), "tch-cuda:0,tch-cuda:1");
        assert_eq!(
            serde_yaml_ng::to_string(&two).unwrap(),
            "- tch-cuda:0\n- tch-cuda:1\n"
        );
        assert_eq!(
            serde_yaml_ng::to_string(&parse("cpu").unwrap()).unwrap(),
            "cpu\n"
        );
        // `cuda` is GPU 0: the same GPU twice.
        for (bad, says) in [
            ("[]", "empty"),
            ("[cuda, cuda:0]", "listed twice"),
            ("[cpu, cuda:1]", "of one backend"),
            ("[cpu, tpu]", "unknown device `tpu`"),
            // A GPU index on a CPU backend used to be accepted and recorded.
            ("cpu:7", "takes no GPU index"),
            ("[tch-cpu:0, tch-cpu:1]", "takes no GPU index"),
            // A mapping used to be refused as "untagged enum OneOrMany".
            ("{name: cpu}", "a device name (cpu, "),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        // A GPU the machine does not show is refused before anything runs.
        if cfg!(feature = "tch") {
            let found = gpus(DeviceKind::TchCuda).unwrap();
            let e = device(&format!("tch-cuda:{found}").parse().unwrap())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!(
                    "`tch-cuda:{found}`: no such GPU; this machine shows {found}"
                )),
                "{e}"
            );
            assert!(e.contains("CUDA_VISIBLE_DEVICES"), "{e}");
        }
        if !cfg!(feature = "tch") {
            let e = device(&"tch-cuda".parse().unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains("not compiled into this binary"), "{e}");
        }
    }
}
