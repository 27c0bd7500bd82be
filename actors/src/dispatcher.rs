//! `Dispatcher`: reads every inbound command, validates it, finds the FL that manages its switch
//! and hands it to that FL's proxy; owns the switch → FL map, which only FL switch events change.
//!
//! One actor owns the map so that the command path needs no lock; it does little per command
//! (parse the envelope, one pointer lookup, one hash lookup), the proxies do the rest.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use tracing::{debug, info, warn};

use crate::counters::Counters;
use crate::fl_proxy::{Adopt, Forward};
use crate::liveness::FlStatus;
use crate::mailbox::{Envelope, Mailbox, MailboxStats};
use crate::multi_switch::{self, Failure, MultiSwitchCommand, Part};
use crate::outbox::{Inbound, Outgoing, Ticket};
use crate::previous::Replay;
use crate::protocol::{self, ErrorType, MessageView, ProtocolError, Requester, Target};
use crate::shared::{Shared, Source};
use crate::supervisor::{StartSync, SyncTrigger};
use crate::switch_map::{Change, FlIndex, SwitchMap};
use crate::sync_session::{ChainApplied, SyncSession};

/// A message read from an inbound command topic.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Command(pub Inbound);

/// An FL reported a switch up (connect/activate) or down (disconnect/deactivate), in an event
/// or a sync chain. `ticket` is the FL message's: its offset is committed only once the map
/// change is stored.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct SwitchEvent {
    pub fl: FlIndex,
    pub switch_id: String,
    pub up: bool,
    pub via: Via,
    pub ticket: Ticket,
}

/// How a switch's FL was learned (stored with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Event,
    Sync,
}

/// The switch map as stored in `topics.switch_map` before a restart: (switch id, FL id).
/// Applied before any FL message or command is read; nothing is written back.
#[derive(Message)]
#[rtype(result = "RestoreReport")]
pub struct RestoreMap(pub Vec<(String, String)>);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub restored: usize,
    /// Entries naming an FL that is no longer configured, or a malformed switch id.
    pub skipped: usize,
}

/// Which FL manages a switch (admin API, tests).
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct LookupSwitch(pub String);

/// How many switches each FL manages (admin API, metrics).
#[derive(Message)]
#[rtype(result = "Vec<usize>")]
pub struct SwitchCounts;

/// Tell the controller that FL `fl`'s switches are unmanaged (outage, or its chain failed).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct NotifyUnmanaged {
    pub fl: usize,
    pub reason: String,
}

/// FL `fl`'s sync chain is complete and reported exactly `switches`: its other switches are gone.
/// The dispatcher confirms with [`ChainApplied`] so the session's summary follows the changes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncComplete {
    pub fl: usize,
    pub switches: Vec<String>,
    pub session: Mailbox<SyncSession>,
}

pub const MAILBOX_CAPACITY: usize = 1024;

pub struct Dispatcher {
    shared: Arc<Shared>,
    stats: Arc<MailboxStats>,
    map: SwitchMap,
    /// Command topic → its lane (the FL topic template a command from it goes to).
    lanes: HashMap<String, usize>,
}

