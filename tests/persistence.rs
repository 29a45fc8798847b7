//! Persistence (SPEC section 4): the AOF replays every write idempotently,
//! with and without the RDB preamble, before and after BGREWRITEAOF, and a
//! crash loses no acknowledged write and applies none twice.

mod common;

use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;

/// Bit patterns that text must carry exactly: NaN payloads, infinities,
/// negative zero, subnormals, tiny and huge values.
fn special() -> Vec<f64> {
    vec![
        f64::from_bits(0x7ff0_0000_0000_0001),
        f64::from_bits(0xfff8_0000_0000_0abc),
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        f64::from_bits(1),
        2.2250738585072e-308,
        1e-20,
        0.1,
        f64::MAX,
        -123456.789,
    ]
}

/// 100 values, as another program would have written them before `MMAP`.
fn initial() -> Vec<f64> {
    let mut v: Vec<f64> = (0..100).map(|i| i as f64 * 0.1 - 3.0).collect();
    for (i, x) in special().into_iter().enumerate() {
        v[i * 7] = x;
    }
    v
}

fn run(c: &mut redis::Connection, args: &[&str]) {
    raw(c, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
}

fn vadd(c: &mut redis::Connection, key: &str, values: &[String]) {
    let n: i64 = redis::cmd("MMAP.ADD").arg(key).arg(values).query(c).unwrap();
    assert_eq!(n, values.len() as i64);
}

/// Every kind of write, on `k` (a file that held 100 values before MMAP)
/// and `n` (a file MMAP created).
fn writes_before(c: &mut redis::Connection) {
    // One pair out of range: skipped here, and so on replay.
    run(
        c,
        &["MMAP.SET", "k", "0", "0.1", "5", "nan(0x1)", "99", "-0", "500", "7"],
    );
    let many: Vec<String> = special()
        .iter()
        .chain([1.5, 2.5, -7.0].iter())
        .cycle()
        .take(50)
        .map(|&x| bulk_text(x))
        .collect();
    vadd(c, "k", &many);
    for i in 0..10 {
        run(c, &["MMAP.ADD", "k", &format!("{}e-3", i + 1)]);
    }
    for _ in 0..3 {
        run(c, &["MMAP.POP", "k"]);
    }
    run(c, &["MMAP.RESIZE", "k", "300"]);
    run(c, &["MMAP.SET", "k", "250", "1e-20", "299", "-inf"]);
    run(c, &["MMAP.RESIZE", "k", "200"]);
    run(c, &["MMAP.SET", "k", "150", "2.5"]);
    // Raw elements: in place at absolute positions, and appended.
    run_bytes(c, &[b"MMAP.SETRANGE", b"k", b"190", &le(&[0.5, -1.25])]);
    run_bytes(c, &[b"MMAP.APPEND", b"k", &le(&special()[..3])]);
    run(c, &["MMAP.ADD", "n", "1", "2", "3"]);
    run(c, &["MMAP.CLEAR", "n"]);
    run(c, &["MMAP.ADD", "n", "4", "5", "6", "7"]);
    run(c, &["MMAP.POP", "n"]);
    run(c, &["MMAP.SET", "n", "0", "-0"]);
    run(c, &["MMAP.ADD", "a", "1"]);
    run(c, &["MMAP.ADD", "a", "2", "3"]);
    run(c, &["MMAP.POP", "p"]);
    run(c, &["MMAP.SET", "p", "0", "-1.5"]);
    run(c, &["MMAP.POP", "p"]);
    // The typed keys: every kind of write, in their own widths.
    run(c, &["MMAP.ADD", "i", "1", "-2", "2147483647", "-2147483648"]);
    run(c, &["MMAP.SET", "i", "1", "-7", "9", "5"]);
    run(c, &["MMAP.POP", "i"]);
    run(c, &["MMAP.RESIZE", "i", "10"]);
    run(c, &["MMAP.SET", "i", "9", "42"]);
    run_bytes(
        c,
        &[
            b"MMAP.SETRANGE",
            b"i",
            b"2",
            &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 7, 0, 0, 0x80],
        ],
    );
    run_bytes(c, &[b"MMAP.APPEND", b"i", &[9, 9, 9, 9, 0, 0, 0, 0x7f]]);
    run(c, &["MMAP.SET", "h", "0", "0.1", "1", "nan(0x1)", "2", "-inf"]);
    run(c, &["MMAP.ADD", "h", "65504", "6e-8", "-0", "nan(0x3ff)"]);
    run(c, &["MMAP.POP", "h"]);
    run(c, &["MMAP.RESIZE", "h", "30"]);
    run_bytes(c, &[b"MMAP.APPEND", b"h", &[0x01, 0x7c, 0x00, 0x3c]]);
    run_bytes(c, &[b"MMAP.SETRANGE", b"h", b"0", &[0xff, 0xfb]]);
}

