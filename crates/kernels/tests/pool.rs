//! `join_pool` adopts the calling thread into rayon's global pool (its own test binary:
//! the global pool can be built once per process).

use rayon::prelude::*;

#[test]
fn the_calling_thread_joins_the_global_pool_once() {
    assert_eq!(rayon::current_thread_index(), None);
    netaug_kernels::join_pool().expect("no global pool yet");
    // Parallel loops called from here now run with this thread as worker 0.
    assert_eq!(rayon::current_thread_index(), Some(0));
    let sum: u64 = (0..10_000u64).into_par_iter().sum();
    assert_eq!(sum, 49_995_000);
    assert!(
        netaug_kernels::join_pool().is_err(),
        "a second pool is refused"
    );
}
