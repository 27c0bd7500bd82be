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

/// Creates the topics the pipe needs; returns its routing table.
pub async fn prepare(setup: &Setup, reply_topic: &str) -> anyhow::Result<Route> {
    let config = &setup.config;
    let mut topics = kafka::topics::all_topics(config);
    topics.insert(reply_topic.to_string());
    kafka::topics::ensure(config, &kafka::base_config(&config.kafka), &topics).await?;
    route(setup)
}

/// Every simulated switch → its FL's read topic; the first FL's for any other.
fn route(setup: &Setup) -> anyhow::Result<Route> {
    let config = &setup.config;
    let fl = config
        .fls
        .first()
        .ok_or_else(|| anyhow::anyhow!("pipe: no FL configured"))?;
    let mut table: HashMap<Vec<u8>, Arc<str>> = HashMap::new();
    for (i, f) in config.fls.iter().enumerate() {
        let topic: Arc<str> = Arc::from(config.topics.fl_read_topic(&f.id));
        for j in 0..setup.sim.switches_per_fl {
            table.insert(crate::sim::fl::switch_id(i, j).into_bytes(), topic.clone());
        }
    }
    Ok(Route {
        table: Arc::new(table),
        default: Arc::from(config.topics.fl_read_topic(&fl.id)),
    })
}

/// The lean pipe (`pipe --lean`), on the calling thread until `stop`: one consumer of the
/// command topics and the FL write topics, one producer, a byte scan and a hash lookup per
/// command; offsets stored once a copy is queued and committed by librdkafka every
/// `kafka.commit_interval` (no delivery tracking: the leanest honest consume → produce).
pub fn run_lean(
    setup: &Setup,
    reply_topic: &str,
    route: Route,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<()> {
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::types::RDKafkaErrorCode;
    let config = &setup.config;
    let k = &config.kafka;
    let commands: std::collections::HashSet<String> =
        config.topics.command_topics().into_iter().collect();
    let mut from: Vec<String> = commands.iter().cloned().collect();
    from.extend(
        config
            .fls
            .iter()
            .map(|f| config.topics.fl_write_topic(&f.id)),
    );
    let consumer: BaseConsumer = {
        let mut c = kafka::base_config(k);
        c.set("group.id", format!("{}-lean", k.group_id))
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.commit.interval.ms",
                k.commit_interval.as_millis().to_string(),
            )
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "100");
        c.create()?
    };
    let refs: Vec<&str> = from.iter().map(String::as_str).collect();
    consumer.subscribe(&refs)?;
    let producer: BaseProducer = {
        let mut c = kafka::base_config(k);
        c.set("linger.ms", "1")
            .set("queue.buffering.max.messages", "1000000");
        c.create()?
    };
    let to = Destination::Lookup(route);
    let reply = Destination::Fixed(Arc::from(reply_topic));
    let mut assigned = false;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        producer.poll(Duration::ZERO);
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "lean pipe consume error");
                continue;
            }
        };
        if !assigned {
            assigned = true;
            info!(to = %to, "pipe consumer assigned");
        }
        let payload = m.payload().unwrap_or_default();
        let topic = match commands.contains(m.topic()) {
            true => to.topic(payload),
            false => reply.topic(payload),
        };
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(payload);
        if let Some(key) = m.key() {
            record = record.key(key);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    producer.poll(Duration::from_millis(10));
                    record = r;
                }
                Err((e, _)) => {
                    warn!(error = %e, "lean pipe produce error");
                    break;
                }
            }
        }
        let _ = consumer.store_offset_from_message(&m);
    }
    let _ = producer.flush(Duration::from_secs(5));
    Ok(())
}

/// Runs the pipe until `shutdown` resolves.
pub async fn run(
    setup: &Setup,
    reply_topic: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = &setup.config;
    let k = &config.kafka;
    let route = prepare(setup, reply_topic).await?;
    let outbox = KafkaOutbox::start(
        &kafka::producer_config(k),
        config.topics.dead_letter.clone(),
        k.produce_retries,
        None,
    )?;
    let (stop_tx, stop) = watch::channel(false);
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
pub struct Route {
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
