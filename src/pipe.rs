//! The baseline for benchmarks: a plain consume → produce pipe with no routing logic. Commands
//! are copied to the first FL's read topic and everything that FL writes is copied to one reply
//! topic, through the same Kafka clients, offset tracking and idempotent producer the router
//! uses, but with no parsing and no actors. Router figures divided by pipe figures are the
//! router's own cost.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fl_router_actors::{Outbox, Outgoing};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::Config;
use crate::kafka;
use crate::kafka::consumer::{self, TrackedConsumer};
use crate::kafka::offsets::OffsetTracker;
use crate::kafka::producer::KafkaOutbox;

/// Runs the pipe until `shutdown` resolves.
pub async fn run(
    config: &Config,
    reply_topic: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
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
    let mut loops = Vec::new();
    for (name, from, to) in [
        (
            "pipe-commands",
            config.topics.commands.clone(),
            config.topics.fl_read_topic(&fl.id),
        ),
        (
            "pipe-fl",
            vec![config.topics.fl_write_topic(&fl.id)],
            reply_topic.to_string(),
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
    info!(fl = %fl.id, "pipe started");
    shutdown.await;
    let _ = stop_tx.send(true);
    for l in loops {
        let _ = l.await;
    }
    outbox.flush(Duration::from_secs(5));
    Ok(())
}

async fn copy(
    consumer: Arc<TrackedConsumer>,
    tracker: Arc<OffsetTracker>,
    outbox: Arc<KafkaOutbox>,
    to: String,
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
                    let out = Outgoing::new(to.clone(), Bytes::copy_from_slice(m.payload().unwrap_or_default()))
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
