//! `netaug export --format onnx`: the tiny net of a run, a checkpoint or an official
//! `.pth` as one ONNX file (netaug-deploy), written to a temporary sibling and renamed.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use netaug_data::Normalize;
use netaug_deploy::{Graph, onnx};
use netaug_model::{Active, Net};
use netaug_trainer::checkpoint::resolve_net;
use netaug_trainer::config::check_image_size;

use crate::run_folder::run_config_of;
use crate::train::{ExportArgs, load_official, sibling};
use crate::{UsageError, classify};

/// Runs `netaug export --format onnx`.
pub(crate) fn export(args: &ExportArgs) -> Result<()> {
    refuse_existing_file(&args.out, args.force)?;
    let device = burn::tensor::Device::flex();
    let (net, source, resolution) = match &args.checkpoint {
        Some(checkpoint) => {
            let dir = resolve_net(checkpoint).map_err(classify)?;
            let run_config = run_config_of(&dir).ok().flatten();
            if run_config.as_ref().is_some_and(|c| c.detection.is_some()) {
                return Err(UsageError(format!(
                    "--format onnx: {} is a detector; detectors export as a folder only \
                     (drop --format; `netaug detect` reads it)",
                    dir.display()
                ))
                .into());
            }
            let mut net =
                Net::load(&dir, &device).map_err(|e| UsageError(format!("--checkpoint: {e}")))?;
            net.set_active(Active::Min);
            // The run's resolution; outside a run folder, --resolution.
            let resolution = run_config.map_or(args.resolution, |c| c.data.image_size);
            (net, dir, resolution)
        }
        None => {
            let (net, path, _) = load_official(args)?;
            (net, path.to_path_buf(), args.resolution)
        }
    };
    check_image_size(resolution).map_err(|m| UsageError(format!("--resolution: {m}")))?;
    let graph = Graph::of(&net, resolution)?;
    let spec = net.spec();
    let norm = Normalize::for_channels(spec.in_channels);
    let list = |v: &[f32]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let metadata = vec![
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
    ];
    let bytes = onnx::write(&graph, &metadata);
    write_new_file(&args.out, &bytes)?;
    let p = net.profile(resolution);
    outln!(
        "{} -> {}: ONNX opset {}, input [N, {}, {resolution}, {resolution}], {} params, {} MACs, \
         {} bytes",
        source.display(),
        args.out.display(),
        onnx::OPSET,
        spec.in_channels,
        p.params,
        p.macs,
        bytes.len()
    )?;
    Ok(())
}

/// Refuses an `--out` that exists, unless `force` and it is a file.
fn refuse_existing_file(out: &Path, force: bool) -> Result<()> {
    // onnxruntime, netron and the TFLite converter go by the extension.
    if out
        .extension()
        .is_none_or(|e| !e.eq_ignore_ascii_case("onnx"))
    {
        return Err(UsageError(format!(
            "--out {}: an ONNX file's name ends in .onnx",
            out.display()
        ))
        .into());
    }
    if out.is_dir() {
        return Err(UsageError(format!(
            "--out {}: is a folder; --format onnx writes one file",
            out.display()
        ))
        .into());
    }
    if out.exists() && !force {
        return Err(UsageError(format!(
            "--out {}: already exists; choose a new file, or pass --force to replace it",
            out.display()
        ))
        .into());
    }
    Ok(())
}

/// Writes `bytes` to a temporary sibling of `out`, then renames it into place, so a failed
/// or killed export leaves no partial file.
fn write_new_file(out: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = sibling(out, "tmp");
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, out))
        .with_context(|| format!("writing {}", out.display()));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
