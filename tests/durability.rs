//! Durability (SPEC section 4): `mmap.fsync`, flushes on SAVE, BGSAVE and
//! SHUTDOWN, and writes that count as changes for the `save` rules.

mod common;

use std::time::Duration;

use common::*;

fn bound(s: &Server, keys: &[&str]) -> redis::Connection {
    let mut c = s.conn();
    for k in keys {
        int(&mut c, &["MMAP", k, &format!("{k}.f64")]);
        int(&mut c, &["MMAP.ADD", k, "1", "2"]);
    }
    c
}

fn flushes(c: &mut redis::Connection) -> i64 {
    mmap_stat(c, "flushes")
}

#[test]
fn fsync_always_flushes_every_write_before_replying() {
    let s = Server::start();
    let mut c = bound(&s, &["k"]);
    raw(&mut c, &["CONFIG", "SET", "mmap.fsync", "always"]).unwrap();
    let f0 = flushes(&mut c);
    int(&mut c, &["MMAP.SET", "k", "0", "5"]);
    assert_eq!(flushes(&mut c), f0 + 1);
    int(&mut c, &["MMAP.ADD", "k", "3"]);
    bulk(&mut c, &["MMAP.POP", "k"]);
    assert_eq!(flushes(&mut c), f0 + 3);
    bulk(&mut c, &["MMAP.GET", "k", "0"]);
    int(&mut c, &["MMAP.COUNT", "k"]);
    assert_eq!(flushes(&mut c), f0 + 3, "reads flush nothing");
    assert_eq!(mmap_stat(&mut c, "flush_errors"), 0);
}

#[test]
fn fsync_everysec_flushes_in_the_background_once_per_second() {
    let s = Server::start();
    let mut c = bound(&s, &["k"]);
    assert_eq!(config_get(&mut c, "mmap.fsync"), vec!["mmap.fsync", "everysec"]);
    std::thread::sleep(Duration::from_millis(1100));
    let f0 = flushes(&mut c);
    for i in 0..300 {
        int(&mut c, &["MMAP.SET", "k", "0", &i.to_string()]);
    }
    wait_for("a background flush", || flushes(&mut c) > f0);
    std::thread::sleep(Duration::from_millis(1200));
    // 300 writes to one file: one flush per second they spanned, not 300.
    let n = flushes(&mut c) - f0;
    assert!((1..=2).contains(&n), "{n} flushes");
}

