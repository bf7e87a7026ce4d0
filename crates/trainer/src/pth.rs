//! Official NetAug PyTorch checkpoints (`.pth`/`.pt`, legacy or zip format, a bare state
//! dict or `{"state_dict": ...}`) read with burn-store's PyTorch reader, their parameter
//! names mapped onto ours.
//!
//! The official base models (`models/base/*.py`) all share one layout:
//! `backbone.input_stem.op_list.{0 = stem ConvLayer, 1 = DsConv}`,
//! `backbone.stages.S.op_list.I.conv.{inverted,depth,point}_conv` (+ `se_layer`), and
//! `head.op_list.J`: inverted blocks, then ConvLayers (before / after the pooling), then
//! the LinearLayer. Blocks are numbered in that order, as ours. The official NetAug
//! supernets (`models/netaug/*.py`) keep these names with their widest shapes, so one
//! mapping serves plain nets and supernets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::store::pytorch_reader::{DType, PytorchReader};
use burn::store::{ModuleSnapshot, bridge};
use burn::tensor::{Device, TensorData};
use netaug_model::{AugFactors, InitKind, Net, zoo};

use crate::error::TrainError;

/// Whether `path` names a PyTorch checkpoint (by extension).
pub fn is_pytorch(path: &Path) -> bool {
    let name = path.to_string_lossy();
    [".pth", ".pt", ".pth.tar", ".bin"]
        .iter()
        .any(|e| name.ends_with(e))
}

/// One tensor of an official checkpoint: its shape and values (as float32).
#[derive(Clone, Debug)]
pub struct OfficialTensor {
    /// Shape, as PyTorch stores it.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub values: Vec<f32>,
}

/// Reads every tensor of the official checkpoint at `path` (a bare state dict or
/// `{"state_dict": ...}`), by its official name.
pub fn read_official(path: &Path) -> Result<BTreeMap<String, OfficialTensor>, TrainError> {
    let bad = |m: String| TrainError::file(path, m);
    let reader = match PytorchReader::with_top_level_key(path, "state_dict") {
        Ok(r) => r,
        Err(_) => PytorchReader::new(path).map_err(|e| bad(e.to_string()))?,
    };
    let mut out = BTreeMap::new();
    for (name, t) in reader.into_tensors() {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        let bytes = t.read().map_err(|e| bad(e.to_string()))?;
        let values: Vec<f32> = match t.dtype() {
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            DType::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            other => return Err(bad(format!("`{name}` has type {other:?}, not a float"))),
        };
        let shape = t.shape().to_vec();
        out.insert(name, OfficialTensor { shape, values });
    }
    Ok(out)
}

/// Builds `model` from the official checkpoint at `path` (its input channels and class
/// count): with `factors`, the NetAug supernet of those lists (the official
/// `augemnt_model`); without, the plain net if the file holds one, else the supernet of the
/// paper's lists for `model` (the `checkpoint.pt` / `best.pt` of an official NetAug run).
/// The target (`min`) is active.
pub fn load_official(
    model: &str,
    path: &Path,
    factors: Option<&AugFactors>,
    device: &Device,
) -> Result<Net, TrainError> {
    let tensors = read_official(path)?;
    let build = |f: &AugFactors| official_net(model, f, &tensors, device);
    match factors {
        Some(f) => build(f),
        None => build(&AugFactors::none()).or_else(|plain| {
            let (e, w) = zoo::paper_factors(model);
            let paper = AugFactors::new(e, w).expect("the paper's lists are valid");
            build(&paper).map_err(|_| {
                format!("{plain} (nor is it a supernet of the paper's factor lists for {model})")
            })
        }),
    }
    .map_err(|m| TrainError::file(path, m))
}

