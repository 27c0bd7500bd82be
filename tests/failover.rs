//! Failover on a real Kafka broker: two simulated FLs are both read-write connected to the same
//! 100 switches; under 1,000 commands/s the active FL falls silent. The router must declare the
//! outage, move every switch to the standby FL at once, and answer every command: those caught
//! on the silent FL with its error, every one after the failover by the standby FL.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use fl_router::config::Config;
use fl_router_actors::settings::Classes;
use fl_router_tools::sim::{ExtraConnection, SimConfig, Simulator};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use serde_json::{json, Value};

const SWITCHES: usize = 100;
const RATE: u64 = 1_000;
const RUN: Duration = Duration::from_secs(10);
const SILENCE_AT: Duration = Duration::from_secs(3);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Fl(String),
    Error(String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silencing_the_active_fl_fails_over_to_the_standby_and_loses_nothing() {
    let w = World::with(
        &["fl1", "fl2"],
        json!({
            "timeouts": {"ack": "5s", "alive_interval": "500ms", "alive_timeout": "2s", "sync_chain": "5s"},
            "sync": {"at_start": true, "periodic": "0s"},
            // fl1 is active for its switches whichever connect event is read first.
            "failover": {"prefer": ["fl1"], "return_home": true},
        }),
    )
    .await;
    let classes = Classes::default();
    let events = Reader::new(&w.events);
    let config = Config::load(&w.config_path).expect("test config");
    let sim = Simulator::start(
        sim_client(),
        &config.settings(),
        &SimConfig {
            switches_per_fl: SWITCHES,
            connections: vec![ExtraConnection {
                fl: "fl2".into(),
                switches_of: "fl1".into(),
                read_only: false,
            }],
            ..SimConfig::default()
        },
    )
    .expect("simulator");
    let switches = sim.fl("fl1").unwrap().switches.clone();
    let router = w.start_router("router");
    let admin = router.admin_url().await;

    // Warm: fl1 active and fl2 standby for all 100 shared switches.
    let warm_by = Instant::now() + LONG;
    loop {
        let fls: Value = reqwest_json(&format!("{admin}/api/fls")).await;
        let row = |fl: &str| {
            let r = fls
                .as_array()
                .and_then(|a| a.iter().find(|r| r["fl"] == fl).cloned())
                .unwrap_or(Value::Null);
            (r["switches"].as_u64(), r["standby_switches"].as_u64())
        };
        if row("fl1") == (Some(SWITCHES as u64), Some(0))
            && row("fl2") == (Some(SWITCHES as u64), Some(SWITCHES as u64))
        {
            break;
        }
        assert!(Instant::now() < warm_by, "never warm: {fls}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let view: Value = reqwest_json(&format!("{admin}/api/switches/{}", switches[0])).await;
    assert_eq!(view["fl_id"], "fl1", "{view}");
    assert_eq!(view["connections"].as_array().unwrap().len(), 2, "{view}");

    // Answers, first outcome per command.
    let replies = Reader::at_end(&w.reply);
    let outcomes: Arc<Mutex<HashMap<String, Outcome>>> = Arc::default();
    let conflicts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let (outcomes, conflicts) = (outcomes.clone(), conflicts.clone());
        tokio::spawn(async move {
            while let Some(m) = replies.next(Duration::from_secs(30)).await {
                let v = m.json();
                let outcome = match error_type(&v) {
                    Some(t) => Outcome::Error(t.to_string()),
                    None => Outcome::Fl(v["payload"]["fl"].as_str().unwrap_or("?").to_string()),
                };
                let mut o = outcomes.lock().unwrap();
                match o.get(&cid_of(&v)) {
                    Some(first) if *first != outcome => {
                        conflicts.fetch_add(1, Relaxed);
                    }
                    Some(_) => {}
                    None => {
                        o.insert(cid_of(&v), outcome);
                    }
                }
            }
        })
    };

    // Open-loop load: one command per millisecond, round robin over the shared switches.
    let p = producer();
    let started = Instant::now();
    let mut sent: Vec<(String, u64)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let mut silenced_ms = None;
    let mut deliveries = Vec::new();
    while started.elapsed() < RUN {
        tick.tick().await;
        if silenced_ms.is_none() && started.elapsed() >= SILENCE_AT {
            sim.fl("fl1").unwrap().knobs.silent.store(true, Relaxed);
            silenced_ms = Some(now_ms());
        }
        let cid = format!("fo-{}", sent.len());
        let sw = &switches[sent.len() % SWITCHES];
        let body = command(&cid, sw);
        let rec = FutureRecord::<str, [u8]>::to(&w.commands)
            .key(&cid)
            .payload(&body)
            .headers(OwnedHeaders::new().insert(Header {
                key: "reply_to",
                value: Some(&w.reply),
            }));
        match p.send_result(rec) {
            Ok(d) => deliveries.push(d),
            Err((e, _)) => panic!("produce: {e}"),
        }
        sent.push((cid, now_ms()));
    }
    for d in deliveries {
        d.await.expect("delivery").expect("delivered");
    }
    let silenced_ms = silenced_ms.unwrap();

    // Every command answered (wait for the stragglers: the silent FL's pending ones fail fast).
    let all_by = Instant::now() + Duration::from_secs(20);
    while outcomes.lock().unwrap().len() < sent.len() && Instant::now() < all_by {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reader.abort();
    let outcomes = outcomes.lock().unwrap().clone();
    let lost: Vec<&String> = sent
        .iter()
        .map(|(c, _)| c)
        .filter(|c| !outcomes.contains_key(*c))
        .collect();

    // The router's own timeline, from its notices' timestamps.
    let mut outage_ms = None;
    let mut failover_ms = None;
    for m in events.read_to_end().await {
        let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
        let class = v["payload"]["clazz"].as_str().unwrap_or_default();
        if class == classes.fl_outage_notification && v["payload"]["fl_id"] == "fl1" {
            outage_ms.get_or_insert(v["timestamp"].as_u64().unwrap());
        }
        let master_fl2 = v["payload"]["availabilityData"]["connections"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["regionName"] == "fl2" && c["master"] == true)
            });
        if class == classes.switch_availability_notification && master_fl2 {
            failover_ms.get_or_insert(v["timestamp"].as_u64().unwrap());
        }
    }
    let outage_ms = outage_ms.expect("fl1's outage declared");
    let failover_ms = failover_ms.expect("switches failed over to fl2");
    let first_to_standby = sent
        .iter()
        .filter(|(c, _)| outcomes.get(c) == Some(&Outcome::Fl("fl2".into())))
        .map(|(_, at)| *at)
        .min()
        .expect("some command answered by fl2");
    let after_failover: Vec<&(String, u64)> =
        sent.iter().filter(|(_, at)| *at > failover_ms).collect();
    let not_by_standby: Vec<(&String, Option<&Outcome>)> = after_failover
        .iter()
        .filter(|(c, _)| outcomes.get(c) != Some(&Outcome::Fl("fl2".into())))
        .map(|(c, _)| (c, outcomes.get(c)))
        .collect();
    let errors = outcomes
        .values()
        .filter(|o| matches!(o, Outcome::Error(_)))
        .count();
    let failovers: u64 = reqwest_json(&format!("{admin}/api/stats")).await["failovers"]
        .as_u64()
        .unwrap_or(0);
    eprintln!(
        "failover: {} sent at {RATE}/s, {} lost, {errors} answered by the router (caught on the silent FL), \
         {} conflicting; silence → outage declared {} ms; outage → all {failovers} switches failed over {} ms; \
         first command answered by the standby sent {} ms after the outage was declared; {} commands sent after the \
         failover, all answered by the standby: {}",
        sent.len(),
        lost.len(),
        conflicts.load(Relaxed),
        outage_ms.saturating_sub(silenced_ms),
        failover_ms as i64 - outage_ms as i64,
        first_to_standby as i64 - outage_ms as i64,
        after_failover.len(),
        not_by_standby.is_empty(),
    );
    assert!(
        lost.is_empty(),
        "{} lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert_eq!(conflicts.load(Relaxed), 0, "one outcome per command");
    assert!(
        after_failover.len() >= 500,
        "the run went on well past the failover ({} commands after it)",
        after_failover.len()
    );
    assert!(
        not_by_standby.is_empty(),
        "every command after the failover answered by fl2: {:?}",
        &not_by_standby[..not_by_standby.len().min(5)]
    );
    assert_eq!(
        failovers, SWITCHES as u64,
        "each shared switch failed over once"
    );
    let view: Value = reqwest_json(&format!("{admin}/api/switches/{}", switches[0])).await;
    assert_eq!(view["fl_id"], "fl2", "{view}");
    drop(router);
}

async fn reqwest_json(url: &str) -> Value {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        ureq::get(&url)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
            .unwrap_or(Value::Null)
    })
    .await
    .unwrap()
}
