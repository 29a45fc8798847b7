//! The bulk commands: RANGE and STATS read a run of values, SETRANGE and
//! APPEND write raw elements. Ranges follow `LRANGE`: inclusive ends,
//! negative indices from the end, ends clipped.

use super::propagate::{written, Propagate};
use super::write::on_bound;
use super::{arg, bound, index, scratch, ArgKind, Command};
use crate::core::column::clip;
use crate::core::error::{shown, Error, Result};
use crate::core::kind::Value;
use crate::core::num::ValueBuf;
use crate::core::summary::Summary;
use crate::ffi::ctx::{Args, Ctx};
use crate::persist::events;

pub static RANGE: Command = Command {
    name: c"mmap.range",
    alias: None,
    arity: -4,
    flags: c"readonly",
    write: false,
    keyed: true,
    summary: "Returns the values from start to stop, both inclusive, by LRANGE's rules (negative indices count from the end, ends are clipped): an array of values, or with BLOB one bulk string of the raw little-endian elements as the file holds them. Empty for a missing key.",
    complexity: "O(N) where N is the number of values returned; with BLOB, one copy of N times the element size bytes",
    args: &[
        arg("start", ArgKind::Integer, false),
        arg("stop", ArgKind::Integer, false),
        arg("BLOB", ArgKind::Token, false),
    ],
    run: range,
};

pub static SETRANGE: Command = Command {
    name: c"mmap.setrange",
    alias: None,
    arity: 4,
    flags: c"write",
    write: true,
    keyed: true,
    summary: "Writes raw little-endian elements in place from index on. The blob must be a whole number of elements that all lie within the vector. Returns how many were written.",
    complexity: "O(N) where N is the number of bytes written",
    args: &[
        arg("index", ArgKind::Integer, false),
        arg("bytes", ArgKind::String, false),
    ],
    run: setrange,
};

pub static APPEND: Command = Command {
    name: c"mmap.append",
    alias: None,
    arity: 3,
    flags: c"write deny-oom",
    write: true,
    keyed: true,
    summary: "Appends raw little-endian elements to the end of the file. The blob must be a whole number of elements. Returns the new length.",
    complexity: "O(N) where N is the number of bytes appended, whatever the file size",
    args: &[arg("bytes", ArgKind::String, false)],
    run: append,
};

pub static STATS: Command = Command {
    name: c"mmap.stats",
    alias: None,
    arity: -2,
    flags: c"readonly",
    write: false,
    keyed: true,
    summary: "Summarises the values from start to stop (all when not given; LRANGE's rules): count, nan (NaNs, skipped), sum (compensated, in double precision; exact for integer kinds), min, max, mean and std (population). A map, or a flat field/value array under RESP2; min, max, mean and std are nil when no value is counted.",
    complexity: "O(N) where N is the number of values in the range, in one pass: it blocks the server for about a quarter of a second per GB of values in memory (4 GB/s), longer for parts of the file read from disk",
    args: &[arg("start stop", ArgKind::Span, false)],
    run: stats,
};

fn range(ctx: &Ctx, args: &Args) -> Result<()> {
    let (start, stop) = (index(args, 2)?, index(args, 3)?);
    let blob = match args.len() {
        4 => false,
        _ if args.bytes(4).eq_ignore_ascii_case(b"blob") => true,
        _ => {
            return Err(Error::BadOption {
                command: args.name().to_owned(),
                option: shown(args.bytes(4)),
                known: "BLOB",
            }
            .into())
        }
    };
    let mut key = ctx.open(args.raw(1), false);
    let Some(b) = bound(ctx, args, &mut key)? else {
        match blob {
            true => ctx.reply_str(""),
            false => ctx.reply_array(0),
        }
        return Ok(());
    };
    // Copied out before anything is sent: a fault meanwhile fails the
    // command instead of sending zeros.
    if blob {
        // Into a buffer kept between commands: no allocation per reply.
        return scratch(|s| {
            b.read(
                || args.bytes(1),
                |v| {
                    let span = clip(start, stop, v.len());
                    s.bytes.clear();
                    v.span(span.start, span.end).copy_into(&mut s.bytes);
                },
            )?;
            ctx.reply_bytes(&s.bytes);
            Ok(())
        });
    } else {
        let values = b.read(
            || args.bytes(1),
            |v| {
                let span = clip(start, stop, v.len());
                let mut out = Vec::with_capacity(span.len());
                v.each(span.start, span.end, &mut |x| out.push(x));
                out
            },
        )?;
        let (resp3, mut buf) = (ctx.resp3(), ValueBuf::default());
        ctx.reply_array(values.len());
        for x in values {
            ctx.reply_value(x, resp3, &mut buf);
        }
    }
    Ok(())
}

fn setrange(ctx: &Ctx, args: &Args) -> Result<()> {
    let at = index(args, 2)?;
    let bytes = args.bytes(3);
    let n = on_bound(ctx, args, |b, key| b.write_bytes(key, at, bytes))?;
    if n > 0 {
        // Absolute positions: replayed over its own effect, it changes nothing.
        written(ctx, args, c"vsetrange", Propagate::AsSent);
    }
    ctx.reply_int(n as i64);
    Ok(())
}

fn append(ctx: &Ctx, args: &Args) -> Result<()> {
    let bytes = args.bytes(2);
    let (before, after) = on_bound(ctx, args, |b, key| b.append_bytes(key, bytes, events::may_hold()))?;
    if after > before {
        written(ctx, args, c"vappend", Propagate::FromLength(before));
    }
    ctx.reply_int(after as i64);
    Ok(())
}

fn stats(ctx: &Ctx, args: &Args) -> Result<()> {
    let (start, stop) = match args.len() {
        2 => (0, -1),
        4 => (index(args, 2)?, index(args, 3)?),
        _ => return Err(Error::Syntax(format!("{} takes start and stop together, or neither", args.name())).into()),
    };
    let mut key = ctx.open(args.raw(1), false);
    let summary = match bound(ctx, args, &mut key)? {
        Some(b) => b.read(
            || args.bytes(1),
            |v| {
                let span = clip(start, stop, v.len());
                v.summary(span.start, span.end)
            },
        )?,
        None => Summary::EMPTY,
    };
    reply_summary(ctx, &summary);
    Ok(())
}

/// Counts as integers; the sum, mean and std as doubles, in RESP2 in the
/// same shortest text every server gives (as values are); min and max in
/// the key's kind, as `MMAP.GET` replies.
fn reply_summary(ctx: &Ctx, s: &Summary) {
    let (resp3, mut buf) = (ctx.resp3(), ValueBuf::default());
    let mut value = |v: Option<Value>| match v {
        Some(v) => ctx.reply_value(v, resp3, &mut buf),
        None => ctx.reply_null(),
    };
    ctx.reply_map(7);
    ctx.reply_str("count");
    ctx.reply_int(s.count as i64);
    ctx.reply_str("nan");
    ctx.reply_int(s.nan as i64);
    ctx.reply_str("sum");
    value(Some(Value::F64(s.sum)));
    ctx.reply_str("min");
    value(s.min);
    ctx.reply_str("max");
    value(s.max);
    ctx.reply_str("mean");
    value(s.mean.map(Value::F64));
    ctx.reply_str("std");
    value(s.std.map(Value::F64));
}
