//! Property tests: arbitrary bytes, arbitrary JSON and near-valid OpenKilda messages thrown at
//! the parser and at the whole engine (as commands and as FL output), in-process with virtual
//! time. Properties: nothing panics; every command input ends in at least one output that is
//! not a forward to an FL (an answer, a router error, a dead letter, an event); and no input's
//! ticket is held forever (once every deadline has passed and every output is delivered, every
//! input offset is released).
//!
//! CI runs a small number of cases; the long run is documented in docs/fuzzing.md:
//! `PROPTEST_CASES=50000 cargo test --release -p fl-router-actors --test fuzz`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fl_router_actors::protocol::{self, Head};
use fl_router_actors::settings::ProtocolSettings;
use fl_router_actors::testkit::{quiet_settings, recording_outbox_held};
use fl_router_actors::{Engine, Inbound, Ticket};
use proptest::prelude::*;
use serde_json::{json, Value};

const SWITCHES: [&str; 4] = [
    "00:00:00:00:00:00:00:01",
    "00:00:00:00:00:00:00:02",
    "00:00:00:00:00:00:00:0A",
    "00:00:00:00:00:00:00:ff",
];

/// Follows an input: which one it was, and a count of released inputs.
struct Tag {
    id: usize,
    released: Arc<AtomicUsize>,
}

impl Drop for Tag {
    fn drop(&mut self) {
        self.released.fetch_add(1, Ordering::SeqCst);
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[ -~]{0,12}".prop_map(Value::String),
        prop::sample::select(SWITCHES.to_vec()).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "clazz",
                    "correlation_id",
                    "payload",
                    "switch_id",
                    "message_id",
                    "total_messages",
                    "state",
                    "x",
                ]),
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// OpenKilda-shaped messages of both envelope families, both directions.
fn template(i: usize, cid: &str, sw: &str) -> Value {
    match i % 8 {
        0 => {
            json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":cid,"timestamp":1,
                    "payload":{"clazz":"org.openkilda.messaging.command.switches.DumpRulesRequest","switch_id":sw}})
        }
        1 => {
            json!({"clazz":"org.openkilda.messaging.command.flow.IngressFlowSegmentInstallRequest",
                    "message_context":{"correlation_id":cid,"create_time":1},"command_id":"c",
                    "endpoint":{"switch_id":sw,"port_number":1}})
        }
        2 => {
            json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":cid,"timestamp":1,
                    "payload":{"clazz":"org.openkilda.messaging.info.event.SwitchInfoData","switch_id":sw,"state":"ACTIVATED"}})
        }
        3 => {
            json!({"clazz":"org.openkilda.messaging.info.ChunkedInfoMessage","correlation_id":cid,"timestamp":1,
                    "message_id":format!("1 : {cid}"),"total_messages":3,
                    "payload":{"clazz":"org.openkilda.messaging.info.rule.FlowEntry","cookie":-5}})
        }
        4 => {
            json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":cid,"timestamp":1,
                    "payload":{"clazz":"org.openkilda.messaging.info.FlReceiveAck"}})
        }
        5 => {
            json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":cid,"timestamp":1,
                    "payload":{"clazz":"org.openkilda.messaging.command.discovery.NetworkCommandData","dump_id":cid}})
        }
        6 => {
            json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":cid,"timestamp":1,
                    "payload":{"clazz":"X","switch_id":[sw, SWITCHES[0]]}})
        }
        _ => {
            json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":cid,"timestamp":1,
                    "payload":{"clazz":"org.openkilda.messaging.AliveResponse","failed_messages":1}})
        }
    }
}

/// A template with one field removed or replaced by arbitrary JSON.
fn near_valid() -> impl Strategy<Value = Vec<u8>> {
    (
        0usize..8,
        prop::sample::select(vec!["c1", "c2", "c1 : { x : (y) }", ""]),
        prop::sample::select(SWITCHES.to_vec()),
        prop::option::of((0usize..6, json_value())),
    )
        .prop_map(|(i, cid, sw, mutation)| {
            let mut v = template(i, cid, sw);
            if let Some((field, value)) = mutation {
                let path: &[&str] = match field {
                    0 => &["payload"],
                    1 => &["correlation_id"],
                    2 => &["payload", "switch_id"],
                    3 => &["total_messages"],
                    4 => &["payload", "clazz"],
                    _ => &["endpoint"],
                };
                let mut at = &mut v;
                for p in &path[..path.len() - 1] {
                    at = &mut at[*p];
                }
                if let Value::Object(m) = at {
                    if value.is_null() {
                        m.remove(path[path.len() - 1]);
                    } else {
                        m.insert(path[path.len() - 1].to_string(), value);
                    }
                }
            }
            v.to_string().into_bytes()
        })
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        near_valid(),
        near_valid(),
    ]
}

