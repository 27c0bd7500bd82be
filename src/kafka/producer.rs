//! The engine's [`Outbox`] on a Kafka producer: idempotent, many messages in flight, tickets
//! released only by a successful delivery report (rust-rdkafka's `at_least_once` pattern).
//!
//! A failed delivery is retried with backoff; after `kafka.produce_retries` attempts the message
//! goes to the dead-letter topic (with the reason), still holding its tickets, so nothing is
//! lost and the input offset moves on. A dead letter that cannot be delivered keeps its
//! tickets forever: the offset stays uncommitted and a restart replays the input.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fl_router_actors::outbox::headers;
use fl_router_actors::{Outbox, Outgoing};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::mpsc;
use tracing::{error, warn};

use super::stats::KafkaStats;

/// What the producer did, for status lines and metrics.
#[derive(Debug, Default)]
pub struct ProducerCounters {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub dead_lettered: AtomicU64,
}

/// A message on its way to Kafka; dropping it (after delivery) releases its tickets.
pub struct InFlight {
    out: Outgoing,
    attempt: u32,
}

struct Failure {
    inflight: InFlight,
    error: String,
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
            Ok(_) => {
                self.counters.delivered.fetch_add(1, Relaxed);
            }
            Err((e, _)) => {
                self.counters.failed.fetch_add(1, Relaxed);
                let _ = self.failures.send(Failure {
                    inflight: *inflight,
                    error: e.to_string(),
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
        });
        tokio::spawn(retry_loop(
            Arc::downgrade(&outbox),
            rx,
            dead_letter,
            max_retries,
        ));
        Ok(outbox)
    }

    fn produce(&self, inflight: InFlight) {
        let topic = inflight.out.topic.clone();
        let payload = inflight.out.payload.clone();
        let key = inflight.out.key.clone();
        let mut hdrs = OwnedHeaders::new_with_capacity(inflight.out.headers.len());
        for (name, value) in &inflight.out.headers {
            hdrs = hdrs.insert(Header {
                key: name,
                value: Some(value.as_ref()),
            });
        }
        let mut record = BaseRecord::with_opaque_to(&topic, Box::new(inflight))
            .payload(payload.as_ref())
            .headers(hdrs);
        if let Some(k) = key.as_deref() {
            record = record.key(k);
        }
        // A full local queue waits for deliveries to make room: backpressure on the engine.
        if let Err((e, r)) = super::send_waiting(&self.producer, record) {
            self.counters.failed.fetch_add(1, Relaxed);
            let _ = self.failures.send(Failure {
                inflight: *r.delivery_opaque,
                error: e.to_string(),
            });
        }
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
                self.produce(InFlight { out, attempt: 0 });
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
        if let Ok(mut p) = self.paused.lock() {
            if let Some(held) = p.as_mut() {
                held.push(out);
                return;
            }
        }
        self.produce(InFlight { out, attempt: 0 });
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
        if inflight.attempt < max_retries {
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
        } else if topic != dead_letter {
            error!(topic = %topic, error = %error, "delivery failed after retries; dead-lettered");
            outbox.counters.dead_lettered.fetch_add(1, Relaxed);
            let mut dl = Outgoing::new(dead_letter.clone(), inflight.out.payload.clone())
                .key_opt(inflight.out.key.clone())
                .header(
                    headers::DEAD_LETTER_REASON,
                    Bytes::from(format!("delivery to {topic} failed: {error}")),
                )
                .header(headers::DEAD_LETTER_SOURCE, Bytes::from_static(b"producer"));
            dl.tickets = std::mem::take(&mut inflight.out.tickets);
            outbox.produce(InFlight {
                out: dl,
                attempt: 0,
            });
        } else {
            error!(error = %error, "dead letter could not be delivered; its input will be replayed after restart");
            if let Ok(mut s) = outbox.stuck.lock() {
                s.push(inflight.out);
            }
        }
    }
}
