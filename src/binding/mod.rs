//! What a key holds: the path of its file and, while the file can be used,
//! its mapping. Every change to a file goes through `Binding::write`.

pub mod fsync;
pub mod logged;

pub use logged::Logged;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::core::column::{self, Column, Rejected, Texts};
use crate::core::counters;
use crate::core::error::{shown, Error, Result};
use crate::core::fault::{self, Fault};
use crate::core::kind::{Spec, Value};
use crate::core::limits::{self, Limits};
use crate::core::sandbox::{PathError, Sandbox};
use crate::core::sigbus;
use crate::core::vector::{identity, is_shrank, read_bytes_at};
use crate::core::view::View;
use crate::ffi::ctx::Ctx;
use fsync::{Mode, Synced};

/// A bound file's values, of whichever kind it holds.
pub type Vector = dyn Column;

/// The key's name, fetched only when an error needs it: the common,
/// successful write never asks the server for it.
pub type Name<'k> = &'k dyn Fn() -> &'k [u8];

/// Who holds a bound file. The claim belongs to the value: its token lives
/// in the value's `Opened`, and the claim ends when the value is freed or
/// when a look at the keyspace finds no key holding that token any more.
/// Nothing here says where the value is: SWAPDB, MOVE, flushes and lazy
/// frees move or drop values without telling modules alike, so the
/// database is always looked up, never remembered. The key's name is kept
/// (renames are the one change of name, and each is notified) to look the
/// value up by and to name it in errors. Beside it: the file (whose
/// descriptor carries the lock) and whether the key may write it.
struct Holder {
    key: Vec<u8>,
    sync: Arc<Synced>,
    writable: bool,
    token: u64,
}

/// Files bound in this process, by (device, inode).
static BOUND: Mutex<Option<HashMap<(u64, u64), Holder>>> = Mutex::new(None);
static TOKENS: AtomicU64 = AtomicU64::new(1);

fn bound<R>(f: impl FnOnce(&mut HashMap<(u64, u64), Holder>) -> R) -> R {
    let mut g = BOUND.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(HashMap::new))
}

/// Paths named by broken keys, with how many name each: files no key has
/// open but that a key will open again once they can be used.
static BROKEN: Mutex<Option<HashMap<PathBuf, usize>>> = Mutex::new(None);

/// The bindings whose vectors may hold a tail (appends not yet in the
/// file), by address: Redis keeps each binding at one address from its
/// creation to its free, and a binding leaves this set before it is freed.
static HELD: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

fn held<R>(f: impl FnOnce(&mut HashSet<usize>) -> R) -> R {
    f(HELD
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new))
}

/// Writes every held tail to its file: before the server sends the replies
/// of an event-loop pass, and before anything that reads files from
/// outside a command (a snapshot in this process, a flush, a load, a
/// shutdown). Returns how many tails could not be written (each logged,
/// and kept for the next call).
pub fn settle_all() -> usize {
    held(|set| {
        let mut failed = 0;
        set.retain(|&addr| {
            // SAFETY: every address in the set is a live binding (see HELD),
            // reached on the main thread outside any command, so nothing
            // else holds a reference to it.
            let b = unsafe { &mut *(addr as *mut Binding) };
            match b.settle_tail() {
                Ok(()) => false,
                Err(e) => {
                    failed += 1;
                    crate::ffi::log("warning", &format!("{e}; the values stay in memory until it can be"));
                    true
                }
            }
        });
        failed
    })
}

fn broken_paths<R>(f: impl FnOnce(&mut HashMap<PathBuf, usize>) -> R) -> R {
    let mut g = BROKEN.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(HashMap::new))
}

fn forget_broken(rel: &Path) {
    broken_paths(|m| {
        if let Some(n) = m.get_mut(rel) {
            *n -= 1;
            if *n == 0 {
                m.remove(rel);
            }
        }
    });
}

/// What `MMAP.UNBOUND` leaves out: the files bound keys hold, by identity,
/// and the paths broken keys name.
pub fn claimed() -> (HashSet<(u64, u64)>, HashSet<PathBuf>) {
    let ids = bound(|m| m.keys().copied().collect());
    let paths = broken_paths(|m| m.keys().cloned().collect());
    (ids, paths)
}

fn unlock(file: &std::fs::File) {
    // Unlock explicitly rather than by closing: a fork child (BGSAVE) shares
    // the open file description and would keep the lock until it exits.
    // SAFETY: a live descriptor, owned by `file`.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
}

/// Flushes every writable bound file to disk (SAVE, BGSAVE, SHUTDOWN): a
/// read-only key never wrote its file. Returns how many, or `None` if the
/// registry was locked. That happens only in a fork
/// child (BGSAVE) forked while another thread held the lock, which no thread
/// of the child will ever release: waiting would hang the save.
pub fn flush_all() -> Option<usize> {
    let files: Vec<Arc<Synced>> = {
        let mut g = match BOUND.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        g.get_or_insert_with(HashMap::new)
            .values()
            .filter(|h| h.writable)
            .map(|h| h.sync.clone())
            .collect()
    };
    for s in &files {
        s.flush_now();
    }
    Some(files.len())
}

/// Test builds only: holds the registry's lock on another thread for
/// `ms` milliseconds, so that a fork meanwhile (BGSAVE) finds it locked.
#[cfg(feature = "fault-injection")]
pub fn hold_registry(ms: u64) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let guard = BOUND.lock();
        let _ = tx.send(());
        std::thread::sleep(std::time::Duration::from_millis(ms));
        drop(guard);
    });
    // Returns once the lock is held.
    let _ = rx.recv();
}

