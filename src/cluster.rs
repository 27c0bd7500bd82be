//! This router instance among its peers: its identity in the consumer groups, the partitions
//! each group has given it, and a digest of the settings every instance of one router must
//! share. Several instances as one router are designed in `docs/design/cluster.md`; this is
//! the first step — what `GET /api/cluster` shows, and the digest instances will compare.

use std::hash::Hasher;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::kafka::offsets::OffsetTracker;

/// One consumer of this instance and its group.
pub struct Membership {
    pub group: String,
    /// What the consumer reads: `commands` or `fl`.
    pub consumer: &'static str,
    pub tracker: Arc<OffsetTracker>,
}

/// What `/api/cluster` reports for this instance.
pub struct ClusterView {
    pub instance_id: String,
    pub digest: String,
    pub memberships: Vec<Membership>,
}

impl ClusterView {
    pub fn new(config: &Config, memberships: Vec<Membership>) -> Self {
        Self {
            instance_id: config.instance_id(),
            digest: digest(config),
            memberships,
        }
    }

    pub fn snapshot(&self) -> Value {
        let groups: Vec<Value> = self
            .memberships
            .iter()
            .map(|m| {
                let partitions: Vec<Value> = m
                    .tracker
                    .assignment()
                    .into_iter()
                    .map(|(topic, partition)| json!({"topic": topic, "partition": partition}))
                    .collect();
                json!({"group": m.group, "consumer": m.consumer, "partitions": partitions})
            })
            .collect();
        json!({
            "instance_id": self.instance_id,
            "config_digest": self.digest,
            // One instance holds every duty until the cluster design's step 2 lands.
            "mode": "single",
            "leader": true,
            "groups": groups,
        })
    }
}

/// A fingerprint of the settings that must be equal on every instance of one router (the
/// FLs and their order, topics and lanes, protocol dialect, failover, sync, timeouts, limits,
/// the group): 16 hex digits of FNV-1a over their canonical JSON (object keys sorted, so map
/// order cannot change it). Instance-local settings (brokers, instance id, admin, shards,
/// librdkafka options) are left out.
pub fn digest(config: &Config) -> String {
    let shared = json!({
        "group_id": config.kafka.group_id,
        "fls": config.fls,
        "topics": config.topics,
        "protocol": config.protocol,
        "failover": config.failover,
        "sync": config.sync,
        "timeouts": config.timeouts,
        "limits": config.limits,
    });
    let mut h = fnv::FnvHasher::default();
    h.write(canonical(&shared).as_bytes());
    format!("{:016x}", h.finish())
}

/// JSON with every object's keys sorted, whatever map type serialized it.
fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // `Map` keeps insertion order only with serde_json's `preserve_order`; sorting on insert
    // makes the text the same either way.
    sorted(v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        Config::parse(yaml, "test.yaml", None).expect("valid config")
    }

    #[test]
    fn digest_follows_shared_settings_only() {
        let base = "fls: [{id: a}, {id: b}]\n";
        let a = digest(&config(base));
        assert_eq!(a.len(), 16);
        assert_eq!(a, digest(&config(base)), "stable");
        // Instance-local settings do not change it...
        let local =
            format!("{base}kafka: {{instance_id: other, brokers: 'h:1'}}\nengine: {{shards: 3}}\n");
        assert_eq!(a, digest(&config(&local)));
        // ...shared ones do, FL order included.
        assert_ne!(a, digest(&config("fls: [{id: b}, {id: a}]\n")));
        assert_ne!(
            a,
            digest(&config(&format!("{base}timeouts: {{ack: 7s}}\n")))
        );
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": 2}});
        assert_eq!(canonical(&v), r#"{"a":{"c":2,"d":[{"y":2,"z":1}]},"b":1}"#);
    }
}
