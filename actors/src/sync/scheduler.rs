//! `SyncScheduler`: starts sync sessions, for every reason there is: at router start (to learn
//! the map), periodically (network sync), when the outage monitor reports a recovered FL or lost
//! writes, and for a controller's SyncRequest (forwarded by the dispatcher). Each session is
//! given the dispatcher (where its dumps are applied) and the FL proxies (which it watches for
//! its dumps).
//!
//! The `dump_id`, as OpenKilda's router sets it (`RegionTrackerBolt`, `FloodlightTracker`): a
//! periodic dump uses one id for every region, because OpenKilda's network topology counts each
//! new id as a generation and marks a switch OFFLINE when three generations miss it
//! (`NetworkSwitchService`); every other dump of the router's own is partial (no id). The
//! periodic sync runs on the wall clock's period boundaries and its id names the boundary, so
//! every instance of a cluster asks its own regions under the same id.
//!
//! (The FL proxies and the outage monitor are restarted in place by `actix::Supervisor` when
//! they stop — see `Engine::start`, where every actor is started.)

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tracing::info;

use crate::messages::{DispatcherPort, Proxies, StartSync, SyncTrigger};
use crate::routing::routes::Routes;
use crate::runtime::counters::Counters;
use crate::runtime::mailbox::MailboxStats;
use crate::runtime::shared::Shared;
// The one actor the scheduler starts.
use crate::sync::session::{self, SyncSession};

pub const MAILBOX_CAPACITY: usize = 256;

pub struct SyncScheduler {
    shared: Arc<Shared>,
    stats: Arc<MailboxStats>,
    /// Given to each session: it applies the chains to the map there...
    dispatcher: DispatcherPort,
    /// ...and watches these for its dumps...
    proxies: Proxies,
    /// ...and reads how many switches each FL has.
    routes: Arc<Routes>,
    /// The last periodic round's boundary (its `dump_id`).
    last_round: Option<u64>,
}

impl SyncScheduler {
    pub fn new(
        shared: Arc<Shared>,
        stats: Arc<MailboxStats>,
        dispatcher: DispatcherPort,
        proxies: Proxies,
        routes: Arc<Routes>,
    ) -> Self {
        Self {
            shared,
            stats,
            dispatcher,
            proxies,
            routes,
            last_round: None,
        }
    }

    /// The periodic round due now: the nearest period boundary of the wall clock (so two
    /// instances agree), and never the same twice here.
    fn periodic_dump_id(&mut self) -> String {
        let period = self.shared.settings.sync.periodic.as_millis().max(1) as u64;
        let nearest = (crate::runtime::clock::now_millis() + period / 2) / period;
        let round = match self.last_round {
            Some(last) if nearest <= last => last + 1,
            _ => nearest,
        };
        self.last_round = Some(round);
        format!("flrouter-periodic-{}", round * period / 1000)
    }

    /// Runs the periodic sync at the next boundary of the wall clock's period, then again.
    fn schedule_periodic(&self, ctx: &mut Context<Self>) {
        let period = self.shared.settings.sync.periodic.as_millis().max(1) as u64;
        let to_next = period - crate::runtime::clock::now_millis() % period;
        ctx.run_later(Duration::from_millis(to_next), |act, ctx| {
            if act.shared.retired() {
                return ctx.stop();
            }
            act.start_sync(StartSync {
                fls: (0..act.shared.settings.fls.len()).collect(),
                trigger: SyncTrigger::Periodic,
                request: None,
                adopted: false,
            });
            act.schedule_periodic(ctx);
        });
    }

    fn start_sync(&mut self, mut msg: StartSync) {
        let shared = self.shared.clone();
        let s = &shared;
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
        let dump_id = match (&msg.request, msg.trigger) {
            (None, SyncTrigger::Periodic) => Some(self.periodic_dump_id()),
            _ => None, // partial, or the controller's own request (forwarded unchanged)
        };
        let stats = MailboxStats::new("sync_session", id.clone(), session::MAILBOX_CAPACITY);
        s.mailboxes.register(&stats);
        let session = SyncSession::new(
            s.clone(),
            stats.clone(),
            self.dispatcher.clone(),
            self.proxies.clone(),
            self.routes.clone(),
            id,
            msg.trigger,
            dump_id,
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
        if !self.shared.settings.sync.periodic.is_zero() {
            // Network sync: covers whatever events were lost without anyone noticing.
            self.schedule_periodic(ctx);
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
