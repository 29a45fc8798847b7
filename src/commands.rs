//! The commands. Each parses all of its arguments before touching the key,
//! so a malformed one changes nothing.

use std::ffi::CStr;

use crate::binding::Binding;
use crate::config::sandbox;
use crate::ctx::{log, Args, Ctx};
use crate::error::{shown, Error, Result};
use crate::num::{parse_index, parse_value, ValueBuf};

fn index(args: &Args, i: usize) -> Result<i64> {
    let s = args.bytes(i);
    parse_index(s).ok_or_else(|| Error::BadIndex(shown(s)))
}

fn value(args: &Args, i: usize) -> Result<f64> {
    let s = args.bytes(i);
    parse_value(s).ok_or_else(|| Error::BadValue(shown(s)))
}

/// How a write reaches the AOF and replicas.
enum Propagate<'a> {
    /// Not yet: replaying it is not idempotent.
    No,
    /// `MMAP key <path relative to mmap.dir>`, the same on any server.
    Mmap(&'a std::path::Path),
}

/// After every successful write: replicate, then notify.
fn written(ctx: &Ctx, args: &Args, event: &CStr, how: Propagate) {
    if let Propagate::Mmap(rel) = how {
        ctx.replicate_mmap(args.raw(1), rel);
    }
    ctx.notify(event, args.raw(1));
}

fn slot(v: &crate::binding::Vector, i: i64) -> Option<f64> {
    usize::try_from(i).ok().and_then(|i| v.get(i))
}

pub fn mmap(ctx: &Ctx, args: &Args) -> Result<()> {
    let key_name = args.bytes(1);
    let path = args.bytes(2);
    let sb = sandbox();
    let rel = sb.relative(path).map_err(|cause| Error::Path {
        path: shown(path),
        cause,
    })?;
    let mut key = ctx.open(args.raw(1), true);
    let n = match key.binding()? {
        Some(b) => {
            let (n, reopened) = b.rebind(sb, &rel, key_name, ctx.db())?;
            if reopened {
                written(ctx, args, c"mmap", Propagate::Mmap(&rel));
            }
            n
        }
        None => {
            let loading = ctx.loading();
            let b = match Binding::open(sb, &rel, key_name, ctx.db(), !loading) {
                Ok(b) => b,
                // Replaying an AOF: a file that is gone stays gone, as when an
                // RDB is loaded; the key says why.
                Err(e) if loading => {
                    let cause = e.cause();
                    log(
                        "warning",
                        &format!("mmap: key '{}': file '{}': {cause}", shown(key_name), rel.display()),
                    );
                    Binding::broken(&rel, cause)
                }
                Err(e) => return Err(e),
            };
            let n = b.vector(key_name).map_or(0, |v| v.len());
            key.set(b);
            written(ctx, args, c"mmap", Propagate::Mmap(&rel));
            n
        }
    };
    ctx.reply_int(n as i64);
    Ok(())
}

pub fn vget(ctx: &Ctx, args: &Args) -> Result<()> {
    let i = index(args, 2)?;
    let mut key = ctx.open(args.raw(1), false);
    let found = match key.binding()? {
        Some(b) => slot(b.vector(args.bytes(1))?, i),
        None => None,
    };
    match found {
        Some(v) => ctx.reply_value(v, ctx.resp3(), &mut ValueBuf::default()),
        None => ctx.reply_null(),
    }
    Ok(())
}

pub fn vmget(ctx: &Ctx, args: &Args) -> Result<()> {
    let indices = (2..args.len()).map(|i| index(args, i)).collect::<Result<Vec<_>>>()?;
    let mut key = ctx.open(args.raw(1), false);
    let vec = match key.binding()? {
        Some(b) => Some(b.vector(args.bytes(1))?),
        None => None,
    };
    let (resp3, mut buf) = (ctx.resp3(), ValueBuf::default());
    ctx.reply_array(indices.len());
    for i in indices {
        match vec.and_then(|v| slot(v, i)) {
            Some(v) => ctx.reply_value(v, resp3, &mut buf),
            None => ctx.reply_null(),
        }
    }
    Ok(())
}

/// Runs a write that needs an existing binding.
fn on_bound<R>(ctx: &Ctx, args: &Args, f: impl FnOnce(&mut Binding, &[u8]) -> Result<R>) -> Result<R> {
    let mut key = ctx.open(args.raw(1), true);
    match key.binding()? {
        Some(b) => f(b, args.bytes(1)),
        None => Err(Error::NoKey(shown(args.bytes(1)))),
    }
}

pub fn vset(ctx: &Ctx, args: &Args) -> Result<()> {
    if !args.len().is_multiple_of(2) {
        return Err(Error::OddPairs);
    }
    let pairs = (2..args.len())
        .step_by(2)
        .map(|i| Ok((index(args, i)?, value(args, i + 1)?)))
        .collect::<Result<Vec<_>>>()?;
    let n = on_bound(ctx, args, |b, key| b.set(key, &pairs))?;
    if n > 0 {
        written(ctx, args, c"vset", Propagate::No);
    }
    ctx.reply_int(n as i64);
    Ok(())
}

pub fn vadd(ctx: &Ctx, args: &Args) -> Result<()> {
    let values = (2..args.len()).map(|i| value(args, i)).collect::<Result<Vec<_>>>()?;
    let n = on_bound(ctx, args, |b, key| b.append(key, &values))?;
    written(ctx, args, c"vadd", Propagate::No);
    ctx.reply_int(n as i64);
    Ok(())
}

pub fn vpop(ctx: &Ctx, args: &Args) -> Result<()> {
    let mut key = ctx.open(args.raw(1), true);
    let popped = match key.binding()? {
        Some(b) => b.pop(args.bytes(1))?,
        None => None,
    };
    drop(key);
    match popped {
        Some(v) => {
            written(ctx, args, c"vpop", Propagate::No);
            ctx.reply_value(v, ctx.resp3(), &mut ValueBuf::default());
        }
        None => ctx.reply_null(),
    }
    Ok(())
}

pub fn vcount(ctx: &Ctx, args: &Args) -> Result<()> {
    let mut key = ctx.open(args.raw(1), false);
    let n = match key.binding()? {
        Some(b) => b.vector(args.bytes(1))?.len(),
        None => 0,
    };
    ctx.reply_int(n as i64);
    Ok(())
}

pub fn vclear(ctx: &Ctx, args: &Args) -> Result<()> {
    let mut key = ctx.open(args.raw(1), true);
    let n = match key.binding()? {
        Some(b) => b.clear(args.bytes(1))?,
        None => 0,
    };
    drop(key);
    if n > 0 {
        written(ctx, args, c"vclear", Propagate::No);
    }
    ctx.reply_int(n as i64);
    Ok(())
}

/// Only in builds for the tests: proves a panic becomes an error reply.
#[cfg(feature = "fault-injection")]
pub fn panic(_ctx: &Ctx, _args: &Args) -> Result<()> {
    panic!("injected by MMAP.PANIC")
}
