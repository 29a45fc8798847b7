//! Opens files only beneath one directory. Knows nothing of Redis.
//!
//! A user path is first made relative to the root and normalised by hand
//! (`.` dropped, `..` folded into its parent, escaping the root refused).
//! Because no symlink is ever followed, that lexical view is also the real
//! one. The kernel then enforces it again: `openat2` with `RESOLVE_BENEATH` and
//! `RESOLVE_NO_SYMLINKS`, or, where the kernel lacks it, a walk that opens one
//! component at a time with `O_NOFOLLOW`.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::core::vector::kind_name;

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path contains a NUL byte")]
    Nul,
    #[error("path lies outside mmap.dir '{0}'")]
    Outside(String),
    #[error("path is a symlink; only regular files can be mapped")]
    Symlink,
    #[error("path passes through the symlinked directory '{0}'")]
    SymlinkedDir(String),
    #[error("path is not a regular file (it is {0})")]
    NotRegular(&'static str),
    #[error("no such file or directory")]
    NotFound,
    #[error("{0}")]
    Io(#[from] io::Error),
}

pub struct Sandbox {
    root: PathBuf,
    dir: OwnedFd,
}

impl Sandbox {
    /// Opens the root directory; symlinks in `root` itself are resolved once, here.
    pub fn new(root: &Path) -> io::Result<Sandbox> {
        let root = root.canonicalize()?;
        let c = cstring(&root)?;
        // SAFETY: c is a valid NUL-terminated path; the returned fd is checked.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Sandbox { root, dir })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The normalised path of `path` relative to the root, or why there is none.
    pub fn relative(&self, path: &[u8]) -> Result<PathBuf, PathError> {
        if path.is_empty() {
            return Err(PathError::Empty);
        }
        if path.contains(&0) {
            return Err(PathError::Nul);
        }
        // `sub/`, `sub/.` and `sub/..` name directories; folding them to a
        // file name would create a file where the user named a directory.
        let last = path.rsplit(|&c| c == b'/').next().unwrap_or_default();
        if last.is_empty() || last == b"." || last == b".." {
            return Err(PathError::NotRegular("a directory"));
        }
        let path = Path::new(std::ffi::OsStr::from_bytes(path));
        let outside = || PathError::Outside(self.root.display().to_string());
        let rest = if path.is_absolute() {
            normalise(path).and_then(|p| p.strip_prefix(&self.root).ok().map(Path::to_path_buf))
        } else {
            normalise(path)
        };
        match rest {
            Some(rel) if rel.as_os_str().is_empty() => Err(PathError::NotRegular("a directory")),
            Some(rel) => Ok(rel),
            None => Err(outside()),
        }
    }

    /// Opens `rel` (from [`Sandbox::relative`]) for reading, and writing if
    /// `writable` (a read-only open needs only read permission on the file),
    /// creating an empty file if `create` and it is absent. Says whether it
    /// created the file.
    pub fn open(&self, rel: &Path, create: bool, writable: bool) -> Result<(File, bool), PathError> {
        let access = if writable { libc::O_RDWR } else { libc::O_RDONLY };
        match self.open_with(rel, access) {
            Err(PathError::NotFound) if create => match self.open_with(rel, access | libc::O_CREAT | libc::O_EXCL) {
                // Created by someone else in between: open theirs.
                Err(PathError::Io(e)) if e.raw_os_error() == Some(libc::EEXIST) => {
                    Ok((self.open_with(rel, access)?, false))
                }
                other => Ok((other?, true)),
            },
            other => Ok((other?, false)),
        }
    }

    /// Removes a file this sandbox just created, when what it was created
    /// for failed: a refused command leaves nothing behind.
    pub fn remove(&self, rel: &Path) {
        if let Ok(c) = cstring(rel) {
            // SAFETY: a valid dir fd and NUL-terminated path.
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), c.as_ptr(), 0) };
        }
    }

    /// Starts replacing `rel` with a new file: creates it, hidden, in `rel`'s
    /// directory (making missing directories beneath the root, never through
    /// a symlink), for `Staged::commit` to rename over `rel` in one step.
    /// What is at `rel` now must be a regular file or nothing. Until the
    /// commit, readers of `rel` see the old file; without it, nothing changes.
    pub fn stage(&self, rel: &Path) -> Result<(Staged, File), PathError> {
        if let Some(st) = self.stat(rel) {
            match st.st_mode & libc::S_IFMT {
                libc::S_IFREG => {}
                libc::S_IFLNK => return Err(PathError::Symlink),
                _ => return Err(PathError::NotRegular(kind_name(st.st_mode))),
            }
        }
        let name = rel.file_name().ok_or(PathError::NotRegular("a directory"))?;
        let dir = self.make_dirs(rel.parent().unwrap_or(Path::new("")))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(".incoming");
        let tmp = cstring(Path::new(&tmp_name))?;
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let create = || {
            // SAFETY: an open directory fd and a NUL-terminated single name.
            let fd = unsafe { libc::openat(dir.as_raw_fd(), tmp.as_ptr(), flags, 0o644) };
            // SAFETY: a fresh descriptor, owned here.
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
        };
        let fd = match create() {
            Some(fd) => fd,
            // Left by a crash in the middle of an earlier replacement.
            None if io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST) => {
                // SAFETY: an open directory fd and a NUL-terminated name.
                unsafe { libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0) };
                create().ok_or_else(io::Error::last_os_error)?
            }
            None => return Err(io::Error::last_os_error().into()),
        };
        let staged = Staged {
            dir,
            tmp,
            name: cstring(Path::new(name))?,
            done: false,
        };
        Ok((staged, File::from(fd)))
    }

    /// Every regular file beneath the root, relative to it, with its
    /// metadata, in path order. Symlinks are not followed, and directories
    /// `skip` says yes to are not entered.
    pub fn files(&self, skip: impl Fn(&Path) -> bool) -> io::Result<Vec<(PathBuf, std::fs::Metadata)>> {
        let mut out = Vec::new();
        let mut dirs = vec![PathBuf::new()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(self.root.join(&dir))? {
                let entry = entry?;
                let rel = dir.join(entry.file_name());
                // Neither call follows a symlink.
                let kind = entry.file_type()?;
                if kind.is_dir() && !skip(&rel) {
                    dirs.push(rel);
                } else if kind.is_file() {
                    out.push((rel, entry.metadata()?));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Opens directory `rel` beneath the root, creating what is missing.
    fn make_dirs(&self, rel: &Path) -> Result<OwnedFd, PathError> {
        let mut dir = self.dir.try_clone()?;
        let mut seen = PathBuf::new();
        for part in rel.components() {
            let Component::Normal(name) = part else {
                return Err(PathError::Outside(self.root.display().to_string()));
            };
            seen.push(name);
            let c = cstring(Path::new(name))?;
            // SAFETY: an open directory fd and a NUL-terminated single name.
            unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) };
            let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
            // SAFETY: as above.
            let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) };
            if fd < 0 {
                return Err(match self.explain(&seen, io::Error::last_os_error()) {
                    PathError::Symlink => PathError::SymlinkedDir(seen.display().to_string()),
                    other => other,
                });
            }
            // SAFETY: a fresh descriptor, owned here.
            dir = unsafe { OwnedFd::from_raw_fd(fd) };
        }
        Ok(dir)
    }

    fn open_with(&self, rel: &Path, extra: i32) -> Result<File, PathError> {
        let c = cstring(rel)?;
        let flags = libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | extra;
        let fd = match openat2(&self.dir, &c, flags) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => self.walk(rel, flags),
            other => other,
        }
        .map_err(|e| self.explain(rel, e))?;
        let file = File::from(fd);
        let meta = file.metadata()?;
        if !meta.file_type().is_file() {
            return Err(PathError::NotRegular(kind_name(meta.mode())));
        }
        Ok(file)
    }

    /// The fallback for kernels without `openat2`: each directory is opened
    /// with `O_NOFOLLOW`, so no symlink anywhere on the way is followed.
    fn walk(&self, rel: &Path, flags: i32) -> io::Result<OwnedFd> {
        let parts: Vec<_> = rel.components().collect();
        let mut dir: Option<OwnedFd> = None;
        for (i, part) in parts.iter().enumerate() {
            let Component::Normal(name) = part else {
                return Err(io::Error::from_raw_os_error(libc::EXDEV));
            };
            let name = cstring(Path::new(name))?;
            let at = dir.as_ref().unwrap_or(&self.dir).as_raw_fd();
            let last = i + 1 == parts.len();
            let f = if last {
                flags
            } else {
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC
            };
            // SAFETY: `at` is an open directory fd and `name` a NUL-terminated single component.
            let fd = unsafe { libc::openat(at, name.as_ptr(), f, 0o644) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fd is fresh and owned here.
            dir = Some(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        dir.ok_or_else(|| io::Error::from_raw_os_error(libc::EISDIR))
    }

    /// Turns an open error into one that says which rule refused the path.
    fn explain(&self, rel: &Path, e: io::Error) -> PathError {
        match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::EXDEV) => match self.first_symlink(rel) {
                Some(p) if p == rel => PathError::Symlink,
                Some(p) => PathError::SymlinkedDir(p.display().to_string()),
                None if e.raw_os_error() == Some(libc::EXDEV) => PathError::Outside(self.root.display().to_string()),
                None => PathError::Io(e),
            },
            Some(libc::ENOENT) => PathError::NotFound,
            Some(libc::EISDIR) => PathError::NotRegular("a directory"),
            // Opening a socket (or a device with no driver) gives ENXIO: name what is there.
            Some(libc::ENXIO) => match self.stat(rel) {
                Some(st) if st.st_mode & libc::S_IFMT != libc::S_IFREG => PathError::NotRegular(kind_name(st.st_mode)),
                _ => PathError::Io(e),
            },
            _ => PathError::Io(e),
        }
    }

    /// `lstat` of `rel` beneath the root.
    fn stat(&self, rel: &Path) -> Option<libc::stat> {
        let c = cstring(rel).ok()?;
        // SAFETY: an all-zero stat is a valid out-parameter.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid dir fd, NUL-terminated path, valid out pointer.
        let rc = unsafe { libc::fstatat(self.dir.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        (rc == 0).then_some(st)
    }

    /// The shortest prefix of `rel` that is a symlink, if any.
    fn first_symlink(&self, rel: &Path) -> Option<PathBuf> {
        let mut prefix = PathBuf::new();
        for part in rel.components() {
            prefix.push(part);
            if self.stat(&prefix)?.st_mode & libc::S_IFMT == libc::S_IFLNK {
                return Some(prefix);
            }
        }
        None
    }
}

/// A file written beside the one it is to replace; removed unless committed.
pub struct Staged {
    dir: OwnedFd,
    tmp: CString,
    name: CString,
    done: bool,
}

impl Staged {
    /// Renames the new file over the old one: one atomic step.
    pub fn commit(mut self) -> io::Result<()> {
        let (d, tmp, name) = (self.dir.as_raw_fd(), self.tmp.as_ptr(), self.name.as_ptr());
        // SAFETY: an open directory fd and two NUL-terminated names in it.
        if unsafe { libc::renameat(d, tmp, d, name) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            // SAFETY: an open directory fd and a NUL-terminated name.
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.tmp.as_ptr(), 0) };
        }
    }
}

