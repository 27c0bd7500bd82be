//! `FlProxy`: one actor per FL instance. It owns that FL's pending commands, their ack
//! deadlines and the blacklist of timed-out correlation ids, forwards commands to the FL's read
//! topic, and reads everything the FL writes: acks settle commands, answers go to their
//! reply-to, switch events update the map (via the dispatcher) and go to the events topic.
//!
//! Started under `actix::Supervisor`: the actor value (and so its pending table) survives a
//! restart; `started` re-arms the deadline tick.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::dialect::dump::{self, DumpPart};
use crate::fl::liveness::{Delivered, FlStatus};
use crate::fl::pending::{Blacklist, Expiry, PendingTable};
use crate::fl::settled::RecentlySettled;
use crate::messages::{
    Adopt, DispatcherPort, DumpSeen, Evidence, FailPending, FailSwitch, Failure, Forward, Forwards,
    FromActiveOnly, InOrder, MonitorPort, PartAnswer, PartFailed, StartSync, SwitchEvent,
    SyncTrigger, UnwatchSync, WatchSync, WriteErrors,
};
use crate::protocol::{self, ErrorType, MessageView};
use crate::routing::replay::PriorAnswer;
use crate::routing::routes::FlIndex;
use crate::routing::switch_map::Via;
use crate::runtime::counters::Counters;
use crate::runtime::mailbox::{Envelope, MailboxStats, Outlet};
use crate::runtime::obligation::{Met, Obligation};
use crate::runtime::outbox::{headers, Inbound, Outgoing};
use crate::runtime::shared::{Shared, Source};
use crate::runtime::traces::{Delivery, DeliveryNote, Step};
use crate::settings::{FlOwnership, PART_FL_HEADER};

