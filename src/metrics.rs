//! Prometheus metrics, named from one spec ([`SPEC`]): `flrouter_<thing>_<unit>`, counters end in
//! `_total` (added by the encoder), label values from bounded sets (actor kinds, error types,
//! directions, and the FL ids of the configuration). Correlation and switch ids appear in logs,
//! never in labels. Values are read at scrape time from the engine's counters and mailbox
//! figures, the producer's counters and librdkafka's statistics.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use fl_router_actors::liveness::FlStatus;
use fl_router_actors::mailbox::MailboxSnapshot;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::kafka::producer::ProducerCounters;
use crate::kafka::stats::KafkaStats;

#[derive(Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One exported metric: name (without `_total`), type, help, label names.
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: &'static [&'static str],
}

const fn counter(
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        help,
        labels,
    }
}

const fn gauge(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        help,
        labels,
    }
}

/// Every metric the router exports.
pub const SPEC: &[Metric] = &[
    counter("flrouter_commands_received", "Commands read from the inbound topics.", &[]),
    counter("flrouter_fl_messages_received", "Messages read from FL write topics.", &[]),
    counter(
        "flrouter_messages_routed",
        "Messages the router produced on, by direction: command_to_fl, answer_to_controller, event_to_controller, sync_chain, sync_chain_orphan (a chain message for a router sync session not running here: to the events topic).",
        &["direction"],
    ),
    counter("flrouter_router_errors", "Errors the router answered commands with, by type.", &["type"]),
    counter("flrouter_command_timeouts", "Commands whose FL missed a deadline: ack (answered OPERATION_TIMED_OUT) or answer (acked, never answered).", &["deadline"]),
    counter("flrouter_commands_failed_fast", "Pending commands answered at once because their FL went offline.", &[]),
    counter("flrouter_blacklist_drops", "FL messages dropped because their command was already answered by a timeout.", &[]),
    counter("flrouter_dead_letters", "Messages sent to the dead-letter topic.", &[]),
    counter("flrouter_fl_outages", "FL outages declared (silence or lost writes).", &[]),
    counter("flrouter_sync_sessions", "Sync sessions started.", &[]),
    counter("flrouter_sync_fl_chains", "FL network dumps of sync sessions by outcome: complete (counted and whole, or closed by an end marker), uncounted (entries mapped, nothing concluded), empty (nothing, and no switch known), failed (missing or incomplete after the retries).", &["outcome"]),
    counter("flrouter_sync_unreadable_entries", "Network dump entries without a readable switch: dead-lettered, their FL's dump incomplete.", &[]),
    counter("flrouter_delivery_only_commands", "Commands of a class the speaker does not always answer (protocol.delivery_only): forwarded and tracked for delivery only, no router deadline.", &[]),
    counter("flrouter_sync_retries", "SyncRequests re-sent for a missing or incomplete dump.", &[]),
    counter("flrouter_multi_switch_commands", "Multi-switch commands split and forwarded.", &[]),
    counter("flrouter_multi_switch_late_answers", "Answers for a multi-switch part that had already settled.", &[]),
    counter(
        "flrouter_replayed_commands",
        "Commands read again after a restart that already had an outcome, by what was done: answered (nothing sent), repeated (the router's answer sent again), adopted (pending again, not forwarded twice).",
        &["outcome"],
    ),
    counter("flrouter_previous_answers_routed", "FL answers to commands a previous incarnation forwarded, routed to their reply-to.", &[]),
    counter("flrouter_duplicate_answers_dropped", "FL answers for commands that already had their outcome.", &[]),
    counter(
        "flrouter_switch_failovers",
        "Active-FL moves of a switch, by reason: lost_active (its active FL disconnected it or went offline; a standby took over), return_home (a preferred FL connected).",
        &["reason"],
    ),
    counter("flrouter_failed_over_commands", "Pending commands answered OPERATION_TIMED_OUT because their switch failed over to another FL.", &[]),
    counter("flrouter_switch_availability_notifications", "Switch availability notices published (connections changed; failovers included).", &[]),
    counter(
        "flrouter_grace_commands",
        "Commands for a switch that had just lost its last read-write FL, by outcome: waited (entered the grace window), forwarded (the switch reconnected), expired (answered NOT_FOUND).",
        &["outcome"],
    ),
    counter("flrouter_standby_events_dropped", "Switch-scoped FL messages (port events) from an FL that is not the switch's active one, dropped: the active FL speaks for the switch.", &[]),
    counter("flrouter_commands_handed_over", "Commands forwarded to an FL another instance owns, or pending when this instance stopped owning it: the FL's owner adopts them from its read topic.", &[]),
    counter("flrouter_fl_messages_not_owned", "FL messages that reached the engine after this instance stopped owning the FL (dropped; the new owner reads them).", &[]),
    counter("flrouter_forwards_adopted", "Forwards read back from an owned FL's read topic and made pending (a cluster instance).", &[]),
    counter("flrouter_answers_held", "FL acks and answers that waited for their forward to be adopted (a cluster instance).", &[]),
    counter("flrouter_sync_requests_handed_over", "Controller SyncRequests sent on to every FL's read topic, for each FL's owner to run (a cluster instance).", &[]),
    counter("flrouter_sync_requests_adopted", "Controller SyncRequests adopted from an owned FL's read topic: that FL's sync runs here (a cluster instance).", &[]),
    gauge("flrouter_cluster_owned", "What this instance holds now, by what: fls (FLs it owns), command_partitions (command-topic partitions it reads), leader (1 when it leads). One instance holds everything.", &["what"]),
    gauge("flrouter_cluster_fl_owned", "1 for each FL this instance owns (reads, asks, judges, syncs), 0 for the others.", &["fl"]),
    counter("flrouter_forwards_settled", "Forwards read back from an owned FL's read topic whose command already had its outcome: not adopted (a cluster instance).", &[]),
    gauge("flrouter_fl_switches", "Switches per FL, by role: active (its commands go to this FL) or standby (connected, not active).", &["fl", "role"]),
    gauge("flrouter_fl_online", "1 when the FL is online (evidence within the alive timeout), else 0.", &["fl", "status"]),
    counter("flrouter_mailbox_messages_sent", "Messages sent to actors' mailboxes, by actor kind.", &["kind"]),
    counter("flrouter_mailbox_messages_received", "Messages handled by actors, by actor kind.", &["kind"]),
    counter("flrouter_mailbox_messages_rejected", "Sends refused (mailbox closed), by actor kind.", &["kind"]),
    gauge("flrouter_mailbox_pending_messages", "Messages waiting in actors' mailboxes (sent - received - rejected), by actor kind.", &["kind"]),
    gauge("flrouter_mailbox_capacity_messages", "Mailbox capacity of the kind's busiest actor.", &["kind"]),
    gauge("flrouter_mailbox_max_wait_microseconds", "Longest time a message waited in a mailbox of this kind in the last window.", &["kind"]),
    gauge("flrouter_mailbox_max_handle_microseconds", "Longest handling time of a message by an actor of this kind in the last window.", &["kind"]),
    counter("flrouter_actor_restarts", "Actor restarts by the supervisor, by actor kind.", &["kind"]),
    counter("flrouter_actor_failures", "Messages whose handling failed (a panic caught; the actor restarts), by actor kind. Alert on any: a bug.", &["kind"]),
    gauge("flrouter_actors", "Live actor instances by kind.", &["kind"]),
    counter("flrouter_kafka_messages_delivered", "Messages Kafka acknowledged to the producer.", &[]),
    counter("flrouter_kafka_delivery_failures", "Failed delivery attempts (retried, then dead-lettered).", &[]),
    counter("flrouter_dead_letters_reduced", "Dead letters the dead-letter topic refused whole, produced again cut down.", &[]),
    counter("flrouter_dead_letters_stuck", "Dead letters refused even cut down to their headers: their inputs stay uncommitted. Alert on any.", &[]),
    counter("flrouter_obligations_unmet", "Commands whose owed final answer was dropped by the engine without being given (a bug). Alert on any.", &[]),
    gauge("flrouter_router_added_latency_seconds", "Router-added latency over the last 10 s, by quantile (0.5, 0.99): from reading a message to handing what it became (forward, routed answer or event) to the producer, on the router's own clock.", &["quantile"]),
    gauge("flrouter_kafka_producer_queue_messages", "Messages in the producer's queue (librdkafka statistics).", &[]),
    gauge("flrouter_kafka_consumer_lag_messages", "Consumer lag summed over partitions (librdkafka statistics).", &["consumer"]),
];

