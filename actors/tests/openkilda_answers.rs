//! Where the router's own answers go in an OpenKilda deployment, in-process: to the topic the
//! requester reads the FL's answers on, in the family it reads; commands the speaker does not
//! always answer are delivered only (no router timeout, no blacklist); ISL and latency messages
//! speak with one voice per switch.

use std::time::Duration;

use fl_router_actors::settings::Dialect;
use fl_router_actors::settings::{Classes, CommandLane, Family, OutputLane};
use fl_router_actors::testkit::{body, counter, quiet_settings, start_recorded, stored_switch};
use fl_router_actors::{Engine, Inbound, Settings};
use serde_json::{json, Value};

const KNOWN: &str = "00:00:00:00:00:00:00:01";
const UNKNOWN: &str = "00:00:00:00:00:00:00:99";
const LONG: Duration = Duration::from_secs(120);

fn lane(from: &str, to: &str, errors: &str) -> CommandLane {
    CommandLane {
        from: from.into(),
        to: to.into(),
        errors: Some(errors.into()),
    }
}

fn output(from: &str, to: &str, family: Family) -> OutputLane {
    OutputLane {
        from: from.into(),
        to: Some(to.into()),
        family,
    }
}

/// Two lanes as in config/openkilda.yaml, region "1" with KNOWN.
fn settings() -> Settings {
    let mut s = quiet_settings(&["1", "2"]);
    s.protocol.dialect = Dialect::OpenKilda;
    s.topics.notices = Some("kilda.flrouter.notices".into());
    s.topics.lanes.commands = vec![
        lane(
            "kilda.speaker.storm",
            "kilda.speaker_{fl}",
            "kilda.northbound.storm",
        ),
        lane(
            "kilda.speaker.flowhs.storm",
            "kilda.speaker.flow_{fl}",
            "kilda.speaker.flowhs.priv",
        ),
    ];
    s.topics.lanes.outputs = vec![
        output(
            "kilda.topo.disco_{fl}",
            "kilda.topo.disco.storm",
            Family::Message,
        ),
        output(
            "kilda.speaker.flowhs.priv.region_{fl}",
            "kilda.speaker.flowhs.priv",
            Family::Hub,
        ),
        output(
            "kilda.northbound_{fl}",
            "kilda.northbound.storm",
            Family::Message,
        ),
        output(
            "kilda.topo.switch.manager_{fl}",
            "kilda.topo.switch.manager.storm",
            Family::Message,
        ),
    ];
    s.topics.lanes.control = Some("kilda.speaker.disco_{fl}".into());
    s.topics.errors_by_class.insert(
        "org.openkilda.messaging.command.switches.Dump*ForSwitchManagerRequest".into(),
        "kilda.topo.switch.manager.storm".into(),
    );
    s.topics.errors_by_class.insert(
        "org.openkilda.messaging.command.switches.Dump*ForFlowHsRequest".into(),
        "kilda.speaker.flowhs.priv".into(),
    );
    s.protocol.delivery_only =
        vec!["org.openkilda.messaging.command.discovery.DiscoverIslCommandData".into()];
    s.timeouts.ack = Duration::from_secs(10);
    s
}

async fn start() -> (Engine, fl_router_actors::testkit::Recorded) {
    let (engine, rec) = start_recorded(settings());
    engine
        .restore_switch_map(vec![stored_switch(KNOWN, "1")])
        .await
        .unwrap();
    (engine, rec)
}

fn message(cid: &str, class: &str, sw: &str) -> Vec<u8> {
    json!({"clazz": Classes::default().command_message, "correlation_id": cid, "timestamp": 1,
           "payload": {"clazz": class, "switch_id": sw}})
    .to_string()
    .into_bytes()
}

/// A command as read from the controller-side topic `lane_topic`.
fn on(lane_topic: &str, payload: Vec<u8>) -> Inbound {
    let mut m = Inbound::new(payload);
    m.origin = Some(fl_router_actors::runtime::outbox::Origin {
        topic: lane_topic.into(),
        partition: 0,
        offset: 0,
        timestamp_ms: None,
    });
    m
}

