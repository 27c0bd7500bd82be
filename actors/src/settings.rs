//! The engine's settings: topics, FL instances, timeouts, protocol dialect and limits.
//!
//! These types are the schema of the matching sections of `config.yaml` (the shell adds the
//! Kafka section). Every struct rejects unknown keys and has the brief's defaults, so an empty
//! section is valid and a typo is an error that names the key. [`Settings::validate`] checks
//! what serde cannot (templates, pointers, uniqueness) and names the offending key too.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the engine needs to run; built once at start and shared read-only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub topics: TopicSettings,
    pub fls: Vec<FlSettings>,
    pub timeouts: Timeouts,
    pub sync: SyncSettings,
    pub protocol: ProtocolSettings,
    pub limits: Limits,
}

/// One Floodlight speaker instance. Its identity on the wire is the topic it writes to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlSettings {
    pub id: String,
    /// Informational; reported by the admin API.
    #[serde(default)]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TopicSettings {
    /// Inbound command topics (controller → router).
    pub commands: Vec<String>,
    /// Router → FL topic template; `{fl}` is replaced by the FL id.
    pub fl_read: String,
    /// FL → router topic template; `{fl}` is replaced by the FL id.
    pub fl_write: String,
    /// Switch events, sync chains and router notifications (router → controller).
    pub events: String,
    /// Answers with no stored reply-to and no route for their kind.
    pub default_reply: String,
    /// Input the router cannot process, kept byte for byte with the reason in a header.
    pub dead_letter: String,
    /// Routes by payload class (message kind) for answers with no stored reply-to.
    pub by_class: BTreeMap<String, String>,
    /// The router's own compacted topic holding the switch → FL map (key: switch id), read
    /// back at start so the map survives restarts.
    pub switch_map: String,
    /// The router's journal of the errors it answered itself (key: correlation id, value: the
    /// exact message sent, header `reply_to`: where), read back at start so a command read
    /// again after a crash gets the same outcome (see `previous`).
    pub journal: String,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            commands: vec!["kilda.speaker.storm".into()],
            fl_read: "kilda.speaker_{fl}".into(),
            fl_write: "kilda.topo.disco_{fl}".into(),
            events: "kilda.topo.disco.storm".into(),
            default_reply: "kilda.northbound.storm".into(),
            dead_letter: "kilda.flrouter.dead-letter".into(),
            by_class: BTreeMap::new(),
            switch_map: "kilda.flrouter.switch-map".into(),
            journal: "kilda.flrouter.journal".into(),
        }
    }
}

impl TopicSettings {
    pub fn fl_read_topic(&self, fl: &str) -> String {
        self.fl_read.replace("{fl}", fl)
    }
    pub fn fl_write_topic(&self, fl: &str) -> String {
        self.fl_write.replace("{fl}", fl)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// An FL must ack or answer a command within this time, else OPERATION_TIMED_OUT.
    #[serde(with = "humantime_serde")]
    pub ack: Duration,
    /// After an ack, how long the FL has to answer before the router answers OPERATION_TIMED_OUT.
    #[serde(with = "humantime_serde")]
    pub answer: Duration,
    /// How long a timed-out correlation id stays blacklisted (late answers dropped).
    #[serde(with = "humantime_serde")]
    pub blacklist_ttl: Duration,
    /// Resolution of the engine's deadline checks; deadlines fire at most this late.
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// How often the router sends AliveRequest to every FL.
    #[serde(with = "humantime_serde")]
    pub alive_interval: Duration,
    /// No message at all from an FL for this long is an outage.
    #[serde(with = "humantime_serde")]
    pub alive_timeout: Duration,
    /// An FL's sync chain must be complete this long after its SyncRequest.
    #[serde(with = "humantime_serde")]
    pub sync_chain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            ack: Duration::from_secs(5),
            answer: Duration::from_secs(30),
            blacklist_ttl: Duration::from_secs(60),
            tick: Duration::from_millis(50),
            alive_interval: Duration::from_secs(2),
            alive_timeout: Duration::from_secs(10),
            sync_chain: Duration::from_secs(30),
        }
    }
}

/// Sync sessions: when the router starts one itself, and how hard it tries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// Send a SyncRequest to every FL at start, to learn the switch map without waiting for events.
    pub at_start: bool,
    /// Sync every FL this often (network sync); 0s turns it off.
    #[serde(with = "humantime_serde")]
    pub periodic: Duration,
    /// Times a SyncRequest is re-sent to an FL whose chain is missing or incomplete.
    pub retries: u32,
    /// Wait before the first re-send; doubled for each further one.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            at_start: true,
            periodic: Duration::from_secs(60),
            retries: 3,
            retry_backoff: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Larger inbound messages are rejected (REQUEST_INVALID / dead letter), never forwarded.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1024 * 1024,
        }
    }
}

