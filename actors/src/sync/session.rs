//! `SyncSession`: one actor per sync. It sends a SyncRequest (a network dump request) to each
//! of its FLs and judges each FL's dump as it arrives ([`DumpTally`]): the FL proxies have
//! already applied every entry to the map and forwarded it (in order with the FL's switch
//! events); they tell the session what each part was.
//!
//! A dump the router *knows* is complete (a counted chain with every index, or an end marker,
//! every entry readable) makes the dispatcher remove the FL's connections the dump did not list
//! and learned before the request. A dump without a count (today's Floodlight) proves only
//! the connections it lists; nothing is removed. One still incomplete at its deadline (gaps,
//! an unreadable entry, no end marker), or missing from an FL the router knows switches of, is
//! asked for again with doubling backoff, up to `sync.retries` times, and never removes a
//! switch. Silence from an FL with no known switch is an empty region. The session ends with
//! one summary event and stops. Several sessions may run at once; a one-FL session (recovery,
//! lost writes) is the same actor.

use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::dialect::dump::{DumpPart, DumpTally, Verdict};
use crate::dialect::notices;
use crate::messages::{
    ChainApplied, DispatcherPort, DumpSeen, Proxies, SyncComplete, SyncTrigger, UnwatchSync,
    WatchSync,
};
use crate::protocol;
use crate::routing::routes::Routes;
use crate::runtime::counters::Counters;
use crate::runtime::mailbox::{Mailbox, MailboxStats, Outlet};
use crate::runtime::outbox::{headers, Inbound, Outgoing, Ticket};
use crate::runtime::shared::Shared;

pub const MAILBOX_CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Pending,
    /// Dump complete; waiting for the dispatcher to apply it.
    Applying,
    Complete,
    /// Entries without a count: mapped, nothing concluded about the rest.
    Uncounted,
    /// Nothing, from an FL the router knows no switch of.
    Empty,
    Failed,
}

struct FlSync {
    fl: usize,
    outcome: Outcome,
    /// Re-sends so far.
    retries: u32,
    tally: DumpTally,
    deadline: Instant,
    /// Set while waiting out the backoff before a re-send.
    resend_at: Option<Instant>,
}

pub struct SyncSession {
    shared: Arc<Shared>,
    stats: Arc<MailboxStats>,
    id: String,
    trigger: SyncTrigger,
    /// The router's own request's `dump_id` (None: a partial dump, e.g. a recovery).
    dump_id: Option<String>,
    /// The controller's SyncRequest (forwarded unchanged) and its reply-to and ticket.
    request: Option<Inbound>,
    /// The request is on the FLs' read topic already (adopted there by this FL's owner, in a
    /// cluster): sent only as a re-send, marked as one.
    adopted: bool,
    fls: Vec<FlSync>,
    started_at: Instant,
    /// When the first request went out: what a complete dump can remove is judged against it
    /// (None for an adopted request, sent at an unknown moment by another instance).
    requested: Option<Instant>,
    done: bool,
    /// Where the dispatcher confirms an applied dump (set when started).
    me: Option<Outlet<ChainApplied>>,
    /// Applies complete dumps to the switch map.
    dispatcher: DispatcherPort,
    /// Watched for this session's dumps.
    proxies: Proxies,
    /// How many connections each FL has: silence from an FL with none is an empty region.
    routes: Arc<Routes>,
}

