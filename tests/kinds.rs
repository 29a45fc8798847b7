//! Element kinds and read-only mappings: every kind through every command,
//! against files numpy writes and reads; value ranges; READONLY with
//! shared locks across servers; MMAP.INFO.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use redis::Value;

fn numpy(cmd: &str, dir: &Path) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kinds.py");
    stdout_of(Command::new("python3").arg(script).arg(cmd).arg(dir))
}

fn is_int(kind: &str) -> bool {
    kind.contains("int")
}

/// A reply value as the text a RESP2 client reads.
fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
        Value::Int(n) => n.to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn numpy_files_of_every_kind_go_through_every_command_bit_exact() {
    let s = Server::start();
    let d = s.data();
    numpy("write", &d);
    let mut c = s.conn();
    for (kind, size) in KINDS {
        let src = format!("{kind}.src");
        let n = fs::metadata(d.join(&src)).unwrap().len() as usize / size;
        assert_eq!(int(&mut c, &["MMAP", kind, &src, "TYPE", kind]), n as i64, "{kind}");
        assert_eq!(int(&mut c, &["MMAP.COUNT", kind]), n as i64);
        // Every value, read one by one and all at once, in the same text.
        let idx: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let mut args = vec!["MMAP.MGET", kind];
        args.extend(idx.iter().map(String::as_str));
        let Value::Array(all) = raw(&mut c, &args).unwrap() else {
            panic!("MGET {kind}")
        };
        let texts: Vec<String> = all.iter().map(text).collect();
        for i in [0, 3, n - 1] {
            let one = raw(&mut c, &["MMAP.GET", kind, &i.to_string()]).unwrap();
            assert_eq!(text(&one), texts[i], "{kind} {i}");
            // Integer kinds answer integers (but a uint64 past i64 a string).
            let want_int = is_int(kind) && texts[i].parse::<i64>().is_ok();
            assert_eq!(matches!(one, Value::Int(_)), want_int, "{kind} {i}: {one:?}");
        }
        fs::write(d.join(format!("{kind}.txt")), texts.join("\n") + "\n").unwrap();

        // Written back through the server: ADD in batches, then SET and
        // POP and RESIZE and CLEAR on a scratch copy.
        let out = format!("{kind}.out");
        let copy = format!("{kind}-copy");
        assert_eq!(int(&mut c, &["MMAP", &copy, &out, "TYPE", kind]), 0);
        for chunk in texts.chunks(100) {
            let mut args = vec!["MMAP.ADD", &copy];
            args.extend(chunk.iter().map(String::as_str));
            assert_eq!(int(&mut c, &args), chunk.len() as i64);
        }
        let scratch = format!("{kind}-scratch");
        int(&mut c, &["MMAP", &scratch, &format!("{kind}.scratch"), "type", kind]);
        let (a, b) = (&texts[5], &texts[n - 2]);
        assert_eq!(int(&mut c, &["MMAP.ADD", &scratch, a, b, "1"]), 3);
        assert_eq!(int(&mut c, &["MMAP.SET", &scratch, "2", a, "0", b, "9", a]), 2);
        assert_eq!(bulks3(&mut c, &scratch, 3), [b.clone(), b.clone(), a.clone()]);
        assert_eq!(text(&raw(&mut c, &["MMAP.POP", &scratch]).unwrap()), *a);
        assert_eq!(int(&mut c, &["MMAP.RESIZE", &scratch, "4"]), 2);
        assert_eq!(text(&raw(&mut c, &["MMAP.GET", &scratch, "3"]).unwrap()), "0");
        assert_eq!(file_len(&d.join(format!("{kind}.scratch"))), 4 * size as u64);
        assert_eq!(int(&mut c, &["MMAP.CLEAR", &scratch]), 4);
        assert_eq!(info_text(&mut c, &copy, "element-size"), size.to_string());
        assert_eq!(info_text(&mut c, &copy, "bytes"), (n * size).to_string());
    }
    assert_eq!(numpy("check", &d).trim(), "ok");
}

/// The first three values of `key` as text.
fn bulks3(c: &mut redis::Connection, key: &str, n: usize) -> Vec<String> {
    let idx: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let mut args = vec!["MMAP.MGET", key];
    args.extend(idx.iter().map(String::as_str));
    let Value::Array(a) = raw(c, &args).unwrap() else {
        panic!("MGET")
    };
    a.iter().map(text).collect()
}

