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
use crate::halving::{Halving, Trial};
use crate::spec::{Axis, StageSpec, SweepSpec, describe, single_key};

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
    /// Its place in its stage's successive halving, if the stage has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
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
    /// Stage name -> its successive halving, for the stages that have one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub halving: BTreeMap<String, Halving>,
}

impl Plan {
    /// Refuses `jobs` runs at once whose CPU replicas would want more than `cores` (each
    /// replica, as each job, wants a core of its own).
    pub fn check_cores(&self, jobs: usize, cores: usize) -> Result<(), SweepError> {
        let Some(widest) = self.runs.iter().max_by_key(|r| r.cpu_replicas()) else {
            return Ok(());
        };
        let replicas = widest.cpu_replicas();
        // Saturating: a huge --jobs must not wrap around to a small product.
        let wanted = jobs.saturating_mul(replicas);
        if replicas > 1 && wanted > cores {
            return Err(SweepError::Plan(format!(
                "--jobs {jobs} x {replicas} replicas (run {}) needs {wanted} cores, this \
                 machine has {cores}; lower --jobs or the replicas, or pass --oversubscribe",
                widest.id,
            )));
        }
        Ok(())
    }

    /// Refuses a plan with a run on a device this binary was built without: every run
    /// would start and fail (or a cluster would queue jobs for GPUs it cannot use).
    pub fn check_devices(&self) -> Result<(), SweepError> {
        for r in &self.runs {
            for d in &r.devices {
                netaug_trainer::backend::check_compiled(d)
                    .map_err(|e| SweepError::Plan(format!("run {}: {e}", r.id)))?;
            }
        }
        Ok(())
    }

    /// The run table: index, id, stage, values and dependencies, one run per line.
    pub fn table(&self) -> String {
        let mut lines = vec![format!("sweep {}: {} runs", self.name, self.runs.len())];
        for (i, r) in self.runs.iter().enumerate() {
            let values: Vec<String> = r
                .assignment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let deps: Vec<&str> = r.deps.iter().map(|d| self.runs[*d].id.as_str()).collect();
            let after = if deps.is_empty() {
                String::new()
            } else {
                format!("  after {}", deps.join(", "))
            };
            lines.push(format!(
                "{i:>4}  {:<40} stage {:<10} {}{after}",
                r.id,
                r.stage,
                values.join(" ")
            ));
        }
        lines.join("\n")
    }
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
    check_scopes(spec, overrides)?;
    let mut drafts = Vec::new();
    let mut varying = Vec::new();
    for (si, stage) in spec.stages.iter().enumerate() {
        let keys = varying_keys(stage);
        drafts.extend(stage_drafts(spec, si, &keys, overrides)?);
        varying.push(keys);
    }
    let ids = run_ids(spec, &drafts)?;
    let (configs, deps) = resolve_references(spec, out, &drafts, &ids, &varying)?;
    let levels = levels(&deps, &ids)?;
    let mut runs = Vec::with_capacity(drafts.len());
    for (i, (d, config)) in drafts.iter().zip(&configs).enumerate() {
        let yaml = serde_yaml_ng::to_string(config).expect("configs serialize");
        let parsed = RunConfig::parse(&yaml, &format!("{} run {}", spec.name, ids[i]), &[])?;
        let stage = &spec.stages[d.stage];
        let trial = stage
            .halving
            .as_ref()
            .map(|h| trial(stage, h, &d.assignment, &parsed))
            .transpose()?;
        runs.push(RunPlan {
            trial,
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
    check_halving(spec, &runs, &varying)?;
    Ok(Plan {
        name: spec.name.clone(),
        runs,
        halving: spec
            .stages
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.halving.clone()?)))
            .collect(),
    })
}

/// A run's trial in its stage's halving: its group (the stage and its `within` values)
/// and setting (the group and its other values but the seed); refused when a rung is not
/// below its epoch count.
fn trial(
    stage: &StageSpec,
    halving: &Halving,
    assignment: &[(String, Value)],
    config: &RunConfig,
) -> Result<Trial, SweepError> {
    let epochs = config.run.warmup_epochs + config.run.epochs;
    let last = *halving.rungs.last().expect("parsed halving has rungs");
    if last >= epochs {
        return Err(SweepError::Plan(format!(
            "stage {}: halving.rungs: rung {last} is not below the {epochs} epochs (warm-up \
             included) of a run; a rung must leave epochs to promote into",
            stage.name
        )));
    }
    let value = |k: &str| {
        assignment
            .iter()
            .find(|(key, _)| key == k)
            .map_or_else(|| "-".to_string(), |(_, v)| describe(v))
    };
    let mut group = vec![stage.name.clone()];
    group.extend(halving.within.iter().map(|k| format!("{k}={}", value(k))));
    let mut setting = group.clone();
    setting.extend(
        assignment
            .iter()
            .filter(|(k, _)| k != SEED_KEY && !halving.within.contains(k))
            .map(|(k, v)| format!("{k}={}", describe(v))),
    );
    Ok(Trial {
        group: group.join(" "),
        setting: setting.join(" "),
        epochs,
    })
}

