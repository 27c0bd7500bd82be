//! This router instance among its peers: its identity in the consumer groups, the partitions
//! each group has given it, and a digest of the settings every instance of one router must
//! share. Several instances as one router are designed in `docs/design/cluster.md`; this is
//! the first step — what `GET /api/cluster` shows, and the digest instances will compare.

use std::hash::Hasher;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::config::Config;

pub mod collect;
pub mod lapse;
pub mod map_reader;
pub mod ownership;
pub mod peers;
use crate::cluster::ownership::Shares;
use crate::cluster::peers::Peer;
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
    /// A cluster instance: the FLs it owns and whether it leads.
    pub shares: Option<Arc<Shares>>,
    pub fls: Vec<String>,
    /// The running peers found at start and how their settings differ from this instance's.
    pub peers: Arc<Vec<Peer>>,
}

impl ClusterView {
    pub fn new(
        config: &Config,
        memberships: Vec<Membership>,
        shares: Option<Arc<Shares>>,
        peers: Arc<Vec<Peer>>,
    ) -> Self {
        Self {
            instance_id: config.instance_id(),
            digest: digest(config),
            memberships,
            shares,
            fls: config.fls.iter().map(|f| f.id.clone()).collect(),
            peers,
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
        let share = self.share();
        let mode = if self.shares.is_some() {
            "cluster"
        } else {
            "single"
        };
        // What runs here and nowhere else in the cluster.
        let mut duties: Vec<String> = share
            .fls_owned
            .iter()
            .map(|fl| {
                format!("FL {fl}: pending commands, answers, alive requests, outage decisions, sync sessions, switch events")
            })
            .collect();
        if share.leader {
            duties.push("leader: switch availability and unmanaged notices, active-FL decisions on the switch-map topic".into());
        }
        json!({
            "instance_id": self.instance_id,
            "config_digest": self.digest,
            "mode": mode,
            "leader": share.leader,
            "fls_owned": share.fls_owned,
            "command_partitions": share.command_partitions,
            "duties": duties,
            "groups": groups,
            "peers_at_start": *self.peers,
        })
    }

    /// What this instance holds now.
    pub fn share(&self) -> Share {
        let (leader, fls_owned) = match &self.shares {
            Some(sh) => (
                sh.leader.load(std::sync::atomic::Ordering::SeqCst),
                sh.owned(),
            ),
            None => (true, self.fls.clone()),
        };
        let command_partitions = self
            .memberships
            .iter()
            .filter(|m| m.consumer == "commands")
            .map(|m| m.tracker.assignment().len())
            .sum();
        Share {
            fls_owned,
            leader,
            command_partitions,
        }
    }
}

/// What one instance holds: its FLs, whether it leads, its command partitions.
#[derive(Debug, Default, Clone)]
pub struct Share {
    pub fls_owned: Vec<String>,
    pub leader: bool,
    pub command_partitions: usize,
}

/// A fingerprint of the settings that must be equal on every instance of one router (the
/// FLs and their order, topics and lanes, protocol dialect, failover, sync, timeouts, limits,
/// the group): 16 hex digits of FNV-1a over their canonical JSON (object keys sorted, so map
/// order cannot change it). Instance-local settings (brokers, instance id, admin, shards,
/// librdkafka options) are left out.
pub fn digest(config: &Config) -> String {
    let mut h = fnv::FnvHasher::default();
    h.write(canonical(&shared_settings(config)).as_bytes());
    format!("{:016x}", h.finish())
}

/// The settings every instance of one router must share, as JSON (what [`digest`] covers and
/// what an instance publishes for its peers to compare).
pub fn shared_settings(config: &Config) -> Value {
    json!({
        "group_id": config.kafka.group_id,
        "fls": config.fls,
        "topics": config.topics,
        "protocol": config.protocol,
        "failover": config.failover,
        "sync": config.sync,
        "timeouts": config.timeouts,
        "limits": config.limits,
    })
}

/// Shared settings that decide what the instances route where: if two running instances
/// disagree on them, commands go to different topics or FLs by the instance that reads them,
/// so an instance whose values differ from a running peer's is refused at start. The others
/// (timeouts, sync, failover, limits) may differ for the length of a rolling change: reported,
/// not refused.
pub const MUST_MATCH: &[&str] = &["group_id", "fls", "topics", "protocol"];

/// Where two instances' shared settings differ, as dotted keys (`timeouts.ack`,
/// `topics.lanes`), split into those that must match ([`MUST_MATCH`]) and the rest.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Differences {
    pub must_match: Vec<String>,
    pub may_differ: Vec<String>,
}

impl Differences {
    pub fn is_empty(&self) -> bool {
        self.must_match.is_empty() && self.may_differ.is_empty()
    }
}

/// Compares this instance's shared settings with a peer's (both from [`shared_settings`]).
pub fn compare(own: &Value, peer: &Value) -> Differences {
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let null = Value::Null;
                    let sub = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        &sub,
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        out,
                    );
                }
            }
            // Lists (the FLs, lanes) differ as a whole: order matters in them.
            _ if a != b => out.push(path.to_string()),
            _ => {}
        }
    }
    let mut keys = Vec::new();
    walk("", own, peer, &mut keys);
    let (must_match, may_differ) = keys.into_iter().partition(|k| {
        MUST_MATCH
            .iter()
            .any(|m| k == m || k.starts_with(&format!("{m}.")))
    });
    Differences {
        must_match,
        may_differ,
    }
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
        Config::parse(yaml, "test.yaml", Some("127.0.0.1:9092".into())).expect("valid config")
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
    fn differences_name_the_keys_and_which_must_match() {
        let base = "fls: [{id: a}, {id: b}]\n";
        let own = shared_settings(&config(base));
        assert!(compare(&own, &own).is_empty());
        let peer = shared_settings(&config(
            "fls: [{id: b}, {id: a}]\ntimeouts: {ack: 7s}\ntopics: {events: other.events}\n",
        ));
        let d = compare(&own, &peer);
        assert_eq!(d.must_match, ["fls", "topics.events"]);
        assert_eq!(d.may_differ, ["timeouts.ack"]);
        // A key only one side has (an older version's peer) is a difference too.
        let mut older = own.clone();
        older["sync"].as_object_mut().unwrap().remove("retries");
        assert_eq!(compare(&own, &older).may_differ, ["sync.retries"]);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": 2}});
        assert_eq!(canonical(&v), r#"{"a":{"c":2,"d":[{"y":2,"z":1}]},"b":1}"#);
    }
}
