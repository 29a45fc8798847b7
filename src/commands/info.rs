//! `MMAP.INFO`: what a key is bound to, and how.

use super::{bound, Command};
use crate::core::error::{shown, Error, Result};
use crate::ffi::ctx::{Args, Ctx};

pub static INFO: Command = Command {
    name: c"mmap.info",
    alias: None,
    arity: 2,
    flags: c"readonly",
    write: false,
    keyed: true,
    summary: "Describes a bound key: path, kind, element-size, length, bytes, read-only, state (bound or broken), cause (why broken), reserved-bytes (address space), lock (exclusive, shared or none) and resident-bytes (bytes of the file in memory). A map, or a flat field/value array under RESP2.",
    complexity: "O(1), and O(N) in the file's pages for resident-bytes (a byte per page, one system call)",
    args: &[],
    run: info,
};

const FIELDS: usize = 11;

fn info(ctx: &Ctx, args: &Args) -> Result<()> {
    let mut key = ctx.open(args.raw(1), false);
    let b = bound(ctx, args, &mut key)?.ok_or_else(|| Error::NoKey(shown(args.bytes(1))))?;
    b.settle_tail()?;
    let spec = b.spec();
    let vec = b.opened();
    let int_or_nil = |n: Option<usize>| match n {
        Some(n) => ctx.reply_int(n as i64),
        None => ctx.reply_null(),
    };
    ctx.reply_map(FIELDS);
    ctx.reply_str("path");
    ctx.reply_str(&b.path().display().to_string());
    ctx.reply_str("kind");
    ctx.reply_str(spec.kind.name());
    ctx.reply_str("element-size");
    ctx.reply_int(spec.kind.size() as i64);
    ctx.reply_str("length");
    int_or_nil(vec.map(|v| v.len()));
    ctx.reply_str("bytes");
    int_or_nil(vec.map(|v| v.file_bytes()));
    ctx.reply_str("read-only");
    ctx.reply_bool(spec.readonly);
    ctx.reply_str("state");
    ctx.reply_str(if vec.is_some() { "bound" } else { "broken" });
    ctx.reply_str("cause");
    ctx.reply_opt_str(b.broken_cause());
    ctx.reply_str("reserved-bytes");
    int_or_nil(vec.map(|v| v.reserved_bytes()));
    ctx.reply_str("lock");
    ctx.reply_str(match (vec.is_some(), spec.readonly) {
        (false, _) => "none",
        (true, false) => "exclusive",
        (true, true) => "shared",
    });
    ctx.reply_str("resident-bytes");
    int_or_nil(b.resident().and_then(|r| r.ok()));
    Ok(())
}
