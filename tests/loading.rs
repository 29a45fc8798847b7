//! Loading the module and its configuration (SPEC section 1).

mod common;

use common::*;

#[test]
fn loadmodule_with_a_dir_argument() {
    let s = Server::start();
    let mut c = s.conn();
    let want = s.data().canonicalize().unwrap();
    let mut got = config_get(&mut c, "mmap.*")
        .chunks(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect::<Vec<_>>();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("mmap.dir".to_string(), want.display().to_string()),
            ("mmap.fsync".to_string(), "everysec".to_string()),
            ("mmap.max-keys".to_string(), "0".to_string()),
            ("mmap.offload-bytes".to_string(), "1048576".to_string()),
            ("mmap.rdb-content".to_string(), "no".to_string()),
            ("mmap.short-names".to_string(), "yes".to_string()),
            // One worker thread per core by default.
            ("mmap.threads".to_string(), cores().to_string()),
        ]
    );
    let modules: Value = raw(&mut c, &["MODULE", "LIST"]).unwrap();
    assert!(format!("{modules:?}").contains("mmap"), "{modules:?}");
}

#[test]
fn loadmodule_on_the_command_line() {
    let other = tempfile::tempdir().unwrap();
    let s = Server::with(Opts {
        load_module: false,
        cli: vec![
            "--loadmodule".into(),
            module_path().display().to_string(),
            "dir".into(),
            other.path().display().to_string(),
        ],
        ..Opts::default()
    });
    let mut c = s.conn();
    assert_eq!(
        config_get(&mut c, "mmap.dir")[1],
        other.path().canonicalize().unwrap().display().to_string()
    );
    int(&mut c, &["MMAP", "k", "f.f64"]);
    assert!(other.path().join("f.f64").exists());
}

#[test]
fn mmap_dir_in_redis_conf() {
    let other = tempfile::tempdir().unwrap();
    let s = Server::with(Opts {
        module_args: vec![],
        conf: vec![format!("mmap.dir {}", other.path().display())],
        ..Opts::default()
    });
    let mut c = s.conn();
    let got = config_get(&mut c, "mmap.dir");
    // The harness also passes `dir <data>` as a module argument: that is only
    // the default, and redis.conf wins over it.
    assert_eq!(got[1], other.path().canonicalize().unwrap().display().to_string());
    int(&mut c, &["MMAP", "k", "f.f64"]);
    assert!(other.path().join("f.f64").exists());
}

#[test]
fn the_default_dir_is_the_working_directory() {
    let s = Server::with(Opts {
        module_args: vec!["dir".into(), ".".into()],
        ..Opts::default()
    });
    let mut c = s.conn();
    int(&mut c, &["MMAP", "k", "here.f64"]);
    // The harness runs redis-server with `dir <home>`.
    assert!(s.home.join("here.f64").exists());
}

#[test]
fn mmap_dir_is_immutable_after_load() {
    let s = Server::start();
    let mut c = s.conn();
    let e = err(&mut c, &["CONFIG", "SET", "mmap.dir", "/tmp"]);
    assert!(e.starts_with("ERR") && e.contains("mmap.dir"), "{e}");
    assert_eq!(
        config_get(&mut c, "mmap.dir")[1],
        s.data().canonicalize().unwrap().display().to_string()
    );
}

/// Starting with these module arguments must fail; returns the log.
fn refused_start(args: &[&str]) -> String {
    Server::try_with(Opts {
        module_args: args.iter().map(|a| a.to_string()).collect(),
        ..Opts::default()
    })
    .err()
    .expect("the server must refuse to start")
}

#[test]
fn an_unknown_module_argument_fails_the_load_and_is_named() {
    let log = refused_start(&["dirr", "/tmp"]);
    assert!(log.contains("unknown module argument 'dirr'"), "{log}");
}

#[test]
fn an_unpaired_module_argument_fails_the_load() {
    let log = refused_start(&["dir"]);
    assert!(log.contains("module argument 'dir' has no value"), "{log}");
}

#[test]
fn an_unknown_fsync_mode_fails_the_load_and_is_named() {
    let log = refused_start(&["fsync", "sometimes"]);
    assert!(
        log.contains("mmap.fsync must be always, everysec or no, not 'sometimes'"),
        "{log}"
    );
}

#[test]
fn a_dir_that_does_not_exist_fails_the_load_and_is_named() {
    let log = refused_start(&["dir", "/nonexistent/vectors"]);
    assert!(log.contains("/nonexistent/vectors"), "{log}");
}

/// A server whose configuration does not load the module.
fn without_module() -> Server {
    Server::with(Opts {
        load_module: false,
        ..Opts::default()
    })
}

#[test]
fn module_load_at_runtime() {
    let s = without_module();
    let mut c = s.conn();
    assert!(err(&mut c, &["MMAP.COUNT", "k"]).starts_with("ERR unknown command"));
    let so = module_path();
    let data = s.data();
    raw(
        &mut c,
        &["MODULE", "LOAD", so.to_str().unwrap(), "dir", data.to_str().unwrap()],
    )
    .unwrap();
    assert_eq!(int(&mut c, &["MMAP", "k", "f.f64"]), 0);
    assert_eq!(int(&mut c, &["MMAP.ADD", "k", "1"]), 1);
    assert_eq!(file_len(&data.join("f.f64")), 8);
}

#[test]
fn module_load_at_runtime_with_a_bad_argument_fails() {
    let s = without_module();
    let mut c = s.conn();
    let so = module_path();
    let e = err(&mut c, &["MODULE", "LOAD", so.to_str().unwrap(), "nope", "1"]);
    assert!(e.starts_with("ERR"), "{e}");
    assert!(s.log().contains("unknown module argument 'nope'"), "{}", s.log());
    assert!(err(&mut c, &["MMAP.COUNT", "k"]).starts_with("ERR unknown command"));
}

