//! A file of fixed-size little-endian elements, read and written in place
//! through a shared mapping. Knows nothing of Redis.
//!
//! The mapping reserves more address space than the file holds, so appends
//! are a `pwrite` at the end of the file (the new pages become visible through
//! the existing mapping) and a remap happens only when the reservation is used
//! up, which doubling makes rare. Nothing ever touches a page past the end of
//! the file, so the unbacked part of the reservation never faults.
//!
//! An append may also be held back in a tail, written out with the ones
//! after it by one `pwrite` when the owner calls `settle`: a `pwrite` costs
//! more than the rest of an append. Disk space for the tail is set aside
//! past the end of the file first (`fallocate`, keeping the size), so that
//! writing it out cannot fail for want of space. Only appends and the
//! length see the tail; everything else needs the vector settled.

use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};

use super::sigbus::Guard;

/// Smallest reservation: a small file can grow to half a million values
/// before its first remap, while a million bound keys still fit easily in
/// the address space.
const MIN_RESERVE: usize = 4 << 20;

/// Disk space set aside past the end of the file at a time, for tails.
const ROOM: usize = 64 << 10;

/// The most bytes a tail holds: a longer append is written at once.
pub const TAIL_MAX: usize = 1 << 20;

/// A fixed-size value stored little-endian in the file.
pub trait Element: Copy + Send + Sync + 'static {
    const SIZE: usize;

    /// Reads one element.
    ///
    /// # Safety
    /// `p` must be valid for `SIZE` bytes and aligned to `SIZE`.
    unsafe fn load(p: *const u8) -> Self;

    /// Writes one element.
    ///
    /// # Safety
    /// `p` must be valid for `SIZE` writable bytes and aligned to `SIZE`.
    unsafe fn store(p: *mut u8, v: Self);

    /// The element's bytes as the file holds them.
    fn encode(self, out: &mut [u8]);

    /// The element held in `SIZE` bytes of the file.
    fn decode(bytes: &[u8]) -> Self;
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("is not a regular file (it is {0})")]
    NotRegular(&'static str),
    #[error("has {0} bytes, which is not a multiple of {1}")]
    BadSize(u64, usize),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The most bytes one vector may hold: half the 128 TiB of user address
/// space x86-64 and arm64 give a process, so a mapping of any allowed length
/// can exist. Larger lengths all get the one error below, whichever system
/// call would have refused them first.
pub const MAX_BYTES: usize = 1 << 46;

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        "more than 64 TiB, the most one mapping can hold",
    )
}

/// The process's file size limit (`RLIMIT_FSIZE`) in bytes.
fn file_size_limit() -> usize {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut r) } != 0 || r.rlim_cur == libc::RLIM_INFINITY {
        return usize::MAX;
    }
    usize::try_from(r.rlim_cur).unwrap_or(usize::MAX)
}

/// The error of a change to a file that another program cut below the
/// length the vector knows; `is_shrank` tells it apart.
pub fn shrank(size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the file shrank to {size} bytes under the key"),
    )
}

/// Whether `e` is `shrank`'s error.
pub fn is_shrank(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::UnexpectedEof
}

/// Extends `file` from `old` to `new` bytes with disk space allocated, or,
/// where the file system cannot allocate ahead, as a sparse hole.
fn set_aside(file: &File, old: u64, new: u64) -> io::Result<()> {
    // SAFETY: a live descriptor, owned by `file`; no memory is passed.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, old as libc::off_t, (new - old) as libc::off_t) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => file.set_len(new),
        _ => Err(e),
    }
}

/// Names a file type, from its `st_mode`, for error messages.
pub fn kind_name(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symlink",
        libc::S_IFIFO => "a fifo",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        _ => "a regular file",
    }
}

/// Device and inode of an open file.
pub fn identity(file: &File) -> io::Result<(u64, u64)> {
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

/// Fills `buf` from `offset` with `pread`, never through a mapping: a
/// reader in a fork child (an AOF rewrite) must not fault when the parent
/// shrinks the file meanwhile. Returns how many bytes were read, fewer than
/// asked only at the end of the file.
pub fn read_bytes_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Bytes of a mapping that other processes may change at any time: never
/// read in place, only handed whole to a copy (a reply buffer). Borrows the
/// vector, so the mapping outlives it.
pub struct Span<'a> {
    ptr: *const u8,
    len: usize,
    _vec: PhantomData<&'a ()>,
}

