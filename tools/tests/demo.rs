//! The embedded demo as shipped: `fl-router-tools --duration …` (what `cargo run --release` runs) with the repository's config.yaml
//! runs mock Kafka + simulator + router + load and ends with a summary line that accounts for
//! every command. (This test uses librdkafka's mock cluster on purpose: it tests the embedded
//! default itself, not Kafka.)

use std::process::Command;

#[test]
fn shipped_config_runs_the_embedded_demo_and_loses_nothing() {
    let out = Command::new(env!("CARGO_BIN_EXE_fl-router-tools"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["--duration", "6s"])
        .env_remove("FLROUTER_KAFKA_BROKERS")
        .env_remove("FLROUTER_CONFIG")
        .env_remove("RUST_LOG") // the shipped default filter
        .output()
        .expect("run fl-router");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary line, then the trace line, end the output.
    let lines: Vec<&str> = stdout.lines().collect();
    let summary = match lines.as_slice() {
        [.., s, t] if s.starts_with("summary: ") && t.starts_with("trace: slowest=") => *s,
        _ => panic!("no summary and trace lines last:\n{stdout}"),
    };
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
    // A quiet start: no client is given options it does not take.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("CONFWARN")).collect();
    assert!(
        warnings.is_empty(),
        "librdkafka configuration warnings: {warnings:#?}"
    );
    // One line per thing: the admin API's address once (not actix's workers and runtime), the
    // topics created in one line.
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("admin API listening"))
            .count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("actix_server"), "{stderr}");
    assert!(
        stderr
            .lines()
            .filter(|l| l.contains("topics created"))
            .count()
            <= 1
            && !stderr.contains("topic created"),
        "topics created, in one line:\n{stderr}"
    );
}

/// The embedded demo with its admin API on an OS-chosen port and a token, for chaos.
fn embedded_config(dir: &std::path::Path) -> std::path::PathBuf {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config.yaml")).unwrap();
    let mut v: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    v["admin"] = serde_json::json!({"enabled": true, "bind": "127.0.0.1:0", "token": "t0k"});
    let path = dir.join("config.yaml");
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
    path
}

#[test]
fn embedded_broker_down_scenario_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path());
    let log = dir.path().join("router.log");
    let child = Command::new(env!("CARGO_BIN_EXE_fl-router-tools"))
        .args(["--duration", "25s", "--config"])
        .arg(&config)
        .env_remove("FLROUTER_KAFKA_BROKERS")
        .env_remove("FLROUTER_ADMIN_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("run fl-router");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let admin = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(u) = text
            .lines()
            .find_map(|l| l.split("admin API listening on ").nth(1))
        {
            break u.trim().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no admin URL:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/embedded-broker-down.yaml"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_fl-router-tools"))
        .args([
            "chaos", "run", scenario, "--admin", &admin, "--token", "t0k",
        ])
        .output()
        .expect("run chaos");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let run = child.wait_with_output().expect("router output");
    let summary = String::from_utf8_lossy(&run.stdout)
        .lines()
        .find(|l| l.starts_with("summary: "))
        .unwrap_or_default()
        .to_string();
    assert!(
        out.status.success(),
        "{text}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        summary.starts_with("summary: ") && summary.contains(" lost=0 "),
        "{summary}"
    );
}
