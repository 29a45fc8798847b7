//! The bulk commands: MMAP.RANGE (values and BLOB), MMAP.SETRANGE,
//! MMAP.APPEND and MMAP.STATS, in every kind, at every range edge, with
//! every refusal leaving the file as it was.

mod common;

use std::fs;

use common::*;
use redis::Value;

fn bytes_of(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next() as u8).collect()
}

fn blob(c: &mut redis::Connection, args: &[&str]) -> Vec<u8> {
    match raw(c, args) {
        Ok(Value::BulkString(b)) => b,
        other => panic!("{args:?}: expected a bulk string, got {other:?}"),
    }
}

fn array(c: &mut redis::Connection, args: &[&str]) -> Vec<Value> {
    match raw(c, args) {
        Ok(Value::Array(v)) => v,
        other => panic!("{args:?}: expected an array, got {other:?}"),
    }
}

/// The part `start..=stop` selects by LRANGE's rules, computed here
/// independently of the module.
fn lrange<T: Clone>(all: &[T], start: i64, stop: i64) -> Vec<T> {
    let n = all.len() as i64;
    let s = if start < 0 { (start + n).max(0) } else { start };
    let e = if stop < 0 { stop + n } else { stop.min(n - 1) };
    if s > e || s >= n {
        return Vec::new();
    }
    all[s as usize..=e as usize].to_vec()
}

const EDGES: [(i64, i64); 14] = [
    (0, -1),
    (0, 0),
    (-1, -1),
    (1, 3),
    (-3, -2),
    (-1000, 2),
    (2, 1000),
    (5, 2),
    (37, 37),
    (38, 40),
    (-39, -39),
    (-1000, -500),
    (i64::MIN, i64::MAX),
    (i64::MAX, i64::MIN),
];

#[test]
fn ranges_of_every_kind_give_the_files_bytes_and_values_at_every_edge() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = Rng(7);
    for (kind, size) in KINDS {
        let n = 38;
        let file = format!("{kind}.bin");
        let bytes = bytes_of(&mut rng, n * size);
        fs::write(s.data().join(&file), &bytes).unwrap();
        assert_eq!(int(&mut c, &["MMAP", kind, &file, "TYPE", kind]), n as i64);
        let idx: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let mut mget = vec!["MMAP.MGET", kind];
        mget.extend(idx.iter().map(String::as_str));
        let values = array(&mut c, &mget);
        let elements: Vec<Vec<u8>> = bytes.chunks(size).map(<[u8]>::to_vec).collect();
        for (start, stop) in EDGES {
            let (a, b) = (start.to_string(), stop.to_string());
            let got = blob(&mut c, &["MMAP.RANGE", kind, &a, &b, "BLOB"]);
            assert_eq!(got, lrange(&elements, start, stop).concat(), "{kind} {a} {b}");
            // The same values MGET gives, in the same reply types.
            let got = array(&mut c, &["mmap.range", kind, &a, &b]);
            assert_eq!(got, lrange(&values, start, stop), "{kind} {a} {b}");
        }
        assert_eq!(blob(&mut c, &["MMAP.RANGE", kind, "0", "-1", "blob"]), bytes);
    }
}

#[test]
fn setrange_and_append_write_raw_elements_of_every_kind() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = Rng(11);
    for (kind, size) in KINDS {
        let file = format!("{kind}.bin");
        let path = s.data().join(&file);
        let mut model = bytes_of(&mut rng, 10 * size);
        fs::write(&path, &model).unwrap();
        assert_eq!(int(&mut c, &["MMAP", kind, &file, "TYPE", kind]), 10);
        // In place: the first, a middle run, the last; an empty blob anywhere
        // up to the end writes nothing.
        for (at, n) in [(0, 1), (3, 4), (9, 1), (0, 10), (10, 0), (4, 0)] {
            let new = bytes_of(&mut rng, n * size);
            let reply = raw_bytes(
                &mut c,
                &[&b"MMAP.SETRANGE"[..], kind.as_bytes(), at.to_string().as_bytes(), &new],
            );
            assert_eq!(reply, Ok(Value::Int(n as i64)), "{kind} {at} {n}");
            model[at * size..(at + n) * size].copy_from_slice(&new);
            assert_eq!(fs::read(&path).unwrap(), model, "{kind}");
        }
        // Appended: the reply is the new length.
        let mut len = 10;
        for n in [1, 0, 7, 300] {
            let new = bytes_of(&mut rng, n * size);
            len += n;
            let reply = raw_bytes(&mut c, &[&b"MMAP.APPEND"[..], kind.as_bytes(), &new]);
            assert_eq!(reply, Ok(Value::Int(len as i64)), "{kind} {n}");
            model.extend_from_slice(&new);
            assert_eq!(fs::read(&path).unwrap(), model, "{kind}");
        }
        assert_eq!(int(&mut c, &["MMAP.COUNT", kind]), len as i64);
        assert_eq!(blob(&mut c, &["MMAP.RANGE", kind, "0", "-1", "BLOB"]), model);
        // The values read back are the elements written.
        let last = array(&mut c, &["MMAP.RANGE", kind, "-1", "-1"]);
        let got = raw(&mut c, &["MMAP.GET", kind, &(len - 1).to_string()]).unwrap();
        assert_eq!(last, vec![got]);
    }
}

