//! The data type's callbacks. Each is a small shim: it turns raw pointers
//! into safe values and hands over to safe code, with panics caught.

use std::ffi::{c_int, c_void, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use redis_module::native_types::RedisType;
use redis_module::raw;

use super::rdb;
use crate::binding::Binding;
use crate::error::shown;
use crate::ffi::config::sandbox;
use crate::ffi::ctx::guard;
use crate::ffi::io::{Aof, Digest, Rdb};
use crate::ffi::log;

/// The type name is stored in every RDB: it can never change.
pub static MMAP_TYPE: RedisType = RedisType::new("mmap-vect", rdb::ENCODING, METHODS);

const METHODS: raw::RedisModuleTypeMethods = raw::RedisModuleTypeMethods {
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

/// Saves the binding, not the data: the data stays in the file.
///
/// # Safety
/// Redis passes a live IO handle and a value created by this module.
unsafe extern "C" fn rdb_save(io: *mut raw::RedisModuleIO, value: *mut c_void) {
    let b = &*value.cast::<Binding>();
    let io = Rdb::new(io);
    guard("rdb_save", (), || rdb::save(&io, b))
}

/// Re-opens the file of a saved binding.
///
/// # Safety
/// Redis passes a live IO handle.
unsafe extern "C" fn rdb_load(io: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    let io = Rdb::new(io);
    guard("rdb_load", ptr::null_mut(), || match load(&io, encver) {
        Some(b) => Box::into_raw(Box::new(b)).cast(),
        None => ptr::null_mut(),
    })
}

/// While loading an RDB, a file that cannot be used still gives a key, one
/// that says why; for `RESTORE` the command fails instead.
fn load(io: &Rdb, encver: c_int) -> Option<Binding> {
    let key = io.key();
    let saved = match rdb::load(io, encver) {
        Ok(s) => s,
        Err(why) => {
            log(
                "warning",
                &format!("key '{}': cannot load the binding: {why}", shown(&key)),
            );
            return None;
        }
    };
    let sb = sandbox();
    let result = if !saved.kind_known() {
        Err(format!("unknown element kind {}", saved.kind))
    } else {
        sb.relative(&saved.path).map_err(|e| e.to_string()).and_then(|rel| {
            Binding::open(sb, &rel, &key, io.db(), false, &crate::binding::trusted)
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
                    "key '{}': file '{}' cannot be opened: {cause}",
                    shown(&key),
                    shown(&saved.path)
                ),
            );
            io.loading()
                .then(|| Binding::broken(Path::new(OsStr::from_bytes(&saved.path)), cause))
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
            crate::stats::count_read_error();
            log(
                "warning",
                &format!("AOF rewrite: cannot read '{}': {e}", b.path().display()),
            );
            false
        }
    });
    if !done && aof.in_fork_child() {
        // A rewritten AOF without this content would lose it: fail the
        // rewrite instead, and Redis keeps the AOF it has.
        log("warning", "abandoning the AOF rewrite");
        libc::_exit(1);
    }
}

/// Adds the file's content (or a broken binding's path) to a digest.
///
/// # Safety
/// Called by Redis with a live digest and a value created by this module.
unsafe extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let b = &*value.cast::<Binding>();
    let md = Digest::new(md);
    guard("digest", (), || {
        if let Err(e) = b.digest(|piece| md.add(piece)) {
            crate::stats::count_read_error();
            log("warning", &format!("digest: cannot read '{}': {e}", b.path().display()));
        }
        md.end_sequence();
    })
}
