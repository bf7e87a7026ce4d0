//! What tells runs apart besides their seed. Each run folder keeps the config it ran
//! (`config.yaml`); a report must never average runs whose configs differ in anything but
//! the seed. The keys that vary within a dataset become the run's *setting* (a row of the
//! tables: `run.epochs=7; data.train_subset=5000`); a key of a method's own section
//! (`netaug.*`, `kd.*`, `regularization.*`) that varies between runs of one setting and
//! method becomes part of the method's name (`netaug (alpha=0.5)`), so the baseline, which
//! has no such section, still shares the row.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_yaml_ng::Value;

use crate::error::AnalysisError;

/// The config key of the learning rate.
pub const LR_KEY: &str = "run.base_lr";

/// The config file a run folder keeps.
pub const CONFIG_FILE: &str = "config.yaml";

/// Sections that belong to a method: absent in a baseline run.
const METHOD_SECTIONS: &[&str] = &["netaug", "kd", "regularization"];

/// Keys that tell seeds apart, never settings.
const SEED_KEYS: &[&str] = &["run.seed"];

/// Keys that the summary already shows as columns of their own.
const SHOWN_KEYS: &[&str] = &["data.dataset", "model.name", "data.image_size"];

/// Keys that set the training budget (images x epochs); a budget figure draws one line
/// over the values of these and keeps the rest of the setting apart.
pub const BUDGET_KEYS: &[&str] = &["data.train_subset", "run.epochs", "run.warmup_epochs"];

/// A run's config as dotted keys and their values, as text (`run.epochs` -> `7`,
/// `netaug.aug_expand_list` -> `[1.0,1.6]`, `model.width` -> `null`).
pub type Flat = BTreeMap<String, String>;

/// Reads `dir/config.yaml` flattened; a run without one has an empty config.
pub fn read_config(dir: &Path) -> Result<Flat, AnalysisError> {
    let path = dir.join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Flat::new()),
        Err(e) => return Err(AnalysisError::file(&path, e)),
    };
    let value: Value = serde_yaml_ng::from_str(&text).map_err(|e| AnalysisError::file(&path, e))?;
    let mut out = Flat::new();
    flatten("", &value, &mut out);
    Ok(out)
}

fn flatten(prefix: &str, v: &Value, out: &mut Flat) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = scalar(k);
                let key = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_string(), scalar(v));
        }
    }
}

/// A value as compact text: lists without spaces, so `; ` can separate settings.
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(s) => format!("[{}]", s.iter().map(scalar).collect::<Vec<_>>().join(",")),
        Value::Mapping(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}:{}", scalar(k), scalar(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Tagged(t) => scalar(&t.value),
    }
}

/// The section of a dotted key (`netaug.alpha` -> `netaug`).
fn section(key: &str) -> &str {
    key.split('.').next().unwrap_or(key)
}

/// What a run is, for grouping: its setting and its method's full name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The varying keys outside the method sections, `key=value` joined by `; `, sorted by
    /// key; empty when the runs differ only in method and seed.
    pub setting: String,
    /// The method, with the varying keys of its own section in brackets.
    pub method: String,
}

/// One run as the grouping sees it.
pub struct RunKey<'a> {
    /// Dataset.
    pub dataset: &'a str,
    /// Model.
    pub model: &'a str,
    /// Resolution.
    pub resolution: i64,
    /// Method as the run's summary names it.
    pub method: &'a str,
    /// The run's config, flattened.
    pub config: &'a Flat,
}

