//! How a write reaches the AOF and replicas, always under canonical names:
//! a log written here replays on any server, Redis 8 (which owns `VADD`)
//! included.

use std::ffi::CStr;

use redis_module::raw::RedisModuleString as RStr;

use crate::binding::Logged;
use crate::ffi::ctx::{Args, Ctx, Line};
use crate::persist;

/// Each form sets what it touches absolutely, as Redis turns INCRBYFLOAT
/// into SET: replayed over a file that already holds its effects it changes
/// nothing, and replayed over the file as it was when the log began it
/// reproduces it.
pub enum Propagate<'a> {
    /// The command as sent: SET of in-range pairs, CLEAR, a RESIZE that shrinks.
    AsSent,
    /// A command of the module's own instead: `mmap.resize key len` for
    /// POP, `mmap` with the path relative to `mmap.dir`.
    Instead(Logged<'a>),
    /// `mmap.resize key len`, then the command as sent: ADD and a growing
    /// RESIZE act on the length they find, so the log first fixes it.
    FromLength(usize),
    /// `mmap.set key` with only the pairs that were in range.
    Pairs(&'a [*mut RStr]),
}

/// After every successful write: replicate (which also counts a change for
/// the `save` rules), then notify.
/// Inlined, so that the common form, `AsSent`, costs two calls.
#[inline]
pub fn written(ctx: &Ctx, args: &Args, event: &CStr, how: Propagate) {
    match how {
        Propagate::AsSent => ctx.replicate_as_sent(args),
        other => replicate(ctx, args, other),
    }
    ctx.notify(event, args.raw(1));
}

#[inline(never)]
fn replicate(ctx: &Ctx, args: &Args, how: Propagate) {
    let key = args.raw(1);
    match how {
        Propagate::AsSent => ctx.replicate_as_sent(args),
        Propagate::Instead(cmd) => persist::replicate(ctx, key, cmd),
        Propagate::FromLength(len) => {
            persist::replicate(ctx, key, Logged::Resize(len));
            ctx.replicate_as_sent(args);
        }
        Propagate::Pairs(pairs) => ctx.replicate(super::write::SET.name, key, Line::Strings(pairs)),
    }
}
