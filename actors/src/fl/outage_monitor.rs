//! `OutageMonitor`: FL liveness. Every alive interval it sends an AliveRequest to each FL; any
//! message from the FL read after a request was sent answers it (evidence, stamped by the FL's
//! proxy). An outage is a request the FL could have read (delivered to Kafka) and left
//! unanswered for the alive timeout *as far as the router can see*: the router must have read
//! everything the FL wrote up to that moment ([`Liveness::seen_up_to`]). So a router that was
//! paused, lags, or is not yet assigned its FL partitions declares nothing; and the clock starts
//! at delivery, so requests stuck in the router's producer do not count against the FL.
//!
//! An outage: FlOutageNotification, an UnmanagedSwitchNotification per switch (via the
//! dispatcher, which owns the map), and the FL's pending commands failed at once (via its proxy).
//! Evidence after an outage is a recovery, registered at once (the proxy tells the monitor with
//! [`Evidence`]): the scheduler replays a SyncRequest to that FL. An AliveResponse reporting
//! failed writes is an outage of another kind (lost events): notified, and that FL is resynced.
//!
//! One monitor for all FLs rather than one per FL: it is one timer and a few bytes of state per
//! FL, the status of all FLs is decided in one place, and "kill the outage monitor" in a chaos
//! scenario is one restart. It runs under `actix::Supervisor`; its state survives a restart and
//! `started` re-arms the timer.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::dialect::notices;
use crate::fl::liveness::{DeliveryStamp, FlStatus, Stamp};
use crate::messages::{DispatcherPort, Evidence, FlLost, StartSync, SyncTrigger, WriteErrors};
use crate::protocol;
use crate::runtime::counters::Counters;
use crate::runtime::mailbox::{MailboxStats, Outlet};
use crate::runtime::outbox::{Outgoing, Ticket};
use crate::runtime::shared::Shared;

/// Stops the actor so its supervisor restarts it (fault injection).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RestartMonitor;
pub const MAILBOX_CAPACITY: usize = 256;

/// Unanswered requests kept per FL; older ones are forgotten (they cannot matter more than the
/// oldest kept, which is older than any alive timeout anyway).
const MAX_OPEN_REQUESTS: usize = 64;

/// An AliveRequest not yet answered.
struct OpenRequest {
    sent_at: Instant,
    /// Set when Kafka acknowledged it.
    delivered: Arc<Stamp>,
}

pub struct OutageMonitor {
    shared: Arc<Shared>,
    stats: Arc<MailboxStats>,
    /// Told of each outage, to fail the FL's switches over.
    dispatcher: DispatcherPort,
    /// Asked for a sync when an FL recovers or lost writes.
    scheduler: Outlet<StartSync>,
    /// When each FL went offline (its evidence must be newer to count as recovery).
    offline_since: Vec<Option<Instant>>,
    open: Vec<VecDeque<OpenRequest>>,
    alive_seq: u64,
}

impl OutageMonitor {
    pub fn new(
        shared: Arc<Shared>,
        stats: Arc<MailboxStats>,
        dispatcher: DispatcherPort,
        scheduler: Outlet<StartSync>,
    ) -> Self {
        let n = shared.settings.fls.len();
        Self {
            shared,
            stats,
            dispatcher,
            scheduler,
            offline_since: vec![None; n],
            open: (0..n).map(|_| VecDeque::new()).collect(),
            alive_seq: 0,
        }
    }

    /// Every alive interval: one AliveRequest per FL, remembered until answered.
    fn send_requests(&mut self) {
        let s = self.shared.clone();
        let now = Instant::now();
        // Only the FLs this engine owns: another instance asks and judges the others.
        for fl in (0..s.settings.fls.len()).filter(|&fl| s.liveness.is_owned(fl)) {
            let id = s.fl_id(fl);
            self.alive_seq += 1;
            let cid = format!("flrouter-alive-{id}-{}", self.alive_seq);
            let delivered = Arc::new(Stamp::default());
            let ticket = Ticket::new(DeliveryStamp::new(s.liveness.epoch(), delivered.clone()));
            s.outbox.send(
                s.to_fl(
                    fl,
                    Outgoing::new(
                        s.settings.topics.control_topic(id),
                        protocol::alive_request(&s.settings.protocol.classes, &cid),
                    )
                    .key(Bytes::from(id.to_string()))
                    .ticket(&ticket),
                ),
            );
            let open = &mut self.open[fl];
            if s.liveness.status(fl) != FlStatus::Offline {
                open.push_back(OpenRequest {
                    sent_at: now,
                    delivered,
                });
                if open.len() > MAX_OPEN_REQUESTS {
                    open.pop_front();
                }
            }
        }
    }

