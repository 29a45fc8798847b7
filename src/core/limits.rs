//! How many keys may be bound at once. Each bound key holds a file
//! descriptor and a mapping, and both are finite: the descriptors are
//! shared with the server's clients, and a server that has none left
//! cannot accept a connection. Knows nothing of Redis: the server's
//! `maxclients` and the operator's `mmap.max-keys` are handed in.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Descriptors the server keeps for itself beyond `maxclients`
/// (Redis's and Valkey's `CONFIG_MIN_RESERVED_FDS`: listeners, the RDB,
/// the AOF, pipes to fork children).
pub const SERVER_RESERVED: u64 = 32;

/// The rest of the range the server's event loop covers
/// (`CONFIG_FDSET_INCR` is the reserve plus 96): cluster bus links, a
/// replica's transfer file. Keys' descriptors sit above it all.
pub const SPARE_FDS: u64 = 96;

/// Mappings left for the server's own: its libraries, its allocator's
/// arenas, thread stacks, and the transient second mapping of a key whose
/// file is growing.
pub const SPARE_MAPS: u64 = 4096;

/// `maxclients`, as last read from the server.
static MAXCLIENTS: AtomicU64 = AtomicU64::new(10_000);
/// `mmap.max-keys`; 0 sets no cap of its own.
static CONFIGURED: AtomicU64 = AtomicU64::new(0);
/// `vm.max_map_count`, as last read.
static MAX_MAP_COUNT: AtomicU64 = AtomicU64::new(DEFAULT_MAX_MAP_COUNT);
const DEFAULT_MAX_MAP_COUNT: u64 = 65_530;

pub fn set_maxclients(n: u64) {
    MAXCLIENTS.store(n, Relaxed);
}

pub fn set_configured(n: u64) {
    CONFIGURED.store(n, Relaxed);
}

pub fn configured() -> u64 {
    CONFIGURED.load(Relaxed)
}

/// Re-reads `vm.max_map_count`, which an operator may raise at any time.
pub fn refresh_map_count() {
    let n = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_MAP_COUNT);
    MAX_MAP_COUNT.store(n, Relaxed);
}

/// The soft `RLIMIT_NOFILE`.
pub fn open_files() -> u64 {
    rlimit().map_or(1024, |l| l.rlim_cur)
}

fn rlimit() -> io::Result<libc::rlimit> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-parameter.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(l)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard one (or, if the hard one is
/// unlimited, to the most the kernel allows a process). Returns the limit
/// before and after.
pub fn raise_open_files() -> io::Result<(u64, u64)> {
    let mut l = rlimit()?;
    let before = l.rlim_cur;
    let ceiling = if l.rlim_max == libc::RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20)
    } else {
        l.rlim_max
    };
    if before >= ceiling {
        return Ok((before, before));
    }
    l.rlim_cur = ceiling;
    // SAFETY: a valid, initialised rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((before, ceiling))
}

/// Moves `file` to a descriptor numbered `floor` or more. The server's
/// event loop serves only descriptors numbered below `maxclients` plus
/// 128, and a new client gets the lowest free number: a key's descriptor
/// down there would push a client past the loop's end, where the server
/// drops it.
pub fn lift(file: File, floor: u64) -> io::Result<File> {
    let floor = libc::c_int::try_from(floor).map_err(|_| io::Error::from_raw_os_error(libc::EMFILE))?;
    if file.as_raw_fd() >= floor {
        return Ok(file);
    }
    // SAFETY: a live descriptor; the new one is checked and owned below.
    let fd = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor) };
    if fd < 0 {
        // EINVAL: the floor is at or past the open-file limit.
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EINVAL) => io::Error::from_raw_os_error(libc::EMFILE),
            _ => e,
        });
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// What bounds the number of bound keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ceiling {
    Descriptors,
    Maps,
    Configured,
}

/// The figures the budget is worked out from.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub open_files: u64,
    pub maxclients: u64,
    pub max_map_count: u64,
    /// `mmap.max-keys`; 0 for none.
    pub configured: u64,
}

impl Limits {
    /// The figures as they stand now.
    pub fn now() -> Limits {
        Limits {
            open_files: open_files(),
            maxclients: MAXCLIENTS.load(Relaxed),
            max_map_count: MAX_MAP_COUNT.load(Relaxed),
            configured: CONFIGURED.load(Relaxed),
        }
    }

    /// The lowest descriptor number a key's file may take: the end of the
    /// range the server's event loop serves (`maxclients` + 128).
    pub fn floor(&self) -> u64 {
        self.maxclients + SERVER_RESERVED + SPARE_FDS
    }

    /// Keys the descriptors allow: what `maxclients` and the server's own
    /// needs leave, less a spare.
    pub fn by_descriptors(&self) -> u64 {
        self.open_files
            .saturating_sub(self.maxclients)
            .saturating_sub(SERVER_RESERVED + SPARE_FDS)
    }

