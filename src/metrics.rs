//! Prometheus metrics, named from one spec ([`SPEC`]): `flrouter_<thing>_<unit>`, counters end in
//! `_total` (added by the encoder), label values from bounded sets (actor kinds, error types,
//! directions, and the FL ids of the configuration). Correlation and switch ids appear in logs,
//! never in labels. Values are read at scrape time from the engine's counters and mailbox
//! figures, the producer's counters and librdkafka's statistics.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use fl_router_actors::fl::liveness::FlStatus;
use fl_router_actors::runtime::counters::CounterValues;
use fl_router_actors::runtime::mailbox::MailboxSnapshot;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::history::{LatencyHistogram, LATENCY_BUCKETS};
use crate::kafka::producer::ProducerCounters;
use crate::kafka::stats::KafkaStats;

#[derive(Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Where a metric's values come from.
#[derive(Clone, Copy)]
pub enum Read {
    /// Counters and gauges: their samples.
    Samples(fn(&Snapshot) -> Vec<Sample>),
    /// A histogram (no labels): its buckets, sum and count.
    Histogram(fn(&Snapshot) -> Option<&LatencyHistogram>),
}

/// One exported metric, declared once: its name (without `_total`), type, help, label names
/// and where its values come from (fields of the snapshot: a metric cannot name a counter that
/// does not exist).
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: &'static [&'static str],
    /// The metric's values.
    pub read: Read,
}

/// One sample: its label values (in the order of [`Metric::labels`]) and its value.
pub type Sample = (Vec<String>, f64);

fn one(v: u64) -> Vec<Sample> {
    vec![(Vec::new(), v as f64)]
}

fn by(pairs: &[(&str, u64)]) -> Vec<Sample> {
    pairs
        .iter()
        .map(|(l, v)| (vec![l.to_string()], *v as f64))
        .collect()
}

fn sum(rows: &[&MailboxSnapshot], f: fn(&MailboxSnapshot) -> u64) -> f64 {
    rows.iter().map(|m| f(m)).sum::<u64>() as f64
}

fn max(rows: &[&MailboxSnapshot], f: fn(&MailboxSnapshot) -> u64) -> f64 {
    rows.iter().map(|m| f(m)).max().unwrap_or(0) as f64
}

