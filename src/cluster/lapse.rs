//! A dead instance's work moves in about `cluster.lapse`, not after its session timeout.
//!
//! Every instance writes a heartbeat record to `cluster.heartbeat_topic` every quarter of
//! `cluster.lapse` (key `<group_id>/<instance_id>`) and reads everyone's. A peer heard in this
//! incarnation and then silent for `cluster.lapse` is removed at once, by its
//! `group.instance.id`, from the groups a cluster instance is a static member of (`<group_id>`,
//! `<group_id>-owners`, `<group_id>-leader`): KIP-345's LeaveGroup, what Java's
//! `Admin.removeMembersFromConsumerGroup` sends (`kafka::group_admin`). Each group rebalances
//! then and the survivors take the commands, FLs and leadership over as they would after the
//! session timeout. Kafka decides who owns what, as before; the heartbeat only says when to ask
//! it. Every survivor may send the removal; the second finds no member and says so.
//!
//! A false suspicion (a paused instance, a slow network) costs a rebalance: the removed
//! instance's consumers learn at their next heartbeat to the coordinator that they are out
//! (`UNKNOWN_MEMBER_ID`), lose their assignment (`assignment_lost`: the ownership code gives
//! its FLs up) and join again. What fences its writes meanwhile is in docs/design/cluster.md.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::config::Config;
use crate::kafka::group_admin::{self, Removed};

/// One heartbeat record's value.
#[derive(Debug, Serialize, Deserialize)]
struct Beat {
    instance: String,
    /// The writer's interval, for a reader's log.
    every_ms: u64,
}

/// Whether this configuration runs the lapse watch, and if not, why (logged once).
pub fn enabled(config: &Config) -> Result<(), &'static str> {
    if !config.cluster.enabled || config.cluster.lapse.is_zero() {
        return Err("cluster.lapse is 0s");
    }
    let k = &config.kafka;
    let protocol = k
        .options
        .get("security.protocol")
        .or_else(|| k.consumer.get("security.protocol"))
        .map(|p| p.to_ascii_lowercase());
    match protocol.as_deref() {
        None | Some("plaintext") => Ok(()),
        Some(_) => Err("the removal speaks plaintext Kafka only"),
    }
}

/// Starts the heartbeat writer and the watch on `background`.
pub fn start(config: &Config, background: &mut JoinSet<()>) -> anyhow::Result<()> {
    if let Err(why) = enabled(config) {
        if config.cluster.enabled && !config.cluster.lapse.is_zero() {
            warn!(
                why,
                "cluster.lapse off: a dead instance's work moves after its session timeout"
            );
        }
        return Ok(());
    }
    let k = &config.kafka;
    let lapse = config.cluster.lapse;
    let every = lapse / 4;
    let instance = config.instance_id();
    let topic = config.cluster.heartbeat_topic.clone();
    let prefix = format!("{}/", k.group_id);
    let producer: ThreadedProducer<DefaultProducerContext> = {
        let mut c = crate::kafka::for_producer(&crate::kafka::base_config(k));
        c.set("linger.ms", "0").set(
            "message.timeout.ms",
            lapse.as_millis().max(1000).to_string(),
        );
        c.create()?
    };
    let consumer: StreamConsumer = {
        let mut c = crate::kafka::base_config(k);
        c.set(
            "group.id",
            format!(
                "flrouter-lapse-{instance}-{}",
                uuid::Uuid::new_v4().simple()
            ),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", every.as_millis().max(10).to_string());
        c.create()?
    };
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::End)?;
    consumer.assign(&tpl)?;
    let groups = vec![
        k.group_id.clone(),
        format!("{}-owners", k.group_id),
        format!("{}-leader", k.group_id),
    ];
    info!(lapse = %humantime::format_duration(lapse), topic = %topic, "cluster.lapse: a silent peer is taken out of the groups after this");
    let key = format!("{prefix}{instance}");
    background.spawn(beat(producer, topic, key, instance.clone(), every));
    let watch = Watch {
        me: instance,
        prefix,
        lapse,
        groups,
        brokers: k.brokers.clone(),
        heard: HashMap::new(),
    };
    // Checked twice per heartbeat: a lapse is seen at most an eighth of it late.
    background.spawn(watch.run(Arc::new(consumer), every / 2));
    Ok(())
}