/// Values per `VADD` in an AOF rewrite, and per digest step: few enough
/// that memory stays small, many enough that replay is quick. Fixed, so every
/// server cuts the content alike for the digest.
const CHUNK: usize = 512;

/// The database where a key named `key` holds the claim `token`, looked
/// up through `ctx` in every database (see `Ctx::find`): the `Finder` of
/// code that runs with a context.
pub fn find_claim(ctx: &Ctx, key: &[u8], token: u64) -> Option<i32> {
    ctx.find(key, |b: &Binding| b.token() == Some(token))
}

/// Finds the key that holds a claim: given the key's name and the claim's
/// token, the database where a key of that name holds that claim now
/// (looked for in every database), or `None` if no key does (it was
/// deleted, flushed or has expired, and its value may not be freed yet).
pub type Finder<'a> = &'a dyn Fn(&[u8], u64) -> Option<i32>;

/// What `trusted` answers: held, in a database it cannot tell.
pub const SOMEWHERE: i32 = -1;

/// A finder for a full sync's load, whose keys may go to a database no
/// lookup reaches (a diskless load beside the old data): every claim is
/// taken to be held.
pub fn trusted(_: &[u8], _: u64) -> Option<i32> {
    Some(SOMEWHERE)
}

/// Checks every claim against the keyspace and releases those no key holds
/// any more. Run after a flush: the flushed values may be freed later on a
/// lazy-free thread, and a key loaded or bound right after the flush must
/// find their files free. Every database is looked in: a key that moved
/// (MOVE, SWAPDB, in MULTI or a script alike) stays bound.
pub fn verify_all(find: Finder) -> usize {
    let claims: Vec<Seen> = bound(|map| map.iter().map(|(&id, h)| Seen::of(id, h)).collect());
    claims.into_iter().filter(|c| verify(c, find).is_none()).count()
}

/// A claim as seen in the registry, copied out so that the lock is not
/// held while it is checked.
struct Seen {
    id: (u64, u64),
    key: Vec<u8>,
    token: u64,
}

impl Seen {
    fn of(id: (u64, u64), h: &Holder) -> Seen {
        Seen {
            id,
            key: h.key.clone(),
            token: h.token,
        }
    }
}

/// The database of the key that still holds the claim `token` on `id`
/// (`SOMEWHERE` for `trusted`); releases the claim if no key holds it.
/// Called with the registry unlocked: the lookup may delete an expired
/// key, whose free callback takes the lock.
fn verify(claim: &Seen, find: Finder) -> Option<i32> {
    let found = find(&claim.key, claim.token);
    bound(|map| match map.get(&claim.id).filter(|h| h.token == claim.token) {
        Some(h) => {
            if found.is_none() {
                unlock(h.sync.file());
                map.remove(&claim.id);
            }
            found
        }
        None => None,
    })
}

/// An open, locked, registered file. Dropping it releases what it still holds.
pub struct Opened {
    vec: Box<Vector>,
    id: (u64, u64),
    token: u64,
    sync: Arc<Synced>,
    /// Whether the tail may hold values: set when a write leaves appends
    /// held, cleared when the tail is written. Reads and writes test it
    /// instead of asking the column for its tail.
    held: bool,
    /// When a read-only key next looks whether its path names another file.
    look_at: Instant,
    /// The worker threads' view of the file, kept between reads.
    view: Option<Arc<View>>,
}

impl Opened {
    /// Claims the file for `key`. A claim that another key seems to hold is
    /// checked with `find` first, and taken over if no key holds it.
    /// A writable file is locked exclusively, a read-only one shared, so
    /// that any number of readers (in any process) exclude every writer.
    fn claim(vec: Box<Vector>, key: &[u8], path: &Path, find: Finder) -> Result<Opened> {
        let id = identity(vec.file()).map_err(|e| Error::Broken {
            key: shown(key),
            path: path.display().to_string(),
            cause: e.to_string(),
        })?;
        let token = TOKENS.fetch_add(1, Ordering::Relaxed);
        let sync = Synced::new(vec.file().clone());
        if let Some(other) = bound(|map| map.get(&id).map(|h| Seen::of(id, h))) {
            if verify(&other, find).is_some() {
                return Err(Error::AlreadyBound {
                    path: path.display().to_string(),
                    key: shown(&other.key),
                }
                .into());
            }
        }
        bound(|map| {
            if let Some(holder) = map.get(&id) {
                return Err(Error::AlreadyBound {
                    path: path.display().to_string(),
                    key: shown(&holder.key),
                });
            }
            let fd = vec.file().as_raw_fd();
            let lock = if vec.writable() { libc::LOCK_EX } else { libc::LOCK_SH };
            // SAFETY: a valid open fd.
            if unsafe { libc::flock(fd, lock | libc::LOCK_NB) } != 0 {
                return Err(Error::Locked {
                    path: path.display().to_string(),
                });
            }
            map.insert(
                id,
                Holder {
                    key: key.to_vec(),
                    sync: sync.clone(),
                    writable: vec.writable(),
                    token,
                },
            );
            Ok(())
        })?;
        counters::open_delta(1, vec.file_bytes() as i64, vec.reserved_bytes() as i64);
        Ok(Opened {
            vec,
            id,
            token,
            sync,
            held: false,
            look_at: Instant::now() + LOOK,
            view: None,
        })
    }

    /// Writes the vector's tail to the file; the byte counters and the
    /// flush to disk follow.
    fn settle(&mut self) -> std::io::Result<()> {
        if self.vec.tail().is_empty() {
            self.held = false;
            return Ok(());
        }
        let before = sizes(&*self.vec);
        let out = if fault::on(Fault::Settle) {
            Err(fault::io_error())
        } else {
            self.vec.settle()
        };
        counters::count_held_write(out.is_ok());
        count_growth(before, sizes(&*self.vec));
        if out.is_ok() {
            self.held = false;
            fsync::wrote(&self.sync);
        }
        out
    }
}

