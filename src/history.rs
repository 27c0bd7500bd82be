//! The last minutes as time series, for the dashboard's charts (`GET /api/history`): once a
//! second the router samples its counters (rates of commands in, answers out, router errors by
//! type), its router-added latency (p50/p99, [`crate::latency`]), each FL's status and its
//! busiest mailboxes, and keeps the last [`KEEP`] samples. Kept in the router, not the
//! browser: a page opened now shows the minutes before it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fl_router_actors::runtime::counters::CounterValues;
use fl_router_actors::Engine;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::latency::{self, RouterLatency};

/// Upper bounds (seconds) of the router-added latency histogram's buckets: 50 µs to 2.5 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5,
];

/// Router-added latency since start as a Prometheus histogram: per bucket counts (the last one
/// above every bound), the sum in seconds and the count — aggregatable across instances.
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    pub counts: [u64; LATENCY_BUCKETS.len() + 1],
    pub sum_seconds: f64,
    pub count: u64,
}

impl LatencyHistogram {
    fn add(&mut self, h: &Histogram<u64>) {
        for v in h.iter_recorded() {
            let s = v.value_iterated_to() as f64 / 1e6;
            let n = v.count_at_value();
            let i = LATENCY_BUCKETS.partition_point(|b| *b < s);
            self.counts[i] += n;
            self.sum_seconds += s * n as f64;
            self.count += n;
        }
    }
}

/// Ten minutes at one sample a second.
pub const KEEP: usize = 600;
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Samples whose latencies the Prometheus quantiles cover.
const QUANTILE_WINDOW: usize = 10;
/// Mailboxes kept per sample, busiest first.
const BUSIEST: usize = 5;

/// Counters shown as rates: (counter, series name).
const RATES: &[(Read, &str)] = &[
    (|c| c.commands_received, "commands_in"),
    (|c| c.commands_forwarded, "to_fls"),
    (|c| c.answers_routed, "answers_out"),
    (|c| c.events_forwarded, "switch_events"),
];
/// Router errors by type: (counter, series name).
const ERRORS: &[(Read, &str)] = &[
    (|c| c.errors_not_found, "NOT_FOUND"),
    (|c| c.errors_timed_out, "OPERATION_TIMED_OUT"),
    (|c| c.errors_invalid, "REQUEST_INVALID"),
    (|c| c.dead_letters, "dead_letter"),
];

/// One engine counter, read from its field.
type Read = fn(&CounterValues) -> u64;

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub at_ms: u64,
    /// Per second since the previous sample.
    pub rates: BTreeMap<&'static str, f64>,
    pub errors: BTreeMap<&'static str, f64>,
    /// Router-added latency of the messages passed on since the previous sample (ms).
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_count: u64,
    /// Each FL's status: starting, online, offline, or failover (it lost switches to another
    /// FL in this interval).
    pub fls: BTreeMap<String, &'static str>,
    /// The busiest mailboxes ("kind id") and the messages waiting in each.
    pub mailboxes: Vec<(String, u64)>,
}

#[derive(Default)]
pub struct History {
    cumulative: Mutex<LatencyHistogram>,
    samples: Mutex<VecDeque<Sample>>,
    latencies: Mutex<VecDeque<Histogram<u64>>>,
}

impl History {
    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Router-added latency p50 and p99 (seconds) over the last ten seconds, if any message
    /// was passed on.
    pub fn latency_quantiles(&self) -> Option<(f64, f64)> {
        let l = self.latencies.lock().ok()?;
        let mut all = latency::empty();
        for h in l.iter() {
            let _ = all.add(h);
        }
        (!all.is_empty()).then(|| {
            (
                all.value_at_quantile(0.5) as f64 / 1e6,
                all.value_at_quantile(0.99) as f64 / 1e6,
            )
        })
    }

    /// Router-added latency since start, in the metric's buckets (`flrouter_router_added_latency_seconds`).
    pub fn latency_histogram(&self) -> Option<LatencyHistogram> {
        self.cumulative.lock().ok().map(|c| c.clone())
    }

    fn push(&self, s: Sample, h: Histogram<u64>) {
        if let Ok(mut c) = self.cumulative.lock() {
            c.add(&h);
        }
        if let Ok(mut v) = self.samples.lock() {
            v.push_back(s);
            while v.len() > KEEP {
                v.pop_front();
            }
        }
        if let Ok(mut l) = self.latencies.lock() {
            l.push_back(h);
            while l.len() > QUANTILE_WINDOW {
                l.pop_front();
            }
        }
    }
}

/// Samples `engine` and `latency` into `history` every [`INTERVAL`] until the task is dropped.
pub async fn run(engine: Engine, latency: Arc<RouterLatency>, history: Arc<History>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut prev = engine.counters().values();
    let mut prev_at = tokio::time::Instant::now();
    let mut prev_active: HashMap<String, usize> = HashMap::new();
    loop {
        tick.tick().await;
        let now = tokio::time::Instant::now();
        let secs = (now - prev_at).as_secs_f64().max(1e-3);
        let c = engine.counters().values();
        let rate = |read: Read| read(&c).saturating_sub(read(&prev)) as f64 / secs;
        let h = latency.take();
        let ms = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0);
        let failed_over = rate(|c| c.failovers) > 0.0;
        let active: HashMap<String, usize> = engine
            .switch_counts()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(fl, (a, _))| (fl, a))
            .collect();
        let fls = engine
            .settings()
            .fls
            .iter()
            .map(|f| {
                let lost = active.get(&f.id).copied().unwrap_or(0)
                    < prev_active.get(&f.id).copied().unwrap_or(0);
                let status = match engine.fl_liveness(&f.id) {
                    _ if failed_over && lost => "failover",
                    Some(fl_router_actors::fl::liveness::FlStatus::Online) => "online",
                    Some(fl_router_actors::fl::liveness::FlStatus::Offline) => "offline",
                    _ => "starting",
                };
                (f.id.clone(), status)
            })
            .collect();
        let mut boxes = engine.mailboxes(false);
        boxes.sort_by(|a, b| b.pending.cmp(&a.pending).then(b.received.cmp(&a.received)));
        let sample = Sample {
            at_ms: fl_router_actors::runtime::clock::now_millis(),
            rates: RATES.iter().map(|(k, name)| (*name, rate(*k))).collect(),
            errors: ERRORS.iter().map(|(k, name)| (*name, rate(*k))).collect(),
            latency_p50_ms: ms(0.5),
            latency_p99_ms: ms(0.99),
            latency_count: h.len(),
            fls,
            mailboxes: boxes
                .into_iter()
                .take(BUSIEST)
                .map(|m| (format!("{} {}", m.kind, m.id), m.pending))
                .collect(),
        };
        history.push(sample, h);
        prev = c;
        prev_at = now;
        prev_active = active;
    }
}
