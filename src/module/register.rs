//! Registers every command of the table under its canonical name, and its
//! short alias where the server does not already have that name, each with
//! its `COMMAND DOCS`.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;
use std::sync::OnceLock;

use redis_module::raw;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::commands::{ArgKind, Command, SINCE, TABLE};
use crate::core::error::Error;
use crate::core::settings;
use crate::ffi::ctx::{log_panic, Args, Ctx};
use crate::ffi::{api, log, new_string, RStr};

type CmdFn = extern "C" fn(*mut raw::RedisModuleCtx, *mut *mut raw::RedisModuleString, c_int) -> c_int;

/// The entry point of table slot `I`, reached by its canonical name or,
/// with `ALIAS`, by its short one. Redis gives a command function no data
/// of its own, so the slot is part of the function.
extern "C" fn entry<const I: usize, const ALIAS: bool>(
    c: *mut raw::RedisModuleCtx,
    v: *mut *mut raw::RedisModuleString,
    n: c_int,
) -> c_int {
    let canonical = match ALIAS {
        true => CANONICAL[I].load(Ordering::Relaxed),
        false => ptr::null_mut(),
    };
    run(c, v, n, TABLE[I], canonical)
}

/// Each slot's canonical name as a Redis string, made at load for the
/// commands that have a short name: what a write reached by it is logged
/// under (see `Ctx::replicate_as_sent`).
static CANONICAL: [AtomicPtr<RStr>; 24] = [const { AtomicPtr::new(ptr::null_mut()) }; 24];

/// Runs a command reached by its canonical name or (`canonical` set) its
/// short one: checks its arity, catches any panic, logs it, and answers
/// with an error. Inlined into each entry point, where the command is a
/// constant: the handler is then called directly, in the entry point's
/// frame.
#[inline(always)]
fn run(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    cmd: &'static Command,
    canonical: *mut RStr,
) -> c_int {
    // SAFETY: Redis passes the command's live context.
    let ctx = unsafe { Ctx::from_raw(ctx) };
    let name = match (canonical.is_null(), cmd.alias) {
        (false, Some(alias)) => alias,
        _ => cmd.name,
    };
    // SAFETY: Redis passes argc (at least one) valid strings that live for
    // the whole call; `canonical` lives as long as the module.
    let args = unsafe { Args::new(argv, argc as usize, name, canonical) };
    // Redis checks arity itself where COMMAND DOCS exist; this covers the rest.
    if !cmd.fits(args.len()) {
        ctx.wrong_arity();
        return raw::Status::Ok as c_int;
    }
    match catch_unwind(AssertUnwindSafe(|| (cmd.run)(ctx, &args))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => ctx.reply_error(&e),
        Err(payload) => panicked(ctx, &args, payload),
    }
    raw::Status::Ok as c_int
}

/// Out of line, so that each entry point's frame holds only what the
/// command's success needs.
#[cold]
#[inline(never)]
fn panicked(ctx: &Ctx, args: &Args, payload: Box<dyn std::any::Any + Send>) {
    let name = args.name().to_owned();
    log_panic(&name, payload.as_ref());
    ctx.reply_error(&Error::Panic(name));
}

macro_rules! entries {
    ($($i:literal)*) => { [$((entry::<$i, false> as CmdFn, entry::<$i, true> as CmdFn)),*] };
}

/// Canonical and alias entry points of each table slot.
static ENTRIES: [(CmdFn, CmdFn); 24] = entries!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23);

/// Which short names this server has, for `INFO mmap`.
#[derive(Default)]
pub struct ShortNames {
    pub registered: Vec<&'static str>,
    /// Skipped: the server already had them (Redis 8's `vadd`).
    pub taken: Vec<&'static str>,
}

static SHORT_NAMES: OnceLock<ShortNames> = OnceLock::new();

pub fn short_names() -> &'static ShortNames {
    SHORT_NAMES.get_or_init(ShortNames::default)
}

/// Registers the table. A canonical name that cannot be registered fails
/// the load; a short name the server already has is skipped with a warning.
pub fn commands(ctx: *mut raw::RedisModuleCtx) -> Result<(), String> {
    if TABLE.len() > ENTRIES.len() {
        return Err(format!(
            "{} commands, but entry points for {}",
            TABLE.len(),
            ENTRIES.len()
        ));
    }
    let mut names = ShortNames::default();
    for (i, (cmd, &(canonical, short))) in TABLE.iter().zip(&ENTRIES).enumerate() {
        let upper = cmd.name().to_ascii_uppercase();
        if !create(ctx, cmd.name, canonical, cmd) {
            return Err(format!("cannot create command {upper}"));
        }
        set_info(ctx, cmd.name, cmd, cmd.summary.to_string())?;
        let Some(alias) = cmd.alias.filter(|_| settings::short_names()) else {
            continue;
        };
        // SAFETY: inside redis-server; kept for the module's life.
        CANONICAL[i].store(unsafe { new_string(cmd.name.to_bytes()) }, Ordering::Relaxed);
        let alias_text = alias.to_str().expect("ASCII");
        if create(ctx, alias, short, cmd) {
            set_info(ctx, alias, cmd, format!("Same as {upper}. {}", cmd.summary))?;
            names.registered.push(alias_text);
        } else {
            let taken = alias_text.to_ascii_uppercase();
            log("warning", &format!("{taken} is taken by this server; use {upper}"));
            names.taken.push(alias_text);
        }
    }
    let _ = SHORT_NAMES.set(names);
    Ok(())
}

