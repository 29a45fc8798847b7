//! Files other programs share: a file cut, rewritten or grown under its
//! key, a full disk, a disk that fails reads (a FUSE file system), and
//! read-only keys that follow their file. Every test asserts what the
//! client sees and that the server goes on serving its other keys.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// Values 0, 1, ... as a file holds them.
fn counting(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f64).to_le_bytes()).collect()
}

/// `k` bound to `k.f64` holding 0..n, and `o` bound to `o.f64` holding 1 2 3.
fn two_keys(s: &Server, n: usize) -> redis::Connection {
    let mut c = s.conn();
    fs::write(s.data().join("k.f64"), counting(n)).unwrap();
    let _ = fs::remove_file(s.data().join("o.f64"));
    assert_eq!(int(&mut c, &["MMAP", "k", "k.f64"]), n as i64);
    assert_eq!(int(&mut c, &["MMAP", "o", "o.f64"]), 0);
    assert_eq!(int(&mut c, &["MMAP.ADD", "o", "1", "2", "3"]), 3);
    c
}

/// The server still serves its other key, and is alive.
fn others_served(s: &mut Server, c: &mut redis::Connection) {
    assert_eq!(bulk(c, &["MMAP.GET", "o", "2"]).as_deref(), Some("3"));
    assert_eq!(raw(c, &["PING"]).unwrap(), Value::SimpleString("PONG".into()));
    assert!(s.alive(), "{}", s.log());
}

/// Cuts a file to `size` bytes, from this process: another program.
fn cut(path: &Path, size: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(size)
        .unwrap();
}

fn blob(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Every read and write command, each touching index 3000 of `k`, which
/// lies on a page wholly past the end once the file is cut to 0 or to the
/// middle of its second page.
fn touching_3000() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let a = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
    let mut setrange = a(&["MMAP.SETRANGE", "k", "2990"]);
    setrange.push(blob(&[7.0; 20]));
    vec![
        ("GET", a(&["MMAP.GET", "k", "3000"])),
        ("MGET", a(&["MMAP.MGET", "k", "1", "3000"])),
        ("RANGE", a(&["MMAP.RANGE", "k", "2990", "3010"])),
        ("RANGE BLOB", a(&["MMAP.RANGE", "k", "2990", "3010", "BLOB"])),
        ("STATS", a(&["MMAP.STATS", "k"])),
        ("SET", a(&["MMAP.SET", "k", "3000", "1.5"])),
        ("SETRANGE", setrange),
        ("POP", a(&["MMAP.POP", "k"])),
    ]
}

#[test]
fn a_file_cut_under_any_command_is_an_error_and_the_server_serves_on() {
    let mut s = Server::start();
    for size in [0u64, 4096 + 2000] {
        for (name, args) in touching_3000() {
            let what = format!("{name} after a cut to {size} bytes");
            let mut c = two_keys(&s, 4096);
            let faults = mmap_stat(&mut c, "faults");
            cut(&s.data().join("k.f64"), size);
            let e = raw_bytes(&mut c, &args).unwrap_err();
            assert!(
                e.starts_with(&format!(
                    "IOERR key 'k': file 'k.f64': the file shrank to {size} bytes under the key"
                )),
                "{what}: {e}"
            );
            let writing = matches!(name, "SET" | "SETRANGE" | "POP");
            assert_eq!(
                e.contains("may not have been written"),
                writing && name != "POP",
                "{what}: {e}"
            );
            assert_eq!(e.contains("nothing was removed"), name == "POP", "{what}: {e}");
            assert!(e.contains("MMAP k k.f64"), "{what}: {e}");
            assert_eq!(info_text(&mut c, "k", "state"), "broken", "{what}");
            assert_eq!(
                info_text(&mut c, "k", "cause"),
                format!("the file shrank to {size} bytes under the key"),
                "{what}"
            );
            assert!(mmap_stat(&mut c, "faults") > faults, "{what}");
            assert_eq!(mmap_stat(&mut c, "broken_keys"), 1, "{what}");
            assert_eq!(mmap_stat(&mut c, "keys"), 1, "{what}: o alone is open");
            assert_eq!(mmap_stat(&mut c, "file_bytes"), 24, "{what}: o's bytes alone");
            assert!(s.log().contains("key 'k': file 'k.f64' faulted"), "{what}");
            // Nothing was propagated as if it had succeeded: the file is as cut.
            assert_eq!(file_len(&s.data().join("k.f64")), size, "{what}");
            others_served(&mut s, &mut c);
            // Re-bound, the key has the file as it is now.
            assert_eq!(int(&mut c, &["MMAP", "k", "k.f64"]), (size / 8) as i64, "{what}");
            assert_eq!(mmap_stat(&mut c, "broken_keys"), 0, "{what}");
            raw(&mut c, &["FLUSHALL"]).unwrap();
        }
    }
}

