//! OpenKilda's real message shapes, in-process: both envelope families, the per-class target
//! switch (other switch ids in a message never decide the route), keys and headers kept, the
//! router's own answer to a hub-and-spoke request in that family, no receive-ack needed, and
//! per-class deadlines.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use fl_router_actors::testkit::{quiet_settings, recording_outbox, stored_switch, Recorded};
use fl_router_actors::{Engine, Inbound, Outgoing, Settings};
use serde_json::{json, Value};

const A_SW: &str = "00:00:b0:d2:f5:00:5a:b8";
const B_SW: &str = "00:00:00:00:00:00:00:0b";
const WAIT: Duration = Duration::from_secs(5);

fn body(o: &Outgoing) -> Value {
    serde_json::from_slice(&o.payload).unwrap_or(Value::Null)
}

fn settings() -> Settings {
    let mut s = quiet_settings(&["a", "b"]);
    s.timeouts.by_class.insert(
        "org.openkilda.messaging.command.switches.Dump*".into(),
        Duration::from_secs(60).into(),
    );
    s
}

/// FL `a` manages A_SW, FL `b` manages B_SW.
async fn start() -> (Engine, Recorded) {
    let (outbox, rec) = recording_outbox();
    let engine = Engine::start(settings(), outbox).unwrap();
    engine
        .restore_switch_map(vec![stored_switch(A_SW, "a"), stored_switch(B_SW, "b")])
        .await
        .unwrap();
    (engine, rec)
}

fn ingress_install(cid: &str) -> Vec<u8> {
    // The target is the endpoint's switch; the egress switch must not decide the route.
    json!({"clazz":"org.openkilda.floodlight.api.request.IngressFlowSegmentInstallRequest",
           "message_context":{"correlation_id":cid,"create_time":1732262400000u64},
           "command_id":"5f0c6b2e-3b8e-4c51-9a51-2d0f1f6f2a11",
           "metadata":{"flow_id":"flow-1","cookie":-9223372036854775806i64,"multi_table":true},
           "endpoint":{"switch_id":A_SW,"port_number":10,"outer_vlan_id":0},
           "egress_switch":B_SW,"meter_config":null,"islPort":3})
    .to_string()
    .into_bytes()
}

async fn forwarded(rec: &mut Recorded) -> Outgoing {
    rec.next_within(WAIT).await
}

#[actix_rt::test]
async fn a_hub_and_spoke_request_goes_to_its_target_switch_with_key_and_headers_kept() {
    let (engine, mut rec) = start().await;
    let cid = "5d6e : { switch-validate : 0a1b : 5b6c }";
    let raw = ingress_install(cid);
    let mut msg = Inbound::new(raw.clone()).key(cid);
    msg.headers.push((
        Cow::Owned("kafka-tracing".into()),
        Bytes::from_static(b"t1"),
    ));
    engine.command(msg).await.unwrap();
    let out = forwarded(&mut rec).await;
    assert_eq!(&*out.topic, "kilda.speaker_a", "endpoint.switch_id decides");
    assert_eq!(out.payload.as_ref(), raw.as_slice());
    assert_eq!(out.key.as_deref(), Some(cid.as_bytes()));
    assert_eq!(out.headers.len(), 1);
    assert_eq!(out.headers[0].0, "kafka-tracing");

    // The FL answers with no receive-ack: the first answer settles it, key kept.
    let answer = json!({"clazz":"org.openkilda.floodlight.api.response.SpeakerFlowSegmentResponse",
        "message_context":{"correlation_id":cid,"create_time":1},"command_id":"5f0c6b2e-3b8e-4c51-9a51-2d0f1f6f2a11",
        "switch_id":A_SW,"success":true}).to_string();
    engine
        .fl_output("a", Inbound::new(answer.clone()).key(cid))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(out.payload.as_ref(), answer.as_bytes());
    assert_eq!(out.key.as_deref(), Some(cid.as_bytes()));
    assert_eq!(engine.fl_status("a").await.unwrap().pending, 0);
}

