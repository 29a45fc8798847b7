//! The data type's callbacks. Each is a small shim: it turns raw pointers
//! into safe values and hands over to safe code, with panics caught.

use std::ffi::{c_int, c_void, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use redis_module::raw;

use crate::binding::Binding;
use crate::config::sandbox;
use crate::ctx::{api, bytes, guard, log, Aof, Ctx};
use crate::error::shown;

/// RDB encoding version of the binding.
pub const ENCODING: i32 = 0;
/// The element kind saved with each binding; only `f64` exists so far.
const KIND_F64: u64 = 0;

pub const METHODS: raw::RedisModuleTypeMethods = raw::RedisModuleTypeMethods {
    version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
    rdb_load: Some(rdb_load),
    rdb_save: Some(rdb_save),
    aof_rewrite: Some(aof_rewrite),
    mem_usage: Some(mem_usage),
    digest: Some(digest),
    free: Some(free),
    aux_load: None,
    aux_save: None,
    aux_save_triggers: 0,
    free_effort: None,
    unlink: None,
    // No copy: two keys may never share a file, so COPY answers Redis's own
    // "not supported for this module key" error.
    copy: None,
    defrag: None,
    mem_usage2: None,
    free_effort2: None,
    unlink2: None,
    copy2: None,
    aux_save2: None,
};

/// Saves the binding: element kind and path. The data stays in the file.
///
/// # Safety
/// Redis passes a live IO handle and a value created by this module.
unsafe extern "C" fn rdb_save(io: *mut raw::RedisModuleIO, value: *mut c_void) {
    let b = &*value.cast::<Binding>();
    guard("rdb_save", (), || {
        let path = b.path().as_os_str().as_encoded_bytes();
        api!(RedisModule_SaveUnsigned)(io, KIND_F64);
        api!(RedisModule_SaveStringBuffer)(io, path.as_ptr().cast(), path.len());
    })
}

/// Re-opens the file of a saved binding.
///
/// # Safety
/// Redis passes a live IO handle.
unsafe extern "C" fn rdb_load(io: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver != ENCODING {
        log(
            "warning",
            &format!("mmap: cannot load a binding of encoding version {encver}"),
        );
        return ptr::null_mut();
    }
    let kind = api!(RedisModule_LoadUnsigned)(io);
    let mut len = 0usize;
    let buf = api!(RedisModule_LoadStringBuffer)(io, &mut len);
    if api!(RedisModule_IsIOError)(io) != 0 || buf.is_null() {
        return ptr::null_mut();
    }
    let path = std::slice::from_raw_parts(buf.cast::<u8>(), len).to_vec();
    api!(RedisModule_Free)(buf.cast());
    let name = api!(RedisModule_GetKeyNameFromIO)(io);
    let key = if name.is_null() {
        Vec::new()
    } else {
        bytes(name).to_vec()
    };
    let loading = Ctx::from_raw(api!(RedisModule_GetContextFromIO)(io)).loading();
    let db = raw::RedisModule_GetDbIdFromIO.map_or(0, |f| f(io));
    guard("rdb_load", ptr::null_mut(), || {
        match load(&key, db, &path, kind, loading) {
            Some(b) => Box::into_raw(Box::new(b)).cast(),
            None => ptr::null_mut(),
        }
    })
}

/// While loading an RDB, a file that cannot be used still gives a key, one
/// that says why; for `RESTORE` the command fails instead.
fn load(key: &[u8], db: i32, path: &[u8], kind: u64, loading: bool) -> Option<Binding> {
    let sb = sandbox();
    let result = if kind != KIND_F64 {
        Err(format!("unknown element kind {kind}"))
    } else {
        sb.relative(path).map_err(|e| e.to_string()).and_then(|rel| {
            Binding::open(sb, &rel, key, db, false)
                .map(|(b, _)| b)
                .map_err(|e| e.cause())
        })
    };
    match result {
        Ok(b) => Some(b),
        Err(cause) => {
            log(
                "warning",
                &format!(
                    "mmap: key '{}': file '{}' cannot be opened: {cause}",
                    shown(key),
                    shown(path)
                ),
            );
            loading.then(|| Binding::broken(Path::new(OsStr::from_bytes(path)), cause))
        }
    }
}

/// # Safety
/// Redis passes a value created by this module, once, possibly on a lazy-free thread.
unsafe extern "C" fn free(value: *mut c_void) {
    let b = Box::from_raw(value.cast::<Binding>());
    guard("free", (), || drop(b));
}

/// Heap owned by the binding; the mapped file is not Redis memory.
///
/// # Safety
/// Redis passes a value created by this module.
unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    let b = &*value.cast::<Binding>();
    guard("mem_usage", 0, || b.heap_bytes())
}

