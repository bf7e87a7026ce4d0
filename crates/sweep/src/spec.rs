//! The sweep file: a base run config and a grid of dotted keys, optionally in named stages
//! whose runs refer to an earlier stage's outputs.
//!
//! ```yaml
//! name: fashion-mnist
//! base: runs/fashion-mnist-baseline.yaml   # a path (relative to this file) or a mapping
//! grid:
//!   netaug: [null, {aug_expand_list: [1.0, 2.2], aug_width_mult_list: [1.0, 1.8]}]
//! seeds: [0, 1, 2]
//! ```
//!
//! YAML anchors work (`x-...` top-level keys may hold them; `<<: *anchor` merges).
//! Keys joined by commas form one linked axis whose points set them together:
//! `model.name,data.image_size: [[tinymbv2, 144], [mcunet, 176]]`.
//!
//! With `stages:`, each stage has its own `base`, `grid`, `include`, `exclude`, `seeds` and
//! `set`; a string value `@<stage>` or `@<stage>/<path>` is the run folder (or a file in
//! it) of the run of that stage whose grid values agree with this run's on their shared
//! keys.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::error::SweepError;
use crate::halving::Halving;

/// A parsed sweep file.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepSpec {
    /// Sweep name.
    pub name: String,
    /// Stages in file order (one, named `main`, without `stages:`).
    pub stages: Vec<StageSpec>,
}

/// One axis of a grid: a dotted key and its values, or linked keys (`a,b: [[a1, b1], [a2,
/// b2]]`) that change together, such as a model and its resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// The keys it sets.
    pub keys: Vec<String>,
    /// The points of the axis: one value per key.
    pub values: Vec<Vec<Value>>,
}

/// One stage: a base config and its grid.
#[derive(Clone, Debug, PartialEq)]
pub struct StageSpec {
    /// Stage name.
    pub name: String,
    /// The base run config (a YAML mapping).
    pub base: Value,
    /// The axes of the grid; the runs are their cartesian product.
    pub grid: Vec<Axis>,
    /// Extra runs: partial assignments over the base.
    pub include: Vec<Vec<(String, Value)>>,
    /// Assignments matching all the keys of an entry are dropped.
    pub exclude: Vec<Vec<(String, Value)>>,
    /// Seeds (`run.seed`); every assignment runs once per seed.
    pub seeds: Vec<u64>,
    /// Dotted key -> value set on every run of the stage.
    pub set: Vec<(String, Value)>,
    /// Successive halving over the stage's grid, if asked for.
    pub halving: Option<Halving>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    name: String,
    #[serde(default)]
    base: Option<Value>,
    #[serde(default)]
    grid: Option<serde_yaml_ng::Mapping>,
    #[serde(default)]
    include: Vec<serde_yaml_ng::Mapping>,
    #[serde(default)]
    exclude: Vec<serde_yaml_ng::Mapping>,
    #[serde(default)]
    seeds: Option<Vec<u64>>,
    #[serde(default)]
    set: Option<serde_yaml_ng::Mapping>,
    #[serde(default)]
    halving: Option<Value>,
    #[serde(default)]
    stages: Vec<RawStage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: String,
    base: Value,
    #[serde(default)]
    grid: Option<serde_yaml_ng::Mapping>,
    #[serde(default)]
    include: Vec<serde_yaml_ng::Mapping>,
    #[serde(default)]
    exclude: Vec<serde_yaml_ng::Mapping>,
    #[serde(default)]
    seeds: Option<Vec<u64>>,
    #[serde(default)]
    set: Option<serde_yaml_ng::Mapping>,
    #[serde(default)]
    halving: Option<Value>,
}

impl SweepSpec {
    /// Reads a sweep file; `base` paths are relative to its folder.
    pub fn load(path: &Path) -> Result<Self, SweepError> {
        // As for run configs: a sweep file the size of a dataset is refused unread.
        if let Ok(m) = std::fs::metadata(path)
            && m.len() > netaug_trainer::config::MAX_CONFIG_BYTES
        {
            return Err(SweepError::Invalid {
                file: path.display().to_string(),
                key: ".".into(),
                message: format!(
                    "{} bytes; a sweep file is at most {} (is this a sweep?)",
                    m.len(),
                    netaug_trainer::config::MAX_CONFIG_BYTES
                ),
            });
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| SweepError::Unreadable(netaug_fs::FileError::new(path, e)))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(text, &path.display().to_string(), dir)
    }

