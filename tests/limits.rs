//! The key budget: however many keys clients bind, the server keeps the
//! descriptors its clients need.

mod common;

use common::*;

/// Sends `MMAP k<i> f<i>` for each `i` in `range` in one pipeline; the replies.
fn bind_range(c: &mut redis::Connection, range: std::ops::Range<usize>) -> Vec<Result<i64, String>> {
    let mut p = redis::pipe();
    p.ignore_errors();
    for i in range {
        p.cmd("MMAP").arg(format!("k{i}")).arg(format!("f{i}"));
    }
    let replies: Vec<Value> = p.query(c).unwrap();
    replies
        .into_iter()
        .map(|v| match v {
            Value::Int(n) => Ok(n),
            Value::ServerError(e) => Err(format!("{} {}", e.code(), e.details().unwrap_or_default())),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Binds keys in batches until one is refused; the number bound and the refusal.
fn bind_until_refused(c: &mut redis::Connection, batch: usize) -> (usize, String) {
    let mut at = 0;
    loop {
        for (i, r) in bind_range(c, at..at + batch).into_iter().enumerate() {
            match r {
                Ok(0) => {}
                Ok(n) => panic!("k{} has {n} values", at + i),
                Err(e) => return (at + i, e),
            }
        }
        at += batch;
    }
}

#[test]
fn binding_until_refused_leaves_every_client_a_connection() {
    let s = Server::with(Opts {
        open_files: Some(1200),
        // Verbose: a client the event loop cannot take is logged only there.
        conf: vec!["maxclients 200".into(), "loglevel verbose".into()],
        ..Opts::default()
    });
    let mut c = s.conn();
    let (bound, e) = bind_until_refused(&mut c, 100);
    // 1200 descriptors, less 200 for clients and 128 for the server.
    assert_eq!(bound, 872);
    assert_eq!(
        e,
        "ERR cannot bind another key: 872 files are open for bound keys, the most this server allows: the open-file limit 1200 \
         leaves 872 descriptors after maxclients 200 and 128 for the server; raise the limit (ulimit -n, \
         LimitNOFILE) before starting the server, lower maxclients, or spread the keys over more nodes"
    );
    // The refusal created nothing and bound nothing.
    assert!(!s.data().join("f872").exists());
    assert_eq!(int(&mut c, &["EXISTS", "k872"]), 0);
    assert_eq!(mmap_stat(&mut c, "max_keys"), 872);
    assert_eq!(mmap_stat(&mut c, "descriptors_in_use"), 872);
    assert_eq!(field(&mut c, "mmap", "mmap_max_keys_set_by"), "open-files");
    assert!(mmap_stat(&mut c, "keys_refused") >= 1);
    // 100 new clients, all at once, each served.
    let mut clients: Vec<redis::Connection> = (0..100).map(|_| s.conn()).collect();
    for (i, cl) in clients.iter_mut().enumerate() {
        let k = format!("k{}", i * 8);
        assert_eq!(int(cl, &["MMAP.ADD", &k, "1.5"]), 1);
        assert_eq!(bulk(cl, &["MMAP.GET", &k, "0"]).as_deref(), Some("1.5"));
    }
    let log = s.log();
    assert!(
        !log.contains("Too many open files") && !log.contains("Error registering fd event"),
        "{log}"
    );
    // Deleting keys makes room again.
    int(&mut c, &["DEL", "k0", "k1"]);
    assert_eq!(bind_range(&mut c, 872..875)[..2], [Ok(0), Ok(0)]);
    assert!(bind_range(&mut c, 875..876)[0].is_err());
}

#[test]
fn a_descriptor_held_by_something_else_refuses_the_key_and_removes_its_new_file() {
    // The budget counts every descriptor above the clients' range as free;
    // one the server inherited takes the last of them.
    let s = Server::with(Opts {
        open_files: Some(1200),
        conf: vec!["maxclients 200".into()],
        inherited_fd: Some(1199),
        ..Opts::default()
    });
    let mut c = s.conn();
    let (bound, e) = bind_until_refused(&mut c, 100);
    assert_eq!(bound, 871);
    assert_eq!(
        e,
        "ERR cannot bind another key: 871 files are open for bound keys, the most this server allows: the open-file \
         limit 1200 leaves 871 descriptors after maxclients 200 and 128 for the server; raise the limit (ulimit -n, \
         LimitNOFILE) before starting the server, lower maxclients, or spread the keys over more nodes"
    );
    // The file the refused MMAP created is gone, and the key was not made.
    assert!(!s.data().join("f871").exists());
    assert_eq!(int(&mut c, &["EXISTS", "k871"]), 0);
    assert_eq!(mmap_stat(&mut c, "keys"), 871);
}

#[test]
fn a_server_started_with_a_low_descriptor_limit_names_it_and_follows_maxclients() {
    // Redis lowers maxclients to fit 256 descriptors, which leaves none for keys.
    let s = Server::with(Opts {
        open_files: Some(256),
        ..Opts::default()
    });
    let mut c = s.conn();
    let maxclients: u64 = config_get(&mut c, "maxclients")[1].parse().unwrap();
    assert!(maxclients <= 256 - 32, "{maxclients}");
    let e = err(&mut c, &["MMAP", "k", "f"]);
    assert!(
        e.starts_with("ERR cannot bind another key: 0 files are open for bound keys")
            && e.contains(&format!(
                "the open-file limit 256 leaves 0 descriptors after maxclients {maxclients}"
            )),
        "{e}"
    );
    assert_eq!(mmap_stat(&mut c, "max_keys"), 0);
    assert_eq!(mmap_stat(&mut c, "open_files_limit"), 256);
    // Fewer clients leave room for keys, at once.
    raw(&mut c, &["CONFIG", "SET", "maxclients", "100"]).unwrap();
    assert_eq!(mmap_stat(&mut c, "maxclients"), 100);
    let (bound, e) = bind_until_refused(&mut c, 10);
    assert_eq!(bound, 256 - 100 - 128);
    assert!(e.contains("maxclients 100"), "{e}");
    assert!(
        s.log().contains("up to 0 keys can be bound (open-file limit 256"),
        "{}",
        s.log()
    );
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one_at_load() {
    let s = Server::with(Opts {
        open_files: Some(3000),
        soft_open_files: Some(2000),
        ..Opts::default()
    });
    let mut c = s.conn();
    assert_eq!(mmap_stat(&mut c, "open_files_limit"), 3000);
    // maxclients 1000 (the harness's) and 128 for the server.
    assert_eq!(mmap_stat(&mut c, "max_keys"), 3000 - 1000 - 128);
    assert!(
        s.log().contains("raised the open-file limit from 2000 to 3000"),
        "{}",
        s.log()
    );
}

#[test]
fn mmap_max_keys_sets_a_lower_budget_at_load_and_at_run_time() {
    let s = Server::with(Opts {
        // No dir argument: mmap.dir is the working directory.
        module_args: vec!["max-keys".into(), "5".into()],
        ..Opts::default()
    });
    let mut c = s.conn();
    let (bound, e) = bind_until_refused(&mut c, 3);
    assert_eq!(bound, 5);
    assert_eq!(
        e,
        "ERR cannot bind another key: 5 files are open for bound keys, the most this server allows: mmap.max-keys is 5; raise it \
         with CONFIG SET mmap.max-keys"
    );
    assert_eq!(field(&mut c, "mmap", "mmap_max_keys_set_by"), "max-keys");
    raw(&mut c, &["CONFIG", "SET", "mmap.max-keys", "7"]).unwrap();
    assert_eq!(bind_range(&mut c, 5..8), [Ok(0), Ok(0), Err(e.replace('5', "7"))]);
    // Lowered below what is bound: every bound key still works; new ones wait.
    raw(&mut c, &["CONFIG", "SET", "mmap.max-keys", "2"]).unwrap();
    assert_eq!(int(&mut c, &["MMAP.ADD", "k6", "1"]), 1);
    assert!(bind_range(&mut c, 8..9)[0].is_err());
    // 0: only the system's limits.
    raw(&mut c, &["CONFIG", "SET", "mmap.max-keys", "0"]).unwrap();
    assert_eq!(bind_range(&mut c, 8..9), [Ok(0)]);
    assert_eq!(field(&mut c, "mmap", "mmap_max_keys_set_by"), "open-files");
    let e = error_text(
        &redis::cmd("CONFIG")
            .arg("SET")
            .arg("mmap.max-keys")
            .arg("-1")
            .query::<()>(&mut c)
            .unwrap_err(),
    );
    assert!(e.contains("mmap.max-keys"), "{e}");
}

#[test]
fn a_bad_max_keys_argument_fails_the_load() {
    let log = Server::try_with(Opts {
        module_args: vec!["max-keys".into(), "many".into()],
        ..Opts::default()
    })
    .err()
    .expect("the load fails");
    assert!(
        log.contains("mmap.max-keys must be an integer of 0 or more, not 'many'"),
        "{log}"
    );
}

#[test]
fn keys_beyond_the_budget_at_startup_load_broken_and_say_why() {
    let mut s = Server::start();
    let mut c = s.conn();
    for r in bind_range(&mut c, 0..10) {
        assert_eq!(r, Ok(0));
    }
    for i in 0..10 {
        int(&mut c, &["MMAP.ADD", &format!("k{i}"), &i.to_string()]);
    }
    s.stop();
    let mut opts = s.opts();
    opts.conf.push("mmap.max-keys 6".into());
    let s2 = Server::try_with_home(s.home.clone(), opts).unwrap();
    let mut c = s2.conn();
    assert_eq!(mmap_stat(&mut c, "keys"), 6);
    assert_eq!(mmap_stat(&mut c, "broken_keys"), 4);
    let broken: Vec<usize> = (0..10)
        .filter(|i| raw(&mut c, &["MMAP.GET", &format!("k{i}"), "0"]).is_err())
        .collect();
    assert_eq!(broken.len(), 4);
    let e = err(&mut c, &["MMAP.GET", &format!("k{}", broken[0]), "0"]);
    assert!(e.contains("mmap.max-keys is 6"), "{e}");
    // Raised, the keys open again with their values.
    raw(&mut c, &["CONFIG", "SET", "mmap.max-keys", "0"]).unwrap();
    for &i in &broken {
        assert_eq!(int(&mut c, &["MMAP", &format!("k{i}"), &format!("f{i}")]), 1);
        assert_eq!(bulk(&mut c, &["MMAP.GET", &format!("k{i}"), "0"]), Some(i.to_string()));
    }
    assert_eq!(mmap_stat(&mut c, "broken_keys"), 0);
}

#[test]
fn as_many_keys_as_the_limits_allow_up_to_50000() {
    // As many descriptors as this process may have; few clients.
    let mut hard = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out-parameter.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) }, 0);
    let s = Server::with(Opts {
        open_files: Some(hard.rlim_max.min(1 << 20)),
        conf: vec!["maxclients 64".into()],
        ..Opts::default()
    });
    let mut c = s.conn();
    let budget = mmap_stat(&mut c, "max_keys") as usize;
    let want = budget.min(50_000);
    eprintln!(
        "binding {want} keys (budget {budget}, open-file limit {}, vm.max_map_count {})",
        mmap_stat(&mut c, "open_files_limit"),
        mmap_stat(&mut c, "vm_max_map_count")
    );
    // The budget is what the descriptors (less 64 clients and 128 for the
    // server) or the mappings allow, whichever is less.
    let open_files = mmap_stat(&mut c, "open_files_limit") as usize;
    let maps = mmap_stat(&mut c, "vm_max_map_count") as usize;
    assert_eq!(budget, (open_files - 64 - 128).min(maps - 4096));
    assert!(want >= 1000, "the limits allow only {want} keys");
    for at in (0..want).step_by(1000) {
        for r in bind_range(&mut c, at..(at + 1000).min(want)) {
            assert_eq!(r, Ok(0));
        }
    }
    assert_eq!(mmap_stat(&mut c, "descriptors_in_use"), want as i64);
    if want < 50_000 {
        let e = bind_range(&mut c, want..want + 1).remove(0).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "ERR cannot bind another key: {want} files are open for bound keys"
            )),
            "{e}"
        );
    }
    // Every key works: one write and one read each.
    let mut p = redis::pipe();
    for i in 0..want {
        p.cmd("MMAP.ADD").arg(format!("k{i}")).arg(i);
    }
    let added: Vec<i64> = p.query(&mut c).unwrap();
    assert!(added.iter().all(|&n| n == 1));
    let mut p = redis::pipe();
    for i in 0..want {
        p.cmd("MMAP.GET").arg(format!("k{i}")).arg(0);
    }
    let got: Vec<String> = p.query(&mut c).unwrap();
    assert!(got.iter().enumerate().all(|(i, v)| *v == i.to_string()));
    // They survive a reload, and a client can still connect.
    raw(&mut c, &["DEBUG", "RELOAD"]).unwrap();
    assert_eq!(mmap_stat(&mut c, "descriptors_in_use"), want as i64);
    assert_eq!(mmap_stat(&mut c, "broken_keys"), 0);
    let mut other = s.conn();
    assert_eq!(
        bulk(&mut other, &["MMAP.GET", &format!("k{}", want - 1), "0"]),
        Some((want - 1).to_string())
    );
    // Valkey flushes lazily by default: the files close on a background thread.
    raw(&mut c, &["FLUSHALL"]).unwrap();
    wait_for("every file to close", || mmap_stat(&mut c, "descriptors_in_use") == 0);
}
