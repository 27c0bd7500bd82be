//! The FL speaker simulator: N simulated FLs with K switches each, speaking the FL side of
//! docs/protocol.md over any Kafka (the embedded mock cluster, a local broker, staging).
//!
//! It runs on its own thread and runtime so that, in the embedded demo, it never competes
//! with the router's actor thread. Reads start at the read topics' end offsets at start-up
//! (explicit assignment, no group join): it answers what is sent to it from then on.

pub mod fl;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fl_router_actors::settings::Settings;
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use self::fl::{Reply, SimFl, Speaker};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Switches each simulated FL manages.
    pub switches_per_fl: usize,
    /// Time from a command to its answer (the ack is immediate).
    #[serde(with = "humantime_serde")]
    pub answer_delay: Duration,
    /// Uniform random extra delay in [0, answer_jitter).
    #[serde(with = "humantime_serde")]
    pub answer_jitter: Duration,
    /// Every this often a random switch disconnects and reconnects; 0s turns churn off.
    #[serde(with = "humantime_serde")]
    pub churn_interval: Duration,
    /// How long a churned switch stays disconnected.
    #[serde(with = "humantime_serde")]
    pub churn_down: Duration,
    /// Faults per FL id, applied at start (they can be changed while running).
    pub faults: BTreeMap<String, FaultConfig>,
    /// Switches on several FLs: each entry connects FL `fl` to every switch of FL
    /// `switches_of` as well, read-write (a standby for them) or read-only.
    pub connections: Vec<ExtraConnection>,
    /// The switch ids of named FLs, instead of `switches_per_fl` generated ones (a stand-in
    /// for a real region whose switches a test names).
    pub switches: BTreeMap<String, Vec<String>>,
    /// How the simulated FLs speak: `design` (acks, counted sync chains) or `openkilda`
    /// (today's OpenKilda Floodlight: no acks, plain network dumps, switch views in events).
    pub speaker: Speaker,
    /// The FLs announce their switches (connect events) when the simulator starts; `false`
    /// plays regions that have run for long (their switches' events are old news, so only a
    /// sync tells the router about them).
    pub announce: bool,
    /// Every record the FLs write carries this version header (its name from
    /// `protocol.version_header.name`), as an OpenKilda Floodlight's producer stamps its build
    /// version; none when unset.
    pub version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraConnection {
    pub fl: String,
    pub switches_of: String,
    #[serde(default)]
    pub read_only: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            switches_per_fl: 4,
            answer_delay: Duration::from_millis(1),
            answer_jitter: Duration::ZERO,
            churn_interval: Duration::ZERO,
            churn_down: Duration::from_secs(1),
            faults: BTreeMap::new(),
            connections: Vec::new(),
            switches: BTreeMap::new(),
            speaker: Speaker::Design,
            announce: true,
            version: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    pub silent: bool,
    #[serde(with = "humantime_serde")]
    pub extra_delay: Duration,
    /// Fraction (0..=1) of acks and answers dropped.
    pub drop_answers: f64,
    /// The first this-many writes fail and are reported in AliveResponse.
    pub failed_writes: u32,
    /// Crash (read and write nothing) every this often; 0s = never.
    #[serde(with = "humantime_serde")]
    pub crash_every: Duration,
    /// How long each crash lasts; the FL then reconnects its switches.
    #[serde(with = "humantime_serde")]
    pub crash_for: Duration,
    /// The first this-many sync chains have a gap (one message missing).
    pub chain_gaps: u32,
    /// Every network dump carries one entry without a readable switch.
    pub unreadable_dump: bool,
}

impl SimConfig {
    pub fn validate(&self, fl_ids: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for (id, f) in &self.faults {
            if !fl_ids.contains(id) {
                out.push(format!("sim.faults.{id}: no FL with this id in fls"));
            }
            if !f.crash_every.is_zero() && f.crash_for >= f.crash_every {
                out.push(format!(
                    "sim.faults.{id}.crash_for: must be shorter than crash_every"
                ));
            }
            if !(0.0..=1.0).contains(&f.drop_answers) {
                out.push(format!(
                    "sim.faults.{id}.drop_answers: must be between 0 and 1"
                ));
            }
        }
        for (i, c) in self.connections.iter().enumerate() {
            for (key, id) in [("fl", &c.fl), ("switches_of", &c.switches_of)] {
                if !fl_ids.contains(id) {
                    out.push(format!(
                        "sim.connections[{i}].{key}: no FL with the id {id:?} in fls"
                    ));
                }
            }
            if c.fl == c.switches_of {
                out.push(format!(
                    "sim.connections[{i}].switches_of: an FL is already connected to its own switches"
                ));
            }
        }
        for id in self.switches.keys() {
            if !fl_ids.contains(id) {
                out.push(format!("sim.switches.{id}: no FL with this id in fls"));
            }
        }
        if self.switches_per_fl > 65_535 {
            out.push("sim.switches_per_fl: at most 65535".into());
        }
        out
    }
}