/// Creates one command; `false` when the server already has the name.
fn create(ctx: *mut raw::RedisModuleCtx, name: &CStr, f: CmdFn, cmd: &Command) -> bool {
    // The key is always argument 1: one key, step 1. That gives Cluster
    // routing and COMMAND GETKEYS a key spec on every Redis version.
    let key = cmd.keyed as c_int;
    // SAFETY: a live load context and NUL-terminated strings.
    let rc = unsafe { api!(RedisModule_CreateCommand)(ctx, name.as_ptr(), Some(f), cmd.flags.as_ptr(), key, key, key) };
    rc == raw::Status::Ok as c_int
}

/// Gives a registered command its `COMMAND DOCS`, and Redis its arity.
fn set_info(ctx: *mut raw::RedisModuleCtx, name: &CStr, cmd: &Command, summary: String) -> Result<(), String> {
    // SAFETY: a live load context and a command this module created.
    let handle = unsafe { api!(RedisModule_GetCommand)(ctx, name.as_ptr()) };
    // SAFETY: reading the function table Redis filled in.
    let Some(set) = (unsafe { raw::RedisModule_SetCommandInfo }) else {
        return Ok(()); // no COMMAND DOCS on this server
    };
    let info = command_info(cmd, summary);
    // SAFETY: `info` and everything it points to are leaked, so they outlive the call.
    if unsafe { set(handle, info) } != raw::Status::Ok as c_int {
        return Err(format!("cannot set the docs of {}", name.to_string_lossy()));
    }
    Ok(())
}

fn leak_str(s: &str) -> *const c_char {
    CString::new(s).expect("no NUL").into_raw()
}

fn leak<T>(v: Vec<T>) -> *mut T {
    Box::leak(v.into_boxed_slice()).as_mut_ptr()
}

/// Builds the `RedisModuleCommandInfo` of a command. Loaded once per process,
/// so its memory is simply kept.
fn command_info(cmd: &Command, summary: String) -> &'static raw::RedisModuleCommandInfo {
    // SAFETY: all-zero is the documented terminator and "unset" for these C structs.
    let zero_arg: raw::RedisModuleCommandArg = unsafe { std::mem::zeroed() };
    let mut key_spec: raw::RedisModuleCommandKeySpec = unsafe { std::mem::zeroed() };
    key_spec.flags = if cmd.write {
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
    let key_specs = if cmd.keyed {
        leak(vec![key_spec, unsafe { std::mem::zeroed() }])
    } else {
        ptr::null_mut()
    };

    let simple = |name: &str, type_: raw::RedisModuleCommandArgType, flags: u32| raw::RedisModuleCommandArg {
        name: leak_str(name),
        type_,
        key_spec_index: -1,
        flags: flags as c_int,
        ..zero_arg
    };
    let mut args = Vec::new();
    if cmd.keyed {
        args.push(raw::RedisModuleCommandArg {
            key_spec_index: 0,
            ..simple("key", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY, 0)
        });
    }
    for a in cmd.args {
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
            ArgKind::Keyword => raw::RedisModuleCommandArg {
                token: leak_str(a.name.split(' ').next().unwrap_or(a.name)),
                ..simple(
                    a.name.split(' ').nth(1).unwrap_or(a.name),
                    raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
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
            ArgKind::Span => raw::RedisModuleCommandArg {
                subargs: leak(vec![
                    simple("start", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER, 0),
                    simple("stop", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER, 0),
                    zero_arg,
                ]),
                ..simple(
                    "range",
                    raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
                    flags | raw::REDISMODULE_CMD_ARG_OPTIONAL,
                )
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
        summary: leak_str(&summary),
        complexity: leak_str(cmd.complexity),
        since: leak_str(SINCE),
        history: ptr::null_mut(),
        tips: ptr::null(),
        arity: cmd.arity,
        key_specs,
        args: leak(args),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_entry_points() {
        assert!(TABLE.len() <= ENTRIES.len());
    }
}
