//! A cluster instance's collect topic (`<cluster.collect_topic>.<instance id>`): the results
//! of its multi-switch commands' parts, sent there by the instances that own the parts' FLs
//! (`docs/design/cluster.md`). Read from its end at start: parts sent to a previous incarnation
//! belong to commands this one reads again and splits anew. Nothing is committed.

use std::borrow::Cow;

use bytes::Bytes;
use fl_router_actors::{Engine, Inbound};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tracing::warn;

/// Records handed to the engine together at most.
const BATCH: usize = 256;

pub fn consumer(client: &ClientConfig, topic: &str) -> anyhow::Result<StreamConsumer> {
    let mut c = client.clone();
    c.set(
        "group.id",
        format!("flrouter-collect-{}", uuid::Uuid::new_v4().simple()),
    )
    .set("enable.auto.commit", "false")
    .set("enable.auto.offset.store", "false")
    .set("statistics.interval.ms", "0");
    let consumer: StreamConsumer = c.create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::End)?;
    consumer.assign(&tpl)?;
    Ok(consumer)
}

/// Feeds the engine until the consumer is dropped.
pub async fn run(consumer: StreamConsumer, engine: Engine) {
    loop {
        let batch = crate::kafka::next_batch(&consumer, BATCH, "collect topic").await;
        let msgs = batch
            .iter()
            .map(|m| {
                let mut msg = Inbound::new(Bytes::copy_from_slice(m.payload().unwrap_or_default()));
                msg.key = m.key().map(Bytes::copy_from_slice);
                if let Some(h) = m.headers() {
                    for h in h.iter() {
                        msg.headers.push((
                            Cow::Owned(h.key.to_string()),
                            Bytes::copy_from_slice(h.value.unwrap_or_default()),
                        ));
                    }
                }
                msg
            })
            .collect();
        if let Err(e) = engine.collected(msgs).await {
            warn!(error = %e, "multi-switch part results not handed over");
        }
    }
}
