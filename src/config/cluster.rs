//! `cluster`: several router instances as one router (`docs/design/cluster.md`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Run as one instance of a cluster: FLs owned by assignment, commands adopted by their
    /// FL's owner from its read topic, one switch map over the switch-map topic, one leader.
    /// Every instance needs the same settings (`/api/cluster` shows their digest) and its own
    /// `kafka.instance_id`.
    pub enabled: bool,
    /// One partition per configured FL, no messages: in group `<kafka.group_id>-owners`,
    /// whoever is assigned partition *f* owns FL *f* (in `fls` order).
    pub owners_topic: String,
    /// One partition, no messages: whoever is assigned it in group `<kafka.group_id>-leader`
    /// leads (announces map changes, writes the decisions).
    pub leader_topic: String,
    /// Each instance reads `<collect_topic>.<kafka.instance_id>` (created at its start, one
    /// partition): its multi-switch commands' parts' results, sent by their FLs' owners.
    pub collect_topic: String,
    /// A peer whose heartbeat is this late is removed from the groups at once (its work is
    /// taken over without waiting for its session timeout); 0s = off. Heartbeats go out
    /// every quarter of it (`src/cluster/lapse.rs`).
    #[serde(with = "humantime_serde")]
    pub lapse: std::time::Duration,
    /// Every instance's heartbeat records (key `<group_id>/<instance_id>`), one partition.
    pub heartbeat_topic: String,
}

impl ClusterConfig {
    /// This instance's collect topic.
    pub fn collect_topic_of(&self, instance: &str) -> String {
        format!("{}.{instance}", self.collect_topic)
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            owners_topic: "kilda.flrouter.owners".into(),
            leader_topic: "kilda.flrouter.leader".into(),
            collect_topic: "kilda.flrouter.collect".into(),
            lapse: std::time::Duration::from_secs(1),
            heartbeat_topic: "kilda.flrouter.heartbeats".into(),
        }
    }
}

impl ClusterConfig {
    /// Problems, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (key, topic) in [
            ("cluster.owners_topic", &self.owners_topic),
            ("cluster.leader_topic", &self.leader_topic),
            ("cluster.collect_topic", &self.collect_topic),
            ("cluster.heartbeat_topic", &self.heartbeat_topic),
        ] {
            if topic.trim().is_empty() {
                out.push(format!("{key}: must not be empty"));
            }
        }
        if !self.lapse.is_zero() && self.lapse < std::time::Duration::from_millis(200) {
            out.push(format!(
                "cluster.lapse: {} is shorter than 200ms (heartbeats every {}); use 0s to turn it off",
                humantime::format_duration(self.lapse),
                humantime::format_duration(self.lapse / 4)
            ));
        }
        if self.owners_topic == self.leader_topic {
            out.push("cluster.leader_topic: must differ from cluster.owners_topic".into());
        }
        out
    }
}
