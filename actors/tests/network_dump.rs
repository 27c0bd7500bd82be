//! Network dumps in every shape Floodlight has sent, in-process with virtual time: what each
//! does to the switch map, which notices go out and what is forwarded (docs/protocol.md, "The
//! network dump"). A switch leaves an FL's connections only by the FL's disconnect event, its
//! outage, or a dump the router knows is complete that does not list it.

use std::time::Duration;

use fl_router_actors::settings::Classes;
use fl_router_actors::testkit::{
    body, class_of, counter, quiet_settings, start_recorded, Recorded,
};
use fl_router_actors::{Engine, Inbound, Outgoing, Settings};
use serde_json::{json, Value};

const S1: &str = "00:00:00:00:00:00:00:01";
const S2: &str = "00:00:00:00:00:00:00:02";
const S3: &str = "00:00:00:00:00:00:00:03";
const S4: &str = "00:00:00:00:00:00:00:04";
const S5: &str = "00:00:00:00:00:00:00:05";
const S8: &str = "00:00:00:00:00:00:00:08";
const S9: &str = "00:00:00:00:00:00:00:09";
const EVENTS: &str = "kilda.topo.disco.storm";
const DEAD_LETTER: &str = "kilda.flrouter.dead-letter";
const LONG: Duration = Duration::from_secs(300);

fn classes() -> Classes {
    Classes::default()
}

fn settings(fls: &[&str]) -> Settings {
    let mut s = quiet_settings(fls);
    s.timeouts.ack = Duration::from_secs(60);
    s
}

fn info(cid: &str, payload: Value) -> Value {
    json!({"clazz": classes().info_message, "correlation_id": cid, "timestamp": 1,
           "payload": payload, "destination": null, "region": "r", "cookie": null})
}

/// One entry of today's Floodlight dump: a plain InfoMessage keyed by the switch.
fn plain(cid: &str, sw: &str, write_mode: bool) -> Inbound {
    let v = info(
        cid,
        json!({"clazz": classes().network_dump_switch, "dump_id": "d1", "write_mode": write_mode,
               "switch_record": {"datapath": sw, "switch-socket": {"address": "192.0.2.10", "port": 41234},
                                 "speaker-socket": {"address": "192.0.2.1", "port": 6653}}}),
    );
    Inbound::new(v.to_string()).key(sw.to_string())
}

/// One chunk of a counted chain (older Floodlight, the simulator).
fn chunk(cid: &str, index: u64, total: u64, sw: &str) -> Inbound {
    let mut v = info(
        cid,
        json!({"clazz": classes().network_dump_switch, "switch_record": {"datapath": sw}, "write_mode": true}),
    );
    v["clazz"] = json!(classes().chunked_info_message);
    v["message_id"] = json!(format!("{index} : {cid}"));
    v["total_messages"] = json!(total);
    Inbound::new(v.to_string()).key(cid.to_string())
}

/// A dump entry without a readable switch (its view has no datapath).
fn unreadable(cid: &str, position: Option<(u64, u64)>) -> Inbound {
    let mut v = info(
        cid,
        json!({"clazz": classes().network_dump_switch, "switch_record": {"hostname": "sw?"}, "write_mode": true}),
    );
    if let Some((index, total)) = position {
        v["clazz"] = json!(classes().chunked_info_message);
        v["message_id"] = json!(format!("{index} : {cid}"));
        v["total_messages"] = json!(total);
    }
    Inbound::new(v.to_string())
}

fn event(sw: &str, state: &str) -> Inbound {
    let v = info(
        &format!("ev-{state}-{sw}"),
        json!({"clazz": "org.openkilda.messaging.info.event.SwitchInfoData", "switch_id": sw, "state": state}),
    );
    Inbound::new(v.to_string()).key(sw.to_string())
}