#[test]
fn values_out_of_a_kinds_range_are_refused_and_change_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    let ranges: [(&str, &str, &str); 8] = [
        ("int8", "-128", "127"),
        ("uint8", "0", "255"),
        ("int16", "-32768", "32767"),
        ("uint16", "0", "65535"),
        ("int32", "-2147483648", "2147483647"),
        ("uint32", "0", "4294967295"),
        ("int64", "-9223372036854775808", "9223372036854775807"),
        ("uint64", "0", "18446744073709551615"),
    ];
    for (kind, lo, hi) in ranges {
        int(&mut c, &["MMAP", kind, &format!("{kind}.bin"), "TYPE", kind]);
        assert_eq!(int(&mut c, &["MMAP.ADD", kind, lo, hi]), 2);
        let below = format!("{}", lo.parse::<i128>().unwrap() - 1);
        let above = format!("{}", hi.parse::<i128>().unwrap() + 1);
        for bad in [&below, &above] {
            let want = format!("ERR value '{bad}' is out of range for {kind} ({lo}..{hi})");
            assert_eq!(err(&mut c, &["MMAP.ADD", kind, "1", bad]), want);
            assert_eq!(err(&mut c, &["MMAP.SET", kind, "0", "1", "1", bad]), want);
        }
        for bad in ["1.5", "1e3", "inf", "nan", "0x10", "+1", "01", " 1"] {
            let want = format!("ERR value '{bad}' is not an integer ({kind} takes integers only)");
            assert_eq!(err(&mut c, &["MMAP.ADD", kind, bad]), want);
        }
        // All or nothing: the two values added first are all there is.
        assert_eq!(int(&mut c, &["MMAP.COUNT", kind]), 2);
        assert_eq!(text(&raw(&mut c, &["MMAP.GET", kind, "0"]).unwrap()), lo);
        assert_eq!(text(&raw(&mut c, &["MMAP.GET", kind, "1"]).unwrap()), hi);
    }
    let overflows: [(&str, &str, &str); 4] = [
        ("float16", "65504", "65520"),
        ("bfloat16", "3.3895e38", "3.4e38"),
        ("float32", "3.4028235e38", "1e39"),
        ("float64", "1.7976931348623157e308", "1e309"),
    ];
    for (kind, max, over) in overflows {
        int(&mut c, &["MMAP", kind, &format!("{kind}.bin"), "TYPE", kind]);
        assert_eq!(int(&mut c, &["MMAP.ADD", kind, max, "inf", "-inf", "nan"]), 4);
        let neg = format!("-{over}");
        for bad in [over, &neg] {
            let want = if kind == "float64" {
                // A double itself: refused as Redis refuses it.
                format!("ERR value '{bad}' is not a number (decimal double, inf, -inf or nan)")
            } else {
                format!("ERR value '{bad}' overflows {kind}")
            };
            assert_eq!(err(&mut c, &["MMAP.ADD", kind, "1", bad]), want);
            assert_eq!(err(&mut c, &["MMAP.SET", kind, "0", bad]), want);
        }
        assert_eq!(int(&mut c, &["MMAP.COUNT", kind]), 4);
        assert_eq!(text(&raw(&mut c, &["MMAP.GET", kind, "1"]).unwrap()), "inf");
    }
}

#[test]
fn floats_round_to_their_kind_and_reply_in_its_shortest_text() {
    let s = Server::start();
    let mut c = s.conn();
    let mut c3 = s.conn3();
    let cases = [
        ("float32", "0.1", "0.1", 0.10000000149011612),
        ("float32", "16777217", "16777216", 16777216.0),
        ("float16", "0.1", "0.1", 0.0999755859375),
        ("float16", "65519", "65500", 65504.0),
        ("float16", "1e-10", "0", 0.0),
        ("bfloat16", "0.1", "0.1", 0.10009765625),
        ("bfloat16", "3.14159", "3.14", 3.140625),
    ];
    for (i, (kind, given, shown, exact)) in cases.into_iter().enumerate() {
        let key = format!("f{i}");
        int(&mut c, &["MMAP", &key, &format!("{key}.bin"), "TYPE", kind]);
        int(&mut c, &["MMAP.ADD", &key, given]);
        assert_eq!(
            bulk(&mut c, &["MMAP.GET", &key, "0"]).as_deref(),
            Some(shown),
            "{kind} {given}"
        );
        assert_eq!(
            raw(&mut c3, &["MMAP.GET", &key, "0"]).unwrap(),
            Value::Double(exact),
            "{kind}"
        );
    }
}

