//! The single-switch path, in-process with virtual time: every routing rule of the brief §4
//! that does not need multi-switch, sync or liveness.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fl_router_actors::runtime::outbox::headers;

use fl_router_actors::testkit::{
    quiet_settings, recording_outbox, recording_outbox_held, stored_switch, Recorded,
};
use fl_router_actors::{Engine, Inbound, Outgoing, Settings, Ticket};
use serde_json::{json, Value};

const SW1: &str = "00:00:00:00:00:00:00:01";
const SW2: &str = "00:00:00:00:00:00:00:02";
const WAIT: Duration = Duration::from_secs(1);

fn settings() -> Settings {
    // Routing only here: liveness and sync have their own tests (liveness_sync.rs).
    let mut s = quiet_settings(&["a", "b"]);
    // No reconnect grace: a lost switch is NOT_FOUND at once (tests/failover.rs tests the grace).
    s.failover.grace = Duration::ZERO;
    s.topics
        .by_class
        .insert("org.example.PortInfoData".into(), "kinds.port".into());
    s
}

fn start() -> (Engine, Recorded) {
    let (outbox, rec) = recording_outbox();
    (
        Engine::start(settings(), outbox).expect("valid settings"),
        rec,
    )
}

fn command(cid: &str, switch: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":cid,"timestamp":1,
           "payload":{"clazz":"org.example.DumpRules","switch_id":switch}})
    .to_string()
    .into_bytes()
}

fn switch_event(switch: &str, state: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":"ev","timestamp":1,
           "payload":{"clazz":"org.openkilda.messaging.info.event.SwitchInfoData","switch_id":switch,"state":state}})
    .to_string()
    .into_bytes()
}

fn ack(cid: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":cid,"timestamp":1,
           "payload":{"clazz":"org.openkilda.messaging.info.FlReceiveAck"}})
    .to_string()
    .into_bytes()
}

fn answer(cid: &str, class: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":cid,"timestamp":1,
           "payload":{"clazz":class,"rules":[1,2,3]}})
    .to_string()
    .into_bytes()
}

fn body(o: &Outgoing) -> Value {
    serde_json::from_slice(&o.payload).expect("router output is JSON")
}

fn error_type(o: &Outgoing) -> String {
    body(o)["payload"]["error-type"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn header<'a>(o: &'a Outgoing, name: &str) -> Option<&'a [u8]> {
    o.headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_ref())
}

const SWITCH_MAP: &str = "kilda.flrouter.switch-map";

/// Connects `switch` to FL `fl` and consumes the forwarded event and the stored map change.
async fn connect(engine: &Engine, rec: &mut Recorded, fl: &str, switch: &str) {
    engine
        .fl_output(fl, Inbound::new(switch_event(switch, "ACTIVATED")))
        .await
        .unwrap();
    let ev = rec.next_within(WAIT).await;
    assert_eq!(&*ev.topic, "kilda.topo.disco.storm");
    let stored = rec.next_within(WAIT).await;
    assert_eq!(&*stored.topic, SWITCH_MAP);
}

#[actix_rt::test]
async fn switch_event_maps_switch_and_is_forwarded_unchanged() {
    let (engine, mut rec) = start();
    let raw = switch_event(SW1, "ACTIVATED");
    engine
        .fl_output("a", Inbound::new(raw.clone()).key(SW1))
        .await
        .unwrap();
    let ev = rec.next_within(WAIT).await;
    assert_eq!(&*ev.topic, "kilda.topo.disco.storm");
    assert_eq!(ev.payload.as_ref(), raw.as_slice(), "bytes in = bytes out");
    assert_eq!(ev.key.as_deref(), Some(SW1.as_bytes()), "the FL's key kept");
    assert_eq!(
        engine.lookup_switch(SW1).await.unwrap().as_deref(),
        Some("a")
    );
    // The map change is stored, keyed by switch, so it survives a restart.
    let stored = rec.next_within(WAIT).await;
    assert_eq!(&*stored.topic, SWITCH_MAP);
    assert_eq!(stored.key.as_deref(), Some(SW1.as_bytes()));
    assert_eq!(body(&stored)["active"], "a");
    assert_eq!(body(&stored)["connections"][0]["fl"], "a");
    assert_eq!(body(&stored)["connections"][0]["mode"], "read_write");
    assert_eq!(body(&stored)["connections"][0]["via"], "event");
    // A disconnect stores a tombstone; a restart restores what is stored.
    engine
        .fl_output("a", Inbound::new(switch_event(SW1, "DEACTIVATED")))
        .await
        .unwrap();
    let out = rec.until(WAIT, |o| *o.topic == *SWITCH_MAP).await;
    let tomb = out.last().unwrap();
    assert!(tomb.null_value && tomb.key.as_deref() == Some(SW1.as_bytes()));
    let r = engine
        .restore_switch_map(vec![stored_switch(SW2, "b"), stored_switch(SW1, "gone")])
        .await
        .unwrap();
    assert_eq!((r.restored, r.skipped), (1, 1));
    assert_eq!(
        engine.lookup_switch(SW2).await.unwrap().as_deref(),
        Some("b")
    );
    assert!(rec.drain().is_empty(), "restoring writes nothing back");
}

