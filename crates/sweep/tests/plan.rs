//! Sweep files to run tables: the grid, seeds, include/exclude, stable ids, stages linked
//! by `@stage` references, and the errors that stop a bad sweep before it runs.

use std::path::Path;

use netaug_sweep::{SweepSpec, plan};

const BASE: &str = "
    data: {dataset: fashion-mnist, image_size: 32, batch_size: 64}
    model: {name: tinymbv2}
    run: {epochs: 1, seed: 0}
";

fn spec(yaml: &str) -> SweepSpec {
    SweepSpec::parse(yaml, "s.yaml", Path::new(".")).unwrap()
}

fn sweep(grid: &str) -> String {
    format!("name: t\nbase:{}\n{grid}", BASE.replace("\n    ", "\n  "))
}

#[test]
fn a_null_section_gives_a_baseline_and_seeds_repeat_every_assignment() {
    let s = spec(&sweep(
        "grid:\n  netaug: [null, {aug_expand_list: [1.0, 2.2], aug_width_mult_list: [1.0, 1.8]}]\nseeds: [0, 1, 2]",
    ));
    let p = plan(&s, Path::new("/r"), &[]).unwrap();
    assert_eq!(p.runs.len(), 6);
    let ids: Vec<&str> = p.runs.iter().map(|r| r.id.as_str()).collect();
    assert!(ids[0].starts_with("no-netaug-s0-"), "{ids:?}");
    assert!(ids[3].starts_with("netaug-s0-"), "{ids:?}");
    assert!(!p.runs[0].config.contains("netaug:"));
    assert!(p.runs[3].config.contains("aug_expand_list"));
    assert!(p.runs[4].config.contains("seed: 1"));
    // Stable: the same ids for the same file, wherever the results go.
    let again = plan(&s, Path::new("/elsewhere"), &[]).unwrap();
    let ids2: Vec<&str> = again.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ids2);
    // An override changes every config, so every id.
    let other = plan(&s, Path::new("/r"), &["run.epochs=2".into()]).unwrap();
    assert!(other.runs.iter().zip(&p.runs).all(|(a, b)| a.id != b.id));
}

#[test]
fn exclude_drops_and_include_adds_runs() {
    let s = spec(&sweep(
        "grid:\n  model.name: [tinymbv2, mcunet]\n  run.base_lr: [0.1, 0.2]\n\
         exclude:\n  - {model.name: mcunet, run.base_lr: 0.2}\n\
         include:\n  - {model.name: mbv2-0.35, run.base_lr: 0.05}",
    ));
    let p = plan(&s, Path::new("/r"), &[]).unwrap();
    let ids: Vec<&str> = p.runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(p.runs.len(), 4, "{ids:?}");
    assert!(
        ids.iter().any(|i| i.starts_with("mbv2-0.35-0.05-")),
        "{ids:?}"
    );
    assert!(!ids.iter().any(|i| i.starts_with("mcunet-0.2-")), "{ids:?}");
}

#[test]
fn linked_keys_change_together() {
    let s = spec(&sweep(
        "grid:\n  model.name,data.image_size: [[tinymbv2, 144], [mcunet, 176]]\n  netaug: [null, {aug_expand_list: [1.0, 2.2], aug_width_mult_list: [1.0]}]",
    ));
    let p = plan(&s, Path::new("/r"), &[]).unwrap();
    assert_eq!(p.runs.len(), 4, "2 points x 2, not 2 x 2 x 2");
    let r = &p.runs[2];
    assert!(r.id.starts_with("mcunet-176-no-netaug-"), "{}", r.id);
    assert!(r.config.contains("image_size: 176") && r.config.contains("name: mcunet"));
    let e = SweepSpec::parse(
        &sweep("grid:\n  model.name,data.image_size: [[tinymbv2, 144], [mcunet]]"),
        "s.yaml",
        Path::new("."),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("linked keys: expected lists of 2 values"), "{e}");
}

