//! Long reads on the worker threads: MMAP.STATS, MMAP.RANGE and MMAP.MGET
//! past `mmap.offload-bytes` block their client, run on the workers and
//! reply as inline; every other client is served meanwhile; nothing the
//! main thread or another program does to the key or its file meanwhile
//! makes a worker fault, read freed memory or serve a stale file.
//!
//! The race tests use the test build's `MMAP.FAULT worker <ms>`, which
//! makes each piece of an offloaded read wait before reading: the change
//! under test lands in that window, every time.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use redis::Value;

/// A command sent on a connection of its own, its reply read later.
struct Sent(TcpStream);

fn send(s: &Server, args: &[&str]) -> Sent {
    let mut t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    t.write_all(&out).unwrap();
    Sent(t)
}

impl Sent {
    /// Whether any byte of the reply has arrived.
    fn answered(&self) -> bool {
        self.0.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let got = matches!(self.0.peek(&mut b), Ok(n) if n > 0);
        self.0.set_nonblocking(false).unwrap();
        got
    }

    fn reply(mut self) -> Value {
        self.0.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            let n = self.0.read(&mut chunk).expect("a reply");
            assert!(n > 0, "the server closed the connection");
            buf.extend_from_slice(&chunk[..n]);
            if let Ok(v) = redis::parse_redis_value(&buf) {
                return v;
            }
        }
    }
}

fn threads(c: &mut redis::Connection, n: usize) {
    raw(c, &["CONFIG", "SET", "mmap.threads", &n.to_string()]).unwrap();
}

fn offload_bytes(c: &mut redis::Connection, n: u64) {
    raw(c, &["CONFIG", "SET", "mmap.offload-bytes", &n.to_string()]).unwrap();
}

/// The same command offloaded (with `mmap.threads` 2) and inline (0): the
/// replies, as text (a NaN equals no value, itself included, but prints
/// alike), and whether it was offloaded.
fn both(c: &mut redis::Connection, args: &[&str]) -> (String, String, bool) {
    threads(c, 2);
    let before = mmap_stat(c, "offloaded");
    let offloaded = raw(c, args).unwrap();
    let went = mmap_stat(c, "offloaded") > before;
    threads(c, 0);
    let inline = raw(c, args).unwrap();
    assert_eq!(mmap_stat(c, "offloaded"), before + went as i64);
    (format!("{offloaded:?}"), format!("{inline:?}"), went)
}

/// Random bytes: every bit pattern of every kind, NaNs and infinities among them.
fn random_file(path: &std::path::Path, bytes: usize, seed: u64) {
    let mut rng = Rng(seed);
    fs::write(path, (0..bytes).map(|_| rng.next() as u8).collect::<Vec<u8>>()).unwrap();
}

const THRESHOLD: u64 = 8192;

