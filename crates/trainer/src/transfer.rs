//! `model.init_from`: start a run from saved weights. The source may be narrower than the
//! network being trained (an exported tiny net into a NetAug supernet): each tensor fills
//! the leading slice of its counterpart, the rest keeps its fresh init. The classifier is
//! left fresh when the class count differs (transfer to another dataset). Official NetAug
//! PyTorch checkpoints come in through [`crate::pth`].

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use burn::store::{ModuleSnapshot, bridge};
use burn::tensor::{Device, TensorData};
use netaug_model::Net;

use crate::checkpoint::resolve_net;
use crate::error::TrainError;
use crate::pth;

/// What [`init_from`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitReport {
    /// Where the weights came from.
    pub source: String,
    /// Tensors copied (whole or into a leading slice).
    pub copied: usize,
    /// Classifier tensors left at their fresh init (class count differs).
    pub fresh_classifier: usize,
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "initialized {} tensors from {}",
            self.copied, self.source
        )?;
        if self.fresh_classifier > 0 {
            write!(f, "; classifier re-initialized (class count differs)")?;
        }
        Ok(())
    }
}

/// Loads the weights at `path` into `net`: a run, checkpoint or exported-net folder, or an
/// official NetAug PyTorch checkpoint of the same zoo model.
pub fn init_from(net: &mut Net, path: &Path, device: &Device) -> Result<InitReport, TrainError> {
    if pth::is_pytorch(path) {
        // A supernet checkpoint gives its target net.
        let source = pth::load_official(&net.spec().name, path, None, device)?.export();
        return copy_into(net, &source, &path.display().to_string());
    }
    let dir = resolve_net(path)?;
    let source = Net::load(&dir, device)?;
    copy_into(net, &source, &dir.display().to_string())
}

/// Copies every tensor of `source` into the leading slice of the same tensor of `net`.
pub fn copy_into(net: &mut Net, source: &Net, name: &str) -> Result<InitReport, TrainError> {
    let same_classes = net.spec().classes == source.spec().classes;
    let mut from: HashMap<String, _> = source
        .collect(None, None, false)
        .into_iter()
        .map(|t| (t.name.clone(), t))
        .collect();
    let mut report = InitReport {
        source: name.to_string(),
        copied: 0,
        fresh_classifier: 0,
    };
    let mut updated = Vec::new();
    for dest in net.collect(None, None, false) {
        let is_classifier = dest.name.starts_with("classifier.");
        if is_classifier && !same_classes {
            report.fresh_classifier += 1;
            continue;
        }
        let Some(src) = from.remove(&dest.name) else {
            return Err(mismatch(
                name,
                net,
                source,
                &format!("it has no `{}`", dest.name),
            ));
        };
        let (d_shape, s_shape) = (dest.shape.to_vec(), src.shape.to_vec());
        if d_shape.len() != s_shape.len() || s_shape.iter().zip(&d_shape).any(|(s, d)| s > d) {
            return Err(mismatch(
                name,
                net,
                source,
                &format!("`{}` is {s_shape:?} there, {d_shape:?} here", dest.name),
            ));
        }
        let read = |t| {
            bridge::to_data(t)
                .map(|d| d.convert::<f32>().try_into_vec::<f32>().unwrap_or_default())
                .map_err(|e| TrainError::file(name, format!("reading `{}`: {e}", dest.name)))
        };
        let mut values = read(&dest)?;
        let src_values = read(&src)?;
        fill_leading(&mut values, &d_shape, &src_values, &s_shape);
        updated.push(bridge::from_data(
            TensorData::new(values, d_shape),
            dest.name.clone(),
            dest.param_id,
        ));
        report.copied += 1;
    }
    let applied = net.apply(updated, None, None, false);
    if !applied.errors.is_empty() {
        return Err(TrainError::file(name, format!("{:?}", applied.errors)));
    }
    Ok(report)
}

fn mismatch(name: &str, net: &Net, source: &Net, why: &str) -> TrainError {
    TrainError::file(
        name,
        format!(
            "{} does not fit {}: {why}",
            source.spec().name,
            net.spec().name
        ),
    )
}

/// Writes `src` (shape `s`) into the leading block of `dest` (shape `d`, same rank).
fn fill_leading(dest: &mut [f32], d: &[usize], src: &[f32], s: &[usize]) {
    let mut index = vec![0usize; s.len()];
    for &v in src {
        let mut flat = 0;
        for (i, &x) in index.iter().enumerate() {
            flat = flat * d[i] + x;
        }
        dest[flat] = v;
        // Next multi-index of `s`, last dimension fastest.
        for i in (0..s.len()).rev() {
            index[i] += 1;
            if index[i] < s[i] {
                break;
            }
            index[i] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_the_leading_block() {
        let mut d = vec![0.0; 2 * 3];
        fill_leading(&mut d, &[2, 3], &[1.0, 2.0, 3.0, 4.0], &[2, 2]);
        assert_eq!(d, vec![1.0, 2.0, 0.0, 3.0, 4.0, 0.0]);
        let mut d = vec![0.0; 4];
        fill_leading(&mut d, &[4], &[7.0], &[1]);
        assert_eq!(d, vec![7.0, 0.0, 0.0, 0.0]);
    }
}
