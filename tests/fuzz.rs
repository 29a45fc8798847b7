//! `make fuzz`: random valid and malformed commands against a model of
//! every key (in two databases, swapped by SWAPDB and crossed by MOVE) and
//! file, every reply checked (values bit for bit) and `INFO mmap`'s key and
//! byte counters after every batch; keys dumped, and payloads, old and new,
//! restored with and without REPLACE; some commands sent as pipelines or
//! MULTI/EXEC (appends held within one pass of the event loop), with
//! restarts of every kind in between, AOF replays among them (and
//! `mmap.rdb-content` switched at random). Not part of `make test`:
//!
//!     FUZZ_OPS=1000000 FUZZ_SEED=7 cargo test --test fuzz -- --nocapture
//!
//! The seed is printed; the same seed replays the same run.

mod common;

use std::collections::{HashMap, HashSet};
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
    /// Any reply: a key whose file another program changed.
    Any,
}

#[derive(Clone, Debug, PartialEq)]
enum Held {
    Bound(String),
    Str,
}

/// A `DUMP` payload kept for a later `RESTORE`: its file and the content
/// the file had then.
struct Payload {
    bytes: Vec<u8>,
    file: String,
    content: Vec<u64>,
}

/// Every key and every file, as the server and the disk must have them.
#[derive(Default)]
struct Model {
    /// The connection's database 0, where every command runs, then
    /// database 1, reached by SWAPDB and MOVE.
    dbs: [HashMap<String, Held>; 2],
    files: HashMap<String, Vec<u64>>,
    payloads: Vec<Payload>,
    /// Files another program changed under their keys: what those keys
    /// answer is not predicted (only that they answer), until the file is
    /// restored.
    disturbed: HashSet<String>,
}

impl Model {
    /// The key, in either database, that holds `file`.
    fn holder(&self, file: &str) -> Option<(usize, &String)> {
        let want = Held::Bound(file.to_string());
        (0..2).find_map(|db| self.dbs[db].iter().find(|(_, h)| **h == want).map(|(k, _)| (db, k)))
    }

    fn bound(&self, key: &str) -> Option<&Vec<u64>> {
        match self.dbs[0].get(key) {
            Some(Held::Bound(f)) => self.files.get(f),
            _ => None,
        }
    }

    fn bound_mut(&mut self, key: &str) -> Option<&mut Vec<u64>> {
        match self.dbs[0].get(key) {
            Some(Held::Bound(f)) => self.files.get_mut(&f.clone()),
            _ => None,
        }
    }

