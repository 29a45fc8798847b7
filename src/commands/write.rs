//! The commands that change a bound file: SET, ADD, POP, CLEAR, RESIZE.
//! Each parses all of its arguments before touching the key, so a malformed
//! one changes nothing.

use redis_module::raw::RedisModuleString as RStr;

use super::propagate::{written, Propagate};
use super::{arg, bound, index, scratch, ArgKind, Command};
use crate::binding::Logged;
use crate::binding::{Binding, Name};
use crate::core::error::{shown, Error, Result};
use crate::core::num::{parse_index, ValueBuf};
use crate::ffi::ctx::{Args, Ctx};
use crate::persist::events;

pub static SET: Command = Command {
    name: c"mmap.set",
    alias: Some(c"vset"),
    arity: -4,
    flags: c"write",
    write: true,
    keyed: true,
    summary: "Writes values at indices in place, skipping indices out of range. Returns how many were written. Values are integers for integer kinds, doubles (rounded to the kind) for float kinds.",
    complexity: "O(N) where N is the number of pairs",
    args: &[arg("index value", ArgKind::Pair, true)],
    run: set,
};

pub static ADD: Command = Command {
    name: c"mmap.add",
    alias: Some(c"vadd"),
    arity: -3,
    flags: c"write deny-oom",
    write: true,
    keyed: true,
    summary: "Appends values to the end of the file. Returns how many were appended.",
    complexity: "O(N) where N is the number of values added, whatever the file size",
    args: &[arg("value", ArgKind::Double, true)],
    run: add,
};

pub static POP: Command = Command {
    name: c"mmap.pop",
    alias: Some(c"vpop"),
    arity: 2,
    flags: c"write fast",
    write: true,
    keyed: true,
    summary: "Removes and returns the last value, or nil when there is none.",
    complexity: "O(1)",
    args: &[],
    run: pop,
};

pub static CLEAR: Command = Command {
    name: c"mmap.clear",
    alias: Some(c"vclear"),
    arity: 2,
    flags: c"write",
    write: true,
    keyed: true,
    summary: "Truncates the file to 0 bytes. Returns the number of values it held.",
    complexity: "O(N) for the file system to release the file's blocks",
    args: &[],
    run: clear,
};

pub static RESIZE: Command = Command {
    name: c"mmap.resize",
    alias: Some(c"vresize"),
    arity: 3,
    flags: c"write deny-oom",
    write: true,
    keyed: true,
    summary: "Makes the vector exactly length values long: cuts the file, or extends it with zeros. Returns the number of values before.",
    complexity: "O(1): a cut or a sparse extension",
    args: &[arg("length", ArgKind::Integer, false)],
    run: resize,
};

/// Runs a write that needs an existing binding. The key's name is fetched
/// only for an error.
pub(super) fn on_bound<R>(ctx: &Ctx, args: &Args, f: impl FnOnce(&mut Binding, Name) -> Result<R>) -> Result<R> {
    let name = || args.bytes(1);
    let mut key = ctx.open(args.raw(1), true);
    match bound(ctx, args, &mut key)? {
        Some(b) => f(b, &name),
        None => Err(Error::NoKey(shown(name())).into()),
    }
}

fn set(ctx: &Ctx, args: &Args) -> Result<()> {
    if args.len() == 4 {
        return set_one(ctx, args);
    }
    if !args.len().is_multiple_of(2) {
        return Err(Error::OddPairs(args.name().to_owned()).into());
    }
    scratch(|s| {
        for i in (2..args.len()).step_by(2) {
            s.indices.push(index(args, i)?);
        }
        set_pairs(ctx, args, &s.indices)
    })
}

/// One pair, the common case: no buffers to fill.
fn set_one(ctx: &Ctx, args: &Args) -> Result<()> {
    let i = index(args, 2)?;
    let stored = on_bound(ctx, args, |b, key| b.set_one(key, i, args.bytes(3)))?;
    if stored {
        written(ctx, args, c"vset", Propagate::AsSent);
    }
    ctx.reply_int(i64::from(stored));
    Ok(())
}

/// Writes the pairs whose indices are parsed, and propagates those that
/// were in range.
fn set_pairs(ctx: &Ctx, args: &Args, indices: &[i64]) -> Result<()> {
    let texts = |k: usize| args.bytes(3 + 2 * k);
    let (n, len) = on_bound(ctx, args, |b, key| b.set(key, indices, &texts))?;
    if n == indices.len() {
        written(ctx, args, c"vset", Propagate::AsSent);
    } else if n > 0 {
        // Only what was written: a skipped pair must stay skipped on replay.
        let kept: Vec<*mut RStr> = indices
            .iter()
            .enumerate()
            .filter(|(_, &i)| usize::try_from(i).is_ok_and(|i| i < len))
            .flat_map(|(k, _)| [args.raw(2 + 2 * k), args.raw(3 + 2 * k)])
            .collect();
        written(ctx, args, c"vset", Propagate::Pairs(&kept));
    }
    ctx.reply_int(n as i64);
    Ok(())
}

fn add(ctx: &Ctx, args: &Args) -> Result<()> {
    let n = args.len() - 2;
    let texts = |k: usize| args.bytes(2 + k);
    let before = on_bound(ctx, args, |b, key| b.append(key, n, &texts, events::may_hold()))?;
    written(ctx, args, c"vadd", Propagate::FromLength(before));
    ctx.reply_int(n as i64);
    Ok(())
}

/// `MMAP.RESIZE key length`: cuts the file, or extends it with zeros.
fn resize(ctx: &Ctx, args: &Args) -> Result<()> {
    let s = args.bytes(2);
    let len = parse_index(s)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Error::BadLength(shown(s)))?;
    let before = on_bound(ctx, args, |b, key| b.resize(key, len))?;
    if len < before {
        written(ctx, args, c"vresize", Propagate::AsSent);
    } else if len > before {
        written(ctx, args, c"vresize", Propagate::FromLength(before));
    }
    ctx.reply_int(before as i64);
    Ok(())
}

fn pop(ctx: &Ctx, args: &Args) -> Result<()> {
    let mut key = ctx.open(args.raw(1), true);
    let popped = match bound(ctx, args, &mut key)? {
        Some(b) => b.pop(&|| args.bytes(1))?,
        None => None,
    };
    drop(key);
    match popped {
        Some((v, left)) => {
            written(ctx, args, c"vpop", Propagate::Instead(Logged::Resize(left)));
            ctx.reply_value(v, ctx.resp3(), &mut ValueBuf::default());
        }
        None => ctx.reply_null(),
    }
    Ok(())
}

fn clear(ctx: &Ctx, args: &Args) -> Result<()> {
    let mut key = ctx.open(args.raw(1), true);
    let n = match bound(ctx, args, &mut key)? {
        Some(b) => b.clear(&|| args.bytes(1))?,
        None => 0,
    };
    drop(key);
    if n > 0 {
        written(ctx, args, c"vclear", Propagate::AsSent);
    }
    ctx.reply_int(n as i64);
    Ok(())
}