/// A snapshot of everything exported, taken before encoding (the engine is asked asynchronously).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub counters: Vec<(&'static str, u64)>,
    pub mailboxes: Vec<MailboxSnapshot>,
    pub fls: Vec<(String, FlStatus)>,
    /// Per FL: (active switches, standby switches).
    pub switches: Vec<(String, (usize, usize))>,
    pub producer: Option<Arc<ProducerCounters>>,
    pub kafka: Option<Arc<KafkaStats>>,
    /// This instance's share of the cluster (everything, for a single instance).
    pub share: Option<crate::cluster::Share>,
    /// Router-added latency p50 and p99 (seconds) over the last 10 s.
    pub latency: Option<(f64, f64)>,
}

impl Snapshot {
    fn counter(&self, name: &str) -> u64 {
        self.counters
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// The values of one metric: (label values, value).
    fn values(&self, m: &Metric) -> Vec<(Vec<String>, f64)> {
        let one = |v: u64| vec![(Vec::new(), v as f64)];
        let by = |pairs: &[(&str, &str)]| -> Vec<(Vec<String>, f64)> {
            pairs
                .iter()
                .map(|(l, c)| (vec![l.to_string()], self.counter(c) as f64))
                .collect()
        };
        match m.name {
            "flrouter_commands_received" => one(self.counter("commands_received")),
            "flrouter_fl_messages_received" => one(self.counter("fl_messages_received")),
            "flrouter_messages_routed" => by(&[
                ("command_to_fl", "commands_forwarded"),
                ("answer_to_controller", "answers_routed"),
                ("event_to_controller", "events_forwarded"),
                ("sync_chain", "sync_chain_messages"),
                ("sync_chain_orphan", "orphan_chain_messages"),
            ]),
            "flrouter_router_errors" => by(&[
                ("not_found", "errors_not_found"),
                ("operation_timed_out", "errors_timed_out"),
                ("request_invalid", "errors_invalid"),
            ]),
            "flrouter_command_timeouts" => {
                by(&[("ack", "ack_timeouts"), ("answer", "acked_unanswered")])
            }
            "flrouter_commands_failed_fast" => one(self.counter("failed_fast")),
            "flrouter_blacklist_drops" => one(self.counter("blacklist_drops")),
            "flrouter_dead_letters" => one(self.counter("dead_letters")),
            "flrouter_fl_outages" => one(self.counter("fl_outages")),
            "flrouter_sync_sessions" => one(self.counter("sync_sessions_started")),
            "flrouter_sync_fl_chains" => by(&[
                ("complete", "sync_fl_complete"),
                ("uncounted", "sync_fl_uncounted"),
                ("empty", "sync_fl_empty"),
                ("failed", "sync_fl_failed"),
            ]),
            "flrouter_sync_unreadable_entries" => one(self.counter("sync_unreadable_entries")),
            "flrouter_sync_retries" => one(self.counter("sync_retries")),
            "flrouter_delivery_only_commands" => one(self.counter("delivery_only_forwarded")),
            "flrouter_multi_switch_commands" => one(self.counter("multi_commands")),
            "flrouter_multi_switch_late_answers" => one(self.counter("multi_late_answers")),
            "flrouter_replayed_commands" => by(&[
                ("answered", "replayed_answered"),
                ("repeated", "replayed_repeated"),
                ("adopted", "replayed_adopted"),
            ]),
            "flrouter_previous_answers_routed" => one(self.counter("previous_answers_routed")),
            "flrouter_duplicate_answers_dropped" => one(self.counter("duplicate_answers_dropped")),
            "flrouter_switch_failovers" => {
                by(&[("lost_active", "failovers"), ("return_home", "failbacks")])
            }
            "flrouter_failed_over_commands" => one(self.counter("failed_over_commands")),
            "flrouter_switch_availability_notifications" => {
                one(self.counter("availability_notifications"))
            }
            "flrouter_grace_commands" => by(&[
                ("waited", "grace_waits"),
                ("forwarded", "grace_forwarded"),
                ("expired", "grace_expired"),
            ]),
            "flrouter_standby_events_dropped" => one(self.counter("standby_events_dropped")),
            "flrouter_commands_handed_over" => one(self.counter("commands_handed_over")),
            "flrouter_fl_messages_not_owned" => one(self.counter("fl_messages_not_owned")),
            "flrouter_forwards_adopted" => one(self.counter("forwards_adopted")),
            "flrouter_answers_held" => one(self.counter("answers_held")),
            "flrouter_forwards_settled" => one(self.counter("forwards_settled")),
            "flrouter_sync_requests_handed_over" => one(self.counter("sync_requests_handed_over")),
            "flrouter_sync_requests_adopted" => one(self.counter("sync_requests_adopted")),
            "flrouter_router_added_latency_seconds" => match self.latency {
                Some((p50, p99)) => vec![(vec!["0.5".into()], p50), (vec!["0.99".into()], p99)],
                None => Vec::new(),
            },
            "flrouter_cluster_owned" => match &self.share {
                Some(sh) => vec![
                    (vec!["fls".into()], sh.fls_owned.len() as f64),
                    (
                        vec!["command_partitions".into()],
                        sh.command_partitions as f64,
                    ),
                    (vec!["leader".into()], if sh.leader { 1.0 } else { 0.0 }),
                ],
                None => Vec::new(),
            },
            "flrouter_cluster_fl_owned" => match &self.share {
                Some(sh) => self
                    .fls
                    .iter()
                    .map(|(fl, _)| {
                        let owned = sh.fls_owned.iter().any(|o| o == fl);
                        (vec![fl.clone()], if owned { 1.0 } else { 0.0 })
                    })
                    .collect(),
                None => Vec::new(),
            },
            "flrouter_fl_switches" => self
                .switches
                .iter()
                .flat_map(|(fl, (active, standby))| {
                    [
                        (vec![fl.clone(), "active".into()], *active as f64),
                        (vec![fl.clone(), "standby".into()], *standby as f64),
                    ]
                })
                .collect(),
            "flrouter_fl_online" => self
                .fls
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
                .collect(),
            "flrouter_kafka_messages_delivered" => one(self
                .producer
                .as_ref()
                .map_or(0, |p| p.delivered.load(Relaxed))),
            "flrouter_kafka_delivery_failures" => {
                one(self.producer.as_ref().map_or(0, |p| p.failed.load(Relaxed)))
            }
            "flrouter_dead_letters_reduced" => one(self
                .producer
                .as_ref()
                .map_or(0, |p| p.reduced.load(Relaxed))),
            "flrouter_obligations_unmet" => one(fl_router_actors::obligation::unmet()),
            "flrouter_dead_letters_stuck" => {
                one(self.producer.as_ref().map_or(0, |p| p.stuck.load(Relaxed)))
            }
            "flrouter_kafka_producer_queue_messages" => {
                vec![(
                    vec![],
                    self.kafka
                        .as_ref()
                        .map_or(0, |k| k.producer_queue.load(Relaxed)) as f64,
                )]
            }
            "flrouter_kafka_consumer_lag_messages" => {
                let k = self.kafka.as_ref();
                vec![
                    (
                        vec!["commands".into()],
                        k.map_or(0, |k| k.commands_lag.load(Relaxed)) as f64,
                    ),
                    (
                        vec!["fl".into()],
                        k.map_or(0, |k| k.fl_lag.load(Relaxed)) as f64,
                    ),
                ]
            }
            name => self.mailbox_values(name),
        }
    }

    /// Mailbox figures aggregated by actor kind (a bounded label; instance ids are in /api/mailboxes).
    fn mailbox_values(&self, name: &str) -> Vec<(Vec<String>, f64)> {
        let mut kinds: Vec<&str> = self.mailboxes.iter().map(|m| m.kind).collect();
        kinds.sort();
        kinds.dedup();
        kinds
            .into_iter()
            .map(|kind| {
                let rows = self.mailboxes.iter().filter(|m| m.kind == kind);
                let sum = |f: fn(&MailboxSnapshot) -> u64| rows.clone().map(f).sum::<u64>() as f64;
                let max =
                    |f: fn(&MailboxSnapshot) -> u64| rows.clone().map(f).max().unwrap_or(0) as f64;
                let v = match name {
                    "flrouter_mailbox_messages_sent" => sum(|m| m.sent),
                    "flrouter_mailbox_messages_received" => sum(|m| m.received),
                    "flrouter_mailbox_messages_rejected" => sum(|m| m.rejected),
                    "flrouter_mailbox_pending_messages" => sum(|m| m.pending),
                    "flrouter_mailbox_capacity_messages" => max(|m| m.capacity as u64),
                    "flrouter_mailbox_max_wait_microseconds" => max(|m| m.max_wait_us),
                    "flrouter_mailbox_max_handle_microseconds" => max(|m| m.max_handle_us),
                    "flrouter_actor_restarts" => sum(|m| m.restarts),
                    "flrouter_actor_failures" => sum(|m| m.failures),
                    "flrouter_actors" => rows.clone().count() as f64,
                    _ => 0.0,
                };
                (vec![kind.to_string()], v)
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
            };
            let mut family = encoder.encode_descriptor(m.name, m.help, None, ty)?;
            let values = self.0.values(m);
            if m.labels.is_empty() {
                let v = values.first().map_or(0.0, |(_, v)| *v);
                match m.kind {
                    Kind::Counter => ConstCounter::new(v as u64).encode(family)?,
                    Kind::Gauge => ConstGauge::new(v as i64).encode(family)?,
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
                    Kind::Gauge => ConstGauge::new(*v as i64).encode(enc)?,
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
    fn renders_counters_with_total_and_labelled_families() {
        let snap = Snapshot {
            counters: vec![("commands_received", 7), ("errors_not_found", 2)],
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
}
