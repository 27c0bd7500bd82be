//! Counted mailboxes: every send to an engine actor goes through [`Mailbox`], every receive
//! through [`MailboxStats::receive`], so the figures operators debug with are exact.
//!
//! actix has no public API for a mailbox's length, so "pending" is derived from counts:
//! `sent - received - rejected`. Messages travel wrapped in an [`Envelope`] that carries the
//! send instant, which gives the time spent waiting in the mailbox.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use actix::dev::ToEnvelope;
use actix::prelude::*;

/// A message in transit, stamped with its send time.
pub struct Envelope<M> {
    pub msg: M,
    pub sent_at: Instant,
}

impl<M: Message> Message for Envelope<M> {
    type Result = M::Result;
}

/// Figures of one actor instance's mailbox. Shared by the sender side and the actor.
#[derive(Debug)]
pub struct MailboxStats {
    pub kind: &'static str,
    pub id: String,
    pub capacity: usize,
    sent: AtomicU64,
    received: AtomicU64,
    rejected: AtomicU64,
    restarts: AtomicU64,
    failures: AtomicU64,
    max_wait_us: AtomicU64,
    max_handle_us: AtomicU64,
}

/// A point-in-time copy of [`MailboxStats`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailboxSnapshot {
    pub kind: &'static str,
    pub id: String,
    pub capacity: usize,
    pub sent: u64,
    pub received: u64,
    pub rejected: u64,
    pub pending: u64,
    pub restarts: u64,
    /// Messages whose handling failed (a panic caught; see `FlProxy::guarded`).
    pub failures: u64,
    pub max_wait_us: u64,
    pub max_handle_us: u64,
}

impl MailboxStats {
    pub fn new(kind: &'static str, id: impl Into<String>, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            kind,
            id: id.into(),
            capacity,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            max_wait_us: AtomicU64::new(0),
            max_handle_us: AtomicU64::new(0),
        })
    }

    /// Called first thing in a handler; the guard records the handling time when dropped.
    pub fn receive(&self, sent_at: Instant) -> HandleGuard<'_> {
        self.received.fetch_add(1, Relaxed);
        let now = Instant::now();
        let wait = now.saturating_duration_since(sent_at).as_micros() as u64;
        self.max_wait_us.fetch_max(wait, Relaxed);
        HandleGuard {
            stats: self,
            start: now,
        }
    }

    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Relaxed);
    }

    pub fn failed(&self) {
        self.failures.fetch_add(1, Relaxed);
    }

    /// Copies the figures and starts a new window for the maxima.
    pub fn snapshot(&self, reset_window: bool) -> MailboxSnapshot {
        let (wait, handle) = if reset_window {
            (
                self.max_wait_us.swap(0, Relaxed),
                self.max_handle_us.swap(0, Relaxed),
            )
        } else {
            (
                self.max_wait_us.load(Relaxed),
                self.max_handle_us.load(Relaxed),
            )
        };
        let sent = self.sent.load(Relaxed);
        let received = self.received.load(Relaxed);
        let rejected = self.rejected.load(Relaxed);
        MailboxSnapshot {
            kind: self.kind,
            id: self.id.clone(),
            capacity: self.capacity,
            sent,
            received,
            rejected,
            pending: sent.saturating_sub(received + rejected),
            restarts: self.restarts.load(Relaxed),
            failures: self.failures.load(Relaxed),
            max_wait_us: wait,
            max_handle_us: handle,
        }
    }
}

pub struct HandleGuard<'a> {
    stats: &'a MailboxStats,
    start: Instant,
}

impl Drop for HandleGuard<'_> {
    fn drop(&mut self) {
        let us = self.start.elapsed().as_micros() as u64;
        self.stats.max_handle_us.fetch_max(us, Relaxed);
    }
}

/// The send side of an actor: its address plus the stats every send updates.
pub struct Mailbox<A: Actor> {
    addr: Addr<A>,
    stats: Arc<MailboxStats>,
}

impl<A: Actor> Clone for Mailbox<A> {
    fn clone(&self) -> Self {
        Self {
            addr: self.addr.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// Why a send did not reach the actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendRejected {
    #[error("actor mailbox is closed")]
    Closed,
}

impl<A: Actor> std::fmt::Debug for Mailbox<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailbox({}:{})", self.stats.kind, self.stats.id)
    }
}

impl<A: Actor> Mailbox<A> {
    pub fn new(addr: Addr<A>, stats: Arc<MailboxStats>) -> Self {
        Self { addr, stats }
    }

    pub fn stats(&self) -> &Arc<MailboxStats> {
        &self.stats
    }

    /// Whether the actor is still running (a send to it can arrive).
    pub fn connected(&self) -> bool {
        self.addr.connected()
    }

    /// Fire-and-forget send between actors (unbounded, like actix `do_send`), counted.
    pub fn tell<M>(&self, msg: M) -> Result<(), SendRejected>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<Envelope<M>>,
        A::Context: ToEnvelope<A, Envelope<M>>,
    {
        if !self.addr.connected() {
            self.stats.rejected.fetch_add(1, Relaxed);
            return Err(SendRejected::Closed);
        }
        self.stats.sent.fetch_add(1, Relaxed);
        self.addr.do_send(Envelope {
            msg,
            sent_at: Instant::now(),
        });
        Ok(())
    }