#[test]
fn offloaded_and_inline_replies_are_equal_for_every_command_and_kind_at_the_threshold() {
    let s = Server::start();
    let mut c = s.conn();
    let mut c3 = s.conn3();
    offload_bytes(&mut c, THRESHOLD);
    for (i, (kind, size)) in KINDS.iter().enumerate() {
        // More than two segments of 65,536 values: STATS splits across threads.
        let n = 140_000;
        let key = format!("k{kind}");
        random_file(&s.data().join(&key), n * size, 7 + i as u64);
        int(&mut c, &["MMAP", &key, &key, "TYPE", kind]);
        let t = THRESHOLD as usize / size;
        for (values, expect) in [(t - 1, false), (t, true), (t + 1, true), (n, true)] {
            let (a, b) = (100.to_string(), (100 + values - 1).to_string());
            for conn in [&mut c, &mut c3] {
                for args in [
                    vec!["MMAP.STATS", &key, &a, &b],
                    vec!["MMAP.RANGE", &key, &a, &b],
                    vec!["MMAP.RANGE", &key, &a, &b, "BLOB"],
                ] {
                    let (off, inl, went) = both(conn, &args);
                    assert_eq!(off, inl, "{args:?}");
                    assert_eq!(went, expect, "{args:?} offloaded");
                }
            }
        }
        // The whole file, by default span, and a span past the end.
        let (off, inl, went) = both(&mut c, &["MMAP.STATS", &key]);
        assert_eq!((off, went), (inl, true));
        let (off, inl, _) = both(&mut c, &["MMAP.RANGE", &key, "139990", "200000", "BLOB"]);
        assert_eq!(off, inl);
        // MGET: each index counts a page (4096 bytes); out of range and
        // negative indices are nil either way.
        for (count, expect) in [(1, false), (2, true), (5, true)] {
            let mut args = vec!["MMAP.MGET".to_string(), key.clone()];
            for j in 0..count {
                args.push(["0", "139999", "140000", "-1", "77777"][j].to_string());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            for conn in [&mut c, &mut c3] {
                let (off, inl, went) = both(conn, &args);
                assert_eq!((off, went), (inl, expect), "{args:?}");
            }
        }
    }
    // A missing key and an empty range are answered inline, as before.
    let (off, inl, went) = both(&mut c, &["MMAP.STATS", "nokey"]);
    assert_eq!((off, went), (inl, false));
}

/// A server with the test build, a float64 key `k` of `n` values `i`.
fn race_server(n: usize) -> (Server, redis::Connection) {
    let s = Server::with(Opts {
        module: fault_module_path(),
        ..Opts::default()
    });
    let mut c = s.conn();
    let values: Vec<f64> = (0..n).map(|i| i as f64).collect();
    write_values(&s.data().join("k.f64"), &values);
    int(&mut c, &["MMAP", "k", "k.f64"]);
    offload_bytes(&mut c, 4096);
    threads(&mut c, 2);
    (s, c)
}

fn stats_of(v: &Value) -> Vec<(String, String)> {
    let Value::Array(items) = v else {
        panic!("a flat array, got {v:?}")
    };
    items
        .chunks(2)
        .map(|p| {
            let text = |x: &Value| match x {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::Int(n) => n.to_string(),
                Value::Nil => "nil".into(),
                other => format!("{other:?}"),
            };
            (text(&p[0]), text(&p[1]))
        })
        .collect()
}

fn count_of(v: &Value) -> i64 {
    stats_of(v)[0].1.parse().unwrap()
}

fn delay(c: &mut redis::Connection, ms: u64) {
    int(c, &["MMAP.FAULT", "worker", &ms.to_string()]);
}

#[test]
fn a_ping_is_answered_while_a_long_stats_runs() {
    let (s, mut c) = race_server(100_000);
    delay(&mut c, 1500);
    let stats = send(&s, &["MMAP.STATS", "k"]);
    // The STATS is on a worker: this client is served first.
    let mut other = s.conn();
    assert_eq!(raw(&mut other, &["PING"]).unwrap(), Value::SimpleString("PONG".into()));
    assert_eq!(bulk(&mut other, &["MMAP.GET", "k", "5"]).as_deref(), Some("5"));
    assert!(!stats.answered(), "the STATS replied before the PING");
    assert_eq!(count_of(&stats.reply()), 100_000);
    // With no threads, the same STATS runs inline: nothing waits on a worker.
    threads(&mut c, 0);
    let stats = send(&s, &["MMAP.STATS", "k"]);
    assert_eq!(count_of(&stats.reply()), 100_000);
    assert_eq!(mmap_stat(&mut c, "workers"), 0);
}

/// Starts a delayed `STATS k`, runs `change` meanwhile, and returns the
/// STATS reply.
fn stats_racing(s: &Server, c: &mut redis::Connection, change: impl FnOnce(&mut redis::Connection)) -> Value {
    delay(c, 400);
    let before = mmap_stat(c, "offloaded");
    let stats = send(s, &["MMAP.STATS", "k"]);
    wait_for("the STATS to be offloaded", || mmap_stat(c, "offloaded") > before);
    change(c);
    let v = stats.reply();
    delay(c, 0);
    v
}

#[test]
fn a_cut_by_the_key_itself_reads_again_on_the_main_thread() {
    for cut in [
        &["MMAP.CLEAR", "k"][..],
        &["MMAP.RESIZE", "k", "10"],
        &["MMAP.POP", "k"],
    ] {
        let (s, mut c) = race_server(100_000);
        let reruns = mmap_stat(&mut c, "offload_reruns");
        let v = stats_racing(&s, &mut c, |c| {
            raw(c, cut).unwrap();
        });
        // The reply is the file after the cut, as if STATS came second:
        // never values past the new end, never zeros.
        let left = int(&mut c, &["MMAP.COUNT", "k"]);
        assert_eq!(count_of(&v), left, "{cut:?}");
        assert_eq!(
            stats_of(&v),
            stats_of(&raw(&mut c, &["MMAP.STATS", "k"]).unwrap()),
            "{cut:?}"
        );
        assert_eq!(mmap_stat(&mut c, "offload_reruns"), reruns + 1, "{cut:?}");
        assert_eq!(mmap_stat(&mut c, "faults"), 0);
    }
}

#[test]
fn a_range_and_an_mget_racing_a_cut_give_the_file_after_it() {
    for read in [
        &["MMAP.RANGE", "k", "0", "-1", "BLOB"][..],
        &["MMAP.RANGE", "k", "99000", "99999"],
    ] {
        let (s, mut c) = race_server(100_000);
        delay(&mut c, 400);
        let before = mmap_stat(&mut c, "offloaded");
        let sent = send(&s, read);
        wait_for("the read to be offloaded", || mmap_stat(&mut c, "offloaded") > before);
        int(&mut c, &["MMAP.RESIZE", "k", "99995"]);
        let v = sent.reply();
        delay(&mut c, 0);
        assert_eq!(
            format!("{v:?}"),
            format!("{:?}", raw(&mut c, read).unwrap()),
            "{read:?}"
        );
        assert_eq!(mmap_stat(&mut c, "faults"), 0);
    }
    let (s, mut c) = race_server(100_000);
    delay(&mut c, 400);
    let indices: Vec<String> = (0..300).map(|i| (i * 333).to_string()).collect();
    let mut args = vec!["MMAP.MGET", "k"];
    args.extend(indices.iter().map(String::as_str));
    let before = mmap_stat(&mut c, "offloaded");
    let sent = send(&s, &args);
    wait_for("the MGET to be offloaded", || mmap_stat(&mut c, "offloaded") > before);
    int(&mut c, &["MMAP.CLEAR", "k"]);
    let Value::Array(got) = sent.reply() else {
        panic!("an array")
    };
    assert!(
        got.iter().all(|v| *v == Value::Nil),
        "every index past the new end: {got:?}"
    );
}

#[test]
fn a_remap_a_delete_and_a_flush_leave_a_running_read_its_view() {
    type Change = fn(&mut redis::Connection, &Server);
    let changes: [(&str, Change); 5] = [
        ("append past the reservation", |c, _| {
            // 4 MiB reservation at least: 600,000 more values remap it.
            let blob = vec![0u8; 600_000 * 8];
            redis::cmd("MMAP.APPEND").arg("k").arg(blob).query::<i64>(c).unwrap();
        }),
        ("DEL", |c, _| {
            int(c, &["DEL", "k"]);
        }),
        ("FLUSHALL", |c, _| {
            raw(c, &["FLUSHALL"]).unwrap();
        }),
        ("DEBUG RELOAD", |c, _| {
            raw(c, &["DEBUG", "RELOAD"]).unwrap();
        }),
        ("RESTORE REPLACE", |c, _| {
            let Value::BulkString(dump) = raw(c, &["DUMP", "k"]).unwrap() else {
                panic!("a payload")
            };
            redis::cmd("RESTORE")
                .arg("k")
                .arg(0)
                .arg(dump)
                .arg("REPLACE")
                .query::<()>(c)
                .unwrap();
        }),
    ];
    for (what, change) in changes {
        let (s, mut c) = race_server(100_000);
        let v = stats_racing(&s, &mut c, |c| change(c, &s));
        // The read is of the key as it was when the STATS ran.
        let st = stats_of(&v);
        assert_eq!(st[0].1, "100000", "{what}");
        assert_eq!(st[2].1, "4999950000", "{what}: the sum of 0..100000");
        assert_eq!(mmap_stat(&mut c, "faults"), 0, "{what}");
        // Nothing stays claimed by the worker: a deleted key's file binds again.
        if what == "DEL" || what == "FLUSHALL" {
            assert_eq!(int(&mut c, &["MMAP", "again", "k.f64"]), 100_000, "{what}");
        }
    }
}

#[test]
fn a_file_cut_by_another_program_is_never_read_past_its_end() {
    let (s, mut c) = race_server(100_000);
    let path = s.data().join("k.f64");
    let v = stats_racing(&s, &mut c, |_| {
        // Not a whole page: the view's last page reads zeros past the end.
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(50_001 * 8)
            .unwrap();
    });
    // Run again on the main thread, which finds the file cut under the key.
    match v {
        Value::ServerError(e) => assert!(format!("{e:?}").contains("IOERR"), "{e:?}"),
        other => panic!("an IOERR, got {other:?}"),
    }
    assert_eq!(mmap_stat(&mut c, "offload_reruns"), 1);
    assert_eq!(raw(&mut c, &["PING"]).unwrap(), Value::SimpleString("PONG".into()));
}

#[test]
fn writes_racing_a_read_give_each_value_old_or_new() {
    let (s, mut c) = race_server(100_000);
    let v = stats_racing(&s, &mut c, |c| {
        // Values 0..100000 become 1 everywhere in the first 1000.
        let ones = vec![0u8; 0]
            .into_iter()
            .chain((0..1000).flat_map(|_| 1f64.to_le_bytes()))
            .collect::<Vec<u8>>();
        redis::cmd("MMAP.SETRANGE")
            .arg("k")
            .arg(0)
            .arg(ones)
            .query::<i64>(c)
            .unwrap();
    });
    let sum: f64 = stats_of(&v)[2].1.parse().unwrap();
    let (old, new) = (4_999_950_000.0, 4_999_950_000.0 - 499_500.0 + 1000.0);
    assert!(
        sum == old || sum == new || (sum > new.min(old) && sum < old.max(new)),
        "{sum}"
    );
}

#[test]
fn a_client_that_leaves_costs_nothing_afterwards() {
    let (s, mut c) = race_server(300_000);
    delay(&mut c, 500);
    let before = mmap_stat(&mut c, "offloaded");
    let stats = send(&s, &["MMAP.STATS", "k"]);
    wait_for("the STATS to be offloaded", || mmap_stat(&mut c, "offloaded") > before);
    drop(stats);
    // Every piece finds its client gone and reads nothing.
    wait_for("the pieces to be abandoned", || {
        mmap_stat(&mut c, "offload_abandoned") >= 2
    });
    assert_eq!(int(&mut c, &["MMAP.COUNT", "k"]), 300_000);
    delay(&mut c, 0);
    assert_eq!(count_of(&raw(&mut c, &["MMAP.STATS", "k"]).unwrap()), 300_000);
}

#[test]
fn shutdown_while_a_worker_reads_is_clean() {
    let (mut s, mut c) = race_server(100_000);
    delay(&mut c, 1000);
    let stats = send(&s, &["MMAP.STATS", "k"]);
    std::thread::sleep(Duration::from_millis(100));
    let _ = raw(&mut c, &["SHUTDOWN", "NOSAVE"]);
    wait_for("the server to exit", || !s.alive());
    drop(stats);
    assert!(!s.log().contains("BUG REPORT"), "{}", s.log());
    s.start_again();
    let mut c = s.conn();
    assert_eq!(
        int(&mut c, &["MMAP.COUNT", "k"]),
        0,
        "saved before the key existed: none"
    );
}

#[test]
fn multi_scripts_and_functions_run_inline_with_the_same_reply() {
    let (s, mut c) = race_server(100_000);
    let alone = raw(&mut c, &["MMAP.STATS", "k"]).unwrap();
    let before = mmap_stat(&mut c, "offloaded");
    let Value::Array(in_multi) = redis::pipe()
        .atomic()
        .cmd("MMAP.STATS")
        .arg("k")
        .query::<Value>(&mut c)
        .unwrap()
    else {
        panic!("an EXEC reply")
    };
    assert_eq!(in_multi[0], alone);
    let lua = raw(&mut c, &["EVAL", "return redis.call('MMAP.STATS', KEYS[1])", "1", "k"]).unwrap();
    assert_eq!(lua, alone);
    raw(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=t\nredis.register_function{function_name='st', callback=function(keys) return redis.call('MMAP.STATS', keys[1]) end, flags={'no-writes'}}",
        ],
    )
    .unwrap();
    assert_eq!(raw(&mut c, &["FCALL_RO", "st", "1", "k"]).unwrap(), alone);
    assert_eq!(mmap_stat(&mut c, "offloaded"), before, "none of them offloaded");
    drop(s);
}

