//! The engine's [`Outbox`] on a Kafka producer: idempotent, many messages in flight, tickets
//! released only by a successful delivery report (rust-rdkafka's `at_least_once` pattern).
//!
//! Failures are classified. librdkafka already retries transient errors itself (up to
//! `delivery.timeout.ms`); what it reports back is either *fatal for this message* (too large,
//! invalid, not authorised, no such topic: retrying cannot help) or a transient failure that
//! outlived its retries (the broker unreachable for that long). A transient failure waits and
//! is produced again, up to `kafka.produce_retries` times; a fatal one goes at once, and an
//! exhausted one after its retries, to the dead-letter topic (with the reason), still holding
//! its tickets, so nothing is lost and the input offset moves on.
//!
//! Nothing blocks the partition behind an input: a dead letter that the dead-letter topic
//! refuses is *reduced* (its value cut to [`REDUCED_VALUE_BYTES`], then dropped, keeping the
//! headers: reason, source, origin, original size) and produced again. Only when even the
//! headers-only dead letter fails does it keep its tickets (its input stays uncommitted and is
//! read again after a restart), with an error log and the `dead_letters_stuck` counter.
//!
//! A full local queue (`QueueFull`) never blocks the engine's thread: the message waits in an
//! ordered overflow queue that a task drains as librdkafka makes room; while it is not empty,
//! new messages queue behind it so none overtakes another.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fl_router_actors::runtime::outbox::headers;
use fl_router_actors::{Outbox, Outgoing};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::Message as _;

use crate::latency::RouterLatency;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::{mpsc, Notify};
use tracing::{error, warn};

use super::stats::KafkaStats;

/// What the producer did, for status lines and metrics.
#[derive(Debug, Default)]
pub struct ProducerCounters {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// Dead letters cut down to fit the dead-letter topic.
    pub reduced: AtomicU64,
    /// Dead letters that could not be delivered even reduced: their inputs stay uncommitted.
    pub stuck: AtomicU64,
    /// Times a message waited for room in librdkafka's full queue.
    pub queue_full: AtomicU64,
}

/// A dead letter's value is cut to this many bytes when the dead-letter topic refused it whole.
pub const REDUCED_VALUE_BYTES: usize = 16 * 1024;

/// A message on its way to Kafka; dropping it (after delivery) releases its tickets.
pub struct InFlight {
    out: Outgoing,
    attempt: u32,
    /// 0: as built; 1: value cut to REDUCED_VALUE_BYTES; 2: headers only (dead letters).
    reduced: u8,
}

impl InFlight {
    fn new(out: Outgoing) -> Self {
        Self {
            out,
            attempt: 0,
            reduced: 0,
        }
    }
}

struct Failure {
    inflight: InFlight,
    error: KafkaError,
}

/// Errors that producing the same message again cannot fix.
fn is_fatal(e: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        e.rdkafka_error_code(),
        Some(
            MessageSizeTooLarge
                | InvalidMessageSize
                | InvalidMessage
                | BadMessage
                | InvalidRecord
                | MessageBatchTooLarge
                | TopicAuthorizationFailed
                | ClusterAuthorizationFailed
                | InvalidTopic
                | UnknownTopic
                | UnknownPartition
                | PolicyViolation
                | InvalidArgument
        )
    )
}

pub struct DeliveryContext {
    failures: mpsc::UnboundedSender<Failure>,
    counters: Arc<ProducerCounters>,
    stats: Option<Arc<KafkaStats>>,
}

impl ClientContext for DeliveryContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(s) = &self.stats {
            s.producer(&statistics);
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<InFlight>;

    fn delivery(&self, result: &DeliveryResult<'_>, inflight: Box<InFlight>) {
        match result {
            // Dropping the InFlight drops its tickets: the inputs' offsets may now be committed.
            Ok(m) => {
                self.counters.delivered.fetch_add(1, Relaxed);
                if let Some(note) = &inflight.out.note {
                    note.delivered(m.partition(), m.offset());
                }
            }
            Err((e, _)) => {
                self.counters.failed.fetch_add(1, Relaxed);
                let _ = self.failures.send(Failure {
                    inflight: *inflight,
                    error: e.clone(),
                });
            }
        }
    }
}

pub struct KafkaOutbox {
    producer: ThreadedProducer<DeliveryContext>,
    failures: mpsc::UnboundedSender<Failure>,
    pub counters: Arc<ProducerCounters>,
    /// Dead letters that could not be delivered: their tickets are held on purpose.
    stuck: Mutex<Vec<Outgoing>>,
    /// Fault injection: while paused, messages are held here in order.
    paused: Mutex<Option<Vec<Outgoing>>>,
    /// Messages waiting for room in librdkafka's queue, in order.
    overflow: Mutex<VecDeque<InFlight>>,
    room: Notify,
    /// Partition counts of topics whose messages carry a partition key.
    partitions: std::sync::RwLock<std::collections::HashMap<String, i32>>,
    /// Router-added latency of what is passed on (set by the router, not the pipe).
    latency: std::sync::OnceLock<Arc<RouterLatency>>,
}

