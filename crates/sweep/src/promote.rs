//! Promotions of successive halving: the ledger of a sweep folder (`halving.json`: how far
//! each setting may train, which rungs of each group are decided) and the decisions, made
//! from what the run folders show. Every decision is written before anything acts on it,
//! so a sweep killed at any moment and started again promotes no setting twice and
//! retrains no rung.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use netaug_trainer::metrics::read_summary;
use netaug_trainer::{Status, Summary};

use crate::error::SweepError;
use crate::halving::{Halving, Mode};
use crate::plan::Plan;
use crate::workdir;

/// The ledger's file in the sweep folder.
pub const HALVING_FILE: &str = "halving.json";

/// What has been decided, by setting and group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Setting -> how many rungs it has been promoted past (absent: none).
    pub promoted: BTreeMap<String, usize>,
    /// Group -> how many of its rungs are decided for good.
    pub decided: BTreeMap<String, usize>,
}

impl Ledger {
    /// The ledger of sweep folder `out` (empty when there is none yet).
    pub fn load(out: &Path) -> Result<Self, SweepError> {
        let path = out.join(HALVING_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| SweepError::file(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(SweepError::file(&path, e)),
        }
    }

    /// Writes it whole (a kill leaves the old or the new ledger, never a torn one).
    pub fn save(&self, out: &Path) -> Result<(), SweepError> {
        let path = out.join(HALVING_FILE);
        let json = serde_json::to_string_pretty(self).expect("ledgers serialize");
        netaug_fs::write_file(&path, json.as_bytes()).map_err(|e| SweepError::file(&path, e))
    }

    fn level(&self, setting: &str) -> usize {
        self.promoted.get(setting).copied().unwrap_or(0)
    }
}

/// What a trial run is to do next.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Train, pausing after this many epochs (`None`: to the end).
    Train(Option<usize>),
    /// Paused at a rung that is not decided yet.
    Paused,
    /// Stopped for good, and why.
    Stopped(String),
    /// Finished every epoch.
    Done,
    /// Failed (its summary says why).
    Failed(String),
}

/// What a run folder shows of a trial.
#[derive(Clone, Debug, Default)]
struct Seen {
    /// Epochs in its metrics file.
    epochs: usize,
    /// Epoch -> the halving metric.
    scores: BTreeMap<usize, f64>,
    /// Its summary, if any.
    summary: Option<Summary>,
    /// Chance top-1 for its classes, if its checkpoint names them.
    chance: Option<f64>,
}

impl Seen {
    fn read(out: &Path, id: &str, metric: &str) -> Self {
        let dir = workdir::run_dir(out, id);
        let mut seen = Self {
            summary: read_summary(&dir.join("summary.json")).ok().flatten(),
            ..Self::default()
        };
        if let Ok(text) = std::fs::read_to_string(dir.join("metrics.jsonl")) {
            for line in text.lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue; // a torn last line: the run resumes before it
                };
                let Some(epoch) = v.get("epoch").and_then(|e| e.as_u64()) else {
                    continue;
                };
                seen.epochs = seen.epochs.max(epoch as usize);
                if let Some(x) = v.get(metric).and_then(|x| x.as_f64()) {
                    seen.scores.insert(epoch as usize, x);
                }
            }
        }
        let model = dir.join("checkpoints").join("latest").join("model.json");
        seen.chance = std::fs::read_to_string(model)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("spec")?.get("classes")?.as_u64())
            .filter(|&c| c > 0)
            .map(|c| 100.0 / c as f64);
        seen
    }

    fn status(&self) -> Option<Status> {
        self.summary.as_ref().map(|s| s.status)
    }
}

/// A setting's standing at one rung.
#[derive(Clone, Debug, PartialEq)]
enum Standing {
    /// Not every seed has reached the rung yet.
    Training,
    /// Every seed reached it: their mean score.
    Reached(f64),
    /// A seed failed, or the mean sits at the floor: stopped at once.
    Out(String),
}

