//! The commands that only read: GET, MGET, COUNT.

use std::sync::atomic::AtomicBool;

use super::offload::{handoff, rerun, Handoff, PAGE};
use super::{arg, bound, index, scratch, ArgKind, Command};
use crate::core::error::Result;
use crate::core::kind::Value;
use crate::core::num::ValueBuf;
use crate::ffi::blocked::Blocked;
use crate::ffi::ctx::{Args, Ctx};
use crate::work::split;

pub static GET: Command = Command {
    name: c"mmap.get",
    alias: Some(c"vget"),
    arity: 3,
    flags: c"readonly fast",
    write: false,
    keyed: true,
    summary: "Returns the value at an index, or nil when the index is out of range or the key is missing.",
    complexity: "O(1)",
    args: &[arg("index", ArgKind::Integer, false)],
    run: get,
};

pub static MGET: Command = Command {
    name: c"mmap.mget",
    alias: Some(c"vmget"),
    arity: -3,
    flags: c"readonly",
    write: false,
    keyed: true,
    summary: "Returns the values at several indices, nil for each index out of range.",
    complexity: "O(N) where N is the number of indices",
    args: &[arg("index", ArgKind::Integer, true)],
    run: mget,
};

pub static COUNT: Command = Command {
    name: c"mmap.count",
    alias: Some(c"vcount"),
    arity: 2,
    flags: c"readonly fast",
    write: false,
    keyed: true,
    summary: "Returns the number of values, 0 for a missing key.",
    complexity: "O(1)",
    args: &[],
    run: count,
};

fn get(ctx: &Ctx, args: &Args) -> Result<()> {
    let i = index(args, 2)?;
    let mut key = ctx.open(args.raw(1), false);
    let found = match bound(ctx, args, &mut key)? {
        Some(b) => b.read(|| args.bytes(1), |v| usize::try_from(i).ok().and_then(|i| v.get(i)))?,
        None => None,
    };
    match found {
        Some(v) => ctx.reply_value(v, ctx.resp3(), &mut ValueBuf::default()),
        None => ctx.reply_null(),
    }
    Ok(())
}

fn mget(ctx: &Ctx, args: &Args) -> Result<()> {
    mget_with(ctx, args, true)
}

fn mget_with(ctx: &Ctx, args: &Args, may_offload: bool) -> Result<()> {
    scratch(|s| {
        for i in 2..args.len() {
            s.indices.push(index(args, i)?);
        }
        let mut key = ctx.open(args.raw(1), false);
        match bound(ctx, args, &mut key)? {
            Some(b) => {
                // Each index may touch a page of its own.
                let touched = s.indices.len() as u64 * PAGE;
                if may_offload {
                    if let Some(h) = handoff(ctx, args, b, |_| touched)? {
                        mget_offloaded(h, std::mem::take(&mut s.indices));
                        return Ok(());
                    }
                }
                b.read(
                    || args.bytes(1),
                    |v| {
                        s.found.clear();
                        v.gather(&s.indices, &mut s.found)
                    },
                )?
            }
            None => s.found.resize(s.indices.len(), None),
        }
        reply_found(ctx, &s.found, ctx.resp3());
        Ok(())
    })
}

/// Reads the values on a worker, so that pages not in memory are read
/// from disk there; the main thread replies.
fn mget_offloaded(h: Handoff, indices: Vec<i64>) {
    let Handoff {
        view,
        len,
        reader,
        blocked,
    } = h;
    let size = reader.size;
    let piece = move |_, _: &AtomicBool| {
        view.read(0, len * size, |b| {
            indices
                .iter()
                .map(|&i| {
                    let i = usize::try_from(i).ok().filter(|&i| i < len)?;
                    Some((reader.decode)(&b[i * size..(i + 1) * size]))
                })
                .collect::<Vec<Option<Value>>>()
        })
    };
    let join = |got: Option<Vec<Vec<Option<Value>>>>, blocked: Blocked| {
        let Some(found) = got.and_then(|mut g| g.pop()) else {
            return blocked.reply(rerun(|ctx, args| mget_with(ctx, args, false)));
        };
        blocked.answer(move |ctx, resp3| reply_found(ctx, &found, resp3));
    };
    split(blocked, 1, piece, join);
}

fn reply_found(ctx: &Ctx, found: &[Option<Value>], resp3: bool) {
    let mut buf = ValueBuf::default();
    ctx.reply_array(found.len());
    for &found in found {
        match found {
            Some(v) => ctx.reply_value(v, resp3, &mut buf),
            None => ctx.reply_null(),
        }
    }
}

fn count(ctx: &Ctx, args: &Args) -> Result<()> {
    let mut key = ctx.open(args.raw(1), false);
    let n = match bound(ctx, args, &mut key)? {
        Some(b) => b.read(|| args.bytes(1), |v| v.len())?,
        None => 0,
    };
    ctx.reply_int(n as i64);
    Ok(())
}