/// The identity of each run: within a dataset, every key (but the seed and the ones the
/// summary shows) that takes two or more values (absent counts as a value) is part of the
/// setting, unless it lies in a method's section; such a key names a method variant when
/// it varies between runs of one (model, resolution, setting, method).
pub fn identify(runs: &[RunKey]) -> Vec<Identity> {
    let mut by_dataset: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        by_dataset.entry(r.dataset).or_default().push(i);
    }
    let mut out = vec![Identity::default(); runs.len()];
    for members in by_dataset.values() {
        let varied = varying(members.iter().map(|&i| runs[i].config));
        let setting_keys: Vec<&String> = varied
            .iter()
            .filter(|k| !METHOD_SECTIONS.contains(&section(k)))
            .collect();
        for &i in members {
            out[i].setting = render(runs[i].config, setting_keys.iter().copied());
        }
        let mut groups: BTreeMap<(&str, i64, String, &str), Vec<usize>> = BTreeMap::new();
        for &i in members {
            let r = &runs[i];
            let key = (r.model, r.resolution, out[i].setting.clone(), r.method);
            groups.entry(key).or_default().push(i);
        }
        for group in groups.values() {
            let own: Vec<String> = varying(group.iter().map(|&i| runs[i].config))
                .into_iter()
                .filter(|k| METHOD_SECTIONS.contains(&section(k)))
                .collect();
            for &i in group {
                let method = runs[i].method.to_string();
                out[i].method = if own.is_empty() {
                    method
                } else {
                    let parts: Vec<String> = own
                        .iter()
                        .map(|k| {
                            let short = k.split_once('.').map_or(k.as_str(), |(_, s)| s);
                            format!("{short}={}", value(runs[i].config, k))
                        })
                        .collect();
                    format!("{method} ({})", parts.join("; "))
                };
            }
        }
    }
    out
}

/// The keys (but seeds and shown ones) whose values are not all equal across `configs`.
fn varying<'a>(configs: impl Iterator<Item = &'a Flat> + Clone) -> Vec<String> {
    let keys: BTreeSet<&String> = configs.clone().flat_map(|c| c.keys()).collect();
    keys.into_iter()
        .filter(|k| !SEED_KEYS.contains(&k.as_str()) && !SHOWN_KEYS.contains(&k.as_str()))
        .filter(|k| {
            let values: BTreeSet<String> = configs.clone().map(|c| value(c, k)).collect();
            values.len() > 1
        })
        .cloned()
        .collect()
}

fn value(config: &Flat, key: &str) -> String {
    config.get(key).cloned().unwrap_or_else(|| "–".into())
}