#[test]
fn a_replica_serves_offloaded_reads() {
    let m = Server::start();
    let r = replica_of(&m, Opts::default());
    // Each side's own copy of the file, made before the master binds it.
    let values: Vec<f64> = (0..200_000).map(|i| i as f64 * 0.5).collect();
    write_values(&m.data().join("k.f64"), &values);
    write_values(&r.data().join("k.f64"), &values);
    let mut mc = m.conn();
    int(&mut mc, &["MMAP", "k", "k.f64"]);
    let mut rc = r.conn();
    offload_bytes(&mut rc, 4096);
    wait_for("the key on the replica", || {
        raw(&mut rc, &["MMAP.COUNT", "k"]) == Ok(Value::Int(200_000))
    });
    threads(&mut rc, 0);
    let inline = raw(&mut rc, &["MMAP.STATS", "k"]).unwrap();
    threads(&mut rc, 2);
    let before = mmap_stat(&mut rc, "offloaded");
    assert_eq!(raw(&mut rc, &["MMAP.STATS", "k"]).unwrap(), inline);
    assert_eq!(
        raw(&mut rc, &["MMAP.STATS", "k"]).unwrap(),
        raw(&mut mc, &["MMAP.STATS", "k"]).unwrap()
    );
    assert_eq!(mmap_stat(&mut rc, "offloaded"), before + 2);
}