#[test]
fn integer_kinds_reply_integers_and_a_large_uint64_a_big_number() {
    let s = Server::start();
    let mut c = s.conn();
    let mut c3 = s.conn3();
    int(&mut c, &["MMAP", "u", "u.u64", "TYPE", "uint64"]);
    int(
        &mut c,
        &["MMAP.ADD", "u", "9223372036854775807", "18446744073709551615"],
    );
    assert_eq!(raw(&mut c, &["MMAP.GET", "u", "0"]).unwrap(), Value::Int(i64::MAX));
    assert_eq!(raw(&mut c3, &["MMAP.GET", "u", "0"]).unwrap(), Value::Int(i64::MAX));
    assert_eq!(
        raw(&mut c, &["MMAP.GET", "u", "1"]).unwrap(),
        Value::BulkString(b"18446744073709551615".to_vec())
    );
    match raw(&mut c3, &["MMAP.GET", "u", "1"]).unwrap() {
        Value::BigNumber(n) => assert_eq!(n.to_string(), "18446744073709551615"),
        other => panic!("{other:?}"),
    }
    assert_eq!(file_bits_u64(&s.data().join("u.u64")), [i64::MAX as u64, u64::MAX]);
    int(&mut c, &["MMAP", "b", "b.i8", "TYPE", "int8"]);
    int(&mut c, &["MMAP.ADD", "b", "-5", "7"]);
    assert_eq!(
        raw(&mut c3, &["MMAP.MGET", "b", "0", "1", "2"]).unwrap(),
        Value::Array(vec![Value::Int(-5), Value::Int(7), Value::Nil])
    );
    assert_eq!(fs::read(s.data().join("b.i8")).unwrap(), [0xfb, 7]);
}