    /// Parses sweep YAML `text` (named `file` in errors), resolving base paths in `dir`.
    pub fn parse(text: &str, file: &str, dir: &Path) -> Result<Self, SweepError> {
        let bad = |key: &str, message: String| SweepError::Invalid {
            file: file.into(),
            key: key.into(),
            message,
        };
        let mut value: Value =
            serde_yaml_ng::from_str(text).map_err(|e| bad("(file)", e.to_string()))?;
        // `<<: *anchor` merges, and `x-...` keys that only hold anchors for reuse.
        value
            .apply_merge()
            .map_err(|e| bad("(file)", e.to_string()))?;
        if let Value::Mapping(m) = &mut value {
            m.retain(|k, _| !k.as_str().is_some_and(|k| k.starts_with("x-")));
        }
        let raw: RawSweep = serde_path_to_error::deserialize(value)
            .map_err(|e| bad(&e.path().to_string(), e.inner().to_string()))?;
        let stages = if raw.stages.is_empty() {
            let base = raw
                .base
                .ok_or_else(|| bad("base", "missing (a run config path or mapping)".into()))?;
            vec![stage(
                "main",
                RawStage {
                    name: "main".into(),
                    base,
                    grid: raw.grid,
                    include: raw.include,
                    exclude: raw.exclude,
                    seeds: raw.seeds,
                    set: raw.set,
                    halving: raw.halving,
                },
                file,
                dir,
                "",
            )?]
        } else {
            if raw.base.is_some()
                || raw.grid.is_some()
                || raw.seeds.is_some()
                || raw.halving.is_some()
            {
                return Err(bad(
                    "stages",
                    "with stages, base/grid/seeds/halving belong to each stage".into(),
                ));
            }
            let mut out = Vec::new();
            for (i, s) in raw.stages.into_iter().enumerate() {
                let prefix = format!("stages[{i}].");
                if out.iter().any(|o: &StageSpec| o.name == s.name) {
                    return Err(bad(
                        &format!("{prefix}name"),
                        format!("duplicate stage `{}`", s.name),
                    ));
                }
                let name = s.name.clone();
                out.push(stage(&name, s, file, dir, &prefix)?);
            }
            out
        };
        // Names go into folder names (results/<name>, run ids) and Slurm job names and
        // scripts: no separators, spaces or newlines.
        if !plain_name(&raw.name, &['-', '_', '.']) || raw.name.starts_with('.') {
            return Err(bad(
                "name",
                format!(
                    "{:?}: use letters, digits, -, _ and . (not first)",
                    raw.name
                ),
            ));
        }
        for s in &stages {
            if !plain_name(&s.name, &['-', '_']) {
                return Err(bad(
                    "stages",
                    format!("stage name `{}`: use letters, digits, - and _", s.name),
                ));
            }
        }
        Ok(Self {
            name: raw.name,
            stages,
        })
    }
}

/// Whether `name` is not empty and holds only ASCII letters, digits and `extra`.
fn plain_name(name: &str, extra: &[char]) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

