//! Replies and errors of every command (SPEC section 2).

mod common;

use common::*;

fn bound(s: &Server, values: &[&str]) -> redis::Connection {
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["MMAP", "v", "v.f64"]), 0);
    if !values.is_empty() {
        let mut args = vec!["MMAP.ADD", "v"];
        args.extend_from_slice(values);
        assert_eq!(int(&mut c, &args), values.len() as i64);
    }
    c
}

#[test]
fn mmap_creates_an_empty_file_and_returns_the_count() {
    let s = Server::start();
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["MMAP", "v", "v.f64"]), 0);
    assert_eq!(file_len(&s.data().join("v.f64")), 0);
    // Same key, same file: the count, nothing else.
    int(&mut c, &["MMAP.ADD", "v", "1", "2"]);
    assert_eq!(int(&mut c, &["MMAP", "v", "v.f64"]), 2);
    assert_eq!(int(&mut c, &["MMAP", "v", "./sub/../v.f64"]), 2);
    let abs = s.data().join("v.f64");
    assert_eq!(int(&mut c, &["MMAP", "v", abs.to_str().unwrap()]), 2);
}

#[test]
fn mmap_of_a_hard_link_to_the_bound_file_is_the_same_binding() {
    let s = Server::start();
    let mut c = bound(&s, &["1"]);
    std::fs::hard_link(s.data().join("v.f64"), s.data().join("link.f64")).unwrap();
    assert_eq!(int(&mut c, &["MMAP", "v", "link.f64"]), 1);
    let e = err(&mut c, &["MMAP", "other", "link.f64"]);
    assert!(e.starts_with("ERR") && e.contains("already bound to key 'v'"), "{e}");
}

#[test]
fn mmap_to_another_file_is_refused_and_creates_nothing() {
    let s = Server::start();
    let mut c = bound(&s, &["1"]);
    let e = err(&mut c, &["MMAP", "v", "w.f64"]);
    assert_eq!(e, "ERR key 'v' is bound to 'v.f64', not to 'w.f64'");
    assert!(!s.data().join("w.f64").exists());
    assert_eq!(int(&mut c, &["MMAP.COUNT", "v"]), 1);
}

#[test]
fn vget_returns_values_and_nil_out_of_range() {
    let s = Server::start();
    let mut c = bound(&s, &["0", "0.1", "0.2", "0.3", "0.4", "0.5"]);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "v", "5"]).as_deref(), Some("0.5"));
    assert_eq!(bulk(&mut c, &["MMAP.GET", "v", "0"]).as_deref(), Some("0"));
    assert_eq!(bulk(&mut c, &["MMAP.GET", "v", "1"]).as_deref(), Some("0.1"));
    for i in [
        "6",
        "-1",
        "-9223372036854775808",
        "9223372036854775807",
        "2305843009213693955",
    ] {
        assert_eq!(bulk(&mut c, &["MMAP.GET", "v", i]), None, "index {i}");
    }
    assert_eq!(bulk(&mut c, &["MMAP.GET", "missing", "0"]), None);
}

#[test]
fn vmget_returns_nil_for_each_index_out_of_range() {
    let s = Server::start();
    let mut c = bound(&s, &["10", "11", "12"]);
    assert_eq!(
        bulks(&mut c, &["MMAP.MGET", "v", "2", "3", "-1", "0", "2"]),
        vec![Some("12".into()), None, None, Some("10".into()), Some("12".into())]
    );
    assert_eq!(bulks(&mut c, &["MMAP.MGET", "missing", "0", "1"]), vec![None, None]);
}

#[test]
fn vset_writes_in_range_pairs_and_counts_them() {
    let s = Server::start();
    let mut c = bound(&s, &["0", "1", "2", "3", "4", "5", "6"]);
    assert_eq!(int(&mut c, &["MMAP.SET", "v", "5", "50", "10", "100"]), 1);
    assert_eq!(int(&mut c, &["MMAP.SET", "v", "0", "7", "-1", "8", "6", "9"]), 2);
    assert_eq!(
        file_values(&s.data().join("v.f64")),
        vec![7.0, 1.0, 2.0, 3.0, 4.0, 50.0, 9.0]
    );
    // Repeated index: the last pair wins.
    assert_eq!(int(&mut c, &["MMAP.SET", "v", "1", "10", "1", "11"]), 2);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "v", "1"]).as_deref(), Some("11"));
    let e = err(&mut c, &["MMAP.SET", "missing", "0", "1"]);
    assert_eq!(
        e,
        "ERR no such key 'missing': bind it to a file first with MMAP missing <path>"
    );
}

