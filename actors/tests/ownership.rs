//! FL ownership (`docs/design/cluster.md`, step 2), in-process with virtual time: an engine
//! forwards commands for an FL another instance owns without keeping them, hands its pending
//! commands over when it loses an FL, and asks and judges only the FLs it owns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fl_router_actors::liveness::FlStatus;
use fl_router_actors::settings::{FlOwnership, Timeouts};
use fl_router_actors::testkit::{
    body, class_of, quiet_settings, recording_outbox_held, start_recorded, stored_switch,
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

fn counter(engine: &Engine, name: &str) -> u64 {
    engine
        .counters()
        .snapshot()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, v)| v)
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
    assert_eq!(fwd.topic, engine.settings().topics.fl_read_topics("b")[0]);
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
        (err.topic.as_str(), body(&err)["correlation_id"].as_str()),
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
                o.topic == topics.control_topic(fl) && class_of(o).ends_with("AliveRequest")
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