#[test]
fn appends_and_cuts_refuse_a_file_cut_under_the_key() {
    let mut s = Server::start();
    let cases: [(&str, Vec<Vec<u8>>); 4] = [
        ("APPEND", vec![b"MMAP.APPEND".to_vec(), b"k".to_vec(), blob(&[1.0])]),
        ("ADD", vec![b"MMAP.ADD".to_vec(), b"k".to_vec(), b"1".to_vec()]),
        ("RESIZE", vec![b"MMAP.RESIZE".to_vec(), b"k".to_vec(), b"5000".to_vec()]),
        ("CLEAR", vec![b"MMAP.CLEAR".to_vec(), b"k".to_vec()]),
    ];
    for (name, args) in cases {
        let mut c = two_keys(&s, 4096);
        cut(&s.data().join("k.f64"), 100);
        // Appends written at once, not held to the end of the pass (see
        // the next test for those).
        raw(&mut c, &["CONFIG", "SET", "mmap.fsync", "always"]).unwrap();
        let e = raw_bytes(&mut c, &args).unwrap_err();
        // CLEAR cuts to nothing, which the file may well be cut to.
        if name == "CLEAR" {
            assert!(e.is_empty() || e.contains("shrank"), "{name}: {e}");
            continue;
        }
        assert!(
            e.starts_with(
                "IOERR key 'k': file 'k.f64': the file shrank to 100 bytes under the key; nothing was written"
            ),
            "{name}: {e}"
        );
        assert_eq!(file_len(&s.data().join("k.f64")), 100, "{name}: nothing was written");
        assert_eq!(info_text(&mut c, "k", "state"), "broken", "{name}");
        assert_eq!(mmap_stat(&mut c, "file_bytes"), 24, "{name}: o's bytes alone");
        others_served(&mut s, &mut c);
        raw(&mut c, &["FLUSHALL"]).unwrap();
    }
}

#[test]
fn an_append_held_in_its_pass_lands_where_it_was_acknowledged() {
    let s = Server::start();
    let mut c = two_keys(&s, 4096);
    cut(&s.data().join("k.f64"), 100);
    // Held to the end of the pass, which does not look at the file's size:
    // the value goes where the reply said.
    assert_eq!(int(&mut c, &["MMAP.ADD", "k", "9"]), 1);
    let bits = file_bits(&s.data().join("k.f64"));
    assert_eq!(bits.len(), 4097);
    assert_eq!(f64::from_bits(bits[4096]), 9.0);
    assert!(bits[13..4096].iter().all(|&b| b == 0), "what was cut reads as zeros");
}