/// What a message from the FL is, decided once by `FlProxy::classify`.
enum FlMessage<'v> {
    /// A part of a network dump (an entry, a marker, a chunk of a running session's chain),
    /// with the session waiting for it, if one is.
    Dump(DumpPart, Option<Outlet<DumpSeen>>),
    /// A part of the dump of an adopted SyncRequest whose session is still starting.
    DumpEarly(DumpPart),
    AliveResponse,
    /// For a command that timed out (blacklisted): dropped and counted.
    Late(&'v str),
    Ack(Option<&'v str>),
    /// A switch connection event: updates the map.
    SwitchEvent,
    /// An answer, or anything else: routed.
    Answer,
}

/// A message read from this FL's write topic.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlOutput(pub Inbound);

/// Messages read together from this FL's write topics, in read order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlOutputs(pub Vec<Inbound>);

/// Records read from this FL's read topics (a cluster instance that owns the FL): each
/// forwarded command becomes pending here, whichever instance forwarded it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forwarded(pub Vec<Inbound>);

/// This engine (no longer) owns the FL (`Engine::set_fl_owned`). Losing it drops the pending
/// commands unanswered: their forwards are on the FL's read topic, where its new owner adopts
/// them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetOwned(pub bool);

/// Stops the actor so its supervisor restarts it (fault injection, unrecoverable errors).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Restart;

/// Up to `limit` pending commands of this FL, oldest first (admin API).
#[derive(Message)]
#[rtype(result = "Vec<InflightRow>")]
pub struct GetInflight {
    pub limit: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct InflightRow {
    pub correlation_id: String,
    pub switch_id: String,
    pub state: crate::fl::pending::State,
    pub age_ms: u64,
    pub multi_switch: bool,
}

/// A snapshot of the proxy for the admin API and tests.
#[derive(Message)]
#[rtype(result = "ProxyStatus")]
pub struct GetStatus;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProxyStatus {
    pub fl: String,
    pub pending: usize,
    pub blacklisted: usize,
    pub restarts: u64,
    /// Milliseconds since the FL last wrote anything (None: never).
    pub last_seen_ms_ago: Option<u64>,
    /// Whether this engine owns the FL (reads it, holds its pending commands).
    pub owned: bool,
}
pub const MAILBOX_CAPACITY: usize = 1024;
/// Settled commands an FL proxy remembers, to drop their duplicate answers (about 2 MiB).
const RECENT_SETTLED: usize = 65_536;

pub struct FlProxy {
    index: FlIndex,
    id: String,
    /// `id` and `read_topics` shared into command traces (`crate::runtime::traces`), not copied.
    trace_id: Arc<str>,
    trace_topics: Vec<Arc<str>>,
    /// This FL's read topic per command lane.
    read_topics: Vec<String>,
    /// This FL's write topic → (output lane's controller-side topic, if it has one).
    lane_outputs: HashMap<String, Option<Arc<str>>>,
    shared: Arc<Shared>,
    /// Switch events go to the map's owner.
    dispatcher: DispatcherPort,
    /// Evidence of life and reported write failures go to the outage monitor.
    monitor: MonitorPort,
    /// A controller's SyncRequest adopted from the read topic gets its session there.
    scheduler: Outlet<StartSync>,
    stats: Arc<MailboxStats>,
    pending: PendingTable,
    blacklist: Blacklist,
    /// The last commands answered here: a second answer to one of them is a duplicate.
    recent: RecentlySettled,
    /// When the FL last wrote anything: evidence that it is alive.
    last_seen: Option<Instant>,
    /// Correlation ids of running sync sessions that include this FL.
    sync_watch: HashMap<String, Outlet<DumpSeen>>,
    /// Adopted SyncRequests (a cluster instance) whose sessions are starting: what their dumps
    /// brought waits here (the messages themselves are handled), with when the request was
    /// adopted, until the session watches.
    sync_starting: HashMap<String, (Instant, Vec<DumpPart>)>,
    /// Commands an outage failed, still to be answered (with the outage's reason).
    failing: std::collections::VecDeque<(crate::fl::pending::Entry, String)>,
    /// Whether this engine owns the FL. When not, commands are forwarded and handed over (the
    /// owner adopts them from the read topic) and nothing the FL writes is read here.
    owned: bool,
    /// A cluster instance: every forward is handed over, and commands become pending only by
    /// adoption from the read topic ([`Forwarded`]), so the read topic's offset is never
    /// committed past a command still open (`docs/design/cluster.md`).
    adopts: bool,
    /// FL answers and acks for no pending command, waiting (in arrival order) until the
    /// forwards on the read topic are adopted up to their arrival.
    held: std::collections::VecDeque<(Instant, Inbound)>,
}

impl FlProxy {
    pub fn new(
        index: FlIndex,
        shared: Arc<Shared>,
        dispatcher: DispatcherPort,
        monitor: MonitorPort,
        scheduler: Outlet<StartSync>,
        stats: Arc<MailboxStats>,
    ) -> Self {
        let id = shared.settings.fls[index].id.clone();
        let owned = shared.liveness.is_owned(index);
        let adopts = shared.settings.engine.ownership == FlOwnership::Assigned;
        let t = &shared.settings.topics;
        let read_topics = t.fl_read_topics(&id);
        let lane_outputs = t
            .fl_write_topics(&id)
            .into_iter()
            .zip(t.output_lanes().into_iter().map(|l| l.to.map(Arc::from)))
            .collect();
        Self {
            index,
            trace_id: Arc::from(id.as_str()),
            trace_topics: read_topics.iter().map(|t| Arc::from(t.as_str())).collect(),
            id,
            read_topics,
            lane_outputs,
            shared,
            dispatcher,
            monitor,
            scheduler,
            stats,
            pending: PendingTable::default(),
            blacklist: Blacklist::default(),
            recent: RecentlySettled::new(RECENT_SETTLED),
            last_seen: None,
            sync_watch: HashMap::new(),
            sync_starting: HashMap::new(),
            failing: Default::default(),
            owned,
            adopts,
            held: Default::default(),
        }
    }

    fn forward(&mut self, f: Forward) {
        if !self.owned || self.adopts {
            return self.hand_over(f);
        }
        let s = &self.shared;
        let now = Instant::now();
        if s.liveness.status(self.index) == FlStatus::Offline {
            if let Some(m) = &f.multi {
                let _ = m.failed.tell(PartFailed {
                    fl: self.index,
                    failure: Failure::FlOffline,
                });
                return f.owed.met(Met::Collected);
            }
            s.send_error_from(
                Some(&self.id),
                &f.requester,
                &f.correlation_id,
                Some(&f.switch_id),
                ErrorType::NotFound,
                "FL is offline",
                &format!(
                    "switch {} is managed by FL {}, which is offline (no message from it for {})",
                    f.switch_id,
                    self.id,
                    humantime::format_duration(s.settings.timeouts.alive_timeout)
                ),
                &[&f.msg.ticket],
            );
            return f.owed.met(Met::RouterAnswered);
        }
        let Some(timeout) = f.timeout else {
            // A class the FL does not always answer: delivered, nothing kept (its input is
            // done once the forward is delivered; its requester keeps its own timeout).
            let note = self.trace_forward(&f.correlation_id, f.lane, &f.switch_id, false);
            let out = self.to_fl(f.lane, &f.switch_id, f.msg).note(note);
            s.outbox.send(out);
            Counters::inc(&s.counters.commands_forwarded);
            Counters::inc(&s.counters.delivery_only_forwarded);
            return f.owed.met(Met::DeliveryOnly);
        };
        // The deadline runs from delivery (a partition leader failover can hold the command
        // in the producer for seconds; the FL cannot answer what it cannot read).
        let (delivered, delivery_ticket) = Delivered::new(s.liveness.epoch());
        self.pending.insert(
            &f.correlation_id,
            f.requester,
            f.switch_id.clone(),
            f.msg.ticket.clone(),
            f.multi,
            Some(delivered),
            now,
            timeout,
            f.owed,
        );
        let note = self.trace_forward(&f.correlation_id, f.lane, &f.switch_id, false);
        let out = self
            .to_fl(f.lane, &f.switch_id, f.msg)
            .ticket(&delivery_ticket)
            .note(note);
        drop(delivery_ticket);
        s.outbox.send(out);
        Counters::inc(&s.counters.commands_forwarded);
    }

    /// The command as it goes to the FL's read topic of its lane, holding its input's ticket.
    /// Bytes, key and headers in = bytes, key and headers out (OpenKilda's services match
    /// replies by key; the reply-to header lets a restarted router, or the FL's owner in a
    /// cluster, route the answer). Partitioned by switch so one switch's commands stay in order.
    fn to_fl(&self, lane: usize, switch_id: &str, msg: Inbound) -> Outgoing {
        let topic = self
            .read_topics
            .get(lane)
            .or(self.read_topics.first())
            .cloned()
            .unwrap_or_default();
        let read_at = msg.read_at;
        let mut out = Outgoing::new(topic, msg.payload)
            .key_opt(msg.key)
            .headers(msg.headers)
            .partition_key(Bytes::copy_from_slice(switch_id.as_bytes()))
            .ticket(&msg.ticket);
        out.read_at = read_at;
        out
    }

    /// Records a forward in the command's trace; the note reports its delivery.
    fn trace_forward(
        &self,
        cid: &str,
        lane: usize,
        switch_id: &Arc<str>,
        handed_over: bool,
    ) -> Option<DeliveryNote> {
        let s = &self.shared;
        if !s.traces.enabled() {
            return None;
        }
        let topic = self
            .trace_topics
            .get(lane)
            .or(self.trace_topics.first())
            .cloned()
            .unwrap_or_else(|| Arc::from(""));
        let note = DeliveryNote::new(&s.traces, cid, Delivery::Forward, &topic);
        let fl = self.trace_id.clone();
        let step = if handed_over {
            Step::HandedOver { fl, topic }
        } else {
            Step::Forwarded {
                fl,
                switch: switch_id.clone(),
                topic,
            }
        };
        s.traces.record(cid, step);
        note
    }

    /// A command for an FL another instance owns: forwarded, not kept. Its input is done once
    /// the forward is delivered (the ticket rides on it); the FL's owner adopts it from the
    /// read topic and owes it its answer.
    fn hand_over(&mut self, f: Forward) {
        let s = &self.shared;
        let note = self.trace_forward(&f.correlation_id, f.lane, &f.switch_id, true);
        s.outbox
            .send(self.to_fl(f.lane, &f.switch_id, f.msg).note(note));
        Counters::inc(&s.counters.commands_forwarded);
        Counters::inc(&s.counters.commands_handed_over);
        f.owed.met(Met::HandedOver);
    }

    fn adopt(&mut self, a: Adopt) {
        if !self.owned || self.adopts {
            // Its forward is on the FL's read topic: the FL's owner adopts it from there (in a
            // cluster, only from there, even when that is this instance).
            Counters::inc(&self.shared.counters.commands_handed_over);
            return a.owed.met(Met::HandedOver);
        }
        let s = &self.shared;
        let class = MessageView::read(&a.msg.payload, &s.settings.protocol.envelope)
            .ok()
            .and_then(|v| v.class().map(str::to_string));
        let Some(deadline) = s.settings.answer_deadline(class.as_deref()) else {
            // Delivered before the restart; nothing to wait for.
            return a.owed.met(Met::DeliveryOnly);
        };
        Counters::inc(&s.counters.replayed_adopted);
        let ack = deadline.as_millis() as u64;
        let left = (a.forwarded_at_ms + ack).saturating_sub(crate::runtime::clock::now_millis());
        debug!(fl = %self.id, correlation_id = %a.correlation_id, left_ms = left, "command read again; pending again without a second forward");
        s.traces.record(
            &a.correlation_id,
            Step::Adopted {
                fl: self.trace_id.clone(),
            },
        );
        self.pending.insert(
            &a.correlation_id,
            a.requester,
            Arc::from(a.switch_id),
            a.msg.ticket.clone(),
            None,
            None,
            Instant::now(),
            std::time::Duration::from_millis(left),
            a.owed,
        );
    }

    /// One message the FL wrote: read once, classified once ([`FlMessage`]), then handled by
    /// the one method for its case.
    fn on_output(&mut self, msg: Inbound) {
        let shared = self.shared.clone();
        let s = &*shared;
        if !self.owned {
            // Read before this instance lost the FL: its new owner reads it again (the offset
            // of a revoked partition is not committed from here).
            Counters::inc(&s.counters.fl_messages_not_owned);
            return;
        }
        Counters::inc(&s.counters.fl_messages_received);
        s.versions.observe_fl(self.index, &msg);
        let now = Instant::now();
        self.last_seen = Some(now);
        if s.liveness.evidence(self.index) {
            // An offline FL spoke: recovery is registered at once, not at the next tick.
            let _ = self.monitor.evidence.tell(Evidence { fl: self.index });
        }
        self.handle_output(msg, now, true);
    }

    /// An FL message's handling after its evidence is stamped: now, or again when released
    /// from the hold (`may_hold` false then).
    fn handle_output(&mut self, msg: Inbound, now: Instant, may_hold: bool) {
        let shared = self.shared.clone();
        let s = &*shared;
        let view = match MessageView::read(&msg.payload, &s.settings.protocol.envelope) {
            Ok(v) => v,
            Err(e) => {
                warn!(fl = %self.id, error = %e, "unreadable message from FL; dead-lettered");
                s.dead_letter(&msg, Source::Fl(&self.id), &e.to_string());
                return;
            }
        };
        let kind = self.classify(&view, now);
        if may_hold && self.must_wait_for_adoption(&kind, &view, now) {
            Counters::inc(&s.counters.answers_held);
            self.held.push_back((now, msg));
            return;
        }
        let lane_to = self.lane_to(&msg);
        let lane_to = lane_to.as_deref();
        match kind {
            FlMessage::Dump(part, session) => {
                self.on_dump(&part, &msg, lane_to);
                if let Some(session) = session {
                    let _ = session.tell(DumpSeen {
                        fl: self.index,
                        part,
                    });
                }
            }
            FlMessage::DumpEarly(part) => {
                self.on_dump(&part, &msg, lane_to);
                if let Some((_, early)) = view
                    .correlation()
                    .and_then(|c| self.sync_starting.get_mut(c))
                {
                    early.push(part);
                }
            }
            FlMessage::AliveResponse => self.on_alive_response(&view),
            FlMessage::Late(cid) => {
                Counters::inc(&s.counters.blacklist_drops);
                self.trace_dropped(cid);
                debug!(fl = %self.id, correlation_id = cid, "late message for a timed-out command dropped");
            }
            FlMessage::Ack(cid) => {
                Counters::inc(&s.counters.acks_received);
                if let Some(cid) = cid {
                    if self.pending.ack(cid, now, s.settings.timeouts.answer) {
                        s.traces.record(
                            cid,
                            Step::AckedByFl {
                                fl: self.trace_id.clone(),
                            },
                        );
                    } else {
                        debug!(fl = %self.id, correlation_id = cid, "ack for no pending command");
                    }
                }
            }
            FlMessage::SwitchEvent => self.on_switch_event(&view, &msg, lane_to),
            FlMessage::Answer => self.on_answer(&view, &msg, lane_to, now),
        }
    }

    /// A cluster instance adopts its FL's commands from the read topic, so an ack or answer
    /// can arrive before the forward it answers is adopted. It waits while the forwards are
    /// not adopted up to its arrival (the forward was on the read topic before the FL read it).
    fn must_wait_for_adoption(
        &self,
        kind: &FlMessage<'_>,
        view: &MessageView<'_>,
        now: Instant,
    ) -> bool {
        // A dump part for no session here may answer a controller's SyncRequest not yet
        // adopted: its session must see it.
        let may_be_adopted = matches!(
            kind,
            FlMessage::Ack(Some(_)) | FlMessage::Answer | FlMessage::Dump(_, None)
        );
        if !self.adopts || !may_be_adopted {
            return false;
        }
        let Some(cid) = view.correlation() else {
            return false;
        };
        // The router's own requests are never adopted: nothing to wait for.
        if cid.starts_with("flrouter-") {
            return false;
        }
        !self.pending.contains(cid)
            && self
                .shared
                .liveness
                .forwards_seen_up_to(self.index)
                .is_none_or(|seen| seen < now)
    }

    /// Held messages whose forwards are adopted by now (or that waited as long as a command
    /// may wait for its first answer: then nothing is coming to match them), in arrival order.
    fn release_held(&mut self, now: Instant) {
        let seen = self.shared.liveness.forwards_seen_up_to(self.index);
        let max_wait = self.shared.settings.timeouts.longest_first_answer();
        while let Some(&(arrived, _)) = self.held.front() {
            let adopted = seen.is_some_and(|seen| seen >= arrived);
            if !adopted && arrived + max_wait > now {
                break;
            }
            if let Some((arrived, msg)) = self.held.pop_front() {
                self.handle_output(msg, arrived, false);
            }
        }
    }

    /// A forward read from this FL's read topic, by whichever instance it was sent: pending
    /// here, its deadline from the record's time, its input the read topic's record.
    fn adopt_forward(&mut self, msg: Inbound) {
        let shared = self.shared.clone();
        let s = &*shared;
        if !self.owned {
            Counters::inc(&s.counters.fl_messages_not_owned);
            return;
        }
        let Ok(view) = MessageView::read(&msg.payload, &s.settings.protocol.envelope) else {
            // Not a command the router could have forwarded: nothing to wait for.
            return;
        };
        let Some(cid) = view.correlation() else {
            return;
        };
        // Answered already (by this FL's previous owner, whose answers and errors the shell
        // read back when this instance took the FL over): nothing to wait for.
        if s.previous.has_outcome(cid) {
            Counters::inc(&s.counters.forwards_settled);
            return;
        }
        // The router's own requests (alive, sync) are answered to the router, not adopted.
        if cid.starts_with("flrouter-")
            || self.sync_watch.contains_key(cid)
            || self.sync_starting.contains_key(cid)
        {
            return;
        }
        if let Ok(protocol::CommandKind::SyncRequest { .. }) =
            view.command_kind(&s.settings.protocol)
        {
            return self.adopt_sync_request(cid.to_string(), msg);
        }
        let switch = match view.target(&s.settings.protocol).map(|l| l.target) {
            Ok(protocol::Target::One(sw)) => Arc::from(sw.as_str()),
            _ => Arc::from(""),
        };
        let Some(timeout) = s.settings.answer_deadline(view.class()) else {
            return; // delivered; its requester keeps its own timeout
        };
        let now_ms = crate::runtime::clock::now_millis();
        let at_ms = msg
            .origin
            .as_ref()
            .and_then(|o| o.timestamp_ms)
            .unwrap_or(now_ms);
        let left = (at_ms + timeout.as_millis() as u64).saturating_sub(now_ms);
        let requester = s.requester(&msg, Some(&view));
        Counters::inc(&s.counters.forwards_adopted);
        s.traces.record(
            cid,
            Step::Adopted {
                fl: self.trace_id.clone(),
            },
        );
        self.pending.insert(
            cid,
            requester,
            switch,
            msg.ticket.clone(),
            None,
            None,
            Instant::now(),
            std::time::Duration::from_millis(left),
            Obligation::new(),
        );
    }

    /// A controller's SyncRequest on this FL's read topic (sent on by whichever instance read
    /// it): this FL's sync runs here, as a one-FL session that reports to the request's
    /// reply-to. Its chain may arrive before the session watches: it waits in `sync_starting`.
    /// A re-send by a running session is not a new request.
    fn adopt_sync_request(&mut self, cid: String, msg: Inbound) {
        let resent = msg
            .headers
            .iter()
            .any(|(name, _)| name.as_ref() == headers::SYNC_RESEND);
        if resent {
            return;
        }
        let s = &self.shared;
        info!(fl = %self.id, correlation_id = %cid, "controller SyncRequest adopted; syncing the FL here");
        Counters::inc(&s.counters.sync_requests_adopted);
        self.sync_starting
            .insert(cid.clone(), (Instant::now(), Vec::new()));
        let start = StartSync {
            fls: vec![self.index],
            trigger: SyncTrigger::Controller,
            request: Some((cid.clone(), msg)),
            adopted: true,
        };
        if self.scheduler.tell(start).is_err() {
            self.sync_starting.remove(&cid); // shutting down
        }
    }

    /// Chain messages of adopted SyncRequests whose sessions never started (the FL was lost
    /// meanwhile, or the engine is stopping): ordinary messages after all.
    fn expire_sync_starting(&mut self, now: Instant) {
        let wait = self.shared.settings.timeouts.sync_chain;
        let stale: Vec<String> = self
            .sync_starting
            .iter()
            .filter(|(_, (at, _))| *at + wait <= now)
            .map(|(cid, _)| cid.clone())
            .collect();
        for cid in stale {
            if self.sync_starting.remove(&cid).is_some() {
                // Its dump was applied and forwarded as it came; only the judging is lost.
                warn!(fl = %self.id, correlation_id = %cid, "adopted SyncRequest's session never started");
            }
        }
    }

    /// What an FL message is, decided in one place, in order of precedence.
    fn classify<'v>(&self, view: &'v MessageView<'_>, now: Instant) -> FlMessage<'v> {
        let s = &self.shared;
        let cid = view.correlation();
        let class = view.class();
        let classes = &s.settings.protocol.classes;
        let rules = &s.settings.protocol;
        // A running session's dump: entries and markers by class, other chunks of its chain
        // by their position.
        let ours = |part: Option<DumpPart>| part.or_else(|| dump::chunk(view));
        if let Some(session) = cid.and_then(|c| self.sync_watch.get(c)) {
            if let Some(part) = ours(dump::read(view, rules)).filter(|_| session.connected()) {
                return FlMessage::Dump(part, Some(session.clone()));
            }
        }
        if cid.is_some_and(|c| self.sync_starting.contains_key(c)) {
            if let Some(part) = ours(dump::read(view, rules)) {
                return FlMessage::DumpEarly(part);
            }
        }
        if class == Some(classes.alive_response.as_str()) {
            return FlMessage::AliveResponse;
        }
        // A dump entry with no session here (it ended; another instance's) is still true.
        if let Some(part) = dump::read(view, rules) {
            return FlMessage::Dump(part, None);
        }
        if let Some(cid) = cid {
            if !self.pending.contains(cid) && self.blacklist.contains(cid, now) {
                return FlMessage::Late(cid);
            }
        }
        if class == Some(classes.fl_receive_ack.as_str()) {
            return FlMessage::Ack(cid);
        }
        let events = &s.settings.protocol.switch_events.classes;
        if class.is_some_and(|c| events.iter().any(|e| e == c)) {
            return FlMessage::SwitchEvent;
        }
        FlMessage::Answer
    }

    /// A network dump part, whoever asked for it: an entry maps its switch (the dispatcher
    /// forwards it from the switch's active read-write FL), an unreadable one is dead-lettered,
    /// a marker or chunk goes on unchanged — all in order with this FL's switch events.
    fn on_dump(&self, part: &DumpPart, msg: &Inbound, lane_to: Option<&str>) {
        let s = &*self.shared;
        let topic = lane_to.unwrap_or(&s.settings.topics.events).to_string();
        let out = Outgoing::pass_through(topic, msg);
        let sent = match part {
            DumpPart::Entry { switch, mode, .. } => {
                self.dispatcher.switch_event.tell(SwitchEvent {
                    fl: self.index,
                    switch_id: switch.clone(),
                    up: true,
                    mode: *mode,
                    via: Via::Sync,
                    ticket: msg.ticket.clone(),
                    forward: Some(out),
                })
            }
            DumpPart::Unreadable { reason, .. } => {
                warn!(fl = %self.id, reason = %reason, "unreadable network dump entry; dead-lettered, the FL's dump cannot be judged complete");
                Counters::inc(&s.counters.sync_unreadable_entries);
                s.dead_letter(msg, Source::Fl(&self.id), reason);
                return;
            }
            DumpPart::Chunk(_) | DumpPart::Begin | DumpPart::End => {
                self.dispatcher.in_order.tell(InOrder(out))
            }
        };
        if sent.is_err() {
            warn!(fl = %self.id, "dispatcher gone; dump part not applied");
        }
    }

    /// Evidence of life is all an AliveResponse is for, plus the writes it says failed.
    fn on_alive_response(&mut self, view: &MessageView<'_>) {
        let failed = protocol::lookup(view.text, "/payload/failed_messages")
            .and_then(|v| v.get().parse::<u64>().ok())
            .unwrap_or(0);
        if failed > 0 {
            let _ = self.monitor.write_errors.tell(WriteErrors {
                fl: self.index,
                failed,
            });
        }
    }

    /// An answer: to the pending command it settles (or its multi-switch collector), else to
    /// a previous incarnation's command, else routed by kind.
    fn on_answer(
        &mut self,
        view: &MessageView<'_>,
        msg: &Inbound,
        lane_to: Option<&str>,
        now: Instant,
    ) {
        let shared = self.shared.clone();
        let s = &*shared;
        let c = &s.counters;
        let cid = view.correlation();
        let class = view.class();
        let chain = view.head.chain_position();
        let answered = cid.and_then(|cid| {
            self.pending
                .answer(cid, chain, now, s.settings.timeouts.answer)
        });
        if let Some(route) = answered {
            if let Some(m) = &route.multi {
                let is_final = route.final_ticket.is_some();
                let part = PartAnswer {
                    fl: self.index,
                    payload: msg.payload.clone(),
                    is_final,
                };
                if m.answer.tell(part).is_err() {
                    Counters::inc(&c.multi_late_answers);
                }
                if let Some(owed) = route.owed {
                    owed.met(Met::Collected);
                }
                if is_final {
                    // Duplicates of a settled part are late answers: dropped and counted.
                    if let Some(cid) = cid {
                        self.blacklist
                            .insert(cid, now, s.settings.timeouts.blacklist_ttl);
                    }
                }
                return;
            }
            if route.final_ticket.is_some() {
                if let Some(cid) = cid {
                    s.previous.settled(cid);
                    self.recent.insert(cid);
                }
            }
            let topic = route
                .reply_to
                .unwrap_or_else(|| self.output_topic(class, lane_to).to_string());
            // Key and headers as the FL wrote them (the requester matches replies by key).
            let collect = s.is_collect_topic(&topic);
            let mut note = None;
            if let Some(cid) = cid.filter(|_| s.traces.enabled()) {
                let trace_topic: Arc<str> = Arc::from(topic.as_str());
                if route.final_ticket.is_some() {
                    note = DeliveryNote::new(&s.traces, cid, Delivery::Reply, &trace_topic);
                }
                s.traces.record(
                    cid,
                    Step::Answered {
                        fl: self.trace_id.clone(),
                        topic: trace_topic,
                        last: route.final_ticket.is_some(),
                    },
                );
            }
            let mut out = Outgoing::pass_through(topic, msg);
            if collect {
                // A multi-switch part's answer, for its collector on another instance.
                out = out.header(PART_FL_HEADER, Bytes::from(self.id.clone()));
            }
            if let Some(t) = &route.final_ticket {
                out = out.ticket(t).note(note);
            }
            s.outbox.send(out);
            if let Some(owed) = route.owed {
                owed.met(Met::Answered);
            }
            Counters::inc(&c.answers_routed);
            return;
        }
        // An answer to a command the previous incarnation forwarded: to its reply-to, once.
        if let Some(cid) = cid {
            let is_final = chain.is_none_or(|(i, total)| total == 0 || i + 1 >= total);
            match s.previous.answer(cid, is_final) {
                Some(PriorAnswer::Route { reply_to }) => {
                    let topic =
                        reply_to.unwrap_or_else(|| self.output_topic(class, lane_to).to_string());
                    s.traces.record(
                        cid,
                        Step::Answered {
                            fl: self.trace_id.clone(),
                            topic: Arc::from(topic.as_str()),
                            last: is_final,
                        },
                    );
                    s.outbox.send(Outgoing::pass_through(topic, msg));
                    Counters::inc(&c.previous_answers_routed);
                    return;
                }
                Some(PriorAnswer::Duplicate) => {
                    Counters::inc(&c.duplicate_answers_dropped);
                    self.trace_dropped(cid);
                    debug!(fl = %self.id, correlation_id = cid, "answer for a command that has its outcome already; dropped");
                    return;
                }
                None => {}
            }
            if self.recent.contains(cid) {
                // Its command was forwarded twice (a replay, a second adoption): answered once.
                Counters::inc(&c.duplicate_answers_dropped);
                self.trace_dropped(cid);
                debug!(fl = %self.id, correlation_id = cid, "second answer for a command answered here; dropped");
                return;
            }
        }
        // For a request the router made itself (a sync chain) whose session is not here: it
        // ended, or ran at this FL's previous owner in a cluster. Chain messages go to the
        // events topic, as a running session proxies them — never to a reply topic.
        if cid.is_some_and(|c| c.starts_with("flrouter-")) {
            let topic = lane_to.unwrap_or(&s.settings.topics.events).to_string();
            s.outbox.send(Outgoing::pass_through(topic, msg));
            Counters::inc(&c.orphan_chain_messages);
            return;
        }
        // Not an answer to anything we track: route by kind, key and headers as they came.
        let topic = self.output_topic(class, lane_to).to_string();
        let events = &s.settings.protocol.switch_events;
        if class.is_some_and(|k| events.active_fl_only.iter().any(|a| a == k)) {
            // Only the switch's active FL speaks for it (several FLs see one port change).
            if let Ok(protocol::Target::One(sw)) =
                view.target(&s.settings.protocol).map(|l| l.target)
            {
                let m = FromActiveOnly {
                    fl: self.index,
                    switch_id: sw,
                    forward: Outgoing::pass_through(topic, msg),
                };
                if self.dispatcher.from_active_only.tell(m).is_err() {
                    warn!(fl = %self.id, "dispatcher gone; message not routed");
                }
                return;
            }
        }
        s.outbox.send(Outgoing::pass_through(topic, msg));
        Counters::inc(&c.answers_routed);
    }

    fn trace_dropped(&self, cid: &str) {
        self.shared.traces.record(
            cid,
            Step::LateAnswerDropped {
                fl: self.trace_id.clone(),
            },
        );
    }

    /// The controller-side topic of the output lane `msg` came on, if that lane has one.
    fn lane_to(&self, msg: &Inbound) -> Option<Arc<str>> {
        let topic = msg.origin.as_ref()?.topic.as_ref();
        self.lane_outputs.get(topic).cloned().flatten()
    }

    /// Where an FL message with no reply-to goes: its lane's output topic, else the topic for
    /// its class, else the default reply topic.
    fn output_topic<'a>(&'a self, class: Option<&str>, lane_to: Option<&'a str>) -> &'a str {
        let t = &self.shared.settings.topics;
        lane_to
            .or_else(|| crate::settings::by_class(&t.by_class, class).map(String::as_str))
            .unwrap_or(&t.default_reply)
    }

    fn on_switch_event(&mut self, view: &MessageView<'_>, msg: &Inbound, lane_to: Option<&str>) {
        let s = &*self.shared;
        let text = view.text;
        let rules = &s.settings.protocol.switch_events;
        let switch = match view.target(&s.settings.protocol).map(|l| l.target) {
            Ok(protocol::Target::One(sw)) => sw,
            _ => {
                warn!(fl = %self.id, "switch event without a single valid switch id; dead-lettered");
                s.dead_letter(
                    msg,
                    Source::Fl(&self.id),
                    "switch event without a valid switch id",
                );
                return;
            }
        };
        let state = protocol::lookup_str(text, &rules.state_pointer);
        // To its lane's output topic (else the events topic), key and headers as written.
        let topic = lane_to.unwrap_or(&s.settings.topics.events).to_string();
        let out = Outgoing::pass_through(topic, msg);
        // A connection change: the dispatcher decides whether it is forwarded (a failover is
        // published as an availability notice instead). Other states go on unchanged.
        if let Some((up, mode)) = state.as_deref().and_then(|st| rules.meaning(st)) {
            let ev = SwitchEvent {
                fl: self.index,
                switch_id: switch,
                up,
                mode,
                via: Via::Event,
                ticket: msg.ticket.clone(),
                forward: Some(out),
            };
            if self.dispatcher.switch_event.tell(ev).is_err() {
                warn!(fl = %self.id, "dispatcher gone; switch event not applied to the map");
            }
            return;
        }
        // Other states (`CHANGED` …) keep their place among the switch's events and dump entries.
        if self.dispatcher.in_order.tell(InOrder(out)).is_err() {
            warn!(fl = %self.id, "dispatcher gone; switch event not forwarded");
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if !self.held.is_empty() {
            self.release_held(now);
        }
        if !self.sync_starting.is_empty() {
            self.expire_sync_starting(now);
        }
        let s = self.shared.clone();
        let t = &s.settings.timeouts;
        // A deadline is judged only as far as the router has read the FL's answers: after a
        // pause or with lag, the answer may be waiting unread in Kafka.
        let judged_up_to = s.liveness.seen_up_to(self.index).map(|seen| seen.min(now));
        let expired = judged_up_to
            .map(|at| self.pending.expire(at))
            .unwrap_or_default();
        for (kind, entry) in expired {
            // Whatever the FL says about this command from now on is late: dropped and counted.
            self.blacklist
                .insert(&entry.correlation_id, now, t.blacklist_ttl);
            let (failure, counter, message, missed, deadline) = match kind {
                Expiry::AckTimeout => (
                    Failure::TimedOut,
                    &s.counters.ack_timeouts,
                    "FL did not answer in time",
                    "no ack or answer",
                    entry.timeout(),
                ),
                Expiry::AnswerTimeout => (
                    Failure::NoAnswer,
                    &s.counters.acked_unanswered,
                    "FL acknowledged but did not answer in time",
                    "acknowledged, then no answer",
                    t.answer,
                ),
            };
            Counters::inc(counter);
            if let Some(m) = &entry.multi {
                let _ = m.failed.tell(PartFailed {
                    fl: self.index,
                    failure,
                });
                entry.owed.met(Met::Collected);
                continue;
            }
            info!(fl = %self.id, correlation_id = %entry.correlation_id, switch = %entry.switch_id, "{message}");
            s.send_error_from(
                Some(&self.id),
                &entry.requester,
                &entry.correlation_id,
                Some(&entry.switch_id),
                ErrorType::OperationTimedOut,
                message,
                &format!(
                    "{missed} from FL {} for switch {} within {}",
                    self.id,
                    entry.switch_id,
                    humantime::format_duration(deadline)
                ),
                &[&entry.ticket],
            );
            entry.owed.met(Met::RouterAnswered);
        }
        self.blacklist.purge(now);
    }
}

/// Pending commands of an offline FL answered per turn: the rest wait for the next turn, so
/// the dispatcher (on the same thread) keeps routing while thousands are being answered.
const FAIL_CHUNK: usize = 256;

impl FlProxy {
    fn fail_pending(&mut self, reason: &str, ctx: &mut Context<Self>) {
        let s = self.shared.clone();
        let now = Instant::now();
        let entries = self.pending.drain();
        if !entries.is_empty() {
            warn!(fl = %self.id, pending = entries.len(), "failing pending commands of an offline FL");
        }
        // Blacklisted at once: a late answer must not slip through while the errors go out.
        for e in &entries {
            self.blacklist
                .insert(&e.correlation_id, now, s.settings.timeouts.blacklist_ttl);
        }
        self.failing
            .extend(entries.into_iter().map(|e| (e, reason.to_string())));
        self.continue_failing(ctx);
    }

    fn continue_failing(&mut self, ctx: &mut Context<Self>) {
        let s = self.shared.clone();
        let n = self.failing.len().min(FAIL_CHUNK);
        for (e, reason) in self.failing.drain(..n) {
            Counters::inc(&s.counters.failed_fast);
            if let Some(m) = &e.multi {
                let _ = m.failed.tell(PartFailed {
                    fl: self.index,
                    failure: Failure::FlOffline,
                });
                e.owed.met(Met::Collected);
                continue;
            }
            s.send_error_from(
                Some(&self.id),
                &e.requester,
                &e.correlation_id,
                Some(&e.switch_id),
                ErrorType::OperationTimedOut,
                "FL went offline",
                &format!("FL {} went offline before answering: {reason}", self.id),
                &[&e.ticket],
            );
            e.owed.met(Met::RouterAnswered);
        }
        if !self.failing.is_empty() {
            // A timer, not a notify: it yields the thread to the other actors in between.
            ctx.run_later(std::time::Duration::ZERO, |act, ctx| {
                act.continue_failing(ctx)
            });
        }
    }
}

impl FlProxy {
    fn fail_switch(&mut self, switch: &str, reason: &str) {
        let s = self.shared.clone();
        let now = Instant::now();
        let entries = self.pending.drain_switch(switch);
        if !entries.is_empty() {
            info!(fl = %self.id, switch, pending = entries.len(), "answering pending commands of a switch that failed over");
        }
        for e in entries {
            Counters::inc(&s.counters.failed_over_commands);
            self.blacklist
                .insert(&e.correlation_id, now, s.settings.timeouts.blacklist_ttl);
            s.send_error_from(
                Some(&self.id),
                &e.requester,
                &e.correlation_id,
                Some(&e.switch_id),
                ErrorType::OperationTimedOut,
                "switch failed over to another FL",
                &format!(
                    "FL {} lost switch {} before answering; the router cannot tell whether the command was applied ({reason})",
                    self.id, e.switch_id
                ),
                &[&e.ticket],
            );
            e.owed.met(Met::RouterAnswered);
        }
    }
}

impl Actor for FlProxy {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        if self.shared.retired() {
            // Restarted after its engine stopped: no timers; it ends with its last address.
            return;
        }
        ctx.run_interval(self.shared.settings.timeouts.tick, |act, ctx| {
            if act.shared.retired() {
                return ctx.stop();
            }
            act.guarded(ctx, "tick", FlProxy::tick)
        });
        if !self.failing.is_empty() {
            // Restarted while answering an outage's commands: carry on.
            self.continue_failing(ctx);
        }
    }
}

impl Drop for FlProxy {
    /// The engine is stopping: what is still pending was never committed (its tickets hold the
    /// offsets), so the next incarnation reads it again.
    fn drop(&mut self) {
        for e in self.pending.drain() {
            e.owed.met(Met::LeftForRestart);
        }
        for (e, _) in self.failing.drain(..) {
            e.owed.met(Met::LeftForRestart);
        }
    }
}

impl FlProxy {
    /// This engine now owns the FL, or no longer does ([`SetOwned`]).
    fn set_owned(&mut self, owned: bool) {
        if owned == self.owned {
            return;
        }
        self.owned = owned;
        self.last_seen = None;
        if owned {
            info!(fl = %self.id, "FL owned here now");
            return;
        }
        // Their forwards are on the FL's read topic: the new owner adopts them. Their inputs'
        // tickets go with them (each input is done once its forward is delivered).
        let mut handed = 0u64;
        for e in self.pending.drain() {
            e.owed.met(Met::HandedOver);
            handed += 1;
        }
        for (e, _) in self.failing.drain(..) {
            e.owed.met(Met::HandedOver);
            handed += 1;
        }
        let c = &self.shared.counters.commands_handed_over;
        c.fetch_add(handed, std::sync::atomic::Ordering::Relaxed);
        self.blacklist = Blacklist::default();
        self.sync_watch.clear();
        self.sync_starting.clear();
        self.held.clear();
        info!(fl = %self.id, handed_over = handed, "FL owned elsewhere now; its pending commands are its new owner's");
    }
}

impl Supervised for FlProxy {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.stats.restarted();
        // Derived state is rebuilt from the pending commands themselves: a failure may have
        // cut an update short.
        self.pending.reindex();
        warn!(fl = %self.id, pending = self.pending.len(), "FL proxy restarting; pending commands kept");
    }
}

impl FlProxy {
    /// Handles one message (or one tick) so that a failure — a panic, i.e. a bug here or in a
    /// collaborator such as the shell's outbox — cannot take the FL's pending commands with
    /// it: the panic is caught, logged and counted (`flrouter_actor_failures_total`), the rest
    /// of the batch is still handled, and the proxy stops so its supervisor restarts it with
    /// its state (`restarting` rebuilds the pending table's indexes). A command whose handling
    /// failed is not lost: it is pending already (and times out with an answer) or its input's
    /// ticket is released only by an answer.
    fn guarded(&mut self, ctx: &mut Context<Self>, what: &'static str, f: impl FnOnce(&mut Self)) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        if let Err(panic) = outcome {
            self.stats.failed();
            error!(
                fl = %self.id,
                handling = what,
                reason = crate::runtime::mailbox::panic_message(panic.as_ref()),
                "FL proxy failed; restarting it with its pending commands"
            );
            ctx.stop();
        }
    }
}

