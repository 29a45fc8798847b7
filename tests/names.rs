//! Canonical names and short aliases: `MMAP.GET` is always there, `VGET`
//! wherever the server does not have the name itself (Redis 8 owns `VADD`),
//! and every log the module writes uses canonical names.

mod common;

use std::fs;
use std::path::Path;

use common::*;

const SHORT: [(&str, &str); 8] = [
    ("vget", "MMAP.GET"),
    ("vmget", "MMAP.MGET"),
    ("vset", "MMAP.SET"),
    ("vadd", "MMAP.ADD"),
    ("vpop", "MMAP.POP"),
    ("vcount", "MMAP.COUNT"),
    ("vclear", "MMAP.CLEAR"),
    ("vresize", "MMAP.RESIZE"),
];

/// The short name of a canonical one where this server has it, or the
/// canonical name itself.
fn spelled(registered: &[String], canonical: &str) -> String {
    SHORT
        .iter()
        .find(|(_, c)| *c == canonical)
        .filter(|(s, _)| registered.iter().any(|r| r == s))
        .map_or(canonical.to_string(), |(s, _)| s.to_uppercase())
}

#[test]
fn the_short_names_are_registered_except_where_the_server_has_them() {
    let s = Server::start();
    let mut c = s.conn();
    let (registered, taken) = short_names(&mut c);
    let want_taken: Vec<String> = match flavour(&mut c) {
        Flavour::Redis8 => vec!["vadd".into()],
        Flavour::Redis7 | Flavour::Valkey => vec![],
    };
    assert_eq!(taken, want_taken);
    let want: Vec<String> = SHORT
        .iter()
        .map(|(s, _)| s.to_string())
        .filter(|s| !want_taken.contains(s))
        .collect();
    assert_eq!(registered, want);
    for (short, canonical) in SHORT {
        if registered.iter().any(|r| r == short) {
            assert_eq!(
                raw(&mut c, &["COMMAND", "INFO", short]).unwrap(),
                raw(&mut c, &["COMMAND", "INFO", canonical])
                    .map(|v| rename_info(v, short))
                    .unwrap(),
                "{short} is described as {canonical} is"
            );
            let docs = format!("{:?}", raw(&mut c, &["COMMAND", "DOCS", short]).unwrap());
            assert!(docs.contains(&format!("Same as {canonical}.")), "{docs}");
        }
    }
}

/// `COMMAND INFO`'s reply for a command, with its name replaced.
fn rename_info(v: Value, name: &str) -> Value {
    let Value::Array(mut outer) = v else { panic!("{v:?}") };
    let Value::Array(fields) = &mut outer[0] else { panic!() };
    fields[0] = Value::BulkString(name.as_bytes().to_vec());
    Value::Array(outer)
}

#[test]
fn each_short_name_answers_exactly_as_its_canonical_name() {
    let s = Server::start();
    let mut c = s.conn();
    let (registered, _) = short_names(&mut c);
    assert!(registered.len() >= 7, "{registered:?}");
    int(&mut c, &["MMAP", "a", "a.f64"]);
    int(&mut c, &["MMAP", "b", "b.f64"]);
    let script: &[&[&str]] = &[
        &["MMAP.ADD", "K", "1", "2.5", "-0", "nan(0x7)", "inf"],
        &["MMAP.GET", "K", "1"],
        &["MMAP.GET", "K", "99"],
        &["MMAP.GET", "K", "x"],
        &["MMAP.MGET", "K", "0", "3", "-1", "5"],
        &["MMAP.SET", "K", "0", "7", "9", "8"],
        &["MMAP.SET", "K", "0", "1e400"],
        &["MMAP.SET", "K", "0"],
        &["MMAP.POP", "K"],
        &["MMAP.COUNT", "K"],
        &["MMAP.RESIZE", "K", "6"],
        &["MMAP.RESIZE", "K", "-1"],
        &["MMAP.COUNT", "K"],
        &["MMAP.GET", "K"],
        &["MMAP.CLEAR", "K"],
        &["MMAP.ADD", "K", "3"],
    ];
    for step in script {
        let canonical: Vec<&str> = step.iter().map(|a| if *a == "K" { "a" } else { a }).collect();
        let name = spelled(&registered, step[0]);
        let mut short: Vec<&str> = step.iter().map(|a| if *a == "K" { "b" } else { a }).collect();
        short[0] = &name;
        let (x, y) = (raw(&mut c, &canonical), raw(&mut c, &short));
        match (&x, &y) {
            // An error that names the command names it as the client typed it.
            (Err(ex), Err(ey)) => assert_eq!(
                ex.replace(step[0], "NAME").replace(&step[0].to_lowercase(), "NAME"),
                ey.replace(&name, "NAME").replace(&name.to_lowercase(), "NAME"),
                "{step:?}"
            ),
            _ => assert_eq!(x, y, "{step:?}"),
        }
    }
    assert_eq!(
        fs::read(s.data().join("a.f64")).unwrap(),
        fs::read(s.data().join("b.f64")).unwrap()
    );
    assert_eq!(file_values(&s.data().join("a.f64")), vec![3.0]);
}