#[test]
fn fsync_no_leaves_the_timing_to_the_kernel() {
    let s = Server::with(Opts {
        module_args: vec!["fsync".into(), "no".into(), "dir".into(), "data".into()],
        ..Opts::default()
    });
    let mut c = s.conn();
    assert_eq!(config_get(&mut c, "mmap.fsync"), vec!["mmap.fsync", "no"]);
    int(&mut c, &["MMAP", "k", "k.f64"]);
    for i in 0..10 {
        int(&mut c, &["MMAP.ADD", "k", &i.to_string()]);
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(flushes(&mut c), 0);
}

#[test]
fn fsync_refuses_an_unknown_mode() {
    let s = Server::start();
    let mut c = s.conn();
    let e = err(&mut c, &["CONFIG", "SET", "mmap.fsync", "sometimes"]);
    assert!(e.starts_with("ERR") && e.contains("mmap.fsync"), "{e}");
    raw(&mut c, &["CONFIG", "SET", "mmap.fsync", "ALWAYS"]).unwrap();
    assert_eq!(config_get(&mut c, "mmap.fsync"), vec!["mmap.fsync", "always"]);
}

#[test]
fn save_bgsave_bgrewriteaof_and_shutdown_flush_every_writable_bound_file() {
    let mut s = Server::with(Opts {
        module_args: vec!["fsync".into(), "no".into(), "dir".into(), "data".into()],
        ..Opts::default()
    });
    let mut c = bound(&s, &["a", "b", "c"]);
    // A read-only key never wrote its file: nothing of it to flush.
    std::fs::write(s.data().join("r.u8"), [1u8]).unwrap();
    int(&mut c, &["MMAP", "r", "r.u8", "TYPE", "uint8", "READONLY"]);
    let f0 = flushes(&mut c);
    raw(&mut c, &["SAVE"]).unwrap();
    assert_eq!(flushes(&mut c), f0 + 3);
    assert!(s.log().contains("flushed 3 bound files to disk (SAVE)"), "{}", s.log());
    // BGSAVE flushes in its child, before it writes the snapshot.
    raw(&mut c, &["BGSAVE"]).unwrap();
    wait_for("the BGSAVE flush", || {
        s.log().contains("flushed 3 bound files to disk (BGSAVE)")
    });
    wait_for("BGSAVE to end", || {
        field(&mut c, "persistence", "rdb_bgsave_in_progress") == "0"
    });
    rewrite_aof(&mut c);
    assert!(
        s.log().contains("flushed 3 bound files to disk (AOF rewrite)"),
        "{}",
        s.log()
    );
    drop(c);
    s.stop();
    assert!(
        s.log().contains("flushed 3 bound files to disk (shutdown)"),
        "{}",
        s.log()
    );
}

#[test]
fn every_write_counts_as_a_change_and_reads_do_not() {
    let s = Server::start();
    let mut c = s.conn();
    let changes =
        |c: &mut redis::Connection| -> i64 { field(c, "persistence", "rdb_changes_since_last_save").parse().unwrap() };
    let mut last = changes(&mut c);
    for args in [
        &["MMAP", "k", "k.f64"][..],
        &["MMAP.ADD", "k", "1", "2", "3"],
        &["MMAP.SET", "k", "0", "9"],
        &["MMAP.POP", "k"],
        &["MMAP.RESIZE", "k", "5"],
        &["MMAP.CLEAR", "k"],
    ] {
        raw(&mut c, args).unwrap();
        let now = changes(&mut c);
        assert!(now > last, "{args:?} did not count as a change");
        last = now;
    }
    for args in [
        &["MMAP.GET", "k", "0"][..],
        &["MMAP.MGET", "k", "0", "1"],
        &["MMAP.COUNT", "k"],
        &["MMAP.SET", "k", "99", "1"],
        &["MMAP.CLEAR", "k"],
        &["MMAP", "k", "k.f64"],
    ] {
        raw(&mut c, args).unwrap();
        assert_eq!(changes(&mut c), last, "{args:?} changed nothing but counted");
    }
}

#[test]
fn a_save_rule_fires_after_a_vadd() {
    let s = Server::with(Opts {
        conf: vec!["save 1 1".into()],
        ..Opts::default()
    });
    let mut c = s.conn();
    int(&mut c, &["MMAP", "k", "k.f64"]);
    wait_for("the first save", || {
        field(&mut c, "persistence", "rdb_changes_since_last_save") == "0"
    });
    let saved: i64 = field(&mut c, "persistence", "rdb_last_save_time").parse().unwrap();
    int(&mut c, &["MMAP.ADD", "k", "1"]);
    wait_for("a save after the VADD", || {
        field(&mut c, "persistence", "rdb_changes_since_last_save") == "0"
            && field(&mut c, "persistence", "rdb_last_save_time")
                .parse::<i64>()
                .unwrap()
                > saved
    });
}

/// Appends in one event-loop pass are held and written by one `pwrite`
/// before the pass's replies go out: every acknowledged value is in the
/// file by the time its reply arrives, and any other command sees it.
#[test]
fn pipelined_appends_are_in_the_file_when_their_replies_arrive() {
    let s = Server::start();
    let mut c = s.conn();
    int(&mut c, &["MMAP", "k", "k.f64"]);
    int(&mut c, &["MMAP", "b", "b.i32", "TYPE", "int32"]);
    let before = mmap_stat(&mut c, "held_writes");
    let mut p = redis::pipe();
    for i in 0..3000i32 {
        p.cmd("MMAP.ADD").arg("k").arg(format!("{}", f64::from(i) * 0.5));
        if i % 500 == 0 {
            p.cmd("MMAP.APPEND").arg("b").arg(&i.to_le_bytes()[..]);
        }
        if i == 1499 {
            // Reads in the same pass see the held values.
            p.cmd("MMAP.GET").arg("k").arg(1499);
            p.cmd("MMAP.COUNT").arg("k");
        }
    }
    let replies: Vec<redis::Value> = p.query(&mut c).unwrap();
    assert_eq!(replies.len(), 3000 + 6 + 2);
    assert_eq!(replies[1500 + 3], redis::Value::BulkString(b"749.5".to_vec()));
    assert_eq!(replies[1500 + 4], redis::Value::Int(1500));
    // Read at once, without another command first: the file already holds it all.
    let want: Vec<f64> = (0..3000).map(|i| i as f64 * 0.5).collect();
    assert_eq!(file_values(&s.data().join("k.f64")), want);
    let ints: Vec<i32> = std::fs::read(s.data().join("b.i32"))
        .unwrap()
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(ints, [0, 500, 1000, 1500, 2000, 2500]);
    // Written in batches: far fewer writes than appends.
    let writes = mmap_stat(&mut c, "held_writes") - before;
    assert!((1..1000).contains(&writes), "{writes} writes for 3006 appends");
    assert_eq!(mmap_stat(&mut c, "held_write_errors"), 0);
}

/// With `mmap.fsync always` every append is written (and flushed) before
/// its own reply: none is held.
#[test]
fn appends_are_not_held_when_every_write_is_flushed_at_once() {
    let s = Server::with(Opts {
        conf: vec!["mmap.fsync always".into()],
        ..Opts::default()
    });
    let mut c = s.conn();
    int(&mut c, &["MMAP", "k", "k.f64"]);
    let mut p = redis::pipe();
    for i in 0..200 {
        p.cmd("MMAP.ADD").arg("k").arg(i);
    }
    let _: Vec<i64> = p.query(&mut c).unwrap();
    assert_eq!(file_values(&s.data().join("k.f64")).len(), 200);
    assert_eq!(mmap_stat(&mut c, "held_writes"), 0);
}

/// A fork in the same pass as held appends (BGSAVE, an AOF rewrite) saves
/// them: the child reads them from memory, never writes them itself, and
/// the server writes them before the pass ends.
#[test]
fn a_fork_while_appends_are_held_saves_them() {
    let mut s = aof_server("no");
    let mut c = s.conn();
    int(&mut c, &["MMAP", "k", "k.f64"]);
    let mut p = redis::pipe();
    for i in 0..1000 {
        p.cmd("MMAP.ADD").arg("k").arg(i);
    }
    p.cmd("BGREWRITEAOF");
    p.cmd("MMAP.ADD").arg("k").arg(1000);
    let _: Vec<redis::Value> = p.query(&mut c).unwrap();
    rewritten(&mut c);
    let want: Vec<f64> = (0..=1000).map(f64::from).collect();
    assert_eq!(file_values(&s.data().join("k.f64")), want);
    // The rewritten AOF and what followed it rebuild the file alone.
    drop(c);
    s.stop();
    std::fs::remove_file(s.data().join("k.f64")).unwrap();
    s.start_again();
    assert_eq!(file_values(&s.data().join("k.f64")), want);
}
