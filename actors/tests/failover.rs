//! A switch on several FLs, in-process with virtual time: read-write and read-only connections,
//! one active FL, failover on a disconnect or an outage, the reconnect grace window, the
//! preference order, chains with `write_mode`, and stats polling off read-only FLs.

use std::time::Duration;

use fl_router_actors::settings::Classes;
use fl_router_actors::testkit::{
    body, class_of, counter, quiet_settings, start_recorded, Recorded,
};
use fl_router_actors::{Engine, Inbound, Outgoing, Settings};
use serde_json::{json, Value};

const SW1: &str = "00:00:00:00:00:00:00:01";
const SW2: &str = "00:00:00:00:00:00:00:02";
const EVENTS: &str = "kilda.topo.disco.storm";
const SWITCH_MAP: &str = "kilda.flrouter.switch-map";
const REPLY: &str = "my.reply";
const WAIT: Duration = Duration::from_secs(1);
const LONG: Duration = Duration::from_secs(120);

fn settings() -> Settings {
    let mut s = quiet_settings(&["a", "b", "c"]);
    s.timeouts.ack = Duration::from_secs(60); // failover answers long before any timeout
    s
}

fn start(s: Settings) -> (Engine, Recorded) {
    start_recorded(s)
}

fn classes() -> Classes {
    Classes::default()
}

fn is_availability(o: &Outgoing) -> bool {
    *o.topic == *EVENTS && class_of(o) == classes().switch_availability_notification
}

