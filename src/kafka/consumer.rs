//! The two consumers: commands (inbound topics) and FL output (every FL write topic).
//!
//! Each message becomes an [`Inbound`] with a ticket from the consumer's [`OffsetTracker`] and
//! is handed to the engine with backpressure (the loop awaits the actor). Offsets are committed
//! periodically up to the tracker's low-watermark, on partition revocation and at shutdown.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fl_router_actors::runtime::outbox::headers;
use fl_router_actors::runtime::outbox::Origin;
use fl_router_actors::{Engine, Inbound};
use futures::stream::{FuturesOrdered, StreamExt};
use futures::FutureExt;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::offsets::OffsetTracker;
use super::stats::KafkaStats;

pub struct TrackingContext {
    tracker: Arc<OffsetTracker>,
    name: &'static str,
    stats: Option<Arc<KafkaStats>>,
}

impl ClientContext for TrackingContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Some(s) = &self.stats {
            s.consumer(self.name, &statistics);
        }
    }
}

impl ConsumerContext for TrackingContext {
    /// The default rebalance, plus: on revocation commit what is done; on assignment, a
    /// partition this process has read before goes on after what it read (those commands are
    /// answered or still in its care: reading them again would judge them twice, e.g. after
    /// a pause longer than the session timeout made the group drop and re-admit this member).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut resumed = 0;
                for (topic, partition) in tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect::<Vec<_>>()
                {
                    self.tracker.assigned(&topic, partition);
                    if let Some(next) = self.tracker.resume_at(&topic, partition) {
                        resumed += 1;
                        let _ = tpl.set_partition_offset(&topic, partition, Offset::Offset(next));
                    }
                }
                info!(
                    consumer = self.name,
                    partitions = tpl.count(),
                    resumed,
                    "partitions assigned"
                );
                self.tracker.suspend_commits(false);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Commit what is done before the partitions go to someone else; unless they
                // are already lost (session timed out): a commit with the old member id would
                // be fenced, which librdkafka treats as fatal for a static member. What was
                // read is kept and resumed after on re-assignment instead.
                if consumer.assignment_lost() {
                    self.tracker.suspend_commits(true);
                } else {
                    commit(consumer, &self.tracker, self.name, true, CommitMode::Sync);
                }
                for e in tpl.elements() {
                    self.tracker.revoke(e.topic(), e.partition());
                }
                info!(
                    consumer = self.name,
                    partitions = tpl.count(),
                    "partitions revoked"
                );
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                warn!(consumer = self.name, error = ?other, "rebalance error");
                self.tracker.clear_assignment();
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            warn!(consumer = self.name, error = %e, "rebalance: (un)assign failed");
        }
    }
}

pub type TrackedConsumer = StreamConsumer<TrackingContext>;

/// Which engine entry point a consumer feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Commands,
    FlOutput,
    /// A cluster instance's owned FLs' read topics: forwards to adopt.
    Forwards,
}

pub fn create(
    config: &ClientConfig,
    name: &'static str,
    topics: &[String],
    tracker: Arc<OffsetTracker>,
    stats: Option<Arc<KafkaStats>>,
) -> anyhow::Result<TrackedConsumer> {
    let consumer: TrackedConsumer = config.create_with_context(TrackingContext {
        tracker,
        name,
        stats,
    })?;
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&refs)?;
    Ok(consumer)
}

/// A consumer whose partitions are assigned by hand (a cluster instance's FL topics, by
/// `cluster::ownership`): no subscription, offsets still committed in its group.
pub fn create_manual(
    config: &ClientConfig,
    name: &'static str,
    tracker: Arc<OffsetTracker>,
    stats: Option<Arc<KafkaStats>>,
) -> anyhow::Result<TrackedConsumer> {
    Ok(config.create_with_context(TrackingContext {
        tracker,
        name,
        stats,
    })?)
}

/// Commits the tracker's positions (only those that moved unless `all`).
pub fn commit<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    tracker: &OffsetTracker,
    name: &str,
    all: bool,
    mode: CommitMode,
) {
    // Never with a lost assignment (session timed out, not yet re-assigned): the commit would
    // carry a stale member id, and a fenced static member is fatal in librdkafka.
    if tracker.commits_suspended() || consumer.assignment_lost() {
        debug!(
            consumer = name,
            "assignment lost; not committing until re-assigned"
        );
        return;
    }
    let positions = tracker.commit_positions(all);
    if positions.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in &positions {
        if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            warn!(consumer = name, error = %e, "cannot build commit list");
            return;
        }
    }
    match consumer.commit(&tpl, mode) {
        Ok(()) => {
            tracker.committed(&positions);
            debug!(
                consumer = name,
                partitions = positions.len(),
                "offsets committed"
            )
        }
        Err(e) => warn!(consumer = name, error = %e, "offset commit failed; will retry"),
    }
}

