//! `export`: the target (tiny) net of a run, a checkpoint or an official NetAug `.pth` as a
//! plain static network: a folder (`model.json`, `weights.bpk`) that `eval` and a run's
//! `init_from` read, or one ONNX file. Either is written whole or not at all.

use std::fmt;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use netaug_data::Normalize;
use netaug_deploy::{Graph, onnx};
use netaug_model::{AugFactors, Net};
use netaug_trainer::config::check_image_size;
use netaug_trainer::pth;
use serde::Serialize;

use crate::eval::load_net;
use crate::run_folder::locate;
use crate::{OpsError, detect};

/// What to export, and where.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Where the net comes from.
    pub source: Source,
    /// The input side when no run folder gives one.
    pub resolution: usize,
    /// Where to write: a folder, or with [`Format::Onnx`] a `.onnx` file.
    pub out: PathBuf,
    /// Replace an existing `out` (the old one goes once the new one is whole).
    pub force: bool,
    /// What to write.
    pub format: Format,
}

/// Where an exported net comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A run folder, checkpoint folder or exported folder.
    Checkpoint(PathBuf),
    /// An official NetAug PyTorch checkpoint.
    Official(Official),
}

/// An official NetAug PyTorch checkpoint and what it must hold.
#[derive(Clone, Debug)]
pub struct Official {
    /// The `.pth`/`.pt` file.
    pub path: PathBuf,
    /// The zoo net it holds.
    pub model: String,
    /// The class count it must have.
    pub classes: Option<usize>,
    /// The input channels it must have.
    pub in_channels: Option<usize>,
    /// A supernet's expand and width factors (default: tried plain, then the paper's).
    pub factors: Option<(Vec<f64>, Vec<f64>)>,
}

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A folder with model.json and weights.bpk.
    Folder,
    /// One ONNX file (BN folded, opset 13, input normalized as the run's evaluation).
    Onnx,
}

/// What `export` wrote.
#[derive(Clone, Debug, Serialize)]
pub struct ExportReport {
    /// Where the net came from.
    pub source: PathBuf,
    /// What was written.
    pub out: PathBuf,
    /// What kind of net, e.g. "detector", "mbv2-0.35 (target of the supernet)".
    pub kind: Option<String>,
    /// Classes (an official checkpoint's).
    pub classes: Option<usize>,
    /// Parameters.
    pub params: u64,
    /// MACs at `resolution`.
    pub macs: u64,
    /// The input side the MACs are at.
    pub resolution: usize,
    /// ONNX: opset, input channels and file size.
    pub onnx: Option<OnnxFile>,
}

/// An ONNX file written.
#[derive(Clone, Debug, Serialize)]
pub struct OnnxFile {
    /// Its opset.
    pub opset: i64,
    /// Input channels.
    pub channels: usize,
    /// Its size in bytes.
    pub bytes: usize,
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}: ", self.source.display(), self.out.display())?;
        let (p, r) = (self.params, self.resolution);
        match (&self.onnx, &self.kind, self.classes) {
            (Some(o), _, _) => write!(
                f,
                "ONNX opset {}, input [N, {}, {r}, {r}], {p} params, {} MACs, {} bytes",
                o.opset, o.channels, self.macs, o.bytes
            ),
            (None, Some(kind), Some(classes)) => write!(
                f,
                "{kind}, {classes} classes, {p} params, {} MACs at {r} px",
                self.macs
            ),
            (None, Some(kind), None) => write!(f, "{kind}, {p} params, {} MACs", self.macs),
            (None, None, _) => write!(f, "{p} params, {} MACs", self.macs),
        }
    }
}

/// Exports the target net of `o.source` to `o.out`.
pub fn export(o: &ExportOptions) -> Result<ExportReport, OpsError> {
    match o.format {
        Format::Onnx => export_onnx(o),
        Format::Folder => export_folder(o),
    }
}

