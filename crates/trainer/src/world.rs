//! The processes one run is spread over (its ranks, started by `mpirun` or Slurm's
//! `srun`), and what they say to each other. The transport is a [`Collective`]: the `netaug`
//! binary built with its `mpi` feature gives one over MPI; a run in one process has none.
//!
//! Every rank holds the same weights and takes its consecutive share of each global batch
//! (`ranks x run.replicas` shares, as `run.replicas` cuts a batch in one process). A step's
//! gradient is summed over the ranks in rank order on rank 0 and sent back from there, so
//! every rank steps identical weights, and 2 ranks of 1 replica give the bits of 1 process
//! of 2 replicas. Rank 0 alone writes the run folder and evaluates; the other ranks read
//! the folder only to resume, once rank 0 has opened it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::error::TrainError;

/// How ranks exchange numbers. Every call is collective: all ranks make it, in the same
/// order, with buffers of the same length (`broadcast_bytes` aside).
pub trait Collective: Send + Sync {
    /// This process's rank, from 0.
    fn rank(&self) -> usize;
    /// How many ranks there are.
    fn size(&self) -> usize;
    /// On rank 0, every rank's `values` one after another in rank order; elsewhere empty.
    fn gather(&self, values: &[f32]) -> Vec<f32>;
    /// Rank 0's `values` written into every rank's.
    fn broadcast(&self, values: &mut [f32]);
    /// Every rank's `value`, in rank order, on every rank.
    fn all_gather(&self, value: u64) -> Vec<u64>;
    /// Rank 0's bytes on every rank (the other ranks' `bytes` are replaced).
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>);
}

/// The ranks of a run: one process unless a [`Collective`] says otherwise.
#[derive(Clone, Default)]
pub struct World {
    comm: Option<Arc<dyn Collective>>,
    /// What rank 0 told the others about how the run starts: 0 nothing yet, else 1 +
    /// [`Start::code`].
    said: Arc<AtomicU8>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "World(rank {} of {})", self.rank(), self.size())
    }
}

/// What rank 0 tells the other ranks once it has opened (or refused) the run folder.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Start {
    /// Train (resuming if the folder has a checkpoint).
    Train,
    /// The run is already done; nothing to train.
    Done,
    /// Rank 0 refused or failed before training: its message, and whether it is the
    /// user's input at fault.
    Refused { message: String, input: bool },
}

impl Start {
    /// 0 train, 1 done, 2 refused.
    fn code(&self) -> u8 {
        match self {
            Start::Train => 0,
            Start::Done => 1,
            Start::Refused { .. } => 2,
        }
    }
}

impl World {
    /// The ranks `comm` connects.
    pub fn new(comm: Arc<dyn Collective>) -> Self {
        Self {
            comm: Some(comm),
            said: Arc::default(),
        }
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.comm.as_ref().map_or(0, |c| c.rank())
    }

    /// How many ranks train the run.
    pub fn size(&self) -> usize {
        self.comm.as_ref().map_or(1, |c| c.size())
    }

    /// Whether this process writes the run folder (rank 0).
    pub fn leads(&self) -> bool {
        self.rank() == 0
    }

    /// The ranks' transport, when there is more than one rank.
    fn spread(&self) -> Option<&dyn Collective> {
        self.comm.as_deref().filter(|c| c.size() > 1)
    }

    /// Whether [`World::start`] has been called.
    pub(crate) fn started(&self) -> bool {
        self.said.load(Ordering::Relaxed) != 0
    }

    /// Whether every rank stops with `error` at the same point, so that none waits on
    /// another: rank 0's refusal before training (which it sent to the others), and what
    /// every rank sees alike (a divergence, a stop request summed into the step). After
    /// any other error the failing rank must end the whole run (MPI_Abort).
    pub fn stops_together(&self, error: &TrainError) -> bool {
        matches!(
            error,
            TrainError::Leader { .. } | TrainError::Diverged(_) | TrainError::Interrupted(_)
        ) || (self.leads() && self.said.load(Ordering::Relaxed) == 1 + 2)
    }

    /// Rank 0 tells the others how the run starts (what the others pass is not read);
    /// returns what rank 0 said.
    pub(crate) fn start(&self, said: Start) -> Start {
        self.said.store(1 + said.code(), Ordering::Relaxed);
        let Some(comm) = self.spread() else {
            return said;
        };
        let mut bytes = match &said {
            Start::Refused { message, input } => {
                let mut b = vec![2 + u8::from(*input)];
                b.extend_from_slice(message.as_bytes());
                b
            }
            other => vec![other.code()],
        };
        comm.broadcast_bytes(&mut bytes);
        match bytes.split_first() {
            Some((0, _)) => Start::Train,
            Some((1, _)) => Start::Done,
            Some((code, message)) => Start::Refused {
                message: String::from_utf8_lossy(message).into_owned(),
                input: *code == 3,
            },
            None => Start::Refused {
                message: "rank 0 sent nothing".into(),
                input: false,
            },
        }
    }