#[actix_rt::test]
async fn each_class_is_routed_by_its_own_target_pointer() {
    let (engine, mut rec) = start().await;
    let cases = [
        // transit segments and speaker commands keep it top-level
        json!({"clazz":"org.openkilda.floodlight.api.request.TransitFlowSegmentInstallRequest",
               "message_context":{"correlation_id":"t1"},"switch_id":B_SW,"egress_switch_id":A_SW}),
        json!({"clazz":"org.openkilda.floodlight.api.request.rulemanager.InstallSpeakerCommandsRequest",
               "message_context":{"correlation_id":"r1"},"switch_id":B_SW,"command_id":"c",
               "command_data":[{"data":{"switch_id":A_SW,"uuid":"u"}}]}),
        // BFD: the target, not the remote
        json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":"b1","timestamp":1,
               "payload":{"clazz":"org.openkilda.messaging.floodlight.request.SetupBfdSession",
                          "bfd-session":{"target":{"datapath":B_SW},"remote":{"datapath":A_SW}}}}),
        // ping: the source, not the destination (switch ids written with dashes, upper case)
        json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":"p1","timestamp":1,
               "payload":{"clazz":"org.openkilda.messaging.floodlight.request.PingRequest",
                          "ping":{"source":{"switch-id":"00-00-00-00-00-00-00-0B"},"dest":{"switch-id":A_SW}}}}),
    ];
    for c in cases {
        engine.command(Inbound::new(c.to_string())).await.unwrap();
        let out = forwarded(&mut rec).await;
        assert_eq!(&*out.topic, "kilda.speaker_b", "{c}");
        assert_eq!(out.payload.as_ref(), c.to_string().as_bytes(), "bytes kept");
    }
}

#[actix_rt::test]
async fn the_router_answers_a_hub_and_spoke_request_in_its_family() {
    let (engine, mut rec) = start().await;
    let unknown = "00:00:00:00:00:00:0f:ff";
    let req =
        json!({"clazz":"org.openkilda.floodlight.api.request.EgressFlowSegmentInstallRequest",
        "message_context":{"correlation_id":"e1","create_time":7},"command_id":"cmd-1",
        "metadata":{"flow_id":"f"},"endpoint":{"switch_id":unknown}})
        .to_string();
    engine
        .command(Inbound::new(req).key("e1").reply_to("flowhs.priv"))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(&*out.topic, "flowhs.priv");
    assert_eq!(out.key.as_deref(), Some(&b"e1"[..]), "keyed as the request");
    let v = body(&out);
    assert_eq!(
        v["clazz"],
        "org.openkilda.floodlight.flow.response.FlowErrorResponse"
    );
    assert_eq!(v["message_context"]["correlation_id"], "e1");
    assert_eq!(v["command_id"], "cmd-1");
    assert_eq!(v["error_code"], "SWITCH_UNAVAILABLE");
    assert_eq!(v["switch_id"], unknown);
}

#[actix_rt::test]
async fn a_dump_gets_its_class_deadline_other_commands_the_default() {
    tokio::time::pause();
    let (engine, mut rec) = start().await;
    let dump = json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":"d1","timestamp":1,
        "payload":{"clazz":"org.openkilda.messaging.command.switches.DumpRulesRequest","switch_id":A_SW}});
    let other = json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":"o1","timestamp":1,
        "payload":{"clazz":"org.openkilda.messaging.command.discovery.DiscoverIslCommandData","switch_id":A_SW}});
    for m in [&dump, &other] {
        engine
            .command(Inbound::new(m.to_string()).reply_to("r"))
            .await
            .unwrap();
        forwarded(&mut rec).await;
    }
    let ack = engine.settings().timeouts.ack;
    let seen = rec.until(ack * 2, |o| *o.topic == *"r").await;
    assert_eq!(body(seen.last().unwrap())["correlation_id"], "o1");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(rec.drain().is_empty(), "the dump still has time");
    let seen = rec
        .until(Duration::from_secs(60), |o| *o.topic == *"r")
        .await;
    assert_eq!(body(seen.last().unwrap())["correlation_id"], "d1");
}

fn from(topic: &str, msg: Inbound) -> Inbound {
    let mut msg = msg;
    msg.origin = Some(fl_router_actors::runtime::outbox::Origin {
        topic: topic.into(),
        partition: 0,
        offset: 0,
        timestamp_ms: None,
    });
    msg
}

