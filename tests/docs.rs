//! The docs against the server: every command the module registers (each
//! with its `COMMAND DOCS`) has its entry in docs/commands.md, every option it registers is documented in
//! docs/configuration.md and every documented one exists, and the README
//! stays a page. (The sessions in the docs are replayed by tests/readme.rs.)

mod common;

use std::collections::BTreeSet;

use common::*;
use redis::Value;

fn doc(name: &str) -> String {
    std::fs::read_to_string(format!("{}/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn strings(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items
            .into_iter()
            .map(|x| match x {
                Value::BulkString(b) => String::from_utf8(b).unwrap(),
                Value::SimpleString(s) => s,
                other => panic!("a name, got {other:?}"),
            })
            .collect(),
        other => panic!("an array, got {other:?}"),
    }
}

#[test]
fn every_command_has_its_reference_entry() {
    let s = Server::start();
    let mut c = s.conn();
    let names = strings(raw(&mut c, &["COMMAND", "LIST", "FILTERBY", "MODULE", "mmap"]).unwrap());
    let (short, _) = short_names(&mut c);
    let commands = doc("docs/commands.md");
    let mut seen = 0;
    for name in &names {
        if short.contains(name) {
            // A short name: documented in its canonical name's entry.
            assert!(
                commands.contains(&format!("(short name `{}`", name.to_uppercase())),
                "{name} is not named in docs/commands.md"
            );
            continue;
        }
        // The server's own docs for it, from the command table.
        let docs = format!("{:?}", raw(&mut c, &["COMMAND", "DOCS", name]).unwrap());
        assert!(
            docs.contains("summary") && docs.contains("complexity"),
            "{name}: {docs}"
        );
        let upper = name.to_uppercase();
        let heading = format!("\n### {upper}\n");
        let at = commands
            .find(&heading)
            .unwrap_or_else(|| panic!("docs/commands.md has no entry for {upper}"));
        let entry = &commands[at + heading.len()..];
        let entry = &entry[..entry.find("\n### ").unwrap_or(entry.len())];
        assert!(
            entry.trim_start().starts_with(&format!("`{upper}")),
            "{upper}: the syntax first"
        );
        for part in ["**Reply**", "**Errors**", "**Complexity**", "**Flags**", "```redis-cli"] {
            assert!(entry.contains(part), "{upper}'s entry has no {part}");
        }
        seen += 1;
    }
    assert_eq!(seen, 16, "the sixteen commands of a release build: {names:?}");
    // And no entry for a command the server does not have.
    let documented: BTreeSet<String> = commands
        .lines()
        .filter_map(|l| l.strip_prefix("### MMAP"))
        .map(|rest| format!("mmap{}", rest.to_lowercase()))
        .collect();
    let registered: BTreeSet<String> = names.into_iter().filter(|n| !short.contains(n)).collect();
    assert_eq!(documented, registered);
}

#[test]
fn every_option_is_documented_and_every_documented_option_exists() {
    let s = Server::start();
    let mut c = s.conn();
    let got: BTreeSet<String> = config_get(&mut c, "mmap.*").chunks(2).map(|kv| kv[0].clone()).collect();
    let configuration = doc("docs/configuration.md");
    let documented: BTreeSet<String> = configuration
        .lines()
        .filter_map(|l| l.strip_prefix("| `mmap."))
        .map(|rest| format!("mmap.{}", &rest[..rest.find('`').unwrap()]))
        .collect();
    assert_eq!(documented, got);
}

#[test]
fn the_readme_is_a_page_and_links_to_every_doc() {
    let readme = doc("README.md");
    assert!(readme.len() <= 15 * 1024, "README.md is {} bytes", readme.len());
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/docs")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(
            readme.contains(&format!("(docs/{name})")),
            "the README does not link docs/{name}"
        );
    }
}
