//! Output buffers that the kernels' threads zero and fill chunk by chunk.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::vector::wide;

/// A kernel's output of `len` values, each chunk zeroed by the thread that then writes it.
/// `vec![0.0; len]` zeroes the whole buffer on the calling thread first (calloc of reused
/// memory is a memset), a serial pass over every output while the other cores wait.
pub(super) struct Output {
    buf: Box<[MaybeUninit<f32>]>,
    /// Values zeroed so far (every one, once the chunks have all been taken).
    zeroed: AtomicUsize,
}

impl Output {
    /// `len` values, not yet written.
    pub fn new(len: usize) -> Self {
        Self {
            buf: Box::new_uninit_slice(len),
            zeroed: AtomicUsize::new(0),
        }
    }

    /// The buffer in chunks of `chunk` values (the last may be shorter), each zeroed when
    /// its task takes it.
    pub fn par_chunks_mut(
        &mut self,
        chunk: usize,
    ) -> impl IndexedParallelIterator<Item = &mut [f32]> + '_ {
        let zeroed = &self.zeroed;
        self.buf.par_chunks_mut(chunk).map(move |c| {
            c.fill(MaybeUninit::new(0.0));
            zeroed.fetch_add(c.len(), Ordering::Relaxed);
            // SAFETY: every element of `c` was written just above, and `f32` has the
            // layout of `MaybeUninit<f32>`.
            unsafe { &mut *(c as *mut [MaybeUninit<f32>] as *mut [f32]) }
        })
    }

    /// The values. Should a caller have left chunks untaken, the whole buffer is zeroed
    /// rather than read uninitialized.
    pub fn into_vec(mut self) -> Vec<f32> {
        if *self.zeroed.get_mut() != self.buf.len() {
            self.buf.fill(MaybeUninit::new(0.0));
        }
        // SAFETY: every element is initialized: all chunks were zeroed (and maybe then
        // written) by `par_chunks_mut`, or the whole buffer just above.
        unsafe { self.buf.assume_init() }.into_vec()
    }
}

/// Values of one task of [`zip_map`], at least (16 KiB of output).
const TASK_VALUES: usize = 4096;

/// `f(k)(a[i], b[i])` for every `i`, with `k` the index of the chunk of `chunk` values
/// that holds `i`: chunks in parallel, each written straight into fresh memory (every
/// value is written once, so nothing is zeroed first).
pub(super) fn zip_map<F>(
    a: &[f32],
    b: &[f32],
    chunk: usize,
    f: impl Fn(usize) -> F + Sync,
) -> Vec<f32>
where
    F: Fn(f32, f32) -> f32,
{
    assert_eq!(a.len(), b.len(), "zip_map of slices of different lengths");
    let mut buf = Box::<[f32]>::new_uninit_slice(a.len());
    let chunk = chunk.max(1);
    // A task takes whole chunks, at least TASK_VALUES values: a batch norm's chunk is one
    // plane, a single value on a 1x1 map, and a task per value cost more than its work.
    let per_task = (TASK_VALUES / chunk).max(1);
    buf.par_chunks_mut(chunk * per_task)
        .zip(
            a.par_chunks(chunk * per_task)
                .zip(b.par_chunks(chunk * per_task)),
        )
        .enumerate()
        .for_each(|(t, (out, (a, b)))| {
            wide(
                #[inline(always)]
                || {
                    let chunks = out
                        .chunks_mut(chunk)
                        .zip(a.chunks(chunk).zip(b.chunks(chunk)));
                    for (j, (out, (a, b))) in chunks.enumerate() {
                        let f = f(t * per_task + j);
                        for (o, (&x, &y)) in out.iter_mut().zip(a.iter().zip(b)) {
                            o.write(f(x, y));
                        }
                    }
                },
            )
        });
    // SAFETY: the buffer, `a` and `b` have one length, so their chunks pair up one to one
    // and every element of every chunk of the buffer was written above.
    unsafe { buf.assume_init() }.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_start_at_zero_and_keep_what_is_written() {
        let mut out = Output::new(10);
        out.par_chunks_mut(3).enumerate().for_each(|(i, c)| {
            assert!(c.iter().all(|&v| v == 0.0));
            c[0] = i as f32 + 1.0;
        });
        let v = out.into_vec();
        assert_eq!(v, [1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 3.0, 0.0, 0.0, 4.0]);
    }

    #[test]
    fn zip_map_writes_every_value_with_its_chunks_function() {
        let (a, b): (Vec<f32>, Vec<f32>) = (0..7).map(|i| (i as f32, 10.0 * i as f32)).unzip();
        let v = zip_map(&a, &b, 3, |k| move |x, y| x + y + 100.0 * k as f32);
        assert_eq!(v, [0.0, 11.0, 22.0, 133.0, 144.0, 155.0, 266.0]);
        // Chunks of one value, many per task, and a length that leaves a short last task:
        // each value still gets its own chunk's function.
        let n = 3 * TASK_VALUES + 7;
        let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let v = zip_map(&a, &a, 1, |k| move |x, _| x - k as f32);
        assert!(v.iter().all(|&d| d == 0.0));
        let v = zip_map(&a, &a, 5, |k| {
            move |x, _| (x as usize / 5 == k) as u8 as f32
        });
        assert!(v.iter().all(|&d| d == 1.0));
        assert!(zip_map(&[], &[], 0, |_| |x: f32, _| x).is_empty());
    }

    #[test]
    fn untaken_chunks_read_as_zero() {
        assert_eq!(Output::new(4).into_vec(), [0.0; 4]);
        let mut out = Output::new(6);
        out.par_chunks_mut(3).take(1).for_each(|c| c.fill(5.0));
        assert_eq!(out.into_vec(), [0.0; 6]);
    }
}
