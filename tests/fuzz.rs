//! `make fuzz`: random valid and malformed commands against a model of
//! every key and file, every reply checked (values bit for bit), keys
//! dumped and restored, some commands sent as pipelines (appends held
//! within one pass of the event loop), with restarts of every kind in
//! between (and `mmap.rdb-content` switched at random). Not part of
//! `make test`:
//!
//!     FUZZ_OPS=1000000 FUZZ_SEED=7 cargo test --test fuzz -- --nocapture
//!
//! The seed is printed; the same seed replays the same run.

mod common;

use std::collections::HashMap;
use std::fs;
use std::time::Instant;

use common::*;

const KEYS: usize = 12;
const FILES: usize = 16;

/// What a reply must be.
#[derive(Debug)]
enum Want {
    Int(i64),
    Nil,
    Value(u64),
    Array(Vec<Option<u64>>),
    /// An error reply starting with this.
    Err(String),
    Ok,
}

#[derive(Clone, Debug, PartialEq)]
enum Held {
    Bound(String),
    Str,
}

/// Every key and every file, as the server and the disk must have them.
#[derive(Default)]
struct Model {
    keys: HashMap<String, Held>,
    files: HashMap<String, Vec<u64>>,
}

impl Model {
    fn holder(&self, file: &str) -> Option<&String> {
        self.keys
            .iter()
            .find(|(_, h)| **h == Held::Bound(file.to_string()))
            .map(|(k, _)| k)
    }

    fn bound(&self, key: &str) -> Option<&Vec<u64>> {
        match self.keys.get(key) {
            Some(Held::Bound(f)) => self.files.get(f),
            _ => None,
        }
    }

    fn bound_mut(&mut self, key: &str) -> Option<&mut Vec<u64>> {
        match self.keys.get(key) {
            Some(Held::Bound(f)) => self.files.get_mut(&f.clone()),
            _ => None,
        }
    }
}

/// The text of a value that parses back to exactly `bits`.
fn text_of(bits: u64, rng: &mut Rng) -> String {
    let v = f64::from_bits(bits);
    if v.is_nan() {
        let sign = if bits >> 63 == 1 { "-" } else { "" };
        let frac = bits & 0x000f_ffff_ffff_ffff;
        return if frac == 1 << 51 && rng.chance(50) {
            format!("{sign}nan")
        } else {
            format!("{sign}nan(0x{frac:x})")
        };
    }
    if v.is_infinite() {
        return rng
            .pick(&[
                if v > 0.0 { "inf" } else { "-inf" },
                if v > 0.0 { "+inf" } else { "-inf" },
            ])
            .to_string();
    }
    if rng.chance(50) {
        format!("{v:?}")
    } else {
        format!("{v:e}")
    }
}

/// A value: a few special patterns, small integers and halves, and random bits.
fn value_bits(rng: &mut Rng) -> u64 {
    match rng.below(6) {
        0 => *rng.pick(&[
            0,
            1 << 63,
            1,
            0x7ff0_0000_0000_0000,
            0xfff0_0000_0000_0000,
            0x7ff8_0000_0000_0000,
            0xfff8_0000_0000_0000,
            0x7ff0_0000_0000_0123,
            0xffff_ffff_ffff_ffff,
            0x000f_ffff_ffff_ffff,
            f64::MAX.to_bits(),
            f64::MIN_POSITIVE.to_bits(),
        ]),
        1 | 2 => ((rng.below(2001) as f64 - 1000.0) * 0.5).to_bits(),
        _ => rng.next(),
    }
}

/// A value text that no rule accepts.
fn bad_value(rng: &mut Rng) -> Vec<u8> {
    let fixed: &[&[u8]] = &[
        b"",
        b"abc",
        b" 1",
        b"1 ",
        b"1,5",
        b"1e400",
        b"-1e400",
        b"1e-400",
        b"nan(0x0)",
        b"nan(0x+1)",
        b"nan(1)",
        b"0x1p3",
        b"\xff",
        "ab\u{20ac}".as_bytes(),
        "-xy\u{20ac}".as_bytes(),
        b"--1",
        b"1..2",
    ];
    if rng.chance(70) {
        return rng.pick(fixed).to_vec();
    }
    // A valid number with a byte that no number holds.
    let mut t = text_of(value_bits(rng), rng).into_bytes();
    let at = rng.below(t.len() as u64 + 1) as usize;
    t.insert(at, *rng.pick(&[b'x', b' ', b'#', 0xe2, b'\0']));
    t
}

