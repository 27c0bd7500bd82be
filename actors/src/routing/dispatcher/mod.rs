//! `Dispatcher`: owns the switch map (every FL connection of every switch) and decides what each
//! connection change means: failover to a standby, an availability notice, an unmanaged switch,
//! commands waiting out the grace window for a reconnect. It publishes the resulting active FL
//! per switch to [`Routes`] for the command shards.
//!
//! Commands reach it only as *detours* from a shard (see [`crate::routing::shards`]): everything
//! beyond "one switch with an active FL" — invalid input, broadcasts, multi-switch commands,
//! SyncRequests, a switch with no active FL, an outage to apply first, a command read again.
//! One actor owns the map so that no lock is needed to change it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::dialect::notices;
use crate::fl::liveness::FlStatus;
use crate::messages::{
    Adopt, ChainApplied, Detour, DetourDone, FailPending, FailSwitch, Failure, FlLost, Forward,
    FromActiveOnly, InOrder, MultiSwitchPort, PartAnswer, PartFailed, Proxies, StartSync,
    SwitchEvent, SyncComplete, SyncTrigger,
};
use crate::runtime::counters::Counters;
use crate::runtime::mailbox::{Envelope, Mailbox, MailboxStats, Outlet};
use crate::settings::Dialect;
// The one actor the dispatcher starts.
use crate::fanout::multi_switch::{self, MultiSwitchCommand, Part};
use crate::protocol::{
    self, CommandKind, ErrorType, MessageView, ProtocolError, Requester, Target,
};
use crate::routing::replay::Replay;
use crate::routing::routes::FlIndex;
use crate::routing::routes::Routes;
use crate::routing::switch_map::{
    Preference, StoredConnection, StoredSwitch, SwitchMap, Transition, Via,
};
use crate::runtime::obligation::{Met, Obligation};
use crate::runtime::outbox::{Inbound, Outgoing, Ticket};
use crate::runtime::shared::{Shared, Source};
use crate::runtime::traces::Step;
use crate::settings::Mode;
use crate::settings::{FlOwnership, PART_FL_HEADER};

/// The switch map as stored in `topics.switch_map` before a restart: (switch id, stored value).
/// Applied before any FL message or command is read; nothing is written back.
#[derive(Message)]
#[rtype(result = "RestoreReport")]
pub struct RestoreMap(pub Vec<(String, Bytes)>);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub restored: usize,
    /// Entries naming an FL that is no longer configured, unreadable, or a malformed switch id.
    pub skipped: usize,
}

