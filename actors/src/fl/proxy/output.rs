//! What the FL writes, read once and classified once ([`FlMessage`]): answers and acks,
//! switch events, network dump entries, AliveResponses — each handed to the one method for
//! its case, in the FL's order.

use super::*;

impl FlProxy {
    /// One message the FL wrote: read once, classified once ([`FlMessage`]), then handled by
    /// the one method for its case.
    pub(super) fn on_output(&mut self, msg: Inbound) {
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
    pub(super) fn handle_output(&mut self, msg: Inbound, now: Instant, may_hold: bool) {
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

    /// What an FL message is, decided in one place, in order of precedence.
    pub(super) fn classify<'v>(&self, view: &'v MessageView<'_>, now: Instant) -> FlMessage<'v> {
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
    pub(super) fn on_dump(&self, part: &DumpPart, msg: &Inbound, lane_to: Option<&str>) {
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
    pub(super) fn on_alive_response(&mut self, view: &MessageView<'_>) {
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

    /// The controller-side topic of the output lane `msg` came on, if that lane has one.
    pub(super) fn lane_to(&self, msg: &Inbound) -> Option<Arc<str>> {
        let topic = msg.origin.as_ref()?.topic.as_ref();
        self.lane_outputs.get(topic).cloned().flatten()
    }

    /// Where an FL message with no reply-to goes: its lane's output topic, else the topic for
    /// its class, else the default reply topic.
    pub(super) fn output_topic<'a>(
        &'a self,
        class: Option<&str>,
        lane_to: Option<&'a str>,
    ) -> &'a str {
        let t = &self.shared.settings.topics;
        lane_to
            .or_else(|| crate::settings::by_class(&t.by_class, class).map(String::as_str))
            .unwrap_or(&t.default_reply)
    }

    pub(super) fn on_switch_event(
        &mut self,
        view: &MessageView<'_>,
        msg: &Inbound,
        lane_to: Option<&str>,
    ) {
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
}