#[test]
fn wrong_blobs_and_indices_are_refused_and_change_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    let path = s.data().join("i.bin");
    let start: Vec<u8> = (0..20).collect();
    fs::write(&path, &start).unwrap();
    assert_eq!(int(&mut c, &["MMAP", "i", "i.bin", "TYPE", "int32"]), 5);
    let e = |c: &mut redis::Connection, args: &[&[u8]]| raw_bytes(c, args).unwrap_err();
    assert_eq!(
        e(&mut c, &[b"MMAP.SETRANGE", b"i", b"0", &[1; 6]]),
        "ERR a blob of 6 bytes is not a whole number of int32 values (4 bytes each); nothing was written"
    );
    assert_eq!(
        e(&mut c, &[b"MMAP.APPEND", b"i", &[1; 3]]),
        "ERR a blob of 3 bytes is not a whole number of int32 values (4 bytes each); nothing was written"
    );
    assert_eq!(
        e(&mut c, &[b"MMAP.SETRANGE", b"i", b"4", &[1; 8]]),
        "ERR cannot write 2 values at index 4: the vector holds 5; nothing was written"
    );
    assert_eq!(
        e(&mut c, &[b"MMAP.SETRANGE", b"i", b"-1", &[1; 4]]),
        "ERR cannot write 1 values at index -1: the vector holds 5; nothing was written"
    );
    assert_eq!(
        e(&mut c, &[b"MMAP.SETRANGE", b"i", b"6", b""]),
        "ERR cannot write 0 values at index 6: the vector holds 5; nothing was written"
    );
    assert!(e(&mut c, &[b"MMAP.SETRANGE", b"i", b"x", &[1; 4]]).starts_with("ERR index 'x' is not"));
    assert!(e(&mut c, &[b"MMAP.SETRANGE", b"nokey", b"0", &[1; 4]]).starts_with("ERR no such key 'nokey'"));
    assert!(e(&mut c, &[b"MMAP.APPEND", b"nokey", &[1; 4]]).starts_with("ERR no such key 'nokey'"));
    assert!(!s.data().join("nokey").exists());
    assert!(err(&mut c, &["MMAP.RANGE", "i", "0", "x"]).starts_with("ERR index 'x' is not"));
    assert_eq!(
        err(&mut c, &["MMAP.RANGE", "i", "0", "1", "BLOBS"]),
        "ERR unknown mmap.range option 'BLOBS' (known: BLOB)"
    );
    assert_eq!(
        err(&mut c, &["MMAP.STATS", "i", "0"]),
        "ERR syntax error: mmap.stats takes start and stop together, or neither"
    );
    assert!(err(&mut c, &["MMAP.STATS", "i", "0", "1.5"]).starts_with("ERR index '1.5' is not"));
    for args in [
        &["MMAP.RANGE", "i", "0"][..],
        &["MMAP.RANGE", "i", "0", "1", "BLOB", "x"],
        &["MMAP.SETRANGE", "i", "0"],
        &["MMAP.APPEND", "i"],
        &["MMAP.STATS", "i", "0", "1", "2"],
    ] {
        assert!(err(&mut c, args).contains("wrong number of arguments"), "{args:?}");
    }
    // Another type's key.
    raw(&mut c, &["SET", "str", "x"]).unwrap();
    for args in [
        &["MMAP.RANGE", "str", "0", "1"][..],
        &["MMAP.STATS", "str"],
        &["MMAP.APPEND", "str", "abcd"],
        &["MMAP.SETRANGE", "str", "0", "abcd"],
    ] {
        assert!(err(&mut c, args).starts_with("WRONGTYPE"), "{args:?}");
    }
    assert_eq!(fs::read(&path).unwrap(), start);
    assert_eq!(int(&mut c, &["MMAP.COUNT", "i"]), 5);
}

