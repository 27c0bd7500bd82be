//! A switch with no active FL: its commands wait in the grace window for a reconnect (or are
//! answered NOT_FOUND), and an FL outage moves or releases every switch it served.

use super::*;

impl Dispatcher {
    /// No active FL: wait for a reconnect if the switch was lost within the grace window,
    /// else NOT_FOUND at once.
    pub(super) fn no_active_fl(&mut self, fwd: Forward) {
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

    /// The switch reconnected: commands waiting for it go to its new active FL.
    pub(super) fn release_waiting(&mut self, sw: &str, fl: FlIndex) {
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

    pub(super) fn outage_unapplied(&self, fl: FlIndex) -> bool {
        self.outages_applied
            .get(fl)
            .is_some_and(|&n| n != self.shared.liveness.outages(fl))
    }

    /// Applies FL `fl`'s latest outage once: its connections go, its switches fail over or
    /// become unmanaged; then its proxy answers its pending commands (after the failover, so
    /// new commands already go to the standbys while the old ones are being answered).
    pub(super) fn apply_outage(&mut self, fl: FlIndex) {
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
