//! `FlProxy`: one actor per FL instance. It owns that FL's pending commands, their ack
//! deadlines and the blacklist of timed-out correlation ids, forwards commands to the FL's read
//! topic, and reads everything the FL writes: acks settle commands, answers go to their
//! reply-to, switch events update the map (via the dispatcher) and go to the events topic.
//!
//! Started under `actix::Supervisor`: the actor value (and so its pending table) survives a
//! restart; `started` re-arms the deadline tick.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::dialect::dump::{self, DumpPart};
use crate::fl::liveness::{Delivered, FlStatus};
use crate::fl::pending::{Blacklist, Expiry, PendingTable};
use crate::fl::settled::RecentlySettled;
use crate::messages::{
    Adopt, DispatcherPort, DumpSeen, Evidence, FailPending, FailSwitch, Failure, Forward, Forwards,
    FromActiveOnly, InOrder, MonitorPort, PartAnswer, PartFailed, StartSync, SwitchEvent,
    SyncTrigger, UnwatchSync, WatchSync, WriteErrors,
};
use crate::protocol::{self, ErrorType, MessageView};
use crate::routing::replay::PriorAnswer;
use crate::routing::routes::FlIndex;
use crate::routing::switch_map::Via;
use crate::runtime::counters::Counters;
use crate::runtime::mailbox::{Envelope, MailboxStats, Outlet};
use crate::runtime::obligation::{Met, Obligation};
use crate::runtime::outbox::{headers, Inbound, Outgoing};
use crate::runtime::shared::{Shared, Source};
use crate::runtime::traces::{Delivery, DeliveryNote, Step};
use crate::settings::{FlOwnership, PART_FL_HEADER};