impl Opened {
    /// A read-only file's length as the file has it now (see
    /// `MappedVec::follow`); the byte counters follow it.
    fn follow(&mut self) -> std::io::Result<usize> {
        let before = sizes(&*self.vec);
        let followed = self.vec.follow();
        count_growth(before, sizes(&*self.vec));
        followed
    }
}

/// A vector's file and reserved bytes, for the byte counters.
fn sizes(v: &Vector) -> (i64, i64) {
    (v.file_bytes() as i64, v.reserved_bytes() as i64)
}

/// Counts how much a file and its reservation grew (or shrank).
fn count_growth(before: (i64, i64), after: (i64, i64)) {
    counters::open_delta(0, after.0 - before.0, after.1 - before.1);
}

impl Drop for Opened {
    fn drop(&mut self) {
        if let Err(e) = self.settle() {
            crate::ffi::log("warning", &format!("appended values lost: {e}"));
        }
        bound(|map| {
            // A flush may have released this claim already, and the file may
            // since be bound again, by another claim.
            if map.get(&self.id).is_some_and(|h| h.token == self.token) {
                unlock(self.vec.file());
                map.remove(&self.id);
            }
        });
        counters::open_delta(-1, -(self.vec.file_bytes() as i64), -(self.vec.reserved_bytes() as i64));
    }
}

enum State {
    Open(Opened),
    /// The file could not be opened when the key was loaded, or could not
    /// be used since.
    Broken(Broken),
}

impl State {
    /// A broken state for the file at `rel`, counted (`INFO mmap`, and the
    /// paths `MMAP.UNBOUND` leaves out); it tries the file again after `RETRY`.
    fn broken(rel: &Path, cause: String, stale: Option<Stale>) -> State {
        counters::broken_delta(1);
        broken_paths(|m| *m.entry(rel.to_path_buf()).or_default() += 1);
        State::Broken(Broken {
            cause,
            retry_at: Instant::now() + RETRY,
            stale,
        })
    }
}

/// Why a key has no file open, and when to try again.
struct Broken {
    cause: String,
    retry_at: Instant,
    /// A file refused for its length in a full sync: taken only once its
    /// length is the master's, or once it is another file.
    stale: Option<Stale>,
}

/// A file a full sync refused: the length the master's had, and the file
/// as it was (device, inode, size, modification time).
pub struct Stale {
    expect: usize,
    file: (u64, u64, u64, i64, i64),
}

impl Stale {
    pub fn of(expect: usize, file: &File) -> Option<Stale> {
        Some(Stale {
            expect,
            file: fingerprint(file)?,
        })
    }
}

fn fingerprint(file: &File) -> Option<(u64, u64, u64, i64, i64)> {
    let m = file.metadata().ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// How often a broken key tries its file again.
const RETRY: Duration = Duration::from_secs(1);

/// How often a read-only key looks whether its path names another file
/// (one replaced by rename, the way careful programs save).
const LOOK: Duration = Duration::from_millis(250);

/// How many times a read of a read-only key is tried while its file keeps
/// changing under it.
const TRIES: usize = 4;

/// What to bind: a file (relative to `mmap.dir`, normalised), its kind
/// and mode, and the key, in database `db`, that binds it.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub rel: &'a Path,
    pub spec: Spec,
    pub key: &'a [u8],
    pub db: i32,
}

impl Target<'_> {
    fn path(&self) -> String {
        self.rel.display().to_string()
    }
}

/// Writes an open binding's held tail, naming its file on failure. Cold:
/// only the first write after held appends takes it.
#[cold]
#[inline(never)]
fn settle_opened(o: &mut Opened, path: &Path) -> Result<()> {
    o.settle().map_err(|cause| {
        Error::Write {
            path: path.display().to_string(),
            cause,
        }
        .into()
    })
}

pub struct Binding {
    /// Relative to `mmap.dir`, normalised.
    path: PathBuf,
    spec: Spec,
    state: State,
}

impl Binding {
    /// Opens and claims the target's file; says whether it created the file.
    pub fn open(sandbox: &Sandbox, t: &Target, create: bool, find: Finder) -> Result<(Binding, bool)> {
        let (opened, created) = open_file(sandbox, t, create, find)?;
        let b = Binding {
            path: t.rel.to_path_buf(),
            spec: t.spec,
            state: State::Open(opened),
        };
        Ok((b, created))
    }

    /// A binding whose file cannot be used now; every command on it says
    /// why, and tries the file again (see `heal`).
    pub fn broken(rel: &Path, spec: Spec, cause: String) -> Binding {
        Binding::stale(rel, spec, cause, None)
    }

    /// A broken binding whose file was refused as stale.
    pub fn stale(rel: &Path, spec: Spec, cause: String, stale: Option<Stale>) -> Binding {
        Binding {
            path: rel.to_path_buf(),
            spec,
            state: State::broken(rel, cause, stale),
        }
    }