#[actix_rt::test]
async fn lanes_carry_commands_to_their_fl_topic_and_answers_to_their_controller_topic() {
    use fl_router_actors::settings::{CommandLane, OutputLane};
    tokio::time::pause();
    let mut s = settings();
    let l = &mut s.topics.lanes;
    l.commands = vec![
        CommandLane {
            from: "kilda.speaker.storm".into(),
            to: "kilda.speaker_{fl}".into(),
            errors: None,
        },
        CommandLane {
            from: "kilda.speaker.flowhs.storm".into(),
            to: "kilda.speaker.flow_{fl}".into(),
            errors: None,
        },
    ];
    l.outputs = vec![
        OutputLane {
            from: "kilda.topo.disco_{fl}".into(),
            to: Some("kilda.topo.disco.storm".into()),
            family: Default::default(),
        },
        OutputLane {
            from: "kilda.speaker.flowhs.priv.region_{fl}".into(),
            to: Some("kilda.speaker.flowhs.priv".into()),
            family: Default::default(),
        },
    ];
    l.control = Some("kilda.speaker.disco_{fl}".into());
    s.timeouts.alive_interval = Duration::from_secs(2);
    s.timeouts.alive_timeout = Duration::from_secs(10);
    let (outbox, mut rec) = recording_outbox();
    let engine = Engine::start(s, outbox).unwrap();
    engine
        .restore_switch_map(vec![stored_switch(A_SW, "a")])
        .await
        .unwrap();
    let cid = "flow-1 : install";
    engine
        .command(from(
            "kilda.speaker.flowhs.storm",
            Inbound::new(ingress_install(cid)).key(cid),
        ))
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(
        &*out.topic, "kilda.speaker.flow_a",
        "the flow lane's FL topic"
    );
    let answer = json!({"clazz":"org.openkilda.floodlight.api.response.SpeakerFlowSegmentResponse",
        "message_context":{"correlation_id":cid},"switch_id":A_SW,"success":true})
    .to_string();
    engine
        .fl_output(
            "a",
            from(
                "kilda.speaker.flowhs.priv.region_a",
                Inbound::new(answer).key(cid),
            ),
        )
        .await
        .unwrap();
    let out = rec.next_within(WAIT).await;
    assert_eq!(
        &*out.topic, "kilda.speaker.flowhs.priv",
        "no reply_to: the lane's output topic"
    );
    // Alive requests travel on the control lane.
    let seen = rec
        .until(Duration::from_secs(5), |o| {
            body(o)["payload"]["clazz"] == "org.openkilda.messaging.AliveRequest"
        })
        .await;
    assert_eq!(&*seen.last().unwrap().topic, "kilda.speaker.disco_a");
}

#[actix_rt::test]
async fn broadcasts_go_to_each_fl_wrapped_with_its_own_switches() {
    let (outbox, mut rec) = recording_outbox();
    let engine = Engine::start(quiet_settings(&["a", "b", "c"]), outbox).unwrap();
    engine
        .restore_switch_map(vec![
            stored_switch(A_SW, "a"),
            stored_switch(B_SW, "b"),
            stored_switch("00:00:00:00:00:00:00:0c", "b"),
        ])
        .await
        .unwrap();
    let payload = r#"{"clazz":"org.openkilda.messaging.command.discovery.PortsCommandData","requester":"discovery"}"#;
    let ports = format!(
        r#"{{"clazz":"org.openkilda.messaging.command.CommandMessage","timestamp":5,"correlation_id":"ports-1","payload":{payload}}}"#
    );
    engine
        .command(Inbound::new(ports.clone()).key("ports-1"))
        .await
        .unwrap();
    let mut out: Vec<Outgoing> = Vec::new();
    for _ in 0..3 {
        out.push(rec.next_within(WAIT).await);
    }
    out.sort_by(|x, y| x.topic.cmp(&y.topic));
    let scopes: Vec<(String, Value)> = out
        .iter()
        .map(|o| (o.topic.to_string(), body(o)["payload"]["scope"].clone()))
        .collect();
    assert_eq!(
        scopes,
        vec![
            ("kilda.speaker_a".to_string(), json!([A_SW])),
            (
                "kilda.speaker_b".to_string(),
                json!([B_SW, "00:00:00:00:00:00:00:0c"])
            ),
            ("kilda.speaker_c".to_string(), json!([])),
        ],
        "every FL, each with its own switches"
    );
    for o in &out {
        let v = body(o);
        assert_eq!(v["correlation_id"], "ports-1");
        assert_eq!(
            v["payload"]["clazz"],
            "org.openkilda.messaging.command.BroadcastWrapper"
        );
        assert_eq!(o.key.as_deref(), Some(&b"ports-1"[..]));
        let text = std::str::from_utf8(&o.payload).unwrap();
        assert!(
            text.contains(payload),
            "the original payload, byte for byte"
        );
        assert!(text.starts_with(r#"{"clazz":"org.openkilda.messaging.command.CommandMessage","timestamp":5,"correlation_id":"ports-1","payload":{"clazz":"org.openkilda.messaging.command.BroadcastWrapper""#));
    }
    // Stats: every switch once, so FL c (no switches) gets nothing; nothing is pending.
    let stats = r#"{"clazz":"org.openkilda.messaging.command.CommandMessage","timestamp":5,"correlation_id":"stats-1","payload":{"clazz":"org.openkilda.messaging.command.stats.StatsRequest","exclude_switch_ids":[]}}"#;
    engine.command(Inbound::new(stats)).await.unwrap();
    let mut topics: Vec<String> = Vec::new();
    for _ in 0..2 {
        topics.push(rec.next_within(WAIT).await.topic.to_string());
    }
    topics.sort();
    assert_eq!(topics, ["kilda.speaker_a", "kilda.speaker_b"]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(rec.drain().is_empty());
    for fl in ["a", "b", "c"] {
        assert_eq!(engine.fl_status(fl).await.unwrap().pending, 0);
    }
}
