//! [`Engine`]: starts the actors and is the shell's handle to them. The shell calls
//! [`Engine::command`] and [`Engine::fl_output`] for what it reads, and supplies the outbox for
//! what the engine writes. Must be started inside a running actix `System`.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use crate::fl::liveness::FlStatus;
use crate::fl::outage_monitor::{self, OutageMonitor, RestartMonitor};
use crate::fl::proxy::{
    self, FlOutput, FlOutputs, FlProxy, Forwarded, GetInflight, GetStatus, InflightRow,
    ProxyStatus, Restart, SetOwned,
};
use crate::messages::{DispatcherPort, MonitorPort, Proxies, ProxyPort, StartSync, SyncTrigger};
use crate::routing::dispatcher::{
    self, Collected, Dispatcher, LookupSwitch, MapRecords, RestoreMap, RestoreReport, SetLeader,
    SwitchCounts, SwitchView,
};
use crate::routing::replay::{LoadReport as PreviousReport, PriorRecord};
use crate::routing::routes::Routes;
use crate::routing::shards::{self, Command, CommandShard, Commands};
use crate::runtime::counters::Counters;
use crate::runtime::mailbox::{Mailbox, MailboxSnapshot, MailboxStats, SendRejected};
use crate::runtime::outbox::{Inbound, Outbox};
use crate::runtime::shared::{Shared, Source};
use crate::settings::{FlOwnership, SettingError, Settings};
use crate::sync::scheduler::{self, SyncScheduler};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid settings: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Settings(Vec<SettingError>),
    #[error("unknown FL {0:?}")]
    UnknownFl(String),
    #[error(transparent)]
    Rejected(#[from] SendRejected),
}

#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    /// The command shards; a command goes to the one of its input partition.
    shards: Arc<[Mailbox<CommandShard>]>,
    threads: Arc<Threads>,
    dispatcher: Mailbox<Dispatcher>,
    monitor: Mailbox<OutageMonitor>,
    scheduler: Mailbox<SyncScheduler>,
    proxies: Arc<HashMap<String, Mailbox<FlProxy>>>,
    /// FL write topic → FL id, for the shell's consumer.
    write_topics: Arc<HashMap<String, String>>,
    /// FL read topic → FL id (a cluster instance reads its FLs' forwards back).
    read_topics: Arc<HashMap<String, String>>,
}

impl Engine {
    pub fn start(settings: Settings, outbox: Arc<dyn Outbox>) -> Result<Engine, EngineError> {
        let traces = crate::runtime::traces::Traces::new(settings.limits.traced_commands);
        Self::start_with_traces(settings, outbox, traces)
    }