/// What a message from the FL is, decided once by `FlProxy::classify`.
enum FlMessage<'v> {
    /// A part of a network dump (an entry, a marker, a chunk of a running session's chain),
    /// with the session waiting for it, if one is.
    Dump(DumpPart, Option<Outlet<DumpSeen>>),
    /// A part of the dump of an adopted SyncRequest whose session is still starting.
    DumpEarly(DumpPart),
    AliveResponse,
    /// For a command that timed out (blacklisted): dropped and counted.
    Late(&'v str),
    Ack(Option<&'v str>),
    /// A switch connection event: updates the map.
    SwitchEvent,
    /// An answer, or anything else: routed.
    Answer,
}

/// A message read from this FL's write topic.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlOutput(pub Inbound);

/// Messages read together from this FL's write topics, in read order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlOutputs(pub Vec<Inbound>);

/// Records read from this FL's read topics (a cluster instance that owns the FL): each
/// forwarded command becomes pending here, whichever instance forwarded it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forwarded(pub Vec<Inbound>);

/// This engine (no longer) owns the FL (`Engine::set_fl_owned`). Losing it drops the pending
/// commands unanswered: their forwards are on the FL's read topic, where its new owner adopts
/// them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetOwned(pub bool);

/// Stops the actor so its supervisor restarts it (fault injection, unrecoverable errors).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Restart;

/// Up to `limit` pending commands of this FL, oldest first (admin API).
#[derive(Message)]
#[rtype(result = "Vec<InflightRow>")]
pub struct GetInflight {
    pub limit: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct InflightRow {
    pub correlation_id: String,
    pub switch_id: String,
    pub state: crate::fl::pending::State,
    pub age_ms: u64,
    pub multi_switch: bool,
}

/// A snapshot of the proxy for the admin API and tests.
#[derive(Message)]
#[rtype(result = "ProxyStatus")]
pub struct GetStatus;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProxyStatus {
    pub fl: String,
    pub pending: usize,
    pub blacklisted: usize,
    pub restarts: u64,
    /// Milliseconds since the FL last wrote anything (None: never).
    pub last_seen_ms_ago: Option<u64>,
    /// Whether this engine owns the FL (reads it, holds its pending commands).
    pub owned: bool,
}
mod adoption;
mod answers;
mod outage;
mod output;

pub const MAILBOX_CAPACITY: usize = 1024;
/// Settled commands an FL proxy remembers, to drop their duplicate answers (about 2 MiB).
const RECENT_SETTLED: usize = 65_536;

pub struct FlProxy {
    index: FlIndex,
    id: String,
    /// `id` and `read_topics` shared into command traces (`crate::runtime::traces`) and
    /// forwards, not copied.
    trace_id: Arc<str>,
    /// This FL's read topic per command lane.
    read_topics: Vec<Arc<str>>,
    /// This FL's write topic → (output lane's controller-side topic, if it has one).
    lane_outputs: HashMap<String, Option<Arc<str>>>,
    shared: Arc<Shared>,
    /// Switch events go to the map's owner.
    dispatcher: DispatcherPort,
    /// Evidence of life and reported write failures go to the outage monitor.
    monitor: MonitorPort,
    /// A controller's SyncRequest adopted from the read topic gets its session there.
    scheduler: Outlet<StartSync>,
    stats: Arc<MailboxStats>,
    pending: PendingTable,
    blacklist: Blacklist,
    /// The last commands answered here: a second answer to one of them is a duplicate.
    recent: RecentlySettled,
    /// When the FL last wrote anything: evidence that it is alive.
    last_seen: Option<Instant>,
    /// Correlation ids of running sync sessions that include this FL.
    sync_watch: HashMap<String, Outlet<DumpSeen>>,
    /// Adopted SyncRequests (a cluster instance) whose sessions are starting: what their dumps
    /// brought waits here (the messages themselves are handled), with when the request was
    /// adopted, until the session watches.
    sync_starting: HashMap<String, (Instant, Vec<DumpPart>)>,
    /// Commands an outage failed, still to be answered (with the outage's reason).
    failing: std::collections::VecDeque<(crate::fl::pending::Entry, String)>,
    /// Whether this engine owns the FL. When not, commands are forwarded and handed over (the
    /// owner adopts them from the read topic) and nothing the FL writes is read here.
    owned: bool,
    /// A cluster instance: every forward is handed over, and commands become pending only by
    /// adoption from the read topic ([`Forwarded`]), so the read topic's offset is never
    /// committed past a command still open (`docs/design/cluster.md`).
    adopts: bool,
    /// FL answers and acks for no pending command, waiting (in arrival order) until the
    /// forwards on the read topic are adopted up to their arrival.
    held: std::collections::VecDeque<(Instant, Inbound)>,
}

impl FlProxy {
    pub fn new(
        index: FlIndex,
        shared: Arc<Shared>,
        dispatcher: DispatcherPort,
        monitor: MonitorPort,
        scheduler: Outlet<StartSync>,
        stats: Arc<MailboxStats>,
    ) -> Self {
        let id = shared.settings.fls[index].id.clone();
        let owned = shared.liveness.is_owned(index);
        let adopts = shared.settings.engine.ownership == FlOwnership::Assigned;
        let t = &shared.settings.topics;
        let read_topics = t.fl_read_topics(&id);
        let lane_outputs = t
            .fl_write_topics(&id)
            .into_iter()
            .zip(t.output_lanes().into_iter().map(|l| l.to.map(Arc::from)))
            .collect();
        Self {
            index,
            trace_id: Arc::from(id.as_str()),
            read_topics: read_topics.iter().map(|t| Arc::from(t.as_str())).collect(),
            id,
            lane_outputs,
            shared,
            dispatcher,
            monitor,
            scheduler,
            stats,
            pending: PendingTable::default(),
            blacklist: Blacklist::default(),
            recent: RecentlySettled::new(RECENT_SETTLED),
            last_seen: None,
            sync_watch: HashMap::new(),
            sync_starting: HashMap::new(),
            failing: Default::default(),
            owned,
            adopts,
            held: Default::default(),
        }
    }

    fn forward(&mut self, f: Forward) {
        if !self.owned || self.adopts {
            return self.hand_over(f);
        }
        let s = &self.shared;
        let now = Instant::now();
        if s.liveness.status(self.index) == FlStatus::Offline {
            if let Some(m) = &f.multi {
                let _ = m.failed.tell(PartFailed {
                    fl: self.index,
                    failure: Failure::FlOffline,
                });
                return f.owed.met(Met::Collected);
            }
            s.send_error_from(
                Some(&self.id),
                &f.requester,
                &f.correlation_id,
                Some(&f.switch_id),
                ErrorType::NotFound,
                "FL is offline",
                &format!(
                    "switch {} is managed by FL {}, which is offline (no message from it for {})",
                    f.switch_id,
                    self.id,
                    humantime::format_duration(s.settings.timeouts.alive_timeout)
                ),
                &[&f.msg.ticket],
            );
            return f.owed.met(Met::RouterAnswered);
        }
        let Some(timeout) = f.timeout else {
            // A class the FL does not always answer: delivered, nothing kept (its input is
            // done once the forward is delivered; its requester keeps its own timeout).
            let note = self.trace_forward(&f.correlation_id, f.lane, &f.switch_id, false);
            let out = self.to_fl(f.lane, &f.switch_id, f.msg).note(note);
            s.outbox.send(out);
            Counters::inc(&s.counters.commands_forwarded);
            Counters::inc(&s.counters.delivery_only_forwarded);
            return f.owed.met(Met::DeliveryOnly);
        };
        // The deadline runs from delivery (a partition leader failover can hold the command
        // in the producer for seconds; the FL cannot answer what it cannot read).
        let (delivered, delivery_ticket) = Delivered::new(s.liveness.epoch());
        self.pending.insert(
            &f.correlation_id,
            f.requester,
            f.switch_id.clone(),
            f.msg.ticket.clone(),
            f.multi,
            Some(delivered),
            now,
            timeout,
            f.owed,
        );
        let note = self.trace_forward(&f.correlation_id, f.lane, &f.switch_id, false);
        let out = self
            .to_fl(f.lane, &f.switch_id, f.msg)
            .ticket(&delivery_ticket)
            .note(note);
        drop(delivery_ticket);
        s.outbox.send(out);
        Counters::inc(&s.counters.commands_forwarded);
    }

    /// The command as it goes to the FL's read topic of its lane, holding its input's ticket.
    /// Bytes, key and headers in = bytes, key and headers out (OpenKilda's services match
    /// replies by key; the reply-to header lets a restarted router, or the FL's owner in a
    /// cluster, route the answer). Partitioned by switch so one switch's commands stay in order.
    fn to_fl(&self, lane: usize, switch_id: &Arc<str>, msg: Inbound) -> Outgoing {
        let topic = self
            .read_topics
            .get(lane)
            .or(self.read_topics.first())
            .cloned()
            .unwrap_or_else(|| Arc::from(""));
        let read_at = msg.read_at;
        let mut out = Outgoing::new(topic, msg.payload)
            .key_opt(msg.key)
            .headers(msg.headers)
            .partition_key(switch_id.clone())
            .ticket(&msg.ticket);
        out.read_at = read_at;
        out
    }

    /// Records a forward in the command's trace; the note reports its delivery.
    fn trace_forward(
        &self,
        cid: &str,
        lane: usize,
        switch_id: &Arc<str>,
        handed_over: bool,
    ) -> Option<DeliveryNote> {
        let s = &self.shared;
        if !s.traces.enabled() {
            return None;
        }
        let topic = self
            .read_topics
            .get(lane)
            .or(self.read_topics.first())
            .cloned()
            .unwrap_or_else(|| Arc::from(""));
        let note = DeliveryNote::new(&s.traces, cid, Delivery::Forward, &topic);
        let fl = self.trace_id.clone();
        let step = if handed_over {
            Step::HandedOver { fl, topic }
        } else {
            Step::Forwarded {
                fl,
                switch: switch_id.clone(),
                topic,
            }
        };
        s.traces.record(cid, step);
        note
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if !self.held.is_empty() {
            self.release_held(now);
        }
        if !self.sync_starting.is_empty() {
            self.expire_sync_starting(now);
        }
        let s = self.shared.clone();
        let t = &s.settings.timeouts;
        // A deadline is judged only as far as the router has read the FL's answers: after a
        // pause or with lag, the answer may be waiting unread in Kafka.
        let judged_up_to = s.liveness.seen_up_to(self.index).map(|seen| seen.min(now));
        let expired = judged_up_to
            .map(|at| self.pending.expire(at))
            .unwrap_or_default();
        for (kind, entry) in expired {
            // Whatever the FL says about this command from now on is late: dropped and counted.
            self.blacklist
                .insert(&entry.correlation_id, now, t.blacklist_ttl);
            let (failure, counter, message, missed, deadline) = match kind {
                Expiry::AckTimeout => (
                    Failure::TimedOut,
                    &s.counters.ack_timeouts,
                    "FL did not answer in time",
                    "no ack or answer",
                    entry.timeout(),
                ),
                Expiry::AnswerTimeout => (
                    Failure::NoAnswer,
                    &s.counters.acked_unanswered,
                    "FL acknowledged but did not answer in time",
                    "acknowledged, then no answer",
                    t.answer,
                ),
            };
            Counters::inc(counter);
            if let Some(m) = &entry.multi {
                let _ = m.failed.tell(PartFailed {
                    fl: self.index,
                    failure,
                });
                entry.owed.met(Met::Collected);
                continue;
            }
            info!(fl = %self.id, correlation_id = %entry.correlation_id, switch = %entry.switch_id, "{message}");
            s.send_error_from(
                Some(&self.id),
                &entry.requester,
                &entry.correlation_id,
                Some(&entry.switch_id),
                ErrorType::OperationTimedOut,
                message,
                &format!(
                    "{missed} from FL {} for switch {} within {}",
                    self.id,
                    entry.switch_id,
                    humantime::format_duration(deadline)
                ),
                &[&entry.ticket],
            );
            entry.owed.met(Met::RouterAnswered);
        }
        self.blacklist.purge(now);
    }
}

/// Pending commands of an offline FL answered per turn: the rest wait for the next turn, so
/// the dispatcher (on the same thread) keeps routing while thousands are being answered.
const FAIL_CHUNK: usize = 256;

impl FlProxy {}

impl FlProxy {}

impl Actor for FlProxy {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        if self.shared.retired() {
            // Restarted after its engine stopped: no timers; it ends with its last address.
            return;
        }
        ctx.run_interval(self.shared.settings.timeouts.tick, |act, ctx| {
            if act.shared.retired() {
                return ctx.stop();
            }
            act.guarded(ctx, "tick", FlProxy::tick)
        });
        if !self.failing.is_empty() {
            // Restarted while answering an outage's commands: carry on.
            self.continue_failing(ctx);
        }
    }
}

impl Drop for FlProxy {
    /// The engine is stopping: what is still pending was never committed (its tickets hold the
    /// offsets), so the next incarnation reads it again.
    fn drop(&mut self) {
        for e in self.pending.drain() {
            e.owed.met(Met::LeftForRestart);
        }
        for (e, _) in self.failing.drain(..) {
            e.owed.met(Met::LeftForRestart);
        }
    }
}

impl FlProxy {}

impl Supervised for FlProxy {
    fn restarting(&mut self, _: &mut Self::Context) {
        self.stats.restarted();
        // Derived state is rebuilt from the pending commands themselves: a failure may have
        // cut an update short.
        self.pending.reindex();
        warn!(fl = %self.id, pending = self.pending.len(), "FL proxy restarting; pending commands kept");
    }
}

impl FlProxy {
    /// Handles one message (or one tick) so that a failure — a panic, i.e. a bug here or in a
    /// collaborator such as the shell's outbox — cannot take the FL's pending commands with
    /// it: the panic is caught, logged and counted (`flrouter_actor_failures_total`), the rest
    /// of the batch is still handled, and the proxy stops so its supervisor restarts it with
    /// its state (`restarting` rebuilds the pending table's indexes). A command whose handling
    /// failed is not lost: it is pending already (and times out with an answer) or its input's
    /// ticket is released only by an answer.
    fn guarded(&mut self, ctx: &mut Context<Self>, what: &'static str, f: impl FnOnce(&mut Self)) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        if let Err(panic) = outcome {
            self.stats.failed();
            error!(
                fl = %self.id,
                handling = what,
                reason = crate::runtime::mailbox::panic_message(panic.as_ref()),
                "FL proxy failed; restarting it with its pending commands"
            );
            ctx.stop();
        }
    }
}