fn sync_request(cid: &str) -> Inbound {
    let v = json!({"clazz": classes().command_message, "correlation_id": cid, "timestamp": 1,
                   "payload": {"clazz": classes().sync_request, "dump_id": "d1"}});
    Inbound::new(v.to_string()).reply_to("ctl.reply")
}

fn is_notice(o: &Outgoing) -> bool {
    let c = class_of(o);
    [
        classes().unmanaged_switch_notification,
        classes().switch_offline_notification,
    ]
    .contains(&c)
}

fn summary_of(seen: &[Outgoing]) -> Value {
    let s = seen
        .iter()
        .rev()
        .find(|o| *o.topic == *EVENTS && class_of(o) == classes().sync_summary)
        .expect("a summary");
    body(s)["payload"].clone()
}

fn fl_entry<'a>(summary: &'a Value, fl: &str) -> &'a Value {
    summary["fls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fl_id"] == fl)
        .unwrap()
}

async fn feed(engine: &Engine, fl: &str, msgs: Vec<Inbound>) {
    for m in msgs {
        engine.fl_output(fl, m).await.unwrap();
    }
}

async fn until_summary(rec: &mut Recorded) -> Vec<Outgoing> {
    rec.until(LONG, |o| {
        *o.topic == *EVENTS && class_of(o) == classes().sync_summary
    })
    .await
}

async fn active(engine: &Engine, sw: &str) -> Option<String> {
    engine.lookup_switch(sw).await.unwrap()
}

#[actix_rt::test]
async fn a_plain_dump_maps_every_switch_it_lists_forwards_each_and_removes_none() {
    tokio::time::pause();
    let (engine, mut rec) = start_recorded(settings(&["a", "b", "c"]));
    // a has S9 from an event before the sync; its plain dump will not list it.
    feed(&engine, "a", vec![event(S9, "ACTIVATED")]).await;
    engine.command(sync_request("ctl-1")).await.unwrap();
    let started = tokio::time::Instant::now();
    rec.until(LONG, |o| *o.topic == *"kilda.speaker_c").await;
    let dump_a = [S1, S2, S3].map(|sw| plain("ctl-1", sw, true));
    let dump_b = [S4, S5].map(|sw| plain("ctl-1", sw, true));
    let bytes: Vec<bytes::Bytes> = dump_a
        .iter()
        .chain(dump_b.iter())
        .map(|m| m.payload.clone())
        .collect();
    feed(&engine, "a", dump_a.to_vec()).await;
    feed(&engine, "b", dump_b.to_vec()).await;
    // c has no switch and answers nothing, as Floodlight does.

    // Mapped as each entry arrives, long before the session ends.
    for (sw, fl) in [(S1, "a"), (S2, "a"), (S3, "a"), (S4, "b"), (S5, "b")] {
        assert_eq!(active(&engine, sw).await.as_deref(), Some(fl), "{sw}");
    }
    let seen = until_summary(&mut rec).await;
    let forwarded: Vec<&Outgoing> = seen
        .iter()
        .filter(|o| *o.topic == *EVENTS && bytes.contains(&o.payload))
        .collect();
    assert_eq!(
        forwarded
            .iter()
            .map(|o| o.payload.clone())
            .collect::<Vec<_>>(),
        bytes,
        "every entry forwarded unchanged, in order"
    );
    assert!(
        forwarded.iter().all(|o| o.key.as_deref()
            == Some(
                body(o)["payload"]["switch_record"]["datapath"]
                    .as_str()
                    .unwrap()
                    .as_bytes()
            )),
        "keyed by switch, as Floodlight wrote them"
    );
    assert!(!seen.iter().any(is_notice), "no switch declared gone");
    assert_eq!(
        seen.iter()
            .filter(|o| class_of(o) == classes().sync_request)
            .count(),
        0,
        "nobody asked again"
    );
    assert_eq!(
        active(&engine, S9).await.as_deref(),
        Some("a"),
        "a plain dump proves nothing about a switch it did not list"
    );
    let s = summary_of(&seen);
    assert!(started.elapsed() >= engine.settings().timeouts.sync_chain);
    assert_eq!(
        s["complete"], false,
        "an uncounted dump is never known whole"
    );
    assert_eq!(fl_entry(&s, "a")["status"], "uncounted");
    assert_eq!(fl_entry(&s, "a")["switches"], 3);
    assert_eq!(fl_entry(&s, "b")["status"], "uncounted");
    assert_eq!(fl_entry(&s, "b")["switches"], 2);
    assert_eq!(
        fl_entry(&s, "c")["status"],
        "empty",
        "a region with no switch answers nothing"
    );
    assert_eq!(fl_entry(&s, "c")["retries"], 0);
    assert_eq!(counter(&engine, "sync_fl_uncounted"), 2);
    assert_eq!(counter(&engine, "sync_fl_empty"), 1);
}

