//! Harness for tests against a real Apache Kafka broker (started by `scripts/kafka.sh start`;
//! address in `FLROUTER_TEST_BROKERS`, default 127.0.0.1:19092). Each test gets its own topics
//! and consumer groups, runs the real `fl-router` binary as a child process, and plays the
//! controller and the FL itself with plain Kafka clients.
//!
//! A missing broker fails the test loudly: a test that cannot reach Kafka has not passed.

#![allow(dead_code)]

pub mod oracle;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};

pub const SW1: &str = "00:00:00:00:00:00:00:01";
pub const SW2: &str = "00:00:00:00:00:00:00:02";

pub fn brokers() -> String {
    std::env::var("FLROUTER_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// Replication factor of the topics tests create (`FLROUTER_TEST_REPLICATION`, default 1; the
/// three-node cluster step sets 3).
pub fn replication() -> i32 {
    std::env::var("FLROUTER_TEST_REPLICATION")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
}

/// One test's world: unique topic names, a config file, a temp dir for logs.
pub struct World {
    pub id: String,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub commands: String,
    pub events: String,
    pub default_reply: String,
    pub dead_letter: String,
    pub reply: String,
    /// The router's consumer group for commands.
    pub group: String,
}

impl World {
    /// For routing tests: FLs `fls`, the given ack timeout, and no startup sync or liveness
    /// traffic on the FL topics (those have their own tests).
    pub async fn new(fls: &[&str], ack_timeout: &str) -> World {
        Self::with(
            fls,
            json!({
                "timeouts": {"ack": ack_timeout, "alive_interval": "1h", "alive_timeout": "2h"},
                "sync": {"at_start": false, "periodic": "0s"},
            }),
        )
        .await
    }

    /// Creates the topics and writes a config with FLs `fls`, `extra` merged over the defaults.
    pub async fn with(fls: &[&str], extra: Value) -> World {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let p = format!("t{id}");
        let dir = tempfile::tempdir().expect("temp dir");
        let w = World {
            commands: format!("{p}.commands"),
            events: format!("{p}.events"),
            default_reply: format!("{p}.northbound"),
            dead_letter: format!("{p}.dead"),
            reply: format!("{p}.reply"),
            config_path: dir.path().join("config.yaml"),
            group: format!("{p}-router"),
            id,
            dir,
        };
        let fl_list: Vec<Value> = fls.iter().map(|f| json!({"id": f})).collect();
        let config = json!({
            "kafka": {
                "brokers": brokers(),
                "topic_replication": replication(),
                "group_id": format!("{p}-router"),
                "commit_interval": "200ms",
                "drain_timeout": "5s",
                "consumer": {"topic.metadata.refresh.interval.ms": "1000", "session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"},
            },
            "topics": {
                "commands": [w.commands],
                "fl_read": format!("{p}.speaker_{{fl}}"),
                "fl_write": format!("{p}.disco_{{fl}}"),
                "events": w.events,
                "default_reply": w.default_reply,
                "dead_letter": w.dead_letter,
                "switch_map": format!("{p}.switch-map"),
                "journal": format!("{p}.journal"),
            },
            "fls": fl_list,
            "timeouts": {"tick": "20ms"},
            // Two shards whatever the machine: the proxies on two threads besides the
            // dispatcher's, so every real-broker test crosses threads.
            "engine": {"shards": 2},
            // Many routers run at once: let the OS pick each admin port (read from the log).
            "admin": {"bind": "127.0.0.1:0"},
        });
        let mut config = config;
        fl_router::config::merge_json(&mut config, extra);
        // JSON is YAML; the router reads it through its YAML loader.
        fs::write(
            &w.config_path,
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .unwrap();
        let mut topics = vec![
            w.commands.clone(),
            w.events.clone(),
            w.default_reply.clone(),
            w.dead_letter.clone(),
            w.reply.clone(),
        ];
        for fl in fls {
            topics.push(w.fl_read(fl));
            topics.push(w.fl_write(fl));
        }
        create_topics(&topics).await;
        w
    }

    pub fn fl_read(&self, fl: &str) -> String {
        format!("t{}.speaker_{fl}", self.id)
    }
    pub fn fl_write(&self, fl: &str) -> String {
        format!("t{}.disco_{fl}", self.id)
    }

    pub fn start_router(&self, name: &str) -> Router {
        self.start_router_with(name, &[])
    }

    /// The router with extra environment variables.
    pub fn start_router_env(&self, name: &str, env: &[(&str, &str)]) -> Router {
        Router::spawn_env(
            service_binary(),
            &self.config_path,
            &self.dir.path().join(format!("{name}.log")),
            &[],
            env,
        )
    }

    /// The router with extra command-line arguments.
    pub fn start_router_with(&self, name: &str, args: &[&str]) -> Router {
        Router::spawn(
            &self.config_path,
            &self.dir.path().join(format!("{name}.log")),
            args,
        )
    }

    /// The router with simulated FLs and a steady load in one process (`fl-router-tools
    /// stage`; the tooling crate's tests only).
    pub fn start_stage(&self, name: &str) -> Router {
        Router::spawn_binary(
            tools_binary(),
            &self.config_path,
            &self.dir.path().join(format!("{name}.log")),
            &["stage"],
        )
    }
}

/// Turns the world's config into a cluster instance's (`cluster.enabled`, the world's own
/// owners and leader topics).
pub fn cluster_mode(w: &World) {
    let mut cfg: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&w.config_path).unwrap()).unwrap();
    cfg["cluster"]["enabled"] = serde_json::json!(true);
    cfg["cluster"]["owners_topic"] = serde_json::json!(format!("t{}.owners", w.id));
    cfg["cluster"]["leader_topic"] = serde_json::json!(format!("t{}.leader", w.id));
    cfg["cluster"]["heartbeat_topic"] = serde_json::json!(format!("t{}.heartbeats", w.id));
    fs::write(&w.config_path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
}

/// The world's config with this instance's id (`kafka.instance_id`).
pub fn instance_config(w: &World, name: &str) -> PathBuf {
    let text = fs::read_to_string(&w.config_path).expect("world config");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("world config is JSON");
    v["kafka"]["instance_id"] = serde_json::json!(name);
    let path = w.dir.path().join(format!("{name}.yaml"));
    fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    path
}

/// Cluster instance `name` of the world, its log in `<log>.log`.
pub fn start_instance(w: &World, name: &str, log: &str) -> Router {
    Router::spawn(
        &instance_config(w, name),
        &w.dir.path().join(format!("{log}.log")),
        &[],
    )
}

/// Sends a probe command to every switch and waits for each answer: every one answered by its
/// FL (the switch is routed), within `within` each.
pub async fn probe_every_switch(w: &World, switches: &[String], within: Duration) {
    let p = producer();
    let replies = Reader::new(&w.reply);
    for (i, sw) in switches.iter().enumerate() {
        send(
            &p,
            &w.commands,
            None,
            &command(&format!("probe{i}"), sw),
            Some(&w.reply),
        )
        .await;
        let v = replies.expect(within).await.json();
        assert_eq!(error_type(&v), None, "{sw} routed: {v}");
    }
}

/// What reached the default reply topic (answers that lost their way), as
/// `correlation id payload class` lines.
pub async fn stray_answers(w: &World) -> Vec<String> {
    Reader::new(&w.default_reply)
        .read_to_end()
        .await
        .iter()
        .map(|m| {
            let v = m.json();
            format!("{} {}", v["correlation_id"], v["payload"]["clazz"])
        })
        .collect()
}

/// Grows an existing topic to `total` partitions.
pub async fn add_partitions(topic: &str, total: usize) {
    use rdkafka::admin::NewPartitions;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client");
    let res = admin
        .create_partitions(
            &[NewPartitions::new(topic, total)],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .expect("create partitions");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("partitions of {t}: {e}"));
    }
}

/// Sets a topic-level config (e.g. `max.message.bytes`) on an existing topic.
pub async fn set_topic_config(topic: &str, name: &str, value: &str) {
    use rdkafka::admin::{AlterConfig, ResourceSpecifier};
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client");
    let res = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic(topic)).set(name, value)],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
        )
        .await
        .expect("alter configs");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("alter {t:?}: {e}"));
    }
}

