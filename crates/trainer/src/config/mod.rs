//! The run configuration: a YAML file, strict (unknown keys are errors naming their
//! path), with `key.path=value` overrides.
//!
//! Key names are a contract: data.dataset, data.root, data.image_size, data.batch_size,
//! model.name, run.epochs, run.warmup_epochs, run.base_lr, run.seed,
//! netaug.aug_expand_list, netaug.aug_width_mult_list, netaug.stop_aug_w_epoch, device.
//!
//! [`schema`] holds the sections and their fields, `defaults` their default values,
//! [`validate`] the checks the types cannot make, [`overrides`] the dotted-key editor
//! (`--set`, and a sweep's grid), and this module reading and the run's derived settings.

mod defaults;
mod error;
pub mod overrides;
pub mod schema;
pub mod validate;

use std::path::Path;

use serde_yaml_ng::Value;

pub use error::ConfigError;
pub use overrides::{set, set_value};
pub use schema::*;
pub use validate::{MAX_CONFIG_BYTES, MAX_EPOCHS, MAX_IMAGE_SIZE, check_image_size};

use overrides::blame;

impl RunConfig {
    /// The learning rate the warm-up starts from: `run.warmup_lr`, else the rate of one
    /// official GPU's batch of up to 128 images (the official scheduler warms up from one
    /// GPU's rate to that of all GPUs; at batch 128 or less the warm-up is flat).
    pub fn warmup_lr(&self) -> f64 {
        let one_gpu = self.data.batch_size.min(128) as f64 / 128.0;
        self.run.warmup_lr.unwrap_or(self.run.base_lr * one_gpu)
    }