#[actix_rt::test]
async fn a_whole_counted_dump_removes_the_unlisted_switches_learned_before_its_request() {
    tokio::time::pause();
    let (engine, mut rec) = start_recorded(settings(&["a"]));
    feed(&engine, "a", vec![event(S9, "ACTIVATED")]).await;
    // (Learned at the very instant of a request, a connection is not judged by its dump.)
    tokio::time::advance(Duration::from_millis(1)).await;
    engine.command(sync_request("ctl-2")).await.unwrap();
    rec.until(LONG, |o| *o.topic == *"kilda.speaker_a").await;
    // Read after the request: perhaps written after the dump, so the dump says nothing of it.
    feed(&engine, "a", vec![event(S8, "ACTIVATED")]).await;
    feed(
        &engine,
        "a",
        vec![chunk("ctl-2", 0, 2, S1), chunk("ctl-2", 1, 2, S2)],
    )
    .await;
    let seen = until_summary(&mut rec).await;
    let offline: Vec<Value> = seen
        .iter()
        .filter(|o| class_of(o) == classes().switch_offline_notification)
        .map(|o| body(o)["payload"]["switch_id"].clone())
        .collect();
    assert_eq!(
        offline,
        vec![json!(S9)],
        "only the switch known before the request"
    );
    assert_eq!(active(&engine, S9).await, None);
    for sw in [S1, S2, S8] {
        assert_eq!(active(&engine, sw).await.as_deref(), Some("a"), "{sw}");
    }
    let s = summary_of(&seen);
    assert_eq!(s["complete"], true);
    assert_eq!(fl_entry(&s, "a")["status"], "complete");
}

