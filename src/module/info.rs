//! `INFO mmap`: the counters, and which short names this server has.

use std::ffi::{c_int, CString};

use redis_module::raw;

use super::register::short_names;
use crate::core::counters;
use crate::ffi::api;
use crate::ffi::ctx::guard;

/// # Safety
/// `ctx` must be the info context Redis passed to the info callback.
unsafe fn fill(ctx: *mut raw::RedisModuleInfoCtx) {
    api!(RedisModule_InfoAddSection)(ctx, c"stats".as_ptr());
    for (name, v) in counters::all() {
        let name = CString::new(name).expect("no NUL");
        api!(RedisModule_InfoAddFieldLongLong)(ctx, name.as_ptr(), v);
    }
    crate::ffi::limits::info(ctx);
    api!(RedisModule_InfoAddSection)(ctx, c"commands".as_ptr());
    let names = short_names();
    for (field, list) in [
        (c"short_names", &names.registered),
        (c"short_names_taken", &names.taken),
    ] {
        let text = CString::new(list.join(",")).expect("no NUL");
        api!(RedisModule_InfoAddFieldCString)(ctx, field.as_ptr(), text.as_ptr());
    }
}

/// # Safety
/// Called by Redis for `INFO` with a live info context.
pub unsafe extern "C" fn callback(ctx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    guard("INFO", (), || fill(ctx));
}
