//! `SyncSession`: one actor per sync. It sends a SyncRequest to each of its FLs, has their proxies
//! hand it every message carrying its correlation id, proxies each chain message to the events
//! topic at once and unmodified (nothing is buffered), and checks each FL's chain for
//! completeness (distinct indexes = `total_messages`; duplicates ignored; an empty chain is one
//! message with total 0).
//!
//! The map follows the chain: each reported switch is mapped to the FL as it arrives (so it is
//! routable at once), and on completion the dispatcher drops the FL's switches the chain did not
//! report, with a switch-offline notification each. A chain still missing or incomplete at its
//! deadline gets that FL's switches an UnmanagedSwitchNotification and the SyncRequest re-sent to
//! that FL alone, with doubling backoff, up to `sync.retries` times. The session ends with one
//! summary event and stops. Several sessions may run at once; a one-FL session (recovery, lost
//! writes) is the same actor.

use std::collections::HashSet;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use serde_json::json;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::counters::Counters;
use crate::mailbox::{Mailbox, MailboxStats, Outlet};
use crate::messages::{
    ChainApplied, ChainItem, DispatcherPort, NotifyUnmanaged, Proxies, SwitchEvent, SyncComplete,
    SyncTrigger, UnwatchSync, WatchSync,
};
use crate::outbox::{headers, Inbound, Outgoing, Ticket};
use crate::protocol::{self, Head, MessageView, Target};
use crate::shared::Shared;
use crate::switch_map::{Mode, Via};

pub const MAILBOX_CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Pending,
    /// Chain complete; waiting for the dispatcher to apply it.
    Applying,
    Complete,
    Failed,
}

struct FlSync {
    fl: usize,
    outcome: Outcome,
    /// Re-sends so far.
    retries: u32,
    seen: HashSet<u64>,
    total: Option<u64>,
    /// Reported switches, each with its connection mode (`write_mode`).
    switches: Vec<(String, Mode)>,
    deadline: Instant,
    /// Set while waiting out the backoff before a re-send.
    resend_at: Option<Instant>,
}

pub struct SyncSession {
    shared: Arc<Shared>,
    stats: Arc<MailboxStats>,
    id: String,
    trigger: SyncTrigger,
    /// The controller's SyncRequest (forwarded unchanged) and its reply-to and ticket.
    request: Option<Inbound>,
    /// The request is on the FLs' read topic already (adopted there by this FL's owner, in a
    /// cluster): sent only as a re-send, marked as one.
    adopted: bool,
    fls: Vec<FlSync>,
    started_at: Instant,
    done: bool,
    /// Where the dispatcher confirms an applied chain (set when started).
    me: Option<Outlet<ChainApplied>>,
    /// Applies the chains to the switch map.
    dispatcher: DispatcherPort,
    /// Watched for this session's chains.
    proxies: Proxies,
}

