//! A cluster instance's side of an FL: forwards handed over to the FL's owner or adopted from
//! its read topic, commands read again after a restart made pending again, the FL's messages
//! held until their forward is adopted, ownership changes.

use super::*;

impl FlProxy {
    /// A command for an FL another instance owns: forwarded, not kept. Its input is done once
    /// the forward is delivered (the ticket rides on it); the FL's owner adopts it from the
    /// read topic and owes it its answer.
    pub(super) fn hand_over(&mut self, f: Forward) {
        let s = &self.shared;
        let note = self.trace_forward(&f.correlation_id, f.lane, &f.switch_id, true);
        s.outbox
            .send(self.to_fl(f.lane, &f.switch_id, f.msg).note(note));
        Counters::inc(&s.counters.commands_forwarded);
        Counters::inc(&s.counters.commands_handed_over);
        f.owed.met(Met::HandedOver);
    }

    pub(super) fn adopt(&mut self, a: Adopt) {
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

    /// A cluster instance adopts its FL's commands from the read topic, so an ack or answer
    /// can arrive before the forward it answers is adopted. It waits while the forwards are
    /// not adopted up to its arrival (the forward was on the read topic before the FL read it).
    pub(super) fn must_wait_for_adoption(
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
    pub(super) fn release_held(&mut self, now: Instant) {
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
    pub(super) fn adopt_forward(&mut self, msg: Inbound) {
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
    pub(super) fn adopt_sync_request(&mut self, cid: String, msg: Inbound) {
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
    pub(super) fn expire_sync_starting(&mut self, now: Instant) {
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

    /// This engine now owns the FL, or no longer does ([`SetOwned`]).
    pub(super) fn set_owned(&mut self, owned: bool) {
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
