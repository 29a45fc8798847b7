//! Replication (SPEC section 4): a replica with its own mmap.dir follows
//! every write of its master byte for byte, across its own restart.

mod common;

use std::fs;

use common::*;

/// A master that starts a replica's first sync at once.
fn master() -> Server {
    Server::with(Opts {
        conf: vec!["repl-diskless-sync-delay 0".into()],
        ..Opts::default()
    })
}

/// Waits until the replica has applied every write made on `c` (WAIT
/// counts the writes of its own connection).
fn caught_up(c: &mut redis::Connection) {
    assert_eq!(int(c, &["WAIT", "1", "10000"]), 1);
}

/// A key's file and element size: `i` is int32, `h` float16, the rest float64.
fn file_of(key: &str) -> (String, usize) {
    match key {
        "i" => ("i.i32".into(), 4),
        "h" => ("h.f16".into(), 2),
        _ => (format!("{key}.f64"), 8),
    }
}

/// Same bytes, same count, same digest, on both servers.
fn same(m: &Server, r: &Server, key: &str) {
    let (file, size) = file_of(key);
    let (mf, rf) = (
        fs::read(m.data().join(&file)).unwrap(),
        fs::read(r.data().join(&file)).unwrap(),
    );
    assert!(
        mf == rf,
        "{file}: master {} bytes, replica {} bytes",
        mf.len(),
        rf.len()
    );
    let count = |s: &Server| int(&mut s.conn(), &["MMAP.COUNT", key]);
    assert_eq!(count(m), count(r));
    assert_eq!(count(m) as usize * size, mf.len());
    assert_eq!(digest(&mut m.conn(), key), digest(&mut r.conn(), key));
}

fn writes(c: &mut redis::Connection, round: u32) {
    writes_as(c, round, str::to_owned)
}

/// The first version's short name of a command (`MMAP.ADD` is `VADD`).
fn short(name: &str) -> String {
    format!("V{}", name.strip_prefix("MMAP.").expect("a dotted name"))
}

