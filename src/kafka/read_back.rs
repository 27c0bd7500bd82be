//! At start, reads back from Kafka what the previous incarnation of the router did with the
//! commands this one is about to read again (see `fl_router_actors::routing::replay`):
//!
//! - the commands it forwarded: the FL read topics (with their `reply_to` header);
//! - the FL answers it routed and committed: the FL write topics up to the FL group's
//!   committed offset (it commits an FL message only after what it routed was delivered);
//! - the errors it answered itself: its journal topic.
//!
//! How far back: from the oldest record either consumer group will read again (its first
//! uncommitted command or FL message), minus the longest a command can stay pending
//! (`timeouts.ack + timeouts.answer`) and one commit interval. After a clean shutdown nothing
//! is uncommitted and the window is that length back from now. The records are found by
//! timestamp (`offsets_for_times`), so the window costs what was written in it, not the
//! topics' retention.

use std::collections::HashMap;
use std::time::Duration;

use super::consumer::TrackedConsumer;
use bytes::Bytes;
use fl_router_actors::protocol::Head;
use fl_router_actors::routing::replay::PriorRecord;
use fl_router_actors::runtime::clock::now_millis;
use fl_router_actors::runtime::outbox::headers;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::config::Config;
use crate::kafka::compacted::{self as table, Range};

/// What was read, for the start-up log, and where the commands read again end.
#[derive(Debug, Default)]
pub struct Window {
    pub from_ms: u64,
    pub records: usize,
    /// Per command partition, its end offset now: commands below it are read again.
    pub replay_until: HashMap<(String, i32), i64>,
}

/// Reads the records. Blocking: call it from a blocking task.
pub fn read_back(
    config: &Config,
    client: &ClientConfig,
    timeout: Duration,
) -> anyhow::Result<(Vec<PriorRecord>, Window)> {
    read_back_scope(config, client, None, timeout, None)
}

/// What FL `fl`'s previous owner did with the commands forwarded to it (a cluster instance
/// taking the FL over, see `cluster::ownership`): its forwards, the answers it routed and
/// committed, the router's own answers. The window starts from the oldest uncommitted forward
/// (the previous owner committed the read topic below its oldest pending command) or FL
/// message. Blocking.
/// `groups`: the instance's own members of `<group_id>-fwd` and `<group_id>-fl`, asked for
/// their groups' committed offsets (their coordinator is known: a takeover saves a new
/// client's coordinator lookup per group).
pub fn read_back_fl(
    config: &Config,
    client: &ClientConfig,
    fl: &str,
    timeout: Duration,
    groups: Option<(&TrackedConsumer, &TrackedConsumer)>,
) -> anyhow::Result<Vec<PriorRecord>> {
    read_back_scope(config, client, Some(fl), timeout, groups).map(|(records, _)| records)
}