/// The switch ids the simulator gives the configured FLs (for a load run in another process).
pub fn switches_of(setup: &crate::Setup) -> Vec<String> {
    let sim = &setup.sim;
    setup
        .config
        .fls
        .iter()
        .enumerate()
        .flat_map(|(i, f)| match sim.switches.get(&f.id) {
            Some(named) => named.clone(),
            None => (0..sim.switches_per_fl)
                .map(|j| fl::switch_id(i, j))
                .collect(),
        })
        .collect()
}

/// The running simulator; stops (and joins its thread) when dropped.
pub struct Simulator {
    pub fls: Vec<Arc<SimFl>>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Starts simulating every FL of `settings.fls` against the Kafka of `client`.
    pub fn start(
        client: ClientConfig,
        settings: &Settings,
        sim: &SimConfig,
    ) -> anyhow::Result<Simulator> {
        let mut fls: Vec<SimFl> = settings
            .fls
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut s = SimFl::new(
                    i,
                    &f.id,
                    f.region.as_deref(),
                    sim.switches_per_fl,
                    settings.protocol.classes.clone(),
                    sim.answer_delay,
                    sim.answer_jitter,
                );
                s.speaker = sim.speaker;
                if let Some(named) = sim.switches.get(&f.id) {
                    s.switches = named.clone();
                }
                if let Some(fault) = sim.faults.get(&f.id) {
                    s.knobs.silent.store(fault.silent, Relaxed);
                    s.knobs
                        .extra_delay_us
                        .store(fault.extra_delay.as_micros() as u64, Relaxed);
                    s.knobs.set_drop_fraction(fault.drop_answers);
                    s.knobs.fail_next_writes.store(fault.failed_writes, Relaxed);
                    s.knobs.chain_gaps.store(fault.chain_gaps, Relaxed);
                    s.knobs
                        .unreadable_dump
                        .store(fault.unreadable_dump, Relaxed);
                }
                s
            })
            .collect();
        for c in &sim.connections {
            let of = fls.iter().find(|f| f.id == c.switches_of);
            let more: Vec<String> = of.map(|f| f.switches.clone()).unwrap_or_default();
            if let Some(f) = fls.iter_mut().find(|f| f.id == c.fl) {
                f.extra
                    .extend(more.into_iter().map(|sw| (sw, !c.read_only)));
            }
        }
        let fls: Vec<Arc<SimFl>> = fls.into_iter().map(Arc::new).collect();
        // Each FL reads every lane meant for it (commands and the control lane) and writes
        // to its first output lane.
        let mut read: Vec<(String, usize)> = Vec::new();
        for (i, f) in settings.fls.iter().enumerate() {
            let t = &settings.topics;
            for topic in t
                .fl_read_topics(&f.id)
                .into_iter()
                .chain([t.control_topic(&f.id)])
            {
                if !read.iter().any(|(r, _)| *r == topic) {
                    read.push((topic, i));
                }
            }
        }
        let write: Vec<String> = settings
            .fls
            .iter()
            .map(|f| settings.topics.fl_write_topic(&f.id))
            .collect();

        let mut pcfg = fl_router::kafka::for_producer(&client);
        // Idempotent, like a real FL should be: a broker failover cannot duplicate an answer.
        pcfg.set("linger.ms", "1")
            .set("enable.idempotence", "true")
            .set("queue.buffering.max.messages", "1000000");
        let producer: ThreadedProducer<DefaultProducerContext> = pcfg.create()?;
        let mut ccfg = client;
        ccfg.set(
            "group.id",
            format!("fl-router-sim-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
        let consumer: StreamConsumer = ccfg.create()?;
        let read_topics: Vec<String> = read.iter().map(|(t, _)| t.clone()).collect();
        fl_router::kafka::assign_at_end(&consumer, &read_topics)?;

        let (stop, stop_rx) = watch::channel(false);
        let crashes = settings
            .fls
            .iter()
            .map(|f| {
                sim.faults
                    .get(&f.id)
                    .map_or((Duration::ZERO, Duration::ZERO), |c| {
                        (c.crash_every, c.crash_for)
                    })
            })
            .collect();
        let world = Arc::new(World {
            fls: fls.clone(),
            write,
            producer,
            churn: (sim.churn_interval, sim.churn_down),
            crashes,
            announce: sim.announce,
            version: sim.version.clone().map(|v| {
                let name = &settings.protocol.version_header.name;
                let name = if name.is_empty() {
                    "kafka.message.version.header".to_string()
                } else {
                    name.clone()
                };
                (name, v)
            }),
        });
        let by_topic: HashMap<String, usize> = read.into_iter().collect();
        let thread = std::thread::Builder::new()
            .name("fl-sim".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => return warn!(error = %e, "simulator runtime failed to start"),
                };
                rt.block_on(serve(world, consumer, by_topic, stop_rx));
            })?;
        info!(
            fls = fls.len(),
            switches_per_fl = sim.switches_per_fl,
            "FL simulator started"
        );
        Ok(Simulator {
            fls,
            stop,
            thread: Some(thread),
        })
    }

    pub fn fl(&self, id: &str) -> Option<&Arc<SimFl>> {
        self.fls.iter().find(|f| f.id == id)
    }

    /// Every switch of every simulated FL.
    pub fn switches(&self) -> Vec<String> {
        self.fls
            .iter()
            .flat_map(|f| f.switches.iter().cloned())
            .collect()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct World {
    fls: Vec<Arc<SimFl>>,
    write: Vec<String>,
    producer: ThreadedProducer<DefaultProducerContext>,
    churn: (Duration, Duration),
    /// Per FL: (crash every, crash for); zero = never.
    crashes: Vec<(Duration, Duration)>,
    announce: bool,
    /// (header name, value) stamped on every write.
    version: Option<(String, String)>,
}

impl World {
    fn write(&self, fl: usize, reply: &Reply) {
        let f = &self.fls[fl];
        if f.knobs.is_crashed(Instant::now()) || f.knobs.take_write_failure() {
            return;
        }
        let mut rec = BaseRecord::to(&self.write[fl])
            .key(reply.key.as_bytes())
            .payload(reply.payload.as_ref());
        if let Some((name, value)) = &self.version {
            rec = rec.headers(rdkafka::message::OwnedHeaders::new().insert(
                rdkafka::message::Header {
                    key: name,
                    value: Some(value.as_bytes()),
                },
            ));
        }
        if let Err((e, _)) = fl_router::kafka::send_waiting(&self.producer, rec) {
            warn!(fl = %f.id, error = %e, "simulator write failed");
        }
    }

    fn send_all(self: &Arc<Self>, fl: usize, replies: Vec<Reply>) {
        for r in replies {
            if r.delay.is_zero() {
                self.write(fl, &r);
            } else {
                let w = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(r.delay).await;
                    w.write(fl, &r);
                });
            }
        }
    }
}