    /// Replaces the file at `rel` with new content and binds it for `key`.
    /// `fill` writes the content into a new file, which is claimed and then
    /// renamed over `rel`: a failure at any step leaves `rel` as it was.
    /// Refused while another key holds `rel` or another process has it
    /// locked; the key being replaced (`RESTORE ... REPLACE` of a key onto
    /// its own file) may hold it: `find` tells whether the holder is the
    /// key of the target's name in the target's database now.
    pub fn replace(
        sandbox: &Sandbox,
        t: &Target,
        find: Finder,
        fill: impl FnOnce(&File) -> std::result::Result<(), String>,
    ) -> Result<Binding> {
        let path = || t.path();
        let limits = admit()?;
        // Read-only is enough to tell the file and take its lock; the
        // replacement is a new file, renamed over it.
        match sandbox.open(t.rel, false, false) {
            Ok((old, _)) => {
                let id = identity(&old).map_err(|e| Error::Path {
                    path: path(),
                    cause: e.into(),
                })?;
                let holder = bound(|m| m.get(&id).map(|h| Seen::of(id, h)));
                let held_at = holder.as_ref().and_then(|h| verify(h, find).map(|db| (h, db)));
                match held_at {
                    Some((h, db)) if h.key == t.key && db == t.db => {}
                    Some((h, _)) => {
                        return Err(Error::AlreadyBound {
                            path: path(),
                            key: shown(&h.key),
                        }
                        .into())
                    }
                    // SAFETY: a live descriptor, closed below with its lock.
                    None if unsafe { libc::flock(old.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 => {
                        return Err(Error::Locked { path: path() }.into())
                    }
                    None => unlock(&old),
                }
            }
            Err(PathError::NotFound) => {}
            Err(cause) => return Err(Error::Path { path: path(), cause }.into()),
        }
        let (staged, file) = sandbox
            .stage(t.rel)
            .map_err(|cause| Error::Path { path: path(), cause })?;
        fill(&file).map_err(|cause| Error::Content { path: path(), cause })?;
        if fsync::mode() != Mode::No {
            file.sync_data().map_err(|cause| Error::Write { path: path(), cause })?;
        }
        let file = if t.spec.readonly {
            // A new open file description, read-only, of the same file.
            File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))
                .map_err(|cause| Error::Write { path: path(), cause })?
        } else {
            file
        };
        // The old claim, if any, was checked above; the staged file is new.
        let opened = map_and_claim(file, &limits, t, &trusted)?;
        staged.commit().map_err(|cause| Error::Write { path: path(), cause })?;
        Ok(Binding {
            path: t.rel.to_path_buf(),
            spec: t.spec,
            state: State::Open(opened),
        })
    }

    /// Tries a broken key's file again, at most once per `RETRY`: a file
    /// put back is taken without `MMAP` (which a replica refuses). A file
    /// refused as stale is taken only once it has the expected length or
    /// has been replaced. Says whether the key is bound now.
    pub fn heal(&mut self, sandbox: &Sandbox, key: &[u8], db: i32, find: Finder) -> bool {
        let State::Broken(b) = &mut self.state else {
            return true;
        };
        let now = Instant::now();
        if now < b.retry_at {
            return false;
        }
        b.retry_at = now + RETRY;
        let t = Target {
            rel: &self.path,
            spec: self.spec,
            key,
            db,
        };
        let opened = match open_file(sandbox, &t, false, find) {
            Ok((o, _)) => o,
            Err(e) => {
                if b.stale.is_none() {
                    b.cause = e.cause();
                }
                return false;
            }
        };
        if let Some(s) = &b.stale {
            if opened.vec.len() != s.expect && fingerprint(opened.vec.file()) == Some(s.file) {
                return false;
            }
        }
        self.state = State::Open(opened);
        counters::broken_delta(-1);
        forget_broken(&self.path);
        true
    }

    /// Whether the key's file could not be opened.
    pub fn is_broken(&self) -> bool {
        matches!(self.state, State::Broken(_))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn spec(&self) -> Spec {
        self.spec
    }

    /// Why the key's file cannot be used, if it cannot.
    pub fn broken_cause(&self) -> Option<&str> {
        match &self.state {
            State::Open(_) => None,
            State::Broken(b) => Some(&b.cause),
        }
    }

    /// Records the key's new name after RENAME, so that the value is
    /// looked up by it and errors name the key that holds the file now.
    pub fn renamed(&self, key: &[u8]) {
        if let State::Open(o) = &self.state {
            bound(|map| {
                if let Some(h) = map.get_mut(&o.id).filter(|h| h.token == o.token) {
                    h.key = key.to_vec();
                }
            });
        }
    }

    /// The commands that rebuild this binding on replay. For an open file:
    /// `MMAP .. CREATE`, `VRESIZE 0` and the content as batches of `VADD`.
    /// For a broken one, a plain `MMAP`, so the key stays broken until the
    /// file is back.
    /// A read-only key's file is not the server's to rebuild: a plain
    /// `MMAP ... READONLY`, like a broken key's.
    pub fn rebuild(&self, mut emit: impl FnMut(Logged)) -> std::io::Result<()> {
        let (rel, spec) = (&self.path, self.spec);
        let o = match &self.state {
            State::Open(o) if !spec.readonly => o,
            _ => {
                emit(Logged::Mmap {
                    rel,
                    spec,
                    create: false,
                });
                return Ok(());
            }
        };
        emit(Logged::Mmap {
            rel,
            spec,
            create: true,
        });
        emit(Logged::Resize(0));
        chunks(o, |bytes| emit(Logged::Add { kind: spec.kind, bytes }))
    }

    /// Hands the file's bytes to `f` in pieces of at most `piece` bytes,
    /// read with `pread` (see `chunks`). Nothing for a broken binding.
    pub fn content(&self, piece: usize, f: impl FnMut(&[u8])) -> std::io::Result<()> {
        match &self.state {
            State::Open(o) => read_pieces(o, piece / self.spec.kind.size(), f),
            State::Broken(_) => Ok(()),
        }
    }

    /// Feeds what `DEBUG DIGEST-VALUE` covers to `add` in fixed-size pieces:
    /// the file's bytes, or for a broken binding its path.
    pub fn digest(&self, mut add: impl FnMut(&[u8])) -> std::io::Result<()> {
        match &self.state {
            State::Open(o) => chunks(o, add),
            State::Broken(_) => {
                add(self.path.as_os_str().as_encoded_bytes());
                Ok(())
            }
        }
    }

    /// Heap this binding owns: itself, its path, and for an open file its
    /// registry entry and flush state. The file's pages are not Redis memory.
    pub fn heap_bytes(&self) -> usize {
        let own = std::mem::size_of::<Binding>() + self.path.as_os_str().len();
        match &self.state {
            State::Open(o) => {
                let key = bound(|map| map.get(&o.id).map_or(0, |h| h.key.capacity()));
                own + std::mem::size_of::<((u64, u64), Holder)>() + key + std::mem::size_of::<Synced>()
            }
            State::Broken(b) => own + b.cause.capacity(),
        }
    }

    /// The token of this binding's claim on its file, if the file is open.
    pub fn token(&self) -> Option<u64> {
        match &self.state {
            State::Open(o) => Some(o.token),
            State::Broken(_) => None,
        }
    }

    /// The vector, if the file is open.
    pub fn opened(&self) -> Option<&Vector> {
        match &self.state {
            State::Open(o) => Some(&*o.vec),
            State::Broken(_) => None,
        }
    }

    /// The vector, its tail written out, or the error that says why the
    /// file cannot be used. The key's name is fetched only for that error:
    /// reads skip the call.
    pub fn vector<'k>(&mut self, key: impl FnOnce() -> &'k [u8]) -> Result<&Vector> {
        self.settle_tail()?;
        match &self.state {
            State::Open(o) => Ok(&*o.vec),
            State::Broken(b) => Err(Binding::not_open(&self.path, b, key())),
        }
    }

