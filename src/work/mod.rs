//! Long reads off the main thread. A command whose read is long enough
//! blocks its client, the read runs in pieces on the worker threads
//! (`pool`), and when the last piece is done the client gets its reply;
//! every other client is served meanwhile. What the pieces read and how
//! the reply is made are the commands' (see `commands::offload`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::core::counters;
use crate::ffi::blocked::Blocked;

pub mod pool;

/// The pieces of one read, shared by the jobs that run them.
struct Pieces<P, F, J> {
    piece: F,
    got: Mutex<Vec<Option<P>>>,
    left: AtomicUsize,
    /// The client and the join, taken by the job that finishes last.
    end: Mutex<Option<(Blocked, J)>>,
    gone: Arc<AtomicBool>,
}

/// Runs `piece(i)` for each `i` below `n` on the worker threads; when all
/// are done, `join` answers the client from the pieces in order, or from
/// `None` if any piece gave none (its read was not sound: the file changed
/// under it), on the thread that ran the last piece (see `Blocked`). A
/// piece is told when the client has disconnected, and may stop. A piece
/// the pool cannot take (no threads) runs here, on the calling thread.
pub fn split<P, F, J>(blocked: Blocked, n: usize, piece: F, join: J)
where
    P: Send + 'static,
    F: Fn(usize, &AtomicBool) -> Option<P> + Send + Sync + 'static,
    J: FnOnce(Option<Vec<P>>, Blocked) + Send + 'static,
{
    if n == 0 {
        return join(Some(Vec::new()), blocked);
    }
    let gone = blocked.gone().clone();
    let shared = Arc::new(Pieces {
        piece,
        got: Mutex::new((0..n).map(|_| None).collect()),
        left: AtomicUsize::new(n),
        end: Mutex::new(Some((blocked, join))),
        gone,
    });
    for i in 0..n {
        let s = shared.clone();
        let job = Box::new(move || {
            crate::core::fault::worker_delay();
            if crate::core::fault::on(crate::core::fault::Fault::WorkerPanic) {
                panic!("injected by MMAP.FAULT worker-panic");
            }
            let p = match s.gone.load(Ordering::Acquire) {
                true => {
                    counters::count_abandoned();
                    None
                }
                false => (s.piece)(i, &s.gone),
            };
            s.got.lock().unwrap_or_else(|e| e.into_inner())[i] = p;
            if s.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                finish(&s);
            }
        });
        if let Err(job) = pool::submit(job) {
            job();
        }
    }
}

fn finish<P, F, J: FnOnce(Option<Vec<P>>, Blocked)>(s: &Pieces<P, F, J>) {
    let Some((blocked, join)) = s.end.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let got = std::mem::take(&mut *s.got.lock().unwrap_or_else(|e| e.into_inner()));
    let all: Option<Vec<P>> = got.into_iter().collect();
    join(all, blocked);
}
