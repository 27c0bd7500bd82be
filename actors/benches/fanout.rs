//! Cost of a 1,000-switch multi-switch command in the engine (no Kafka): 10 FLs x 100 switches.
//! Prints time per fan-out (split, 10 parts forwarded, 10 answers collected, one result
//! assembled), bytes allocated per fan-out, and the heap held per in-flight command (and that
//! it is returned once the commands complete).
//!
//!   cargo bench -p fl-router-actors --bench fanout

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use fl_router_actors::testkit::{quiet_settings, recording_outbox, Recorded};
use fl_router_actors::{Engine, Inbound};
use serde_json::json;

#[path = "common/counting.rs"]
mod counting;
use counting::{Counting, ALLOCATED, LIVE};

#[global_allocator]
static GLOBAL: Counting = Counting;

const FLS: usize = 10;
const PER_FL: usize = 100;

fn switch(fl: usize, j: usize) -> String {
    format!("00:00:00:00:00:{:02x}:00:{:02x}", fl + 1, j)
}

fn info(cid: &str, payload: serde_json::Value) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":cid,"timestamp":1,"payload":payload})
        .to_string()
        .into_bytes()
}

async fn setup() -> (Engine, Recorded, Vec<String>) {
    let ids: Vec<String> = (0..FLS).map(|i| format!("fl{i}")).collect();
    let s = quiet_settings(&ids.iter().map(String::as_str).collect::<Vec<_>>());
    let (outbox, mut rec) = recording_outbox();
    let engine = Engine::start(s, outbox).expect("settings");
    let mut all = Vec::new();
    for fl in 0..FLS {
        for j in 0..PER_FL {
            let sw = switch(fl, j);
            let ev = info(
                "ev",
                json!({"clazz":"org.openkilda.messaging.info.event.SwitchInfoData","switch_id":sw,"state":"ACTIVATED"}),
            );
            engine
                .fl_output(&format!("fl{fl}"), Inbound::new(ev))
                .await
                .unwrap();
            all.push(sw);
        }
    }
    rec.drain();
    (engine, rec, all)
}

fn command(cid: &str, switches: &[String]) -> String {
    json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":cid,"timestamp":1,
           "payload":{"clazz":"DumpRules","switch_id":switches}})
    .to_string()
}

/// One fan-out: send, answer each part as an FL would, wait for the result.
async fn fan_out(engine: &Engine, rec: &mut Recorded, cid: &str, all: &[String]) {
    engine
        .command(Inbound::new(command(cid, all)).reply_to("r"))
        .await
        .unwrap();
    let mut parts = 0;
    while parts < FLS {
        let o = rec.next_within(Duration::from_secs(10)).await;
        if let Some(fl) = o.topic.strip_prefix("kilda.speaker_") {
            engine
                .fl_output(fl, Inbound::new(info(cid, json!({"clazz":"Rules","n":1}))))
                .await
                .unwrap();
            parts += 1;
        }
    }
    loop {
        let o = rec.next_within(Duration::from_secs(10)).await;
        if *o.topic == *"r" {
            break;
        }
    }
}

fn main() {
    actix_rt::System::new().block_on(async {
        let (engine, mut rec, all) = setup().await;
        for i in 0..200 {
            fan_out(&engine, &mut rec, &format!("warm{i}"), &all).await;
        }
        let n = 2000;
        let mut times = Vec::with_capacity(n);
        let alloc0 = ALLOCATED.load(Relaxed);
        for i in 0..n {
            let t = Instant::now();
            fan_out(&engine, &mut rec, &format!("c{i}"), &all).await;
            times.push(t.elapsed());
        }
        let alloc = (ALLOCATED.load(Relaxed) - alloc0) / n as u64;
        times.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let mean = times.iter().map(|d| us(*d)).sum::<f64>() / n as f64;
        println!("fan-out of {} switches over {FLS} FLs, {n} runs:", FLS * PER_FL);
        println!("  time per fan-out: mean {mean:.0} us, p50 {:.0} us, p99 {:.0} us", us(times[n / 2]), us(times[n * 99 / 100]));
        println!("  allocated per fan-out: {} KiB", alloc / 1024);

        // Memory held while commands are in flight, and returned when they complete.
        rec.drain();
        let inflight = 200;
        let live0 = LIVE.load(Relaxed);
        for i in 0..inflight {
            engine.command(Inbound::new(command(&format!("f{i}"), &all)).reply_to("r")).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let outputs = rec.drain(); // forwarded parts (kept here so they are not counted as state)
        let held = (LIVE.load(Relaxed) - live0) as f64 / inflight as f64;
        let part_bytes: usize = outputs.iter().map(|o| o.payload.len()).sum::<usize>() / inflight;
        for o in &outputs {
            if let Some(fl) = o.topic.strip_prefix("kilda.speaker_") {
                let cid = serde_json::from_slice::<serde_json::Value>(&o.payload).unwrap()["correlation_id"].as_str().unwrap().to_string();
                engine.fl_output(fl, Inbound::new(info(&cid, json!({"clazz":"Rules"})))).await.unwrap();
            }
        }
        drop(outputs);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let results = rec.drain().iter().filter(|o| *o.topic == *"r").count();
        drop(rec);
        let after = (LIVE.load(Relaxed) - live0) as f64 / inflight as f64;
        println!(
            "  heap per in-flight command: {:.0} KiB (incl. {:.0} KiB of forwarded parts awaiting delivery); after completion: {:.1} KiB ({results} results)",
            held / 1024.0,
            part_bytes as f64 / 1024.0,
            after / 1024.0
        );
    });
}