    /// Send and wait for the handler: honours the mailbox capacity, so callers get backpressure.
    pub async fn ask<M>(&self, msg: M) -> Result<M::Result, SendRejected>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<Envelope<M>>,
        A::Context: ToEnvelope<A, Envelope<M>>,
    {
        self.stats.sent.fetch_add(1, Relaxed);
        let fut = self.addr.send(Envelope {
            msg,
            sent_at: Instant::now(),
        });
        match fut.await {
            Ok(r) => Ok(r),
            Err(_) => {
                self.stats.rejected.fetch_add(1, Relaxed);
                Err(SendRejected::Closed)
            }
        }
    }
}

impl<A: Actor<Context = Context<A>>> Mailbox<A> {
    /// This mailbox as an [`Outlet`] for one message type: what an actor that must not know
    /// the receiver's type (see [`crate::messages`]) is given. Counted in the same figures.
    pub fn outlet<M>(&self) -> Outlet<M>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<Envelope<M>>,
    {
        Outlet {
            to: self.addr.clone().recipient(),
            stats: self.stats.clone(),
        }
    }
}

/// A counted, type-erased send side for one message type: the receiver's type stays unknown
/// to the sender, so actor files need not import each other.
pub struct Outlet<M>
where
    M: Message + Send,
    M::Result: Send,
{
    to: Recipient<Envelope<M>>,
    stats: Arc<MailboxStats>,
}

impl<M> Clone for Outlet<M>
where
    M: Message + Send,
    M::Result: Send,
{
    fn clone(&self) -> Self {
        Self {
            to: self.to.clone(),
            stats: self.stats.clone(),
        }
    }
}

impl<M> std::fmt::Debug for Outlet<M>
where
    M: Message + Send,
    M::Result: Send,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outlet({}:{})", self.stats.kind, self.stats.id)
    }
}

impl<M> Outlet<M>
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    /// Whether the receiving actor is still running.
    pub fn connected(&self) -> bool {
        self.to.connected()
    }

    /// Fire-and-forget send, counted like [`Mailbox::tell`].
    pub fn tell(&self, msg: M) -> Result<(), SendRejected> {
        if !self.to.connected() {
            self.stats.rejected.fetch_add(1, Relaxed);
            return Err(SendRejected::Closed);
        }
        self.stats.sent.fetch_add(1, Relaxed);
        self.to.do_send(Envelope {
            msg,
            sent_at: Instant::now(),
        });
        Ok(())
    }
}

/// `port! { /// doc  Name { field: Msg, … } }` declares the outlets through which other actors
/// reach one actor: a struct of one [`Outlet`] per message, and `Name::of(&mailbox)` to build it
/// from the actor's mailbox (the only place that needs the actor's type: the engine's start).
#[macro_export]
macro_rules! port {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident: $msg:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $crate::runtime::mailbox::Outlet<$msg>,)*
        }

        impl $name {
            pub fn of<A>(mailbox: &$crate::runtime::mailbox::Mailbox<A>) -> Self
            where
                A: ::actix::Actor<Context = ::actix::Context<A>>
                    $(+ ::actix::Handler<$crate::runtime::mailbox::Envelope<$msg>>)*,
            {
                Self {
                    $($field: mailbox.outlet(),)*
                }
            }
        }
    };
}

/// The message of a caught panic, for the log.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Every mailbox of the running engine, for the admin API and metrics.
#[derive(Default)]
pub struct MailboxRegistry {
    entries: Mutex<Vec<Weak<MailboxStats>>>,
}

impl MailboxRegistry {
    pub fn register(&self, stats: &Arc<MailboxStats>) {
        if let Ok(mut e) = self.entries.lock() {
            e.retain(|w| w.strong_count() > 0);
            e.push(Arc::downgrade(stats));
        }
    }

    /// One row per live actor instance, busiest (most pending) first.
    pub fn snapshot(&self, reset_window: bool) -> Vec<MailboxSnapshot> {
        let Ok(e) = self.entries.lock() else {
            return Vec::new();
        };
        let mut rows: Vec<_> = e
            .iter()
            .filter_map(Weak::upgrade)
            .map(|s| s.snapshot(reset_window))
            .collect();
        rows.sort_by(|a, b| b.pending.cmp(&a.pending).then_with(|| a.id.cmp(&b.id)));
        rows
    }
}

/// `counted!(Actor, Msg => Result, |this, msg, ctx| { ... })` implements
/// `Handler<Envelope<Msg>>` for an actor that keeps its mailbox figures in a `stats` field: the
/// message is counted as received, the time it waited and the time its handling takes are
/// recorded, and the body runs with the actor as `this`, the message as `msg` and the context as
/// `ctx` (any of the three may be `_`). One place for what every counted handler does.
#[macro_export]
macro_rules! counted {
    ($actor:ty, $msg:ty => $result:ty, |$this:ident, $m:pat_param, $ctx:pat_param| $body:block) => {
        impl ::actix::Handler<$crate::runtime::mailbox::Envelope<$msg>> for $actor {
            type Result = $result;
            fn handle(
                &mut self,
                env: $crate::runtime::mailbox::Envelope<$msg>,
                $ctx: &mut <Self as ::actix::Actor>::Context,
            ) -> Self::Result {
                let stats = ::std::sync::Arc::clone(&self.stats);
                let _handling = stats.receive(env.sent_at);
                #[allow(unused_variables)]
                let $this = self;
                let $m = env.msg;
                $body
            }
        }
    };
}
