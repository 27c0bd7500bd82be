//! `config.yaml`: loaded and validated once at start. Unknown keys are rejected and every error
//! names its key (`kafka.options`, `timeouts.ack`, `fls[1].id` …) and what is wrong with it.
//!
//! The engine's sections (`topics`, `fls`, `timeouts`, `protocol`, `limits`) use the engine's
//! own schema ([`fl_router_actors::settings`]); this module adds `kafka` and the loading rules.

use std::path::Path;

use fl_router_actors::settings::{
    Collect, EngineSettings, FailoverSettings, FlOwnership, FlSettings, Limits, ProtocolSettings,
    Settings, SyncSettings, Timeouts, TopicSettings,
};
use serde::{Deserialize, Serialize};

mod admin;
mod cluster;
pub mod errors;
mod kafka;

pub use admin::{AdminConfig, TOKEN_ENV};
pub use cluster::ClusterConfig;
pub use kafka::KafkaConfig;
use kafka::RESERVED;

/// Overrides `kafka.brokers` when set.
pub const BROKERS_ENV: &str = "FLROUTER_KAFKA_BROKERS";

/// `kafka.brokers: embedded` runs an in-process Kafka with simulated FLs and load.
pub const EMBEDDED: &str = "embedded";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub topics: TopicSettings,
    #[serde(default)]
    pub fls: Vec<FlSettings>,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub sync: SyncSettings,
    #[serde(default)]
    pub protocol: ProtocolSettings,
    #[serde(default)]
    pub limits: Limits,
    /// A switch on several FLs: which connection is active, the reconnect grace window.
    #[serde(default)]
    pub failover: FailoverSettings,
    /// Shards of the engine (threads).
    #[serde(default)]
    pub engine: EngineSettings,
    /// The FL simulator's section, read by the tooling (`fl-router-tools`), not by the
    /// service: kept here as it was written so one file configures both.
    #[serde(default, skip_serializing_if = "ToolSection::is_empty")]
    pub sim: ToolSection,
    /// The load generator's section, read by the tooling like `sim`.
    #[serde(default, skip_serializing_if = "ToolSection::is_empty")]
    pub load: ToolSection,
    /// The admin HTTP API and dashboard.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Several instances as one router.
    #[serde(default)]
    pub cluster: ClusterConfig,
}

/// A configuration that cannot be used; the text names the file, the key and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {key}: {problem}")]
    Invalid {
        path: String,
        key: String,
        problem: String,
    },
    #[error("{path}: {}", many(.problems))]
    Many { path: String, problems: Vec<String> },
}

/// Whether the file sets `section.key`.
fn given(text: &str, section: &str, key: &str) -> bool {
    serde_yaml_ng::from_str::<serde_json::Value>(text)
        .ok()
        .is_some_and(|v| !v[section][key].is_null())
}

/// One problem on the line, several one per line under a count.
fn many(problems: &[String]) -> String {
    match problems {
        [one] => one.clone(),
        all => format!("{} errors\n  {}", all.len(), all.join("\n  ")),
    }
}

/// What is shown in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// Whether a librdkafka property holds a secret (`sasl.password`, `ssl.key.password`,
/// `sasl.oauthbearer.client.secret`, `ssl.key.pem`, `sasl.jaas.config`, …).
pub fn is_secret_option(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("password")
        || n.contains("secret")
        || n.ends_with("jaas.config")
        || n == "sasl.oauthbearer.config"
        || (n.contains("key") && n.ends_with(".pem"))
}

/// A section the service does not read (`sim`, `load`): the tooling parses and checks it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct ToolSection(pub serde_json::Value);

impl ToolSection {
    fn is_empty(&self) -> bool {
        match &self.0 {
            serde_json::Value::Null => true,
            serde_json::Value::Object(m) => m.is_empty(),
            _ => false,
        }
    }
}