#[actix_rt::test]
async fn a_router_error_goes_where_the_requester_reads_in_its_family() {
    tokio::time::pause();
    let (engine, mut rec) = start().await;
    let c = Classes::default();
    let cases = [
        // (lane, class, expected topic, expected class of the answer)
        (
            "kilda.speaker.storm",
            "org.openkilda.messaging.command.switches.DumpRulesRequest",
            "kilda.northbound.storm",
            c.error_message.clone(),
        ),
        (
            "kilda.speaker.storm",
            "org.openkilda.messaging.command.switches.DumpRulesForSwitchManagerRequest",
            "kilda.topo.switch.manager.storm",
            c.error_message.clone(),
        ),
        (
            "kilda.speaker.storm",
            "org.openkilda.messaging.command.switches.DumpMetersForFlowHsRequest",
            "kilda.speaker.flowhs.priv",
            c.hub_data_response.clone(),
        ),
    ];
    for (i, (lane, class, topic, answer)) in cases.iter().enumerate() {
        let cid = format!("c{i}");
        engine
            .command(on(lane, message(&cid, class, UNKNOWN)))
            .await
            .unwrap();
        let got = rec
            .until(LONG, |o| &*o.topic == *topic)
            .await
            .pop()
            .unwrap();
        let v = body(&got);
        assert_eq!(v["clazz"], answer.as_str(), "{class}: {v}");
        let found_cid = v["correlation_id"]
            .as_str()
            .or(v["message_context"]["correlation_id"].as_str());
        assert_eq!(found_cid, Some(cid.as_str()));
        if *answer == c.hub_data_response {
            assert_eq!(v["data"]["clazz"], c.error_data);
            assert_eq!(v["data"]["error-type"], "NOT_FOUND");
        }
    }
    // A hub-and-spoke request: its family's response on its lane's topic.
    let hub = json!({"clazz": "org.openkilda.floodlight.api.request.TransitFlowSegmentInstallRequest",
        "message_context": {"correlation_id": "h1", "create_time": 5}, "command_id": "11111111-2222-4333-8444-555555555501",
        "switch_id": UNKNOWN, "metadata": {"flowid": "f", "cookie": 1, "multi_table": true}})
    .to_string()
    .into_bytes();
    engine
        .command(on("kilda.speaker.flowhs.storm", hub))
        .await
        .unwrap();
    let got = rec
        .until(LONG, |o| *o.topic == *"kilda.speaker.flowhs.priv")
        .await
        .pop()
        .unwrap();
    assert_eq!(body(&got)["clazz"], c.hub_flow_error);
    // A reply-to header still wins.
    engine
        .command(
            on(
                "kilda.speaker.storm",
                message(
                    "r1",
                    "org.openkilda.messaging.command.switches.DumpRulesRequest",
                    UNKNOWN,
                ),
            )
            .reply_to("my.reply"),
        )
        .await
        .unwrap();
    rec.until(LONG, |o| *o.topic == *"my.reply").await;
}

#[actix_rt::test]
async fn a_command_the_speaker_may_not_answer_is_delivered_only_and_a_late_answer_still_routed() {
    tokio::time::pause();
    let (engine, mut rec) = start().await;
    let disco = "org.openkilda.messaging.command.discovery.DiscoverIslCommandData";
    engine
        .command(on("kilda.speaker.storm", message("d1", disco, KNOWN)))
        .await
        .unwrap();
    rec.until(LONG, |o| *o.topic == *"kilda.speaker_1").await;
    // Far past any router deadline: no error.
    let quiet = rec.collect_for(Duration::from_secs(60)).await;
    assert!(
        quiet
            .iter()
            .all(|o| body(o)["payload"]["error-type"].is_null()),
        "no router timeout: {:?}",
        quiet.iter().map(body).collect::<Vec<Value>>()
    );
    // Its answer, whenever it comes, goes to its lane's topic (not dropped as late).
    let answer = json!({"clazz": Classes::default().info_message, "correlation_id": "d1", "timestamp": 1,
        "payload": {"clazz": "org.openkilda.messaging.info.discovery.DiscoPacketSendingConfirmation",
                    "endpoint": {"switch-id": KNOWN, "port-id": 1}, "packetId": 7}})
    .to_string();
    let mut m = Inbound::new(answer.clone());
    m.origin = Some(fl_router_actors::runtime::outbox::Origin {
        topic: "kilda.topo.disco_1".into(),
        partition: 0,
        offset: 0,
        timestamp_ms: None,
    });
    engine.fl_output("1", m).await.unwrap();
    let got = rec
        .until(LONG, |o| *o.topic == *"kilda.topo.disco.storm")
        .await
        .pop()
        .unwrap();
    assert_eq!(got.payload.as_ref(), answer.as_bytes());
    assert_eq!(counter(&engine, "delivery_only_forwarded"), 1);
}

#[actix_rt::test]
async fn isl_and_latency_messages_speak_with_one_voice_and_none_without_an_active_fl() {
    tokio::time::pause();
    let (engine, mut rec) = start().await;
    let isl = |dst: &str| {
        let v = json!({"clazz": Classes::default().info_message, "correlation_id": "i", "timestamp": 1,
            "payload": {"clazz": "org.openkilda.messaging.info.event.IslInfoData",
                        "source": {"switch_id": "00:00:00:00:00:00:00:07", "port_no": 1},
                        "destination": {"switch_id": dst, "port_no": 2}, "state": "DISCOVERED"}});
        let mut m = Inbound::new(v.to_string());
        m.origin = Some(fl_router_actors::runtime::outbox::Origin {
            topic: "kilda.topo.disco_x".into(),
            partition: 0,
            offset: 0,
            timestamp_ms: None,
        });
        m
    };
    let rtl = |src: &str| {
        let v = json!({"clazz": Classes::default().info_message, "correlation_id": "l", "timestamp": 1,
            "payload": {"clazz": "org.openkilda.messaging.info.event.IslRoundTripLatency",
                        "src_switch_id": src, "src_port_no": 1, "latency_ns": 10, "packet_id": 1}});
        Inbound::new(v.to_string())
    };
    for (fl, msg, forwarded) in [
        ("1", isl(KNOWN), true),    // the active region
        ("2", isl(KNOWN), false),   // not the switch's region
        ("1", isl(UNKNOWN), false), // no active region: dropped, as OpenKilda does
        ("1", rtl(KNOWN), true),
        ("2", rtl(KNOWN), false),
    ] {
        let bytes = msg.payload.clone();
        engine.fl_output(fl, msg).await.unwrap();
        let _ = engine.lookup_switch(KNOWN).await;
        let out = rec.drain();
        assert_eq!(
            out.iter().any(|o| o.payload == bytes),
            forwarded,
            "{fl}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
}
