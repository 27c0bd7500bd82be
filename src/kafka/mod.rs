//! The Kafka side of the shell: client configuration, consumers, the producer-backed outbox,
//! offset tracking and topic set-up. Everything else in the router is Kafka-agnostic.

pub mod compacted;
pub mod consumer;
pub mod freshness;
pub mod group_admin;
pub mod offsets;
pub mod producer;
pub mod read_back;
pub mod stats;
pub mod topics;

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

/// `client.id` prefix of an instance's group members.
pub const CLIENT_ID_PREFIX: &str = "fl-router.";

/// Settings every client shares: brokers plus `kafka.options`.
pub fn base_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("statistics.interval.ms", stats::INTERVAL_MS);
    for (name, value) in &k.options {
        c.set(name, value);
    }
    c
}

/// A consumer in `group`; with `instance` a static member of it (`group.instance.id`), so a
/// restarted router gets its partitions back at once rather than after its old member's
/// session expired.
pub fn consumer_config(k: &KafkaConfig, group: &str, instance: Option<&str>) -> ClientConfig {
    let mut c = base_config(k);
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000");
    for (name, value) in &k.consumer {
        c.set(name, value);
    }
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    if let Some(id) = instance {
        // The client id names the instance to its peers (`peers.rs`) and in broker logs.
        // A static member heartbeats often: when a silent peer is removed (`cluster.lapse`)
        // the survivors hear of the rebalance at their next heartbeat, and a removed (paused)
        // member hears it is out at its own (100 ms: 10 kills all taken over in under 2 s,
        // against 9 of 10 at 250 ms; docs/benchmarks.md).
        if !k.consumer.contains_key("heartbeat.interval.ms") {
            c.set("heartbeat.interval.ms", "100");
        }
        c.set("group.instance.id", id)
            .set("client.id", format!("{}{id}", CLIENT_ID_PREFIX));
    }
    c
}

/// `client` for a producer: the consumer-only properties of a config shared by a process's
/// consumers and producers taken out, so librdkafka has nothing to warn about
/// (`CONFWARN … is a consumer property and will be ignored by this producer instance`).
pub fn for_producer(client: &ClientConfig) -> ClientConfig {
    const CONSUMER_ONLY: &[&str] = &[
        "group.id",
        "group.instance.id",
        "group.protocol",
        "group.remote.assignor",
        "partition.assignment.strategy",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "coordinator.query.interval.ms",
        "max.poll.interval.ms",
        "enable.auto.commit",
        "auto.commit.interval.ms",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "queued.min.messages",
        "queued.max.messages.kbytes",
        "isolation.level",
        "enable.partition.eof",
        "check.crcs",
        "allow.auto.create.topics",
    ];
    let mut c = client.clone();
    let fetch: Vec<String> = c
        .config_map()
        .keys()
        .filter(|k| k.starts_with("fetch."))
        .map(|k| k.to_string())
        .collect();
    for k in CONSUMER_ONLY
        .iter()
        .copied()
        .chain(fetch.iter().map(String::as_str))
    {
        c.remove(k);
    }
    c
}

pub fn producer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = base_config(k);
    c.set("linger.ms", "1")
        .set("queue.buffering.max.messages", "1000000");
    for (name, value) in &k.producer {
        c.set(name, value);
    }
    c.set("enable.idempotence", "true");
    c
}

/// End offsets (high watermarks) of every partition of `topics`, retried until `timeout`:
/// right after topic creation the partition leaders may not be known yet.
pub fn end_offsets<C: rdkafka::consumer::Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    consumer: &C,
    topics: &[String],
    timeout: std::time::Duration,
) -> anyhow::Result<Vec<(String, i32, i64)>> {
    let deadline = std::time::Instant::now() + timeout;
    let step = std::time::Duration::from_secs(5);
    loop {
        // Metadata of the topics asked only (a broker may hold thousands), then every end
        // offset in one ListOffsets round (timestamp -1 = latest) instead of two requests per
        // partition: a takeover's read-back is made of these calls.
        let attempt = || -> anyhow::Result<Vec<(String, i32, i64)>> {
            let mut tpl = rdkafka::TopicPartitionList::new();
            for t in topics {
                let md = consumer.fetch_metadata(Some(t), step)?;
                let mt = md
                    .topics()
                    .iter()
                    .find(|m| m.name() == t)
                    .filter(|m| m.error().is_none() && !m.partitions().is_empty())
                    .ok_or_else(|| anyhow::anyhow!("topic {t} does not exist"))?;
                for p in mt.partitions() {
                    tpl.add_partition_offset(t, p.id(), rdkafka::Offset::End)?;
                }
            }
            let found = consumer.offsets_for_times(tpl.clone(), step)?;
            let mut out = Vec::new();
            for e in tpl.elements() {
                let high = match found
                    .find_partition(e.topic(), e.partition())
                    .filter(|f| f.error().is_ok())
                    .map(|f| f.offset())
                {
                    Some(rdkafka::Offset::Offset(o)) => o,
                    // Not answered as an offset: ask the partition itself.
                    _ => consumer.fetch_watermarks(e.topic(), e.partition(), step)?.1,
                };
                out.push((e.topic().to_string(), e.partition(), high));
            }
            Ok(out)
        };
        match attempt() {
            Ok(v) => return Ok(v),
            Err(e) if std::time::Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
}

/// Assigns `consumer` to every partition of `topics` at its current end: it reads what is
/// written from now on, with no consumer-group join.
pub fn assign_at_end<C: rdkafka::consumer::Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    consumer: &C,
    topics: &[String],
) -> anyhow::Result<()> {
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (t, p, high) in end_offsets(consumer, topics, std::time::Duration::from_secs(20))? {
        tpl.add_partition_offset(&t, p, rdkafka::Offset::Offset(high))?;
    }
    consumer.assign(&tpl)?;
    Ok(())
}

/// Enqueues `record`, waiting while librdkafka's local queue is full (backpressure on the
/// caller instead of an error); any other error returns the record with it.
#[allow(clippy::result_large_err, clippy::type_complexity)] // the same result type as rdkafka's own `send`
pub fn send_waiting<'a, K, P, C>(
    producer: &rdkafka::producer::ThreadedProducer<C>,
    mut record: rdkafka::producer::BaseRecord<'a, K, P, C::DeliveryOpaque>,
) -> Result<
    (),
    (
        rdkafka::error::KafkaError,
        rdkafka::producer::BaseRecord<'a, K, P, C::DeliveryOpaque>,
    ),
>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
    C: rdkafka::producer::ProducerContext + 'static,
{
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    loop {
        match producer.send(record) {
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            other => return other,
        }
    }
}

/// The next message of `consumer` and whatever else librdkafka already holds, up to `max`
/// (owned copies); a consume error is logged (`what` names the reader) and waited out.
pub async fn next_batch(
    consumer: &rdkafka::consumer::StreamConsumer,
    max: usize,
    what: &str,
) -> Vec<rdkafka::message::OwnedMessage> {
    use futures::FutureExt;
    loop {
        match consumer.recv().await {
            Ok(m) => {
                let mut batch = vec![m.detach()];
                while batch.len() < max {
                    match consumer.recv().now_or_never() {
                        Some(Ok(m)) => batch.push(m.detach()),
                        _ => break,
                    }
                }
                return batch;
            }
            Err(e) => {
                tracing::warn!(reader = what, error = %e, "consume error");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}
