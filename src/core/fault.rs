//! Rare failures on demand, for the tests of what a user then sees. Only
//! test builds (the `fault-injection` feature) can switch them on; in a
//! release build every check is a constant `false`.

/// A failure that `MMAP.FAULT` can make happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Reads of bound files (AOF rewrite, digest) fail with EIO.
    Read = 0,
    /// `fdatasync` of bound files fails with EIO.
    Fsync = 1,
    /// Writing held appends to their file fails with EIO.
    Settle = 2,
    /// Each piece of an offloaded read panics on its worker thread.
    WorkerPanic = 3,
}

#[cfg(feature = "fault-injection")]
static ON: [std::sync::atomic::AtomicBool; 4] = [const { std::sync::atomic::AtomicBool::new(false) }; 4];

/// Whether `f` is switched on.
#[inline]
pub fn on(f: Fault) -> bool {
    #[cfg(feature = "fault-injection")]
    {
        ON[f as usize].load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = f;
        false
    }
}

/// The error an injected fault stands for.
pub fn io_error() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::EIO)
}

#[cfg(feature = "fault-injection")]
pub fn set(f: Fault, on: bool) {
    ON[f as usize].store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Milliseconds each piece of an offloaded read waits before reading
/// (`MMAP.FAULT worker <ms>`): time for a test to change the key, the file
/// or the connection while the read is under way. 0 in release builds.
#[cfg(feature = "fault-injection")]
static WORKER_DELAY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(feature = "fault-injection")]
pub fn set_worker_delay(ms: u64) {
    WORKER_DELAY.store(ms, std::sync::atomic::Ordering::Relaxed);
}

/// Waits as `MMAP.FAULT worker` asked, on a worker thread.
#[inline]
pub fn worker_delay() {
    #[cfg(feature = "fault-injection")]
    {
        let ms = WORKER_DELAY.load(std::sync::atomic::Ordering::Relaxed);
        if ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
}