fn file_bits_u64(path: &Path) -> Vec<u64> {
    fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn a_file_whose_size_is_not_a_multiple_of_the_element_is_refused_with_both_numbers() {
    let s = Server::start();
    let mut c = s.conn();
    fs::write(s.data().join("odd"), [0u8; 6]).unwrap();
    let e = err(&mut c, &["MMAP", "k", "odd", "TYPE", "int32"]);
    assert_eq!(
        e,
        "ERR cannot map 'odd': the file has 6 bytes, which is not a multiple of 4"
    );
    assert_eq!(int(&mut c, &["EXISTS", "k"]), 0);
    assert_eq!(int(&mut c, &["MMAP", "k", "odd", "TYPE", "int16"]), 3);
}

#[test]
fn mmap_again_with_another_kind_or_mode_names_both() {
    let s = Server::start();
    let mut c = s.conn();
    int(&mut c, &["MMAP", "k", "k.bin", "TYPE", "int32"]);
    int(&mut c, &["MMAP.ADD", "k", "1", "2"]);
    assert_eq!(int(&mut c, &["MMAP", "k", "k.bin", "type", "INT32"]), 2);
    assert_eq!(
        err(&mut c, &["MMAP", "k", "k.bin"]),
        "ERR key 'k' is bound as int32 (writable), not as float64 (writable)"
    );
    assert_eq!(
        err(&mut c, &["MMAP", "k", "k.bin", "TYPE", "int32", "READONLY"]),
        "ERR key 'k' is bound as int32 (writable), not as int32 (read-only)"
    );
    assert_eq!(int(&mut c, &["MMAP.COUNT", "k"]), 2);
}

#[test]
fn every_write_to_a_read_only_key_is_refused_and_changes_nothing() {
    let s = Server::start();
    let mut c = s.conn();
    fs::write(s.data().join("r.u8"), [1u8, 2, 3]).unwrap();
    assert_eq!(int(&mut c, &["MMAP", "r", "r.u8", "READONLY", "TYPE", "uint8"]), 3);
    let want = "ERR key 'r' is read-only (mapped with READONLY)";
    for args in [
        &["MMAP.SET", "r", "0", "9"][..],
        &["MMAP.SET", "r", "0", "bad"],
        &["MMAP.ADD", "r", "4"],
        &["MMAP.POP", "r"],
        &["MMAP.CLEAR", "r"],
        &["MMAP.RESIZE", "r", "10"],
        &["MMAP.RESIZE", "r", "0"],
        &["VSET", "r", "0", "9"],
    ] {
        assert_eq!(err(&mut c, args), want, "{args:?}");
    }
    assert_eq!(fs::read(s.data().join("r.u8")).unwrap(), [1, 2, 3]);
    assert_eq!(
        raw(&mut c, &["MMAP.MGET", "r", "0", "2"]).unwrap(),
        Value::Array(vec![Value::Int(1), Value::Int(3)])
    );
    // READONLY never creates a file, unless asked to.
    let e = err(&mut c, &["MMAP", "m", "missing.u8", "READONLY"]);
    assert!(e.contains("no such file"), "{e}");
    assert!(!s.data().join("missing.u8").exists());
    assert_eq!(int(&mut c, &["MMAP", "m", "missing.u8", "READONLY", "CREATE"]), 0);
    assert!(s.data().join("missing.u8").exists());
}

/// The lines of /proc/<pid>/maps that map `path`.
fn mappings(pid: u32, path: &Path) -> Vec<String> {
    let name = path.file_name().unwrap().to_str().unwrap();
    fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .filter(|l| l.ends_with(&format!("/{name}")))
        .map(str::to_owned)
        .collect()
}

/// A copy of the server binary and the module where any user can run
/// them: the originals may sit in a directory only root can enter.
fn runnable_by_anyone() -> (tempfile::TempDir, PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let server = dir.path().join("server");
    let module = dir.path().join("module.so");
    let name = redis_server();
    let found = if name.contains('/') {
        PathBuf::from(name)
    } else {
        std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(&name))
            .find(|p| p.exists())
            .expect("the server on PATH")
    };
    fs::copy(found, &server).unwrap();
    fs::copy(module_path(), &module).unwrap();
    (dir, server, module)
}