/// A switch's connections (admin API, tests).
#[derive(Message)]
#[rtype(result = "Option<SwitchView>")]
pub struct LookupSwitch(pub String);

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SwitchView {
    pub switch_id: String,
    /// The FL unicast commands go to (None: unmanaged; read-only connections may remain).
    pub active: Option<String>,
    pub connections: Vec<ConnectionView>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConnectionView {
    pub fl: String,
    pub mode: Mode,
    pub active: bool,
    pub since_ms: u64,
    pub via: Via,
}

/// Per FL: (switches it is active for, switches it stands by for) (admin API, metrics).
#[derive(Message)]
#[rtype(result = "Vec<(usize, usize)>")]
pub struct SwitchCounts;

/// Records read from the switch-map topic that other cluster instances wrote (key, value;
/// `None` for a tombstone), in topic order (`Engine::map_records`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct MapRecords(pub Vec<(String, Option<Bytes>)>);

/// Records read from this cluster instance's collect topic: results of multi-switch parts
/// from the FLs' owners (`Engine::collected`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Collected(pub Vec<Inbound>);

/// This instance is (no longer) the cluster's leader: it announces map changes and writes
/// the decisions (`Engine::set_leader`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetLeader(pub bool);

mod facts;
mod fanout;
mod grace;
mod switch_events;

pub const MAILBOX_CAPACITY: usize = 1024;

pub struct Dispatcher {
    shared: Arc<Shared>,
    stats: Arc<MailboxStats>,
    map: SwitchMap,
    /// The active FL per switch as the command shards see it; published after each handler.
    routes: Arc<Routes>,
    proxies: Proxies,
    /// Starts the sync sessions a controller's SyncRequest asks for.
    scheduler: Outlet<StartSync>,
    /// Switches that lost their last RW connection: when and why (grace window, error text).
    lost: HashMap<String, Lost>,
    /// Commands waiting in the grace window for their switch to reconnect, per switch.
    waiting: HashMap<String, Vec<Waiting>>,
    waiting_len: usize,
    /// Per FL, the switches its last outage left unmanaged: its next complete chain is compared
    /// with them (one it no longer reports gets a switch-offline notification).
    lost_in_outage: Vec<std::collections::HashSet<String>>,
    /// Per FL, the outages applied to the map (`Liveness::outages`): an outage is applied on
    /// [`FlLost`] or by the first command for one of the FL's switches, whichever comes first,
    /// so no command is routed to an FL already declared offline.
    outages_applied: Vec<u64>,
    /// A cluster instance (`FlOwnership::Assigned`): publishes its FLs' connections as facts.
    cluster: bool,
    /// Speaks for the map: sends the notices and writes the decisions. One instance always is;
    /// in a cluster, the one the shell makes leader (`Engine::set_leader`).
    leader: bool,
    /// A cluster instance's running multi-switch collectors, by correlation id: their parts'
    /// results come back through its collect topic (`Engine::collected`).
    collectors: HashMap<String, MultiSwitchPort>,
}

struct Lost {
    at: Instant,
    why: String,
}

struct Waiting {
    fwd: Forward,
    until: Instant,
}

/// What caused a map change: it decides what the controller is told.
enum Cause {
    /// An FL's switch event (forwarded unchanged when it changes whether the switch is managed).
    Event { forward: Option<Box<Outgoing>> },
    /// A network dump: an entry of it (forwarded by `dump_entry`), or a complete dump that
    /// did not list the switch (no entry).
    Chain { entry: Option<Bytes> },
    /// The FL's outage (its proxy fails all its pending commands itself).
    Outage { reason: String },
    /// A connection fact another cluster instance published for an FL it owns (that instance
    /// forwarded the FL's own event and answers the FL's pending commands).
    Fact,
}

/// Keys of connection facts on the switch-map topic: `fact/<fl>/<switch>` (one writer each: the
/// FL's owner). Plain switch ids are the leader's decisions (and one instance's records).
pub const FACT_PREFIX: &str = "fact/";

/// How long the reason a switch was lost is kept for the NOT_FOUND text.
const LOST_MEMORY: Duration = Duration::from_secs(600);

impl Dispatcher {
    pub fn new(
        shared: Arc<Shared>,
        stats: Arc<MailboxStats>,
        routes: Arc<Routes>,
        proxies: Proxies,
        scheduler: Outlet<StartSync>,
    ) -> Self {
        let f = &shared.settings.failover;
        let fls = shared.settings.fls.len();
        let cluster = shared.settings.engine.ownership == FlOwnership::Assigned;
        let map = SwitchMap::new(Preference {
            rank: f.ranks(&shared.settings.fls),
            return_home: f.return_home,
        });
        Self {
            shared,
            stats,
            map,
            routes,
            proxies,
            scheduler,
            lost: HashMap::new(),
            waiting: HashMap::new(),
            waiting_len: 0,
            lost_in_outage: vec![Default::default(); fls],
            outages_applied: vec![0; fls],
            cluster,
            leader: !cluster,
            collectors: HashMap::new(),
        }
    }

    /// Makes this handler's map changes (and applied outages) visible to the command shards;
    /// called at the end of every handler that can change them, after its own forwards.
    fn publish(&mut self) {
        self.map.publish(&self.routes);
        for (fl, n) in self.outages_applied.iter().enumerate() {
            self.routes.set_outages_applied(fl, *n);
        }
    }

    fn command(&mut self, msg: Inbound) {
        let s = self.shared.clone();
        let rules = &s.settings.protocol;
        let limit = s.settings.limits.max_message_bytes;
        if msg.payload.len() > limit {
            // Never forwarded; but answered with its correlation id (in its family) when it
            // has one, so the requester can tell which of its commands was refused.
            let view = MessageView::read(&msg.payload, &rules.envelope).ok();
            if let Some(cid) = view.as_ref().and_then(|v| v.correlation()) {
                s.trace_received(cid, &msg);
            }
            let err = ProtocolError::TooLarge {
                size: msg.payload.len(),
                limit,
            };
            return self.invalid(&msg, view.as_ref(), err);
        }
        let view = match MessageView::read(&msg.payload, &rules.envelope) {
            Ok(v) => v,
            Err(e) => return self.invalid(&msg, None, e),
        };
        let (cid, switch_id) = match view.command_kind(rules) {
            Err(e) => return self.invalid(&msg, Some(&view), e),
            Ok(CommandKind::SyncRequest { .. }) if self.cluster => {
                // A cluster instance: each FL's owner runs that FL's sync. The request goes,
                // unchanged, to every FL's read topic, where its owner adopts it (as it adopts
                // commands) and runs a session for that FL (one summary per FL); this input is
                // done once every copy is delivered.
                for fl in &s.settings.fls {
                    let topic = s.settings.topics.control_topic(&fl.id);
                    s.outbox.send(Outgoing::pass_through(topic, &msg));
                }
                Counters::inc(&s.counters.sync_requests_handed_over);
                return;
            }
            Ok(CommandKind::SyncRequest { cid }) => {
                // A controller's SyncRequest: a sync session over every FL.
                let _ = self.scheduler.tell(StartSync {
                    fls: (0..s.settings.fls.len()).collect(),
                    trigger: SyncTrigger::Controller,
                    request: Some((cid.to_string(), msg.clone())),
                    adopted: false,
                });
                return;
            }
            Ok(CommandKind::Broadcast { every_fl }) => {
                return self.broadcast(&msg, &view, every_fl)
            }
            Ok(CommandKind::MultiSwitch { cid, target, span }) => {
                let request_class = view.class().unwrap_or_default().to_string();
                return self.multi_switch(&msg, cid, request_class, view.text, target, span);
            }
            Ok(CommandKind::OneSwitch { cid, switch }) => (cid, switch),
        };
        let class = view.class();
        let requester = s.requester(&msg, Some(&view));
        if let Some(replay) = s.previous.command(cid, msg.origin.as_ref()) {
            let cid = cid.to_string();
            return self.replayed(msg.clone(), requester, &cid, switch_id, replay);
        }
        // The map's shared id when the switch is known: no copy of it per command.
        let switch_id = self
            .map
            .key(&switch_id)
            .unwrap_or_else(|| Arc::from(switch_id));
        let fwd = Forward {
            correlation_id: cid.to_string(),
            switch_id,
            requester,
            timeout: s.settings.answer_deadline(class),
            lane: s.lane_of(&msg),
            msg,
            multi: None,
            owed: Obligation::new(),
        };
        let mut active = self.map.active(&fwd.switch_id);
        if let Some(fl) = active {
            if self.outage_unapplied(fl) {
                // Declared offline, FlLost not handled yet: fail over now.
                self.apply_outage(fl);
                active = self.map.active(&fwd.switch_id);
            }
        }
        match active {
            Some(fl) => self.forward_to(fl, fwd),
            None => self.no_active_fl(fwd),
        }
    }

    fn forward_to(&self, fl: FlIndex, fwd: Forward) {
        let Some(proxy) = self.proxies.get(fl) else {
            return self.refuse(fwd, "the router is shutting down".into());
        };
        if let Err(e) = proxy.forward.tell(fwd) {
            // Only possible while the system shuts down; answer rather than lose the command.
            warn!(error = %e, "FL proxy unavailable");
        }
    }

    fn refuse(&self, fwd: Forward, why: String) {
        let s = &self.shared;
        debug!(correlation_id = %fwd.correlation_id, switch = %fwd.switch_id, "{why}");
        s.send_error(
            &fwd.requester,
            &fwd.correlation_id,
            Some(&fwd.switch_id),
            ErrorType::NotFound,
            "switch is not managed by any FL",
            &why,
            &[&fwd.msg.ticket],
        );
        fwd.owed.met(Met::RouterAnswered);
    }

    /// Commands whose grace ran out without a reconnect: NOT_FOUND. Judged only as far as the
    /// router has read every FL (a reconnect may be waiting unread after a pause).
    fn tick(&mut self) {
        let s = self.shared.clone();
        let now = Instant::now();
        self.lost
            .retain(|_, l| now.duration_since(l.at) < LOST_MEMORY);
        if self.waiting_len == 0 {
            return;
        }
        let Some(seen) = s.liveness.seen_all_up_to() else {
            return;
        };
        let judged = seen.min(now);
        let mut expired = Vec::new();
        self.waiting.retain(|_, list| {
            let (due, keep): (Vec<_>, Vec<_>) = list.drain(..).partition(|w| w.until <= judged);
            expired.extend(due);
            *list = keep;
            !list.is_empty()
        });
        for w in expired {
            self.waiting_len -= 1;
            Counters::inc(&s.counters.grace_expired);
            let lost = self
                .lost
                .get(&*w.fwd.switch_id)
                .map_or("it lost its last read-write FL connection", |l| {
                    l.why.as_str()
                });
            let why = format!(
                "switch {} is not connected to any FL: {lost}, and it did not reconnect within the grace window ({})",
                w.fwd.switch_id,
                humantime::format_duration(s.settings.failover.grace)
            );
            self.refuse(w.fwd, why);
        }
    }

    /// A command read again after a restart that a previous incarnation had dealt with: it
    /// gets the outcome it already had, never a different one (see `previous`).
    fn replayed(
        &self,
        msg: Inbound,
        mut requester: Requester,
        cid: &str,
        switch_id: String,
        replay: Replay,
    ) {
        let s = &self.shared;
        match replay {
            Replay::AlreadyAnswered => {
                Counters::inc(&s.counters.replayed_answered);
                debug!(
                    correlation_id = cid,
                    "command read again; its answer was delivered"
                );
            }
            Replay::Repeat { topic, key, body } => {
                Counters::inc(&s.counters.replayed_repeated);
                debug!(
                    correlation_id = cid,
                    "command read again; the router's answer repeated"
                );
                let out = Outgoing::new(topic, body).key_opt(key).ticket(&msg.ticket);
                s.outbox.send(s.answering(&msg, out));
            }
            Replay::Adopt {
                fl,
                reply_to,
                at_ms,
            } => {
                if requester.reply_to.is_none() {
                    requester.reply_to = reply_to.map(Arc::from);
                }
                let adopt = Adopt {
                    correlation_id: cid.to_string(),
                    switch_id,
                    requester,
                    msg,
                    forwarded_at_ms: at_ms,
                    owed: Obligation::new(),
                };
                if let Some(p) = self.proxies.get(fl) {
                    let _ = p.adopt.tell(adopt);
                }
            }
        }
    }

    /// Bad input: kept on the dead-letter topic, and answered REQUEST_INVALID where someone
    /// is waiting (a reply-to header or a correlation id to answer to).
    fn invalid(&self, msg: &Inbound, view: Option<&MessageView<'_>>, err: ProtocolError) {
        let s = &self.shared;
        let reason = err.to_string();
        let cid = view.and_then(MessageView::correlation);
        warn!(correlation_id = cid.unwrap_or("-"), reason = %reason, "invalid command");
        s.dead_letter(msg, Source::Commands, &reason);
        if msg.reply_to.is_some() || cid.is_some() {
            s.send_error(
                &s.requester(msg, view),
                cid.unwrap_or(""),
                None,
                ErrorType::RequestInvalid,
                "invalid command",
                &reason,
                &[&msg.ticket],
            );
        }
    }

    /// Writes a switch's connections to the switch-map topic (a tombstone when none is left).
    fn store(&self, switch: &str, ticket: &Ticket) {
        let s = &self.shared;
        let topic = s.settings.topics.switch_map.clone();
        let key = Bytes::from(switch.to_string());
        let out = match self.map.get(switch) {
            Some(sw) => {
                let value = StoredSwitch::of(sw, |fl| s.fl_id(fl).to_string());
                let json = serde_json::to_vec(&value).unwrap_or_default();
                Outgoing::new(topic, json).key(key)
            }
            None => Outgoing::tombstone(topic, key),
        };
        s.outbox.send(out.ticket(ticket));
    }
}

impl Dispatcher {
    fn restore(&mut self, entries: Vec<(String, Bytes)>) -> RestoreReport {
        let fls = &self.shared.settings.fls;
        let index = |id: &str| fls.iter().position(|f| f.id == id);
        let mut report = RestoreReport::default();
        for (switch, value) in entries {
            if switch.starts_with(FACT_PREFIX) {
                continue; // a cluster's connection fact: read live (`Engine::map_records`)
            }
            let sw = protocol::normalise_switch_id(&switch).ok();
            let stored = serde_json::from_slice::<StoredSwitch>(&value).ok();
            match (sw, stored.and_then(|v| v.into_switch(index))) {
                (Some(id), Some(entry)) => {
                    self.map.restore(id, entry);
                    report.restored += 1;
                }
                _ => {
                    warn!(switch = %switch, value = %String::from_utf8_lossy(&value), "stored switch map entry skipped (unknown FL, unreadable, or bad switch id)");
                    report.skipped += 1;
                }
            }
        }
        report
    }

    fn view(&self, switch: &str) -> Option<SwitchView> {
        let s = &self.shared;
        let sw = self.map.get(switch)?;
        Some(SwitchView {
            switch_id: switch.to_string(),
            active: sw.active().map(|fl| s.fl_id(fl).to_string()),
            connections: sw
                .connections()
                .iter()
                .map(|c| ConnectionView {
                    fl: s.fl_id(c.fl).to_string(),
                    mode: c.mode,
                    active: sw.active() == Some(c.fl) && c.mode == Mode::ReadWrite,
                    since_ms: c.since_ms,
                    via: c.via,
                })
                .collect(),
        })
    }
}

/// Who waits for this command's outcome, and how to answer them (see [`Requester`]).
impl Drop for Dispatcher {
    /// The engine is stopping: commands still waiting for a reconnect were never committed, so
    /// the next incarnation reads them again.
    fn drop(&mut self) {
        for (_, list) in self.waiting.drain() {
            for w in list {
                w.fwd.owed.met(Met::LeftForRestart);
            }
        }
    }
}

impl Actor for Dispatcher {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        ctx.run_interval(self.shared.settings.timeouts.tick, |act, ctx| {
            if act.shared.retired() {
                return ctx.stop();
            }
            act.tick()
        });
    }
}

