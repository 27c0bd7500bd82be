//! [`Router`]: the running service — engine, consumers, producer — and its orderly shutdown:
//! stop reading commands, let pending commands finish (FL answers are still read), flush the
//! producer, commit.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fl_router_actors::Engine;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};

use crate::cluster;
use crate::config::Config;
use crate::history::History;
use crate::kafka;
use crate::kafka::consumer::{self, LoopParams, Role};
use crate::kafka::freshness;
use crate::kafka::offsets::OffsetTracker;
use crate::kafka::producer::KafkaOutbox;
use crate::kafka::stats::KafkaStats;
use crate::latency::RouterLatency;

pub struct Router {
    engine: Engine,
    outbox: Arc<KafkaOutbox>,
    trackers: Trackers,
    /// The shutdown sequence's signals, in their order.
    drain: Drain,
    /// The consumer loops, joined at shutdown (they make the final commits).
    loops: Vec<JoinHandle<()>>,
    /// Everything else the router runs (status log, mailbox watch, freshness, a cluster
    /// instance's map reader and collector, history): aborted together at shutdown.
    background: JoinSet<()>,
    /// A cluster instance's owners and leader memberships (a thread).
    groups: Option<Groups>,
    shares: Arc<cluster::ownership::Shares>,
    /// The running peers found at start, and how their settings differ from this one's.
    peers: Arc<Vec<cluster::peers::Peer>>,
    /// The consumers that are group members (left on a reload).
    members: Vec<Arc<consumer::TrackedConsumer>>,
    carried: Carried,
    ready: watch::Receiver<bool>,
    fatal: watch::Receiver<Option<String>>,
    drain_timeout: Duration,
    kafka_stats: Arc<KafkaStats>,
}

/// Each consumer's offsets (commands, FL output, a cluster instance's forwards).
struct Trackers {
    commands: Arc<OffsetTracker>,
    fl: Arc<OffsetTracker>,
    forwards: Arc<OffsetTracker>,
}

/// The signals of an orderly shutdown: stop reading commands (FL output is still read, so
/// pending commands get answers), then stop reading FL output, then commit and return.
struct Drain {
    stop_commands: watch::Sender<bool>,
    stop_fl: watch::Sender<bool>,
    finish: watch::Sender<bool>,
}

impl Drain {
    fn new() -> (Drain, DrainRx) {
        let (stop_commands, c) = watch::channel(false);
        let (stop_fl, f) = watch::channel(false);
        let (finish, x) = watch::channel(false);
        let tx = Drain {
            stop_commands,
            stop_fl,
            finish,
        };
        (
            tx,
            DrainRx {
                stop_commands: c,
                stop_fl: f,
                finish: x,
            },
        )
    }
}

#[derive(Clone)]
struct DrainRx {
    stop_commands: watch::Receiver<bool>,
    stop_fl: watch::Receiver<bool>,
    finish: watch::Receiver<bool>,
}

/// A cluster instance's group memberships: a thread, stopped by its flag.
struct Groups {
    thread: std::thread::JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

/// What the consumer loops are given besides their consumer.
struct LoopCommon {
    engine: Engine,
    commit_interval: Duration,
    drain: DrainRx,
    fatal: watch::Sender<Option<String>>,
}

impl LoopCommon {
    fn params(
        &self,
        consumer: Arc<consumer::TrackedConsumer>,
        tracker: Arc<OffsetTracker>,
        role: Role,
        name: &'static str,
    ) -> LoopParams {
        LoopParams {
            consumer,
            tracker,
            engine: self.engine.clone(),
            role,
            name,
            commit_interval: self.commit_interval,
            stop_reading: match role {
                Role::Commands => self.drain.stop_commands.clone(),
                _ => self.drain.stop_fl.clone(),
            },
            finish: self.drain.finish.clone(),
            gate: None,
            ready: None,
            ready_unassigned: false,
            max_outstanding: 0,
            fatal: self.fatal.clone(),
        }
    }
}

impl Router {
    /// Creates topics, starts the engine, the producer and both consumers.
    /// Must be called inside an actix `System` (the engine's actors live there).
    pub async fn start(config: &Config) -> anyhow::Result<Router> {
        Self::start_after(config, None).await
    }

