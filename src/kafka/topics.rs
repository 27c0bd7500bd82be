//! Makes sure every topic the router reads or writes exists: created when `kafka.create_topics`
//! is set, else a start-up error naming each missing topic.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use tracing::{info, warn};

use crate::config::Config;

/// Every topic named by the configuration (reply-to topics from headers are the sender's).
pub fn all_topics(config: &Config) -> BTreeSet<String> {
    let t = &config.topics;
    let mut set: BTreeSet<String> = t.command_topics().into_iter().collect();
    for fl in &config.fls {
        set.extend(t.fl_read_topics(&fl.id));
        set.extend(t.fl_write_topics(&fl.id));
        set.insert(t.control_topic(&fl.id));
    }
    set.extend(t.output_lanes().into_iter().filter_map(|l| l.to));
    set.insert(t.events.clone());
    set.insert(t.notices_topic().to_string());
    set.insert(t.default_reply.clone());
    set.insert(t.dead_letter.clone());
    set.insert(t.switch_map.clone());
    set.insert(t.journal.clone());
    set.extend(t.by_class.values().cloned());
    if config.cluster.enabled {
        set.insert(config.cluster.owners_topic.clone());
        set.insert(config.cluster.leader_topic.clone());
        set.insert(config.cluster.collect_topic_of(&config.instance_id()));
        if !config.cluster.lapse.is_zero() {
            set.insert(config.cluster.heartbeat_topic.clone());
        }
    }
    set
}

/// Creates (or, with `kafka.create_topics: false`, checks) `wanted`.
pub async fn ensure(
    config: &Config,
    client: &ClientConfig,
    wanted: &BTreeSet<String>,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client.create()?;
    let md = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| anyhow::anyhow!("cannot reach Kafka at {}: {e}", config.kafka.brokers))?;
    let existing: BTreeSet<String> = md.topics().iter().map(|t| t.name().to_string()).collect();
    if config.cluster.enabled {
        let c = &config.cluster;
        for t in md.topics() {
            if t.name() == c.owners_topic && t.partitions().len() != config.fls.len() {
                anyhow::bail!(
                    "cluster.owners_topic: {} has {} partitions; it needs one per configured FL ({})",
                    c.owners_topic,
                    t.partitions().len(),
                    config.fls.len()
                );
            }
        }
    }
    let switch_map = &config.topics.switch_map;
    let missing: Vec<&String> = wanted.difference(&existing).collect();
    if missing.is_empty() {
        if existing.contains(switch_map) {
            check_compacted(&admin, switch_map).await;
        }
        return Ok(());
    }
    if !config.kafka.create_topics {
        anyhow::bail!(
            "missing Kafka topics (kafka.create_topics is false): {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let new: Vec<NewTopic> = missing
        .iter()
        .map(|name| {
            // The cluster's assignment topics: one partition per FL, and one.
            let partitions = if **name == config.cluster.owners_topic {
                config.fls.len() as i32
            } else if **name == config.cluster.leader_topic
                || **name == config.cluster.heartbeat_topic
                || **name == config.cluster.collect_topic_of(&config.instance_id())
            {
                1
            } else {
                config.kafka.topic_partitions
            };
            let topic = NewTopic::new(
                name,
                partitions,
                TopicReplication::Fixed(config.kafka.topic_replication),
            );
            // The switch map is a table: the latest value per switch is all that matters.
            if **name == config.topics.switch_map {
                topic.set("cleanup.policy", "compact")
            } else if **name == config.cluster.heartbeat_topic {
                // Only the last seconds matter.
                topic.set("retention.ms", "600000")
            } else if **name == config.topics.journal {
                // Read back only for the last minutes after a restart.
                topic.set("retention.ms", "3600000")
            } else {
                topic
            }
        })
        .collect();
    let results = admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    let mut created = Vec::new();
    // Made before (seen now, or by someone else meanwhile): its cleanup policy is not ours.
    let mut made_before = existing.contains(switch_map);
    for r in results {
        match r {
            Ok(name) => created.push(name),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                made_before |= name == *switch_map;
            }
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    // One line for the lot: an operator needs to know they were made, not one line each.
    if !created.is_empty() {
        info!(count = created.len(), topics = %created.join(", "), "topics created");
    }
    if made_before {
        check_compacted(&admin, switch_map).await;
    }
    Ok(())
}

/// Warns, saying what to do, when the switch-map topic (a table: the latest value per switch)
/// exists without compaction: deleted by retention, the stored map would lose switches.
async fn check_compacted(admin: &AdminClient<DefaultClientContext>, topic: &str) {
    use rdkafka::admin::ResourceSpecifier;
    let described = admin
        .describe_configs(
            &[ResourceSpecifier::Topic(topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await;
    let policy = described.ok().and_then(|rs| {
        rs.into_iter()
            .next()?
            .ok()?
            .get("cleanup.policy")?
            .value
            .clone()
    });
    match policy {
        Some(p) if p.split(',').any(|x| x.trim() == "compact") => {}
        Some(p) => warn!(
            topic,
            cleanup_policy = %p,
            "topics.switch_map is not compacted: retention will delete stored switches; run \
             kafka-configs.sh --alter --entity-type topics --entity-name <topic> \
             --add-config cleanup.policy=compact"
        ),
        None => warn!(
            topic,
            "cannot read topics.switch_map's cleanup.policy; it must be compact"
        ),
    }
}
