//! The switch-map side of commands for many switches: a broadcast's scope per FL (every FL,
//! or every switch once) and a multi-switch command's split into parts, handed to its
//! collector (`fanout::multi_switch`); a cluster instance's collected part results.

use super::*;

impl Dispatcher {
    /// A broadcast, as OpenKilda's floodlightrouter sends it: per FL the command wrapped with
    /// that FL's switches as `scope`; to every FL (`to_every_fl`), or to the FLs that have
    /// something to poll so each switch is polled once (`every_switch_once`). Not tracked:
    /// each FL's answers are routed like any FL message; the router answers nothing itself.
    pub(super) fn broadcast(&self, msg: &Inbound, view: &MessageView<'_>, every_fl: bool) {
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
    pub(super) fn broadcast_scopes(&self, every_fl: bool) -> Vec<(FlIndex, Vec<String>)> {
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

    /// Splits a multi-switch command by FL and starts the actor that collects the parts.
    pub(super) fn multi_switch(
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
    pub(super) fn collected(&mut self, msg: Inbound) {
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
}