    /// What `INFO mmap` must count: bound keys, and their files' bytes.
    fn counters(&self) -> (i64, i64) {
        let files = self.dbs.iter().flat_map(|db| db.values()).filter_map(|h| match h {
            Held::Bound(f) => Some(self.files[f].len() as i64 * 8),
            Held::Str => None,
        });
        files.fold((0, 0), |(n, bytes), b| (n + 1, bytes + b))
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
        let held = self.model.dbs[0].get(&key).cloned();
        let len = self.model.bound(&key).map_or(0, Vec::len);
        // A key whose file another program changed: the command is sent,
        // its reply is not predicted, and the model keeps the content.
        let wild = match &held {
            Some(Held::Bound(f)) if self.model.disturbed.contains(f) => Some((f.clone(), self.model.files[f].clone())),
            _ => None,
        };
        let op = rng.below(104);
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
        let want = match op {
            // MMAP
            0..=11 => {
                // Never a file another program is changing: who holds it
                // (a file renamed over it is another file) is not predicted.
                let mut file = format!("f{}", rng.below(FILES as u64));
                while self.model.disturbed.contains(&file) {
                    file = format!("f{}", rng.below(FILES as u64));
                }
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
                            Some((_, other)) => Want::Err(format!(
                                "ERR cannot map '{file}': the file is already bound to key '{other}'"
                            )),
                            None => {
                                let n = self.model.files.entry(file.clone()).or_default().len();
                                self.model.dbs[0].insert(key.clone(), Held::Bound(file));
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
                Want::Int(i64::from(self.model.dbs[0].remove(&key).is_some()))
            }
            90..=92 => {
                let to = format!("k{}", rng.below(KEYS as u64));
                args = vec![b"RENAME".to_vec(), key.clone().into_bytes(), to.clone().into_bytes()];
                match held {
                    None => Want::Err("ERR no such key".into()),
                    Some(h) => {
                        self.model.dbs[0].remove(&key);
                        self.model.dbs[0].insert(to, h);
                        Want::Ok
                    }
                }
            }
            93 => {
                args = vec![b"SET".to_vec(), b"s".to_vec(), b"text".to_vec()];
                self.model.dbs[0].insert("s".into(), Held::Str);
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
            99 => {
                args = vec![b"FLUSHDB".to_vec()];
                self.model.dbs[0].clear();
                Want::Ok
            }
            // SWAPDB, plainly or from a script (and inside MULTI/EXEC when
            // a batch is sent as one); MOVE to database 1.
            100..=102 => {
                args = if rng.chance(50) {
                    vec![b"SWAPDB".to_vec(), b"0".to_vec(), b"1".to_vec()]
                } else {
                    ["EVAL", "return redis.call('SWAPDB', '0', '1')", "0"]
                        .map(|a| a.as_bytes().to_vec())
                        .to_vec()
                };
                self.model.dbs.swap(0, 1);
                Want::Ok
            }
            _ => {
                args = vec![b"MOVE".to_vec(), key.clone().into_bytes(), b"1".to_vec()];
                match held {
                    Some(h) if !self.model.dbs[1].contains_key(&key) => {
                        self.model.dbs[0].remove(&key);
                        self.model.dbs[1].insert(key, h);
                        Want::Int(1)
                    }
                    _ => Want::Int(0),
                }
            }
        };
        if let Some((file, content)) = wild {
            // A wrong number of arguments is refused whatever the file.
            if op <= 84 && !refused_when_queued(&want) {
                self.model.files.insert(file, content);
                return (args, Want::Any);
            }
        }
        (args, want)
    }
}

impl Fuzz {
    /// `DUMP` of a bound key, kept, or `RESTORE` of a payload kept earlier
    /// (its file may have moved on since, and be held by any key in either
    /// database, or by none), with or without `REPLACE`, onto any key.
    fn moved(&mut self, c: &mut redis::Connection, seed: u64) {
        let rng = &mut self.rng;
        let key = format!("k{}", rng.below(KEYS as u64));
        if self.model.payloads.is_empty() || rng.chance(40) {
            let Some(Held::Bound(file)) = self.model.dbs[0].get(&key).cloned() else {
                return;
            };
            if self.model.disturbed.contains(&file) {
                return;
            }
            let bytes = match raw(c, &["DUMP", &key]).unwrap() {
                Value::BulkString(b) => b,
                other => panic!("DUMP {key} (seed {seed}): {other:?}"),
            };
            let content = self.model.files[&file].clone();
            let p = Payload { bytes, file, content };
            if self.model.payloads.len() < 8 {
                self.model.payloads.push(p);
            } else {
                let at = rng.below(8) as usize;
                self.model.payloads[at] = p;
            }
            self.checked += 1;
            return;
        }
        let p = rng.pick(&self.model.payloads);
        let wild =
            |k: &str| matches!(self.model.dbs[0].get(k), Some(Held::Bound(f)) if self.model.disturbed.contains(f));
        if self.model.disturbed.contains(&p.file) || wild(&key) {
            return;
        }
        let replace = rng.chance(50);
        let mut args: Vec<&[u8]> = vec![b"RESTORE", key.as_bytes(), b"0", &p.bytes];
        if replace {
            args.push(b"REPLACE");
        }
        let exists = self.model.dbs[0].contains_key(&key);
        let want = match self.model.holder(&p.file) {
            _ if exists && !replace => Want::Err("BUSYKEY".into()),
            // A key replaced onto its own file.
            Some((0, h)) if *h == key => Want::Ok,
            // One file, one key: wherever the holder is.
            Some(_) => Want::Err("ERR Bad data format".into()),
            None => Want::Ok,
        };
        let got = raw_bytes(c, &args);
        assert!(
            matches(&got, &want),
            "RESTORE {key} of a payload of {} ({} values), REPLACE {replace} (seed {seed}):\n  got  {got:?}\n  want {want:?}",
            p.file,
            p.content.len()
        );
        if let Want::Ok = want {
            let (file, content) = (p.file.clone(), p.content.clone());
            self.model.files.insert(file.clone(), content);
            self.model.dbs[0].insert(key, Held::Bound(file));
        }
        self.checked += 1;
    }
}

/// What another program does to a bound file.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// Cut to nothing, to the middle of a page, or by a few values.
    Cut,
    /// Cut, then written anew, shorter or longer (numpy's `tofile`).
    Rewrite,
    /// Values added at the end.
    Append,
    /// A new file renamed over it, the way careful programs save.
    Replace,
}

impl Fuzz {
    /// Another program (this one, as far as the server can tell) changes
    /// a bound file, or puts back one it changed: the keys holding it are
    /// deleted, the model's content is written, and the AOF is rewritten,
    /// so that no replay writes the old commands over it.
    fn actor(&mut self, s: &Server, c: &mut redis::Connection, seed: u64) -> Option<Change> {
        let rng = &mut self.rng;
        // At most four files changed at once: MMAP picks among the others.
        if !self.model.disturbed.is_empty() && (rng.chance(50) || self.model.disturbed.len() >= 4) {
            let file = rng
                .pick(&self.model.disturbed.iter().cloned().collect::<Vec<_>>())
                .clone();
            self.put_back(s, c, &file, seed);
            return None;
        }
        let mut held: Vec<String> = self
            .model
            .dbs
            .iter()
            .flat_map(|db| db.values())
            .filter_map(|h| match h {
                Held::Bound(f) if !self.model.disturbed.contains(f) => Some(f.clone()),
                _ => None,
            })
            .collect();
        held.sort();
        if held.is_empty() {
            return None;
        }
        let file = rng.pick(&held).clone();
        let path = s.data().join(&file);
        let len = fs::metadata(&path).map_or(0, |m| m.len());
        let change = *rng.pick(&[Change::Cut, Change::Rewrite, Change::Append, Change::Replace]);
        let values =
            |rng: &mut Rng, n: u64| -> Vec<u8> { (0..n).flat_map(|_| value_bits(rng).to_le_bytes()).collect() };
        match change {
            Change::Cut => {
                let (mid_page, few) = (4096 + 8 * rng.below(100), len.saturating_sub(8 * (1 + rng.below(4))));
                let to = *rng.pick(&[0, mid_page, few]);
                fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(to.min(len))
                    .unwrap();
            }
            Change::Rewrite => {
                let n = rng.below(1500);
                fs::write(&path, values(rng, n)).unwrap();
            }
            Change::Append => {
                let n = 1 + rng.below(600);
                let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
                std::io::Write::write_all(&mut f, &values(rng, n)).unwrap();
            }
            Change::Replace => {
                let staged = s.data().join(format!(".{file}.new"));
                let n = rng.below(1500);
                fs::write(&staged, values(rng, n)).unwrap();
                fs::rename(&staged, &path).unwrap();
            }
        }
        // Meets the change at once: reads and writes of every value the key
        // had, any reply but a dropped connection.
        let known = self.model.files[&file].len().max(1).to_string();
        let keys: Vec<String> = self.model.dbs[0]
            .iter()
            .filter(|(_, h)| **h == Held::Bound(file.clone()))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            let last = (known.parse::<u64>().unwrap() - 1).to_string();
            for args in [
                vec!["MMAP.GET", &k, &last],
                vec!["MMAP.RANGE", &k, "0", "-1", "BLOB"],
                vec!["MMAP.STATS", &k],
                vec!["MMAP.SET", &k, &last, "1.5"],
                vec!["MMAP.POP", &k],
            ] {
                let _ = raw(c, &args);
                self.checked += 1;
            }
        }
        self.model.disturbed.insert(file);
        self.checked += 1;
        Some(change)
    }