#[test]
fn threads_and_the_threshold_are_options() {
    let s = Server::with(Opts {
        module_args: vec!["threads".into(), "3".into(), "offload-bytes".into(), "65536".into()],
        ..Opts::default()
    });
    let mut c = s.conn();
    assert_eq!(config_get(&mut c, "mmap.threads"), ["mmap.threads", "3"]);
    assert_eq!(
        config_get(&mut c, "mmap.offload-bytes"),
        ["mmap.offload-bytes", "65536"]
    );
    wait_for("three workers", || mmap_stat(&mut c, "workers") == 3);
    threads(&mut c, 1);
    wait_for("one worker", || mmap_stat(&mut c, "workers") == 1);
    assert!(err(&mut c, &["CONFIG", "SET", "mmap.threads", "-1"]).contains("mmap.threads"));
    assert!(err(&mut c, &["CONFIG", "SET", "mmap.threads", "100000"]).contains("mmap.threads"));
    assert_eq!(config_get(&mut c, "mmap.threads"), ["mmap.threads", "1"]);
    let log = Server::try_with(Opts {
        module_args: vec!["threads".into(), "many".into()],
        ..Opts::default()
    })
    .err()
    .expect("a bad value fails the load");
    assert!(
        log.contains("mmap.threads must be an integer from 0 to 256, not 'many'"),
        "{log}"
    );
}

