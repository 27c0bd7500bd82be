//! The OpenKilda dialect's switch notices, in-process: OpenKilda's `SwitchConnectNotification`,
//! `SwitchAvailabilityUpdateNotification` and `SwitchDisconnectNotification{regionOffline}` as
//! its floodlightrouter sends them (`SwitchMonitor`), never a raw connection event, and the
//! router's own notices on a topic of its own.

use std::time::Duration;

use fl_router_actors::settings::Classes;
use fl_router_actors::settings::Dialect;
use fl_router_actors::testkit::{body, class_of, quiet_settings, start_recorded, Recorded};
use fl_router_actors::{Engine, Inbound, Outgoing, Settings};
use serde_json::{json, Value};

const S1: &str = "00:00:00:00:00:00:00:01";
const S2: &str = "00:00:00:00:00:00:00:02";
const EVENTS: &str = "kilda.topo.disco.storm";
const NOTICES: &str = "kilda.flrouter.notices";
const LONG: Duration = Duration::from_secs(60);

fn classes() -> Classes {
    Classes::default()
}

fn settings() -> Settings {
    let mut s = quiet_settings(&["1", "2", "1.stats"]);
    s.protocol.dialect = Dialect::OpenKilda;
    s.topics.notices = Some(NOTICES.into());
    s.failover.prefer = vec!["1".into(), "2".into()];
    s
}

fn view(sw: &str, host: u8) -> Value {
    json!({"datapath": sw, "switch-socket": {"address": format!("192.0.2.{host}"), "port": 41234},
           "speaker-socket": {"address": format!("198.51.100.{host}"), "port": 6653},
           "hostname": "sw", "OF-version": "OF_13", "features": [], "ports": []})
}

/// Floodlight's SwitchInfoData: with the switch's view, except for a disconnect (reduced).
fn event(cid: &str, sw: &str, state: &str, host: u8) -> Inbound {
    let mut payload = json!({"clazz": "org.openkilda.messaging.info.event.SwitchInfoData",
                             "switch_id": sw, "state": state});
    if !matches!(state, "DEACTIVATED" | "REMOVED") {
        payload["switch"] = view(sw, host);
    }
    let v = json!({"clazz": classes().info_message, "correlation_id": cid, "timestamp": 1,
                   "payload": payload, "destination": null, "region": "r", "cookie": null});
    Inbound::new(v.to_string()).key(sw.to_string())
}

async fn after(engine: &Engine, rec: &mut Recorded, fl: &str, msg: Inbound) -> Vec<Outgoing> {
    engine.fl_output(fl, msg).await.unwrap();
    let _ = engine.lookup_switch(S1).await; // the dispatcher has handled it
    rec.drain()
}

fn notices_of(out: &[Outgoing]) -> Vec<Value> {
    out.iter()
        .filter(|o| *o.topic == *EVENTS)
        .map(|o| {
            let b = body(o);
            assert!(
                !b["payload"]["clazz"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("SwitchInfoData"),
                "a raw connection event went on: {b}"
            );
            b
        })
        .collect()
}

/// (region, mode, master, switch address) of each connection listed.
fn listed(notice: &Value) -> Vec<(String, String, bool, Value)> {
    notice["payload"]["availabilityData"]["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(c["connectedAt"].is_number(), "decimal epoch seconds: {c}");
            (
                c["regionName"].as_str().unwrap().to_string(),
                c["connectMode"].as_str().unwrap().to_string(),
                c["master"].as_bool().unwrap(),
                c["switchAddress"]["address"].clone(),
            )
        })
        .collect()
}

