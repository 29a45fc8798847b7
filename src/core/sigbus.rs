//! Surviving a fault in a mapping of ours. A load or store through a shared
//! mapping raises SIGBUS when its page lies wholly past the file's end
//! (another program truncated the file), when a hole finds no disk space, or
//! when the disk fails a read. The handler here maps an anonymous zero page
//! over the faulting page, so the access completes (a load reads zeros, a
//! store lands nowhere), records the fault in the mapping's slot, and
//! returns. The code that made the access then asks `pending` before it
//! trusts what it read or wrote, and turns a fault into an error.
//!
//! A fault outside every registered mapping goes on to the handler that was
//! installed before ours (the server's crash report), or to the default
//! action. The handler takes no lock and allocates nothing: it reads a fixed
//! table of slots, calls `mmap`, and stores to atomics, so it is right on
//! any thread and at any moment.

use std::cell::UnsafeCell;
use std::ffi::{c_int, c_void};
use std::io;
use std::sync::atomic::{compiler_fence, AtomicUsize, Ordering};

/// How many mappings can be guarded at once: four times the kernel's
/// default `vm.max_map_count`, and each bound key holds one mapping.
const SLOTS: usize = 1 << 18;

/// `start` of a slot being set up or taken down: never matches an address.
const BUSY: usize = 1;

struct Slot {
    /// The mapping's first address; 0 for a free slot, `BUSY` while it changes.
    start: AtomicUsize,
    len: AtomicUsize,
    /// The first faulting address, 0 if none.
    fault: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    fault: AtomicUsize::new(0),
};

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
/// One past the highest slot ever used: the handler scans no further.
static HIGH: AtomicUsize = AtomicUsize::new(0);
/// Where the next free slot is looked for first.
static HINT: AtomicUsize = AtomicUsize::new(0);
/// Slots whose fault no one has taken yet: what `pending` reads.
static FAULTED: AtomicUsize = AtomicUsize::new(0);
/// Faults survived since load, for `INFO`.
static SURVIVED: AtomicUsize = AtomicUsize::new(0);
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// The handlers in force before ours, two buffers so that one can be
/// rewritten while the handler may read the other; `PREV_AT` says which.
struct Prev(UnsafeCell<[libc::sigaction; 2]>);
// SAFETY: written only by `install`, on one thread, into the buffer the
// handler is not told to read until the write is done.
unsafe impl Sync for Prev {}
// SAFETY: an all-zero sigaction is SIG_DFL with no flags, a valid value.
static PREV: Prev = Prev(UnsafeCell::new(unsafe { std::mem::zeroed() }));
static PREV_AT: AtomicUsize = AtomicUsize::new(0);

/// A mapping registered with the handler; unregistered on drop.
#[derive(Debug)]
pub struct Guard {
    slot: usize,
}

