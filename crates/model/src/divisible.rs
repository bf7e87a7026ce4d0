//! Channel rounding rules of the official code.

/// `make_divisible(v, divisor)` of the official code (from the TF MobileNet repo):
/// round `v` to the nearest multiple of `divisor`, at least `divisor`, and add one
/// `divisor` when rounding lost more than 10%.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    // Python's `int()` truncates toward zero; every width here is positive.
    let rounded = ((v + d / 2.0).trunc() as usize) / divisor * divisor;
    let mut new_v = rounded.max(divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// Python 3's `round()`: to the nearest integer, ties to even.
pub fn round_half_even(v: f64) -> usize {
    let r = v.round_ties_even();
    r.max(0.0) as usize
}

/// The official `aug_width(base, factors, 1)`: every candidate width of one layer.
pub fn aug_width(base: usize, factors: &[f64]) -> Vec<usize> {
    factors
        .iter()
        .map(|f| make_divisible(base as f64 * f, 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_official_rounding() {
        // Values checked by hand against the Python function.
        assert_eq!(make_divisible(32.0 * 0.35, 8), 16); // 11.2 -> 16 (8 lost > 10%)
        assert_eq!(make_divisible(16.0 * 0.35, 8), 8);
        assert_eq!(make_divisible(24.0 * 0.35, 8), 8);
        assert_eq!(make_divisible(160.0 * 0.35, 8), 56);
        assert_eq!(make_divisible(320.0 * 0.35, 8), 112);
        assert_eq!(make_divisible(1280.0 * 0.35, 8), 448);
        assert_eq!(make_divisible(96.0 * 0.35, 8), 32); // 33.6 -> 32
        assert_eq!(make_divisible(2.4, 1), 3); // 2 lost > 10%
        assert_eq!(make_divisible(2.5, 1), 3);
        assert_eq!(make_divisible(0.2, 1), 1);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(3.5), 4);
        assert_eq!(aug_width(16, &[1.0, 1.8, 2.6]), vec![16, 29, 42]);
    }
}
