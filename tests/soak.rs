//! `make soak`: 50 clients send a mix of every command to 1,000 keys while
//! BGSAVE, BGREWRITEAOF and DEBUG RELOAD run every few seconds, once with
//! each `aof-use-rdb-preamble` setting. At the end every file must equal
//! the model its client kept, no error reply may be one that was not
//! expected, and the server's RSS must not have kept growing. Not part of
//! `make test`:
//!
//!     SOAK_SECS=100 cargo test --test soak -- --nocapture

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const CLIENTS: usize = 50;
const KEYS: usize = 1000;
/// Vectors are kept below this many values, so that memory stays small.
const MAX_LEN: usize = 400;

/// Values whose text is short and exact, and some special bit patterns.
fn value(rng: &mut Rng) -> (u64, String) {
    const SPECIAL: [(u64, &str); 5] = [
        (0x7ff8_0000_0000_0000, "nan"),
        (0x7ff0_0000_0000_0123, "nan(0x123)"),
        (1 << 63, "-0"),
        (0x7ff0_0000_0000_0000, "inf"),
        (1, "5e-324"),
    ];
    if rng.below(8) == 0 {
        let (bits, text) = SPECIAL[rng.below(5) as usize];
        return (bits, text.to_string());
    }
    let v = (rng.below(20001) as f64 - 10000.0) * 0.25;
    (v.to_bits(), format!("{v:?}"))
}

#[derive(Default)]
struct Tally {
    ops: AtomicU64,
    expected_errors: AtomicU64,
    loading_retries: AtomicU64,
}

/// What a reply must satisfy.
type Check = Box<dyn Fn(&Result<Value, String>) -> bool>;

