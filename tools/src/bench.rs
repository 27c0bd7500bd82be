//! `fl-router-tools bench`: the router against the project's plain pipe (`fl-router-tools pipe`: consume →
//! lookup → produce, no actors) on a real broker, A/B alternating in one run, both as child
//! processes of this one so their CPU time and memory are read from `/proc`.
//!
//! - **Saturation, one way**: a command topic pre-filled with `--commands` commands of
//!   `--size` bytes for `--switches` switches on `--fls` FLs (no FL answers); each run reads all
//!   of them from the start (a fresh consumer group) and is timed from its first forwarded
//!   command to its last, as seen on the FL read topics' end offsets. Prints msg/s, CPU-seconds
//!   per million and peak RSS.
//! - **Round trip** (`--rates`): the FL simulator and the open-loop load generator (child
//!   processes too) at each fixed rate; prints the load's p50/p99/p99.9 and lost, and the middle's
//!   CPU-seconds per million commands.
//!
//! - **Several instances** (`--instances N`, router side only): the same runs with N router
//!   instances as one cluster (`cluster.enabled`); CPU and memory are summed over them, so
//!   CPU-seconds per million is the scaling figure on a box they share. The saturation runs
//!   start with the cluster's map on the switch-map topic (facts, as a running cluster has it).
//!   `--cluster` runs even one instance as a cluster: the adoption's cost without a second
//!   process.
//! - **Failover** (`--failover-kills K`, [`failover`]): N ≥ 2 instances under load, one killed
//!   with -9 at a time; prints how long until the survivors hold its FLs, its command
//!   partitions and the leadership, as a distribution over the kills.
//!
//! A benchmark, not a test: nothing is asserted; the figures go to docs/benchmarks.md.

mod failover;
mod first_touch;
mod kstreams;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use serde_json::{json, Value};

use fl_router::config::Config;

use crate::Setup;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Kafka bootstrap servers (a real broker; `scripts/kafka.sh start` runs one).
    #[arg(
        long,
        env = "FLROUTER_KAFKA_BROKERS",
        default_value = "127.0.0.1:19092"
    )]
    pub brokers: String,
    /// Commands pre-filled for the saturation runs.
    #[arg(long, default_value_t = 1_000_000)]
    pub commands: usize,
    /// Size of each command in bytes (padded JSON).
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    #[arg(long, default_value_t = 4)]
    pub fls: usize,
    /// Switches in all (spread evenly over the FLs).
    #[arg(long, default_value_t = 1_000)]
    pub switches: usize,
    /// Partitions of every topic the bench creates.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Saturation runs per side (router and pipe alternate); 0 skips the saturation part.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Round-trip rates (commands/s), comma separated; empty skips the round trip.
    #[arg(long, value_delimiter = ',')]
    pub rates: Vec<u64>,
    /// Length of each round-trip run (after its warm-up).
    #[arg(long, default_value = "20s")]
    pub round_trip: humantime::Duration,
    /// Round-trip runs per rate and side (router and pipe alternate, the order flipped every
    /// run).
    #[arg(long, default_value_t = 1)]
    pub round_trip_runs: usize,
    /// The first part of each round-trip run: its commands are accounted for but kept out of
    /// the percentiles (the broker's JIT and the clients' first requests are not the middle's
    /// latency).
    #[arg(long, default_value = "3s")]
    pub round_trip_warmup: humantime::Duration,
    /// Only this side: `router` or `pipe`.
    #[arg(long)]
    pub only: Option<String>,
    /// Extra YAML merged into the router's configuration (e.g. `{engine: {shards: 2}}`).
    #[arg(long)]
    pub router_config: Option<String>,
    /// Router instances as one cluster (1: the single router).
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// Run the router instances as a cluster even when there is one (`cluster.enabled`: every
    /// command forwarded and adopted back from its FL's read topic): the cluster's own cost
    /// per command without a second process.
    #[arg(long)]
    pub cluster: bool,
    /// Only time how long touching this many MiB of fresh memory takes, against writing it
    /// again (no Kafka): what a router's growth costs on this machine.
    #[arg(long, default_value_t = 0)]
    pub first_touch_mib: usize,
    /// Kill -9 an instance this many times under load and time the takeovers (needs
    /// `--instances` of at least 2; 3 if left at 1).
    #[arg(long, default_value_t = 0)]
    pub failover_kills: usize,
    /// In the failover runs, start each killed instance again at once (same id): time until
    /// it holds its share again, instead of until the survivors take it over.
    #[arg(long)]
    pub failover_restart: bool,
    /// Commands per second during the failover runs.
    #[arg(long, default_value_t = 300)]
    pub failover_rate: u64,
    /// The pipe the router is measured against: `lean` (one thread, plain rdkafka consumer and
    /// producer, `pipe --lean`), `lean-pending` (the same keeping what any answering router
    /// must per pending command, `pipe --lean --pending`), `kstreams` (the same hop as a Kafka
    /// Streams app with default settings; `scripts/kstreams.sh build` first) or `tracked` (the
    /// router's own Kafka clients, offset tracking and delivery-acknowledged commits, no
    /// actors).
    #[arg(long, default_value = "lean", value_parser = ["lean", "lean-pending", "kstreams", "tracked"])]
    pub baseline: String,
    /// With `--baseline kstreams`: a Kafka Streams or client setting over its defaults
    /// (`key=value`, repeatable; e.g. `producer.linger.ms=1`, the router's linger).
    #[arg(long)]
    pub kstreams_set: Vec<String>,
    /// Where configs, logs and reports go.
    #[arg(long, default_value = "out/bench")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Router,
    Pipe,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Router => "router",
            Side::Pipe => "pipe",
        }
    }
}

