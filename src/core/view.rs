//! A read-only mapping of a bound file for the worker threads, apart from
//! the mapping the main thread reads and writes through. Knows nothing of
//! Redis.
//!
//! A worker never touches the main thread's mapping, which a write may
//! remap (and so unmap) or cut at any moment. It reads its own view of the
//! same file instead: the pages are the same page-cache pages, so every
//! value is the one the file holds at that moment, but the view lives as
//! long as any worker holds it, whatever the key does meanwhile. A fault in
//! a view (the file was cut under it, the disk failed) puts a zero page in
//! the view only (see `sigbus`); the view is then dead, and the command
//! that read it runs again on the main thread, which sees the file as it
//! is. A binding keeps its view between commands, so that the pages it has
//! mapped stay mapped.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::sigbus::Guard;

pub struct View {
    ptr: *const u8,
    /// Bytes mapped: the file's size when the view was made, whole pages.
    len: usize,
    /// Keeps the file open while the view is read, and tells its size.
    file: Arc<File>,
    guard: Option<Guard>,
    /// A read through the view faulted: it is not read again.
    dead: AtomicBool,
}

// SAFETY: the mapping is read-only and owned by the view; reads through it
// from any thread are reads of the file's pages.
unsafe impl Send for View {}
unsafe impl Sync for View {}

impl View {
    /// Maps the first `bytes` bytes of `file` read-only. Reads no content.
    pub fn map(file: &Arc<File>, bytes: usize) -> io::Result<View> {
        let len = bytes.max(1);
        // SAFETY: a fresh shared read-only mapping of an open file, placed
        // by the kernel; nothing else refers to its address range.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = ptr.cast::<u8>().cast_const();
        Ok(View {
            ptr,
            len,
            file: file.clone(),
            guard: Guard::new(ptr, len),
            dead: AtomicBool::new(false),
        })
    }

    /// Bytes the view maps.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view may be read: it is guarded and has not faulted.
    pub fn usable(&self) -> bool {
        self.guard.is_some() && !self.dead.load(Ordering::Acquire)
    }

    /// Marks the view dead: the key's owner is about to cut the file.
    pub fn retire(&self) {
        self.dead.store(true, Ordering::SeqCst);
    }

    /// Runs `f` over bytes `from..to` of the view (within `len`), and says
    /// whether every byte it read was the file's: `None` if a fault was
    /// taken meanwhile (anywhere in the view, which leaves it dead), if the
    /// owner retired the view (it may have cut the file), or if the file is
    /// now shorter than `to` (another program cut it: bytes past the end
    /// in the last page read as zeros, without a fault).
    pub fn read<R>(&self, from: usize, to: usize, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        assert!(from <= to && to <= self.len, "a read inside the view");
        // Retired before the read began: the file may be cut already.
        if self.dead.load(Ordering::SeqCst) {
            return None;
        }
        // SAFETY: the bytes lie inside the live mapping. Other processes
        // and the main thread may change them meanwhile; `f` treats them as
        // values that may change under it (it reads each once, or copies).
        // A fault in them lands in the SIGBUS handler, which maps a zero
        // page there and records it in the view's guard, checked below.
        let r = f(unsafe { std::slice::from_raw_parts(self.ptr.add(from), to - from) });
        if super::sigbus::pending() && self.guard.as_ref().and_then(Guard::take).is_some() {
            self.dead.store(true, Ordering::SeqCst);
            return None;
        }
        if self.dead.load(Ordering::SeqCst) {
            return None;
        }
        match self.file.metadata() {
            Ok(m) if m.len() >= to as u64 => Some(r),
            _ => None,
        }
    }

    /// Brings bytes `from..to` into memory: with `wait`, on the calling
    /// thread (`MADV_POPULATE_READ`, or where the kernel lacks it, before
    /// Linux 5.14, the reads are only started); without, the kernel only
    /// starts the reads (`MADV_WILLNEED`). Pages past the file's end are
    /// left alone.
    pub fn populate(&self, from: usize, to: usize, wait: bool) -> io::Result<()> {
        let page = super::sigbus::page_start(from);
        let to = to.min(self.len);
        if page >= to {
            return Ok(());
        }
        let advise = |advice| {
            // SAFETY: advice over pages of this live mapping; nothing is written.
            match unsafe { libc::madvise(self.ptr.add(page).cast_mut().cast(), to - page, advice) } {
                0 => Ok(()),
                _ => Err(io::Error::last_os_error()),
            }
        };
        if !wait {
            return advise(libc::MADV_WILLNEED);
        }
        match advise(MADV_POPULATE_READ) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => advise(libc::MADV_WILLNEED),
            // A page past the end (the file was cut): nothing more to read.
            Err(e) if e.raw_os_error() == Some(libc::EFAULT) => Ok(()),
            other => other,
        }
    }
}

/// `MADV_POPULATE_READ` (Linux 5.14), which the libc crate may lack.
const MADV_POPULATE_READ: libc::c_int = 22;

impl Drop for View {
    fn drop(&mut self) {
        // Unregistered first, so that no fault is looked up in an unmapped range.
        self.guard.take();
        // SAFETY: the view's own mapping, unmapped once; no reader holds it
        // (readers hold the view).
        unsafe { libc::munmap(self.ptr.cast_mut().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(bytes: &[u8]) -> (tempfile::NamedTempFile, Arc<File>) {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        t.write_all(bytes).unwrap();
        t.flush().unwrap();
        let f = Arc::new(File::open(t.path()).unwrap());
        (t, f)
    }

    #[test]
    fn a_view_reads_the_file_and_sees_later_writes() {
        let (t, f) = file_of(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let v = View::map(&f, 8).unwrap();
        assert_eq!(v.read(2, 5, |b| b.to_vec()), Some(vec![3, 4, 5]));
        std::fs::write(t.path(), [9, 9, 9, 9, 9, 9, 9, 9]).unwrap();
        assert_eq!(v.read(0, 2, |b| b.to_vec()), Some(vec![9, 9]));
        assert!(v.usable());
    }

    #[test]
    fn a_view_outlives_its_file_s_other_handles() {
        let (t, f) = file_of(&[7; 16]);
        let v = View::map(&f, 16).unwrap();
        drop(f);
        drop(t); // the name is gone, the file with it once the view goes
        assert_eq!(
            v.read(0, 16, |b| b.iter().map(|&x| x as u32).sum::<u32>()),
            Some(7 * 16)
        );
    }

    #[test]
    fn populate_reads_the_pages_in() {
        let (_t, f) = file_of(&vec![1u8; 3 * 4096 + 100]);
        let v = View::map(&f, 3 * 4096 + 100).unwrap();
        v.populate(0, v.len(), true).unwrap();
        // SAFETY: the view's live mapping.
        let n = unsafe { crate::core::vector::resident(v.ptr, v.len()) }.unwrap();
        assert_eq!(n, 3 * 4096 + 100);
    }
}
