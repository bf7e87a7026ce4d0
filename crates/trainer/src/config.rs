//! The run configuration: a YAML file, strict (unknown keys are errors naming their
//! path), with `key.path=value` overrides.
//!
//! Key names are a contract: data.dataset, data.root, data.image_size, data.batch_size,
//! model.name, run.epochs, run.warmup_epochs, run.base_lr, run.seed,
//! netaug.aug_expand_list, netaug.aug_width_mult_list, netaug.stop_aug_w_epoch, device.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

/// A configuration error: the file and the key path or value at fault, in one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The YAML is malformed, or a key is unknown or has the wrong type.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file (or `--set`).
        file: String,
        /// Dotted key path (`.` for the root).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// A full run configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The dataset and its loading.
    pub data: DataConfig,
    /// The network.
    pub model: ModelConfig,
    /// Optimization.
    pub run: RunSection,
    /// NetAug; absent for a baseline run.
    #[serde(default)]
    pub netaug: Option<NetAugConfig>,
    /// Device: `cpu` (default, pure Rust), `tch-cpu`, `tch-cuda`, `cuda`.
    #[serde(default = "default_device")]
    pub device: String,
}

/// `data:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset name (see `netaug data info`).
    pub dataset: String,
    /// Dataset root (optional for fashion-mnist).
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Input resolution in pixels.
    pub image_size: usize,
    /// Global batch size.
    pub batch_size: usize,
    /// Loader threads; 0 = one per core.
    #[serde(default)]
    pub workers: usize,
    /// Train on the first N images of a fixed shuffle of the training split.
    #[serde(default)]
    pub train_subset: Option<usize>,
    /// Evaluate on the first N images of the evaluation split.
    #[serde(default)]
    pub eval_subset: Option<usize>,
}

/// `model:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Zoo name (`tinymbv2`, `mbv2-0.35`, ...).
    pub name: String,
    /// Dropout before the classifier.
    #[serde(default)]
    pub dropout: f64,
}

/// `run:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Training epochs after warm-up.
    pub epochs: usize,
    /// Linear warm-up epochs.
    #[serde(default = "default_warmup")]
    pub warmup_epochs: usize,
    /// Learning rate per 128 images (scaled linearly with the batch size).
    #[serde(default = "default_lr")]
    pub base_lr: f64,
    /// Weight decay (not applied to BN parameters and biases).
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    /// Label smoothing.
    #[serde(default = "default_smoothing")]
    pub label_smoothing: f64,
    /// Seed of the init, the data order and the sampling.
    #[serde(default)]
    pub seed: u64,
}

/// `netaug:` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetAugConfig {
    /// Expand-ratio factors, first 1.0.
    pub aug_expand_list: Vec<f64>,
    /// Width factors, first 1.0.
    pub aug_width_mult_list: Vec<f64>,
    /// Weight of the augmented loss.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Stop width augmentation for the last N epochs.
    #[serde(default)]
    pub stop_aug_w_epoch: usize,
    /// Stop expand augmentation for the last N epochs.
    #[serde(default)]
    pub stop_aug_e_epoch: usize,
    /// Sort channels by importance at the start of each width-augmented epoch.
    #[serde(default = "default_true")]
    pub sort_channels: bool,
    /// Images used to re-estimate BN statistics before evaluation.
    #[serde(default = "default_recal")]
    pub bn_recal_images: usize,
}

fn default_device() -> String {
    "cpu".into()
}
fn default_warmup() -> usize {
    5
}
fn default_lr() -> f64 {
    0.025
}
fn default_wd() -> f64 {
    4e-5
}
fn default_smoothing() -> f64 {
    0.1
}
fn default_alpha() -> f64 {
    1.0
}
fn default_true() -> bool {
    true
}
fn default_recal() -> usize {
    16_000
}