#[test]
fn numpy_rewriting_the_file_while_clients_read_never_takes_the_server_down() {
    let mut s = Server::start();
    let mut c = two_keys(&s, 100_000);
    let path = s.data().join("k.f64");
    // numpy's tofile opens with "wb": the file is cut to nothing, then
    // written, shorter or longer than before.
    let script = format!(
        "import numpy as np, time\n\
         end = time.time() + 4\n\
         rng = np.random.default_rng(1)\n\
         while time.time() < end:\n\
         \x20   np.arange(int(rng.integers(0, 200000)), dtype='<f8').tofile({:?})\n",
        path.display().to_string()
    );
    let mut writer = Command::new("python3").arg("-c").arg(&script).spawn().unwrap();
    let (mut values, mut errors) = (0, 0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        for args in [
            vec!["MMAP.GET", "k", "99999"],
            vec!["MMAP.MGET", "k", "0", "5000", "50000"],
            vec!["MMAP.RANGE", "k", "90000", "90100", "BLOB"],
            vec!["MMAP.STATS", "k", "0", "-1"],
            vec!["MMAP.COUNT", "k"],
        ] {
            match raw(&mut c, &args) {
                Ok(_) => values += 1,
                Err(e) => {
                    assert!(
                        e.starts_with("IOERR key 'k': file 'k.f64'")
                            || e.starts_with("ERR key 'k' is bound to 'k.f64', which cannot be opened"),
                        "{args:?}: {e}"
                    );
                    errors += 1;
                }
            }
        }
        others_served(&mut s, &mut c);
        // A broken key is bound again at once, to meet the writer again.
        let _ = raw(&mut c, &["MMAP", "k", "k.f64"]);
    }
    assert!(writer.wait().unwrap().success());
    assert!(errors > 0 && values > 0, "{values} replies, {errors} errors");
    assert!(mmap_stat(&mut c, "faults") > 0);
    others_served(&mut s, &mut c);
    eprintln!("{values} replies and {errors} errors while numpy rewrote the file");
}

/// A tmpfs of `size` mounted for one test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (make test runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Fills the rest of the file system.
    fn fill(&self) {
        let mut f = fs::File::create(self.path().join("filler")).unwrap();
        let chunk = vec![1u8; 4096];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn server_in(dir: &Path) -> Server {
    Server::with(Opts {
        module_args: vec!["dir".into(), dir.display().to_string()],
        ..Opts::default()
    })
}

#[test]
fn a_full_disk_refuses_growth_and_a_store_into_a_hole_is_an_error() {
    let disk = Tmpfs::mount("1m");
    let mut s = server_in(&disk.path());
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["MMAP", "o", "o.f64"]), 0);
    assert_eq!(int(&mut c, &["MMAP.ADD", "o", "1", "2", "3"]), 3);
    assert_eq!(int(&mut c, &["MMAP", "k", "k.f64"]), 0);
    assert_eq!(int(&mut c, &["MMAP.ADD", "k", "1", "2"]), 2);
    // Growth sets the space aside, so a growth the disk cannot hold is
    // refused and changes nothing.
    let e = err(&mut c, &["MMAP.RESIZE", "k", "1000000"]);
    assert!(
        e.starts_with("ERR writing 'k.f64' failed: No space left on device"),
        "{e}"
    );
    assert_eq!(int(&mut c, &["MMAP.COUNT", "k"]), 2);
    assert_eq!(file_len(&disk.path().join("k.f64")), 16);
    // A growth that fits is set aside: with the disk full afterwards, a
    // store into it still lands.
    assert_eq!(int(&mut c, &["MMAP.RESIZE", "k", "20000"]), 2);
    disk.fill();
    assert_eq!(int(&mut c, &["MMAP.SET", "k", "19999", "4.5"]), 1);
    let mut blob_args: Vec<Vec<u8>> = vec![b"MMAP.SETRANGE".to_vec(), b"k".to_vec(), b"10000".to_vec()];
    blob_args.push(blob(&[6.5; 1000]));
    assert_eq!(raw_bytes(&mut c, &blob_args).unwrap(), Value::Int(1000));
    assert_eq!(bulk(&mut c, &["MMAP.GET", "k", "19999"]).as_deref(), Some("4.5"));
    // Appends on a full disk fail in front of their command.
    let e = err(&mut c, &["MMAP.RESIZE", "k", "30000"]);
    assert!(e.contains("No space left on device"), "{e}");
    let mut append: Vec<Vec<u8>> = vec![b"MMAP.APPEND".to_vec(), b"k".to_vec()];
    append.push(blob(&[1.0; 2000]));
    let e = raw_bytes(&mut c, &append).unwrap_err();
    assert!(e.contains("No space left on device"), "{e}");
    let many: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
    let mut add = vec!["MMAP.ADD", "k"];
    add.extend(many.iter().map(String::as_str));
    let e = err(&mut c, &add);
    assert!(e.contains("No space left on device"), "{e}");
    assert_eq!(int(&mut c, &["MMAP.COUNT", "k"]), 20000);
    // A file another program made sparse has holes no space was set
    // aside for: a store into one finds the disk full.
    fs::remove_file(disk.path().join("filler")).unwrap();
    let sparse = disk.path().join("sparse.f64");
    fs::File::create(&sparse).unwrap().set_len(8 << 20).unwrap();
    disk.fill();
    assert_eq!(int(&mut c, &["MMAP", "h", "sparse.f64"]), 1 << 20);
    let e = err(&mut c, &["MMAP.SET", "h", "500000", "1"]);
    assert!(
        e.starts_with(
            "IOERR key 'h': file 'sparse.f64': no space left on device; values from index 499712 on may not have been written, and the write was not propagated"
        ),
        "{e}"
    );
    assert_eq!(info_text(&mut c, "h", "cause"), "no space left on device");
    // On tmpfs even a read of a hole needs a page.
    assert_eq!(int(&mut c, &["MMAP", "h", "sparse.f64"]), 1 << 20);
    let e = err(&mut c, &["MMAP.GET", "h", "600000"]);
    assert!(
        e.starts_with("IOERR key 'h': file 'sparse.f64': no space left on device;"),
        "{e}"
    );
    others_served(&mut s, &mut c);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "k", "10000"]).as_deref(), Some("6.5"));
    // With room again, the key heals.
    fs::remove_file(disk.path().join("filler")).unwrap();
    assert_eq!(int(&mut c, &["MMAP", "h", "sparse.f64"]), 1 << 20);
    assert_eq!(int(&mut c, &["MMAP.SET", "h", "500000", "1"]), 1);
    drop(c);
    s.kill();
}

