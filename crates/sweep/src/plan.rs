//! From a sweep spec to the run table: grid expansion, stable run ids, `@stage`
//! references resolved to run folders, dependency edges and levels. Every run's config is
//! validated here, so a bad sweep is refused before anything runs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use netaug_trainer::RunConfig;
use netaug_trainer::backend::DeviceName;
use netaug_trainer::config::{set, set_value};

use crate::error::SweepError;
use crate::spec::{Axis, SweepSpec, describe, single_key};

/// The key under which a run's seed appears in its assignment.
pub const SEED_KEY: &str = "run.seed";

/// One run of a sweep.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunPlan {
    /// Readable, stable id: stage, varying values, seed, hash of the config.
    pub id: String,
    /// Its stage.
    pub stage: String,
    /// The values that vary within the stage (grid keys, include keys, seed).
    pub assignment: Vec<(String, String)>,
    /// The resolved run config (references replaced by run folders).
    pub config: String,
    /// Runs (indices into [`Plan::runs`]) that must finish first.
    pub deps: Vec<usize>,
    /// 0 for runs without dependencies, else 1 + the deepest dependency's level.
    pub level: usize,
    /// The device of each of its replicas (one for a run without replicas; empty in plans
    /// written before replicas existed, which stands for one `cpu`).
    #[serde(default)]
    pub devices: Vec<DeviceName>,
}

impl RunPlan {
    /// How many GPUs the run trains on.
    pub fn gpus(&self) -> usize {
        self.devices.iter().filter(|d| d.kind.is_gpu()).count()
    }

    /// How many replicas share the CPU cores given to the run (0 for a GPU run).
    pub fn cpu_replicas(&self) -> usize {
        match self.devices.first() {
            None => 1,
            Some(d) if d.kind.is_gpu() => 0,
            Some(_) => self.devices.len(),
        }
    }
}

/// The run table of a sweep.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// Sweep name.
    pub name: String,
    /// Runs in stage order, then grid order.
    pub runs: Vec<RunPlan>,
}

struct Draft {
    stage: usize,
    /// Key -> value of the varying keys (seed included as `run.seed`).
    assignment: Vec<(String, Value)>,
    config: Value,
}