    /// [`Engine::start`], recording command lives into `traces`: those of the engine this one
    /// replaces (a reload) stay readable.
    pub fn start_with_traces(
        settings: Settings,
        outbox: Arc<dyn Outbox>,
        traces: Arc<crate::runtime::traces::Traces>,
    ) -> Result<Engine, EngineError> {
        let problems = settings.validate();
        if !problems.is_empty() {
            return Err(EngineError::Settings(problems));
        }
        let shared = Shared::with_traces(settings, outbox, traces);
        if shared.settings.engine.ownership == FlOwnership::Assigned {
            // A cluster instance: no FL is this engine's until the shell hands it over.
            for fl in 0..shared.settings.fls.len() {
                shared.liveness.set_owned(fl, false);
            }
        }
        let stats = |kind, id: &str, cap| {
            let st = MailboxStats::new(kind, id, cap);
            shared.mailboxes.register(&st);
            st
        };
        // The engine's topology, in one place. Every actor is given, when it starts, the
        // ports of the actors it sends to (`crate::messages`); nothing looks another actor up
        // later, and no actor but this one knows the others' types.
        //
        //   thread            actor (one per …)          sends to
        //   caller's          Dispatcher                 FlProxy, SyncScheduler, MultiSwitchCommand
        //   caller's          OutageMonitor (restarted)  Dispatcher, SyncScheduler
        //   caller's          SyncScheduler              SyncSession (starts them)
        //   caller's          SyncSession (sync)         Dispatcher, FlProxy
        //   caller's          MultiSwitchCommand (cmd)   FlProxy
        //   shard i           CommandShard               FlProxy, Dispatcher (detours)
        //   shard f % n       FlProxy (FL f, restarted)  Dispatcher, OutageMonitor, sessions and
        //                                                multi-switch commands (by message)
        //
        // With one shard, "shard" threads are the caller's. The dispatcher and the scheduler
        // are addressed before they run (their contexts come first) so that the actors that
        // send to them can be started with their mailboxes.
        let threads = Threads::new(shared.settings.engine.shard_count());
        let routes = Arc::new(Routes::new(shared.settings.fls.len()));
        let dispatcher_ctx = Context::<Dispatcher>::new();
        let dstats = stats("dispatcher", "dispatcher", dispatcher::MAILBOX_CAPACITY);
        let dispatcher = Mailbox::new(dispatcher_ctx.address(), dstats.clone());
        let dispatcher_port = DispatcherPort::of(&dispatcher);
        let scheduler_ctx = Context::<SyncScheduler>::new();
        let sstats = stats(
            "sync_scheduler",
            "sync_scheduler",
            scheduler::MAILBOX_CAPACITY,
        );
        let scheduler = Mailbox::new(scheduler_ctx.address(), sstats.clone());

        let mstats = stats(
            "outage_monitor",
            "outage_monitor",
            outage_monitor::MAILBOX_CAPACITY,
        );
        let (sh, st, d, sup) = (
            shared.clone(),
            mstats.clone(),
            dispatcher_port.clone(),
            scheduler.outlet(),
        );
        let monitor = Mailbox::new(
            actix::Supervisor::start(move |_| OutageMonitor::new(sh, st, d, sup)),
            mstats,
        );

        let monitor_port = MonitorPort::of(&monitor);
        let mailboxes: Vec<Mailbox<FlProxy>> = (0..shared.settings.fls.len())
            .map(|index| {
                let st = stats("fl_proxy", shared.fl_id(index), proxy::MAILBOX_CAPACITY);
                let (sh, d, m, sc, st2) = (
                    shared.clone(),
                    dispatcher_port.clone(),
                    monitor_port.clone(),
                    scheduler.outlet(),
                    st.clone(),
                );
                let addr = actix::Supervisor::start_in_arbiter(&threads.handle(index), move |_| {
                    FlProxy::new(index, sh, d, m, sc, st2)
                });
                Mailbox::new(addr, st)
            })
            .collect();
        let list: Proxies = mailboxes.iter().map(ProxyPort::of).collect();

        dispatcher_ctx.run(Dispatcher::new(
            shared.clone(),
            dstats,
            routes.clone(),
            list.clone(),
            scheduler.outlet(),
        ));
        scheduler_ctx.run(SyncScheduler::new(
            shared.clone(),
            sstats,
            dispatcher_port.clone(),
            list.clone(),
            routes.clone(),
        ));

        let shards: Arc<[Mailbox<CommandShard>]> = (0..threads.count)
            .map(|i| {
                let st = stats(
                    "command_shard",
                    &format!("shard-{i}"),
                    shards::MAILBOX_CAPACITY,
                );
                let (sh, r, d, p, st2) = (
                    shared.clone(),
                    routes.clone(),
                    dispatcher_port.clone(),
                    list.clone(),
                    st.clone(),
                );
                let addr = CommandShard::start_in_arbiter(&threads.handle(i), move |_| {
                    CommandShard::new(sh, st2, r, d, p)
                });
                Mailbox::new(addr, st)
            })
            .collect();

        let mut proxies = HashMap::new();
        let mut write_topics = HashMap::new();
        let mut read_topics = HashMap::new();
        for (fl, mbox) in shared.settings.fls.iter().zip(mailboxes.iter()) {
            proxies.insert(fl.id.clone(), mbox.clone());
            for topic in shared.settings.topics.fl_read_topics(&fl.id) {
                read_topics.insert(topic, fl.id.clone());
            }
            for topic in shared.settings.topics.fl_write_topics(&fl.id) {
                write_topics.insert(topic, fl.id.clone());
            }
        }
        Ok(Engine {
            shared,
            shards,
            threads: Arc::new(threads),
            dispatcher,
            monitor,
            scheduler,
            proxies: Arc::new(proxies),
            write_topics: Arc::new(write_topics),
            read_topics: Arc::new(read_topics),
        })
    }