/// A FUSE file system holding one read-only file of counting float64
/// values, whose reads fail with EIO while `fail` is set.
struct Failing {
    size: u64,
    fail: Arc<AtomicBool>,
}

const TTL: Duration = Duration::from_secs(60);

impl Failing {
    fn attr(&self, ino: u64) -> fuser::FileAttr {
        let dir = ino == 1;
        fuser::FileAttr {
            ino: fuser::INodeNo(ino),
            size: if dir { 0 } else { self.size },
            blocks: self.size / 512,
            atime: std::time::UNIX_EPOCH,
            mtime: std::time::UNIX_EPOCH,
            ctime: std::time::UNIX_EPOCH,
            crtime: std::time::UNIX_EPOCH,
            kind: if dir {
                fuser::FileType::Directory
            } else {
                fuser::FileType::RegularFile
            },
            perm: if dir { 0o755 } else { 0o644 },
            nlink: if dir { 2 } else { 1 },
            uid: 0,
            gid: 0,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        }
    }
}

impl fuser::Filesystem for Failing {
    fn lookup(&self, _: &fuser::Request, parent: fuser::INodeNo, name: &std::ffi::OsStr, reply: fuser::ReplyEntry) {
        if u64::from(parent) == 1 && name == "r.f64" {
            reply.entry(&TTL, &self.attr(2), fuser::Generation(0));
        } else {
            reply.error(fuser::Errno::ENOENT);
        }
    }

    fn getattr(&self, _: &fuser::Request, ino: fuser::INodeNo, _: Option<fuser::FileHandle>, reply: fuser::ReplyAttr) {
        reply.attr(&TTL, &self.attr(u64::from(ino)));
    }

    fn read(
        &self,
        _: &fuser::Request,
        _: fuser::INodeNo,
        _: fuser::FileHandle,
        offset: u64,
        size: u32,
        _: fuser::OpenFlags,
        _: Option<fuser::LockOwner>,
        reply: fuser::ReplyData,
    ) {
        if self.fail.load(Ordering::SeqCst) {
            return reply.error(fuser::Errno::EIO);
        }
        let end = (offset + u64::from(size)).min(self.size);
        let bytes: Vec<u8> = (offset..end)
            .map(|at| ((at / 8) as f64).to_le_bytes()[(at % 8) as usize])
            .collect();
        reply.data(&bytes);
    }
}