counted!(FlProxy, Forward => (), |this, msg, ctx| {
    this.guarded(ctx, "forward", |p| p.forward(msg));
});

counted!(FlProxy, Forwards => (), |this, msg, ctx| {
    for f in msg.0 {
        this.guarded(ctx, "forward", |p| p.forward(f));
    }
});

counted!(FlProxy, Adopt => (), |this, msg, ctx| {
    this.guarded(ctx, "adopt", |p| p.adopt(msg));
});

counted!(FlProxy, FlOutput => (), |this, msg, ctx| {
    this.guarded(ctx, "fl output", |p| p.on_output(msg.0));
});

counted!(FlProxy, FlOutputs => (), |this, msg, ctx| {
    for m in msg.0 {
        this.guarded(ctx, "fl output", |p| p.on_output(m));
    }
});

counted!(FlProxy, Forwarded => (), |this, msg, ctx| {
    for m in msg.0 {
        this.guarded(ctx, "adopt forward", |p| p.adopt_forward(m));
    }
});

counted!(FlProxy, SetOwned => (), |this, msg, _| {
    this.set_owned(msg.0);
});

counted!(FlProxy, Restart => (), |this, _, ctx| {
    ctx.stop();
});

counted!(FlProxy, WatchSync => (), |this, msg, _| {
    // An adopted request's dump that came before its session: the session's now, in order.
    if let Some((_, early)) = this.sync_starting.remove(&msg.correlation_id) {
        for part in early {
            let _ = msg.session.tell(DumpSeen { fl: this.index, part });
        }
    }
    this.sync_watch
        .insert(msg.correlation_id, msg.session);
});

