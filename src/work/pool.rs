//! The worker threads: a queue of jobs and as many threads as
//! `mmap.threads` asks for, started when first needed and ended when the
//! option is lowered. Knows nothing of the commands.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::core::counters;

pub type Job = Box<dyn FnOnce() + Send>;

/// The worker threads' name, as `top -H` shows it.
pub const NAME: &str = "mmap-worker";

struct Queue {
    jobs: VecDeque<Job>,
    /// Threads running; `WANT` says how many should.
    have: usize,
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    jobs: VecDeque::new(),
    have: 0,
});
static READY: Condvar = Condvar::new();

fn queue() -> MutexGuard<'static, Queue> {
    // A job runs outside the lock, so a panic never poisons it; a poisoned
    // lock still holds a consistent queue.
    QUEUE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Threads wanted: written under the queue's lock, read without it.
static WANT: AtomicUsize = AtomicUsize::new(0);

/// Threads wanted now.
pub fn threads() -> usize {
    WANT.load(Ordering::Relaxed)
}

/// Sets the number of threads: more start at once; extra ones end when
/// they finish the job in hand.
pub fn set_threads(n: usize) -> std::io::Result<()> {
    let mut q = queue();
    WANT.store(n, Ordering::Relaxed);
    while q.have < n {
        std::thread::Builder::new().name(NAME.into()).spawn(work)?;
        q.have += 1;
        counters::worker_delta(1);
    }
    drop(q);
    READY.notify_all();
    Ok(())
}

/// Queues `job`; gives it back when there are no threads to run it.
pub fn submit(job: Job) -> Result<(), Job> {
    let mut q = queue();
    if threads() == 0 {
        return Err(job);
    }
    q.jobs.push_back(job);
    drop(q);
    READY.notify_one();
    Ok(())
}

fn work() {
    let mut q = queue();
    loop {
        if q.have > threads() {
            q.have -= 1;
            counters::worker_delta(-1);
            return;
        }
        match q.jobs.pop_front() {
            Some(job) => {
                drop(q);
                // A job that panics drops what it holds (a blocked client
                // answers with an error); the thread goes on.
                if let Err(p) = catch_unwind(AssertUnwindSafe(job)) {
                    let what = p
                        .downcast_ref::<&str>()
                        .copied()
                        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
                        .unwrap_or("unknown panic");
                    crate::ffi::log("warning", &format!("panic in a worker thread: {what}"));
                    counters::count_panic();
                }
                q = queue();
            }
            None => q = READY.wait(q).unwrap_or_else(|p| p.into_inner()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn jobs_run_on_the_threads_and_none_without_them() {
        set_threads(0).unwrap();
        assert!(submit(Box::new(|| {})).is_err());
        set_threads(2).unwrap();
        let (tx, rx) = mpsc::channel();
        for i in 0..10 {
            let tx = tx.clone();
            submit(Box::new(move || {
                tx.send((i, std::thread::current().name().map(String::from))).unwrap()
            }))
            .ok()
            .unwrap();
        }
        submit(Box::new(|| panic!("a job that panics"))).ok().unwrap();
        let mut got: Vec<_> = (0..10).map(|_| rx.recv().unwrap()).collect();
        got.sort();
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert!(got.iter().all(|g| g.1.as_deref() == Some("mmap-worker")));
        // The panic ended no thread: more jobs still run.
        let (tx, rx) = mpsc::channel();
        submit(Box::new(move || tx.send(1).unwrap())).ok().unwrap();
        assert_eq!(rx.recv().unwrap(), 1);
        set_threads(0).unwrap();
    }
}