    /// Puts back a file another program changed (see `actor`).
    fn put_back(&mut self, s: &Server, c: &mut redis::Connection, file: &str, seed: u64) {
        let want = Held::Bound(file.to_string());
        for db in 0..2 {
            let keys: Vec<String> = self.model.dbs[db]
                .iter()
                .filter(|(_, h)| **h == want)
                .map(|(k, _)| k.clone())
                .collect();
            raw(c, &["SELECT", &db.to_string()]).unwrap();
            for k in keys {
                assert_eq!(int(c, &["DEL", &k]), 1, "DEL {k} in db {db} (seed {seed})");
                self.model.dbs[db].remove(&k);
            }
        }
        raw(c, &["SELECT", "0"]).unwrap();
        let bytes: Vec<u8> = self.model.files[file].iter().flat_map(|b| b.to_le_bytes()).collect();
        fs::write(s.data().join(file), bytes).unwrap();
        rewrite_aof(c);
        self.model.disturbed.remove(file);
        self.checked += 1;
    }

    /// Puts back every changed file: before a restart, which checks them all.
    fn put_all_back(&mut self, s: &Server, c: &mut redis::Connection, seed: u64) {
        let files: Vec<String> = self.model.disturbed.iter().cloned().collect();
        for f in files {
            self.put_back(s, c, &f, seed);
        }
    }
}