/// Writes the commands that rebuild the key and its file's content.
///
/// # Safety
/// Called by Redis, in the rewriting child, with a live IO handle, the key's
/// name and a value created by this module.
unsafe extern "C" fn aof_rewrite(io: *mut raw::RedisModuleIO, key: *mut raw::RedisModuleString, value: *mut c_void) {
    let b = &*value.cast::<Binding>();
    let aof = Aof::new(io, key);
    let done = guard("aof_rewrite", false, || match b.rebuild(|cmd| aof.emit(cmd)) {
        Ok(()) => true,
        Err(e) => {
            log(
                "warning",
                &format!("mmap: AOF rewrite: cannot read '{}': {e}", b.path().display()),
            );
            false
        }
    });
    if !done && aof.in_fork_child() {
        // A rewritten AOF without this content would lose it: fail the
        // rewrite instead, and Redis keeps the AOF it has.
        log("warning", "mmap: abandoning the AOF rewrite");
        libc::_exit(1);
    }
}

/// Adds the file's content (or a broken binding's path) to a digest.
///
/// # Safety
/// Called by Redis with a live digest and a value created by this module.
unsafe extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let b = &*value.cast::<Binding>();
    guard("digest", (), || {
        let read = b.digest(|piece| api!(RedisModule_DigestAddStringBuffer)(md, piece.as_ptr().cast(), piece.len()));
        if let Err(e) = read {
            log(
                "warning",
                &format!("mmap: digest: cannot read '{}': {e}", b.path().display()),
            );
        }
        api!(RedisModule_DigestEndSequence)(md);
    })
}

/// Follows renames: `rename_to` and `move_to` carry the key's new name.
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
    if event == b"rename_to" || event == b"move_to" {
        let ctx = Ctx::from_raw(ctx);
        guard("rename", (), || {
            if let Ok(Some(b)) = ctx.open(key, false).binding() {
                b.renamed(bytes(key), ctx.db());
            }
        });
    }
    raw::Status::Ok as c_int
}

/// `RedisModuleFlushInfoV1`.
#[repr(C)]
struct FlushInfo {
    version: u64,
    sync: i32,
    dbnum: i32,
}

/// `RedisModuleSwapDbInfoV1`.
#[repr(C)]
struct SwapDbInfo {
    version: u64,
    first: i32,
    second: i32,
}

const fn event(id: u64) -> raw::RedisModuleEvent {
    raw::RedisModuleEvent { id, dataver: 1 }
}

pub const FLUSHDB: raw::RedisModuleEvent = event(raw::REDISMODULE_EVENT_FLUSHDB);
pub const SWAPDB: raw::RedisModuleEvent = event(raw::REDISMODULE_EVENT_SWAPDB);
pub const PERSISTENCE: raw::RedisModuleEvent = event(raw::REDISMODULE_EVENT_PERSISTENCE);
pub const SHUTDOWN: raw::RedisModuleEvent = event(raw::REDISMODULE_EVENT_SHUTDOWN);

fn flush_for(what: &str) {
    match crate::binding::flush_all() {
        Some(n) => log("notice", &format!("mmap: flushed {n} bound files to disk ({what})")),
        None => log(
            "warning",
            &format!("mmap: bound files not flushed ({what}): registry busy at fork"),
        ),
    }
}

/// A save starts (SAVE in the server, BGSAVE and BGREWRITEAOF in their fork
/// child): every bound file is flushed first.
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
        _ => return,
    };
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
    guard("flush", (), || flush_for("shutdown"));
}

/// Releases the files of a database when a flush of it starts (FLUSHDB,
/// FLUSHALL, a replica's full sync, DEBUG RELOAD).
///
/// # Safety
/// Called by Redis with the event's own data structure.
pub unsafe extern "C" fn on_flush(
    _ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    sub: u64,
    data: *mut c_void,
) {
    if sub == raw::REDISMODULE_SUBEVENT_FLUSHDB_START && !data.is_null() {
        let db = (*data.cast::<FlushInfo>()).dbnum;
        guard("flush", (), || crate::binding::flushed(db));
    }
}

/// # Safety
/// Called by Redis with the event's own data structure.
pub unsafe extern "C" fn on_swapdb(
    _ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    _sub: u64,
    data: *mut c_void,
) {
    if !data.is_null() {
        let info = &*data.cast::<SwapDbInfo>();
        guard("swapdb", (), || crate::binding::swapped(info.first, info.second));
    }
}
