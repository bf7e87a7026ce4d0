//! Cutting the active sub-network out as a plain network (the official `export`).

use super::arch::Choices;
use super::factors::AugFactors;
use super::supernet::Net;
use crate::blocks::{Block, MbConv};
use crate::zoo::NetSpec;

impl Net {
    /// The active sub-network as a plain network with its own weights, whose outputs equal
    /// this network's at the same widths.
    pub fn export(&self) -> Net {
        let a = &self.active;
        let spec = self.active_spec();
        let mut in_ch = a.stem;
        let first = match (&self.first, a.first) {
            (Some(f), Some(out)) => {
                let f = f.export(in_ch, out);
                in_ch = out;
                Some(f)
            }
            _ => None,
        };
        let blocks = self
            .blocks
            .iter()
            .zip(&a.blocks)
            .map(|(b, w)| {
                let b = b.export(in_ch, *w);
                in_ch = w.out;
                b
            })
            .collect();
        let head_conv = match (&self.head_conv, a.head_conv) {
            (Some(c), Some(out)) => {
                let c = c.export(in_ch, out);
                in_ch = out;
                Some(c)
            }
            _ => None,
        };
        let post_pool_conv = match (&self.post_pool_conv, a.post_pool_conv) {
            (Some(c), Some(out)) => {
                let c = c.export(in_ch, out);
                in_ch = out;
                Some(c)
            }
            _ => None,
        };
        let factors = AugFactors::none();
        let choices = Choices::new(&spec, &factors);
        Net {
            stem: self.stem.export(self.spec.in_channels, a.stem),
            first,
            blocks,
            head_conv,
            post_pool_conv,
            classifier: self.classifier.export(in_ch),
            spec,
            factors,
            choices,
            active: a.clone(),
            stochastic: self.stochastic.clone(),
        }
    }

    /// The description of the active sub-network.
    fn active_spec(&self) -> NetSpec {
        let a = &self.active;
        let mut spec = self.spec.clone();
        spec.stem.out = a.stem;
        if let (Some(f), Some(out)) = (&mut spec.first, a.first) {
            f.out = out;
        }
        let mut in_ch = a.first.unwrap_or(a.stem);
        for ((b, w), block) in spec.blocks.iter_mut().zip(&a.blocks).zip(&self.blocks) {
            b.in_ch = in_ch;
            b.mid = w.mid;
            b.out = w.out;
            if let (
                Some(se),
                Block::MbConv(MbConv {
                    se: Some(dyn_se), ..
                }),
            ) = (&mut b.se, block)
            {
                se.hidden = dyn_se.hidden(w.mid);
            }
            in_ch = w.out;
        }
        if let (Some(h), Some(out)) = (&mut spec.head_conv, a.head_conv) {
            h.out = out;
        }
        if let (Some(p), Some(out)) = (&mut spec.post_pool_conv, a.post_pool_conv) {
            p.out = out;
        }
        spec
    }
}