    /// Reads `path` and applies `overrides` (`key.path=value`, the value parsed as YAML).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        // YAML values take ~80x their text in memory: a config the size of a dataset
        // would take the machine's memory before it is refused for its content.
        if let Ok(m) = std::fs::metadata(path)
            && m.len() > MAX_CONFIG_BYTES
        {
            return Err(ConfigError::Invalid {
                file: path.display().to_string(),
                key: ".".into(),
                message: format!(
                    "{} bytes; a run config is at most {MAX_CONFIG_BYTES} (is this a config?)",
                    m.len()
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    /// Parses YAML `text` (named `file` in errors) and applies `overrides`.
    pub fn parse(text: &str, file: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        // Editors on Windows save UTF-8 with a byte-order mark, which YAML would read as
        // content.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut value: Value = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Invalid {
            file: file.into(),
            key: ".".into(),
            message: e.to_string(),
        })?;
        let from_file = value.clone();
        for o in overrides {
            set(&mut value, o)?;
        }
        let (key, message) = match Self::checked(value) {
            Ok(config) => return Ok(config),
            Err(e) => e,
        };
        let mut file = blame(file, overrides, &key, &message);
        // No --set wrote the key, yet one can still be at fault (a setting that conflicts
        // with another, a key turned into a section): when the file alone is valid, the
        // first --set that makes it invalid is.
        if !file.starts_with("--set ") && Self::checked(from_file.clone()).is_ok() {
            let mut value = from_file;
            for o in overrides {
                set(&mut value, o)?;
                if Self::checked(value.clone()).is_err() {
                    file = format!("--set {o}");
                    break;
                }
            }
        }
        Err(ConfigError::Invalid { file, key, message })
    }

    /// The config `value` holds, validated; else the key at fault and why.
    fn checked(value: Value) -> Result<Self, (String, String)> {
        let config: Self = serde_path_to_error::deserialize(value)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        config
            .validate()
            .map_err(|(key, message)| (key.to_string(), message))?;
        Ok(config)
    }

    /// The device of each replica: the device list, or `run.replicas` times the device.
    pub fn replica_devices(&self) -> Vec<crate::backend::DeviceName> {
        match self.device.names() {
            [one] => vec![*one; self.run.replicas],
            many => many.to_vec(),
        }
    }

    /// The zoo name: `model.name`, with `-<width>` appended when `model.width` is given.
    pub fn model_name(&self) -> Result<String, String> {
        match self.model.width {
            None => Ok(self.model.name.clone()),
            Some(w) if self.model.name.contains('-') => Err(format!(
                "`{}` already names a width; drop model.width ({w})",
                self.model.name
            )),
            Some(w) => Ok(format!("{}-{w}", self.model.name)),
        }
    }

    /// The weight init: `run.init`, or the official default for the method.
    pub fn init_kind(&self) -> netaug_model::InitKind {
        use netaug_model::InitKind;
        match self.run.init {
            Some(kind) => kind,
            None if self.netaug.is_some() => InitKind::KaimingUniform,
            None => InitKind::HeFout,
        }
    }

    /// The network's training-time regularizers (dropout from `regularization` or `model`).
    pub fn stochastic(&self) -> netaug_model::Stochastic {
        let reg = self.regularization.clone().unwrap_or_default();
        netaug_model::Stochastic {
            dropout: reg.dropout.unwrap_or(self.model.dropout),
            dropblock: reg.dropblock,
        }
    }

    /// The method's name as the paper's tables: baseline, netaug, kd, kd+netaug, or the
    /// regularizers in use (dropout, mixup, autoaugment, randaugment, dropblock, joined by +).
    pub fn method(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if self.kd.is_some() {
            parts.push("kd");
        }
        if self.netaug.is_some() {
            parts.push("netaug");
        }
        if let Some(r) = &self.regularization {
            let named = [
                ("dropout", r.dropout.is_some()),
                ("mixup", r.mixup.is_some()),
                ("autoaugment", r.autoaugment),
                ("randaugment", r.randaugment.is_some()),
                ("dropblock", r.dropblock.is_some()),
            ];
            parts.extend(named.iter().filter(|(_, on)| *on).map(|(n, _)| *n));
        }
        if parts.is_empty() {
            "baseline".into()
        } else {
            parts.join("+")
        }
    }

    /// The resolved configuration as YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("configs serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_starts_from_one_official_gpus_rate() {
        let at = |batch: usize, extra: &str| {
            let text = BASE.replace("batch_size: 64", &format!("batch_size: {batch}"));
            let c = RunConfig::parse(&text, "r.yaml", &[extra.to_string()]).unwrap();
            (
                c.warmup_lr(),
                crate::schedule::CosineWithWarmup::for_run(&c, 10).lr,
            )
        };
        // base_lr 0.025 per 128 images: at 512 the warm-up climbs from 0.025 to 0.1 ...
        assert_eq!(at(512, "run.base_lr=0.025"), (0.025, 0.1));
        // ... at 128 or less it is flat, as on one official GPU ...
        assert_eq!(at(128, "run.base_lr=0.025"), (0.025, 0.025));
        assert_eq!(at(64, "run.base_lr=0.025"), (0.0125, 0.0125));
        // ... and `warmup_lr: 0` ramps up from 0; a negative start is refused.
        assert_eq!(at(512, "run.warmup_lr=0").0, 0.0);
        let bad = RunConfig::parse(BASE, "r.yaml", &["run.warmup_lr=-1".into()]);
        assert!(bad.unwrap_err().to_string().contains("run.warmup_lr"));
    }

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
        assert_eq!(c.device.to_string(), "cpu");
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
    fn errors_a_set_caused_name_the_set() {
        let bad = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            RunConfig::parse(BASE, "t.yaml", &sets)
                .unwrap_err()
                .to_string()
        };
        // An empty value removes the key: the missing field is the --set's doing.
        let e = bad(&["run.epochs="]);
        assert!(
            e.starts_with("--set run.epochs=: run: missing field `epochs`"),
            "{e}"
        );
        let e = bad(&["data.image_size=4"]);
        assert!(
            e.starts_with("--set data.image_size=4: data.image_size:"),
            "{e}"
        );
        let e = bad(&["run={epochs: 0, warmup_epochs: 0}"]);
        assert!(
            e.starts_with("--set run={epochs: 0, warmup_epochs: 0}: run.epochs: must be"),
            "{e}"
        );
        // A --set elsewhere in the section is not blamed for the file's error.
        let sets = vec!["run.seed=3".to_string()];
        let e = RunConfig::parse(&BASE.replace("epochs: 3", "epochs: x"), "t.yaml", &sets)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.yaml: run.epochs:"), "{e}");
        // Errors at a key no --set wrote, yet caused by one: a setting that conflicts with
        // the file's, a key turned into a section (both used to blame the file).
        let e = bad(&["run.epochs.x=1"]);
        assert!(e.starts_with("--set run.epochs.x=1: run.epochs:"), "{e}");
        let e = bad(&["run.seed=4", "run.replicas=2", "model.dropout=0.1"]);
        assert!(e.starts_with("--set model.dropout=0.1: "), "{e}");
        // Huge epoch counts name their own key, not a wrapped sum.
        let e = bad(&["run.warmup_epochs=18446744073709551615"]);
        assert!(
            e.contains("run.warmup_epochs: 18446744073709551615 is more than"),
            "{e}"
        );
    }