/// The writes of one round, each command spelled by `name`.
fn writes_as(c: &mut redis::Connection, round: u32, name: fn(&str) -> String) {
    let r = round.to_string();
    let values: Vec<String> = (0..300).map(|i| format!("{i}.{round}")).collect();
    let n: i64 = redis::cmd(&name("MMAP.ADD")).arg("v").arg(&values).query(c).unwrap();
    assert_eq!(n, 300);
    for args in [
        vec!["MMAP.ADD", "v", "nan(0x5)"],
        vec!["MMAP.ADD", "v", "-0"],
        vec!["MMAP.SET", "v", "3", "inf", "100000", "1"],
        vec!["MMAP.SET", "v", "7", &r],
        vec!["MMAP.POP", "v"],
        vec!["MMAP.RESIZE", "v", "450"],
        vec!["MMAP.SET", "v", "449", "5e-324"],
        vec!["MMAP.RESIZE", "v", "420"],
        vec!["MMAP.ADD", "n", &r, "1e-20"],
        vec!["MMAP.POP", "n"],
        vec!["MMAP.ADD", "i", &r, "-2147483648", "2147483647"],
        vec!["MMAP.SET", "i", "0", "-1", "1", &r],
        vec!["MMAP.POP", "i"],
        vec!["MMAP.ADD", "h", "0.1", "nan(0x2)", "-6e-8", &r],
        vec!["MMAP.SET", "h", "1", "65504", "2", "-inf"],
        vec!["MMAP.RESIZE", "h", "20"],
    ] {
        let mut args = args;
        let spelled = name(args[0]);
        args[0] = &spelled;
        raw(c, &args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
    // Raw elements, by the only names they have.
    let doubles: Vec<u8> = [round as f64, f64::from_bits(0x7ff0_0000_0000_0007), -0.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    for args in [
        &[&b"MMAP.SETRANGE"[..], b"v", b"400", &doubles][..],
        &[b"MMAP.APPEND", b"v", &doubles[..16]],
        &[b"MMAP.SETRANGE", b"i", b"0", &[round as u8, 0, 0, 0x80]],
        &[b"MMAP.APPEND", b"i", &[1, 2, 3, 4, 5, 6, 7, 8]],
        &[b"MMAP.APPEND", b"h", &[0x01, 0x7c, 0x00, 0xbc, round as u8, 0]],
        &[b"MMAP.SETRANGE", b"h", b"19", &[0xff, 0x7b]],
    ] {
        raw_bytes(c, args).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(args[0])));
    }
    if round == 2 {
        raw(c, &[&name("MMAP.CLEAR"), "n"]).unwrap();
        raw(c, &[&name("MMAP.ADD"), "n", "42"]).unwrap();
    }
}

#[test]
fn a_replica_follows_every_write_byte_for_byte() {
    let m = master();
    let mut r = replica_of(&m, Opts::default());
    // The replica's own copy of the file, made before the master binds it.
    let start: Vec<f64> = (0..100).map(|i| i as f64 / 3.0).collect();
    write_values(&m.data().join("v.f64"), &start);
    write_values(&r.data().join("v.f64"), &start);
    let mut c = m.conn();
    assert_eq!(int(&mut c, &["MMAP", "v", "v.f64"]), 100);
    // A file the master creates is created on the replica too.
    assert_eq!(int(&mut c, &["MMAP", "n", "n.f64"]), 0);
    assert_eq!(int(&mut c, &["MMAP", "i", "i.i32", "TYPE", "int32"]), 0);
    assert_eq!(int(&mut c, &["MMAP", "h", "h.f16", "TYPE", "float16"]), 0);
    writes(&mut c, 1);
    caught_up(&mut c);
    for key in ["v", "n", "i", "h"] {
        same(&m, &r, key);
    }
    assert_eq!(info_text(&mut r.conn(), "h", "kind"), "float16");
    assert_ne!(digest(&mut m.conn(), "v"), digest(&mut m.conn(), "n"));

    // The replica goes down; the master goes on; the replica comes back,
    // resyncs, and has every write.
    r.stop();
    writes(&mut c, 2);
    let before = digest(&mut m.conn(), "v");
    r.start_again();
    wait_link(&r);
    caught_up(&mut c);
    for key in ["v", "n", "i", "h"] {
        same(&m, &r, key);
    }
    writes(&mut c, 3);
    caught_up(&mut c);
    for key in ["v", "n", "i", "h"] {
        same(&m, &r, key);
    }
    assert_eq!(info_text(&mut r.conn(), "i", "kind"), "int32");
    assert_ne!(digest(&mut m.conn(), "v"), before, "the digest follows the content");
}

/// Writes sent to a Redis 7 master by their short names reach the replica
/// under canonical names, so a Redis 8 replica (whose own `VADD` is Vector
/// Sets') follows byte for byte, as every other server does.
#[test]
fn a_redis_7_master_written_by_short_names_feeds_this_server() {
    let m = Server::with(Opts {
        conf: vec!["repl-diskless-sync-delay 0".into()],
        server: Some(redis7_server()),
        ..Opts::default()
    });
    let start: Vec<f64> = (0..50).map(|i| i as f64 * 0.25).collect();
    write_values(&m.data().join("v.f64"), &start);
    let mut c = m.conn();
    assert_eq!(flavour(&mut c), Flavour::Redis7);
    assert_eq!(int(&mut c, &["MMAP", "v", "v.f64"]), 50);
    let r = Server::with(Opts::default());
    write_values(&r.data().join("v.f64"), &start);
    raw(&mut r.conn(), &["REPLICAOF", "127.0.0.1", &m.port.to_string()]).unwrap();
    wait_link(&r);
    assert_eq!(int(&mut c, &["MMAP", "n", "n.f64"]), 0);
    assert_eq!(int(&mut c, &["MMAP", "i", "i.i32", "TYPE", "int32"]), 0);
    assert_eq!(int(&mut c, &["MMAP", "h", "h.f16", "TYPE", "float16"]), 0);
    for round in 1..=2 {
        writes_as(&mut c, round, short);
        caught_up(&mut c);
        for key in ["v", "n", "i", "h"] {
            same(&m, &r, key);
        }
    }
}

#[test]
fn a_replica_without_the_file_gets_a_key_that_says_so() {
    let m = master();
    let r = replica_of(&m, Opts::default());
    write_values(&m.data().join("v.f64"), &[1.0, 2.0]);
    let mut c = m.conn();
    assert_eq!(int(&mut c, &["MMAP", "v", "v.f64"]), 2);
    int(&mut c, &["MMAP.ADD", "v", "3"]);
    caught_up(&mut c);
    let mut rc = r.conn();
    assert_eq!(int(&mut rc, &["EXISTS", "v"]), 1);
    let e = err(&mut rc, &["MMAP.COUNT", "v"]);
    assert!(
        e.starts_with("ERR key 'v' is bound to 'v.f64'") && e.contains("no such file"),
        "{e}"
    );
    assert!(
        !r.data().join("v.f64").exists(),
        "no empty file stands in for the master's"
    );
    // Once the file is copied over, MMAP on the master re-opens it everywhere.
    fs::copy(m.data().join("v.f64"), r.data().join("v.f64")).unwrap();
    int(&mut c, &["DEL", "v"]);
    assert_eq!(int(&mut c, &["MMAP", "v", "v.f64"]), 3);
    int(&mut c, &["MMAP.SET", "v", "0", "9"]);
    caught_up(&mut c);
    same(&m, &r, "v");
}

#[test]
fn digests_depend_on_content_only() {
    let s = Server::start();
    let mut c = s.conn();
    write_values(&s.data().join("a.f64"), &[1.0, 2.0, 3.0]);
    write_values(&s.data().join("b.f64"), &[1.0, 2.0, 3.0]);
    int(&mut c, &["MMAP", "a", "a.f64"]);
    int(&mut c, &["MMAP", "b", "b.f64"]);
    assert_eq!(digest(&mut s.conn(), "a"), digest(&mut s.conn(), "b"));
    int(&mut c, &["MMAP.SET", "b", "2", "3.0000000000000004"]);
    assert_ne!(digest(&mut s.conn(), "a"), digest(&mut s.conn(), "b"));
}
