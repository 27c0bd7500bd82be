//! FL ownership (`docs/design/cluster.md`, step 2), in-process with virtual time: an engine
//! forwards commands for an FL another instance owns without keeping them, hands its pending
//! commands over when it loses an FL, and asks and judges only the FLs it owns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fl_router_actors::fl::liveness::FlStatus;
use fl_router_actors::settings::{FlOwnership, Timeouts};
use fl_router_actors::testkit::{
    body, class_of, counter, quiet_settings, recording_outbox_held, start_recorded, stored_switch,
};
use fl_router_actors::{Engine, Inbound, Settings, Ticket};
use serde_json::json;

const SW1: &str = "00:00:00:00:00:00:00:01";
const WAIT: Duration = Duration::from_secs(1);

fn settings() -> Settings {
    let mut s = quiet_settings(&["a", "b"]);
    s.failover.grace = Duration::ZERO;
    s
}

fn command(cid: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":cid,"timestamp":1,
           "payload":{"clazz":"org.example.DumpRules","switch_id":SW1}})
    .to_string()
    .into_bytes()
}

fn answer(cid: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":cid,"timestamp":1,
           "payload":{"clazz":"org.example.DumpRulesResponse","switch_id":SW1}})
    .to_string()
    .into_bytes()
}

/// A ticket whose release we can observe.
struct Flag(Arc<AtomicBool>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[actix_rt::test]
async fn a_command_for_an_fl_owned_elsewhere_is_forwarded_and_not_kept() {
    tokio::time::pause();
    let (outbox, mut rec) = recording_outbox_held();
    let engine = Engine::start(settings(), outbox).expect("valid settings");
    engine
        .restore_switch_map(vec![stored_switch(SW1, "b")])
        .await
        .unwrap();
    engine.set_fl_owned("b", false).unwrap();
    let released = Arc::new(AtomicBool::new(false));
    let cmd = command("c1");
    engine
        .command(
            Inbound::new(cmd.clone())
                .reply_to("my.reply")
                .ticket(Ticket::new(Flag(released.clone()))),
        )
        .await
        .unwrap();
    let fwd = rec.next_within(WAIT).await;
    assert_eq!(&*fwd.topic, engine.settings().topics.fl_read_topics("b")[0]);
    assert_eq!(&fwd.payload[..], &cmd[..], "byte for byte");
    let st = engine.fl_status("b").await.unwrap();
    assert_eq!(
        (st.pending, st.owned),
        (0, false),
        "not kept: b's owner adopts it"
    );
    assert!(
        !released.load(Ordering::SeqCst),
        "held until the forward is delivered"
    );
    drop(fwd);
    assert!(
        released.load(Ordering::SeqCst),
        "the input is done once the forward is delivered"
    );
    assert_eq!(counter(&engine, "commands_handed_over"), 1);
    // Its deadline is the owner's to judge: nothing from here.
    tokio::time::sleep(engine.settings().timeouts.ack * 3).await;
    assert!(rec.drain().is_empty());
}

#[actix_rt::test]
async fn losing_an_fl_hands_its_pending_commands_over_unanswered_and_winning_it_back_keeps_them_again(
) {
    tokio::time::pause();
    let (engine, mut rec) = start_recorded(settings());
    let ack = engine.settings().timeouts.ack;
    engine
        .restore_switch_map(vec![stored_switch(SW1, "a")])
        .await
        .unwrap();
    for cid in ["c2", "c3"] {
        engine
            .command(Inbound::new(command(cid)).reply_to("my.reply"))
            .await
            .unwrap();
        rec.next_within(WAIT).await; // forwarded
    }
    assert_eq!(engine.fl_status("a").await.unwrap().pending, 2);

    engine.set_fl_owned("a", false).unwrap();
    let st = engine.fl_status("a").await.unwrap();
    assert_eq!((st.pending, st.owned), (0, false));
    assert_eq!(counter(&engine, "commands_handed_over"), 2);
    // No answer from here: no timeout, and an answer read before the loss is not routed.
    engine
        .fl_output("a", Inbound::new(answer("c2")))
        .await
        .unwrap();
    tokio::time::sleep(ack * 3).await;
    assert!(rec.drain().is_empty(), "the new owner answers them");
    assert_eq!(counter(&engine, "fl_messages_not_owned"), 1);

    engine.set_fl_owned("a", true).unwrap();
    engine
        .command(Inbound::new(command("c4")).reply_to("my.reply"))
        .await
        .unwrap();
    rec.next_within(WAIT).await;
    assert_eq!(
        engine.fl_status("a").await.unwrap().pending,
        1,
        "kept again"
    );
    let err = rec.next_within(ack * 2).await;
    assert_eq!(
        ((&*err.topic), body(&err)["correlation_id"].as_str()),
        ("my.reply", Some("c4"))
    );
    assert_eq!(body(&err)["payload"]["error-type"], "OPERATION_TIMED_OUT");
}

#[actix_rt::test]
async fn only_owned_fls_are_asked_if_alive_and_judged() {
    tokio::time::pause();
    let mut s = settings();
    s.engine.ownership = FlOwnership::Assigned;
    let t = Timeouts::default();
    s.timeouts.alive_interval = t.alive_interval;
    s.timeouts.alive_timeout = t.alive_timeout;
    let (engine, mut rec) = start_recorded(s);
    engine.set_fl_owned("a", true).unwrap();
    // Neither FL says anything for several alive timeouts.
    let seen = rec.collect_for(t.alive_timeout * 3).await;
    let topics = engine.settings().topics.clone();
    let asked = |fl: &str| {
        seen.iter()
            .filter(|o| {
                *o.topic == *topics.control_topic(fl) && class_of(o).ends_with("AliveRequest")
            })
            .count()
    };
    assert!(asked("a") >= 3, "the owned FL is asked every interval");
    assert_eq!(asked("b"), 0, "the other FL is its owner's to ask");
    assert_eq!(
        engine.fl_liveness("a"),
        Some(FlStatus::Offline),
        "the silent owned FL is judged"
    );
    assert_eq!(
        engine.fl_liveness("b"),
        Some(FlStatus::Starting),
        "the other is not"
    );
    let outages: Vec<_> = seen
        .iter()
        .filter(|o| class_of(o).ends_with("FlOutageNotification"))
        .map(|o| body(o)["payload"]["fl_id"].clone())
        .collect();
    assert_eq!(outages.len(), 1, "one outage, the owned FL's: {outages:?}");
}

/// What the shell hands the engine for a forward it reads back from an FL read topic.
fn read_back(fwd: &fl_router_actors::Outgoing, offset: i64, ticket: Ticket) -> Inbound {
    let mut m = Inbound::new(fwd.payload.clone()).ticket(ticket);
    m.key = fwd.key.clone();
    m.headers = fwd.headers.clone();
    m.reply_to = fwd
        .headers
        .iter()
        .find(|(k, _)| k == fl_router_actors::runtime::outbox::headers::REPLY_TO)
        .and_then(|(_, v)| std::str::from_utf8(v).ok().map(std::sync::Arc::from));
    m.origin = Some(fl_router_actors::runtime::outbox::Origin {
        topic: (&*fwd.topic).into(),
        partition: 0,
        offset,
        timestamp_ms: Some(fl_router_actors::runtime::clock::now_millis()),
    });
    m
}

fn cluster_instance() -> (Engine, fl_router_actors::testkit::Recorded) {
    let mut s = settings();
    s.engine.ownership = FlOwnership::Assigned;
    let (engine, rec) = start_recorded(s);
    engine.set_fl_owned("a", true).unwrap();
    (engine, rec)
}

#[actix_rt::test]
async fn a_cluster_instance_keeps_a_command_only_by_adopting_its_forward() {
    tokio::time::pause();
    let (engine, mut rec) = cluster_instance();
    engine
        .restore_switch_map(vec![stored_switch(SW1, "a")])
        .await
        .unwrap();
    for cid in ["c5", "c6"] {
        engine
            .command(Inbound::new(command(cid)).reply_to("my.reply"))
            .await
            .unwrap();
    }
    let forwards = [rec.next_within(WAIT).await, rec.next_within(WAIT).await];
    assert_eq!(
        engine.fl_status("a").await.unwrap().pending,
        0,
        "even for an FL it owns, a cluster instance does not keep what it forwards"
    );
    let released = Arc::new(AtomicBool::new(false));
    let records = vec![
        read_back(&forwards[0], 0, Ticket::new(Flag(released.clone()))),
        read_back(&forwards[1], 1, Ticket::none()),
    ];
    engine.fl_forwards(records).await.unwrap();
    assert_eq!(engine.fl_status("a").await.unwrap().pending, 2, "adopted");
    assert_eq!(counter(&engine, "forwards_adopted"), 2);

    engine
        .fl_output("a", Inbound::new(answer("c5")))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(
        ((&*out.topic), body(&out)["correlation_id"].as_str()),
        ("my.reply", Some("c5")),
        "the answer goes to the reply-to the forward carried"
    );
    drop(out);
    assert!(
        released.load(Ordering::SeqCst),
        "the read topic's record is done once the final answer is out"
    );
    // The silent one times out here, from its record's time.
    let err = rec.next_within(engine.settings().timeouts.ack * 2).await;
    assert_eq!(body(&err)["correlation_id"], "c6");
    assert_eq!(body(&err)["payload"]["error-type"], "OPERATION_TIMED_OUT");
}

#[actix_rt::test]
async fn an_answer_that_overtakes_its_forward_waits_for_the_adoption() {
    tokio::time::pause();
    let (engine, mut rec) = cluster_instance();
    engine
        .restore_switch_map(vec![stored_switch(SW1, "a")])
        .await
        .unwrap();
    // The shell reports how far it has read: the FL's write topic up to now, its read topic
    // not yet.
    engine.track_fl_reads();
    engine
        .command(Inbound::new(command("c7")).reply_to("my.reply"))
        .await
        .unwrap();
    let fwd = rec.next_within(WAIT).await;
    engine.fl_read_up_to("a", tokio::time::Instant::now());
    engine
        .fl_output("a", Inbound::new(answer("c7")))
        .await
        .unwrap();
    engine
        .fl_output("a", Inbound::new(answer("never-forwarded")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rec.drain().is_empty(), "both wait for the read topic");
    assert_eq!(counter(&engine, "answers_held"), 2);

    engine
        .fl_forwards(vec![read_back(&fwd, 0, Ticket::none())])
        .await
        .unwrap();
    engine.fl_forwards_read_up_to("a", tokio::time::Instant::now());
    let out = rec
        .until(WAIT, |o| body(o)["correlation_id"] == "never-forwarded")
        .await;
    let to = |cid: &str| {
        out.iter()
            .find(|o| body(o)["correlation_id"] == cid)
            .map(|o| o.topic.clone())
    };
    assert_eq!(
        to("c7").as_deref(),
        Some("my.reply"),
        "matched once adopted"
    );
    assert_eq!(
        to("never-forwarded").as_deref(),
        Some(engine.settings().topics.default_reply.as_str()),
        "an answer to nothing is routed by kind once the read topic says so, not lost"
    );
}

#[actix_rt::test]
async fn a_forward_whose_command_already_has_its_outcome_is_not_adopted() {
    let (engine, mut rec) = cluster_instance();
    engine
        .restore_switch_map(vec![stored_switch(SW1, "a")])
        .await
        .unwrap();
    // Taking FL a over, the shell read back what its previous owner settled: c8's answer was
    // delivered.
    use fl_router_actors::routing::replay::PriorRecord;
    engine.load_previous(
        vec![
            PriorRecord::Forwarded {
                fl: "a".into(),
                cid: "c8".into(),
                reply_to: Some("my.reply".into()),
                at_ms: fl_router_actors::runtime::clock::now_millis(),
            },
            PriorRecord::Answered { cid: "c8".into() },
        ],
        Default::default(),
    );
    for cid in ["c8", "c9"] {
        engine
            .command(Inbound::new(command(cid)).reply_to("my.reply"))
            .await
            .unwrap();
    }
    let fwds = [rec.next_within(WAIT).await, rec.next_within(WAIT).await];
    let records = fwds
        .iter()
        .enumerate()
        .map(|(i, f)| read_back(f, i as i64, Ticket::none()))
        .collect();
    engine.fl_forwards(records).await.unwrap();
    assert_eq!(
        engine.fl_status("a").await.unwrap().pending,
        1,
        "only c9 waits for its answer"
    );
    assert_eq!(counter(&engine, "forwards_settled"), 1);
    assert_eq!(counter(&engine, "forwards_adopted"), 1);
}

fn chain(cid: &str, index: u64, total: u64, sw: &str) -> Vec<u8> {
    let c = fl_router_actors::settings::Classes::default();
    json!({"clazz": c.chunked_info_message, "correlation_id": cid, "timestamp": 1,
           "message_id": format!("{index} : {cid}"), "total_messages": total,
           "payload": {"clazz": c.network_dump_switch, "switch_record": {"datapath": sw}, "write_mode": true}})
    .to_string()
    .into_bytes()
}

#[actix_rt::test]
async fn a_controllers_sync_request_in_a_cluster_is_run_where_each_fl_is_owned() {
    tokio::time::pause();
    let (outbox, mut rec) = recording_outbox_held();
    let mut s = settings();
    s.engine.ownership = FlOwnership::Assigned;
    let engine = Engine::start(s, outbox).expect("valid settings");
    engine.set_fl_owned("a", true).unwrap();
    engine.track_fl_reads();
    let t = engine.settings().topics.clone();
    let classes = engine.settings().protocol.classes.clone();
    let req = json!({"clazz": classes.command_message, "correlation_id": "ctl-1", "timestamp": 1,
                     "payload": {"clazz": classes.sync_request, "dump_id": "d1"}})
    .to_string();
    let input_done = Arc::new(AtomicBool::new(false));
    engine
        .command(
            Inbound::new(req.clone())
                .reply_to("ctl.reply")
                .ticket(Ticket::new(Flag(input_done.clone()))),
        )
        .await
        .unwrap();
    // The reading instance runs no session: every FL's read topic gets the request unchanged.
    let copies = [rec.next_within(WAIT).await, rec.next_within(WAIT).await];
    for (copy, fl) in copies.iter().zip(["a", "b"]) {
        assert_eq!(&*copy.topic, t.control_topic(fl));
        assert_eq!(copy.payload.as_ref(), req.as_bytes(), "unchanged for {fl}");
    }
    assert_eq!(counter(&engine, "sync_sessions_started"), 0);
    assert_eq!(counter(&engine, "sync_requests_handed_over"), 1);
    // What the shell will read back from the read topics (each record its own input).
    let adopted_done = Arc::new(AtomicBool::new(false));
    let records = vec![
        read_back(&copies[0], 0, Ticket::new(Flag(adopted_done.clone()))),
        read_back(&copies[1], 0, Ticket::none()),
    ];
    let mut resent = read_back(&copies[0], 1, Ticket::none());
    resent.headers.push((
        fl_router_actors::runtime::outbox::headers::SYNC_RESEND.into(),
        bytes::Bytes::from_static(b"1"),
    ));
    drop(copies);
    assert!(
        input_done.load(Ordering::SeqCst),
        "the input is done once every copy is delivered"
    );

    // FL a's first chain message overtakes the adoption of its request: it waits for it.
    engine.fl_read_up_to("a", tokio::time::Instant::now());
    engine
        .fl_output("a", Inbound::new(chain("ctl-1", 0, 2, SW1)))
        .await
        .unwrap();
    engine.fl_forwards(records).await.unwrap();
    engine.fl_forwards_read_up_to("a", tokio::time::Instant::now());
    assert_eq!(
        counter(&engine, "sync_requests_adopted"),
        1,
        "adopted for the owned FL only"
    );
    // A session's re-send is not a new request.
    engine.fl_forwards(vec![resent]).await.unwrap();
    engine
        .fl_output(
            "a",
            Inbound::new(chain("ctl-1", 1, 2, "00:00:00:00:00:00:00:02")),
        )
        .await
        .unwrap();
    let seen = rec.until(WAIT * 5, |o| *o.topic == *"ctl.reply").await;
    assert!(
        !seen.iter().any(|o| *o.topic == *t.control_topic("a")),
        "the FL has the request already: not sent again"
    );
    let proxied = seen
        .iter()
        .filter(|o| *o.topic == *t.events && body(o)["clazz"] == classes.chunked_info_message)
        .count();
    assert_eq!(proxied, 2, "both chain messages proxied, the early one too");
    let summary = body(seen.last().unwrap())["payload"].clone();
    assert_eq!(summary["trigger"], "controller");
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["fls"].as_array().unwrap().len(), 1, "{summary}");
    assert_eq!(summary["fls"][0]["fl_id"], "a");
    assert_eq!(summary["fls"][0]["switches"], 2);
    assert_eq!(counter(&engine, "sync_requests_adopted"), 1);
    drop(seen);
    assert!(
        adopted_done.load(Ordering::SeqCst),
        "the read topic's record is done once the summary is out"
    );
}

#[actix_rt::test]
async fn a_chain_for_a_router_sync_that_is_not_running_here_goes_to_the_events_topic() {
    // The FL's previous owner asked for this chain; its session ended with it.
    let (engine, mut rec) = cluster_instance();
    engine.track_fl_reads();
    engine.fl_read_up_to("a", tokio::time::Instant::now());
    engine.fl_forwards_read_up_to("a", tokio::time::Instant::now());
    let chain = chain("flrouter-sync-elsewhere", 0, 1, SW1);
    engine
        .fl_output("a", Inbound::new(chain.clone()))
        .await
        .unwrap();
    // A dump entry is true whoever asked: the switch is mapped (a fact for the other
    // instances) and the entry forwarded to the events topic, never to a reply topic.
    let seen = rec
        .until(WAIT, |o| *o.topic == *engine.settings().topics.events)
        .await;
    assert_eq!(seen.last().unwrap().payload.as_ref(), chain.as_slice());
    assert!(seen
        .iter()
        .all(|o| *o.topic == *engine.settings().topics.switch_map
            || *o.topic == *engine.settings().topics.events));
    assert_eq!(counter(&engine, "sync_chain_messages"), 1);
    assert_eq!(
        engine.lookup_switch(SW1).await.unwrap().as_deref(),
        Some("a")
    );
}