/// One engine life: `inputs` as (to an FL?, which FL, bytes), then every deadline passes.
fn run_engine(inputs: Vec<(bool, usize, Vec<u8>)>) -> Result<(), TestCaseError> {
    let system = actix_rt::System::new();
    system.block_on(async move {
        tokio::time::pause();
        let (outbox, mut rec) = recording_outbox_held();
        let mut settings = quiet_settings(&["a", "b"]);
        settings.limits.max_message_bytes = 150;
        // Short deadlines: fewer virtual ticks per case, the same paths.
        let t = &mut settings.timeouts;
        (t.ack, t.answer, t.sync_chain, t.blacklist_ttl) = (
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::from_secs(1),
            Duration::from_secs(2),
        );
        settings.sync.retry_backoff = Duration::from_millis(100);
        let engine = Engine::start(settings, outbox).expect("valid settings");
        let released = Arc::new(AtomicUsize::new(0));
        let mut commands = HashSet::new();
        for (id, (to_fl, fl, bytes)) in inputs.iter().enumerate() {
            let ticket = Ticket::new(Tag {
                id,
                released: released.clone(),
            });
            let mut msg = Inbound::new(bytes.clone()).ticket(ticket);
            if id % 3 == 0 {
                msg = msg.reply_to("fuzz.reply");
            }
            if *to_fl {
                let _ = engine.fl_output(["a", "b"][fl % 2], msg).await;
            } else {
                commands.insert(id);
                engine
                    .command(msg)
                    .await
                    .expect("the engine takes every command");
            }
        }
        // Every deadline (ack, answer, sync chains and retries, blacklist) passes. Outputs are
        // delivered (dropped) as they come: a forward's deadline runs from its delivery.
        let t = engine.settings().timeouts.clone();
        let fl_topics = ["kilda.speaker_a", "kilda.speaker_b"];
        let mut finished = HashSet::new();
        let until =
            tokio::time::Instant::now() + (t.ack + t.answer + t.sync_chain) * 4 + t.blacklist_ttl;
        while tokio::time::Instant::now() < until {
            for o in rec.drain() {
                if fl_topics.contains(&(&*o.topic)) {
                    continue;
                }
                for tk in &o.tickets {
                    if let Some(tag) = tk.guard::<Tag>() {
                        finished.insert(tag.id);
                    }
                }
            }
            tokio::time::sleep(t.tick).await;
        }
        let unfinished: Vec<_> = commands.difference(&finished).collect();
        prop_assert!(
            unfinished.is_empty(),
            "commands with no answer, error or dead letter: {:?}",
            unfinished
                .iter()
                .map(|i| String::from_utf8_lossy(&inputs[**i].2).to_string())
                .collect::<Vec<_>>()
        );
        drop(rec.drain());
        drop(rec.journal());
        // Delivered: the engine holds no input forever.
        prop_assert_eq!(
            released.load(Ordering::SeqCst),
            inputs.len(),
            "tickets still held"
        );
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics(bytes in input(), pointer in "(/[a-z_~01]{0,8}){0,4}") {
        let rules = ProtocolSettings::default();
        if let Ok(h) = Head::parse(&bytes) {
            let _ = h.payload_class();
            let _ = h.chain_position();
            let _ = h.correlation();
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = protocol::lookup(text, &pointer);
            let _ = protocol::locate_target(text, None, &rules);
            let _ = protocol::normalise_switch_id(text);
        }
    }

    #[test]
    fn every_input_is_answered_or_dead_lettered_and_no_ticket_is_lost(
        inputs in prop::collection::vec((any::<bool>(), 0usize..2, input()), 1..24)
    ) {
        run_engine(inputs)?;
    }
}