#[test]
fn a_missing_key_reads_as_empty() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(array(&mut c, &["MMAP.RANGE", "none", "0", "-1"]), vec![]);
    assert_eq!(blob(&mut c, &["MMAP.RANGE", "none", "0", "-1", "BLOB"]), b"");
    let none = fields(&mut c, &["MMAP.STATS", "none"]);
    assert_eq!(none[0], ("count".into(), Value::Int(0)));
    assert_eq!(none[1], ("nan".into(), Value::Int(0)));
    assert_eq!(reply_f64(&none[2].1), 0.0);
    for (_, v) in &none[3..] {
        assert_eq!(*v, Value::Nil);
    }
    // Bound but empty: the same.
    assert_eq!(int(&mut c, &["MMAP", "e", "e.f64"]), 0);
    assert_eq!(blob(&mut c, &["MMAP.RANGE", "e", "0", "-1", "BLOB"]), b"");
    assert_eq!(fields(&mut c, &["MMAP.STATS", "e"]), none);
}

fn reply_f64(v: &Value) -> f64 {
    match v {
        Value::Double(x) => *x,
        Value::BulkString(b) => std::str::from_utf8(b).unwrap().parse().unwrap(),
        Value::Int(n) => *n as f64,
        other => panic!("{other:?}"),
    }
}

#[test]
fn stats_summarise_a_range_in_both_protocols() {
    let s = Server::start();
    let mut values: Vec<f64> = (0..5000).map(|i| (i as f64 * 0.37).sin() * 100.0).collect();
    for i in (0..5000).step_by(97) {
        values[i] = f64::NAN;
    }
    write_values(&s.data().join("v.f64"), &values);
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["MMAP", "v", "v.f64"]), 5000);
    for (start, stop) in [(0, -1), (10, 20), (-100, -1), (4999, 4999), (3, 2), (0, 96)] {
        let part = lrange(&values, start, stop);
        let kept: Vec<f64> = part.iter().copied().filter(|x| !x.is_nan()).collect();
        let (a, b) = (start.to_string(), stop.to_string());
        for c in [&mut s.conn(), &mut s.conn3()] {
            let got = fields(c, &["MMAP.STATS", "v", &a, &b]);
            let names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(names, ["count", "nan", "sum", "min", "max", "mean", "std"]);
            assert_eq!(got[0].1, Value::Int(kept.len() as i64));
            assert_eq!(got[1].1, Value::Int((part.len() - kept.len()) as i64));
            let sum: f64 = kept.iter().sum();
            assert!(
                (reply_f64(&got[2].1) - sum).abs() <= 1e-12 * sum.abs().max(1.0),
                "{a} {b}"
            );
            if kept.is_empty() {
                assert!(got[3..].iter().all(|(_, v)| *v == Value::Nil), "{got:?}");
                continue;
            }
            let lo = kept.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = kept.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((reply_f64(&got[3].1), reply_f64(&got[4].1)), (lo, hi));
            let mean = sum / kept.len() as f64;
            let std = (kept.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / kept.len() as f64).sqrt();
            assert!((reply_f64(&got[5].1) - mean).abs() <= 1e-12 * mean.abs().max(1.0));
            assert!((reply_f64(&got[6].1) - std).abs() <= 1e-12 * std.max(1.0));
        }
    }
    // RESP3: a map of integers and doubles.
    let Value::Map(m) = raw(&mut s.conn3(), &["MMAP.STATS", "v"]).unwrap() else {
        panic!("RESP3 STATS is a map")
    };
    assert!(matches!(m[0].1, Value::Int(_)) && matches!(m[2].1, Value::Double(_)));
    // Integer kinds: min and max are integers, the sum exact.
    let ints: Vec<u8> = [i64::MAX, i64::MAX, -5]
        .iter()
        .flat_map(|x: &i64| x.to_le_bytes())
        .collect();
    fs::write(s.data().join("n.i64"), ints).unwrap();
    assert_eq!(int(&mut c, &["MMAP", "n", "n.i64", "TYPE", "int64"]), 3);
    let got = fields(&mut c, &["MMAP.STATS", "n"]);
    assert_eq!(got[3].1, Value::Int(-5));
    assert_eq!(got[4].1, Value::Int(i64::MAX));
    assert_eq!(reply_f64(&got[2].1), (2.0 * i64::MAX as f64) - 5.0);
}