/// The settings of `taking` that reached the rung, best first; a tie goes to the setting
/// that sorts first, so the order runs finish in never decides.
fn ranked<'s>(h: &Halving, taking: &[(&'s String, Standing)]) -> Vec<&'s String> {
    let mut scored: Vec<(&String, f64)> = taking
        .iter()
        .filter_map(|(s, st)| match st {
            Standing::Reached(x) => Some((*s, *x)),
            _ => None,
        })
        .collect();
    scored.sort_by(|a, b| {
        if h.better(a.1, b.1) {
            std::cmp::Ordering::Less
        } else if h.better(b.1, a.1) {
            std::cmp::Ordering::Greater
        } else {
            a.0.cmp(b.0)
        }
    });
    scored.into_iter().map(|(s, _)| s).collect()
}

/// The halving of one sweep folder: its plan, its ledger, what its runs show.
pub struct Promotions<'a> {
    plan: &'a Plan,
    out: &'a Path,
    /// The decisions so far.
    pub ledger: Ledger,
}

impl<'a> Promotions<'a> {
    /// The halving of `plan` in `out`, or `None` when no stage of it halves.
    pub fn open(plan: &'a Plan, out: &'a Path) -> Result<Option<Self>, SweepError> {
        if plan.halving.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            plan,
            out,
            ledger: Ledger::load(out)?,
        }))
    }

    /// Reads every trial's progress, makes the promotions that are due (written to the
    /// ledger before they count), marks the summaries of stopped trials, and returns what
    /// each run of the plan is to do (`None` for runs of stages without halving).
    pub fn settle(&mut self) -> Result<Vec<Option<Verdict>>, SweepError> {
        let seen: Vec<Option<Seen>> = self
            .plan
            .runs
            .iter()
            .map(|r| {
                let h = self.plan.halving.get(&r.stage)?;
                r.trial.as_ref()?;
                Some(Seen::read(self.out, &r.id, &h.metric))
            })
            .collect();
        let before = self.ledger.clone();
        for (group, settings) in self.groups() {
            self.decide(&group, &settings, &seen);
        }
        if self.ledger != before {
            self.ledger.save(self.out)?;
        }
        let verdicts = self.verdicts(&seen);
        for (i, v) in verdicts.iter().enumerate() {
            if let Some(Verdict::Stopped(why)) = v {
                self.mark_stopped(i, &seen[i], why)?;
            }
        }
        Ok(verdicts)
    }

    /// Group -> setting -> its runs (the seeds), in plan order.
    fn groups(&self) -> BTreeMap<String, BTreeMap<String, Vec<usize>>> {
        let mut groups: BTreeMap<String, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
        for (i, r) in self.plan.runs.iter().enumerate() {
            if let Some(t) = &r.trial {
                groups
                    .entry(t.group.clone())
                    .or_default()
                    .entry(t.setting.clone())
                    .or_default()
                    .push(i);
            }
        }
        groups
    }

    fn halving_of(&self, run: usize) -> &Halving {
        &self.plan.halving[&self.plan.runs[run].stage]
    }

    /// How `runs` (one setting's seeds) stand at rung `k`.
    fn standing(&self, runs: &[usize], k: usize, seen: &[Option<Seen>]) -> Standing {
        let h = self.halving_of(runs[0]);
        let epoch = h.rungs[k];
        let mut scores = Vec::new();
        for &i in runs {
            let s = seen[i].as_ref().expect("trials are seen");
            if s.status() == Some(Status::Failed) {
                let why = s.summary.as_ref().and_then(|s| s.error.clone());
                return Standing::Out(format!(
                    "seed run {} failed: {}",
                    self.plan.runs[i].id,
                    why.unwrap_or_default()
                ));
            }
            match s.scores.get(&epoch) {
                Some(x) if s.epochs >= epoch => scores.push((*x, s.chance)),
                _ => return Standing::Training,
            }
        }
        let mean = scores.iter().map(|(x, _)| x).sum::<f64>() / scores.len() as f64;
        let floor = h.floor.or_else(|| {
            let chance = scores.iter().find_map(|(_, c)| *c)?;
            h.metric.contains("top1").then_some(chance + 1.0)
        });
        if !mean.is_finite() {
            return Standing::Out(format!("{} is not finite at epoch {epoch}", h.metric));
        }
        match floor {
            Some(f) if !h.better(mean, f) => Standing::Out(format!(
                "{} {mean:.2} at epoch {epoch}, at or below the floor {f:.2}",
                h.metric
            )),
            _ => Standing::Reached(mean),
        }
    }

    /// Makes the promotions of one group that are due, rung by rung.
    fn decide(
        &mut self,
        group: &str,
        settings: &BTreeMap<String, Vec<usize>>,
        seen: &[Option<Seen>],
    ) {
        let Some(first) = settings.values().next() else {
            return;
        };
        let h = self.halving_of(first[0]).clone();
        // Whether a lower rung is still open: a rung is decided only after the ones below
        // it, since a later decision below may still promote settings into it.
        let mut open = false;
        for k in 0..h.rungs.len() {
            let decided = self.ledger.decided.get(group).copied().unwrap_or(0);
            let taking: Vec<(&String, Standing)> = settings
                .iter()
                .filter(|(s, _)| self.ledger.level(s) >= k)
                .map(|(s, runs)| (s, self.standing(runs, k, seen)))
                .collect();
            let ranked = ranked(&h, &taking);
            let arrived = taking
                .iter()
                .filter(|(_, st)| !matches!(st, Standing::Training))
                .count();
            let last = k >= decided && !open && arrived == taking.len();
            let promote = if k < decided {
                0
            } else if last {
                h.promoted_of(taking.len())
            } else if h.mode == Mode::Async {
                // Of the settings that reached the rung so far (or are out), the best
                // `keep` fraction, rounded down: no promotion until enough have come in.
                (arrived as f64 * h.keep + 1e-9).floor() as usize
            } else {
                0
            };
            for s in ranked.iter().take(promote) {
                let level = self.ledger.promoted.entry((*s).clone()).or_insert(0);
                if *level <= k {
                    *level = k + 1;
                }
            }
            if last {
                self.ledger.decided.insert(group.to_string(), k + 1);
            } else if k >= decided {
                open = true;
                if h.mode == Mode::Sync {
                    return;
                }
            }
        }
    }

    /// What each run is to do, from the ledger and what its folder shows.
    fn verdicts(&self, seen: &[Option<Seen>]) -> Vec<Option<Verdict>> {
        let groups = self.groups();
        let mut out: Vec<Option<Verdict>> = vec![None; self.plan.runs.len()];
        for (group, settings) in &groups {
            let decided = self.ledger.decided.get(group).copied().unwrap_or(0);
            for (setting, runs) in settings {
                let h = self.halving_of(runs[0]);
                let level = self.ledger.level(setting);
                // Out at a rung it reached: every seed stops (a failed one stays failed).
                let out_why = (0..h.rungs.len().min(level + 1)).find_map(|k| {
                    match self.standing(runs, k, seen) {
                        Standing::Out(why) => Some(why),
                        _ => None,
                    }
                });
                for &i in runs {
                    let s = seen[i].as_ref().expect("trials are seen");
                    let epochs = self.plan.runs[i].trial.as_ref().map_or(0, |t| t.epochs);
                    out[i] = Some(match s.status() {
                        Some(Status::Done) => Verdict::Done,
                        Some(Status::Failed) => Verdict::Failed(
                            s.summary
                                .as_ref()
                                .and_then(|s| s.error.clone())
                                .unwrap_or_default(),
                        ),
                        _ => match (&out_why, h.rungs.get(level)) {
                            (Some(why), _) => Verdict::Stopped(why.clone()),
                            (None, Some(&rung)) if s.epochs >= rung && decided > level => {
                                Verdict::Stopped(format!("not promoted at epoch {rung}"))
                            }
                            (None, Some(&rung)) if s.epochs >= rung => Verdict::Paused,
                            (None, Some(&rung)) => Verdict::Train(Some(rung)),
                            (None, None) if s.epochs >= epochs => Verdict::Done,
                            (None, None) => Verdict::Train(None),
                        },
                    });
                }
            }
        }
        out
    }

    /// Gives the summary of stopped run `i` the status `stopped` and the reason.
    fn mark_stopped(&self, i: usize, seen: &Option<Seen>, why: &str) -> Result<(), SweepError> {
        let Some(mut summary) = seen.as_ref().and_then(|s| s.summary.clone()) else {
            return Ok(()); // never started: no folder to mark
        };
        if summary.status == Status::Stopped {
            return Ok(());
        }
        summary.status = Status::Stopped;
        summary.error = Some(format!("stopped by successive halving: {why}"));
        let path = workdir::run_dir(self.out, &self.plan.runs[i].id).join("summary.json");
        let json = serde_json::to_string_pretty(&summary).expect("summaries serialize");
        netaug_fs::write_file(&path, json.as_bytes()).map_err(|e| SweepError::file(&path, e))
    }
}