#[actix_rt::test]
async fn an_unreadable_entry_is_dead_lettered_and_its_dump_asked_again_never_complete_with_fewer() {
    tokio::time::pause();
    let mut s = settings(&["a", "b"]);
    s.sync.retries = 1;
    let (engine, mut rec) = start_recorded(s);
    feed(
        &engine,
        "a",
        vec![event(S1, "ACTIVATED"), event(S2, "ACTIVATED")],
    )
    .await;
    feed(
        &engine,
        "b",
        vec![event(S3, "ACTIVATED"), event(S4, "ACTIVATED")],
    )
    .await;
    engine.command(sync_request("ctl-3")).await.unwrap();
    rec.until(LONG, |o| *o.topic == *"kilda.speaker_b").await;
    // a: a counted chain of two, the second unreadable; b: plain, one unreadable.
    let answer_a = || vec![chunk("ctl-3", 0, 2, S1), unreadable("ctl-3", Some((1, 2)))];
    let answer_b = || vec![plain("ctl-3", S3, true), unreadable("ctl-3", None)];
    feed(&engine, "a", answer_a()).await;
    feed(&engine, "b", answer_b()).await;
    let dead = rec.until(LONG, |o| *o.topic == *DEAD_LETTER).await;
    let reason = dead
        .last()
        .unwrap()
        .headers
        .iter()
        .find(|(k, _)| k.as_ref() == fl_router_actors::runtime::outbox::headers::DEAD_LETTER_REASON)
        .map(|(_, v)| String::from_utf8_lossy(v).to_string())
        .unwrap_or_default();
    assert!(reason.contains("readable switch"), "{reason}");
    // Both FLs are asked again after the deadline; they answer the same.
    let mut seen = rec
        .until(LONG, |o| {
            *o.topic == *"kilda.speaker_a" && class_of(o) == classes().sync_request
        })
        .await;
    seen.extend(
        rec.until(LONG, |o| {
            *o.topic == *"kilda.speaker_b" && class_of(o) == classes().sync_request
        })
        .await,
    );
    feed(&engine, "a", answer_a()).await;
    feed(&engine, "b", answer_b()).await;
    seen.extend(until_summary(&mut rec).await);
    assert!(
        !seen.iter().any(is_notice),
        "nothing announced for a dump nobody can judge"
    );
    for (sw, fl) in [(S1, "a"), (S2, "a"), (S3, "b"), (S4, "b")] {
        assert_eq!(
            active(&engine, sw).await.as_deref(),
            Some(fl),
            "{sw}: never lost to an incomplete dump"
        );
    }
    let s = summary_of(&seen);
    assert_eq!(s["complete"], false);
    for fl in ["a", "b"] {
        assert_eq!(fl_entry(&s, fl)["status"], "failed", "{fl}");
        assert_eq!(fl_entry(&s, fl)["retries"], 1, "{fl}");
        assert_eq!(fl_entry(&s, fl)["unreadable"], 1, "{fl}");
    }
    assert_eq!(counter(&engine, "sync_unreadable_entries"), 4);
    assert_eq!(counter(&engine, "dead_letters"), 4);
}

#[actix_rt::test]
async fn a_dump_interleaved_with_events_keeps_each_switchs_order() {
    tokio::time::pause();
    let (engine, mut rec) = start_recorded(settings(&["a"]));
    engine.command(sync_request("ctl-4")).await.unwrap();
    rec.until(LONG, |o| *o.topic == *"kilda.speaker_a").await;
    let msgs = vec![
        plain("ctl-4", S1, true),
        event(S1, "DEACTIVATED"),
        plain("ctl-4", S2, true),
        event(S2, "CHANGED"),
        event(S3, "DEACTIVATED"),
        plain("ctl-4", S3, true),
    ];
    let bytes: Vec<bytes::Bytes> = msgs.iter().map(|m| m.payload.clone()).collect();
    feed(&engine, "a", msgs).await;
    let seen = rec.until(LONG, |o| o.payload == bytes[5]).await;
    let order: Vec<usize> = seen
        .iter()
        .filter(|o| *o.topic == *EVENTS)
        .filter_map(|o| bytes.iter().position(|b| *b == o.payload))
        .collect();
    assert_eq!(
        order,
        vec![0, 1, 2, 3, 4, 5],
        "each switch's messages in the FL's order"
    );
    assert_eq!(
        active(&engine, S1).await,
        None,
        "disconnected after its entry"
    );
    assert_eq!(active(&engine, S2).await.as_deref(), Some("a"));
    assert_eq!(
        active(&engine, S3).await.as_deref(),
        Some("a"),
        "connected after its disconnect"
    );
}