impl Dispatcher {
    pub fn new(shared: Arc<Shared>, stats: Arc<MailboxStats>) -> Self {
        let lanes = shared
            .settings
            .topics
            .command_topics()
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, i))
            .collect();
        Self {
            shared,
            stats,
            map: SwitchMap::default(),
            lanes,
        }
    }

    /// The lane of the topic a command was read from (the first lane when unknown).
    fn lane_of(&self, msg: &Inbound) -> usize {
        msg.origin
            .as_ref()
            .and_then(|o| self.lanes.get(o.topic.as_ref()))
            .copied()
            .unwrap_or(0)
    }

    fn command(&mut self, msg: Inbound) {
        let s = self.shared.clone();
        Counters::inc(&s.counters.commands_received);
        let rules = &s.settings.protocol;
        let limit = s.settings.limits.max_message_bytes;
        if msg.payload.len() > limit {
            // Never forwarded; but answered with its correlation id (in its family) when it
            // has one, so the requester can tell which of its commands was refused.
            let view = MessageView::read(&msg.payload, &rules.envelope).ok();
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
        let Some(cid) = view.correlation() else {
            return self.invalid(&msg, Some(&view), ProtocolError::NoCorrelationId);
        };
        let class = view.class();
        if class == Some(rules.classes.sync_request.as_str()) {
            // A controller's SyncRequest: a sync session over every FL.
            if let Some(a) = s.actors() {
                let _ = a.supervisor.tell(StartSync {
                    fls: (0..s.settings.fls.len()).collect(),
                    trigger: SyncTrigger::Controller,
                    request: Some((cid.to_string(), msg.clone())),
                });
            }
            return;
        }
        let b = &rules.broadcast;
        if let Some(c) = class {
            let every_fl = b.to_every_fl.iter().any(|x| x == c);
            if every_fl || b.every_switch_once.iter().any(|x| x == c) {
                return self.broadcast(&msg, &view, every_fl);
            }
        }
        let located = match protocol::locate_target(view.text, class, rules) {
            Ok(l) => l,
            Err(e) => return self.invalid(&msg, Some(&view), e),
        };
        let switch_id = match located.target {
            Target::One(sw) => sw,
            target => {
                let request_class = class.unwrap_or_default().to_string();
                return self.multi_switch(
                    &msg,
                    cid,
                    request_class,
                    view.text,
                    target,
                    located.span,
                );
            }
        };
        let requester = requester(&msg, Some(&view));
        if let Some(replay) = s.previous.command(cid, msg.origin.as_ref()) {
            let cid = cid.to_string();
            return self.replayed(msg.clone(), requester, &cid, switch_id, replay);
        }
        let Some(fl) = self.map.get(&switch_id) else {
            debug!(correlation_id = cid, switch = %switch_id, "no FL manages this switch");
            s.send_error(
                &requester,
                cid,
                Some(&switch_id),
                ErrorType::NotFound,
                "switch is not managed by any FL",
                &format!(
                    "switch {switch_id} is not connected to any FL instance known to the router"
                ),
                &[&msg.ticket],
            );
            return;
        };
        let fwd = Forward {
            correlation_id: cid.to_string(),
            switch_id,
            requester: requester.clone(),
            timeout: s.settings.timeouts.ack_for(class),
            lane: self.lane_of(&msg),
            msg: msg.clone(),
            multi: None,
        };
        let proxy = s.actors().and_then(|a| a.proxies.get(fl));
        if proxy.map(|p| p.tell(fwd)).is_none_or(|r| r.is_err()) {
            // Only possible while the system shuts down; answer rather than lose the command.
            s.send_error(
                &requester,
                cid,
                None,
                ErrorType::NotFound,
                "FL proxy unavailable",
                "the router is shutting down",
                &[&msg.ticket],
            );
        }
    }

    /// A broadcast, as OpenKilda's floodlightrouter sends it: per FL the command wrapped with
    /// that FL's switches as `scope`; to every FL (`to_every_fl`), or to the FLs that have
    /// something to poll so each switch is polled once (`every_switch_once`). Not tracked:
    /// each FL's answers are routed like any FL message; the router answers nothing itself.
    fn broadcast(&self, msg: &Inbound, view: &MessageView<'_>, every_fl: bool) {
        let s = &self.shared;
        let lane = self.lane_of(msg);
        let wrapper = &s.settings.protocol.broadcast.wrapper_class;
        for fl in 0..s.settings.fls.len() {
            let scope = self.map.switches_of(fl);
            if !every_fl && (scope.is_empty() || s.liveness.status(fl) == FlStatus::Offline) {
                continue;
            }
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
                s.outbox
                    .send(Outgoing::new(topic, body).key_opt(key).ticket(&msg.ticket));
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
                };
                if let Some(p) = s.actors().and_then(|a| a.proxies.get(fl)) {
                    let _ = p.tell(adopt);
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
                &requester(msg, view),
                cid.unwrap_or(""),
                None,
                ErrorType::RequestInvalid,
                "invalid command",
                &reason,
                &[&msg.ticket],
            );
        }
    }

    /// Writes a map change to the switch-map topic (a tombstone when unmapped).
    fn store(&self, switch: &str, fl: Option<FlIndex>, via: Via, ticket: &Ticket) {
        let s = &self.shared;
        let topic = s.settings.topics.switch_map.clone();
        let key = Bytes::from(switch.to_string());
        let out = match fl {
            Some(fl) => {
                let value = serde_json::json!({
                    "fl": s.fl_id(fl), "since": protocol::now_millis(), "via": via,
                });
                Outgoing::new(topic, value.to_string()).key(key)
            }
            None => Outgoing::tombstone(topic, key),
        };
        s.outbox.send(out.ticket(ticket));
    }

    fn switch_event(&mut self, ev: SwitchEvent) {
        let fl_id = &self.shared.settings.fls[ev.fl].id;
        let change = if ev.up {
            self.map.connect(&ev.switch_id, ev.fl)
        } else {
            self.map.disconnect(&ev.switch_id, ev.fl)
        };
        match change {
            Change::Added | Change::Moved(_) => {
                self.store(&ev.switch_id, Some(ev.fl), ev.via, &ev.ticket)
            }
            Change::Removed => self.store(&ev.switch_id, None, ev.via, &ev.ticket),
            Change::NotOwner | Change::Unchanged => {}
        }
        match change {
            Change::Added => debug!(switch = %ev.switch_id, fl = %fl_id, "switch connected"),
            Change::Moved(prev) => info!(
                switch = %ev.switch_id, fl = %fl_id,
                from = %self.shared.settings.fls[prev].id, "switch moved to another FL"
            ),
            Change::Removed => debug!(switch = %ev.switch_id, fl = %fl_id, "switch disconnected"),
            Change::NotOwner => {
                debug!(switch = %ev.switch_id, fl = %fl_id, "disconnect from a non-owner ignored")
            }
            Change::Unchanged => {}
        }
    }
}

