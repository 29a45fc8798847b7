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

pub fn count_flush() {
    FLUSHES.fetch_add(1, Relaxed);
}

pub fn count_flush_error() {
    FLUSH_ERRORS.fetch_add(1, Relaxed);
}

/// Every counter, by its `INFO` field name (after the `mmap_` prefix).
pub fn all() -> [(&'static str, i64); 8] {
    [
        ("keys", KEYS.load(Relaxed)),
        ("broken_keys", BROKEN.load(Relaxed)),
        ("file_bytes", FILE_BYTES.load(Relaxed)),
        ("reserved_bytes", RESERVED_BYTES.load(Relaxed)),
        ("errors", ERRORS.load(Relaxed) as i64),
        ("panics", PANICS.load(Relaxed) as i64),
        ("flushes", FLUSHES.load(Relaxed) as i64),
        ("flush_errors", FLUSH_ERRORS.load(Relaxed) as i64),
    ]
}