#[test]
fn read_only_keys_serve_ranges_and_stats_and_refuse_raw_writes() {
    let s = Server::start();
    let path = s.data().join("r.f32");
    let bytes: Vec<u8> = [1.5f32, -2.0, 8.25].iter().flat_map(|x| x.to_le_bytes()).collect();
    fs::write(&path, &bytes).unwrap();
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["MMAP", "r", "r.f32", "TYPE", "float32", "READONLY"]), 3);
    assert_eq!(blob(&mut c, &["MMAP.RANGE", "r", "0", "-1", "BLOB"]), bytes);
    assert_eq!(
        array(&mut c, &["MMAP.RANGE", "r", "1", "1"]),
        vec![Value::BulkString(b"-2".to_vec())]
    );
    let got = fields(&mut c, &["MMAP.STATS", "r"]);
    assert_eq!(reply_f64(&got[2].1), 7.75);
    assert_eq!(got[3].1, Value::BulkString(b"-2".to_vec()));
    for args in [
        &[&b"MMAP.SETRANGE"[..], b"r", b"0", &[0; 4]][..],
        &[b"MMAP.APPEND", b"r", &[0; 4]],
        // Read-only comes first, before the blob's size is looked at.
        &[b"MMAP.APPEND", b"r", &[0; 3]],
    ] {
        assert_eq!(
            raw_bytes(&mut c, args).unwrap_err(),
            "ERR key 'r' is read-only (mapped with READONLY)"
        );
    }
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_broken_key_says_why_for_every_bulk_command() {
    let mut s = Server::start();
    write_values(&s.data().join("b.f64"), &[1.0, 2.0]);
    assert_eq!(int(&mut s.conn(), &["MMAP", "b", "b.f64"]), 2);
    s.stop();
    fs::remove_file(s.data().join("b.f64")).unwrap();
    s.start_again();
    let mut c = s.conn();
    for args in [
        &["MMAP.RANGE", "b", "0", "-1"][..],
        &["MMAP.RANGE", "b", "0", "-1", "BLOB"],
        &["MMAP.STATS", "b"],
        &["MMAP.APPEND", "b", "12345678"],
        &["MMAP.SETRANGE", "b", "0", "12345678"],
    ] {
        let e = err(&mut c, args);
        assert!(
            e.starts_with("ERR key 'b' is bound to 'b.f64', which cannot be opened"),
            "{args:?}: {e}"
        );
    }
    assert!(!s.data().join("b.f64").exists());
}

#[test]
fn command_docs_give_the_bulk_commands_and_their_cost() {
    let s = Server::start();
    let mut c = s.conn();
    for (name, words) in [
        ("mmap.range", &["start", "stop", "BLOB", "LRANGE"][..]),
        ("mmap.setrange", &["index", "bytes", "whole number"]),
        ("mmap.append", &["bytes", "whole number of elements", "new length"]),
        ("mmap.stats", &["count", "nan", "sum", "std", "per GB", "start", "stop"]),
    ] {
        let docs = format!("{:?}", raw(&mut c, &["COMMAND", "DOCS", name]).unwrap());
        for w in words {
            assert!(docs.contains(w), "{name}: {w} not in {docs}");
        }
    }
    // Keys are found for cluster routing and ACLs.
    let keys = raw(&mut c, &["COMMAND", "GETKEYS", "MMAP.RANGE", "k", "0", "1", "BLOB"]).unwrap();
    assert_eq!(keys, Value::Array(vec![Value::BulkString(b"k".to_vec())]));
    let keys = raw(&mut c, &["COMMAND", "GETKEYS", "MMAP.APPEND", "k2", "x"]).unwrap();
    assert_eq!(keys, Value::Array(vec![Value::BulkString(b"k2".to_vec())]));
}