/// Expands `spec` for results in `out`, with `overrides` (`key=value`) on every run.
///
/// An override `STAGE:key=value` applies to the runs of that stage only.
pub fn plan(spec: &SweepSpec, out: &Path, overrides: &[String]) -> Result<Plan, SweepError> {
    for o in overrides {
        if let Some((name, _)) = scoped(o)
            && !spec.stages.iter().any(|s| s.name == name)
        {
            return Err(SweepError::Plan(format!(
                "--set {o}: no stage named {name:?} (stages: {})",
                spec.stages
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut drafts = Vec::new();
    let mut varying: Vec<Vec<String>> = Vec::new();
    for (si, stage) in spec.stages.iter().enumerate() {
        let mut assignments = product(&stage.grid);
        assignments.retain(|a| !stage.exclude.iter().any(|ex| matches(a, ex)));
        assignments.extend(stage.include.iter().cloned());
        // A key varies when its values differ between the points of its axis.
        let mut keys: Vec<String> = Vec::new();
        for axis in &stage.grid {
            for (j, k) in axis.keys.iter().enumerate() {
                if axis.values.iter().any(|p| p[j] != axis.values[0][j]) {
                    keys.push(k.clone());
                }
            }
        }
        for inc in &stage.include {
            for (k, _) in inc {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        if stage.seeds.len() > 1 {
            keys.push(SEED_KEY.into());
        }
        for a in assignments {
            for &seed in &stage.seeds {
                let mut config = stage.base.clone();
                let mut apply = |k: &str, v: Value| {
                    set_value(&mut config, k, v).map_err(|m| SweepError::Invalid {
                        file: spec.name.clone(),
                        key: k.into(),
                        message: m,
                    })
                };
                for (k, v) in &stage.set {
                    apply(k, v.clone())?;
                }
                for (k, v) in &a {
                    apply(k, v.clone())?;
                }
                apply(SEED_KEY, Value::Number(seed.into()))?;
                for o in overrides {
                    match scoped(o) {
                        Some((name, o)) if name == stage.name => set(&mut config, o)?,
                        Some(_) => {}
                        None => set(&mut config, o)?,
                    }
                }
                let mut assignment: Vec<(String, Value)> = a
                    .iter()
                    .filter(|(k, _)| keys.contains(k))
                    .cloned()
                    .collect();
                if keys.iter().any(|k| k == SEED_KEY) {
                    assignment.push((SEED_KEY.into(), Value::Number(seed.into())));
                }
                drafts.push(Draft {
                    stage: si,
                    assignment,
                    config,
                });
            }
        }
        varying.push(keys);
    }

    // Ids from the configs before references are resolved: they do not depend on `out`.
    let multi_stage = spec.stages.len() > 1;
    let ids: Vec<String> = drafts
        .iter()
        .map(|d| {
            run_id(
                &spec.stages[d.stage].name,
                multi_stage,
                &d.assignment,
                &d.config,
            )
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(SweepError::Plan(format!(
                "two runs have the same config ({id}); remove the duplicate grid values"
            )));
        }
    }

    // References: `@stage[/path]` strings.
    let stage_index: BTreeMap<&str, usize> = spec
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut deps = vec![Vec::new(); drafts.len()];
    let mut configs = Vec::with_capacity(drafts.len());
    for (i, d) in drafts.iter().enumerate() {
        let mut config = d.config.clone();
        let mut error = None;
        resolve_refs(&mut config, &mut |reference: &str| {
            let (stage, rest) = reference.split_once('/').unwrap_or((reference, ""));
            let Some(&t) = stage_index.get(stage) else {
                error = Some(format!(
                    "{}: `@{reference}` names no stage (stages: {})",
                    ids[i],
                    spec.stages
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                return None;
            };
            let shared: Vec<&String> = varying[t]
                .iter()
                .filter(|k| d.assignment.iter().any(|(a, _)| a == *k))
                .collect();
            let candidates: Vec<usize> = drafts
                .iter()
                .enumerate()
                .filter(|(_, o)| o.stage == t)
                .filter(|(_, o)| {
                    shared
                        .iter()
                        .all(|k| shown(&o.assignment, k) == shown(&d.assignment, k))
                })
                .map(|(j, _)| j)
                .collect();
            match candidates.as_slice() {
                [j] => {
                    if !deps[i].contains(j) {
                        deps[i].push(*j);
                    }
                    let mut path = out.join("runs").join(&ids[*j]);
                    if !rest.is_empty() {
                        path = path.join(rest);
                    }
                    Some(path.display().to_string())
                }
                [] => {
                    error = Some(format!(
                        "{}: `@{reference}` matches no run of stage {stage}",
                        ids[i]
                    ));
                    None
                }
                many => {
                    error = Some(format!(
                        "{}: `@{reference}` matches {} runs of stage {stage}; it varies {} that \
                         this stage does not",
                        ids[i],
                        many.len(),
                        varying[t].join(", ")
                    ));
                    None
                }
            }
        });
        if let Some(e) = error {
            return Err(SweepError::Plan(e));
        }
        configs.push(config);
    }

    let levels = levels(&deps, &ids)?;
    let mut runs = Vec::with_capacity(drafts.len());
    for (i, d) in drafts.iter().enumerate() {
        let yaml = serde_yaml_ng::to_string(&configs[i]).expect("configs serialize");
        let parsed = RunConfig::parse(&yaml, &format!("{} run {}", spec.name, ids[i]), &[])?;
        runs.push(RunPlan {
            id: ids[i].clone(),
            stage: spec.stages[d.stage].name.clone(),
            assignment: d
                .assignment
                .iter()
                .map(|(k, v)| (k.clone(), describe(v)))
                .collect(),
            config: parsed.to_yaml(),
            deps: deps[i].clone(),
            level: levels[i],
            devices: parsed.replica_devices(),
        });
    }
    Ok(Plan {
        name: spec.name.clone(),
        runs,
    })
}

/// `stage:key=value` -> (stage, `key=value`); a colon after the `=` is part of the value.
fn scoped(o: &str) -> Option<(&str, &str)> {
    let (head, _) = o.split_once('=')?;
    let (stage, _) = head.split_once(':')?;
    Some((stage, &o[stage.len() + 1..]))
}

/// Every combination of the grid's points, keys in grid order.
fn product(grid: &[Axis]) -> Vec<Vec<(String, Value)>> {
    let mut out = vec![Vec::new()];
    for axis in grid {
        out = out
            .into_iter()
            .flat_map(|a: Vec<(String, Value)>| {
                axis.values.iter().map(move |point| {
                    let mut a = a.clone();
                    a.extend(axis.keys.iter().cloned().zip(point.iter().cloned()));
                    a
                })
            })
            .collect();
    }
    out
}

/// Whether assignment `a` has every key of `pattern` with its value.
fn matches(a: &[(String, Value)], pattern: &[(String, Value)]) -> bool {
    pattern.iter().all(|(k, v)| value_of(a, k) == Some(v))
}

/// The value of `key` as the run table shows it: sections compare as on/off (or their key),
/// so a later stage may change a section's settings and still find its run.
fn shown(a: &[(String, Value)], key: &str) -> Option<String> {
    value_of(a, key).map(describe)
}

fn value_of<'a>(a: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    a.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Replaces every `@...` string in `v` by `resolve`'s answer.
fn resolve_refs(v: &mut Value, resolve: &mut dyn FnMut(&str) -> Option<String>) {
    match v {
        Value::String(s) if s.starts_with('@') && s.len() > 1 => {
            if let Some(r) = resolve(&s[1..]) {
                *s = r;
            }
        }
        Value::Mapping(m) => m.values_mut().for_each(|x| resolve_refs(x, resolve)),
        Value::Sequence(xs) => xs.iter_mut().for_each(|x| resolve_refs(x, resolve)),
        _ => {}
    }
}

/// Dependency levels; refuses cycles.
fn levels(deps: &[Vec<usize>], ids: &[String]) -> Result<Vec<usize>, SweepError> {
    const UNSEEN: usize = usize::MAX;
    const VISITING: usize = usize::MAX - 1;
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        level: &mut [usize],
        ids: &[String],
    ) -> Result<usize, SweepError> {
        match level[i] {
            VISITING => {
                return Err(SweepError::Plan(format!(
                    "{} depends on itself through `@` references",
                    ids[i]
                )));
            }
            UNSEEN => {}
            l => return Ok(l),
        }
        level[i] = VISITING;
        let mut l = 0;
        for &d in &deps[i] {
            l = l.max(visit(d, deps, level, ids)? + 1);
        }
        level[i] = l;
        Ok(l)
    }
    let mut level = vec![UNSEEN; deps.len()];
    for i in 0..deps.len() {
        visit(i, deps, &mut level, ids)?;
    }
    Ok(level)
}

/// `stage-value-value-s1-1a2b3c4d`: the varying values, readable, plus a hash of the config.
fn run_id(
    stage: &str,
    multi_stage: bool,
    assignment: &[(String, Value)],
    config: &Value,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if multi_stage {
        parts.push(stage.to_string());
    }
    for (k, v) in assignment {
        let last = k.rsplit('.').next().unwrap_or(k);
        parts.push(match v {
            Value::Null => format!("no-{last}"),
            Value::Mapping(m) => single_key(m).unwrap_or(last).to_string(),
            Value::Sequence(_) => last.to_string(),
            _ if k == SEED_KEY => format!("s{}", describe(v)),
            _ => describe(v),
        });
    }
    let yaml = serde_yaml_ng::to_string(config).unwrap_or_default();
    parts.push(format!("{:08x}", fnv1a(yaml.as_bytes()) as u32));
    let id = parts.join("-");
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// FNV-1a, 64 bits: a stable hash (std's is randomized per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