async fn serve(
    world: Arc<World>,
    consumer: StreamConsumer,
    by_topic: HashMap<String, usize>,
    mut stop: watch::Receiver<bool>,
) {
    for i in 0..world.fls.len() {
        if world.announce {
            world.send_all(i, world.fls[i].connect_events());
        }
    }
    let mut was_down = vec![false; world.fls.len()];
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let (churn_every, churn_down) = world.churn;
    let mut next_churn = Instant::now() + churn_every;
    let mut next_crash: Vec<Instant> = world
        .crashes
        .iter()
        .map(|(every, _)| Instant::now() + *every)
        .collect();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                let now = Instant::now();
                for (i, f) in world.fls.iter().enumerate() {
                    let (every, lasts) = world.crashes[i];
                    if !every.is_zero() && now >= next_crash[i] {
                        next_crash[i] = now + every;
                        info!(fl = %f.id, for_ms = lasts.as_millis() as u64, "simulated FL crashes");
                        f.knobs.crash_for(lasts);
                    }
                    let down = f.knobs.is_crashed(now);
                    if was_down[i] && !down {
                        // A restarted FL reconnects its switches.
                        info!(fl = %f.id, "simulated FL back up");
                        world.send_all(i, f.connect_events());
                    }
                    was_down[i] = down;
                }
                if !churn_every.is_zero() && now >= next_churn && !world.fls.is_empty() {
                    next_churn = now + churn_every;
                    let i = fastrand::usize(0..world.fls.len());
                    if let Some(sw) = fastrand::choice(&world.fls[i].switches).cloned() {
                        world.send_all(i, vec![world.fls[i].switch_event(&sw, "DEACTIVATED")]);
                        let w = world.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(churn_down).await;
                            let ev = w.fls[i].switch_event(&sw, "ACTIVATED");
                            w.send_all(i, vec![ev]);
                        });
                    }
                }
            }
            m = consumer.recv() => match m {
                Ok(m) => {
                    let Some(&i) = by_topic.get(m.topic()) else { continue };
                    if world.fls[i].knobs.is_crashed(Instant::now()) {
                        continue; // a crashed FL loses what is sent to it
                    }
                    let replies = world.fls[i].on_message(m.payload().unwrap_or_default());
                    world.send_all(i, replies);
                }
                Err(e) => {
                    warn!(error = %e, "simulator consume error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}