/// An index text and, if it is one, its value.
fn index(rng: &mut Rng, len: usize) -> (Vec<u8>, Option<i64>) {
    let n: i64 = match rng.below(20) {
        0 => {
            let bad: &[&[u8]] = &[
                b"",
                b"x",
                b"1.5",
                b"+1",
                b"01",
                b"-0",
                b" 1",
                b"9223372036854775808",
                b"1e3",
            ];
            return (rng.pick(bad).to_vec(), None);
        }
        1 => *rng.pick(&[-1, -5, i64::MIN, i64::MAX, 1 << 40]),
        _ => rng.below(len as u64 + 3) as i64,
    };
    (n.to_string().into_bytes(), Some(n))
}

fn wrong_type() -> Want {
    Want::Err("WRONGTYPE".into())
}

struct Fuzz {
    rng: Rng,
    model: Model,
    checked: u64,
}

impl Fuzz {
    /// One random command and what its reply must be; applies it to the model.
    fn step(&mut self) -> (Vec<Vec<u8>>, Want) {
        let rng = &mut self.rng;
        let key = if rng.chance(5) {
            "s".to_string()
        } else {
            format!("k{}", rng.below(KEYS as u64))
        };
        let held = self.model.keys.get(&key).cloned();
        let len = self.model.bound(&key).map_or(0, Vec::len);
        let mut args: Vec<Vec<u8>>;
        let name = |n: &str, rng: &mut Rng| -> Vec<u8> {
            // The short names where the server has them: both must behave alike.
            let short = match n {
                "MMAP.GET" => "VGET",
                "MMAP.MGET" => "VMGET",
                "MMAP.SET" => "VSET",
                "MMAP.POP" => "VPOP",
                "MMAP.COUNT" => "VCOUNT",
                "MMAP.CLEAR" => "VCLEAR",
                "MMAP.RESIZE" => "VRESIZE",
                other => other,
            };
            if rng.chance(30) { short } else { n }.as_bytes().to_vec()
        };
        let want = match rng.below(100) {
            // MMAP
            0..=11 => {
                let file = format!("f{}", rng.below(FILES as u64));
                let bad_path = rng.chance(10);
                let path = if bad_path {
                    rng.pick(&["../x", "/etc/hostname", "d/", "x/.", "", "a/../../b"])
                        .to_string()
                } else {
                    rng.pick(&[file.clone(), format!("./{file}"), format!("sub/../{file}")])
                        .clone()
                };
                args = vec![b"MMAP".to_vec(), key.clone().into_bytes(), path.clone().into_bytes()];
                let option = rng.below(10);
                if option == 0 {
                    args.push(b"NOW".to_vec());
                } else if option < 3 {
                    args.push(b"create".to_vec());
                }
                if option == 0 {
                    Want::Err("ERR unknown mmap option 'NOW'".into())
                } else if bad_path {
                    Want::Err(format!("ERR cannot map '{path}': "))
                } else {
                    match held {
                        Some(Held::Str) => wrong_type(),
                        Some(Held::Bound(f)) if f == file => Want::Int(len as i64),
                        Some(Held::Bound(f)) => {
                            Want::Err(format!("ERR key '{key}' is bound to '{f}', not to '{file}'"))
                        }
                        None => match self.model.holder(&file) {
                            Some(other) => Want::Err(format!(
                                "ERR cannot map '{file}': the file is already bound to key '{other}'"
                            )),
                            None => {
                                let n = self.model.files.entry(file.clone()).or_default().len();
                                self.model.keys.insert(key.clone(), Held::Bound(file));
                                Want::Int(n as i64)
                            }
                        },
                    }
                }
            }
            // MMAP.GET
            12..=25 => {
                let (text, i) = index(rng, len);
                args = vec![name("MMAP.GET", rng), key.clone().into_bytes(), text];
                match (i, &held) {
                    (None, _) => Want::Err("ERR index '".into()),
                    (_, Some(Held::Str)) => wrong_type(),
                    (Some(i), _) => match self
                        .model
                        .bound(&key)
                        .and_then(|v| usize::try_from(i).ok().and_then(|i| v.get(i)))
                    {
                        Some(&b) => Want::Value(b),
                        None => Want::Nil,
                    },
                }
            }
            // MMAP.MGET
            26..=33 => {
                args = vec![name("MMAP.MGET", rng), key.clone().into_bytes()];
                let mut all = Some(Vec::new());
                for _ in 0..rng.below(6) + 1 {
                    let (text, i) = index(rng, len);
                    args.push(text);
                    match (i, all.as_mut()) {
                        (Some(i), Some(v)) => v.push(i),
                        _ => all = None,
                    }
                }
                match (all, &held) {
                    (None, _) => Want::Err("ERR index '".into()),
                    (_, Some(Held::Str)) => wrong_type(),
                    (Some(ix), _) => {
                        let v = self.model.bound(&key);
                        Want::Array(
                            ix.iter()
                                .map(|&i| v.and_then(|v| usize::try_from(i).ok().and_then(|i| v.get(i)).copied()))
                                .collect(),
                        )
                    }
                }
            }
            // MMAP.SET
            34..=49 => {
                args = vec![name("MMAP.SET", rng), key.clone().into_bytes()];
                let mut pairs = Vec::new();
                let (mut bad_index, mut bad_text) = (false, false);
                for _ in 0..rng.below(4) + 1 {
                    let (text, i) = index(rng, len);
                    args.push(text);
                    bad_index |= i.is_none();
                    let bits = value_bits(rng);
                    if rng.chance(4) {
                        args.push(bad_value(rng));
                        bad_text = true;
                    } else {
                        args.push(text_of(bits, rng).into_bytes());
                    }
                    pairs.push((i, bits));
                }
                let odd = rng.chance(3);
                if odd {
                    args.pop();
                }
                if odd && args.len() < 4 {
                    let lower = String::from_utf8_lossy(&args[0]).to_lowercase();
                    Want::Err(format!("ERR wrong number of arguments for '{lower}' command"))
                } else if odd {
                    Want::Err(format!(
                        "ERR {} takes index value pairs",
                        String::from_utf8_lossy(&args[0]).to_lowercase()
                    ))
                } else if bad_index {
                    Want::Err("ERR index '".into())
                } else {
                    // Indices are parsed before the key is read, values by
                    // the key's kind, so only once it is known to be bound.
                    match &held {
                        Some(Held::Str) => wrong_type(),
                        None => Want::Err(format!("ERR no such key '{key}'")),
                        Some(Held::Bound(_)) if bad_text => Want::Err("ERR value '".into()),
                        Some(Held::Bound(_)) => {
                            let v = self.model.bound_mut(&key).unwrap();
                            let mut n = 0;
                            for (i, bits) in pairs {
                                if let Some(slot) = usize::try_from(i.unwrap()).ok().and_then(|i| v.get_mut(i)) {
                                    *slot = bits;
                                    n += 1;
                                }
                            }
                            Want::Int(n)
                        }
                    }
                }
            }
            // MMAP.ADD
            50..=64 => {
                args = vec![b"MMAP.ADD".to_vec(), key.clone().into_bytes()];
                let n = rng.below(5);
                let mut values = Vec::new();
                let mut bad = false;
                for _ in 0..=n {
                    if rng.chance(4) {
                        args.push(bad_value(rng));
                        bad = true;
                    } else {
                        let b = value_bits(rng);
                        args.push(text_of(b, rng).into_bytes());
                        values.push(b);
                    }
                }
                match &held {
                    Some(Held::Str) => wrong_type(),
                    None => Want::Err(format!("ERR no such key '{key}'")),
                    Some(Held::Bound(_)) if bad => Want::Err("ERR value '".into()),
                    Some(Held::Bound(_)) => {
                        let k = values.len();
                        self.model.bound_mut(&key).unwrap().extend(values);
                        Want::Int(k as i64)
                    }
                }
            }
            // MMAP.POP
            65..=71 => {
                args = vec![name("MMAP.POP", rng), key.clone().into_bytes()];
                match &held {
                    Some(Held::Str) => wrong_type(),
                    None => Want::Nil,
                    Some(Held::Bound(_)) => match self.model.bound_mut(&key).unwrap().pop() {
                        Some(b) => Want::Value(b),
                        None => Want::Nil,
                    },
                }
            }
            // MMAP.COUNT
            72..=76 => {
                args = vec![name("MMAP.COUNT", rng), key.clone().into_bytes()];
                match &held {
                    Some(Held::Str) => wrong_type(),
                    _ => Want::Int(len as i64),
                }
            }
            // MMAP.CLEAR
            77..=78 => {
                args = vec![name("MMAP.CLEAR", rng), key.clone().into_bytes()];
                match &held {
                    Some(Held::Str) => wrong_type(),
                    None => Want::Int(0),
                    Some(Held::Bound(_)) => {
                        self.model.bound_mut(&key).unwrap().clear();
                        Want::Int(len as i64)
                    }
                }
            }
            // MMAP.RESIZE
            79..=84 => {
                let (text, n): (Vec<u8>, Option<i64>) = match rng.below(8) {
                    0 => (b"-1".to_vec(), None),
                    1 => (b"x".to_vec(), None),
                    2 => (b"1152921504606846976".to_vec(), Some(-2)),
                    _ => {
                        let n = rng.below(len as u64 + 20);
                        (n.to_string().into_bytes(), Some(n as i64))
                    }
                };
                args = vec![name("MMAP.RESIZE", rng), key.clone().into_bytes(), text];
                match (n, &held) {
                    (None, _) => Want::Err("ERR length '".into()),
                    (_, Some(Held::Str)) => wrong_type(),
                    (_, None) => Want::Err(format!("ERR no such key '{key}'")),
                    // Too large for the key's kind, so known once it is bound.
                    (Some(-2), _) => Want::Err("ERR length 1152921504606846976 is too large".into()),
                    (Some(n), Some(Held::Bound(_))) => {
                        self.model.bound_mut(&key).unwrap().resize(n as usize, 0);
                        Want::Int(len as i64)
                    }
                }
            }
            // DEL, RENAME, a string key
            85..=89 => {
                args = vec![b"DEL".to_vec(), key.clone().into_bytes()];
                Want::Int(i64::from(self.model.keys.remove(&key).is_some()))
            }
            90..=92 => {
                let to = format!("k{}", rng.below(KEYS as u64));
                args = vec![b"RENAME".to_vec(), key.clone().into_bytes(), to.clone().into_bytes()];
                match held {
                    None => Want::Err("ERR no such key".into()),
                    Some(h) => {
                        self.model.keys.remove(&key);
                        self.model.keys.insert(to, h);
                        Want::Ok
                    }
                }
            }
            93 => {
                args = vec![b"SET".to_vec(), b"s".to_vec(), b"text".to_vec()];
                self.model.keys.insert("s".into(), Held::Str);
                Want::Ok
            }
            // Wrong arity
            94..=98 => {
                // A command and a number of arguments (its name included) it refuses.
                let (cmd, argc): (&str, usize) = *rng.pick(&[
                    ("MMAP.GET", 2),
                    ("MMAP.GET", 4),
                    ("MMAP.MGET", 2),
                    ("MMAP.SET", 3),
                    ("MMAP.ADD", 2),
                    ("MMAP.POP", 1),
                    ("MMAP.POP", 3),
                    ("MMAP.COUNT", 3),
                    ("MMAP.CLEAR", 1),
                    ("MMAP.RESIZE", 2),
                    ("MMAP", 2),
                    ("MMAP", 8),
                ]);
                let first = name(cmd, rng);
                let lower = String::from_utf8_lossy(&first).to_lowercase();
                args = vec![first];
                if argc > 1 {
                    args.push(key.clone().into_bytes());
                }
                while args.len() < argc {
                    args.push(args.len().to_string().into_bytes());
                }
                Want::Err(format!("ERR wrong number of arguments for '{lower}' command"))
            }
            _ => {
                args = vec![b"FLUSHDB".to_vec()];
                self.model.keys.clear();
                Want::Ok
            }
        };
        (args, want)
    }
}