/// Every metric the router exports.
pub const SPEC: &[Metric] = &[
    Metric {
        name: "flrouter_commands_received",
        kind: Kind::Counter,
        help: "Commands read from the inbound topics.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.commands_received)),
    },
    Metric {
        name: "flrouter_fl_messages_received",
        kind: Kind::Counter,
        help: "Messages read from FL write topics.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.fl_messages_received)),
    },
    Metric {
        name: "flrouter_messages_routed",
        kind: Kind::Counter,
        help: "Messages the router produced on, by direction: command_to_fl, answer_to_controller, event_to_controller, sync_chain, sync_chain_orphan (a chain message for a router sync session not running here: to the events topic).",
        labels: &["direction"],
        read: Read::Samples(|s| by(&[("command_to_fl", s.c.commands_forwarded), ("answer_to_controller", s.c.answers_routed), ("event_to_controller", s.c.events_forwarded), ("sync_chain", s.c.sync_chain_messages), ("sync_chain_orphan", s.c.orphan_chain_messages)])),
    },
    Metric {
        name: "flrouter_router_errors",
        kind: Kind::Counter,
        help: "Errors the router answered commands with, by type.",
        labels: &["type"],
        read: Read::Samples(|s| by(&[("not_found", s.c.errors_not_found), ("operation_timed_out", s.c.errors_timed_out), ("request_invalid", s.c.errors_invalid)])),
    },
    Metric {
        name: "flrouter_command_timeouts",
        kind: Kind::Counter,
        help: "Commands whose FL missed a deadline: ack (answered OPERATION_TIMED_OUT) or answer (acked, never answered).",
        labels: &["deadline"],
        read: Read::Samples(|s| by(&[("ack", s.c.ack_timeouts), ("answer", s.c.acked_unanswered)])),
    },
    Metric {
        name: "flrouter_commands_failed_fast",
        kind: Kind::Counter,
        help: "Pending commands answered at once because their FL went offline.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.failed_fast)),
    },
    Metric {
        name: "flrouter_blacklist_drops",
        kind: Kind::Counter,
        help: "FL messages dropped because their command was already answered by a timeout.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.blacklist_drops)),
    },
    Metric {
        name: "flrouter_dead_letters",
        kind: Kind::Counter,
        help: "Messages sent to the dead-letter topic.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.dead_letters)),
    },
    Metric {
        name: "flrouter_fl_outages",
        kind: Kind::Counter,
        help: "FL outages declared (silence or lost writes).",
        labels: &[],
        read: Read::Samples(|s| one(s.c.fl_outages)),
    },
    Metric {
        name: "flrouter_sync_sessions",
        kind: Kind::Counter,
        help: "Sync sessions started.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.sync_sessions_started)),
    },
    Metric {
        name: "flrouter_sync_fl_chains",
        kind: Kind::Counter,
        help: "FL network dumps of sync sessions by outcome: complete (counted and whole, or closed by an end marker), uncounted (entries mapped, nothing concluded), empty (nothing, and no switch known), failed (missing or incomplete after the retries).",
        labels: &["outcome"],
        read: Read::Samples(|s| by(&[("complete", s.c.sync_fl_complete), ("uncounted", s.c.sync_fl_uncounted), ("empty", s.c.sync_fl_empty), ("failed", s.c.sync_fl_failed)])),
    },
    Metric {
        name: "flrouter_sync_unreadable_entries",
        kind: Kind::Counter,
        help: "Network dump entries without a readable switch: dead-lettered, their FL's dump incomplete.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.sync_unreadable_entries)),
    },
    Metric {
        name: "flrouter_delivery_only_commands",
        kind: Kind::Counter,
        help: "Commands of a class the speaker does not always answer (protocol.delivery_only): forwarded and tracked for delivery only, no router deadline.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.delivery_only_forwarded)),
    },
    Metric {
        name: "flrouter_sync_retries",
        kind: Kind::Counter,
        help: "SyncRequests re-sent for a missing or incomplete dump.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.sync_retries)),
    },
    Metric {
        name: "flrouter_multi_switch_commands",
        kind: Kind::Counter,
        help: "Multi-switch commands split and forwarded.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.multi_commands)),
    },
    Metric {
        name: "flrouter_multi_switch_late_answers",
        kind: Kind::Counter,
        help: "Answers for a multi-switch part that had already settled.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.multi_late_answers)),
    },
    Metric {
        name: "flrouter_replayed_commands",
        kind: Kind::Counter,
        help: "Commands read again after a restart that already had an outcome, by what was done: answered (nothing sent), repeated (the router's answer sent again), adopted (pending again, not forwarded twice).",
        labels: &["outcome"],
        read: Read::Samples(|s| by(&[("answered", s.c.replayed_answered), ("repeated", s.c.replayed_repeated), ("adopted", s.c.replayed_adopted)])),
    },
    Metric {
        name: "flrouter_previous_answers_routed",
        kind: Kind::Counter,
        help: "FL answers to commands a previous incarnation forwarded, routed to their reply-to.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.previous_answers_routed)),
    },
    Metric {
        name: "flrouter_duplicate_answers_dropped",
        kind: Kind::Counter,
        help: "FL answers for commands that already had their outcome.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.duplicate_answers_dropped)),
    },
    Metric {
        name: "flrouter_switch_failovers",
        kind: Kind::Counter,
        help: "Active-FL moves of a switch, by reason: lost_active (its active FL disconnected it or went offline; a standby took over), return_home (a preferred FL connected).",
        labels: &["reason"],
        read: Read::Samples(|s| by(&[("lost_active", s.c.failovers), ("return_home", s.c.failbacks)])),
    },
    Metric {
        name: "flrouter_failed_over_commands",
        kind: Kind::Counter,
        help: "Pending commands answered OPERATION_TIMED_OUT because their switch failed over to another FL.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.failed_over_commands)),
    },
    Metric {
        name: "flrouter_switch_availability_notifications",
        kind: Kind::Counter,
        help: "Switch availability notices published (connections changed; failovers included).",
        labels: &[],
        read: Read::Samples(|s| one(s.c.availability_notifications)),
    },
    Metric {
        name: "flrouter_grace_commands",
        kind: Kind::Counter,
        help: "Commands for a switch that had just lost its last read-write FL, by outcome: waited (entered the grace window), forwarded (the switch reconnected), expired (answered NOT_FOUND).",
        labels: &["outcome"],
        read: Read::Samples(|s| by(&[("waited", s.c.grace_waits), ("forwarded", s.c.grace_forwarded), ("expired", s.c.grace_expired)])),
    },
    Metric {
        name: "flrouter_standby_events_dropped",
        kind: Kind::Counter,
        help: "Switch-scoped FL messages (port events) from an FL that is not the switch's active one, dropped: the active FL speaks for the switch.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.standby_events_dropped)),
    },
    Metric {
        name: "flrouter_commands_handed_over",
        kind: Kind::Counter,
        help: "Commands forwarded to an FL another instance owns, or pending when this instance stopped owning it: the FL's owner adopts them from its read topic.",
        labels: &[],
        read: Read::Samples(|s| one(s.c.commands_handed_over)),
    },
    Metric {
        name: "flrouter_fl_messages_not_owned",
        kind: Kind::Counter,
        help: "FL messages that reached the engine after this instance stopped owning the FL (dropped; the new owner reads them).",
        labels: &[],
        read: Read::Samples(|s| one(s.c.fl_messages_not_owned)),
    },
    Metric {
        name: "flrouter_forwards_adopted",
        kind: Kind::Counter,
        help: "Forwards read back from an owned FL's read topic and made pending (a cluster instance).",
        labels: &[],
        read: Read::Samples(|s| one(s.c.forwards_adopted)),
    },
    Metric {
        name: "flrouter_answers_held",
        kind: Kind::Counter,
        help: "FL acks and answers that waited for their forward to be adopted (a cluster instance).",
        labels: &[],
        read: Read::Samples(|s| one(s.c.answers_held)),
    },
    Metric {
        name: "flrouter_sync_requests_handed_over",
        kind: Kind::Counter,
        help: "Controller SyncRequests sent on to every FL's read topic, for each FL's owner to run (a cluster instance).",
        labels: &[],
        read: Read::Samples(|s| one(s.c.sync_requests_handed_over)),
    },
    Metric {
        name: "flrouter_sync_requests_adopted",
        kind: Kind::Counter,
        help: "Controller SyncRequests adopted from an owned FL's read topic: that FL's sync runs here (a cluster instance).",
        labels: &[],
        read: Read::Samples(|s| one(s.c.sync_requests_adopted)),
    },
    Metric {
        name: "flrouter_cluster_owned",
        kind: Kind::Gauge,
        help: "What this instance holds now, by what: fls (FLs it owns), command_partitions (command-topic partitions it reads), leader (1 when it leads). One instance holds everything.",
        labels: &["what"],
        read: Read::Samples(Snapshot::cluster_owned),
    },
    Metric {
        name: "flrouter_cluster_fl_owned",
        kind: Kind::Gauge,
        help: "1 for each FL this instance owns (reads, asks, judges, syncs), 0 for the others.",
        labels: &["fl"],
        read: Read::Samples(Snapshot::cluster_fl_owned),
    },
    Metric {
        name: "flrouter_forwards_settled",
        kind: Kind::Counter,
        help: "Forwards read back from an owned FL's read topic whose command already had its outcome: not adopted (a cluster instance).",
        labels: &[],
        read: Read::Samples(|s| one(s.c.forwards_settled)),
    },
    Metric {
        name: "flrouter_fl_switches",
        kind: Kind::Gauge,
        help: "Switches per FL, by role: active (its commands go to this FL) or standby (connected, not active).",
        labels: &["fl", "role"],
        read: Read::Samples(Snapshot::fl_switches),
    },
    Metric {
        name: "flrouter_fl_online",
        kind: Kind::Gauge,
        help: "1 when the FL is online (evidence within the alive timeout), else 0.",
        labels: &["fl", "status"],
        read: Read::Samples(Snapshot::fl_online),
    },
    Metric {
        name: "flrouter_mailbox_messages_sent",
        kind: Kind::Counter,
        help: "Messages sent to actors' mailboxes, by actor kind.",
        labels: &["kind"],
        read: Read::Samples(|s| s.by_kind(|rows| sum(rows, |m| m.sent))),
    },
    Metric {
        name: "flrouter_mailbox_messages_received",
        kind: Kind::Counter,
        help: "Messages handled by actors, by actor kind.",
        labels: &["kind"],
        read: Read::Samples(|s| s.by_kind(|rows| sum(rows, |m| m.received))),
    },
    Metric {
        name: "flrouter_mailbox_messages_rejected",
        kind: Kind::Counter,
        help: "Sends refused (mailbox closed), by actor kind.",
        labels: &["kind"],
        read: Read::Samples(|s| s.by_kind(|rows| sum(rows, |m| m.rejected))),
    },
    Metric {
        name: "flrouter_mailbox_pending_messages",
        kind: Kind::Gauge,
        help: "Messages waiting in actors' mailboxes (sent - received - rejected), by actor kind.",
        labels: &["kind"],
        read: Read::Samples(|s| s.by_kind(|rows| sum(rows, |m| m.pending))),
    },
    Metric {
        name: "flrouter_mailbox_capacity_messages",
        kind: Kind::Gauge,
        help: "Mailbox capacity of the kind's busiest actor.",
        labels: &["kind"],
        read: Read::Samples(|s| s.by_kind(|rows| max(rows, |m| m.capacity as u64))),
    },
    Metric {
        name: "flrouter_mailbox_max_wait_microseconds",
        kind: Kind::Gauge,
        help: "Longest time a message waited in a mailbox of this kind in the last window.",
        labels: &["kind"],
        read: Read::Samples(|s| s.by_kind(|rows| max(rows, |m| m.max_wait_us))),
    },
    Metric {
        name: "flrouter_mailbox_max_handle_microseconds",
        kind: Kind::Gauge,
        help: "Longest handling time of a message by an actor of this kind in the last window.",
        labels: &["kind"],
        read: Read::Samples(|s| s.by_kind(|rows| max(rows, |m| m.max_handle_us))),
    },
    Metric {
        name: "flrouter_actor_restarts",
        kind: Kind::Counter,
        help: "Actor restarts by the supervisor, by actor kind.",
        labels: &["kind"],
        read: Read::Samples(|s| s.by_kind(|rows| sum(rows, |m| m.restarts))),
    },
    Metric {
        name: "flrouter_actor_failures",
        kind: Kind::Counter,
        help: "Messages whose handling failed (a panic caught; the actor restarts), by actor kind. Alert on any: a bug.",
        labels: &["kind"],
        read: Read::Samples(|s| s.by_kind(|rows| sum(rows, |m| m.failures))),
    },
    Metric {
        name: "flrouter_actors",
        kind: Kind::Gauge,
        help: "Live actor instances by kind.",
        labels: &["kind"],
        read: Read::Samples(|s| s.by_kind(|rows| rows.len() as f64)),
    },
    Metric {
        name: "flrouter_kafka_messages_delivered",
        kind: Kind::Counter,
        help: "Messages Kafka acknowledged to the producer.",
        labels: &[],
        read: Read::Samples(|s| one(s.producer(|p| p.delivered.load(Relaxed)))),
    },
    Metric {
        name: "flrouter_kafka_delivery_failures",
        kind: Kind::Counter,
        help: "Failed delivery attempts (retried, then dead-lettered).",
        labels: &[],
        read: Read::Samples(|s| one(s.producer(|p| p.failed.load(Relaxed)))),
    },
    Metric {
        name: "flrouter_dead_letters_reduced",
        kind: Kind::Counter,
        help: "Dead letters the dead-letter topic refused whole, produced again cut down.",
        labels: &[],
        read: Read::Samples(|s| one(s.producer(|p| p.reduced.load(Relaxed)))),
    },
    Metric {
        name: "flrouter_dead_letters_stuck",
        kind: Kind::Counter,
        help: "Dead letters refused even cut down to their headers: their inputs stay uncommitted. Alert on any.",
        labels: &[],
        read: Read::Samples(|s| one(s.producer(|p| p.stuck.load(Relaxed)))),
    },
    Metric {
        name: "flrouter_obligations_unmet",
        kind: Kind::Counter,
        help: "Commands whose owed final answer was dropped by the engine without being given (a bug). Alert on any.",
        labels: &[],
        read: Read::Samples(|_| one(fl_router_actors::runtime::obligation::unmet())),
    },
    Metric {
        name: "flrouter_router_added_latency_seconds",
        kind: Kind::Histogram,
        help: "Router-added latency since start: from reading a message to handing what it became (forward, routed answer or event) to the producer, on the router's own clock. A histogram: sum rate() over instances, then histogram_quantile().",
        labels: &[],
        read: Read::Histogram(|s| s.latency.as_ref()),
    },
    Metric {
        name: "flrouter_kafka_producer_queue_messages",
        kind: Kind::Gauge,
        help: "Messages in the producer's queue (librdkafka statistics).",
        labels: &[],
        read: Read::Samples(|s| one(s.kafka(|k| k.producer_queue.load(Relaxed).max(0) as u64))),
    },
    Metric {
        name: "flrouter_kafka_consumer_lag_messages",
        kind: Kind::Gauge,
        help: "Consumer lag summed over partitions (librdkafka statistics).",
        labels: &["consumer"],
        read: Read::Samples(|s| by(&[("commands", s.kafka(|k| k.commands_lag.load(Relaxed).max(0) as u64)), ("fl", s.kafka(|k| k.fl_lag.load(Relaxed).max(0) as u64))])),
    },
];

