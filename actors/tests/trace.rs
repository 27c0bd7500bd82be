//! The life of one command as `GET /api/commands/{id}` shows it, in-process: every step the
//! engine takes is recorded, the shell's delivery reports add theirs.

use std::time::Duration;

use fl_router_actors::runtime::traces::{Delivery, Life, Step};
use fl_router_actors::testkit::{quiet_settings, recording_outbox, Recorded};
use fl_router_actors::{Engine, Inbound, Outgoing};
use serde_json::json;

const SW1: &str = "00:00:00:00:00:00:00:01";
const WAIT: Duration = Duration::from_secs(1);

fn start() -> (Engine, Recorded) {
    let (outbox, rec) = recording_outbox();
    let mut s = quiet_settings(&["a", "b"]);
    s.failover.grace = Duration::ZERO;
    (Engine::start(s, outbox).expect("valid settings"), rec)
}

fn command(cid: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":cid,"timestamp":1,
           "payload":{"clazz":"org.example.DumpRules","switch_id":SW1}})
    .to_string()
    .into_bytes()
}

fn info(cid: &str, class: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":cid,"timestamp":1,
           "payload":{"clazz":class,"switch_id":SW1,"state":"ACTIVATED"}})
    .to_string()
    .into_bytes()
}

fn origin(offset: i64) -> fl_router_actors::runtime::outbox::Origin {
    fl_router_actors::runtime::outbox::Origin {
        topic: "kilda.speaker".into(),
        partition: 2,
        offset,
        timestamp_ms: None,
    }
}

async fn connect(engine: &Engine, rec: &mut Recorded) {
    let ev = info("ev", "org.openkilda.messaging.info.event.SwitchInfoData");
    engine.fl_output("a", Inbound::new(ev)).await.unwrap();
    rec.next_within(WAIT).await; // the event
    rec.next_within(WAIT).await; // the stored map change
}

/// What the shell does with a delivery report.
fn deliver(out: &Outgoing, offset: i64) {
    if let Some(note) = &out.note {
        note.delivered(0, offset);
    }
}

fn names(life: &Life) -> Vec<String> {
    life.steps
        .iter()
        .map(|s| {
            serde_json::to_value(s).unwrap()["step"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[actix_rt::test]
async fn a_timed_out_commands_life_shows_the_timeout_and_the_late_answer() {
    tokio::time::pause();
    let (engine, mut rec) = start();
    connect(&engine, &mut rec).await;
    let mut msg = Inbound::new(command("t1"))
        .reply_to("my.reply")
        .key("req-key-1");
    msg.origin = Some(origin(41));
    engine.command(msg).await.unwrap();
    let fwd = rec.next_within(WAIT).await;
    deliver(&fwd, 7);
    tokio::time::sleep(engine.settings().timeouts.ack).await;
    let err = rec.next_within(WAIT).await;
    assert_eq!(&*err.topic, "my.reply");
    deliver(&err, 8);
    // The FL answers after all: dropped, and the life says so.
    let late = info("t1", "org.example.DumpRulesResponse");
    engine.fl_output("a", Inbound::new(late)).await.unwrap();
    engine.traces().committed("kilda.speaker", 2, 42);

    let life = engine
        .traces()
        .life("t1")
        .expect("a recent command is kept");
    assert_eq!(
        names(&life),
        [
            "received",
            "forwarded",
            "delivered",
            "router_answered",
            "delivered",
            "late_answer_dropped",
            "offset_committed"
        ],
        "{life:#?}"
    );
    let st = |i: usize| &life.steps[i].step;
    assert_eq!(
        st(0),
        &Step::Received {
            topic: "kilda.speaker".into(),
            partition: 2,
            offset: 41,
            key: Some("req-key-1".into())
        }
    );
    assert!(matches!(st(1), Step::Forwarded { fl, .. } if &**fl == "a"));
    assert!(
        matches!(
            st(2),
            Step::Delivered {
                what: Delivery::Forward,
                offset: 7,
                ..
            }
        ),
        "{:?}",
        st(2)
    );
    assert!(
        matches!(st(3), Step::RouterAnswered { error: "OPERATION_TIMED_OUT", topic, .. } if &**topic == "my.reply"),
        "{:?}",
        st(3)
    );
    assert!(matches!(
        st(4),
        Step::Delivered {
            what: Delivery::Reply,
            ..
        }
    ));
    assert!(matches!(st(6), Step::OffsetCommitted { position: 42, .. }));
}

#[actix_rt::test]
async fn an_answered_commands_life_shows_the_ack_and_the_answer() {
    let (engine, mut rec) = start();
    connect(&engine, &mut rec).await;
    engine
        .command(Inbound::new(command("a1")).reply_to("my.reply"))
        .await
        .unwrap();
    rec.next_within(WAIT).await;
    let ack = info("a1", "org.openkilda.messaging.info.FlReceiveAck");
    engine.fl_output("a", Inbound::new(ack)).await.unwrap();
    let answer = info("a1", "org.example.DumpRulesResponse");
    engine.fl_output("a", Inbound::new(answer)).await.unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(&*out.topic, "my.reply");
    let life = engine.traces().life("a1").unwrap();
    assert_eq!(
        names(&life),
        ["received", "forwarded", "acked_by_fl", "answered"]
    );
    assert!(
        matches!(&life.steps[3].step, Step::Answered { last: true, topic, .. } if &**topic == "my.reply")
    );
    assert!(out.note.is_some(), "the reply's delivery is reported back");
}

#[actix_rt::test]
async fn an_unknown_switch_is_traced_as_not_found() {
    let (engine, mut rec) = start();
    engine
        .command(Inbound::new(command("n1")).reply_to("my.reply"))
        .await
        .unwrap();
    rec.next_within(WAIT).await;
    let life = engine.traces().life("n1").unwrap();
    assert!(
        matches!(
            &life.steps[1].step,
            Step::RouterAnswered {
                error: "NOT_FOUND",
                ..
            }
        ),
        "{life:#?}"
    );
}