impl SyncSession {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shared: Arc<Shared>,
        stats: Arc<MailboxStats>,
        dispatcher: DispatcherPort,
        proxies: Proxies,
        routes: Arc<Routes>,
        id: String,
        trigger: SyncTrigger,
        dump_id: Option<String>,
        fls: Vec<usize>,
        request: Option<(String, Inbound)>,
        adopted: bool,
    ) -> Self {
        let now = Instant::now();
        let fls = fls
            .into_iter()
            .map(|fl| FlSync {
                fl,
                outcome: Outcome::Pending,
                retries: 0,
                tally: DumpTally::default(),
                deadline: now + shared.settings.timeouts.sync_chain,
                resend_at: None,
            })
            .collect();
        Self {
            shared,
            stats,
            id,
            trigger,
            dump_id,
            request: request.map(|(_, r)| r),
            adopted,
            fls,
            started_at: now,
            requested: None,
            done: false,
            me: None,
            dispatcher,
            proxies,
            routes,
        }
    }

    fn send_request(&mut self, fl: usize) {
        let s = &self.shared;
        let id = s.fl_id(fl);
        let topic = s.settings.topics.control_topic(id);
        let mut out = match &self.request {
            // A controller's request: bytes, key and headers as it came.
            Some(r) => Outgoing::pass_through(topic, r),
            None => s.to_fl(
                fl,
                Outgoing::new(
                    topic,
                    protocol::sync_request(
                        &s.settings.protocol.classes,
                        &self.id,
                        self.dump_id.as_deref(),
                    ),
                )
                .key(Bytes::from(id.to_string())),
            ),
        };
        if self.adopted {
            out = out.header(headers::SYNC_RESEND, Bytes::from_static(b"1"));
        } else if self.requested.is_none() {
            self.requested = Some(Instant::now());
        }
        s.outbox.send(out);
    }

    fn on_part(&mut self, fl: usize, part: DumpPart, ctx: &mut Context<Self>) {
        let s = self.shared.clone();
        let Some(f) = self.fls.iter_mut().find(|f| f.fl == fl) else {
            return;
        };
        if f.outcome != Outcome::Pending || f.resend_at.is_some() {
            return; // late after the FL was settled, or before its re-send
        }
        f.tally.add(&part);
        if !f.tally.is_complete() {
            return;
        }
        f.outcome = Outcome::Applying;
        Counters::inc(&s.counters.sync_fl_complete);
        let applied = match self.me.clone() {
            Some(session) => self
                .dispatcher
                .sync_complete
                .tell(SyncComplete {
                    fl,
                    switches: f.tally.switches().to_vec(),
                    requested: self.requested,
                    session,
                })
                .is_ok(),
            _ => false,
        };
        if !applied {
            f.outcome = Outcome::Complete; // nobody to apply it (shutting down)
            self.finish_if_done(ctx);
        }
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let s = self.shared.clone();
        let (retries, backoff, chain) = (
            s.settings.sync.retries,
            s.settings.sync.retry_backoff,
            s.settings.timeouts.sync_chain,
        );
        let mut resend = Vec::new();
        for f in self
            .fls
            .iter_mut()
            .filter(|f| f.outcome == Outcome::Pending)
        {
            if let Some(at) = f.resend_at {
                if now >= at {
                    f.resend_at = None;
                    f.deadline = now + chain;
                    resend.push(f.fl);
                }
                continue;
            }
            if now < f.deadline {
                continue;
            }
            let fl_id = s.fl_id(f.fl);
            let why = match f.tally.verdict() {
                Verdict::Complete => continue, // being applied
                Verdict::Uncounted => {
                    f.outcome = Outcome::Uncounted;
                    Counters::inc(&s.counters.sync_fl_uncounted);
                    info!(fl = %fl_id, session = %self.id, switches = f.tally.switches().len(), "sync: uncounted dump (every entry mapped, nothing concluded about the rest)");
                    continue;
                }
                Verdict::Silent if self.routes.connections(f.fl) == 0 => {
                    f.outcome = Outcome::Empty;
                    Counters::inc(&s.counters.sync_fl_empty);
                    info!(fl = %fl_id, session = %self.id, "sync: no dump and no switch known: an empty region");
                    continue;
                }
                Verdict::Silent => "no dump".to_string(),
                Verdict::Incomplete(why) => why,
            };
            warn!(fl = %fl_id, session = %self.id, retries = f.retries, "sync {}: {why} from FL {fl_id} by the deadline; no switch is removed for it", self.id);
            if f.retries < retries {
                f.retries += 1;
                Counters::inc(&s.counters.sync_retries);
                f.tally = DumpTally::default();
                f.resend_at = Some(now + backoff * 2u32.saturating_pow(f.retries - 1));
            } else {
                f.outcome = Outcome::Failed;
                Counters::inc(&s.counters.sync_fl_failed);
            }
        }
        for fl in resend {
            info!(fl = %s.fl_id(fl), session = %self.id, "re-sending SyncRequest");
            self.send_request(fl);
        }
        self.finish_if_done(ctx);
    }

    fn finish_if_done(&mut self, ctx: &mut Context<Self>) {
        if self.done
            || self
                .fls
                .iter()
                .any(|f| matches!(f.outcome, Outcome::Pending | Outcome::Applying))
        {
            return;
        }
        self.done = true;
        let s = &self.shared;
        let fls: Vec<_> = self
            .fls
            .iter()
            .map(|f| {
                json!({"fl_id": s.fl_id(f.fl), "status": f.outcome, "retries": f.retries,
                       "switches": f.tally.switches().len(), "unreadable": f.tally.unreadable()})
            })
            .collect();
        // Complete: every FL's dump is known whole (or the FL is known empty).
        let complete = self
            .fls
            .iter()
            .all(|f| matches!(f.outcome, Outcome::Complete | Outcome::Empty));
        let payload = json!({
            "clazz": s.settings.protocol.classes.sync_summary,
            "dump_id": self.dump_id,
            "trigger": self.trigger,
            "complete": complete,
            "duration_ms": self.started_at.elapsed().as_millis() as u64,
            "fls": fls,
        });
        let body = notices::info_message(&s.settings.protocol.classes, &self.id, payload);
        let ticket = self
            .request
            .as_ref()
            .map(|r| r.ticket.clone())
            .unwrap_or_else(Ticket::none);
        s.send_notice(&self.id, body.clone(), &[&ticket]);
        if let Some(r) = &self.request {
            if let Some(reply_to) = r.reply_to.clone() {
                let out = s.answering(r, Outgoing::new(reply_to, body).ticket(&ticket));
                s.outbox.send(out);
            }
        }
        info!(session = %self.id, complete, "sync session finished");
        ctx.stop();
    }
}