    /// A message from an inbound command topic, handed to the shard of its input partition
    /// (so one partition's commands stay in order). Resolves once the shard has taken it
    /// (backpressure for the consumer).
    pub async fn command(&self, msg: Inbound) -> Result<(), EngineError> {
        let shard = self
            .shards
            .get(self.shard_of(&msg))
            .ok_or(SendRejected::Closed)?;
        Ok(shard.ask(Command(msg)).await?)
    }

    /// Commands read together, in read order: one hand-over per shard instead of one per
    /// command (each partition's commands keep their order within their shard's batch).
    /// Resolves once every shard concerned has taken its part.
    pub async fn commands(&self, msgs: Vec<Inbound>) -> Result<(), EngineError> {
        let n = self.shards.len();
        if n == 1 {
            let shard = self.shards.first().ok_or(SendRejected::Closed)?;
            return Ok(shard.ask(Commands(msgs)).await?);
        }
        // Sized for the whole batch: no vector grown push by push (the unused room is brief).
        let mut parts: Vec<Vec<Inbound>> = (0..n).map(|_| Vec::with_capacity(msgs.len())).collect();
        for m in msgs {
            let i = self.shard_of(&m);
            if let Some(p) = parts.get_mut(i) {
                p.push(m);
            }
        }
        let asks = parts
            .into_iter()
            .zip(self.shards.iter())
            .filter(|(p, _)| !p.is_empty())
            .map(|(p, shard)| shard.ask(Commands(p)));
        for r in futures::future::join_all(asks).await {
            r?;
        }
        Ok(())
    }

    fn shard_of(&self, msg: &Inbound) -> usize {
        let n = self.shards.len().max(1);
        msg.origin
            .as_ref()
            .map_or(0, |o| o.partition.unsigned_abs() as usize % n)
    }

    /// How many command shards (threads) the engine runs.
    pub fn shard_count(&self) -> usize {
        self.threads.count
    }

    /// A message from FL `fl`'s write topic. An unknown FL's message is dead-lettered.
    pub async fn fl_output(&self, fl: &str, msg: Inbound) -> Result<(), EngineError> {
        match self.proxies.get(fl) {
            Some(p) => Ok(p.ask(FlOutput(msg)).await?),
            None => {
                self.shared.dead_letter(
                    &msg,
                    Source::Fl(fl),
                    &format!("message from unknown FL {fl:?}"),
                );
                Err(EngineError::UnknownFl(fl.to_string()))
            }
        }
    }

    /// Messages read together from FL write topics (each message's origin names its topic):
    /// one hand-over per FL proxy. A message from a topic no FL writes to is dead-lettered.
    pub async fn fl_outputs(&self, msgs: Vec<Inbound>) -> Result<(), EngineError> {
        let mut parts: Vec<(&Mailbox<FlProxy>, Vec<Inbound>)> = Vec::new();
        let mut unknown = None;
        for m in msgs {
            let topic = m.origin.as_ref().map(|o| o.topic.clone());
            let fl = topic.as_deref().and_then(|t| self.fl_of_write_topic(t));
            let Some(proxy) = fl.and_then(|fl| self.proxies.get(fl)) else {
                let name = topic.as_deref().unwrap_or("?").to_string();
                self.shared.dead_letter(
                    &m,
                    Source::Fl(&name),
                    &format!("message from a topic no FL writes to: {name:?}"),
                );
                unknown = Some(EngineError::UnknownFl(name));
                continue;
            };
            match parts.iter_mut().find(|(p, _)| std::ptr::eq(*p, proxy)) {
                Some((_, v)) => v.push(m),
                None => parts.push((proxy, vec![m])),
            }
        }
        let asks = parts.into_iter().map(|(p, v)| p.ask(FlOutputs(v)));
        for r in futures::future::join_all(asks).await {
            r?;
        }
        unknown.map_or(Ok(()), Err)
    }

