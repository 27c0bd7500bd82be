//! The load generator: open loop at a fixed rate against the command topic, every command
//! accounted for.
//!
//! Command `i` is *intended* to be sent at `start + i / rate`; latency is measured from that
//! instant to the first answer, so a stall in the sender, the router or Kafka shows up as latency
//! instead of silently lowering the rate (no coordinated omission). Each command ends as answered
//! (by an FL), a router error, lost (no answer by the end of the grace period) — and any further
//! answers count as duplicates. Runs on its own thread and runtime.

pub mod report;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fl_router_actors::protocol::{lookup_str, Head};
use fl_router_actors::settings::Classes;
use hdrhistogram::Histogram;
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::warn;

pub use self::report::LoadReport;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadConfig {
    /// Commands per second.
    pub rate: f64,
    /// After the last command, how long to wait for answers before counting the rest lost.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// Where the router is asked to send answers (the `reply_to` header).
    pub reply_topic: String,
    /// Fraction (0..=1) of commands sent to a switch no FL manages (expect NOT_FOUND).
    pub unknown_switch_fraction: f64,
    /// Commands sent in this first part of the run are accounted for (answered, errors, lost,
    /// duplicates) but kept out of the latency percentiles: a benchmark's cold start (the
    /// broker's JIT, first metadata requests) is not the middle's latency.
    #[serde(with = "humantime_serde")]
    pub warmup: Duration,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            rate: 200.0,
            grace: Duration::from_secs(10),
            reply_topic: "flrouter.load.reply".into(),
            unknown_switch_fraction: 0.0,
            warmup: Duration::ZERO,
        }
    }
}

impl LoadConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !(self.rate > 0.0 && self.rate <= 1_000_000.0) {
            out.push("load.rate: must be between 0 (exclusive) and 1000000".into());
        }
        if !(0.0..=1.0).contains(&self.unknown_switch_fraction) {
            out.push("load.unknown_switch_fraction: must be between 0 and 1".into());
        }
        if let Err(e) =
            fl_router_actors::settings::check_topic_name("load.reply_topic", &self.reply_topic)
        {
            out.push(e.to_string());
        }
        out
    }
}

const UNANSWERED: u8 = 0;
const ANSWERED: u8 = 1;
/// Router errors: one code per error type, so two different outcomes can be told apart.
fn error_code(error_type: Option<&str>) -> u8 {
    match error_type {
        Some("NOT_FOUND") => 2,
        Some("OPERATION_TIMED_OUT") => 3,
        Some("REQUEST_INVALID") => 4,
        _ => 5,
    }
}

/// Live figures, readable while the load runs (status lines).
pub struct LoadStats {
    pub sent: AtomicU64,
    pub answered: AtomicU64,
    pub router_errors: AtomicU64,
    pub duplicates: AtomicU64,
    /// Later answers whose outcome differs from the command's first one (an FL answer, then a
    /// router error; or two different errors).
    pub conflicting: AtomicU64,
    /// Longest time between two consecutive first answers, in ms (a restart's gap).
    pub max_gap_ms: AtomicU64,
    last_first_answer: Mutex<Option<Instant>>,
    /// Latency of first answers since the last status line (reset by the reader), in µs.
    pub window: Mutex<Histogram<u64>>,
    total: Mutex<Histogram<u64>>,
    per_second: Mutex<Vec<Histogram<u64>>>,
    /// The round trip in hops, from the timestamps an FL answer carries (see [`Stages`]).
    stages: Mutex<Stages>,
    /// Commands below this index were sent during the warm-up (`load.warmup`).
    warmup_commands: AtomicU64,
    states: Mutex<Vec<u8>>,
    errors_by_type: Mutex<BTreeMap<String, u64>>,
    /// The slowest first answer (µs, command index) and the first router error's index: ids an
    /// operator can hand to `fl-router trace`.
    slowest: Mutex<(u64, Option<usize>)>,
    first_error: Mutex<Option<usize>>,
}