/// Writes this instance's heartbeat every `every`.
async fn beat(
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
    key: String,
    instance: String,
    every: Duration,
) {
    let value = serde_json::to_vec(&Beat {
        instance,
        every_ms: every.as_millis() as u64,
    })
    .unwrap_or_default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err((e, _)) = producer.send(BaseRecord::to(&topic).key(&key).payload(&value)) {
            warn!(error = %e, "heartbeat not sent");
        }
    }
}

/// A peer as this instance heard it.
struct Peer {
    last: Instant,
    /// Removed from the groups since it was last heard.
    removed: bool,
}

struct Watch {
    me: String,
    prefix: String,
    lapse: Duration,
    groups: Vec<String>,
    brokers: String,
    heard: HashMap<String, Peer>,
}

impl Watch {
    async fn run(mut self, consumer: Arc<StreamConsumer>, every: Duration) {
        let mut check = tokio::time::interval(every);
        loop {
            tokio::select! {
                m = consumer.recv() => match m {
                    Ok(m) => self.heard(m.key().unwrap_or_default()),
                    Err(e) => warn!(error = %e, "heartbeat topic"),
                },
                _ = check.tick() => self.check().await,
            }
        }
    }

    fn heard(&mut self, key: &[u8]) {
        let Some(id) = std::str::from_utf8(key)
            .ok()
            .and_then(|k| k.strip_prefix(&self.prefix))
        else {
            return; // another deployment's
        };
        if id == self.me {
            return;
        }
        let now = Instant::now();
        match self.heard.get_mut(id) {
            Some(p) => {
                if p.removed {
                    info!(peer = id, "cluster: a removed peer is heard again");
                }
                p.last = now;
                p.removed = false;
            }
            None => {
                info!(peer = id, "cluster: peer heard");
                self.heard.insert(
                    id.to_string(),
                    Peer {
                        last: now,
                        removed: false,
                    },
                );
            }
        }
    }

    async fn check(&mut self) {
        let lapsed: Vec<String> = self
            .heard
            .iter()
            .filter(|(_, p)| !p.removed && p.last.elapsed() >= self.lapse)
            .map(|(id, _)| id.clone())
            .collect();
        for peer in lapsed {
            let silent = self.heard.get(&peer).map(|p| p.last.elapsed());
            warn!(peer = %peer, silent_ms = silent.map(|d| d.as_millis() as u64), "cluster: peer silent past cluster.lapse; removing it from the groups");
            let done = self.remove(&peer).await;
            if let Some(p) = self.heard.get_mut(&peer) {
                p.removed = done;
            }
        }
    }

    /// Removes `peer` from every group; true when every group answered (removed or not a
    /// member). A transient failure is tried again at the next check.
    async fn remove(&self, peer: &str) -> bool {
        let mut all = true;
        for group in &self.groups {
            let (brokers, g, p, me) = (
                self.brokers.clone(),
                group.clone(),
                peer.to_string(),
                format!("fl-router.{}.lapse", self.me),
            );
            let t0 = Instant::now();
            let r = tokio::task::spawn_blocking(move || {
                group_admin::remove_static_member(&brokers, &g, &p, &me, Duration::from_secs(2))
            })
            .await;
            match r {
                Ok(Ok(Removed::Removed)) => {
                    info!(peer, group = %group, took_ms = t0.elapsed().as_millis() as u64, "cluster: removed a silent peer from a group")
                }
                Ok(Ok(Removed::NotAMember)) => {
                    info!(peer, group = %group, "cluster: the silent peer is no member of the group (gone already)")
                }
                Ok(Err(e)) => {
                    all &= !e.is_transient();
                    warn!(peer, group = %group, error = %e, "cluster: removing a silent peer failed")
                }
                Err(e) => {
                    all = false;
                    warn!(peer, error = %e, "cluster: removal task failed")
                }
            }
        }
        all
    }
}
