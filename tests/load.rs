//! Simulator + router + open-loop load on a real Kafka broker: every command sent is accounted
//! for (answered, router error, lost, duplicated), with and without a faulty FL.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use fl_router_tools::load::{LoadConfig, LoadReport, LoadRun};

/// Starts sim and router, waits until a probe command has been answered end to end (router
/// assigned, map warm, simulator answering), runs the load until `commands` were sent, and
/// returns the report.
async fn run(fls: &[&str], silent: Option<&str>, commands: u64) -> LoadReport {
    let w = World::new(fls, "2s").await;
    let (sim, _router) = simulated_network(&w, 3, "router").await;
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
        "{} errors={:?}",
        report.summary_line(),
        report.errors_by_type
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_is_answered_by_a_healthy_simulated_network() {
    let r = run(&["fl1", "fl2", "fl3"], None, 1500).await;
    assert!(r.sent >= 1500);
    assert_eq!(r.lost, 0, "{}", r.summary_line());
    assert_eq!(r.answered, r.sent, "{}", r.summary_line());
    assert_eq!(r.router_errors, 0);
    assert_eq!(r.duplicates, 0);
    assert!(r.p99_ms > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_fl_costs_router_errors_not_lost_commands() {
    let r = run(&["fl1", "fl2", "fl3"], Some("fl2"), 1500).await;
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
