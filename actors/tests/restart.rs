//! After a restart: commands read again get the outcome they already had, answers to commands
//! a previous incarnation forwarded reach their reply-to, and nothing gets two different
//! outcomes (in-process; what the shell reads back from Kafka is given as `PriorRecord`s).

use std::time::Duration;

use bytes::Bytes;
use fl_router_actors::routing::replay::PriorRecord;
use fl_router_actors::runtime::clock::now_millis;
use fl_router_actors::runtime::outbox::headers;
use fl_router_actors::testkit::{quiet_settings, recording_outbox, stored_switch, Recorded};
use fl_router_actors::{Engine, Inbound, Outgoing};
use serde_json::{json, Value};

const SW1: &str = "00:00:00:00:00:00:00:01";
const WAIT: Duration = Duration::from_secs(5);

fn command(cid: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":cid,"timestamp":1,
           "payload":{"clazz":"org.example.DumpRules","switch_id":SW1}})
    .to_string()
    .into_bytes()
}

fn answer(cid: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":cid,"timestamp":2,
           "payload":{"clazz":"org.example.Rules","rules":[1]}})
    .to_string()
    .into_bytes()
}

fn body(o: &Outgoing) -> Value {
    serde_json::from_slice(&o.payload).unwrap_or(Value::Null)
}

/// A command read again (below the command partition's end at start).
fn again(msg: Inbound) -> Inbound {
    let mut msg = msg;
    msg.origin = Some(fl_router_actors::runtime::outbox::Origin {
        topic: "cmds".into(),
        partition: 0,
        offset: 7,
        timestamp_ms: None,
    });
    msg
}

fn forwarded(cid: &str, at_ms: u64) -> PriorRecord {
    PriorRecord::Forwarded {
        fl: "a".into(),
        cid: cid.into(),
        reply_to: Some(format!("reply.{cid}")),
        at_ms,
    }
}

async fn start() -> (Engine, Recorded) {
    let (outbox, mut rec) = recording_outbox();
    let engine = Engine::start(quiet_settings(&["a"]), outbox).unwrap();
    engine
        .restore_switch_map(vec![stored_switch(SW1, "a")])
        .await
        .unwrap();
    let now = now_millis();
    let error = Bytes::from(
        json!({"clazz":"org.openkilda.messaging.error.ErrorMessage","correlation_id":"c-err",
               "payload":{"error-type":"NOT_FOUND"}})
        .to_string(),
    );
    // The command topic ended at offset 100 when the router started.
    let until = [(("cmds".to_string(), 0), 100)].into_iter().collect();
    engine.load_previous(
        vec![
            forwarded("c-open", now),
            forwarded("c-late", now),
            forwarded("c-done", now - 100),
            PriorRecord::Answered {
                cid: "c-done".into(),
            },
            forwarded("c-stale", now - 60_000),
            PriorRecord::RouterError {
                cid: "c-err".into(),
                topic: "reply.c-err".into(),
                key: Some(Bytes::from_static(b"k")),
                body: error,
            },
        ],
        until,
    );
    assert!(rec.drain().is_empty());
    (engine, rec)
}

