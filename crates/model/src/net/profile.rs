//! Params and MACs of the active sub-network.

use super::supernet::Net;
use crate::profile::Profile;

impl Net {
    /// Params and MACs of the active sub-network for one `resolution x resolution` image.
    pub fn profile(&self, resolution: usize) -> Profile {
        let params = self
            .active_weights()
            .iter()
            .map(|w| w.active.iter().product::<usize>() as u64)
            .sum();
        let (trunk_macs, in_ch, h, w) = self.trunk_macs(resolution);
        let a = &self.active;
        let (mut macs, mut in_ch) = (trunk_macs, in_ch);
        if let (Some(conv), Some(out)) = (&self.head_conv, a.head_conv) {
            macs += conv.conv.macs(in_ch, out, h, w).0;
            in_ch = out;
        }
        if let (Some(conv), Some(out)) = (&self.post_pool_conv, a.post_pool_conv) {
            macs += conv.conv.macs(in_ch, out, 1, 1).0;
            in_ch = out;
        }
        macs += (in_ch * self.classifier.out_features()) as u64;
        Profile { params, macs }
    }

    /// Params and MACs of the active sub-network's stem and blocks only: the backbone a
    /// detector uses (no head conv, pooling or classifier).
    pub fn trunk_profile(&self, resolution: usize) -> Profile {
        let params = self
            .active_weights()
            .iter()
            .filter(|w| {
                ["stem.", "first.", "blocks."]
                    .iter()
                    .any(|p| w.name.starts_with(p))
            })
            .map(|w| w.active.iter().product::<usize>() as u64)
            .sum();
        Profile {
            params,
            macs: self.trunk_macs(resolution).0,
        }
    }

    /// MACs of stem and blocks, and the channels and size of the last block's output.
    fn trunk_macs(&self, resolution: usize) -> (u64, usize, usize, usize) {
        let a = &self.active;
        let (mut macs, mut h, mut w) =
            self.stem
                .conv
                .macs(self.spec.in_channels, a.stem, resolution, resolution);
        if self.spec.stem.max_pool {
            (h, w) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1);
        }
        let mut in_ch = a.stem;
        if let (Some(first), Some(out)) = (&self.first, a.first) {
            let (m, h2, w2) = first.macs(in_ch, out, h, w);
            (macs, h, w, in_ch) = (macs + m, h2, w2, out);
        }
        for (block, bw) in self.blocks.iter().zip(&a.blocks) {
            let (m, h2, w2) = block.macs(in_ch, *bw, h, w);
            (macs, h, w, in_ch) = (macs + m, h2, w2, bw.out);
        }
        (macs, in_ch, h, w)
    }
}