impl Dispatcher {
    /// Splits a multi-switch command by FL and starts the actor that collects the parts.
    fn multi_switch(
        &self,
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
                    match self.map.get(&sw) {
                        Some(fl) => by_fl[fl].push(sw),
                        None => unsent.push((sw, Failure::NoFl, None)),
                    }
                }
            }
            _ => {
                for (fl, list) in by_fl.iter_mut().enumerate() {
                    *list = self.map.switches_of(fl);
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
                lane: self.lane_of(msg),
            });
        }
        let stats = MailboxStats::new("multi_switch", cid, multi_switch::MAILBOX_CAPACITY);
        s.mailboxes.register(&stats);
        MultiSwitchCommand::new(
            s.clone(),
            stats,
            cid.to_string(),
            request_class,
            msg,
            parts,
            unsent,
        )
        .start();
    }

    fn notify_unmanaged(&self, fl: FlIndex, reason: &str) {
        let s = &self.shared;
        let switches = self.map.switches_of(fl);
        info!(fl = %s.fl_id(fl), switches = switches.len(), reason, "switches unmanaged");
        for sw in switches {
            Counters::inc(&s.counters.unmanaged_notifications);
            s.send_event(
                &sw,
                protocol::unmanaged_switch_notification(&s.settings.protocol.classes, &sw),
                &[],
            );
        }
    }

    fn sync_complete(&mut self, fl: FlIndex, reported: Vec<String>) {
        let s = self.shared.clone();
        let keep: std::collections::HashSet<&String> = reported.iter().collect();
        for sw in self.map.switches_of(fl) {
            if !keep.contains(&sw) {
                self.map.disconnect(&sw, fl);
                self.store(&sw, None, Via::Sync, &Ticket::none());
                Counters::inc(&s.counters.switch_offline_notifications);
                info!(switch = %sw, fl = %s.fl_id(fl), "switch no longer reported by its FL");
                s.send_event(
                    &sw,
                    protocol::switch_offline_notification(
                        &s.settings.protocol.classes,
                        &sw,
                        s.fl_id(fl),
                    ),
                    &[],
                );
            }
        }
        for sw in &reported {
            if matches!(self.map.connect(sw, fl), Change::Added | Change::Moved(_)) {
                self.store(sw, Some(fl), Via::Sync, &Ticket::none());
            }
        }
    }

    fn restore(&mut self, entries: Vec<(String, String)>) -> RestoreReport {
        let fls = &self.shared.settings.fls;
        let mut report = RestoreReport::default();
        for (switch, fl_id) in entries {
            let fl = fls.iter().position(|f| f.id == fl_id);
            match (fl, protocol::normalise_switch_id(&switch)) {
                (Some(fl), Ok(sw)) => {
                    self.map.connect(&sw, fl);
                    report.restored += 1;
                }
                _ => {
                    warn!(switch = %switch, fl = %fl_id, "stored switch map entry skipped (unknown FL or bad switch id)");
                    report.skipped += 1;
                }
            }
        }
        report
    }
}

