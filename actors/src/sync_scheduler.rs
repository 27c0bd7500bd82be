//! `SyncScheduler`: starts sync sessions, for every reason there is: at router start (to learn
//! the map), periodically (network sync), when the outage monitor reports a recovered FL or lost
//! writes, and for a controller's SyncRequest (forwarded by the dispatcher). Each session is
//! given the dispatcher (where its chains are applied) and the FL proxies (which it watches for
//! its chains).
//!
//! (The FL proxies and the outage monitor are restarted in place by `actix::Supervisor` when
//! they stop — see `Engine::start`, where every actor is started.)

use std::sync::Arc;

use actix::prelude::*;
use tracing::info;

use crate::counters::Counters;
use crate::mailbox::MailboxStats;
use crate::messages::{DispatcherPort, Proxies, StartSync, SyncTrigger};
use crate::shared::Shared;
// The one actor the scheduler starts.
use crate::sync_session::{self, SyncSession};

pub const MAILBOX_CAPACITY: usize = 256;

pub struct SyncScheduler {
    shared: Arc<Shared>,
    stats: Arc<MailboxStats>,
    /// Given to each session: it applies the chains to the map there...
    dispatcher: DispatcherPort,
    /// ...and watches these for its chains.
    proxies: Proxies,
}

impl SyncScheduler {
    pub fn new(
        shared: Arc<Shared>,
        stats: Arc<MailboxStats>,
        dispatcher: DispatcherPort,
        proxies: Proxies,
    ) -> Self {
        Self {
            shared,
            stats,
            dispatcher,
            proxies,
        }
    }

    fn start_sync(&mut self, mut msg: StartSync) {
        let s = &self.shared;
        // A chain is read where its FL is owned: a session here covers this engine's FLs.
        msg.fls.retain(|&fl| s.liveness.is_owned(fl));
        if msg.fls.is_empty() && (msg.request.is_none() || msg.adopted) {
            // A cluster instance that owns none of them: nothing to sync, nobody to tell (an
            // adopted request is the FL's new owner's to adopt again).
            return;
        }
        Counters::inc(&s.counters.sync_sessions_started);
        let fls: Vec<&str> = msg.fls.iter().map(|&i| s.fl_id(i)).collect();
        info!(trigger = ?msg.trigger, fls = ?fls, "sync session starting");
        let id = match &msg.request {
            Some((cid, _)) => cid.clone(),
            None => format!("flrouter-sync-{}", uuid::Uuid::new_v4().simple()),
        };
        let stats = MailboxStats::new("sync_session", id.clone(), sync_session::MAILBOX_CAPACITY);
        s.mailboxes.register(&stats);
        let session = SyncSession::new(
            s.clone(),
            stats.clone(),
            self.dispatcher.clone(),
            self.proxies.clone(),
            id,
            msg.trigger,
            msg.fls,
            msg.request,
            msg.adopted,
        );
        // The session registers itself with the proxies in `started`, using its own mailbox.
        session.start();
    }
}

impl Actor for SyncScheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        let periodic = self.shared.settings.sync.periodic;
        if !periodic.is_zero() {
            // Network sync: covers whatever events were lost without anyone noticing.
            ctx.run_interval(periodic, |act, _| {
                act.start_sync(StartSync {
                    fls: (0..act.shared.settings.fls.len()).collect(),
                    trigger: SyncTrigger::Periodic,
                    request: None,
                    adopted: false,
                })
            });
        }
        if self.shared.settings.sync.at_start {
            self.start_sync(StartSync {
                fls: (0..self.shared.settings.fls.len()).collect(),
                trigger: SyncTrigger::Startup,
                request: None,
                adopted: false,
            });
        }
    }
}

counted!(SyncScheduler, StartSync => (), |this, msg, _| {
    this.start_sync(msg);
});
