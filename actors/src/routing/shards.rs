//! `CommandShard`: the command hot path, one actor per shard, each on its own arbiter (thread).
//! The shell hands every inbound command to the shard of its input partition
//! ([`crate::Engine::command`]), so one partition's commands are handled in order by one thread
//! while the shards together use every core.
//!
//! A shard does what almost every command needs and nothing else: parse the envelope once,
//! find the target switch, look up its active FL in the lock-free [`Routes`] table and hand the
//! command to that FL's proxy. Everything else — invalid input, broadcasts, multi-switch
//! commands, controller SyncRequests, a switch with no active FL (grace window, NOT_FOUND), an
//! FL whose outage is not applied yet, a command read again after a restart — is a *detour*
//! through the dispatcher, the switch map's owner, which handles it as before.
//!
//! Order per switch holds across both paths: while a detour for a switch is unhandled, the
//! shard detours that switch's later commands too (and every command while a detour that
//! concerns all switches is unhandled); the dispatcher reports each handled detour back with
//! [`DetourDone`]. Its routes are published only after its own forwards.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use tracing::warn;

use crate::messages::{Detour, DetourDone, DispatcherPort, Forward, Forwards, Order, Proxies};
use crate::protocol::{CommandKind, MessageView};
use crate::routing::routes::Routes;
use crate::runtime::counters::Counters;
use crate::runtime::mailbox::{Mailbox, MailboxStats};
use crate::runtime::obligation::Obligation;
use crate::runtime::outbox::Inbound;
use crate::runtime::shared::Shared;

/// A message read from an inbound command topic.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Command(pub Inbound);

/// Commands read together from this shard's partitions, in read order: one hand-over for many.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Commands(pub Vec<Inbound>);

pub const MAILBOX_CAPACITY: usize = 1024;

pub struct CommandShard {
    shared: Arc<Shared>,
    stats: Arc<MailboxStats>,
    routes: Arc<Routes>,
    dispatcher: DispatcherPort,
    proxies: Proxies,
    /// Unhandled detours per switch, and of commands that concern every switch.
    detoured: HashMap<Arc<str>, u32, foldhash::fast::RandomState>,
    detoured_all: u32,
    /// Per FL, forwards of the batch being handled, not yet handed over.
    outgoing: Vec<Vec<Forward>>,
}

impl CommandShard {
    pub fn new(
        shared: Arc<Shared>,
        stats: Arc<MailboxStats>,
        routes: Arc<Routes>,
        dispatcher: DispatcherPort,
        proxies: Proxies,
    ) -> Self {
        let fls = proxies.len();
        Self {
            shared,
            stats,
            routes,
            dispatcher,
            proxies,
            detoured: HashMap::default(),
            detoured_all: 0,
            outgoing: (0..fls).map(|_| Vec::new()).collect(),
        }
    }

    fn command(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        let s = self.shared.clone();
        Counters::inc(&s.counters.commands_received);
        s.versions.observe_controller(&msg);
        let rules = &s.settings.protocol;
        if msg.payload.len() > s.settings.limits.max_message_bytes {
            return self.detour(ctx, msg, Order::Free);
        }
        let Ok(view) = MessageView::read(&msg.payload, &rules.envelope) else {
            return self.detour(ctx, msg, Order::Free);
        };
        if let Some(cid) = view.correlation() {
            s.trace_received(cid, &msg);
        }
        let (cid, switch) = match view.command_kind(rules) {
            Ok(CommandKind::OneSwitch { cid, switch }) => (cid, switch),
            Ok(_) => return self.detour(ctx, msg, Order::All),
            Err(_) => return self.detour(ctx, msg, Order::Free),
        };
        let class = view.class();
        let Some((fl, switch_id)) = self.routes.get(&switch) else {
            return self.detour(ctx, msg, Order::Switch(Arc::from(switch)));
        };
        let behind = self.detoured_all > 0
            || (!self.detoured.is_empty() && self.detoured.contains_key(&switch_id));
        let outage_unapplied = s.liveness.outages(fl) != self.routes.outages_applied(fl);
        if behind || outage_unapplied || s.previous.command(cid, msg.origin.as_ref()).is_some() {
            return self.detour(ctx, msg, Order::Switch(switch_id));
        }
        if fl >= self.proxies.len() {
            return self.detour(ctx, msg, Order::Switch(switch_id));
        }
        let fwd = Forward {
            correlation_id: cid.to_string(),
            switch_id,
            requester: s.requester(&msg, Some(&view)),
            timeout: s.settings.answer_deadline(class),
            lane: s.lane_of(&msg),
            msg,
            multi: None,
            owed: Obligation::new(),
        };
        // Held until the end of the batch (or the next detour): one hand-over per proxy.
        // (`fl` was checked against the proxies above; a miss would be counted as unmet.)
        if let Some(v) = self.outgoing.get_mut(fl) {
            v.push(fwd);
        }
    }

    /// Hands every held forward to its proxy, in order: at the end of a batch, and before any
    /// detour (which must not overtake a command read before it).
    fn flush(&mut self) {
        for (fl, held) in self.outgoing.iter_mut().enumerate() {
            if held.is_empty() {
                continue;
            }
            // The next batch is sized like this one: one allocation instead of a vector grown
            // push by push (a realloc each doubling; perf showed it at 4 % of the router).
            let next = Vec::with_capacity(held.len());
            let batch = std::mem::replace(held, next);
            let Some(proxy) = self.proxies.get(fl) else {
                continue;
            };
            let sent = if batch.len() == 1 {
                batch.into_iter().try_for_each(|f| proxy.forward.tell(f))
            } else {
                proxy.forwards.tell(Forwards(batch))
            };
            if let Err(e) = sent {
                // Only while the system shuts down.
                warn!(error = %e, "FL proxy unavailable");
            }
        }
    }

    fn detour(&mut self, ctx: &mut Context<Self>, msg: Inbound, order: Order) {
        self.flush();
        match &order {
            Order::Free => {}
            Order::All => self.detoured_all += 1,
            Order::Switch(sw) => *self.detoured.entry(sw.clone()).or_default() += 1,
        }
        let detour = Detour {
            msg,
            order,
            shard: Mailbox::new(ctx.address(), self.stats.clone()).outlet(),
        };
        if let Err(e) = self.dispatcher.detour.tell(detour) {
            warn!(error = %e, "dispatcher unavailable");
        }
    }

    fn done(&mut self, order: Order) {
        match order {
            Order::Free => {}
            Order::All => self.detoured_all = self.detoured_all.saturating_sub(1),
            Order::Switch(sw) => {
                if let Some(n) = self.detoured.get_mut(&sw) {
                    *n -= 1;
                    if *n == 0 {
                        self.detoured.remove(&sw);
                    }
                }
            }
        }
    }
}

impl Actor for CommandShard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

counted!(CommandShard, Command => (), |this, msg, ctx| {
    this.command(msg.0, ctx);
    this.flush();
});

counted!(CommandShard, Commands => (), |this, msg, ctx| {
    for m in msg.0 {
        this.command(m, ctx);
    }
    this.flush();
});

counted!(CommandShard, DetourDone => (), |this, msg, _| {
    this.done(msg.0);
});