/// Refuses a `within` key the stage does not vary, and a run that refers to a run of a
/// halving stage (which may be stopped at a rung, never done).
fn check_halving(
    spec: &SweepSpec,
    runs: &[RunPlan],
    varying: &[Vec<String>],
) -> Result<(), SweepError> {
    for (stage, keys) in spec.stages.iter().zip(varying) {
        let Some(h) = &stage.halving else { continue };
        if let Some(k) = h
            .within
            .iter()
            .find(|k| *k == SEED_KEY || !keys.contains(k))
        {
            return Err(SweepError::Plan(format!(
                "stage {}: halving.within: {k:?} is not a key the stage's grid varies (it \
                 varies: {})",
                stage.name,
                keys.iter()
                    .filter(|k| *k != SEED_KEY)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    for r in runs {
        if let Some(&d) = r.deps.iter().find(|&&d| runs[d].trial.is_some()) {
            return Err(SweepError::Plan(format!(
                "run {} refers to run {} of stage {}, whose halving may stop it before it \
                 finishes; refer to a stage without halving",
                r.id, runs[d].id, runs[d].stage
            )));
        }
    }
    Ok(())
}

/// The stage names of `spec`, for messages.
fn stage_names(spec: &SweepSpec) -> String {
    let names: Vec<&str> = spec.stages.iter().map(|s| s.name.as_str()).collect();
    names.join(", ")
}

/// Refuses a `STAGE:key=value` override whose stage does not exist.
fn check_scopes(spec: &SweepSpec, overrides: &[String]) -> Result<(), SweepError> {
    for o in overrides {
        if let Some((name, _)) = scoped(o)
            && !spec.stages.iter().any(|s| s.name == name)
        {
            return Err(SweepError::Plan(format!(
                "--set {o}: no stage named {name:?} (stages: {})",
                stage_names(spec)
            )));
        }
    }
    Ok(())
}

/// The keys that tell a stage's runs apart: a grid key whose values differ between the
/// points of its axis, an `include` key, and the seed when there are several.
fn varying_keys(stage: &StageSpec) -> Vec<String> {
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
    keys
}

/// The runs of stage `si`: each grid point (less `exclude`, plus `include`) for each seed,
/// with the stage's `set`, the point, the seed and the overrides applied in that order.
fn stage_drafts(
    spec: &SweepSpec,
    si: usize,
    keys: &[String],
    overrides: &[String],
) -> Result<Vec<Draft>, SweepError> {
    let stage = &spec.stages[si];
    let mut assignments = product(&stage.grid);
    assignments.retain(|a| !stage.exclude.iter().any(|ex| matches(a, ex)));
    assignments.extend(stage.include.iter().cloned());
    let mut drafts = Vec::new();
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
            for (k, v) in stage.set.iter().chain(&a) {
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
    Ok(drafts)
}

/// Each run's id, from its config before references are resolved (so it does not depend
/// on `out`); two runs with one id are refused.
fn run_ids(spec: &SweepSpec, drafts: &[Draft]) -> Result<Vec<String>, SweepError> {
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
    Ok(ids)
}

/// Each run's config with its `@stage[/path]` references replaced by the folder of the
/// one run of that stage that shares its values, and the runs it thereby depends on.
fn resolve_references(
    spec: &SweepSpec,
    out: &Path,
    drafts: &[Draft],
    ids: &[String],
    varying: &[Vec<String>],
) -> Result<(Vec<Value>, Vec<Vec<usize>>), SweepError> {
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
        resolve_refs(&mut config, &mut |reference: &str| {
            let (stage, rest) = reference.split_once('/').unwrap_or((reference, ""));
            let Some(&t) = stage_index.get(stage) else {
                return Err(format!(
                    "{}: `@{reference}` names no stage (stages: {})",
                    ids[i],
                    stage_names(spec)
                ));
            };
            let j = referenced_run(drafts, d, (t, stage), &varying[t])
                .map_err(|why| format!("{}: `@{reference}` {why}", ids[i]))?;
            if !deps[i].contains(&j) {
                deps[i].push(j);
            }
            let path = out.join("runs").join(&ids[j]);
            let path = if rest.is_empty() {
                path
            } else {
                path.join(rest)
            };
            Ok(path.display().to_string())
        })
        .map_err(SweepError::Plan)?;
        configs.push(config);
    }
    Ok((configs, deps))
}

/// The one run of stage `t` (named `stage`) whose values of the keys that `t` varies equal `d`'s.
fn referenced_run(
    drafts: &[Draft],
    d: &Draft,
    (t, stage): (usize, &str),
    varying: &[String],
) -> Result<usize, String> {
    let shared: Vec<&String> = varying
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
        [j] => Ok(*j),
        [] => Err(format!("matches no run of stage {}", stage)),
        many => Err(format!(
            "matches {} runs of stage {}; it varies {} that this stage does not",
            many.len(),
            stage,
            varying.join(", ")
        )),
    }
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

/// Replaces every `@reference` string in `v` by what `resolve` makes of it; the first
/// error ends the walk.
fn resolve_refs(
    v: &mut Value,
    resolve: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<(), String> {
    match v {
        Value::String(s) if s.starts_with('@') && s.len() > 1 => {
            *s = resolve(&s[1..])?;
        }
        Value::Mapping(m) => {
            for x in m.values_mut() {
                resolve_refs(x, resolve)?;
            }
        }
        Value::Sequence(xs) => {
            for x in xs {
                resolve_refs(x, resolve)?;
            }
        }
        _ => {}
    }
    Ok(())
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