fn export_folder(o: &ExportOptions) -> Result<ExportReport, OpsError> {
    refuse_existing(&o.out, o.force)?;
    let device = Device::flex();
    let (dir, run_config) = match &o.source {
        Source::Checkpoint(checkpoint) => locate(checkpoint)?,
        Source::Official(official) => {
            let net = load_official(official, &device)?;
            let tiny = net.export();
            write_folder(&o.out, |tmp| tiny.save(tmp))?;
            let p = tiny.profile(o.resolution);
            let target = if net.factors().is_augmented() {
                " (target of the supernet)"
            } else {
                ""
            };
            return Ok(ExportReport {
                source: official.path.clone(),
                out: o.out.clone(),
                kind: Some(format!("{}{target}", official.model)),
                classes: Some(tiny.spec().classes),
                params: p.params,
                macs: p.macs,
                resolution: o.resolution,
                onnx: None,
            });
        }
    };
    // Profiled at the run's resolution when the checkpoint is inside a run folder.
    let resolution = run_config
        .as_ref()
        .map_or(o.resolution, |c| c.data.image_size);
    // A detector: of a detection run, or an exported one copied out of its run (its
    // model.json has a `detector` section).
    let (params, macs, kind) =
        if run_config.as_ref().is_some_and(|c| c.detection.is_some()) || is_detector(&dir) {
            let tiny = detect::load_detector(&dir, &device)?.export();
            write_folder(&o.out, |tmp| tiny.save(tmp))?;
            let p = tiny.profile(resolution);
            (p.params, p.macs, Some("detector".to_string()))
        } else {
            let tiny = load_net(&dir, &device)?.export();
            write_folder(&o.out, |tmp| tiny.save(tmp))?;
            let p = tiny.profile(resolution);
            (p.params, p.macs, None)
        };
    Ok(ExportReport {
        source: dir,
        out: o.out.clone(),
        kind,
        classes: None,
        params,
        macs,
        resolution,
        onnx: None,
    })
}

fn export_onnx(o: &ExportOptions) -> Result<ExportReport, OpsError> {
    refuse_existing_file(&o.out, o.force)?;
    let device = Device::flex();
    let (net, source, resolution) = match &o.source {
        Source::Checkpoint(checkpoint) => {
            let (dir, run_config) = locate(checkpoint)?;
            if run_config.as_ref().is_some_and(|c| c.detection.is_some()) {
                return Err(OpsError::input(
                    "--format onnx",
                    format!(
                        "{} is a detector; detectors export as a folder only (drop --format; \
                         `netaug detect` reads it)",
                        dir.display()
                    ),
                ));
            }
            let net = load_net(&dir, &device)?;
            // The run's resolution; outside a run folder, --resolution.
            let resolution = run_config.map_or(o.resolution, |c| c.data.image_size);
            (net, dir, resolution)
        }
        Source::Official(official) => (
            load_official(official, &device)?,
            official.path.clone(),
            o.resolution,
        ),
    };
    check_image_size(resolution).map_err(|m| OpsError::input("--resolution", m))?;
    let bytes = onnx::write(
        &Graph::of(&net, resolution)?,
        &onnx_metadata(&net, resolution),
    );
    netaug_fs::write_file(&o.out, &bytes).map_err(|e| OpsError::write(&o.out, e))?;
    let p = net.profile(resolution);
    Ok(ExportReport {
        source,
        out: o.out.clone(),
        kind: None,
        classes: Some(net.spec().classes),
        params: p.params,
        macs: p.macs,
        resolution,
        onnx: Some(OnnxFile {
            opset: onnx::OPSET,
            channels: net.spec().in_channels,
            bytes: bytes.len(),
        }),
    })
}

/// The ONNX file's metadata: what the net is and how to feed it.
fn onnx_metadata(net: &Net, resolution: usize) -> Vec<(String, String)> {
    let spec = net.spec();
    let norm = Normalize::for_channels(spec.in_channels);
    let list = |v: &[f32]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        ("netaug.model".to_string(), spec.name.clone()),
        ("netaug.resolution".into(), resolution.to_string()),
        ("netaug.classes".into(), spec.classes.to_string()),
        ("netaug.mean".into(), list(&norm.mean)),
        ("netaug.std".into(), list(&norm.std)),
        (
            "netaug.preprocess".into(),
            format!(
                "resize the shorter side to ceil({resolution} / 0.875), center crop \
                 {resolution}x{resolution}, scale to [0, 1], subtract mean, divide by std \
                 (per channel)"
            ),
        ),
    ]
}