#[test]
fn errors_name_the_command_in_lower_case_whatever_the_client_typed() {
    let s = Server::start();
    let mut c = s.conn();
    int(&mut c, &["MMAP", "v", "v.f64"]);
    assert_eq!(
        err(&mut c, &["VSET", "v", "0", "1", "2"]),
        "ERR vset takes index value pairs: the last index has no value"
    );
    assert_eq!(
        err(&mut c, &["vSeT", "v", "0", "1", "2"]),
        "ERR vset takes index value pairs: the last index has no value"
    );
    assert_eq!(
        err(&mut c, &["VgEt", "v", "1", "2"]),
        "ERR wrong number of arguments for 'vget' command"
    );
    assert_eq!(
        err(&mut c, &["mMaP", "v", "v.f64", "NOW"]),
        "ERR unknown mmap option 'NOW' (known: TYPE, READONLY, CREATE)"
    );
    assert_eq!(
        err(&mut c, &["mmap.set", "v", "0", "1", "2"]),
        "ERR mmap.set takes index value pairs: the last index has no value"
    );
    assert_eq!(
        err(&mut c, &["VGET", "v"]),
        "ERR wrong number of arguments for 'vget' command"
    );
    assert_eq!(
        err(&mut c, &["MMAP.GET", "v"]),
        "ERR wrong number of arguments for 'mmap.get' command"
    );
}

#[test]
fn redis_8_keeps_its_own_vadd_and_the_log_says_so() {
    let s = Server::start();
    let mut c = s.conn();
    int(&mut c, &["MMAP", "k", "k.f64"]);
    let line = "VADD is taken by this server; use MMAP.ADD";
    match flavour(&mut c) {
        Flavour::Redis8 => {
            assert_eq!(s.log().matches(line).count(), 1, "{}", s.log());
            // Redis's own Vector Sets still work.
            assert_eq!(int(&mut c, &["VADD", "set", "VALUES", "2", "1", "2", "e1"]), 1);
            assert_eq!(int(&mut c, &["VCARD", "set"]), 1);
            // And VADD on a bound key is theirs: it changes nothing of ours.
            assert!(raw(&mut c, &["VADD", "k", "1"]).is_err());
            assert_eq!(int(&mut c, &["MMAP.COUNT", "k"]), 0);
            assert_eq!(file_len(&s.data().join("k.f64")), 0);
        }
        Flavour::Redis7 | Flavour::Valkey => {
            assert!(!s.log().contains("is taken by this server"), "{}", s.log());
            assert_eq!(int(&mut c, &["VADD", "k", "1", "2"]), 2);
            assert_eq!(file_values(&s.data().join("k.f64")), vec![1.0, 2.0]);
        }
    }
    assert_eq!(int(&mut c, &["MMAP.ADD", "k", "5"]), 1);
    assert_eq!(file_values(&s.data().join("k.f64")).last(), Some(&5.0));
}