/// An FL answer's round trip in three hops, in milliseconds (the clocks involved are
/// millisecond ones; every process runs on one host in a benchmark):
/// - `to_fl`: intended send → the FL wrote its answer (the answer's `timestamp` field): the load's
///   producer, Kafka, the middle forwarding the command, Kafka, the FL;
/// - `answer_hop`: the FL's answer → the middle produced it to the reply topic (the reply
///   record's timestamp): Kafka and the middle only;
/// - `to_load`: the reply record → the load read it.
///
/// Not recorded for warm-up commands nor router errors (which carry no FL timestamp).
#[derive(Debug)]
pub struct Stages {
    pub to_fl: Histogram<u64>,
    pub answer_hop: Histogram<u64>,
    pub to_load: Histogram<u64>,
}

impl Default for Stages {
    fn default() -> Self {
        Self {
            to_fl: histogram(),
            answer_hop: histogram(),
            to_load: histogram(),
        }
    }
}

/// The hops of one answer (ms since the Unix epoch): intended send, FL answer, reply record,
/// read by the load.
struct Hops {
    sent: u64,
    answered: u64,
    replied: u64,
    read: u64,
}

impl Stages {
    fn record(&mut self, h: &Hops) {
        // +1: the histograms start at 1 ms; a hop inside one millisecond tick reads as 1.
        let _ = self.to_fl.record(h.answered.saturating_sub(h.sent) + 1);
        let _ = self
            .answer_hop
            .record(h.replied.saturating_sub(h.answered) + 1);
        let _ = self.to_load.record(h.read.saturating_sub(h.replied) + 1);
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 1 h at 3 significant digits; new_with_bounds only fails for invalid bounds.
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).expect("histogram"))
}

impl LoadStats {
    fn new() -> Self {
        Self {
            sent: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            router_errors: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            conflicting: AtomicU64::new(0),
            max_gap_ms: AtomicU64::new(0),
            last_first_answer: Mutex::new(None),
            window: Mutex::new(histogram()),
            total: Mutex::new(histogram()),
            per_second: Mutex::new(Vec::new()),
            stages: Mutex::new(Stages::default()),
            warmup_commands: AtomicU64::new(0),
            states: Mutex::new(Vec::new()),
            errors_by_type: Mutex::new(BTreeMap::new()),
            slowest: Mutex::new((0, None)),
            first_error: Mutex::new(None),
        }
    }

    pub fn unanswered(&self) -> u64 {
        self.sent
            .load(Relaxed)
            .saturating_sub(self.answered.load(Relaxed) + self.router_errors.load(Relaxed))
    }

    fn record(
        &self,
        i: usize,
        outcome: u8,
        latency: Duration,
        second: usize,
        error_type: Option<String>,
        hops: Option<Hops>,
    ) {
        let first = {
            let Ok(mut st) = self.states.lock() else {
                return;
            };
            match st.get_mut(i) {
                Some(s) if *s == UNANSWERED => {
                    *s = outcome;
                    true
                }
                Some(s) => {
                    if *s != outcome {
                        self.conflicting.fetch_add(1, Relaxed);
                    }
                    false
                }
                None => return, // not ours (an older run on the same topic)
            }
        };
        if !first {
            self.duplicates.fetch_add(1, Relaxed);
            return;
        }
        if let Ok(mut last) = self.last_first_answer.lock() {
            let now = Instant::now();
            if let Some(prev) = *last {
                let gap = now.saturating_duration_since(prev).as_millis() as u64;
                self.max_gap_ms.fetch_max(gap, Relaxed);
            }
            *last = Some(now);
        }
        match outcome {
            ANSWERED => self.answered.fetch_add(1, Relaxed),
            _ => self.router_errors.fetch_add(1, Relaxed),
        };
        if let Some(t) = error_type {
            if let Ok(mut m) = self.errors_by_type.lock() {
                *m.entry(t).or_default() += 1;
            }
        }
        let us = (latency.as_micros() as u64).max(1);
        if let Ok(mut s) = self.slowest.lock() {
            if us > s.0 {
                *s = (us, Some(i));
            }
        }
        if outcome != ANSWERED {
            if let Ok(mut e) = self.first_error.lock() {
                e.get_or_insert(i);
            }
        }
        if let Ok(mut h) = self.window.lock() {
            let _ = h.record(us);
        }
        if (i as u64) >= self.warmup_commands.load(Relaxed) {
            if let Ok(mut h) = self.total.lock() {
                let _ = h.record(us);
            }
            if let (Some(hops), Ok(mut st)) = (hops, self.stages.lock()) {
                st.record(&hops);
            }
        }
        if let Ok(mut ps) = self.per_second.lock() {
            while ps.len() <= second {
                ps.push(histogram());
            }
            let _ = ps[second].record(us);
        }
    }
}