counted!(FlProxy, Forward => (), |this, msg, ctx| {
    this.guarded(ctx, "forward", |p| p.forward(msg));
});

counted!(FlProxy, Forwards => (), |this, msg, ctx| {
    for f in msg.0 {
        this.guarded(ctx, "forward", |p| p.forward(f));
    }
});

counted!(FlProxy, Adopt => (), |this, msg, ctx| {
    this.guarded(ctx, "adopt", |p| p.adopt(msg));
});

counted!(FlProxy, FlOutput => (), |this, msg, ctx| {
    this.guarded(ctx, "fl output", |p| p.on_output(msg.0));
});

counted!(FlProxy, FlOutputs => (), |this, msg, ctx| {
    for m in msg.0 {
        this.guarded(ctx, "fl output", |p| p.on_output(m));
    }
});

counted!(FlProxy, Forwarded => (), |this, msg, ctx| {
    for m in msg.0 {
        this.guarded(ctx, "adopt forward", |p| p.adopt_forward(m));
    }
});

counted!(FlProxy, SetOwned => (), |this, msg, _| {
    this.set_owned(msg.0);
});

counted!(FlProxy, Restart => (), |this, _, ctx| {
    ctx.stop();
});

counted!(FlProxy, WatchSync => (), |this, msg, _| {
    // An adopted request's dump that came before its session: the session's now, in order.
    if let Some((_, early)) = this.sync_starting.remove(&msg.correlation_id) {
        for part in early {
            let _ = msg.session.tell(DumpSeen { fl: this.index, part });
        }
    }
    this.sync_watch
        .insert(msg.correlation_id, msg.session);
});

