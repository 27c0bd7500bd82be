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
    pub failover: FailoverSettings,
    pub engine: EngineSettings,
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
    /// Switch events, network dump entries and switch notices (router → controller).
    pub events: String,
    /// The router's own notices (FL outages, sync summaries; multi-switch results with no
    /// reply-to in the OpenKilda dialect): no OpenKilda component reads them. Unset: `events`.
    pub notices: Option<String>,
    /// Answers with no stored reply-to and no route for their kind.
    pub default_reply: String,
    /// Input the router cannot process, kept byte for byte with the reason in a header.
    pub dead_letter: String,
    /// Routes by payload class (message kind) for answers with no stored reply-to.
    pub by_class: BTreeMap<String, String>,
    /// Where the router's own answer to a command of a class (`*` patterns) goes when it has
    /// no reply-to header; before its lane's `errors`.
    pub errors_by_class: BTreeMap<String, String>,
    /// The router's own compacted topic holding the switch → FL map (key: switch id), read
    /// back at start so the map survives restarts.
    pub switch_map: String,
    /// The router's journal of the errors it answered itself (key: correlation id, value: the
    /// exact message sent, header `reply_to`: where), read back at start so a command read
    /// again after a crash gets the same outcome (see `previous`).
    pub journal: String,
    /// Several topic pairs per FL, as a real OpenKilda deployment has (config/openkilda.yaml).
    /// Empty: the one pair `commands` → `fl_read` and `fl_write`.
    pub lanes: Lanes,
}

/// Topic lanes: each controller-side command topic with the FL read-topic template it forwards
/// to, each FL write-topic template with the controller-side topic its messages go to when
/// nothing more specific applies, and the lane alive and sync requests travel on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Lanes {
    pub commands: Vec<CommandLane>,
    pub outputs: Vec<OutputLane>,
    /// FL read-topic template for AliveRequest and SyncRequest (OpenKilda:
    /// `kilda.speaker.disco_{fl}`); default: the first command lane's.
    pub control: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CommandLane {
    /// Controller → router topic.
    pub from: String,
    /// Router → FL topic template (`{fl}`).
    pub to: String,
    /// Where the router's own answer to a command of this lane goes when it has no reply-to
    /// header: the topic its requester reads the FL's answers on (else `default_reply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputLane {
    /// FL → router topic template (`{fl}`).
    pub from: String,
    /// Router → controller topic for its messages with no reply-to (else by class, else
    /// `default_reply`; switch events: else `events`).
    #[serde(default)]
    pub to: Option<String>,
    /// How the controller-side topic's reader reads it: `message` (the Message family) or
    /// `hub` (`AbstractMessage`, the hub-and-spoke family). The router's own answers there are
    /// written in that family.
    #[serde(default)]
    pub family: Family,
}

/// An envelope family, as a topic's reader expects it (docs/protocol.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    #[default]
    Message,
    Hub,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            commands: vec!["kilda.speaker.storm".into()],
            fl_read: "kilda.speaker_{fl}".into(),
            fl_write: "kilda.topo.disco_{fl}".into(),
            events: "kilda.topo.disco.storm".into(),
            notices: None,
            default_reply: "kilda.northbound.storm".into(),
            dead_letter: "kilda.flrouter.dead-letter".into(),
            by_class: BTreeMap::new(),
            errors_by_class: BTreeMap::new(),
            switch_map: "kilda.flrouter.switch-map".into(),
            journal: "kilda.flrouter.journal".into(),
            lanes: Lanes::default(),
        }
    }
}

impl TopicSettings {
    /// Where the router's own notices go (`notices`, else `events`).
    pub fn notices_topic(&self) -> &str {
        self.notices.as_deref().unwrap_or(&self.events)
    }

    /// The command lanes in effect (the configured ones, else `commands` → `fl_read`).
    pub fn command_lanes(&self) -> Vec<CommandLane> {
        if self.lanes.commands.is_empty() {
            self.commands
                .iter()
                .map(|c| CommandLane {
                    from: c.clone(),
                    to: self.fl_read.clone(),
                    errors: None,
                })
                .collect()
        } else {
            self.lanes.commands.clone()
        }
    }

    /// The output lanes in effect (the configured ones, else `fl_write` with no fixed topic).
    pub fn output_lanes(&self) -> Vec<OutputLane> {
        if self.lanes.outputs.is_empty() {
            vec![OutputLane {
                from: self.fl_write.clone(),
                to: None,
                family: Family::Message,
            }]
        } else {
            self.lanes.outputs.clone()
        }
    }

