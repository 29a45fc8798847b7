//! The error paths that only a failing disk or an unlucky fork reach, made
//! to happen with the test build's `MMAP.FAULT`, and what a user then sees.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;

fn with_faults(mut opts: Opts) -> Server {
    opts.module = fault_module_path();
    Server::with(opts)
}

fn fault(c: &mut redis::Connection, what: &str, setting: &str) {
    assert_eq!(int(c, &["MMAP.FAULT", what, setting]), 1);
}

/// The base AOF the manifest names, and its bytes. A rewrite replaces it;
/// a failed one leaves it (and opens one more incremental file).
fn base_aof(s: &Server) -> (String, Vec<u8>) {
    let dir = s.home.join("appendonlydir");
    let name = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .find(|n| n.ends_with(".manifest"))
        .expect("an AOF manifest");
    let manifest = fs::read_to_string(dir.join(name)).unwrap();
    let base = manifest
        .lines()
        .find(|l| l.ends_with("type b"))
        .and_then(|l| l.split(' ').nth(1))
        .expect("a base AOF")
        .to_string();
    let bytes = fs::read(dir.join(&base)).unwrap();
    (base, bytes)
}

#[test]
fn a_file_unreadable_during_an_aof_rewrite_fails_the_rewrite_and_keeps_the_old_aof() {
    for preamble in ["no", "yes"] {
        let mut s = with_faults(aof_opts(preamble));
        let mut c = s.conn();
        int(&mut c, &["MMAP", "v", "v.f64"]);
        int(&mut c, &["MMAP.ADD", "v", "1", "2", "3"]);
        let before = base_aof(&s);
        fault(&mut c, "read", "on");
        raw(&mut c, &["BGREWRITEAOF"]).unwrap();
        wait_for("the rewrite to end", || {
            field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
                && field(&mut c, "persistence", "aof_rewrite_scheduled") == "0"
        });
        if preamble == "no" {
            // The rewrite child reads every file to write its content.
            assert_eq!(field(&mut c, "persistence", "aof_last_bgrewrite_status"), "err");
            let log = s.log();
            assert!(
                log.contains("AOF rewrite: cannot read 'v.f64': Input/output error")
                    && log.contains("abandoning the AOF rewrite"),
                "{log}"
            );
            assert_eq!(base_aof(&s), before, "the old AOF stays");
        } else {
            // With the RDB preamble the child writes paths, not content.
            assert_eq!(field(&mut c, "persistence", "aof_last_bgrewrite_status"), "ok");
        }
        fault(&mut c, "read", "off");
        int(&mut c, &["MMAP.ADD", "v", "4"]);
        s.kill_and_restart();
        let mut c = s.conn();
        assert_eq!(
            bulks(&mut c, &["MMAP.MGET", "v", "0", "1", "2", "3"]),
            ["1", "2", "3", "4"].map(|v| Some(v.to_string()))
        );
        rewrite_aof(&mut c);
    }
}

#[test]
fn a_digest_read_error_is_counted_and_logged() {
    let s = with_faults(Opts::default());
    let mut c = s.conn();
    int(&mut c, &["MMAP", "v", "v.f64"]);
    int(&mut c, &["MMAP.ADD", "v", "1", "2"]);
    let good = digest(&mut c, "v");
    fault(&mut c, "read", "on");
    let bad = digest(&mut c, "v");
    assert_ne!(good, bad, "a digest without the content differs");
    assert_eq!(mmap_stat(&mut c, "read_errors"), 1);
    assert!(
        s.log().contains("digest: cannot read 'v.f64': Input/output error"),
        "{}",
        s.log()
    );
    fault(&mut c, "read", "off");
    assert_eq!(digest(&mut c, "v"), good);
    assert_eq!(mmap_stat(&mut c, "read_errors"), 1);
}

#[test]
fn a_failed_fdatasync_is_counted_and_logged_and_the_write_stands() {
    let s = with_faults(Opts::default());
    let mut c = s.conn();
    raw(&mut c, &["CONFIG", "SET", "mmap.fsync", "always"]).unwrap();
    int(&mut c, &["MMAP", "v", "v.f64"]);
    assert_eq!(mmap_stat(&mut c, "flush_errors"), 0);
    fault(&mut c, "fsync", "on");
    assert_eq!(int(&mut c, &["MMAP.ADD", "v", "7"]), 1);
    assert_eq!(int(&mut c, &["MMAP.SET", "v", "0", "8"]), 1);
    assert_eq!(mmap_stat(&mut c, "flush_errors"), 2);
    assert!(s.log().contains("fdatasync failed: Input/output error"), "{}", s.log());
    // The writes are in the file (the page cache) all the same.
    assert_eq!(file_values(&s.data().join("v.f64")), vec![8.0]);
    fault(&mut c, "fsync", "off");
    let flushes = mmap_stat(&mut c, "flushes");
    int(&mut c, &["MMAP.ADD", "v", "9"]);
    assert_eq!(mmap_stat(&mut c, "flushes"), flushes + 1);
    assert_eq!(mmap_stat(&mut c, "flush_errors"), 2);
}

