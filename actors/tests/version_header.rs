//! The version header OpenKilda's consumers require, in-process: every record the router makes
//! carries exactly one; an answer takes its command's value, a spontaneous record the value of
//! the side it goes to (learned, the configured one until then); forwarded records keep theirs.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use fl_router_actors::settings::Classes;
use fl_router_actors::settings::VersionHeader;
use fl_router_actors::testkit::{class_of, quiet_settings, start_recorded};
use fl_router_actors::{Inbound, Outgoing, Settings};
use serde_json::json;

const H: &str = "kafka.message.version.header";
const S1: &str = "00:00:00:00:00:00:00:01";
const LONG: Duration = Duration::from_secs(60);

fn settings() -> Settings {
    let mut s = quiet_settings(&["a"]);
    s.protocol.version_header = VersionHeader {
        name: H.into(),
        value: Some("blue".into()),
        learn: true,
    };
    s.timeouts.alive_interval = Duration::from_secs(2);
    s
}

fn versions(o: &Outgoing) -> Vec<String> {
    o.headers
        .iter()
        .filter(|(n, _)| n == H)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn with_version(payload: String, v: &str) -> Inbound {
    let mut m = Inbound::new(payload);
    m.headers
        .push((Cow::Borrowed(H), Bytes::from(v.to_string())));
    m
}

fn command(cid: &str, sw: &str) -> String {
    json!({"clazz": Classes::default().command_message, "correlation_id": cid, "timestamp": 1,
           "payload": {"clazz": "org.openkilda.messaging.command.switches.DumpRulesRequest", "switch_id": sw}})
    .to_string()
}

fn info(cid: &str, payload: serde_json::Value) -> String {
    json!({"clazz": Classes::default().info_message, "correlation_id": cid, "timestamp": 1, "payload": payload})
        .to_string()
}

#[actix_rt::test]
async fn records_the_router_makes_carry_the_version_of_their_side_or_of_what_they_answer() {
    tokio::time::pause();
    let (engine, mut rec) = start_recorded(settings());
    let c = Classes::default();
    // Nothing learned yet: the configured value.
    let alive = rec
        .until(LONG, |o| class_of(o) == c.alive_request)
        .await
        .pop()
        .unwrap();
    assert_eq!(versions(&alive), vec!["blue"]);

    // FL a speaks green: its next alive request is green; the controllers' side is not.
    engine
        .fl_output(
            "a",
            with_version(info("x", json!({"clazz": c.alive_response})), "green"),
        )
        .await
        .unwrap();
    let alive = rec
        .until(LONG, |o| class_of(o) == c.alive_request)
        .await
        .pop()
        .unwrap();
    assert_eq!(versions(&alive), vec!["green"]);

    // A command of version cyan for an unknown switch: its error is cyan, exactly once.
    engine
        .command(with_version(command("c1", S1), "cyan").reply_to("r"))
        .await
        .unwrap();
    let err = rec.until(LONG, |o| *o.topic == *"r").await.pop().unwrap();
    assert_eq!(versions(&err), vec!["cyan"]);

    // A command without the header gets the controllers' newest: cyan, learned from c1.
    engine
        .command(Inbound::new(command("c2", S1)).reply_to("r"))
        .await
        .unwrap();
    let err = rec.until(LONG, |o| *o.topic == *"r").await.pop().unwrap();
    assert_eq!(versions(&err), vec!["cyan"]);

    // A notice to the controllers (an availability change): theirs too.
    let up = |state: &str, mode_event: &str| {
        with_version(
            info(
                "e",
                json!({"clazz": "org.openkilda.messaging.info.event.SwitchInfoData", "switch_id": S1, "state": state}),
            ),
            mode_event,
        )
    };
    engine
        .fl_output("a", up("ACTIVATED", "green"))
        .await
        .unwrap();
    engine.fl_output("a", up("ADDED", "green")).await.unwrap();
    let notice = rec
        .until(LONG, |o| class_of(o) == c.switch_availability_notification)
        .await
        .pop()
        .unwrap();
    assert_eq!(versions(&notice), vec!["cyan"]);

    // A forwarded command keeps its own header, whatever the router learned.
    engine
        .command(with_version(command("c3", S1), "magenta"))
        .await
        .unwrap();
    let fwd = rec
        .until(LONG, |o| *o.topic == *"kilda.speaker_a")
        .await
        .pop()
        .unwrap();
    assert_eq!(versions(&fwd), vec!["magenta"]);
}

#[actix_rt::test]
async fn without_a_header_name_nothing_is_stamped() {
    tokio::time::pause();
    let mut s = settings();
    s.protocol.version_header = VersionHeader::default();
    let (engine, mut rec) = start_recorded(s);
    engine
        .command(with_version(command("c1", S1), "cyan").reply_to("r"))
        .await
        .unwrap();
    let err = rec.until(LONG, |o| *o.topic == *"r").await.pop().unwrap();
    assert!(versions(&err).is_empty());
    let alive = rec
        .until(LONG, |o| class_of(o) == Classes::default().alive_request)
        .await
        .pop()
        .unwrap();
    assert!(versions(&alive).is_empty());
}