#[test]
fn prefetch_reads_a_range_ahead_and_info_counts_what_is_in_memory() {
    let s = Server::start();
    let mut c = s.conn();
    let path = s.data().join("k.f64");
    write_values(&path, &vec![1.5; 1 << 20]);
    int(&mut c, &["MMAP", "k", "k.f64"]);
    // Out of the page cache: nothing of it in memory.
    let f = fs::File::open(&path).unwrap();
    f.sync_all().unwrap();
    // SAFETY: a valid descriptor; advice only.
    unsafe { libc_fadvise(&f) };
    let resident = |c: &mut redis::Connection| info_text(c, "k", "resident-bytes").parse::<u64>().unwrap();
    assert!(resident(&mut c) < 1 << 20, "{}", resident(&mut c));
    assert_eq!(int(&mut c, &["MMAP.PREFETCH", "k", "0", "131071"]), 1 << 20);
    wait_for("the first MiB in memory", || resident(&mut c) >= 1 << 20);
    assert_eq!(int(&mut c, &["MMAP.PREFETCH", "k"]), 8 << 20);
    wait_for("all of it in memory", || resident(&mut c) == 8 << 20);
    wait_for("both prefetches counted", || {
        mmap_stat(&mut c, "prefetched_bytes") == 9 << 20
    });
    assert_eq!(int(&mut c, &["MMAP.PREFETCH", "nokey"]), 0);
    assert!(err(&mut c, &["MMAP.PREFETCH", "k", "0"]).contains("start and stop together"));
    // With no threads, the kernel is asked to start the reads.
    threads(&mut c, 0);
    assert_eq!(int(&mut c, &["MMAP.PREFETCH", "k", "-10", "-1"]), 80);
}

/// Drops a file's pages from the page cache.
unsafe fn libc_fadvise(f: &fs::File) {
    use std::os::fd::AsRawFd;
    extern "C" {
        fn posix_fadvise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
    }
    const POSIX_FADV_DONTNEED: i32 = 4;
    posix_fadvise(f.as_raw_fd(), 0, 0, POSIX_FADV_DONTNEED);
}

#[test]
fn a_worker_that_panics_answers_its_client_with_an_error_and_the_server_goes_on() {
    let (s, mut c) = race_server(100_000);
    int(&mut c, &["MMAP.FAULT", "worker-panic", "on"]);
    let panics = mmap_stat(&mut c, "panics");
    let e = err(&mut c, &["MMAP.STATS", "k"]);
    assert_eq!(
        e,
        "ERR the read's worker thread ended without a result; see the server log"
    );
    assert!(mmap_stat(&mut c, "panics") > panics);
    assert!(s
        .log()
        .contains("panic in a worker thread: injected by MMAP.FAULT worker-panic"));
    // The threads are still there, and serve the next read.
    int(&mut c, &["MMAP.FAULT", "worker-panic", "off"]);
    let before = mmap_stat(&mut c, "offloaded");
    assert_eq!(count_of(&raw(&mut c, &["MMAP.STATS", "k"]).unwrap()), 100_000);
    assert_eq!(mmap_stat(&mut c, "offloaded"), before + 1);
}