#[test]
fn vset_of_one_pair_writes_in_range_and_counts_it() {
    let s = Server::start();
    let mut c = bound(&s, &["0", "1", "2"]);
    assert_eq!(int(&mut c, &["MMAP.SET", "v", "2", "1.25"]), 1);
    assert_eq!(int(&mut c, &["MMAP.SET", "v", "3", "9"]), 0);
    assert_eq!(int(&mut c, &["MMAP.SET", "v", "-1", "9"]), 0);
    assert_eq!(int(&mut c, &["MMAP.SET", "v", "0", "-0.5"]), 1);
    assert_eq!(file_values(&s.data().join("v.f64")), vec![-0.5, 1.0, 1.25]);
    // Only the writes changed the data set: a pair out of range is not one.
    let dirty =
        |c: &mut redis::Connection| -> i64 { field(c, "persistence", "rdb_changes_since_last_save").parse().unwrap() };
    let before = dirty(&mut c);
    assert_eq!(int(&mut c, &["MMAP.SET", "v", "5", "1"]), 0);
    assert_eq!(dirty(&mut c), before);
    assert_eq!(int(&mut c, &["MMAP.SET", "v", "1", "7"]), 1);
    assert_eq!(dirty(&mut c), before + 1);
    // Errors name what was wrong and change nothing.
    let e = err(&mut c, &["MMAP.SET", "v", "1x", "7"]);
    assert!(e.starts_with("ERR index '1x'"), "{e}");
    let e = err(&mut c, &["MMAP.SET", "v", "1", "seven"]);
    assert!(e.starts_with("ERR value 'seven'"), "{e}");
    assert_eq!(file_values(&s.data().join("v.f64")), vec![-0.5, 7.0, 1.25]);
}

#[test]
fn vadd_appends_eight_bytes_per_value() {
    let s = Server::start();
    let mut c = bound(&s, &[]);
    let path = s.data().join("v.f64");
    assert_eq!(int(&mut c, &["MMAP.ADD", "v", "1.5"]), 1);
    assert_eq!(file_len(&path), 8);
    assert_eq!(int(&mut c, &["MMAP.ADD", "v", "2", "-3", "4e10"]), 3);
    assert_eq!(file_len(&path), 32);
    assert_eq!(file_values(&path), vec![1.5, 2.0, -3.0, 4e10]);
    assert_eq!(int(&mut c, &["MMAP.COUNT", "v"]), 4);
    let e = err(&mut c, &["MMAP.ADD", "missing", "1"]);
    assert!(
        e.starts_with("ERR no such key 'missing'") && e.contains("MMAP missing <path>"),
        "{e}"
    );
}

#[test]
fn vpop_removes_the_last_value_and_shrinks_the_file() {
    let s = Server::start();
    let mut c = bound(&s, &["1", "2"]);
    let path = s.data().join("v.f64");
    assert_eq!(bulk(&mut c, &["MMAP.POP", "v"]).as_deref(), Some("2"));
    assert_eq!(file_len(&path), 8);
    assert_eq!(bulk(&mut c, &["MMAP.POP", "v"]).as_deref(), Some("1"));
    assert_eq!(file_len(&path), 0);
    assert_eq!(bulk(&mut c, &["MMAP.POP", "v"]), None);
    assert_eq!(bulk(&mut c, &["MMAP.POP", "missing"]), None);
}

#[test]
fn vcount_and_vclear() {
    let s = Server::start();
    let mut c = bound(&s, &["1", "2", "3"]);
    let path = s.data().join("v.f64");
    assert_eq!(int(&mut c, &["MMAP.COUNT", "v"]), 3);
    assert_eq!(int(&mut c, &["MMAP.COUNT", "missing"]), 0);
    assert_eq!(int(&mut c, &["MMAP.CLEAR", "v"]), 3);
    assert_eq!(file_len(&path), 0);
    assert_eq!(int(&mut c, &["MMAP.COUNT", "v"]), 0);
    assert_eq!(int(&mut c, &["MMAP.CLEAR", "v"]), 0);
    assert_eq!(int(&mut c, &["MMAP.CLEAR", "missing"]), 0);
    // The binding stays: appending works again.
    assert_eq!(int(&mut c, &["MMAP.ADD", "v", "9"]), 1);
    assert_eq!(file_values(&path), vec![9.0]);
}

