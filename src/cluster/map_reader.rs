//! A cluster instance reads the switch-map topic live (`docs/design/cluster.md`): the other
//! instances' connection facts and the leader's decisions go to `Engine::map_records`. From
//! the beginning at start — the topic is compacted, so that is the current table — then as it
//! is written. Nothing is committed: every start reads the table whole.

use std::collections::HashMap;
use std::time::Duration;

use fl_router_actors::Engine;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{info, warn};

/// Records handed to the engine together at most.
const BATCH: usize = 256;

/// Assigns every partition of `topic` from its beginning.
pub fn consumer(
    client: &ClientConfig,
    topic: &str,
    instance: &str,
) -> anyhow::Result<(StreamConsumer, HashMap<i32, i64>)> {
    let mut c = client.clone();
    c.set(
        "group.id",
        format!("flrouter-map-{instance}-{}", uuid::Uuid::new_v4().simple()),
    )
    .set("enable.auto.commit", "false")
    .set("enable.auto.offset.store", "false");
    let consumer: StreamConsumer = c.create()?;
    let ends = crate::kafka::end_offsets(&consumer, &[topic.to_string()], Duration::from_secs(30))?;
    let mut tpl = TopicPartitionList::new();
    for (t, p, _) in &ends {
        tpl.add_partition_offset(t, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok((
        consumer,
        ends.into_iter().map(|(_, p, high)| (p, high)).collect(),
    ))
}

/// Feeds the engine until the consumer is dropped; `ready` turns true once the table as it was
/// at start has been applied.
pub async fn run(
    consumer: StreamConsumer,
    ends: HashMap<i32, i64>,
    engine: Engine,
    ready: watch::Sender<bool>,
) {
    let mut behind: HashMap<i32, i64> = ends.into_iter().filter(|(_, high)| *high > 0).collect();
    if behind.is_empty() {
        let _ = ready.send(true);
    }
    loop {
        let batch = crate::kafka::next_batch(&consumer, BATCH, "switch-map topic").await;
        let mut records = Vec::with_capacity(batch.len());
        for m in &batch {
            if let Some(high) = behind.get(&m.partition()) {
                if m.offset() + 1 >= *high {
                    behind.remove(&m.partition());
                }
            }
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            if key.starts_with(crate::cluster::peers::KEY_PREFIX) {
                continue; // an instance's settings, compared at start (`peers.rs`)
            }
            let value = m.payload().map(bytes::Bytes::copy_from_slice);
            records.push((key, value));
        }
        if let Err(e) = engine.map_records(records).await {
            warn!(error = %e, "switch-map records not applied");
        }
        if behind.is_empty() && !*ready.borrow() {
            info!("switch-map topic read to its end: the cluster's map is known");
            let _ = ready.send(true);
        }
    }
}