/// (FL, mode, master) of each connection an availability notice lists.
fn listed(o: &Outgoing) -> Vec<(String, String, bool)> {
    body(o)["payload"]["availabilityData"]["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["regionName"].as_str().unwrap().to_string(),
                c["connectMode"].as_str().unwrap().to_string(),
                c["master"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn info(cid: &str, payload: Value) -> Vec<u8> {
    json!({"clazz": classes().info_message, "correlation_id": cid, "timestamp": 1, "payload": payload})
        .to_string()
        .into_bytes()
}

fn event(sw: &str, state: &str) -> Vec<u8> {
    info(
        &format!("ev-{state}"),
        json!({"clazz":"org.openkilda.messaging.info.event.SwitchInfoData","switch_id":sw,"state":state}),
    )
}

fn command(cid: &str, sw: &str) -> Inbound {
    let raw = json!({"clazz": classes().command_message, "correlation_id": cid, "timestamp": 1,
           "payload": {"clazz": "X", "switch_id": sw}});
    Inbound::new(raw.to_string()).reply_to(REPLY)
}

fn answer(cid: &str) -> Vec<u8> {
    info(cid, json!({"clazz": "Y", "ok": true}))
}

/// Feeds FL `fl`'s switch event and returns what the router produced for it (up to and
/// including the stored map change).
async fn event_from(
    engine: &Engine,
    rec: &mut Recorded,
    fl: &str,
    sw: &str,
    state: &str,
) -> Vec<Outgoing> {
    engine
        .fl_output(fl, Inbound::new(event(sw, state)))
        .await
        .unwrap();
    rec.until(WAIT, |o| *o.topic == *SWITCH_MAP).await
}

fn raw_forwarded(out: &[Outgoing], sw: &str, state: &str) -> bool {
    out.iter()
        .any(|o| *o.topic == *EVENTS && o.payload.as_ref() == event(sw, state).as_slice())
}

#[actix_rt::test]
async fn one_rw_connection_is_active_the_others_are_announced_not_forwarded() {
    let (engine, mut rec) = start(settings());
    let out = event_from(&engine, &mut rec, "a", SW1, "ACTIVATED").await;
    assert!(
        raw_forwarded(&out, SW1, "ACTIVATED"),
        "the switch became managed: the FL's event goes on unchanged"
    );
    assert!(!out.iter().any(is_availability));

    let out = event_from(&engine, &mut rec, "b", SW1, "ACTIVATED").await;
    assert_eq!(out.len(), 2, "an availability notice and the stored change");
    assert!(
        !raw_forwarded(&out, SW1, "ACTIVATED"),
        "a second RW connection is not a new connect"
    );
    assert_eq!(
        listed(&out[0]),
        vec![
            ("a".into(), "READ_WRITE".into(), true),
            ("b".into(), "READ_WRITE".into(), false)
        ]
    );
    let out = event_from(&engine, &mut rec, "c", SW1, "ADDED").await;
    assert!(is_availability(&out[0]));
    assert_eq!(listed(&out[0])[2], ("c".into(), "READ_ONLY".into(), false));

    let view = engine.switch_view(SW1).await.unwrap().unwrap();
    assert_eq!(view.active.as_deref(), Some("a"));
    let conns: Vec<(String, bool)> = view
        .connections
        .iter()
        .map(|c| (c.fl.clone(), c.active))
        .collect();
    assert_eq!(
        conns,
        vec![("a".into(), true), ("b".into(), false), ("c".into(), false)]
    );
    let stored = body(out.last().unwrap());
    assert_eq!(stored["active"], "a");
    assert_eq!(stored["connections"].as_array().unwrap().len(), 3);
    let counts = engine.switch_counts().await.unwrap();
    assert_eq!(
        counts,
        vec![
            ("a".to_string(), (1, 0)),
            ("b".to_string(), (0, 1)),
            ("c".to_string(), (0, 1))
        ]
    );

    engine.command(command("c1", SW1)).await.unwrap();
    assert_eq!(&*rec.next_within(WAIT).await.topic, "kilda.speaker_a");
}

#[actix_rt::test]
async fn losing_the_active_fl_fails_over_at_once_and_answers_its_pending_commands() {
    let (engine, mut rec) = start(settings());
    event_from(&engine, &mut rec, "a", SW1, "ACTIVATED").await;
    event_from(&engine, &mut rec, "b", SW1, "ACTIVATED").await;
    engine.command(command("c1", SW1)).await.unwrap();
    assert_eq!(&*rec.next_within(WAIT).await.topic, "kilda.speaker_a");

    let out = event_from(&engine, &mut rec, "a", SW1, "DEACTIVATED").await;
    assert!(
        !raw_forwarded(&out, SW1, "DEACTIVATED"),
        "the switch is still managed: no disconnect goes to the controller"
    );
    let notice = out.iter().find(|o| is_availability(o)).unwrap();
    assert_eq!(
        listed(notice),
        vec![("b".into(), "READ_WRITE".into(), true)]
    );
    assert_eq!(
        engine.lookup_switch(SW1).await.unwrap().as_deref(),
        Some("b")
    );
    // a's pending command is answered now, not at its timeout 60 s later.
    let seen = rec.until(WAIT, |o| *o.topic == *REPLY).await;
    let err = body(seen.last().unwrap());
    assert_eq!(err["correlation_id"], "c1");
    assert_eq!(err["payload"]["error-type"], "OPERATION_TIMED_OUT");
    let why = err["payload"]["error-description"].as_str().unwrap();
    assert!(
        why.contains("failed over to FL b") && why.contains("cannot tell whether"),
        "{why}"
    );
    // New commands go to b; a's late answer is dropped.
    engine.command(command("c2", SW1)).await.unwrap();
    assert_eq!(&*rec.next_within(WAIT).await.topic, "kilda.speaker_b");
    engine
        .fl_output("a", Inbound::new(answer("c1")))
        .await
        .unwrap();
    assert!(rec.collect_for(Duration::from_millis(50)).await.is_empty());
    assert_eq!(counter(&engine, "blacklist_drops"), 1);
    assert_eq!(counter(&engine, "failovers"), 1);
    assert_eq!(counter(&engine, "failed_over_commands"), 1);

    // A standby coming and going changes nothing for commands.
    event_from(&engine, &mut rec, "c", SW1, "ACTIVATED").await;
    let out = event_from(&engine, &mut rec, "c", SW1, "DEACTIVATED").await;
    assert!(is_availability(&out[0]) && !raw_forwarded(&out, SW1, "DEACTIVATED"));
    assert_eq!(
        engine.lookup_switch(SW1).await.unwrap().as_deref(),
        Some("b")
    );
    // The last RW connection goes: now the controller hears the disconnect.
    let out = event_from(&engine, &mut rec, "b", SW1, "DEACTIVATED").await;
    assert!(raw_forwarded(&out, SW1, "DEACTIVATED"));
    assert!(
        out.last().unwrap().null_value,
        "no connection left: tombstone"
    );
    assert_eq!(engine.switch_view(SW1).await.unwrap(), None);
}

#[actix_rt::test]
async fn an_outage_fails_over_what_has_a_standby_and_unmanages_the_rest() {
    tokio::time::pause();
    let mut s = settings();
    let d = fl_router_actors::settings::Timeouts::default();
    s.timeouts.alive_interval = d.alive_interval;
    s.timeouts.alive_timeout = d.alive_timeout;
    let (engine, mut rec) = start(s);
    event_from(&engine, &mut rec, "a", SW1, "ACTIVATED").await;
    event_from(&engine, &mut rec, "a", SW2, "ACTIVATED").await;
    event_from(&engine, &mut rec, "b", SW1, "ACTIVATED").await;
    engine.command(command("c1", SW1)).await.unwrap();
    // b and c answer every AliveRequest; a stays silent until it is declared offline.
    let mut seen = Vec::new();
    loop {
        let out = rec.next_within(LONG).await;
        let v = body(&out);
        if *out.topic != *"kilda.speaker_a" && class_of(&out) == classes().alive_request {
            let fl = if out.topic.ends_with('b') { "b" } else { "c" };
            engine
                .fl_output(fl, Inbound::new(info("alive", json!({"clazz": "Z"}))))
                .await
                .unwrap();
        }
        let outage = class_of(&out) == classes().fl_outage_notification;
        let fl_a = v["payload"]["fl_id"] == "a";
        seen.push(out);
        if outage && fl_a {
            break;
        }
    }
    seen.extend(rec.collect_for(Duration::from_millis(100)).await);
    let notices: Vec<&Outgoing> = seen.iter().filter(|o| is_availability(o)).collect();
    assert_eq!(notices.len(), 1, "SW1 failed over");
    assert_eq!(body(notices[0])["payload"]["switchId"], SW1);
    assert_eq!(
        listed(notices[0]),
        vec![("b".into(), "READ_WRITE".into(), true)]
    );
    let unmanaged: Vec<Value> = seen
        .iter()
        .filter(|o| class_of(o) == classes().unmanaged_switch_notification)
        .map(|o| body(o)["payload"]["switch_id"].clone())
        .collect();
    assert_eq!(unmanaged, vec![json!(SW2)], "only SW2 had no standby");
    let failed = seen
        .iter()
        .find(|o| *o.topic == *REPLY)
        .expect("c1 answered");
    assert_eq!(body(failed)["payload"]["error-type"], "OPERATION_TIMED_OUT");
    assert_eq!(
        engine.lookup_switch(SW1).await.unwrap().as_deref(),
        Some("b")
    );
    assert_eq!(engine.lookup_switch(SW2).await.unwrap(), None);
    engine.command(command("c2", SW1)).await.unwrap();
    let out = rec.until(WAIT, |o| body(o)["correlation_id"] == "c2").await;
    assert_eq!(&*out.last().unwrap().topic, "kilda.speaker_b");
}

#[actix_rt::test]
async fn a_command_waits_out_the_grace_window_for_a_reconnect() {
    tokio::time::pause();
    let (engine, mut rec) = start(settings());
    let grace = engine.settings().failover.grace;
    event_from(&engine, &mut rec, "a", SW1, "ACTIVATED").await;
    event_from(&engine, &mut rec, "a", SW2, "ACTIVATED").await;
    let out = event_from(&engine, &mut rec, "a", SW1, "DEACTIVATED").await;
    assert!(raw_forwarded(&out, SW1, "DEACTIVATED"), "unmanaged");

    // Within the grace window: the command waits instead of failing NOT_FOUND…
    engine.command(command("c1", SW1)).await.unwrap();
    assert!(rec.collect_for(grace / 2).await.is_empty(), "it waits");
    // …and goes to the FL the switch reconnects to.
    engine
        .fl_output("b", Inbound::new(event(SW1, "ACTIVATED")))
        .await
        .unwrap();
    let out = rec.until(WAIT, |o| body(o)["correlation_id"] == "c1").await;
    assert_eq!(&*out.last().unwrap().topic, "kilda.speaker_b");
    assert_eq!(counter(&engine, "grace_forwarded"), 1);

    // No reconnect: NOT_FOUND when the window closes (not at once, not later).
    event_from(&engine, &mut rec, "a", SW2, "DEACTIVATED").await;
    let lost_at = tokio::time::Instant::now();
    engine.command(command("c2", SW2)).await.unwrap();
    let out = rec.until(LONG, |o| *o.topic == *REPLY).await;
    let waited = lost_at.elapsed();
    assert!(
        waited >= grace && waited <= grace + Duration::from_millis(200),
        "answered when the grace ran out: {waited:?}"
    );
    let err = body(out.last().unwrap());
    assert_eq!(err["payload"]["error-type"], "NOT_FOUND");
    let why = err["payload"]["error-description"].as_str().unwrap();
    assert!(
        why.contains("reported it disconnected") && why.contains("grace"),
        "{why}"
    );
    // After the window, NOT_FOUND at once.
    let asked = tokio::time::Instant::now();
    engine.command(command("c3", SW2)).await.unwrap();
    let out = rec.until(WAIT, |o| *o.topic == *REPLY).await;
    assert_eq!(
        body(out.last().unwrap())["payload"]["error-type"],
        "NOT_FOUND"
    );
    assert!(asked.elapsed() < Duration::from_millis(100));
    assert_eq!(counter(&engine, "grace_expired"), 1);
}

#[actix_rt::test]
async fn the_preference_order_picks_the_standby_and_return_home_takes_the_switch_back() {
    let mut s = settings();
    s.failover.prefer = vec!["c".into(), "b".into()];
    s.failover.return_home = true;
    let (engine, mut rec) = start(s);
    event_from(&engine, &mut rec, "a", SW1, "ACTIVATED").await;
    let out = event_from(&engine, &mut rec, "b", SW1, "ACTIVATED").await;
    assert!(is_availability(&out[0]));
    assert_eq!(
        engine.lookup_switch(SW1).await.unwrap().as_deref(),
        Some("b"),
        "b ranks above a: it takes over when it connects"
    );
    event_from(&engine, &mut rec, "c", SW1, "ACTIVATED").await;
    assert_eq!(
        engine.lookup_switch(SW1).await.unwrap().as_deref(),
        Some("c")
    );
    assert_eq!(counter(&engine, "failbacks"), 2);
    event_from(&engine, &mut rec, "c", SW1, "DEACTIVATED").await;
    assert_eq!(
        engine.lookup_switch(SW1).await.unwrap().as_deref(),
        Some("b"),
        "b, not the older a: the preference order decides"
    );

    // Without return_home (the default) a better FL connecting does not move the switch.
    let mut s = settings();
    s.failover.prefer = vec!["b".into()];
    let (engine, mut rec) = start(s);
    event_from(&engine, &mut rec, "a", SW1, "ACTIVATED").await;
    event_from(&engine, &mut rec, "b", SW1, "ACTIVATED").await;
    assert_eq!(
        engine.lookup_switch(SW1).await.unwrap().as_deref(),
        Some("a")
    );
}

#[actix_rt::test]
async fn a_read_only_chain_entry_adds_a_read_only_connection_and_stats_are_polled_there() {
    let mut s = quiet_settings(&["a", "b"]);
    s.sync.at_start = true;
    let (engine, mut rec) = start(s);
    let chain = |cid: &str, i: u64, total: u64, sw: &str, rw: bool| {
        json!({"clazz": classes().chunked_info_message, "correlation_id": cid, "timestamp": 1,
               "message_id": format!("{i} : {cid}"), "total_messages": total,
               "payload": {"clazz": classes().network_dump_switch,
                           "switch_record": {"datapath": sw}, "write_mode": rw}})
        .to_string()
        .into_bytes()
    };
    let mut cids = std::collections::HashMap::new();
    while cids.len() < 2 {
        let o = rec.next_within(WAIT).await;
        if class_of(&o) == classes().sync_request {
            cids.insert(
                o.topic.to_string(),
                body(&o)["correlation_id"].as_str().unwrap().to_string(),
            );
        }
    }
    let cid = |fl: &str| cids[&format!("kilda.speaker_{fl}")].clone();
    let (ca, cb) = (cid("a"), cid("b"));
    engine
        .fl_output("a", Inbound::new(chain(&ca, 0, 2, SW1, true)))
        .await
        .unwrap();
    engine
        .fl_output("a", Inbound::new(chain(&ca, 1, 2, SW2, true)))
        .await
        .unwrap();
    engine
        .fl_output("b", Inbound::new(chain(&cb, 0, 1, SW1, false)))
        .await
        .unwrap();
    rec.until(WAIT, |o| class_of(o) == classes().sync_summary)
        .await;
    let view = engine.switch_view(SW1).await.unwrap().unwrap();
    assert_eq!(view.active.as_deref(), Some("a"));
    let modes: Vec<String> = view
        .connections
        .iter()
        .map(|c| format!("{}:{:?}", c.fl, c.mode))
        .collect();
    assert_eq!(modes, ["a:ReadWrite", "b:ReadOnly"]);

    // Stats: the read-only FL polls what it sees, the RW FL the rest; each switch once.
    let stats = r#"{"clazz":"org.openkilda.messaging.command.CommandMessage","timestamp":5,"correlation_id":"stats-1","payload":{"clazz":"org.openkilda.messaging.command.stats.StatsRequest"}}"#;
    engine.command(Inbound::new(stats)).await.unwrap();
    let mut scopes = Vec::new();
    for _ in 0..2 {
        let o = rec.next_within(WAIT).await;
        scopes.push((o.topic.to_string(), body(&o)["payload"]["scope"].clone()));
    }
    scopes.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        scopes,
        vec![
            ("kilda.speaker_a".to_string(), json!([SW2])),
            ("kilda.speaker_b".to_string(), json!([SW1])),
        ]
    );
}

#[test]
fn a_preference_naming_no_fl_is_a_config_error() {
    let mut s = settings();
    s.failover.prefer = vec!["b".into(), "nope".into()];
    let errs = s.validate();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].key, "failover.prefer[1]");
    let mut s = settings();
    s.protocol
        .switch_events
        .read_only_up
        .push("ACTIVATED".into());
    let errs = s.validate();
    assert_eq!(errs[0].key, "protocol.switch_events.read_only_up[1]");
}

