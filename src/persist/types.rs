//! The data type's callbacks. Each is a small shim: it turns raw pointers
//! into safe values and hands over to safe code, with panics caught.

use std::ffi::{c_int, c_void, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

use redis_module::native_types::RedisType;
use redis_module::raw;

use super::events;
use super::rdb::{self, ContentError, Form};
use crate::binding::{trusted, Binding, Finder, Stale, Target};
use crate::core::error::shown;
use crate::core::kind::Spec;
use crate::core::settings::{rdb_content, sandbox};
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

/// Saves the binding: its path and length, and its file's content for
/// `DUMP` and `MIGRATE`, or in any snapshot with `mmap.rdb-content yes`.
///
/// # Safety
/// Redis passes a live IO handle and a value created by this module.
unsafe extern "C" fn rdb_save(io: *mut raw::RedisModuleIO, value: *mut c_void) {
    let b = &*value.cast::<Binding>();
    let io = Rdb::new(io);
    let payload = !events::in_snapshot();
    let content = payload || rdb_content();
    let read = guard("rdb_save", true, || match rdb::save(&io, b, content, payload) {
        Ok(()) => true,
        Err(e) => {
            crate::core::counters::count_read_error();
            log("warning", &format!("save: cannot read '{}': {e}", b.path().display()));
            false
        }
    });
    if !read && io.in_fork_child() {
        // A snapshot without this content would lose it: fail the save, and
        // Redis keeps the RDB it has (or retries the full sync).
        log("warning", "abandoning the save");
        libc::_exit(1);
    }
}

/// Re-opens the file of a saved binding, or writes the saved content.
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

/// Why a saved binding gave no key.
enum Failed {
    /// The stream is broken: the load cannot go on.
    Stream(String),
    /// The file cannot be used; the cause.
    File(String),
}

/// What a load is for, which decides whether a file or a content wins.
#[derive(Clone, Copy, PartialEq)]
enum Purpose {
    /// `RESTORE` (and the target of `MIGRATE`), run or replayed from an AOF:
    /// the payload is the truth. A replayed `RESTORE` must do what it did,
    /// since the writes logged after it were made to what it wrote.
    Restore,
    /// A startup's RDB or AOF preamble (and a payload from before payloads
    /// were marked, replayed from an AOF): a usable file holds writes made
    /// after the snapshot, so it wins; content recreates a file that is
    /// missing or cannot be used.
    Startup,
    /// A full sync: the master's content is the truth; without content, a
    /// file of another length than the master's is refused.
    Sync,
}

/// While loading an RDB, a file that cannot be used still gives a key, one
/// that says why; for `RESTORE` the command fails instead (Redis answers
/// `ERR Bad data format`; the log says why).
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
    let purpose = match (saved.payload() || !io.loading(), events::in_full_sync()) {
        (true, _) => Purpose::Restore,
        (false, false) => Purpose::Startup,
        (false, true) => Purpose::Sync,
    };
    let rel = Path::new(OsStr::from_bytes(&saved.path));
    match bind(io, &saved, purpose, &key) {
        Ok(b) => Some(b),
        Err(Failed::Stream(why)) => {
            log("warning", &format!("key '{}': {why}", shown(&key)));
            None
        }
        Err(Failed::File(cause)) => {
            log(
                "warning",
                &format!(
                    "key '{}': file '{}' cannot be used: {cause}",
                    shown(&key),
                    rel.display()
                ),
            );
            let spec = saved.spec().unwrap_or(Spec::DEFAULT);
            (purpose != Purpose::Restore).then(|| Binding::broken(rel, spec, cause))
        }
    }
}

/// Binds a saved binding as `purpose` wants, and reads its content, if
/// any, to the end.
fn bind(io: &Rdb, saved: &rdb::Saved, purpose: Purpose, key: &[u8]) -> Result<Binding, Failed> {
    let sb = sandbox();
    let (db, has_content) = (io.db(), matches!(saved.form, Form::Content(_)));
    let refuse = |cause: String| match has_content.then(|| skip(io)) {
        Some(Err(broken)) => broken,
        _ => Failed::File(cause),
    };
    let spec = saved.spec().map_err(refuse)?;
    let rel = sb.relative(&saved.path).map_err(|e| refuse(e.to_string()))?;
    let target = Target {
        rel: &rel,
        spec,
        key,
        db,
    };
    let existing = || Binding::open(sb, &target, false, &trusted).map(|(b, _)| b);
    // A full sync's keys may be loaded where no lookup reaches them; every
    // other load looks a file's holder up in the keyspace.
    let find = |k: &[u8], token| match (purpose, crate::ffi::lookup()) {
        (Purpose::Sync, _) | (_, None) => trusted(k, token),
        (_, Some(ctx)) => crate::binding::find_claim(ctx, k, token),
    };
    match (purpose, &saved.form) {
        // Any other failure is left to `replace`, which refuses what must
        // not be replaced: a file another key holds or another process has
        // locked, a directory, a symlink. The key's own claim is what an
        // AOF's `RESTORE ... REPLACE` of a key onto its own file meets: its
        // content, and the writes logged after it, rebuild the file.
        (Purpose::Startup, Form::Content(_)) => match existing() {
            Ok(b) => skip(io).map(|()| b),
            Err(_) => replace(io, &target, &find),
        },
        (_, Form::Content(_)) => replace(io, &target, &find),
        (Purpose::Sync, &Form::Length(expect)) => {
            let b = existing().map_err(|e| Failed::File(e.cause()))?;
            let (expect, len) = (expect as usize, b.opened().map_or(0, |v| v.len()));
            if len == expect {
                return Ok(b);
            }
            let stale = b.opened().and_then(|v| Stale::of(expect, v.file()));
            drop(b);
            let cause = format!(
                "the file holds {len} values but the master's holds {expect}: it is stale; \
                 copy the master's file here, or set mmap.rdb-content yes on the master"
            );
            log(
                "warning",
                &format!("key '{}': file '{}' refused: {cause}", shown(key), rel.display()),
            );
            Ok(Binding::stale(&rel, spec, cause, stale))
        }
        _ => existing().map_err(|e| Failed::File(e.cause())),
    }
}

/// Writes the content in the stream over the file and binds it.
fn replace(io: &Rdb, t: &Target, find: Finder) -> Result<Binding, Failed> {
    let mut read = None;
    let bound = Binding::replace(sandbox(), t, find, |file| {
        let got = rdb::content(io, Some(file), t.spec.kind.size());
        let msg = got.as_ref().err().map(ToString::to_string);
        read = Some(got);
        msg.map_or(Ok(()), Err)
    });
    match read {
        // Refused before the content was read: read past it.
        None => skip(io)?,
        Some(Err(ContentError::Stream(why))) => return Err(Failed::Stream(why)),
        Some(_) => {}
    }
    bound.map_err(|e| Failed::File(e.cause()))
}

/// Reads past content that will not be used, so that the stream stays in
/// step; fails only if the stream itself is broken.
fn skip(io: &Rdb) -> Result<(), Failed> {
    match rdb::content(io, None, 1) {
        Err(ContentError::Stream(why)) => Err(Failed::Stream(why)),
        _ => Ok(()),
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
    let done = guard("aof_rewrite", false, || match b.rebuild(|cmd| super::emit(&aof, cmd)) {
        Ok(()) => true,
        Err(e) => {
            crate::core::counters::count_read_error();
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
            crate::core::counters::count_read_error();
            log("warning", &format!("digest: cannot read '{}': {e}", b.path().display()));
        }
        md.end_sequence();
    })
}