    /// Every controller → router topic.
    pub fn command_topics(&self) -> Vec<String> {
        self.command_lanes().into_iter().map(|l| l.from).collect()
    }

    /// FL `fl`'s read topic of each command lane, in lane order.
    pub fn fl_read_topics(&self, fl: &str) -> Vec<String> {
        self.command_lanes()
            .iter()
            .map(|l| l.to.replace("{fl}", fl))
            .collect()
    }

    /// FL `fl`'s write topic of each output lane, in lane order.
    pub fn fl_write_topics(&self, fl: &str) -> Vec<String> {
        self.output_lanes()
            .iter()
            .map(|l| l.from.replace("{fl}", fl))
            .collect()
    }

    /// Where FL `fl`'s AliveRequest and SyncRequest go.
    pub fn control_topic(&self, fl: &str) -> String {
        match &self.lanes.control {
            Some(t) => t.replace("{fl}", fl),
            None => self
                .command_lanes()
                .first()
                .map_or(&self.fl_read, |l| &l.to)
                .replace("{fl}", fl),
        }
    }

    /// The first lane's read topic (the simple one-pair setup's only one).
    pub fn fl_read_topic(&self, fl: &str) -> String {
        self.fl_read_topics(fl).swap_remove(0)
    }

    /// The first lane's write topic (the simple one-pair setup's only one).
    pub fn fl_write_topic(&self, fl: &str) -> String {
        self.fl_write_topics(fl).swap_remove(0)
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
    /// The first-answer deadline (`ack`) per command class, for commands that take longer
    /// (dumps of a big switch). Keys are class names or `*` patterns; the most specific wins.
    pub by_class: BTreeMap<String, humantime_serde::Serde<Duration>>,
}

impl Settings {
    /// The one answer rule of a command of this class, wherever it becomes pending (forwarded,
    /// adopted in a cluster, read again after a restart): its first-answer deadline, or None for
    /// a class its speaker does not always answer (`protocol.delivery_only`).
    pub fn answer_deadline(&self, class: Option<&str>) -> Option<Duration> {
        let delivery_only = class.is_some_and(|c| {
            self.protocol
                .delivery_only
                .iter()
                .any(|p| class_matches(p, c))
        });
        (!delivery_only).then(|| self.timeouts.ack_for(class))
    }

    /// A multi-switch part's first-answer deadline: every part is owed a result (its
    /// collector waits for it), so a delivery-only class gets its class deadline too.
    pub fn part_deadline(&self, class: Option<&str>) -> Duration {
        self.timeouts.ack_for(class)
    }

    /// The longest a command may wait for its outcome: the longest first-answer deadline of
    /// any class, then `timeouts.answer` after an ack. What happened to commands within it is
    /// read back and kept across a restart; a multi-switch command assembles by then at the
    /// latest; a message held for an adoption waits no longer for it.
    pub fn longest_outcome_wait(&self) -> Duration {
        self.timeouts.longest_first_answer() + self.timeouts.answer
    }

    /// How long what a previous incarnation did with a command is kept after a restart.
    pub fn previous_kept(&self) -> Duration {
        self.longest_outcome_wait().max(self.timeouts.blacklist_ttl)
    }
}

impl Timeouts {
    /// The first-answer deadline of a command of this class.
    pub fn ack_for(&self, class: Option<&str>) -> Duration {
        by_class(&self.by_class, class).map_or(self.ack, |d| **d)
    }

    /// The longest first-answer deadline of any class.
    pub fn longest_first_answer(&self) -> Duration {
        self.by_class
            .values()
            .map(|d| **d)
            .fold(self.ack, Duration::max)
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            // OpenKilda's Floodlight sends no receive-ack: its first answer stops this deadline,
            // so it is the time to a full answer, not to an ack.
            ack: Duration::from_secs(10),
            answer: Duration::from_secs(30),
            blacklist_ttl: Duration::from_secs(60),
            tick: Duration::from_millis(50),
            alive_interval: Duration::from_secs(2),
            alive_timeout: Duration::from_secs(10),
            sync_chain: Duration::from_secs(30),
            // Empty, so a configured `ack` means what it says; the shipped profiles give
            // OpenKilda's dumps longer (config.yaml, config/openkilda.yaml).
            by_class: BTreeMap::new(),
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
    /// Recent commands whose lives are kept for `GET /api/commands/{id}` (about 0.4 KiB each;
    /// 0 = none).
    pub traced_commands: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1024 * 1024,
            traced_commands: 50_000,
        }
    }
}