/// A reply inside EXEC's array, as `raw_bytes` gives a reply.
fn in_exec(v: Value) -> Result<Value, String> {
    match v {
        Value::ServerError(e) => Err(match e.details() {
            Some(d) => format!("{} {d}", e.code()),
            None => e.code().to_string(),
        }),
        v => Ok(v),
    }
}

/// Whether the server refuses the command when it is queued, which
/// aborts a whole MULTI: a wrong number of arguments.
fn refused_when_queued(want: &Want) -> bool {
    matches!(want, Want::Err(e) if e.starts_with("ERR wrong number of arguments"))
}

/// `INFO mmap`'s counters against the model's, once no value waits to
/// be freed: a key flushed asynchronously (Valkey's default) is counted
/// until the lazy-free thread frees its value.
fn check_counters(c: &mut redis::Connection, model: &Model, what: &str) {
    if !model.disturbed.is_empty() {
        return; // keys of changed files may be broken, and their sizes are not the model's
    }
    let info = loop {
        let info = match raw(c, &["INFO", "mmap", "memory"]).unwrap() {
            Value::BulkString(b) => String::from_utf8(b).unwrap(),
            Value::VerbatimString { text, .. } => text,
            other => panic!("INFO mmap: {other:?}"),
        };
        if line_field(&info, "lazyfree_pending_objects").as_deref() == Some("0") {
            break info;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let got = |name: &str| -> i64 { line_field(&info, name).and_then(|v| v.parse().ok()).unwrap() };
    let (keys, bytes) = model.counters();
    assert_eq!(
        (got("mmap_keys"), got("mmap_file_bytes"), got("mmap_broken_keys")),
        (keys, bytes, 0),
        "INFO mmap's keys, file bytes and broken keys {what}"
    );
}

fn matches(got: &Result<Value, String>, want: &Want) -> bool {
    let got = match (want, got) {
        (Want::Any, _) => return true,
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

/// Every file on disk against the model, byte for byte, but those another
/// program is changing.
fn check_files(s: &Server, model: &Model) {
    for (name, bits) in model.files.iter().filter(|(f, _)| !model.disturbed.contains(*f)) {
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
    // Reads on the worker threads for most seeds: every read (0), all but
    // the smallest (64 bytes), or only the long ones (the default).
    let offload = std::env::var("FUZZ_OFFLOAD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or([0, 64, 1 << 20][(seed % 3) as usize]);
    let mut opts = aof_opts("yes");
    opts.conf.push(format!("mmap.offload-bytes {offload}"));
    let mut s = Server::with(opts);
    let mut c = s.conn();
    let version = server_version(&mut c);
    eprintln!(
        "fuzz: {ops} operations, seed {seed}, server {}, mmap.offload-bytes {offload}",
        redis_server()
    );
    let mut f = Fuzz {
        rng: Rng(seed | 1),
        model: Model::default(),
        checked: 0,
    };
    let restart_every = (ops / 40).max(1000);
    let (mut errors, mut restarts) = (0u64, [0u64; 5]);
    let started = Instant::now();
    let (mut n, mut batches, mut multis) = (0u64, 0u64, 0u64);
    let mut changes: HashMap<String, u64> = HashMap::new();
    let mut faults = 0; // survived, over every server start
    while n < ops {
        if f.rng.chance(2) {
            f.moved(&mut c, seed);
        }
        // One pass in 250: another program changes a bound file, or puts
        // one back.
        if f.rng.below(250) == 0 {
            if let Some(change) = f.actor(&s, &mut c, seed) {
                *changes.entry(format!("{change:?}").to_lowercase()).or_default() += 1;
            }
        }
        // Now and then a pipeline, so that appends held within one pass of
        // the event loop meet the reads and writes after them; some of them
        // one MULTI/EXEC, which leaves out what would abort it when queued.
        let k = if f.rng.chance(10) { 2 + f.rng.below(31) } else { 1 }.min(ops - n);
        let multi = k > 1 && f.rng.chance(30);
        let steps: Vec<_> = (0..k)
            .map(|_| f.step())
            .filter(|(_, want)| !(multi && refused_when_queued(want)))
            .collect();
        let k = steps.len() as u64;
        let replies = if k == 1 && !multi {
            vec![raw_bytes(&mut c, &steps[0].0)]
        } else {
            batches += 1;
            let mut p = redis::pipe();
            if multi {
                multis += 1;
                p.cmd("MULTI");
            }
            for (args, _) in &steps {
                p.cmd(std::str::from_utf8(&args[0]).unwrap());
                for a in &args[1..] {
                    p.arg(&a[..]);
                }
            }
            if multi {
                p.cmd("EXEC");
            }
            let got: Vec<redis::RedisResult<Value>> = p.ignore_errors().query(&mut c).unwrap();
            let got = got.into_iter().map(|r| r.map_err(|e| error_text(&e)));
            if multi {
                match got.last() {
                    Some(Ok(Value::Array(items))) => items.into_iter().map(in_exec).collect(),
                    other => panic!("EXEC (seed {seed}): {other:?}"),
                }
            } else {
                got.collect()
            }
        };
        let crossed = (n + k) / restart_every > n / restart_every;
        for ((args, want), got) in steps.iter().zip(&replies) {
            n += 1;
            if matches!(want, Want::Err(_)) {
                errors += 1;
            }
            assert!(
                matches(got, want),
                "operation {n} (seed {seed}){}: {:?}\n  got  {got:?}\n  want {want:?}",
                if multi { " in MULTI" } else { "" },
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
            );
            f.checked += 1;
        }
        check_counters(&mut c, &f.model, &format!("after operation {n} (seed {seed})"));
        if crossed {
            f.put_all_back(&s, &mut c, seed);
            faults += mmap_stat(&mut c, "faults");
            check_files(&s, &f.model);
            let kind = (n / restart_every) % 5; // the restart's number picks its kind
            match kind {
                0 => s.restart(),
                1 => s.kill_and_restart(),
                2 => {
                    raw(&mut c, &["DEBUG", "RELOAD"]).unwrap();
                }
                3 => {
                    let content = if f.rng.chance(50) { "yes" } else { "no" };
                    raw(&mut c, &["CONFIG", "SET", "mmap.rdb-content", content]).unwrap();
                    let preamble = if f.rng.chance(50) { "yes" } else { "no" };
                    raw(&mut c, &["CONFIG", "SET", "aof-use-rdb-preamble", preamble]).unwrap();
                    rewrite_aof(&mut c);
                    s.kill_and_restart();
                }
                _ => {
                    // The whole AOF replayed in place, RESTOREs and all.
                    raw(&mut c, &["DEBUG", "LOADAOF"]).unwrap();
                }
            }
            restarts[kind as usize] += 1;
            c = s.conn();
            check_files(&s, &f.model);
            for db in 0..2 {
                raw(&mut c, &["SELECT", &db.to_string()]).unwrap();
                for key in (0..KEYS).map(|k| format!("k{k}")).chain(["s".to_string()]) {
                    let ty = match raw(&mut c, &["TYPE", &key]).unwrap() {
                        Value::SimpleString(t) => t,
                        Value::Okay => "OK".into(),
                        other => panic!("{other:?}"),
                    };
                    match f.model.dbs[db].get(&key) {
                        Some(Held::Bound(file)) => {
                            let want = f.model.files[file].len() as i64;
                            assert_eq!(
                                int(&mut c, &["MMAP.COUNT", &key]),
                                want,
                                "{key} in db {db} after a restart (seed {seed})"
                            );
                        }
                        Some(Held::Str) => assert_eq!(ty, "string", "{key} in db {db} (seed {seed})"),
                        None => assert_eq!(ty, "none", "{key} in db {db} (seed {seed})"),
                    }
                }
            }
            raw(&mut c, &["SELECT", "0"]).unwrap();
            assert_eq!(mmap_stat(&mut c, "panics"), 0);
            check_counters(&mut c, &f.model, &format!("after a restart (seed {seed})"));
        }
    }
    f.put_all_back(&s, &mut c, seed);
    check_files(&s, &f.model);
    assert_eq!(mmap_stat(&mut c, "panics"), 0);
    faults += mmap_stat(&mut c, "faults");
    let mut changes: Vec<_> = changes.into_iter().collect();
    changes.sort();
    eprintln!("fuzz: files changed under their keys by another program: {changes:?}; faults survived: {faults}");
    eprintln!(
        "fuzz: {} operations checked against {version} in {:.0} s ({errors} expected error replies, \
         {batches} pipelines, {multis} of them MULTI/EXEC), restarts: {} SHUTDOWN SAVE, {} SIGKILL + AOF replay, \
         {} DEBUG RELOAD, {} BGREWRITEAOF + SIGKILL, {} DEBUG LOADAOF; \
         {} files, {} values in the model; nothing found",
        f.checked,
        started.elapsed().as_secs_f64(),
        restarts[0],
        restarts[1],
        restarts[2],
        restarts[3],
        restarts[4],
        f.model.files.len(),
        f.model.files.values().map(Vec::len).sum::<usize>()
    );
}
