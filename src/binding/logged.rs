//! The commands a binding is written into a log as: what the AOF and the
//! replicas get in place of, or before, a command that ran, and a key's
//! rebuild in a rewritten AOF.

use std::ffi::CStr;
use std::path::Path;

use crate::core::kind::{Kind, Spec};

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

/// The canonical names of the commands a log holds: a log must replay on
/// any server, and short names may belong to the server itself (Redis 8's
/// `VADD`). The command table's tests check they are its names.
pub const MMAP: &CStr = c"mmap";
pub const RESIZE: &CStr = c"mmap.resize";
pub const ADD: &CStr = c"mmap.add";

impl Logged<'_> {
    pub fn name(&self) -> &'static CStr {
        match self {
            Logged::Mmap { .. } => MMAP,
            Logged::Resize(_) => RESIZE,
            Logged::Add { .. } => ADD,
        }
    }
}
