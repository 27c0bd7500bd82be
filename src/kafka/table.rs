//! A compacted topic read as a table: every partition from its beginning to the end offset it
//! had when reading started, the latest value per key winning and a null value (tombstone)
//! deleting the key. The router keeps its switch map this way (Kafka as the state store, as
//! Kafka Streams keeps a table), and reads it back at start, before anything else.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Latest value per key of `topic`, as it is now. Blocking: call it from a blocking task.
pub fn read(
    client: &ClientConfig,
    topic: &str,
    timeout: Duration,
) -> anyhow::Result<HashMap<Vec<u8>, Vec<u8>>> {
    let mut c = client.clone();
    c.set(
        "group.id",
        format!("flrouter-table-{}", uuid::Uuid::new_v4()),
    )
    .set("enable.auto.commit", "false")
    .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = c.create()?;
    let ends = super::end_offsets(&consumer, &[topic.to_string()], timeout)?;
    let mut left: HashMap<i32, i64> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for (t, p, high) in ends {
        tpl.add_partition_offset(&t, p, Offset::Beginning)?;
        let (low, _) = consumer.fetch_watermarks(&t, p, timeout)?;
        if high > low {
            left.insert(p, high);
        }
    }
    consumer.assign(&tpl)?;
    let mut table = HashMap::new();
    let deadline = Instant::now() + timeout;
    while !left.is_empty() {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{topic}: not read to its end within {}",
                humantime::format_duration(timeout)
            );
        }
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m?;
        if let Some(key) = m.key() {
            match m.payload() {
                Some(v) => table.insert(key.to_vec(), v.to_vec()),
                None => table.remove(key),
            };
        }
        if left
            .get(&m.partition())
            .is_some_and(|end| m.offset() + 1 >= *end)
        {
            left.remove(&m.partition());
        }
    }
    Ok(table)
}