impl SyncSession {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shared: Arc<Shared>,
        stats: Arc<MailboxStats>,
        dispatcher: DispatcherPort,
        proxies: Proxies,
        id: String,
        trigger: SyncTrigger,
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
                seen: HashSet::new(),
                total: None,
                switches: Vec::new(),
                deadline: now + shared.settings.timeouts.sync_chain,
                resend_at: None,
            })
            .collect();
        Self {
            shared,
            stats,
            id,
            trigger,
            request: request.map(|(_, r)| r),
            adopted,
            fls,
            started_at: now,
            done: false,
            me: None,
            dispatcher,
            proxies,
        }
    }

    fn send_request(&self, fl: usize) {
        let s = &self.shared;
        let id = s.fl_id(fl);
        let payload = match &self.request {
            Some(r) => r.payload.clone(),
            None => protocol::sync_request(&s.settings.protocol.classes, &self.id, &self.id),
        };
        let ticket = self
            .request
            .as_ref()
            .map(|r| r.ticket.clone())
            .unwrap_or_default();
        let mut out = Outgoing::new(s.settings.topics.control_topic(id), payload)
            .key(Bytes::from(id.to_string()))
            .ticket(&ticket);
        if self.adopted {
            out = out.header(headers::SYNC_RESEND, Bytes::from_static(b"1"));
        }
        s.outbox.send(out);
    }

    fn on_item(&mut self, fl: usize, msg: Inbound, ctx: &mut Context<Self>) {
        let s = self.shared.clone();
        let view = MessageView::read(&msg.payload, &s.settings.protocol.envelope).ok();
        let switch =
            view.as_ref()
                .and_then(|v| match v.target(&s.settings.protocol).map(|l| l.target) {
                    Ok(Target::One(sw)) => Some(sw),
                    _ => None,
                });
        let write_mode = view.as_ref().and_then(|v| {
            protocol::lookup(
                v.text,
                &s.settings.protocol.switch_events.write_mode_pointer,
            )
        });
        // `"write_mode": false` is a read-only connection; absent (or anything else) read-write.
        let mode = match write_mode.map(|v| v.get().trim()) {
            Some("false") => Mode::ReadOnly,
            _ => Mode::ReadWrite,
        };
        let head = view.map(|v| v.head);
        // Proxied at once and unmodified, whatever the state of the chain.
        let key = switch.clone().unwrap_or_else(|| s.fl_id(fl).to_string());
        s.outbox.send(
            Outgoing::new(s.settings.topics.events.clone(), msg.payload.clone())
                .key(Bytes::from(key))
                .ticket(&msg.ticket),
        );
        Counters::inc(&s.counters.sync_chain_messages);

        let Some(f) = self.fls.iter_mut().find(|f| f.fl == fl) else {
            return;
        };
        if f.outcome != Outcome::Pending || f.resend_at.is_some() {
            return; // late or duplicate chain after the FL was settled, or before its re-send
        }
        let (index, total) = head
            .as_ref()
            .and_then(Head::chain_position)
            .unwrap_or((0, 1));
        f.total = Some(total);
        if f.seen.insert(index) {
            if let Some(sw) = switch {
                if !f.switches.iter().any(|(s, _)| *s == sw) {
                    {
                        let _ = self.dispatcher.switch_event.tell(SwitchEvent {
                            fl,
                            switch_id: sw.clone(),
                            up: true,
                            mode,
                            via: Via::Sync,
                            ticket: msg.ticket.clone(),
                            forward: None,
                        });
                    }
                    f.switches.push((sw, mode));
                }
            }
        }
        if f.seen.len() as u64 >= total {
            f.outcome = Outcome::Applying;
            Counters::inc(&s.counters.sync_fl_complete);
            let applied = match self.me.clone() {
                Some(session) => self
                    .dispatcher
                    .sync_complete
                    .tell(SyncComplete {
                        fl,
                        switches: f.switches.clone(),
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
            let got = match f.total {
                None => "no chain".to_string(),
                Some(t) => format!("{} of {t} chain messages", f.seen.len()),
            };
            let reason = format!(
                "sync {}: {got} from FL {} by the deadline",
                self.id,
                s.fl_id(f.fl)
            );
            warn!(fl = %s.fl_id(f.fl), session = %self.id, retries = f.retries, "{reason}");
            let _ = self.dispatcher.notify_unmanaged.tell(NotifyUnmanaged {
                fl: f.fl,
                reason: reason.clone(),
            });
            if f.retries < retries {
                f.retries += 1;
                Counters::inc(&s.counters.sync_retries);
                f.seen.clear();
                f.total = None;
                f.switches.clear();
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
                       "switches": f.switches.len()})
            })
            .collect();
        let complete = self.fls.iter().all(|f| f.outcome == Outcome::Complete);
        let payload = json!({
            "clazz": s.settings.protocol.classes.sync_summary,
            "dump_id": self.id,
            "trigger": self.trigger,
            "complete": complete,
            "duration_ms": self.started_at.elapsed().as_millis() as u64,
            "fls": fls,
        });
        let body = protocol::info_message(&s.settings.protocol.classes, &self.id, payload);
        let ticket = self
            .request
            .as_ref()
            .map(|r| r.ticket.clone())
            .unwrap_or_else(Ticket::none);
        s.send_event(&self.id, body.clone(), &[&ticket]);
        if let Some(reply_to) = self.request.as_ref().and_then(|r| r.reply_to.clone()) {
            s.outbox.send(Outgoing::new(reply_to, body).ticket(&ticket));
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
            for f in &self.fls {
                self.send_request(f.fl);
            }
        }
        ctx.run_interval(self.shared.settings.timeouts.tick, |act, ctx| {
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

counted!(SyncSession, ChainItem => (), |this, msg, ctx| {
    this.on_item(msg.fl, msg.msg, ctx);
});