/// The epoch run `index` of `plan` is to pause at, from the ledger in `out` as it stands
/// (read only: what a Slurm task trains to); `None` for a run without halving or one
/// promoted past every rung.
pub fn target(plan: &Plan, out: &Path, index: usize) -> Result<Option<usize>, SweepError> {
    let run = &plan.runs[index];
    let (Some(trial), Some(h)) = (&run.trial, plan.halving.get(&run.stage)) else {
        return Ok(None);
    };
    let level = Ledger::load(out)?.level(&trial.setting);
    Ok(h.rungs.get(level).copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::halving::Trial;
    use crate::plan::RunPlan;

    /// A plan of one group: `settings` rates x 2 seeds, 4 epochs, paused at epochs 1, 2.
    fn plan(settings: &[&str], mode: Mode) -> Plan {
        let mut runs = Vec::new();
        for s in settings {
            for seed in 0..2 {
                runs.push(RunPlan {
                    id: format!("{s}-s{seed}"),
                    stage: "main".into(),
                    assignment: vec![],
                    config: String::new(),
                    deps: vec![],
                    level: 0,
                    devices: vec![],
                    trial: Some(Trial {
                        group: "main".into(),
                        setting: format!("main lr={s}"),
                        epochs: 4,
                    }),
                });
            }
        }
        let halving = Halving {
            metric: "val_top1".into(),
            rungs: vec![1, 2],
            keep: 0.5,
            within: vec![],
            mode,
            floor: Some(15.0),
        };
        Plan {
            name: "t".into(),
            runs,
            halving: [("main".to_string(), halving)].into(),
        }
    }

    /// Writes run `id`'s metrics for epochs 1..=scores.len() and a summary of `status`.
    fn ran(out: &Path, id: &str, scores: &[f64], status: &str) {
        let dir = workdir::run_dir(out, id);
        std::fs::create_dir_all(&dir).unwrap();
        let lines: Vec<String> = scores
            .iter()
            .enumerate()
            .map(|(e, x)| format!("{{\"epoch\":{},\"val_top1\":{x}}}", e + 1))
            .collect();
        std::fs::write(dir.join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
        let summary = format!(
            r#"{{"run_id":"{id}","dataset":"d","model":"m","resolution":8,"method":"baseline",
            "epochs":4,"seed":0,"device":"cpu","params":1,"macs":1,"best_epoch":1,
            "wall_seconds":1.0,"images_per_second":1.0,"status":"{status}","error":null}}"#
        );
        std::fs::write(dir.join("summary.json"), summary).unwrap();
    }

    fn verdict(v: &[Option<Verdict>], p: &Plan, id: &str) -> Verdict {
        let i = p.runs.iter().position(|r| r.id == id).unwrap();
        v[i].clone().unwrap()
    }

    #[test]
    fn a_synchronous_rung_waits_for_every_setting_then_promotes_the_best_half() {
        let out = tempfile::tempdir().unwrap();
        let p = plan(&["a", "b", "c", "d"], Mode::Sync);
        let mut h = Promotions::open(&p, out.path()).unwrap().unwrap();
        let v = h.settle().unwrap();
        assert!(
            v.iter().all(|v| *v == Some(Verdict::Train(Some(1)))),
            "{v:?}"
        );
        // Three settings in, the fourth still training: nothing promoted yet.
        for (s, x) in [("a", 60.0), ("b", 70.0), ("c", 65.0)] {
            ran(out.path(), &format!("{s}-s0"), &[x], "paused");
            ran(out.path(), &format!("{s}-s1"), &[x + 1.0], "paused");
        }
        ran(out.path(), "d-s0", &[80.0], "paused");
        let v = h.settle().unwrap();
        assert_eq!(verdict(&v, &p, "b-s0"), Verdict::Paused);
        assert_eq!(verdict(&v, &p, "d-s1"), Verdict::Train(Some(1)));
        assert!(h.ledger.promoted.is_empty());
        // The last seed in: the best two settings by their seeds' mean go on.
        ran(out.path(), "d-s1", &[10.0], "paused"); // mean 45: below a, b, c
        let v = h.settle().unwrap();
        assert_eq!(verdict(&v, &p, "b-s1"), Verdict::Train(Some(2)));
        assert_eq!(verdict(&v, &p, "c-s0"), Verdict::Train(Some(2)));
        assert!(matches!(verdict(&v, &p, "a-s0"), Verdict::Stopped(_)));
        assert!(matches!(verdict(&v, &p, "d-s1"), Verdict::Stopped(_)));
        let stopped = read_summary(&workdir::run_dir(out.path(), "a-s0").join("summary.json"));
        assert_eq!(stopped.unwrap().unwrap().status, Status::Stopped);
        // Settled again, nothing changes: no setting is promoted twice.
        let ledger = h.ledger.clone();
        assert_eq!(h.settle().unwrap(), v);
        assert_eq!(h.ledger, ledger);
        assert_eq!(Ledger::load(out.path()).unwrap(), ledger);
        // Rung 2: of b and c, one goes to the end.
        for (id, xs) in [("b-s0", [70.0, 71.0]), ("b-s1", [71.0, 72.0])] {
            ran(out.path(), id, &xs, "paused");
        }
        for (id, xs) in [("c-s0", [65.0, 80.0]), ("c-s1", [66.0, 81.0])] {
            ran(out.path(), id, &xs, "paused");
        }
        let v = h.settle().unwrap();
        assert_eq!(verdict(&v, &p, "c-s0"), Verdict::Train(None));
        assert!(matches!(verdict(&v, &p, "b-s0"), Verdict::Stopped(w) if w.contains("epoch 2")));
    }

    #[test]
    fn asynchronous_promotion_goes_ahead_without_the_slowest() {
        let out = tempfile::tempdir().unwrap();
        let p = plan(&["a", "b", "c", "d"], Mode::Async);
        let mut h = Promotions::open(&p, out.path()).unwrap().unwrap();
        for (s, x) in [("a", 60.0), ("b", 70.0)] {
            ran(out.path(), &format!("{s}-s0"), &[x], "paused");
            ran(out.path(), &format!("{s}-s1"), &[x], "paused");
        }
        // Two of four in: the best half of those (one) goes on at once.
        let v = h.settle().unwrap();
        assert_eq!(verdict(&v, &p, "b-s0"), Verdict::Train(Some(2)));
        assert_eq!(verdict(&v, &p, "a-s0"), Verdict::Paused);
        assert_eq!(verdict(&v, &p, "c-s0"), Verdict::Train(Some(1)));
    }

    #[test]
    fn a_failed_seed_or_a_score_at_the_floor_stops_its_setting_at_once() {
        let out = tempfile::tempdir().unwrap();
        let p = plan(&["a", "b", "c"], Mode::Sync);
        let mut h = Promotions::open(&p, out.path()).unwrap().unwrap();
        ran(out.path(), "a-s0", &[], "failed");
        ran(out.path(), "b-s0", &[10.0], "paused");
        ran(out.path(), "b-s1", &[12.0], "paused");
        let v = h.settle().unwrap();
        assert_eq!(verdict(&v, &p, "a-s0"), Verdict::Failed(String::new()));
        assert!(matches!(verdict(&v, &p, "a-s1"), Verdict::Stopped(w) if w.contains("failed")));
        assert!(matches!(verdict(&v, &p, "b-s1"), Verdict::Stopped(w) if w.contains("floor")));
        // c alone is left: it goes on once its seeds are in, though ranked of three.
        ran(out.path(), "c-s0", &[50.0], "paused");
        ran(out.path(), "c-s1", &[52.0], "paused");
        let v = h.settle().unwrap();
        assert_eq!(verdict(&v, &p, "c-s1"), Verdict::Train(Some(2)));
    }
}