    #[test]
    fn a_config_file_over_a_mebibyte_is_refused_before_it_is_parsed() {
        let path = std::env::temp_dir().join(format!("netaug-big-{}.yaml", std::process::id()));
        let list = "1.0, ".repeat(300_000);
        std::fs::write(&path, format!("{BASE}x: [{list}]\n")).unwrap();
        let e = RunConfig::load(&path, &[]).unwrap_err().to_string();
        assert!(e.contains("a run config is at most 1048576"), "{e}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_byte_order_mark_is_read_past() {
        let with_bom = format!("\u{feff}{BASE}");
        assert_eq!(
            RunConfig::parse(&with_bom, "t.yaml", &[]).unwrap(),
            RunConfig::parse(BASE, "t.yaml", &[]).unwrap()
        );
    }

    #[test]
    fn image_sizes_outside_8_to_2048_are_refused() {
        let bad = |size: &str| {
            let sets = vec![format!("data.image_size={size}")];
            RunConfig::parse(BASE, "t.yaml", &sets)
                .unwrap_err()
                .to_string()
        };
        assert!(bad("0").contains("data.image_size: 0 is below 8 pixels"));
        assert!(bad("100000").contains("data.image_size: 100000 is above 2048 pixels"));
        for ok in ["8", "2048"] {
            let sets = vec![format!("data.image_size={ok}")];
            assert!(RunConfig::parse(BASE, "t.yaml", &sets).is_ok(), "{ok}");
        }
    }

    #[test]
    fn detection_sections_are_checked() {
        let det = BASE.replace("fashion-mnist", "coco") + "detection: {multi_scale: [64, 96]}\n";
        let c = RunConfig::parse(&det, "t.yaml", &[]).unwrap();
        let d = c.detection.unwrap();
        assert_eq!(
            (d.anchors, d.min_crop, d.max_detections),
            (Anchors::Method(AnchorMethod::Kmeans), 0.5, 100)
        );
        let bad = |sets: &[&str], text: &str| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            RunConfig::parse(text, "t.yaml", &sets)
                .unwrap_err()
                .to_string()
        };
        assert!(bad(&["detection.multi_scale=[70]"], &det).contains("detection.multi_scale: 70"));
        assert!(bad(&["detection.anchors=x"], &det).contains("unknown anchors `x`"));
        assert!(bad(&["detection.anchors=[[1, 2]]"], &det).contains("expected 9 [w, h]"));
        let nine =
            "detection.anchors=[[4,5],[6,7],[8,9],[10,11],[12,13],[14,15],[16,17],[18,19],[20,21]]";
        let c = RunConfig::parse(&det, "t.yaml", &[nine.into()]).unwrap();
        let d = c.detection.clone().unwrap();
        assert_eq!(
            d.anchors,
            Anchors::List(
                (0..9)
                    .map(|i| [4.0 + 2.0 * i as f32, 5.0 + 2.0 * i as f32])
                    .collect()
            )
        );
        assert_eq!(RunConfig::parse(&c.to_yaml(), "r.yaml", &[]).unwrap(), c);
        assert!(bad(&["detection.min_crop=0"], &det).contains("detection.min_crop"));
        assert!(bad(&["data.dataset=fashion-mnist"], &det).contains("not a detection dataset"));
        let e = bad(&[], &BASE.replace("fashion-mnist", "voc"));
        assert!(e.contains("add a `detection:` section"), "{e}");
        let yaml = RunConfig::parse(&det, "t.yaml", &[]).unwrap().to_yaml();
        let again = RunConfig::parse(&yaml, "r.yaml", &[]).unwrap();
        assert!(again.detection.is_some());
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
        assert_eq!(c.device.to_string(), "tch-cpu");
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