/// A snapshot of everything exported, taken before encoding (the engine is asked asynchronously).
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The engine's counters.
    pub c: CounterValues,
    pub mailboxes: Vec<MailboxSnapshot>,
    pub fls: Vec<(String, FlStatus)>,
    /// Per FL: (active switches, standby switches).
    pub switches: Vec<(String, (usize, usize))>,
    pub producer: Option<Arc<ProducerCounters>>,
    pub kafka: Option<Arc<KafkaStats>>,
    /// This instance's share of the cluster (everything, for a single instance).
    pub share: Option<crate::cluster::Share>,
    /// Router-added latency since start.
    pub latency: Option<LatencyHistogram>,
}

impl Snapshot {
    fn producer(&self, f: fn(&ProducerCounters) -> u64) -> u64 {
        self.producer.as_deref().map_or(0, f)
    }

    fn kafka(&self, f: fn(&KafkaStats) -> u64) -> u64 {
        self.kafka.as_deref().map_or(0, f)
    }

    /// Mailbox figures aggregated by actor kind (a bounded label; instance ids are in
    /// /api/mailboxes).
    fn by_kind(&self, f: impl Fn(&[&MailboxSnapshot]) -> f64) -> Vec<Sample> {
        let mut kinds: Vec<&str> = self.mailboxes.iter().map(|m| m.kind).collect();
        kinds.sort();
        kinds.dedup();
        kinds
            .into_iter()
            .map(|kind| {
                let rows: Vec<&MailboxSnapshot> =
                    self.mailboxes.iter().filter(|m| m.kind == kind).collect();
                (vec![kind.to_string()], f(&rows))
            })
            .collect()
    }