    /// What `f` reads through the mapping, once the reads are known to be
    /// sound: for a writable key, that no fault was taken meanwhile (the
    /// key is broken if one was, and the read fails); for a read-only key,
    /// also that every value read was in the file as it is now (see
    /// `read_following`). The key's name is fetched only for an error.
    #[inline(always)]
    pub fn read<'k, R>(&mut self, key: impl Fn() -> &'k [u8] + Copy, mut f: impl FnMut(&Vector) -> R) -> Result<R> {
        if self.spec.readonly {
            return self.read_following(&key, &mut f);
        }
        let r = f(self.vector(key)?);
        if sigbus::pending() {
            if let Some(e) = self.fault_error(key(), false) {
                return Err(e);
            }
        }
        Ok(r)
    }

    /// `read` of a read-only key, which follows its file: before the read
    /// the length is taken from the file, and after it the file must still
    /// be as long, or the read is made again (values past a new end would
    /// be zeros). A fault (the file shrank past a whole page) maps the file
    /// afresh and reads again.
    #[inline(never)]
    fn read_following<'k, R>(&mut self, key: &dyn Fn() -> &'k [u8], f: &mut dyn FnMut(&Vector) -> R) -> Result<R> {
        for _ in 0..TRIES {
            let o = match &mut self.state {
                State::Open(o) => o,
                State::Broken(b) => return Err(Binding::not_open(&self.path, b, key())),
            };
            let len = o.follow().map_err(|cause| Error::Read {
                key: shown(key()),
                path: self.path.display().to_string(),
                cause: cause.to_string(),
            })?;
            let r = f(&*o.vec);
            let size = o.vec.file().metadata().map_or(0, |m| m.len() as usize);
            if sigbus::pending() {
                if let Some(at) = o.vec.fault() {
                    // Inside the file, the disk failed: the key breaks.
                    // Past its end, the file was cut: the next try follows.
                    if size > at {
                        if let Some(e) = self.fault_error(key(), false) {
                            return Err(e);
                        }
                    }
                    continue;
                }
            }
            if size / self.spec.kind.size() >= len {
                return Ok(r);
            }
        }
        Err(Error::Read {
            key: shown(key()),
            path: self.path.display().to_string(),
            cause: "the file kept changing during the read; try again".into(),
        }
        .into())
    }

    /// After a write, or a read whose fault may be this key's: if the
    /// mapping took a fault, the key is broken with its cause, and this is
    /// the command's error. A write's error says from which index values
    /// may have been lost: the faulting page's first (its stores went to
    /// the zero page).
    #[cold]
    #[inline(never)]
    fn fault_error(&mut self, key: &[u8], writing: bool) -> Option<Box<Error>> {
        let at = self.opened()?.fault()?;
        Some(self.faulted(key, at, writing))
    }

    /// `fault_error` of a fault known to be at offset `at`.
    #[cold]
    #[inline(never)]
    fn faulted(&mut self, key: &[u8], at: usize, writing: bool) -> Box<Error> {
        let State::Open(o) = &self.state else {
            unreachable!("only an open file faults");
        };
        let cause = fault_cause(o, at, writing, &self.path.display().to_string());
        let lost = match writing {
            true => format!(
                "; values from index {} on may not have been written, and the write was not propagated",
                sigbus::page_start(at) / self.spec.kind.size()
            ),
            false => String::new(),
        };
        self.fail_broken(key, "faulted", cause, lost)
    }

    /// Leaves the key broken with `cause` (its open file, claim and
    /// mapping go), logged as `what` happened to the file, and returns the
    /// error of the command that found it so; `lost` says what the command
    /// may have lost. The key heals as any broken key does.
    #[cold]
    #[inline(never)]
    fn fail_broken(&mut self, key: &[u8], what: &str, cause: String, lost: String) -> Box<Error> {
        let path = self.path.display().to_string();
        crate::ffi::log(
            "warning",
            &format!(
                "key '{}': file '{path}' {what}: {cause}{lost}; the key is broken until the file can be used",
                shown(key)
            ),
        );
        self.state = State::broken(&self.path, cause.clone(), None);
        Error::Fault {
            key: shown(key),
            path,
            cause,
            lost,
        }
        .into()
    }

    /// For a read-only key (the caller tells): if its path now names another
    /// file (replaced by rename), binds that file, at most once per `LOOK`;
    /// says whether it did. A path that names no file keeps the key on the
    /// file it has.
    pub fn follow_path(&mut self, sandbox: &Sandbox, key: &[u8], db: i32, find: Finder) -> Result<bool> {
        let State::Open(o) = &mut self.state else {
            return Ok(false);
        };
        let now = Instant::now();
        if now < o.look_at {
            return Ok(false);
        }
        o.look_at = now + LOOK;
        let named = sandbox
            .open(&self.path, false, false)
            .ok()
            .and_then(|(f, _)| identity(&f).ok());
        if named.is_none_or(|id| id == o.id) {
            return Ok(false);
        }
        let t = Target {
            rel: &self.path,
            spec: self.spec,
            key,
            db,
        };
        let (opened, _) = open_file(sandbox, &t, false, find)?;
        self.state = State::Open(opened);
        Ok(true)
    }

    /// A view of the file for the worker threads (see `core::view`), and
    /// the key's length now: a writable key's tail is written first, a
    /// read-only key takes its file's length. The view is kept for the next
    /// read, unless it faulted or the file outgrew it.
    pub fn view(&mut self, key: Name) -> Result<(Arc<View>, usize)> {
        let read_error = |path: &Path, cause: std::io::Error| -> Box<Error> {
            Box::new(Error::Read {
                key: shown(key()),
                path: path.display().to_string(),
                cause: cause.to_string(),
            })
        };
        if let (true, State::Open(o)) = (self.spec.readonly, &mut self.state) {
            o.follow().map_err(|e| read_error(&self.path, e))?;
        }
        self.vector(key)?;
        let State::Open(o) = &mut self.state else {
            unreachable!("`vector` succeeds only for an open file");
        };
        let need = o.vec.file_bytes();
        if !o.view.as_ref().is_some_and(|v| v.usable() && v.len() >= need) {
            let v = View::map(o.vec.file(), o.vec.reserved_bytes().max(need)).map_err(|e| read_error(&self.path, e))?;
            o.view = Some(Arc::new(v));
        }
        Ok((o.view.clone().expect("made above"), o.vec.len()))
    }

    /// Before a change that may cut the file: a worker reading the view
    /// now reads again on the main thread, and the next read makes a new
    /// view. Marked before the cut, so that a worker that read a value the
    /// cut zeroed finds the mark after its read.
    fn retire_view(&mut self) {
        if let State::Open(o) = &mut self.state {
            if let Some(v) = o.view.take() {
                v.retire();
            }
        }
    }

    /// Bytes of the file in memory (see `core::view::resident`); `None`
    /// for a broken key.
    pub fn resident(&self) -> Option<std::io::Result<usize>> {
        self.opened().map(|v| v.resident())
    }

    /// Writes the tail, if any, to the file.
    #[inline]
    pub fn settle_tail(&mut self) -> Result<()> {
        match &mut self.state {
            State::Open(o) if o.held => settle_opened(o, &self.path),
            _ => Ok(()),
        }
    }

    /// The error of a command on a binding whose file is not open. Takes
    /// the path apart from the binding, so that a write holding its state
    /// can call it.
    #[cold]
    #[inline(never)]
    fn not_open(path: &Path, b: &Broken, key: &[u8]) -> Box<Error> {
        Error::Broken {
            key: shown(key),
            path: path.display().to_string(),
            cause: b.cause.clone(),
        }
        .into()
    }

    /// `MMAP` on a key that is already bound: the count if the target's
    /// file is this binding's and its kind and mode are too (re-opening the
    /// file if it was broken), an error otherwise. Returns whether the file
    /// was re-opened.
    pub fn rebind(&mut self, sandbox: &Sandbox, t: &Target, find: Finder) -> Result<(usize, bool)> {
        if t.spec != self.spec {
            return Err(Error::OtherSpec {
                key: shown(t.key),
                bound: self.spec,
                asked: t.spec,
            }
            .into());
        }
        let same_path = t.rel == self.path;
        match &self.state {
            State::Open(o) if same_path => return Ok((o.vec.len(), false)),
            State::Open(o) => {
                // Another name for the same file (a hard link) is the same binding.
                let same = sandbox
                    .open(t.rel, false, false)
                    .ok()
                    .and_then(|(f, _)| identity(&f).ok())
                    == Some(o.id);
                if same {
                    return Ok((o.vec.len(), false));
                }
            }
            State::Broken(_) if same_path => {
                // Never create: an absent file must not come back empty.
                let (opened, _) = open_file(sandbox, t, false, find)?;
                let n = opened.vec.len();
                self.state = State::Open(opened);
                counters::broken_delta(-1);
                forget_broken(&self.path);
                return Ok((n, true));
            }
            State::Broken(_) => {}
        }
        Err(Error::OtherFile {
            key: shown(t.key),
            bound: self.path.display().to_string(),
            asked: t.path(),
        }
        .into())
    }

    /// The one place every write to a file passes: `f` changes all it
    /// was asked to or, on error, nothing; the byte counters follow.
    /// `texts` are the values the command gave, named in the error when
    /// one is not a value of the kind.
    fn write<R>(
        &mut self,
        key: Name,
        texts: Option<Texts>,
        hold: bool,
        f: impl FnOnce(&mut Vector) -> std::result::Result<R, Rejected>,
    ) -> Result<R> {
        if self.spec.readonly {
            return Err(Error::ReadOnly(shown(key())).into());
        }
        let addr = self as *mut Binding as usize;
        let opened = match &mut self.state {
            State::Open(o) => o,
            State::Broken(b) => return Err(Binding::not_open(&self.path, b, key())),
        };
        if opened.held && !hold {
            settle_opened(opened, &self.path)?;
        }
        let vec = &mut *opened.vec;
        // Without `hold` the tail was written above and no write adds one.
        // `held` set means the binding is in HELD already (only settle_all
        // takes it out, clearing `held` first).
        let was_held = hold && opened.held;
        let out = f(vec);
        if sigbus::pending() {
            if let Some(at) = vec.fault() {
                // A store landed on a zero page, not in the file.
                return Err(self.faulted(key(), at, true));
            }
        }
        let out = match out {
            // Another program cut the file: nothing was written, and the
            // key stops serving it.
            Err(Rejected::Io(cause)) if is_shrank(&cause) => {
                return Err(self.fail_broken(key(), "changed", cause.to_string(), "; nothing was written".into()))
            }
            out => out,
        };
        let out = out.map_err(|r| -> Box<Error> {
            Box::new(match r {
                Rejected::Value { at, why } => Error::BadValue {
                    value: shown(texts.map_or(&[][..], |t| t(at))),
                    kind: vec.kind(),
                    why,
                },
                Rejected::TooLong { len, max } => Error::TooLong { len, max },
                Rejected::Ragged { bytes } => Error::Ragged {
                    bytes,
                    kind: vec.kind(),
                },
                Rejected::Outside { at, n, len } => Error::Outside { at, n, len },
                Rejected::Io(cause) => Error::Write {
                    path: self.path.display().to_string(),
                    cause,
                },
            })
        });
        if !hold || vec.tail().is_empty() {
            if out.is_ok() {
                fsync::wrote(&opened.sync);
            }
        } else {
            if !was_held {
                // Held values reach the disk queue when `settle` writes them.
                held(|set| set.insert(addr));
            }
            opened.held = true;
        }
        out
    }

    /// `write`, for a change that may resize the file: the byte counters
    /// follow. `MMAP.SET` never resizes, and skips them.
    fn write_sized<R>(
        &mut self,
        key: Name,
        texts: Option<Texts>,
        hold: bool,
        f: impl FnOnce(&mut Vector) -> std::result::Result<R, Rejected>,
    ) -> Result<R> {
        // Held appends are written (and counted, by `settle`) before the
        // sizes are taken: counted again here, a POP or CLEAR that takes
        // them back in the same pass would leave them counted for good.
        if !hold {
            self.settle_tail()?;
        }
        let now = |b: &Binding| b.opened().map_or((0, 0), sizes);
        let before = now(self);
        let out = self.write(key, texts, hold, f);
        // A write that broke the key (the file was cut under it) dropped
        // the open file, and its sizes with it.
        if !self.is_broken() {
            count_growth(before, now(self));
        }
        out
    }

    /// Writes each value whose index is in range; returns how many were,
    /// and the vector's length. A value that is not one of the kind's
    /// changes nothing.
    pub fn set(&mut self, key: Name, indices: &[i64], texts: Texts) -> Result<(usize, usize)> {
        self.write(key, Some(texts), false, |v| Ok((v.set(indices, texts)?, v.len())))
    }

    /// One pair, the common write: whether its index was in range.
    pub fn set_one(&mut self, key: Name, i: i64, text: &[u8]) -> Result<bool> {
        // `write` refuses a read-only binding, whose vector is read-only.
        self.write(key, Some(&|_| text), false, |v| {
            v.set_one(i, text).map_err(|why| Rejected::Value { at: 0, why })
        })
    }

    /// Appends `n` values, all or none, with `hold` to the vector's tail
    /// (see `settle_all`); returns the length before.
    pub fn append(&mut self, key: Name, n: usize, texts: Texts, hold: bool) -> Result<usize> {
        self.write_sized(key, Some(texts), hold, |v| {
            let before = v.len();
            v.extend(n, texts, hold).map(|()| before)
        })
    }

    /// Writes raw elements from index `at`; returns how many.
    pub fn write_bytes(&mut self, key: Name, at: i64, bytes: &[u8]) -> Result<usize> {
        self.write(key, None, false, |v| v.write_bytes(at, bytes))
    }

    /// Appends raw elements, with `hold` as for `append`; returns the
    /// length before and after.
    pub fn append_bytes(&mut self, key: Name, bytes: &[u8], hold: bool) -> Result<(usize, usize)> {
        self.write_sized(key, None, hold, |v| {
            let before = v.len();
            v.append_bytes(bytes, hold).map(|()| (before, v.len()))
        })
    }

    /// The last value, removed, and the length after.
    pub fn pop(&mut self, key: Name) -> Result<Option<(Value, usize)>> {
        self.retire_view();
        let out = self.write_sized(key, None, false, |v| Ok(v.pop()?.map(|x| (x, v.len()))));
        // A POP only reads through the mapping: a fault loses no write.
        out.map_err(|mut e| {
            if let Error::Fault { lost, .. } = &mut *e {
                *lost = "; nothing was removed".into();
            }
            e
        })
    }

    /// Cuts or zero-extends the file to `len` values; returns how many it held.
    pub fn resize(&mut self, key: Name, len: usize) -> Result<usize> {
        if self.opened().is_some_and(|v| len < v.len()) {
            self.retire_view();
        }
        self.write_sized(key, None, false, |v| {
            let n = v.len();
            v.resize(len).map(|()| n)
        })
    }

    /// Truncates the file to nothing; returns how many values it held.
    pub fn clear(&mut self, key: Name) -> Result<usize> {
        self.retire_view();
        self.write_sized(key, None, false, |v| {
            let n = v.len();
            Ok(v.truncate(0).map(|()| n)?)
        })
    }
}

