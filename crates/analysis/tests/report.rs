//! `report` on synthetic run folders in the trainer's file format: the per-run CSV, the
//! table's means, standard deviations and deltas, the paper column, the figures, and a
//! damaged metrics file refused.

use std::path::{Path, PathBuf};

use netaug_analysis::report;

fn temp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("netaug-analysis-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// A tinymbv2 run folder with `finals` as the val top-1 of its 3 epochs.
fn run(dir: &Path, id: &str, method: &str, seed: u64, finals: [f64; 3], status: &str) {
    run_of(dir, id, ("tinymbv2", 305482), method, seed, finals, status);
}

/// A run folder of `model` (name, params); train top-1 is val top-1 - 5.
fn run_of(
    dir: &Path,
    id: &str,
    (model, params): (&str, u64),
    method: &str,
    seed: u64,
    finals: [f64; 3],
    status: &str,
) {
    let d = dir.join("runs").join(id);
    std::fs::create_dir_all(&d).unwrap();
    let summary = serde_json::json!({
        "run_id": id, "dataset": "fashion-mnist", "model": model, "resolution": 32,
        "method": method, "epochs": 3, "seed": seed, "device": "cpu", "params": params,
        "macs": 1021360, "best_val_top1": finals[2], "best_epoch": 3,
        "final_val_top1": finals[2], "final_val_top5": 99.0, "wall_seconds": 10.0,
        "images_per_second": 100.0, "status": status, "error": null
    });
    std::fs::write(d.join("summary.json"), summary.to_string()).unwrap();
    let lines: Vec<String> = finals
        .iter()
        .enumerate()
        .map(|(e, v)| {
            serde_json::json!({"epoch": e + 1, "train_loss": 1.0, "train_top1": v - 5.0,
                "val_loss": 0.5, "val_top1": v, "val_top5": 99.0, "lr": 0.1, "seconds": 1.0,
                "images_per_second": 100.0})
            .to_string()
        })
        .collect();
    std::fs::write(d.join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
}

#[test]
fn tables_show_mean_std_delta_and_the_paper() {
    let dir = temp("report");
    for (s, v) in [80.0, 81.0, 82.0].into_iter().enumerate() {
        run(
            &dir,
            &format!("base-s{s}"),
            "baseline",
            s as u64,
            [60.0, 70.0, v],
            "done",
        );
    }
    for (s, v) in [83.0, 84.0, 85.0].into_iter().enumerate() {
        run(
            &dir,
            &format!("na-s{s}"),
            "netaug",
            s as u64,
            [55.0, 72.0, v],
            "done",
        );
    }
    // A failed run is listed in summary.csv, left out of the means and counted beside
    // them; a method whose every run failed still has its column.
    run(&dir, "na-s9", "netaug", 9, [10.0, 10.0, 10.0], "failed");
    run(&dir, "kd-s0", "kd", 0, [10.0, 10.0, 10.0], "failed");
    let paper = dir.join("paper.csv");
    std::fs::write(
        &paper,
        "table,dataset,model,resolution,method,metric,value,note\n\
         x,fashion-mnist,tinymbv2,32,netaug,top1,90.5,made up\n",
    )
    .unwrap();

    let r = report(&dir, Some(&paper)).unwrap();
    assert_eq!(r.runs, 8);
    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 9, "{csv}");
    assert!(
        csv.starts_with("run_id,dataset,model,resolution,setting,method"),
        "{csv}"
    );

    let md = std::fs::read_to_string(dir.join("tables/fashion-mnist.md")).unwrap();
    // Means 81 and 84, sample std 1 (over 3 seeds), delta +3; the paper's 90.5 beside ours.
    assert!(md.contains("| tinymbv2 | 32 | 0.305M | 1.0M | 81.00 ± 1.00 (n=3) | 84.00 ± 1.00 (n=3, 1 failed) [paper 90.5] | – (n=0, 1 failed) | +3.00 | – |"), "{md}");
    assert!(
        md.contains(
            "Failed runs, left out of the means (their `summary.json` says why): kd-s0, na-s9"
        ) || md.contains(
            "Failed runs, left out of the means (their `summary.json` says why): na-s9, kd-s0"
        ),
        "{md}"
    );
    let tcsv = std::fs::read_to_string(dir.join("tables/fashion-mnist.csv")).unwrap();
    assert!(
        tcsv.contains(
            "fashion-mnist,tinymbv2,32,,305482,1021360,netaug,84.0000,1.0000,3,3.0000,90.5,1"
        ),
        "{tcsv}"
    );

    for f in [
        "fashion-mnist-tinymbv2-val-top1",
        "fashion-mnist-methods",
        "fashion-mnist-top1-vs-macs",
    ] {
        let png = std::fs::read(dir.join(format!("plots/{f}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{f}");
        assert!(png.len() > 10_000, "{f}: {} bytes", png.len());
        let svg = std::fs::read_to_string(dir.join(format!("plots/{f}.svg"))).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("netaug") && svg.contains("baseline"),
            "{f}"
        );
        assert!(svg.contains("validation top-1 (%"), "{f}: axis label");
    }
    // The failed run (val top-1 10) stays out of the curves: the axis starts near 55.
    let svg =
        std::fs::read_to_string(dir.join("plots/fashion-mnist-tinymbv2-val-top1.svg")).unwrap();
    // (plotters writes each label on a line of its own between the tags.)
    assert!(
        svg.contains(">\n55.0\n<") && !svg.contains(">\n10.0\n<"),
        "the failed run is plotted"
    );
    // One model only: no underfitting figure.
    assert!(!dir.join("plots/fashion-mnist-underfitting.png").exists());
    // Top-1 against MACs: log-scale axis, the paper's grey point in the legend.
    let svg = std::fs::read_to_string(dir.join("plots/fashion-mnist-top1-vs-macs.svg")).unwrap();
    assert!(
        svg.contains("MACs of the deployed net (millions, log scale)"),
        "x axis"
    );
    assert!(
        svg.contains(">\npaper\n<") && svg.contains(">\ntinymbv2\n<"),
        "legend"
    );
    // Training loss and lr per epoch (these runs have no steps.jsonl).
    let svg =
        std::fs::read_to_string(dir.join("plots/fashion-mnist-tinymbv2-training.svg")).unwrap();
    assert!(
        svg.contains(">\nlearning rate\n<") && svg.contains(">\nepoch\n<"),
        "training figure"
    );
}

#[test]
fn training_curves_follow_steps_where_runs_logged_them() {
    let dir = temp("steps");
    for (seed, method) in [(0, "baseline"), (1, "baseline"), (0, "netaug")] {
        let id = format!("{method}-s{seed}");
        run(&dir, &id, method, seed, [50.0, 60.0, 70.0], "done");
        if method == "baseline" {
            let lines: Vec<String> = (1..=4)
                .map(|k| {
                    serde_json::json!({"step": 10 * k, "epoch": 1, "train_loss": 2.0 / k as f64 + seed as f64,
                        "lr": 0.01 * k as f64, "images_per_second": 100.0, "wall_time": 1.0})
                    .to_string()
                })
                .collect();
            let path = dir.join("runs").join(&id).join("steps.jsonl");
            std::fs::write(path, lines.join("\n") + "\n").unwrap();
        }
    }
    let runs = netaug_analysis::runs::load(&dir).unwrap();
    assert_eq!(runs.steps.height(), 8);
    let curves = netaug_analysis::plot::training_curves(&runs.steps, &runs.metrics).unwrap();
    let t = &curves[&("fashion-mnist".into(), "tinymbv2".into(), String::new())];
    // The group's runs logged steps: x is the step, and only those runs are drawn.
    assert_eq!(t.x, "step");
    let loss = &t.loss["baseline"];
    assert_eq!(loss.x, [10, 20, 30, 40]);
    // Seeds 0 and 1 differ by 1.0: mean 2/k + 0.5, band 2/k .. 2/k + 1.
    let expected = [2.5, 1.5, 2.0 / 3.0 + 0.5, 1.0];
    for (m, e) in loss.mean.iter().zip(expected) {
        assert!((m - e).abs() < 1e-12, "{:?}", loss.mean);
    }
    assert_eq!(loss.min[0], 2.0);
    assert_eq!(loss.max[0], 3.0);
    for (m, k) in t.lr["baseline"].mean.iter().zip(1..) {
        assert!((m - 0.01 * f64::from(k)).abs() < 1e-12, "{m}");
    }
    assert!(
        !t.loss.contains_key("netaug"),
        "runs without steps are not mixed in"
    );
    report(&dir, None).unwrap();
    let svg =
        std::fs::read_to_string(dir.join("plots/fashion-mnist-tinymbv2-training.svg")).unwrap();
    assert!(svg.contains(">\nstep\n<"), "x axis");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_underfitting_figure_shows_the_smallest_and_the_largest_net() {
    let dir = temp("underfit");
    let models = [
        ("mcunet", 740_000),
        ("tinymbv2", 305_482),
        ("mbv2-1.0", 2_236_682),
    ];
    for (i, m) in models.into_iter().enumerate() {
        for s in 0..2 {
            let v = 60.0 + 5.0 * i as f64 + s as f64;
            run_of(
                &dir,
                &format!("{}-s{s}", m.0),
                m,
                "baseline",
                s,
                [v - 20.0, v - 10.0, v],
                "done",
            );
        }
    }
    report(&dir, None).unwrap();
    let png = std::fs::read(dir.join("plots/fashion-mnist-underfitting.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(dir.join("plots/fashion-mnist-underfitting.svg")).unwrap();
    for label in [
        "tinymbv2 (0.31M) train",
        "tinymbv2 (0.31M) val",
        "mbv2-1.0 (2.24M) train",
        "mbv2-1.0 (2.24M) val",
    ] {
        assert!(svg.contains(label), "{label} missing");
    }
    assert!(!svg.contains("mcunet"), "the middle-sized net is drawn");
    assert!(svg.contains("training vs validation top-1"), "title");
}

#[test]
fn an_empty_folder_is_an_error_naming_it() {
    let dir = temp("empty");
    std::fs::create_dir_all(dir.join("runs")).unwrap();
    let e = report(&dir, None).unwrap_err().to_string();
    assert!(e.contains("no runs"), "{e}");
}

#[test]
fn an_unreadable_metrics_file_is_an_error_naming_it() {
    // Binary bytes (not UTF-8) where metrics.jsonl should be: reading it as an empty
    // history hid the damage and exited 0.
    let dir = temp("binary-metrics");
    run(&dir, "base-s0", "baseline", 0, [80.0, 81.0, 82.0], "done");
    let metrics = dir.join("runs/base-s0/metrics.jsonl");
    std::fs::write(&metrics, [0xff, 0xfe, 0x00, 0x9c, 0x80]).unwrap();
    let e = report(&dir, None).unwrap_err();
    assert!(e.is_input());
    let text = e.to_string();
    assert!(text.contains("metrics.jsonl"), "{text}");
    // A run without the file (it has not finished an epoch) still reports.
    std::fs::remove_file(&metrics).unwrap();
    assert_eq!(report(&dir, None).unwrap().runs, 1);
}

#[test]
fn a_report_that_cannot_be_written_is_a_failure_not_bad_input() {
    // A folder where summary.csv goes, as a read-only or full disk would refuse it: exit 1
    // (a failure), not 2 (the user's input).
    let dir = temp("unwritable");
    run(&dir, "base-s0", "baseline", 0, [80.0, 81.0, 82.0], "done");
    std::fs::create_dir_all(dir.join("summary.csv/in-the-way")).unwrap();
    let e = report(&dir, None).unwrap_err();
    assert!(!e.is_input(), "{e}");
    assert!(e.to_string().contains("writing failed"), "{e}");
}

#[test]
fn a_paper_file_without_its_columns_is_refused_naming_them() {
    let dir = temp("bad-paper");
    run(&dir, "base-s0", "baseline", 0, [60.0, 70.0, 80.0], "done");
    let paper = dir.join("paper.csv");
    std::fs::write(&paper, "foo,bar\n1,2\n").unwrap();
    let e = report(&dir, Some(&paper)).unwrap_err();
    assert!(e.is_input(), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("paper.csv: a paper-results CSV needs the columns dataset, model, method, metric, value (its header: `foo,bar`)"),
        "{e}"
    );
    // Columns in another order are read by name.
    std::fs::write(
        &paper,
        "value,metric,method,model,dataset\n71.5,top1,baseline,tinymbv2,fashion-mnist\n",
    )
    .unwrap();
    assert!(report(&dir, Some(&paper)).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_folder_whose_runs_all_failed_before_their_first_epoch_reports_and_ends() {
    // Was a hang at 100% CPU: the top-1-vs-MACs figure of a table without rows asked
    // plotters for an axis from +inf to -inf.
    let dir = temp("all-failed");
    let d = dir.join("runs").join("a");
    std::fs::create_dir_all(&d).unwrap();
    let summary = serde_json::json!({
        "run_id": "a", "dataset": "fashion-mnist", "model": "tinymbv2", "resolution": 16,
        "method": "baseline", "epochs": 1, "seed": 0, "device": "cpu", "params": 305482,
        "macs": 429712, "best_epoch": 0, "wall_seconds": 1.0, "images_per_second": 100.0,
        "status": "failed",
        "error": "training diverged: mean training loss is NaN at epoch 1, step 10"
    });
    std::fs::write(d.join("summary.json"), summary.to_string()).unwrap();
    std::fs::write(d.join("metrics.jsonl"), "").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let folder = dir.clone();
    std::thread::spawn(move || {
        let _ = tx.send(report(&folder, None).map(|r| r.runs));
    });
    let runs = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("report did not end within 60 s")
        .unwrap();
    assert_eq!(runs, 1);
    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    assert!(csv.contains(",failed"), "{csv}");
    let _ = std::fs::remove_dir_all(&dir);
}
