//! A cluster instance's share of the work, decided by Kafka's group assignment
//! (`docs/design/cluster.md`): partition *f* of `cluster.owners_topic` in group
//! `<group_id>-owners` is FL *f*; partition 0 of `cluster.leader_topic` in group
//! `<group_id>-leader` is the leadership. Neither topic carries messages: the assignment is
//! the decision. Both consumers are static members (the instance id) with cooperative-sticky
//! assignment, polled on a thread of their own: taking an FL over reads its history back
//! first, which blocks.
//!
//! Taking FL *f*: read back what its previous owner settled (`replay::read_back_fl`), load it
//! into the engine, tell the engine it owns *f*, then assign *f*'s write topics to the FL
//! consumer and its read topics to the forwards consumer (from their committed offsets).
//! Losing it: commit what is done, take the partitions out of the offset trackers (nothing of
//! them is committed from here any more), unassign, then tell the engine.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fl_router_actors::Engine;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::kafka::consumer::{commit, TrackedConsumer};
use crate::kafka::offsets::OffsetTracker;

/// What this instance holds now (`/api/cluster`, the command gate).
#[derive(Default)]
pub struct Shares {
    pub owned: Mutex<BTreeSet<String>>,
    pub leader: AtomicBool,
    /// The owners group has assigned this instance at least once (possibly nothing).
    pub assigned: AtomicBool,
}

impl Shares {
    pub fn owned(&self) -> Vec<String> {
        self.owned
            .lock()
            .map(|o| o.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// A hand-assigned consumer and its offsets.
pub struct Hand {
    pub name: &'static str,
    pub consumer: Arc<TrackedConsumer>,
    pub tracker: Arc<OffsetTracker>,
}

struct Owners {
    config: Config,
    engine: Engine,
    fl: Hand,
    forwards: Hand,
    shares: Arc<Shares>,
}

impl Owners {
    /// Every partition of `topics` (its count from the metadata).
    fn partitions(&self, topics: &[String]) -> Vec<(String, i32)> {
        let mut out = Vec::new();
        for t in topics {
            match self
                .fl
                .consumer
                .fetch_metadata(Some(t), Duration::from_secs(10))
            {
                Ok(md) => {
                    let n = md.topics().first().map_or(0, |m| m.partitions().len());
                    out.extend((0..n as i32).map(|p| (t.clone(), p)));
                }
                Err(e) => warn!(topic = %t, error = %e, "no metadata; partitions not assigned"),
            }
        }
        out
    }

    fn take(&self, fl: usize) {
        let Some(f) = self.config.fls.get(fl) else {
            warn!(partition = fl, "owners partition without a configured FL");
            return;
        };
        let client = crate::kafka::base_config(&self.config.kafka);
        let t0 = std::time::Instant::now();
        match crate::kafka::read_back::read_back_fl(
            &self.config,
            &client,
            &f.id,
            Duration::from_secs(30),
            Some((&self.forwards.consumer, &self.fl.consumer)),
        ) {
            Ok(records) => {
                let r = self.engine.add_previous(records);
                info!(fl = %f.id, forwarded = r.forwarded, answered = r.answered, router_errors = r.errors, ms = t0.elapsed().as_millis() as u64, "FL's history read back");
            }
            Err(e) => {
                warn!(fl = %f.id, error = %e, "FL's history not read back; commands its previous owner answered may be timed out again")
            }
        }
        // The engine owns the FL before its first message is read: a message handed to a
        // proxy that does not own its FL is dropped (and its offset released).
        if let Err(e) = self.engine.set_fl_owned(&f.id, true) {
            warn!(fl = %f.id, error = %e, "engine did not take the FL");
        }
        let t = &self.config.topics;
        for (hand, topics) in [
            (&self.fl, t.fl_write_topics(&f.id)),
            (&self.forwards, t.fl_read_topics(&f.id)),
        ] {
            let mut tpl = TopicPartitionList::new();
            for (topic, p) in self.partitions(&topics) {
                // From the committed offset, even if this process read the FL before: it
                // dropped that FL's commands when it gave it up.
                hand.tracker.forget(&topic, p);
                hand.tracker.assigned(&topic, p);
                let _ = tpl.add_partition_offset(&topic, p, Offset::Stored);
            }
            if let Err(e) = hand.consumer.incremental_assign(&tpl) {
                warn!(fl = %f.id, consumer = hand.name, error = %e, "cannot assign the FL's topics");
            }
        }
        if let Ok(mut o) = self.shares.owned.lock() {
            o.insert(f.id.clone());
        }
        info!(fl = %f.id, "FL owned here now");
        if self.config.sync.at_start {
            // What a single router does at its start, its new owner does for the FL.
            if let Err(e) = self.engine.sync_fl(&f.id) {
                warn!(fl = %f.id, error = %e, "no sync of the FL taken over");
            }
        }
    }

    /// Gives up every FL this instance owns (its membership is gone).
    fn give_all(&self) {
        let owned = self.shares.owned();
        for (i, f) in self.config.fls.iter().enumerate() {
            if owned.contains(&f.id) {
                self.give(i);
            }
        }
    }

    fn give(&self, fl: usize) {
        let Some(f) = self.config.fls.get(fl) else {
            return;
        };
        let t = &self.config.topics;
        for (hand, topics) in [
            (&self.fl, t.fl_write_topics(&f.id)),
            (&self.forwards, t.fl_read_topics(&f.id)),
        ] {
            commit(
                &*hand.consumer,
                &hand.tracker,
                hand.name,
                true,
                CommitMode::Sync,
            );
            let mut tpl = TopicPartitionList::new();
            for (topic, p) in self.partitions(&topics) {
                hand.tracker.revoke(&topic, p);
                tpl.add_partition(&topic, p);
            }
            if let Err(e) = hand.consumer.incremental_unassign(&tpl) {
                warn!(fl = %f.id, consumer = hand.name, error = %e, "cannot unassign the FL's topics");
            }
        }
        if let Err(e) = self.engine.set_fl_owned(&f.id, false) {
            warn!(fl = %f.id, error = %e, "engine did not give the FL up");
        }
        if let Ok(mut o) = self.shares.owned.lock() {
            o.remove(&f.id);
        }
        info!(fl = %f.id, "FL owned elsewhere now");
    }
}

struct OwnersContext(Arc<Owners>);

impl ClientContext for OwnersContext {}

impl ConsumerContext for OwnersContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let fls: Vec<usize> = tpl
            .elements()
            .iter()
            .map(|e| e.partition().max(0) as usize)
            .collect();
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                for fl in fls {
                    self.0.take(fl);
                }
                self.0.shares.assigned.store(true, SeqCst);
                consumer.incremental_assign(tpl)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                for fl in fls {
                    self.0.give(fl);
                }
                consumer.incremental_unassign(tpl)
            }
            other => {
                warn!(error = ?other, "owners group: rebalance error; giving every FL up");
                for fl in 0..self.0.config.fls.len() {
                    self.0.give(fl);
                }
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            warn!(error = %e, "owners group: (un)assign failed");
        }
    }
}

