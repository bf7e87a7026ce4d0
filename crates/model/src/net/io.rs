//! Saving and loading: `model.json` (description and factors) and `weights.bpk`.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::factors::AugFactors;
use super::supernet::Net;
use crate::error::ModelError;
use crate::init::InitKind;
use crate::zoo::NetSpec;

impl Net {
    /// Writes `dir/model.json` (description and factors) and `dir/weights.bpk` (burnpack).
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let meta = SavedModel {
            spec: self.spec.clone(),
            factors: self.factors.clone(),
        };
        save_module(self, &meta, dir)
    }

    /// Reads a network written by [`Net::save`]; the active sub-network is the target.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        // A detector's folder has a `detector` section: say what it is, not which field
        // a classifier lacks.
        let (any, json_path): (serde_json::Value, _) = read_description(dir)?;
        if any.get("detector").is_some() {
            return Err(ModelError::file(
                json_path,
                "is a detector, not a classifier: `netaug detect` runs it and \
                          `netaug det-eval` scores its detections; ONNX export and `eval` \
                          outside its run take classifiers",
            ));
        }
        let (meta, json_path): (SavedModel, _) = read_description(dir)?;
        check_saved(&meta.spec, &meta.factors, &json_path)?;
        let net = Net::new(&meta.spec, &meta.factors, InitKind::HeFout, 0, device);
        load_weights(net, dir)
    }
}

/// Writes `meta` as `dir/model.json` and the module's weights as `dir/weights.bpk`.
pub(crate) fn save_module<M: Module + Clone>(
    module: &M,
    meta: &impl Serialize,
    dir: &Path,
) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let json_path = dir.join(MODEL_JSON);
    let json = serde_json::to_string_pretty(meta).expect("model descriptions serialize");
    std::fs::write(&json_path, json).map_err(|source| ModelError::Io {
        path: json_path,
        source,
    })?;
    let weights = dir.join(WEIGHTS_FILE);
    module
        .clone()
        .save_file(&weights)
        .map_err(|e| ModelError::file(weights, e))
}

/// Reads `dir/model.json` as `T`; returns it with the file's path.
pub(crate) fn read_description<T: for<'de> Deserialize<'de>>(
    dir: &Path,
) -> Result<(T, std::path::PathBuf), ModelError> {
    let json_path = dir.join(MODEL_JSON);
    let text = std::fs::read_to_string(&json_path).map_err(|source| ModelError::Io {
        path: json_path.clone(),
        source,
    })?;
    let meta = serde_json::from_str(&text).map_err(|source| ModelError::Spec {
        path: json_path.clone(),
        source,
    })?;
    Ok((meta, json_path))
}

/// Checks a saved description's spec and factors; errors name `json_path`.
pub(crate) fn check_saved(
    spec: &NetSpec,
    factors: &AugFactors,
    json_path: &Path,
) -> Result<(), ModelError> {
    let bad = |e: ModelError| ModelError::file(json_path.to_path_buf(), e);
    AugFactors::new(
        factors.aug_expand_list.clone(),
        factors.aug_width_mult_list.clone(),
    )
    .map_err(bad)?;
    spec.validate().map_err(bad)
}

/// Fills `module` from `dir/weights.bpk`.
pub(crate) fn load_weights<M: Module>(module: M, dir: &Path) -> Result<M, ModelError> {
    let weights = dir.join(WEIGHTS_FILE);
    if !weights.is_file() {
        return Err(ModelError::Io {
            path: weights,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let module = module
        .try_load_file(&weights)
        .map_err(|e| ModelError::file(weights.clone(), e))?;
    // A damaged file can decode to NaN or infinite weights, which would only show as a
    // 10% top-1 or a `null` loss much later.
    match non_finite_weights(&module) {
        Some(count) => Err(ModelError::file(
            weights,
            format!(
                "{count} weights are not finite (NaN or infinite): the file is damaged, or \
                 its run diverged"
            ),
        )),
        None => Ok(module),
    }
}

/// How many of `module`'s weights are NaN or infinite, `None` when all are finite.
pub fn non_finite_weights<M: Module>(module: &M) -> Option<usize> {
    let mut check = Finite { bad: None };
    module.visit(&mut check);
    check.bad
}

/// Counts the non-finite entries of a module's parameters.
struct Finite {
    bad: Option<usize>,
}

impl burn::module::ModuleVisitor for Finite {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        let t = param.val();
        let finite = t.clone().is_finite().int().sum().into_scalar::<i64>() as usize;
        let missing = t.shape().num_elements() - finite;
        if missing > 0 {
            *self.bad.get_or_insert(0) += missing;
        }
    }
}

/// Description file name of a saved network.
pub const MODEL_JSON: &str = "model.json";
/// Weights file name of a saved network.
pub const WEIGHTS_FILE: &str = "weights.bpk";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedModel {
    spec: NetSpec,
    factors: AugFactors,
}