/// `v` bound, with one value appended and in its file; from then on, held
/// appends cannot be written.
fn one_value_then_settle_fails() -> (Server, redis::Connection) {
    let s = with_faults(Opts::default());
    let mut c = s.conn();
    int(&mut c, &["MMAP", "v", "v.f64"]);
    assert_eq!(int(&mut c, &["MMAP.ADD", "v", "1"]), 1);
    assert_eq!(file_values(&s.data().join("v.f64")), vec![1.0]);
    fault(&mut c, "settle", "on");
    (s, c)
}

#[test]
fn held_appends_that_cannot_be_written_stay_in_memory_and_say_so() {
    let (s, mut c) = one_value_then_settle_fails();
    let path = s.data().join("v.f64");
    assert_eq!(int(&mut c, &["MMAP.ADD", "v", "2", "3"]), 2);
    // Written at the end of the pass, and retried at the end of each one.
    assert!(mmap_stat(&mut c, "held_write_errors") >= 1);
    assert!(
        s.log().contains("the values stay in memory until it can be"),
        "{}",
        s.log()
    );
    assert_eq!(file_values(&path), vec![1.0]);
    // A command that needs the file says why it cannot have it.
    let e = err(&mut c, &["MMAP.GET", "v", "2"]);
    assert!(e.starts_with("ERR writing 'v.f64' failed: Input/output error"), "{e}");
    let e = err(&mut c, &["MMAP.SET", "v", "0", "9"]);
    assert!(e.starts_with("ERR writing 'v.f64' failed"), "{e}");
    assert_eq!(file_values(&path), vec![1.0]);
    // Once the disk takes writes again, nothing appended was lost.
    fault(&mut c, "settle", "off");
    assert_eq!(bulk(&mut c, &["MMAP.GET", "v", "2"]).as_deref(), Some("3"));
    assert_eq!(int(&mut c, &["MMAP.COUNT", "v"]), 3);
    assert_eq!(file_values(&path), vec![1.0, 2.0, 3.0]);
}

/// A key deleted while its held appends cannot be written: the binding
/// goes, the loss is logged, and the next passes do not touch it.
#[test]
fn a_key_deleted_while_its_held_appends_cannot_be_written_logs_the_loss() {
    let (s, mut c) = one_value_then_settle_fails();
    assert_eq!(int(&mut c, &["MMAP.ADD", "v", "2"]), 1);
    assert_eq!(int(&mut c, &["DEL", "v"]), 1);
    assert!(
        s.log().contains("appended values lost: Input/output error"),
        "{}",
        s.log()
    );
    let failed = mmap_stat(&mut c, "held_write_errors");
    fault(&mut c, "settle", "off");
    assert_eq!(int(&mut c, &["EXISTS", "v"]), 0);
    // Later passes find no tail of the deleted key to retry.
    assert_eq!(mmap_stat(&mut c, "held_write_errors"), failed);
    let path = s.data().join("v.f64");
    assert_eq!(file_values(&path), vec![1.0]);
    // The file binds again with what it holds.
    assert_eq!(int(&mut c, &["MMAP", "v", "v.f64"]), 1);
}

#[test]
fn a_bgsave_child_that_finds_the_registry_locked_does_not_hang() {
    let s = with_faults(Opts::default());
    let mut c = s.conn();
    int(&mut c, &["MMAP", "v", "v.f64"]);
    int(&mut c, &["MMAP.ADD", "v", "1"]);
    let saves: i64 = field(&mut c, "persistence", "rdb_saves").parse().unwrap();
    // Another thread holds the registry while BGSAVE forks: no thread of
    // the child will ever release it.
    fault(&mut c, "registry", "3000");
    let started = Instant::now();
    raw(&mut c, &["BGSAVE"]).unwrap();
    wait_for("the BGSAVE to end", || {
        field(&mut c, "persistence", "rdb_bgsave_in_progress") == "0"
            && field(&mut c, "persistence", "rdb_saves").parse::<i64>().unwrap() > saves
    });
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the child waited for the lock"
    );
    assert_eq!(field(&mut c, "persistence", "rdb_last_bgsave_status"), "ok");
    assert!(
        s.log()
            .contains("bound files not flushed (BGSAVE): registry busy at fork"),
        "{}",
        s.log()
    );
    // The saved RDB holds the key.
    let mut s2 = s;
    s2.kill_and_restart();
    let mut c = s2.conn();
    assert_eq!(bulk(&mut c, &["MMAP.GET", "v", "0"]).as_deref(), Some("1"));
}

#[test]
fn mmap_fault_names_what_it_does_not_know() {
    let s = with_faults(Opts::default());
    let mut c = s.conn();
    assert_eq!(
        err(&mut c, &["MMAP.FAULT", "disk", "on"]),
        "ERR unknown mmap.fault option 'disk' (known: read, fsync, settle, sigbus, worker, worker-panic or registry)"
    );
    assert_eq!(
        err(&mut c, &["MMAP.FAULT", "read", "maybe"]),
        "ERR unknown mmap.fault option 'maybe' (known: on or off)"
    );
    assert_eq!(
        err(&mut c, &["MMAP.FAULT", "registry", "-5"]),
        "ERR length '-5' is not a decimal 64-bit integer of 0 or more"
    );
}