counted!(FlProxy, UnwatchSync => (), |this, msg, _| {
    this.sync_watch.remove(&msg.correlation_id);
});

counted!(FlProxy, FailPending => (), |this, msg, ctx| {
    this.fail_pending(&msg.reason, ctx);
});

counted!(FlProxy, FailSwitch => (), |this, msg, ctx| {
    this.guarded(ctx, "fail switch", |p| p.fail_switch(&msg.switch_id, &msg.reason));
});

counted!(FlProxy, GetInflight => MessageResult<Envelope<GetInflight>>, |this, msg, _| {
    let mut rows: Vec<_> = this
        .pending
        .iter()
        .map(|e| InflightRow {
            correlation_id: e.correlation_id.to_string(),
            switch_id: e.switch_id.to_string(),
            state: e.state,
            age_ms: e.since.elapsed().as_millis() as u64,
            multi_switch: e.multi.is_some(),
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.age_ms));
    rows.truncate(msg.limit);
    MessageResult(rows)
});

counted!(FlProxy, GetStatus => MessageResult<Envelope<GetStatus>>, |this, _, _| {
    MessageResult(ProxyStatus {
        fl: this.id.clone(),
        pending: this.pending.len(),
        blacklisted: this.blacklist.len(),
        restarts: this.stats.snapshot(false).restarts,
        last_seen_ms_ago: this.last_seen.map(|t| t.elapsed().as_millis() as u64),
        owned: this.owned,
    })
});
