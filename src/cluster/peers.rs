//! A cluster instance checks its settings against its running peers' before it joins
//! (`docs/design/cluster.md`, "What must be equal"): every instance publishes its shared
//! settings on the switch-map topic under `instance/<id>` (compacted, so the latest per
//! instance stays), and at start reads its peers' records. A peer counts while it is a member
//! of the owners group (its consumers carry `client.id` `fl-router.<id>`), so the records of
//! instances that are gone — or were stopped for a config change — never block a start.
//!
//! An instance whose routing settings ([`cluster::MUST_MATCH`]) differ from a running peer's
//! refuses to start, naming the keys and the peer; other differences (timeouts, sync, failover,
//! limits: a rolling change in progress) are logged and shown on `/api/cluster`.

use std::time::Duration;

use anyhow::bail;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::cluster::{self, Differences};
use crate::config::Config;

/// Key prefix of the instance records on the switch-map topic.
pub const KEY_PREFIX: &str = "instance/";

const TIMEOUT: Duration = Duration::from_secs(30);

/// What an instance publishes about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Announcement {
    pub instance: String,
    pub digest: String,
    pub settings: Value,
    pub at_ms: u64,
}

/// A running peer and how its settings differ from this instance's.
#[derive(Debug, Serialize)]
pub struct Peer {
    pub instance: String,
    pub digest: String,
    pub differences: Differences,
}

/// Reads the running peers' records, refuses a start whose routing settings differ from one
/// of theirs, then publishes this instance's record. Returns the peers (for `/api/cluster`).
pub async fn check_and_announce(config: &Config) -> anyhow::Result<Vec<Peer>> {
    let me = config.instance_id();
    let own = cluster::shared_settings(config);
    let client = crate::kafka::base_config(&config.kafka);
    let (topic, group) = (
        config.topics.switch_map.clone(),
        format!("{}-owners", config.kafka.group_id),
    );
    let (running, records) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        Ok((
            running(&client, &group)?,
            crate::kafka::compacted::read(&client, &topic, TIMEOUT)?,
        ))
    })
    .await??;
    let mut peers = Vec::new();
    for (key, value) in records {
        let Some(id) = key.strip_prefix(KEY_PREFIX.as_bytes()) else {
            continue;
        };
        let id = String::from_utf8_lossy(id).into_owned();
        if id == me || !running.contains(&id) {
            continue;
        }
        let Ok(peer) = serde_json::from_slice::<Announcement>(&value) else {
            warn!(peer = %id, "unreadable instance record on the switch-map topic; not compared");
            continue;
        };
        peers.push(Peer {
            differences: cluster::compare(&own, &peer.settings),
            instance: id,
            digest: peer.digest,
        });
    }
    peers.sort_by(|a, b| a.instance.cmp(&b.instance));
    for p in &peers {
        let d = &p.differences;
        if !d.must_match.is_empty() {
            bail!(
                "cluster: settings {} differ from running instance {}'s; every instance must \
                 route alike (set them equal, or stop all instances to change them)",
                d.must_match.join(", "),
                p.instance
            );
        }
        if !d.may_differ.is_empty() {
            warn!(peer = %p.instance, keys = %d.may_differ.join(", "),
                  "settings differ from a running instance's (a rolling change?)");
        }
    }
    announce(config, &me, own).await?;
    info!(
        peers = peers.len(),
        "cluster settings checked against the running instances"
    );
    Ok(peers)
}

/// The instance ids of the owners group's members.
fn running(client: &rdkafka::ClientConfig, group: &str) -> anyhow::Result<Vec<String>> {
    let consumer: BaseConsumer = crate::kafka::compacted::reader(client)?;
    let deadline = std::time::Instant::now() + TIMEOUT;
    let list = while_coordinator_moves(deadline, Duration::from_millis(200), || {
        consumer.fetch_group_list(Some(group), TIMEOUT)
    })?;
    Ok(list
        .groups()
        .iter()
        .flat_map(|g| g.members())
        .filter_map(|m| m.client_id().strip_prefix(crate::kafka::CLIENT_ID_PREFIX))
        .map(str::to_string)
        .collect())
}

/// Calls `ask` again, `pause` apart until `deadline`, while it fails because the group's
/// coordinator is only loading or moving (a broker just started or just lost leadership): that
/// is a wait, not a reason to refuse the start. Any other error is returned at once.
fn while_coordinator_moves<T>(
    deadline: std::time::Instant,
    pause: Duration,
    mut ask: impl FnMut() -> rdkafka::error::KafkaResult<T>,
) -> rdkafka::error::KafkaResult<T> {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    loop {
        match ask() {
            Err(KafkaError::GroupListFetch(
                code @ (RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator),
            )) if std::time::Instant::now() < deadline => {
                debug!(error = ?code, "group coordinator not ready; asking again");
                std::thread::sleep(pause);
            }
            r => return r,
        }
    }
}

async fn announce(config: &Config, me: &str, settings: Value) -> anyhow::Result<()> {
    let record = Announcement {
        instance: me.to_string(),
        digest: cluster::digest(config),
        settings,
        at_ms: fl_router_actors::runtime::clock::now_millis(),
    };
    let producer: FutureProducer = crate::kafka::producer_config(&config.kafka).create()?;
    let key = format!("{KEY_PREFIX}{me}");
    let payload = serde_json::to_vec(&record)?;
    producer
        .send(
            FutureRecord::to(&config.topics.switch_map)
                .key(&key)
                .payload(&payload),
            TIMEOUT,
        )
        .await
        .map_err(|(e, _)| anyhow::anyhow!("cannot publish this instance's settings: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use std::time::Instant;

    fn failing(
        code: RDKafkaErrorCode,
        times: usize,
    ) -> impl FnMut() -> rdkafka::error::KafkaResult<usize> {
        let mut calls = 0;
        move || {
            calls += 1;
            if calls <= times {
                Err(KafkaError::GroupListFetch(code))
            } else {
                Ok(calls)
            }
        }
    }

    #[test]
    fn a_coordinator_still_loading_is_asked_again_not_a_failed_start() {
        let later = Instant::now() + Duration::from_secs(10);
        let pause = Duration::from_millis(1);
        let r = while_coordinator_moves(
            later,
            pause,
            failing(RDKafkaErrorCode::CoordinatorLoadInProgress, 3),
        );
        assert_eq!(r.ok(), Some(4), "answered at the fourth call");
        let r = while_coordinator_moves(later, pause, failing(RDKafkaErrorCode::NotCoordinator, 1));
        assert_eq!(r.ok(), Some(2));
    }

    #[test]
    fn other_errors_and_a_passed_deadline_end_the_asking() {
        let later = Instant::now() + Duration::from_secs(10);
        let pause = Duration::from_millis(1);
        let r = while_coordinator_moves(
            later,
            pause,
            failing(RDKafkaErrorCode::GroupAuthorizationFailed, 1),
        );
        assert!(r.is_err(), "not a coordinator that moves: no second call");
        let r = while_coordinator_moves(
            Instant::now(),
            pause,
            failing(RDKafkaErrorCode::CoordinatorLoadInProgress, 1_000_000),
        );
        assert!(r.is_err(), "past the deadline the error stands");
    }
}
