//! A safe face for the `gemm` crate's strided f32 matrix product (the GEMM burn-flex
//! itself runs on), so the kernels can multiply transposed views without copying them.

use std::mem::MaybeUninit;

/// A read-only matrix view: `data[r * row + c * col]` is element `(r, c)`.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row: usize,
    pub col: usize,
}

impl<'a> View<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row: cols,
            col: 1,
        }
    }

    /// The transpose, without a copy.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row: self.col,
            col: self.row,
            ..self
        }
    }

    /// Whether every element lies inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row + (self.cols - 1) * self.col < self.data.len()
    }
}

/// `dst = a · b` (or `dst += a · b` with `accumulate`), `dst` row-major `a.rows x b.cols`;
/// `threads > 1` lets gemm split the product over rayon's pool.
pub(super) fn matmul(dst: &mut [f32], accumulate: bool, a: View<'_>, b: View<'_>, threads: usize) {
    assert_eq!(dst.len(), a.rows * b.cols);
    // SAFETY: `dst` has the product's length and is borrowed mutably.
    unsafe { product(dst.as_mut_ptr(), accumulate, a, b, threads) }
}

/// `dst = a · b` into memory not yet written (as [`matmul`] without `accumulate`): every
/// element of `dst` is written.
pub(super) fn matmul_into(dst: &mut [MaybeUninit<f32>], a: View<'_>, b: View<'_>, threads: usize) {
    assert_eq!(dst.len(), a.rows * b.cols);
    // SAFETY: as for `matmul`; without `accumulate` gemm writes `dst` without reading it.
    unsafe { product(dst.as_mut_ptr().cast(), false, a, b, threads) }
}

/// `dst = a · b` (or `+=`) through gemm.
///
/// # Safety
/// `dst` must be valid for writes (and reads, with `accumulate`) of `a.rows * b.cols`
/// values and alias neither input.
unsafe fn product(dst: *mut f32, accumulate: bool, a: View<'_>, b: View<'_>, threads: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(b.rows == k && a.in_bounds() && b.in_bounds());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            // SAFETY: the caller's contract covers `m * n` writes.
            unsafe { std::ptr::write_bytes(dst, 0, m * n) };
        }
        return;
    }
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every element gemm reads inside the views, the
    // caller's contract every element it writes.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col as isize,
            a.row as isize,
            b.data.as_ptr(),
            b.col as isize,
            b.row as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: View<'_>, b: View<'_>) -> Vec<f32> {
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols)
                    .map(|p| a.data[i * a.row + p * a.col] * b.data[p * b.row + j * b.col])
                    .sum();
            }
        }
        out
    }

    #[test]
    fn strided_products_match_a_naive_loop() {
        let a: Vec<f32> = (0..35).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..35).map(|i| (i as f32 * 0.11).cos()).collect();
        let (a57, b75) = (View::rows(&a, 5, 7), View::rows(&b, 7, 5));
        for (x, y) in [(a57, b75), (a57.t().t(), b75), (b75.t(), a57.t())] {
            for threads in [1, 2] {
                let mut got = vec![1.0; x.rows * y.cols];
                matmul(&mut got, false, x, y, threads);
                let want = naive(x, y);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "{g} vs {w}");
                }
                // Accumulating adds the product to what is there.
                matmul(&mut got, true, x, y, threads);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - 2.0 * w).abs() < 1e-5);
                }
            }
        }
    }
}