impl Drop for Binding {
    fn drop(&mut self) {
        // Out of the set before the memory goes; the tail itself is written
        // when the vector is dropped.
        let addr = self as *mut Binding as usize;
        held(|set| set.remove(&addr));
        if let State::Broken(_) = self.state {
            counters::broken_delta(-1);
            forget_broken(&self.path);
        }
    }
}

/// Refuses a new binding once the key budget is used up, before anything
/// is opened or created; returns the limits it was measured against.
fn admit() -> Result<Limits> {
    let in_use = counters::descriptors();
    let mut limits = Limits::now();
    if limits.refuse(in_use).is_some() {
        // An operator may have raised vm.max_map_count since it was last read.
        limits::refresh_map_count();
        limits = Limits::now();
    }
    match limits.refuse(in_use) {
        None => Ok(limits),
        Some(why) => {
            counters::count_refused();
            Err(Error::TooManyKeys(why).into())
        }
    }
}

/// Hands the content's bytes to `f` in pieces of `CHUNK` values, read with
/// `pread` (in a fork child, the parent may shrink the file meanwhile; a
/// mapping would fault) up to the length the vector had when this process
/// last saw it.
fn chunks(o: &Opened, f: impl FnMut(&[u8])) -> std::io::Result<()> {
    read_pieces(o, CHUNK, f)
}