impl Actor for SyncSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        let me = Mailbox::new(ctx.address(), self.stats.clone());
        self.me = Some(me.outlet());
        {
            for f in &self.fls {
                if let Some(p) = self.proxies.get(f.fl) {
                    let _ = p.watch_sync.tell(WatchSync {
                        correlation_id: self.id.clone(),
                        session: me.outlet(),
                    });
                }
            }
        }
        if !self.adopted {
            let fls: Vec<usize> = self.fls.iter().map(|f| f.fl).collect();
            for fl in fls {
                self.send_request(fl);
            }
        }
        ctx.run_interval(self.shared.settings.timeouts.tick, |act, ctx| {
            if act.shared.retired() {
                return ctx.stop();
            }
            act.check(ctx)
        });
        if self.fls.is_empty() {
            self.finish_if_done(ctx);
        }
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        {
            for f in &self.fls {
                if let Some(p) = self.proxies.get(f.fl) {
                    let _ = p.unwatch_sync.tell(UnwatchSync {
                        correlation_id: self.id.clone(),
                    });
                }
            }
        }
        Running::Stop
    }
}

counted!(SyncSession, ChainApplied => (), |this, msg, ctx| {
    if let Some(f) = this
        .fls
        .iter_mut()
        .find(|f| f.fl == msg.fl && f.outcome == Outcome::Applying)
    {
        f.outcome = Outcome::Complete;
    }
    this.finish_if_done(ctx);
});

counted!(SyncSession, DumpSeen => (), |this, msg, ctx| {
    this.on_part(msg.fl, msg.part, ctx);
});