impl KafkaOutbox {
    /// Creates the producer and spawns its retry task on the current (actix/tokio) runtime.
    pub fn start(
        config: &ClientConfig,
        dead_letter: String,
        max_retries: u32,
        stats: Option<Arc<KafkaStats>>,
    ) -> anyhow::Result<Arc<Self>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(ProducerCounters::default());
        let ctx = DeliveryContext {
            failures: tx.clone(),
            counters: counters.clone(),
            stats,
        };
        let producer: ThreadedProducer<DeliveryContext> = config.create_with_context(ctx)?;
        let outbox = Arc::new(Self {
            producer,
            failures: tx,
            counters,
            stuck: Mutex::new(Vec::new()),
            paused: Mutex::new(None),
            overflow: Mutex::new(VecDeque::new()),
            room: Notify::new(),
            partitions: Default::default(),
            latency: Default::default(),
        });
        tokio::spawn(drain_overflow(Arc::downgrade(&outbox)));
        tokio::spawn(retry_loop(
            Arc::downgrade(&outbox),
            rx,
            dead_letter,
            max_retries,
        ));
        Ok(outbox)
    }

    /// Measures router-added latency into `l` from now on.
    pub fn measure_latency(&self, l: Arc<RouterLatency>) {
        let _ = self.latency.set(l);
    }

    /// Produces `inflight`, or queues it behind messages waiting for room.
    fn produce(&self, inflight: InFlight) {
        let Ok(mut overflow) = self.overflow.lock() else {
            return;
        };
        if !overflow.is_empty() {
            overflow.push_back(inflight);
            return;
        }
        if let Some(back) = self.try_send(inflight) {
            self.counters.queue_full.fetch_add(1, Relaxed);
            overflow.push_back(back);
            self.room.notify_one();
        }
    }

    /// Hands the message to librdkafka; gives it back when the local queue is full.
    fn try_send(&self, inflight: InFlight) -> Option<InFlight> {
        let topic = inflight.out.topic.clone();
        let payload = inflight.out.payload.clone();
        let null = inflight.out.null_value;
        let key = inflight.out.key.clone();
        let mut record = BaseRecord::with_opaque_to(&topic, Box::new(inflight));
        if !null {
            record = record.payload(payload.as_ref());
        }
        if !record.delivery_opaque.out.headers.is_empty() {
            let mut hdrs =
                OwnedHeaders::new_with_capacity(record.delivery_opaque.out.headers.len());
            for (name, value) in &record.delivery_opaque.out.headers {
                hdrs = hdrs.insert(Header {
                    key: name.as_ref(),
                    value: Some(value.as_ref()),
                });
            }
            record = record.headers(hdrs);
        }
        if let Some(k) = key.as_deref() {
            record = record.key(k);
        }
        if let Some(p) = self.partition_for(&record.delivery_opaque.out) {
            record = record.partition(p);
        }
        match self.producer.send(record) {
            Ok(()) => None,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                Some(*r.delivery_opaque)
            }
            Err((e, r)) => {
                self.counters.failed.fetch_add(1, Relaxed);
                let _ = self.failures.send(Failure {
                    inflight: *r.delivery_opaque,
                    error: e,
                });
                None
            }
        }
    }

    /// Records how many partitions `topic` has, so messages with a partition key spread over
    /// them by that key (commands by switch) rather than by their Kafka key.
    pub fn set_partitions(&self, topic: &str, partitions: i32) {
        if let Ok(mut m) = self.partitions.write() {
            m.insert(topic.to_string(), partitions);
        }
    }

    /// The partition for a message with a partition key on a topic of several partitions:
    /// a stable hash of the key (FNV-1a), so one switch always maps to one partition.
    fn partition_for(&self, out: &Outgoing) -> Option<i32> {
        use std::hash::Hasher;
        let key = out.partition_key.as_ref()?;
        let n = *self.partitions.read().ok()?.get(&*out.topic)?;
        if n <= 1 {
            return None;
        }
        let mut h = fnv::FnvHasher::default();
        h.write(key.as_bytes());
        Some((h.finish() % n as u64) as i32)
    }

    /// Holds every message (in order) until [`KafkaOutbox::resume`]: a stalled producer, for
    /// fault injection. Their tickets stay held, so nothing is committed meanwhile.
    pub fn pause(&self) {
        if let Ok(mut p) = self.paused.lock() {
            p.get_or_insert_with(Vec::new);
        }
    }

    /// Sends what was held, in order, and stops holding.
    pub fn resume(&self) {
        if let Ok(mut p) = self.paused.lock() {
            // Produced under the lock so no new message overtakes a held one.
            for out in p.take().unwrap_or_default() {
                self.produce(InFlight::new(out));
            }
        }
    }

    /// Waits until every queued message has a delivery report (or the timeout passes).
    pub fn flush(&self, timeout: Duration) -> bool {
        self.producer.flush(timeout).is_ok()
    }
}