/// Builds `model` for `factors` from official tensors (by official name): every tensor
/// must map onto one of ours with the same shape, and every one of ours must be given.
pub fn official_net(
    model: &str,
    factors: &AugFactors,
    tensors: &BTreeMap<String, OfficialTensor>,
    device: &Device,
) -> Result<Net, String> {
    let names: Vec<String> = tensors.keys().cloned().collect();
    let mapping = official_names(&names)?;
    let theirs_of = |ours: &str| {
        mapping
            .iter()
            .find(|(_, o)| o.as_str() == ours)
            .and_then(|(theirs, _)| tensors.get(theirs))
    };
    let classes = theirs_of("classifier.weight")
        .map(|t| t.shape[0])
        .ok_or("no classifier (`head.op_list.*.linear.weight`)")?;
    let in_channels = theirs_of("stem.conv.weight")
        .and_then(|t| t.shape.get(1).copied())
        .ok_or("no stem conv (`backbone.input_stem.op_list.0.conv.weight`)")?;
    let spec = zoo::spec(model, classes, in_channels).map_err(|e| e.to_string())?;
    let mut net = Net::new(&spec, factors, InitKind::HeFout, 0, device);

    let shapes: BTreeMap<String, Vec<usize>> = net
        .collect(None, None, true)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect();
    let mut snapshots = Vec::new();
    for (theirs, ours) in &mapping {
        let t = &tensors[theirs];
        let Some(shape) = shapes.get(ours) else {
            return Err(format!(
                "`{theirs}` maps to `{ours}`, which {model} does not have"
            ));
        };
        if &t.shape != shape {
            return Err(format!(
                "`{theirs}` is {:?}, {model}'s `{ours}` is {shape:?}",
                t.shape
            ));
        }
        snapshots.push(bridge::from_data(
            TensorData::new(t.values.clone(), shape.clone()),
            ours.clone(),
            None,
        ));
    }
    let mapped: BTreeSet<&String> = mapping.values().collect();
    if let Some(missing) = shapes.keys().find(|k| !mapped.contains(k)) {
        return Err(format!("has nothing for {model}'s `{missing}`"));
    }
    let result = net.apply(snapshots, None, None, true);
    if !result.errors.is_empty() {
        return Err(format!("{:?}", result.errors));
    }
    Ok(net)
}

/// Our name for each official tensor name (BN's `num_batches_tracked` left out), for
/// plain nets and supernets alike (the official supernets keep the base nets' names).
pub fn official_names(names: &[String]) -> Result<BTreeMap<String, String>, String> {
    // Blocks in order: every (stage, index) of the backbone, then the head's blocks.
    let mut stage_blocks = BTreeSet::new();
    let mut head_blocks = BTreeSet::new();
    let mut head_convs = BTreeSet::new();
    let mut parsed = Vec::new();
    for name in names {
        let key = name.strip_prefix("module.").unwrap_or(name);
        if key.ends_with("num_batches_tracked") {
            continue;
        }
        let unit = parse(key).ok_or_else(|| format!("unexpected parameter `{name}`"))?;
        match &unit.place {
            Place::Stage(s, i) => {
                stage_blocks.insert((*s, *i));
            }
            Place::HeadBlock(j) => {
                head_blocks.insert(*j);
            }
            Place::HeadConv(j) => {
                head_convs.insert(*j);
            }
            _ => {}
        }
        parsed.push((name.clone(), unit));
    }
    let block_index = |p: &Place| -> usize {
        match p {
            Place::Stage(s, i) => stage_blocks
                .iter()
                .position(|b| b == &(*s, *i))
                .unwrap_or(0),
            Place::HeadBlock(j) => {
                stage_blocks.len() + head_blocks.iter().position(|b| b == j).unwrap_or(0)
            }
            _ => 0,
        }
    };
    let mut out = BTreeMap::new();
    for (name, unit) in parsed {
        let ours = match &unit.place {
            Place::Stem => format!("stem.{}", unit.tail),
            Place::First(part) => format!("first.{part}.{}", unit.tail),
            Place::Stage(..) | Place::HeadBlock(_) => {
                format!("blocks.{}.{}", block_index(&unit.place), unit.tail)
            }
            Place::HeadConv(j) => {
                // One head conv is the pre-pooling conv (MBV2, ProxylessNAS); two are the
                // pre- and post-pooling convs (MBV3).
                let first = head_convs.iter().next() == Some(j);
                let which = if head_convs.len() == 1 || first {
                    "head_conv"
                } else {
                    "post_pool_conv"
                };
                format!("{which}.{}", unit.tail)
            }
            Place::Classifier => format!("classifier.{}", unit.tail),
        };
        out.insert(name, ours);
    }
    Ok(out)
}