/// Whose conversation the records the router makes itself follow (`protocol.dialect`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// fl-router's own notices (DESIGN.md): the embedded default.
    #[default]
    Design,
    /// OpenKilda's: what its floodlightrouter publishes, readable by its services.
    #[serde(rename = "openkilda")]
    OpenKilda,
}

/// `protocol.version_header`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VersionHeader {
    /// The header's name (OpenKilda: `kafka.message.version.header`); empty: no header.
    pub name: String,
    /// The value of records the router makes on its own (OpenKilda's build version).
    pub value: Option<String>,
    /// Learn the value from the newest record read from the side a record goes to (`value`
    /// until a record with the header was read from there).
    pub learn: bool,
}

/// The wire dialect: class names and where switch ids live. Defaults are OpenKilda's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolSettings {
    /// Whose conversation the router's own records follow (`design`, `openkilda`).
    pub dialect: Dialect,
    /// The header every record the router makes carries (OpenKilda's version header).
    pub version_header: VersionHeader,
    /// Classes (`*` patterns) the speaker does not always answer: delivered and tracked for
    /// delivery only — no router deadline, no router error for silence, no blacklist; their
    /// requesters keep their own timeouts (see `crate::dialect` and config/openkilda.yaml).
    pub delivery_only: Vec<String>,
    pub envelope: EnvelopeRules,
    pub broadcast: BroadcastRules,
    pub classes: Classes,
    pub switch_ids: SwitchIdRules,
    pub switch_events: SwitchEventRules,
    pub multi_switch: MultiSwitchRules,
}

/// Where the correlation id and the class are, in either envelope family: JSON pointers tried
/// in order, the first non-empty string wins.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EnvelopeRules {
    pub correlation_id: Vec<String>,
    pub class: Vec<String>,
}

impl Default for EnvelopeRules {
    fn default() -> Self {
        Self {
            correlation_id: vec![
                "/correlation_id".into(),
                "/message_context/correlation_id".into(),
            ],
            class: vec!["/payload/clazz".into(), "/clazz".into()],
        }
    }
}

/// Commands for every FL at once, as OpenKilda's floodlightrouter sends them: each FL gets the
/// command wrapped in a `BroadcastWrapper` whose `scope` lists the switches it serves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BroadcastRules {
    /// Sent to every FL, each with its own switches as scope (possibly none).
    pub to_every_fl: Vec<String>,
    /// Polls: every switch exactly once, each through one FL that serves it; FLs with nothing
    /// to poll get nothing.
    pub every_switch_once: Vec<String>,
    /// The wrapper's class.
    pub wrapper_class: String,
}

impl BroadcastRules {
    /// Whether a command of `class` is broadcast (to every FL, or to every switch once).
    pub fn covers(&self, class: Option<&str>) -> bool {
        class.is_some_and(|c| {
            self.to_every_fl.iter().any(|x| x == c) || self.every_switch_once.iter().any(|x| x == c)
        })
    }
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
    /// The router's notice that a switch's connections changed without it becoming
    /// unmanaged (a failover, a standby or read-only connection came or went).
    pub switch_availability_notification: String,
    /// OpenKilda's notices of a switch's first read-write connection, and of its last one gone.
    pub switch_connect_notification: String,
    pub switch_disconnect_notification: String,
    pub fl_outage_notification: String,
    pub sync_summary: String,
    /// Payload class of one switch in an FL's network dump (its answer to a sync request).
    pub network_dump_switch: String,
    /// The markers around a dump in Floodlight of 2018–2019 (`docs/protocol.md`).
    pub network_dump_begin: String,
    pub network_dump_end: String,
    /// The router's answer to a hub-and-spoke flow-segment (or other) request it cannot deliver.
    pub hub_flow_error: String,
    /// The router's answer to a `*SpeakerCommandsRequest` it cannot deliver.
    pub hub_speaker_commands_error: String,
    /// The hub-and-spoke data response (carrying an `ErrorData` when the router answers a
    /// Message-family request whose requester reads that family).
    pub hub_data_response: String,
}

/// Where the target switch id is: JSON pointers tried in order, per class, else the generic
/// fallback. A class key may hold `*` wildcards (`org.openkilda.floodlight.api.request.Transit*`);
/// an exact key wins, then the most specific pattern (most literal characters).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SwitchIdRules {
    pub default: Vec<String>,
    pub by_class: BTreeMap<String, Vec<String>>,
}

