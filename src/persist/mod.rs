//! Persistence: the data type's callbacks (RDB, AOF rewrite, digest), the
//! RDB encodings and their versions, the server events that flush and
//! release files, and when files reach the disk.

use std::ffi::CStr;
use std::path::Path;

use crate::core::kind::{Kind, Spec};

pub mod events;
pub mod fsync;
mod rdb;
pub mod types;

/// A command the module writes into a log (the replication stream and the
/// AOF, or a rewritten AOF) in place of, or before, the one it ran.
#[derive(Debug, PartialEq)]
pub enum Logged<'a> {
    /// `MMAP key path TYPE kind`, with `READONLY` for a read-only key and
    /// `CREATE` when the content follows.
    Mmap { rel: &'a Path, spec: Spec, create: bool },
    /// `MMAP.RESIZE key len`.
    Resize(usize),
    /// `MMAP.ADD key values...`, the values of `kind` held in `bytes`.
    Add { kind: Kind, bytes: &'a [u8] },
}

impl Logged<'_> {
    /// The canonical name: a log must replay on any server, and short
    /// names may belong to the server itself (Redis 8's `VADD`).
    pub fn name(&self) -> &'static CStr {
        match self {
            Logged::Mmap { .. } => crate::commands::MMAP.name,
            Logged::Resize(_) => crate::commands::RESIZE.name,
            Logged::Add { .. } => crate::commands::ADD.name,
        }
    }
}
