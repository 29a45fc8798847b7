//! The README's quick session, and every session in `docs/`, replayed line
//! by line with redis-cli, each on a server of its own.

mod common;

use std::process::Command;

use common::*;

const PROMPT: &str = "127.0.0.1:6380> ";

/// The lines of each ```redis-cli block of a file of the repository.
fn sessions(file: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("```redis-cli\n") {
        let start = at + "```redis-cli\n".len();
        let end = start + rest[start..].find("```").unwrap();
        out.push(rest[start..end].lines().map(str::to_owned).collect());
        rest = &rest[end..];
    }
    out
}

/// The lines of the README's ```redis-cli block.
fn session() -> Vec<String> {
    sessions("README.md")
        .into_iter()
        .next()
        .expect("the README has a redis-cli block")
}

fn run(s: &mut Server, line: &str) -> Vec<String> {
    let out = if let Some(cmd) = line.strip_prefix(PROMPT) {
        if cmd == "SHUTDOWN SAVE" {
            s.restart(); // and `make run` on the next line is the start
            return vec![];
        }
        Command::new("redis-cli")
            .args(["--no-raw", "-p", &s.port.to_string()])
            .args(cmd.split_whitespace())
            .output()
            .unwrap()
    } else if let Some(sh) = line.strip_prefix("$ ") {
        if sh == "make run" || sh.starts_with("redis-cli") {
            return vec![];
        }
        Command::new("sh")
            .arg("-c")
            .arg(sh)
            .current_dir(&s.home)
            .output()
            .unwrap()
    } else {
        panic!("not a command line: {line}");
    };
    assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readme_session_is_exactly_true() {
    let lines = session();
    assert!(lines.len() > 20, "the session is there");
    replay(&lines);
}

#[test]
fn every_session_in_docs_is_exactly_true() {
    let mut n = 0;
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".md") {
            for lines in sessions(&format!("docs/{name}")) {
                replay(&lines);
                n += 1;
            }
        }
    }
    assert!(n >= 1, "docs/ has sessions");
}

fn replay(lines: &[String]) {
    let mut s = Server::start();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        let mut expected = Vec::new();
        i += 1;
        while i < lines.len() && !lines[i].starts_with(PROMPT) && !lines[i].starts_with("$ ") {
            expected.push(lines[i].clone());
            i += 1;
        }
        assert_eq!(run(&mut s, line), expected, "line: {line}");
    }
}
