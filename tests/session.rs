//! The README's quick session, a restart, and what an RDB brings back
//! (SPEC sections 2 to 4).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn the_quick_session_works_as_written_including_a_restart() {
    let mut s = Server::start();
    let mut c = s.conn();
    let path = s.data().join("file.mmap");
    let p = path.to_str().unwrap();

    assert_eq!(int(&mut c, &["MMAP", "db", p]), 0);
    assert_eq!(file_len(&path), 0);
    assert_eq!(int(&mut c, &["MMAP.ADD", "db", "0", "0.1", "0.2"]), 3);
    assert_eq!(file_len(&path), 24);
    assert_eq!(int(&mut c, &["MMAP.ADD", "db", "0.3", "0.4", "0.5", "0.6"]), 4);
    assert_eq!(file_len(&path), 56);
    assert_eq!(int(&mut c, &["MMAP.COUNT", "db"]), 7);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "db", "5"]).as_deref(), Some("0.5"));
    assert_eq!(
        bulks(&mut c, &["MMAP.MGET", "db", "0", "5", "7", "-1"]),
        vec![Some("0".into()), Some("0.5".into()), None, None]
    );
    assert_eq!(int(&mut c, &["MMAP.SET", "db", "5", "50", "10", "100"]), 1);
    assert_eq!(bulk(&mut c, &["MMAP.POP", "db"]).as_deref(), Some("0.6"));
    assert_eq!(file_len(&path), 48);

    s.restart();
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["MMAP.COUNT", "db"]), 6);
    assert_eq!(
        bulks(&mut c, &["MMAP.MGET", "db", "0", "1", "2", "3", "4", "5"]),
        ["0", "0.1", "0.2", "0.3", "0.4", "50"]
            .iter()
            .map(|v| Some(v.to_string()))
            .collect::<Vec<_>>()
    );

    // DEL drops the binding, not the file.
    assert_eq!(int(&mut c, &["DEL", "db"]), 1);
    assert_eq!(file_len(&path), 48);
    assert_eq!(int(&mut c, &["MMAP", "dba", p]), 6);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "dba", "5"]).as_deref(), Some("50"));

    assert_eq!(int(&mut c, &["MMAP.CLEAR", "dba"]), 6);
    assert_eq!(file_len(&path), 0);
}

#[test]
fn a_file_written_by_python_struct_maps_with_its_values() {
    let s = Server::start();
    let path = s.data().join("py.f64");
    let script = format!(
        "import struct\nwith open({:?}, 'wb') as f:\n    for i in range(100):\n        f.write(struct.pack('<d', i))\n",
        path.to_str().unwrap()
    );
    let st = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .status()
        .expect("python3 runs");
    assert!(st.success());
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["MMAP", "py", "py.f64"]), 100);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "py", "0"]).as_deref(), Some("0"));
    assert_eq!(bulk(&mut c, &["MMAP.GET", "py", "42"]).as_deref(), Some("42"));
    assert_eq!(bulk(&mut c, &["MMAP.GET", "py", "99"]).as_deref(), Some("99"));
    assert_eq!(bulk(&mut c, &["MMAP.GET", "py", "100"]), None);
}

/// Binds `file` to `key` with `values`, saves the RDB, lets `damage` change
/// the file behind the server's back, and restarts from the RDB.
fn restart_after(
    s: &mut Server,
    key: &str,
    file: &str,
    values: &[&str],
    damage: impl FnOnce(&Path),
) -> redis::Connection {
    let mut c = s.conn();
    int(&mut c, &["MMAP", key, file]);
    if !values.is_empty() {
        let mut args = vec!["MMAP.ADD", key];
        args.extend_from_slice(values);
        int(&mut c, &args);
    }
    raw(&mut c, &["SAVE"]).unwrap();
    damage(&s.data().join(file));
    s.kill_and_restart();
    s.conn()
}

