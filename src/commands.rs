//! The commands. Each parses all of its arguments before touching the key,
//! so a malformed one changes nothing.

use std::cell::RefCell;
use std::ffi::CStr;

use redis_module::raw::RedisModuleString as RStr;

use crate::binding::{Binding, Logged};
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

/// How a write reaches the AOF and replicas. Each form sets what it
/// touches absolutely, as Redis turns INCRBYFLOAT into SET: replayed over a
/// file that already holds its effects it changes nothing, and replayed over
/// the file as it was when the log began it reproduces it.
enum Propagate<'a> {
    /// As sent: VSET of in-range pairs, VCLEAR, a VRESIZE that shrinks.
    Verbatim,
    /// A command of the module's own instead: `VRESIZE key len` for VPOP,
    /// `MMAP` with the path relative to `mmap.dir`.
    Instead(Logged<'a>),
    /// `VRESIZE key len`, then the command as sent: VADD and a growing
    /// VRESIZE act on the length they find, so the log first fixes it.
    FromLength(usize),
    /// `VSET key` with only the pairs that were in range.
    Pairs(&'a [*mut RStr]),
}

/// After every successful write: replicate (which also counts a change for
/// the `save` rules), then notify.
fn written(ctx: &Ctx, args: &Args, event: &CStr, how: Propagate) {
    let key = args.raw(1);
    match how {
        Propagate::Verbatim => ctx.replicate_verbatim(),
        Propagate::Instead(cmd) => ctx.replicate(key, cmd),
        Propagate::FromLength(len) => {
            ctx.replicate(key, Logged::Resize(len));
            ctx.replicate_verbatim();
        }
        Propagate::Pairs(pairs) => ctx.replicate_args(c"VSET", key, pairs),
    }
    ctx.notify(event, key);
}

/// Parse buffers kept between commands: every command runs on the main
/// thread, so one set serves them all and the hot path allocates nothing.
#[derive(Default)]
struct Scratch {
    indices: Vec<i64>,
    pairs: Vec<(i64, f64)>,
    values: Vec<f64>,
    found: Vec<Option<f64>>,
}

thread_local!(static SCRATCH: RefCell<Scratch> = RefCell::default());

/// Runs `f` with empty buffers. What the last command left (all of it, if
/// it failed or panicked) is dropped first, and a huge command's room is not
/// kept.
fn scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    const KEEP: usize = 1 << 16;
    SCRATCH.with_borrow_mut(|s| {
        s.indices.clear();
        s.pairs.clear();
        s.values.clear();
        s.found.clear();
        s.indices.shrink_to(KEEP);
        s.pairs.shrink_to(KEEP);
        s.values.shrink_to(KEEP);
        s.found.shrink_to(KEEP);
        f(s)
    })
}

fn slot(v: &crate::binding::Vector, i: i64) -> Option<f64> {
    usize::try_from(i).ok().and_then(|i| v.get(i))
}

/// `MMAP key path [CREATE]`. Replaying an AOF or following a master, a
/// missing file is created only with CREATE, which the module writes only
/// where the commands after it rebuild the whole content; otherwise a file
/// that is gone stays gone and the key says why.
pub fn mmap(ctx: &Ctx, args: &Args) -> Result<()> {
    let key_name = args.bytes(1);
    let path = args.bytes(2);
    // Four arguments at most: the spec's arity bound.
    let create_flag = match args.len() {
        3 => false,
        _ if args.bytes(3).eq_ignore_ascii_case(b"CREATE") => true,
        _ => {
            return Err(Error::BadOption {
                command: "MMAP",
                option: shown(args.bytes(3)),
                known: "CREATE",
            })
        }
    };
    let sb = sandbox();
    let rel = sb.relative(path).map_err(|cause| Error::Path {
        path: shown(path),
        cause,
    })?;
    let mut key = ctx.open(args.raw(1), true);
    // The count, and whether the binding changed (and the file was created).
    let (n, changed) = match key.binding()? {
        Some(b) => {
            let (n, reopened) = b.rebind(sb, &rel, key_name, ctx.db())?;
            (n, reopened.then_some(false))
        }
        None => {
            let following = ctx.loading() || ctx.replicated();
            let (b, created) = match Binding::open(sb, &rel, key_name, ctx.db(), create_flag || !following) {
                Ok(opened) => opened,
                Err(e) if following => {
                    let cause = e.cause();
                    log(
                        "warning",
                        &format!("mmap: key '{}': file '{}': {cause}", shown(key_name), rel.display()),
                    );
                    (Binding::broken(&rel, cause), false)
                }
                Err(e) => return Err(e),
            };
            let n = b.opened().map_or(0, |v| v.len());
            key.set(b);
            (n, Some(created))
        }
    };
    if let Some(create) = changed {
        written(
            ctx,
            args,
            c"mmap",
            Propagate::Instead(Logged::Mmap { rel: &rel, create }),
        );
    }
    ctx.reply_int(n as i64);
    Ok(())
}