    /// [`Router::start`] in place of `previous` (a reload): its command traces, its history
    /// and its latency figures go on in the new router.
    pub async fn start_after(config: &Config, previous: Option<Carried>) -> anyhow::Result<Router> {
        let k = &config.kafka;
        let cluster = config.cluster.enabled;
        kafka::topics::ensure(
            config,
            &kafka::base_config(k),
            &kafka::topics::all_topics(config),
        )
        .await?;
        // A cluster instance first checks its settings against its running peers'.
        let peers = match cluster {
            true => cluster::peers::check_and_announce(config).await?,
            false => Vec::new(),
        };
        let kafka_stats = Arc::new(KafkaStats::default());
        let outbox = KafkaOutbox::start(
            &kafka::producer_config(k),
            config.topics.dead_letter.clone(),
            k.produce_retries,
            Some(kafka_stats.clone()),
        )?;
        count_partitions(config, &outbox).await;
        let carried = previous.unwrap_or_else(|| Carried::new(config));
        let engine =
            Engine::start_with_traces(config.settings(), outbox.clone(), carried.traces.clone())?;
        if !cluster {
            // A cluster instance reads the map topic live instead (facts and decisions).
            restore_switch_map(config, &engine).await;
        }
        read_back_previous(config, &engine).await;

        let trackers = Trackers {
            commands: OffsetTracker::new(),
            fl: OffsetTracker::new(),
            forwards: OffsetTracker::new(),
        };
        trackers.commands.trace_commits_to(engine.traces().clone());
        let instance = config.instance_id();
        let cmd_consumer = Arc::new(consumer::create(
            &kafka::consumer_config(k, &k.group_id, Some(&instance)),
            "commands",
            &config.topics.command_topics(),
            trackers.commands.clone(),
            Some(kafka_stats.clone()),
        )?);
        let fl_consumer = Arc::new(fl_consumer(config, &trackers.fl, &kafka_stats)?);
        let mut members = vec![cmd_consumer.clone()];
        if !cluster {
            members.push(fl_consumer.clone());
        }
        info!(brokers = %k.brokers, fls = config.fls.len(), instance = %instance, cluster, "fl-router started");

        let (drain, drain_rx) = Drain::new();
        let (caught_up_tx, caught_up_rx) = watch::channel(false);
        let (ready_tx, ready) = watch::channel(false);
        let (fatal_tx, fatal) = watch::channel(None);
        let common = LoopCommon {
            engine: engine.clone(),
            commit_interval: k.commit_interval,
            drain: drain_rx,
            fatal: fatal_tx,
        };
        let mut loops = Vec::new();
        let mut background = JoinSet::new();
        let shares = Arc::new(cluster::ownership::Shares::default());
        let (groups, also) = match cluster {
            true => {
                let side = ClusterSide::start(
                    config,
                    &common,
                    &trackers,
                    fl_consumer.clone(),
                    &kafka_stats,
                    &shares,
                    &mut background,
                )?;
                loops.push(side.forwards_loop);
                (Some(side.groups), Some(side.routing_may_start))
            }
            false => (None, None),
        };
        loops.push(tokio::spawn(consumer::run_loop(LoopParams {
            gate: Some(caught_up_rx),
            ready: Some(ready_tx),
            ready_unassigned: cluster,
            max_outstanding: k.max_inflight_commands,
            ..common.params(
                cmd_consumer,
                trackers.commands.clone(),
                Role::Commands,
                "commands",
            )
        })));
        background.spawn(freshness::run(freshness::Params {
            consumer: fl_consumer.clone(),
            tracker: trackers.fl.clone(),
            engine: engine.clone(),
            fl_topics: config
                .fls
                .iter()
                .map(|f| (f.id.clone(), config.topics.fl_write_topics(&f.id)))
                .collect(),
            reports: freshness::Reports::Answers,
            catch_up_timeout: k.catch_up_timeout,
            caught_up: Some(caught_up_tx),
            also,
        }));
        loops.push(tokio::spawn(consumer::run_loop(common.params(
            fl_consumer,
            trackers.fl.clone(),
            Role::FlOutput,
            "fl",
        ))));
        background.spawn(status_log(engine.clone(), outbox.clone()));
        outbox.measure_latency(carried.latency.clone());
        background.spawn(crate::history::run(
            engine.clone(),
            carried.latency.clone(),
            carried.history.clone(),
        ));
        background.spawn(mailbox_watch(engine.clone()));
        Ok(Router {
            engine,
            outbox,
            trackers,
            drain,
            loops,
            background,
            groups,
            shares,
            peers: Arc::new(peers),
            members,
            carried,
            ready,
            fatal,
            drain_timeout: k.drain_timeout,
            kafka_stats,
        })
    }