#[test]
fn a_disk_that_fails_a_read_is_an_error_not_a_crash() {
    let mnt = tempfile::tempdir().unwrap();
    let fail = Arc::new(AtomicBool::new(false));
    let fs = Failing {
        size: 8 << 20,
        fail: fail.clone(),
    };
    let mut config = fuser::Config::default();
    config.mount_options.push(fuser::MountOption::RO);
    config
        .mount_options
        .push(fuser::MountOption::FSName("mmap-failing".into()));
    let session = fuser::spawn_mount(fs, mnt.path(), &config).expect("mounting FUSE needs root and /dev/fuse");
    let mut s = server_in(mnt.path());
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["MMAP", "r", "r.f64", "READONLY"]), 1 << 20);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "r", "7"]).as_deref(), Some("7"));
    // A page not read yet: the disk fails it.
    fail.store(true, Ordering::SeqCst);
    let e = err(&mut c, &["MMAP.GET", "r", "900000"]);
    assert!(
        e.starts_with("IOERR key 'r': file 'r.f64': I/O error reading 'r.f64'"),
        "{e}"
    );
    assert_eq!(info_text(&mut c, "r", "state"), "broken");
    assert_eq!(info_text(&mut c, "r", "cause"), "I/O error reading 'r.f64'");
    assert!(mmap_stat(&mut c, "faults") >= 1);
    assert!(s.alive());
    assert_eq!(raw(&mut c, &["PING"]).unwrap(), Value::SimpleString("PONG".into()));
    // The disk reads again: the key is bound again and serves the page.
    fail.store(false, Ordering::SeqCst);
    assert_eq!(int(&mut c, &["MMAP", "r", "r.f64", "READONLY"]), 1 << 20);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "r", "900000"]).as_deref(), Some("900000"));
    drop(c);
    s.kill();
    drop(session);
}

fn fault_server() -> Server {
    Server::with(Opts {
        module: fault_module_path(),
        ..Opts::default()
    })
}

/// Waits for the server to die, and returns its log.
fn died(s: &mut Server) -> String {
    wait_for("the server to exit", || !s.alive());
    s.log()
}

#[test]
fn a_fault_outside_bound_files_still_reaches_the_servers_crash_report() {
    for how in ["on", "thread"] {
        let mut s = fault_server();
        let mut c = s.conn();
        // On a thread the reply may come first; the crash follows either way.
        let _ = raw(&mut c, &["MMAP.FAULT", "sigbus", how]);
        let log = died(&mut s);
        assert!(log.contains("crashed by signal: 7"), "{how}: {log}");
        assert!(log.contains("BUG REPORT"), "{how}: {log}");
    }
    // SIGSEGV is the server's alone.
    let mut s = Server::start();
    let mut c = s.conn();
    assert!(raw(&mut c, &["DEBUG", "SEGFAULT"]).is_err());
    let log = died(&mut s);
    assert!(log.contains("crashed by signal: 11"), "{log}");
}

#[test]
fn toggling_crash_log_enabled_keeps_the_handler_in_force() {
    let mut s = fault_server();
    let mut c = two_keys(&s, 4096);
    for setting in ["no", "yes", "no", "yes"] {
        raw(&mut c, &["CONFIG", "SET", "crash-log-enabled", setting]).unwrap();
        cut(&s.data().join("k.f64"), 0);
        let e = err(&mut c, &["MMAP.GET", "k", "100"]);
        assert!(e.starts_with("IOERR key 'k'"), "after crash-log-enabled {setting}: {e}");
        others_served(&mut s, &mut c);
        fs::write(s.data().join("k.f64"), counting(4096)).unwrap();
        assert_eq!(int(&mut c, &["MMAP", "k", "k.f64"]), 4096);
    }
    assert!(s.log().contains("the SIGBUS handler for bound files is back in force"));
    // Ours chains to the server's handler as it is now.
    assert!(raw(&mut c, &["MMAP.FAULT", "sigbus", "on"]).is_err());
    let log = died(&mut s);
    assert!(log.contains("crashed by signal: 7"), "{log}");
}