#[test]
fn a_missing_file_after_restart_leaves_a_key_that_explains_itself() {
    let mut s = Server::start();
    let path = s.data().join("gone.f64");
    let mut kept = Vec::new();
    let mut c = restart_after(&mut s, "g", "gone.f64", &["1", "2", "3"], |p| {
        kept = std::fs::read(p).unwrap();
        std::fs::remove_file(p).unwrap();
    });
    assert_eq!(int(&mut c, &["EXISTS", "g"]), 1);
    assert!(s.log().contains("gone.f64"), "the log names the file:\n{}", s.log());
    for args in &data_commands("g") {
        let e = err(&mut c, args);
        assert!(e.starts_with("ERR key 'g' is bound to 'gone.f64'"), "{args:?}: {e}");
        assert!(e.contains("no such file or directory"), "{e}");
    }
    // Never replaced by a new empty file.
    assert!(!path.exists());
    // Re-binding to another file is refused; to the same path, while absent, explains.
    let e = err(&mut c, &["MMAP", "g", "other.f64"]);
    assert!(e.contains("is bound to 'gone.f64'"), "{e}");
    let e = err(&mut c, &["MMAP", "g", "gone.f64"]);
    assert!(
        e.starts_with("ERR cannot map 'gone.f64'") && e.contains("no such file"),
        "{e}"
    );
    assert!(!path.exists());

    // Once the file is back, MMAP with the same path re-opens it.
    std::fs::write(&path, &kept).unwrap();
    assert_eq!(int(&mut c, &["MMAP", "g", "gone.f64"]), 3);
    assert_eq!(bulk(&mut c, &["MMAP.GET", "g", "2"]).as_deref(), Some("3"));
    assert_eq!(int(&mut c, &["MMAP.ADD", "g", "4"]), 1);
    assert_eq!(file_values(&path), vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn a_broken_key_can_be_deleted() {
    let mut s = Server::start();
    let mut c = restart_after(&mut s, "g", "gone.f64", &[], |p| std::fs::remove_file(p).unwrap());
    let text = info(&mut c);
    assert!(text.contains("mmap_broken_keys:1"), "{text}");
    assert_eq!(int(&mut c, &["DEL", "g"]), 1);
    assert_eq!(int(&mut c, &["MMAP", "g", "gone.f64"]), 0);
}

#[test]
fn a_file_of_a_bad_size_after_restart_is_explained() {
    let mut s = Server::start();
    let path = s.data().join("odd.f64");
    let mut c = restart_after(&mut s, "o", "odd.f64", &["1"], |p| {
        std::fs::write(p, [0u8; 12]).unwrap()
    });
    let e = err(&mut c, &["MMAP.COUNT", "o"]);
    assert!(e.contains("has 12 bytes, which is not a multiple of 8"), "{e}");
    assert_eq!(file_len(&path), 12, "the file is left as it was");
}

#[test]
fn many_keys_come_back_after_a_restart() {
    let mut s = Server::start();
    let mut c = s.conn();
    for i in 0..20 {
        let k = format!("k{i}");
        int(&mut c, &["MMAP", &k, &format!("f{i}.f64")]);
        int(&mut c, &["MMAP.ADD", &k, &i.to_string()]);
    }
    s.restart();
    let mut c = s.conn();
    for i in 0..20 {
        assert_eq!(bulk(&mut c, &["MMAP.GET", &format!("k{i}"), "0"]), Some(i.to_string()));
    }
}

#[test]
fn debug_reload_saves_frees_and_reopens_in_one_process() {
    let s = Server::start();
    let mut c = s.conn();
    int(&mut c, &["MMAP", "a", "a.f64"]);
    int(&mut c, &["MMAP.ADD", "a", "1", "2"]);
    int(&mut c, &["MMAP", "b", "b.f64"]);
    raw(&mut c, &["DEBUG", "RELOAD"]).unwrap();
    assert_eq!(int(&mut c, &["MMAP.COUNT", "a"]), 2);
    assert_eq!(int(&mut c, &["MMAP.ADD", "b", "3"]), 1);
    // The registry followed: each file is still bound to its own key only.
    let e = err(&mut c, &["MMAP", "other", "a.f64"]);
    assert!(e.contains("already bound to key 'a'"), "{e}");
    // Valkey frees the old values on its lazy-free thread: they leave the
    // count when they are freed.
    wait_for("the old bindings to be freed", || mmap_stat(&mut c, "keys") == 2);
}

/// With an AOF, a deleted file must not come back as a new empty one when
/// the log replays `MMAP`.
fn aof_replay_keeps_a_missing_file_missing(preamble: &str) {
    let mut s = Server::with(Opts {
        conf: vec!["appendonly yes".into(), format!("aof-use-rdb-preamble {preamble}")],
        ..Opts::default()
    });
    let mut c = s.conn();
    // A file that existed before MMAP: the AOF does not hold its content.
    write_values(&s.data().join("k.f64"), &[5.0]);
    int(&mut c, &["MMAP", "k", "k.f64"]);
    int(&mut c, &["MMAP.ADD", "k", "1"]);
    std::fs::remove_file(s.data().join("k.f64")).unwrap();
    s.kill_and_restart();
    let mut c = s.conn();
    assert_eq!(int(&mut c, &["EXISTS", "k"]), 1);
    let e = err(&mut c, &["MMAP.COUNT", "k"]);
    assert!(
        e.starts_with("ERR key 'k' is bound to 'k.f64'") && e.contains("no such file"),
        "{e}"
    );
    assert!(!s.data().join("k.f64").exists(), "no empty file was made");
}

#[test]
fn aof_replay_keeps_a_missing_file_missing_with_rdb_preamble() {
    aof_replay_keeps_a_missing_file_missing("yes");
}

#[test]
fn aof_replay_keeps_a_missing_file_missing_without_rdb_preamble() {
    aof_replay_keeps_a_missing_file_missing("no");
}