    /// This instance's memberships, for `/api/cluster`.
    pub fn cluster_view(&self, config: &Config) -> crate::cluster::ClusterView {
        use crate::cluster::{ClusterView, Membership};
        let mut memberships = vec![
            Membership {
                group: config.kafka.group_id.clone(),
                consumer: "commands",
                tracker: self.trackers.commands.clone(),
            },
            Membership {
                group: fl_group(config),
                consumer: "fl",
                tracker: self.trackers.fl.clone(),
            },
        ];
        if config.cluster.enabled {
            memberships.push(Membership {
                group: format!("{}-fwd", config.kafka.group_id),
                consumer: "forwards",
                tracker: self.trackers.forwards.clone(),
            });
        }
        ClusterView::new(
            config,
            memberships,
            config.cluster.enabled.then(|| self.shares.clone()),
            self.peers.clone(),
        )
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn outbox(&self) -> &Arc<KafkaOutbox> {
        &self.outbox
    }

    pub fn history(&self) -> &Arc<History> {
        &self.carried.history
    }

    /// What a router started in this one's place keeps (see [`Router::start_after`]).
    pub fn carried(&self) -> Carried {
        self.carried.clone()
    }

    pub fn kafka_stats(&self) -> &Arc<KafkaStats> {
        &self.kafka_stats
    }

    /// Turns true once commands are being routed (FL backlog read, command partitions assigned).
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.clone()
    }

    /// Resolves with the reason when a consumer hit a fatal error (the router cannot go on and
    /// must be restarted; a restart replays what was not committed).
    pub async fn fatal(&self) -> String {
        let mut f = self.fatal.clone();
        let why = match f.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        };
        match why {
            Some(w) => w,
            None => std::future::pending().await,
        }
    }

    /// Stops reading commands, waits for pending ones (up to the drain timeout), flushes, commits.
    pub async fn shutdown(self) {
        self.stop(false).await
    }

    /// [`Router::shutdown`], then the consumers leave their groups, so that the next engine's
    /// consumers (a reload's: new FL topics) get a new assignment at once. (A static member
    /// does not leave on close: its successor would take over the old assignment as it was.)
    pub async fn shutdown_leaving_groups(self) {
        self.stop(true).await
    }