fn short_names_off(opts: Opts) {
    let s = Server::with(opts);
    let mut c = s.conn();
    assert_eq!(config_get(&mut c, "mmap.short-names"), vec!["mmap.short-names", "no"]);
    assert_eq!(short_names(&mut c), (vec![], vec![]));
    let redis8 = flavour(&mut c) == Flavour::Redis8;
    for (short, _) in SHORT {
        let e = err(&mut c, &[short, "k", "0"]);
        if redis8 && short == "vadd" {
            assert!(!e.starts_with("ERR unknown command"), "Redis 8's own VADD: {e}");
        } else {
            assert!(e.starts_with("ERR unknown command"), "{short}: {e}");
        }
    }
    assert_eq!(int(&mut c, &["MMAP", "k", "k.f64"]), 0);
    assert_eq!(int(&mut c, &["MMAP.ADD", "k", "4"]), 1);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "k", "0"]).as_deref(), Some("4"));
    // Immutable: only redis.conf, module arguments or LOADEX set it.
    let e = err(&mut c, &["CONFIG", "SET", "mmap.short-names", "yes"]);
    assert!(e.starts_with("ERR"), "{e}");
    assert!(!s.log().contains("is taken by this server"), "{}", s.log());
}

#[test]
fn short_names_no_as_a_module_argument_registers_only_canonical_names() {
    // Without `dir`, mmap.dir is the server's working directory, its home.
    short_names_off(Opts {
        module_args: vec!["short-names".into(), "no".into()],
        ..Opts::default()
    });
}

#[test]
fn short_names_no_in_redis_conf_registers_only_canonical_names() {
    short_names_off(Opts {
        conf: vec!["mmap.short-names no".into()],
        ..Opts::default()
    });
}

#[test]
fn short_names_default_to_yes() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(config_get(&mut c, "mmap.short-names"), vec!["mmap.short-names", "yes"]);
}

#[test]
fn a_bad_short_names_value_fails_the_load() {
    let log = Server::try_with(Opts {
        module_args: vec!["short-names".into(), "maybe".into()],
        ..Opts::default()
    })
    .err()
    .expect("the server refuses to start");
    assert!(log.contains("mmap.short-names must be yes or no, not 'maybe'"), "{log}");
}

/// The commands of an AOF (RESP), one `Vec` of arguments each.
fn aof_commands(dir: &Path) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut files: Vec<_> = fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    for f in files.iter().filter(|p| p.to_string_lossy().ends_with(".aof")) {
        let text = fs::read(f).unwrap();
        let mut lines = text.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        while let Some(head) = lines.next() {
            let Some(n) = head.strip_prefix(b"*") else { continue };
            let n: usize = std::str::from_utf8(n).unwrap().parse().unwrap();
            let cmd: Vec<String> = (0..n)
                .map(|_| {
                    lines.next().unwrap();
                    String::from_utf8_lossy(lines.next().unwrap()).into_owned()
                })
                .collect();
            out.push(cmd);
        }
    }
    out
}

#[test]
fn writes_sent_by_short_names_are_logged_under_canonical_names() {
    for preamble in ["yes", "no"] {
        let mut s = aof_server(preamble);
        let mut c = s.conn();
        let (registered, _) = short_names(&mut c);
        let by = |name: &str| spelled(&registered, name);
        int(&mut c, &["MMAP", "k", "k.f64"]);
        int(&mut c, &[&by("MMAP.ADD"), "k", "1", "2", "3", "4"]);
        int(&mut c, &[&by("MMAP.SET"), "k", "0", "10"]);
        int(&mut c, &[&by("MMAP.SET"), "k", "1", "20", "99", "0"]); // one pair skipped
        bulk(&mut c, &[&by("MMAP.POP"), "k"]);
        int(&mut c, &[&by("MMAP.RESIZE"), "k", "5"]);
        int(&mut c, &[&by("MMAP.RESIZE"), "k", "2"]);
        let before_clear = file_values(&s.data().join("k.f64"));
        assert_eq!(before_clear, vec![10.0, 20.0]);
        let logged = aof_commands(&s.home.join("appendonlydir"));
        let names: Vec<String> = logged.iter().map(|c| c[0].to_lowercase()).collect();
        for (short, _) in SHORT {
            assert!(!names.iter().any(|n| n == short), "{short} in the AOF: {logged:?}");
        }
        for canonical in ["mmap", "mmap.add", "mmap.set", "mmap.resize"] {
            assert!(names.iter().any(|n| n == canonical), "{canonical} missing: {logged:?}");
        }
        assert!(
            logged.contains(&vec!["mmap.set".into(), "k".into(), "1".into(), "20".into()]),
            "{logged:?}"
        );
        // The rewrite too.
        rewrite_aof(&mut c);
        int(&mut c, &[&by("MMAP.CLEAR"), "k"]);
        let logged = aof_commands(&s.home.join("appendonlydir"));
        for cmd in &logged {
            let name = cmd[0].to_lowercase();
            assert!(
                !SHORT.iter().any(|(s, _)| *s == name),
                "{name} after the rewrite: {logged:?}"
            );
        }
        drop(c);
        // Replayed from the log after a crash: the clear is in it. Without
        // the RDB preamble the log alone rebuilds the file, so the file may
        // even be gone.
        s.kill();
        fs::write(s.data().join("k.f64"), [0u8; 24]).unwrap();
        if preamble == "no" {
            fs::remove_file(s.data().join("k.f64")).unwrap();
        }
        s.start_again();
        assert_eq!(file_len(&s.data().join("k.f64")), 0, "replayed up to the clear");
        assert_eq!(int(&mut s.conn(), &["MMAP.COUNT", "k"]), 0);
    }
}