#[test]
fn read_only_maps_a_0444_file_of_another_user_and_servers_share_it() {
    use std::os::unix::fs::PermissionsExt;
    const NOBODY: u32 = 65534;
    let (_bins, server, module) = runnable_by_anyone();
    // Server a runs as nobody; the file is root's, mode 0444.
    let a = Server::with(Opts {
        user: Some(NOBODY),
        server: Some(server.display().to_string()),
        module: module.clone(),
        ..Opts::default()
    });
    let file = a.data().join("shared.i32");
    let values: Vec<u8> = [7i32, -8, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
    fs::write(&file, &values).unwrap();
    std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o444)).unwrap();
    let mut ca = a.conn();
    let e = err(&mut ca, &["MMAP", "w", "shared.i32", "TYPE", "int32"]);
    assert!(e.contains("ermission denied"), "{e}");
    assert_eq!(
        int(&mut ca, &["MMAP", "r", "shared.i32", "TYPE", "int32", "READONLY"]),
        3
    );
    assert_eq!(
        raw(&mut ca, &["MMAP.MGET", "r", "0", "1", "2"]).unwrap(),
        Value::Array(vec![Value::Int(7), Value::Int(-8), Value::Int(9)])
    );
    let maps = mappings(a.pid(), &file);
    assert!(
        !maps.is_empty() && maps.iter().all(|l| l.split(' ').nth(1) == Some("r--s")),
        "{maps:?}"
    );
    assert_eq!(info_text(&mut ca, "r", "lock"), "shared");
    assert_eq!(info_text(&mut ca, "r", "read-only"), "1");

    // A second server maps the same file read-only too.
    let beside = |extra: Opts| {
        Server::with(Opts {
            module_args: vec!["dir".into(), a.data().display().to_string()],
            ..extra
        })
    };
    let b = beside(Opts::default());
    let mut cb = b.conn();
    assert_eq!(
        int(&mut cb, &["MMAP", "r", "shared.i32", "TYPE", "int32", "READONLY"]),
        3
    );
    // A writer, in any server, is refused while they hold it.
    let w = beside(Opts::default());
    let mut cw = w.conn();
    assert_eq!(
        err(&mut cw, &["MMAP", "w", "shared.i32", "TYPE", "int32"]),
        "ERR cannot map 'shared.i32': the file is locked by another process"
    );
    int(&mut ca, &["DEL", "r"]);
    assert!(err(&mut cw, &["MMAP", "w", "shared.i32", "TYPE", "int32"]).contains("locked"));
    int(&mut cb, &["DEL", "r"]);
    // Once no reader holds it, a writer may (root may open a 0444 file);
    // then a reader is refused while the writer holds it.
    assert_eq!(int(&mut cw, &["MMAP", "w", "shared.i32", "TYPE", "int32"]), 3);
    assert_eq!(
        err(&mut cb, &["MMAP", "r", "shared.i32", "TYPE", "int32", "READONLY"]),
        "ERR cannot map 'shared.i32': the file is locked by another process"
    );
    int(&mut cw, &["MMAP.SET", "w", "1", "80"]);
    int(&mut cw, &["DEL", "w"]);
    assert_eq!(
        int(&mut ca, &["MMAP", "r", "shared.i32", "TYPE", "int32", "READONLY"]),
        3
    );
    assert_eq!(raw(&mut ca, &["MMAP.GET", "r", "1"]).unwrap(), Value::Int(80));
    // RESTORE ... REPLACE onto a file this server may only read: the
    // content goes into a new file, renamed over it, and stays read-only.
    let Value::BulkString(payload) = raw(&mut ca, &["DUMP", "r"]).unwrap() else {
        panic!("DUMP")
    };
    redis::cmd("RESTORE")
        .arg("r")
        .arg(0)
        .arg(payload)
        .arg("REPLACE")
        .query::<()>(&mut ca)
        .unwrap();
    assert_eq!(raw(&mut ca, &["MMAP.GET", "r", "1"]).unwrap(), Value::Int(80));
    assert_eq!(info_text(&mut ca, "r", "lock"), "shared");
    assert!(!mappings(a.pid(), &file).is_empty());
}

#[test]
fn info_describes_a_key_in_a_map_or_a_flat_array() {
    let mut s = Server::start();
    let mut c = s.conn();
    fs::create_dir_all(s.data().join("sub")).unwrap();
    int(&mut c, &["MMAP", "k", "sub/k.f16", "TYPE", "float16"]);
    int(&mut c, &["MMAP.ADD", "k", "1", "2", "3"]);
    let info = mmap_info(&mut c, "k");
    let names: Vec<&str> = info.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "path",
            "kind",
            "element-size",
            "length",
            "bytes",
            "read-only",
            "state",
            "cause",
            "reserved-bytes",
            "lock",
            "resident-bytes"
        ]
    );
    let get = |c: &mut redis::Connection, f: &str| info_text(c, "k", f);
    assert_eq!(get(&mut c, "path"), "sub/k.f16");
    assert_eq!(get(&mut c, "kind"), "float16");
    assert_eq!(get(&mut c, "element-size"), "2");
    assert_eq!(get(&mut c, "length"), "3");
    assert_eq!(get(&mut c, "bytes"), "6");
    assert_eq!(get(&mut c, "read-only"), "0");
    assert_eq!(get(&mut c, "state"), "bound");
    assert_eq!(get(&mut c, "cause"), "");
    assert!(get(&mut c, "reserved-bytes").parse::<u64>().unwrap() >= 4 << 20);
    assert_eq!(get(&mut c, "lock"), "exclusive");
    // Just written, so in memory: the file's 6 bytes, not its page.
    assert_eq!(get(&mut c, "resident-bytes"), "6");
    // RESP3: a map, with a boolean.
    let mut c3 = s.conn3();
    let Value::Map(m) = raw(&mut c3, &["MMAP.INFO", "k"]).unwrap() else {
        panic!("a map")
    };
    assert_eq!(m.len(), 11);
    assert_eq!(m[5], (Value::BulkString(b"read-only".to_vec()), Value::Boolean(false)));
    assert_eq!(
        err(&mut c, &["MMAP.INFO", "nokey"]),
        "ERR no such key 'nokey': bind it to a file first with MMAP nokey <path>"
    );
    // A broken key: its kind, its cause, no length and no lock.
    raw(&mut c, &["SAVE"]).unwrap();
    s.stop();
    fs::remove_file(s.data().join("sub/k.f16")).unwrap();
    s.start_again();
    let mut c = s.conn();
    assert_eq!(get(&mut c, "kind"), "float16");
    assert_eq!(get(&mut c, "state"), "broken");
    assert!(get(&mut c, "cause").contains("no such file"));
    assert_eq!(get(&mut c, "length"), "");
    assert_eq!(get(&mut c, "lock"), "none");
}