/// `chunks` with pieces of `per` values; every piece holds whole values.
/// The vector's tail (appends not yet in the file) is read as if it
/// followed the file's bytes, so the pieces are the same either way: a fork
/// child (BGSAVE, an AOF rewrite) must never write the tail out itself.
fn read_pieces(o: &Opened, per: usize, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
    let size = o.vec.kind().size();
    let (in_file, tail) = (o.vec.file_bytes(), o.vec.tail());
    let total = in_file + tail.len();
    let mut buf = vec![0u8; per.max(1).min(o.vec.len()) * size];
    let mut at = 0;
    while at < total {
        if fault::on(Fault::Read) {
            return Err(fault::io_error());
        }
        let want = buf.len().min(total - at);
        let from_file = want.min(in_file.saturating_sub(at));
        let read = read_bytes_at(o.vec.file(), at as u64, &mut buf[..from_file])?;
        let got = if read < from_file {
            read / size * size // the file was cut meanwhile, by another process
        } else {
            if want > from_file {
                // The piece reaches past the file's end, into the tail.
                let t = at + from_file - in_file;
                buf[from_file..want].copy_from_slice(&tail[t..t + want - from_file]);
            }
            want
        };
        if got == 0 {
            break;
        }
        f(&buf[..got]);
        at += got;
    }
    Ok(())
}