    fn cluster_owned(&self) -> Vec<Sample> {
        match &self.share {
            Some(sh) => vec![
                (vec!["fls".into()], sh.fls_owned.len() as f64),
                (
                    vec!["command_partitions".into()],
                    sh.command_partitions as f64,
                ),
                (vec!["leader".into()], if sh.leader { 1.0 } else { 0.0 }),
            ],
            None => Vec::new(),
        }
    }

    fn cluster_fl_owned(&self) -> Vec<Sample> {
        match &self.share {
            Some(sh) => self
                .fls
                .iter()
                .map(|(fl, _)| {
                    let owned = sh.fls_owned.iter().any(|o| o == fl);
                    (vec![fl.clone()], if owned { 1.0 } else { 0.0 })
                })
                .collect(),
            None => Vec::new(),
        }
    }

    fn fl_switches(&self) -> Vec<Sample> {
        self.switches
            .iter()
            .flat_map(|(fl, (active, standby))| {
                [
                    (vec![fl.clone(), "active".into()], *active as f64),
                    (vec![fl.clone(), "standby".into()], *standby as f64),
                ]
            })
            .collect()
    }

    fn fl_online(&self) -> Vec<Sample> {
        self.fls
            .iter()
            .map(|(fl, st)| {
                let status = serde_json::to_value(st)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                (
                    vec![fl.clone(), status],
                    if *st == FlStatus::Online { 1.0 } else { 0.0 },
                )
            })
            .collect()
    }
}