    /// Records read back from FL read topics (a cluster instance, for the FLs it owns; each
    /// record's origin names its topic): every forwarded command becomes pending at its FL's
    /// proxy, whichever instance forwarded it (`docs/design/cluster.md`). A record from a topic
    /// no FL reads is ignored (its ticket is released).
    pub async fn fl_forwards(&self, msgs: Vec<Inbound>) -> Result<(), EngineError> {
        let mut parts: Vec<(&Mailbox<FlProxy>, Vec<Inbound>)> = Vec::new();
        for m in msgs {
            let fl = m
                .origin
                .as_ref()
                .and_then(|o| self.read_topics.get(o.topic.as_ref()));
            let Some(proxy) = fl.and_then(|fl| self.proxies.get(fl)) else {
                continue;
            };
            match parts.iter_mut().find(|(p, _)| std::ptr::eq(*p, proxy)) {
                Some((_, v)) => v.push(m),
                None => parts.push((proxy, vec![m])),
            }
        }
        let asks = parts.into_iter().map(|(p, v)| p.ask(Forwarded(v)));
        for r in futures::future::join_all(asks).await {
            r?;
        }
        Ok(())
    }

    /// The shell has read FL `fl`'s read topics up to their end as of `at`, and handed every
    /// record to [`Engine::fl_forwards`] (answers waiting for their forward are released).
    pub fn fl_forwards_read_up_to(&self, fl: &str, at: tokio::time::Instant) {
        if let Some(i) = self.shared.fl_index(fl) {
            self.shared.liveness.forwards_read_up_to(i, at);
        }
    }

    /// The FL that writes to `topic`, if any.
    pub fn fl_of_write_topic(&self, topic: &str) -> Option<&str> {
        self.write_topics.get(topic).map(String::as_str)
    }

    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The recent commands' lives (`GET /api/commands/{id}`); the shell adds offset commits.
    pub fn traces(&self) -> &Arc<crate::runtime::traces::Traces> {
        &self.shared.traces
    }

    pub fn mailboxes(&self, reset_window: bool) -> Vec<MailboxSnapshot> {
        self.shared.mailboxes.snapshot(reset_window)
    }

    /// Applies the switch map stored before a restart (see [`RestoreMap`]); call it before
    /// feeding any message.
    pub async fn restore_switch_map(
        &self,
        entries: Vec<(String, bytes::Bytes)>,
    ) -> Result<RestoreReport, EngineError> {
        Ok(self.dispatcher.ask(RestoreMap(entries)).await?)
    }

    /// Loads what a previous incarnation did with recent commands (see [`crate::routing::replay`]);
    /// call it before feeding any message. Kept for the longest a command can be pending.
    /// `replay_until`: per command partition, its end offset at start (commands below it are
    /// the ones read again).
    pub fn load_previous(
        &self,
        records: Vec<PriorRecord>,
        replay_until: std::collections::HashMap<(String, i32), i64>,
    ) -> PreviousReport {
        let s = &self.shared;
        let ids: Vec<&str> = s.settings.fls.iter().map(|f| f.id.as_str()).collect();
        s.previous
            .load(records, replay_until, &ids, s.settings.previous_kept())
    }

    /// What FL `fl`'s previous owner did with the commands forwarded to it, read back when a
    /// cluster instance takes the FL over: a forward whose command has its outcome is not
    /// adopted (see `previous`).
    pub fn add_previous(&self, records: Vec<PriorRecord>) -> PreviousReport {
        let s = &self.shared;
        let ids: Vec<&str> = s.settings.fls.iter().map(|f| f.id.as_str()).collect();
        s.previous.add(records, &ids, s.settings.previous_kept())
    }