#[test]
fn module_loadex_with_a_config() {
    let s = without_module();
    let mut c = s.conn();
    let so = module_path();
    let data = s.data();
    raw(
        &mut c,
        &[
            "MODULE",
            "LOADEX",
            so.to_str().unwrap(),
            "CONFIG",
            "mmap.dir",
            data.to_str().unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(
        config_get(&mut c, "mmap.dir")[1],
        data.canonicalize().unwrap().display().to_string()
    );
}

#[test]
fn commands_are_described() {
    let s = Server::start();
    let mut c = s.conn();
    let info: Value = raw(
        &mut c,
        &["COMMAND", "INFO", "MMAP.GET", "MMAP.ADD", "MMAP.MGET", "MMAP"],
    )
    .unwrap();
    let text = format!("{info:?}");
    for flag in ["readonly", "fast", "write", "denyoom"] {
        assert!(text.contains(flag), "{flag} missing in {text}");
    }
    let keys: Vec<String> = redis::cmd("COMMAND")
        .arg("GETKEYS")
        .arg("MMAP.SET")
        .arg("mykey")
        .arg("0")
        .arg("1")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, vec!["mykey"]);
    let docs: Value = raw(&mut c, &["COMMAND", "DOCS", "MMAP.ADD"]).unwrap();
    let text = format!("{docs:?}");
    assert!(text.contains("Appends values"), "{text}");
    assert!(text.contains("O(N)"), "{text}");
    let docs: Value = raw(&mut c, &["COMMAND", "DOCS", "MMAP.RESIZE", "MMAP"]).unwrap();
    let text = format!("{docs:?}");
    for want in [
        "extends it with zeros",
        "length",
        "CREATE",
        "pure-token",
        "optional",
        "0.1.0",
    ] {
        assert!(text.contains(want), "{want} missing in {text}");
    }
}

#[test]
fn command_flags_match_the_cost() {
    let s = Server::start();
    let mut c = s.conn();
    let flags = |c: &mut redis::Connection, name: &str| -> Vec<String> {
        let v: Value = raw(c, &["COMMAND", "INFO", name]).unwrap();
        let Value::Array(outer) = v else { panic!() };
        let Value::Array(fields) = &outer[0] else { panic!() };
        let Value::Array(fl) = &fields[2] else { panic!() };
        fl.iter()
            .map(|f| match f {
                Value::SimpleString(s) => s.clone(),
                Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let has = |f: &[String], x: &str| f.iter().any(|y| y == x);
    let f = flags(&mut c, "MMAP.GET");
    assert!(has(&f, "readonly") && has(&f, "fast"), "{f:?}");
    let f = flags(&mut c, "MMAP.MGET");
    assert!(has(&f, "readonly") && !has(&f, "fast"), "{f:?}");
    let f = flags(&mut c, "MMAP.ADD");
    assert!(has(&f, "write") && has(&f, "denyoom") && !has(&f, "fast"), "{f:?}");
    let f = flags(&mut c, "MMAP.SET");
    assert!(has(&f, "write") && !has(&f, "fast"), "{f:?}");
    let f = flags(&mut c, "MMAP.COUNT");
    assert!(has(&f, "readonly") && has(&f, "fast"), "{f:?}");
    let f = flags(&mut c, "MMAP.CLEAR");
    assert!(has(&f, "write") && !has(&f, "fast"), "{f:?}");
    let f = flags(&mut c, "MMAP.RESIZE");
    assert!(has(&f, "write") && has(&f, "denyoom") && !has(&f, "fast"), "{f:?}");
}

#[test]
fn a_panic_becomes_an_error_reply_and_a_log_line() {
    let s = Server::with(Opts {
        module: fault_module_path(),
        ..Opts::default()
    });
    let mut c = s.conn();
    let e = err(&mut c, &["MMAP.PANIC", "k"]);
    assert_eq!(e, "ERR internal error in mmap.panic; see the server log");
    assert!(s.log().contains("injected by MMAP.PANIC"), "{}", s.log());
    // The server is still up and serving.
    assert_eq!(int(&mut c, &["MMAP", "k", "f.f64"]), 0);
    let text = info(&mut c);
    assert!(text.contains("mmap_panics:1"), "{text}");
}

#[test]
fn a_payload_of_a_newer_encoding_is_refused_and_named_in_the_log() {
    assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca, "Redis's check value");
    let s = Server::start();
    let mut c = s.conn();
    int(&mut c, &["MMAP", "k", "k.f64"]);
    let Value::BulkString(mut payload) = raw(&mut c, &["DUMP", "k"]).unwrap() else {
        panic!("DUMP")
    };
    // Type 7 (a module value, version 2), then the module id as a 64-bit
    // length (0x81 and 8 bytes big-endian) whose low 10 bits are the encoding.
    assert_eq!(&payload[..2], &[7, 0x81]);
    let mut id = u64::from_be_bytes(payload[2..10].try_into().unwrap());
    assert_eq!(id & 1023, 2, "this version writes encoding 2");
    id = (id & !1023) | 5;
    payload[2..10].copy_from_slice(&id.to_be_bytes());
    reseal(&mut payload);
    let e = redis::cmd("RESTORE")
        .arg("k2")
        .arg(0)
        .arg(&payload)
        .query::<Value>(&mut c)
        .map_err(|e| error_text(&e))
        .unwrap_err();
    assert!(e.contains("Bad data format"), "{e}");
    assert!(
        s.log().contains(
            "key 'k2': cannot load the binding: encoding version 5 is newer than this module reads (up to 2)"
        ),
        "{}",
        s.log()
    );
    assert_eq!(int(&mut c, &["EXISTS", "k2"]), 0);
}