/// Everything a consume loop needs.
pub struct LoopParams {
    pub consumer: Arc<TrackedConsumer>,
    pub tracker: Arc<OffsetTracker>,
    pub engine: Engine,
    pub role: Role,
    pub name: &'static str,
    pub commit_interval: Duration,
    /// Stop reading new messages (committing continues until `finish`).
    pub stop_reading: watch::Receiver<bool>,
    /// Final commit and return.
    pub finish: watch::Receiver<bool>,
    /// Start reading only when this turns true (the FL catch-up gate), or at once if None.
    pub gate: Option<watch::Receiver<bool>>,
    /// Set to true once this loop reads with partitions assigned (router readiness).
    pub ready: Option<watch::Sender<bool>>,
    /// Ready once past the gate even with no partition (a cluster instance: the group may
    /// give the command partitions to its peers; it still owns FLs and adopts their commands).
    pub ready_unassigned: bool,
    /// Stop reading while this many inputs are still in the engine's care (0 = no bound).
    pub max_outstanding: usize,
    /// Set when the consumer hits a fatal error: it cannot go on, the process must restart.
    pub fatal: watch::Sender<Option<String>>,
}

/// Messages handed to the engine and not yet taken by their actor, per consumer: the loop reads
/// on while the engine works through them (one actor round trip per message costs more than the
/// message), and marks them handled in order as they are taken. The mailboxes' capacity still
/// applies to each hand-over, so backpressure reaches Kafka.
const WINDOW: usize = 64;

/// At most this many messages already fetched are handed to the engine together.
const BATCH: usize = 64;

type Position = (Arc<str>, i32, i64);
type Handled = (Vec<Position>, Result<(), fl_router_actors::EngineError>);

/// Names a consume loop has seen (topics, reply-to topics): shared rather than copied per
/// message, since a pending command keeps its reply-to until it is answered. Bounded: past
/// [`Names::MAX`] distinct names (a sender inventing one per message) new ones are copied.
#[derive(Default)]
struct Names(std::collections::HashSet<Arc<str>>);

impl Names {
    const MAX: usize = 4096;

    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.0.get(name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        if self.0.len() < Self::MAX {
            self.0.insert(n.clone());
        }
        n
    }
}

/// The engine's copy of a Kafka message (payload, key, headers, where it was read), with the
/// ticket that holds its offset.
fn inbound(
    m: &rdkafka::message::BorrowedMessage<'_>,
    tracker: &Arc<OffsetTracker>,
    names: &mut Names,
) -> Inbound {
    let mut hdrs = Vec::new();
    let mut reply_to = None;
    if let Some(h) = m.headers() {
        for h in h.iter() {
            let raw = h.value.unwrap_or_default();
            // The reply-to header's name is a constant: no copy of it per message.
            let name = if h.key == headers::REPLY_TO {
                reply_to = std::str::from_utf8(raw).ok().map(|t| names.get(t));
                std::borrow::Cow::Borrowed(headers::REPLY_TO)
            } else {
                std::borrow::Cow::Owned(h.key.to_string())
            };
            hdrs.push((name, Bytes::copy_from_slice(raw)));
        }
    }
    let topic_name = names.get(m.topic());
    let ticket = tracker.track(topic_name.clone(), m.partition(), m.offset());
    Inbound {
        payload: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
        null_value: m.payload().is_none(),
        key: m.key().map(Bytes::copy_from_slice),
        headers: hdrs,
        reply_to,
        ticket,
        read_at: Some(std::time::Instant::now()),
        origin: Some(Origin {
            topic: topic_name,
            partition: m.partition(),
            offset: m.offset(),
            timestamp_ms: m
                .timestamp()
                .to_millis()
                .and_then(|t| u64::try_from(t).ok()),
        }),
    }
}