/// Folds `.` and `..` lexically; `None` if `..` climbs above the start.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for part in path.components() {
        match part {
            Component::RootDir => out.push("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                depth = depth.checked_sub(1)?;
                out.pop();
            }
            Component::Normal(n) => {
                depth += 1;
                out.push(n);
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn openat2(dir: &OwnedFd, path: &CString, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: all-zero is a valid open_how (no flags, no mode, no resolve rules).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.mode = if flags & libc::O_CREAT != 0 { 0o644 } else { 0 };
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid dir fd, NUL-terminated path, `how` lives across the call with its true size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, Sandbox) {
        let dir = tempfile::tempdir().unwrap();
        let sb = Sandbox::new(dir.path()).unwrap();
        (dir, sb)
    }

    fn open(sb: &Sandbox, p: &str) -> Result<File, PathError> {
        let rel = sb.relative(p.as_bytes())?;
        sb.open(&rel, true, true).map(|(f, _)| f)
    }

    #[test]
    fn relative_paths_are_normalised_beneath_the_root() {
        let (_d, sb) = setup();
        assert_eq!(sb.relative(b"a/./b/../c").unwrap(), PathBuf::from("a/c"));
        assert_eq!(sb.relative(b"x").unwrap(), PathBuf::from("x"));
        let abs = format!("{}/sub/f", sb.root().display());
        assert_eq!(sb.relative(abs.as_bytes()).unwrap(), PathBuf::from("sub/f"));
    }

    #[test]
    fn escapes_are_refused_as_outside() {
        let (_d, sb) = setup();
        for p in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "/proc/self/mem",
            "../../../../proc/self/mem",
        ] {
            assert!(matches!(sb.relative(p.as_bytes()), Err(PathError::Outside(_))), "{p}");
        }
        let sibling = format!("{}-other/f", sb.root().display());
        assert!(matches!(sb.relative(sibling.as_bytes()), Err(PathError::Outside(_))));
    }

    #[test]
    fn empty_nul_and_root_itself_are_refused() {
        let (_d, sb) = setup();
        assert!(matches!(sb.relative(b""), Err(PathError::Empty)));
        assert!(matches!(sb.relative(b"a\0b"), Err(PathError::Nul)));
        assert!(matches!(sb.relative(b"."), Err(PathError::NotRegular("a directory"))));
        assert!(matches!(
            sb.relative(b"sub/"),
            Err(PathError::NotRegular("a directory"))
        ));
        for dir in [&b"a/.."[..], b"x/.", b"a/b/..", b"./", b"x/./"] {
            assert!(
                matches!(sb.relative(dir), Err(PathError::NotRegular("a directory"))),
                "{:?}",
                String::from_utf8_lossy(dir)
            );
        }
        assert_eq!(sb.relative(b"./x").unwrap(), PathBuf::from("x"));
        assert_eq!(sb.relative(b"a/./x").unwrap(), PathBuf::from("a/x"));
    }

    #[test]
    fn a_socket_is_named() {
        let (d, sb) = setup();
        let _listener = std::os::unix::net::UnixListener::bind(d.path().join("sock")).unwrap();
        match open(&sb, "sock") {
            Err(PathError::NotRegular("a socket")) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            sb.open(Path::new("sock"), true, true),
            Err(PathError::NotRegular("a socket"))
        ));
    }

    #[test]
    fn creates_and_opens_regular_files() {
        let (d, sb) = setup();
        open(&sb, "new.bin").unwrap();
        assert!(d.path().join("new.bin").is_file());
        sb.remove(Path::new("new.bin"));
        assert!(!d.path().join("new.bin").exists());
        std::fs::create_dir(d.path().join("sub")).unwrap();
        open(&sb, "sub/f").unwrap();
        assert!(d.path().join("sub/f").is_file());
    }

    #[test]
    fn symlinked_file_is_refused_as_symlink() {
        let (d, sb) = setup();
        std::fs::write(d.path().join("real"), b"").unwrap();
        symlink(d.path().join("real"), d.path().join("link")).unwrap();
        assert!(matches!(open(&sb, "link"), Err(PathError::Symlink)));
    }

    #[test]
    fn symlinked_directory_is_refused_and_named() {
        let (d, sb) = setup();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), d.path().join("out")).unwrap();
        match open(&sb, "out/f") {
            Err(PathError::SymlinkedDir(p)) => assert_eq!(p, "out"),
            other => panic!("{other:?}"),
        }
        assert!(!outside.path().join("f").exists());
    }

    #[test]
    fn directory_and_fifo_are_not_regular() {
        let (d, sb) = setup();
        std::fs::create_dir(d.path().join("dir")).unwrap();
        assert!(matches!(open(&sb, "dir"), Err(PathError::NotRegular("a directory"))));
        let fifo = cstring(&d.path().join("fifo")).unwrap();
        // SAFETY: valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(matches!(open(&sb, "fifo"), Err(PathError::NotRegular("a fifo"))));
    }

    #[test]
    fn a_read_only_open_cannot_write() {
        use std::os::unix::fs::FileExt;
        let (d, sb) = setup();
        std::fs::write(d.path().join("ro"), b"abcd").unwrap();
        let (f, created) = sb.open(Path::new("ro"), false, false).unwrap();
        assert!(!created);
        assert_eq!(f.write_at(b"x", 0).unwrap_err().raw_os_error(), Some(libc::EBADF));
        let (f, created) = sb.open(Path::new("new"), true, false).unwrap();
        assert!(created && f.metadata().unwrap().len() == 0);
        assert!(f.write_at(b"x", 0).is_err());
    }

    #[test]
    fn missing_directory_is_not_found() {
        let (_d, sb) = setup();
        assert!(matches!(open(&sb, "nodir/f"), Err(PathError::NotFound)));
        assert!(matches!(
            sb.open(Path::new("absent"), false, true),
            Err(PathError::NotFound)
        ));
        let (_, created) = sb.open(Path::new("absent"), true, true).unwrap();
        assert!(created);
        let (_, created) = sb.open(Path::new("absent"), true, true).unwrap();
        assert!(!created);
    }

    #[test]
    fn a_staged_file_replaces_the_old_one_only_when_committed() {
        let (d, sb) = setup();
        std::fs::write(d.path().join("f"), b"old").unwrap();
        let (staged, mut file) = sb.stage(Path::new("f")).unwrap();
        std::io::Write::write_all(&mut file, b"new").unwrap();
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"old");
        drop(staged);
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"old");
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "the hidden file is gone"
        );
        let (staged, mut file) = sb.stage(Path::new("f")).unwrap();
        std::io::Write::write_all(&mut file, b"new").unwrap();
        staged.commit().unwrap();
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn staging_makes_directories_but_never_follows_a_symlink() {
        let (d, sb) = setup();
        let (staged, _) = sb.stage(Path::new("a/b/f")).unwrap();
        staged.commit().unwrap();
        assert!(d.path().join("a/b/f").is_file());
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), d.path().join("out")).unwrap();
        assert!(matches!(sb.stage(Path::new("out/f")), Err(PathError::SymlinkedDir(_))));
        std::fs::write(d.path().join("real"), b"").unwrap();
        symlink(d.path().join("real"), d.path().join("link")).unwrap();
        assert!(matches!(sb.stage(Path::new("link")), Err(PathError::Symlink)));
        std::fs::create_dir(d.path().join("dir")).unwrap();
        assert!(matches!(
            sb.stage(Path::new("dir")),
            Err(PathError::NotRegular("a directory"))
        ));
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_hidden_file_left_by_a_crash_is_replaced() {
        let (d, sb) = setup();
        std::fs::write(d.path().join(".f.incoming"), b"junk").unwrap();
        let (staged, _) = sb.stage(Path::new("f")).unwrap();
        staged.commit().unwrap();
        assert_eq!(std::fs::read(d.path().join("f")).unwrap(), b"");
        assert!(!d.path().join(".f.incoming").exists());
    }

    #[test]
    fn files_lists_regular_files_only_without_following_symlinks() {
        let (d, sb) = setup();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::create_dir(d.path().join("skipped")).unwrap();
        std::fs::write(d.path().join("z"), b"12345678").unwrap();
        std::fs::write(d.path().join("a/b/f"), b"").unwrap();
        std::fs::write(d.path().join("skipped/f"), b"").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"").unwrap();
        symlink(outside.path(), d.path().join("out")).unwrap();
        symlink(d.path().join("z"), d.path().join("zlink")).unwrap();
        let found: Vec<(String, u64)> = sb
            .files(|p| p == Path::new("skipped"))
            .unwrap()
            .into_iter()
            .map(|(p, m)| (p.display().to_string(), m.len()))
            .collect();
        assert_eq!(found, vec![("a/b/f".to_string(), 0), ("z".to_string(), 8)]);
    }

    #[test]
    fn fallback_walk_refuses_symlinks_anywhere() {
        let (d, sb) = setup();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), d.path().join("out")).unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        assert!(sb.walk(Path::new("sub/f"), flags).is_ok());
        let e = sb.walk(Path::new("out/f"), flags).unwrap_err();
        assert!(matches!(sb.explain(Path::new("out/f"), e), PathError::SymlinkedDir(_)));
        assert!(!outside.path().join("f").exists());
    }
}
