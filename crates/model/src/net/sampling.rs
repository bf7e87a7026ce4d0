//! Selecting a sub-network and drawing one ([`Active`] modes, the official `set_active`)
//! from the candidate widths of every site.

use rand::{Rng, RngCore};

use super::arch::{Active, ActiveArch};
use super::supernet::Net;
use crate::blocks::BlockWidth;
use crate::divisible::make_divisible;
use crate::error::ModelError;

impl Net {
    /// The widths in use.
    pub fn active(&self) -> &ActiveArch {
        &self.active
    }

    /// Selects a sub-network (the official `set_active(mode)`), and returns its widths.
    pub fn set_active(&mut self, mode: Active<'_>) -> &ActiveArch {
        self.active = self.sample(mode);
        &self.active
    }

    /// Selects the sub-network with the given widths (e.g. one recorded earlier with
    /// [`Net::sample`]); refuses widths this network cannot run.
    pub fn set_active_arch(&mut self, arch: ActiveArch) -> Result<(), ModelError> {
        let max = self.sample(Active::Max);
        let fits = |w: usize, m: usize| w >= 1 && w <= m;
        let opt_fits = |w: Option<usize>, m: Option<usize>| match (w, m) {
            (Some(w), Some(m)) => fits(w, m),
            (None, None) => true,
            _ => false,
        };
        let mut ok = fits(arch.stem, max.stem)
            && opt_fits(arch.first, max.first)
            && opt_fits(arch.head_conv, max.head_conv)
            && opt_fits(arch.post_pool_conv, max.post_pool_conv)
            && arch.blocks.len() == max.blocks.len();
        let mut in_ch = arch.first.unwrap_or(arch.stem);
        if self.first.as_ref().is_some_and(|f| f.identity) {
            ok &= arch.first == Some(arch.stem);
        }
        for ((w, m), block) in arch.blocks.iter().zip(&max.blocks).zip(&self.blocks) {
            ok &= fits(w.mid, m.mid) && fits(w.out, m.out);
            ok &= !block.identity() || w.out == in_ch;
            in_ch = w.out;
        }
        if !ok {
            return Err(ModelError::BadArchitecture(format!(
                "widths {arch:?} do not fit {} (widest: {max:?})",
                self.spec.name
            )));
        }
        self.active = arch;
        Ok(())
    }

    /// Draws the widths of a sub-network without selecting it.
    pub fn sample(&self, mode: Active<'_>) -> ActiveArch {
        let mut pick = Picker::new(mode);
        let stem = pick.width(&self.choices.stem);
        let first = self.first.as_ref().map(|f| {
            if f.identity {
                stem
            } else {
                pick.width(&self.choices.first)
            }
        });
        let mut in_ch = first.unwrap_or(stem);
        let mut widths = Vec::with_capacity(self.blocks.len());
        for (block, (outs, ratios)) in self.blocks.iter().zip(&self.choices.blocks) {
            let out = if block.identity() {
                in_ch
            } else {
                pick.width(outs)
            };
            let mid = make_divisible(pick.ratio(ratios) * in_ch as f64, 1);
            widths.push(BlockWidth { mid, out });
            in_ch = out;
        }
        let head_conv = self
            .head_conv
            .as_ref()
            .map(|_| pick.width(&self.choices.head_conv));
        let post_pool_conv = self
            .post_pool_conv
            .as_ref()
            .map(|_| pick.width(&self.choices.post_pool_conv));
        ActiveArch {
            stem,
            first,
            blocks: widths,
            head_conv,
            post_pool_conv,
        }
    }
}

/// Picks one candidate per site for an [`Active`] mode.
struct Picker<'a> {
    rng: Option<&'a mut dyn RngCore>,
    random_width: bool,
    random_expand: bool,
    widest: bool,
}

impl<'a> Picker<'a> {
    fn new(mode: Active<'a>) -> Self {
        let (rng, random_width, random_expand, widest) = match mode {
            Active::Min => (None, false, false, false),
            Active::Max => (None, false, false, true),
            Active::Random(r) => (Some(r), true, true, false),
            Active::MinW(r) => (Some(r), false, true, false),
            Active::MinE(r) => (Some(r), true, false, false),
        };
        Self {
            rng,
            random_width,
            random_expand,
            widest,
        }
    }

    fn choose<T: Copy + PartialOrd>(&mut self, list: &[T], random: bool) -> T {
        let best = |keep_new: fn(&T, &T) -> bool| {
            list.iter()
                .copied()
                .reduce(|a, b| if keep_new(&b, &a) { b } else { a })
                .expect("candidate lists are never empty")
        };
        match (&mut self.rng, random, self.widest) {
            (_, _, true) => best(|new, old| new > old),
            (Some(r), true, _) => list[r.random_range(0..list.len())],
            _ => best(|new, old| new < old),
        }
    }

    fn width(&mut self, list: &[usize]) -> usize {
        self.choose(list, self.random_width)
    }

    fn ratio(&mut self, list: &[f64]) -> f64 {
        self.choose(list, self.random_expand)
    }
}