    /// Every rank's image count of a step, in rank order (one process: `images`).
    pub(crate) fn images(&self, images: usize) -> Vec<usize> {
        match self.spread() {
            Some(comm) => comm
                .all_gather(images as u64)
                .into_iter()
                .map(|n| n as usize)
                .collect(),
            None => vec![images],
        }
    }

    /// Sums a step over the ranks: each rank's `grads` (already weighted by its images'
    /// share of the global batch), loss sum, hits and stop request, summed in rank order
    /// on rank 0 and sent to every rank. Returns whether some rank was asked to stop.
    pub(crate) fn sum_step<N: Module>(
        &self,
        net: &N,
        device: &Device,
        grads: &mut GradientsParams,
        loss_sum: &mut Tensor<1>,
        hits: &mut Option<Tensor<1, Int>>,
        stop: bool,
    ) -> Result<bool, TrainError> {
        let Some(comm) = self.spread() else {
            return Ok(stop);
        };
        let mut flat = Flatten {
            grads,
            values: Vec::new(),
            layout: Vec::new(),
        };
        net.visit(&mut flat);
        let Flatten {
            mut values, layout, ..
        } = flat;
        let params = values.len();
        values.push(loss_sum.clone().into_scalar::<f32>());
        values.push(
            hits.as_ref()
                .map_or(0.0, |h| h.clone().into_scalar::<i64>() as f32),
        );
        values.push(f32::from(u8::from(stop)));
        // A rank whose gradient has another layout (another net) would make the sum
        // meaningless, and MPI would hang on the lengths.
        let lengths = comm.all_gather(values.len() as u64);
        if lengths.iter().any(|&l| l != lengths[0]) {
            return Err(TrainError::setting(
                "model",
                format!(
                    "the ranks' gradients differ in length ({lengths:?}): they train different nets"
                ),
            ));
        }
        let gathered = comm.gather(&values);
        if comm.rank() == 0 {
            sum_in_order(&gathered, &mut values);
        }
        comm.broadcast(&mut values);
        let mut fill = Fill {
            grads,
            values: &values[..params],
            layout: layout.into_iter(),
            device: device.clone(),
        };
        net.visit(&mut fill);
        *loss_sum = Tensor::from_data(TensorData::new(vec![values[params]], [1]), device);
        if let Some(h) = hits {
            *h = Tensor::from_data(
                TensorData::new(vec![values[params + 1] as i64], [1]),
                &h.device(),
            );
        }
        Ok(values[params + 2] > 0.0)
    }
}

/// `gathered` (every rank's vector of `out.len()` values, in rank order) summed into
/// `out`, rank 0 first: the order one process sums its replicas in.
fn sum_in_order(gathered: &[f32], out: &mut [f32]) {
    let n = out.len();
    out.copy_from_slice(&gathered[..n]);
    for rank in gathered[n..].chunks_exact(n) {
        for (o, v) in out.iter_mut().zip(rank) {
            *o += v;
        }
    }
}

/// Takes the gradients out of `grads`, parameter by parameter in the net's order, into
/// one vector; records each one's shape (`None`: no gradient).
struct Flatten<'a> {
    grads: &'a mut GradientsParams,
    values: Vec<f32>,
    layout: Vec<Option<Vec<usize>>>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        match self.grads.remove::<D>(param.id) {
            Some(g) => {
                self.layout.push(Some(g.dims().to_vec()));
                let data = g.into_data();
                match data.as_slice::<f32>() {
                    Ok(v) => self.values.extend_from_slice(v),
                    Err(_) => self.values.extend(data.iter::<f32>()),
                }
            }
            None => self.layout.push(None),
        }
    }
}

/// Puts the summed gradients back into `grads`, in the order [`Flatten`] took them.
struct Fill<'a> {
    grads: &'a mut GradientsParams,
    values: &'a [f32],
    layout: std::vec::IntoIter<Option<Vec<usize>>>,
    device: Device,
}

