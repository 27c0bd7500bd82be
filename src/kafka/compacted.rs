//! Reading what is already in Kafka at start, before the consumers run: bounded offset ranges
//! read with a plain assigned consumer (no group), and on top of that a compacted topic read
//! as a table (the latest value per key wins, a null value deletes the key). The router keeps
//! its switch map this way (Kafka as the state store, as Kafka Streams keeps a table) and reads
//! back what its previous incarnation did (`replay.rs`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Part of one partition: offsets `start..end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub topic: String,
    pub partition: i32,
    pub start: i64,
    pub end: i64,
}

/// A consumer for reading at start: assigned, never joining a group or committing.
pub fn reader(client: &ClientConfig) -> anyhow::Result<BaseConsumer> {
    let mut c = client.clone();
    c.set(
        "group.id",
        format!("flrouter-reader-{}", uuid::Uuid::new_v4()),
    )
    .set("enable.auto.commit", "false")
    .set("enable.partition.eof", "false")
    // A read-back waits for the last records of its ranges: a fetch that finds nothing new
    // answers in 10 ms rather than librdkafka's 500 (a takeover's time is made of these).
    .set("fetch.wait.max.ms", "10");
    Ok(c.create()?)
}

/// Calls `f` for every record in `ranges` (each partition in order). Blocking.
pub fn read_ranges(
    consumer: &BaseConsumer,
    ranges: &[Range],
    timeout: Duration,
    mut f: impl FnMut(&BorrowedMessage<'_>),
) -> anyhow::Result<()> {
    let mut left: HashMap<(String, i32), i64> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for r in ranges.iter().filter(|r| r.end > r.start) {
        tpl.add_partition_offset(&r.topic, r.partition, Offset::Offset(r.start))?;
        left.insert((r.topic.clone(), r.partition), r.end);
    }
    if left.is_empty() {
        return Ok(());
    }
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    let mut last_error: Option<String> = None;
    while !left.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} partition(s) not read to their end within {}{}",
            left.len(),
            humantime::format_duration(timeout),
            last_error
                .as_deref()
                .map(|e| format!(" (last error: {e})"))
                .unwrap_or_default()
        );
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            // Compaction may have removed the last records before `end`: the position tells.
            if let Ok(pos) = consumer.position() {
                for e in pos.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        let key = (e.topic().to_string(), e.partition());
                        if left.get(&key).is_some_and(|end| o >= *end) {
                            left.remove(&key);
                        }
                    }
                }
            }
            continue;
        };
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                // A broker restarting or a leader moving: librdkafka reports it and retries on
                // its own. Only the deadline ends the read (a read given up here would cost
                // false answers: what was not read back is not known to be answered).
                tracing::debug!(error = %e, "reading back: transient consumer error; retrying");
                last_error = Some(e.to_string());
                continue;
            }
        };
        use rdkafka::message::Message;
        let key = (m.topic().to_string(), m.partition());
        let Some(&end) = left.get(&key) else { continue };
        if m.offset() < end {
            f(&m);
        }
        if m.offset() + 1 >= end {
            left.remove(&key);
        }
    }
    consumer.unassign()?;
    Ok(())
}

/// Latest value per key of `topic`, as it is now. Blocking: call it from a blocking task.
pub fn read(
    client: &ClientConfig,
    topic: &str,
    timeout: Duration,
) -> anyhow::Result<HashMap<Vec<u8>, Vec<u8>>> {
    let consumer = reader(client)?;
    let mut ranges = Vec::new();
    for (t, p, high) in super::end_offsets(&consumer, &[topic.to_string()], timeout)? {
        let (low, _) = consumer.fetch_watermarks(&t, p, timeout)?;
        ranges.push(Range {
            topic: t,
            partition: p,
            start: low,
            end: high,
        });
    }
    let mut table = HashMap::new();
    read_ranges(&consumer, &ranges, timeout, |m| {
        use rdkafka::message::Message;
        if let Some(key) = m.key() {
            match m.payload() {
                Some(v) => table.insert(key.to_vec(), v.to_vec()),
                None => table.remove(key),
            };
        }
    })?;
    Ok(table)
}
