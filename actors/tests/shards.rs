//! The engine over several shards (threads), in real time: commands are handled by the shard
//! of their input partition, each switch's commands keep their order whether they go straight
//! to an FL proxy or detour through the dispatcher, and routing follows the switch map.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fl_router_actors::runtime::outbox::Origin;
use fl_router_actors::testkit::{body, quiet_settings, start_recorded, Recorded};
use fl_router_actors::{Engine, Inbound, Settings};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(5);
const SWITCHES: [&str; 4] = [
    "00:00:00:00:00:00:00:01",
    "00:00:00:00:00:00:00:02",
    "00:00:00:00:00:00:00:03",
    "00:00:00:00:00:00:00:04",
];

fn settings(shards: usize) -> Settings {
    let mut s = quiet_settings(&["a", "b"]);
    s.engine.shards = shards;
    s
}

fn command(cid: &str, switch: &str, partition: i32, offset: i64) -> Inbound {
    let payload =
        json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":cid,
        "timestamp":1,"payload":{"clazz":"org.example.DumpRules","switch_id":switch}})
        .to_string();
    let mut msg = Inbound::new(payload);
    msg.origin = Some(Origin {
        topic: Arc::from("kilda.speaker"),
        partition,
        offset,
        timestamp_ms: None,
    });
    msg
}

async fn switch_event(engine: &Engine, rec: &mut Recorded, fl: &str, switch: &str, state: &str) {
    let ev = json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":"ev","timestamp":1,
        "payload":{"clazz":"org.openkilda.messaging.info.event.SwitchInfoData","switch_id":switch,"state":state}});
    engine
        .fl_output(fl, Inbound::new(ev.to_string()))
        .await
        .unwrap();
    // The event (or the notice it turns into) reaches the controller once the map has it.
    let events = engine.settings().topics.events.clone();
    rec.until(WAIT, |o| *o.topic == *events).await;
}

/// (FL read topic, correlation id) of the next `n` forwarded commands.
async fn forwards(engine: &Engine, rec: &mut Recorded, n: usize) -> Vec<(String, String)> {
    let read_a = &engine.settings().topics.fl_read_topics("a")[0];
    let read_b = &engine.settings().topics.fl_read_topics("b")[0];
    let mut out = Vec::new();
    while out.len() < n {
        let o = rec.next_within(WAIT).await;
        let fl = if *o.topic == *read_a {
            "a"
        } else if *o.topic == *read_b {
            "b"
        } else if *o.topic == *engine.settings().topics.switch_map {
            continue; // a map record of the events above
        } else {
            panic!("unexpected output on {}: {}", o.topic, body(&o));
        };
        let cid = body(&o)["correlation_id"].as_str().unwrap().to_string();
        out.push((fl.to_string(), cid));
    }
    out
}

#[actix_rt::test]
async fn each_partition_goes_to_its_shard_and_each_switch_keeps_its_order() {
    let (engine, mut rec) = start_recorded(settings(3));
    assert_eq!(engine.shard_count(), 3);
    for (i, sw) in SWITCHES.iter().enumerate() {
        let fl = if i % 2 == 0 { "a" } else { "b" };
        switch_event(&engine, &mut rec, fl, sw, "ACTIVATED").await;
    }
    let n = 400;
    for i in 0..n {
        let sw = SWITCHES[i % 4];
        engine
            .command(command(&format!("c{i}"), sw, (i % 5) as i32, i as i64))
            .await
            .unwrap();
    }
    let seen = forwards(&engine, &mut rec, n).await;
    // Per (partition, switch): forwarded in the order read. Each command to its switch's FL.
    let mut last: HashMap<(usize, usize), usize> = HashMap::new();
    for (fl, cid) in &seen {
        let i: usize = cid[1..].parse().unwrap();
        let expected_fl = if i % 4 % 2 == 0 { "a" } else { "b" };
        assert_eq!(fl, expected_fl, "{cid} went to the wrong FL");
        let key = (i % 5, i % 4);
        if let Some(prev) = last.insert(key, i) {
            assert!(
                prev < i,
                "{cid} overtook c{prev} (partition {}, switch {})",
                key.0,
                key.1
            );
        }
    }
    let rows = engine.mailboxes(false);
    let shards: Vec<_> = rows.iter().filter(|r| r.kind == "command_shard").collect();
    assert_eq!(shards.len(), 3);
    // Partitions 0..5 over 3 shards: 0,3 → shard 0; 1,4 → shard 1; 2 → shard 2.
    let by_id: HashMap<&str, u64> = shards.iter().map(|r| (r.id.as_str(), r.received)).collect();
    assert_eq!(
        (by_id["shard-0"], by_id["shard-1"], by_id["shard-2"]),
        (160, 160, 80)
    );
    let d = rows.iter().find(|r| r.kind == "dispatcher").unwrap();
    assert_eq!(
        d.received, 4,
        "only the four switch events: no command detoured"
    );
}