fn read_back_scope(
    config: &Config,
    client: &ClientConfig,
    only: Option<&str>,
    timeout: Duration,
    groups: Option<(&TrackedConsumer, &TrackedConsumer)>,
) -> anyhow::Result<(Vec<PriorRecord>, Window)> {
    let t = &config.topics;
    let k = &config.kafka;
    let commands: Vec<String> = match only {
        None => t.command_topics(),
        Some(_) => Vec::new(),
    };
    let fls: Vec<&fl_router_actors::settings::FlSettings> = config
        .fls
        .iter()
        .filter(|f| only.is_none_or(|o| f.id == o))
        .collect();
    let fl_read: HashMap<String, String> = fls
        .iter()
        .flat_map(|f| {
            t.fl_read_topics(&f.id)
                .into_iter()
                .map(|r| (r, f.id.clone()))
        })
        .collect();
    let fl_write: Vec<String> = fls.iter().flat_map(|f| t.fl_write_topics(&f.id)).collect();

    let t0 = std::time::Instant::now();
    let mut phases: Vec<(&str, u64)> = Vec::new();
    let mut phase = |name: &'static str| phases.push((name, t0.elapsed().as_millis() as u64));
    let reader = table::reader(client)?;
    phase("reader");
    let mut cmd_committed = if commands.is_empty() {
        Vec::new()
    } else {
        committed(client, &k.group_id, None, &reader, &commands, timeout)?
    };
    if only.is_some() {
        // A takeover: the forwards still open start after the read topics' committed offset.
        let read_topics: Vec<String> = fl_read.keys().cloned().collect();
        let fwd_group = format!("{}-fwd", k.group_id);
        cmd_committed.extend(committed(
            client,
            &fwd_group,
            groups.map(|g| g.0),
            &reader,
            &read_topics,
            timeout,
        )?);
    }
    phase("commands/forwards committed");
    let fl_committed = committed(
        client,
        &format!("{}-fl", k.group_id),
        groups.map(|g| g.1),
        &reader,
        &fl_write,
        timeout,
    )?;
    phase("fl committed");
    // The oldest record that will be read again, by its timestamp.
    let mut oldest = now_millis();
    let mut firsts = Vec::new();
    for (topic, partition, committed, high) in cmd_committed.iter().chain(&fl_committed) {
        if let Some(c) = committed.filter(|c| c < high) {
            firsts.push(Range {
                topic: topic.clone(),
                partition: *partition,
                start: c,
                end: c + 1,
            });
        }
    }
    table::read_ranges(&reader, &firsts, timeout, |m| {
        if let Some(ts) = m.timestamp().to_millis() {
            oldest = oldest.min(ts.max(0) as u64);
        }
    })?;
    phase("first records");
    let lookback = config.settings().longest_outcome_wait() + k.commit_interval;
    let from_ms = oldest.saturating_sub(lookback.as_millis() as u64);

    let mut ranges = Vec::new();
    let read_topics: Vec<String> = fl_read.keys().cloned().collect();
    for (topic, partition, start, high) in from_time(&reader, &read_topics, from_ms, timeout)? {
        ranges.push(Range {
            topic,
            partition,
            start,
            end: high,
        });
    }
    for (topic, partition, start, _) in from_time(&reader, &fl_write, from_ms, timeout)? {
        // Only what was committed: that was routed and delivered.
        let end = fl_committed
            .iter()
            .find(|(t, p, _, _)| *t == topic && *p == partition)
            .and_then(|(_, _, c, _)| *c)
            .unwrap_or(0);
        ranges.push(Range {
            topic,
            partition,
            start,
            end,
        });
    }
    for (topic, partition, start, high) in
        from_time(&reader, std::slice::from_ref(&t.journal), from_ms, timeout)?
    {
        ranges.push(Range {
            topic,
            partition,
            start,
            end: high,
        });
    }

    phase("offsets by time");
    let classes = &config.protocol.classes;
    let mut out = Vec::new();
    let mut window = Window {
        from_ms,
        records: 0,
        replay_until: cmd_committed
            .iter()
            .filter(|(t, ..)| commands.contains(t))
            .map(|(t, p, _, high)| ((t.clone(), *p), *high))
            .collect(),
    };
    table::read_ranges(&reader, &ranges, timeout, |m| {
        window.records += 1;
        let header = |name: &str| {
            m.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value)
                    .map(<[u8]>::to_vec)
            })
        };
        if m.topic() == t.journal {
            let (Some(cid), Some(topic)) = (
                m.key().and_then(|k| std::str::from_utf8(k).ok()),
                header(headers::REPLY_TO).and_then(|v| String::from_utf8(v).ok()),
            ) else {
                return;
            };
            out.push(PriorRecord::RouterError {
                cid: cid.to_string(),
                topic,
                key: header(headers::JOURNAL_KEY).map(Bytes::from),
                body: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
            });
            return;
        }
        let Ok(head) = Head::parse(m.payload().unwrap_or_default()) else {
            return;
        };
        let Some(cid) = head.correlation() else {
            return;
        };
        if let Some(fl) = fl_read.get(m.topic()) {
            if cid.starts_with("flrouter-") {
                return; // the router's own AliveRequest / SyncRequest
            }
            out.push(PriorRecord::Forwarded {
                fl: fl.clone(),
                cid: cid.to_string(),
                reply_to: header(headers::REPLY_TO).and_then(|v| String::from_utf8(v).ok()),
                at_ms: m.timestamp().to_millis().unwrap_or(0).max(0) as u64,
            });
        } else {
            let class = head.payload_class();
            let class = class.as_deref();
            if class == Some(classes.fl_receive_ack.as_str())
                || class == Some(classes.alive_response.as_str())
            {
                return;
            }
            out.push(PriorRecord::Answered {
                cid: cid.to_string(),
            });
        }
    })?;
    phase("records");
    tracing::debug!(?phases, "read-back phases (ms since start)");
    Ok((out, window))
}

/// (topic, partition, committed offset of `group` if any, end offset) for every partition.
type Committed = Vec<(String, i32, Option<i64>, i64)>;

/// `member`: a consumer of `group` already running, else one is made for the question.
fn committed(
    client: &ClientConfig,
    group: &str,
    member: Option<&TrackedConsumer>,
    reader: &BaseConsumer,
    topics: &[String],
    timeout: Duration,
) -> anyhow::Result<Committed> {
    let ends = super::end_offsets(reader, topics, timeout)?;
    let mut tpl = TopicPartitionList::new();
    for (t, p, _) in &ends {
        tpl.add_partition(t, *p);
    }
    let got = match member {
        Some(m) => m.committed_offsets(tpl, timeout)?,
        None => {
            let mut c = client.clone();
            c.set("group.id", group).set("enable.auto.commit", "false");
            let group_client: BaseConsumer = c.create()?;
            group_client.committed_offsets(tpl, timeout)?
        }
    };
    Ok(ends
        .into_iter()
        .map(|(t, p, high)| {
            let c = got.find_partition(&t, p).and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
            (t, p, c, high)
        })
        .collect())
}

/// (topic, partition, first offset at or after `from_ms`, end offset) for every partition.
fn from_time(
    reader: &BaseConsumer,
    topics: &[String],
    from_ms: u64,
    timeout: Duration,
) -> anyhow::Result<Vec<(String, i32, i64, i64)>> {
    let ends = super::end_offsets(reader, topics, timeout)?;
    let mut tpl = TopicPartitionList::new();
    for (t, p, _) in &ends {
        tpl.add_partition_offset(t, *p, Offset::Offset(from_ms as i64))?;
    }
    let found = reader.offsets_for_times(tpl, timeout)?;
    Ok(ends
        .into_iter()
        .map(|(t, p, high)| {
            let start = found
                .find_partition(&t, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .unwrap_or(high);
            (t, p, start, high)
        })
        .collect())
}