impl ModuleVisitor for Fill<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(Some(shape)) = self.layout.next() {
            let n: usize = shape.iter().product();
            let (mine, rest) = self.values.split_at(n);
            self.values = rest;
            let g = Tensor::<D>::from_data(TensorData::new(mine.to_vec(), shape), &self.device);
            self.grads.register(param.id, g);
        }
    }
}

/// Ranks as threads of one process, for tests of what the ranks say to each other.
#[cfg(test)]
pub(crate) mod threads {
    use std::sync::{Arc, Barrier, Mutex};

    use super::Collective;

    /// What the thread ranks share: a slot per rank and a barrier.
    struct Shared {
        slots: Mutex<Vec<Vec<u8>>>,
        barrier: Barrier,
    }

    /// One thread's rank.
    pub(crate) struct ThreadRank {
        rank: usize,
        size: usize,
        shared: Arc<Shared>,
    }

    /// `size` ranks, one for each thread.
    pub(crate) fn ranks(size: usize) -> Vec<ThreadRank> {
        let shared = Arc::new(Shared {
            slots: Mutex::new(vec![Vec::new(); size]),
            barrier: Barrier::new(size),
        });
        (0..size)
            .map(|rank| ThreadRank {
                rank,
                size,
                shared: shared.clone(),
            })
            .collect()
    }

    impl ThreadRank {
        /// Every rank's bytes, in rank order.
        fn exchange(&self, mine: Vec<u8>) -> Vec<Vec<u8>> {
            self.shared.slots.lock().unwrap()[self.rank] = mine;
            self.shared.barrier.wait();
            let all = self.shared.slots.lock().unwrap().clone();
            self.shared.barrier.wait();
            all
        }
    }

    fn bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn floats(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
    }

    impl Collective for ThreadRank {
        fn rank(&self) -> usize {
            self.rank
        }
        fn size(&self) -> usize {
            self.size
        }
        fn gather(&self, values: &[f32]) -> Vec<f32> {
            let all = self.exchange(bytes(values));
            if self.rank == 0 {
                all.iter().flat_map(|b| floats(b)).collect()
            } else {
                Vec::new()
            }
        }
        fn broadcast(&self, values: &mut [f32]) {
            let all = self.exchange(bytes(values));
            for (v, x) in values.iter_mut().zip(floats(&all[0])) {
                *v = x;
            }
        }
        fn all_gather(&self, value: u64) -> Vec<u64> {
            self.exchange(value.to_le_bytes().to_vec())
                .iter()
                .map(|b| u64::from_le_bytes(b[..8].try_into().unwrap()))
                .collect()
        }
        fn broadcast_bytes(&self, bytes: &mut Vec<u8>) {
            let all = self.exchange(bytes.clone());
            *bytes = all[0].clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_sum_in_rank_order_and_all_get_rank_zeros_result() {
        // Three ranks whose values round differently by order: rank order is kept.
        let values = [[1.0e8f32, 1.0], [1.0, -1.0e8], [0.5, 3.0]];
        let expected: Vec<f32> = (0..2)
            .map(|i| values[0][i] + values[1][i] + values[2][i])
            .collect();
        let results: Vec<Vec<f32>> = std::thread::scope(|s| {
            let handles: Vec<_> = threads::ranks(3)
                .into_iter()
                .map(|rank| {
                    let mine = values[rank.rank()];
                    s.spawn(move || {
                        let gathered = rank.gather(&mine);
                        let mut out = mine.to_vec();
                        if rank.rank() == 0 {
                            sum_in_order(&gathered, &mut out);
                        }
                        rank.broadcast(&mut out);
                        out
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &results {
            assert_eq!(r, &expected);
        }
    }

    #[test]
    fn rank_zeros_refusal_reaches_every_rank_with_its_kind() {
        let said: Vec<Start> = std::thread::scope(|s| {
            let handles: Vec<_> = threads::ranks(2)
                .into_iter()
                .map(|rank| {
                    s.spawn(move || {
                        let world = World::new(Arc::new(rank));
                        let mine = if world.leads() {
                            Start::Refused {
                                message: "--out: holds a run".into(),
                                input: true,
                            }
                        } else {
                            Start::Train
                        };
                        world.start(mine)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let refused = Start::Refused {
            message: "--out: holds a run".into(),
            input: true,
        };
        assert_eq!(said, [refused.clone(), refused]);
    }

    #[test]
    fn one_process_is_rank_zero_of_one() {
        let world = World::default();
        assert_eq!((world.rank(), world.size(), world.leads()), (0, 1, true));
        assert_eq!(world.images(5), [5]);
        assert_eq!(world.start(Start::Done), Start::Done);
    }
}
