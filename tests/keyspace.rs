//! Generic key commands act on the binding, never on the file (SPEC
//! section 2), and every write is announced (SPEC section 5).

mod common;

use common::*;

fn setup(s: &Server) -> redis::Connection {
    let mut c = s.conn();
    int(&mut c, &["MMAP", "k", "k.f64"]);
    int(&mut c, &["MMAP.ADD", "k", "1", "2", "3"]);
    c
}

fn file_is_intact(s: &Server) {
    assert_eq!(file_values(&s.data().join("k.f64")), vec![1.0, 2.0, 3.0]);
}

#[test]
fn del_and_unlink_keep_the_file() {
    let s = Server::start();
    let mut c = setup(&s);
    assert_eq!(int(&mut c, &["DEL", "k"]), 1);
    file_is_intact(&s);
    int(&mut c, &["MMAP", "k", "k.f64"]);
    assert_eq!(int(&mut c, &["UNLINK", "k"]), 1);
    file_is_intact(&s);
    assert_eq!(int(&mut c, &["MMAP", "again", "k.f64"]), 3);
}

#[test]
fn expire_keeps_the_file() {
    let s = Server::start();
    let mut c = setup(&s);
    assert_eq!(int(&mut c, &["PEXPIRE", "k", "20"]), 1);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(int(&mut c, &["EXISTS", "k"]), 0);
    file_is_intact(&s);
    assert_eq!(int(&mut c, &["MMAP", "k2", "k.f64"]), 3);
}

#[test]
fn flushall_keeps_the_file_sync_and_async() {
    let s = Server::start();
    let mut c = setup(&s);
    raw(&mut c, &["FLUSHALL"]).unwrap();
    file_is_intact(&s);
    int(&mut c, &["MMAP", "k", "k.f64"]);
    raw(&mut c, &["FLUSHALL", "ASYNC"]).unwrap();
    file_is_intact(&s);
    // Released when the flush starts, not when a lazy-free thread gets to it.
    assert_eq!(int(&mut c, &["MMAP", "k", "k.f64"]), 3);
}

#[test]
fn a_flush_releases_only_its_own_database() {
    let s = Server::start();
    let mut c = setup(&s); // k in db 0
    raw(&mut c, &["SELECT", "1"]).unwrap();
    raw(&mut c, &["FLUSHDB", "ASYNC"]).unwrap();
    let e = err(&mut c, &["MMAP", "other", "k.f64"]);
    assert!(e.contains("already bound to key 'k'"), "{e}");
    // After SWAPDB the binding lives in db 1: flushing db 0 leaves it.
    raw(&mut c, &["SWAPDB", "0", "1"]).unwrap();
    raw(&mut c, &["SELECT", "0"]).unwrap();
    raw(&mut c, &["FLUSHDB"]).unwrap();
    let e = err(&mut c, &["MMAP", "other", "k.f64"]);
    assert!(e.contains("already bound to key 'k'"), "{e}");
    // MOVE carries it back to db 0; flushing db 1 leaves it, flushing db 0 frees it.
    raw(&mut c, &["SELECT", "1"]).unwrap();
    assert_eq!(int(&mut c, &["MOVE", "k", "0"]), 1);
    raw(&mut c, &["FLUSHDB"]).unwrap();
    assert!(err(&mut c, &["MMAP", "other", "k.f64"]).contains("already bound"));
    raw(&mut c, &["SELECT", "0"]).unwrap();
    raw(&mut c, &["FLUSHDB", "ASYNC"]).unwrap();
    assert_eq!(int(&mut c, &["MMAP", "other", "k.f64"]), 3);
}