#[test]
fn every_command_checks_its_arity() {
    let s = Server::start();
    let mut c = bound(&s, &["1"]);
    let cases: &[&[&str]] = &[
        &["MMAP", "v"],
        &["MMAP", "v", "a", "TYPE", "int8", "READONLY", "CREATE", "b"],
        &["MMAP.RESIZE", "v"],
        &["MMAP.RESIZE", "v", "1", "2"],
        &["MMAP.GET", "v"],
        &["MMAP.GET", "v", "1", "2"],
        &["MMAP.MGET", "v"],
        &["MMAP.SET", "v", "1"],
        &["MMAP.ADD", "v"],
        &["MMAP.POP"],
        &["MMAP.POP", "v", "x"],
        &["MMAP.COUNT"],
        &["MMAP.COUNT", "v", "x"],
        &["MMAP.CLEAR"],
        &["MMAP.CLEAR", "v", "x"],
    ];
    for args in cases {
        let e = err(&mut c, args);
        let want = format!("ERR wrong number of arguments for '{}' command", args[0].to_lowercase());
        assert_eq!(e, want, "{args:?}");
    }
    assert_eq!(file_values(&s.data().join("v.f64")), vec![1.0]);
}

#[test]
fn every_command_refuses_a_key_of_another_type() {
    let s = Server::start();
    let mut c = s.conn();
    raw(&mut c, &["SET", "str", "x"]).unwrap();
    let mut cases = data_commands("str");
    cases.push(vec!["MMAP", "str", "f"]);
    for args in &cases {
        let e = err(&mut c, args);
        assert!(e.starts_with("WRONGTYPE"), "{args:?}: {e}");
    }
    assert!(!s.data().join("f").exists());
}

#[test]
fn malformed_indices_are_errors_that_name_them() {
    let s = Server::start();
    let mut c = bound(&s, &["1", "2"]);
    for bad in [
        "abc",
        "1.5",
        "9223372036854775808",
        "-9223372036854775809",
        "",
        " 1",
        "+1",
        "01",
        "0x10",
    ] {
        let e = err(&mut c, &["MMAP.GET", "v", bad]);
        assert_eq!(e, format!("ERR index '{bad}' is not a decimal 64-bit integer"));
        let e = err(&mut c, &["MMAP.MGET", "v", "0", bad]);
        assert!(e.contains(&format!("'{bad}'")), "{e}");
        let e = err(&mut c, &["MMAP.SET", "v", "0", "5", bad, "6"]);
        assert!(e.starts_with("ERR index"), "{e}");
        // Missing keys validate too.
        let e = err(&mut c, &["MMAP.GET", "missing", bad]);
        assert!(e.starts_with("ERR index"), "{e}");
    }
    assert_eq!(file_values(&s.data().join("v.f64")), vec![1.0, 2.0]);
}

#[test]
fn malformed_values_are_errors_and_writes_are_all_or_nothing() {
    let s = Server::start();
    let mut c = bound(&s, &["1", "2"]);
    let path = s.data().join("v.f64");
    for bad in ["abc", "1e400", "-1e400", "1e-400", "", " 1", "1,5", "0x1p3", "nan(1)"] {
        let e = err(&mut c, &["MMAP.ADD", "v", "7", "8", bad]);
        assert_eq!(
            e,
            format!("ERR value '{bad}' is not a number (decimal double, inf, -inf or nan)")
        );
        let e = err(&mut c, &["MMAP.SET", "v", "0", "7", "1", bad]);
        assert!(e.starts_with("ERR value"), "{e}");
    }
    assert_eq!(file_values(&path), vec![1.0, 2.0]);
    let e = err(&mut c, &["MMAP.SET", "v", "0", "7", "1"]);
    assert_eq!(e, "ERR mmap.set takes index value pairs: the last index has no value");
    assert_eq!(file_values(&path), vec![1.0, 2.0]);
}