/// A running load; [`LoadRun::finish`] stops it and returns the report.
pub struct LoadRun {
    stats: Arc<LoadStats>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<LoadReport>>,
}

impl LoadRun {
    /// Starts sending to `commands_topic`, spreading commands over `switches`.
    pub fn start(
        client: ClientConfig,
        commands_topic: String,
        switches: Vec<String>,
        cfg: LoadConfig,
        classes: Classes,
    ) -> anyhow::Result<LoadRun> {
        anyhow::ensure!(
            !switches.is_empty(),
            "load: no switches to send commands to"
        );
        let mut pcfg = fl_router::kafka::for_producer(&client);
        // Idempotent: a broker failover cannot write a command twice and pass for a router
        // duplicate.
        pcfg.set("linger.ms", "1")
            .set("enable.idempotence", "true")
            .set("queue.buffering.max.messages", "2000000");
        let producer: ThreadedProducer<DefaultProducerContext> = pcfg.create()?;
        let mut ccfg = client;
        ccfg.set(
            "group.id",
            format!("fl-router-load-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false");
        let consumer: StreamConsumer = ccfg.create()?;
        fl_router::kafka::assign_at_end(&consumer, std::slice::from_ref(&cfg.reply_topic))?;

        let stats = Arc::new(LoadStats::new());
        let (stop, stop_rx) = watch::channel(false);
        let st = stats.clone();
        let thread = std::thread::Builder::new()
            .name("fl-load".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("load runtime");
                rt.block_on(drive(
                    st,
                    producer,
                    consumer,
                    commands_topic,
                    switches,
                    cfg,
                    classes,
                    stop_rx,
                ))
            })?;
        Ok(LoadRun {
            stats,
            stop,
            thread: Some(thread),
        })
    }

    pub fn stats(&self) -> &Arc<LoadStats> {
        &self.stats
    }