/// Whether the saved net in `dir` is a detector (its model.json has a `detector` section).
fn is_detector(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(netaug_model::net::MODEL_JSON))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("detector").is_some())
}

/// The net of an official checkpoint, its target active; counts that differ from the
/// ones asked for are refused.
fn load_official(o: &Official, device: &Device) -> Result<Net, OpsError> {
    let factors = match &o.factors {
        Some((e, w)) => Some(
            AugFactors::new(e.clone(), w.clone())
                .map_err(|e| OpsError::input("--aug-expand-list / --aug-width-mult-list", e))?,
        ),
        None => None,
    };
    let net = pth::load_official(&o.model, &o.path, factors.as_ref(), device)
        .map_err(|e| OpsError::input("--from-pth", e))?;
    let spec = net.spec();
    for (flag, want, have) in [
        ("--classes", o.classes, spec.classes),
        ("--in-channels", o.in_channels, spec.in_channels),
    ] {
        if let Some(want) = want.filter(|w| *w != have) {
            return Err(OpsError::input(
                format!("{flag} {want}"),
                format!("{} holds a net with {have}", o.path.display()),
            ));
        }
    }
    Ok(net)
}

/// Refuses an `out` that already exists (anything but an empty folder) unless `force`,
/// and then it must be an earlier export (a folder holding `model.json` and nothing an
/// export does not write): `--force` never replaces a checkpoint, a run or a user's folder.
fn refuse_existing(out: &Path, force: bool) -> Result<(), OpsError> {
    let flag = || format!("--out {}", out.display());
    let Ok(entries) = std::fs::read_dir(out) else {
        if out.exists() {
            return Err(OpsError::input(
                flag(),
                "is a file; an export is a folder (or pass --format onnx with a .onnx name)",
            ));
        }
        return Ok(());
    };
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    if !force {
        return Err(OpsError::input(
            flag(),
            "already exists; choose a new folder, or pass --force to replace an earlier export",
        ));
    }
    let export_files = [
        netaug_model::net::MODEL_JSON,
        netaug_model::net::WEIGHTS_FILE,
    ];
    let mut foreign: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !export_files.contains(n))
        .collect();
    if foreign.is_empty() && names.iter().any(|n| n == netaug_model::net::MODEL_JSON) {
        return Ok(());
    }
    foreign.sort_unstable();
    let what = if foreign.is_empty() {
        format!("holds no {}", netaug_model::net::MODEL_JSON)
    } else {
        let shown: Vec<&str> = foreign.iter().take(3).copied().collect();
        let more = foreign.len().saturating_sub(3);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!(
            "holds {}{more}, which an export does not write",
            shown.join(", ")
        )
    };
    Err(OpsError::input(
        flag(),
        format!(
            "{what}: it is not an earlier export, and --force replaces only those; \
             nothing was written, choose a new folder"
        ),
    ))
}

/// Refuses an `out` that is not a `.onnx` name, is a folder, or exists without `force`.
fn refuse_existing_file(out: &Path, force: bool) -> Result<(), OpsError> {
    let flag = format!("--out {}", out.display());
    // onnxruntime, netron and the TFLite converter go by the extension.
    if out
        .extension()
        .is_none_or(|e| !e.eq_ignore_ascii_case("onnx"))
    {
        return Err(OpsError::input(flag, "an ONNX file's name ends in .onnx"));
    }
    if out.is_dir() {
        return Err(OpsError::input(
            flag,
            "is a folder; --format onnx writes one file",
        ));
    }
    if out.exists() && !force {
        return Err(OpsError::input(
            flag,
            "already exists; choose a new file, or pass --force to replace it",
        ));
    }
    Ok(())
}

/// Writes the folder `out` whole through `save`.
fn write_folder(
    out: &Path,
    save: impl FnOnce(&Path) -> Result<(), netaug_model::ModelError>,
) -> Result<(), OpsError> {
    netaug_fs::write_dir(
        out,
        |tmp| save(tmp).map_err(|e| OpsError::write(out, e)),
        OpsError::write,
    )
}
