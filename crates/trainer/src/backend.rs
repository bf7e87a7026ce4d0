//! Device names of run configs and the burn devices they stand for. Cargo features pick
//! what is compiled in (`tch`, `cuda`); the name picks among them at run time.

use burn::tensor::Device;

use crate::error::TrainError;

/// Every device name a config may use, compiled in or not.
pub const DEVICES: &[&str] = &["cpu", "tch-cpu", "tch-cuda", "cuda"];

/// The device names this binary can run.
pub fn compiled() -> Vec<&'static str> {
    let mut v = vec!["cpu"];
    if cfg!(feature = "tch") {
        v.extend(["tch-cpu", "tch-cuda"]);
    }
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    v
}

/// The device for `name` (`cpu`, `tch-cpu`, `tch-cuda[:N]`, `cuda[:N]`).
pub fn device(name: &str) -> Result<Device, TrainError> {
    let (kind, index) = match name.split_once(':') {
        Some((k, i)) => {
            let i = i.parse::<usize>().map_err(|_| {
                TrainError::setting("device", format!("`{name}`: `{i}` is not a GPU index"))
            })?;
            (k, i)
        }
        None => (name, 0),
    };
    if !DEVICES.contains(&kind) {
        return Err(TrainError::setting(
            "device",
            format!("unknown device `{name}` (known: {})", DEVICES.join(", ")),
        ));
    }
    if !compiled().contains(&kind) {
        return Err(TrainError::setting(
            "device",
            format!(
                "`{name}` is not compiled into this binary (compiled: {}); rebuild with \
                 --features {} (see README, Backends)",
                compiled().join(", "),
                if kind == "cuda" { "cuda" } else { "tch" }
            ),
        ));
    }
    Ok(make(kind, index))
}

#[allow(deprecated)] // burn-tch is deprecated upstream but is our fast GPU path.
#[allow(unused_variables)]
fn make(kind: &str, index: usize) -> Device {
    match kind {
        #[cfg(feature = "tch")]
        "tch-cpu" => Device::libtorch(),
        #[cfg(feature = "tch")]
        "tch-cuda" => Device::libtorch_cuda(index),
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(index),
        _ => Device::flex(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_uncompiled_devices_are_setting_errors() {
        assert!(device("cpu").is_ok());
        let e = device("tpu").unwrap_err().to_string();
        assert!(e.starts_with("device: unknown device `tpu`"), "{e}");
        let e = device("cpu:x").unwrap_err().to_string();
        assert!(e.contains("not a GPU index"), "{e}");
        if !cfg!(feature = "tch") {
            let e = device("tch-cuda").unwrap_err().to_string();
            assert!(e.contains("not compiled into this binary"), "{e}");
        }
    }
}