    /// Stops sending, waits for outstanding answers (up to the grace period), reports.
    pub fn finish(mut self) -> anyhow::Result<LoadReport> {
        let _ = self.stop.send(true);
        let t = self
            .thread
            .take()
            .ok_or_else(|| anyhow::anyhow!("load already finished"))?;
        t.join()
            .map_err(|_| anyhow::anyhow!("load thread panicked"))
    }
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    stats: Arc<LoadStats>,
    producer: ThreadedProducer<DefaultProducerContext>,
    consumer: StreamConsumer,
    topic: String,
    switches: Vec<String>,
    cfg: LoadConfig,
    classes: Classes,
    mut stop: watch::Receiver<bool>,
) -> LoadReport {
    let run_id = format!("load-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let start = Instant::now();
    let start_ms = fl_router_actors::runtime::clock::now_millis();
    stats
        .warmup_commands
        .store((cfg.warmup.as_secs_f64() * cfg.rate) as u64, Relaxed);
    let interval = Duration::from_secs_f64(1.0 / cfg.rate);
    let intended = move |i: usize| start + interval.mul_f64(i as f64);
    let receiver = {
        let (stats, run_id, error_class) =
            (stats.clone(), run_id.clone(), classes.error_message.clone());
        let (done_tx, mut done_rx) = watch::channel(false);
        let ack_class = classes.fl_receive_ack.clone();
        let handle = tokio::spawn(async move {
            let prefix = format!("{run_id}-");
            loop {
                let m = tokio::select! {
                    _ = done_rx.changed() => break,
                    m = consumer.recv() => m,
                };
                let Ok(m) = m else { continue };
                let now = Instant::now();
                let payload = m.payload().unwrap_or_default();
                let Ok(head) = Head::parse(payload) else {
                    continue;
                };
                // An ack is not an answer (the router consumes them; the benchmark pipe does not).
                if head.payload_class().as_deref() == Some(ack_class.as_str()) {
                    continue;
                }
                let Some(i) = head
                    .correlation()
                    .and_then(|c| c.strip_prefix(&prefix))
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                let is_error = head.clazz.as_deref() == Some(error_class.as_str());
                let error_type = if is_error {
                    std::str::from_utf8(payload)
                        .ok()
                        .and_then(|t| lookup_str(t, "/payload/error-type").map(|s| s.into_owned()))
                } else {
                    None
                };
                let latency = now.saturating_duration_since(intended(i));
                let second = (i as f64 / cfg.rate) as usize;
                let hops = match (
                    is_error,
                    answer_timestamp(payload),
                    m.timestamp().to_millis(),
                ) {
                    (false, Some(answered), Some(replied)) => Some(Hops {
                        sent: start_ms + (i as f64 * 1000.0 / cfg.rate) as u64,
                        answered,
                        replied: u64::try_from(replied).unwrap_or(0),
                        read: fl_router_actors::runtime::clock::now_millis(),
                    }),
                    _ => None,
                };
                stats.record(
                    i,
                    if is_error {
                        error_code(error_type.as_deref())
                    } else {
                        ANSWERED
                    },
                    latency,
                    second,
                    error_type,
                    hops,
                );
            }
        });
        (handle, done_tx)
    };

    // The open-loop sender: every millisecond, send whatever is due by now.
    let mut next = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            // A stop request, or the LoadRun dropped: either way, stop sending.
            _ = stop.changed() => break,
            _ = tick.tick() => {
                let due = ((start.elapsed().as_secs_f64()) * cfg.rate) as usize;
                while next <= due {
                    if let Ok(mut st) = stats.states.lock() {
                        st.push(UNANSWERED);
                    }
                    let switch = if cfg.unknown_switch_fraction > 0.0 && fastrand::f64() < cfg.unknown_switch_fraction {
                        "ff:ff:ff:ff:ff:ff:ff:ff"
                    } else {
                        switches[next % switches.len()].as_str()
                    };
                    let cid = format!("{run_id}-{next}");
                    let body = format!(
                        r#"{{"clazz":"{}","correlation_id":"{cid}","timestamp":{},"payload":{{"clazz":"org.openkilda.messaging.command.switches.DumpRulesRequest","switch_id":"{switch}"}}}}"#,
                        classes.command_message,
                        fl_router_actors::runtime::clock::now_millis()
                    );
                    send(&producer, &topic, switch, &body, &cfg.reply_topic);
                    stats.sent.fetch_add(1, Relaxed);
                    next += 1;
                }
            }
        }
    }
    let sent_for = start.elapsed();
    let deadline = Instant::now() + cfg.grace;
    while stats.unanswered() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A short look for late duplicates once everything is accounted for.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = receiver.1.send(true);
    let _ = receiver.0.await;
    report::build(&stats, cfg.rate, sent_for, &run_id)
}

/// An FL message's own `timestamp` (ms since the epoch; OpenKilda's `Message.timestamp`).
fn answer_timestamp(payload: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Stamped {
        timestamp: Option<u64>,
    }
    serde_json::from_slice::<Stamped>(payload).ok()?.timestamp
}

