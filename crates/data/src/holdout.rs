//! A validation set carved out of a training split: a fixed, seeded, class-stratified
//! sample, so that learning rates, best epochs and exports are chosen without ever
//! looking at the test set.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::dataset::Sample;
use crate::error::DataError;

/// The training split cut in two: what is trained on and what validates.
#[derive(Clone, Debug)]
pub struct Holdout {
    /// Samples left for training, in the split's order.
    pub train: Vec<Sample>,
    /// Held-out samples, in the split's order.
    pub val: Vec<Sample>,
}

/// Holds `n` of `samples` out, stratified by label: each class gives its share of `n`
/// (largest remainders break the rounding, lower labels first on ties), drawn by a
/// shuffle seeded by `seed` and the class. The same `(samples, n, seed)` always gives the
/// same split; every sample lands in exactly one half.
pub fn holdout(samples: &[Sample], n: usize, seed: u64) -> Result<Holdout, DataError> {
    let total = samples.len();
    if n == 0 || n >= total {
        return Err(DataError::BadOption(format!(
            "a validation split of {n} images needs 1 to {} of the {total} training images",
            total.saturating_sub(1)
        )));
    }
    let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        by_class.entry(s.label).or_default().push(i);
    }
    // Hamilton's method: floor of each class's exact share, then one more to the
    // largest remainders until the shares add up to n.
    let exact: Vec<(u32, usize, f64)> = by_class
        .iter()
        .map(|(&c, idx)| {
            let share = n as f64 * idx.len() as f64 / total as f64;
            (c, share.floor() as usize, share - share.floor())
        })
        .collect();
    let mut quota: BTreeMap<u32, usize> = exact.iter().map(|&(c, q, _)| (c, q)).collect();
    let mut left = n - quota.values().sum::<usize>();
    let mut order: Vec<&(u32, usize, f64)> = exact.iter().collect();
    order.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    for &&(c, _, _) in order.iter().cycle() {
        if left == 0 {
            break;
        }
        let q = quota.get_mut(&c).expect("every class has a quota");
        if *q < by_class[&c].len() {
            *q += 1;
            left -= 1;
        }
    }
    let mut held = vec![false; total];
    for (c, idx) in &by_class {
        let mut idx = idx.clone();
        let class_seed = seed ^ (u64::from(*c) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        idx.shuffle(&mut ChaCha8Rng::seed_from_u64(class_seed));
        for &i in &idx[..quota[c]] {
            held[i] = true;
        }
    }
    let (mut train, mut val) = (Vec::with_capacity(total - n), Vec::with_capacity(n));
    for (s, h) in samples.iter().zip(held) {
        if h {
            val.push(s.clone());
        } else {
            train.push(s.clone());
        }
    }
    Ok(Holdout { train, val })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::dataset::ImageRef;

    fn samples(per_class: &[usize]) -> Vec<Sample> {
        let mut out = Vec::new();
        for (c, &k) in per_class.iter().enumerate() {
            for i in 0..k {
                out.push(Sample {
                    image: ImageRef::File(PathBuf::from(format!("{c}/{i}.png"))),
                    label: c as u32,
                });
            }
        }
        out
    }

    fn names(s: &[Sample]) -> Vec<String> {
        s.iter().map(|s| s.image.describe()).collect()
    }

    #[test]
    fn halves_are_disjoint_cover_the_split_and_follow_the_classes() {
        let all = samples(&[600, 300, 100]);
        let h = holdout(&all, 100, 7).unwrap();
        assert_eq!((h.train.len(), h.val.len()), (900, 100));
        let count = |c: u32| h.val.iter().filter(|s| s.label == c).count();
        assert_eq!((count(0), count(1), count(2)), (60, 30, 10));
        let mut both = names(&h.train);
        both.extend(names(&h.val));
        both.sort();
        let mut want = names(&all);
        want.sort();
        assert_eq!(both, want, "every sample in exactly one half");
    }

    #[test]
    fn rounding_adds_up_and_the_seed_decides_which_images() {
        let all = samples(&[7, 7, 7]);
        let h = holdout(&all, 10, 1).unwrap();
        assert_eq!(h.val.len(), 10);
        let again = holdout(&all, 10, 1).unwrap();
        assert_eq!(names(&h.val), names(&again.val));
        let other = holdout(&all, 10, 2).unwrap();
        assert_ne!(names(&h.val), names(&other.val));
    }

    #[test]
    fn sizes_outside_the_split_are_refused() {
        let all = samples(&[3, 3]);
        for n in [0, 6, 7] {
            let e = holdout(&all, n, 0).unwrap_err().to_string();
            assert!(e.contains("1 to 5 of the 6"), "{e}");
        }
    }
}