#[test]
fn rename_move_and_swapdb_carry_the_binding() {
    let s = Server::start();
    let mut c = setup(&s);
    raw(&mut c, &["RENAME", "k", "r"]).unwrap();
    assert_eq!(int(&mut c, &["MMAP.COUNT", "r"]), 3);
    assert_eq!(int(&mut c, &["MOVE", "r", "1"]), 1);
    raw(&mut c, &["SELECT", "1"]).unwrap();
    assert_eq!(int(&mut c, &["MMAP.ADD", "r", "4"]), 1);
    raw(&mut c, &["SWAPDB", "0", "1"]).unwrap();
    raw(&mut c, &["SELECT", "0"]).unwrap();
    assert_eq!(bulk(&mut c, &["MMAP.GET", "r", "3"]).as_deref(), Some("4"));
    assert_eq!(file_values(&s.data().join("k.f64")), vec![1.0, 2.0, 3.0, 4.0]);
    // Errors about the file name the key under its current name.
    raw(&mut c, &["RENAME", "r", "renamed"]).unwrap();
    let e = err(&mut c, &["MMAP", "other", "k.f64"]);
    assert_eq!(e, "ERR cannot map 'k.f64': the file is already bound to key 'renamed'");
}

#[test]
fn copy_is_refused_with_a_clear_error() {
    let s = Server::start();
    let mut c = setup(&s);
    let e = err(&mut c, &["COPY", "k", "k2"]);
    assert!(e.starts_with("ERR") && e.contains("not supported"), "{e}");
    assert_eq!(int(&mut c, &["EXISTS", "k2"]), 0);
    file_is_intact(&s);
}

#[test]
fn dump_and_restore_move_a_binding() {
    let s = Server::start();
    let mut c = setup(&s);
    let dump: Vec<u8> = redis::cmd("DUMP").arg("k").query(&mut c).unwrap();
    // While the file is bound, a restored copy would share it: refused.
    let e = redis::cmd("RESTORE")
        .arg("k2")
        .arg(0)
        .arg(&dump)
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(error_text(&e).starts_with("ERR"), "{e}");
    assert_eq!(int(&mut c, &["EXISTS", "k2"]), 0);
    assert!(s.log().contains("already bound to key 'k'"), "{}", s.log());
    // Once the key is gone, RESTORE binds the file again.
    int(&mut c, &["DEL", "k"]);
    redis::cmd("RESTORE")
        .arg("k2")
        .arg(0)
        .arg(&dump)
        .query::<()>(&mut c)
        .unwrap();
    assert_eq!(int(&mut c, &["MMAP.COUNT", "k2"]), 3);
    file_is_intact(&s);
}

#[test]
fn every_write_fires_a_keyspace_event() {
    let s = Server::start();
    let mut c = s.conn();
    raw(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Kd"]).unwrap();
    let mut sub = s.conn();
    let mut pubsub = sub.as_pubsub();
    pubsub.psubscribe("__keyspace@0__:*").unwrap();
    pubsub
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    int(&mut c, &["MMAP", "k", "k.f64"]);
    int(&mut c, &["MMAP.ADD", "k", "1", "2"]);
    int(&mut c, &["MMAP.SET", "k", "0", "5"]);
    bulk(&mut c, &["MMAP.POP", "k"]);
    int(&mut c, &["MMAP.CLEAR", "k"]);
    // Reads and no-op writes fire nothing.
    int(&mut c, &["MMAP.COUNT", "k"]);
    int(&mut c, &["MMAP.SET", "k", "9", "1"]);
    int(&mut c, &["MMAP.CLEAR", "k"]);
    int(&mut c, &["MMAP", "k", "k.f64"]);
    int(&mut c, &["MMAP.ADD", "k", "7"]);
    int(&mut c, &["MMAP.RESIZE", "k", "3"]);
    int(&mut c, &["MMAP.RESIZE", "k", "3"]);
    int(&mut c, &["MMAP.SETRANGE", "k", "1", "12345678"]);
    int(&mut c, &["MMAP.APPEND", "k", "12345678"]);
    // Nothing written: no event.
    int(&mut c, &["MMAP.SETRANGE", "k", "1", ""]);
    int(&mut c, &["MMAP.APPEND", "k", ""]);
    raw(&mut c, &["MMAP.RANGE", "k", "0", "-1", "BLOB"]).unwrap();
    raw(&mut c, &["MMAP.STATS", "k"]).unwrap();
    bulk(&mut c, &["MMAP.POP", "k"]);
    let mut got = Vec::new();
    for _ in 0..10 {
        let m = pubsub.get_message().unwrap();
        assert_eq!(m.get_channel_name(), "__keyspace@0__:k");
        got.push(m.get_payload::<String>().unwrap());
    }
    assert_eq!(
        got,
        vec![
            "mmap",
            "vadd",
            "vset",
            "vpop",
            "vclear",
            "vadd",
            "vresize",
            "vsetrange",
            "vappend",
            "vpop"
        ]
    );
}

#[test]
fn info_reports_keys_bytes_and_errors() {
    let s = Server::start();
    let mut c = setup(&s);
    let _ = err(&mut c, &["MMAP.GET", "k", "x"]);
    let text = info(&mut c);
    for line in [
        "mmap_keys:1",
        "mmap_file_bytes:24",
        "mmap_errors:1",
        "mmap_broken_keys:0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in {text}");
    }
    assert!(text.contains("mmap_reserved_bytes:"), "{text}");
    int(&mut c, &["DEL", "k"]);
    let text = info(&mut c);
    assert!(text.lines().any(|l| l == "mmap_keys:0"), "{text}");
    assert!(text.lines().any(|l| l == "mmap_file_bytes:0"), "{text}");
}

