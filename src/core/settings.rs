//! The values of the module's options that code below the module's wiring
//! reads: the wiring registers the options and sets these; nothing here
//! knows of the server.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use super::sandbox::Sandbox;

/// `mmap.short-names`: whether the short aliases (`VGET`, ...) are registered.
pub static SHORT_NAMES: AtomicBool = AtomicBool::new(true);

/// `mmap.rdb-content`: whether snapshots carry each file's content.
pub static RDB_CONTENT: AtomicBool = AtomicBool::new(false);

/// `mmap.offload-bytes`: the bytes of file a read must touch to go to a
/// worker.
pub static OFFLOAD_BYTES: AtomicU64 = AtomicU64::new(DEFAULT_OFFLOAD_BYTES);

/// Past about half of this, handing a read over costs the main thread less
/// than the read itself would (measured in docs/threads.md); the default
/// leaves room on the side of reads staying inline.
pub const DEFAULT_OFFLOAD_BYTES: u64 = 1 << 20;

static SANDBOX: OnceLock<Sandbox> = OnceLock::new();

/// The directory every mapped file lies beneath.
pub fn sandbox() -> &'static Sandbox {
    SANDBOX.get().expect("mmap.dir is set at load")
}

/// Sets `mmap.dir`'s sandbox, once.
pub fn set_sandbox(s: Sandbox) {
    let _ = SANDBOX.set(s);
}

/// Whether every RDB carries the files' content (`mmap.rdb-content`).
pub fn rdb_content() -> bool {
    RDB_CONTENT.load(Ordering::Relaxed)
}

/// Whether the short command names are wanted (`mmap.short-names`).
pub fn short_names() -> bool {
    SHORT_NAMES.load(Ordering::Relaxed)
}

/// Bytes a read must touch to be offloaded (`mmap.offload-bytes`).
pub fn offload_bytes() -> u64 {
    OFFLOAD_BYTES.load(Ordering::Relaxed)
}