/// The committed offset of `group` on partition 0 of `topic`, if any.
pub fn committed_offset(group: &str, topic: &str) -> Option<i64> {
    let c: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    match got.find_partition(topic, 0)?.offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// Creates `names`. A request-level error is retried with a fresh client for up to a minute:
/// on the three-node cluster a test starts right after the previous one restarted a broker,
/// and librdkafka can fail a request it had queued on a connection it then replaced
/// (`DestroyBroker`) while the cluster settles. A topic that exists on a retry was created by
/// the attempt that failed.
pub async fn create_topics(names: &[String]) {
    use rdkafka::types::RDKafkaErrorCode;
    const PATIENCE: Duration = Duration::from_secs(60);
    let new: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(replication())))
        .collect();
    let started = std::time::Instant::now();
    let mut retried = false;
    loop {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .create()
            .expect("admin client");
        match admin
            .create_topics(
                &new,
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20))),
            )
            .await
        {
            Ok(res) => {
                for r in res {
                    match r {
                        Ok(_) => {}
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if retried => {}
                        Err((t, e)) => panic!("create topic {t}: {e}"),
                    }
                }
                return;
            }
            Err(e) if started.elapsed() < PATIENCE => {
                eprintln!("creating the test topics: {e}; retrying");
                retried = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => panic!(
                "cannot reach the test Kafka broker at {} ({e}); run scripts/kafka.sh start",
                brokers()
            ),
        }
    }
}

