//! The bulk commands: RANGE and STATS read a run of values, SETRANGE and
//! APPEND write raw elements. Ranges follow `LRANGE`: inclusive ends,
//! negative indices from the end, ends clipped.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use super::offload::{handoff, rerun, Handoff};
use super::propagate::{written, Propagate};
use super::write::on_bound;
use super::{arg, bound, index, scratch, ArgKind, Command};
use crate::core::column::clip;
use crate::core::counters;
use crate::core::error::{shown, Error, Result};
use crate::core::kind::Value;
use crate::core::num::ValueBuf;
use crate::core::summary::{Acc, Summary, SEGMENT};
use crate::ffi::blocked::Blocked;
use crate::ffi::ctx::{Args, Ctx};
use crate::persist::events;
use crate::work::{pool, split};

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

pub static PREFETCH: Command = Command {
    name: c"mmap.prefetch",
    alias: None,
    arity: -2,
    flags: c"readonly fast",
    write: false,
    keyed: true,
    summary: "Brings the values from start to stop (all when not given; LRANGE's rules) into memory ahead of use, without blocking anyone: replies at once with the bytes of the range, which a worker thread then reads from disk (or, with mmap.threads 0, which the kernel starts reading). 0 for a missing key.",
    complexity: "O(1) for the caller; the reads happen on a worker thread or in the kernel",
    args: &[arg("start stop", ArgKind::Span, false)],
    run: prefetch,
};

fn prefetch(ctx: &Ctx, args: &Args) -> Result<()> {
    let (start, stop) = span_args(args)?;
    let mut key = ctx.open(args.raw(1), false);
    let Some(b) = bound(ctx, args, &mut key)? else {
        ctx.reply_int(0);
        return Ok(());
    };
    let (view, len) = b.view(&|| args.bytes(1))?;
    let size = b.spec().kind.size();
    let span = clip(start, stop, len);
    let (from, to) = (span.start * size, span.end * size);
    let bytes = (to - from) as u64;
    let read = move || {
        // Only advice: a range the kernel cannot read is read (and its
        // error given) by the command that needs it.
        let wait = std::thread::current().name() == Some(pool::NAME);
        if view.populate(from, to, wait).is_ok() {
            counters::count_prefetched(bytes);
        }
    };
    if let Err(read) = pool::submit(Box::new(read)) {
        read();
    }
    ctx.reply_int(bytes as i64);
    Ok(())
}

/// `start stop`, or neither (the whole vector).
fn span_args(args: &Args) -> Result<(i64, i64)> {
    match args.len() {
        2 => Ok((0, -1)),
        4 => Ok((index(args, 2)?, index(args, 3)?)),
        _ => Err(Error::Syntax(format!("{} takes start and stop together, or neither", args.name())).into()),
    }
}

fn range(ctx: &Ctx, args: &Args) -> Result<()> {
    range_with(ctx, args, true)
}

fn range_with(ctx: &Ctx, args: &Args, may_offload: bool) -> Result<()> {
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
    if may_offload {
        let size = b.spec().kind.size() as u64;
        if let Some(h) = handoff(ctx, args, b, |len| clip(start, stop, len).len() as u64 * size)? {
            let span = clip(start, stop, h.len);
            range_offloaded(h, span, blob);
            return Ok(());
        }
    }
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

/// Copies the span on a worker; the main thread replies with the bytes,
/// or the values they hold.
fn range_offloaded(h: Handoff, span: Range<usize>, blob: bool) {
    let Handoff {
        view, reader, blocked, ..
    } = h;
    let size = reader.size;
    let piece = move |_, gone: &AtomicBool| {
        view.read(span.start * size, span.end * size, |b| {
            // In pieces, so that a client that left stops the copy.
            let mut out = Vec::with_capacity(b.len());
            for c in b.chunks(COPY) {
                if gone.load(Ordering::Relaxed) {
                    break;
                }
                out.extend_from_slice(c);
            }
            out
        })
    };
    // The reply is made on the worker too: the main thread only sends it.
    let join = move |got: Option<Vec<Vec<u8>>>, blocked: Blocked| {
        let Some(bytes) = got.and_then(|mut g| g.pop()) else {
            return blocked.reply(rerun(|ctx, args| range_with(ctx, args, false)));
        };
        blocked.answer(move |ctx, resp3| {
            if blob {
                return ctx.reply_bytes(&bytes);
            }
            let mut buf = ValueBuf::default();
            ctx.reply_array(bytes.len() / size);
            for e in bytes.chunks_exact(size) {
                ctx.reply_value((reader.decode)(e), resp3, &mut buf);
            }
        })
    };
    split(blocked, 1, piece, join);
}

/// Bytes a worker copies between looks at whether its client left.
const COPY: usize = 4 << 20;

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
    stats_with(ctx, args, true)
}

fn stats_with(ctx: &Ctx, args: &Args, may_offload: bool) -> Result<()> {
    let (start, stop) = span_args(args)?;
    let mut key = ctx.open(args.raw(1), false);
    let summary = match bound(ctx, args, &mut key)? {
        Some(b) => {
            let size = b.spec().kind.size() as u64;
            if may_offload {
                if let Some(h) = handoff(ctx, args, b, |len| clip(start, stop, len).len() as u64 * size)? {
                    let span = clip(start, stop, h.len);
                    stats_offloaded(h, span);
                    return Ok(());
                }
            }
            b.read(
                || args.bytes(1),
                |v| {
                    let span = clip(start, stop, v.len());
                    v.summary(span.start, span.end)
                },
            )?
        }
        None => Summary::EMPTY,
    };
    reply_summary(ctx, &summary, ctx.resp3());
    Ok(())
}

/// Splits the span into runs of whole segments, four per worker thread;
/// each gives the parts of its segments, and the parts, in order, make the
/// summary the main thread would have made.
fn stats_offloaded(h: Handoff, span: Range<usize>) {
    let Handoff {
        view, reader, blocked, ..
    } = h;
    let size = reader.size;
    let segments = span.len().div_ceil(SEGMENT);
    // Four pieces a thread: a thread that is held up (the main thread, or
    // another program, wants its core) leaves its later pieces to the others.
    let per = segments.div_ceil((pool::threads() * 4).max(1)).max(1);
    let pieces = segments.div_ceil(per);
    let piece = move |i: usize, gone: &AtomicBool| {
        let from = span.start + i * per * SEGMENT;
        let to = (from + per * SEGMENT).min(span.end);
        view.read(from * size, to * size, |b| {
            let mut parts = Vec::with_capacity(per);
            for seg in b.chunks(SEGMENT * size) {
                if gone.load(Ordering::Relaxed) {
                    break;
                }
                parts.push((reader.part)(seg));
            }
            parts
        })
    };
    let join = move |got: Option<Vec<Vec<Acc>>>, blocked: Blocked| {
        let Some(got) = got else {
            return blocked.reply(rerun(|ctx, args| stats_with(ctx, args, false)));
        };
        let parts: Vec<Acc> = got.into_iter().flatten().collect();
        let summary = (reader.finish)(&parts);
        blocked.answer(move |ctx, resp3| reply_summary(ctx, &summary, resp3));
    };
    // An empty span has no pieces: the join makes the summary of nothing.
    split(blocked, pieces, piece, join);
}

/// Counts as integers; the sum, mean and std as doubles, in RESP2 in the
/// same shortest text every server gives (as values are); min and max in
/// the key's kind, as `MMAP.GET` replies.
fn reply_summary(ctx: &Ctx, s: &Summary, resp3: bool) {
    let mut buf = ValueBuf::default();
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
