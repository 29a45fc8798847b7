//! The server's side of the key budget: `maxclients`, read at load and
//! again whenever `CONFIG SET` changes it, and the open-file limit, raised
//! at load.

use std::ffi::{c_void, CStr};

use redis_module::raw;

use super::ctx::{guard, Ctx};
use super::log;
use crate::core::limits;

/// `maxclients` as the server has it now.
///
/// # Safety
/// `ctx` must be a live context on the main thread.
unsafe fn maxclients(ctx: *mut raw::RedisModuleCtx) -> Option<u64> {
    Ctx::from_raw(ctx).config(c"maxclients")?.parse().ok()
}

/// Re-reads `maxclients`.
///
/// # Safety
/// `ctx` must be a live context on the main thread.
unsafe fn refresh(ctx: *mut raw::RedisModuleCtx) {
    match maxclients(ctx) {
        Some(n) => limits::set_maxclients(n),
        None => log("warning", "cannot read maxclients; the key budget assumes 10000"),
    }
}

/// At load: raises the soft open-file limit as far as the hard one allows,
/// and reads the figures the key budget is worked out from.
///
/// # Safety
/// `ctx` must be the live load context.
pub unsafe fn init(ctx: *mut raw::RedisModuleCtx) {
    match limits::raise_open_files() {
        Ok((before, after)) if after > before => log(
            "notice",
            &format!("raised the open-file limit from {before} to {after}"),
        ),
        Ok(_) => {}
        Err(e) => log("warning", &format!("cannot raise the open-file limit: {e}")),
    }
    limits::refresh_map_count();
    refresh(ctx);
    let l = limits::Limits::now();
    log(
        "notice",
        &format!(
            "up to {} keys can be bound (open-file limit {}, maxclients {}, vm.max_map_count {}, mmap.max-keys {})",
            l.budget().0,
            l.open_files,
            l.maxclients,
            l.max_map_count,
            l.configured
        ),
    );
}

/// `RedisModuleConfigChangeV1`.
#[repr(C)]
struct ConfigChange {
    version: u64,
    num_changes: u32,
    config_names: *const *const std::ffi::c_char,
}

pub const CONFIG: raw::RedisModuleEvent = raw::RedisModuleEvent {
    id: raw::REDISMODULE_EVENT_CONFIG,
    dataver: 1,
};

/// `CONFIG SET maxclients` changes how many descriptors clients may take.
///
/// # Safety
/// Called by Redis on the main thread with the event's own data.
pub unsafe extern "C" fn on_config(
    ctx: *mut raw::RedisModuleCtx,
    _e: raw::RedisModuleEvent,
    _sub: u64,
    data: *mut c_void,
) {
    if data.is_null() {
        return;
    }
    // The server reinstalls its crash handler on `CONFIG SET
    // crash-log-enabled`, over ours: put ours back, chaining to it.
    match crate::core::sigbus::install() {
        Ok(true) => log(
            "notice",
            "the SIGBUS handler for bound files is back in force after CONFIG SET",
        ),
        Ok(false) => {}
        Err(e) => log("warning", &format!("cannot reinstall the SIGBUS handler: {e}")),
    }
    let change = &*data.cast::<ConfigChange>();
    let names = std::slice::from_raw_parts(change.config_names, change.num_changes as usize);
    if names.iter().any(|&n| CStr::from_ptr(n).to_bytes() == b"maxclients") {
        guard("config", (), || refresh(ctx));
    }
}

/// The `mmap_limits` section of `INFO mmap`.
///
/// # Safety
/// `ctx` must be the info context Redis passed to the info callback.
pub unsafe fn info(ctx: *mut raw::RedisModuleInfoCtx) {
    let l = limits::Limits::now();
    let (budget, ceiling) = l.budget();
    let by = match ceiling {
        limits::Ceiling::Descriptors => c"open-files",
        limits::Ceiling::Maps => c"max-map-count",
        limits::Ceiling::Configured => c"max-keys",
    };
    api!(RedisModule_InfoAddSection)(ctx, c"limits".as_ptr());
    let field = |name: &CStr, v: u64| api!(RedisModule_InfoAddFieldULongLong)(ctx, name.as_ptr(), v);
    field(c"max_keys", budget);
    field(c"descriptors_in_use", crate::core::counters::descriptors());
    api!(RedisModule_InfoAddFieldCString)(ctx, c"max_keys_set_by".as_ptr(), by.as_ptr());
    field(c"max_keys_by_open_files", l.by_descriptors());
    field(c"max_keys_by_map_count", l.by_maps());
    field(c"max_keys_config", l.configured);
    field(c"open_files_limit", l.open_files);
    field(c"maxclients", l.maxclients);
    field(c"vm_max_map_count", l.max_map_count);
}