/// The wire dialect: class names and where switch ids live. Defaults are OpenKilda's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolSettings {
    pub classes: Classes,
    pub switch_ids: SwitchIdRules,
    pub switch_events: SwitchEventRules,
    pub multi_switch: MultiSwitchRules,
}

/// Which commands target several switches, and what their assembled result is called.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MultiSwitchRules {
    /// Payload classes that always mean "every switch" (no switch id needed).
    pub all_classes: Vec<String>,
    /// A switch-id field holding one of these strings means "every switch".
    pub all_values: Vec<String>,
    /// Payload class of the assembled result.
    pub result_class: String,
}

impl Default for MultiSwitchRules {
    fn default() -> Self {
        Self {
            all_classes: Vec::new(),
            all_values: vec!["*".into(), "ALL".into()],
            result_class: "org.openkilda.flrouter.MultiSwitchResult".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Classes {
    pub command_message: String,
    pub info_message: String,
    pub error_message: String,
    pub chunked_info_message: String,
    pub error_data: String,
    pub fl_receive_ack: String,
    pub alive_request: String,
    pub alive_response: String,
    pub sync_request: String,
    pub unmanaged_switch_notification: String,
    pub switch_offline_notification: String,
    pub fl_outage_notification: String,
    pub sync_summary: String,
    /// Payload class of one switch in an FL's sync chain (network dump).
    pub network_dump_switch: String,
}

impl Default for Classes {
    fn default() -> Self {
        let s = |v: &str| v.to_string();
        Self {
            command_message: s("org.openkilda.messaging.command.CommandMessage"),
            info_message: s("org.openkilda.messaging.info.InfoMessage"),
            error_message: s("org.openkilda.messaging.error.ErrorMessage"),
            chunked_info_message: s("org.openkilda.messaging.info.ChunkedInfoMessage"),
            error_data: s("org.openkilda.messaging.error.ErrorData"),
            fl_receive_ack: s("org.openkilda.messaging.info.FlReceiveAck"),
            alive_request: s("org.openkilda.messaging.AliveRequest"),
            alive_response: s("org.openkilda.messaging.AliveResponse"),
            sync_request: s("org.openkilda.messaging.command.discovery.NetworkCommandData"),
            unmanaged_switch_notification: s(
                "org.openkilda.messaging.info.event.UnmanagedSwitchNotification",
            ),
            switch_offline_notification: s(
                "org.openkilda.messaging.info.event.SwitchOfflineNotification",
            ),
            fl_outage_notification: s("org.openkilda.messaging.info.event.FlOutageNotification"),
            sync_summary: s("org.openkilda.messaging.info.event.SyncSessionSummary"),
            network_dump_switch: s("org.openkilda.messaging.info.discovery.NetworkDumpSwitchData"),
        }
    }
}

/// Where switch ids are found: JSON pointers tried in order, per payload class, else the defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SwitchIdRules {
    pub default: Vec<String>,
    pub by_class: BTreeMap<String, Vec<String>>,
}

impl Default for SwitchIdRules {
    fn default() -> Self {
        Self {
            default: vec![
                "/payload/switch_id".into(),
                "/payload/switch_record/datapath".into(),
                "/payload/scope".into(),
            ],
            by_class: BTreeMap::new(),
        }
    }
}

impl SwitchIdRules {
    pub fn pointers_for(&self, payload_class: Option<&str>) -> &[String] {
        payload_class
            .and_then(|c| self.by_class.get(c))
            .map(Vec::as_slice)
            .unwrap_or(&self.default)
    }
}

/// Which FL messages are switch events and which states map or unmap a switch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SwitchEventRules {
    pub classes: Vec<String>,
    pub state_pointer: String,
    pub up_states: Vec<String>,
    pub down_states: Vec<String>,
}

impl Default for SwitchEventRules {
    fn default() -> Self {
        Self {
            classes: vec!["org.openkilda.messaging.info.event.SwitchInfoData".into()],
            state_pointer: "/payload/state".into(),
            up_states: vec!["ADDED".into(), "ACTIVATED".into(), "CONNECTED".into()],
            down_states: vec![
                "REMOVED".into(),
                "DEACTIVATED".into(),
                "DISCONNECTED".into(),
            ],
        }
    }
}

/// A setting that is syntactically fine but cannot work; `key` is its dotted path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct SettingError {
    pub key: String,
    pub problem: String,
}