#[derive(Debug)]
struct Exporter(Snapshot);

impl Collector for Exporter {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for m in SPEC {
            let ty = match m.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut family = encoder.encode_descriptor(m.name, m.help, None, ty)?;
            let read = match m.read {
                Read::Samples(read) => read,
                Read::Histogram(read) => {
                    let empty = LatencyHistogram::default();
                    let h = read(&self.0).unwrap_or(&empty);
                    let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                        .iter()
                        .copied()
                        .chain([f64::INFINITY])
                        .zip(h.counts)
                        .collect();
                    family.encode_histogram::<NoLabelSet>(
                        h.sum_seconds,
                        h.count,
                        &buckets,
                        None,
                    )?;
                    continue;
                }
            };
            let values = read(&self.0);
            if m.labels.is_empty() {
                let v = values.first().map_or(0.0, |(_, v)| *v);
                match m.kind {
                    Kind::Counter => ConstCounter::new(v as u64).encode(family)?,
                    _ => ConstGauge::new(v).encode(family)?,
                }
                continue;
            }
            for (label_values, v) in &values {
                let labels: Vec<(&str, &str)> = m
                    .labels
                    .iter()
                    .copied()
                    .zip(label_values.iter().map(String::as_str))
                    .collect();
                let enc = family.encode_family(&labels)?;
                match m.kind {
                    Kind::Counter => ConstCounter::new(*v as u64).encode(enc)?,
                    _ => ConstGauge::new(*v).encode(enc)?,
                }
            }
        }
        Ok(())
    }
}