    /// The one way a router ends: drain, commit, leave (on a reload), then every task it
    /// owns is stopped and its engine with them.
    async fn stop(mut self, leave_groups: bool) {
        info!("shutting down: no new commands; waiting for pending ones");
        let _ = self.drain.stop_commands.send(true);
        let deadline = Instant::now() + self.drain_timeout;
        // FL output is still read here, so pending commands can get their answers.
        while self.trackers.commands.outstanding() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(groups) = self.groups.take() {
            // A cluster instance gives its FLs and the leadership up: what it committed is where
            // their next owner reads on (its pending commands are adopted there).
            groups.stop.store(true, SeqCst);
            let _ = tokio::task::spawn_blocking(move || groups.thread.join()).await;
        }
        let _ = self.drain.stop_fl.send(true);
        if !self.outbox.flush(Duration::from_secs(5)) {
            warn!("producer flush timed out");
        }
        let (c, f) = (
            self.trackers.commands.outstanding(),
            self.trackers.fl.outstanding(),
        );
        if c + f > 0 {
            warn!(
                commands = c,
                fl = f,
                "inputs still in flight at shutdown; they will be read again on restart"
            );
        }
        let _ = self.drain.finish.send(true);
        for l in self.loops.drain(..) {
            let _ = l.await;
        }
        if leave_groups {
            for c in &self.members {
                // librdkafka sends a static member's LeaveGroup on an explicit unsubscribe,
                // from its own queue: serve it until the revocation is through.
                rdkafka::consumer::Consumer::unsubscribe(&**c);
                let _ = tokio::time::timeout(Duration::from_millis(500), c.recv()).await;
            }
        }
        self.background.shutdown().await;
        // Nothing of this router holds its engine now but `self`: its actors stop at their
        // next tick, and are freed with the last handle.
        self.engine.stop();
        info!("fl-router stopped");
    }
}

/// A cluster instance's side of the router: the forwards it adopts, its multi-switch results,
/// the cluster's map, and its group memberships.
struct ClusterSide {
    forwards_loop: JoinHandle<()>,
    groups: Groups,
    /// Turns true once this instance has its first share and has read the map.
    routing_may_start: watch::Receiver<bool>,
}