impl Fuzz {
    /// `DUMP` of a bound key, then `RESTORE` of the payload: onto the key
    /// itself (`REPLACE`), onto another key while this one holds the file
    /// (refused, nothing changes), or after `DEL`, under a free name.
    fn moved(&mut self, c: &mut redis::Connection, seed: u64) {
        let key = format!("k{}", self.rng.below(KEYS as u64));
        let Some(Held::Bound(file)) = self.model.keys.get(&key).cloned() else {
            return;
        };
        let payload = match raw(c, &["DUMP", &key]).unwrap() {
            Value::BulkString(b) => b,
            other => panic!("DUMP {key} (seed {seed}): {other:?}"),
        };
        let restore = |c: &mut redis::Connection, to: &str, replace: bool| {
            let mut args: Vec<&[u8]> = vec![b"RESTORE", to.as_bytes(), b"0", &payload];
            if replace {
                args.push(b"REPLACE");
            }
            raw_bytes(c, &args)
        };
        let other = format!("k{}", self.rng.below(KEYS as u64));
        match self.rng.below(3) {
            0 => assert_eq!(restore(c, &key, true), Ok(Value::Okay), "seed {seed}"),
            1 if other != key => {
                let e = restore(c, &other, true).unwrap_err();
                assert!(e.contains("Bad data format"), "{e} (seed {seed})");
            }
            _ => {
                int(c, &["DEL", &key]);
                self.model.keys.remove(&key);
                let to = if self.model.keys.contains_key(&other) {
                    key
                } else {
                    other
                };
                assert_eq!(restore(c, &to, false), Ok(Value::Okay), "RESTORE {to} (seed {seed})");
                self.model.keys.insert(to, Held::Bound(file));
            }
        }
        self.checked += 1;
    }
}