#[actix_rt::test]
async fn command_is_forwarded_byte_for_byte_to_the_owning_fl() {
    let (engine, mut rec) = start();
    connect(&engine, &mut rec, "b", SW2).await;
    let raw = command("c1", SW2);
    engine
        .command(Inbound::new(raw.clone()).reply_to("my.reply").key("c1"))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(&*out.topic, "kilda.speaker_b");
    assert_eq!(out.payload.as_ref(), raw.as_slice());
    assert_eq!(
        out.key.as_deref(),
        Some(&b"c1"[..]),
        "the requester's key kept (OpenKilda matches replies by it)"
    );
    assert_eq!(
        out.partition_key.as_deref(),
        Some(SW2),
        "partitioned by switch, so one switch's commands stay in order"
    );
    assert_eq!(
        header(&out, headers::REPLY_TO),
        Some(&b"my.reply"[..]),
        "the reply-to header travels with the command (a restarted router reads it back)"
    );
}

#[actix_rt::test]
async fn unknown_switch_gets_not_found_at_once_on_the_reply_topic() {
    let (engine, mut rec) = start();
    engine
        .command(Inbound::new(command("c2", SW1)).reply_to("my.reply"))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(&*out.topic, "my.reply");
    assert_eq!(error_type(&out), "NOT_FOUND");
    assert_eq!(body(&out)["correlation_id"], "c2");
    // The router's own answer is journaled, byte for byte, keyed by correlation id.
    let j = rec.journal();
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].key.as_deref(), Some(&b"c2"[..]));
    assert_eq!(j[0].payload, out.payload);
    assert_eq!(header(&j[0], headers::REPLY_TO), Some(&b"my.reply"[..]));
    // Without a reply-to header the default reply topic is used.
    engine
        .command(Inbound::new(command("c3", SW1)))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(&*out.topic, "kilda.northbound.storm");
    assert_eq!(error_type(&out), "NOT_FOUND");
}

#[actix_rt::test]
async fn disconnect_of_the_active_fl_fails_over_and_the_last_one_unmaps() {
    let (engine, mut rec) = start();
    connect(&engine, &mut rec, "a", SW1).await;
    connect(&engine, &mut rec, "b", SW1).await; // b stands by
    assert_eq!(
        engine.lookup_switch(SW1).await.unwrap().as_deref(),
        Some("a")
    );
    engine
        .fl_output("a", Inbound::new(switch_event(SW1, "DEACTIVATED")))
        .await
        .unwrap();
    rec.until(WAIT, |o| *o.topic == *SWITCH_MAP).await;
    assert_eq!(
        engine.lookup_switch(SW1).await.unwrap().as_deref(),
        Some("b")
    );
    engine
        .fl_output("b", Inbound::new(switch_event(SW1, "DEACTIVATED")))
        .await
        .unwrap();
    rec.until(WAIT, |o| *o.topic == *SWITCH_MAP).await; // the event, then the tombstone
    assert_eq!(engine.lookup_switch(SW1).await.unwrap(), None);
    engine
        .command(Inbound::new(command("c4", SW1)))
        .await
        .unwrap();
    assert_eq!(error_type(&rec.next_within(WAIT).await), "NOT_FOUND");
}

