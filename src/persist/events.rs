//! Server events: renames and moves, and flushes, which change who holds
//! a file; snapshots and shutdown, which flush files to disk.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use redis_module::raw;

use crate::binding::fsync;
use crate::binding::{self, Binding};
use crate::ffi::bytes;
use crate::ffi::ctx::{guard, Ctx};
use crate::ffi::log;

/// Follows renames: `rename_to` carries the key's new name. Nothing else
/// is followed: where a key is, is looked up when it matters (see
/// `binding::Holder`).
///
/// # Safety
/// Called by Redis on the main thread with a live context, event name and key.
pub unsafe extern "C" fn on_generic_event(
    ctx: *mut raw::RedisModuleCtx,
    _type: c_int,
    event: *const std::ffi::c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    let event = std::ffi::CStr::from_ptr(event).to_bytes();
    if event == b"rename_to" {
        let ctx = Ctx::from_raw(ctx);
        guard("rename", (), || {
            if let Ok(Some(b)) = ctx.open(key, false).value::<Binding>() {
                b.renamed(bytes(key));
            }
        });
    }
    raw::Status::Ok as c_int
}

const fn event(id: u64) -> raw::RedisModuleEvent {
    raw::RedisModuleEvent { id, dataver: 1 }
}

pub const FLUSHDB: raw::RedisModuleEvent = event(raw::REDISMODULE_EVENT_FLUSHDB);
pub const PERSISTENCE: raw::RedisModuleEvent = event(raw::REDISMODULE_EVENT_PERSISTENCE);
pub const SHUTDOWN: raw::RedisModuleEvent = event(raw::REDISMODULE_EVENT_SHUTDOWN);
pub const LOADING: raw::RedisModuleEvent = event(raw::REDISMODULE_EVENT_LOADING);
pub const EVENT_LOOP: raw::RedisModuleEvent = event(raw::REDISMODULE_EVENT_EVENTLOOP);

/// Set from the event loop's wake-up to its `before sleep` step, which
/// comes before the server writes the AOF and sends any reply, on every
/// supported server. Commands it runs outside (clients unblocked later in
/// that step, a startup load) find it clear.
static IN_PASS: AtomicBool = AtomicBool::new(false);
/// Set while the server loads an RDB or an AOF.
static LOADING_NOW: AtomicBool = AtomicBool::new(false);

/// Whether an append may wait in its vector's tail, to be written with the
/// pass's other appends by one `pwrite` before the replies go out: within
/// a pass and not while loading, which can replay any number of appends
/// before the next pass, nor when every write is flushed to disk at once
/// (`mmap.fsync always`).
pub fn may_hold() -> bool {
    IN_PASS.load(Ordering::Relaxed) && !LOADING_NOW.load(Ordering::Relaxed) && fsync::mode() != fsync::Mode::Always
}

/// Tracks the pass, and writes the held appends at its end.
///
/// # Safety
/// Called by Redis on the main thread.
pub unsafe extern "C" fn on_event_loop(
    _ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    sub: u64,
    _data: *mut c_void,
) {
    if sub == raw::REDISMODULE_SUBEVENT_EVENTLOOP_AFTER_SLEEP {
        IN_PASS.store(true, Ordering::Relaxed);
    } else {
        IN_PASS.store(false, Ordering::Relaxed);
        guard("settle", 0, binding::settle_all);
    }
}

/// Set while this process writes a snapshot (an RDB, an AOF preamble, the
/// RDB of a full sync): `DUMP` and `MIGRATE` serialize keys outside one.
static SNAPSHOT: AtomicBool = AtomicBool::new(false);
/// Set while this process loads the RDB a master sent for a full sync.
static FULL_SYNC: AtomicBool = AtomicBool::new(false);

/// Whether `rdb_save` runs for a snapshot rather than `DUMP` or `MIGRATE`.
pub fn in_snapshot() -> bool {
    SNAPSHOT.load(Ordering::Relaxed)
}

