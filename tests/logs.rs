//! Log lines as an operator's tools read them (binary, real broker): plain text without colour
//! codes when stderr is a file (the journal, a log file), and `--log-format json` as one JSON
//! object per line with the same fields.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_file_gets_plain_text_and_json_when_asked() {
    let w = World::new(&["fl1"], "5s").await;

    let text = w.start_router("text");
    text.ready().await;
    let log = text.log_text();
    assert!(log.contains("router ready"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a log file:\n{log}"
    );
    drop(text);

    let json = w.start_router_with("json", &["--log-format", "json"]);
    json.ready().await;
    let log = json.log_text();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let ready = lines
        .iter()
        .find(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("router ready"))
        })
        .unwrap_or_else(|| panic!("no `router ready` object in:\n{log}"));
    assert!(
        ready["level"].is_string() && ready["timestamp"].is_string(),
        "{ready}"
    );
    assert!(
        lines
            .iter()
            .any(|v| v["fields"]["brokers"].is_string() && v["fields"]["fls"].is_number()),
        "the start line keeps its fields:\n{log}"
    );
}

/// A switch-map topic made without compaction (by hand, by another tool) is named at start,
/// with what to do: retention would delete stored switches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_map_topic_without_compaction_is_reported_at_start() {
    let w = World::new(&["fl1"], "5s").await;
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&w.config_path).unwrap()).unwrap();
    let topic = config["topics"]["switch_map"].as_str().unwrap().to_string();
    create_topics(std::slice::from_ref(&topic)).await;
    let router = w.start_router("router");
    router.ready().await;
    let log = router.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("is not compacted"))
        .unwrap_or_else(|| panic!("no warning about {topic}:\n{log}"));
    assert!(
        line.contains(&topic) && line.contains("cleanup.policy=compact"),
        "{line}"
    );
}

/// `--version` names the build: the commit and the librdkafka it links.
#[test]
fn the_version_names_the_commit_and_librdkafka() {
    let out = std::process::Command::new(service_binary())
        .arg("--version")
        .output()
        .expect("run fl-router --version");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("fl-router "), "{text}");
    assert!(
        text.contains("(commit ") && text.contains("librdkafka 2."),
        "{text}"
    );
}