/// The service binary (the service crate's tests only: cargo sets its path for them).
pub fn service_binary() -> &'static str {
    match option_env!("CARGO_BIN_EXE_fl-router") {
        Some(b) => b,
        None => panic!("the service binary: run from the fl-router crate's tests"),
    }
}

/// The tooling binary (the tooling crate's tests only).
pub fn tools_binary() -> &'static str {
    match option_env!("CARGO_BIN_EXE_fl-router-tools") {
        Some(b) => b,
        None => panic!("the tooling binary: run from the fl-router-tools crate's tests"),
    }
}

/// The router under test, as a child process; killed when dropped. Its log is printed if
/// the test fails.
pub struct Router {
    child: Child,
    pub log: PathBuf,
}

impl Router {
    /// The `fl-router` binary with `config`, its log in `log`.
    pub fn spawn(config: &std::path::Path, log: &std::path::Path, args: &[&str]) -> Router {
        Self::spawn_binary(service_binary(), config, log, args)
    }

    /// `binary` with `config`, its log in `log`.
    pub fn spawn_binary(
        binary: &str,
        config: &std::path::Path,
        log: &std::path::Path,
        args: &[&str],
    ) -> Router {
        Self::spawn_env(binary, config, log, args, &[])
    }

    /// [`Router::spawn_binary`] with extra environment variables.
    pub fn spawn_env(
        binary: &str,
        config: &std::path::Path,
        log: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Router {
        let child = Command::new(binary)
            .envs(env.iter().copied())
            .arg("--config")
            .arg(config)
            .args(args)
            .env("RUST_LOG", "info,librdkafka=warn")
            .env_remove("FLROUTER_KAFKA_BROKERS")
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).expect("log file"))
            .spawn()
            .expect("start fl-router");
        Router {
            child,
            log: log.to_path_buf(),
        }
    }

    /// Waits until the router logs that it routes commands.
    pub async fn ready(&self) {
        let deadline = tokio::time::Instant::now() + LONG * 2;
        while !self.log_text().contains("router ready: routing commands") {
            assert!(
                tokio::time::Instant::now() < deadline,
                "router not ready:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// True once the process has exited (by itself: e.g. a fatal Kafka error).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGKILL: no drain, no final commit.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP: the process freezes (a VM stall, a long pause), its sockets stay open.
    pub fn pause(&self) {
        signal(&self.child, "-STOP");
    }

    /// SIGHUP: the router reads its configuration file again (a reload of the FL list).
    pub fn hangup(&self) {
        signal(&self.child, "-HUP");
    }

    /// SIGCONT after [`Router::pause`].
    pub fn resume(&self) {
        signal(&self.child, "-CONT");
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait for router")
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The admin API's base URL, once it serves the started router (waits up to `LONG`).
    pub async fn admin_url(&self) -> String {
        let url = self.admin_url_listening().await;
        self.wait_for_log("admin API serving the router").await;
        url
    }

    /// The admin API's base URL from its first log line: up, the router perhaps not started.
    pub async fn admin_url_listening(&self) -> String {
        self.wait_for_log("admin API listening on ").await;
        self.log_text()
            .lines()
            .find_map(|l| l.split("admin API listening on ").nth(1))
            .map(|u| u.trim().to_string())
            .expect("the admin URL line")
    }

    /// Waits (up to `LONG`) until the router's log contains `text`.
    pub async fn wait_for_log(&self, text: &str) {
        let deadline = tokio::time::Instant::now() + LONG;
        while !self.log_text().contains(text) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {text:?} in the router log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(sig)
        .arg(child.id().to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill {sig} {}", child.id());
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- router log {} ----\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

pub fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "0")
        .create()
        .expect("producer")
}

pub async fn send(
    p: &FutureProducer,
    topic: &str,
    key: Option<&str>,
    body: &[u8],
    reply_to: Option<&str>,
) {
    let mut rec = FutureRecord::<str, [u8]>::to(topic).payload(body);
    if let Some(k) = key {
        rec = rec.key(k);
    }
    if let Some(r) = reply_to {
        rec = rec.headers(OwnedHeaders::new().insert(Header {
            key: "reply_to",
            value: Some(r),
        }));
    }
    p.send(rec, Duration::from_secs(10)).await.expect("produce");
}

/// A reader of one topic from its beginning (assigned, no group join).
pub struct Reader {
    consumer: StreamConsumer,
    pub topic: String,
}

pub struct Received {
    pub offset: i64,
    /// Kafka's null value (then `payload` is empty).
    pub null: bool,
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).expect("JSON payload")
    }
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

impl Reader {
    pub fn new(topic: &str) -> Reader {
        Self::at(topic, Offset::Beginning)
    }

    /// A reader of what is written to `topic` from now on (the end offset is resolved now,
    /// not when the first fetch happens to run). Assigned once: assigning again while the
    /// first assignment's fetch is starting trips an assertion in librdkafka (the process
    /// aborts in `rd_kafka_assignment_partition_stopped`).
    pub fn at_end(topic: &str) -> Reader {
        let consumer = Self::consumer();
        let (_, high) = consumer
            .fetch_watermarks(topic, 0, Duration::from_secs(10))
            .expect("watermarks");
        Self::assigned(consumer, topic, Offset::Offset(high))
    }

    fn at(topic: &str, offset: Offset) -> Reader {
        Self::assigned(Self::consumer(), topic, offset)
    }

    fn consumer() -> StreamConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "50")
            .create()
            .expect("consumer")
    }

    fn assigned(consumer: StreamConsumer, topic: &str, offset: Offset) -> Reader {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, offset).unwrap();
        consumer.assign(&tpl).expect("assign");
        Reader {
            consumer,
            topic: topic.to_string(),
        }
    }

    /// The next message, or None after `within`. Transient consume errors (a broker failing
    /// over) are waited out.
    pub async fn next(&self, within: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + within;
        let m = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.consumer.recv())
                .await
                .ok()?
            {
                Ok(m) => break m,
                Err(e) => {
                    assert!(
                        self.consumer.client().fatal_error().is_none(),
                        "test reader of {}: fatal {e}",
                        self.topic
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        Some(Received {
            offset: m.offset(),
            null: m.payload().is_none(),
            payload: m.payload().unwrap_or_default().to_vec(),
            key: m.key().map(<[u8]>::to_vec),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Everything up to the topic's current end (its end offset is read now).
    pub async fn read_to_end(&self) -> Vec<Received> {
        // Retried: right after a broker restart the partition may have no leader yet.
        let deadline = tokio::time::Instant::now() + LONG;
        let high = loop {
            match self
                .consumer
                .fetch_watermarks(&self.topic, 0, Duration::from_secs(10))
            {
                Ok((_, high)) => break high,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("watermarks of {}: {e}; retrying", self.topic);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("watermarks of {}: {e}", self.topic),
            }
        };
        let mut out: Vec<Received> = Vec::new();
        while high > 0 && out.last().is_none_or(|m| m.offset + 1 < high) {
            match self.next(LONG).await {
                Some(m) => out.push(m),
                None => panic!("{} did not reach offset {high}", self.topic),
            }
        }
        out
    }

    /// Reads until a message satisfies `pred`; returns it. Fails the test after `within`.
    pub async fn until(&self, within: Duration, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.next(left).await.unwrap_or_else(|| {
                panic!("no matching message on {} within {within:?}", self.topic)
            });
            let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
            if pred(&v) {
                return v;
            }
        }
    }

    /// The next message; fails the test if none arrives within `within`.
    pub async fn expect(&self, within: Duration) -> Received {
        self.next(within)
            .await
            .unwrap_or_else(|| panic!("nothing on {} within {within:?}", self.topic))
    }
}

pub fn command(cid: &str, switch: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":cid,"timestamp":1,
           "payload":{"clazz":"org.openkilda.messaging.command.switches.DumpRulesRequest","switch_id":switch}})
    .to_string()
    .into_bytes()
}

pub fn switch_event(switch: &str, state: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":format!("ev-{}", uuid::Uuid::new_v4()),"timestamp":1,
           "payload":{"clazz":"org.openkilda.messaging.info.event.SwitchInfoData","switch_id":switch,"state":state}})
    .to_string()
    .into_bytes()
}