#[actix_rt::test]
async fn answer_goes_to_stored_reply_to_and_ack_is_consumed() {
    let (engine, mut rec) = start();
    connect(&engine, &mut rec, "a", SW1).await;
    engine
        .command(Inbound::new(command("c5", SW1)).reply_to("my.reply"))
        .await
        .unwrap();
    rec.next_within(WAIT).await; // forwarded
    engine
        .fl_output("a", Inbound::new(ack("c5")))
        .await
        .unwrap();
    let raw = answer("c5", "org.example.DumpRulesResponse");
    engine
        .fl_output("a", Inbound::new(raw.clone()).key("c5"))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(
        &*out.topic, "my.reply",
        "the ack produced nothing; the answer went to reply-to"
    );
    assert_eq!(out.payload.as_ref(), raw.as_slice());
    assert_eq!(out.key.as_deref(), Some(&b"c5"[..]), "the FL's key kept");
    assert_eq!(
        engine
            .counters()
            .snapshot()
            .iter()
            .find(|(n, _)| *n == "acks_received")
            .unwrap()
            .1,
        1
    );
}

#[actix_rt::test]
async fn untracked_answers_route_by_kind_then_default() {
    let (engine, mut rec) = start();
    engine
        .fl_output("a", Inbound::new(answer("zz", "org.example.PortInfoData")))
        .await
        .unwrap();
    assert_eq!(&*rec.next_within(WAIT).await.topic, "kinds.port");
    engine
        .fl_output("a", Inbound::new(answer("zz", "org.example.Other")))
        .await
        .unwrap();
    assert_eq!(
        &*rec.next_within(WAIT).await.topic,
        "kilda.northbound.storm"
    );
}

