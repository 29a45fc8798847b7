//! What a careless or hostile client tried, each once a bug: none may
//! crash the server, change anything when refused, or leave two keys on
//! one file.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn values_with_multi_byte_characters_are_refused_not_a_panic() {
    let s = Server::start();
    let mut c = s.conn();
    int(&mut c, &["MMAP", "k", "k.f64"]);
    int(&mut c, &["MMAP.ADD", "k", "1"]);
    for bad in ["ab€", "-xy€", "na€", "€", "1€", "nan(0x€)", "+é", "infé"] {
        assert_eq!(
            err(&mut c, &["MMAP.ADD", "k", "1", bad]),
            format!("ERR value '{bad}' is not a number (decimal double, inf, -inf or nan)")
        );
        assert_eq!(
            err(&mut c, &["MMAP.SET", "k", "0", bad]),
            format!("ERR value '{bad}' is not a number (decimal double, inf, -inf or nan)")
        );
    }
    assert_eq!(file_values(&s.data().join("k.f64")), vec![1.0]);
    assert_eq!(mmap_stat(&mut c, "panics"), 0);
}

#[test]
fn nan_payloads_take_only_glibc_notation() {
    let s = Server::start();
    let mut c = s.conn();
    int(&mut c, &["MMAP", "k", "k.f64"]);
    for bad in ["nan(0x+1)", "nan(0x-1)", "nan(0x 1)", "nan(+0x1)", "nan(0x1"] {
        let e = err(&mut c, &["MMAP.ADD", "k", bad]);
        assert!(e.starts_with(&format!("ERR value '{bad}' is not a number")), "{e}");
    }
    assert_eq!(int(&mut c, &["MMAP.ADD", "k", "nan(0x1)"]), 1);
    assert_eq!(file_values(&s.data().join("k.f64"))[0].to_bits(), 0x7ff0_0000_0000_0001);
}

#[test]
fn a_path_that_names_a_directory_is_refused_however_it_ends() {
    let s = Server::start();
    let mut c = s.conn();
    for path in ["x/", "x/.", "x/..", "sub/x/..", "./", "x/./"] {
        assert_eq!(
            err(&mut c, &["MMAP", "k", path]),
            format!("ERR cannot map '{path}': path is not a regular file (it is a directory)")
        );
    }
    assert!(!s.data().join("x").exists() && !s.data().join("sub").exists());
    assert_eq!(int(&mut c, &["EXISTS", "k"]), 0);
}

#[test]
fn a_socket_is_named_as_a_socket() {
    let s = Server::start();
    let mut c = s.conn();
    let _listener = std::os::unix::net::UnixListener::bind(s.data().join("sock")).unwrap();
    for args in [&["MMAP", "k", "sock"][..], &["MMAP", "k", "sock", "CREATE"]] {
        assert_eq!(
            err(&mut c, args),
            "ERR cannot map 'sock': path is not a regular file (it is a socket)"
        );
    }
    assert_eq!(int(&mut c, &["EXISTS", "k"]), 0);
}

#[test]
fn an_expired_key_frees_its_file_for_the_next_mmap() {
    let s = Server::start();
    let mut c = s.conn();
    int(&mut c, &["MMAP", "e1", "e.f64"]);
    int(&mut c, &["MMAP.ADD", "e1", "1", "2"]);
    int(&mut c, &["PEXPIRE", "e1", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    // Nothing has touched e1 since it expired.
    assert_eq!(int(&mut c, &["MMAP", "e2", "e.f64"]), 2);
    assert_eq!(int(&mut c, &["EXISTS", "e1"]), 0);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "e2", "1"]).as_deref(), Some("2"));
    assert_eq!(mmap_stat(&mut c, "keys"), 1);
    // A key that has not expired keeps its file.
    int(&mut c, &["PEXPIRE", "e2", "100000"]);
    let e = err(&mut c, &["MMAP", "e3", "e.f64"]);
    assert_eq!(e, "ERR cannot map 'e.f64': the file is already bound to key 'e2'");
}

