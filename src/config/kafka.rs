//! `kafka`: brokers, groups, topic creation and the librdkafka options passed through.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`, or `embedded`; `FLROUTER_KAFKA_BROKERS` overrides it.
    pub brokers: String,
    /// Consumer group of the command consumer; the FL consumer uses `<group_id>-fl`.
    pub group_id: String,
    /// This router instance's stable identity in its groups (static membership,
    /// `group.instance.id`): a restarted router takes its partitions back at once instead of
    /// waiting for its old member's session to expire. Default: the host name. Two running
    /// instances of one group must not share it (the broker fences the older one).
    pub instance_id: Option<String>,
    /// Create missing topics at start; when false, a missing topic is a start-up error.
    pub create_topics: bool,
    pub topic_partitions: i32,
    pub topic_replication: i32,
    /// How often stored offsets are committed.
    #[serde(with = "humantime_serde")]
    pub commit_interval: Duration,
    /// On shutdown, how long to wait for pending commands to be answered before committing.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// At start, how long (after the FL consumer gets its partitions) command routing waits for
    /// the FL topics' backlog (switch events) to be read, so the switch map is warm first.
    #[serde(with = "humantime_serde")]
    pub catch_up_timeout: Duration,
    /// Attempts for a message whose delivery failed before it is dead-lettered.
    pub produce_retries: u32,
    /// Commands in the router's care (read, final answer not yet delivered) at which it stops
    /// reading more until answers drain; 0 = no bound.
    pub max_inflight_commands: usize,
    /// librdkafka options for every client (passed through unchanged).
    pub options: BTreeMap<String, String>,
    /// librdkafka options for the consumers only.
    pub consumer: BTreeMap<String, String>,
    /// librdkafka options for the producer only.
    pub producer: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            group_id: "fl-router".into(),
            instance_id: None,
            create_topics: true,
            topic_partitions: 1,
            topic_replication: 1,
            commit_interval: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(10),
            catch_up_timeout: Duration::from_secs(10),
            produce_retries: 5,
            max_inflight_commands: 20_000,
            options: BTreeMap::new(),
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
        }
    }
}

/// Options the router sets itself; overriding them would break its delivery guarantees.
pub(crate) const RESERVED: &[(&str, &str)] = &[
    (
        "enable.auto.commit",
        "offsets are committed by the router after delivery",
    ),
    (
        "enable.auto.offset.store",
        "offsets are stored by the router after delivery",
    ),
    ("group.id", "use kafka.group_id"),
    ("group.instance.id", "use kafka.instance_id"),
    (
        "bootstrap.servers",
        "use kafka.brokers or FLROUTER_KAFKA_BROKERS",
    ),
    ("enable.idempotence", "the producer is always idempotent"),
];