impl ClusterSide {
    fn start(
        config: &Config,
        common: &LoopCommon,
        trackers: &Trackers,
        fl_consumer: Arc<consumer::TrackedConsumer>,
        kafka_stats: &Arc<KafkaStats>,
        shares: &Arc<cluster::ownership::Shares>,
        background: &mut JoinSet<()>,
    ) -> anyhow::Result<ClusterSide> {
        let k = &config.kafka;
        let engine = &common.engine;
        let instance = config.instance_id();
        let fwd_consumer = Arc::new(consumer::create_manual(
            &kafka::consumer_config(k, &format!("{}-fwd", k.group_id), None),
            "forwards",
            trackers.forwards.clone(),
            Some(kafka_stats.clone()),
        )?);
        // Multi-switch parts' results from the FLs' owners.
        let collect = cluster::collect::consumer(
            &kafka::base_config(k),
            &config.cluster.collect_topic_of(&instance),
        )?;
        background.spawn(cluster::collect::run(collect, engine.clone()));
        // A silent peer is taken out of the groups after cluster.lapse.
        cluster::lapse::start(config, background)?;
        // The cluster's map first: routing waits until it is read.
        let (map_ready_tx, map_ready) = watch::channel(false);
        let (map_consumer, ends) = cluster::map_reader::consumer(
            &kafka::base_config(k),
            &config.topics.switch_map,
            &instance,
        )?;
        background.spawn(cluster::map_reader::run(
            map_consumer,
            ends,
            engine.clone(),
            map_ready_tx,
        ));
        background.spawn(freshness::run(freshness::Params {
            consumer: fwd_consumer.clone(),
            tracker: trackers.forwards.clone(),
            engine: engine.clone(),
            fl_topics: config
                .fls
                .iter()
                .map(|f| (f.id.clone(), config.topics.fl_read_topics(&f.id)))
                .collect(),
            reports: freshness::Reports::Forwards,
            catch_up_timeout: k.catch_up_timeout,
            caught_up: None,
            also: None,
        }));
        let forwards_loop = tokio::spawn(consumer::run_loop(common.params(
            fwd_consumer.clone(),
            trackers.forwards.clone(),
            Role::Forwards,
            "forwards",
        )));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = cluster::ownership::start(
            config,
            engine.clone(),
            cluster::ownership::Hand {
                name: "fl",
                consumer: fl_consumer,
                tracker: trackers.fl.clone(),
            },
            cluster::ownership::Hand {
                name: "forwards",
                consumer: fwd_consumer,
                tracker: trackers.forwards.clone(),
            },
            shares.clone(),
            stop.clone(),
        )?;
        // Routing starts once this instance has its first share and the map is read.
        let (tx, routing_may_start) = watch::channel(false);
        let sh = shares.clone();
        background.spawn(async move {
            let mut map_ready = map_ready;
            loop {
                if *map_ready.borrow() && sh.assigned.load(SeqCst) {
                    let _ = tx.send(true);
                    return;
                }
                tokio::select! {
                    _ = map_ready.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        });
        Ok(ClusterSide {
            forwards_loop,
            groups: Groups { thread, stop },
            routing_may_start,
        })
    }
}

/// The FL output consumer: subscribed to every FL's write topics, or (a cluster instance)
/// assigned by hand, FL by FL, as the owners group decides — with no static membership, its
/// commits come from a consumer that never joins the group.
fn fl_consumer(
    config: &Config,
    tracker: &Arc<OffsetTracker>,
    stats: &Arc<KafkaStats>,
) -> anyhow::Result<consumer::TrackedConsumer> {
    let k = &config.kafka;
    let group = fl_group(config);
    if config.cluster.enabled {
        return consumer::create_manual(
            &kafka::consumer_config(k, &group, None),
            "fl",
            tracker.clone(),
            Some(stats.clone()),
        );
    }
    let write_topics: Vec<String> = config
        .fls
        .iter()
        .flat_map(|f| config.topics.fl_write_topics(&f.id))
        .collect();
    consumer::create(
        &kafka::consumer_config(k, &group, Some(&config.instance_id())),
        "fl",
        &write_topics,
        tracker.clone(),
        Some(stats.clone()),
    )
}

/// What goes on from one router to the next in one process (a reload): the operator's view.
#[derive(Clone)]
pub struct Carried {
    traces: Arc<fl_router_actors::runtime::traces::Traces>,
    history: Arc<History>,
    latency: Arc<RouterLatency>,
}

impl Carried {
    fn new(config: &Config) -> Self {
        Self {
            traces: fl_router_actors::runtime::traces::Traces::new(config.limits.traced_commands),
            history: Arc::new(History::default()),
            latency: Arc::new(RouterLatency::default()),
        }
    }
}

/// Tells the outbox how many partitions each FL read topic has: forwarded commands keep the
/// requester's key but are partitioned by switch, so one switch's commands stay in order.
async fn count_partitions(config: &Config, outbox: &Arc<KafkaOutbox>) {
    let client = kafka::base_config(&config.kafka);
    let topics: Vec<String> = config
        .fls
        .iter()
        .flat_map(|f| config.topics.fl_read_topics(&f.id))
        .collect();
    let counted = tokio::task::spawn_blocking(move || {
        let reader = kafka::compacted::reader(&client)?;
        kafka::end_offsets(&reader, &topics, Duration::from_secs(20))
    })
    .await;
    match counted {
        Ok(Ok(parts)) => {
            let mut n: std::collections::HashMap<String, i32> = Default::default();
            for (t, _, _) in parts {
                *n.entry(t).or_default() += 1;
            }
            for (t, count) in n {
                outbox.set_partitions(&t, count);
            }
        }
        _ => warn!("cannot count the FL read topics' partitions; commands are partitioned by key"),
    }
}

/// Reads the switch map stored before a restart (`topics.switch_map`) into the engine, so
/// commands for known switches are routed at once, with or without a startup sync.
async fn restore_switch_map(config: &Config, engine: &Engine) {
    let client = kafka::base_config(&config.kafka);
    let topic = config.topics.switch_map.clone();
    let started = Instant::now();
    let read = tokio::task::spawn_blocking(move || {
        kafka::compacted::read(&client, &topic, Duration::from_secs(30))
    })
    .await;
    let table = match read {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            warn!(error = %e, "cannot read the stored switch map; starting with an empty one");
            return;
        }
        Err(e) => {
            warn!(error = %e, "cannot read the stored switch map; starting with an empty one");
            return;
        }
    };
    // The engine reads the values (it owns their format); a key that is not text is skipped.
    let entries: Vec<(String, bytes::Bytes)> = table
        .into_iter()
        .filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, bytes::Bytes::from(v))))
        .collect();
    match engine.restore_switch_map(entries).await {
        Ok(r) => info!(
            switches = r.restored,
            skipped = r.skipped,
            ms = started.elapsed().as_millis() as u64,
            "switch map restored"
        ),
        Err(e) => warn!(error = %e, "switch map not restored"),
    }
}

