//! The engine's files form layers (see `src/messages/mod.rs`): an actor file names another
//! actor's module only to start that actor, the messages and the plain modules name none, and
//! only the engine (and the test kit above it) names them all. Read from the sources, so a new
//! `use crate::fl_proxy::…` in the dispatcher fails here rather than in a review.

use std::path::Path;

const ACTORS: [&str; 7] = [
    "command_shard",
    "dispatcher",
    "fl_proxy",
    "multi_switch",
    "outage_monitor",
    "sync_scheduler",
    "sync_session",
];

/// (file, actor module it may name): the actors a file starts.
const STARTS: [(&str, &str); 2] = [
    ("dispatcher", "multi_switch"),
    ("sync_scheduler", "sync_session"),
];

/// Files above every actor.
const TOP: [&str; 3] = ["engine", "testkit", "lib"];

/// Every `crate::<actor>` a source file names in code (comments skipped).
fn named_actors(src: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    for line in src.lines() {
        let code = line.split("//").next().unwrap_or("");
        for actor in ACTORS {
            let path = format!("crate::{actor}");
            let named = code.match_indices(&path).any(|(i, _)| {
                // `crate::sync_session` must not match inside `crate::sync_sessionx`.
                !code[i + path.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if named && !found.contains(&actor) {
                found.push(actor);
            }
        }
    }
    found
}

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("messages"), root.join("dialect")] {
        for entry in std::fs::read_dir(&dir).expect("read src dir") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
                let name = if dir == root {
                    stem
                } else {
                    let room = dir.file_name().unwrap().to_string_lossy();
                    format!("{room}/{stem}")
                };
                files.push((name, std::fs::read_to_string(&path).expect("read source")));
            }
        }
    }
    files
}

#[test]
fn actor_files_name_only_the_actors_they_start() {
    let files = sources();
    assert!(
        files.iter().any(|(n, _)| n == "dispatcher")
            && files.iter().any(|(n, _)| n.starts_with("messages/")),
        "the scan found the engine's sources"
    );
    let mut wrong = Vec::new();
    for (name, src) in &files {
        if TOP.contains(&name.as_str()) {
            continue;
        }
        for actor in named_actors(src) {
            let allowed = actor == name || STARTS.contains(&(name.as_str(), actor));
            if !allowed {
                wrong.push(format!("{name} names crate::{actor}"));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken: {wrong:?}");
}

#[test]
fn the_scan_sees_an_import_and_skips_a_comment() {
    let src = "use crate::fl_proxy::Forward;\n// see crate::dispatcher\nlet x = crate::sync_session::MAILBOX_CAPACITY;";
    assert_eq!(named_actors(src), vec!["fl_proxy", "sync_session"]);
}
