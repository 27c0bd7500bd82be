//! An FL's ack or answer to a pending command: settled (or re-armed for the next part of a
//! chain), routed to its requester with its version header, or dropped as late or duplicate.

use super::*;

impl FlProxy {
    /// An answer: to the pending command it settles (or its multi-switch collector), else to
    /// a previous incarnation's command, else routed by kind.
    pub(super) fn on_answer(
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
                .unwrap_or_else(|| Arc::from(self.output_topic(class, lane_to)));
            // Key and headers as the FL wrote them (the requester matches replies by key).
            let collect = s.is_collect_topic(&topic);
            let mut note = None;
            if let Some(cid) = cid.filter(|_| s.traces.enabled()) {
                let trace_topic: Arc<str> = topic.clone();
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

    pub(super) fn trace_dropped(&self, cid: &str) {
        self.shared.traces.record(
            cid,
            Step::LateAnswerDropped {
                fl: self.trace_id.clone(),
            },
        );
    }
}
