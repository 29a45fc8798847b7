//! Counters behind `INFO mmap`. Updated with relaxed atomics: the free
//! callback may run on a lazy-free thread.

use std::ffi::{c_int, CStr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use redis_module::raw;

use crate::ctx::api;

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

/// Fills the `mmap_stats` section.
///
/// # Safety
/// `ctx` must be the info context Redis passed to the info callback.
pub unsafe fn fill(ctx: *mut raw::RedisModuleInfoCtx) {
    api!(RedisModule_InfoAddSection)(ctx, c"stats".as_ptr());
    let fields: [(&CStr, i64); 8] = [
        (c"keys", KEYS.load(Relaxed)),
        (c"broken_keys", BROKEN.load(Relaxed)),
        (c"file_bytes", FILE_BYTES.load(Relaxed)),
        (c"reserved_bytes", RESERVED_BYTES.load(Relaxed)),
        (c"errors", ERRORS.load(Relaxed) as i64),
        (c"panics", PANICS.load(Relaxed) as i64),
        (c"flushes", FLUSHES.load(Relaxed) as i64),
        (c"flush_errors", FLUSH_ERRORS.load(Relaxed) as i64),
    ];
    for (name, v) in fields {
        api!(RedisModule_InfoAddFieldLongLong)(ctx, name.as_ptr(), v);
    }
}

/// # Safety
/// Called by Redis for `INFO` with a live info context.
pub unsafe extern "C" fn callback(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    crate::ctx::guard("INFO", (), || fill(ctx));
}
