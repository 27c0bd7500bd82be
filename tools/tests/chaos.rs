//! Every shipped chaos scenario, run by the real `fl-router-tools chaos run` against the router binary
//! with simulated FLs and load in its process, on a real Kafka broker; and a scenario that must
//! fail, so a passing run means something.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::process::Command;

use common::*;
use serde_json::json;

const TOKEN: &str = "chaos-test-token";

/// Scenarios have second-scale time windows: one at a time, so seven routers with their
/// simulators and loads do not compete for two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn world(sim: serde_json::Value, failover: serde_json::Value) -> World {
    let w = World::with(
        &["fl1", "fl2", "fl3"],
        json!({
            "timeouts": {"ack": "1s", "answer": "2s", "alive_interval": "500ms", "alive_timeout": "2s", "sync_chain": "3s"},
            "sync": {"at_start": true, "periodic": "0s", "retry_backoff": "200ms"},
            "sim": sim,
            "failover": failover,
            "load": {"rate": 100, "grace": "5s"},
            "admin": {"token": TOKEN},
        }),
    )
    .await;
    // The load's reply topic is the world's reply topic.
    let text = std::fs::read_to_string(&w.config_path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["load"]["reply_topic"] = json!(w.reply);
    std::fs::write(&w.config_path, v.to_string()).unwrap();
    w
}

/// Runs `scenario` against a fresh router; returns (success, output).
async fn chaos(scenario: &str) -> (bool, String) {
    chaos_with(scenario, json!({"switches_per_fl": 3}), json!({})).await
}

/// Runs `scenario` against a fresh router configured with these `sim` and `failover` sections.
async fn chaos_with(
    scenario: &str,
    sim: serde_json::Value,
    failover: serde_json::Value,
) -> (bool, String) {
    let _one_at_a_time = SERIAL.lock().await;
    let w = world(sim, failover).await;
    let router = w.start_stage("router");
    let admin = router.admin_url().await;
    let path = scenario.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_fl-router-tools"))
            .args(["chaos", "run", &path, "--admin", &admin, "--token", TOKEN])
            .env_remove("FLROUTER_ADMIN_TOKEN")
            .output()
            .expect("run chaos")
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    drop(router);
    (out.status.success(), text)
}

async fn scenario_passes(name: &str) {
    let (ok, text) = chaos(&format!(
        "{}/../scenarios/{name}.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .await;
    assert!(ok, "scenario {name} failed:\n{text}");
    assert!(text.contains("chaos: all expectations met"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_active_fl_killed() {
    let path = format!(
        "{}/../scenarios/active-fl-killed.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let sim = json!({"switches_per_fl": 3, "connections": [{"fl": "fl2", "switches_of": "fl1"}]});
    // fl1 is active for its switches whichever FL's connect event is read first.
    let failover = json!({"prefer": ["fl1"], "return_home": true});
    let (ok, text) = chaos_with(&path, sim, failover).await;
    assert!(ok, "scenario active-fl-killed failed:\n{text}");
    assert!(text.contains("chaos: all expectations met"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_silent_fl() {
    scenario_passes("silent-fl").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_proxy_restart() {
    scenario_passes("proxy-restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_outage_monitor_restart() {
    scenario_passes("outage-monitor-restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_lost_writes() {
    scenario_passes("lost-writes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_slow_lossy_fl() {
    scenario_passes("slow-lossy-fl").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmet_expectation_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("impossible.yaml");
    std::fs::write(
        &path,
        "name: impossible\nduration: 2s\nexpect:\n  - fl_offline: {fl: fl1, within: 1s}\n",
    )
    .unwrap();
    let (ok, text) = chaos(path.to_str().unwrap()).await;
    assert!(!ok, "a healthy fl1 is not offline:\n{text}");
    assert!(text.contains("FAIL fl1 offline never seen"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_producer_pause() {
    scenario_passes("producer-pause").await;
}