pub fn ack(cid: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":cid,"timestamp":1,
           "payload":{"clazz":"org.openkilda.messaging.info.FlReceiveAck"}})
    .to_string()
    .into_bytes()
}

pub fn answer(cid: &str) -> Vec<u8> {
    json!({"clazz":"org.openkilda.messaging.info.InfoMessage","correlation_id":cid,"timestamp":2,
           "payload":{"clazz":"org.openkilda.messaging.info.switches.SwitchRulesResponse","rule_ids":[1,2,3]}})
    .to_string()
    .into_bytes()
}

pub fn cid_of(v: &Value) -> String {
    v["correlation_id"].as_str().unwrap_or_default().to_string()
}

pub fn error_type(v: &Value) -> Option<&str> {
    v["payload"]["error-type"].as_str()
}

pub const LONG: Duration = Duration::from_secs(30);

/// Keeps the router of `w` running as a service manager would (`Restart=on-failure`): a router
/// that stops by itself (a fatal Kafka error) is started again. Returns the task and how many
/// restarts it made.
pub fn supervise(
    w: std::sync::Arc<World>,
    router: Router,
) -> (
    tokio::task::JoinHandle<Router>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::sync::watch::Sender<bool>,
) {
    supervise_with(router, move |n| {
        w.start_router(&format!("router-restart-{n}"))
    })
}

