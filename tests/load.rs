//! Simulator + router + open-loop load on a real Kafka broker: every command sent is accounted
//! for (answered, router error, lost, duplicated), with and without a faulty FL.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use fl_router_tools::load::{LoadConfig, LoadReport, LoadRun};
use serde_json::Value;

/// Starts sim and router, waits until a probe command has been answered end to end (router
/// assigned, map warm, simulator answering), runs the load until `commands` were sent, and
/// returns the report with the router's trace (`GET /api/commands/{id}`) of each id the
/// report names to trace.
async fn run(fls: &[&str], silent: Option<&str>, commands: u64) -> (LoadReport, Vec<Value>) {
    let w = World::new(fls, "2s").await;
    let (sim, router) = simulated_network(&w, 3, "router").await;
    let admin = router.admin_url().await;
    if let Some(fl) = silent {
        sim.fl(fl)
            .expect("silent FL")
            .knobs
            .silent
            .store(true, Relaxed);
    }
    let load = LoadRun::start(
        sim_client(),
        w.commands.clone(),
        sim.switches(),
        LoadConfig {
            rate: 500.0,
            grace: Duration::from_secs(10),
            reply_topic: w.reply.clone(),
            unknown_switch_fraction: 0.0,
            ..LoadConfig::default()
        },
        fl_router_actors::settings::Classes::default(),
    )
    .expect("load");
    tokio::time::timeout(LONG, async {
        while load.stats().sent.load(Relaxed) < commands {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("load sends");
    let report = tokio::task::spawn_blocking(move || load.finish())
        .await
        .unwrap()
        .unwrap();
    drop(sim);
    eprintln!(
        "{} errors={:?}\n{:?}",
        report.summary_line(),
        report.errors_by_type,
        report.trace_line()
    );
    let mut traces = Vec::new();
    for cid in [&report.trace.slowest, &report.trace.first_error]
        .into_iter()
        .flatten()
    {
        let url = format!("{admin}/api/commands/{cid}");
        let (status, life) = tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let mut r = agent.get(url).call().expect("admin reachable");
            (
                r.status().as_u16(),
                r.body_mut().read_json::<Value>().unwrap_or_default(),
            )
        })
        .await
        .unwrap();
        assert_eq!(status, 200, "{cid}: {life}");
        traces.push(life);
    }
    (report, traces)
}

fn steps(life: &Value) -> Vec<&str> {
    life["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["step"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_is_answered_by_a_healthy_simulated_network() {
    let (r, traces) = run(&["fl1", "fl2", "fl3"], None, 1500).await;
    assert!(r.sent >= 1500);
    // The slowest command's id is printed, and the router can show its life.
    let slowest = r.trace.slowest.as_deref().expect("a slowest id");
    assert!(r.trace_line().unwrap().contains(slowest));
    assert_eq!((&r.trace.first_error, &r.trace.first_lost), (&None, &None));
    assert!(steps(&traces[0]).contains(&"answered"), "{}", traces[0]);
    assert_eq!(r.lost, 0, "{}", r.summary_line());
    assert_eq!(r.answered, r.sent, "{}", r.summary_line());
    assert_eq!(r.router_errors, 0);
    assert_eq!(r.duplicates, 0);
    assert!(r.p99_ms > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_fl_costs_router_errors_not_lost_commands() {
    let (r, traces) = run(&["fl1", "fl2", "fl3"], Some("fl2"), 1500).await;
    // The first router error's id is printed; its life shows the router's answer.
    let first_error = r.trace.first_error.as_deref().expect("a first error id");
    assert!(r.trace_line().unwrap().contains(first_error));
    assert!(
        steps(&traces[1]).contains(&"router_answered"),
        "{}",
        traces[1]
    );
    assert_eq!(r.lost, 0, "{}", r.summary_line());
    assert_eq!(r.answered + r.router_errors, r.sent);
    // Switches are used round-robin, so a third of the commands went to the silent FL.
    let third = r.sent / 3;
    assert!(r.router_errors.abs_diff(third) <= 1, "{}", r.summary_line());
    assert_eq!(
        r.errors_by_type.get("OPERATION_TIMED_OUT"),
        Some(&r.router_errors)
    );
    assert_eq!(r.duplicates, 0);
}