/// Sends a command, retrying while the server is loading (DEBUG RELOAD):
/// such a command was refused before it ran.
fn send(c: &mut redis::Connection, args: &[String], tally: &Tally) -> Result<Value, String> {
    loop {
        match raw_bytes(c, args) {
            Err(e) if e.starts_with("LOADING") => {
                tally.loading_retries.fetch_add(1, Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
            reply => return reply,
        }
    }
}

/// One client: owns keys `first..first + KEYS / CLIENTS` and their model.
fn client(port: u16, id: usize, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> Result<Vec<(String, Vec<u64>)>, String> {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((id as u64 + 1) * 0x1000_0001));
    let per = KEYS / CLIENTS;
    let keys: Vec<String> = (id * per..(id + 1) * per).map(|k| format!("k{k}")).collect();
    let mut model: Vec<Vec<u64>> = vec![Vec::new(); per];
    let s = |x: &str| x.to_string();
    for k in &keys {
        let n = send(&mut c, &[s("MMAP"), k.clone(), format!("{k}.f64")], &tally)?;
        if n != Value::Int(0) {
            return Err(format!("MMAP {k}: {n:?}"));
        }
    }
    while !stop.load(Relaxed) {
        let i = rng.below(per as u64) as usize;
        let (k, m) = (&keys[i], &mut model[i]);
        let len = m.len();
        tally.ops.fetch_add(1, Relaxed);
        let op = rng.below(100);
        let (args, check): (Vec<String>, Check) = match op {
            0..=19 if len < MAX_LEN => {
                let vals: Vec<(u64, String)> = (0..rng.below(8) + 1).map(|_| value(&mut rng)).collect();
                let mut a = vec![s("MMAP.ADD"), k.clone()];
                a.extend(vals.iter().map(|v| v.1.clone()));
                m.extend(vals.iter().map(|v| v.0));
                let n = vals.len() as i64;
                (a, Box::new(move |r| *r == Ok(Value::Int(n))))
            }
            0..=34 => {
                let mut a = vec![s("MMAP.SET"), k.clone()];
                let mut n = 0;
                for _ in 0..rng.below(4) + 1 {
                    let at = rng.below(len as u64 + 2) as usize;
                    let (bits, text) = value(&mut rng);
                    if at < len {
                        m[at] = bits;
                        n += 1;
                    }
                    a.push(at.to_string());
                    a.push(text);
                }
                (a, Box::new(move |r| *r == Ok(Value::Int(n))))
            }
            35..=54 => {
                let at = rng.below(len as u64 + 2) as usize;
                let want = m.get(at).copied();
                (
                    vec![s("MMAP.GET"), k.clone(), at.to_string()],
                    Box::new(move |r| match (r, want) {
                        (Ok(Value::Nil), None) => true,
                        (Ok(v), Some(b)) => reply_bits(v) == Some(b),
                        _ => false,
                    }),
                )
            }
            55..=69 => {
                let ats: Vec<usize> = (0..rng.below(16) + 1)
                    .map(|_| rng.below(len as u64 + 2) as usize)
                    .collect();
                let want: Vec<Option<u64>> = ats.iter().map(|&a| m.get(a).copied()).collect();
                let mut a = vec![s("MMAP.MGET"), k.clone()];
                a.extend(ats.iter().map(|i| i.to_string()));
                (
                    a,
                    Box::new(move |r| match r {
                        Ok(Value::Array(items)) => {
                            items.len() == want.len()
                                && items.iter().zip(&want).all(|(v, w)| match w {
                                    None => *v == Value::Nil,
                                    Some(b) => reply_bits(v) == Some(*b),
                                })
                        }
                        _ => false,
                    }),
                )
            }
            70..=77 => {
                let want = m.pop();
                (
                    vec![s("MMAP.POP"), k.clone()],
                    Box::new(move |r| match (r, want) {
                        (Ok(Value::Nil), None) => true,
                        (Ok(v), Some(b)) => reply_bits(v) == Some(b),
                        _ => false,
                    }),
                )
            }
            78..=83 => (
                vec![s("MMAP.COUNT"), k.clone()],
                Box::new(move |r| *r == Ok(Value::Int(len as i64))),
            ),
            84..=86 => {
                let to = rng.below(len as u64 + 10) as usize;
                m.resize(to, 0);
                (
                    vec![s("MMAP.RESIZE"), k.clone(), to.to_string()],
                    Box::new(move |r| *r == Ok(Value::Int(len as i64))),
                )
            }
            87 => {
                m.clear();
                (
                    vec![s("MMAP.CLEAR"), k.clone()],
                    Box::new(move |r| *r == Ok(Value::Int(len as i64))),
                )
            }
            88..=90 => (
                vec![s("MMAP"), k.clone(), format!("{k}.f64")],
                Box::new(move |r| *r == Ok(Value::Int(len as i64))),
            ),
            91..=92 => {
                // Unbound and bound again: the file keeps the content.
                let r = send(&mut c, &[s("DEL"), k.clone()], &tally)?;
                if r != Value::Int(1) {
                    return Err(format!("DEL {k}: {r:?}"));
                }
                (
                    vec![s("MMAP"), k.clone(), format!("{k}.f64")],
                    Box::new(move |r| *r == Ok(Value::Int(len as i64))),
                )
            }
            // The expected errors: a malformed value, a malformed index.
            93..=96 => {
                tally.expected_errors.fetch_add(1, Relaxed);
                (
                    vec![s("MMAP.ADD"), k.clone(), s("1"), s("1.5x")],
                    Box::new(|r| {
                        *r == Err("ERR value '1.5x' is not a number (decimal double, inf, -inf or nan)".into())
                    }),
                )
            }
            _ => {
                tally.expected_errors.fetch_add(1, Relaxed);
                (
                    vec![s("MMAP.GET"), k.clone(), s("01")],
                    Box::new(|r| *r == Err("ERR index '01' is not a decimal 64-bit integer".into())),
                )
            }
        };
        let r = send(&mut c, &args, &tally);
        if !check(&r) {
            return Err(format!("{args:?}: got {r:?}"));
        }
    }
    Ok(keys.into_iter().zip(model).collect())
}

fn rss(c: &mut redis::Connection) -> u64 {
    field(c, "memory", "used_memory_rss").parse().unwrap()
}

fn soak(preamble: &str, secs: u64) {
    let mut opts = aof_opts(preamble);
    opts.conf.retain(|l| !l.starts_with("appendfsync"));
    opts.conf.push("appendfsync everysec".into());
    opts.conf.push(format!("maxclients {}", CLIENTS + 50));
    let s = Server::with(opts);
    let mut admin = s.conn();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let workers: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let (stop, tally, port) = (stop.clone(), tally.clone(), s.port);
            std::thread::spawn(move || client(port, id, stop, tally))
        })
        .collect();
    let started = Instant::now();
    let mut samples = Vec::new();
    let (mut saves, mut rewrites, mut reloads) = (0, 0, 0);
    let mut tick = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(2));
        tick += 1;
        let r = match tick % 3 {
            0 => {
                saves += 1;
                raw(&mut admin, &["BGSAVE"])
            }
            1 => {
                rewrites += 1;
                raw(&mut admin, &["BGREWRITEAOF"])
            }
            _ => {
                reloads += 1;
                raw(&mut admin, &["DEBUG", "RELOAD"])
            }
        };
        // A save already running is the one refusal these may get.
        if let Err(e) = r {
            assert!(e.contains("in progress") || e.contains("already"), "{e}");
        }
        samples.push((started.elapsed().as_secs(), rss(&mut admin)));
        assert!(
            workers.iter().all(|w| !w.is_finished()),
            "a client stopped early:\n{}",
            s.log()
        );
    }
    stop.store(true, Relaxed);
    let mut models = Vec::new();
    for w in workers {
        match w.join().unwrap() {
            Ok(m) => models.extend(m),
            Err(e) => panic!("{e}\n{}", s.log()),
        }
    }
    wait_for("the last save", || {
        field(&mut admin, "persistence", "rdb_bgsave_in_progress") == "0"
            && field(&mut admin, "persistence", "aof_rewrite_in_progress") == "0"
    });
    let mut values = 0;
    for (k, m) in &models {
        let want: Vec<u8> = m.iter().flat_map(|b| b.to_le_bytes()).collect();
        let got = std::fs::read(s.data().join(format!("{k}.f64"))).unwrap();
        assert!(got == want, "{k}: the file differs from the model");
        assert_eq!(int(&mut admin, &["MMAP.COUNT", k]), m.len() as i64);
        values += m.len();
    }
    assert_eq!(mmap_stat(&mut admin, "panics"), 0);
    // RSS after the first tenth (the allocator's warm-up) against the end.
    let warm = samples[samples.len() / 10].1;
    let (end, max) = (samples.last().unwrap().1, samples.iter().map(|s| s.1).max().unwrap());
    let ops = tally.ops.load(Relaxed);
    eprintln!(
        "soak ({}, aof-use-rdb-preamble {preamble}): {ops} commands in {secs} s ({:.0}/s) from {CLIENTS} clients on {KEYS} keys; \
         {} expected error replies, none other; {} commands retried while loading; {saves} BGSAVE, {rewrites} BGREWRITEAOF, \
         {reloads} DEBUG RELOAD; {values} values, every file equal to its model; RSS {} MiB after warm-up, {} MiB at the end, \
         {} MiB at most",
        server_version(&mut admin),
        ops as f64 / secs as f64,
        tally.expected_errors.load(Relaxed),
        tally.loading_retries.load(Relaxed),
        warm >> 20,
        end >> 20,
        max >> 20
    );
    assert!(end < warm + (64 << 20), "RSS grew from {warm} to {end}: {samples:?}");
}

fn secs() -> u64 {
    std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

#[test]
fn soak_with_rdb_preamble() {
    soak("yes", secs());
}

#[test]
fn soak_without_rdb_preamble() {
    soak("no", secs());
}