fn stage(
    name: &str,
    raw: RawStage,
    file: &str,
    dir: &Path,
    prefix: &str,
) -> Result<StageSpec, SweepError> {
    let RawStage {
        base,
        grid,
        include,
        exclude,
        seeds,
        set,
        halving,
        ..
    } = raw;
    let bad = |key: String, message: String| SweepError::Invalid {
        file: file.into(),
        key,
        message,
    };
    let base = match base {
        Value::String(p) => {
            let path: PathBuf = dir.join(&p);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad(format!("{prefix}base"), format!("{}: {e}", path.display())))?;
            // A byte-order mark reads as without, as in run configs and sweep files.
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            serde_yaml_ng::from_str(text)
                .map_err(|e| bad(format!("{prefix}base"), format!("{}: {e}", path.display())))?
        }
        v @ Value::Mapping(_) => v,
        _ => {
            return Err(bad(
                format!("{prefix}base"),
                "expected a run config path or mapping".into(),
            ));
        }
    };
    let keyed =
        |m: serde_yaml_ng::Mapping, what: &str| -> Result<Vec<(String, Value)>, SweepError> {
            m.into_iter()
                .map(|(k, v)| match k {
                    Value::String(k) if !k.is_empty() => Ok((k, v)),
                    other => Err(bad(
                        format!("{prefix}{what}"),
                        format!("key {other:?} is not a dotted key"),
                    )),
                })
                .collect()
        };
    let mut grid_out = Vec::new();
    for (k, v) in keyed(grid.unwrap_or_default(), "grid")? {
        let Value::Sequence(points) = v else {
            return Err(bad(
                format!("{prefix}grid.{k}"),
                "expected a non-empty list of values".into(),
            ));
        };
        if points.is_empty() {
            return Err(bad(
                format!("{prefix}grid.{k}"),
                "expected a non-empty list of values".into(),
            ));
        }
        let keys: Vec<String> = k.split(',').map(|k| k.trim().to_string()).collect();
        if keys.iter().any(String::is_empty) {
            return Err(bad(format!("{prefix}grid.{k}"), "an empty key".into()));
        }
        let values = if keys.len() == 1 {
            points.into_iter().map(|v| vec![v]).collect()
        } else {
            points
                .into_iter()
                .map(|p| match p {
                    Value::Sequence(t) if t.len() == keys.len() => Ok(t),
                    other => Err(bad(
                        format!("{prefix}grid.{k}"),
                        format!(
                            "linked keys: expected lists of {} values, got {}",
                            keys.len(),
                            describe(&other)
                        ),
                    )),
                })
                .collect::<Result<_, _>>()?
        };
        grid_out.push(Axis { keys, values });
    }
    let include = include
        .into_iter()
        .map(|m| keyed(m, "include"))
        .collect::<Result<_, _>>()?;
    let exclude = exclude
        .into_iter()
        .map(|m| keyed(m, "exclude"))
        .collect::<Result<_, _>>()?;
    let seeds = seeds.unwrap_or_else(|| vec![seed_of(&base)]);
    if seeds.is_empty() {
        return Err(bad(
            format!("{prefix}seeds"),
            "expected at least one seed".into(),
        ));
    }
    let halving =
        halving_section(halving).map_err(|(key, m)| bad(format!("{prefix}halving{key}"), m))?;
    Ok(StageSpec {
        name: name.to_string(),
        base,
        grid: grid_out,
        include,
        exclude,
        seeds,
        set: keyed(set.unwrap_or_default(), "set")?,
        halving,
    })
}

/// A stage's `halving:` section, if it has one; errors are (`.key` or nothing, message).
fn halving_section(value: Option<Value>) -> Result<Option<Halving>, (String, String)> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => crate::halving::parse(v).map(Some).map_err(|(key, m)| {
            let key = if key == "." {
                String::new()
            } else {
                format!(".{key}")
            };
            (key, m)
        }),
    }
}

/// `run.seed` of a base config (0 when absent).
fn seed_of(base: &Value) -> u64 {
    base.get("run")
        .and_then(|r| r.get("seed"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// A grid value in a run table: scalars as written, `null` as `off`, a section as `on`, or
/// as its key when it has one (`{mixup: 0.2}` is `mixup`), a list as `[a, b]`.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "off".into(),
        Value::Mapping(m) => match single_key(m) {
            Some(k) => k.to_string(),
            None => "on".into(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(describe).collect();
            format!("[{}]", items.join(", "))
        }
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim().replace('\n', " "))
            .unwrap_or_default(),
    }
}

/// The key of a one-key mapping.
pub fn single_key(m: &serde_yaml_ng::Mapping) -> Option<&str> {
    match m.len() {
        1 => m.keys().next().and_then(Value::as_str),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_values_read_as_the_user_wrote_them() {
        let v = |text: &str| serde_yaml_ng::from_str::<Value>(text).unwrap();
        assert_eq!(describe(&v("null")), "off");
        assert_eq!(describe(&v("{mixup: 0.2}")), "mixup");
        assert_eq!(describe(&v("{a: 1, b: 2}")), "on");
        assert_eq!(describe(&v("[320, 352, 384]")), "[320, 352, 384]");
        assert_eq!(describe(&v("[[1, 2], x]")), "[[1, 2], x]");
        assert_eq!(describe(&v("0.35")), "0.35");
    }
}
