//! How far the router has read each FL's topics: the engine judges an FL (outage, command
//! deadlines) only up to that instant (see `fl_router_actors::fl::liveness`).
//!
//! Every [`CHECK_INTERVAL`] the task notes the instant `t0` and the end offset (high watermark)
//! of every assigned partition of the FL write topics. Once the engine has *handled* every
//! message below that end offset, it has seen everything the FL wrote before `t0`: that FL is
//! read up to `t0`. While the router is paused, lags, or has no assignment (a restart waiting
//! for its partitions), the instant does not move, so nothing is judged from blindness.
//! End offsets are queried from the partition leader: while it is unreachable (a broker
//! failover), nothing moves either.
//!
//! The first time every FL is read up to date the task opens the command gate: commands are
//! routed only once the switch map is warm (or `kafka.catch_up_timeout` after assignment).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use fl_router_actors::Engine;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::consumer::TrackedConsumer;
use super::offsets::OffsetTracker;

/// How often end offsets are compared with what was handled: deadlines and outages are
/// judged at most about this late.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// End offsets noted and not yet reached, per partition; older ones beyond this are dropped
/// (a later one reached implies the earlier ones were).
const MAX_TARGETS: usize = 600;

pub struct Params {
    pub consumer: Arc<TrackedConsumer>,
    pub tracker: Arc<OffsetTracker>,
    pub engine: Engine,
    /// (FL id, its topics this consumer reads: write topics, or in a cluster the read topics).
    pub fl_topics: Vec<(String, Vec<String>)>,
    /// Which of the engine's views this reports: the FLs' answers, or the forwards to them.
    pub reports: Reports,
    pub catch_up_timeout: Duration,
    /// Set true the first time every owned FL is read up to date (or at the catch-up timeout).
    pub caught_up: Option<watch::Sender<bool>>,
    /// Also required for `caught_up` (a cluster instance: its first share assigned and the
    /// map topic read).
    pub also: Option<watch::Receiver<bool>>,
}

/// What "read up to" means for the topics of one freshness task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reports {
    /// FL write topics: `Engine::fl_read_up_to`.
    Answers,
    /// FL read topics (a cluster instance): `Engine::fl_forwards_read_up_to`.
    Forwards,
}

/// One assigned partition's state as seen by one check.
struct Seen {
    topic: String,
    partition: i32,
    high: i64,
    /// One past the last handled offset; None: not known yet.
    position: Option<i64>,
}

#[derive(Default)]
struct PartitionState {
    targets: VecDeque<(Instant, i64)>,
    read_up_to: Option<Instant>,
    /// Where reading starts in this process when nothing was handled yet.
    start: Option<i64>,
}

pub async fn run(p: Params) {
    if p.reports == Reports::Answers {
        p.engine.track_fl_reads();
    }
    let mut parts: HashMap<(String, i32), PartitionState> = HashMap::new();
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    let mut assigned_at: Option<Instant> = None;
    loop {
        tick.tick().await;
        let t0 = Instant::now();
        let starts: HashMap<(String, i32), i64> = parts
            .iter()
            .filter_map(|(k, v)| v.start.map(|s| (k.clone(), s)))
            .collect();
        let (consumer, tracker) = (p.consumer.clone(), p.tracker.clone());
        let topics: Vec<String> = p.fl_topics.iter().flat_map(|(_, t)| t.clone()).collect();
        let seen =
            tokio::task::spawn_blocking(move || snapshot(&consumer, &tracker, &topics, &starts))
                .await
                .unwrap_or_default();
        let owns_any = p.fl_topics.iter().any(|(fl, _)| p.engine.fl_owned(fl));
        if seen.is_empty() && owns_any {
            continue;
        }
        assigned_at.get_or_insert(t0);
        parts.retain(|k, _| {
            seen.iter()
                .any(|s| (s.topic.as_str(), s.partition) == (&k.0, k.1))
        });
        for s in &seen {
            let st = parts.entry((s.topic.clone(), s.partition)).or_default();
            let Some(pos) = s.position else { continue };
            if st.start.is_none() && p.tracker.handled(&s.topic, s.partition).is_none() {
                st.start = Some(pos);
            }
            st.targets.push_back((t0, s.high));
            if st.targets.len() > MAX_TARGETS {
                st.targets.pop_front();
            }
            while let Some(&(at, high)) = st.targets.front() {
                if pos < high {
                    break;
                }
                st.read_up_to = Some(at);
                st.targets.pop_front();
            }
        }
        let mut all = true;
        for (fl, topics) in p.fl_topics.iter().filter(|(fl, _)| p.engine.fl_owned(fl)) {
            // An FL is seen up to the least seen of all its topics' partitions.
            let mine: Vec<&PartitionState> = parts
                .iter()
                .filter(|(k, _)| topics.contains(&k.0))
                .map(|(_, v)| v)
                .collect();
            let up_to = if mine.is_empty() {
                None
            } else {
                mine.iter()
                    .map(|s| s.read_up_to)
                    .collect::<Option<Vec<_>>>()
                    .and_then(|v| v.into_iter().min())
            };
            match (up_to, p.reports) {
                (Some(at), Reports::Answers) => p.engine.fl_read_up_to(fl, at),
                (Some(at), Reports::Forwards) => p.engine.fl_forwards_read_up_to(fl, at),
                (None, _) => all = false,
            }
        }
        let also = p.also.as_ref().is_none_or(|a| *a.borrow());
        if let Some(caught_up) = p.caught_up.as_ref().filter(|c| !*c.borrow()) {
            if all && also {
                info!("FL topics read up to date; routing commands");
                let _ = caught_up.send(true);
            } else if also && assigned_at.is_some_and(|a| a.elapsed() >= p.catch_up_timeout) {
                warn!("FL topics not read up to date in time; routing commands anyway");
                let _ = caught_up.send(true);
            }
        }
    }
}

/// Assigned partitions of `topics` with their end offset and how far the engine has handled
/// them (for a partition nothing was handled of yet: where reading starts).
fn snapshot(
    consumer: &TrackedConsumer,
    tracker: &OffsetTracker,
    topics: &[String],
    starts: &HashMap<(String, i32), i64>,
) -> Vec<Seen> {
    let timeout = Duration::from_secs(1);
    let Ok(assignment) = consumer.assignment() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in assignment.elements() {
        if !topics.iter().any(|t| t == e.topic()) {
            continue;
        }
        let (topic, partition) = (e.topic().to_string(), e.partition());
        // The leader is unreachable: this partition is not seen this round.
        let Ok((low, high)) = consumer.fetch_watermarks(&topic, partition, timeout) else {
            continue;
        };
        let position = match tracker.handled(&topic, partition) {
            Some(h) => Some(h),
            None => match starts.get(&(topic.clone(), partition)) {
                Some(&s) => Some(s),
                None => start_offset(consumer, &topic, partition, low, timeout),
            },
        };
        out.push(Seen {
            topic,
            partition,
            high,
            position,
        });
    }
    out
}

/// Where this consumer starts reading a partition: its group's committed offset, else the
/// earliest offset (`auto.offset.reset=earliest`).
fn start_offset(
    consumer: &TrackedConsumer,
    topic: &str,
    partition: i32,
    low: i64,
    timeout: Duration,
) -> Option<i64> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let committed = consumer.committed_offsets(tpl, timeout).ok()?;
    let e = committed.find_partition(topic, partition)?;
    Some(match e.offset() {
        Offset::Offset(o) => o.max(low),
        _ => low,
    })
}
