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

    /// No active FL: wait for a reconnect if the switch was lost within the grace window,
    /// else NOT_FOUND at once.
    fn no_active_fl(&mut self, fwd: Forward) {
        let s = self.shared.clone();
        let f = &s.settings.failover;
        let now = Instant::now();
        let lost = self.lost.get(&*fwd.switch_id);
        let grace_left = lost
            .map(|l| (l.at + f.grace).saturating_duration_since(now))
            .unwrap_or_default();
        if !grace_left.is_zero() && self.waiting_len < f.max_waiting {
            Counters::inc(&s.counters.grace_waits);
            s.traces.record(
                &fwd.correlation_id,
                Step::WaitingForReconnect {
                    switch: fwd.switch_id.clone(),
                    up_to_ms: fwd
                        .timeout
                        .map_or(grace_left, |t| grace_left.min(t))
                        .as_millis() as u64,
                },
            );
            debug!(correlation_id = %fwd.correlation_id, switch = %fwd.switch_id, "waiting for the switch to reconnect");
            let until = now + fwd.timeout.map_or(grace_left, |t| grace_left.min(t));
            self.waiting_len += 1;
            self.waiting
                .entry(fwd.switch_id.to_string())
                .or_default()
                .push(Waiting { fwd, until });
            return;
        }
        let why = match lost {
            Some(l) => format!(
                "switch {} is not connected to any FL: {}",
                fwd.switch_id, l.why
            ),
            None => format!(
                "switch {} is not connected to any FL instance known to the router",
                fwd.switch_id
            ),
        };
        self.refuse(fwd, why);
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

    /// A broadcast, as OpenKilda's floodlightrouter sends it: per FL the command wrapped with
    /// that FL's switches as `scope`; to every FL (`to_every_fl`), or to the FLs that have
    /// something to poll so each switch is polled once (`every_switch_once`). Not tracked:
    /// each FL's answers are routed like any FL message; the router answers nothing itself.
    fn broadcast(&self, msg: &Inbound, view: &MessageView<'_>, every_fl: bool) {
        let s = &self.shared;
        let lane = s.lane_of(msg);
        let wrapper = &s.settings.protocol.broadcast.wrapper_class;
        for (fl, scope) in self.broadcast_scopes(every_fl) {
            let Some(body) = protocol::wrap_broadcast(view, wrapper, &scope) else {
                return self.invalid(
                    msg,
                    Some(view),
                    ProtocolError::NoSwitchId("/payload".into()),
                );
            };
            let Some(topic) = s
                .settings
                .topics
                .fl_read_topics(s.fl_id(fl))
                .into_iter()
                .nth(lane)
            else {
                continue;
            };
            s.outbox.send(
                Outgoing::new(topic, body)
                    .key_opt(msg.key.clone())
                    .headers(msg.headers.clone())
                    .ticket(&msg.ticket),
            );
            Counters::inc(&s.counters.commands_forwarded);
        }
    }

    /// Per FL, the switches a broadcast covers there. To every FL: each FL's active switches
    /// (possibly none). Every switch once: FLs with only read-only connections first (stats
    /// polling off the FLs that program switches), then each switch's active FL for the rest;
    /// FLs with nothing to poll and offline FLs are left out.
    fn broadcast_scopes(&self, every_fl: bool) -> Vec<(FlIndex, Vec<String>)> {
        let s = &self.shared;
        let fls = s.settings.fls.len();
        if every_fl {
            return (0..fls).map(|fl| (fl, self.map.active_of(fl))).collect();
        }
        let online = |fl: &FlIndex| s.liveness.status(*fl) != FlStatus::Offline;
        let active: Vec<Vec<String>> = (0..fls).map(|fl| self.map.active_of(fl)).collect();
        let mut done = std::collections::HashSet::new();
        let mut out = Vec::new();
        for fl in (0..fls).filter(|fl| active[*fl].is_empty() && online(fl)) {
            let scope: Vec<String> = self
                .map
                .read_only_of(fl)
                .into_iter()
                .filter(|sw| done.insert(sw.clone()))
                .collect();
            if !scope.is_empty() {
                out.push((fl, scope));
            }
        }
        for (fl, list) in active.into_iter().enumerate() {
            let scope: Vec<String> = list
                .into_iter()
                .filter(|sw| done.insert(sw.clone()))
                .collect();
            if !scope.is_empty() && online(&fl) {
                out.push((fl, scope));
            }
        }
        out
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
                    requester.reply_to = reply_to;
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

    fn switch_event(&mut self, ev: SwitchEvent) {
        let now_ms = crate::runtime::clock::now_millis();
        if ev.via == Via::Sync {
            return self.dump_entry(ev, now_ms);
        }
        let t = if ev.up {
            let t = self
                .map
                .connect(&ev.switch_id, ev.fl, ev.mode, ev.via, now_ms);
            self.note_addresses(&ev.switch_id, ev.fl, ev.mode, ev.forward.as_ref());
            t
        } else {
            self.map.disconnect(&ev.switch_id, ev.fl, ev.mode)
        };
        let cause = Cause::Event {
            forward: ev.forward.map(Box::new),
        };
        debug!(switch = %ev.switch_id, fl = %self.shared.fl_id(ev.fl), up = ev.up, mode = ?ev.mode, transition = ?t, "switch connection changed");
        self.changed(&ev.switch_id, ev.fl, t, cause, &ev.ticket);
    }

    /// A network dump entry: the FL is connected to the switch in that mode (read-only means
    /// its read-write connection, if it had one, is gone: the FL is no longer master). Then the
    /// entry is forwarded only if the FL is the switch's active read-write FL, as OpenKilda's
    /// router does (`SwitchMonitor`): one voice per switch, never a read-only region's.
    fn dump_entry(&mut self, ev: SwitchEvent, now_ms: u64) {
        let (sw, fl) = (ev.switch_id.as_str(), ev.fl);
        let entry = ev.forward.as_ref().map(|o| o.payload.clone());
        if ev.mode == Mode::ReadOnly {
            let t = self.map.disconnect(sw, fl, Mode::ReadWrite);
            if t != Transition::Unknown {
                let cause = Cause::Chain {
                    entry: entry.clone(),
                };
                self.changed(sw, fl, t, cause, &ev.ticket);
            }
        }
        let t = self.map.connect(sw, fl, ev.mode, Via::Sync, now_ms);
        self.note_addresses(sw, fl, ev.mode, ev.forward.as_ref());
        self.changed(sw, fl, t, Cause::Chain { entry }, &ev.ticket);
        let Some(out) = ev.forward else { return };
        let c = &self.shared.counters;
        if ev.mode == Mode::ReadWrite && self.map.active(sw) == Some(fl) {
            self.shared.outbox.send(out);
            Counters::inc(&c.sync_chain_messages);
        } else {
            Counters::inc(&c.standby_events_dropped);
            debug!(switch = %sw, fl = %self.shared.fl_id(fl), "dump entry from an FL that is not the switch's active read-write FL: not forwarded");
        }
    }

    /// The switch's view in an FL's event or dump entry (`protocol.switch_events.view_pointers`).
    fn view_in(&self, payload: &[u8]) -> Option<serde_json::Value> {
        let text = std::str::from_utf8(payload).ok()?;
        let rules = &self.shared.settings.protocol.switch_events;
        rules.view_pointers.iter().find_map(|p| {
            let raw = protocol::lookup(text, p)?;
            serde_json::from_str::<serde_json::Value>(raw.get())
                .ok()
                .filter(serde_json::Value::is_object)
        })
    }

    /// Keeps the addresses the FL reported with a connection (for availability notices).
    fn note_addresses(&mut self, sw: &str, fl: FlIndex, mode: Mode, msg: Option<&Outgoing>) {
        let Some(msg) = msg else { return };
        if let Some(a) = self
            .view_in(&msg.payload)
            .and_then(|v| notices::addresses_of(&v))
        {
            self.map.set_addresses(sw, fl, mode, a);
        }
    }

    /// Acts on what a map change meant, in the configured dialect (`crate::dialect::notices`):
    /// - design: the FL's own connection event is forwarded where it tells the controller the
    ///   truth about the switch being managed (it became managed, lost its last read-write
    ///   connection, or a repeat from the active FL); an outage or a complete dump that ends
    ///   the last connection sends the router's own notice;
    /// - openkilda: raw connection events never go on; the switch's first read-write connection
    ///   is a connect notice, its last one gone a disconnect notice (`regionOffline` for an
    ///   outage), and repeats or disconnects of unknown connections say nothing.
    ///
    /// In both, every other connection change — a failover included — is one availability
    /// notice.
    fn changed(&mut self, sw: &str, fl: FlIndex, t: Transition, cause: Cause, ticket: &Ticket) {
        let s = self.shared.clone();
        let c = &s.counters;
        let openkilda = s.settings.protocol.dialect == Dialect::OpenKilda;
        let from_fact = matches!(cause, Cause::Fact);
        let forward = |cause: Cause| {
            if let Cause::Event { forward: Some(out) } = cause {
                s.outbox.send(*out);
                Counters::inc(&c.events_forwarded);
            }
        };
        match t {
            Transition::Unchanged => {
                if !openkilda && self.map.active(sw) == Some(fl) {
                    forward(cause);
                }
                return;
            }
            Transition::Unknown => {
                // A disconnect the map has no connection for: true news only if the switch has
                // no active FL at all (OpenKilda's router drops it).
                if !openkilda && self.map.active(sw).is_none() {
                    forward(cause);
                }
                return;
            }
            _ => {}
        }
        match t {
            Transition::Managed { to } => {
                debug!(switch = %sw, fl = %s.fl_id(to), "switch managed");
                self.lost.remove(sw);
                for set in &mut self.lost_in_outage {
                    set.remove(sw);
                }
                if openkilda {
                    self.connect_notice(sw, &cause);
                } else {
                    forward(cause);
                }
                self.release_waiting(sw, to);
            }
            Transition::FailedOver { from, to } => {
                Counters::inc(&c.failovers);
                let why = match &cause {
                    Cause::Outage { reason } => {
                        format!("FL {} went offline: {reason}", s.fl_id(from))
                    }
                    Cause::Event { .. } => format!("FL {} reported it disconnected", s.fl_id(from)),
                    Cause::Fact => format!(
                        "FL {}'s owner (another instance) reported it disconnected",
                        s.fl_id(from)
                    ),
                    Cause::Chain { .. } => format!(
                        "FL {}'s network dump no longer lists it read-write",
                        s.fl_id(from)
                    ),
                };
                info!(switch = %sw, from = %s.fl_id(from), to = %s.fl_id(to), reason = %why, "switch failed over");
                if !matches!(cause, Cause::Outage { .. }) {
                    // An outage fails all of the FL's pending commands at once (FailPending).
                    if let Some(p) = self.proxies.get(from) {
                        let _ = p.fail_switch.tell(FailSwitch {
                            switch_id: sw.to_string(),
                            reason: format!("failed over to FL {}: {why}", s.fl_id(to)),
                        });
                    }
                }
                self.availability(sw, &cause);
            }
            Transition::Returned { from, to } => {
                Counters::inc(&c.failbacks);
                info!(switch = %sw, from = %s.fl_id(from), to = %s.fl_id(to), "switch returned to its preferred FL");
                self.availability(sw, &cause);
            }
            Transition::Unmanaged { from } => {
                let why = match &cause {
                    Cause::Outage { reason } => {
                        format!(
                            "its last read-write FL {} went offline ({reason})",
                            s.fl_id(from)
                        )
                    }
                    Cause::Event { .. } => format!(
                        "its last read-write FL {} reported it disconnected",
                        s.fl_id(from)
                    ),
                    Cause::Fact => format!(
                        "its last read-write FL {}'s owner (another instance) reported it disconnected",
                        s.fl_id(from)
                    ),
                    Cause::Chain { .. } => format!(
                        "its last read-write FL {} no longer lists it",
                        s.fl_id(from)
                    ),
                };
                info!(switch = %sw, fl = %s.fl_id(from), "switch unmanaged: {why}");
                self.lost.insert(
                    sw.to_string(),
                    Lost {
                        at: Instant::now(),
                        why,
                    },
                );
                if let (Cause::Outage { .. }, Some(set)) =
                    (&cause, self.lost_in_outage.get_mut(from))
                {
                    set.insert(sw.to_string());
                }
                self.unmanaged_notice(sw, from, cause);
            }
            Transition::Availability => self.availability(sw, &cause),
            Transition::Unchanged | Transition::Unknown => {}
        }
        if self.cluster && !from_fact && s.liveness.is_owned(fl) {
            self.fact(sw, fl, ticket);
        }
        if self.leader {
            self.store(sw, ticket);
        }
    }

    /// The payload an FL sent that caused a change (its event, its dump entry).
    fn source(cause: &Cause) -> Option<&[u8]> {
        match cause {
            Cause::Event { forward: Some(out) } => Some(&out.payload),
            Cause::Chain { entry: Some(e) } => Some(e),
            _ => None,
        }
    }

    /// The notice's correlation id: the FL message's that caused it, as OpenKilda's router keeps.
    fn cause_cid(&self, cause: &Cause) -> Option<String> {
        let payload = Self::source(cause)?;
        let view = MessageView::read(payload, &self.shared.settings.protocol.envelope).ok()?;
        view.correlation().map(str::to_string)
    }

    /// OpenKilda's `SwitchConnectNotification`, sent by the instance that read the FL's message
    /// (in a cluster, the FL's owner; a fact from another instance announces nothing here).
    fn connect_notice(&self, sw: &str, cause: &Cause) {
        let s = &self.shared;
        let Some(payload) = Self::source(cause) else {
            return;
        };
        let Some(view) = self.view_in(payload) else {
            // Floodlight's reduced event (no view): OpenKilda's network topology cannot read a
            // connect notice without `speakerData`; the availability notice says what changed
            // (and the next dump entry makes the switch online there).
            warn!(switch = %sw, "switch connected without its view: availability notice instead of a connect notice");
            return self.availability(sw, cause);
        };
        let cid = self.cause_cid(cause);
        let entries = self.entries(sw);
        Counters::inc(&s.counters.availability_notifications);
        s.send_event(
            sw,
            notices::connect(
                &s.settings.protocol.classes,
                cid.as_deref(),
                &view,
                &entries,
            ),
            &[],
        );
    }

    /// The switch lost its last read-write FL (`from`): what the controller is told.
    fn unmanaged_notice(&self, sw: &str, from: FlIndex, cause: Cause) {
        let s = self.shared.clone();
        let c = &s.counters;
        let classes = &s.settings.protocol.classes;
        if s.settings.protocol.dialect == Dialect::OpenKilda {
            let region_offline = matches!(cause, Cause::Outage { .. });
            // The FL's event: its reader tells; an outage or a dump: the leader.
            let speaks = match cause {
                Cause::Event { .. } => true,
                Cause::Fact => false,
                _ => self.leader,
            };
            if speaks {
                Counters::inc(&c.unmanaged_notifications);
                let cid = self.cause_cid(&cause);
                let entries = self.entries(sw);
                s.send_event(
                    sw,
                    notices::disconnect(classes, cid.as_deref(), sw, &entries, region_offline),
                    &[],
                );
            }
            return;
        }
        match cause {
            Cause::Event {
                forward: Some(out), ..
            } => {
                s.outbox.send(*out);
                Counters::inc(&c.events_forwarded);
            }
            Cause::Event { .. } => {}
            // Its owner forwarded the FL's own event.
            Cause::Fact => {}
            _ if !self.leader => {}
            Cause::Chain { .. } if self.map.get(sw).is_none() => {
                Counters::inc(&c.switch_offline_notifications);
                s.send_event(sw, notices::switch_offline(classes, sw, s.fl_id(from)), &[]);
            }
            Cause::Outage { .. } | Cause::Chain { .. } => {
                Counters::inc(&c.unmanaged_notifications);
                s.send_event(sw, notices::unmanaged(classes, sw), &[]);
            }
        }
    }

    /// Publishes FL `fl`'s connection to `sw` as a fact for the other instances (a tombstone
    /// when it is gone); this instance owns `fl`, so it is the key's only writer.
    fn fact(&self, sw: &str, fl: FlIndex, ticket: &Ticket) {
        let s = &self.shared;
        let topic = s.settings.topics.switch_map.clone();
        let key = Bytes::from(format!("{FACT_PREFIX}{}/{sw}", s.fl_id(fl)));
        let out = match self.map.connection(sw, fl) {
            Some(c) => {
                let value = StoredConnection {
                    fl: s.fl_id(fl).to_string(),
                    mode: c.mode,
                    since: c.since_ms,
                    via: c.via,
                    addresses: c.addresses.as_deref().cloned(),
                };
                Outgoing::new(topic, serde_json::to_vec(&value).unwrap_or_default()).key(key)
            }
            None => Outgoing::tombstone(topic, key),
        };
        s.outbox.send(out.ticket(ticket));
    }

    /// A record of the switch-map topic written by another instance (a cluster): a connection
    /// fact of an FL owned elsewhere is applied like that FL's event (the leader announces what
    /// it means); a decision of the leader sets the switch's active FL here.
    fn map_record(&mut self, key: &str, value: Option<Bytes>) {
        let s = self.shared.clone();
        if let Some(rest) = key.strip_prefix(FACT_PREFIX) {
            let Some((fl_id, sw)) = rest.rsplit_once('/') else {
                return;
            };
            let (Some(fl), Ok(sw)) = (s.fl_index(fl_id), protocol::normalise_switch_id(sw)) else {
                warn!(key, "switch-map fact skipped (unknown FL or bad switch id)");
                return;
            };
            if s.liveness.is_owned(fl) {
                return; // this instance wrote it
            }
            let fact = value.and_then(|v| serde_json::from_slice::<StoredConnection>(&v).ok());
            let had = self.map.connection(&sw, fl).map(|c| c.mode);
            let t = match (fact, had) {
                (Some(f), had) => {
                    if let Some(old) = had.filter(|&m| m != f.mode) {
                        let t = self.map.disconnect(&sw, fl, old);
                        self.changed(&sw, fl, t, Cause::Fact, &Ticket::none());
                    }
                    self.map.connect(&sw, fl, f.mode, f.via, f.since)
                }
                (None, Some(mode)) => self.map.disconnect(&sw, fl, mode),
                (None, None) => Transition::Unknown,
            };
            self.changed(&sw, fl, t, Cause::Fact, &Ticket::none());
            return;
        }
        if self.leader {
            return; // its own decision
        }
        let Some(value) = value else {
            return; // the switch is gone: its facts remove the connections
        };
        let Ok(sw) = protocol::normalise_switch_id(key) else {
            return;
        };
        let Ok(stored) = serde_json::from_slice::<StoredSwitch>(&value) else {
            return;
        };
        let decided = stored.active.as_deref().and_then(|a| s.fl_index(a));
        if let Some(fl) = decided {
            if !self.map.set_active(&sw, fl) {
                // The leader has seen a connection this map has not yet: take its view.
                if let Some(entry) = stored.into_switch(|id| s.fl_index(id)) {
                    self.map.restore(sw.clone(), entry);
                }
            }
            if let Some(active) = self.map.active(&sw) {
                self.release_waiting(&sw, active);
            }
        }
    }

    /// Every connection of the switch, as a notice lists them.
    fn entries(&self, sw: &str) -> Vec<notices::AvailabilityEntry<'_>> {
        let s = &self.shared;
        self.map
            .get(sw)
            .map(|x| {
                x.connections()
                    .iter()
                    .map(|c| notices::AvailabilityEntry {
                        fl: s.fl_id(c.fl),
                        read_write: c.mode == Mode::ReadWrite,
                        active: x.active() == Some(c.fl) && c.mode == Mode::ReadWrite,
                        since_ms: c.since_ms,
                        addresses: c.addresses.as_deref(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Publishes the switch's connections (OpenKilda's SwitchAvailabilityUpdateNotification).
    fn availability(&self, sw: &str, cause: &Cause) {
        if !self.leader {
            return; // the leader announces it
        }
        let s = &self.shared;
        Counters::inc(&s.counters.availability_notifications);
        let cid = self.cause_cid(cause);
        s.send_event(
            sw,
            notices::availability(
                &s.settings.protocol.classes,
                cid.as_deref(),
                sw,
                &self.entries(sw),
            ),
            &[],
        );
    }

    /// The switch reconnected: commands waiting for it go to its new active FL.
    fn release_waiting(&mut self, sw: &str, fl: FlIndex) {
        let Some(list) = self.waiting.remove(sw) else {
            return;
        };
        self.waiting_len -= list.len();
        info!(switch = %sw, fl = %self.shared.fl_id(fl), commands = list.len(), "switch reconnected within the grace window; waiting commands forwarded");
        for w in list {
            Counters::inc(&self.shared.counters.grace_forwarded);
            self.forward_to(fl, w.fwd);
        }
    }

    fn outage_unapplied(&self, fl: FlIndex) -> bool {
        self.outages_applied
            .get(fl)
            .is_some_and(|&n| n != self.shared.liveness.outages(fl))
    }

    /// Applies FL `fl`'s latest outage once: its connections go, its switches fail over or
    /// become unmanaged; then its proxy answers its pending commands (after the failover, so
    /// new commands already go to the standbys while the old ones are being answered).
    fn apply_outage(&mut self, fl: FlIndex) {
        let s = self.shared.clone();
        let Some(applied) = self.outages_applied.get_mut(fl) else {
            return;
        };
        let outages = s.liveness.outages(fl);
        if outages == *applied {
            return;
        }
        *applied = outages;
        let reason = s.liveness.outage_reason(fl);
        let changes = self.map.drop_fl(fl);
        info!(fl = %s.fl_id(fl), switches = changes.len(), reason = %reason, "FL offline: its connections removed");
        for (sw, t) in changes {
            let cause = Cause::Outage {
                reason: reason.clone(),
            };
            self.changed(&sw, fl, t, cause, &Ticket::none());
        }
        if let Some(p) = self.proxies.get(fl) {
            let _ = p.fail_pending.tell(FailPending { reason });
        }
    }
}

impl Dispatcher {
    /// Splits a multi-switch command by FL and starts the actor that collects the parts.
    fn multi_switch(
        &mut self,
        msg: &Inbound,
        cid: &str,
        request_class: String,
        text: &str,
        target: Target,
        span: Option<std::ops::Range<usize>>,
    ) {
        let s = &self.shared;
        Counters::inc(&s.counters.multi_commands);
        let fls = s.settings.fls.len();
        let mut by_fl: Vec<Vec<String>> = vec![Vec::new(); fls];
        let mut unsent = Vec::new();
        let all = target == Target::All;
        match target {
            Target::Many(ids) => {
                for sw in ids {
                    match self.map.active(&sw) {
                        Some(fl) => by_fl[fl].push(sw),
                        None => unsent.push((sw, Failure::NoFl, None)),
                    }
                }
            }
            _ => {
                for (fl, list) in by_fl.iter_mut().enumerate() {
                    *list = self.map.active_of(fl);
                }
            }
        }
        let mut parts = Vec::new();
        for (fl, switches) in by_fl.into_iter().enumerate().filter(|(_, v)| !v.is_empty()) {
            if s.liveness.status(fl) == FlStatus::Offline {
                unsent.extend(
                    switches
                        .into_iter()
                        .map(|sw| (sw, Failure::FlOffline, Some(fl))),
                );
                continue;
            }
            // "All" commands go unchanged (each FL serves all of its own switches); a list is
            // replaced by the FL's subset, byte for byte at the matched value.
            let payload = match (&span, all) {
                (Some(span), false) => protocol::splice_switches(text, span, &switches),
                _ => msg.payload.clone(),
            };
            parts.push(Part {
                fl,
                switches,
                payload,
                lane: s.lane_of(msg),
            });
        }
        s.traces.record(
            cid,
            Step::FannedOut {
                fls: parts.len(),
                unsent: unsent.len(),
            },
        );
        let stats = MailboxStats::new("multi_switch", cid, multi_switch::MAILBOX_CAPACITY);
        s.mailboxes.register(&stats);
        let addr = MultiSwitchCommand::new(
            s.clone(),
            stats.clone(),
            self.proxies.clone(),
            cid.to_string(),
            request_class,
            msg,
            parts,
            unsent,
        )
        .start_forwarding();
        let stats_for_port = stats;
        if s.settings.engine.collect.is_some() {
            self.collectors.retain(|_, port| port.answer.connected());
            self.collectors.insert(
                cid.to_string(),
                MultiSwitchPort::of(&Mailbox::new(addr, stats_for_port)),
            );
        }
    }

    /// Results of multi-switch parts that FL owners on other instances sent to this instance's
    /// collect topic: each to its collector, by correlation id and the FL it names.
    fn collected(&mut self, msg: Inbound) {
        let s = self.shared.clone();
        let Ok(view) = MessageView::read(&msg.payload, &s.settings.protocol.envelope) else {
            return;
        };
        let Some(cid) = view.correlation() else {
            return;
        };
        let fl = msg
            .headers
            .iter()
            .find(|(k, _)| k == PART_FL_HEADER)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .and_then(|id| s.fl_index(id));
        let (Some(port), Some(fl)) = (self.collectors.get(cid), fl) else {
            Counters::inc(&s.counters.multi_late_answers);
            debug!(
                correlation_id = cid,
                "part result for no running collector here; dropped"
            );
            return;
        };
        let timed_out = view.class() == Some(s.settings.protocol.classes.error_message.as_str())
            && String::from_utf8_lossy(&msg.payload)
                .contains(ErrorType::OperationTimedOut.as_str());
        let sent = if timed_out {
            port.failed.tell(PartFailed {
                fl,
                failure: Failure::TimedOut,
            })
        } else {
            let is_final = view
                .head
                .chain_position()
                .is_none_or(|(i, total)| total == 0 || i + 1 >= total);
            port.answer.tell(PartAnswer {
                fl,
                payload: msg.payload.clone(),
                is_final,
            })
        };
        if sent.is_err() {
            self.collectors.remove(cid);
        }
    }

    /// FL `fl`'s dump is known complete: its connections to switches the dump did not list,
    /// learned before the request, are gone; and the switches its last outage left unmanaged
    /// that the dump does not list are reported gone. `requested: None` removes nothing.
    fn sync_complete(
        &mut self,
        fl: FlIndex,
        listed: Vec<(String, Mode)>,
        requested: Option<Instant>,
    ) {
        let s = self.shared.clone();
        let Some(requested) = requested else {
            return;
        };
        let before = std::mem::take(&mut self.lost_in_outage[fl]);
        // (OpenKilda's services heard of them at the outage: a disconnect notice each.)
        let design = s.settings.protocol.dialect == Dialect::Design;
        let mut gone: Vec<&String> = before
            .iter()
            .filter(|sw| {
                design && !listed.iter().any(|(r, _)| r == *sw) && self.map.active(sw).is_none()
            })
            .collect();
        gone.sort();
        for sw in gone {
            info!(switch = %sw, fl = %s.fl_id(fl), "switch no longer reported by its FL after its outage");
            Counters::inc(&s.counters.switch_offline_notifications);
            s.send_event(
                sw,
                notices::switch_offline(&s.settings.protocol.classes, sw, s.fl_id(fl)),
                &[],
            );
        }
        let changes = self.map.forget_unlisted(fl, &listed, requested);
        for (sw, t) in changes {
            self.changed(&sw, fl, t, Cause::Chain { entry: None }, &Ticket::none());
        }
    }

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
