//! The bounded inference pool: a fixed set of threads and a queue of fixed length. A request
//! that finds the queue full is refused at once (429) instead of piling up behind the others,
//! so latency stays bounded under overload and memory does not grow.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The queue was full; nothing was run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolFull;

/// A fixed pool of inference threads behind a bounded queue.
///
/// Admission is counted, not left to the channel: a job holds its place from admission until
/// its result is ready, and gives it back *before* the answer is sent, so a client that sends
/// its next request as soon as it has the answer always finds its place free again.
pub struct WorkerPool {
    sender: Sender<Job>,
    pending: Arc<AtomicUsize>,
    rejected: AtomicU64,
    workers: usize,
    queue: usize,
}

impl WorkerPool {
    /// `workers` threads (at least 1) and room for `queue` jobs waiting for one of them.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..workers {
            let receiver: Arc<Mutex<Receiver<Job>>> = Arc::clone(&receiver);
            let spawned = thread::Builder::new()
                .name(format!("visage-infer-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job.
                    let job = match receiver.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if spawned.is_err() {
                break;
            }
        }
        Self {
            sender,
            pending: Arc::new(AtomicUsize::new(0)),
            rejected: AtomicU64::new(0),
            workers,
            queue,
        }
    }

    /// Queues `work`, or refuses it at once when the queue is full. The answer comes through
    /// the returned receiver; work whose caller has gone (timed out, disconnected) before a
    /// thread picks it up is skipped.
    pub fn try_run<T, F>(&self, work: F) -> Result<oneshot::Receiver<T>, PoolFull>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let limit = self.workers + self.queue;
        let admitted = self
            .pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            });
        if admitted.is_err() {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(PoolFull);
        }
        let (tx, rx) = oneshot::channel();
        let pending = Arc::clone(&self.pending);
        let job: Job = Box::new(move || {
            let result = (!tx.is_closed()).then(work);
            pending.fetch_sub(1, Ordering::SeqCst);
            if let Some(result) = result {
                let _ = tx.send(result);
            }
        });
        if self.sender.send(job).is_err() {
            // Every thread is gone: nothing can run it.
            self.pending.fetch_sub(1, Ordering::SeqCst);
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(PoolFull);
        }
        Ok(rx)
    }

    /// Jobs queued or running now.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Jobs refused because the queue was full, since start.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Number of threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Jobs that may wait for a thread.
    pub fn queue(&self) -> usize {
        self.queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn a_full_queue_refuses_and_frees_up_again() {
        let pool = WorkerPool::new(1, 1);
        let (release_tx, release_rx) = channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let (started_tx, started_rx) = channel::<()>();
        let hold = {
            let release_rx = Arc::clone(&release_rx);
            move || {
                let _ = started_tx.send(());
                let _ = release_rx.lock().unwrap().recv();
                1
            }
        };
        let running = pool.try_run(hold).unwrap();
        started_rx.recv().unwrap();
        let queued = pool.try_run(|| 2).unwrap();
        assert_eq!(pool.try_run(|| 3).err(), Some(PoolFull));
        assert_eq!(pool.rejected(), 1);
        assert_eq!(pool.pending(), 2);
        release_tx.send(()).unwrap();
        assert_eq!(running.blocking_recv().unwrap(), 1);
        assert_eq!(queued.blocking_recv().unwrap(), 2);
        assert_eq!(pool.try_run(|| 4).unwrap().blocking_recv().unwrap(), 4);
    }
}