impl Span<'_> {
    /// Appends the span's bytes to `out`: a copy taken before anything is
    /// sent, so that a fault meanwhile (see `sigbus`) can still fail the
    /// command.
    pub fn copy_into(&self, out: &mut Vec<u8>) {
        // SAFETY: the span borrows the vector, so its `len` bytes from `ptr`
        // lie inside the file and stay mapped for the copy.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        out.reserve_exact(bytes.len());
        out.extend_from_slice(bytes);
    }
}

/// The bytes of the pages of `from..to` of a mapping at `ptr` that are in
/// memory, from `mincore`. For a file the caller may not write, the kernel
/// counts only pages this process has mapped.
///
/// # Safety
/// `ptr` must be the start of a live mapping of at least `to` bytes.
pub unsafe fn resident(ptr: *const u8, to: usize) -> io::Result<usize> {
    let size = page_size();
    let pages = to.div_ceil(size);
    if pages == 0 {
        return Ok(0);
    }
    let mut vec = vec![0u8; pages];
    // SAFETY: the caller's mapping of at least `to` bytes; `vec` has a byte per page.
    if unsafe { libc::mincore(ptr.cast_mut().cast(), to, vec.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let n = vec.iter().filter(|&&b| b & 1 != 0).count();
    // The last page counts only the bytes of the file in it.
    let last = vec[pages - 1] & 1 != 0;
    Ok(n * size - if last { pages * size - to } else { 0 })
}

fn page_size() -> usize {
    // SAFETY: no memory is passed.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
}

// The bulk copies move file bytes straight into values.
const _: () = assert!(cfg!(target_endian = "little"), "the file format is little-endian");

pub struct MappedVec<T: Element> {
    /// Shared with whoever flushes it to disk off the main thread.
    file: Arc<File>,
    map: MmapRaw,
    /// The mapping's registration with the SIGBUS handler (see `sigbus`).
    guard: Option<Guard>,
    /// Elements in the file.
    len: usize,
    /// False when mapped `PROT_READ`: every change is refused.
    writable: bool,
    /// Appended elements not yet in the file, as the file will hold them.
    tail: Vec<u8>,
    /// Bytes past the end of the file set aside on disk for the tail.
    room: usize,
    _elem: PhantomData<T>,
}

// The mapping is owned: no other value in this process aliases it.
unsafe impl<T: Element> Send for MappedVec<T> {}
unsafe impl<T: Element> Sync for MappedVec<T> {}

fn reserve_for(bytes: usize) -> usize {
    bytes
        .checked_mul(2)
        .map(usize::next_power_of_two)
        .unwrap_or(usize::MAX)
        .clamp(MIN_RESERVE, MAX_BYTES.max(bytes))
}

fn map(file: &File, bytes: usize, writable: bool) -> io::Result<MmapRaw> {
    let mut options = MmapOptions::new();
    options.len(reserve_for(bytes));
    let map = if writable {
        options.map_raw(file)?
    } else {
        options.map_raw_read_only(file)?
    };
    // Reads come one index at a time, anywhere in the file: without this the
    // kernel reads ahead around every fault, and a few thousand random reads
    // of a cold 8 GB file pull gigabytes into memory. Only advice: ignore
    // a refusal.
    let _ = map.advise(memmap2::Advice::Random);
    Ok(map)
}

impl<T: Element> MappedVec<T> {
    /// Maps an open file, shared and writable, or `PROT_READ` when not
    /// `writable`. Reads no content, so it costs the same for any size.
    pub fn open(file: File, writable: bool) -> Result<Self, OpenError> {
        let meta = file.metadata()?;
        if !meta.file_type().is_file() {
            return Err(OpenError::NotRegular(kind_name(meta.mode())));
        }
        let size = meta.len();
        if size % T::SIZE as u64 != 0 {
            return Err(OpenError::BadSize(size, T::SIZE));
        }
        let bytes = usize::try_from(size).map_err(|_| too_large())?;
        let map = map(&file, bytes, writable)?;
        Ok(MappedVec {
            file: Arc::new(file),
            guard: Guard::new(map.as_ptr(), map.len()),
            map,
            len: bytes / T::SIZE,
            writable,
            tail: Vec::new(),
            room: 0,
            _elem: PhantomData,
        })
    }

    /// Elements in the file and the tail.
    pub fn len(&self) -> usize {
        self.len + self.tail.len() / T::SIZE
    }

    /// The tail: appended elements not yet in the file.
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// The most elements a vector can hold.
    pub const fn max_len() -> usize {
        MAX_BYTES / T::SIZE
    }

    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Address space reserved by the mapping.
    pub fn reserved_bytes(&self) -> usize {
        self.map.len()
    }

    /// Bytes of the file: the elements before the tail.
    pub fn file_bytes(&self) -> usize {
        self.len * T::SIZE
    }

    pub fn get(&self, index: usize) -> Option<T> {
        if index >= self.len {
            return None;
        }
        // SAFETY: index < len, so the element lies inside the file and the mapping.
        Some(unsafe { T::load(self.map.as_ptr().add(index * T::SIZE)) })
    }

    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Writes in place; returns false (and writes nothing) when out of
    /// range or mapped read-only.
    pub fn set(&mut self, index: usize, value: T) -> bool {
        if index >= self.len || !self.writable {
            return false;
        }
        // SAFETY: as in `get`; the mapping is writable.
        unsafe { T::store(self.map.as_mut_ptr().add(index * T::SIZE), value) };
        true
    }

    /// Appends at the end of the file, or with `hold` to the tail where
    /// there is room for it: all values or none.
    pub fn extend(&mut self, values: &[T], hold: bool) -> io::Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let bytes = values.len().checked_mul(T::SIZE).ok_or_else(too_large)?;
        if hold && self.make_room(bytes)? {
            let at = self.tail.len();
            self.tail.resize(at + bytes, 0);
            for (v, out) in values.iter().zip(self.tail[at..].chunks_exact_mut(T::SIZE)) {
                v.encode(out);
            }
            return Ok(());
        }
        self.settle()?;
        self.check_size()?;
        let len = self.len.checked_add(values.len()).ok_or_else(too_large)?;
        self.grow(len, |file, old| {
            // Small appends (the common case) are encoded on the stack.
            let mut stack = [0u8; 512];
            let mut heap = Vec::new();
            let bytes = values.len() * T::SIZE;
            let buf = if bytes <= stack.len() {
                &mut stack[..bytes]
            } else {
                heap.resize(bytes, 0);
                &mut heap[..]
            };
            for (v, out) in values.iter().zip(buf.chunks_exact_mut(T::SIZE)) {
                v.encode(out);
            }
            file.write_all_at(buf, old)
        })
    }

    /// Whether the tail can take `bytes` more: within `TAIL_MAX` and the
    /// file size limit, with disk space set aside for all of it. An error
    /// only when the vector is read-only or would grow too long.
    fn make_room(&mut self, bytes: usize) -> io::Result<bool> {
        self.check_writable()?;
        let want = self.tail.len() + bytes;
        let end = self.file_bytes().checked_add(want).filter(|&n| n <= MAX_BYTES);
        let end = end.ok_or_else(too_large)?;
        if want > TAIL_MAX {
            return Ok(false);
        }
        if want <= self.room {
            return Ok(true);
        }
        // A write past the process's file size limit fails (EFBIG) where
        // setting space aside does not: such an append is written at once,
        // to fail in front of its command.
        let limit = file_size_limit();
        if end > limit {
            return Ok(false);
        }
        let room = want.max(ROOM).min(limit - self.file_bytes());
        let from = self.file_bytes() as libc::off_t;
        // SAFETY: a live descriptor, owned by `self.file`; no memory is passed.
        let rc = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_KEEP_SIZE,
                from,
                room as libc::off_t,
            )
        };
        if rc != 0 {
            return Ok(false); // a full disk, or a file system without it: written at once
        }
        self.room = room;
        Ok(true)
    }

    /// Writes the tail to the file with one `pwrite`. On error the tail
    /// stays, to be written by a later call.
    pub fn settle(&mut self) -> io::Result<()> {
        if self.tail.is_empty() {
            return Ok(());
        }
        let mut tail = std::mem::take(&mut self.tail);
        let len = self.len + tail.len() / T::SIZE;
        let out = self.grow(len, |file, old| file.write_all_at(&tail, old));
        if out.is_ok() {
            tail.clear(); // its capacity serves the next tail
        }
        self.tail = tail;
        out
    }

    /// Shrinks the file to `len` elements; a larger `len` changes nothing.
    pub fn truncate(&mut self, len: usize) -> io::Result<()> {
        self.settle()?;
        if len >= self.len {
            return Ok(());
        }
        self.check_writable()?;
        self.check_size()?;
        self.file.set_len((len * T::SIZE) as u64)?;
        self.len = len;
        self.room = 0; // a cut frees the space set aside past the end
        Ok(())
    }

    /// Makes the file exactly `len` elements long: cut, or extended with
    /// zeros, with disk space set aside for them (so that no store into
    /// the new part can find the disk full), except on a file system that
    /// cannot set space aside, where the new part is a sparse hole. All or
    /// nothing: a disk without the space refuses the growth.
    pub fn resize(&mut self, len: usize) -> io::Result<()> {
        self.settle()?;
        if len <= self.len {
            return self.truncate(len);
        }
        self.check_size()?;
        self.grow(len, |file, old| set_aside(file, old, (len * T::SIZE) as u64))
    }

    /// Refuses to change a file that another program cut below the length
    /// this vector knows: an append would leave a hole of zeros where
    /// values were, and a cut to one less might lengthen it. Held appends
    /// skip it (a `stat` per pass would tax every append): acknowledged,
    /// they are written where they were acknowledged.
    fn check_size(&self) -> io::Result<()> {
        match self.file.metadata()?.len() {
            size if size >= self.file_bytes() as u64 => Ok(()),
            size => Err(shrank(size)),
        }
    }

    /// Makes the file `len` elements long through `write` (given the file
    /// and its old size in bytes): remaps first, so that a failed remap
    /// leaves the file untouched, and cuts the file back if `write` fails,
    /// since a short write (a full disk) may have grown it part-way.
    fn grow(&mut self, len: usize, write: impl FnOnce(&File, u64) -> io::Result<()>) -> io::Result<()> {
        self.check_writable()?;
        let new = len
            .checked_mul(T::SIZE)
            .filter(|&n| n <= MAX_BYTES)
            .ok_or_else(too_large)?;
        if new > self.map.len() {
            self.remap(new)?;
        }
        let old = self.file_bytes() as u64;
        if let Err(e) = write(&self.file, old) {
            let _ = self.file.set_len(old);
            return Err(e);
        }
        self.room = self.room.saturating_sub(new - old as usize);
        self.len = len;
        Ok(())
    }

    /// Maps the file afresh, with room for `bytes`: a fault's zero page
    /// goes with the old mapping.
    fn remap(&mut self, bytes: usize) -> io::Result<()> {
        self.map = map(&self.file, bytes, self.writable)?;
        match &self.guard {
            Some(g) => g.moved(self.map.as_ptr(), self.map.len()),
            None => self.guard = Guard::new(self.map.as_ptr(), self.map.len()),
        }
        Ok(())
    }

    /// The offset into the mapping of a fault taken in it and not yet
    /// handled (see `sigbus`).
    #[inline]
    pub fn fault(&self) -> Option<usize> {
        self.guard.as_ref().and_then(Guard::fault)
    }

    /// Follows the file as another program changed it, for a read-only
    /// mapping: takes its length as the file has it now (whole elements),
    /// and maps it afresh if it outgrew the mapping or a fault was taken.
    /// Returns the length.
    pub fn follow(&mut self) -> io::Result<usize> {
        let size = usize::try_from(self.file.metadata()?.len()).map_err(|_| too_large())?;
        let bytes = size / T::SIZE * T::SIZE;
        let faulted = self.guard.as_ref().and_then(Guard::take).is_some();
        if faulted || bytes > self.map.len() {
            self.remap(bytes)?;
        }
        self.len = bytes / T::SIZE;
        Ok(self.len)
    }

    /// Bytes of the file in memory.
    pub fn resident(&self) -> io::Result<usize> {
        // SAFETY: the live mapping holds at least the file's bytes.
        unsafe { resident(self.map.as_ptr(), self.file_bytes()) }
    }

    /// The bytes of elements `from..to`, for a reply to copy out whole.
    /// `to` is clipped to the length.
    pub fn span(&self, from: usize, to: usize) -> Span<'_> {
        let to = to.min(self.len);
        let from = from.min(to);
        Span {
            // SAFETY: from <= len, so the offset lies within the file and the mapping.
            ptr: unsafe { self.map.as_ptr().add(from * T::SIZE) },
            len: (to - from) * T::SIZE,
            _vec: PhantomData,
        }
    }

    /// Copies elements `from..from + out.len()` out of the mapping, which
    /// must hold them all.
    pub fn copy_out(&self, from: usize, out: &mut [T]) {
        assert!(from.checked_add(out.len()).is_some_and(|end| end <= self.len));
        // SAFETY: the elements lie inside the file and the mapping (checked
        // above) and `out` is a separate buffer of as many. Every bit pattern
        // is a value of each element type, and the file is little-endian as
        // this host is, so the bytes are the values. Another process may
        // change them meanwhile: a copy, like `read(2)`, takes whatever they
        // hold at that moment, and nothing here relies on them staying put.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.as_ptr().add(from * T::SIZE),
                out.as_mut_ptr().cast::<u8>(),
                out.len() * T::SIZE,
            )
        };
    }

    /// Writes whole elements, as raw little-endian bytes, from element
    /// `at`; returns false (and writes nothing) when any would lie past the
    /// end, or the mapping is read-only.
    pub fn write_bytes(&mut self, at: usize, bytes: &[u8]) -> bool {
        debug_assert_eq!(bytes.len() % T::SIZE, 0);
        let n = bytes.len() / T::SIZE;
        if at.checked_add(n).is_none_or(|end| end > self.len) || !self.writable {
            return false;
        }
        // SAFETY: elements at..at + n lie inside the file and the mapping
        // (checked above), which is writable; `bytes` is the command's own
        // buffer, apart from it. Readers in other processes see the bytes
        // change, as with any write to a shared file.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.map.as_mut_ptr().add(at * T::SIZE), bytes.len()) };
        true
    }

    /// Appends whole elements given as raw little-endian bytes, with one
    /// `pwrite` at the end of the file: all of them or none.
    pub fn append_bytes(&mut self, bytes: &[u8], hold: bool) -> io::Result<()> {
        debug_assert_eq!(bytes.len() % T::SIZE, 0);
        if bytes.is_empty() {
            return Ok(());
        }
        if hold && self.make_room(bytes.len())? {
            self.tail.extend_from_slice(bytes);
            return Ok(());
        }
        self.settle()?;
        self.check_size()?;
        let len = self.len.checked_add(bytes.len() / T::SIZE).ok_or_else(too_large)?;
        self.grow(len, |file, old| file.write_all_at(bytes, old))
    }

    /// An error unless the mapping is writable.
    pub fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the file is mapped read-only",
            ))
        }
    }

    /// Removes and returns the last element.
    pub fn pop(&mut self) -> io::Result<Option<T>> {
        self.check_writable()?;
        self.settle()?;
        let Some(last) = self.len.checked_sub(1).and_then(|i| self.get(i)) else {
            return Ok(None);
        };
        if super::sigbus::pending() && self.fault().is_some() {
            // The value read is a zero page's, not the file's: a disk that
            // failed the read would otherwise see the file cut all the same
            // (a cut file is refused by `truncate`'s size check).
            return Err(io::Error::other("the mapping faulted"));
        }
        self.truncate(self.len - 1)?;
        Ok(Some(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn fresh(dir: &tempfile::TempDir, name: &str) -> (std::path::PathBuf, MappedVec<f64>) {
        let path = dir.path().join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        (path, MappedVec::open(file, true).unwrap())
    }

    fn size(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    fn on_disk(path: &std::path::Path) -> Vec<f64> {
        std::fs::read(path)
            .unwrap()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn empty_file_maps_with_no_values() {
        let dir = tempfile::tempdir().unwrap();
        let (path, v) = fresh(&dir, "a");
        assert_eq!(v.len(), 0);
        assert_eq!(v.get(0), None);
        assert_eq!(size(&path), 0);
    }

    #[test]
    fn grow_read_write_shrink_keep_eight_bytes_per_value() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut v) = fresh(&dir, "a");
        v.extend(&[1.0, 2.0, 3.0], false).unwrap();
        assert_eq!((v.len(), size(&path)), (3, 24));
        assert_eq!(on_disk(&path), vec![1.0, 2.0, 3.0]);
        assert!(v.set(1, 20.0));
        assert!(!v.set(3, 9.0));
        assert_eq!(size(&path), 24);
        assert_eq!(on_disk(&path), vec![1.0, 20.0, 3.0]);
        assert_eq!(v.pop().unwrap(), Some(3.0));
        assert_eq!((v.len(), size(&path)), (2, 16));
        v.truncate(5).unwrap();
        assert_eq!((v.len(), size(&path)), (2, 16));
        v.truncate(0).unwrap();
        assert_eq!((v.len(), size(&path)), (0, 0));
        assert_eq!(v.pop().unwrap(), None);
        v.extend(&[7.5], false).unwrap();
        assert_eq!(on_disk(&path), vec![7.5]);
        assert_eq!(v.get(0), Some(7.5));
    }

    #[test]
    fn reopen_sees_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut v) = fresh(&dir, "a");
        v.extend(&[0.5, -0.0, f64::INFINITY], false).unwrap();
        v.set(0, 0.25);
        drop(v);
        let (_, v) = fresh(&dir, "a");
        assert_eq!(v.len(), 3);
        assert_eq!(v.get(0), Some(0.25));
        assert_eq!(v.get(1).unwrap().to_bits(), (-0.0f64).to_bits());
        assert_eq!(v.get(2), Some(f64::INFINITY));
        assert_eq!(size(&path), 24);
    }

    #[test]
    fn bits_survive_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut v) = fresh(&dir, "a");
        let odd = [
            f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN
            f64::from_bits(0xfff8_0000_0000_1234),
            f64::from_bits(1), // smallest subnormal
        ];
        v.extend(&odd, false).unwrap();
        for (i, x) in odd.iter().enumerate() {
            assert_eq!(v.get(i).unwrap().to_bits(), x.to_bits());
        }
    }

    #[test]
    fn writes_through_the_mapping_are_visible_to_readers_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut v) = fresh(&dir, "a");
        v.extend(&[1.0, 2.0], false).unwrap();
        v.set(0, 42.0);
        // A plain read, not a mapping: the shared page cache serves both.
        assert_eq!(on_disk(&path), vec![42.0, 2.0]);
    }

    fn allocated(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).unwrap().blocks() * 512
    }

    #[test]
    fn held_appends_wait_in_the_tail_until_settled() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut v) = fresh(&dir, "a");
        v.extend(&[1.0, 2.0], false).unwrap();
        v.extend(&[3.0], true).unwrap();
        v.append_bytes(&4.5f64.to_le_bytes(), true).unwrap();
        // The length counts the tail; the file and the mapping do not have it yet.
        assert_eq!((v.len(), v.file_bytes(), size(&path)), (4, 16, 16));
        assert_eq!(v.get(2), None);
        let want: Vec<u8> = [3.0f64, 4.5].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(v.tail(), want);
        // Space for it is set aside on disk, past the end of the file.
        assert!(
            allocated(&path) >= 16 + ROOM as u64,
            "{} bytes allocated",
            allocated(&path)
        );
        v.settle().unwrap();
        assert_eq!((v.len(), v.file_bytes(), v.tail().len()), (4, 32, 0));
        assert_eq!(on_disk(&path), vec![1.0, 2.0, 3.0, 4.5]);
        assert_eq!(v.get(3), Some(4.5));
        v.settle().unwrap(); // nothing to write
        assert_eq!(on_disk(&path), vec![1.0, 2.0, 3.0, 4.5]);
    }

    #[test]
    fn every_other_change_writes_the_tail_first() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut v) = fresh(&dir, "a");
        v.extend(&[1.0, 2.0], true).unwrap();
        v.extend(&[3.0], false).unwrap(); // an append written at once comes after the tail
        assert_eq!(on_disk(&path), vec![1.0, 2.0, 3.0]);
        v.extend(&[4.0], true).unwrap();
        assert_eq!(v.pop().unwrap(), Some(4.0));
        v.extend(&[5.0], true).unwrap();
        v.resize(6).unwrap();
        assert_eq!(on_disk(&path), vec![1.0, 2.0, 3.0, 5.0, 0.0, 0.0]);
        v.extend(&[6.0, 7.0], true).unwrap();
        v.truncate(7).unwrap();
        assert_eq!(on_disk(&path), vec![1.0, 2.0, 3.0, 5.0, 0.0, 0.0, 6.0]);
        assert_eq!(v.tail().len(), 0);
    }

    #[test]
    fn a_tail_never_outgrows_its_limit_or_a_read_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut v) = fresh(&dir, "a");
        let big = vec![0.5f64; TAIL_MAX / 8];
        v.extend(&big, true).unwrap();
        assert_eq!((v.tail().len(), size(&path)), (TAIL_MAX, 0));
        // One value more than the limit: the tail and the value are written at once.
        v.extend(&[1.0], true).unwrap();
        assert_eq!((v.tail().len(), size(&path)), (0, TAIL_MAX as u64 + 8));
        // Many small appends past the space set aside set more aside.
        for i in 0..20_000 {
            v.extend(&[i as f64], true).unwrap();
        }
        v.settle().unwrap();
        assert_eq!(v.len(), TAIL_MAX / 8 + 1 + 20_000);
        assert_eq!(on_disk(&path)[TAIL_MAX / 8 + 1 + 19_999], 19_999.0);
        std::fs::write(dir.path().join("ro"), [0u8; 8]).unwrap();
        let mut ro = MappedVec::<f64>::open(File::open(dir.path().join("ro")).unwrap(), false).unwrap();
        assert!(ro.extend(&[1.0], true).is_err());
        assert!(ro.append_bytes(&[0; 8], true).is_err());
        assert_eq!(ro.tail().len(), 0);
    }

    #[test]
    fn growing_past_the_reservation_remaps_and_keeps_content() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut v) = fresh(&dir, "a");
        let first = v.reserved_bytes();
        let chunk: Vec<f64> = (0..(1 << 20)).map(|i| i as f64).collect();
        let mut total = 0;
        while v.file_bytes() <= first {
            v.extend(&chunk, false).unwrap();
            total += chunk.len();
        }
        assert!(v.reserved_bytes() > first);
        assert_eq!(v.len(), total);
        assert_eq!(size(&path), 8 * total as u64);
        assert_eq!(v.get(total - 1), Some(((1 << 20) - 1) as f64));
        assert_eq!(v.get(12345), Some(12345.0));
    }

    #[test]
    fn existing_file_of_doubles_maps_with_its_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b");
        let bytes: Vec<u8> = (0..100).flat_map(|i| (i as f64).to_le_bytes()).collect();
        std::fs::write(&path, bytes).unwrap();
        let (_, v) = fresh(&dir, "b");
        assert_eq!(v.len(), 100);
        assert_eq!(v.get(99), Some(99.0));
    }

    #[test]
    fn size_not_a_multiple_of_eight_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd");
        std::fs::write(&path, [0u8; 12]).unwrap();
        let err = MappedVec::<f64>::open(File::open(&path).unwrap(), false).err().unwrap();
        assert!(matches!(err, OpenError::BadSize(12, 8)), "{err}");
    }

    #[test]
    fn a_read_only_mapping_reads_and_refuses_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro");
        std::fs::write(&path, [1u8, 2, 3, 4]).unwrap();
        let mut v = MappedVec::<u16>::open(File::open(&path).unwrap(), false).unwrap();
        assert_eq!((v.len(), v.get(1)), (2, Some(0x0403)));
        assert!(!v.writable());
        assert!(!v.set(0, 9));
        for e in [v.extend(&[5], false), v.truncate(0), v.resize(9), v.pop().map(|_| ())] {
            assert_eq!(e.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        }
        assert_eq!(std::fs::read(&path).unwrap(), [1, 2, 3, 4]);
    }

    #[test]
    fn directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = MappedVec::<f64>::open(File::open(dir.path()).unwrap(), false)
            .err()
            .unwrap();
        assert!(matches!(err, OpenError::NotRegular("a directory")), "{err}");
    }

    #[test]
    fn sparse_large_file_opens_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let f = File::create(&path).unwrap();
        f.set_len(8 << 30).unwrap();
        drop(f);
        let (_, mut v) = fresh(&dir, "big");
        assert_eq!(v.len(), 1 << 30);
        assert_eq!(v.get((1 << 30) - 1), Some(0.0));
        v.extend(&[3.0], false).unwrap();
        assert_eq!(v.get(1 << 30), Some(3.0));
    }

    #[test]
    fn resize_cuts_or_extends_with_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut v) = fresh(&dir, "a");
        v.extend(&[1.0, 2.0, 3.0], false).unwrap();
        v.resize(5).unwrap();
        assert_eq!(on_disk(&path), vec![1.0, 2.0, 3.0, 0.0, 0.0]);
        v.resize(1).unwrap();
        assert_eq!(on_disk(&path), vec![1.0]);
        v.resize(3).unwrap();
        // The cut values do not come back: the new tail is zeros.
        assert_eq!(on_disk(&path), vec![1.0, 0.0, 0.0]);
        assert_eq!((v.len(), v.get(2)), (3, Some(0.0)));
        // Past the reservation: remapped, still readable at the end.
        let big = v.reserved_bytes() / 8 + 10;
        v.resize(big).unwrap();
        assert_eq!((v.len(), v.get(big - 1)), (big, Some(0.0)));
        assert_eq!(size(&path), 8 * big as u64);
        v.resize(0).unwrap();
        assert_eq!(size(&path), 0);
    }

    #[test]
    fn resize_beyond_any_file_size_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut v) = fresh(&dir, "a");
        v.extend(&[1.0], false).unwrap();
        // Every impossible length fails for the one reason, whichever
        // system call would have refused it.
        let max = MappedVec::<f64>::max_len();
        for len in [max + 1, 1 << 50, 1 << 58, usize::MAX / 4, usize::MAX] {
            let e = v.resize(len).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::FileTooLarge, "{len}");
            assert_eq!(
                e.to_string(),
                "more than 64 TiB, the most one mapping can hold",
                "{len}"
            );
            assert_eq!((v.len(), size(&path)), (1, 8));
        }
        assert_eq!(v.get(0), Some(1.0));
        assert!(reserve_for(MAX_BYTES) <= MAX_BYTES && reserve_for(MAX_BYTES / 2 + 1) == MAX_BYTES);
    }

    #[test]
    fn read_bytes_at_stops_at_a_shrunk_end_without_faulting() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut v) = fresh(&dir, "a");
        let values: Vec<f64> = (0..10).map(|i| i as f64 + 0.5).collect();
        v.extend(&values, false).unwrap();
        let mut buf = [0u8; 32];
        assert_eq!(read_bytes_at(v.file(), 0, &mut buf).unwrap(), 32);
        assert_eq!(f64::decode(&buf[24..32]), values[3]);
        assert_eq!(read_bytes_at(v.file(), 64, &mut buf).unwrap(), 16);
        assert_eq!(f64::decode(&buf[8..16]), values[9]);
        // Another process cuts the file mid-value; reading past the end is
        // an empty read, not a fault.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(8 * 5 + 3)
            .unwrap();
        assert_eq!(read_bytes_at(v.file(), 32, &mut buf).unwrap(), 11);
        assert_eq!(read_bytes_at(v.file(), 72, &mut buf).unwrap(), 0);
    }
}