/// Loads what the previous incarnation did with the commands this one reads again (see
/// `kafka::read_back`), so none gets a second, different outcome.
async fn read_back_previous(config: &Config, engine: &Engine) {
    let started = Instant::now();
    let (cfg, client) = (config.clone(), kafka::base_config(&config.kafka));
    let read = tokio::task::spawn_blocking(move || {
        kafka::read_back::read_back(&cfg, &client, Duration::from_secs(30))
    })
    .await;
    match read {
        Ok(Ok((records, window))) => {
            let r = engine.load_previous(records, window.replay_until.clone());
            info!(
                forwarded = r.forwarded,
                answered = r.answered,
                router_errors = r.errors,
                records_read = window.records,
                since_ms_ago =
                    fl_router_actors::runtime::clock::now_millis().saturating_sub(window.from_ms),
                ms = started.elapsed().as_millis() as u64,
                "previous incarnation read back"
            );
        }
        Ok(Err(e)) => {
            warn!(error = %e, "cannot read back the previous incarnation's commands; replayed commands are judged anew")
        }
        Err(e) => {
            warn!(error = %e, "cannot read back the previous incarnation's commands; replayed commands are judged anew")
        }
    }
}

async fn status_log(engine: Engine, outbox: Arc<KafkaOutbox>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tick.tick().await;
        let c = engine.counters().values();
        info!(
            commands = c.commands_received,
            forwarded = c.commands_forwarded,
            answers = c.answers_routed,
            timeouts = c.errors_timed_out,
            not_found = c.errors_not_found,
            invalid = c.errors_invalid,
            delivered = outbox.counters.delivered.load(Relaxed),
            delivery_failures = outbox.counters.failed.load(Relaxed),
            "status"
        );
    }
}

/// Window of the mailboxes' "longest wait / handling time" figures.
pub const MAILBOX_WINDOW: Duration = Duration::from_secs(10);

/// Warns (at most every 30 s per actor) when an actor's pending messages pass 80 % of its
/// mailbox capacity, and starts a new window for the maxima every [`MAILBOX_WINDOW`].
async fn mailbox_watch(engine: Engine) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_warned: std::collections::HashMap<(String, String), Instant> = Default::default();
    let mut window_started = Instant::now();
    loop {
        tick.tick().await;
        let reset = window_started.elapsed() >= MAILBOX_WINDOW;
        if reset {
            window_started = Instant::now();
        }
        for m in engine.mailboxes(reset) {
            if m.capacity == 0 || m.pending * 5 <= m.capacity as u64 * 4 {
                continue;
            }
            let key = (m.kind.to_string(), m.id.clone());
            if last_warned
                .get(&key)
                .is_some_and(|t| t.elapsed() < Duration::from_secs(30))
            {
                continue;
            }
            last_warned.insert(key, Instant::now());
            warn!(kind = m.kind, id = %m.id, pending = m.pending, capacity = m.capacity, "actor mailbox above 80% of its capacity");
        }
    }
}

/// The FL consumer's group: `<kafka.group_id>-fl`.
fn fl_group(config: &Config) -> String {
    format!("{}-fl", config.kafka.group_id)
}
