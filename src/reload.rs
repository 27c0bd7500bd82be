//! Changing the FL list of a running router: `SIGHUP`, or `POST /api/reload` with the admin
//! token, reads the configuration file again. Only `fls` may differ from the running
//! configuration (regions added, removed, or their settings changed); a change to anything
//! else is refused, naming the keys, and the router goes on as it was. An accepted change is
//! applied by draining the engine and the consumers (as at shutdown: no new commands, pending
//! ones answered or timed out, offsets committed) and starting them again in-process with the
//! new list: the process, its admin API and metrics stay; the switch map comes back from its
//! compacted topic and commands not yet committed are read again (see "What a restart does").
//! In a cluster `fls` must be equal on every instance: refused there.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::config::{Config, ConfigError};

/// A reload asked for; `reply` (the admin call's) gets the plan or why it was refused.
pub struct Request {
    pub reply: Option<oneshot::Sender<Result<Plan, ReloadError>>>,
    /// Who asked: `SIGHUP` or `admin API` (for the log).
    pub source: &'static str,
}

/// What a reload changes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Plan {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// FLs kept whose settings (region, …) changed.
    pub changed: Vec<String>,
    /// The FL list after the reload, in order.
    pub fls: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(String),
    #[error("cannot change without a restart: {} (a reload changes fls only; restart the router for these)", .0.join(", "))]
    Fixed(Vec<String>),
    #[error("in a cluster, fls must be the same on every instance: stop them all, change fls, start them")]
    Cluster,
    #[error("nothing to reload: fls are as they run now")]
    Unchanged,
    #[error("no configuration file to read again (the router was started without one)")]
    NoFile,
}

impl From<ConfigError> for ReloadError {
    fn from(e: ConfigError) -> Self {
        ReloadError::Config(e.to_string())
    }
}

/// Reads `path` again and checks it against the running `current`.
pub fn prepare(current: &Config, path: Option<&Path>) -> Result<(Config, Plan), ReloadError> {
    let path = path.ok_or(ReloadError::NoFile)?;
    let next = Config::load(path)?;
    let plan = plan(current, &next)?;
    Ok((next, plan))
}

/// What changes from `current` to `next`, or why it cannot change live.
pub fn plan(current: &Config, next: &Config) -> Result<Plan, ReloadError> {
    let (a, b) = (as_map(current)?, as_map(next)?);
    let mut fixed: Vec<String> = Vec::new();
    for key in a.keys().chain(b.keys()) {
        if key == "fls" || fixed.contains(key) {
            continue;
        }
        let (x, y) = (a.get(key), b.get(key));
        if x != y {
            // Name the leaves that differ (kafka.group_id, not just kafka).
            differing(
                key,
                x.unwrap_or(&Value::Null),
                y.unwrap_or(&Value::Null),
                &mut fixed,
            );
        }
    }
    if !fixed.is_empty() {
        fixed.sort();
        fixed.dedup();
        return Err(ReloadError::Fixed(fixed));
    }
    let id = |c: &Config| c.fls.iter().map(|f| f.id.clone()).collect::<Vec<_>>();
    let (was, now) = (id(current), id(next));
    let plan = Plan {
        added: now.iter().filter(|f| !was.contains(f)).cloned().collect(),
        removed: was.iter().filter(|f| !now.contains(f)).cloned().collect(),
        changed: next
            .fls
            .iter()
            .filter(|n| {
                current.fls.iter().any(|c| {
                    c.id == n.id && serde_json::to_value(c).ok() != serde_json::to_value(*n).ok()
                })
            })
            .map(|f| f.id.clone())
            .collect(),
        fls: now.clone(),
    };
    if plan.added.is_empty() && plan.removed.is_empty() && plan.changed.is_empty() && was == now {
        return Err(ReloadError::Unchanged);
    }
    if current.cluster.enabled {
        return Err(ReloadError::Cluster);
    }
    Ok(plan)
}

fn as_map(c: &Config) -> Result<serde_json::Map<String, Value>, ReloadError> {
    match serde_json::to_value(c) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ReloadError::Config("configuration is not a map".into())),
        Err(e) => Err(ReloadError::Config(e.to_string())),
    }
}

fn differing(path: &str, x: &Value, y: &Value, out: &mut Vec<String>) {
    match (x, y) {
        (Value::Object(a), Value::Object(b)) => {
            for k in a.keys().chain(b.keys()) {
                let (p, q) = (a.get(k), b.get(k));
                if p != q {
                    differing(
                        &format!("{path}.{k}"),
                        p.unwrap_or(&Value::Null),
                        q.unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
        }
        _ => out.push(path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!("kafka: {{brokers: '127.0.0.1:9092'}}\nfls: [{{id: fl1}}]\n{extra}");
        Config::parse(&text, "test.yaml", Some("127.0.0.1:9092".into())).expect("valid")
    }

    fn with_fls(fls: &str, extra: &str) -> Config {
        let kafka = if extra.contains("kafka:") {
            ""
        } else {
            "kafka: {brokers: '127.0.0.1:9092'}"
        };
        let text = format!("{kafka}\nfls: {fls}\n{extra}");
        Config::parse(&text, "test.yaml", Some("127.0.0.1:9092".into())).expect("valid")
    }

    #[test]
    fn an_added_and_a_removed_fl_are_planned() {
        let p = plan(&config(""), &with_fls("[{id: fl2}, {id: fl3}]", "")).unwrap();
        assert_eq!(p.added, ["fl2", "fl3"]);
        assert_eq!(p.removed, ["fl1"]);
        assert_eq!(p.fls, ["fl2", "fl3"]);
    }

    #[test]
    fn anything_else_is_refused_naming_the_keys() {
        let e = plan(
            &config(""),
            &with_fls(
                "[{id: fl1}, {id: fl2}]",
                "kafka: {brokers: '127.0.0.1:9092', group_id: other}\ntimeouts: {ack: 9s}",
            ),
        )
        .unwrap_err();
        assert!(
            // The state topics are named after the group: they change with it.
            matches!(&e, ReloadError::Fixed(keys) if keys == &["kafka.group_id", "timeouts.ack", "topics.journal", "topics.switch_map"]),
            "{e}"
        );
    }

    #[test]
    fn the_same_list_is_nothing_to_reload() {
        assert!(matches!(
            plan(&config(""), &config("")),
            Err(ReloadError::Unchanged)
        ));
    }
}
