//! The house rules, read from the sources (so a new import that breaks one fails here rather
//! than in a review); ARCHITECTURE.md draws the rooms they keep apart.
//!
//! - No import circle between the modules of the engine, the service or the tooling.
//! - An actor's files name another actor's module only to start that actor (the dispatcher
//!   starts multi-switch commands, the sync scheduler its sessions); only the engine handle and
//!   the test kit name them all. Everything else reaches an actor through `messages`.
//! - The dialect is the only room of the engine — and the service names none — that names
//!   OpenKilda's classes (`org.openkilda…`); tests and the tooling may.
//! - The service's configuration is a leaf: `src/config/` imports nothing else of the shell.
//! - The service crate does not depend on the tooling crate, and holds no embedded Kafka.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the engine crate lives in the repository")
        .to_path_buf()
}

/// A crate's modules: module path (`routing::dispatcher::grace`) → its code, with comments and
/// the `#[cfg(test)]` module left out.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).expect("read a source file");
            out.insert(parts.join("::"), code_of(&text));
        }
    }
    out
}

/// The code of a file: no comment lines, no trailing comments, no test module.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| l.split(" // ").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b…` path a piece of code names, grouped imports expanded
/// (`use crate::a::{b, c::d}` names `a::b` and `a::c::d`).
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while let Some(i) = code[at..].find("crate::") {
        let start = at + i;
        at = start + 7;
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue; // `fl_router_actors::…` or `$crate` (the macros) are not this crate's paths
        }
        if start > 0 && bytes[start - 1] == b'$' {
            continue;
        }
        expand("", &code[at..], &mut out);
    }
    out
}

/// Reads a path (or a `{…}` group) at the start of `rest`, prefixed by `prefix`.
fn expand(prefix: &str, rest: &str, out: &mut Vec<String>) {
    let mut path = prefix.to_string();
    for (i, c) in rest.char_indices() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            path.push(c);
            continue;
        }
        if c == '{' {
            // The group's items, split at top-level commas.
            let body = &rest[i + 1..];
            let mut depth = 0;
            let mut item = 0;
            for (j, b) in body.char_indices() {
                match b {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        expand(&path, &body[item..j], out);
                        return;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&path, &body[item..j], out);
                        item = j + 1;
                    }
                    _ => {}
                }
            }
            return;
        }
        break;
    }
    let path = path.trim().trim_end_matches(':').to_string();
    if !path.is_empty() && path != prefix.trim_end_matches(':') {
        out.push(path);
    } else if !prefix.is_empty() && rest.trim().starts_with("self") {
        out.push(prefix.trim_end_matches(':').to_string());
    }
}

/// Module → the other modules of its crate it imports (parents and children left out: a
/// folder's `mod.rs` and its files are one room).
fn graph(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut g = BTreeMap::new();
    for (name, code) in mods {
        let mut deps = BTreeSet::new();
        for path in crate_paths(code) {
            let parts: Vec<&str> = path.split("::").collect();
            // The longest prefix that is a module.
            let target = (1..=parts.len())
                .rev()
                .map(|k| parts[..k].join("::"))
                .find(|m| mods.contains_key(m));
            if let Some(t) = target {
                let related = t == *name
                    || name.starts_with(&format!("{t}::"))
                    || t.starts_with(&format!("{name}::"))
                    || name.is_empty();
                if !related {
                    deps.insert(t);
                }
            }
        }
        g.insert(name.clone(), deps);
    }
    g
}