struct Saturation {
    side: Side,
    msgs_per_s: f64,
    cpu_s_per_million: f64,
    peak_rss_mib: f64,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.first_touch_mib > 0 {
        return first_touch::run(args.first_touch_mib);
    }
    std::fs::create_dir_all(&args.out)?;
    let id = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let sides: Vec<Side> = match args.only.as_deref() {
        // The pipe is one process: compared with one router instance only.
        None if args.instances > 1 || args.cluster => vec![Side::Router],
        None => vec![Side::Router, Side::Pipe],
        Some("router") => vec![Side::Router],
        Some("pipe") => vec![Side::Pipe],
        Some(o) => anyhow::bail!("--only: {o:?} is neither router nor pipe"),
    };
    let per_fl = args.switches.div_ceil(args.fls.max(1));
    let base = base_config(args, &id, per_fl);
    let probe = write_config(&args.out, &format!("{id}-base"), &base)?;
    let setup = Setup::load(&probe)?;
    let config = setup.config.clone();
    let client = fl_router::kafka::base_config(&config.kafka);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut topics = fl_router::kafka::topics::all_topics(&config);
    topics.insert(setup.load.reply_topic.clone());
    runtime.block_on(fl_router::kafka::topics::ensure(&config, &client, &topics))?;
    println!(
        "bench {id}: {} FLs x {per_fl} switches, {} partitions per topic, {} router instance(s), broker {}, the pipe is the {} baseline",
        args.fls, args.partitions, args.instances.max(1), args.brokers, args.baseline
    );
    if args.failover_kills > 0 {
        return failover::run(args, &base, &id);
    }

    let mut results = Vec::new();
    if args.runs > 0 {
        prefill(&client, &setup, args)?;
        for run in 0..args.runs {
            for side in alternated(&sides, run) {
                let r = saturation_run(args, &base, &id, run, side, &client)?;
                println!(
                    "  saturation run {} {:>6}: {:>9.0} msg/s  {:>6.2} CPU-s per million  peak RSS {:>7.1} MiB",
                    run + 1,
                    side.name(),
                    r.msgs_per_s,
                    r.cpu_s_per_million,
                    r.peak_rss_mib
                );
                results.push(r);
            }
        }
        summary(&results, &sides);
    }
    for &rate in args.rates.iter().filter(|r| **r > 0) {
        for run in 0..args.round_trip_runs.max(1) {
            for side in alternated(&sides, run) {
                round_trip(args, &base, &id, rate, side, run)?;
            }
        }
    }
    Ok(())
}

/// A/B alternating: the sides' order flipped every other run.
fn alternated(sides: &[Side], run: usize) -> Vec<Side> {
    let mut order = sides.to_vec();
    if run % 2 == 1 {
        order.reverse();
    }
    order
}