impl SettingError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// Kafka topic names: 1..=249 chars of `[a-zA-Z0-9._-]`.
pub fn check_topic_name(key: &str, topic: &str) -> Result<(), SettingError> {
    if topic.is_empty() || topic.len() > 249 {
        return Err(SettingError::new(
            key,
            "a topic name must be 1 to 249 characters",
        ));
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(SettingError::new(
            key,
            format!("topic name {topic:?} has the character {c:?}; allowed are a-z A-Z 0-9 . _ -"),
        ));
    }
    Ok(())
}

impl Settings {
    /// Checks everything serde cannot; returns every problem, not just the first.
    pub fn validate(&self) -> Vec<SettingError> {
        let mut errs = Vec::new();
        let mut push = |r: Result<(), SettingError>| {
            if let Err(e) = r {
                errs.push(e)
            }
        };
        let t = &self.topics;
        if t.commands.is_empty() {
            push(Err(SettingError::new(
                "topics.commands",
                "at least one command topic is required",
            )));
        }
        for (i, c) in t.commands.iter().enumerate() {
            push(check_topic_name(&format!("topics.commands[{i}]"), c));
        }
        for (key, tpl) in [
            ("topics.fl_read", &t.fl_read),
            ("topics.fl_write", &t.fl_write),
        ] {
            if !tpl.contains("{fl}") {
                push(Err(SettingError::new(
                    key,
                    format!("template {tpl:?} must contain {{fl}}"),
                )));
            } else {
                push(check_topic_name(key, &tpl.replace("{fl}", "x")));
            }
        }
        if t.fl_read == t.fl_write {
            push(Err(SettingError::new(
                "topics.fl_write",
                "must differ from topics.fl_read",
            )));
        }
        for (key, v) in [
            ("topics.events", &t.events),
            ("topics.default_reply", &t.default_reply),
            ("topics.dead_letter", &t.dead_letter),
            ("topics.switch_map", &t.switch_map),
            ("topics.journal", &t.journal),
        ] {
            push(check_topic_name(key, v));
        }
        for (class, topic) in &t.by_class {
            push(check_topic_name(&format!("topics.by_class.{class}"), topic));
        }
        if self.fls.is_empty() {
            push(Err(SettingError::new(
                "fls",
                "at least one FL instance is required",
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, fl) in self.fls.iter().enumerate() {
            let key = format!("fls[{i}].id");
            if fl.id.is_empty() {
                push(Err(SettingError::new(&key, "must not be empty")));
                continue;
            }
            if !seen.insert(fl.id.as_str()) {
                push(Err(SettingError::new(
                    &key,
                    format!("duplicate FL id {:?}", fl.id),
                )));
            }
            push(check_topic_name(&key, &t.fl_read_topic(&fl.id)));
        }
        let to = &self.timeouts;
        for (key, d) in [
            ("timeouts.ack", to.ack),
            ("timeouts.answer", to.answer),
            ("timeouts.blacklist_ttl", to.blacklist_ttl),
            ("timeouts.tick", to.tick),
            ("timeouts.alive_interval", to.alive_interval),
            ("timeouts.alive_timeout", to.alive_timeout),
            ("timeouts.sync_chain", to.sync_chain),
        ] {
            if d.is_zero() {
                push(Err(SettingError::new(key, "must be greater than zero")));
            }
        }
        if to.tick > to.ack {
            push(Err(SettingError::new(
                "timeouts.tick",
                "must not exceed timeouts.ack",
            )));
        }
        if to.alive_timeout <= to.alive_interval {
            push(Err(SettingError::new(
                "timeouts.alive_timeout",
                "must be longer than timeouts.alive_interval (several intervals, to allow lost requests)",
            )));
        }
        if self.limits.max_message_bytes == 0 {
            push(Err(SettingError::new(
                "limits.max_message_bytes",
                "must be greater than zero",
            )));
        }
        let rules = &self.protocol.switch_ids;
        let check_ptr = |key: String, p: &str| {
            if p.starts_with('/') {
                Ok(())
            } else {
                Err(SettingError::new(
                    key,
                    format!("JSON pointer {p:?} must start with '/'"),
                ))
            }
        };
        for (i, p) in rules.default.iter().enumerate() {
            push(check_ptr(format!("protocol.switch_ids.default[{i}]"), p));
        }
        for (class, ptrs) in &rules.by_class {
            for (i, p) in ptrs.iter().enumerate() {
                push(check_ptr(
                    format!("protocol.switch_ids.by_class.{class}[{i}]"),
                    p,
                ));
            }
        }
        push(check_ptr(
            "protocol.switch_events.state_pointer".into(),
            &self.protocol.switch_events.state_pointer,
        ));
        errs
    }
}
