//! One simulated Floodlight speaker: its switches, its fault knobs, and what it says in reply to
//! each message on its read topic. Pure logic (no Kafka), so the FL side of docs/protocol.md is
//! unit-tested here and the transport in `sim::run` stays thin.
//!
//! Knobs are atomics so that the admin API and chaos scenarios can turn them while it runs.
//!
//! Two speakers: `design` (the protocol of docs/protocol.md: an ack for every command, a
//! counted sync chain, an empty chain when it has no switch) and `openkilda`, as today's
//! OpenKilda Floodlight speaks (floodlight-modules, `RecordHandler`, `SwitchTrackingService`):
//! no ack, a network dump of one plain `InfoMessage(NetworkDumpSwitchData)` per switch keyed by
//! the switch (nothing at all when it has none), switch events carrying the switch's view.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fl_router_actors::protocol::Head;
use fl_router_actors::runtime::clock::now_millis;
use fl_router_actors::settings::Classes;
use serde_json::{json, Value};

/// Payload class of the simulator's answers to ordinary commands.
pub const SIM_ANSWER_CLASS: &str = "org.openkilda.flrouter.sim.SimulatedAnswer";

/// The switch id of switch `j` of the FL at position `fl_index` (both from 0). Deterministic,
/// so the load generator can target the simulator's switches without asking.
pub fn switch_id(fl_index: usize, j: usize) -> String {
    let (a, b) = ((fl_index + 1) as u16, j as u16);
    format!(
        "00:00:00:00:{:02x}:{:02x}:{:02x}:{:02x}",
        a >> 8,
        a & 0xff,
        b >> 8,
        b & 0xff
    )
}

/// How a simulated FL speaks (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    #[default]
    Design,
    #[serde(rename = "openkilda")]
    OpenKilda,
}

/// Run-time fault knobs of one simulated FL.
#[derive(Debug, Default)]
pub struct Knobs {
    /// Reads commands but never answers (no ack, no answer, no alive response).
    pub silent: AtomicBool,
    /// Extra delay added to every answer, in microseconds.
    pub extra_delay_us: AtomicU64,
    /// Fraction of answers (ack and answer) dropped, in parts per million.
    pub drop_answers_ppm: AtomicU32,
    /// The next this-many writes fail (are not sent) and are reported in AliveResponse.
    pub fail_next_writes: AtomicU32,
    /// Failed writes since the last AliveResponse.
    pub failed_since_alive: AtomicU64,
    /// While set and in the future, the FL is down: it reads nothing and writes nothing.
    pub crashed_until: Mutex<Option<Instant>>,
    /// The next this-many sync chains are sent with one message missing (a gap).
    pub chain_gaps: AtomicU32,
    /// Every network dump carries one entry without a readable switch.
    pub unreadable_dump: AtomicBool,
}

impl Knobs {
    pub fn is_crashed(&self, now: Instant) -> bool {
        matches!(self.crashed_until.lock().ok().and_then(|g| *g), Some(t) if t > now)
    }
    pub fn crash_for(&self, d: Duration) {
        if let Ok(mut g) = self.crashed_until.lock() {
            *g = Some(Instant::now() + d);
        }
    }
    pub fn set_drop_fraction(&self, f: f64) {
        self.drop_answers_ppm
            .store((f.clamp(0.0, 1.0) * 1e6) as u32, Relaxed);
    }
    /// True when this write must fail (consumes one from `fail_next_writes`).
    pub fn take_write_failure(&self) -> bool {
        let failed = self
            .fail_next_writes
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            self.failed_since_alive.fetch_add(1, Relaxed);
        }
        failed
    }
}

/// A message the simulated FL writes, after `delay`.
#[derive(Debug, Clone)]
pub struct Reply {
    pub delay: Duration,
    pub key: String,
    pub payload: Bytes,
}

pub struct SimFl {
    pub id: String,
    pub region: String,
    pub switches: Vec<String>,
    /// Other FLs' switches this FL is connected to as well: (switch, read-write?).
    pub extra: Vec<(String, bool)>,
    pub knobs: Knobs,
    pub speaker: Speaker,
    classes: Classes,
    base_delay: Duration,
    jitter: Duration,
}

