//! The embedded default as shipped: `fl-router --duration …` with the repository's config.yaml
//! runs mock Kafka + simulator + router + load and ends with a summary line that accounts for
//! every command. (This test uses librdkafka's mock cluster on purpose: it tests the embedded
//! default itself, not Kafka.)

use std::process::Command;

#[test]
fn shipped_config_runs_the_embedded_demo_and_loses_nothing() {
    let out = Command::new(env!("CARGO_BIN_EXE_fl-router"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--duration", "6s"])
        .env_remove("FLROUTER_KAFKA_BROKERS")
        .env_remove("FLROUTER_CONFIG")
        .output()
        .expect("run fl-router");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout
        .lines()
        .last()
        .filter(|l| l.starts_with("summary: "))
        .unwrap_or_else(|| panic!("no summary line last:\n{stdout}"));
    let field = |name: &str| -> f64 {
        summary
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {summary}"))
    };
    for name in [
        "sent",
        "answered",
        "router_errors",
        "lost",
        "duplicates",
        "p50_ms",
        "p99_ms",
        "p999_ms",
    ] {
        field(name);
    }
    assert!(field("sent") >= 500.0, "{summary}");
    assert_eq!(field("lost"), 0.0, "{summary}");
    assert_eq!(
        field("answered") + field("router_errors"),
        field("sent"),
        "{summary}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("t=1s ") && l.contains("fls_online=2/2")),
        "status lines:\n{stdout}"
    );
}