/// [`supervise`] with the restart given: `restart(n)` starts the `n`th replacement.
pub fn supervise_with(
    router: Router,
    restart: impl Fn(usize) -> Router + Send + 'static,
) -> (
    tokio::task::JoinHandle<Router>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::sync::watch::Sender<bool>,
) {
    let restarts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let r = restarts.clone();
    let task = tokio::spawn(async move {
        let mut router = router;
        loop {
            tokio::select! {
                _ = stopped.changed() => return router,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            if router.exited() {
                let n = r.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                eprintln!(
                    "supervisor: the router stopped by itself; restart {n}; its log:\n{}",
                    router
                        .log_text()
                        .lines()
                        .rev()
                        .take(5)
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                router = restart(n);
            }
        }
    });
    (task, restarts, stop)
}

/// FL `fl` announces `switch` (ACTIVATED, keyed by switch); returns once the router forwarded
/// the event to `events`, so the switch is mapped.
pub async fn announce(p: &FutureProducer, w: &World, fl: &str, switch: &str, events: &Reader) {
    send(
        p,
        &w.fl_write(fl),
        Some(switch),
        &switch_event(switch, "ACTIVATED"),
        None,
    )
    .await;
    events.expect(LONG).await;
}

/// How many FlOutageNotifications are on `events` (read to its end).
pub async fn outage_notifications(events: &Reader) -> usize {
    let class = fl_router_actors::settings::Classes::default().fl_outage_notification;
    events
        .read_to_end()
        .await
        .iter()
        .filter(|m| m.json()["payload"]["clazz"] == class.as_str())
        .count()
}

/// A client config for the simulator and the load generator on the test broker.
pub fn sim_client() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers())
        .set("fetch.wait.max.ms", "20")
        .set("topic.metadata.refresh.interval.ms", "1000");
    c
}