/// OpenKilda's classes and where each keeps the switch it targets (shared/OPENKILDA.md).
/// Whether `class` matches `pattern` (`*` matches any run of characters).
pub fn class_matches(pattern: &str, class: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = class.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for m in middle {
        match rest.find(m) {
            Some(i) => rest = &rest[i + m.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The value for `class` in a map keyed by class names or `*` patterns: an exact key first,
/// then the most specific pattern (most literal characters).
pub fn by_class<'m, V>(map: &'m BTreeMap<String, V>, class: Option<&str>) -> Option<&'m V> {
    let class = class?;
    if let Some(v) = map.get(class) {
        return Some(v);
    }
    map.iter()
        .filter(|(k, _)| k.contains('*') && class_matches(k, class))
        .max_by_key(|(k, _)| k.len() - k.matches('*').count())
        .map(|(_, v)| v)
}

impl SwitchIdRules {
    pub fn pointers_for(&self, class: Option<&str>) -> &[String] {
        by_class(&self.by_class, class)
            .map(Vec::as_slice)
            .unwrap_or(&self.default)
    }
}

/// How an FL is connected to a switch (OpenKilda's `SwitchConnectMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    ReadWrite,
    ReadOnly,
}

/// Which FL messages are switch events, and which states connect or disconnect a switch in
/// which mode (OpenKilda: `ACTIVATED`/`DEACTIVATED` read-write, `ADDED`/`REMOVED` read-only).
/// Any other state (e.g. `CHANGED`) is forwarded without touching the map.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SwitchEventRules {
    pub classes: Vec<String>,
    pub state_pointer: String,
    pub read_write_up: Vec<String>,
    pub read_write_down: Vec<String>,
    pub read_only_up: Vec<String>,
    pub read_only_down: Vec<String>,
    /// In a sync chain entry: `true` is a read-write connection, `false` read-only; absent
    /// means read-write.
    pub write_mode_pointer: String,
    /// Where an event or dump entry keeps the switch's view (`SpeakerSwitchView`: its
    /// addresses and description), tried in order.
    pub view_pointers: Vec<String>,
    /// FL messages about a switch (not answers to a command) forwarded only from the switch's
    /// active FL, as OpenKilda's router does (`SwitchMonitor` for port events,
    /// `SpeakerToControllerProxyBolt` for ISL, latency and connected-device messages): a standby
    /// FL's copy is dropped and counted. While the switch has no active FL: from any FL in the
    /// design dialect, dropped in the OpenKilda one (as OpenKilda does).
    pub active_fl_only: Vec<String>,
}

impl SwitchEventRules {
    /// What a state means: (connected?, mode), or `None` for a state that is not about a
    /// connection.
    pub fn meaning(&self, state: &str) -> Option<(bool, Mode)> {
        use Mode::{ReadOnly, ReadWrite};
        let has = |v: &[String]| v.iter().any(|s| s == state);
        if has(&self.read_write_up) {
            Some((true, ReadWrite))
        } else if has(&self.read_write_down) {
            Some((false, ReadWrite))
        } else if has(&self.read_only_up) {
            Some((true, ReadOnly))
        } else if has(&self.read_only_down) {
            Some((false, ReadOnly))
        } else {
            None
        }
    }
}

/// How the engine uses the machine's cores.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    /// Command shards, each on its own thread (actix arbiter) with its share of the FL proxies;
    /// 0 = half the available cores, at least one (the main thread and librdkafka's threads
    /// need about as much CPU as the shards). Commands are assigned by their input partition.
    pub shards: usize,
    /// Which FLs this engine speaks for at start (see [`FlOwnership`]). Set by the shell, not
    /// by the config file: a cluster instance starts owning none (`docs/design/cluster.md`).
    #[serde(skip)]
    pub ownership: FlOwnership,
    /// A cluster instance: the topic its multi-switch collectors read the parts' results from
    /// (`<cluster.collect_topic>.<instance id>`), and the prefix every instance's shares (an
    /// FL owner tags what it sends there with the FL). Set by the shell.
    #[serde(skip)]
    pub collect: Option<Collect>,
}

/// Where a cluster instance collects multi-switch parts (see [`EngineSettings::collect`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collect {
    /// This instance's collect topic.
    pub topic: String,
    /// Every instance's collect topic starts with it.
    pub prefix: String,
}

/// Header an FL's owner adds to what it sends to a collect topic: the FL's id.
pub const PART_FL_HEADER: &str = "flrouter_fl";