    /// Whether this engine owns FL `fl` (every FL, for one router instance).
    pub fn fl_owned(&self, fl: &str) -> bool {
        self.shared
            .fl_index(fl)
            .is_some_and(|i| self.shared.liveness.is_owned(i))
    }

    /// The active FL of `switch` (normalised first): where its commands go, if anywhere.
    pub async fn lookup_switch(&self, switch: &str) -> Result<Option<String>, EngineError> {
        Ok(self.switch_view(switch).await?.and_then(|v| v.active))
    }

    /// Every FL connection of `switch` and the active one; `None`: no connection at all.
    pub async fn switch_view(&self, switch: &str) -> Result<Option<SwitchView>, EngineError> {
        Ok(self
            .dispatcher
            .ask(LookupSwitch(switch.to_string()))
            .await?)
    }

    pub async fn fl_status(&self, fl: &str) -> Result<ProxyStatus, EngineError> {
        let p = self
            .proxies
            .get(fl)
            .ok_or_else(|| EngineError::UnknownFl(fl.to_string()))?;
        Ok(p.ask(GetStatus).await?)
    }

    /// Status of every FL proxy, in configuration order.
    pub async fn fl_statuses(&self) -> Vec<ProxyStatus> {
        let mut out = Vec::new();
        for fl in &self.shared.settings.fls {
            if let Ok(st) = self.fl_status(&fl.id).await {
                out.push(st);
            }
        }
        out
    }

    /// Per FL, in configuration order: (switches it is active for, switches it stands by for).
    pub async fn switch_counts(&self) -> Result<Vec<(String, (usize, usize))>, EngineError> {
        let counts = self.dispatcher.ask(SwitchCounts).await?;
        Ok(self
            .shared
            .settings
            .fls
            .iter()
            .map(|f| f.id.clone())
            .zip(counts)
            .collect())
    }

    /// Pending commands per FL (at most `limit` per FL, oldest first).
    pub async fn inflight(&self, limit: usize) -> Vec<(String, Vec<InflightRow>)> {
        let mut out = Vec::new();
        for fl in &self.shared.settings.fls {
            if let Some(p) = self.proxies.get(&fl.id) {
                if let Ok(rows) = p.ask(GetInflight { limit }).await {
                    out.push((fl.id.clone(), rows));
                }
            }
        }
        out
    }

    /// When FL `fl` last wrote anything, as time ago.
    pub fn fl_last_evidence(&self, fl: &str) -> Option<std::time::Duration> {
        let i = self.shared.fl_index(fl)?;
        self.shared.liveness.last_evidence(i).map(|t| t.elapsed())
    }

    /// From now on the shell reports how far it has read each FL's topics
    /// ([`Engine::fl_read_up_to`]); until it does for an FL, nothing is judged against that FL.
    pub fn track_fl_reads(&self) {
        self.shared.liveness.track_reads();
    }

    /// The engine has handled everything FL `fl` wrote before `at` (see `liveness`).
    pub fn fl_read_up_to(&self, fl: &str, at: tokio::time::Instant) {
        if let Some(i) = self.shared.fl_index(fl) {
            self.shared.liveness.read_up_to(i, at);
        }
    }

    /// Liveness status of FL `fl` (as decided by the outage monitor).
    pub fn fl_liveness(&self, fl: &str) -> Option<FlStatus> {
        let i = self.shared.fl_index(fl)?;
        Some(self.shared.liveness.status(i))
    }

    /// Stops the outage monitor; `actix::Supervisor` restarts it with its state.
    pub fn restart_outage_monitor(&self) -> Result<(), EngineError> {
        Ok(self.monitor.tell(RestartMonitor)?)
    }