/// The simulator (`switches_per_fl` switches per FL of the world) and the router, started and
/// warm: returns once a probe command was answered by its FL.
pub async fn simulated_network(
    w: &World,
    switches_per_fl: usize,
    router_name: &str,
) -> (fl_router_tools::sim::Simulator, Router) {
    let config = fl_router::config::Config::load(&w.config_path).expect("test config");
    let sim = fl_router_tools::sim::Simulator::start(
        sim_client(),
        &config.settings(),
        &fl_router_tools::sim::SimConfig {
            switches_per_fl,
            ..Default::default()
        },
    )
    .expect("simulator");
    let router = w.start_router(router_name);
    let probe = Reader::new(&w.reply);
    send(
        &producer(),
        &w.commands,
        None,
        &command("probe", &sim.switches()[0]),
        Some(&w.reply),
    )
    .await;
    let v = probe.expect(LONG).await.json();
    assert_eq!(
        (cid_of(&v).as_str(), error_type(&v)),
        ("probe", None),
        "probe answered by the FL"
    );
    (sim, router)
}

/// Creates every region's topics (read, write and control), as its Floodlight would have them
/// before the router starts (a Floodlight reads its discovery topic from the end).
pub async fn create_region_topics(settings: &fl_router_actors::Settings) {
    let t = &settings.topics;
    let mut topics = Vec::new();
    for fl in &settings.fls {
        topics.extend(t.fl_read_topics(&fl.id));
        topics.extend(t.fl_write_topics(&fl.id));
        topics.push(t.control_topic(&fl.id));
    }
    topics.sort();
    topics.dedup();
    create_topics(&topics).await;
}

/// Prefixes every string that is an OpenKilda topic name (`kilda.…`) with `ns`.
pub fn prefix_topics(v: &mut Value, ns: &str) {
    match v {
        Value::String(s) if s.starts_with("kilda.") => *s = format!("{ns}{s}"),
        Value::Array(a) => a.iter_mut().for_each(|x| prefix_topics(x, ns)),
        Value::Object(o) => o.values_mut().for_each(|x| prefix_topics(x, ns)),
        _ => {}
    }
}

/// A fresh namespace for OpenKilda's topic names (`t<id>.`): no earlier run's messages,
/// groups or stored state on the broker can play a part.
pub fn namespace() -> String {
    format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// The shipped OpenKilda profile (`config/openkilda.yaml`) in namespace `ns`, pointed at the
/// test broker, with an OS-chosen admin port.
pub fn openkilda_profile(ns: &str) -> Value {
    let mut profile: Value =
        serde_yaml_ng::from_str(include_str!("../../config/openkilda.yaml")).expect("profile");
    prefix_topics(&mut profile, ns);
    profile["kafka"]["group_id"] = json!(format!("{ns}fl-router"));
    profile["kafka"]["brokers"] = json!(brokers());
    profile["kafka"]["topic_replication"] = json!(replication());
    profile["admin"]["bind"] = json!("127.0.0.1:0");
    profile
}
