//! Counters behind `INFO mmap`. Updated with relaxed atomics: the free
//! callback may run on a lazy-free thread.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

static KEYS: AtomicI64 = AtomicI64::new(0);
static BROKEN: AtomicI64 = AtomicI64::new(0);
static FILE_BYTES: AtomicI64 = AtomicI64::new(0);
static RESERVED_BYTES: AtomicI64 = AtomicI64::new(0);
static ERRORS: AtomicU64 = AtomicU64::new(0);
static PANICS: AtomicU64 = AtomicU64::new(0);
static FLUSHES: AtomicU64 = AtomicU64::new(0);
static FLUSH_ERRORS: AtomicU64 = AtomicU64::new(0);
static READ_ERRORS: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);
static HELD_WRITES: AtomicU64 = AtomicU64::new(0);
static HELD_ERRORS: AtomicU64 = AtomicU64::new(0);
static OFFLOADED: AtomicU64 = AtomicU64::new(0);
static RERUN: AtomicU64 = AtomicU64::new(0);
static PREFETCHED: AtomicU64 = AtomicU64::new(0);
static ABANDONED: AtomicU64 = AtomicU64::new(0);
static WORKERS: AtomicI64 = AtomicI64::new(0);

/// Descriptors of bound files held open: one per bound key, and a deleted
/// key's until its last write is flushed.
static DESCRIPTORS: AtomicI64 = AtomicI64::new(0);

pub fn descriptor_delta(n: i64) {
    DESCRIPTORS.fetch_add(n, Relaxed);
}

pub fn descriptors() -> u64 {
    DESCRIPTORS.load(Relaxed).max(0) as u64
}

/// An `MMAP` (or a load) refused because the key budget was used up.
pub fn count_refused() {
    REFUSED.fetch_add(1, Relaxed);
}

/// A bound file could not be read for a digest or an AOF rewrite.
pub fn count_read_error() {
    READ_ERRORS.fetch_add(1, Relaxed);
}

/// A binding with an open file appeared (+1) or went away (-1).
pub fn open_delta(keys: i64, file_bytes: i64, reserved: i64) {
    // Most writes (every VSET) change no size: skip the locked adds.
    for (counter, d) in [(&KEYS, keys), (&FILE_BYTES, file_bytes), (&RESERVED_BYTES, reserved)] {
        if d != 0 {
            counter.fetch_add(d, Relaxed);
        }
    }
}

pub fn broken_delta(n: i64) {
    BROKEN.fetch_add(n, Relaxed);
}

pub fn count_error() {
    ERRORS.fetch_add(1, Relaxed);
}

pub fn count_panic() {
    PANICS.fetch_add(1, Relaxed);
}

/// A tail of held appends written to its file, or (`ok` false) not.
pub fn count_held_write(ok: bool) {
    if ok { &HELD_WRITES } else { &HELD_ERRORS }.fetch_add(1, Relaxed);
}

pub fn count_flush() {
    FLUSHES.fetch_add(1, Relaxed);
}

pub fn count_flush_error() {
    FLUSH_ERRORS.fetch_add(1, Relaxed);
}

/// A read handed to the worker threads.
pub fn count_offloaded() {
    OFFLOADED.fetch_add(1, Relaxed);
}

/// An offloaded read whose file changed under it, run again on the main thread.
pub fn count_rerun() {
    RERUN.fetch_add(1, Relaxed);
}

/// A piece of an offloaded read not read: its client had disconnected.
pub fn count_abandoned() {
    ABANDONED.fetch_add(1, Relaxed);
}

/// Bytes a prefetch brought (or asked the kernel to bring) into memory.
pub fn count_prefetched(bytes: u64) {
    PREFETCHED.fetch_add(bytes, Relaxed);
}

/// Worker threads started (1) or ended (-1).
pub fn worker_delta(n: i64) {
    WORKERS.fetch_add(n, Relaxed);
}

/// Every counter, by its `INFO` field name (after the `mmap_` prefix).
pub fn all() -> [(&'static str, i64); 18] {
    [
        ("keys", KEYS.load(Relaxed)),
        ("broken_keys", BROKEN.load(Relaxed)),
        ("file_bytes", FILE_BYTES.load(Relaxed)),
        ("reserved_bytes", RESERVED_BYTES.load(Relaxed)),
        ("errors", ERRORS.load(Relaxed) as i64),
        ("panics", PANICS.load(Relaxed) as i64),
        ("flushes", FLUSHES.load(Relaxed) as i64),
        ("flush_errors", FLUSH_ERRORS.load(Relaxed) as i64),
        ("read_errors", READ_ERRORS.load(Relaxed) as i64),
        ("keys_refused", REFUSED.load(Relaxed) as i64),
        ("held_writes", HELD_WRITES.load(Relaxed) as i64),
        ("held_write_errors", HELD_ERRORS.load(Relaxed) as i64),
        ("faults", crate::core::sigbus::survived() as i64),
        ("workers", WORKERS.load(Relaxed)),
        ("offloaded", OFFLOADED.load(Relaxed) as i64),
        ("offload_reruns", RERUN.load(Relaxed) as i64),
        ("offload_abandoned", ABANDONED.load(Relaxed) as i64),
        ("prefetched_bytes", PREFETCHED.load(Relaxed) as i64),
    ]
}