#[test]
fn stage_references_resolve_to_the_matching_run_and_order_the_runs() {
    let s = spec(&format!(
        "name: transfer
stages:
  - name: pretrain
    base: {base}
    grid:
      model.name: [tinymbv2, mcunet]
  - name: teacher
    base: {base}
    set: {{model.name: mbv2-1.0}}
  - name: finetune
    base: {base}
    grid:
      model.name: [tinymbv2, mcunet]
    seeds: [0, 1]
    set:
      model.init_from: '@pretrain/exported'
      kd.teacher: '@teacher'
",
        base = "{data: {dataset: fashion-mnist, image_size: 32, batch_size: 64}, model: {name: tinymbv2}, run: {epochs: 1}}"
    ));
    let p = plan(&s, Path::new("/r"), &[]).unwrap();
    assert_eq!(p.runs.len(), 2 + 1 + 4);
    let ft = &p.runs[3];
    assert_eq!(ft.stage, "finetune");
    assert!(ft.id.starts_with("finetune-tinymbv2-s0-"), "{}", ft.id);
    assert_eq!(ft.level, 1);
    let pre = &p.runs[0];
    assert!(pre.id.starts_with("pretrain-tinymbv2-"), "{}", pre.id);
    assert!(
        ft.config
            .contains(&format!("init_from: /r/runs/{}/exported", pre.id)),
        "{}",
        ft.config
    );
    assert!(
        ft.config
            .contains(&format!("teacher: /r/runs/{}", p.runs[2].id))
    );
    assert_eq!(ft.deps, vec![0, 2]);
    assert_eq!(
        p.runs[5].deps,
        vec![1, 2],
        "mcunet finetunes after mcunet pretraining"
    );

    // `--set STAGE:key=value` reaches that stage only; a plain `--set` every stage.
    let p = plan(
        &s,
        Path::new("/r"),
        &[
            "pretrain:data.root=/data/imagenet".into(),
            "run.epochs=2".into(),
        ],
    )
    .unwrap();
    assert!(
        p.runs[0].config.contains("root: /data/imagenet"),
        "{}",
        p.runs[0].config
    );
    assert!(
        !p.runs[2].config.contains("/data/imagenet"),
        "{}",
        p.runs[2].config
    );
    assert!(p.runs.iter().all(|r| r.config.contains("epochs: 2")));
    let e = plan(&s, Path::new("/r"), &["pretrian:data.root=/x".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no stage named \"pretrian\""), "{e}");
}

#[test]
fn bad_sweeps_are_refused_before_anything_runs() {
    let err = |yaml: &str| {
        plan(&spec(yaml), Path::new("/r"), &[])
            .unwrap_err()
            .to_string()
    };
    let stage = |name: &str, reference: &str| {
        format!(
            "  - name: {name}\n    base: {{data: {{dataset: fashion-mnist, image_size: 32, batch_size: 64}}, model: {{name: tinymbv2}}, run: {{epochs: 1}}}}\n    set: {{kd.teacher: '{reference}'}}\n"
        )
    };
    let e = err(&format!("name: x\nstages:\n{}", stage("a", "@nowhere")));
    assert!(e.contains("`@nowhere` names no stage"), "{e}");
    let e = err(&format!(
        "name: x\nstages:\n{}{}",
        stage("a", "@b"),
        stage("b", "@a")
    ));
    assert!(e.contains("depends on itself"), "{e}");
    let e = err(&sweep("grid:\n  run.sead: [1, 2]"));
    assert!(e.contains("run.sead: unknown field"), "{e}");
    let e = err(&sweep("grid:\n  model.name: [tinymbv2, tinymbv2]"));
    assert!(e.contains("same config"), "{e}");
    // Two teachers and nothing to tell them apart.
    let e = err(&format!(
        "name: x\nstages:\n  - name: t\n    base: {{data: {{dataset: fashion-mnist, image_size: 32, batch_size: 64}}, model: {{name: tinymbv2}}, run: {{epochs: 1}}}}\n    seeds: [0, 1]\n{}",
        stage("s", "@t")
    ));
    assert!(e.contains("matches 2 runs"), "{e}");
    let parse = SweepSpec::parse("name: x\nbase: {}\ngird: {}", "s.yaml", Path::new("."));
    assert!(
        parse
            .unwrap_err()
            .to_string()
            .starts_with("s.yaml: gird: unknown field")
    );
}