impl SimFl {
    pub fn new(
        index: usize,
        id: &str,
        region: Option<&str>,
        switches: usize,
        classes: Classes,
        base_delay: Duration,
        jitter: Duration,
    ) -> SimFl {
        SimFl {
            id: id.to_string(),
            region: region.unwrap_or("sim").to_string(),
            switches: (0..switches).map(|j| switch_id(index, j)).collect(),
            extra: Vec::new(),
            knobs: Knobs::default(),
            speaker: Speaker::Design,
            classes,
            base_delay,
            jitter,
        }
    }

    fn info(&self, cid: &str, payload: Value) -> Bytes {
        let mut v = json!({"clazz": self.classes.info_message, "correlation_id": cid,
                           "timestamp": now_millis(), "payload": payload});
        if self.speaker == Speaker::OpenKilda {
            // Floodlight's InfoMessage writes its nulls, and its region.
            v["destination"] = Value::Null;
            v["region"] = json!(self.region);
            v["cookie"] = Value::Null;
        }
        Bytes::from(v.to_string())
    }

    /// A switch's view as Floodlight reports it (`SpeakerSwitchView`): addresses made up from
    /// the switch id, the shape real.
    fn switch_view(&self, switch: &str) -> Value {
        let low = u8::from_str_radix(switch.rsplit(':').next().unwrap_or("1"), 16).unwrap_or(1);
        json!({"datapath": switch,
               "switch-socket": {"address": format!("192.0.2.{low}"), "port": 41234},
               "speaker-socket": {"address": "192.0.2.250", "port": 6653},
               "hostname": format!("sw-{low}"), "OF-version": "OF_13",
               "description": {"manufacturer": "Nicira, Inc.", "hardware": "Open vSwitch",
                               "software": "2.15.1", "serial-number": "None", "datapath": "ovs"},
               "features": ["METERS"], "ports": []})
    }

    /// Every switch this FL is connected to: its own read-write, then the extra ones.
    pub fn connected(&self) -> impl Iterator<Item = (&String, bool)> {
        self.switches
            .iter()
            .map(|s| (s, true))
            .chain(self.extra.iter().map(|(s, rw)| (s, *rw)))
    }

    /// SwitchInfoData for every switch (at start and after a crash): ACTIVATED for a
    /// read-write connection, ADDED for a read-only one.
    pub fn connect_events(&self) -> Vec<Reply> {
        self.connected()
            .map(|(s, rw)| self.switch_event(s, if rw { "ACTIVATED" } else { "ADDED" }))
            .collect()
    }

    pub fn switch_event(&self, switch: &str, state: &str) -> Reply {
        let cid = format!("sim-{}-{}", self.id, uuid::Uuid::new_v4().simple());
        let mut payload = json!({"clazz": "org.openkilda.messaging.info.event.SwitchInfoData",
                                 "switch_id": switch, "state": state});
        // Floodlight's full event carries the view; a disconnect is the reduced one.
        if self.speaker == Speaker::OpenKilda && !matches!(state, "DEACTIVATED" | "REMOVED") {
            payload["switch"] = self.switch_view(switch);
        }
        Reply {
            delay: Duration::ZERO,
            key: switch.to_string(),
            payload: self.info(&cid, payload),
        }
    }