fn base_config(args: &BenchArgs, id: &str, per_fl: usize) -> Value {
    let fls: Vec<Value> = (1..=args.fls)
        .map(|i| json!({"id": format!("fl{i}")}))
        .collect();
    let mut v = json!({
        "kafka": {
            "brokers": args.brokers,
            "group_id": id,
            "topic_partitions": args.partitions,
            "commit_interval": "1s",
            // Nothing answers in the saturation runs: every command stays pending.
            "max_inflight_commands": args.commands.max(20_000) * 2,
        },
        "topics": {
            "commands": [format!("{id}.commands")],
            "fl_read": format!("{id}.speaker_{{fl}}"),
            "fl_write": format!("{id}.disco_{{fl}}"),
            "events": format!("{id}.events"),
            "default_reply": format!("{id}.northbound"),
            "dead_letter": format!("{id}.dead"),
            "switch_map": format!("{id}.switch-map"),
            "journal": format!("{id}.journal"),
            // Alive and sync requests on their own topics: the read topics carry commands only.
            "lanes": {"control": format!("{id}.control_{{fl}}")},
        },
        "fls": fls,
        "timeouts": {"ack": "1h", "answer": "1h", "alive_interval": "1h", "alive_timeout": "2h"},
        "sync": {"at_start": false, "periodic": "0s"},
        "sim": {"switches_per_fl": per_fl, "answer_delay": "0s"},
        "load": {"reply_topic": format!("{id}.reply"), "grace": "15s"},
        "admin": {"enabled": false},
    });
    if let Some(extra) = &args.router_config {
        if let Ok(extra) = serde_yaml_ng::from_str::<Value>(extra) {
            fl_router::config::merge_json(&mut v, extra);
        }
    }
    v
}

fn write_config(dir: &Path, name: &str, v: &Value) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, serde_json::to_string_pretty(v)?)?;
    Ok(path)
}

/// The configs of a run's router instances: `v` itself for one (unless `--cluster`); for
/// several, `v` as one cluster (its own cluster topics, named after the run) with an instance id each.
fn instance_configs(args: &BenchArgs, v: &Value, name: &str) -> Vec<Value> {
    let n = args.instances.max(1);
    if n == 1 && !args.cluster {
        return vec![v.clone()];
    }
    (1..=n)
        .map(|i| {
            let mut c = v.clone();
            c["cluster"] = json!({
                "enabled": true,
                "owners_topic": format!("{name}.owners"),
                "leader_topic": format!("{name}.leader"),
                "collect_topic": format!("{name}.collect"),
            });
            // An FL's owner adopts sync requests from its read topics: no lane of their own.
            if let Some(lanes) = c["topics"]["lanes"].as_object_mut() {
                lanes.remove("control");
            }
            c["kafka"]["instance_id"] = json!(format!("{name}-i{i}"));
            c
        })
        .collect()
}

/// Every instance of a run (configs written as `<name>-i<k>.yaml`, logs beside them).
fn spawn_all(
    args: &BenchArgs,
    side: Side,
    configs: &[Value],
    name: &str,
) -> anyhow::Result<Vec<Child>> {
    configs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let n = format!("{name}-i{}", i + 1);
            let cfg = write_config(&args.out, &n, v)?;
            spawn_middle(args, side, &cfg, &args.out.join(format!("{n}.log")))
        })
        .collect()
}

fn cpu_of(children: &[Child]) -> f64 {
    children.iter().map(|c| cpu_seconds(c.id())).sum()
}

