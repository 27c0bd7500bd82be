//! `OutageMonitor`: FL liveness. Every alive interval it sends an AliveRequest to each FL and
//! reads each FL's evidence (the time of its last message of any kind, stamped by its proxy).
//! No evidence for the alive timeout is an outage: FlOutageNotification, an
//! UnmanagedSwitchNotification per switch (via the dispatcher, which owns the map), and the FL's
//! pending commands failed at once (via its proxy). Evidence after an outage is a recovery: the
//! supervisor is told and replays a SyncRequest to that FL. An AliveResponse reporting failed
//! writes is an outage of another kind (lost events): notified, and that FL is resynced.
//!
//! One monitor for all FLs rather than one per FL: it is one timer and a few bytes of state per
//! FL, the status of all FLs is decided in one place, and "kill the outage monitor" in a chaos
//! scenario is one restart. It runs under `actix::Supervisor`; its state survives a restart and
//! `started` re-arms the timer.

use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::counters::Counters;
use crate::dispatcher::NotifyUnmanaged;
use crate::fl_proxy::FailPending;
use crate::liveness::FlStatus;
use crate::mailbox::{Envelope, MailboxStats};
use crate::outbox::Outgoing;
use crate::protocol;
use crate::shared::Shared;
use crate::supervisor::{StartSync, SyncTrigger};

/// An FL reported writes that failed since its last AliveResponse (it lost events).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct WriteErrors {
    pub fl: usize,
    pub failed: u64,
}

/// Stops the actor so its supervisor restarts it (fault injection).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RestartMonitor;

pub const MAILBOX_CAPACITY: usize = 256;

pub struct OutageMonitor {
    shared: Arc<Shared>,
    stats: Arc<MailboxStats>,
    started_at: Instant,
    /// When each FL went offline (its evidence must be newer to count as recovery).
    offline_since: Vec<Option<Instant>>,
    alive_seq: u64,
}

impl OutageMonitor {
    pub fn new(shared: Arc<Shared>, stats: Arc<MailboxStats>) -> Self {
        let n = shared.settings.fls.len();
        Self {
            shared,
            stats,
            started_at: Instant::now(),
            offline_since: vec![None; n],
            alive_seq: 0,
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let s = self.shared.clone();
        let timeout = s.settings.timeouts.alive_timeout;
        for fl in 0..s.settings.fls.len() {
            let id = s.fl_id(fl).to_string();
            self.alive_seq += 1;
            let cid = format!("flrouter-alive-{id}-{}", self.alive_seq);
            s.outbox.send(
                Outgoing::new(
                    s.settings.topics.fl_read_topic(&id),
                    protocol::alive_request(&s.settings.protocol.classes, &cid),
                )
                .key(Bytes::from(id.clone())),
            );
            let evidence = s.liveness.last_evidence(fl);
            // At start an FL gets a full timeout before it can be declared offline.
            let last = evidence.unwrap_or(self.started_at).max(self.started_at);
            match s.liveness.status(fl) {
                FlStatus::Offline => {
                    let since = self.offline_since[fl].unwrap_or(self.started_at);
                    if evidence.is_some_and(|e| e >= since) {
                        self.recovered(fl);
                    }
                }
                st => {
                    if now.saturating_duration_since(last) >= timeout {
                        let reason = format!(
                            "no message from FL {id} for {}",
                            humantime::format_duration(timeout)
                        );
                        self.outage(fl, &reason, now);
                    } else if st == FlStatus::Starting && evidence.is_some() {
                        info!(fl = %id, "FL online");
                        s.liveness.set_status(fl, FlStatus::Online);
                    }
                }
            }
        }
    }

    fn outage(&mut self, fl: usize, reason: &str, now: Instant) {
        let s = &self.shared;
        let id = s.fl_id(fl);
        warn!(fl = %id, reason, "FL outage");
        s.liveness.set_status(fl, FlStatus::Offline);
        self.offline_since[fl] = Some(now);
        Counters::inc(&s.counters.fl_outages);
        s.send_event(
            id,
            protocol::fl_outage_notification(&s.settings.protocol.classes, id, reason),
            &[],
        );
        if let Some(a) = s.actors() {
            let _ = a.dispatcher.tell(NotifyUnmanaged {
                fl,
                reason: reason.to_string(),
            });
            if let Some(p) = a.proxies.get(fl) {
                let _ = p.tell(FailPending {
                    reason: reason.to_string(),
                });
            }
        }
    }

    fn recovered(&mut self, fl: usize) {
        let s = &self.shared;
        info!(fl = %s.fl_id(fl), "FL recovered; replaying a sync");
        s.liveness.set_status(fl, FlStatus::Online);
        self.offline_since[fl] = None;
        if let Some(a) = s.actors() {
            let _ = a.supervisor.tell(StartSync {
                fls: vec![fl],
                trigger: SyncTrigger::Recovery,
                request: None,
            });
        }
    }

    fn write_errors(&mut self, fl: usize, failed: u64) {
        let s = &self.shared;
        let id = s.fl_id(fl);
        let reason =
            format!("FL {id} failed to write {failed} message(s) since its last AliveResponse");
        warn!(fl = %id, failed, "FL lost writes; resyncing it");
        Counters::inc(&s.counters.fl_outages);
        s.send_event(
            id,
            protocol::fl_outage_notification(&s.settings.protocol.classes, id, &reason),
            &[],
        );
        if let Some(a) = s.actors() {
            let _ = a.supervisor.tell(StartSync {
                fls: vec![fl],
                trigger: SyncTrigger::LostWrites,
                request: None,
            });
        }
    }
}

impl Actor for OutageMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        ctx.run_interval(self.shared.settings.timeouts.alive_interval, |act, _| {
            act.tick()
        });
    }
}

impl Supervised for OutageMonitor {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.stats.restarted();
        warn!("outage monitor restarting; FL states kept");
    }
}

impl Handler<Envelope<WriteErrors>> for OutageMonitor {
    type Result = ();
    fn handle(&mut self, env: Envelope<WriteErrors>, _: &mut Self::Context) {
        let stats = self.stats.clone();
        let _g = stats.receive(env.sent_at);
        self.write_errors(env.msg.fl, env.msg.failed);
    }
}

impl Handler<Envelope<RestartMonitor>> for OutageMonitor {
    type Result = ();
    fn handle(&mut self, env: Envelope<RestartMonitor>, ctx: &mut Self::Context) {
        let _g = self.stats.receive(env.sent_at);
        ctx.stop();
    }
}