/// Merges `extra` into `base`: objects key by key, recursively; anything else replaces.
/// (Test and benchmark configurations are a base with a few keys laid over it.)
pub fn merge_json(base: &mut serde_json::Value, extra: serde_json::Value) {
    use serde_json::Value;
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge_json(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?;
        Self::parse(&text, &p, std::env::var(BROKERS_ENV).ok())
    }

    /// Parses and validates; `brokers_override` is the environment's value, if any.
    pub fn parse(
        text: &str,
        path: &str,
        brokers_override: Option<String>,
    ) -> Result<Config, ConfigError> {
        // Every error of the file at once (`errors`), then the checks of what could be read.
        let (read, mut problems) = errors::deserialize_all::<Config>(text);
        let mut cfg = match read {
            Some(c) => c,
            None => {
                return Err(ConfigError::Many {
                    path: path.to_string(),
                    problems: problems.iter().map(ToString::to_string).collect(),
                })
            }
        };
        match brokers_override.filter(|b| !b.trim().is_empty()) {
            Some(b) => cfg.kafka.brokers = b,
            // No silent default: a router must be told which Kafka it works on.
            None if !given(text, "kafka", "brokers") => problems.push(errors::Problem {
                key: "kafka.brokers".into(),
                line: None,
                column: None,
                message: format!(
                    "not set: name the Kafka to use (host:port[,host:port]), or set \
                     {BROKERS_ENV}; `embedded` runs the demo"
                ),
            }),
            None => {}
        }
        cfg.name_state_topics(text);
        let mut all: Vec<String> = problems.drain(..).map(|p| p.to_string()).collect();
        all.extend(cfg.validate());
        if all.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Many {
                path: path.to_string(),
                problems: all,
            })
        }
    }

    fn validate(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .settings()
            .validate()
            .iter()
            .map(ToString::to_string)
            .collect();
        out.extend(self.cluster.validate());
        out.extend(self.admin.validate());
        let k = &self.kafka;
        if k.brokers.trim().is_empty() {
            out.push(format!(
                "kafka.brokers: must not be empty (or set {BROKERS_ENV})"
            ));
        }
        if k.group_id.trim().is_empty() {
            out.push("kafka.group_id: must not be empty".into());
        }
        if let Some(id) = &k.instance_id {
            if id.trim().is_empty() || id.len() > 249 {
                out.push("kafka.instance_id: must be 1 to 249 characters".into());
            }
        }
        if k.topic_partitions < 1 {
            out.push("kafka.topic_partitions: must be at least 1".into());
        }
        if k.topic_replication < 1 {
            out.push("kafka.topic_replication: must be at least 1".into());
        }
        for (key, d) in [
            ("kafka.commit_interval", k.commit_interval),
            ("kafka.drain_timeout", k.drain_timeout),
        ] {
            if d.is_zero() {
                out.push(format!("{key}: must be greater than zero"));
            }
        }
        for (section, map) in [
            ("options", &k.options),
            ("consumer", &k.consumer),
            ("producer", &k.producer),
        ] {
            for name in map.keys() {
                if let Some((_, why)) = RESERVED.iter().find(|(r, _)| r == name) {
                    out.push(format!("kafka.{section}.{name}: set by the router ({why})"));
                }
            }
        }
        out
    }

    /// The router's state topics (`topics.switch_map`, `topics.journal`) are named after the
    /// deployment, `<kafka.group_id>.switch-map` and `<kafka.group_id>.journal`, unless the file
    /// names them: two deployments on one Kafka (staging beside production) never read each
    /// other's state (as Kafka Streams names state after its application id).
    fn name_state_topics(&mut self, text: &str) {
        let group = self.kafka.group_id.clone();
        if !given(text, "topics", "switch_map") {
            self.topics.switch_map = format!("{group}.switch-map");
        }
        if !given(text, "topics", "journal") {
            self.topics.journal = format!("{group}.journal");
        }
    }

    /// `kafka.instance_id`, else the host name (`fl-router` if it cannot be read).
    pub fn instance_id(&self) -> String {
        if let Some(id) = &self.kafka.instance_id {
            return id.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "fl-router".into())
    }

    pub fn is_embedded(&self) -> bool {
        self.kafka.brokers.trim() == EMBEDDED
    }

    /// The engine's part of the configuration.
    pub fn settings(&self) -> Settings {
        Settings {
            topics: self.topics.clone(),
            fls: self.fls.clone(),
            timeouts: self.timeouts.clone(),
            sync: self.sync.clone(),
            protocol: self.protocol.clone(),
            limits: self.limits.clone(),
            failover: self.failover.clone(),
            engine: EngineSettings {
                ownership: if self.cluster.enabled {
                    FlOwnership::Assigned
                } else {
                    FlOwnership::All
                },
                collect: self.cluster.enabled.then(|| Collect {
                    topic: self.cluster.collect_topic_of(&self.instance_id()),
                    prefix: format!("{}.", self.cluster.collect_topic),
                }),
                ..self.engine.clone()
            },
        }
    }

    /// The effective configuration (defaults filled in) as YAML, for `check-config`: secrets
    /// redacted ([`Config::redacted`]).
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(&self.redacted())
            .unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// This configuration with every secret replaced by [`REDACTED`]: `admin.token` and the
    /// librdkafka options that hold one ([`is_secret_option`]). What is shown, never what runs.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        if c.admin.token.is_some() {
            c.admin.token = Some(REDACTED.into());
        }
        let k = &mut c.kafka;
        for map in [&mut k.options, &mut k.consumer, &mut k.producer] {
            for (name, value) in map.iter_mut() {
                if is_secret_option(name) {
                    *value = REDACTED.into();
                }
            }
        }
        c
    }
}