#[actix_rt::test]
async fn a_command_read_again_gets_the_outcome_it_already_had() {
    let (engine, mut rec) = start().await;

    // Answered before the crash: nothing is sent again.
    engine
        .command(again(
            Inbound::new(command("c-done")).reply_to("reply.c-done"),
        ))
        .await
        .unwrap();
    // Answered by the router itself: the same bytes, to the same topic, with the same key.
    engine
        .command(again(
            Inbound::new(command("c-err")).reply_to("reply.c-err"),
        ))
        .await
        .unwrap();
    let repeated = rec.next_within(WAIT).await;
    assert_eq!(&*repeated.topic, "reply.c-err");
    assert_eq!(repeated.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(body(&repeated)["payload"]["error-type"], "NOT_FOUND");
    // Never seen before: forwarded as usual.
    engine
        .command(again(
            Inbound::new(command("c-new")).reply_to("reply.c-new"),
        ))
        .await
        .unwrap();
    let fwd = rec.next_within(WAIT).await;
    assert_eq!(
        ((&*fwd.topic), body(&fwd)["correlation_id"].as_str()),
        ("kilda.speaker_a", Some("c-new")),
        "nothing was sent for c-done"
    );
    let c = engine.counters().snapshot();
    let get = |n: &str| c.iter().find(|(k, _)| *k == n).unwrap().1;
    assert_eq!(get("replayed_answered"), 1);
    assert_eq!(get("replayed_repeated"), 1);
    // Read after the start (a new command reusing an answered id): forwarded, not skipped.
    let mut new = Inbound::new(command("c-done")).reply_to("reply.c-done");
    new.origin = Some(fl_router_actors::runtime::outbox::Origin {
        topic: "cmds".into(),
        partition: 0,
        offset: 100,
        timestamp_ms: None,
    });
    engine.command(new).await.unwrap();
    let fwd = rec.next_within(WAIT).await;
    assert_eq!(body(&fwd)["correlation_id"], "c-done");
    assert_eq!(&*fwd.topic, "kilda.speaker_a");
}

#[actix_rt::test]
async fn a_forwarded_command_is_adopted_not_forwarded_twice_and_answered_once() {
    let (engine, mut rec) = start().await;
    engine
        .command(again(
            Inbound::new(command("c-open")).reply_to("reply.c-open"),
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        rec.drain().is_empty(),
        "adopted: the FL has it already, no second forward"
    );
    assert_eq!(engine.fl_status("a").await.unwrap().pending, 1);
    engine
        .fl_output("a", Inbound::new(answer("c-open")))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(&*out.topic, "reply.c-open");
    // The FL's answer replayed from its uncommitted backlog: a counted duplicate.
    engine
        .fl_output("a", Inbound::new(answer("c-open")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rec.drain().is_empty(), "one answer only");
}

#[actix_rt::test]
async fn an_answer_to_a_previous_forward_reaches_its_reply_to_not_the_default_topic() {
    let (engine, mut rec) = start().await;
    // Read from the FL backlog before the command is read again.
    engine
        .fl_output("a", Inbound::new(answer("c-late")))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(&*out.topic, "reply.c-late");
    // ... so when the command is read again, its answer is known to be out.
    engine
        .command(again(
            Inbound::new(command("c-late")).reply_to("reply.c-late"),
        ))
        .await
        .unwrap();
    // A second copy of the answer is dropped, and a message nobody asked for still goes by kind.
    engine
        .fl_output("a", Inbound::new(answer("c-late")))
        .await
        .unwrap();
    engine
        .fl_output("a", Inbound::new(answer("unsolicited")))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(body(&out)["correlation_id"], "unsolicited");
    assert_eq!(&*out.topic, "kilda.northbound.storm");
    assert!(rec.drain().is_empty());
    let c = engine.counters().snapshot();
    let get = |n: &str| c.iter().find(|(k, _)| *k == n).unwrap().1;
    assert_eq!(get("previous_answers_routed"), 1);
    assert_eq!(get("duplicate_answers_dropped"), 1);
    assert_eq!(get("replayed_answered"), 1);
}

#[actix_rt::test]
async fn an_adopted_command_past_its_deadline_times_out_once() {
    let (engine, mut rec) = start().await;
    engine
        .command(again(
            Inbound::new(command("c-stale")).reply_to("reply.c-stale"),
        ))
        .await
        .unwrap();
    let err = rec.next_within(WAIT).await;
    assert_eq!(&*err.topic, "reply.c-stale");
    assert_eq!(body(&err)["payload"]["error-type"], "OPERATION_TIMED_OUT");
    // Journaled like any router answer, with where it went.
    let j = rec.journal();
    assert_eq!(j.len(), 1);
    let to = j[0]
        .headers
        .iter()
        .find(|(n, _)| *n == headers::REPLY_TO)
        .map(|(_, v)| v.clone());
    assert_eq!(to.as_deref(), Some(&b"reply.c-stale"[..]));
}

#[actix_rt::test]
async fn a_second_answer_to_a_command_answered_here_is_dropped_not_routed_by_kind() {
    // Forwarded twice (its first forward unknown to this incarnation): the FL answers twice.
    let (engine, mut rec) = start().await;
    engine
        .command(Inbound::new(command("c-twice")).reply_to("reply.c-twice"))
        .await
        .unwrap();
    let fwd = rec.next_within(WAIT).await;
    assert_eq!(body(&fwd)["correlation_id"], "c-twice");
    for _ in 0..2 {
        engine
            .fl_output("a", Inbound::new(answer("c-twice")))
            .await
            .unwrap();
    }
    let out = rec.next_within(WAIT).await;
    assert_eq!(&*out.topic, "reply.c-twice");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        rec.drain().is_empty(),
        "the second answer goes nowhere (not to the default topic)"
    );
    let dropped = engine
        .counters()
        .snapshot()
        .into_iter()
        .find(|(n, _)| *n == "duplicate_answers_dropped")
        .map_or(0, |(_, v)| v);
    assert_eq!(dropped, 1);
}

/// One deadline rule wherever a command becomes pending: a command of a class with a longer
/// deadline (`timeouts.by_class`, as OpenKilda's dumps: 60 s against an ack of 10 s), read
/// again 45 s after its forward, is pending again for the 15 s its class has left — not
/// forgotten (a second forward) nor timed out at once.
#[actix_rt::test]
async fn a_long_deadline_command_read_again_keeps_its_class_deadline() {
    let (outbox, mut rec) = recording_outbox();
    let mut settings = quiet_settings(&["a"]);
    settings.timeouts.ack = Duration::from_secs(10);
    settings.timeouts.answer = Duration::from_secs(30);
    settings.timeouts.blacklist_ttl = Duration::from_secs(5);
    settings
        .timeouts
        .by_class
        .insert("org.example.Dump*".into(), Duration::from_secs(60).into());
    let engine = Engine::start(settings, outbox).unwrap();
    engine
        .restore_switch_map(vec![stored_switch(SW1, "a")])
        .await
        .unwrap();
    let until = [(("cmds".to_string(), 0), 100)].into_iter().collect();
    engine.load_previous(vec![forwarded("c-dump", now_millis() - 45_000)], until);

    engine
        .command(again(
            Inbound::new(command("c-dump")).reply_to("reply.c-dump"),
        ))
        .await
        .unwrap();
    // Several deadline ticks: neither a forward nor a timeout comes out meanwhile.
    let early = rec.collect_for(Duration::from_millis(500)).await;
    assert!(
        early.is_empty(),
        "nothing is sent for a command still within its class deadline: {:?}",
        early.iter().map(body).collect::<Vec<_>>()
    );
    engine
        .fl_output("a", Inbound::new(answer("c-dump")))
        .await
        .unwrap();
    let first = rec.next_within(WAIT).await;
    assert_eq!(
        ((&*first.topic), body(&first)["payload"]["clazz"].as_str()),
        ("reply.c-dump", Some("org.example.Rules")),
        "the FL's answer is the first thing out (no second forward, no timeout): {:?}",
        body(&first)
    );
    assert_eq!(
        fl_router_actors::testkit::counter(&engine, "replayed_adopted"),
        1
    );
    assert!(rec.drain().is_empty());
}