#[test]
fn a_long_argument_list_is_fine() {
    let s = Server::start();
    let mut c = bound(&s, &[]);
    let values: Vec<String> = (0..100_000).map(|i| format!("{i}.5")).collect();
    let mut cmd = redis::cmd("MMAP.ADD");
    cmd.arg("v").arg(&values);
    let n: i64 = cmd.query(&mut c).unwrap();
    assert_eq!(n, 100_000);
    let path = s.data().join("v.f64");
    assert_eq!(file_len(&path), 800_000);
    let on_disk = file_values(&path);
    assert_eq!(on_disk[99_999], 99_999.5);

    // One bad value at the very end: nothing of the 100,000 is written.
    let mut bad = values.clone();
    bad.push("x".into());
    let mut cmd = redis::cmd("MMAP.ADD");
    cmd.arg("v").arg(&bad);
    let e = cmd.query::<i64>(&mut c).unwrap_err();
    assert!(error_text(&e).starts_with("ERR value 'x'"), "{e}");
    assert_eq!(file_len(&path), 800_000);

    let indices: Vec<String> = (0..100_000).rev().map(|i| i.to_string()).collect();
    let mut cmd = redis::cmd("MMAP.MGET");
    cmd.arg("v").arg(&indices);
    let got: Vec<String> = cmd.query(&mut c).unwrap();
    assert_eq!(got.len(), 100_000);
    assert_eq!(got[0], "99999.5");
    assert_eq!(got[99_999], "0.5");
}

#[test]
fn special_values_round_trip_bit_exactly() {
    let s = Server::start();
    let mut c = bound(&s, &[]);
    let texts = [
        "inf",
        "-inf",
        "nan",
        "-0",
        "5e-324",
        "0.1",
        "1e-20",
        "1.7976931348623157e308",
    ];
    let mut args = vec!["MMAP.ADD", "v"];
    args.extend_from_slice(&texts);
    int(&mut c, &args);
    let want_bits: Vec<u64> = [
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -0.0,
        5e-324,
        0.1,
        1e-20,
        f64::MAX,
    ]
    .iter()
    .map(|v| v.to_bits())
    .collect();
    let got_bits = file_bits(&s.data().join("v.f64"));
    assert_eq!(got_bits, want_bits);
    // RESP2: the shortest text, which parses back to the same bits.
    for (i, t) in texts.iter().enumerate() {
        let got = bulk(&mut c, &["MMAP.GET", "v", &i.to_string()]).unwrap();
        assert_eq!(got, *t);
    }
}

#[test]
fn nan_payloads_survive_a_round_trip_through_text() {
    let s = Server::start();
    let path = s.data().join("nans.f64");
    let odd = [
        f64::from_bits(0x7ff0_0000_0000_0001),
        f64::from_bits(0xfff8_0000_0000_1234),
    ];
    write_values(&path, &odd);
    let mut c = s.conn();
    int(&mut c, &["MMAP", "n", "nans.f64"]);
    let texts = bulks(&mut c, &["MMAP.MGET", "n", "0", "1"]);
    assert_eq!(
        texts,
        vec![Some("nan(0x1)".into()), Some("-nan(0x8000000001234)".into())]
    );
    // Written back through VSET, the bits are unchanged.
    let (a, b) = (texts[0].clone().unwrap(), texts[1].clone().unwrap());
    int(&mut c, &["MMAP.SET", "n", "1", &a, "0", &b]);
    let bits = file_bits(&path);
    assert_eq!(bits, vec![0xfff8_0000_0000_1234, 0x7ff0_0000_0000_0001]);
}