impl Guard {
    /// Registers `len` bytes from `start`. `None` when every slot is taken:
    /// that mapping is then unguarded, and a fault in it ends the process as
    /// it would without this module.
    pub fn new(start: *const u8, len: usize) -> Option<Guard> {
        let from = HINT.load(Ordering::Relaxed);
        let slot = (from..SLOTS).chain(0..from).find(|&i| {
            TABLE[i]
                .start
                .compare_exchange(0, BUSY, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })?;
        HINT.store(slot + 1, Ordering::Relaxed);
        HIGH.fetch_max(slot + 1, Ordering::Release);
        let g = Guard { slot };
        g.fill(start, len);
        Some(g)
    }

    fn fill(&self, start: *const u8, len: usize) {
        let s = &TABLE[self.slot];
        s.len.store(len, Ordering::Relaxed);
        s.start.store((start as usize).max(BUSY + 1), Ordering::Release);
    }

    /// The mapping moved (a remap): the slot follows it, and a fault taken
    /// in the old one is forgotten with it.
    pub fn moved(&self, start: *const u8, len: usize) {
        TABLE[self.slot].start.store(BUSY, Ordering::Release);
        self.forget();
        self.fill(start, len);
    }

    /// The offset into the mapping of its first fault not yet taken, if any.
    #[inline]
    pub fn fault(&self) -> Option<usize> {
        let s = &TABLE[self.slot];
        match s.fault.load(Ordering::Acquire) {
            0 => None,
            at => Some(at.saturating_sub(s.start.load(Ordering::Relaxed))),
        }
    }

    /// Takes the fault, if any: `pending` no longer counts it.
    fn forget(&self) {
        if TABLE[self.slot].fault.swap(0, Ordering::AcqRel) != 0 {
            FAULTED.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Takes the fault, if any, and says at what offset it was.
    pub fn take(&self) -> Option<usize> {
        let at = self.fault();
        self.forget();
        at
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let s = &TABLE[self.slot];
        s.start.store(BUSY, Ordering::Release);
        self.forget();
        s.len.store(0, Ordering::Relaxed);
        s.start.store(0, Ordering::Release);
        HINT.fetch_min(self.slot, Ordering::Relaxed);
    }
}

/// Whether any guarded mapping has faulted since its fault was last taken.
/// Call it after the accesses it vouches for: the fence keeps the compiler
/// from moving them past the test.
#[inline(always)]
pub fn pending() -> bool {
    compiler_fence(Ordering::SeqCst);
    FAULTED.load(Ordering::Relaxed) != 0
}

/// The start of the page holding `offset`, an offset into a mapping
/// (mappings start on a page).
pub fn page_start(offset: usize) -> usize {
    offset & !(PAGE.load(Ordering::Relaxed) - 1)
}

/// Faults survived since the module was loaded.
pub fn survived() -> usize {
    SURVIVED.load(Ordering::Relaxed)
}

fn ours() -> libc::sighandler_t {
    on_sigbus as *const () as libc::sighandler_t
}

/// Installs the handler for SIGBUS, keeping the one in force to chain to.
/// Does nothing when ours is in force already, so it can be called again
/// whenever another may have replaced it (the server reinstalls its own on
/// `CONFIG SET crash-log-enabled`). Says whether it installed it.
pub fn install() -> io::Result<bool> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE.store(page as usize, Ordering::Relaxed);
    }
    // SAFETY: an all-zero sigaction is a valid value for the call to fill.
    let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a query: a null new action and a valid place for the old.
    if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut now) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if now.sa_sigaction == ours() {
        return Ok(false);
    }
    let next = 1 - PREV_AT.load(Ordering::Relaxed);
    // SAFETY: the handler reads only the buffer `PREV_AT` names, and this
    // is the other one; installs happen on one thread at a time.
    unsafe { (*PREV.0.get())[next] = now };
    PREV_AT.store(next, Ordering::Release);
    // SAFETY: an all-zero sigaction, then filled in.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = ours();
    // NODEFER: a handler we chain to may fault again and must not hang.
    act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
    // SAFETY: `act.sa_mask` is ours to fill.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    // SAFETY: a valid action whose handler has the SA_SIGINFO signature.
    if unsafe { libc::sigaction(libc::SIGBUS, &act, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(true)
}

/// The SIGBUS handler. Only async-signal-safe work: atomics, `mmap`, and
/// for a fault not ours, the previous handler or the default action.
extern "C" fn on_sigbus(sig: c_int, info: *mut libc::siginfo_t, uctx: *mut c_void) {
    // SAFETY: the thread's errno, saved and put back so that the
    // interrupted code sees its own.
    let errno = unsafe { *libc::__errno_location() };
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    if !take_over(addr) {
        // SAFETY: the arguments the kernel gave us, passed on unchanged.
        unsafe { chain(sig, info, uctx) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Maps a zero page over `addr` if a guarded mapping holds it, and records
/// the fault; says whether it did.
fn take_over(addr: usize) -> bool {
    let high = HIGH.load(Ordering::Acquire);
    for s in &TABLE[..high] {
        let start = s.start.load(Ordering::Acquire);
        if start <= BUSY || addr < start || addr - start >= s.len.load(Ordering::Relaxed) {
            continue;
        }
        let page = addr & !(PAGE.load(Ordering::Relaxed) - 1);
        // SAFETY: replaces one page inside a mapping this process made and
        // still holds (the slot is registered), with private zeros; the
        // mapping's owner drops or remaps it once the fault is taken.
        let p = unsafe {
            libc::mmap(
                page as *mut c_void,
                PAGE.load(Ordering::Relaxed),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return false;
        }
        if s.fault
            .compare_exchange(0, addr, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            FAULTED.fetch_add(1, Ordering::AcqRel);
        }
        SURVIVED.fetch_add(1, Ordering::Relaxed);
        return true;
    }
    false
}

/// Hands a fault that is not ours to the handler in force before ours; with
/// none (or SIG_IGN, which cannot ignore a fault), restores the default
/// action, so that the access faults again and ends the process.
///
/// # Safety
/// The arguments of a signal handler, on the thread that took the signal.
unsafe fn chain(sig: c_int, info: *mut libc::siginfo_t, uctx: *mut c_void) {
    let prev = &(*PREV.0.get())[PREV_AT.load(Ordering::Acquire)];
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) = std::mem::transmute(h);
        f(sig, info, uctx);
    } else {
        let f: extern "C" fn(c_int) = std::mem::transmute(h);
        f(sig);
    }
}

/// Test builds only: faults in a mapping that is not guarded (a memfd of
/// one page, touched past it), on this thread or on a new one, so that the
/// chain to the server's crash handler can be seen.
#[cfg(feature = "fault-injection")]
pub fn fault_elsewhere(on_a_thread: bool) {
    let touch = || {
        // SAFETY: a new memfd of one page, mapped for two; the second page
        // lies past the end and faults, which is the point.
        unsafe {
            let fd = libc::memfd_create(c"mmap-fault".as_ptr(), 0);
            libc::ftruncate(fd, 4096);
            let p = libc::mmap(std::ptr::null_mut(), 8192, libc::PROT_READ, libc::MAP_SHARED, fd, 0);
            std::ptr::read_volatile(p.cast::<u8>().add(4096 + 1))
        }
    };
    if on_a_thread {
        // Not joined: the server's crash handler stops the main thread,
        // which must not be waiting here.
        std::thread::spawn(touch);
    } else {
        touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_taken_and_given_back() {
        let a = Guard::new(0x10000 as *const u8, 4096).unwrap();
        let b = Guard::new(0x20000 as *const u8, 4096).unwrap();
        assert_ne!(a.slot, b.slot);
        assert_eq!(a.fault(), None);
        let freed = a.slot;
        drop(a);
        let c = Guard::new(0x30000 as *const u8, 4096).unwrap();
        assert_eq!(c.slot, freed, "a freed slot is used again first");
    }

    /// A file of `pages` pages of 7s, mapped whole (kept open in the
    /// result), then cut by another handle to `cut` bytes.
    fn mapped_then_cut(pages: usize, cut: u64) -> (tempfile::TempDir, std::fs::File, memmap2::MmapRaw) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; pages * 4096]).unwrap();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let map = memmap2::MmapOptions::new().len(pages * 4096).map_raw(&file).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut)
            .unwrap();
        (dir, file, map)
    }

    #[test]
    fn a_fault_past_the_end_of_a_mapped_file_is_survived_and_reported() {
        install().unwrap();
        let (_dir, _file, map) = mapped_then_cut(3, 4096);
        let g = Guard::new(map.as_ptr(), 3 * 4096).unwrap();
        // SAFETY: inside the mapping; the page past the end faults.
        let v = unsafe { std::ptr::read_volatile(map.as_ptr().add(2 * 4096 + 5)) };
        assert!(pending());
        assert_eq!(v, 0, "the zero page");
        assert_eq!(g.take(), Some(2 * 4096 + 5));
        assert_eq!(g.fault(), None);
        // The first page is still the file's.
        // SAFETY: inside the file.
        assert_eq!(unsafe { std::ptr::read_volatile(map.as_ptr()) }, 7);
        assert!(survived() >= 1);
        assert!(!install().unwrap(), "installed once");
    }

    #[test]
    fn a_fault_on_another_thread_is_survived_too() {
        install().unwrap();
        let (_dir, _file, map) = mapped_then_cut(2, 0);
        let g = Guard::new(map.as_ptr(), 2 * 4096).unwrap();
        let at = map.as_ptr() as usize + 4096;
        // SAFETY: inside the mapping, wholly past the file's end.
        let v = std::thread::spawn(move || unsafe { std::ptr::read_volatile(at as *const u8) })
            .join()
            .unwrap();
        assert_eq!(v, 0);
        assert_eq!(g.take(), Some(4096));
    }
}