    /// Stops FL `fl`'s proxy; `actix::Supervisor` restarts it with its pending commands.
    /// Records of the switch-map topic written by other cluster instances, in topic order:
    /// connection facts of FLs owned elsewhere and the leader's decisions (see
    /// `docs/design/cluster.md`). Records this engine wrote itself are skipped.
    pub async fn map_records(
        &self,
        records: Vec<(String, Option<bytes::Bytes>)>,
    ) -> Result<(), EngineError> {
        Ok(self.dispatcher.ask(MapRecords(records)).await?)
    }

    /// A sync session for FL `fl` (a cluster instance that just took it over; with
    /// `sync.at_start`, the FL's chain tells its new owner what it holds).
    pub fn sync_fl(&self, fl: &str) -> Result<(), EngineError> {
        let index = self
            .shared
            .fl_index(fl)
            .ok_or_else(|| EngineError::UnknownFl(fl.to_string()))?;
        Ok(self.scheduler.tell(StartSync {
            fls: vec![index],
            trigger: SyncTrigger::Takeover,
            request: None,
            adopted: false,
        })?)
    }

    /// Records read from this cluster instance's collect topic: multi-switch parts' results
    /// sent by their FLs' owners, for the collectors running here.
    pub async fn collected(&self, msgs: Vec<Inbound>) -> Result<(), EngineError> {
        Ok(self.dispatcher.ask(Collected(msgs)).await?)
    }

    /// This instance leads the cluster (announces map changes, writes the decisions), or no
    /// longer does. The engine of one router instance leads from the start.
    pub fn set_leader(&self, leader: bool) -> Result<(), EngineError> {
        Ok(self.dispatcher.tell(SetLeader(leader))?)
    }

    /// This engine now owns FL `fl`, or no longer does (`docs/design/cluster.md`): an owned FL
    /// is read here, its commands are pending here and its liveness is judged here; for one
    /// owned elsewhere, commands are forwarded and handed over, and its pending commands are
    /// dropped unanswered for its new owner to adopt from the FL's read topic. The engine of
    /// one router instance owns every FL from the start.
    pub fn set_fl_owned(&self, fl: &str, owned: bool) -> Result<(), EngineError> {
        let index = self
            .shared
            .fl_index(fl)
            .ok_or_else(|| EngineError::UnknownFl(fl.to_string()))?;
        let proxy = self
            .proxies
            .get(fl)
            .ok_or_else(|| EngineError::UnknownFl(fl.to_string()))?;
        // Liveness first (the monitor stops or starts judging at its next tick), then the
        // proxy, in order with the forwards already in its mailbox.
        self.shared.liveness.set_owned(index, owned);
        Ok(proxy.tell(SetOwned(owned))?)
    }

    /// Stops this engine for good (a reload replaces it): at their next tick its actors stop
    /// and none of its timers fires again — no AliveRequest, sync or deadline of an engine
    /// that is no longer the router's. Its actors are freed once the last handle is dropped.
    pub fn stop(&self) {
        self.shared.retire();
    }

    /// [`Engine::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.shared.retired()
    }

    pub fn restart_fl_proxy(&self, fl: &str) -> Result<(), EngineError> {
        let p = self
            .proxies
            .get(fl)
            .ok_or_else(|| EngineError::UnknownFl(fl.to_string()))?;
        Ok(p.tell(Restart)?)
    }
}

/// The engine's own arbiters (none with one shard). Dropping the last engine handle stops them.
struct Threads {
    count: usize,
    arbiters: Vec<Arbiter>,
}

impl Threads {
    fn new(count: usize) -> Self {
        let count = count.max(1);
        let arbiters = if count == 1 {
            Vec::new()
        } else {
            (0..count).map(|_| Arbiter::new()).collect()
        };
        Self { count, arbiters }
    }

    /// The arbiter of shard `i % count`.
    fn handle(&self, i: usize) -> ArbiterHandle {
        match self.arbiters.get(i % self.count) {
            Some(a) => a.handle(),
            None => Arbiter::current(),
        }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        for a in &self.arbiters {
            a.stop();
        }
    }
}
