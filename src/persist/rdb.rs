//! The binding's RDB encoding, which DUMP payloads share. Every version
//! ever written stays loadable: `load` reads each by its own step.
//!
//! Version 0: the element kind (always 0, f64) as an unsigned, then the
//! path relative to `mmap.dir` as a string. The data stays in the file.

use crate::binding::Binding;
use crate::ffi::io::Rdb;

/// The version `save` writes.
pub const ENCODING: i32 = 0;

/// Element kinds as saved: only f64 exists so far.
const KIND_F64: u64 = 0;

/// A saved binding, read but not yet opened.
pub struct Saved {
    pub kind: u64,
    pub path: Vec<u8>,
}

pub fn save(io: &Rdb, b: &Binding) {
    io.save_unsigned(KIND_F64);
    io.save_bytes(b.path().as_os_str().as_encoded_bytes());
}

/// Reads a binding saved by version `encver`; `Err` says why it cannot be.
pub fn load(io: &Rdb, encver: i32) -> Result<Saved, String> {
    match encver {
        0 => {
            let kind = io.load_unsigned().ok_or("the stream ended in the element kind")?;
            let path = io.load_bytes().ok_or("the stream ended in the path")?;
            Ok(Saved { kind, path })
        }
        v => Err(format!(
            "encoding version {v} is newer than this module reads (up to {ENCODING})"
        )),
    }
}

impl Saved {
    /// Whether this module knows the saved element kind.
    pub fn kind_known(&self) -> bool {
        self.kind == KIND_F64
    }
}