/// Moves `a` (bound to g.f64, three values) from db 0 to db 1 the way
/// `how` says.
fn move_a(c: &mut redis::Connection, how: &str) {
    int(c, &["MMAP", "a", "g.f64"]);
    int(c, &["MMAP.ADD", "a", "1", "2", "3"]);
    match how {
        "multi" => {
            let replies: Vec<i64> = redis::pipe().atomic().cmd("MOVE").arg("a").arg(1).query(c).unwrap();
            assert_eq!(replies, [1]);
        }
        "lua" => assert_eq!(int(c, &["EVAL", "return redis.call('MOVE', KEYS[1], 1)", "1", "a"]), 1),
        "plain" => assert_eq!(int(c, &["MOVE", "a", "1"]), 1),
        _ => unreachable!(),
    }
}

fn still_bound_to_a(s: &Server, c: &mut redis::Connection) {
    assert_eq!(
        err(c, &["MMAP", "b", "g.f64"]),
        "ERR cannot map 'g.f64': the file is already bound to key 'a'",
        "{}",
        s.log()
    );
    let mut db1 = s.conn();
    raw(&mut db1, &["SELECT", "1"]).unwrap();
    assert_eq!(int(&mut db1, &["MMAP.COUNT", "a"]), 3);
}

#[test]
fn a_key_moved_in_multi_or_lua_keeps_its_file_through_flushdb() {
    for how in ["multi", "lua", "plain"] {
        let s = Server::start();
        let mut c = s.conn();
        move_a(&mut c, how);
        raw(&mut c, &["FLUSHDB"]).unwrap();
        still_bound_to_a(&s, &mut c);
        raw(&mut c, &["FLUSHDB", "ASYNC"]).unwrap();
        still_bound_to_a(&s, &mut c);
    }
}

#[test]
fn a_key_moved_in_multi_or_lua_is_freed_by_flushall_async() {
    for how in ["multi", "lua"] {
        let s = Server::start();
        let mut c = s.conn();
        move_a(&mut c, how);
        raw(&mut c, &["FLUSHALL", "ASYNC"]).unwrap();
        assert_eq!(int(&mut c, &["MMAP", "b", "g.f64"]), 3, "{how}");
        assert_eq!(bulk(&mut c, &["MMAP.GET", "b", "2"]).as_deref(), Some("3"));
    }
}

#[test]
fn a_key_moved_in_multi_or_lua_follows_swapdb() {
    for how in ["multi", "lua"] {
        let s = Server::start();
        let mut c = s.conn();
        move_a(&mut c, how);
        // a is in db 0 again; flushing db 1 must not free it.
        raw(&mut c, &["SWAPDB", "0", "1"]).unwrap();
        let mut db1 = s.conn();
        raw(&mut db1, &["SELECT", "1"]).unwrap();
        raw(&mut db1, &["FLUSHDB"]).unwrap();
        assert_eq!(int(&mut c, &["MMAP.COUNT", "a"]), 3, "{how}");
        assert_eq!(
            err(&mut db1, &["MMAP", "b", "g.f64"]),
            "ERR cannot map 'g.f64': the file is already bound to key 'a'"
        );
        // Flushing its own database frees it.
        raw(&mut c, &["FLUSHDB"]).unwrap();
        assert_eq!(int(&mut db1, &["MMAP", "b", "g.f64"]), 3);
    }
}

#[test]
fn a_rename_inside_multi_is_followed() {
    let s = Server::start();
    let mut c = s.conn();
    int(&mut c, &["MMAP", "a", "g.f64"]);
    let _: Vec<String> = redis::pipe()
        .atomic()
        .cmd("RENAME")
        .arg("a")
        .arg("z")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        err(&mut c, &["MMAP", "b", "g.f64"]),
        "ERR cannot map 'g.f64': the file is already bound to key 'z'"
    );
    raw(&mut c, &["FLUSHDB"]).unwrap();
    assert_eq!(int(&mut c, &["MMAP", "b", "g.f64"]), 0);
}