#[test]
fn resp3_clients_get_doubles() {
    let s = Server::start();
    let _ = bound(&s, &["0.5", "inf", "-0"]);
    let mut c = s.conn3();
    let v: Value = redis::cmd("MMAP.GET").arg("v").arg(0).query(&mut c).unwrap();
    assert_eq!(v, Value::Double(0.5));
    let v: Value = redis::cmd("MMAP.MGET")
        .arg("v")
        .arg(1)
        .arg(2)
        .arg(3)
        .query(&mut c)
        .unwrap();
    match v {
        Value::Array(items) => {
            assert_eq!(items[0], Value::Double(f64::INFINITY));
            match &items[1] {
                Value::Double(z) => assert_eq!(z.to_bits(), (-0.0f64).to_bits()),
                other => panic!("{other:?}"),
            }
            assert_eq!(items[2], Value::Nil);
        }
        other => panic!("{other:?}"),
    }
    let v: Value = redis::cmd("MMAP.POP").arg("v").query(&mut c).unwrap();
    match v {
        Value::Double(z) => assert_eq!(z.to_bits(), (-0.0f64).to_bits()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn resp3_clients_get_nan_payloads_and_signs_bit_exact_as_strings() {
    let s = Server::start();
    let _ = bound(&s, &["nan", "-nan", "nan(0x123)", "-nan(0xfffffffffffff)", "1.5"]);
    let mut c = s.conn3();
    // The plain NaN is RESP3's own `,nan`; every other NaN is the RESP2 text.
    let v: Value = redis::cmd("MMAP.GET").arg("v").arg(0).query(&mut c).unwrap();
    match v {
        Value::Double(x) => assert!(x.is_nan() && x.is_sign_positive()),
        other => panic!("{other:?}"),
    }
    let v: Value = redis::cmd("MMAP.MGET")
        .arg("v")
        .arg(1)
        .arg(2)
        .arg(3)
        .arg(4)
        .query(&mut c)
        .unwrap();
    let Value::Array(items) = v else { panic!("{v:?}") };
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(text(&items[0]), "-nan");
    assert_eq!(text(&items[1]), "nan(0x123)");
    assert_eq!(text(&items[2]), "-nan(0xfffffffffffff)");
    assert_eq!(items[3], Value::Double(1.5));
    // Popped under RESP3 and written back, the payload survives.
    let v: Value = redis::cmd("MMAP.POP").arg("v").query(&mut c).unwrap();
    assert_eq!(v, Value::Double(1.5));
    let v: Value = redis::cmd("MMAP.POP").arg("v").query(&mut c).unwrap();
    let popped = text(&v);
    assert_eq!(popped, "-nan(0xfffffffffffff)");
    int(&mut c, &["MMAP.ADD", "v", &popped]);
    let bits = file_bits(&s.data().join("v.f64"));
    assert_eq!(
        bits,
        vec![
            0x7ff8_0000_0000_0000,
            0xfff8_0000_0000_0000,
            0x7ff0_0000_0000_0123,
            0xffff_ffff_ffff_ffff
        ]
    );
}

#[test]
fn writes_are_visible_to_other_readers_of_the_file_at_once() {
    let s = Server::start();
    let mut c = bound(&s, &["1", "2", "3"]);
    int(&mut c, &["MMAP.SET", "v", "1", "42"]);
    assert_eq!(file_values(&s.data().join("v.f64")), vec![1.0, 42.0, 3.0]);
    // And the other way: a write by another process is read at once.
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(s.data().join("v.f64"))
        .unwrap();
    f.write_all_at(&7.25f64.to_le_bytes(), 16).unwrap();
    assert_eq!(bulk(&mut c, &["MMAP.GET", "v", "2"]).as_deref(), Some("7.25"));
}

/// A server whose writes past 1 MiB per file fail with EFBIG.
fn disk_limited() -> Server {
    Server::with(Opts {
        fsize_limit: Some(1 << 20),
        ..Opts::default()
    })
}

#[test]
fn a_write_the_disk_refuses_changes_nothing() {
    let s = disk_limited();
    let mut c = bound(&s, &["1", "2"]);
    let path = s.data().join("v.f64");
    let values = vec!["0.5"; 200_000]; // 1.6 MB: past the 1 MiB limit
    let mut cmd = redis::cmd("MMAP.ADD");
    cmd.arg("v").arg(&values);
    let e = error_text(&cmd.query::<i64>(&mut c).unwrap_err());
    assert!(e.starts_with("ERR writing 'v.f64' failed: File too large"), "{e}");
    assert!(e.ends_with("nothing was changed"), "{e}");
    assert_eq!(file_values(&path), vec![1.0, 2.0]);
    assert_eq!(int(&mut c, &["MMAP.COUNT", "v"]), 2);
    assert_eq!(int(&mut c, &["MMAP.ADD", "v", "3"]), 1);
    assert_eq!(file_values(&path), vec![1.0, 2.0, 3.0]);
}

#[test]
fn vresize_cuts_or_extends_with_zeros_and_returns_the_old_count() {
    let s = Server::start();
    let mut c = bound(&s, &["1", "2", "3"]);
    let path = s.data().join("v.f64");
    assert_eq!(int(&mut c, &["MMAP.RESIZE", "v", "5"]), 3);
    assert_eq!(file_values(&path), vec![1.0, 2.0, 3.0, 0.0, 0.0]);
    assert_eq!(int(&mut c, &["MMAP.RESIZE", "v", "1"]), 5);
    assert_eq!(file_values(&path), vec![1.0]);
    // What was cut does not come back: the new tail is zeros.
    assert_eq!(int(&mut c, &["MMAP.RESIZE", "v", "2"]), 1);
    assert_eq!(file_values(&path), vec![1.0, 0.0]);
    assert_eq!(int(&mut c, &["MMAP.RESIZE", "v", "2"]), 2);
    assert_eq!(int(&mut c, &["MMAP.RESIZE", "v", "0"]), 2);
    assert_eq!(file_len(&path), 0);
    assert_eq!(int(&mut c, &["MMAP.COUNT", "v"]), 0);
}

#[test]
fn vresize_errors_name_the_problem_and_change_nothing() {
    let s = Server::start();
    let mut c = bound(&s, &["1", "2"]);
    let path = s.data().join("v.f64");
    for bad in ["-1", "abc", "1.5", "9223372036854775808", ""] {
        let e = err(&mut c, &["MMAP.RESIZE", "v", bad]);
        assert_eq!(
            e,
            format!("ERR length '{bad}' is not a decimal 64-bit integer of 0 or more")
        );
    }
    let e = err(&mut c, &["MMAP.RESIZE", "nokey", "3"]);
    assert!(e.starts_with("ERR no such key 'nokey'"), "{e}");
    // Longer than any mapping can be: one cause, whichever system call
    // (ftruncate, mmap, the size arithmetic) would have refused it first.
    for len in [
        "8796093022209",
        "1125899906842624",
        "1152921504606846976",
        "9223372036854775807",
    ] {
        let e = err(&mut c, &["MMAP.RESIZE", "v", len]);
        assert_eq!(
            e,
            format!("ERR length {len} is too large: a vector holds at most 8796093022208 values (64 TiB)")
        );
    }
    assert_eq!(file_values(&path), vec![1.0, 2.0]);
    assert_eq!(int(&mut c, &["EXISTS", "nokey"]), 0);
}

#[test]
fn vresize_past_the_disk_limit_changes_nothing() {
    let s = disk_limited();
    let mut c = bound(&s, &["1", "2"]);
    let e = err(&mut c, &["MMAP.RESIZE", "v", "1000000"]);
    assert!(e.starts_with("ERR writing 'v.f64' failed: File too large"), "{e}");
    assert_eq!(file_values(&s.data().join("v.f64")), vec![1.0, 2.0]);
    assert_eq!(int(&mut c, &["MMAP.RESIZE", "v", "1000"]), 2);
    assert_eq!(int(&mut c, &["MMAP.COUNT", "v"]), 1000);
}

#[test]
fn mmap_options_come_in_any_order_and_anything_else_is_refused() {
    let s = Server::start();
    let mut c = s.conn();
    let refused = [
        (&["NOW"][..], "ERR unknown mmap option 'NOW' (known: TYPE, READONLY, CREATE)"),
        (&["TYPE"], "ERR mmap option TYPE needs a value"),
        (
            &["TYPE", "f64"],
            "ERR unknown element kind 'f64' (known: int8, uint8, int16, uint16, int32, uint32, int64, uint64, float16, bfloat16, float32, float64, float, double)",
        ),
        (&["TYPE", "int8", "type", "int8"], "ERR mmap option TYPE is given twice"),
        (&["CREATE", "create"], "ERR mmap option CREATE is given twice"),
        (&["readonly", "READONLY"], "ERR mmap option READONLY is given twice"),
    ];
    for (options, want) in refused {
        let args: Vec<&str> = ["MMAP", "v", "v.f64"].iter().chain(options).copied().collect();
        assert_eq!(err(&mut c, &args), want, "{options:?}");
        assert!(!s.data().join("v.f64").exists());
        assert_eq!(int(&mut c, &["EXISTS", "v"]), 0);
    }
    // For a client, CREATE changes nothing on a writable key: MMAP creates a missing file anyway.
    assert_eq!(int(&mut c, &["MMAP", "v", "v.f64", "create"]), 0);
    assert!(s.data().join("v.f64").exists());
    assert_eq!(int(&mut c, &["MMAP.ADD", "v", "4"]), 1);
    assert_eq!(int(&mut c, &["MMAP", "v", "v.f64", "CREATE"]), 1);
    // Any order, any case; float is float32.
    for (i, options) in [
        ["create", "TYPE", "float"],
        ["Type", "FLOAT32", "CREATE"],
        ["CrEaTe", "type", "float32"],
    ]
    .iter()
    .enumerate()
    {
        let key = format!("w{i}");
        let path = format!("w{i}.f32");
        let args: Vec<&str> = ["MMAP", &key, &path].iter().chain(options).copied().collect();
        assert_eq!(int(&mut c, &args), 0);
        assert_eq!(info_text(&mut c, &key, "kind"), "float32");
    }
}
