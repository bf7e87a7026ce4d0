//! What a NetAug epoch samples, and the seeds its streams draw from: shared by the
//! classification and the detection loop.

use netaug_model::Active;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::NetAugConfig;

/// Tells the architecture sampler's stream apart from the device's, which a step seeds
/// with the same step seed.
const ARCH_STREAM: u64 = 0xa5a5_a5a5;

/// Calls `f` with the sub-network mode `mode` asks for, its random choices drawn from the
/// step's own stream: the same step seed gives the same augmented net on every backend
/// and in both loops.
pub(crate) fn with_sampled<T>(mode: AugMode, step_seed: u64, f: impl FnOnce(Active<'_>) -> T) -> T {
    let mut rng = ChaCha8Rng::seed_from_u64(step_seed ^ ARCH_STREAM);
    f(match mode {
        AugMode::Random => Active::Random(&mut rng),
        AugMode::MinWidth => Active::MinW(&mut rng),
        AugMode::MinExpand => Active::MinE(&mut rng),
    })
}

/// Which augmented nets an epoch samples (official `netaug_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AugMode {
    /// Random width and expand factors.
    Random,
    /// Width at the target, random expand factors (the last `stop_aug_w_epoch` epochs).
    MinWidth,
    /// Expand at the target, random widths (the last `stop_aug_e_epoch` epochs).
    MinExpand,
}

impl AugMode {
    /// The mode of 0-based `epoch` of `total`; `None` once NetAug has stopped
    /// (`stop_netaug_epoch`): plain steps of the target net.
    pub(crate) fn of(netaug: &NetAugConfig, epoch: usize, total: usize) -> Option<Self> {
        let remaining = total - epoch;
        if remaining <= netaug.stop_netaug_epoch {
            None
        } else if remaining <= netaug.stop_aug_w_epoch {
            Some(Self::MinWidth)
        } else if remaining <= netaug.stop_aug_e_epoch {
            Some(Self::MinExpand)
        } else {
            Some(Self::Random)
        }
    }
}

/// One stream seed from two numbers (splitmix64).
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetAugConfig;

    #[test]
    fn netaug_modes_follow_the_official_stop_epochs() {
        let netaug = NetAugConfig {
            aug_expand_list: vec![1.0, 2.0],
            aug_width_mult_list: vec![1.0, 2.0],
            alpha: 1.0,
            stop_aug_w_epoch: 4,
            stop_aug_e_epoch: 6,
            stop_netaug_epoch: 2,
            sort_channels: true,
            bn_recal_images: 16_000,
        };
        let modes: Vec<Option<AugMode>> = (0..10).map(|e| AugMode::of(&netaug, e, 10)).collect();
        use AugMode::*;
        assert_eq!(
            modes,
            [
                Some(Random),
                Some(Random),
                Some(Random),
                Some(Random),
                Some(MinExpand),
                Some(MinExpand),
                Some(MinWidth),
                Some(MinWidth),
                None,
                None
            ]
        );
    }
}