/// Which FLs an engine owns: reads, holds pending commands for, judges the liveness of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FlOwnership {
    /// Every configured FL (one router instance).
    #[default]
    All,
    /// Only those handed to it with `Engine::set_fl_owned` (an instance of a cluster).
    Assigned,
}

/// The most shards the engine starts (a thread each).
pub const MAX_SHARDS: usize = 256;

impl EngineSettings {
    /// The number of shards to start: `shards`, or half the available cores when 0.
    pub fn shard_count(&self) -> usize {
        match self.shards {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            n => n,
        }
        .min(MAX_SHARDS)
    }
}

/// A switch on several FLs: which RW connection is active, and how long a command for a switch
/// that just lost its last RW connection waits for it to come back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FailoverSettings {
    /// FL ids or regions, most preferred first: when the active FL is lost, the best-ranked
    /// remaining RW connection takes over (unlisted FLs after listed ones; ties: the oldest
    /// connection, then config order).
    pub prefer: Vec<String>,
    /// When a better-ranked FL connects RW, it becomes active at once (the switch returns to
    /// its home region). Off by default: a move costs in-flight order and a healthy active FL
    /// is left alone.
    pub return_home: bool,
    /// A command for a switch that lost its last RW connection less than this long ago waits
    /// (at most its own timeout) for a reconnect instead of failing NOT_FOUND at once. 0s: off.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// At most this many commands wait in the grace window; more are answered at once.
    pub max_waiting: usize,
}

impl Default for FailoverSettings {
    fn default() -> Self {
        Self {
            prefer: Vec::new(),
            return_home: false,
            grace: Duration::from_secs(5),
            max_waiting: 10_000,
        }
    }
}

impl FailoverSettings {
    /// Rank of each FL (lower is preferred): its first match in `prefer` by id or region.
    pub fn ranks(&self, fls: &[FlSettings]) -> Vec<usize> {
        fls.iter()
            .map(|f| {
                self.prefer
                    .iter()
                    .position(|p| *p == f.id || Some(p) == f.region.as_ref())
                    .unwrap_or(self.prefer.len())
            })
            .collect()
    }
}

mod validate;

pub use validate::{check_template, check_topic_name, SettingError};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_needs_the_control_lane_among_the_read_topics() {
        let mut s = Settings {
            fls: vec![FlSettings {
                id: "a".into(),
                region: None,
            }],
            ..Settings::default()
        };
        s.topics.lanes.control = Some("speaker.control_{fl}".into());
        assert!(s.validate().is_empty(), "fine for one instance");
        s.engine.ownership = FlOwnership::Assigned;
        let errs = s.validate();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].to_string().contains("topics.lanes.control"),
            "{errs:?}"
        );
        s.topics.lanes.control = Some(s.topics.fl_read.clone());
        assert!(s.validate().is_empty(), "one of the read topics");
    }

    #[test]
    fn class_patterns_match_with_wildcards() {
        assert!(class_matches("a.b.*", "a.b.C"));
        assert!(class_matches("a.*Request", "a.b.DumpRequest"));
        assert!(class_matches("a.Dump*ForX*", "a.DumpRulesForXRequest"));
        assert!(!class_matches("a.b.*", "a.c.D"));
        assert!(!class_matches("a.*Request", "a.b.Response"));
        assert!(class_matches("exact", "exact"));
        assert!(!class_matches("exact", "exactly"));
    }

    #[test]
    fn the_most_specific_rule_decides_the_target_pointer() {
        let r = SwitchIdRules::default();
        let req = "org.openkilda.floodlight.api.request.";
        assert_eq!(
            r.pointers_for(Some(&format!("{req}TransitFlowSegmentInstallRequest"))),
            ["/switch_id"]
        );
        assert_eq!(
            r.pointers_for(Some(&format!("{req}IngressFlowSegmentInstallRequest"))),
            ["/endpoint/switch_id"]
        );
        assert_eq!(
            r.pointers_for(Some(&format!(
                "{req}rulemanager.InstallSpeakerCommandsRequest"
            ))),
            ["/switch_id"]
        );
        assert_eq!(
            r.pointers_for(Some(
                "org.openkilda.messaging.command.switches.DumpRulesForSwitchManagerRequest"
            )),
            ["/payload/switch_id"]
        );
        assert_eq!(r.pointers_for(Some("com.example.Unknown")), r.default);
        assert_eq!(r.pointers_for(None), r.default);
    }
}