fn writes_after(c: &mut redis::Connection) {
    let nine: Vec<String> = (0..9).map(|i| format!("{i}.25")).collect();
    vadd(c, "k", &nine);
    run(c, &["MMAP.SET", "k", "10", "3.25"]);
    run(c, &["MMAP.POP", "k"]);
    run(c, &["MMAP.RESIZE", "k", "180"]);
    run(c, &["MMAP.ADD", "k", "1.5"]);
    run(c, &["MMAP.RESIZE", "k", "190"]);
    run(c, &["MMAP.SET", "k", "185", "5e-324"]);
    run(c, &["MMAP.ADD", "n", "8", "nan"]);
    run(c, &["MMAP.SET", "n", "1", "inf"]);
    run(c, &["MMAP.ADD", "a", "4"]);
    run(c, &["MMAP.POP", "p"]);
    run(c, &["MMAP.ADD", "i", "-5"]);
    run(c, &["MMAP.SET", "h", "3", "1.5", "29", "-2"]);
    run(c, &["MMAP.ADD", "h", "2"]);
    run_bytes(c, &[b"MMAP.SETRANGE", b"h", b"31", &[0x00, 0x80]]);
    run_bytes(
        c,
        &[b"MMAP.APPEND", b"k", &le(&[7.0, f64::from_bits(0x7ff4_0000_0000_0001)])],
    );
    run_bytes(c, &[b"MMAP.SETRANGE", b"k", b"0", &le(&[-3.5])]);
}

fn run_bytes(c: &mut redis::Connection, args: &[&[u8]]) {
    raw_bytes(c, args).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(args[0])));
}