#[actix_rt::test]
async fn a_switch_that_waits_for_a_reconnect_keeps_its_order_across_both_paths() {
    // Enough commands that some reach the shard after the route is published while earlier
    // ones still queue in the dispatcher.
    const N: usize = 1000;
    let mut s = settings(2);
    s.failover.grace = Duration::from_secs(30);
    let (engine, mut rec) = start_recorded(s);
    let sw = SWITCHES[0];
    switch_event(&engine, &mut rec, "a", sw, "ACTIVATED").await;
    switch_event(&engine, &mut rec, "a", sw, "DEACTIVATED").await;
    // No active FL: these wait in the dispatcher's grace window.
    for i in 0..50 {
        engine
            .command(command(&format!("c{i}"), sw, 0, i))
            .await
            .unwrap();
    }
    // The switch comes back on b; the next commands race the dispatcher's release.
    let ev = json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":"ev","timestamp":1,
        "payload":{"clazz":"org.openkilda.messaging.info.event.SwitchInfoData","switch_id":sw,"state":"ACTIVATED"}});
    // Sent without waiting for each other, behind the event: some are detoured (no route
    // yet, or behind a detour), the rest go straight to b once the route is published.
    let reconnect = engine.fl_output("b", Inbound::new(ev.to_string()));
    let burst: Vec<_> = (50..N as i64)
        .map(|i| engine.command(command(&format!("c{i}"), sw, 0, i)))
        .collect();
    let (r, sent) = tokio::join!(reconnect, futures::future::join_all(burst));
    r.unwrap();
    assert!(sent.iter().all(Result::is_ok));
    let mut seen = Vec::new();
    while seen.len() < N {
        let o = rec.next_within(WAIT).await;
        if *o.topic == *engine.settings().topics.fl_read_topics("b")[0] {
            seen.push(body(&o)["correlation_id"].as_str().unwrap().to_string());
        }
    }
    let expected: Vec<String> = (0..N).map(|i| format!("c{i}")).collect();
    assert_eq!(seen, expected, "forwarded to b in the order read");
    let rows = engine.mailboxes(false);
    let d = rows.iter().find(|r| r.kind == "dispatcher").unwrap();
    assert!(
        d.received >= 53,
        "the 50 waiting commands detoured through the dispatcher (and 3 events): {}",
        d.received
    );
}

/// Deterministic (one shard: shard, dispatcher and proxies on the test's thread): a command
/// that must follow every earlier one (a multi-switch command, `Order::All`) detours through
/// the dispatcher; a single-switch command read right after it in the same batch would take
/// the direct path and reach the proxy first. The shard's detour bookkeeping makes it follow.
#[actix_rt::test]
async fn a_command_read_after_a_detour_in_the_same_batch_does_not_overtake_it() {
    let (engine, mut rec) = start_recorded(settings(1));
    switch_event(&engine, &mut rec, "a", SWITCHES[0], "ACTIVATED").await;
    switch_event(&engine, &mut rec, "a", SWITCHES[1], "ACTIVATED").await;
    let mut multi = Inbound::new(
        json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":"m1",
            "timestamp":1,"payload":{"clazz":"org.example.DumpRules",
            "switch_id":[SWITCHES[0], SWITCHES[1]]}})
        .to_string(),
    );
    multi.origin = command("x", SWITCHES[0], 0, 0).origin;
    engine
        .commands(vec![multi, command("s1", SWITCHES[0], 0, 1)])
        .await
        .unwrap();
    let seen = forwards(&engine, &mut rec, 2).await;
    assert_eq!(
        seen,
        vec![
            ("a".to_string(), "m1".to_string()),
            ("a".to_string(), "s1".to_string())
        ],
        "the single-switch command follows the multi-switch part read before it"
    );
    // Both were read from one partition: the later one detoured too.
    let d = engine
        .mailboxes(false)
        .into_iter()
        .find(|r| r.kind == "dispatcher")
        .unwrap();
    assert_eq!(d.received, 2 + 2, "two switch events and both commands");
}
