//! `profile`: the params and MACs of a zoo network (and its int8 microcontroller memory),
//! of a detector on it, its description, or the supernet's sampled sub-networks.

use std::fmt;

use burn::tensor::Device;
use netaug_deploy::memory::LayerMemory;
use netaug_deploy::{Graph, Memory};
use netaug_model::{Active, ActiveArch, AugFactors, Detector, InitKind, Net, NetSpec, zoo};
use serde::Serialize;

use crate::OpsError;

/// Which network, at what size.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct ProfileOptions {
    /// Zoo name: tinymbv2, mbv2-<w>, proxylessnas-<w>, mcunet, mbv3-<w>, resnet50.
    #[cfg_attr(feature = "clap", arg(long))]
    pub model: String,
    /// Input resolution in pixels (square images).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = crate::DEFAULT_RESOLUTION))]
    pub resolution: usize,
    /// Classifier outputs.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1000))]
    pub classes: usize,
    /// Image channels (3 for RGB, 1 for grayscale).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 3))]
    pub in_channels: usize,
    /// Profile the YOLOv3-style detector on this backbone instead (`--classes` are then
    /// the detector's, 3 anchors per scale).
    #[cfg_attr(feature = "clap", arg(long))]
    pub detector: bool,
    /// With the microcontroller memory per layer (flash, and SRAM alive while it runs).
    #[cfg_attr(feature = "clap", arg(long, conflicts_with = "detector"))]
    pub layers: bool,
}

/// The size of a network.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    /// Zoo name.
    pub model: String,
    /// Only for a detector, so a classifier's output keeps its shape.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub detector: bool,
    /// Input side.
    pub resolution: usize,
    /// Classes.
    pub classes: usize,
    /// Parameters.
    pub params: u64,
    /// MACs.
    pub macs: u64,
    /// int8 deployment flash of a classifier (netaug-deploy's model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flash_bytes: Option<u64>,
    /// Its peak SRAM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_sram_bytes: Option<u64>,
    /// Per layer, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerMemory>>,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (p, m) = (self.params, self.macs);
        write!(
            f,
            "{}{}  resolution {}  classes {}\n  params {p:>14}  ({:.2}M)\n  MACs   {m:>14}  ({:.1}M)",
            self.model,
            if self.detector { " detector" } else { "" },
            self.resolution,
            self.classes,
            p as f64 / 1e6,
            m as f64 / 1e6
        )?;
        if let (Some(flash), Some(sram)) = (self.flash_bytes, self.peak_sram_bytes) {
            write!(
                f,
                "\n  flash  {flash:>14}  ({:.1} KB, int8 weights + int32 biases)\n  SRAM   \
                 {sram:>14}  ({:.1} KB peak, int8 activations, layer by layer)",
                flash as f64 / 1024.0,
                sram as f64 / 1024.0
            )?;
        }
        if let Some(layers) = &self.layers {
            write!(
                f,
                "\n  {:<32} {:>12} {:>12}",
                "layer", "flash (B)", "SRAM (B)"
            )?;
            for l in layers {
                write!(
                    f,
                    "\n  {:<32} {:>12} {:>12}",
                    l.name, l.flash_bytes, l.sram_bytes
                )?;
            }
        }
        Ok(())
    }
}

/// The widest, the target and N sampled sub-networks of a supernet.
#[derive(Clone, Debug, Serialize)]
pub struct Arches {
    /// Zoo name.
    pub model: String,
    /// The target: every width at its base value.
    pub min: ActiveArch,
    /// The widest sub-network (the supernet's weight shapes).
    pub max: ActiveArch,
    /// One augmented sub-network per training step.
    pub sampled: Vec<ActiveArch>,
}

/// The description of `o.model` (the NetSpec JSON).
pub fn spec(o: &ProfileOptions) -> Result<NetSpec, OpsError> {
    if o.resolution < 8 {
        return Err(OpsError::input(
            format!("--resolution {}", o.resolution),
            "must be at least 8 pixels",
        ));
    }
    zoo::spec(&o.model, o.classes, o.in_channels).map_err(|e| OpsError::Input(e.to_string()))
}

/// Params, MACs and (classifiers) int8 memory of `o.model`.
pub fn profile(o: &ProfileOptions) -> Result<Profile, OpsError> {
    let spec = spec(o)?;
    let (factors, device) = (AugFactors::none(), Device::flex());
    let (p, memory) = if o.detector {
        let det = Detector::new(&spec, &factors, o.classes, 3, InitKind::HeFout, 0, &device);
        (det.profile(o.resolution), None)
    } else {
        let net = Net::new(&spec, &factors, InitKind::HeFout, 0, &device);
        let memory = Memory::of(&Graph::of(&net, o.resolution)?);
        (net.profile(o.resolution), Some(memory))
    };
    Ok(Profile {
        model: o.model.clone(),
        detector: o.detector,
        resolution: o.resolution,
        classes: o.classes,
        params: p.params,
        macs: p.macs,
        flash_bytes: memory.as_ref().map(|m| m.flash_bytes),
        peak_sram_bytes: memory.as_ref().map(|m| m.peak_sram_bytes),
        layers: memory.filter(|_| o.layers).map(|m| m.layers),
    })
}

/// The supernet of `o.model` with the paper's factors: its target, its widest and `n`
/// sub-networks drawn as `bench train --netaug` draws them, one per step.
pub fn arches(o: &ProfileOptions, n: usize) -> Result<Arches, OpsError> {
    let spec = spec(o)?;
    let (e, w) = zoo::paper_factors(&spec.name);
    let factors = AugFactors::new(e, w).map_err(|e| OpsError::Input(e.to_string()))?;
    let net = Net::new(&spec, &factors, InitKind::HeFout, 0, &Device::flex());
    let mut rng = netaug_trainer::bench::arch_rng();
    Ok(Arches {
        model: o.model.clone(),
        min: net.sample(Active::Min),
        max: net.sample(Active::Max),
        sampled: (0..n)
            .map(|_| net.sample(Active::Random(&mut rng)))
            .collect(),
    })
}
