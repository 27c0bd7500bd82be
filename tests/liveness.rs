//! Liveness, outages, recovery and sync sessions on a real Kafka broker: the fl-router binary
//! with the FL simulator (in this process) playing three FLs.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::*;
use fl_router::config::Config;
use fl_router_actors::settings::Classes;
use fl_router_tools::sim::{SimConfig, Simulator};
use rdkafka::ClientConfig;
use serde_json::{json, Value};

const FLS: [&str; 3] = ["fl1", "fl2", "fl3"];
const ALIVE_INTERVAL: Duration = Duration::from_millis(500);
const ALIVE_TIMEOUT: Duration = Duration::from_secs(2);

fn client() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers())
        .set("fetch.wait.max.ms", "20");
    c
}

fn classes() -> Classes {
    Classes::default()
}

fn class(v: &Value) -> &str {
    v["payload"]["clazz"].as_str().unwrap_or_default()
}

async fn world(at_start: bool) -> World {
    World::with(
        &FLS,
        json!({
            "timeouts": {"alive_interval": "500ms", "alive_timeout": "2s", "sync_chain": "3s"},
            "sync": {"at_start": at_start, "retries": 3, "retry_backoff": "200ms", "periodic": "0s"},
        }),
    )
    .await
}

fn sim(w: &World, chain_gap_on: Option<&str>) -> Simulator {
    let config = Config::load(&w.config_path).expect("test config");
    let s = Simulator::start(
        client(),
        &config.settings(),
        &SimConfig {
            switches_per_fl: 2,
            ..SimConfig::default()
        },
    )
    .expect("simulator");
    if let Some(fl) = chain_gap_on {
        s.fl(fl).unwrap().knobs.chain_gaps.store(1, Relaxed);
    }
    s
}

fn is_summary(v: &Value) -> bool {
    class(v) == classes().sync_summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_fl_is_declared_down_then_comes_back_and_is_resynced() {
    let w = world(true).await;
    let events = Reader::new(&w.events);
    let sim = sim(&w, None);
    let _router = w.start_router("router");
    let s = events.until(LONG, is_summary).await;
    assert_eq!(
        s["payload"]["complete"], true,
        "startup sync learned the map: {s}"
    );

    sim.fl("fl2").unwrap().knobs.silent.store(true, Relaxed);
    let t0 = Instant::now();
    let outage = events
        .until(LONG, |v| {
            class(v) == classes().fl_outage_notification && v["payload"]["fl_id"] == "fl2"
        })
        .await;
    let took = t0.elapsed();
    // Evidence stops when fl2 falls silent (give Kafka's round trips a second).
    assert!(
        took <= ALIVE_TIMEOUT + ALIVE_INTERVAL + Duration::from_secs(1),
        "outage seen after {took:?}: {outage}"
    );
    let fl2_switches = sim.fl("fl2").unwrap().switches.clone();
    let mut unmanaged = Vec::new();
    while unmanaged.len() < fl2_switches.len() {
        let v = events
            .until(LONG, |v| {
                class(v) == classes().unmanaged_switch_notification
            })
            .await;
        unmanaged.push(v["payload"]["switch_id"].as_str().unwrap().to_string());
    }
    unmanaged.sort();
    assert_eq!(unmanaged, fl2_switches);

    // Commands for its switches are refused while it is down.
    let p = producer();
    let replies = Reader::new(&w.reply);
    send(
        &p,
        &w.commands,
        None,
        &command("c-down", &fl2_switches[0]),
        Some(&w.reply),
    )
    .await;
    let v = replies.expect(LONG).await.json();
    assert_eq!(error_type(&v), Some("NOT_FOUND"));

    // It comes back: a SyncRequest replayed to it, and its map rebuilt from the chain.
    let fl2_in = Reader::at_end(&w.fl_read("fl2"));
    sim.fl("fl2").unwrap().knobs.silent.store(false, Relaxed);
    fl2_in
        .until(LONG, |v| class(v) == classes().sync_request)
        .await;
    let s = events
        .until(LONG, |v| {
            is_summary(v) && v["payload"]["trigger"] == "recovery"
        })
        .await;
    assert_eq!(s["payload"]["complete"], true);
    assert_eq!(s["payload"]["fls"][0]["fl_id"], "fl2");
    assert_eq!(s["payload"]["fls"][0]["switches"], 2);
    send(
        &p,
        &w.commands,
        None,
        &command("c-up", &fl2_switches[1]),
        Some(&w.reply),
    )
    .await;
    let v = replies.expect(LONG).await.json();
    assert_eq!(
        (cid_of(&v).as_str(), error_type(&v)),
        ("c-up", None),
        "answered by fl2 again: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_with_a_gap_is_requested_again_from_that_fl_alone() {
    let w = world(true).await;
    let events = Reader::new(&w.events);
    let _sim = sim(&w, Some("fl3"));
    let _router = w.start_router("router");
    let s = events.until(LONG, is_summary).await;
    assert_eq!(s["payload"]["complete"], true, "{s}");
    let entry = |fl: &str| {
        s["payload"]["fls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["fl_id"] == fl)
            .unwrap()
            .clone()
    };
    assert_eq!(entry("fl3")["retries"], 1);
    assert_eq!(entry("fl1")["retries"], 0);
    assert_eq!(entry("fl2")["retries"], 0);
    for (fl, want) in [("fl1", 1), ("fl2", 1), ("fl3", 2)] {
        let requests = Reader::new(&w.fl_read(fl))
            .read_to_end()
            .await
            .iter()
            .filter(|m| class(&m.json()) == classes().sync_request)
            .count();
        assert_eq!(requests, want, "SyncRequests sent to {fl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_sync_over_three_fls_proxies_every_chain_message_and_one_summary() {
    let w = world(false).await;
    let events = Reader::new(&w.events);
    let replies = Reader::new(&w.reply);
    let _sim = sim(&w, None);
    let _router = w.start_router("router");
    let req = json!({"clazz": classes().command_message, "correlation_id": "ctl-sync", "timestamp": 1,
                     "payload": {"clazz": classes().sync_request, "dump_id": "ctl-sync"}});
    send(
        &producer(),
        &w.commands,
        None,
        req.to_string().as_bytes(),
        Some(&w.reply),
    )
    .await;
    let s = replies.until(LONG, is_summary).await;
    assert_eq!(s["payload"]["complete"], true, "{s}");
    assert_eq!(s["payload"]["trigger"], "controller");

    let all: Vec<Value> = events
        .read_to_end()
        .await
        .iter()
        .map(|m| m.json())
        .collect();
    let ours = |v: &&Value| v["correlation_id"] == "ctl-sync";
    let chain = all
        .iter()
        .filter(ours)
        .filter(|v| class(v) == classes().network_dump_switch)
        .count();
    assert_eq!(chain, FLS.len() * 2, "every chain message proxied");
    assert_eq!(
        all.iter().filter(ours).filter(|v| is_summary(v)).count(),
        1,
        "one summary"
    );
}
