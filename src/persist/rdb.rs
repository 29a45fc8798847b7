//! The binding's RDB encoding, which DUMP payloads share. Every version
//! ever written stays loadable: `load` reads each by its own step.
//!
//! Version 0: the element kind (always 0, f64) as an unsigned, then the
//! path relative to `mmap.dir` as a string. The data stays in the file.
//!
//! Version 1: the kind, the path, then a form (unsigned):
//! - 0, path only: then the length in values;
//! - 1, content: then the length, then the file's bytes as pieces of at most
//!   `PIECE` bytes, each an unsigned byte count and a string, then an
//!   unsigned 0 (the end) or `UNREADABLE` (the file could not be read; what
//!   came before is incomplete);
//! - 2, broken: the key's file could not be opened; nothing follows.
//!
//! Version 2: as version 1, with the kind any of `Kind::code`, and flags
//! (unsigned) between the path and the form: bit 0, read-only; bit 1, a
//! `DUMP` or `MIGRATE` payload rather than a snapshot, whose content is the
//! truth wherever it is loaded (a `RESTORE` replayed from an AOF too). A
//! module that predates bit 1 refuses such a payload for its unknown flag.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::binding::Binding;
use crate::core::kind::{Kind, Spec};
use crate::ffi::io::Rdb;

/// The version `save` writes.
pub const ENCODING: i32 = 2;

/// Flag bits, from version 2.
const READONLY: u64 = 1;
const PAYLOAD: u64 = 2;

const PATH_ONLY: u64 = 0;
const CONTENT: u64 = 1;
const BROKEN: u64 = 2;

/// Bytes per content piece: what a save or a load holds in memory at once.
pub const PIECE: usize = 1 << 20;
const UNREADABLE: u64 = u64::MAX;

/// What a saved binding says about its file.
#[derive(Debug, PartialEq)]
pub enum Form {
    /// Version 0, or a broken key: the path alone.
    Path,
    /// The length in values when it was saved.
    Length(u64),
    /// The length, and the content, which follows in the stream.
    Content(u64),
}

/// A saved binding, read up to its content.
pub struct Saved {
    /// The element kind's code; versions 0 and 1 wrote only 0, float64.
    pub kind: u64,
    pub flags: u64,
    pub path: Vec<u8>,
    pub form: Form,
}

/// Saves the binding; with `content`, the file's bytes too; `payload`
/// marks a `DUMP` or `MIGRATE` payload. Returns the error that stopped the
/// content being read, after marking it so in the stream.
pub fn save(io: &Rdb, b: &Binding, content: bool, payload: bool) -> io::Result<()> {
    let spec = b.spec();
    io.save_unsigned(spec.kind.code());
    io.save_bytes(b.path().as_os_str().as_encoded_bytes());
    let flags = if spec.readonly { READONLY } else { 0 } | if payload { PAYLOAD } else { 0 };
    io.save_unsigned(flags);
    let Some(vec) = b.opened() else {
        io.save_unsigned(BROKEN);
        return Ok(());
    };
    io.save_unsigned(if content { CONTENT } else { PATH_ONLY });
    io.save_unsigned(vec.len() as u64);
    if !content {
        return Ok(());
    }
    let read = b.content(PIECE, |piece| {
        io.save_unsigned(piece.len() as u64);
        io.save_bytes(piece);
    });
    io.save_unsigned(if read.is_ok() { 0 } else { UNREADABLE });
    read
}

/// Reads a binding saved by version `encver` up to its content; `Err` says
/// why it cannot be.
pub fn load(io: &Rdb, encver: i32) -> Result<Saved, String> {
    let kind = io.load_unsigned().ok_or("the stream ended in the element kind")?;
    let path = io.load_bytes().ok_or("the stream ended in the path")?;
    let mut flags = 0;
    let form = match encver {
        0 => Form::Path,
        1 | 2 => {
            if encver == 2 {
                flags = io.load_unsigned().ok_or("the stream ended in the flags")?;
            }
            let form = io.load_unsigned().ok_or("the stream ended in the form")?;
            let len = || io.load_unsigned().ok_or("the stream ended in the length");
            match form {
                PATH_ONLY => Form::Length(len()?),
                CONTENT => Form::Content(len()?),
                BROKEN => Form::Path,
                f => return Err(format!("unknown form {f}")),
            }
        }
        v => {
            return Err(format!(
                "encoding version {v} is newer than this module reads (up to {ENCODING})"
            ))
        }
    };
    Ok(Saved {
        kind,
        flags,
        path,
        form,
    })
}

/// Why content could not be taken from a stream.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The stream itself is broken: the load cannot go on.
    #[error("{0}")]
    Stream(String),
    #[error("the saving server could not read its file")]
    Unreadable,
    #[error("the content is malformed: {0}")]
    Malformed(String),
    #[error("writing the content failed: {0}")]
    Write(io::Error),
}

/// Reads the content that follows a `Form::Content` header, all of it,
/// writing it into `file` if given; returns the bytes. After a write error
/// the rest is still read, so that the stream stays in step.
pub fn content(io: &Rdb, mut file: Option<&File>, elem: usize) -> Result<u64, ContentError> {
    let mut at = 0u64;
    let mut failed = None;
    loop {
        let n = io
            .load_unsigned()
            .ok_or_else(|| ContentError::Stream("the stream ended in the content".into()))?;
        match n {
            0 => break,
            UNREADABLE => return Err(ContentError::Unreadable),
            _ => {}
        }
        let piece = io
            .load_bytes()
            .ok_or_else(|| ContentError::Stream("the stream ended in the content".into()))?;
        if piece.len() as u64 != n || piece.len() % elem != 0 {
            failed.get_or_insert(ContentError::Malformed(format!(
                "a piece of {} bytes where {n} were announced, in {elem}-byte values",
                piece.len()
            )));
        }
        if let (Some(f), None) = (file, &failed) {
            if let Err(e) = f.write_all_at(&piece, at) {
                failed = Some(ContentError::Write(e));
                file = None;
            }
        }
        at += piece.len() as u64;
    }
    failed.map_or(Ok(at), Err)
}

impl Saved {
    /// The saved kind and mode; `Err` names what this module does not know.
    pub fn spec(&self) -> Result<Spec, String> {
        let kind = Kind::from_code(self.kind).ok_or_else(|| format!("unknown element kind {}", self.kind))?;
        if self.flags & !(READONLY | PAYLOAD) != 0 {
            return Err(format!("unknown flags {:#x}", self.flags));
        }
        Ok(Spec {
            kind,
            readonly: self.flags & READONLY != 0,
        })
    }

    /// Whether `DUMP` or `MIGRATE` wrote it (not a snapshot).
    pub fn payload(&self) -> bool {
        self.flags & PAYLOAD != 0
    }
}