/// Moves an open file's descriptor above the clients' range, maps it and
/// claims it for the target's key.
fn map_and_claim(file: File, limits: &Limits, t: &Target, find: Finder) -> Result<Opened> {
    let path = || t.path();
    let file = limits::lift(file, limits.floor()).map_err(|e| match e.raw_os_error() {
        Some(libc::EMFILE) => {
            counters::count_refused();
            Error::TooManyKeys(limits.no_descriptor(counters::descriptors()))
        }
        _ => Error::Open {
            path: path(),
            cause: e.into(),
        },
    })?;
    let vec = column::open(t.spec.kind, file, !t.spec.readonly).map_err(|cause| Error::Open { path: path(), cause })?;
    Opened::claim(vec, t.key, t.rel, find)
}

/// Opens, maps and claims a file; says whether it was created. A file it
/// created is removed again if the binding fails after all: a refused
/// `MMAP` leaves nothing behind.
fn open_file(sandbox: &Sandbox, t: &Target, create: bool, find: Finder) -> Result<(Opened, bool)> {
    let limits = admit()?;
    let (file, created) = sandbox
        .open(t.rel, create, !t.spec.readonly)
        .map_err(|cause| Error::Path { path: t.path(), cause })?;
    match map_and_claim(file, &limits, t, find) {
        Ok(opened) => Ok((opened, created)),
        Err(e) => {
            if created {
                sandbox.remove(t.rel);
            }
            Err(e)
        }
    }
}

/// Why a mapping faulted at offset `at`, as far as can be told: a page wholly
/// past the end of the file (another program cut it), a store into a hole
/// that found no disk space, or a failed read of the disk.
fn fault_cause(o: &Opened, at: usize, writing: bool, path: &str) -> String {
    let fd = o.vec.file().as_raw_fd();
    match o.vec.file().metadata() {
        Ok(m) if (m.len() as usize) <= at => format!("the file shrank to {} bytes under the key", m.len()),
        Err(e) => format!("I/O error on '{path}': {e}"),
        // A hole needs a page even to be read, on tmpfs.
        Ok(_) if no_space(fd) => "no space left on device".into(),
        Ok(_) if writing => format!("I/O error writing '{path}'"),
        Ok(_) => format!("I/O error reading '{path}'"),
    }
}

/// Whether the file system of `fd` has no room for another page.
fn no_space(fd: i32) -> bool {
    // SAFETY: a zeroed statvfs is a valid value for the call to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a live descriptor and a place for the answer.
    // A file system that reports no blocks at all (many FUSE ones) says
    // nothing about its space.
    unsafe {
        libc::fstatvfs(fd, &mut st) == 0 && st.f_blocks > 0 && (st.f_bavail as u64) * (st.f_frsize as u64) < 2 * 4096
    }
}