#[derive(Debug, PartialEq)]
enum Place {
    Stem,
    First(&'static str),
    Stage(usize, usize),
    HeadBlock(usize),
    HeadConv(usize),
    Classifier,
}

/// A parsed official name: where the layer sits and our name of the rest.
#[derive(Debug)]
struct Unit {
    place: Place,
    tail: String,
}

fn parse(key: &str) -> Option<Unit> {
    let num = |s: &str| s.parse::<usize>().ok();
    if let Some(rest) = key.strip_prefix("backbone.input_stem.op_list.") {
        let (idx, rest) = rest.split_once('.')?;
        return match num(idx)? {
            0 => Some(Unit {
                place: Place::Stem,
                tail: conv_layer_tail(rest)?,
            }),
            _ => {
                let rest = rest.strip_prefix("conv.")?;
                let (part, rest) = rest.split_once('.')?;
                let part = match part {
                    "depth_conv" => "depth",
                    "point_conv" => "point",
                    _ => return None,
                };
                Some(Unit {
                    place: Place::First(part),
                    tail: conv_layer_tail(rest)?,
                })
            }
        };
    }
    if let Some(rest) = key.strip_prefix("backbone.stages.") {
        let (s, rest) = rest.split_once('.')?;
        let rest = rest.strip_prefix("op_list.")?;
        let (i, rest) = rest.split_once('.')?;
        return Some(Unit {
            place: Place::Stage(num(s)?, num(i)?),
            tail: block_tail(rest.strip_prefix("conv.")?)?,
        });
    }
    let rest = key.strip_prefix("head.op_list.")?;
    let (j, rest) = rest.split_once('.')?;
    let j = num(j)?;
    if let Some(p) = rest.strip_prefix("linear.") {
        return Some(Unit {
            place: Place::Classifier,
            tail: p.to_string(),
        });
    }
    // `conv.<part>_conv.` or `conv.se_layer.`: an inverted block; else a ConvLayer.
    if let Some(inner) = rest.strip_prefix("conv.")
        && let Some(tail) = block_tail(inner)
    {
        return Some(Unit {
            place: Place::HeadBlock(j),
            tail,
        });
    }
    Some(Unit {
        place: Place::HeadConv(j),
        tail: conv_layer_tail(rest)?,
    })
}

/// `inverted_conv.conv.weight` -> `inverted.conv.weight`; SE convs included.
fn block_tail(rest: &str) -> Option<String> {
    let (part, rest) = rest.split_once('.')?;
    let ours = match part {
        "inverted_conv" => "inverted",
        "depth_conv" => "depth",
        "point_conv" => "point",
        "se_layer" => {
            let (conv, p) = rest.split_once('.')?;
            let conv = match conv {
                "reduce_conv" => "reduce",
                "expand_conv" => "expand",
                _ => return None,
            };
            return Some(format!("se.{conv}.{p}"));
        }
        _ => return None,
    };
    Some(format!("{ours}.{}", conv_layer_tail(rest)?))
}

/// A ConvLayer's `conv.weight` / `norm.*` in our names.
fn conv_layer_tail(rest: &str) -> Option<String> {
    Some(match rest {
        "conv.weight" => "conv.weight".into(),
        "conv.bias" => "conv.bias".into(),
        "norm.weight" => "bn.gamma".into(),
        "norm.bias" => "bn.beta".into(),
        "norm.running_mean" => "bn.running_mean".into(),
        "norm.running_var" => "bn.running_var".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_names_map_to_ours() {
        let names: Vec<String> = [
            "backbone.input_stem.op_list.0.conv.weight",
            "backbone.input_stem.op_list.0.norm.weight",
            "backbone.input_stem.op_list.0.norm.num_batches_tracked",
            "backbone.input_stem.op_list.1.conv.point_conv.norm.running_var",
            "backbone.stages.1.op_list.0.conv.depth_conv.conv.weight",
            "backbone.stages.0.op_list.1.conv.se_layer.reduce_conv.bias",
            "backbone.stages.0.op_list.0.conv.inverted_conv.norm.bias",
            "head.op_list.0.conv.point_conv.conv.weight",
            "head.op_list.1.conv.weight",
            "head.op_list.3.linear.weight",
        ]
        .map(String::from)
        .to_vec();
        let m = official_names(&names).unwrap();
        let get = |k: &str| m[k].as_str();
        assert_eq!(
            get("backbone.input_stem.op_list.0.norm.weight"),
            "stem.bn.gamma"
        );
        assert_eq!(
            get("backbone.input_stem.op_list.1.conv.point_conv.norm.running_var"),
            "first.point.bn.running_var"
        );
        assert_eq!(
            get("backbone.stages.0.op_list.0.conv.inverted_conv.norm.bias"),
            "blocks.0.inverted.bn.beta"
        );
        assert_eq!(
            get("backbone.stages.0.op_list.1.conv.se_layer.reduce_conv.bias"),
            "blocks.1.se.reduce.bias"
        );
        assert_eq!(
            get("backbone.stages.1.op_list.0.conv.depth_conv.conv.weight"),
            "blocks.2.depth.conv.weight"
        );
        assert_eq!(
            get("head.op_list.0.conv.point_conv.conv.weight"),
            "blocks.3.point.conv.weight"
        );
        assert_eq!(get("head.op_list.1.conv.weight"), "head_conv.conv.weight");
        assert_eq!(get("head.op_list.3.linear.weight"), "classifier.weight");
        assert!(!m.contains_key("backbone.input_stem.op_list.0.norm.num_batches_tracked"));
        assert!(official_names(&["encoder.layer.weight".into()]).is_err());
    }
}