    fn delay(&self) -> Duration {
        let jitter = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.jitter.mul_f64(fastrand::f64())
        };
        self.base_delay + jitter + Duration::from_micros(self.knobs.extra_delay_us.load(Relaxed))
    }

    fn dropped(&self) -> bool {
        let ppm = self.knobs.drop_answers_ppm.load(Relaxed);
        ppm > 0 && fastrand::u32(0..1_000_000) < ppm
    }

    /// What the FL writes in reply to one message from its read topic.
    pub fn on_message(&self, bytes: &[u8]) -> Vec<Reply> {
        if self.knobs.silent.load(Relaxed) {
            return Vec::new();
        }
        let Ok(head) = Head::parse(bytes) else {
            return Vec::new();
        };
        let cid = head.correlation().unwrap_or("").to_string();
        let class = head.payload_class();
        let c = &self.classes;
        match class.as_deref() {
            Some(k) if k == c.alive_request => {
                let failed = self.knobs.failed_since_alive.swap(0, Relaxed);
                vec![Reply {
                    delay: Duration::ZERO,
                    key: self.id.clone(),
                    payload: self.info(
                        &cid,
                        json!({"clazz": c.alive_response, "region": self.region,
                               "failed_messages": failed}),
                    ),
                }]
            }
            Some(k) if k == c.sync_request && self.speaker == Speaker::OpenKilda => {
                let text = std::str::from_utf8(bytes).unwrap_or_default();
                let dump_id = fl_router_actors::protocol::lookup(text, "/payload/dump_id")
                    .and_then(|v| serde_json::from_str::<Value>(v.get()).ok())
                    .unwrap_or(Value::Null);
                self.plain_dump(&cid, dump_id)
            }
            Some(k) if k == c.sync_request => self.chain(&cid),
            // Floodlight answers a broadcast on its stats lane, or not at all (StatsRequest is
            // fire-and-forget): the simulator, writing one lane, leaves it unanswered.
            Some("org.openkilda.messaging.command.BroadcastWrapper")
                if self.speaker == Speaker::OpenKilda =>
            {
                Vec::new()
            }
            _ => {
                let text = std::str::from_utf8(bytes).unwrap_or_default();
                let switch = fl_router_actors::protocol::lookup_str(text, "/payload/switch_id")
                    .map(|s| s.into_owned())
                    .unwrap_or_default();
                let mut out = Vec::with_capacity(2);
                // OpenKilda's Floodlight sends no receive-ack.
                if self.speaker == Speaker::Design && !self.dropped() {
                    out.push(Reply {
                        delay: Duration::ZERO,
                        key: switch.clone(),
                        payload: self.info(&cid, json!({"clazz": c.fl_receive_ack})),
                    });
                }
                if !self.dropped() {
                    out.push(Reply {
                        delay: self.delay(),
                        key: switch.clone(),
                        payload: self.info(
                            &cid,
                            json!({"clazz": SIM_ANSWER_CLASS, "switch_id": switch,
                                   "fl": self.id, "request": class.as_deref().unwrap_or("")}),
                        ),
                    });
                }
                out
            }
        }
    }

    /// Today's Floodlight network dump (`SwitchTrackingService.dumpAllSwitchesAction`): one
    /// plain InfoMessage per connected switch with the request's correlation id and `dump_id`,
    /// keyed by the switch; nothing at all when it has none.
    fn plain_dump(&self, cid: &str, dump_id: Value) -> Vec<Reply> {
        let c = &self.classes;
        let mut out: Vec<Reply> = self
            .connected()
            .map(|(s, rw)| Reply {
                delay: Duration::ZERO,
                key: s.clone(),
                payload: self.info(
                    cid,
                    json!({"clazz": c.network_dump_switch, "switch_record": self.switch_view(s),
                           "dump_id": dump_id, "write_mode": rw}),
                ),
            })
            .collect();
        if self.knobs.unreadable_dump.load(Relaxed) {
            // An entry whose view lost its datapath: the router cannot tell which switch.
            let mut view = self.switch_view("00:00:00:00:00:00:00:ff");
            view.as_object_mut().map(|o| o.remove("datapath"));
            out.push(Reply {
                delay: Duration::ZERO,
                key: self.id.clone(),
                payload: self.info(
                    cid,
                    json!({"clazz": c.network_dump_switch, "switch_record": view,
                           "dump_id": dump_id, "write_mode": true}),
                ),
            });
        }
        out
    }

    /// The sync chain: one ChunkedInfoMessage per switch, or one empty message.
    fn chain(&self, cid: &str) -> Vec<Reply> {
        let c = &self.classes;
        let total = self.switches.len() + self.extra.len();
        let msg = |index: usize, payload: Value| {
            Bytes::from(
                json!({"clazz": c.chunked_info_message, "correlation_id": cid,
                       "timestamp": now_millis(), "message_id": format!("{index} : {cid}"),
                       "total_messages": total, "payload": payload})
                .to_string(),
            )
        };
        if total == 0 {
            return vec![Reply {
                delay: Duration::ZERO,
                key: self.id.clone(),
                payload: msg(0, Value::Null),
            }];
        }
        // A gap: the second message (or the only one) goes missing, as if its write were lost.
        let gap = self
            .knobs
            .chain_gaps
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
            .then_some(if total > 1 { 1 } else { 0 });
        self.connected()
            .enumerate()
            .filter(|(i, _)| Some(*i) != gap)
            .map(|(i, (s, rw))| Reply {
                delay: Duration::ZERO,
                key: s.clone(),
                payload: msg(
                    i,
                    json!({"clazz": c.network_dump_switch, "switch_record": {"datapath": s}, "write_mode": rw}),
                ),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fl(switches: usize) -> SimFl {
        SimFl::new(
            0,
            "fl1",
            Some("r1"),
            switches,
            Classes::default(),
            Duration::from_millis(2),
            Duration::ZERO,
        )
    }

    fn json_of(r: &Reply) -> Value {
        serde_json::from_slice(&r.payload).unwrap()
    }

    fn command(cid: &str, sw: &str) -> Vec<u8> {
        json!({"clazz":"C","correlation_id":cid,"payload":{"clazz":"X","switch_id":sw}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn switch_ids_are_distinct_per_fl_and_switch() {
        assert_eq!(switch_id(0, 0), "00:00:00:00:00:01:00:00");
        assert_eq!(switch_id(1, 258), "00:00:00:00:00:02:01:02");
        assert!(fl_router_actors::protocol::normalise_switch_id(&switch_id(300, 70000)).is_ok());
    }

    #[test]
    fn command_gets_an_ack_then_a_delayed_answer() {
        let f = fl(2);
        let out = f.on_message(&command("c1", &f.switches[1]));
        assert_eq!(out.len(), 2);
        assert_eq!(
            json_of(&out[0])["payload"]["clazz"],
            Classes::default().fl_receive_ack
        );
        assert_eq!(json_of(&out[0])["correlation_id"], "c1");
        assert_eq!(out[1].delay, Duration::from_millis(2));
        assert_eq!(json_of(&out[1])["payload"]["clazz"], SIM_ANSWER_CLASS);
        assert_eq!(out[1].key, f.switches[1]);
    }

    #[test]
    fn silent_and_dropping_fls_say_nothing() {
        let f = fl(1);
        f.knobs.silent.store(true, Relaxed);
        assert!(f.on_message(&command("c", "s")).is_empty());
        f.knobs.silent.store(false, Relaxed);
        f.knobs.set_drop_fraction(1.0);
        assert!(f.on_message(&command("c", "s")).is_empty());
    }

    #[test]
    fn alive_response_reports_failed_writes_since_last_time() {
        let f = fl(1);
        f.knobs.fail_next_writes.store(2, Relaxed);
        assert!(f.knobs.take_write_failure());
        assert!(f.knobs.take_write_failure());
        assert!(!f.knobs.take_write_failure());
        let req = json!({"clazz":"C","correlation_id":"a1","payload":{"clazz": Classes::default().alive_request}}).to_string();
        let out = f.on_message(req.as_bytes());
        assert_eq!(json_of(&out[0])["payload"]["failed_messages"], 2);
        assert_eq!(json_of(&out[0])["payload"]["region"], "r1");
        let again = f.on_message(req.as_bytes());
        assert_eq!(json_of(&again[0])["payload"]["failed_messages"], 0);
    }

    #[test]
    fn a_chain_gap_leaves_out_one_message_once() {
        let f = fl(3);
        f.knobs.chain_gaps.store(1, Relaxed);
        let req = json!({"clazz":"C","correlation_id":"s1","payload":{"clazz": Classes::default().sync_request}}).to_string();
        let first = f.on_message(req.as_bytes());
        let idx: Vec<u64> = first
            .iter()
            .map(|r| Head::parse(&r.payload).unwrap().chain_position().unwrap().0)
            .collect();
        assert_eq!(idx, vec![0, 2]);
        assert_eq!(f.on_message(req.as_bytes()).len(), 3, "only once");
    }

    #[test]
    fn a_crashed_fl_is_down_until_its_time_is_up() {
        let f = fl(1);
        assert!(!f.knobs.is_crashed(Instant::now()));
        f.knobs.crash_for(Duration::from_secs(60));
        assert!(f.knobs.is_crashed(Instant::now()));
        assert!(!f.knobs.is_crashed(Instant::now() + Duration::from_secs(61)));
    }

    #[test]
    fn an_openkilda_speaker_sends_no_ack_and_a_plain_dump_or_nothing() {
        let mut f = fl(2);
        f.speaker = Speaker::OpenKilda;
        let out = f.on_message(&command("c1", "00:00:00:00:00:01:00:00"));
        assert_eq!(out.len(), 1, "the answer only");
        assert_eq!(json_of(&out[0])["payload"]["clazz"], SIM_ANSWER_CLASS);
        let req = json!({"clazz": "C", "correlation_id": "d : network-dump(r1)",
                         "payload": {"clazz": Classes::default().sync_request, "dump_id": "g7"}})
        .to_string();
        let dump = f.on_message(req.as_bytes());
        assert_eq!(dump.len(), 2);
        for (r, sw) in dump.iter().zip(&f.switches) {
            let v = json_of(r);
            assert_eq!(r.key, *sw, "keyed by switch");
            assert_eq!(
                v["clazz"],
                Classes::default().info_message,
                "plain, no chain"
            );
            assert!(v.get("total_messages").is_none() && v.get("message_id").is_none());
            assert_eq!(v["correlation_id"], "d : network-dump(r1)");
            assert_eq!(v["payload"]["switch_record"]["datapath"], *sw);
            assert_eq!(v["payload"]["dump_id"], "g7");
        }
        let mut empty = fl(0);
        empty.speaker = Speaker::OpenKilda;
        assert!(
            empty.on_message(req.as_bytes()).is_empty(),
            "nothing from an empty region"
        );
        empty.knobs.unreadable_dump.store(true, Relaxed);
        let bad = empty.on_message(req.as_bytes());
        assert_eq!(bad.len(), 1);
        assert!(json_of(&bad[0])["payload"]["switch_record"]
            .get("datapath")
            .is_none());
    }

    #[test]
    fn sync_request_gets_a_complete_chain_or_an_empty_one() {
        let req = json!({"clazz":"C","correlation_id":"s1","payload":{"clazz": Classes::default().sync_request}}).to_string();
        let out = fl(3).on_message(req.as_bytes());
        assert_eq!(out.len(), 3);
        for (i, r) in out.iter().enumerate() {
            let h = Head::parse(&r.payload).unwrap();
            assert_eq!(h.chain_position(), Some((i as u64, 3)));
        }
        let empty = fl(0).on_message(req.as_bytes());
        assert_eq!(empty.len(), 1);
        assert_eq!(json_of(&empty[0])["total_messages"], 0);
        assert!(json_of(&empty[0])["payload"].is_null());
    }

    #[test]
    fn extra_connections_are_announced_and_reported_in_their_mode() {
        let mut f = fl(1);
        f.extra = vec![("s-rw".into(), true), ("s-ro".into(), false)];
        let states: Vec<String> = f
            .connect_events()
            .iter()
            .map(|r| json_of(r)["payload"]["state"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(states, ["ACTIVATED", "ACTIVATED", "ADDED"]);
        let req = json!({"clazz":"C","correlation_id":"s1","payload":{"clazz": Classes::default().sync_request}}).to_string();
        let chain = f.on_message(req.as_bytes());
        let modes: Vec<(Value, Value)> = chain
            .iter()
            .map(|r| {
                let p = &json_of(r)["payload"];
                (
                    p["switch_record"]["datapath"].clone(),
                    p["write_mode"].clone(),
                )
            })
            .collect();
        assert_eq!(modes[1], (json!("s-rw"), json!(true)));
        assert_eq!(modes[2], (json!("s-ro"), json!(false)));
        assert_eq!(json_of(&chain[0])["total_messages"], 3);
    }
}