    /// Keys the kernel's mapping limit allows: one mapping each.
    pub fn by_maps(&self) -> u64 {
        self.max_map_count.saturating_sub(SPARE_MAPS)
    }

    /// How many keys may be bound, and what sets that.
    pub fn budget(&self) -> (u64, Ceiling) {
        let mut best = (self.by_descriptors(), Ceiling::Descriptors);
        if self.by_maps() < best.0 {
            best = (self.by_maps(), Ceiling::Maps);
        }
        if self.configured != 0 && self.configured <= best.0 {
            best = (self.configured, Ceiling::Configured);
        }
        best
    }

    /// Why one more key cannot be bound, and how to make room, if it cannot.
    pub fn refuse(&self, in_use: u64) -> Option<String> {
        let (budget, ceiling) = self.budget();
        (in_use >= budget).then(|| self.explain(in_use, budget, ceiling))
    }

    /// The refusal when no descriptor above the floor is free although the
    /// budget has room: something else (a descriptor the server inherited)
    /// holds one.
    pub fn no_descriptor(&self, in_use: u64) -> String {
        self.explain(in_use, in_use, Ceiling::Descriptors)
    }

    fn explain(&self, in_use: u64, budget: u64, ceiling: Ceiling) -> String {
        let why = match ceiling {
            Ceiling::Descriptors => format!(
                "the open-file limit {} leaves {budget} descriptors after maxclients {} and {} for the server; \
                 raise the limit (ulimit -n, LimitNOFILE) before starting the server, lower maxclients, \
                 or spread the keys over more nodes",
                self.open_files,
                self.maxclients,
                SERVER_RESERVED + SPARE_FDS
            ),
            Ceiling::Maps => format!(
                "vm.max_map_count {} leaves {budget} mappings after {SPARE_MAPS} for the server; \
                 raise it (sysctl -w vm.max_map_count=...) or spread the keys over more nodes",
                self.max_map_count
            ),
            Ceiling::Configured => format!("mmap.max-keys is {budget}; raise it with CONFIG SET mmap.max-keys"),
        };
        format!("{in_use} files are open for bound keys, the most this server allows: {why}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(open_files: u64, maxclients: u64, max_map_count: u64, configured: u64) -> Limits {
        Limits {
            open_files,
            maxclients,
            max_map_count,
            configured,
        }
    }

    #[test]
    fn descriptors_leave_room_for_every_client() {
        let l = limits(20_000, 10_000, 65_530, 0);
        assert_eq!(l.budget(), (20_000 - 10_000 - 128, Ceiling::Descriptors));
        assert!(l.refuse(9_871).is_none());
        let m = l.refuse(9_872).unwrap();
        assert!(
            m.contains("open-file limit 20000") && m.contains("maxclients 10000"),
            "{m}"
        );
    }

    #[test]
    fn a_low_descriptor_limit_leaves_nothing() {
        // A server started with `ulimit -n 256` runs with maxclients 224.
        let l = limits(256, 224, 65_530, 0);
        assert_eq!(l.budget(), (0, Ceiling::Descriptors));
        assert!(l.refuse(0).is_some());
    }

    #[test]
    fn the_mapping_limit_and_the_configured_cap_can_be_lower() {
        let l = limits(1 << 20, 10_000, 65_530, 0);
        assert_eq!(l.budget(), (65_530 - 4096, Ceiling::Maps));
        assert!(l.refuse(61_434).unwrap().contains("vm.max_map_count 65530"));
        let l = limits(1 << 20, 10_000, 65_530, 100);
        assert_eq!(l.budget(), (100, Ceiling::Configured));
        assert!(l.refuse(100).unwrap().contains("mmap.max-keys is 100"));
        // A cap above what the system allows does not raise the budget.
        let l = limits(20_000, 10_000, 65_530, 50_000);
        assert_eq!(l.budget().1, Ceiling::Descriptors);
    }

    #[test]
    fn lifted_descriptors_sit_above_the_floor_and_keep_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345678").unwrap();
        let low = File::open(&path).unwrap();
        let low_fd = low.as_raw_fd();
        let high = lift(low, 600).unwrap();
        assert!(high.as_raw_fd() >= 600);
        // The low number is free again.
        // SAFETY: only asks whether the descriptor is open.
        assert_eq!(unsafe { libc::fcntl(low_fd, libc::F_GETFD) }, -1);
        assert_eq!(high.metadata().unwrap().len(), 8);
        // A floor past the open-file limit is a plain "too many open files".
        let e = lift(high, open_files() + 1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
        assert_eq!(limits(20_000, 10_000, 65_530, 0).floor(), 10_128);
    }

    #[test]
    fn raising_the_soft_limit_stops_at_the_hard_one() {
        let (before, after) = raise_open_files().unwrap();
        assert!(after >= before);
        assert_eq!(open_files(), after);
        assert_eq!(rlimit().unwrap().rlim_cur, after);
    }
}
