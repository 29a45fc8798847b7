//! When writes reach the disk. Every write lands in the page cache at once
//! (the mapping is shared); `mmap.fsync` says when the kernel is asked to
//! write it out, as `appendfsync` does for the AOF.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;

use crate::core::counters;
use crate::core::fault::{self, Fault};
use crate::ffi::log;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// After every write command, before its reply.
    Always = 0,
    /// Once a second, on a thread of its own.
    Everysec = 1,
    /// When the kernel decides (and on SAVE, BGSAVE and SHUTDOWN).
    No = 2,
}

/// Names and values as `CONFIG SET mmap.fsync` takes them.
pub const MODES: [(&str, Mode); 3] = [("always", Mode::Always), ("everysec", Mode::Everysec), ("no", Mode::No)];

static MODE: AtomicU8 = AtomicU8::new(Mode::Everysec as u8);

pub fn mode() -> Mode {
    match MODE.load(Relaxed) {
        0 => Mode::Always,
        2 => Mode::No,
        _ => Mode::Everysec,
    }
}

pub fn set_mode(m: Mode) {
    MODE.store(m as u8, Relaxed);
}

/// A bound file and whether it waits for the once-a-second flush.
pub struct Synced {
    file: Arc<File>,
    queued: AtomicBool,
}

impl Synced {
    pub fn new(file: Arc<File>) -> Arc<Synced> {
        counters::descriptor_delta(1);
        Arc::new(Synced {
            file,
            queued: AtomicBool::new(false),
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Flushes the file now (SAVE, BGSAVE, SHUTDOWN); a queued flush is no
    /// longer owed.
    pub fn flush_now(&self) {
        self.queued.store(false, Relaxed);
        flush(&self.file);
    }
}

/// The key that owned the file is gone (deleted, flushed): a flush still
/// owed is done now, so the descriptor closes at once rather than when
/// the once-a-second flush comes round, and the key budget sees it free.
impl Drop for Synced {
    fn drop(&mut self) {
        if self.queued.load(Relaxed) {
            flush(&self.file);
        }
        counters::descriptor_delta(-1);
    }
}

/// Files written since the last once-a-second flush. Weak: the queue does
/// not keep a deleted key's file open.
static QUEUE: Mutex<Vec<Weak<Synced>>> = Mutex::new(Vec::new());

/// After a write to `s`'s file. The common case, a file already queued
/// for this second's flush, is two relaxed loads, inlined into each write.
#[inline]
pub fn wrote(s: &Arc<Synced>) {
    if MODE.load(Relaxed) != Mode::Everysec as u8 || !s.queued.load(Relaxed) {
        wrote_slow(s);
    }
}

#[cold]
fn wrote_slow(s: &Arc<Synced>) {
    match mode() {
        Mode::Always => flush(&s.file),
        // One queue entry per file per second, whatever the write rate: the
        // common case is one relaxed load.
        Mode::Everysec => {
            if !s.queued.load(Relaxed) && !s.queued.swap(true, Relaxed) {
                QUEUE.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::downgrade(s));
            }
        }
        Mode::No => {}
    }
}

/// Asks the kernel to write the file's data out: pages changed through any
/// mapping of it, by this process or another, and appended bytes alike.
pub fn flush(file: &File) {
    let result = if fault::on(Fault::Fsync) {
        Err(fault::io_error())
    // SAFETY: a live descriptor, owned by `file`.
    } else if unsafe { libc::fdatasync(file.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    };
    match result {
        Ok(()) => counters::count_flush(),
        Err(e) => {
            counters::count_flush_error();
            log("warning", &format!("fdatasync failed: {e}"));
        }
    }
}

/// Starts the thread behind `everysec`, once per process. A fork child
/// (BGSAVE) has no copy of it and never writes.
pub fn start() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new().name("mmap-fsync".into()).spawn(|| loop {
            std::thread::sleep(Duration::from_secs(1));
            let batch = std::mem::take(&mut *QUEUE.lock().unwrap_or_else(|e| e.into_inner()));
            for s in batch.iter().filter_map(Weak::upgrade) {
                // Cleared first: a write during the flush queues the file again.
                s.queued.store(false, Relaxed);
                flush(&s.file);
            }
        });
        if let Err(e) = spawned {
            log("warning", &format!("cannot start the fsync thread: {e}"));
        }
    });
}