/// The cluster's map as a running cluster has it on its switch-map topic: a read-write fact
/// per switch from its FL's owner.
fn seed_facts(client: &ClientConfig, config: &Config, per_fl: usize) -> anyhow::Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = client.create()?;
    for (i, f) in config.fls.iter().enumerate() {
        for j in 0..per_fl {
            let sw = crate::sim::fl::switch_id(i, j);
            let key = format!(
                "{}{}/{sw}",
                fl_router_actors::routing::dispatcher::FACT_PREFIX,
                f.id
            );
            let value =
                json!({"fl": f.id, "mode": "read_write", "since": 1, "via": "event"}).to_string();
            send(
                &producer,
                BaseRecord::to(&config.topics.switch_map)
                    .key(key.as_str())
                    .payload(value.as_str()),
            )?;
        }
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// One switch event per switch on its FL's write topic (the router learns the map from them),
/// then `args.commands` commands round robin over the switches.
fn prefill(client: &ClientConfig, setup: &Setup, args: &BenchArgs) -> anyhow::Result<()> {
    let config = &setup.config;
    let started = Instant::now();
    let mut pc = client.clone();
    pc.set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2000000");
    let producer: ThreadedProducer<DefaultProducerContext> = pc.create()?;
    let classes = &config.protocol.classes;
    let mut switches = Vec::new();
    for (i, f) in config.fls.iter().enumerate() {
        let topic = config.topics.fl_write_topic(&f.id);
        for j in 0..setup.sim.switches_per_fl {
            let sw = crate::sim::fl::switch_id(i, j);
            let ev = json!({"clazz": classes.info_message, "correlation_id": format!("ev-{sw}"), "timestamp": 1,
                "payload": {"clazz": "org.openkilda.messaging.info.event.SwitchInfoData", "switch_id": sw, "state": "ACTIVATED"}})
            .to_string();
            send(
                &producer,
                BaseRecord::to(&topic).key(sw.as_str()).payload(ev.as_str()),
            )?;
            switches.push(sw);
        }
    }
    let topic = &config.topics.command_topics()[0];
    for n in 0..args.commands {
        let cid = format!("bench-{n:09}");
        let sw = &switches[n % switches.len()];
        let mut body = format!(
            r#"{{"clazz":"{}","correlation_id":"{cid}","timestamp":1,"payload":{{"clazz":"org.openkilda.messaging.command.switches.DumpRulesRequest","switch_id":"{sw}","pad":""}}}}"#,
            classes.command_message
        );
        let pad = args.size.saturating_sub(body.len());
        body.insert_str(body.len() - 3, &"x".repeat(pad));
        send(
            &producer,
            BaseRecord::to(topic)
                .key(cid.as_str())
                .payload(body.as_str()),
        )?;
    }
    producer.flush(Duration::from_secs(120))?;
    println!(
        "  pre-filled {} commands of {} bytes in {:.1} s",
        args.commands,
        args.size,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut rec: BaseRecord<'_, str, str>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(rec) {
            Ok(()) => return Ok(()),
            Err((e, r))
                if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
            {
                std::thread::sleep(Duration::from_millis(5));
                rec = r;
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

/// The sum of the end offsets of `topics` (every partition).
fn end_offsets(consumer: &BaseConsumer, topics: &[String], partitions: i32) -> i64 {
    let mut sum = 0;
    for t in topics {
        for p in 0..partitions {
            if let Ok((_, high)) = consumer.fetch_watermarks(t, p, Duration::from_secs(5)) {
                sum += high;
            }
        }
    }
    sum
}

/// The service binary, built beside this one (`cargo build --release --workspace`).
pub fn service_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let service = exe.with_file_name("fl-router");
    anyhow::ensure!(
        service.exists(),
        "{} not found: build the service beside the tooling (cargo build --release --workspace)",
        service.display()
    );
    Ok(service)
}

/// The pipe's sub-command for `--baseline lean`; nothing else (the default sub-command).
fn pipe_args(args: &BenchArgs, side: Side) -> &'static [&'static str] {
    match (side, args.baseline.as_str()) {
        (Side::Pipe, "lean") => &["pipe", "--lean"],
        (Side::Pipe, "lean-pending") => &["pipe", "--lean", "--pending"],
        _ => &[],
    }
}

/// The router, or the baseline `--baseline` names (the Kafka Streams one is not this binary).
fn spawn_middle(args: &BenchArgs, side: Side, config: &Path, log: &Path) -> anyhow::Result<Child> {
    match (side, args.baseline.as_str()) {
        (Side::Pipe, "kstreams") => kstreams::spawn(config, log, &args.kstreams_set),
        _ => spawn(side, config, log, pipe_args(args, side)),
    }
}

fn spawn(side: Side, config: &Path, log: &Path, extra: &[&str]) -> anyhow::Result<Child> {
    // The router is the service binary; the pipe, the simulator and the load are this one's.
    let exe = match (side, extra.is_empty()) {
        (Side::Router, true) => service_exe()?,
        _ => std::env::current_exe()?,
    };
    let mut cmd = Command::new(exe);
    cmd.arg("-c").arg(config);
    if side == Side::Pipe && extra.is_empty() {
        cmd.arg("pipe");
    }
    cmd.args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?);
    Ok(cmd.spawn()?)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat; here 11 and 12 (state is field 3).
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Peak resident set size (VmHWM) in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn saturation_run(
    args: &BenchArgs,
    base: &Value,
    id: &str,
    run: usize,
    side: Side,
    client: &ClientConfig,
) -> anyhow::Result<Saturation> {
    let name = format!("{id}-{}-{run}", side.name());
    let mut v = base.clone();
    // A fresh group (reads every command from the start), switch map and FL read topics per
    // run: the router reads its FL read topics back at start, and commands it finds forwarded
    // there already (an earlier run's) would be adopted, not forwarded again, as after a restart.
    v["kafka"]["group_id"] = json!(name);
    v["topics"]["fl_read"] = json!(format!("{name}.speaker_{{fl}}"));
    v["topics"]["switch_map"] = json!(format!("{name}.switch-map"));
    v["topics"]["journal"] = json!(format!("{name}.journal"));
    let configs = instance_configs(args, &v, &name);
    let cfg = write_config(&args.out, &name, &configs[0])?;
    let setup = Setup::load(&cfg)?;
    let config = setup.config.clone();
    let read_topics: Vec<String> = config
        .fls
        .iter()
        .map(|f| config.topics.fl_read_topic(&f.id))
        .collect();
    let read_topics = &read_topics[..];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(fl_router::kafka::topics::ensure(
        &config,
        client,
        &fl_router::kafka::topics::all_topics(&config),
    ))?;
    if config.cluster.enabled {
        seed_facts(client, &config, setup.sim.switches_per_fl)?;
    }
    let consumer: BaseConsumer = client.clone().set("group.id", &name).create()?;
    let start_sum = end_offsets(&consumer, read_topics, args.partitions);
    let target = start_sum + args.commands as i64;
    let children = spawn_all(args, side, &configs, &name)?;
    let give_up = Instant::now() + Duration::from_secs(600);
    let mut first: Option<(Instant, f64)> = None;
    let mut last_sum = start_sum;
    let result = loop {
        let sum = end_offsets(&consumer, read_topics, args.partitions);
        let now = Instant::now();
        if first.is_none() && sum > start_sum {
            first = Some((now, cpu_of(&children)));
        }
        if sum >= target {
            break first.map(|(t0, c0)| (now.duration_since(t0), cpu_of(&children) - c0));
        }
        if now > give_up {
            break None;
        }
        if sum != last_sum {
            last_sum = sum;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let rss = children.iter().map(|c| peak_rss_mib(c.id())).sum();
    children.into_iter().for_each(stop);
    let (took, cpu) = result.with_context(|| {
        format!(
            "{} did not forward {} commands within 10 min (forwarded {})",
            side.name(),
            args.commands,
            last_sum - start_sum
        )
    })?;
    let n = args.commands as f64;
    Ok(Saturation {
        side,
        msgs_per_s: n / took.as_secs_f64().max(1e-9),
        cpu_s_per_million: cpu / n * 1e6,
        peak_rss_mib: rss,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn summary(results: &[Saturation], sides: &[Side]) {
    let med = |side: Side, f: fn(&Saturation) -> f64| {
        median(results.iter().filter(|r| r.side == side).map(f).collect())
    };
    for &side in sides {
        println!(
            "  median {:>6}: {:>9.0} msg/s  {:>6.2} CPU-s per million  peak RSS {:>7.1} MiB",
            side.name(),
            med(side, |r| r.msgs_per_s),
            med(side, |r| r.cpu_s_per_million),
            med(side, |r| r.peak_rss_mib)
        );
    }
    if sides.len() == 2 {
        let (r, p) = (Side::Router, Side::Pipe);
        println!(
            "  router / pipe: throughput {:.2}x, CPU per message {:.2}x",
            med(r, |x| x.msgs_per_s) / med(p, |x| x.msgs_per_s).max(1e-9),
            med(r, |x| x.cpu_s_per_million) / med(p, |x| x.cpu_s_per_million).max(1e-9)
        );
    }
}

fn round_trip(
    args: &BenchArgs,
    base: &Value,
    id: &str,
    rate: u64,
    side: Side,
    run: usize,
) -> anyhow::Result<()> {
    let name = format!("{id}-rt{rate}-{}-{run}", side.name());
    let mut v = base.clone();
    v["kafka"]["group_id"] = json!(name);
    v["kafka"]["max_inflight_commands"] = json!(20_000);
    v["timeouts"]["ack"] = json!("5s");
    v["timeouts"]["answer"] = json!("10s");
    v["topics"]["commands"] = json!([format!("{name}.commands")]);
    v["topics"]["switch_map"] = json!(format!("{name}.switch-map"));
    v["topics"]["journal"] = json!(format!("{name}.journal"));
    // The FL topics too: shared, a run's simulator and middle (new groups, read from the
    // start) would first go through every earlier run's commands and answers again.
    v["topics"]["fl_read"] = json!(format!("{name}.speaker_{{fl}}"));
    v["topics"]["fl_write"] = json!(format!("{name}.disco_{{fl}}"));
    if v["topics"]["lanes"].get("control").is_some() {
        v["topics"]["lanes"]["control"] = json!(format!("{name}.control_{{fl}}"));
    }
    v["load"]["reply_topic"] = json!(format!("{name}.reply"));
    v["load"]["warmup"] = json!(humantime::format_duration(*args.round_trip_warmup).to_string());
    let configs = instance_configs(args, &v, &name);
    let cfg = write_config(&args.out, &name, &configs[0])?;
    let log = |what: &str| args.out.join(format!("{name}-{what}.log"));
    let middle = if side == Side::Router {
        spawn_all(args, side, &configs, &name)?
    } else {
        vec![spawn_middle(args, side, &cfg, &log(side.name()))?]
    };
    // Joined their groups (a benchmark, not a test: waits by the clock); a cluster takes longer.
    let settle = Duration::from_secs(if middle.len() > 1 { 12 } else { 3 });
    std::thread::sleep(settle);
    let sim = spawn(side, &cfg, &log("sim"), &["sim"])?;
    std::thread::sleep(settle); // the instances read the simulator's switch events (and facts)
    let report = args.out.join(format!("{name}.json"));
    let cpu0 = cpu_of(&middle);
    let duration =
        humantime::format_duration(*args.round_trip + *args.round_trip_warmup).to_string();
    let status = Command::new(std::env::current_exe()?)
        .arg("-c")
        .arg(&cfg)
        .args(["--duration", &duration, "load", "--rate", &rate.to_string()])
        .arg("--report")
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log("load"))?)
        .status()?;
    let cpu = cpu_of(&middle) - cpu0;
    let rss: f64 = middle.iter().map(|c| peak_rss_mib(c.id())).sum();
    stop(sim);
    middle.into_iter().for_each(stop);
    anyhow::ensure!(
        status.success(),
        "load run failed: see {}",
        log("load").display()
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    let sent = r["sent"].as_f64().unwrap_or(0.0);
    let hop = |k: &str| {
        let v = |i: usize| r["stages"][k][i].as_u64().unwrap_or(0);
        format!("{}/{}/{}", v(0), v(1), v(2))
    };
    println!(
        "  round trip {rate:>6}/s {:>6} run {}: sent {:>8} answered {:>8} lost {:>5} router errors {:>5}  p50 {:>8.1} ms  p99 {:>8.1} ms  p99.9 {:>8.1} ms  {:>6.2} CPU-s per million  peak RSS {:>6.1} MiB",
        side.name(),
        run + 1,
        r["sent"],
        r["answered"],
        r["lost"],
        r["router_errors"],
        r["p50_ms"].as_f64().unwrap_or(0.0),
        r["p99_ms"].as_f64().unwrap_or(0.0),
        r["p999_ms"].as_f64().unwrap_or(0.0),
        cpu / sent.max(1.0) * 1e6,
        rss
    );
    println!(
        "      hops p50/p99/max ms (after a {} warm-up of {} commands): load->FL answer {}  FL answer->reply record {}  reply->load {}",
        humantime::format_duration(*args.round_trip_warmup),
        r["warmup_commands"],
        hop("to_fl"),
        hop("answer_hop"),
        hop("to_load"),
    );
    Ok(())
}
