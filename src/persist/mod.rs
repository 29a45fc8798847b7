//! Persistence: the data type's callbacks (RDB, AOF rewrite, digest), the
//! RDB encodings and their versions, the server events that flush and
//! release files, and when files reach the disk.

use crate::binding::Logged;
use crate::core::column::decode;
use crate::core::num::ValueBuf;
use crate::ffi::ctx::{Ctx, Line};
use crate::ffi::io::Aof;
use crate::ffi::RStr;

pub mod events;
mod rdb;
pub mod types;

/// Sends `cmd` for `key` to the AOF and the replicas, in place of, or
/// before, the running command.
pub fn replicate(ctx: &Ctx, key: *mut RStr, cmd: Logged) {
    words(&cmd, |line| ctx.replicate(cmd.name(), key, line));
}

/// Writes `cmd` into an AOF being rewritten.
pub fn emit(aof: &Aof, cmd: Logged) {
    words(&cmd, |line| aof.emit(cmd.name(), line));
}

/// `cmd`'s words after the key. The path is sent relative to `mmap.dir`,
/// so that it names the same file on any server; values in the shortest
/// text that parses back to the same bits.
fn words(cmd: &Logged, f: impl FnOnce(Line)) {
    match *cmd {
        Logged::Mmap { rel, spec, create } => {
            let mut w: Vec<&[u8]> = vec![
                rel.as_os_str().as_encoded_bytes(),
                b"TYPE",
                spec.kind.cname().to_bytes(),
            ];
            if spec.readonly {
                w.push(b"READONLY");
            }
            if create {
                w.push(b"CREATE");
            }
            f(Line::Texts(&w));
        }
        Logged::Resize(len) => f(Line::Int(len as i64)),
        Logged::Add { kind, bytes } => {
            // Every value's text in one buffer, cut into words after.
            let (mut buf, mut all, mut ends) = (ValueBuf::default(), Vec::new(), Vec::new());
            for b in bytes.chunks_exact(kind.size()) {
                all.extend_from_slice(buf.value(decode(kind, b)));
                ends.push(all.len());
            }
            let w: Vec<&[u8]> = std::iter::once(0)
                .chain(ends.iter().copied())
                .zip(&ends)
                .map(|(from, &to)| &all[from..to])
                .collect();
            f(Line::Texts(&w));
        }
    }
}