/// Doubles as the file holds them.
fn le(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The text the module itself would send for a value.
fn bulk_text(x: f64) -> String {
    if x.is_nan() {
        let frac = x.to_bits() & ((1 << 52) - 1);
        let sign = if x.is_sign_negative() { "-" } else { "" };
        return if frac == 1 << 51 {
            format!("{sign}nan")
        } else {
            format!("{sign}nan(0x{frac:x})")
        };
    }
    format!("{x:e}")
}

/// The keys, their files and element sizes: `k` gets every kind of write,
/// `n`'s file is created by MMAP, `a` only grows by VADD and `p` only
/// shrinks by VPOP, so that a relative append or pop replayed twice would
/// show; `i` (int32, created by MMAP) and `h` (float16) are typed.
const KEYS: [(&str, &str, usize); 6] = [
    ("k", "k.f64", 8),
    ("n", "n.f64", 8),
    ("a", "a.f64", 8),
    ("p", "p.f64", 8),
    ("i", "i.i32", 4),
    ("h", "h.f16", 2),
];

/// Each key's file, or `None` where it does not exist.
type Files = Vec<Option<Vec<u8>>>;

fn files(s: &Server) -> Files {
    KEYS.iter()
        .map(|(_, file, _)| fs::read(s.data().join(file)).ok())
        .collect()
}

fn put_back(s: &Server, f: &Files) {
    for ((_, file, _), content) in KEYS.iter().zip(f) {
        let path = s.data().join(file);
        match content {
            Some(bytes) => fs::write(&path, bytes).unwrap(),
            None => {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// Every file holds exactly `want`, and VCOUNT agrees with its size.
fn check(s: &Server, want: &Files, when: &str) {
    let got = files(s);
    let mut c = s.conn();
    for (((key, _, size), got), want) in KEYS.iter().zip(&got).zip(want) {
        let (got, want) = (got.as_ref().unwrap(), want.as_ref().unwrap());
        assert!(
            got == want,
            "{when}: {key} differs: {} bytes, want {}",
            got.len(),
            want.len()
        );
        assert_eq!(
            int(&mut c, &["MMAP.COUNT", key]) as usize * size,
            got.len(),
            "{when}: VCOUNT {key}"
        );
    }
}

fn survives_restarts(preamble: &str, rewrite: bool) {
    let mut s = aof_server(preamble);
    write_values(&s.data().join("k.f64"), &initial());
    write_values(&s.data().join("a.f64"), &initial()[..10]);
    write_values(&s.data().join("p.f64"), &initial()[..20]);
    // 20 float16 values, NaN payloads and subnormals among them.
    let halves: Vec<u8> = (0..20u16)
        .flat_map(|i| (i.wrapping_mul(0x0f37) ^ 0x7c01).to_le_bytes())
        .collect();
    fs::write(s.data().join("h.f16"), halves).unwrap();
    let mut log_start = files(&s);
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["MMAP", "k", "k.f64"]), 100);
    assert_eq!(int(&mut c, &["MMAP", "n", "n.f64"]), 0);
    assert_eq!(int(&mut c, &["MMAP", "a", "a.f64"]), 10);
    assert_eq!(int(&mut c, &["MMAP", "p", "p.f64"]), 20);
    assert_eq!(int(&mut c, &["MMAP", "i", "i.i32", "TYPE", "int32"]), 0);
    assert_eq!(int(&mut c, &["MMAP", "h", "h.f16", "TYPE", "float16"]), 20);
    writes_before(&mut c);
    if rewrite {
        rewrite_aof(&mut c);
        log_start = files(&s);
    }
    writes_after(&mut c);
    let want = files(&s);
    drop(c);

    // Replayed over files that already hold every write (a crash).
    s.kill_and_restart();
    check(&s, &want, "after SIGKILL");
    // A clean restart.
    s.restart();
    check(&s, &want, "after SHUTDOWN");
    // Replayed over the files as they were when the log began.
    s.stop();
    put_back(&s, &log_start);
    s.start_again();
    check(&s, &want, "from the files as the log began");

    s.stop();
    put_back(&s, &vec![None; KEYS.len()]);
    s.start_again();
    let mut c = s.conn();
    if preamble == "no" && rewrite {
        // The rewritten AOF alone rebuilds both files.
        check(&s, &want, "from the rewritten AOF alone");
    } else {
        // `n`'s whole content is in the log, `k`'s first 100 values never
        // were: `n` comes back, `k` says its file is gone, and no empty
        // file takes its place.
        let e = err(&mut c, &["MMAP.COUNT", "k"]);
        assert!(e.starts_with("ERR key 'k' is bound to 'k.f64'"), "{e}");
        assert!(!s.data().join("k.f64").exists());
        if rewrite {
            // With the preamble, the rewrite saved bindings, not content.
            let e = err(&mut c, &["MMAP.COUNT", "n"]);
            assert!(e.starts_with("ERR key 'n' is bound to 'n.f64'"), "{e}");
        } else {
            assert_eq!(fs::read(s.data().join("n.f64")).ok(), want[1]);
        }
    }
}

#[test]
fn aof_with_preamble_replays_exactly() {
    survives_restarts("yes", false);
}

#[test]
fn aof_without_preamble_replays_exactly() {
    survives_restarts("no", false);
}

#[test]
fn aof_with_preamble_replays_exactly_after_a_rewrite() {
    survives_restarts("yes", true);
}

#[test]
fn aof_without_preamble_replays_exactly_after_a_rewrite() {
    survives_restarts("no", true);
}

/// A rewrite child reads the file while the server keeps writing to it:
/// what it reads is partly newer than its fork, and the new log replays
/// those writes again. The result must still be exact.
#[test]
fn writes_during_a_rewrite_still_replay_exactly() {
    let mut s = aof_server("no");
    let mut c = s.conn();
    for i in 0..40 {
        run(&mut c, &["SET", &format!("filler{i}"), "x"]);
    }
    run(&mut c, &["MMAP", "k", "k.f64"]);
    let start: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
    vadd(&mut c, "k", &start);
    // The child sleeps 20 ms after each key: the rewrite takes about a second.
    run(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "20000"]);
    run(&mut c, &["BGREWRITEAOF"]);
    let mut during = 0;
    let mut i = 0u64;
    loop {
        let busy = field(&mut c, "persistence", "aof_rewrite_in_progress") == "1"
            || field(&mut c, "persistence", "aof_rewrite_scheduled") == "1";
        if !busy {
            break;
        }
        during += 1;
        i += 1;
        run(
            &mut c,
            &["MMAP.SET", "k", &((i * 37) % 4000).to_string(), &format!("-{i}.5")],
        );
        run(&mut c, &["MMAP.ADD", "k", &format!("{i}.75"), "1e-300"]);
        run(&mut c, &["MMAP.POP", "k"]);
        if i.is_multiple_of(10) {
            let n = int(&mut c, &["MMAP.COUNT", "k"]);
            run(&mut c, &["MMAP.RESIZE", "k", &(n - 3).to_string()]);
        }
    }
    assert!(during > 5, "the rewrite ended before the writes began ({during})");
    assert_eq!(field(&mut c, "persistence", "aof_last_bgrewrite_status"), "ok");
    run(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    run(&mut c, &["MMAP.SET", "k", "1", "0.5"]);
    let want = fs::read(s.data().join("k.f64")).unwrap();
    drop(c);

    s.kill_and_restart();
    assert!(
        fs::read(s.data().join("k.f64")).unwrap() == want,
        "replay over the written file"
    );
    s.stop();
    fs::remove_file(s.data().join("k.f64")).unwrap();
    s.start_again();
    assert!(
        fs::read(s.data().join("k.f64")).unwrap() == want,
        "rebuilt from the AOF"
    );
    assert_eq!(int(&mut s.conn(), &["MMAP.COUNT", "k"]) as usize * 8, want.len());
}

/// The rewritten AOF spells every value so that it parses back to the same
/// bits, and holds the content as batches of MMAP.ADD after MMAP .. CREATE,
/// all under canonical names.
#[test]
fn the_rewritten_aof_rebuilds_the_file_with_batched_adds() {
    let mut s = aof_server("no");
    let values: Vec<f64> = special().into_iter().cycle().take(2000).collect();
    write_values(&s.data().join("k.f64"), &values);
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["MMAP", "k", "k.f64"]), 2000);
    rewrite_aof(&mut c);
    let dir = s.home.join("appendonlydir");
    let base = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains(".base.aof"))
        .expect("a base AOF");
    let text = String::from_utf8_lossy(&fs::read(&base).unwrap()).into_owned();
    assert!(
        text.contains("$4\r\nmmap\r\n$1\r\nk\r\n$5\r\nk.f64\r\n$4\r\nTYPE\r\n$7\r\nfloat64\r\n$6\r\nCREATE\r\n"),
        "{text:.300}"
    );
    assert!(
        text.contains("$11\r\nmmap.resize\r\n$1\r\nk\r\n$1\r\n0\r\n"),
        "{text:.300}"
    );
    // 2000 values in batches of at most 512: 4 MMAP.ADD commands.
    assert_eq!(text.matches("$8\r\nmmap.add\r\n").count(), 4);
    assert!(!text.contains("VADD") && !text.contains("VRESIZE"), "{text:.300}");
    drop(c);
    s.stop();
    fs::remove_file(s.data().join("k.f64")).unwrap();
    s.start_again();
    let got = file_values(&s.data().join("k.f64"));
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got), bits(&values));
}

