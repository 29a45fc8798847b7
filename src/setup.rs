//! Module load: options, commands and their docs, the INFO section.

use std::ffi::{c_char, c_int, CString};
use std::ptr;

use redis_module::native_types::RedisType;
use redis_module::raw;
use redis_module::{Context, RedisString, Status};

use crate::ctx::{api, log, set_type};
use crate::docs::{ArgKind, Spec, SINCE};
use crate::{config, info};

pub type CmdFn = extern "C" fn(*mut raw::RedisModuleCtx, *mut *mut raw::RedisModuleString, c_int) -> c_int;

pub fn init(ctx: &Context, args: &[RedisString], data_type: &RedisType, commands: &[(&Spec, CmdFn)]) -> Status {
    set_type(*data_type.raw_type.borrow());
    std::panic::set_hook(Box::new(|p| log("warning", &format!("mmap: {p}"))));
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_slice().to_vec()).collect();
    if let Err(msg) = config::load(ctx.ctx, &args) {
        log("warning", &format!("mmap: module not loaded: {msg}"));
        return Status::Err;
    }
    for &(spec, f) in commands {
        if let Err(msg) = register(ctx.ctx, spec, f) {
            log("warning", &format!("mmap: module not loaded: {msg}"));
            return Status::Err;
        }
    }
    // SAFETY: a live load context; the callbacks live as long as the module.
    unsafe {
        api!(RedisModule_RegisterInfoFunc)(ctx.ctx, Some(info::callback));
        api!(RedisModule_SubscribeToKeyspaceEvents)(
            ctx.ctx,
            raw::NotifyEvent::GENERIC.bits(),
            Some(crate::callbacks::on_generic_event),
        );
        api!(RedisModule_SubscribeToServerEvent)(ctx.ctx, crate::callbacks::FLUSHDB, Some(crate::callbacks::on_flush));
        api!(RedisModule_SubscribeToServerEvent)(ctx.ctx, crate::callbacks::SWAPDB, Some(crate::callbacks::on_swapdb));
        api!(RedisModule_SubscribeToServerEvent)(
            ctx.ctx,
            crate::callbacks::PERSISTENCE,
            Some(crate::callbacks::on_persistence),
        );
        api!(RedisModule_SubscribeToServerEvent)(
            ctx.ctx,
            crate::callbacks::SHUTDOWN,
            Some(crate::callbacks::on_shutdown),
        );
    }
    crate::fsync::start();
    Status::Ok
}

fn register(ctx: *mut raw::RedisModuleCtx, spec: &Spec, f: CmdFn) -> Result<(), String> {
    let name = CString::new(spec.name).expect("no NUL");
    let flags = CString::new(spec.flags).expect("no NUL");
    // The key is always argument 1: one key, step 1. That gives Cluster
    // routing and COMMAND GETKEYS a key spec on every Redis version.
    // SAFETY: a live load context and NUL-terminated strings.
    let rc = unsafe { api!(RedisModule_CreateCommand)(ctx, name.as_ptr(), Some(f), flags.as_ptr(), 1, 1, 1) };
    if rc != raw::Status::Ok as c_int {
        return Err(format!("cannot create command {}", spec.name));
    }
    // SAFETY: as above.
    let cmd = unsafe { api!(RedisModule_GetCommand)(ctx, name.as_ptr()) };
    // SAFETY: reading the function table Redis filled in.
    let Some(set_info) = (unsafe { raw::RedisModule_SetCommandInfo }) else {
        return Ok(()); // no COMMAND DOCS on this server
    };
    let info = command_info(spec);
    // SAFETY: `info` and everything it points to are leaked, so they outlive the call.
    if unsafe { set_info(cmd, info) } != raw::Status::Ok as c_int {
        return Err(format!("cannot set the docs of {}", spec.name));
    }
    Ok(())
}

fn leak_str(s: &str) -> *const c_char {
    CString::new(s).expect("no NUL").into_raw()
}

fn leak<T>(v: Vec<T>) -> *mut T {
    Box::leak(v.into_boxed_slice()).as_mut_ptr()
}

/// Builds the `RedisModuleCommandInfo` for a spec. Loaded once per process,
/// so its memory is simply kept.
fn command_info(spec: &Spec) -> &'static raw::RedisModuleCommandInfo {
    // SAFETY: all-zero is the documented terminator and "unset" for these C structs.
    let zero_arg: raw::RedisModuleCommandArg = unsafe { std::mem::zeroed() };
    let mut key_spec: raw::RedisModuleCommandKeySpec = unsafe { std::mem::zeroed() };
    key_spec.flags = if spec.write {
        (raw::REDISMODULE_CMD_KEY_RW | raw::REDISMODULE_CMD_KEY_UPDATE) as u64
    } else {
        (raw::REDISMODULE_CMD_KEY_RO | raw::REDISMODULE_CMD_KEY_ACCESS) as u64
    };
    key_spec.begin_search_type = raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX;
    key_spec.bs.index.pos = 1;
    key_spec.find_keys_type = raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE;
    key_spec.fk.range.lastkey = 0;
    key_spec.fk.range.keystep = 1;
    key_spec.fk.range.limit = 0;
    let key_specs = leak(vec![key_spec, unsafe { std::mem::zeroed() }]);

    let simple = |name: &str, type_: raw::RedisModuleCommandArgType, flags: u32| raw::RedisModuleCommandArg {
        name: leak_str(name),
        type_,
        key_spec_index: -1,
        flags: flags as c_int,
        ..zero_arg
    };
    let mut args = vec![raw::RedisModuleCommandArg {
        key_spec_index: 0,
        ..simple("key", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY, 0)
    }];
    for a in spec.args {
        let flags = if a.multiple {
            raw::REDISMODULE_CMD_ARG_MULTIPLE
        } else {
            0
        };
        args.push(match a.kind {
            ArgKind::String => simple(
                a.name,
                raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
                flags,
            ),
            ArgKind::Integer => simple(
                a.name,
                raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
                flags,
            ),
            ArgKind::Double => simple(
                a.name,
                raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_DOUBLE,
                flags,
            ),
            ArgKind::Token => raw::RedisModuleCommandArg {
                token: leak_str(a.name),
                ..simple(
                    a.name,
                    raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
                    flags | raw::REDISMODULE_CMD_ARG_OPTIONAL,
                )
            },
            ArgKind::Pair => raw::RedisModuleCommandArg {
                subargs: leak(vec![
                    simple("index", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER, 0),
                    simple("value", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_DOUBLE, 0),
                    zero_arg,
                ]),
                ..simple("data", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK, flags)
            },
        });
    }
    args.push(zero_arg);

    // Our own version record rather than the header's static: the sizes
    // tell Redis how to step through our arrays, whatever its own version.
    let version = Box::leak(Box::new(raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
    }));
    Box::leak(Box::new(raw::RedisModuleCommandInfo {
        version,
        summary: leak_str(spec.summary),
        complexity: leak_str(spec.complexity),
        since: leak_str(SINCE),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: spec.arity,
        key_specs,
        args: leak(args),
    }))
}