impl RunConfig {
    /// Reads `path` and applies `overrides` (`key.path=value`, the value parsed as YAML).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    /// Parses YAML `text` (named `file` in errors) and applies `overrides`.
    pub fn parse(text: &str, file: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut value: Value = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Invalid {
            file: file.into(),
            key: ".".into(),
            message: e.to_string(),
        })?;
        for o in overrides {
            set(&mut value, o)?;
        }
        let de = value;
        serde_path_to_error::deserialize(de).map_err(|e| ConfigError::Invalid {
            file: file.into(),
            key: e.path().to_string(),
            message: e.inner().to_string(),
        })
    }

    /// The resolved configuration as YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("configs serialize")
    }
}

/// Applies one `a.b.c=value` override, creating missing sections; `null` removes a key.
pub fn set(root: &mut Value, assignment: &str) -> Result<(), ConfigError> {
    let bad = |message: String| ConfigError::Invalid {
        file: "--set".into(),
        key: assignment.split('=').next().unwrap_or_default().to_string(),
        message,
    };
    let (key, raw) = assignment
        .split_once('=')
        .ok_or_else(|| bad("expected key.path=value".into()))?;
    let parsed: Value = serde_yaml_ng::from_str(raw).map_err(|e| bad(e.to_string()))?;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad("empty key segment".into()));
    }
    let mut node = root;
    for part in &parts[..parts.len() - 1] {
        if !node.is_mapping() {
            *node = Value::Mapping(Mapping::new());
        }
        let map = node.as_mapping_mut().expect("just made a mapping");
        node = map
            .entry(Value::String(part.to_string()))
            .or_insert(Value::Mapping(Mapping::new()));
    }
    if !node.is_mapping() {
        *node = Value::Mapping(Mapping::new());
    }
    let map = node.as_mapping_mut().expect("just made a mapping");
    let last = Value::String(parts[parts.len() - 1].to_string());
    if parsed.is_null() {
        map.remove(&last);
    } else {
        map.insert(last, parsed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "
data: {dataset: fashion-mnist, image_size: 32, batch_size: 64}
model: {name: tinymbv2}
run: {epochs: 3, seed: 1}
netaug:
  aug_expand_list: [1.0, 1.6]
  aug_width_mult_list: [1.0, 1.8]
  stop_aug_w_epoch: 1
";

    #[test]
    fn parses_with_defaults() {
        let c = RunConfig::parse(BASE, "t.yaml", &[]).unwrap();
        assert_eq!(c.run.base_lr, 0.025);
        assert_eq!(c.run.warmup_epochs, 5);
        assert_eq!(c.device, "cpu");
        let n = c.netaug.unwrap();
        assert_eq!(
            (n.alpha, n.stop_aug_w_epoch, n.sort_channels),
            (1.0, 1, true)
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_path_and_file() {
        let e = RunConfig::parse(&BASE.replace("seed: 1", "sead: 1"), "t.yaml", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.yaml: run.sead: unknown field `sead`"),
            "{e}"
        );
        let e = RunConfig::parse(&BASE.replace("epochs: 3", "epochs: three"), "t.yaml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.yaml: run.epochs:"), "{e}");
        let e = RunConfig::parse(&BASE.replace("[1.0, 1.6]", "[1.0, x]"), "t.yaml", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("netaug.aug_expand_list[1]"), "{e}");
    }

    #[test]
    fn overrides_set_create_and_remove_keys() {
        let sets = [
            "run.base_lr=0.1",
            "data.root=/x",
            "netaug=null",
            "device=tch-cpu",
        ]
        .map(String::from);
        let c = RunConfig::parse(BASE, "t.yaml", &sets).unwrap();
        assert_eq!(c.run.base_lr, 0.1);
        assert_eq!(c.data.root.as_deref(), Some(Path::new("/x")));
        assert!(c.netaug.is_none());
        assert_eq!(c.device, "tch-cpu");
        let e = RunConfig::parse(BASE, "t.yaml", &["run.bogus=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("run.bogus: unknown field `bogus`"), "{e}");
        assert!(RunConfig::parse(BASE, "t.yaml", &["novalue".into()]).is_err());
        // The resolved YAML reads back to the same config.
        let again = RunConfig::parse(&c.to_yaml(), "r.yaml", &[]).unwrap();
        assert_eq!(again, c);
    }
}