#[actix_rt::test]
async fn connections_are_told_as_openkildas_router_tells_them() {
    tokio::time::pause();
    let (engine, mut rec) = start_recorded(settings());
    let c = classes();

    // The first read-write connection: a connect notice with the view, keyed by the switch,
    // the event's correlation id; the event itself does not go on.
    let out = after(&engine, &mut rec, "1", event("e1", S1, "ACTIVATED", 10)).await;
    let n = notices_of(&out);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0]["payload"]["clazz"], c.switch_connect_notification);
    assert_eq!(n[0]["payload"]["speakerData"], view(S1, 10));
    assert_eq!(n[0]["correlation_id"], "e1");
    assert_eq!(
        listed(&n[0]),
        vec![("1".into(), "READ_WRITE".into(), true, json!("192.0.2.10"))]
    );
    assert_eq!(out[0].key.as_deref(), Some(S1.as_bytes()));
    assert_eq!(
        n[0]["payload"]["availabilityData"]["connections"][0]["speakerAddress"]["address"],
        "198.51.100.10"
    );

    // A repeat says nothing.
    let out = after(&engine, &mut rec, "1", event("e2", S1, "ACTIVATED", 10)).await;
    assert!(notices_of(&out).is_empty(), "{out:?}");

    // A standby and a read-only region: availability updates with each one's addresses.
    let out = after(&engine, &mut rec, "2", event("e3", S1, "ACTIVATED", 20)).await;
    let n = notices_of(&out);
    assert_eq!(n[0]["payload"]["clazz"], c.switch_availability_notification);
    assert_eq!(
        listed(&n[0]),
        vec![
            ("1".into(), "READ_WRITE".into(), true, json!("192.0.2.10")),
            ("2".into(), "READ_WRITE".into(), false, json!("192.0.2.20")),
        ]
    );
    let out = after(&engine, &mut rec, "1.stats", event("e4", S1, "ADDED", 30)).await;
    assert_eq!(
        notices_of(&out)[0]["payload"]["clazz"],
        c.switch_availability_notification
    );

    // The active region disconnects: a failover, told as an availability update.
    let out = after(&engine, &mut rec, "1", event("e5", S1, "DEACTIVATED", 0)).await;
    let n = notices_of(&out);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0]["payload"]["clazz"], c.switch_availability_notification);
    assert_eq!(
        listed(&n[0]),
        vec![
            ("2".into(), "READ_WRITE".into(), true, json!("192.0.2.20")),
            (
                "1.stats".into(),
                "READ_ONLY".into(),
                false,
                json!("192.0.2.30")
            ),
        ]
    );

    // The last read-write region disconnects: a disconnect notice, what is left listed.
    let out = after(&engine, &mut rec, "2", event("e6", S1, "DEACTIVATED", 0)).await;
    let n = notices_of(&out);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0]["payload"]["clazz"], c.switch_disconnect_notification);
    assert_eq!(n[0]["payload"]["switchId"], S1);
    assert_eq!(n[0]["payload"]["regionOffline"], false);
    assert_eq!(
        listed(&n[0]),
        vec![(
            "1.stats".into(),
            "READ_ONLY".into(),
            false,
            json!("192.0.2.30")
        )]
    );

    // A disconnect of a connection nobody knew: dropped, as OpenKilda's router does.
    let out = after(&engine, &mut rec, "2", event("e7", S2, "DEACTIVATED", 0)).await;
    assert!(notices_of(&out).is_empty());

    // Other states go on unchanged.
    let changed = event("e8", S1, "CHANGED", 10);
    let bytes = changed.payload.clone();
    let out = after(&engine, &mut rec, "1.stats", changed).await;
    assert!(out
        .iter()
        .any(|o| *o.topic == *EVENTS && o.payload == bytes));

    // A reduced event (no view) cannot make a connect notice OpenKilda reads: availability.
    let mut reduced = event("e9", S2, "ACTIVATED", 0);
    let mut v: Value = serde_json::from_slice(&reduced.payload).unwrap();
    v["payload"].as_object_mut().unwrap().remove("switch");
    reduced.payload = v.to_string().into();
    let out = after(&engine, &mut rec, "1", reduced).await;
    let n = notices_of(&out);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0]["payload"]["clazz"], c.switch_availability_notification);
}

#[actix_rt::test]
async fn a_dump_entry_that_connects_a_switch_is_announced_before_it_goes_on() {
    tokio::time::pause();
    let (engine, mut rec) = start_recorded(settings());
    let entry = json!({"clazz": classes().info_message, "correlation_id": "d : network-dump(1)",
        "timestamp": 1, "destination": null, "region": "1", "cookie": null,
        "payload": {"clazz": classes().network_dump_switch, "switch_record": view(S1, 10),
                    "dump_id": "g1", "write_mode": true}})
    .to_string();
    let out = after(
        &engine,
        &mut rec,
        "1",
        Inbound::new(entry.clone()).key(S1.to_string()),
    )
    .await;
    let on_events: Vec<&Outgoing> = out.iter().filter(|o| *o.topic == *EVENTS).collect();
    assert_eq!(on_events.len(), 2);
    assert_eq!(
        class_of(on_events[0]),
        classes().switch_connect_notification
    );
    assert_eq!(body(on_events[0])["correlation_id"], "d : network-dump(1)");
    assert_eq!(
        on_events[1].payload.as_ref(),
        entry.as_bytes(),
        "then the entry itself"
    );
}

#[actix_rt::test]
async fn an_outage_is_a_disconnect_with_region_offline_and_the_routers_own_notices_go_elsewhere() {
    tokio::time::pause();
    let mut s = settings();
    let d = fl_router_actors::settings::Timeouts::default();
    s.timeouts.alive_interval = d.alive_interval;
    s.timeouts.alive_timeout = d.alive_timeout;
    s.sync.at_start = true;
    let (engine, mut rec) = start_recorded(s);
    engine
        .fl_output("1", event("e1", S1, "ACTIVATED", 10))
        .await
        .unwrap();
    // Regions 2 and 1.stats stay alive; region 1 falls silent.
    let mut seen = Vec::new();
    let disconnect = loop {
        for fl in ["2", "1.stats"] {
            let alive = json!({"clazz": classes().info_message, "correlation_id": "a", "timestamp": 1,
                               "payload": {"clazz": classes().alive_response, "failed_messages": 0}});
            engine
                .fl_output(fl, Inbound::new(alive.to_string()))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let batch = rec.drain();
        let hit = batch
            .iter()
            .find(|o| class_of(o) == classes().switch_disconnect_notification)
            .map(body);
        seen.extend(batch);
        if let Some(d) = hit {
            break d;
        }
        assert!(seen.len() < 10_000, "no disconnect notice");
    };
    assert_eq!(disconnect["payload"]["regionOffline"], true);
    assert_eq!(disconnect["payload"]["switchId"], S1);
    let outage = seen
        .iter()
        .find(|o| class_of(o) == classes().fl_outage_notification)
        .expect("an outage notice");
    assert_eq!(
        &*outage.topic, NOTICES,
        "the router's own notice, on its own topic"
    );
    let summary = rec
        .until(LONG, |o| class_of(o) == classes().sync_summary)
        .await
        .pop()
        .unwrap();
    assert_eq!(&*summary.topic, NOTICES);
    for o in seen.iter().chain(rec.drain().iter()) {
        if *o.topic == *EVENTS {
            let class = class_of(o);
            assert!(
                [
                    classes().switch_connect_notification,
                    classes().switch_disconnect_notification,
                    classes().switch_availability_notification,
                ]
                .contains(&class),
                "only OpenKilda's classes on the events topic: {class}"
            );
        }
    }
}