/// An AOF written by the first version, which logged short names
/// (`VRESIZE`, `VADD`): `MMAP k k.f64` then `VADD k 1 2 3`, `VSET k 1 20`,
/// `VPOP k`, `VADD k 0.5 nan(0x7)`, `VRESIZE k 6`. It holds the file
/// `k.f64` as [1, 20, 0.5, nan(0x7), 0, 0].
const OLD_AOF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/short-names.aof");

fn old_content() -> Vec<u64> {
    vec![1.0f64, 20.0, 0.5, f64::from_bits(0x7ff0_0000_0000_0007), 0.0, 0.0]
        .into_iter()
        .map(f64::to_bits)
        .collect()
}

#[test]
fn an_old_aof_of_short_names_moves_to_any_server_after_a_rewrite_on_redis_7() {
    // On Redis 7, where every short name is the module's, the old AOF
    // replays as it is.
    let mut old = Server::with(Opts {
        server: Some(redis7_server()),
        ..aof_opts("no")
    });
    old.stop();
    install_old_aof(&old.home);
    old.start_again();
    let mut c = old.conn();
    assert_eq!(file_bits(&old.data().join("k.f64")), old_content());
    // The upgrade path: a rewrite, before the new server takes over.
    rewrite_aof(&mut c);
    drop(c);
    old.stop();
    let logged = aof_commands(&old.home.join("appendonlydir"));
    assert!(
        logged
            .iter()
            .all(|c| !SHORT.iter().any(|(s, _)| c[0].eq_ignore_ascii_case(s))),
        "{logged:?}"
    );
    // The server under test takes over the same directory, files and log.
    fs::remove_file(old.data().join("k.f64")).unwrap();
    let new = Server::try_with_home(old.home.clone(), aof_opts("no"))
        .unwrap_or_else(|log| panic!("the server under test did not start:\n{log}"));
    let mut c = new.conn();
    assert_eq!(int(&mut c, &["MMAP.COUNT", "k"]), 6);
    assert_eq!(file_bits(&new.data().join("k.f64")), old_content());
}

/// Puts the old AOF where a server with `appendonly yes` reads it at start:
/// a single file, which the server turns into its own multi-part AOF.
fn install_old_aof(home: &Path) {
    let _ = fs::remove_dir_all(home.join("appendonlydir"));
    fs::copy(OLD_AOF, home.join("appendonly.aof")).unwrap();
    let _ = fs::remove_file(home.join("data").join("k.f64"));
}

#[test]
fn an_old_aof_of_short_names_replays_on_this_server_where_the_names_are_its_own() {
    let mut s = Server::with(aof_opts("no"));
    let taken = short_names(&mut s.conn()).1;
    s.stop();
    install_old_aof(&s.home);
    if taken.is_empty() {
        s.start_again();
        assert_eq!(file_bits(&s.data().join("k.f64")), old_content());
    } else {
        // Redis 8: VADD is the server's own, so the old log's appends fail
        // (Redis logs each failure) and are lost: the README's upgrade path
        // is a rewrite before the upgrade.
        assert_eq!(taken, vec!["vadd"]);
        s.start_again();
        assert!(s.log().contains("'VADD' command"), "{}", s.log());
        assert_ne!(file_bits(&s.data().join("k.f64")), old_content());
    }
}
