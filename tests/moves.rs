//! Keys that move carry their data: DUMP, RESTORE and MIGRATE between
//! servers that each have their own mmap.dir; snapshots with and without
//! content (`mmap.rdb-content`); full syncs; broken keys that heal; files
//! left behind (`MMAP.UNBOUND`); and payloads and RDBs of encoding 0.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// Values that test every bit: NaN payloads, -0, infinities, subnormals.
fn tricky(n: usize) -> Vec<String> {
    let special = ["nan(0x5)", "-0", "inf", "-inf", "5e-324", "1.5", "-2.25e300"];
    (0..n)
        .map(|i| match special.get(i % 50) {
            Some(s) => s.to_string(),
            None => format!("{}.{}", i, i % 7),
        })
        .collect()
}

fn fill(c: &mut redis::Connection, key: &str, path: &str, n: usize) {
    assert_eq!(int(c, &["MMAP", key, path]), 0);
    for chunk in tricky(n).chunks(5000) {
        let mut args = vec!["MMAP.ADD", key];
        args.extend(chunk.iter().map(String::as_str));
        raw(c, &args).unwrap();
    }
}

fn dump(c: &mut redis::Connection, key: &str) -> Vec<u8> {
    match raw(c, &["DUMP", key]).unwrap() {
        Value::BulkString(b) => b,
        other => panic!("DUMP {key}: {other:?}"),
    }
}

fn restore(c: &mut redis::Connection, key: &str, payload: &[u8], replace: bool) -> Result<Value, String> {
    let mut args: Vec<&[u8]> = vec![b"RESTORE", key.as_bytes(), b"0", payload];
    if replace {
        args.push(b"REPLACE");
    }
    raw_bytes(c, &args)
}