/// A broken key stays broken through a rewrite: its file is never created.
#[test]
fn a_rewrite_keeps_a_broken_key_broken() {
    let mut s = aof_server("no");
    write_values(&s.data().join("k.f64"), &[1.0]);
    let mut c = s.conn();
    int(&mut c, &["MMAP", "k", "k.f64"]);
    drop(c);
    s.stop();
    fs::remove_file(s.data().join("k.f64")).unwrap();
    s.start_again();
    let mut c = s.conn();
    assert!(err(&mut c, &["MMAP.COUNT", "k"]).contains("k.f64"));
    rewrite_aof(&mut c);
    drop(c);
    s.kill_and_restart();
    let mut c = s.conn();
    assert!(err(&mut c, &["MMAP.COUNT", "k"]).contains("k.f64"));
    assert!(!s.data().join("k.f64").exists());
}

/// What the log must leave after the first `ops` operations of the stream.
fn model(ops: usize) -> Vec<f64> {
    let mut v = Vec::new();
    for j in 0..ops {
        if j % 4 == 3 {
            v[j / 4] = -(j as f64);
        } else {
            v.push(j as f64);
        }
    }
    v
}

/// A client streams VADD and VSET (or, `bulk`, their raw forms APPEND and
/// SETRANGE); the server dies by SIGKILL mid-stream and comes back from its
/// AOF. Every acknowledged write is there, once.
fn crash(preamble: &str, bulk: bool) {
    let mut s = aof_server(preamble);
    let mut c = s.conn();
    run(&mut c, &["MMAP", "k", "k.f64"]);
    let acked = Arc::new(AtomicUsize::new(0));
    let writer = {
        let acked = acked.clone();
        let mut c = s.conn();
        std::thread::spawn(move || {
            for j in 0usize.. {
                let reply = if bulk {
                    let value = le(&[if j % 4 == 3 { -(j as f64) } else { j as f64 }]);
                    let cmd = if j % 4 == 3 {
                        redis::cmd("MMAP.SETRANGE").arg("k").arg(j / 4).arg(value).clone()
                    } else {
                        redis::cmd("MMAP.APPEND").arg("k").arg(value).clone()
                    };
                    // The kill breaks the connection: not a reply, the end.
                    cmd.query::<redis::Value>(&mut c).map_err(|e| e.to_string())
                } else if j % 4 == 3 {
                    raw(
                        &mut c,
                        &["MMAP.SET", "k", &(j / 4).to_string(), &(-(j as f64)).to_string()],
                    )
                } else {
                    raw(&mut c, &["MMAP.ADD", "k", &j.to_string()])
                };
                if reply.is_err() {
                    return;
                }
                acked.store(j + 1, Ordering::SeqCst);
            }
        })
    };
    wait_for("a few thousand writes", || acked.load(Ordering::SeqCst) > 3000);
    s.kill();
    writer.join().unwrap();
    let acked = acked.load(Ordering::SeqCst);
    s.start_again();
    let path = s.data().join("k.f64");
    let size = fs::metadata(&path).unwrap().len();
    assert_eq!(size % 8, 0);
    assert_eq!(int(&mut s.conn(), &["MMAP.COUNT", "k"]) as u64 * 8, size);
    let got = file_values(&path);
    // The write in flight at the kill may or may not have happened.
    assert!(
        got == model(acked) || got == model(acked + 1),
        "{} values after {acked} acknowledged writes",
        got.len()
    );
}

#[test]
fn a_crash_loses_no_acknowledged_write_with_preamble() {
    crash("yes", false);
}

#[test]
fn a_crash_loses_no_acknowledged_raw_write_with_preamble() {
    crash("yes", true);
}

#[test]
fn a_crash_loses_no_acknowledged_raw_write_without_preamble() {
    crash("no", true);
}

#[test]
fn a_crash_loses_no_acknowledged_write_without_preamble() {
    crash("no", false);
}