    /// Every tick: statuses decided from evidence, open requests and what the router has seen.
    fn check(&mut self) {
        let s = self.shared.clone();
        let timeout = s.settings.timeouts.alive_timeout;
        let epoch = s.liveness.epoch();
        for fl in 0..s.settings.fls.len() {
            if !s.liveness.is_owned(fl) {
                // Not ours to judge; if it becomes ours, its window starts afresh.
                self.open[fl].clear();
                self.offline_since[fl] = None;
                continue;
            }
            let evidence = s.liveness.last_evidence(fl);
            let open = &mut self.open[fl];
            // Anything the FL wrote that the router read after sending a request answers it.
            while open
                .front()
                .is_some_and(|r| evidence.is_some_and(|e| e >= r.sent_at))
            {
                open.pop_front();
            }
            match s.liveness.status(fl) {
                FlStatus::Offline => self.maybe_recovered(fl),
                st => {
                    if st == FlStatus::Starting && evidence.is_some() {
                        info!(fl = %s.fl_id(fl), "FL online");
                        s.liveness.set_status(fl, FlStatus::Online);
                    }
                    let overdue = open
                        .front()
                        .and_then(|r| r.delivered.get(epoch))
                        .zip(s.liveness.seen_up_to(fl))
                        .is_some_and(|(delivered, seen)| seen >= delivered + timeout);
                    if overdue {
                        let reason = format!(
                            "no message from FL {} for {} after an AliveRequest",
                            s.fl_id(fl),
                            humantime::format_duration(timeout)
                        );
                        self.outage(fl, &reason, Instant::now());
                    }
                }
            }
        }
    }

    fn maybe_recovered(&mut self, fl: usize) {
        let s = &self.shared;
        let since = self.offline_since[fl];
        if s.liveness.status(fl) == FlStatus::Offline
            && s.liveness
                .last_evidence(fl)
                .is_some_and(|e| since.is_none_or(|since| e >= since))
        {
            self.recovered(fl);
        }
    }

    fn outage(&mut self, fl: usize, reason: &str, now: Instant) {
        let s = &self.shared;
        let id = s.fl_id(fl);
        warn!(fl = %id, reason, "FL outage");
        s.liveness.set_offline(fl, reason);
        self.offline_since[fl] = Some(now);
        self.open[fl].clear();
        Counters::inc(&s.counters.fl_outages);
        s.send_notice(
            id,
            notices::fl_outage(&s.settings.protocol.classes, id, reason),
            &[],
        );
        // The dispatcher fails its switches over first, then has the proxy answer its
        // pending commands (see `Dispatcher::apply_outage`).
        let _ = self.dispatcher.fl_lost.tell(FlLost { fl });
    }

    fn recovered(&mut self, fl: usize) {
        let s = &self.shared;
        info!(fl = %s.fl_id(fl), "FL recovered; replaying a sync");
        s.liveness.set_status(fl, FlStatus::Online);
        self.offline_since[fl] = None;
        let _ = self.scheduler.tell(StartSync {
            fls: vec![fl],
            trigger: SyncTrigger::Recovery,
            request: None,
            adopted: false,
        });
    }

    fn write_errors(&mut self, fl: usize, failed: u64) {
        let s = &self.shared;
        let id = s.fl_id(fl);
        let reason =
            format!("FL {id} failed to write {failed} message(s) since its last AliveResponse");
        warn!(fl = %id, failed, "FL lost writes; resyncing it");
        Counters::inc(&s.counters.fl_outages);
        s.send_notice(
            id,
            notices::fl_outage(&s.settings.protocol.classes, id, &reason),
            &[],
        );
        let _ = self.scheduler.tell(StartSync {
            fls: vec![fl],
            trigger: SyncTrigger::LostWrites,
            request: None,
            adopted: false,
        });
    }
}

impl Actor for OutageMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        if self.shared.retired() {
            // Restarted after its engine stopped: no timers; it ends with its last address.
            return;
        }
        let t = &self.shared.settings.timeouts;
        ctx.run_interval(t.alive_interval, |act, ctx| {
            if act.shared.retired() {
                return ctx.stop();
            }
            act.send_requests()
        });
        ctx.run_interval(t.tick, |act, ctx| {
            if act.shared.retired() {
                return ctx.stop();
            }
            act.check()
        });
    }
}

impl Supervised for OutageMonitor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.stats.restarted();
        warn!("outage monitor restarting; FL states kept");
    }
}

counted!(OutageMonitor, WriteErrors => (), |this, msg, _| {
    this.write_errors(msg.fl, msg.failed);
});

counted!(OutageMonitor, Evidence => (), |this, msg, _| {
    this.maybe_recovered(msg.fl);
    let s = &this.shared;
    if s.liveness.status(msg.fl) == FlStatus::Offline {
        // Evidence older than the outage: let the next message report again.
        s.liveness.set_status(msg.fl, FlStatus::Offline);
    }
});

counted!(OutageMonitor, RestartMonitor => (), |this, _, ctx| {
    ctx.stop();
});