/// Who waits for this command's outcome, and how to answer them (see [`Requester`]).
fn requester(msg: &Inbound, view: Option<&MessageView<'_>>) -> Requester {
    Requester {
        reply_to: msg.reply_to.clone(),
        key: msg.key.clone(),
        hub_request: view
            .filter(|v| v.is_hub_and_spoke())
            .map(|_| msg.payload.clone()),
    }
}

impl Actor for Dispatcher {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl Handler<Envelope<Command>> for Dispatcher {
    type Result = ();
    fn handle(&mut self, env: Envelope<Command>, _: &mut Self::Context) {
        let stats = self.stats.clone();
        let _g = stats.receive(env.sent_at);
        self.command(env.msg.0);
    }
}

impl Handler<Envelope<SwitchEvent>> for Dispatcher {
    type Result = ();
    fn handle(&mut self, env: Envelope<SwitchEvent>, _: &mut Self::Context) {
        let stats = self.stats.clone();
        let _g = stats.receive(env.sent_at);
        self.switch_event(env.msg);
    }
}

impl Handler<Envelope<RestoreMap>> for Dispatcher {
    type Result = MessageResult<Envelope<RestoreMap>>;
    fn handle(&mut self, env: Envelope<RestoreMap>, _: &mut Self::Context) -> Self::Result {
        let stats = self.stats.clone();
        let _g = stats.receive(env.sent_at);
        MessageResult(self.restore(env.msg.0))
    }
}

impl Handler<Envelope<LookupSwitch>> for Dispatcher {
    type Result = Option<String>;
    fn handle(&mut self, env: Envelope<LookupSwitch>, _: &mut Self::Context) -> Option<String> {
        let _g = self.stats.receive(env.sent_at);
        let sw = protocol::normalise_switch_id(&env.msg.0).ok()?;
        self.map
            .get(&sw)
            .map(|fl| self.shared.settings.fls[fl].id.clone())
    }
}

impl Handler<Envelope<SwitchCounts>> for Dispatcher {
    type Result = Vec<usize>;
    fn handle(&mut self, env: Envelope<SwitchCounts>, _: &mut Self::Context) -> Vec<usize> {
        let _g = self.stats.receive(env.sent_at);
        self.map.counts(self.shared.settings.fls.len())
    }
}

impl Handler<Envelope<NotifyUnmanaged>> for Dispatcher {
    type Result = ();
    fn handle(&mut self, env: Envelope<NotifyUnmanaged>, _: &mut Self::Context) {
        let stats = self.stats.clone();
        let _g = stats.receive(env.sent_at);
        self.notify_unmanaged(env.msg.fl, &env.msg.reason);
    }
}

impl Handler<Envelope<SyncComplete>> for Dispatcher {
    type Result = ();
    fn handle(&mut self, env: Envelope<SyncComplete>, _: &mut Self::Context) {
        let stats = self.stats.clone();
        let _g = stats.receive(env.sent_at);
        let SyncComplete {
            fl,
            switches,
            session,
        } = env.msg;
        self.sync_complete(fl, switches);
        let _ = session.tell(ChainApplied { fl });
    }
}
