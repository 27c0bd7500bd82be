//! `Supervisor`: owns the FL proxies and starts sync sessions.
//!
//! Each proxy runs under `actix::Supervisor`, which restarts an actor when it *stops* (a proxy
//! that hits an unrecoverable error stops itself; a panic would take the system down instead),
//! keeping its mailbox and its state, so the commands in its care survive. Restarts are counted
//! in each proxy's mailbox figures. Sync sessions are started here for every reason there is: at
//! router start (to learn the map), when the outage monitor reports a recovered FL or lost writes,
//! and for a controller's SyncRequest (forwarded by the dispatcher).

use std::sync::Arc;

use actix::prelude::*;
use tracing::info;

use crate::counters::Counters;
use crate::dispatcher::Dispatcher;
use crate::fl_proxy::{self, FlProxy};
use crate::mailbox::{Mailbox, MailboxStats};
use crate::outbox::Inbound;
use crate::shared::Shared;
use crate::sync_session::{self, SyncSession};

/// Why a sync session runs (reported in its summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncTrigger {
    Startup,
    Controller,
    Recovery,
    LostWrites,
    Periodic,
}

/// Start a sync session over `fls` (indexes). `request` is the controller's SyncRequest, whose
/// bytes are forwarded unchanged and whose correlation id the session uses.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartSync {
    pub fls: Vec<usize>,
    pub trigger: SyncTrigger,
    pub request: Option<(String, Inbound)>,
}

pub const MAILBOX_CAPACITY: usize = 256;

pub struct Supervisor {
    shared: Arc<Shared>,
    stats: Arc<MailboxStats>,
}

impl Supervisor {
    pub fn new(shared: Arc<Shared>, stats: Arc<MailboxStats>) -> Self {
        Self { shared, stats }
    }

    /// Starts one supervised proxy per FL (called once, while the engine is wired up), FL `f`
    /// on the arbiter `thread(f)`.
    pub fn start_proxies(
        shared: &Arc<Shared>,
        dispatcher: &Mailbox<Dispatcher>,
        thread: impl Fn(usize) -> ArbiterHandle,
    ) -> Vec<Mailbox<FlProxy>> {
        (0..shared.settings.fls.len())
            .map(|index| {
                let stats =
                    MailboxStats::new("fl_proxy", shared.fl_id(index), fl_proxy::MAILBOX_CAPACITY);
                shared.mailboxes.register(&stats);
                let (sh, d, st) = (shared.clone(), dispatcher.clone(), stats.clone());
                let addr = actix::Supervisor::start_in_arbiter(&thread(index), move |_| {
                    FlProxy::new(index, sh, d, st)
                });
                Mailbox::new(addr, stats)
            })
            .collect()
    }

    fn start_sync(&mut self, msg: StartSync) {
        let s = &self.shared;
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
            id,
            msg.trigger,
            msg.fls,
            msg.request,
        );
        // The session registers itself with the proxies in `started`, using its own mailbox.
        session.start();
    }
}

impl Actor for Supervisor {
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
                })
            });
        }
        if self.shared.settings.sync.at_start {
            self.start_sync(StartSync {
                fls: (0..self.shared.settings.fls.len()).collect(),
                trigger: SyncTrigger::Startup,
                request: None,
            });
        }
    }
}

counted!(Supervisor, StartSync => (), |this, msg, _| {
    this.start_sync(msg);
});