fn send(
    p: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    key: &str,
    body: &str,
    reply_to: &str,
) {
    let headers = OwnedHeaders::new().insert(Header {
        key: "reply_to",
        value: Some(reply_to),
    });
    let rec = BaseRecord::to(topic)
        .key(key)
        .payload(body)
        .headers(headers);
    // Counted as lost in the report: a command that never left is one without an answer.
    if let Err((e, _)) = fl_router::kafka::send_waiting(p, rec) {
        warn!(error = %e, "load: send failed");
    }
}

/// Builds the one-a-second status line from the live figures.
#[derive(Default)]
pub struct Status {
    prev_sent: u64,
}

impl Status {
    /// `t=…s rate=…/s sent=… answered=… router_errors=… unanswered=… p99_ms=… [fls_online=a/b]`;
    /// p99 is over the first answers since the previous line.
    pub fn line(
        &mut self,
        elapsed: Duration,
        stats: &LoadStats,
        fls: Option<(usize, usize)>,
    ) -> String {
        let sent = stats.sent.load(Relaxed);
        let rate = sent.saturating_sub(self.prev_sent);
        self.prev_sent = sent;
        let p99 = stats
            .window
            .lock()
            .map(|mut w| {
                let v = report::ms(&w, 0.99);
                w.reset();
                v
            })
            .unwrap_or(0.0);
        let mut line = format!(
            "t={}s rate={rate}/s sent={sent} answered={} router_errors={} unanswered={} p99_ms={p99:.3}",
            elapsed.as_secs(),
            stats.answered.load(Relaxed),
            stats.router_errors.load(Relaxed),
            stats.unanswered(),
        );
        if let Some((online, total)) = fls {
            line.push_str(&format!(" fls_online={online}/{total}"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hops(sent: u64, answered: u64, replied: u64, read: u64) -> Option<Hops> {
        Some(Hops {
            sent,
            answered,
            replied,
            read,
        })
    }

    #[test]
    fn warm_up_commands_are_accounted_for_but_left_out_of_the_percentiles_and_hops() {
        let stats = LoadStats::new();
        stats.warmup_commands.store(2, Relaxed);
        stats.sent.store(4, Relaxed);
        if let Ok(mut st) = stats.states.lock() {
            st.extend([UNANSWERED; 4]);
        }
        let slow = Duration::from_millis(900);
        let fast = Duration::from_millis(10);
        stats.record(0, ANSWERED, slow, 0, None, hops(0, 800, 850, 900));
        stats.record(1, ANSWERED, slow, 0, None, hops(0, 800, 850, 900));
        stats.record(2, ANSWERED, fast, 0, None, hops(1000, 1004, 1007, 1010));
        stats.record(3, ANSWERED, fast, 0, None, hops(1000, 1004, 1007, 1010));
        let r = report::build(&stats, 1000.0, Duration::from_secs(1), "run");
        assert_eq!((r.sent, r.answered, r.lost), (4, 4, 0));
        assert_eq!(r.warmup_commands, 2);
        assert!(r.max_ms < 11.0, "warm-up latency left in: {r:?}");
        assert_eq!(r.stages.counted, 2);
        assert_eq!(r.stages.to_fl, [4, 4, 4]);
        assert_eq!(r.stages.answer_hop, [3, 3, 3]);
        assert_eq!(r.stages.to_load, [3, 3, 3]);
        // The per-second windows still show the warm-up.
        assert!(r.windows[0].max_ms > 800.0);
    }

    #[test]
    fn an_answer_timestamp_is_read_from_the_message() {
        let m = br#"{"clazz":"x","payload":{"timestamp":1},"timestamp":1796320715687}"#;
        assert_eq!(answer_timestamp(m), Some(1_796_320_715_687));
        assert_eq!(answer_timestamp(br#"{"clazz":"x"}"#), None);
        assert_eq!(answer_timestamp(b"not json"), None);
    }
}