pub fn vget(ctx: &Ctx, args: &Args) -> Result<()> {
    let i = index(args, 2)?;
    let mut key = ctx.open(args.raw(1), false);
    let found = match key.binding()? {
        Some(b) => slot(b.vector(|| args.bytes(1))?, i),
        None => None,
    };
    match found {
        Some(v) => ctx.reply_value(v, ctx.resp3(), &mut ValueBuf::default()),
        None => ctx.reply_null(),
    }
    Ok(())
}

pub fn vmget(ctx: &Ctx, args: &Args) -> Result<()> {
    scratch(|s| {
        for i in 2..args.len() {
            s.indices.push(index(args, i)?);
        }
        let mut key = ctx.open(args.raw(1), false);
        let vec = match key.binding()? {
            Some(b) => Some(b.vector(|| args.bytes(1))?),
            None => None,
        };
        let (resp3, mut buf) = (ctx.resp3(), ValueBuf::default());
        // Loads first, replies after: random reads into a large file miss the
        // cache, and a loop free of calls lets the CPU wait for them together.
        s.found.extend(s.indices.iter().map(|&i| vec.and_then(|v| slot(v, i))));
        ctx.reply_array(s.found.len());
        for &found in &s.found {
            match found {
                Some(v) => ctx.reply_value(v, resp3, &mut buf),
                None => ctx.reply_null(),
            }
        }
        Ok(())
    })
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
    scratch(|s| {
        for i in (2..args.len()).step_by(2) {
            s.pairs.push((index(args, i)?, value(args, i + 1)?));
        }
        let pairs = &s.pairs;
        let (n, len) = on_bound(ctx, args, |b, key| b.set(key, pairs))?;
        if n == pairs.len() {
            written(ctx, args, c"vset", Propagate::Verbatim);
        } else if n > 0 {
            // Only what was written: a skipped pair must stay skipped on replay.
            let kept: Vec<*mut RStr> = pairs
                .iter()
                .enumerate()
                .filter(|(_, &(i, _))| usize::try_from(i).is_ok_and(|i| i < len))
                .flat_map(|(k, _)| [args.raw(2 + 2 * k), args.raw(3 + 2 * k)])
                .collect();
            written(ctx, args, c"vset", Propagate::Pairs(&kept));
        }
        ctx.reply_int(n as i64);
        Ok(())
    })
}

pub fn vadd(ctx: &Ctx, args: &Args) -> Result<()> {
    scratch(|s| {
        for i in 2..args.len() {
            s.values.push(value(args, i)?);
        }
        let before = on_bound(ctx, args, |b, key| b.append(key, &s.values))?;
        written(ctx, args, c"vadd", Propagate::FromLength(before));
        ctx.reply_int(s.values.len() as i64);
        Ok(())
    })
}

/// `VRESIZE key length`: cuts the file, or extends it with zeros.
pub fn vresize(ctx: &Ctx, args: &Args) -> Result<()> {
    let s = args.bytes(2);
    let len = parse_index(s)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Error::BadLength(shown(s)))?;
    let before = on_bound(ctx, args, |b, key| b.resize(key, len))?;
    if len < before {
        written(ctx, args, c"vresize", Propagate::Verbatim);
    } else if len > before {
        written(ctx, args, c"vresize", Propagate::FromLength(before));
    }
    ctx.reply_int(before as i64);
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
        Some((v, left)) => {
            written(ctx, args, c"vpop", Propagate::Instead(Logged::Resize(left)));
            ctx.reply_value(v, ctx.resp3(), &mut ValueBuf::default());
        }
        None => ctx.reply_null(),
    }
    Ok(())
}

pub fn vcount(ctx: &Ctx, args: &Args) -> Result<()> {
    let mut key = ctx.open(args.raw(1), false);
    let n = match key.binding()? {
        Some(b) => b.vector(|| args.bytes(1))?.len(),
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
        written(ctx, args, c"vclear", Propagate::Verbatim);
    }
    ctx.reply_int(n as i64);
    Ok(())
}

/// Only in builds for the tests: proves a panic becomes an error reply.
#[cfg(feature = "fault-injection")]
pub fn panic(_ctx: &Ctx, _args: &Args) -> Result<()> {
    panic!("injected by MMAP.PANIC")
}