impl Outbox for KafkaOutbox {
    fn send(&self, out: Outgoing) {
        if let (Some(at), Some(l)) = (out.read_at, self.latency.get()) {
            l.record(at.elapsed());
        }
        if let Ok(mut p) = self.paused.lock() {
            if let Some(held) = p.as_mut() {
                held.push(out);
                return;
            }
        }
        self.produce(InFlight::new(out));
    }
}

/// Sends what waits in the overflow queue, in order, as librdkafka makes room.
async fn drain_overflow(outbox: std::sync::Weak<KafkaOutbox>) {
    loop {
        let Some(o) = outbox.upgrade() else { return };
        let full = {
            let Ok(mut overflow) = o.overflow.lock() else {
                return;
            };
            let mut full = false;
            while let Some(next) = overflow.pop_front() {
                if let Some(back) = o.try_send(next) {
                    overflow.push_front(back);
                    full = true;
                    break;
                }
            }
            full
        };
        if full {
            // Room comes back as delivery reports arrive (librdkafka's own threads).
            tokio::time::sleep(Duration::from_millis(1)).await;
        } else {
            // Woken by the next full queue; every second it lets go of the outbox, so a
            // dropped outbox ends this task.
            let _ = tokio::time::timeout(Duration::from_secs(1), o.room.notified()).await;
        }
    }
}

async fn retry_loop(
    outbox: std::sync::Weak<KafkaOutbox>,
    mut rx: mpsc::UnboundedReceiver<Failure>,
    dead_letter: String,
    max_retries: u32,
) {
    while let Some(Failure {
        mut inflight,
        error,
    }) = rx.recv().await
    {
        let Some(outbox) = outbox.upgrade() else {
            return;
        };
        let topic = inflight.out.topic.clone();
        let fatal = is_fatal(&error);
        if !fatal && inflight.attempt < max_retries {
            inflight.attempt += 1;
            let backoff = Duration::from_millis(100 * 2u64.pow(inflight.attempt.min(6)))
                .min(Duration::from_secs(5));
            warn!(topic = %topic, attempt = inflight.attempt, error = %error, "delivery failed; retrying");
            outbox.counters.retried.fetch_add(1, Relaxed);
            let o = outbox.clone();
            // Retries run concurrently so one bad topic does not delay the others.
            tokio::spawn(async move {
                tokio::time::sleep(backoff).await;
                o.produce(inflight);
            });
        } else if *topic != *dead_letter {
            error!(topic = %topic, error = %error, fatal, "delivery failed; dead-lettered");
            if let Some(note) = &inflight.out.note {
                note.failed(&error.to_string());
            }
            outbox.counters.dead_lettered.fetch_add(1, Relaxed);
            let mut dl = Outgoing::new(dead_letter.clone(), inflight.out.payload.clone())
                .key_opt(inflight.out.key.clone())
                .header(
                    headers::DEAD_LETTER_REASON,
                    Bytes::from(format!("delivery to {topic} failed: {error}")),
                )
                .header(headers::DEAD_LETTER_SOURCE, Bytes::from_static(b"producer"))
                .header(
                    headers::DEAD_LETTER_SIZE,
                    Bytes::from(inflight.out.payload.len().to_string()),
                );
            dl.null_value = inflight.out.null_value;
            dl.tickets = std::mem::take(&mut inflight.out.tickets);
            outbox.produce(InFlight::new(dl));
        } else {
            match reduce(inflight) {
                Ok(smaller) => {
                    warn!(error = %error, bytes = smaller.out.payload.len(), "dead letter refused; producing it reduced");
                    outbox.counters.reduced.fetch_add(1, Relaxed);
                    outbox.produce(smaller);
                }
                Err(stuck) => {
                    outbox.counters.stuck.fetch_add(1, Relaxed);
                    error!(error = %error, "dead letter could not be delivered even reduced to its headers; its input stays uncommitted and will be read again after a restart");
                    if let Ok(mut s) = outbox.stuck.lock() {
                        s.push(stuck.out);
                    }
                }
            }
        }
    }
}

/// The next smaller form of a refused dead letter; Err when even the headers-only form was
/// refused.
#[allow(clippy::result_large_err)]
fn reduce(mut inflight: InFlight) -> Result<InFlight, InFlight> {
    let out = &mut inflight.out;
    let keep = match inflight.reduced {
        0 if out.payload.len() > REDUCED_VALUE_BYTES => REDUCED_VALUE_BYTES,
        0 | 1 if !out.payload.is_empty() => 0,
        _ => return Err(inflight),
    };
    inflight.reduced = if keep > 0 { 1 } else { 2 };
    out.payload = out.payload.slice(..keep);
    out.headers
        .retain(|(n, _)| *n != headers::DEAD_LETTER_REDUCED);
    out.headers.push((
        std::borrow::Cow::Borrowed(headers::DEAD_LETTER_REDUCED),
        Bytes::from(keep.to_string()),
    ));
    inflight.attempt = 0;
    Ok(inflight)
}