#[test]
fn kinds_and_modes_survive_restart_dump_restore_and_the_aof() {
    let mut s = Server::with(aof_opts("yes"));
    let mut c = s.conn();
    fs::write(s.data().join("r.u16"), [1u8, 0, 2, 0]).unwrap();
    int(&mut c, &["MMAP", "h", "h.f16", "TYPE", "float16"]);
    int(&mut c, &["MMAP.ADD", "h", "0.1", "-2", "nan(0x3)"]);
    int(&mut c, &["MMAP", "r", "r.u16", "TYPE", "uint16", "READONLY"]);
    let check = |c: &mut redis::Connection, when: &str| {
        assert_eq!(info_text(c, "h", "kind"), "float16", "{when}");
        assert_eq!(
            bulks(c, &["MMAP.MGET", "h", "0", "1", "2"]),
            [Some("0.1".into()), Some("-2".into()), Some("nan(0x3)".into())],
            "{when}"
        );
        assert_eq!(info_text(c, "r", "read-only"), "1", "{when}");
        assert_eq!(info_text(c, "r", "kind"), "uint16", "{when}");
        assert!(err(c, &["MMAP.ADD", "r", "1"]).contains("read-only"), "{when}");
    };
    check(&mut c, "at first");
    drop(c);
    s.restart();
    check(&mut s.conn(), "after a restart");
    // The rewritten AOF, without the preamble: MMAP ... TYPE ... READONLY.
    let mut c = s.conn();
    raw(&mut c, &["CONFIG", "SET", "aof-use-rdb-preamble", "no"]).unwrap();
    rewrite_aof(&mut c);
    drop(c);
    s.kill_and_restart();
    check(&mut s.conn(), "after the AOF rewrite");
    // DUMP and RESTORE carry both.
    let mut c = s.conn();
    for key in ["h", "r"] {
        let Value::BulkString(payload) = raw(&mut c, &["DUMP", key]).unwrap() else {
            panic!("DUMP {key}")
        };
        raw(&mut c, &["DEL", key]).unwrap();
        redis::cmd("RESTORE")
            .arg(key)
            .arg(0)
            .arg(payload)
            .query::<()>(&mut c)
            .unwrap();
    }
    check(&mut c, "after DUMP and RESTORE");
    assert_eq!(fs::read(s.data().join("r.u16")).unwrap(), [1, 0, 2, 0]);
}

#[test]
fn old_encodings_load_as_float64_writable() {
    // Written by the version before kinds: encoding 1, paths and content.
    let s = Server::start();
    let mut c = s.conn();
    let old = fs::read(fixture("encoding-1.dump")).unwrap();
    redis::cmd("RESTORE")
        .arg("a")
        .arg(0)
        .arg(old)
        .query::<()>(&mut c)
        .unwrap();
    assert_eq!(
        bulks(&mut c, &["MMAP.MGET", "a", "0", "2"]),
        [Some("1.5".into()), Some("3.25".into())]
    );
    assert_eq!(info_text(&mut c, "a", "kind"), "float64");
    assert_eq!(info_text(&mut c, "a", "read-only"), "0");
    for rdb in ["encoding-1.rdb", "encoding-1-content.rdb"] {
        let mut s = Server::start();
        s.stop();
        start_from_fixture_rdb(&mut s, rdb);
        let mut c = s.conn();
        check_fixture_keys(&mut c, rdb);
        assert_eq!(info_text(&mut c, "b", "kind"), "float64");
    }
}