#[actix_rt::test]
async fn entries_are_forwarded_only_from_the_switchs_active_read_write_fl() {
    tokio::time::pause();
    let mut s = settings(&["a", "b", "stats"]);
    s.failover.prefer = vec!["a".into(), "b".into()];
    let (engine, mut rec) = start_recorded(s);
    engine.command(sync_request("ctl-5")).await.unwrap();
    rec.until(LONG, |o| *o.topic == *"kilda.speaker_stats")
        .await;
    let from_a = plain("ctl-5", S1, true);
    let from_b = plain("ctl-5", S1, true); // a read-write standby
    let from_stats = plain("ctl-5", S1, false); // a read-only region
    feed(&engine, "a", vec![from_a.clone()]).await;
    feed(&engine, "b", vec![from_b]).await;
    feed(&engine, "stats", vec![from_stats.clone()]).await;
    let seen = until_summary(&mut rec).await;
    let forwarded: Vec<&Outgoing> = seen
        .iter()
        .filter(|o| *o.topic == *EVENTS && class_of(o) == classes().network_dump_switch)
        .collect();
    assert_eq!(forwarded.len(), 1, "one voice per switch");
    assert_eq!(forwarded[0].payload, from_a.payload);
    let view = engine.switch_view(S1).await.unwrap().unwrap();
    let conns: Vec<(String, String, bool)> = view
        .connections
        .iter()
        .map(|c| (c.fl.clone(), format!("{:?}", c.mode), c.active))
        .collect();
    assert_eq!(
        conns,
        vec![
            ("a".into(), "ReadWrite".into(), true),
            ("b".into(), "ReadWrite".into(), false),
            ("stats".into(), "ReadOnly".into(), false),
        ]
    );
    assert_eq!(counter(&engine, "standby_events_dropped"), 2);
}

/// Liveness on (default alive interval and timeout), one FL.
fn live_settings() -> Settings {
    let mut s = settings(&["a"]);
    s.sync.at_start = true;
    let d = fl_router_actors::settings::Timeouts::default();
    s.timeouts.alive_interval = d.alive_interval;
    s.timeouts.alive_timeout = d.alive_timeout;
    s
}

async fn request_to_a(rec: &mut Recorded) -> Value {
    let seen = rec
        .until(LONG, |o| {
            *o.topic == *"kilda.speaker_a" && class_of(o) == classes().sync_request
        })
        .await;
    body(seen.last().unwrap())
}

#[actix_rt::test]
async fn a_dump_cut_short_by_its_fls_death_leaves_nothing_of_that_fl_until_it_recovers() {
    tokio::time::pause();
    let (engine, mut rec) = start_recorded(live_settings());
    let startup = request_to_a(&mut rec).await;
    assert!(
        startup["payload"].get("dump_id").is_none(),
        "the startup dump is partial (no generation for OpenKilda's network topology)"
    );
    let cid = startup["correlation_id"].as_str().unwrap().to_string();
    // Two entries of three, then the FL dies.
    feed(
        &engine,
        "a",
        vec![plain(&cid, S1, true), plain(&cid, S2, true)],
    )
    .await;
    assert_eq!(active(&engine, S1).await.as_deref(), Some("a"));
    let seen = rec
        .until(LONG, |o| class_of(o) == classes().fl_outage_notification)
        .await;
    drop(seen);
    let unmanaged: Vec<Value> = rec
        .until(LONG, |o| {
            class_of(o) == classes().unmanaged_switch_notification
                && body(o)["payload"]["switch_id"] == S2
        })
        .await
        .iter()
        .filter(|o| class_of(o) == classes().unmanaged_switch_notification)
        .map(|o| body(o)["payload"]["switch_id"].clone())
        .collect();
    assert_eq!(unmanaged, vec![json!(S1), json!(S2)]);
    for sw in [S1, S2, S3] {
        assert_eq!(active(&engine, sw).await, None, "{sw}");
    }
    // It speaks again: a recovery dump, partial (no dump_id), rebuilds its switches.
    feed(&engine, "a", vec![event(S4, "CHANGED")]).await;
    let recovery = request_to_a(&mut rec).await;
    assert!(recovery["payload"].get("dump_id").is_none(), "{recovery}");
    let cid = recovery["correlation_id"].as_str().unwrap().to_string();
    feed(
        &engine,
        "a",
        [S1, S2, S3].map(|sw| plain(&cid, sw, true)).to_vec(),
    )
    .await;
    for sw in [S1, S2, S3] {
        assert_eq!(active(&engine, sw).await.as_deref(), Some("a"), "{sw}");
    }
}