#[actix_rt::test]
async fn silent_fl_gets_exactly_one_timeout_and_late_answers_are_dropped() {
    tokio::time::pause();
    let (engine, mut rec) = start();
    let ack_timeout = engine.settings().timeouts.ack;
    connect(&engine, &mut rec, "a", SW1).await;
    engine
        .command(Inbound::new(command("c6", SW1)).reply_to("my.reply"))
        .await
        .unwrap();
    rec.next_within(WAIT).await; // forwarded

    tokio::time::sleep(ack_timeout - Duration::from_millis(100)).await;
    assert!(rec.drain().is_empty(), "no error before the ack timeout");

    let err = rec.next_within(Duration::from_millis(500)).await;
    assert_eq!(&*err.topic, "my.reply");
    assert_eq!(error_type(&err), "OPERATION_TIMED_OUT");
    assert_eq!(body(&err)["correlation_id"], "c6");

    // The late ack and answer are dropped and counted, never forwarded.
    engine
        .fl_output("a", Inbound::new(ack("c6")))
        .await
        .unwrap();
    engine
        .fl_output(
            "a",
            Inbound::new(answer("c6", "org.example.DumpRulesResponse")),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(rec.drain().is_empty(), "exactly one answer: the timeout");
    let drops = engine
        .counters()
        .snapshot()
        .into_iter()
        .find(|(n, _)| *n == "blacklist_drops")
        .unwrap()
        .1;
    assert_eq!(drops, 2);
}

#[actix_rt::test]
async fn blacklist_entry_expires_after_its_ttl() {
    tokio::time::pause();
    let (engine, mut rec) = start();
    let t = engine.settings().timeouts.clone();
    connect(&engine, &mut rec, "a", SW1).await;
    engine
        .command(Inbound::new(command("c7", SW1)))
        .await
        .unwrap();
    rec.next_within(WAIT).await;
    let err = rec.next_within(t.ack * 2).await;
    assert_eq!(error_type(&err), "OPERATION_TIMED_OUT");
    tokio::time::sleep(t.blacklist_ttl + Duration::from_secs(1)).await;
    engine
        .fl_output("a", Inbound::new(answer("c7", "org.example.X")))
        .await
        .unwrap();
    assert_eq!(
        &*rec.next_within(WAIT).await.topic,
        "kilda.northbound.storm",
        "routed by kind once expired"
    );
}

#[actix_rt::test]
async fn an_ack_prevents_the_timeout() {
    tokio::time::pause();
    let (engine, mut rec) = start();
    let ack_timeout = engine.settings().timeouts.ack;
    connect(&engine, &mut rec, "a", SW1).await;
    engine
        .command(Inbound::new(command("c8", SW1)))
        .await
        .unwrap();
    rec.next_within(WAIT).await;
    engine
        .fl_output("a", Inbound::new(ack("c8")))
        .await
        .unwrap();
    tokio::time::sleep(ack_timeout * 3).await;
    assert!(rec.drain().is_empty(), "acked command gets no router error");
}

/// A ticket whose release we can observe.
struct Flag(Arc<AtomicBool>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[actix_rt::test]
async fn command_offset_is_held_until_its_final_answer_is_out() {
    let (outbox, mut rec) = recording_outbox_held();
    let engine = Engine::start(settings(), outbox).expect("valid settings");
    connect(&engine, &mut rec, "a", SW1).await;
    let released = Arc::new(AtomicBool::new(false));
    let ticket = Ticket::new(Flag(released.clone()));
    engine
        .command(Inbound::new(command("c9", SW1)).ticket(ticket))
        .await
        .unwrap();
    let fwd = rec.next_within(WAIT).await;
    drop(fwd); // "delivered"
    engine
        .fl_output("a", Inbound::new(ack("c9")))
        .await
        .unwrap();
    assert!(
        !released.load(Ordering::SeqCst),
        "held while the answer is outstanding"
    );
    engine
        .fl_output("a", Inbound::new(answer("c9", "org.example.R")))
        .await
        .unwrap();
    let ans = rec.next_within(WAIT).await;
    assert!(
        !released.load(Ordering::SeqCst),
        "held until the answer is delivered"
    );
    drop(ans);
    assert!(
        released.load(Ordering::SeqCst),
        "released once the final answer is delivered"
    );
}

#[actix_rt::test]
async fn malformed_json_is_dead_lettered_and_answered_when_a_reply_topic_is_known() {
    let (engine, mut rec) = start();
    engine
        .command(Inbound::new(&b"{not json"[..]).reply_to("my.reply"))
        .await
        .unwrap();
    let mut out = rec.drain();
    out.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(out.len(), 2);
    assert_eq!(&*out[0].topic, "kilda.flrouter.dead-letter");
    assert_eq!(out[0].payload.as_ref(), b"{not json");
    assert!(
        std::str::from_utf8(header(&out[0], headers::DEAD_LETTER_REASON).unwrap())
            .unwrap()
            .contains("malformed JSON")
    );
    assert_eq!(
        header(&out[0], headers::DEAD_LETTER_SOURCE),
        Some(&b"commands"[..])
    );
    assert_eq!(&*out[1].topic, "my.reply");
    assert_eq!(error_type(&out[1]), "REQUEST_INVALID");
    // No reply topic and no correlation id: nobody to answer, the dead letter keeps it.
    engine.command(Inbound::new(&b"[]"[..])).await.unwrap();
    let out = rec.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(&*out[0].topic, "kilda.flrouter.dead-letter");
}

#[actix_rt::test]
async fn missing_correlation_id_or_switch_id_is_request_invalid() {
    let (engine, mut rec) = start();
    let no_cid = json!({"clazz":"C","payload":{"switch_id":SW1}}).to_string();
    engine
        .command(Inbound::new(no_cid).reply_to("my.reply"))
        .await
        .unwrap();
    let out = rec.drain();
    assert_eq!(out.len(), 2);
    assert!(out
        .iter()
        .any(|o| *o.topic == *"my.reply" && error_type(o) == "REQUEST_INVALID"));

    let no_switch = json!({"clazz":"C","correlation_id":"c10","payload":{"clazz":"X"}}).to_string();
    engine.command(Inbound::new(no_switch)).await.unwrap();
    let out = rec.drain();
    let err = out
        .iter()
        .find(|o| *o.topic == *"kilda.northbound.storm")
        .expect("answered on default topic");
    assert_eq!(error_type(err), "REQUEST_INVALID");
    assert_eq!(body(err)["correlation_id"], "c10");
    assert!(body(err)["payload"]["error-description"]
        .as_str()
        .unwrap()
        .contains("no switch id"));
    assert!(out
        .iter()
        .any(|o| *o.topic == *"kilda.flrouter.dead-letter"));
}

#[actix_rt::test]
async fn oversized_command_is_rejected_not_forwarded() {
    let (engine, mut rec) = start();
    connect(&engine, &mut rec, "a", SW1).await;
    let limit = engine.settings().limits.max_message_bytes;
    let big = json!({"clazz":"C","correlation_id":"big","payload":{"switch_id":SW1,"pad":"x".repeat(limit)}}).to_string();
    engine
        .command(Inbound::new(big).reply_to("my.reply"))
        .await
        .unwrap();
    let out = rec.drain();
    assert!(
        out.iter().all(|o| *o.topic != *"kilda.speaker_a"),
        "not forwarded"
    );
    let err = out.iter().find(|o| *o.topic == *"my.reply").unwrap();
    assert_eq!(error_type(err), "REQUEST_INVALID");
    assert!(body(err)["payload"]["error-description"]
        .as_str()
        .unwrap()
        .contains("exceeds the limit"));
}

#[actix_rt::test]
async fn unknown_fl_and_unreadable_fl_output_are_dead_lettered() {
    let (engine, mut rec) = start();
    assert!(engine
        .fl_output("nope", Inbound::new(&b"{}"[..]))
        .await
        .is_err());
    let out = rec.next_within(WAIT).await;
    assert_eq!(&*out.topic, "kilda.flrouter.dead-letter");
    assert_eq!(
        header(&out, headers::DEAD_LETTER_SOURCE),
        Some(&b"fl:nope"[..])
    );
    engine
        .fl_output("a", Inbound::new(&b"garbage"[..]))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(&*out.topic, "kilda.flrouter.dead-letter");
    assert_eq!(
        header(&out, headers::DEAD_LETTER_SOURCE),
        Some(&b"fl:a"[..])
    );
}

#[actix_rt::test]
async fn proxy_restart_keeps_pending_commands() {
    tokio::time::pause();
    let (engine, mut rec) = start();
    connect(&engine, &mut rec, "a", SW1).await;
    engine
        .command(Inbound::new(command("c11", SW1)).reply_to("my.reply"))
        .await
        .unwrap();
    rec.next_within(WAIT).await;
    engine.restart_fl_proxy("a").unwrap();
    let st = engine.fl_status("a").await.unwrap();
    assert_eq!(st.restarts, 1);
    assert_eq!(st.pending, 1);
    // The deadline tick was re-armed by the restart: the silent FL still times out.
    let err = rec.next_within(engine.settings().timeouts.ack * 2).await;
    assert_eq!(&*err.topic, "my.reply");
    assert_eq!(error_type(&err), "OPERATION_TIMED_OUT");
}

/// An outbox whose first send of a message containing `poison` panics: a real failure inside
/// the FL proxy's handler (a bug in a collaborator), not an injected stop.
struct FailingOnce {
    inner: Arc<fl_router_actors::testkit::RecordingOutbox>,
    poison: &'static str,
    failed: AtomicBool,
}

impl fl_router_actors::Outbox for FailingOnce {
    fn send(&self, msg: Outgoing) {
        let hit = msg
            .payload
            .windows(self.poison.len())
            .any(|w| w == self.poison.as_bytes());
        if hit && !self.failed.swap(true, Ordering::SeqCst) {
            panic!("outbox failed sending {}", self.poison);
        }
        self.inner.send(msg)
    }
}

#[actix_rt::test]
async fn a_proxy_that_fails_is_restarted_with_its_pending_commands_and_loses_none() {
    tokio::time::pause();
    let (inner, mut rec) = recording_outbox();
    let outbox = Arc::new(FailingOnce {
        inner,
        poison: "c-boom",
        failed: AtomicBool::new(false),
    });
    let engine = Engine::start(settings(), outbox).expect("valid settings");
    connect(&engine, &mut rec, "a", SW1).await;
    let send = |cid: &'static str| {
        let engine = engine.clone();
        async move {
            engine
                .command(Inbound::new(command(cid, SW1)).reply_to("my.reply"))
                .await
                .unwrap()
        }
    };
    send("c-before").await;
    assert_eq!(
        body(&rec.next_within(WAIT).await)["correlation_id"],
        "c-before"
    );
    // The proxy's handler fails half-way: the command is pending, its forward never went out.
    send("c-boom").await;
    send("c-after").await;
    let after = rec.next_within(WAIT).await;
    assert_eq!(
        body(&after)["correlation_id"],
        "c-after",
        "the proxy kept routing"
    );
    let st = engine.fl_status("a").await.unwrap();
    assert_eq!(
        st.restarts, 1,
        "the failure stopped the proxy and its supervisor restarted it"
    );
    assert_eq!(st.pending, 3, "restarted with every pending command");
    let a = engine
        .mailboxes(false)
        .into_iter()
        .find(|r| r.kind == "fl_proxy" && r.id == "a")
        .unwrap();
    assert_eq!(a.failures, 1);

    // The pending commands still get their FL's answers (the rebuilt index finds them)...
    for cid in ["c-before", "c-after"] {
        engine
            .fl_output(
                "a",
                Inbound::new(answer(cid, "org.example.DumpRulesResponse")),
            )
            .await
            .unwrap();
        let out = rec.next_within(WAIT).await;
        assert_eq!(
            ((&*out.topic), body(&out)["correlation_id"].as_str()),
            ("my.reply", Some(cid))
        );
    }
    // ...and the one whose forward failed gets an answer too: the timeout (rebuilt deadline).
    let err = rec.next_within(engine.settings().timeouts.ack * 2).await;
    assert_eq!(&*err.topic, "my.reply");
    assert_eq!(body(&err)["correlation_id"], "c-boom");
    assert_eq!(error_type(&err), "OPERATION_TIMED_OUT");
    assert_eq!(engine.fl_status("a").await.unwrap().pending, 0);
}

#[actix_rt::test]
async fn chained_answer_is_routed_whole_to_reply_to() {
    let (engine, mut rec) = start();
    connect(&engine, &mut rec, "a", SW1).await;
    let released = Arc::new(AtomicBool::new(false));
    engine
        .command(
            Inbound::new(command("c12", SW1))
                .reply_to("my.reply")
                .ticket(Ticket::new(Flag(released.clone()))),
        )
        .await
        .unwrap();
    drop(rec.next_within(WAIT).await);
    for i in [1, 0, 1, 2] {
        let chunk = json!({"clazz":"org.openkilda.messaging.info.ChunkedInfoMessage","correlation_id":"c12",
            "message_id":format!("{i} : c12"),"total_messages":3,"timestamp":1,"payload":{"clazz":"X","i":i}});
        engine
            .fl_output("a", Inbound::new(chunk.to_string()))
            .await
            .unwrap();
        let out = rec.next_within(WAIT).await;
        assert_eq!(&*out.topic, "my.reply");
        drop(out);
    }
    assert!(
        released.load(Ordering::SeqCst),
        "complete after every index arrived once"
    );
}

#[actix_rt::test]
async fn mailboxes_count_every_send_and_receive() {
    let (engine, mut rec) = start();
    connect(&engine, &mut rec, "a", SW1).await;
    engine
        .command(Inbound::new(command("c13", SW1)))
        .await
        .unwrap();
    rec.next_within(WAIT).await;
    let rows = engine.mailboxes(false);
    let d = rows.iter().find(|r| r.kind == "dispatcher").unwrap();
    // SwitchEvent only: the command took the shard's direct path.
    assert_eq!((d.sent, d.received, d.pending), (1, 1, 0));
    let sh = rows.iter().find(|r| r.kind == "command_shard").unwrap();
    assert_eq!((sh.id.as_str(), sh.sent, sh.received), ("shard-0", 1, 1));
    let a = rows
        .iter()
        .find(|r| r.kind == "fl_proxy" && r.id == "a")
        .unwrap();
    assert_eq!((a.sent, a.received), (2, 2));
}

#[actix_rt::test]
async fn an_ack_without_an_answer_still_ends_in_one_timeout_answer() {
    tokio::time::pause();
    let (engine, mut rec) = start();
    let t = engine.settings().timeouts.clone();
    connect(&engine, &mut rec, "a", SW1).await;
    engine
        .command(Inbound::new(command("c14", SW1)).reply_to("my.reply"))
        .await
        .unwrap();
    rec.next_within(WAIT).await;
    engine
        .fl_output("a", Inbound::new(ack("c14")))
        .await
        .unwrap();
    tokio::time::sleep(t.answer - Duration::from_millis(100)).await;
    assert!(rec.drain().is_empty(), "nothing before the answer deadline");
    let err = rec.next_within(Duration::from_millis(500)).await;
    assert_eq!(&*err.topic, "my.reply");
    assert_eq!(error_type(&err), "OPERATION_TIMED_OUT");
    assert!(body(&err)["payload"]["error-description"]
        .as_str()
        .unwrap()
        .contains("acknowledged"));
    engine
        .fl_output("a", Inbound::new(answer("c14", "org.example.R")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(rec.drain().is_empty(), "the late answer is dropped");
}