pub async fn run_loop(mut p: LoopParams) {
    if let Some(mut gate) = p.gate.take() {
        tokio::select! {
            _ = gate.wait_for(|v| *v) => {}
            _ = p.finish.changed() => {}
        }
    }
    let mut commit_tick = tokio::time::interval(p.commit_interval);
    let mut ready_tick = tokio::time::interval(Duration::from_millis(50));
    // While at the in-flight bound, look again this often.
    let mut throttle_tick = tokio::time::interval(Duration::from_millis(5));
    let mut throttled = false;
    let mut names = Names::default();
    let mut reading = true;
    let mut in_engine: FuturesOrdered<
        std::pin::Pin<Box<dyn std::future::Future<Output = Handled> + Send>>,
    > = FuturesOrdered::new();
    loop {
        tokio::select! {
            biased;
            _ = p.finish.changed() => break,
            Some((at, r)) = in_engine.next(), if !in_engine.is_empty() => {
                if let Err(e) = r {
                    warn!(consumer = p.name, error = %e, "message not routed");
                }
                for (topic, partition, offset) in at {
                    p.tracker.mark_handled(&topic, partition, offset);
                }
            }
            _ = commit_tick.tick() => {
                commit(&*p.consumer, &p.tracker, p.name, false, CommitMode::Async);
            }
            _ = ready_tick.tick(), if p.ready.is_some() => {
                let assigned = p.consumer.assignment().map(|a| a.count() > 0).unwrap_or(false);
                if assigned || p.ready_unassigned {
                    if let Some(r) = p.ready.take() {
                        info!("router ready: routing commands");
                        let _ = r.send(true);
                    }
                }
            }
            _ = p.stop_reading.changed(), if reading => {
                reading = false;
                info!(consumer = p.name, "stopped reading; draining");
            }
            _ = throttle_tick.tick(), if throttled => {
                if p.tracker.outstanding() < p.max_outstanding {
                    throttled = false;
                    info!(consumer = p.name, "below the in-flight bound again; reading");
                }
            }
            m = p.consumer.recv(), if reading && !throttled && in_engine.len() < WINDOW => match m {
                Ok(m) => {
                    // Sized for a full batch: no vector grown push by push.
                    let mut batch = Vec::with_capacity(BATCH);
                    batch.push(inbound(&m, &p.tracker, &mut names));
                    drop(m);
                    {
                        // What librdkafka already holds goes over in one hand-over.
                        // Never past the in-flight bound: the batch stops where reading would.
                        let bound = p.max_outstanding;
                        while batch.len() < BATCH && (bound == 0 || p.tracker.outstanding() < bound) {
                            match p.consumer.recv().now_or_never() {
                                Some(Ok(m)) => batch.push(inbound(&m, &p.tracker, &mut names)),
                                Some(Err(e)) => {
                                    warn!(consumer = p.name, error = %e, "consume error");
                                    break;
                                }
                                None => break,
                            }
                        }
                    }
                    if p.max_outstanding > 0 && p.tracker.outstanding() >= p.max_outstanding {
                        // Overload: let the answers drain (they would otherwise queue behind
                        // new commands and miss their deadlines); the backlog waits in Kafka.
                        throttled = true;
                        warn!(consumer = p.name, bound = p.max_outstanding, "in-flight bound reached; pausing reads");
                    }
                    let engine = p.engine.clone();
                    let role = p.role;
                    in_engine.push_back(Box::pin(async move {
                        let at: Vec<Position> = batch.iter().filter_map(|m| {
                            m.origin.as_ref().map(|o| (o.topic.clone(), o.partition, o.offset))
                        }).collect();
                        let r = match role {
                            Role::Commands => engine.commands(batch).await,
                            Role::FlOutput => engine.fl_outputs(batch).await,
                            Role::Forwards => engine.fl_forwards(batch).await,
                        };
                        (at, r)
                    }));
                }
                Err(e) => {
                    if let Some((code, reason)) = p.consumer.client().fatal_error() {
                        let why = format!("{code:?}: {reason}");
                        error!(consumer = p.name, error = %why, "fatal Kafka consumer error; the router stops so it can be restarted");
                        let _ = p.fatal.send(Some(format!("consumer {}: {why}", p.name)));
                        break;
                    }
                    warn!(consumer = p.name, error = %e, "consume error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    // What was handed over is handled before the last commit.
    while let Some((at, _)) = in_engine.next().await {
        for (topic, partition, offset) in at {
            p.tracker.mark_handled(&topic, partition, offset);
        }
    }
    commit(&*p.consumer, &p.tracker, p.name, true, CommitMode::Sync);
    info!(
        consumer = p.name,
        outstanding = p.tracker.outstanding(),
        "consumer finished"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shared_and_the_table_stays_bounded() {
        let mut names = Names::default();
        let a = names.get("kilda.northbound");
        let b = names.get("kilda.northbound");
        assert!(Arc::ptr_eq(&a, &b), "one copy per name");
        for i in 0..Names::MAX + 10 {
            names.get(&format!("reply.{i}"));
        }
        assert_eq!(
            names.0.len(),
            Names::MAX,
            "no more names kept than the bound"
        );
        // Past the bound a name is still given back right, only not kept.
        let late = names.get("reply.late");
        assert_eq!(&*late, "reply.late");
        assert!(!Arc::ptr_eq(&late, &names.get("reply.late")));
        assert!(Arc::ptr_eq(&a, &names.get("kilda.northbound")));
    }
}