#[test]
fn a_read_only_key_follows_appends_cuts_and_a_replacement_of_its_file() {
    let mut s = Server::start();
    let mut c = s.conn();
    let path = s.data().join("r.f64");
    fs::write(&path, counting(10)).unwrap();
    assert_eq!(int(&mut c, &["MMAP", "r", "r.f64", "READONLY"]), 10);
    assert_eq!(int(&mut c, &["MMAP", "o", "o.f64"]), 0);
    assert_eq!(int(&mut c, &["MMAP.ADD", "o", "1", "2", "3"]), 3);
    // Appended by another program: served by the next command.
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, &blob(&[10.0, 11.0])).unwrap();
    assert_eq!(int(&mut c, &["MMAP.COUNT", "r"]), 12);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "r", "11"]).as_deref(), Some("11"));
    // Grown past the mapping's reservation (4 MiB): mapped afresh.
    std::io::Write::write_all(&mut f, &counting(1 << 20)[8 * 12..]).unwrap();
    assert_eq!(int(&mut c, &["MMAP.COUNT", "r"]), 1 << 20);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "r", "1000000"]).as_deref(), Some("1000000"));
    // Cut to the middle of a page: followed down, never served past the end.
    cut(&path, 8 * 700);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "r", "800"]), None);
    assert_eq!(int(&mut c, &["MMAP.COUNT", "r"]), 700);
    assert_eq!(
        bulks(&mut c, &["MMAP.MGET", "r", "699", "700"]),
        vec![Some("699".to_string()), None]
    );
    // Cut to nothing: the page faults, and is followed without breaking.
    cut(&path, 0);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "r", "5"]), None);
    assert_eq!(int(&mut c, &["MMAP.COUNT", "r"]), 0);
    assert_eq!(info_text(&mut c, "r", "state"), "bound");
    assert_eq!(mmap_stat(&mut c, "broken_keys"), 0);
    fs::write(&path, counting(50)).unwrap();
    assert_eq!(
        fields(&mut c, &["MMAP.STATS", "r"])[0],
        ("count".to_string(), Value::Int(50))
    );
    // Replaced by rename: picked up within a second, logged and notified.
    let mut events = s.conn();
    raw(&mut events, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]).unwrap();
    let mut pubsub = events.as_pubsub();
    pubsub.psubscribe("__keyspace@0__:r").unwrap();
    let staged = s.data().join(".r.f64.new");
    fs::write(&staged, blob(&[42.0, 43.0])).unwrap();
    fs::rename(&staged, &path).unwrap();
    let picked = Instant::now();
    wait_for("the replacement to be served", || {
        bulk(&mut c, &["MMAP.GET", "r", "0"]).as_deref() == Some("42")
    });
    assert!(picked.elapsed() < Duration::from_secs(1), "{:?}", picked.elapsed());
    assert_eq!(int(&mut c, &["MMAP.COUNT", "r"]), 2);
    pubsub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let msg = pubsub.get_message().unwrap();
    assert_eq!(msg.get_payload::<String>().unwrap(), "mmap");
    assert!(s
        .log()
        .contains("key 'r': file 'r.f64' was replaced; the key follows it"));
    assert_eq!(mmap_stat(&mut c, "keys"), 2);
    others_served(&mut s, &mut c);
}

#[test]
fn a_read_only_key_keeps_its_file_when_the_replacement_is_another_keys() {
    let s = Server::start();
    let mut c = s.conn();
    fs::write(s.data().join("r.f64"), counting(3)).unwrap();
    assert_eq!(int(&mut c, &["MMAP", "r", "r.f64", "READONLY"]), 3);
    fs::write(s.data().join("w.f64"), blob(&[42.0])).unwrap();
    assert_eq!(int(&mut c, &["MMAP", "w", "w.f64"]), 1);
    // The path now names the file `w` holds: one file, one key.
    fs::rename(s.data().join("w.f64"), s.data().join("r.f64")).unwrap();
    let why = "key 'r': file 'r.f64' was replaced, but the new file cannot be bound \
               (the file is already bound to key 'w'); the key serves the old one";
    wait_for("the refusal to be logged", || {
        assert_eq!(
            bulk(&mut c, &["MMAP.GET", "r", "2"]).as_deref(),
            Some("2"),
            "the old file"
        );
        s.log().contains(why)
    });
    assert_eq!(int(&mut c, &["MMAP.COUNT", "r"]), 3);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "w", "0"]).as_deref(), Some("42"));
    assert_eq!(mmap_stat(&mut c, "keys"), 2);
}