counted!(Dispatcher, Detour => (), |this, msg, _| {
    let Detour { msg, order, shard } = msg;
    this.command(msg);
    this.publish();
    let _ = shard.tell(DetourDone(order));
});

counted!(Dispatcher, SwitchEvent => (), |this, msg, _| {
    this.switch_event(msg);
    this.publish();
});

counted!(Dispatcher, RestoreMap => MessageResult<Envelope<RestoreMap>>, |this, msg, _| {
    let report = this.restore(msg.0);
    this.publish();
    MessageResult(report)
});

counted!(Dispatcher, LookupSwitch => Option<SwitchView>, |this, msg, _| {
    let sw = protocol::normalise_switch_id(&msg.0).ok()?;
    this.view(&sw)
});

counted!(Dispatcher, SwitchCounts => Vec<(usize, usize)>, |this, _, _| {
    this.map.counts(this.shared.settings.fls.len())
});

counted!(Dispatcher, FromActiveOnly => (), |this, msg, _| {
    let FromActiveOnly {
        fl,
        switch_id,
        forward,
    } = msg;
    let c = &this.shared.counters;
    let openkilda = this.shared.settings.protocol.dialect == Dialect::OpenKilda;
    match this.map.active(&switch_id) {
        Some(active) if active != fl => {
            Counters::inc(&c.standby_events_dropped);
            debug!(switch = %switch_id, fl = %this.shared.fl_id(fl), "message from a standby FL dropped (the active FL speaks for the switch)");
        }
        None if openkilda => {
            Counters::inc(&c.standby_events_dropped);
            debug!(switch = %switch_id, fl = %this.shared.fl_id(fl), "message about a switch with no active FL dropped (as OpenKilda's router does)");
        }
        _ => {
            this.shared.outbox.send(forward);
            Counters::inc(&c.answers_routed);
        }
    }
});

counted!(Dispatcher, MapRecords => (), |this, msg, _| {
    for (key, value) in msg.0 {
        this.map_record(&key, value);
    }
    this.publish();
});

counted!(Dispatcher, Collected => (), |this, msg, _| {
    for m in msg.0 {
        this.collected(m);
    }
});

counted!(Dispatcher, SetLeader => (), |this, msg, _| {
    if this.leader != msg.0 {
        info!(leader = msg.0, "cluster leadership changed");
    }
    this.leader = msg.0;
});

counted!(Dispatcher, FlLost => (), |this, msg, _| {
    this.apply_outage(msg.fl);
    this.publish();
});

counted!(Dispatcher, InOrder => (), |this, msg, _| {
    this.shared.outbox.send(msg.0);
    Counters::inc(&this.shared.counters.events_forwarded);
});

counted!(Dispatcher, SyncComplete => (), |this, msg, _| {
    let SyncComplete {
        fl,
        switches,
        requested,
        session,
    } = msg;
    this.sync_complete(fl, switches, requested);
    this.publish();
    let _ = session.tell(ChainApplied { fl });
});