#[actix_rt::test]
async fn port_events_are_forwarded_from_the_active_fl_only() {
    let (engine, mut rec) = start(settings());
    event_from(&engine, &mut rec, "a", SW1, "ACTIVATED").await;
    event_from(&engine, &mut rec, "b", SW1, "ACTIVATED").await;
    let port = |fl: &str| {
        info(
            &format!("port-{fl}"),
            json!({"clazz": "org.openkilda.messaging.info.event.PortInfoData",
                   "switch_id": SW1, "port_no": 7, "state": "DOWN"}),
        )
    };
    // Both FLs see the port go down; the controller hears it once, from the active FL.
    engine
        .fl_output("b", Inbound::new(port("b")))
        .await
        .unwrap();
    engine
        .fl_output("a", Inbound::new(port("a")))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(out.payload.as_ref(), port("a").as_slice());
    assert!(rec.collect_for(Duration::from_millis(50)).await.is_empty());
    assert_eq!(counter(&engine, "standby_events_dropped"), 1);
    // After a failover, b speaks for the switch.
    event_from(&engine, &mut rec, "a", SW1, "DEACTIVATED").await;
    rec.collect_for(Duration::from_millis(50)).await;
    engine
        .fl_output("b", Inbound::new(port("b")))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(out.payload.as_ref(), port("b").as_slice());
}