/// Whether a load in progress is a full sync from a master, rather than a
/// startup's RDB or AOF (or `DEBUG RELOAD`).
pub fn in_full_sync() -> bool {
    FULL_SYNC.load(Ordering::Relaxed)
}

/// Notes what kind of load runs.
///
/// # Safety
/// Called by Redis with the event's own data.
pub unsafe extern "C" fn on_loading(
    _ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    sub: u64,
    _data: *mut c_void,
) {
    let start = matches!(
        sub,
        raw::REDISMODULE_SUBEVENT_LOADING_RDB_START
            | raw::REDISMODULE_SUBEVENT_LOADING_AOF_START
            | raw::REDISMODULE_SUBEVENT_LOADING_REPL_START
    );
    if start {
        // A load replaces keys: their files first get what they hold.
        guard("settle", 0, binding::settle_all);
    }
    LOADING_NOW.store(start, Ordering::Relaxed);
    FULL_SYNC.store(sub == raw::REDISMODULE_SUBEVENT_LOADING_REPL_START, Ordering::Relaxed);
}

fn flush_for(what: &str) {
    match crate::binding::flush_all() {
        Some(n) => log("notice", &format!("flushed {n} bound files to disk ({what})")),
        None => log(
            "warning",
            &format!("bound files not flushed ({what}): registry busy at fork"),
        ),
    }
}

/// A save starts (SAVE in the server; BGSAVE, BGREWRITEAOF and the RDB of
/// a full sync in their fork child): every bound file is flushed first. The
/// save's end or failure closes the snapshot.
///
/// # Safety
/// Called by Redis with the event's own data.
pub unsafe extern "C" fn on_persistence(
    _ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    sub: u64,
    _data: *mut c_void,
) {
    let what = match sub {
        raw::REDISMODULE_SUBEVENT_PERSISTENCE_RDB_START => "BGSAVE",
        raw::REDISMODULE_SUBEVENT_PERSISTENCE_SYNC_RDB_START => "SAVE",
        raw::REDISMODULE_SUBEVENT_PERSISTENCE_AOF_START | raw::REDISMODULE_SUBEVENT_PERSISTENCE_SYNC_AOF_START => {
            "AOF rewrite"
        }
        _ => {
            SNAPSHOT.store(false, Ordering::Relaxed);
            return;
        }
    };
    // Only the server itself writes tails: a fork child reads them from
    // its copy of memory (see `binding::read_pieces`).
    if matches!(
        sub,
        raw::REDISMODULE_SUBEVENT_PERSISTENCE_SYNC_RDB_START | raw::REDISMODULE_SUBEVENT_PERSISTENCE_SYNC_AOF_START
    ) {
        guard("settle", 0, binding::settle_all);
    }
    SNAPSHOT.store(true, Ordering::Relaxed);
    guard("flush", (), || flush_for(what));
}

/// A clean shutdown: every bound file is flushed.
///
/// # Safety
/// Called by Redis on the main thread.
pub unsafe extern "C" fn on_shutdown(
    _ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    _sub: u64,
    _data: *mut c_void,
) {
    guard("settle", 0, binding::settle_all);
    guard("flush", (), || flush_for("shutdown"));
}

/// After a flush (FLUSHDB, FLUSHALL, a replica's full sync, DEBUG RELOAD),
/// releases every file that no key holds any more.
///
/// # Safety
/// Called by Redis on the main thread with a live context.
pub unsafe extern "C" fn on_flush(
    ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    sub: u64,
    _data: *mut c_void,
) {
    if sub == raw::REDISMODULE_SUBEVENT_FLUSHDB_START {
        // The keys may be freed on another thread: none may hold a tail then.
        guard("settle", 0, binding::settle_all);
    }
    if sub == raw::REDISMODULE_SUBEVENT_FLUSHDB_END {
        let ctx = Ctx::from_raw(ctx);
        guard("flush", (), || {
            crate::binding::verify_all(&|key, token| crate::binding::find_claim(ctx, key, token));
        });
    }
}
