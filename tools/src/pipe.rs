//! The baseline for benchmarks: a plain consume → lookup → produce pipe. A command goes to the
//! read topic of the FL whose simulated switch (`sim.switches_per_fl`, the simulator's ids) its
//! bytes name after `"switch_id":"` (a byte search and one hash lookup, no JSON parsing; the
//! first FL when none matches), and everything the FLs write is copied to one reply topic,
//! through the same Kafka clients, offset tracking and idempotent producer the router uses, with
//! no actors. Router figures divided by pipe figures are the router's own cost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fl_router_actors::{Outbox, Outgoing};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::Setup;
use fl_router::kafka;
use fl_router::kafka::consumer::{self, TrackedConsumer};
use fl_router::kafka::offsets::OffsetTracker;
use fl_router::kafka::producer::KafkaOutbox;

/// Runs the pipe until `shutdown` resolves.
pub async fn run(
    setup: &Setup,
    reply_topic: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = &setup.config;
    let k = &config.kafka;
    let mut topics = kafka::topics::all_topics(config);
    topics.insert(reply_topic.to_string());
    kafka::topics::ensure(config, &kafka::base_config(k), &topics).await?;
    let fl = config
        .fls
        .first()
        .ok_or_else(|| anyhow::anyhow!("pipe: no FL configured"))?;
    let outbox = KafkaOutbox::start(
        &kafka::producer_config(k),
        config.topics.dead_letter.clone(),
        k.produce_retries,
        None,
    )?;
    let (stop_tx, stop) = watch::channel(false);
    // The lookup table: every simulated switch → its FL's read topic.
    let mut table: HashMap<Vec<u8>, Arc<str>> = HashMap::new();
    for (i, f) in config.fls.iter().enumerate() {
        let topic: Arc<str> = Arc::from(config.topics.fl_read_topic(&f.id));
        for j in 0..setup.sim.switches_per_fl {
            table.insert(crate::sim::fl::switch_id(i, j).into_bytes(), topic.clone());
        }
    }
    let route = Route {
        table: Arc::new(table),
        default: Arc::from(config.topics.fl_read_topic(&fl.id)),
    };
    let write_topics: Vec<String> = config
        .fls
        .iter()
        .map(|f| config.topics.fl_write_topic(&f.id))
        .collect();
    let mut loops = Vec::new();
    for (name, from, to) in [
        (
            "pipe-commands",
            config.topics.commands.clone(),
            Destination::Lookup(route),
        ),
        (
            "pipe-fl",
            write_topics,
            Destination::Fixed(Arc::from(reply_topic)),
        ),
    ] {
        let tracker = OffsetTracker::new();
        let c = consumer::create(
            &kafka::consumer_config(k, &format!("{}-{name}", k.group_id), None),
            "pipe",
            &from,
            tracker.clone(),
            None,
        )?;
        loops.push(tokio::spawn(copy(
            Arc::new(c),
            tracker,
            outbox.clone(),
            to,
            stop.clone(),
            k.commit_interval,
        )));
    }
    info!(fls = config.fls.len(), "pipe started");
    shutdown.await;
    let _ = stop_tx.send(true);
    for l in loops {
        let _ = l.await;
    }
    outbox.flush(Duration::from_secs(5));
    Ok(())
}

/// Where the pipe copies a message.
enum Destination {
    Fixed(Arc<str>),
    Lookup(Route),
}

#[derive(Clone)]
struct Route {
    table: Arc<HashMap<Vec<u8>, Arc<str>>>,
    default: Arc<str>,
}

impl Destination {
    fn topic(&self, payload: &[u8]) -> &str {
        match self {
            Destination::Fixed(t) => t,
            Destination::Lookup(r) => {
                const NEEDLE: &[u8] = br#""switch_id":""#;
                memchr::memmem::find(payload, NEEDLE)
                    .and_then(|at| {
                        let rest = &payload[at + NEEDLE.len()..];
                        let end = memchr::memchr(b'"', rest)?;
                        r.table.get(&rest[..end])
                    })
                    .unwrap_or(&r.default)
            }
        }
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Fixed(t) => write!(f, "{t}"),
            Destination::Lookup(r) => write!(f, "{} FLs by switch", r.table.len()),
        }
    }
}

async fn copy(
    consumer: Arc<TrackedConsumer>,
    tracker: Arc<OffsetTracker>,
    outbox: Arc<KafkaOutbox>,
    to: Destination,
    mut stop: watch::Receiver<bool>,
    commit_interval: Duration,
) {
    let mut tick = tokio::time::interval(commit_interval);
    let mut assigned = false;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                consumer::commit(&*consumer, &tracker, "pipe", false, CommitMode::Async);
                if !assigned && consumer.assignment().map(|a| a.count() > 0).unwrap_or(false) {
                    assigned = true;
                    info!(to = %to, "pipe consumer assigned");
                }
            }
            m = consumer.recv() => match m {
                Ok(m) => {
                    let ticket = tracker.track(m.topic(), m.partition(), m.offset());
                    let payload = m.payload().unwrap_or_default();
                    let out = Outgoing::new(to.topic(payload), Bytes::copy_from_slice(payload))
                        .key_opt(m.key().map(Bytes::copy_from_slice))
                        .ticket(&ticket);
                    outbox.send(out);
                }
                Err(e) => {
                    warn!(error = %e, "pipe consume error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    consumer::commit(&*consumer, &tracker, "pipe", true, CommitMode::Sync);
}