fn unbound(c: &mut redis::Connection) -> Vec<(String, i64)> {
    match raw(c, &["MMAP.UNBOUND"]).unwrap() {
        Value::Array(items) => items
            .chunks(2)
            .map(|p| match p {
                [Value::BulkString(path), Value::Int(n)] => (String::from_utf8(path.clone()).unwrap(), *n),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("MMAP.UNBOUND: {other:?}"),
    }
}

#[test]
fn dump_and_restore_carry_the_content_and_replace_a_stale_file() {
    let (a, b) = (Server::start(), Server::start());
    let (mut ca, mut cb) = (a.conn(), b.conn());
    fill(&mut ca, "k", "k.f64", 20_000);
    // A file left on the target by an earlier move: other values, other length.
    write_values(&b.data().join("k.f64"), &[9.0; 7]);
    let payload = dump(&mut ca, "k");
    assert_eq!(restore(&mut cb, "k", &payload, false).unwrap(), Value::Okay);
    assert_eq!(file_bits(&b.data().join("k.f64")), file_bits(&a.data().join("k.f64")));
    assert_eq!(int(&mut cb, &["MMAP.COUNT", "k"]), 20_000);
    assert_eq!(digest(&mut ca, "k"), digest(&mut cb, "k"));
    // The restored key is bound: writes reach the file.
    int(&mut cb, &["MMAP.SET", "k", "0", "42"]);
    assert_eq!(file_values(&b.data().join("k.f64"))[0], 42.0);
    assert!(
        fs::read_dir(b.data()).unwrap().count() == 1,
        "no hidden file is left beside it"
    );
}

#[test]
fn typed_and_read_only_keys_move_with_their_kind_mode_and_content() {
    let (a, b) = (Server::start(), Server::start());
    let (mut ca, mut cb) = (a.conn(), b.conn());
    int(&mut ca, &["MMAP", "i", "i.i32", "TYPE", "int32"]);
    let ints: Vec<String> = (0..5000).map(|i| (i * 7919 - 20_000_000).to_string()).collect();
    redis::cmd("MMAP.ADD")
        .arg("i")
        .arg(&ints)
        .query::<i64>(&mut ca)
        .unwrap();
    int(&mut ca, &["MMAP", "h", "h.f16", "TYPE", "float16"]);
    int(
        &mut ca,
        &["MMAP.ADD", "h", "0.1", "nan(0x15)", "-6e-8", "65504", "-inf"],
    );
    fs::write(a.data().join("r.u8"), [5u8, 6, 7]).unwrap();
    int(&mut ca, &["MMAP", "r", "r.u8", "TYPE", "uint8", "READONLY"]);
    // i and h by DUMP and RESTORE, r by MIGRATE.
    for key in ["i", "h"] {
        restore(&mut cb, key, &dump(&mut ca, key), false).unwrap();
    }
    let port = b.port.to_string();
    assert_eq!(
        raw(&mut ca, &["MIGRATE", "127.0.0.1", &port, "r", "0", "5000"]).unwrap(),
        Value::Okay
    );
    for (key, file, kind) in [
        ("i", "i.i32", "int32"),
        ("h", "h.f16", "float16"),
        ("r", "r.u8", "uint8"),
    ] {
        assert_eq!(
            fs::read(b.data().join(file)).unwrap(),
            fs::read(a.data().join(file)).unwrap(),
            "{key}"
        );
        assert_eq!(info_text(&mut cb, key, "kind"), kind);
    }
    assert_eq!(
        bulks(&mut cb, &["MMAP.MGET", "h", "0", "1", "2"]),
        [Some("0.1".into()), Some("nan(0x15)".into()), Some("-6e-8".into())]
    );
    assert_eq!(info_text(&mut cb, "r", "read-only"), "1");
    assert_eq!(info_text(&mut cb, "r", "lock"), "shared");
    assert!(err(&mut cb, &["MMAP.POP", "r"]).contains("read-only"));
    assert_eq!(int(&mut ca, &["EXISTS", "r"]), 0);
}

#[test]
fn restore_creates_missing_directories() {
    let (a, b) = (Server::start(), Server::start());
    let (mut ca, mut cb) = (a.conn(), b.conn());
    fs::create_dir_all(a.data().join("deep/er")).unwrap();
    fill(&mut ca, "k", "deep/er/k.f64", 100);
    restore(&mut cb, "k", &dump(&mut ca, "k"), false).unwrap();
    assert_eq!(
        file_bits(&b.data().join("deep/er/k.f64")),
        file_bits(&a.data().join("deep/er/k.f64"))
    );
}

#[test]
fn restore_replace_of_a_key_onto_its_own_file() {
    let s = Server::start();
    let mut c = s.conn();
    fill(&mut c, "k", "k.f64", 1000);
    let payload = dump(&mut c, "k");
    let before = file_bits(&s.data().join("k.f64"));
    int(&mut c, &["MMAP.SET", "k", "1", "7"]);
    int(&mut c, &["MMAP.ADD", "k", "8"]);
    assert_eq!(restore(&mut c, "k", &payload, true).unwrap(), Value::Okay);
    assert_eq!(file_bits(&s.data().join("k.f64")), before, "the payload is the truth");
    assert_eq!(int(&mut c, &["MMAP.COUNT", "k"]), 1000);
    int(&mut c, &["MMAP.SET", "k", "1", "3"]);
    assert_eq!(file_values(&s.data().join("k.f64"))[1], 3.0);
    assert_eq!(mmap_stat(&mut c, "keys"), 1);
    assert_eq!(mmap_stat(&mut c, "descriptors_in_use"), 1, "the old file is closed");
}

#[test]
fn restore_refuses_a_path_another_key_holds_and_changes_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    fill(&mut c, "k", "k.f64", 100);
    let payload = dump(&mut c, "k");
    int(&mut c, &["MMAP.SET", "k", "0", "5"]);
    let before = file_bits(&s.data().join("k.f64"));
    let e = restore(&mut c, "other", &payload, false).unwrap_err();
    assert!(e.contains("Bad data format"), "{e}");
    assert_eq!(file_bits(&s.data().join("k.f64")), before);
    assert_eq!(int(&mut c, &["EXISTS", "other"]), 0);
    let log = s.log();
    assert!(
        log.contains("key 'other': file 'k.f64' cannot be used: the file is already bound to key 'k'"),
        "{log}"
    );
    // RESTORE REPLACE of another key onto the same path: refused too.
    fill(&mut c, "other", "o.f64", 3);
    assert!(restore(&mut c, "other", &payload, true).is_err());
    assert_eq!(int(&mut c, &["MMAP.COUNT", "other"]), 3);
    assert_eq!(fs::read_dir(s.data()).unwrap().count(), 2, "no hidden file is left");
}

#[test]
fn restore_refuses_a_file_another_process_has_locked() {
    let (a, b) = (Server::start(), Server::start());
    let (mut ca, mut cb) = (a.conn(), b.conn());
    fill(&mut ca, "k", "k.f64", 10);
    // A third server on b's directory holds the file.
    let holder = Server::with(Opts {
        module_args: vec!["dir".into(), b.data().display().to_string()],
        ..Opts::default()
    });
    write_values(&b.data().join("k.f64"), &[1.0]);
    assert_eq!(int(&mut holder.conn(), &["MMAP", "k", "k.f64"]), 1);
    assert!(restore(&mut cb, "k", &dump(&mut ca, "k"), false).is_err());
    assert_eq!(file_values(&b.data().join("k.f64")), vec![1.0]);
    assert!(b.log().contains("the file is locked by another process"), "{}", b.log());
}

#[test]
fn migrate_moves_the_key_and_leaves_the_source_file_as_del_does() {
    let (a, b) = (Server::start(), Server::start());
    let (mut ca, mut cb) = (a.conn(), b.conn());
    fill(&mut ca, "k", "k.f64", 50_000);
    let bits = file_bits(&a.data().join("k.f64"));
    let port = b.port.to_string();
    let reply = raw(&mut ca, &["MIGRATE", "127.0.0.1", &port, "k", "0", "10000"]).unwrap();
    assert_eq!(reply, Value::Okay);
    assert_eq!(int(&mut ca, &["EXISTS", "k"]), 0);
    assert_eq!(file_bits(&b.data().join("k.f64")), bits);
    assert_eq!(file_bits(&a.data().join("k.f64")), bits, "the source keeps its file");
    assert_eq!(unbound(&mut ca), vec![("k.f64".to_string(), 400_000)]);
    assert_eq!(unbound(&mut cb), vec![]);
    // And back, onto the file it left behind.
    int(&mut cb, &["MMAP.SET", "k", "2", "-1"]);
    let port = a.port.to_string();
    raw(&mut cb, &["MIGRATE", "127.0.0.1", &port, "k", "0", "10000"]).unwrap();
    assert_eq!(file_values(&a.data().join("k.f64"))[2], -1.0);
    assert_eq!(unbound(&mut ca), vec![]);
}

#[test]
fn a_payload_larger_than_the_targets_bulk_limit_fails_and_the_key_stays() {
    let a = Server::start();
    let b = Server::with(Opts {
        conf: vec!["proto-max-bulk-len 1mb".into()],
        ..Opts::default()
    });
    let mut ca = a.conn();
    fill(&mut ca, "k", "k.f64", 200_000);
    let bits = file_bits(&a.data().join("k.f64"));
    let port = b.port.to_string();
    assert!(raw(&mut ca, &["MIGRATE", "127.0.0.1", &port, "k", "0", "5000"]).is_err());
    let mut ca = a.conn();
    assert_eq!(int(&mut ca, &["MMAP.COUNT", "k"]), 200_000);
    assert_eq!(file_bits(&a.data().join("k.f64")), bits);
    assert_eq!(int(&mut b.conn(), &["EXISTS", "k"]), 0);
}

#[test]
fn payloads_and_rdbs_of_encoding_0_still_load() {
    // Written by the version before content was carried: paths only.
    let s = Server::start();
    let mut c = s.conn();
    write_values(&s.data().join("a.f64"), &[5.0, 6.0]);
    let old = fs::read(fixture("encoding-0.dump")).unwrap();
    assert_eq!(restore(&mut c, "a", &old, false).unwrap(), Value::Okay);
    assert_eq!(
        bulks(&mut c, &["MMAP.MGET", "a", "0", "1"]),
        [Some("5".into()), Some("6".into())]
    );

    let mut s = Server::start();
    s.stop();
    start_from_fixture_rdb(&mut s, "encoding-0.rdb");
    check_fixture_keys(&mut s.conn(), "encoding-0.rdb");
    // Saved again, in the current encoding, and loaded back.
    s.restart();
    assert_eq!(int(&mut s.conn(), &["MMAP.COUNT", "a"]), 3);
}

fn content_server(content: &str) -> Server {
    Server::with(with_content(content))
}

/// A server whose snapshots carry content (`yes`) or paths only (`no`).
fn with_content(content: &str) -> Opts {
    Opts {
        conf: vec![format!("mmap.rdb-content {content}")],
        ..Opts::default()
    }
}

#[test]
fn rdb_content_is_off_by_default_and_a_snapshot_then_holds_paths_only() {
    let mut s = Server::start();
    let mut c = s.conn();
    assert_eq!(config_get(&mut c, "mmap.rdb-content"), ["mmap.rdb-content", "no"]);
    fill(&mut c, "k", "k.f64", 100_000);
    raw(&mut c, &["SAVE"]).unwrap();
    assert!(file_len(&s.home.join("dump.rdb")) < 10_000);
    s.stop();
    fs::remove_file(s.data().join("k.f64")).unwrap();
    s.start_again();
    let e = err(&mut s.conn(), &["MMAP.GET", "k", "0"]);
    assert!(e.contains("no such file"), "{e}");
}

#[test]
fn with_rdb_content_a_snapshot_recreates_missing_or_corrupt_files_and_an_existing_file_wins() {
    let mut s = content_server("yes");
    let mut c = s.conn();
    fill(&mut c, "gone", "gone.f64", 300_000);
    fill(&mut c, "torn", "torn.f64", 10);
    fill(&mut c, "newer", "newer.f64", 10);
    fill(&mut c, "empty", "empty.f64", 0);
    let (gone, torn) = (
        file_bits(&s.data().join("gone.f64")),
        file_bits(&s.data().join("torn.f64")),
    );
    raw(&mut c, &["SAVE"]).unwrap();
    assert!(
        file_len(&s.home.join("dump.rdb")) > 200_000,
        "the RDB holds the content"
    );
    // Writes after the snapshot live only in the files.
    int(&mut c, &["MMAP.ADD", "newer", "11"]);
    s.kill();
    fs::remove_file(s.data().join("gone.f64")).unwrap();
    fs::write(s.data().join("torn.f64"), b"12345").unwrap();
    s.start_again();
    let mut c = s.conn();
    assert_eq!(file_bits(&s.data().join("gone.f64")), gone);
    assert_eq!(file_bits(&s.data().join("torn.f64")), torn);
    assert_eq!(
        int(&mut c, &["MMAP.COUNT", "newer"]),
        11,
        "the file, newer than the snapshot, wins"
    );
    assert_eq!(int(&mut c, &["MMAP.COUNT", "empty"]), 0);
    assert_eq!(mmap_stat(&mut c, "broken_keys"), 0);
    // A file that is there but cannot be used otherwise is not replaced.
    s.stop();
    let torn_path = s.data().join("torn.f64");
    fs::remove_file(&torn_path).unwrap();
    fs::create_dir(&torn_path).unwrap();
    s.start_again();
    let e = err(&mut s.conn(), &["MMAP.COUNT", "torn"]);
    assert!(e.contains("a directory"), "{e}");
}

#[test]
fn rdb_content_can_be_switched_at_run_time_and_goes_into_the_aof_preamble() {
    let mut s = Server::with(aof_opts("yes"));
    let mut c = s.conn();
    fill(&mut c, "k", "k.f64", 50_000);
    let bits = file_bits(&s.data().join("k.f64"));
    raw(&mut c, &["CONFIG", "SET", "mmap.rdb-content", "yes"]).unwrap();
    rewrite_aof(&mut c);
    s.kill();
    fs::remove_file(s.data().join("k.f64")).unwrap();
    s.start_again();
    assert_eq!(file_bits(&s.data().join("k.f64")), bits);
    let e = err(&mut s.conn(), &["CONFIG", "SET", "mmap.rdb-content", "maybe"]);
    assert!(e.contains("mmap.rdb-content") || e.contains("argument"), "{e}");
}

#[test]
fn a_bgsave_child_that_cannot_read_a_file_fails_the_save() {
    let s = Server::with(Opts {
        module: fault_module_path(),
        ..with_content("yes")
    });
    let mut c = s.conn();
    fill(&mut c, "k", "k.f64", 2000);
    raw(&mut c, &["MMAP.FAULT", "read", "on"]).unwrap();
    raw(&mut c, &["BGSAVE"]).unwrap();
    wait_for("the failed BGSAVE", || {
        field(&mut c, "persistence", "rdb_bgsave_in_progress") == "0"
            && field(&mut c, "persistence", "rdb_last_bgsave_status") == "err"
    });
    assert!(s.log().contains("abandoning the save"), "{}", s.log());
    raw(&mut c, &["MMAP.FAULT", "read", "off"]).unwrap();
}

/// A replica of `master` whose mmap.dir is `dir`, once its link is up.
fn replica_in(master: &Server, dir: &Path) -> Server {
    let opts = Opts {
        module_args: vec!["dir".into(), dir.display().to_string()],
        ..Opts::default()
    };
    replica_of(master, opts)
}

fn master_with(content: &str, diskless: &str) -> Server {
    let mut o = with_content(content);
    o.conf.push("repl-diskless-sync-delay 0".into());
    o.conf.push(format!("repl-diskless-sync {diskless}"));
    Server::with(o)
}

#[test]
fn a_full_sync_with_content_gives_a_replica_without_files_every_file() {
    for diskless in ["yes", "no"] {
        let m = master_with("yes", diskless);
        let mut cm = m.conn();
        fill(&mut cm, "k", "k.f64", 100_000);
        fs::create_dir_all(m.data().join("sub")).unwrap();
        fill(&mut cm, "s", "sub/s.f64", 10);
        // A stale file on the replica: the master's content replaces it.
        let dir = tempfile::tempdir().unwrap();
        write_values(&dir.path().join("k.f64"), &[1.0; 3]);
        let r = replica_in(&m, dir.path());
        let mut cr = r.conn();
        assert_eq!(
            file_bits(&dir.path().join("k.f64")),
            file_bits(&m.data().join("k.f64")),
            "diskless {diskless}"
        );
        assert_eq!(
            file_bits(&dir.path().join("sub/s.f64")),
            file_bits(&m.data().join("sub/s.f64"))
        );
        // And follows the writes after.
        int(&mut cm, &["MMAP.ADD", "k", "1", "2"]);
        assert_eq!(int(&mut cm, &["WAIT", "1", "5000"]), 1);
        assert_eq!(digest(&mut cm, "k"), digest(&mut cr, "k"));
        assert_eq!(mmap_stat(&mut cr, "broken_keys"), 0);
    }
}

#[test]
fn a_path_only_full_sync_refuses_a_file_of_another_length_until_it_is_fixed() {
    let m = master_with("no", "yes");
    let mut cm = m.conn();
    fill(&mut cm, "k", "k.f64", 1000);
    let dir = tempfile::tempdir().unwrap();
    write_values(&dir.path().join("k.f64"), &[1.0; 999]);
    let r = replica_in(&m, dir.path());
    let mut cr = r.conn();
    let e = err(&mut cr, &["MMAP.GET", "k", "0"]);
    assert!(e.contains("holds 999 values but the master's holds 1000"), "{e}");
    // Still refused a second later: the file has not changed.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(err(&mut cr, &["MMAP.GET", "k", "0"]).contains("stale"));
    // The master's file, copied over: taken at the next read after a second.
    fs::copy(m.data().join("k.f64"), dir.path().join("k.f64")).unwrap();
    let t = Instant::now();
    wait_for("the key to heal", || raw(&mut cr, &["MMAP.COUNT", "k"]).is_ok());
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(digest(&mut cm, "k"), digest(&mut cr, "k"));
    assert_eq!(mmap_stat(&mut cr, "broken_keys"), 0);
    assert!(r.log().contains("key 'k': file 'k.f64' is back"), "{}", r.log());
}

/// Binds `k` to `k.f64` with 10 values, and restarts the server with the
/// file gone: `k` is broken. Returns the file's content.
fn broken_by_restart(s: &mut Server) -> Vec<u8> {
    fill(&mut s.conn(), "k", "k.f64", 10);
    s.stop();
    let saved = fs::read(s.data().join("k.f64")).unwrap();
    fs::remove_file(s.data().join("k.f64")).unwrap();
    s.start_again();
    saved
}

#[test]
fn a_broken_key_heals_when_its_file_is_put_back_at_most_once_a_second() {
    let mut s = Server::start();
    let saved = broken_by_restart(&mut s);
    let mut c = s.conn();
    assert!(err(&mut c, &["MMAP.COUNT", "k"]).contains("no such file"));
    assert_eq!(mmap_stat(&mut c, "broken_keys"), 1);
    fs::write(s.data().join("k.f64"), &saved).unwrap();
    // Tried again at most once a second: reads in between stay broken.
    let first_ok = Instant::now();
    wait_for("the key to heal", || raw(&mut c, &["MMAP.SET", "k", "0", "3"]).is_ok());
    assert!(first_ok.elapsed() <= Duration::from_millis(1500));
    assert_eq!(file_values(&s.data().join("k.f64"))[0], 3.0);
    assert_eq!(mmap_stat(&mut c, "broken_keys"), 0);
    assert_eq!(mmap_stat(&mut c, "keys"), 1);
}

#[test]
fn a_broken_key_tries_its_file_no_more_than_once_a_second() {
    let mut s = Server::start();
    let saved = broken_by_restart(&mut s);
    let mut c = s.conn();
    // A failed read starts the second; the file put back right after is not
    // taken until it has passed.
    assert!(raw(&mut c, &["MMAP.COUNT", "k"]).is_err());
    std::thread::sleep(Duration::from_millis(1050));
    assert!(raw(&mut c, &["MMAP.COUNT", "k"]).is_err());
    let tried = Instant::now();
    fs::write(s.data().join("k.f64"), &saved).unwrap();
    while tried.elapsed() < Duration::from_millis(800) {
        assert!(raw(&mut c, &["MMAP.COUNT", "k"]).is_err());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(int(&mut c, &["MMAP.COUNT", "k"]), 10);
}

#[test]
fn unbound_lists_files_no_key_binds_and_leaves_out_the_servers_own() {
    // mmap.dir is the server's working directory, beside its RDB, AOF,
    // config and log.
    let mut s = Server::with(Opts {
        module_args: vec!["dir".into(), ".".into()],
        conf: vec!["appendonly yes".into()],
        ..Opts::default()
    });
    let mut c = s.conn();
    fill(&mut c, "kept", "kept.f64", 2);
    fill(&mut c, "gone", "gone.f64", 3);
    fs::create_dir_all(s.home.join("sub")).unwrap();
    fill(&mut c, "moved", "sub/moved.f64", 4);
    raw(&mut c, &["SAVE"]).unwrap();
    int(&mut c, &["DEL", "gone", "moved"]);
    fs::write(s.home.join("notes.bin"), b"123").unwrap();
    let expected = vec![
        ("gone.f64".to_string(), 24),
        ("notes.bin".to_string(), 3),
        ("sub/moved.f64".to_string(), 32),
    ];
    assert_eq!(unbound(&mut c), expected);
    // A broken key's file is not offered for removal either.
    s.stop();
    fs::write(s.home.join("kept.f64"), b"12345").unwrap();
    s.start_again();
    let mut c = s.conn();
    assert!(err(&mut c, &["MMAP.COUNT", "kept"]).contains("not a multiple of 8"));
    assert_eq!(unbound(&mut c), expected);
    let e = err(&mut c, &["MMAP.UNBOUND", "x"]);
    assert!(e.contains("wrong number of arguments"), "{e}");
}

#[test]
fn unbound_answers_resp3_with_a_map() {
    let s = Server::start();
    let mut c = s.conn3();
    write_values(&s.data().join("left.f64"), &[1.0]);
    match raw(&mut c, &["MMAP.UNBOUND"]).unwrap() {
        Value::Map(pairs) => assert_eq!(pairs, vec![(Value::BulkString(b"left.f64".to_vec()), Value::Int(8))]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn dump_of_a_broken_key_restores_only_onto_a_usable_file() {
    let mut s = Server::start();
    let mut c = s.conn();
    fill(&mut c, "k", "k.f64", 4);
    s.stop();
    let saved = fs::read(s.data().join("k.f64")).unwrap();
    fs::remove_file(s.data().join("k.f64")).unwrap();
    s.start_again();
    let mut c = s.conn();
    let payload = dump(&mut c, "k");
    let b = Server::start();
    let mut cb = b.conn();
    assert!(restore(&mut cb, "k", &payload, false).is_err(), "no file, no content");
    fs::write(b.data().join("k.f64"), &saved).unwrap();
    assert_eq!(restore(&mut cb, "k", &payload, false).unwrap(), Value::Okay);
    assert_eq!(int(&mut cb, &["MMAP.COUNT", "k"]), 4);
}

#[test]
fn an_aof_replays_restore_replace_of_a_key_onto_its_own_file() {
    let mut s = Server::with(aof_opts("yes"));
    let mut c = s.conn();
    fill(&mut c, "k", "k.f64", 1000);
    let payload = dump(&mut c, "k");
    int(&mut c, &["MMAP.SET", "k", "0", "9"]);
    assert_eq!(restore(&mut c, "k", &payload, true).unwrap(), Value::Okay);
    int(&mut c, &["MMAP.SET", "k", "1", "8"]);
    int(&mut c, &["MMAP.ADD", "k", "7"]);
    let want = file_bits(&s.data().join("k.f64"));
    s.kill_and_restart();
    let mut c = s.conn();
    assert_eq!(file_bits(&s.data().join("k.f64")), want);
    assert_eq!(int(&mut c, &["MMAP.COUNT", "k"]), 1001);
    assert_eq!(mmap_stat(&mut c, "broken_keys"), 0);
    // The same log over a lost file rebuilds it.
    s.kill();
    fs::remove_file(s.data().join("k.f64")).unwrap();
    s.start_again();
    assert_eq!(file_bits(&s.data().join("k.f64")), want);
}

#[test]
fn a_payload_whose_content_could_not_be_read_is_refused() {
    let a = Server::with(Opts {
        module: fault_module_path(),
        ..Opts::default()
    });
    let mut ca = a.conn();
    fill(&mut ca, "k", "k.f64", 10);
    raw(&mut ca, &["MMAP.FAULT", "read", "on"]).unwrap();
    let payload = dump(&mut ca, "k");
    raw(&mut ca, &["MMAP.FAULT", "read", "off"]).unwrap();
    let b = Server::start();
    let mut cb = b.conn();
    write_values(&b.data().join("k.f64"), &[4.0]);
    let e = restore(&mut cb, "k", &payload, false).unwrap_err();
    assert!(e.contains("Bad data format"), "{e}");
    assert!(
        b.log().contains("the saving server could not read its file"),
        "{}",
        b.log()
    );
    assert_eq!(file_values(&b.data().join("k.f64")), vec![4.0], "nothing changed");
    assert_eq!(fs::read_dir(b.data()).unwrap().count(), 1, "no hidden file is left");
    assert!(a.log().contains("save: cannot read 'k.f64'"), "{}", a.log());
}

#[test]
fn a_payload_whose_content_is_malformed_is_refused() {
    let a = Server::start();
    let mut ca = a.conn();
    fill(&mut ca, "k", "k.f64", 3);
    let mut payload = dump(&mut ca, "k");
    // The one piece: an unsigned (opcode 2) of 24 bytes announced, then a
    // string (opcode 5) of 24 bytes. Announce 16 instead.
    let at = payload
        .windows(4)
        .position(|w| w == [2, 24, 5, 24])
        .expect("the piece header");
    payload[at + 1] = 16;
    reseal(&mut payload);
    let b = Server::start();
    let mut cb = b.conn();
    let e = restore(&mut cb, "k", &payload, false).unwrap_err();
    assert!(e.contains("Bad data format"), "{e}");
    assert!(
        b.log()
            .contains("the content is malformed: a piece of 24 bytes where 16 were announced"),
        "{}",
        b.log()
    );
    assert!(!b.data().join("k.f64").exists(), "nothing was created");
    assert_eq!(fs::read_dir(b.data()).unwrap().count(), 0, "no hidden file is left");
}

/// `MMAP a p.f64`, values 1 2 3, `DUMP a`, then the file moves on (9 2 3)
/// before `a` is deleted and the payload restored as `b`: the file is the
/// payload's 1 2 3 again, and `MMAP.SET b 1 5` makes it 1 5 3.
fn restore_an_older_payload(c: &mut redis::Connection) {
    assert_eq!(int(c, &["MMAP", "a", "p.f64"]), 0);
    assert_eq!(int(c, &["MMAP.ADD", "a", "1", "2", "3"]), 3);
    let payload = dump(c, "a");
    assert_eq!(int(c, &["MMAP.SET", "a", "0", "9"]), 1);
    assert_eq!(int(c, &["DEL", "a"]), 1);
    assert_eq!(restore(c, "b", &payload, false).unwrap(), Value::Okay);
    assert_eq!(int(c, &["MMAP.SET", "b", "1", "5"]), 1);
    assert_eq!(
        bulks(c, &["MMAP.MGET", "b", "0", "1", "2"]),
        ["1", "5", "3"].map(|v| Some(v.into()))
    );
}

#[test]
fn a_restore_replayed_from_the_aof_does_what_the_restore_did() {
    for how in ["SIGKILL", "SHUTDOWN NOSAVE", "DEBUG LOADAOF", "rewrite then SIGKILL"] {
        let mut s = Server::with(aof_opts("yes"));
        let mut c = s.conn();
        restore_an_older_payload(&mut c);
        match how {
            "SIGKILL" => s.kill_and_restart(),
            "SHUTDOWN NOSAVE" => {
                assert!(raw(&mut c, &["SHUTDOWN", "NOSAVE"]).is_err(), "the connection closes");
                s.kill();
                s.start_again();
            }
            "DEBUG LOADAOF" => assert_eq!(raw(&mut c, &["DEBUG", "LOADAOF"]).unwrap(), Value::Okay),
            _ => {
                rewrite_aof(&mut c);
                // Writes after the rewrite are replayed over its preamble.
                assert_eq!(int(&mut c, &["MMAP.SET", "b", "2", "4"]), 1);
                s.kill_and_restart();
            }
        }
        let mut c = s.conn();
        let want = if how.starts_with("rewrite") { "4" } else { "3" };
        assert_eq!(
            bulks(&mut c, &["MMAP.MGET", "b", "0", "1", "2"]),
            ["1", "5", want].map(|v| Some(v.into())),
            "{how}"
        );
        assert_eq!(
            file_values(&s.data().join("p.f64")),
            [1.0, 5.0, want.parse().unwrap()],
            "{how}"
        );
        assert_eq!(mmap_stat(&mut c, "keys"), 1, "{how}");
        assert_eq!(mmap_stat(&mut c, "broken_keys"), 0, "{how}");
    }
}

#[test]
fn a_snapshot_still_leaves_a_newer_file_alone() {
    // The payload's mark is what makes a replayed RESTORE win; a snapshot
    // with content has none, and the file, written after it, wins.
    let mut s = Server::with(Opts {
        module_args: vec!["rdb-content".into(), "yes".into()],
        ..Opts::default()
    });
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["MMAP", "k", "k.f64"]), 0);
    assert_eq!(int(&mut c, &["MMAP.ADD", "k", "1", "2"]), 2);
    raw(&mut c, &["SAVE"]).unwrap();
    assert_eq!(int(&mut c, &["MMAP.SET", "k", "0", "7"]), 1);
    s.kill_and_restart();
    let mut c = s.conn();
    assert_eq!(
        bulks(&mut c, &["MMAP.MGET", "k", "0", "1"]),
        ["7", "2"].map(|v| Some(v.into()))
    );
}

/// `MMAP key file`, values 1 2 (and 3), `DUMP key`: the payload.
fn bound_and_dumped(c: &mut redis::Connection, key: &str, file: &str) -> Vec<u8> {
    assert_eq!(int(c, &["MMAP", key, file]), 0);
    assert_eq!(int(c, &["MMAP.ADD", key, "1", "2", "3"]), 3);
    dump(c, key)
}

/// SWAPDB 0 1 sent plainly, inside MULTI, or from a Lua script.
fn swapdb(c: &mut redis::Connection, how: &str) {
    match how {
        "plain" => assert_eq!(raw(c, &["SWAPDB", "0", "1"]).unwrap(), Value::Okay),
        "multi" => {
            let _: Vec<Value> = redis::pipe().atomic().cmd("SWAPDB").arg(0).arg(1).query(c).unwrap();
        }
        _ => {
            raw(c, &["EVAL", "return redis.call('SWAPDB', '0', '1')", "0"]).unwrap();
        }
    }
}

/// For SWAPDB sent plainly, in MULTI and from Lua: a fresh server with
/// `key` bound to `a.f64` (1 2 3) and dumped, then SWAPDB 0 1, then `body`
/// with the server, a connection on db 0, how, and the payload.
fn after_swapdb(key: &str, body: impl Fn(&Server, &mut redis::Connection, &str, &[u8])) {
    for how in ["plain", "multi", "lua"] {
        let s = Server::start();
        let mut c = s.conn();
        let payload = bound_and_dumped(&mut c, key, "a.f64");
        swapdb(&mut c, how);
        body(&s, &mut c, how, &payload);
    }
}

#[test]
fn after_swapdb_restore_replace_finds_the_key_where_it_is_now() {
    after_swapdb("s1", |s, c, how, payload| {
        raw(c, &["SELECT", "1"]).unwrap();
        assert_eq!(int(c, &["MMAP.SET", "s1", "0", "9"]), 1);
        assert_eq!(restore(c, "s1", payload, true).unwrap(), Value::Okay, "{how}");
        assert_eq!(bulk(c, &["MMAP.GET", "s1", "0"]).as_deref(), Some("1"), "{how}");
        assert_eq!(file_values(&s.data().join("a.f64")), [1.0, 2.0, 3.0], "{how}");
        assert_eq!(mmap_stat(c, "keys"), 1, "{how}");
    });
}

#[test]
fn after_swapdb_a_file_keeps_one_key() {
    after_swapdb("k", |s, c, how, payload| {
        // k is in db 1 now; db 0 has no k, but its file is held.
        let e = restore(c, "k", payload, false).unwrap_err();
        assert!(e.contains("Bad data format"), "{how}: {e}");
        assert!(s.log().contains("already bound to key 'k'"), "{how}: {}", s.log());
        assert_eq!(int(c, &["EXISTS", "k"]), 0, "{how}");
        assert_eq!(mmap_stat(c, "keys"), 1, "{how}");
        let mut db1 = s.conn();
        raw(&mut db1, &["SELECT", "1"]).unwrap();
        assert_eq!(int(&mut db1, &["MMAP.SET", "k", "1", "200"]), 1, "{how}");
        assert_eq!(file_values(&s.data().join("a.f64")), [1.0, 200.0, 3.0], "{how}");
        // A flush of db 0 (k is in db 1) leaves the file held...
        raw(c, &["FLUSHDB"]).unwrap();
        assert!(err(c, &["MMAP", "other", "a.f64"]).contains("already bound to key 'k'"));
        // ...and after a reload db 1's k still holds it, with the 200.
        raw(c, &["DEBUG", "RELOAD"]).unwrap();
        assert_eq!(bulk(&mut db1, &["MMAP.GET", "k", "1"]).as_deref(), Some("200"), "{how}");
        assert_eq!(mmap_stat(c, "broken_keys"), 0, "{how}");
        // A flush of db 1 frees it; the payload then restores in db 0.
        raw(&mut db1, &["FLUSHDB"]).unwrap();
        assert_eq!(restore(c, "k", payload, false).unwrap(), Value::Okay, "{how}");
        assert_eq!(file_values(&s.data().join("a.f64")), [1.0, 2.0, 3.0], "{how}");
        assert_eq!(mmap_stat(c, "keys"), 1, "{how}");
    });
}
