//! The examples run against a real server and do what they say.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use common::*;

fn example_binary(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let p = target.join("debug/examples").join(name);
    assert!(
        p.exists(),
        "{} is missing: `make test` builds the examples first",
        p.display()
    );
    p
}

#[test]
fn the_rust_client_example_runs() {
    let s = Server::start();
    let stdout = stdout_of(
        Command::new(example_binary("client"))
            .arg(format!("redis://127.0.0.1:{}/", s.port))
            .arg("demo.f64"),
    );
    assert!(
        stdout.contains("MMAP.ADD 10 values -> 10; MMAP.COUNT -> 10"),
        "{stdout}"
    );
    assert!(stdout.contains("MMAP.GET demo 0 -> Some(-1.5)"), "{stdout}");
    assert!(
        stdout.contains("MMAP.MGET demo 1 9 1000000 -> [Some(0.25), Some(2.25), None]"),
        "{stdout}"
    );
    assert!(stdout.contains("MMAP.POP demo -> Some(2.25)"), "{stdout}");
    assert_eq!(file_len(&s.data().join("demo.f64")), 72);
}

#[test]
fn the_python_example_runs() {
    let s = Server::start();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/numpy_roundtrip.py");
    let stdout = stdout_of(Command::new("python3").arg(script).args([
        "--port",
        &s.port.to_string(),
        "--dir",
        s.data().to_str().unwrap(),
        "-n",
        "500",
    ]));
    assert!(stdout.contains("MMAP np numpy.f64 -> 500 values"), "{stdout}");
    for kind in ["float32", "int64", "uint8"] {
        assert!(
            stdout.contains(&format!("{kind}: MMAP np-{kind} TYPE {kind} -> 500 values")),
            "{stdout}"
        );
    }
    assert_eq!(fs::read(s.data().join("numpy-uint8.bin")).unwrap()[..3], [7, 1, 2]);
    assert_eq!(file_len(&s.data().join("numpy-int64.bin")), 501 * 8);
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
    let values = file_values(&s.data().join("numpy.f64"));
    assert_eq!(values.len(), 502);
    assert_eq!(values[0], 0.1);
    assert_eq!(values[499], 499.0);
}

#[test]
fn the_python_client_example_runs() {
    let s = Server::start();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The client from this tree, whether or not it is installed.
    let stdout = stdout_of(
        Command::new("python3")
            .arg(root.join("examples/python_client.py"))
            .env("PYTHONPATH", root.join("python"))
            .args([
                "--port",
                &s.port.to_string(),
                "--dir",
                s.data().to_str().unwrap(),
                "-n",
                "100000",
            ]),
    );
    assert!(stdout.contains("append 100000 values -> length 100000"), "{stdout}");
    assert!(stdout.contains("v[:] -> 100000 float32 values"), "{stdout}");
    assert!(
        stdout.contains("numpy reads [100. 200. 300.] from the file"),
        "{stdout}"
    );
    assert!(stdout.contains("stats(0, 100) -> count 100"), "{stdout}");
    assert!(stdout.contains("pop -> 1.0, length 99999"), "{stdout}");
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}");
    assert_eq!(file_len(&s.data().join("client.f32")), 99_999 * 4);
}