/// The Prometheus text exposition of `snapshot`.
pub fn render(snapshot: Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exporter(snapshot)));
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}

/// The classic Prometheus text format (0.0.4) of an OpenMetrics exposition (what [`render`]
/// makes): a counter's `# HELP`/`# TYPE` name its `_total` series, no `# UNIT`, no `# EOF`.
pub fn to_classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (*p, rest)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{p}{name}_total {tail}"));
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_rules() {
        for m in SPEC {
            assert!(m.name.starts_with("flrouter_"), "{}", m.name);
            assert!(
                !m.name.ends_with("_total"),
                "{}: the encoder adds _total to counters",
                m.name
            );
            assert!(
                m.labels.iter().all(|l| !l.contains("id")),
                "{}: no ids as labels",
                m.name
            );
        }
    }

    #[test]
    fn every_metric_is_declared_once_and_rendered() {
        let mut names: Vec<&str> = SPEC.iter().map(|m| m.name).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a metric declared twice");
        let text = render(Snapshot::default());
        for m in SPEC {
            assert!(
                text.contains(&format!("# HELP {} ", m.name)),
                "{} is not rendered",
                m.name
            );
        }
    }

    #[test]
    fn renders_counters_with_total_and_labelled_families() {
        let snap = Snapshot {
            c: CounterValues {
                commands_received: 7,
                errors_not_found: 2,
                ..CounterValues::default()
            },
            fls: vec![("fl1".into(), FlStatus::Online)],
            ..Snapshot::default()
        };
        let text = render(snap);
        assert!(
            text.contains("flrouter_commands_received_total 7"),
            "{text}"
        );
        assert!(
            text.contains(r#"flrouter_router_errors_total{type="not_found"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"flrouter_fl_online{fl="fl1",status="online"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("# TYPE flrouter_mailbox_pending_messages gauge"),
            "{text}"
        );
    }

    #[test]
    fn latency_is_a_histogram_with_fractional_seconds() {
        let mut h = LatencyHistogram::default();
        h.counts[3] = 2; // <= 0.5 ms
        h.counts[LATENCY_BUCKETS.len()] = 1; // above every bound
        h.sum_seconds = 3.0008;
        h.count = 3;
        let text = render(Snapshot {
            latency: Some(h),
            ..Snapshot::default()
        });
        assert!(
            text.contains("# TYPE flrouter_router_added_latency_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(r#"flrouter_router_added_latency_seconds_bucket{le="0.0005"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"flrouter_router_added_latency_seconds_bucket{le="+Inf"} 3"#),
            "{text}"
        );
        assert!(
            text.contains("flrouter_router_added_latency_seconds_sum 3.0008"),
            "{text}"
        );
    }

    #[test]
    fn the_classic_format_names_counters_by_their_series() {
        let text = to_classic(&render(Snapshot::default()));
        assert!(!text.contains("# EOF"));
        assert!(
            text.contains("# TYPE flrouter_commands_received_total counter"),
            "{text}"
        );
        assert!(text.contains("# TYPE flrouter_fl_online gauge"), "{text}");
        // A standard parser reads it.
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("a parsable exposition");
        assert!(scrape
            .samples
            .iter()
            .any(|s| s.metric == "flrouter_commands_received_total"));
    }
}