struct LeaderContext {
    engine: Engine,
    shares: Arc<Shares>,
}

impl ClientContext for LeaderContext {}

impl ConsumerContext for LeaderContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        // Cooperative: an assignment or revocation lists only what moves (possibly nothing).
        let lead = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                (tpl.count() > 0).then_some(true)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                (tpl.count() > 0).then_some(false)
            }
            _ => Some(false),
        };
        if let Some(lead) = lead {
            info!(leader = lead, "cluster leadership");
            self.shares.leader.store(lead, SeqCst);
            let _ = self.engine.set_leader(lead);
        }
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                consumer.incremental_assign(tpl)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                consumer.incremental_unassign(tpl)
            }
            _ => consumer.unassign(),
        };
        if let Err(e) = result {
            warn!(error = %e, "leader group: (un)assign failed");
        }
    }
}

/// Runs the owners and leader group memberships until `stop`; then leaves both (giving the
/// FLs and the leadership up in order).
pub fn start(
    config: &Config,
    engine: Engine,
    fl: Hand,
    forwards: Hand,
    shares: Arc<Shares>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let k = &config.kafka;
    let instance = config.instance_id();
    let group_config = |suffix: &str| {
        let mut c =
            crate::kafka::consumer_config(k, &format!("{}-{suffix}", k.group_id), Some(&instance));
        c.set("partition.assignment.strategy", "cooperative-sticky")
            // No messages, and no context here consumes statistics.
            .set("statistics.interval.ms", "0");
        c
    };
    let state = Arc::new(Owners {
        config: config.clone(),
        engine: engine.clone(),
        fl,
        forwards,
        shares: shares.clone(),
    });
    let (owners_config, owners_topic) =
        (group_config("owners"), config.cluster.owners_topic.clone());
    let st = state.clone();
    let join_owners = move || -> anyhow::Result<BaseConsumer<OwnersContext>> {
        let c: BaseConsumer<OwnersContext> =
            owners_config.create_with_context(OwnersContext(st.clone()))?;
        c.subscribe(&[owners_topic.as_str()])?;
        Ok(c)
    };
    let (leader_config, leader_topic) =
        (group_config("leader"), config.cluster.leader_topic.clone());
    let (e, sh) = (engine.clone(), shares.clone());
    let join_leader = move || -> anyhow::Result<BaseConsumer<LeaderContext>> {
        let c: BaseConsumer<LeaderContext> = leader_config.create_with_context(LeaderContext {
            engine: e.clone(),
            shares: sh.clone(),
        })?;
        c.subscribe(&[leader_topic.as_str()])?;
        Ok(c)
    };
    let mut owners = join_owners()?;
    let mut leader = join_leader()?;
    Ok(std::thread::Builder::new()
        .name("cluster-groups".into())
        .spawn(move || {
            while !stop.load(SeqCst) {
                // No messages: polling runs the rebalance callbacks and keeps the membership.
                let _ = owners.poll(Duration::from_millis(100));
                let _ = leader.poll(Duration::from_millis(1));
                // A static member fenced after its group coordinator moved (librdkafka keeps a
                // stale member id: apache/kafka#23542) is dead for good. Its share was given
                // up when its session timed out; give up what is left and join again with the
                // same instance id, which takes the share back.
                if let Some((_, reason)) = owners.client().fatal_error() {
                    error!(group = "owners", error = %reason, "cluster group membership lost; giving the FLs up and joining again");
                    state.give_all();
                    match join_owners() {
                        Ok(c) => owners = c,
                        Err(e) => {
                            warn!(error = %e, "cannot join the owners group again yet");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
                if let Some((_, reason)) = leader.client().fatal_error() {
                    error!(group = "leader", error = %reason, "cluster group membership lost; joining again");
                    shares.leader.store(false, SeqCst);
                    let _ = engine.set_leader(false);
                    match join_leader() {
                        Ok(c) => leader = c,
                        Err(e) => {
                            warn!(error = %e, "cannot join the leader group again yet");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
            }
            owners.unsubscribe();
            leader.unsubscribe();
            let _ = owners.poll(Duration::from_millis(500));
            let _ = leader.poll(Duration::from_millis(100));
        })?)
}