/// Every key of the effective configuration, as a dotted path (`kafka.brokers`,
/// `fls[].id`); a map whose keys are the user's (`topics.by_class`) is one key. The
/// configuration reference (docs/configuration.md) is tested against these.
pub fn key_paths(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    let schema_keys = |m: &serde_json::Map<String, Value>| {
        !m.is_empty()
            && m.keys()
                .all(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    };
    let join = |k: &str| match prefix {
        "" => k.to_string(),
        p => format!("{p}.{k}"),
    };
    match v {
        Value::Object(m) if schema_keys(m) => {
            for (k, x) in m {
                key_paths(&join(k), x, out);
            }
        }
        Value::Array(a) if a.first().is_some_and(Value::is_object) => {
            key_paths(&format!("{prefix}[]"), &a[0], out)
        }
        _ => out.push(prefix.to_string()),
    }
}

/// The keys of `keys` the configuration reference (`reference`, its text) does not describe
/// (as `` `dotted.key` ``).
pub fn undescribed_keys(reference: &str, keys: &[String]) -> Vec<String> {
    keys.iter()
        .filter(|k| !reference.contains(&format!("`{k}`")))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<Config, String> {
        // The tests' files name no Kafka: as if FLROUTER_KAFKA_BROKERS were set.
        Config::parse(text, "test.yaml", Some("127.0.0.1:9092".into())).map_err(|e| e.to_string())
    }

    const MIN: &str = "fls: [{id: a}]\n";

    #[test]
    fn minimal_config_gets_the_defaults() {
        let c = parse(MIN).unwrap();
        // OpenKilda's Floodlight sends no receive-ack: the first answer must come within this.
        assert_eq!(c.timeouts.ack, Duration::from_secs(10));
        assert_eq!(c.timeouts.blacklist_ttl, Duration::from_secs(60));
        assert_eq!(c.topics.commands, vec!["kilda.speaker.storm"]);
        assert_eq!(c.topics.fl_read_topic("a"), "kilda.speaker_a");
    }

    #[test]
    fn unknown_key_is_rejected_with_its_path() {
        let e = parse("kafka: {brokerz: x}\nfls: [{id: a}]\n").unwrap_err();
        assert!(
            e.contains("test.yaml: kafka.brokerz (line 1, column 9):"),
            "{e}"
        );
        assert!(
            e.contains("unknown key `brokerz`: did you mean `brokers`?"),
            "{e}"
        );
    }

    #[test]
    fn bad_duration_names_the_key() {
        let e = parse("timeouts: {ack: 5 parsecs}\nfls: [{id: a}]\n").unwrap_err();
        assert!(e.contains("timeouts.ack"), "{e}");
    }

    #[test]
    fn semantic_errors_are_all_reported_with_keys() {
        let e = parse(
            "fls: [{id: a}, {id: a}]\ntopics: {fl_read: 'speaker'}\ntimeouts: {ack: 0s}\nkafka: {options: {enable.auto.commit: 'true'}}\n",
        )
        .unwrap_err();
        for want in [
            "fls[1].id: duplicate FL id",
            "topics.fl_read: template",
            "timeouts.ack: must be greater than zero",
            "kafka.options.enable.auto.commit: set by the router",
        ] {
            assert!(e.contains(want), "missing {want:?} in {e}");
        }
    }

    #[test]
    fn no_fls_is_an_error() {
        assert!(parse("{}").unwrap_err().contains("fls: at least one FL"));
    }

    #[test]
    fn environment_overrides_brokers() {
        let c = Config::parse(MIN, "t", Some("h:1".into())).unwrap();
        assert_eq!(c.kafka.brokers, "h:1");
    }

    #[test]
    fn shipped_config_is_valid() {
        let text = include_str!("../../config.yaml");
        let c = parse(text).unwrap();
        assert_eq!(
            c.timeouts.ack_for(Some(
                "org.openkilda.messaging.command.switches.DumpRulesRequest"
            )),
            Duration::from_secs(60),
            "a dump of a big switch gets longer than other commands"
        );
        assert_eq!(c.timeouts.ack_for(Some("other")), Duration::from_secs(10));
    }

    #[test]
    fn shipped_openkilda_profile_is_valid_with_its_17_lanes() {
        let c = parse(include_str!("../../config/openkilda.yaml")).unwrap();
        let t = &c.topics;
        assert_eq!(t.command_lanes().len(), 6);
        assert_eq!(t.output_lanes().len(), 11);
        assert_eq!(t.control_topic("1.stats"), "kilda.speaker.disco_1.stats");
        assert!(t
            .fl_write_topics("1")
            .contains(&"kilda.speaker.flowhs.priv.region_1".to_string()));
        assert_eq!(c.timeouts.alive_timeout, Duration::from_secs(5));
    }

    #[test]
    fn effective_config_round_trips() {
        let c = parse(MIN).unwrap();
        let again = parse(&c.to_yaml()).unwrap();
        assert_eq!(again.settings(), c.settings());
    }

    #[test]
    fn every_key_is_in_the_configuration_reference() {
        let reference = include_str!("../../docs/configuration.md");
        let c = parse("fls: [{id: a}]").unwrap();
        let mut all = Vec::new();
        key_paths("", &serde_json::to_value(&c).unwrap(), &mut all);
        assert!(
            all.len() > 80,
            "the configuration's keys were not read: {all:?}"
        );
        let missing = undescribed_keys(reference, &all);
        assert!(
            missing.is_empty(),
            "docs/configuration.md does not describe {missing:?}"
        );
    }

    #[test]
    fn check_config_prints_no_secret() {
        let c = parse(
            "fls: [{id: a}]\nadmin: {token: s3cret-t0ken}\nkafka:\n  consumer: {sasl.password: hunter2, sasl.username: alice}\n  options: {ssl.key.password: k3y, sasl.oauthbearer.client.secret: oauth-s3cret}\n",
        )
        .unwrap();
        let shown = c.to_yaml();
        for secret in ["s3cret-t0ken", "hunter2", "k3y", "oauth-s3cret"] {
            assert!(!shown.contains(secret), "{secret} printed:\n{shown}");
        }
        assert_eq!(shown.matches(REDACTED).count(), 4, "{shown}");
        assert!(
            shown.contains("alice"),
            "a user name is no secret:\n{shown}"
        );
        // What runs keeps them.
        assert_eq!(c.admin.token.as_deref(), Some("s3cret-t0ken"));
    }

    #[test]
    fn admin_bind_takes_a_host_name() {
        let c = parse("fls: [{id: a}]\nadmin: {bind: 'localhost:9464'}\n").unwrap();
        assert_eq!(c.admin.bind, "localhost:9464");
        let e = parse("fls: [{id: a}]\nadmin: {bind: 'localhost'}\n").unwrap_err();
        assert!(e.contains("admin.bind"), "{e}");
    }

    #[test]
    fn state_topics_are_named_after_the_deployment_unless_given() {
        let c = parse("kafka: {group_id: staging-router}\nfls: [{id: a}]\n").unwrap();
        assert_eq!(c.topics.switch_map, "staging-router.switch-map");
        assert_eq!(c.topics.journal, "staging-router.journal");
        let c = parse(
            "kafka: {group_id: g}\ntopics: {switch_map: kilda.flrouter.switch-map}\nfls: [{id: a}]\n",
        )
        .unwrap();
        assert_eq!(
            c.topics.switch_map, "kilda.flrouter.switch-map",
            "the old name, when given"
        );
        assert_eq!(c.topics.journal, "g.journal");
    }

    #[test]
    fn three_mistakes_are_reported_in_one_run() {
        let e = parse(
            "kafka:\n  brokers: h:1\n  topic_partitions: four\ntimeouts:\n  ack: 10\nfls: [{id: a}]\nadmn: {}\n",
        )
        .unwrap_err();
        assert!(e.starts_with("test.yaml: 3 errors"), "{e}");
        assert!(
            e.contains("kafka.topic_partitions (line 3, column 21):"),
            "{e}"
        );
        assert!(
            e.contains("got the text \"four\", expected a whole number"),
            "{e}"
        );
        assert!(e.contains("timeouts.ack (line 5, column 8):"), "{e}");
        assert!(e.contains("a duration needs a unit"), "{e}");
        assert!(e.contains("did you mean `admin`?"), "{e}");
    }

    #[test]
    fn no_silent_broker_default() {
        let e = Config::parse("fls: [{id: a}]\n", "t.yaml", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("kafka.brokers: not set"), "{e}");
        assert!(Config::parse("kafka: {brokers: 'h:1'}\nfls: [{id: a}]\n", "t.yaml", None).is_ok());
    }

    #[test]
    fn an_unknown_template_variable_is_named_once() {
        let e = parse("topics: {fl_read: 'kilda.speaker_x_{bogus}'}\nfls: [{id: a}, {id: b}]\n")
            .unwrap_err();
        assert!(
            e.contains("topics.fl_read: template \"kilda.speaker_x_{bogus}\": unknown variable {bogus}; the only one is {fl}"),
            "{e}"
        );
        assert!(!e.contains("fls["), "reported once, not per FL: {e}");
    }
}