#[test]
fn memory_usage_counts_the_binding_not_the_file() {
    let s = Server::start();
    let mut c = setup(&s);
    let values: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    let _: i64 = redis::cmd("MMAP.ADD").arg("k").arg(&values).query(&mut c).unwrap();
    let n = int(&mut c, &["MEMORY", "USAGE", "k"]);
    assert!(n > 0 && n < 4096, "{n}");
    // The module's own heap: a longer path and key name cost more.
    let long = format!("{}.f64", "p".repeat(200));
    let name = "k".repeat(300);
    int(&mut c, &["MMAP", &name, &long]);
    let m = int(&mut c, &["MEMORY", "USAGE", &name]);
    assert!(m >= n + 200 + 300, "{m} vs {n}");
}

#[test]
fn appends_taken_back_in_the_same_pass_leave_the_byte_counters_exact() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["MMAP", "k", "a.f64"]), 0);
    let takes_back: [&[&str]; 3] = [&["MMAP.POP", "k"], &["MMAP.CLEAR", "k"], &["MMAP.RESIZE", "k", "0"]];
    for (atomic, undo) in [true, false]
        .into_iter()
        .flat_map(|a| takes_back.iter().map(move |u| (a, u)))
    {
        let mut p = redis::pipe();
        if atomic {
            p.atomic();
        }
        p.cmd("MMAP.ADD").arg("k").arg("1");
        p.cmd(undo[0]).arg(&undo[1..]);
        let _: Vec<Value> = p.query(&mut c).unwrap();
        let what = format!("ADD then {undo:?}, atomic {atomic}");
        assert_eq!(int(&mut c, &["MMAP.COUNT", "k"]), 0, "{what}");
        assert_eq!(file_len(&s.data().join("a.f64")), 0, "{what}");
        assert_eq!(mmap_stat(&mut c, "file_bytes"), 0, "{what}");
    }
    // Held appends that stay are counted once.
    let mut p = redis::pipe();
    p.cmd("MMAP.ADD")
        .arg("k")
        .arg("1")
        .cmd("MMAP.ADD")
        .arg("k")
        .arg("2")
        .cmd("MMAP.POP")
        .arg("k");
    let _: Vec<Value> = p.query(&mut c).unwrap();
    assert_eq!(mmap_stat(&mut c, "file_bytes"), 8);
    assert_eq!(int(&mut c, &["DEL", "k"]), 1);
    assert_eq!(mmap_stat(&mut c, "file_bytes"), 0);
}
