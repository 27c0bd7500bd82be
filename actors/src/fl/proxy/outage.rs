//! The FL is gone (an outage) or lost a switch (failover): its pending commands are answered
//! at once, a turn at a time so the other actors keep their thread.

use super::*;

impl FlProxy {
    pub(super) fn fail_pending(&mut self, reason: &str, ctx: &mut Context<Self>) {
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

    pub(super) fn continue_failing(&mut self, ctx: &mut Context<Self>) {
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
    pub(super) fn fail_switch(&mut self, switch: &str, reason: &str) {
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