fn render<'a>(config: &Flat, keys: impl Iterator<Item = &'a String>) -> String {
    keys.map(|k| format!("{k}={}", value(config, k)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A setting's `key=value` pairs.
pub fn pairs(setting: &str) -> Vec<(&str, &str)> {
    setting
        .split("; ")
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

/// A setting without the budget keys: what stays fixed along a budget line.
pub fn without_budget(setting: &str) -> String {
    pairs(setting)
        .into_iter()
        .filter(|(k, _)| !BUDGET_KEYS.contains(k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Orders settings as people read them: numbers by value (`run.epochs=15` after `=7`).
pub fn natural_key(setting: &str) -> Vec<(String, f64, String)> {
    pairs(setting)
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                v.parse::<f64>().unwrap_or(f64::NAN),
                v.to_string(),
            )
        })
        .collect()
}

/// Compares two settings by [`natural_key`] (text where a value is not a number).
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (ka, kb) = (natural_key(a), natural_key(b));
    for ((na, xa, sa), (nb, xb, sb)) in ka.iter().zip(&kb) {
        let o = na.cmp(nb).then_with(|| match (xa.is_nan(), xb.is_nan()) {
            (false, false) => xa.total_cmp(xb),
            _ => sa.cmp(sb),
        });
        if o.is_ne() {
            return o;
        }
    }
    ka.len().cmp(&kb.len())
}

/// A model's name with a setting, for legends and axis labels (`tinymbv2 run.epochs=7`).
pub fn label(model: &str, setting: &str) -> String {
    if setting.is_empty() {
        model.to_string()
    } else {
        format!("{model} {}", setting.replace("; ", " "))
    }
}

/// Longest [`slug`]: a figure's name holds a dataset, a model and a suffix beside it,
/// and a file name at most 255 bytes.
const SLUG_MAX: usize = 96;

/// A file-name-safe form of a setting (`run.epochs=7; data.train_subset=5000` ->
/// `run-epochs-7-data-train-subset-5000`). A long one is cut and ends in a hash of the
/// whole setting, so two settings that share a long start still get two names.
pub fn slug(setting: &str) -> String {
    let mut out = String::new();
    for c in setting.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.len() <= SLUG_MAX {
        return out.to_string();
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = setting.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let head = out[..SLUG_MAX - 17].trim_end_matches('-');
    format!("{head}-{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(pairs: &[(&str, &str)]) -> Flat {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn key<'a>(method: &'a str, config: &'a Flat) -> RunKey<'a> {
        RunKey {
            dataset: "d",
            model: "m",
            resolution: 32,
            method,
            config,
        }
    }

    #[test]
    fn yaml_flattens_to_dotted_keys() {
        let dir = std::env::temp_dir().join(format!("netaug-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(CONFIG_FILE),
            "run:\n  epochs: 7\n  seed: 1\nmodel:\n  width: null\nnetaug:\n  aug_expand_list:\n  - 1.0\n  - 1.6\n",
        )
        .unwrap();
        let f = read_config(&dir).unwrap();
        assert_eq!(f["run.epochs"], "7");
        assert_eq!(f["model.width"], "null");
        assert_eq!(f["netaug.aug_expand_list"], "[1.0,1.6]");
        assert!(read_config(&dir.join("none")).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn varying_keys_split_rows_and_method_keys_split_methods() {
        // Two budgets (epochs; NetAug's stop epoch follows them), two seeds each, and a
        // NetAug alpha variant at epochs 3.
        let base = |e: &str, s: &str| flat(&[("run.epochs", e), ("run.seed", s)]);
        let aug = |e: &str, s: &str, stop: &str, alpha: &str| {
            flat(&[
                ("run.epochs", e),
                ("run.seed", s),
                ("netaug.stop_aug_w_epoch", stop),
                ("netaug.alpha", alpha),
            ])
        };
        let configs = [
            base("3", "0"),
            base("3", "1"),
            base("7", "0"),
            aug("3", "0", "1", "1.0"),
            aug("3", "0", "1", "0.5"),
            aug("7", "0", "2", "1.0"),
        ];
        let methods = [
            "baseline", "baseline", "baseline", "netaug", "netaug", "netaug",
        ];
        let keys: Vec<RunKey> = configs
            .iter()
            .zip(methods)
            .map(|(c, m)| key(m, c))
            .collect();
        let ids = identify(&keys);
        let settings: Vec<&str> = ids.iter().map(|i| i.setting.as_str()).collect();
        assert_eq!(
            settings,
            [
                "run.epochs=3",
                "run.epochs=3",
                "run.epochs=7",
                "run.epochs=3",
                "run.epochs=3",
                "run.epochs=7"
            ]
        );
        let methods: Vec<&str> = ids.iter().map(|i| i.method.as_str()).collect();
        assert_eq!(
            methods,
            [
                "baseline",
                "baseline",
                "baseline",
                "netaug (alpha=1.0)",
                "netaug (alpha=0.5)",
                "netaug"
            ]
        );
    }

    #[test]
    fn runs_that_differ_only_in_seed_have_no_setting() {
        let (a, b) = (flat(&[("run.seed", "0")]), flat(&[("run.seed", "1")]));
        let ids = identify(&[key("baseline", &a), key("baseline", &b)]);
        assert!(
            ids.iter()
                .all(|i| i.setting.is_empty() && i.method == "baseline")
        );
    }

    #[test]
    fn settings_sort_by_number_and_lose_budget_keys() {
        let mut s = vec!["run.epochs=15", "run.epochs=3", "run.epochs=7"];
        s.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(s, ["run.epochs=3", "run.epochs=7", "run.epochs=15"]);
        assert_eq!(
            without_budget("data.train_subset=5000; run.base_lr=0.1; run.epochs=7"),
            "run.base_lr=0.1"
        );
        assert_eq!(
            slug("run.epochs=7; data.train_subset=5000"),
            "run-epochs-7-data-train-subset-5000"
        );
        // Long settings (a long data.root) make names that fit a file system's 255 bytes,
        // and stay apart.
        let long = |end: &str| format!("data.root=/{}{end}; run.epochs=7", "deep/".repeat(80));
        let (a, b) = (slug(&long("a")), slug(&long("b")));
        assert!(a.len() <= SLUG_MAX && b.len() <= SLUG_MAX, "{a}");
        assert_ne!(a, b);
        assert!(a.starts_with("data-root-deep-deep"), "{a}");
        assert_eq!(a, slug(&long("a")), "the same name every time");
    }
}
