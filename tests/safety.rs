//! Which files may be mapped, and by whom (SPEC section 3).

mod common;

use std::os::unix::fs::symlink;

use common::*;

fn refused(s: &Server, path: &str) -> String {
    let mut c = s.conn();
    let e = err(&mut c, &["MMAP", "k", path]);
    assert!(e.starts_with(&format!("ERR cannot map '{path}'")), "{e}");
    assert_eq!(int(&mut c, &["EXISTS", "k"]), 0, "no key after a refusal");
    e
}

#[test]
fn dot_dot_escapes_are_refused() {
    let s = Server::start();
    for p in ["../escape.f64", "a/../../escape.f64", "./../escape.f64"] {
        let e = refused(&s, p);
        assert!(e.contains("outside mmap.dir"), "{e}");
    }
    assert!(!s.home.join("escape.f64").exists());
}

#[test]
fn absolute_paths_outside_the_dir_are_refused() {
    let s = Server::start();
    let outside = s.home.join("outside.f64");
    for p in [outside.to_str().unwrap(), "/proc/self/mem", "/etc/passwd", "/dev/zero"] {
        let e = refused(&s, p);
        assert!(e.contains("outside mmap.dir"), "{e}");
    }
    assert!(!outside.exists());
    // A sibling directory whose name starts with the dir's name is outside too.
    let sibling = format!("{}-x/f.f64", s.data().display());
    assert!(refused(&s, &sibling).contains("outside mmap.dir"));
}

#[test]
fn absolute_paths_inside_the_dir_are_accepted() {
    let s = Server::start();
    let mut c = s.conn();
    let p = s.data().join("in.f64");
    assert_eq!(int(&mut c, &["MMAP", "k", p.to_str().unwrap()]), 0);
    assert!(p.exists());
}

#[test]
fn a_symlinked_file_is_refused() {
    let s = Server::start();
    let target = s.home.join("target.f64");
    write_values(&target, &[1.0]);
    symlink(&target, s.data().join("link.f64")).unwrap();
    let e = refused(&s, "link.f64");
    assert!(e.contains("is a symlink"), "{e}");
    // Even one pointing inside the dir.
    write_values(&s.data().join("real.f64"), &[1.0]);
    symlink("real.f64", s.data().join("inner.f64")).unwrap();
    assert!(refused(&s, "inner.f64").contains("is a symlink"));
}

#[test]
fn a_symlinked_directory_is_refused_and_named() {
    let s = Server::start();
    std::fs::create_dir(s.home.join("elsewhere")).unwrap();
    symlink(s.home.join("elsewhere"), s.data().join("sub")).unwrap();
    let e = refused(&s, "sub/f.f64");
    assert!(e.contains("symlinked directory 'sub'"), "{e}");
    assert!(
        !s.home.join("elsewhere/f.f64").exists(),
        "nothing created through the link"
    );
    // The dir itself through /proc/self/root magic is outside too.
    let e = refused(&s, "/proc/self/root/etc/passwd");
    assert!(e.contains("outside mmap.dir"), "{e}");
}

#[test]
fn a_directory_and_other_non_regular_files_are_refused() {
    let s = Server::start();
    std::fs::create_dir(s.data().join("dir")).unwrap();
    let e = refused(&s, "dir");
    assert!(e.contains("not a regular file (it is a directory)"), "{e}");
    assert!(refused(&s, ".").contains("directory"));
    // A trailing slash names a directory: nothing is created.
    assert!(refused(&s, "new/").contains("it is a directory"));
    assert!(!s.data().join("new").exists());
    let fifo = std::ffi::CString::new(s.data().join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc_mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let e = refused(&s, "fifo");
    assert!(e.contains("it is a fifo"), "{e}");
}

extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}

#[test]
fn a_size_that_is_not_a_multiple_of_eight_is_refused() {
    let s = Server::start();
    std::fs::write(s.data().join("odd.f64"), [0u8; 13]).unwrap();
    let e = refused(&s, "odd.f64");
    assert!(e.contains("has 13 bytes, which is not a multiple of 8"), "{e}");
    assert_eq!(file_len(&s.data().join("odd.f64")), 13);
}

#[test]
fn a_missing_directory_is_explained() {
    let s = Server::start();
    let e = refused(&s, "nodir/f.f64");
    assert!(e.contains("no such file or directory"), "{e}");
}

#[test]
fn one_file_is_bound_to_one_key() {
    let s = Server::start();
    let mut c = s.conn();
    int(&mut c, &["MMAP", "a", "shared.f64"]);
    let e = err(&mut c, &["MMAP", "b", "shared.f64"]);
    assert_eq!(e, "ERR cannot map 'shared.f64': the file is already bound to key 'a'");
    assert_eq!(int(&mut c, &["EXISTS", "b"]), 0);
    // Another spelling of the same file is the same file.
    let e = err(&mut c, &["MMAP", "b", "x/../shared.f64"]);
    assert!(e.contains("already bound to key 'a'"), "{e}");
    // Once the first key is gone, the file is free.
    int(&mut c, &["DEL", "a"]);
    assert_eq!(int(&mut c, &["MMAP", "b", "shared.f64"]), 0);
}

#[test]
fn one_file_is_bound_by_one_server() {
    let s1 = Server::start();
    let data = s1.data();
    let s2 = Server::with(Opts {
        module_args: vec!["dir".into(), data.display().to_string()],
        ..Opts::default()
    });
    let mut c1 = s1.conn();
    let mut c2 = s2.conn();
    int(&mut c1, &["MMAP", "a", "shared.f64"]);
    let e = err(&mut c2, &["MMAP", "a", "shared.f64"]);
    assert_eq!(e, "ERR cannot map 'shared.f64': the file is locked by another process");
    // The lock is an advisory flock that other tools can see.
    let f = std::fs::File::open(data.join("shared.f64")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open fd.
    assert_ne!(
        unsafe { flock(f.as_raw_fd(), 2 | 4) },
        0,
        "LOCK_EX|LOCK_NB must fail while bound"
    );
    int(&mut c1, &["DEL", "a"]);
    // SAFETY: as above.
    assert_eq!(unsafe { flock(f.as_raw_fd(), 2 | 4) }, 0, "free once unbound");
    // SAFETY: as above.
    unsafe { flock(f.as_raw_fd(), 8) };
    assert_eq!(int(&mut c2, &["MMAP", "a", "shared.f64"]), 0);
}

extern "C" {
    fn flock(fd: i32, op: i32) -> i32;
}

#[test]
fn the_lock_is_released_even_while_a_fork_child_runs() {
    let s = Server::start();
    let mut c = s.conn();
    int(&mut c, &["MMAP", "a", "f.f64"]);
    // A slow fork child shares the file descriptions of the parent.
    raw(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "200000"]).unwrap();
    raw(&mut c, &["BGSAVE"]).unwrap();
    int(&mut c, &["DEL", "a"]);
    assert_eq!(int(&mut c, &["MMAP", "b", "f.f64"]), 0);
}
