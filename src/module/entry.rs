//! The module's entry point: options, commands, the INFO section, event
//! subscriptions.

use std::ffi::c_int;

use redis_module::{raw, redis_module, Context, RedisString, Status};

use super::{config, info, register};
use crate::binding::Binding;
use crate::ffi::ctx::{self, Ctx};
use crate::ffi::{api, limits, log};
use crate::persist::events;
use crate::persist::types::MMAP_TYPE;

// Redis's allocator is only there inside redis-server; unit tests run without it.
#[cfg(not(test))]
type Alloc = redis_module::alloc::RedisAlloc;
#[cfg(not(test))]
const ALLOC: Alloc = redis_module::alloc::RedisAlloc;
#[cfg(test)]
type Alloc = std::alloc::System;
#[cfg(test)]
const ALLOC: Alloc = std::alloc::System;

redis_module! {
    name: "mmap",
    version: 1,
    allocator: (Alloc, ALLOC),
    data_types: [MMAP_TYPE],
    init: init,
}

fn init(ctx: &Context, args: &[RedisString]) -> Status {
    ctx::set_type::<Binding>(*MMAP_TYPE.raw_type.borrow());
    // SAFETY: the live load context.
    unsafe { crate::ffi::keep_contexts(ctx.ctx) };
    std::panic::set_hook(Box::new(|p| log("warning", &format!("{p}"))));
    if let Some(name) = crate::ffi::hot_api::missing() {
        log("warning", &format!("module not loaded: the server lacks {name}"));
        return Status::Err;
    }
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_slice().to_vec()).collect();
    let loaded = config::load(ctx.ctx, &args).and_then(|()| register::commands(ctx.ctx));
    if let Err(msg) = loaded {
        log("warning", &format!("module not loaded: {msg}"));
        return Status::Err;
    }
    // SAFETY: a live load context; the callbacks live as long as the module.
    unsafe {
        api!(RedisModule_RegisterInfoFunc)(ctx.ctx, Some(info::callback));
        api!(RedisModule_SubscribeToKeyspaceEvents)(
            ctx.ctx,
            raw::NotifyEvent::GENERIC.bits(),
            Some(events::on_generic_event),
        );
        let subscribe = api!(RedisModule_SubscribeToServerEvent);
        subscribe(ctx.ctx, events::FLUSHDB, Some(events::on_flush));
        subscribe(ctx.ctx, events::PERSISTENCE, Some(events::on_persistence));
        subscribe(ctx.ctx, events::SHUTDOWN, Some(events::on_shutdown));
        subscribe(ctx.ctx, events::LOADING, Some(events::on_loading));
        subscribe(ctx.ctx, events::EVENT_LOOP, Some(events::on_event_loop));
        subscribe(ctx.ctx, limits::CONFIG, Some(limits::on_config));
        limits::init(ctx.ctx);
        declare_options(ctx.ctx);
    }
    crate::binding::fsync::start();
    // Before any key is bound: a fault in a bound file's mapping becomes
    // an error reply instead of a crash.
    if let Err(e) = crate::core::sigbus::install() {
        log(
            "warning",
            &format!("module not loaded: cannot install the SIGBUS handler: {e}"),
        );
        return Status::Err;
    }
    Status::Ok
}

/// Valkey's `VALKEYMODULE_OPTIONS_HANDLE_ATOMIC_SLOT_MIGRATION`: without it,
/// Valkey 9 refuses `CLUSTER MIGRATESLOTS` while the module is loaded.
const VALKEY_ATOMIC_SLOT_MIGRATION: c_int = 1 << 5;

/// Declares, on Valkey only (the bit means nothing there elsewhere), that
/// the module handles atomic slot migration. It does: the source sends
/// each key as the commands of an AOF rewrite (`MMAP ... CREATE`, then the
/// content), and then the slot's writes, which the module propagates in
/// absolute form; the target writes them into its own file. A cancelled
/// import deletes the keys and leaves their files, as `DEL` does.
///
/// # Safety
/// `ctx` must be the live load context.
unsafe fn declare_options(ctx: *mut raw::RedisModuleCtx) {
    // `server_name` is in Valkey's `INFO server` only.
    if Ctx::from_raw(ctx).server_info(c"server", c"server_name").as_deref() == Some("valkey") {
        api!(RedisModule_SetModuleOptions)(ctx, VALKEY_ATOMIC_SLOT_MIGRATION);
        log("notice", "declared atomic slot migration support (Valkey)");
    }
}