/// The import circles of a graph (strongly connected components of more than one module).
fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Kosaraju: finish order on the graph, then components on its transpose.
    fn visit<'a>(
        n: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<&'a str>,
        order: &mut Vec<&'a str>,
    ) {
        if !seen.insert(n) {
            return;
        }
        for m in g.get(n).into_iter().flatten() {
            visit(m, g, seen, order);
        }
        order.push(n);
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for n in g.keys() {
        visit(n, g, &mut seen, &mut order);
    }
    let mut rev: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, bs) in g {
        for b in bs {
            rev.entry(b.clone()).or_default().insert(a.clone());
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for n in order.into_iter().rev() {
        let mut comp = Vec::new();
        let mut stack = vec![n.to_string()];
        while let Some(x) = stack.pop() {
            if !assigned.insert(x.clone()) {
                continue;
            }
            for y in rev.get(&x).into_iter().flatten() {
                stack.push(y.clone());
            }
            comp.push(x);
        }
        if comp.len() > 1 {
            comp.sort();
            out.push(comp);
        }
    }
    out
}

#[test]
fn no_import_circles_in_the_engine_the_service_or_the_tooling() {
    for src in ["actors/src", "src", "tools/src"] {
        let mods = modules(&root().join(src));
        assert!(mods.len() > 5, "{src}: no modules read");
        let g = graph(&mods);
        assert!(
            g.values().map(BTreeSet::len).sum::<usize>() > mods.len() / 2,
            "{src}: the import graph was not read"
        );
        assert_eq!(
            circles(&g),
            Vec::<Vec<String>>::new(),
            "{src}: import circles"
        );
    }
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let mut mods = BTreeMap::new();
    mods.insert("a".to_string(), "use crate::b::X;".to_string());
    mods.insert("b".to_string(), "use crate::{c::{self, Y}};".to_string());
    mods.insert("c".to_string(), "fn f() { crate::a::g() }".to_string());
    mods.insert("d".to_string(), "use crate::a;".to_string());
    assert_eq!(circles(&graph(&mods)), vec![vec!["a", "b", "c"]]);
}

/// The engine's actors, by module, and the one each may start besides the engine.
const ACTORS: [&str; 7] = [
    "routing::shards",
    "routing::dispatcher",
    "fl::proxy",
    "fanout::multi_switch",
    "fl::outage_monitor",
    "sync::scheduler",
    "sync::session",
];
const STARTS: [(&str, &str); 2] = [
    ("routing::dispatcher", "fanout::multi_switch"),
    ("sync::scheduler", "sync::session"),
];
/// Above every actor: they start and address them all.
const TOP: [&str; 3] = ["runtime::engine", "testkit", ""];

#[test]
fn actor_files_name_only_the_actors_they_start() {
    let mods = modules(&root().join("actors/src"));
    let g = graph(&mods);
    let actor_of = |m: &str| {
        ACTORS
            .iter()
            .find(|a| m == **a || m.starts_with(&format!("{a}::")))
            .copied()
    };
    let mut checked = 0;
    for (m, deps) in &g {
        if TOP.contains(&m.as_str()) {
            continue;
        }
        for d in deps {
            let Some(target) = actor_of(d) else { continue };
            checked += 1;
            let mine = actor_of(m);
            let allowed = mine.is_some_and(|a| STARTS.contains(&(a, target)));
            assert!(
                allowed,
                "{m} names the actor {target}: send it a message from `messages` instead"
            );
        }
    }
    assert!(checked >= 2, "the starts were not seen ({checked})");
}

#[test]
fn only_the_dialect_names_openkilda_classes() {
    let engine = modules(&root().join("actors/src"));
    let service = modules(&root().join("src"));
    let mut named_in_dialect = 0;
    for (m, code) in &engine {
        let n = code.matches("org.openkilda").count();
        if m == "dialect" || m.starts_with("dialect::") {
            named_in_dialect += n;
            continue;
        }
        assert_eq!(
            n, 0,
            "engine module {m} names an OpenKilda class: it belongs in dialect/"
        );
    }
    for (m, code) in &service {
        assert!(
            !code.contains("org.openkilda"),
            "service module {m} names an OpenKilda class: the engine's dialect owns them"
        );
    }
    assert!(named_in_dialect > 20, "the dialect's classes were not read");
}

#[test]
fn the_service_configuration_is_a_leaf() {
    let service = modules(&root().join("src"));
    let config: Vec<_> = service
        .iter()
        .filter(|(m, _)| *m == "config" || m.starts_with("config::"))
        .collect();
    assert!(config.len() >= 2, "src/config/ not read");
    for (m, code) in config {
        let paths: Vec<String> = crate_paths(code)
            .into_iter()
            .filter(|p| !p.starts_with("config"))
            .collect();
        assert!(paths.is_empty(), "{m} imports the shell: {paths:?}");
    }
}

#[test]
fn the_service_crate_holds_only_the_service() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let deps = manifest
        .split("\n[dependencies]\n")
        .nth(1)
        .and_then(|d| d.split("\n[").next())
        .expect("the service's [dependencies]");
    assert!(deps.contains("fl-router-actors"), "dependencies not read");
    for tooling in ["fl-router-tools", "plotters"] {
        assert!(
            !deps.contains(tooling),
            "the service depends on {tooling:?}: tooling belongs in tools/"
        );
    }
    for (m, code) in modules(&root().join("src")) {
        assert!(
            !code.contains("mocking::MockCluster"),
            "{m}: the embedded Kafka is the demo's (tools/)"
        );
    }
}