counted!(FlProxy, UnwatchSync => (), |this, msg, _| {
    this.sync_watch.remove(&msg.correlation_id);
});

counted!(FlProxy, FailPending => (), |this, msg, ctx| {
    this.fail_pending(&msg.reason, ctx);
});

counted!(FlProxy, FailSwitch => (), |this, msg, ctx| {
    this.guarded(ctx, "fail switch", |p| p.fail_switch(&msg.switch_id, &msg.reason));
});

counted!(FlProxy, GetInflight => MessageResult<Envelope<GetInflight>>, |this, msg, _| {
    let mut rows: Vec<_> = this
        .pending
        .iter()
        .map(|e| InflightRow {
            correlation_id: e.correlation_id.to_string(),
            switch_id: e.switch_id.to_string(),
            state: e.state,
            age_ms: e.since.elapsed().as_millis() as u64,
            multi_switch: e.multi.is_some(),
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.age_ms));
    rows.truncate(msg.limit);
    MessageResult(rows)
});

counted!(FlProxy, GetStatus => MessageResult<Envelope<GetStatus>>, |this, _, _| {
    MessageResult(ProxyStatus {
        fl: this.id.clone(),
        pending: this.pending.len(),
        blacklisted: this.blacklist.len(),
        restarts: this.stats.snapshot(false).restarts,
        last_seen_ms_ago: this.last_seen.map(|t| t.elapsed().as_millis() as u64),
        owned: this.owned,
    })
});
