//! Reads long enough to go to the worker threads (see `work`): how a
//! command hands one over, and what comes back.
//!
//! A read is offloaded when the bytes of file it touches reach
//! `mmap.offload-bytes`, there are worker threads (`mmap.threads`), and the
//! client can block (not inside MULTI, a script or a function). The workers
//! read the key's view of its file (see `core::view`), never the main
//! thread's mapping. A read whose file changed under it (a fault, a cut by
//! this key's own POP, CLEAR or RESIZE, or another program's) gives nothing,
//! and the command runs again on the main thread, as it would have inline.

use std::sync::Arc;

use super::Handler;
use crate::binding::Binding;
use crate::core::column::{reader, Reader};
use crate::core::counters;
use crate::core::error::Result;
use crate::core::settings;
use crate::core::view::View;
use crate::ffi::blocked::{Blocked, Reply};
use crate::ffi::ctx::{Args, Ctx};
use crate::work::pool;

/// What a worker needs for a read: the file's view, the key's length when
/// the read was handed over, the kind's reader, and the blocked client.
pub struct Handoff {
    pub view: Arc<View>,
    pub len: usize,
    pub reader: Reader,
    pub blocked: Blocked,
}

/// The bytes a read of one value at a random index touches: its page.
pub const PAGE: u64 = 4096;

/// Hands a read over if `touched(len)`, the bytes of file it touches for
/// the key's length, reaches `mmap.offload-bytes`, there are worker
/// threads, and the client can block; `None` runs it inline.
pub fn handoff(ctx: &Ctx, args: &Args, b: &mut Binding, touched: impl FnOnce(usize) -> u64) -> Result<Option<Handoff>> {
    let Some(len) = b.opened().map(|v| v.len()) else {
        return Ok(None);
    };
    // The threshold first: a short read (the common one) takes no lock.
    if touched(len) < settings::offload_bytes() || pool::threads() == 0 {
        return Ok(None);
    }
    let (view, len) = b.view(&|| args.bytes(1))?;
    let Some(blocked) = ctx.block(args.cname()) else {
        return Ok(None);
    };
    counters::count_offloaded();
    Ok(Some(Handoff {
        view,
        len,
        reader: reader(b.spec().kind),
        blocked,
    }))
}

/// The reply of a read that was not sound: the command again, inline.
pub fn rerun(inline: Handler) -> Reply {
    counters::count_rerun();
    Box::new(inline)
}