fn matches(got: &Result<Value, String>, want: &Want) -> bool {
    let got = match (want, got) {
        (Want::Err(prefix), Err(text)) => return text.starts_with(prefix.as_str()),
        (_, Err(_)) => return false,
        (_, Ok(v)) => v,
    };
    match (want, got) {
        (Want::Int(n), Value::Int(m)) => n == m,
        (Want::Nil, Value::Nil) => true,
        (Want::Value(b), v) => reply_bits(v) == Some(*b),
        (Want::Array(w), Value::Array(items)) => {
            w.len() == items.len()
                && w.iter().zip(items).all(|(w, v)| match w {
                    None => *v == Value::Nil,
                    Some(b) => reply_bits(v) == Some(*b),
                })
        }
        (Want::Ok, Value::Okay) => true,
        (Want::Ok, Value::SimpleString(s)) => s == "OK",
        _ => false,
    }
}

/// Every file on disk against the model, byte for byte.
fn check_files(s: &Server, model: &Model) {
    for (name, bits) in &model.files {
        let want: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
        let got = fs::read(s.data().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            got == want,
            "{name}: {} bytes on disk, {} in the model",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn fuzz() {
    let ops: u64 = std::env::var("FUZZ_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut s = Server::with(aof_opts("yes"));
    let mut c = s.conn();
    let version = server_version(&mut c);
    eprintln!("fuzz: {ops} operations, seed {seed}, server {}", redis_server());
    let mut f = Fuzz {
        rng: Rng(seed | 1),
        model: Model::default(),
        checked: 0,
    };
    let restart_every = (ops / 20).max(1000);
    let (mut errors, mut restarts) = (0u64, [0u64; 4]);
    let started = Instant::now();
    let (mut n, mut batches) = (0u64, 0u64);
    while n < ops {
        if f.rng.chance(1) {
            f.moved(&mut c, seed);
        }
        // Now and then a pipeline, so that appends held within one pass of
        // the event loop meet the reads and writes after them.
        let k = if f.rng.chance(10) { 2 + f.rng.below(31) } else { 1 }.min(ops - n);
        let steps: Vec<_> = (0..k).map(|_| f.step()).collect();
        let replies = if k == 1 {
            vec![raw_bytes(&mut c, &steps[0].0)]
        } else {
            batches += 1;
            let mut p = redis::pipe();
            for (args, _) in &steps {
                p.cmd(std::str::from_utf8(&args[0]).unwrap());
                for a in &args[1..] {
                    p.arg(&a[..]);
                }
            }
            let got: Vec<redis::RedisResult<Value>> = p.ignore_errors().query(&mut c).unwrap();
            got.into_iter().map(|r| r.map_err(|e| error_text(&e))).collect()
        };
        let crossed = (n + k) / restart_every > n / restart_every;
        for ((args, want), got) in steps.iter().zip(&replies) {
            n += 1;
            if matches!(want, Want::Err(_)) {
                errors += 1;
            }
            assert!(
                matches(got, want),
                "operation {n} (seed {seed}): {:?}\n  got  {got:?}\n  want {want:?}",
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
            );
            f.checked += 1;
        }
        if crossed {
            check_files(&s, &f.model);
            let kind = (n / restart_every) % 4; // the restart's number picks its kind
            match kind {
                0 => s.restart(),
                1 => s.kill_and_restart(),
                2 => {
                    raw(&mut c, &["DEBUG", "RELOAD"]).unwrap();
                }
                _ => {
                    let content = if f.rng.chance(50) { "yes" } else { "no" };
                    raw(&mut c, &["CONFIG", "SET", "mmap.rdb-content", content]).unwrap();
                    let preamble = if f.rng.chance(50) { "yes" } else { "no" };
                    raw(&mut c, &["CONFIG", "SET", "aof-use-rdb-preamble", preamble]).unwrap();
                    rewrite_aof(&mut c);
                    s.kill_and_restart();
                }
            }
            restarts[kind as usize] += 1;
            c = s.conn();
            check_files(&s, &f.model);
            for key in (0..KEYS).map(|k| format!("k{k}")).chain(["s".to_string()]) {
                let ty = match raw(&mut c, &["TYPE", &key]).unwrap() {
                    Value::SimpleString(t) => t,
                    Value::Okay => "OK".into(),
                    other => panic!("{other:?}"),
                };
                match f.model.keys.get(&key) {
                    Some(Held::Bound(_)) => {
                        let want = f.model.bound(&key).map_or(0, Vec::len) as i64;
                        assert_eq!(
                            int(&mut c, &["MMAP.COUNT", &key]),
                            want,
                            "{key} after a restart (seed {seed})"
                        );
                    }
                    Some(Held::Str) => assert_eq!(ty, "string", "{key} (seed {seed})"),
                    None => assert_eq!(ty, "none", "{key} (seed {seed})"),
                }
            }
            assert_eq!(mmap_stat(&mut c, "panics"), 0);
            assert_eq!(mmap_stat(&mut c, "broken_keys"), 0);
        }
    }
    check_files(&s, &f.model);
    assert_eq!(mmap_stat(&mut c, "panics"), 0);
    eprintln!(
        "fuzz: {} operations checked against {version} in {:.0} s ({errors} expected error replies, \
         {batches} pipelines), restarts: {} SHUTDOWN SAVE, {} SIGKILL + AOF replay, {} DEBUG RELOAD, {} BGREWRITEAOF + SIGKILL; \
         {} files, {} values in the model; nothing found",
        f.checked,
        started.elapsed().as_secs_f64(),
        restarts[0],
        restarts[1],
        restarts[2],
        restarts[3],
        f.model.files.len(),
        f.model.files.values().map(Vec::len).sum::<usize>()
    );
}
