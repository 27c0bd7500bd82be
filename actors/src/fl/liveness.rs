//! What the engine knows about each FL's liveness, and how far it can see.
//!
//! Shared atomics: every FL message stamps its FL's evidence (one store, no actor message per
//! FL message); only the `OutageMonitor` changes a status; anyone may read.
//!
//! **Seeing.** The router must not blame an FL for its own blindness: after a pause (SIGSTOP, a
//! VM stall), with lag on the FL topics, or before its FL consumer is even assigned, the FL's
//! evidence may be waiting unread in Kafka. So every judgement against an FL (outage, a
//! command's deadline) is made only up to [`Liveness::seen_up_to`]: the instant up to which the
//! router has read *everything* that FL wrote. The shell reports it (it compares what it has
//! handled with the partitions' end offsets, see `src/kafka/freshness.rs`) after calling
//! [`Liveness::track_reads`]; an engine nobody reports to (in-process tests) sees up to now.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlStatus {
    /// Not yet heard from since the router started; commands are forwarded to it.
    Starting,
    Online,
    Offline,
}

/// An instant stored as milliseconds since the engine's epoch, rounded up, plus one (0 = never).
/// Rounding up means evidence is never reported older than it was.
#[derive(Debug, Default)]
pub struct Stamp(AtomicU64);

impl Stamp {
    fn encode(epoch: Instant, at: Instant) -> u64 {
        at.saturating_duration_since(epoch)
            .as_micros()
            .div_ceil(1000) as u64
            + 1
    }
    pub fn set(&self, epoch: Instant, at: Instant) {
        self.0.store(Self::encode(epoch, at), Relaxed);
    }
    /// Moves the stamp forward only (concurrent reporters cannot move it back).
    pub fn advance(&self, epoch: Instant, at: Instant) {
        self.0.fetch_max(Self::encode(epoch, at), Relaxed);
    }
    pub fn get(&self, epoch: Instant) -> Option<Instant> {
        match self.0.load(Relaxed) {
            0 => None,
            ms => Some(epoch + std::time::Duration::from_millis(ms - 1)),
        }
    }
}

pub struct Liveness {
    epoch: Instant,
    last_evidence: Vec<Stamp>,
    status: Vec<AtomicU8>,
    /// Set by the shell when it reports how far it has read each FL's topics.
    tracked: AtomicBool,
    seen_up_to: Vec<Stamp>,
    /// An offline FL's proxy has told the monitor about new evidence (one message per outage).
    recovery_reported: Vec<AtomicBool>,
    /// Why each FL was last declared offline (read by the dispatcher when it fails over).
    outage_reason: Vec<std::sync::Mutex<String>>,
    /// Outages declared per FL: the dispatcher applies each one once (see `Dispatcher`).
    outages: Vec<AtomicU64>,
    /// Whether this engine owns each FL: reads what it writes, holds its pending commands,
    /// judges its liveness. All FLs in one instance; in a cluster, those assigned to it.
    owned: Vec<AtomicBool>,
    /// In a cluster: up to when the engine has adopted every forward on each owned FL's read
    /// topics (an FL answer to a forward not adopted yet waits until then).
    forwards_seen_up_to: Vec<Stamp>,
}

impl Liveness {
    pub fn new(fls: usize) -> Self {
        Self {
            epoch: Instant::now(),
            last_evidence: (0..fls).map(|_| Stamp::default()).collect(),
            status: (0..fls).map(|_| AtomicU8::new(0)).collect(),
            tracked: AtomicBool::new(false),
            seen_up_to: (0..fls).map(|_| Stamp::default()).collect(),
            recovery_reported: (0..fls).map(|_| AtomicBool::new(false)).collect(),
            outage_reason: (0..fls).map(|_| Default::default()).collect(),
            outages: (0..fls).map(|_| AtomicU64::new(0)).collect(),
            owned: (0..fls).map(|_| AtomicBool::new(true)).collect(),
            forwards_seen_up_to: (0..fls).map(|_| Stamp::default()).collect(),
        }
    }

    /// Whether this engine owns FL `fl` (see [`Liveness::set_owned`]).
    pub fn is_owned(&self, fl: usize) -> bool {
        self.owned.get(fl).is_some_and(|o| o.load(Relaxed))
    }

    /// FL `fl` is (no longer) this engine's: a new owner starts with a fresh view of its
    /// liveness (status Starting, nothing seen yet), as after a restart.
    pub fn set_owned(&self, fl: usize, owned: bool) {
        if let Some(o) = self.owned.get(fl) {
            o.store(owned, Relaxed);
        }
        self.set_status(fl, FlStatus::Starting);
        for stamps in [&self.seen_up_to, &self.forwards_seen_up_to] {
            if let Some(s) = stamps.get(fl) {
                s.0.store(0, Relaxed);
            }
        }
    }

    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// FL `fl` said something just now. True when the FL is offline and nobody has reported
    /// this evidence to the monitor yet (the caller should, once).
    pub fn evidence(&self, fl: usize) -> bool {
        if let Some(a) = self.last_evidence.get(fl) {
            a.set(self.epoch, Instant::now());
        }
        self.status(fl) == FlStatus::Offline
            && self
                .recovery_reported
                .get(fl)
                .is_some_and(|r| !r.swap(true, Relaxed))
    }

    pub fn last_evidence(&self, fl: usize) -> Option<Instant> {
        self.last_evidence.get(fl)?.get(self.epoch)
    }

    pub fn status(&self, fl: usize) -> FlStatus {
        match self.status.get(fl).map_or(0, |s| s.load(Relaxed)) {
            1 => FlStatus::Online,
            2 => FlStatus::Offline,
            _ => FlStatus::Starting,
        }
    }

    /// Declares FL `fl` offline, with why.
    pub fn set_offline(&self, fl: usize, reason: &str) {
        if let Some(r) = self.outage_reason.get(fl) {
            if let Ok(mut r) = r.lock() {
                *r = reason.to_string();
            }
        }
        self.set_status(fl, FlStatus::Offline);
        if let Some(n) = self.outages.get(fl) {
            n.fetch_add(1, Relaxed);
        }
    }

    /// How many outages FL `fl` has had.
    pub fn outages(&self, fl: usize) -> u64 {
        self.outages.get(fl).map_or(0, |n| n.load(Relaxed))
    }

    /// Why FL `fl` was last declared offline.
    pub fn outage_reason(&self, fl: usize) -> String {
        self.outage_reason
            .get(fl)
            .and_then(|r| r.lock().ok().map(|r| r.clone()))
            .unwrap_or_default()
    }

    pub fn set_status(&self, fl: usize, status: FlStatus) {
        if let Some(s) = self.status.get(fl) {
            s.store(
                match status {
                    FlStatus::Starting => 0,
                    FlStatus::Online => 1,
                    FlStatus::Offline => 2,
                },
                Relaxed,
            );
        }
        if let Some(r) = self.recovery_reported.get(fl) {
            r.store(false, Relaxed);
        }
    }

    /// From now on, [`Liveness::seen_up_to`] is what the shell reports, not "now".
    pub fn track_reads(&self) {
        self.tracked.store(true, Relaxed);
    }

    /// The shell has read (and the engine handled) everything FL `fl` wrote before `at`.
    pub fn read_up_to(&self, fl: usize, at: Instant) {
        if let Some(s) = self.seen_up_to.get(fl) {
            s.advance(self.epoch, at);
        }
    }

    /// Up to when the router has seen everything every FL it owns wrote (the earliest of
    /// [`Liveness::seen_up_to`]); None: some FL not read up to date yet.
    pub fn seen_all_up_to(&self) -> Option<Instant> {
        (0..self.seen_up_to.len())
            // An FL another instance owns is not read here: its reconnects are not ours to see.
            .filter(|&fl| self.is_owned(fl))
            .map(|fl| self.seen_up_to(fl))
            .try_fold(Instant::now(), |acc, at| at.map(|at| acc.min(at)))
    }

    /// Up to when the router has seen everything FL `fl` wrote; None: not read up to date yet.
    pub fn seen_up_to(&self, fl: usize) -> Option<Instant> {
        if !self.tracked.load(Relaxed) {
            return Some(Instant::now());
        }
        self.seen_up_to.get(fl)?.get(self.epoch)
    }

    /// The shell has read FL `fl`'s read topics up to their end as of `at`, and the engine
    /// has adopted every forward on them (a cluster instance; see `FlProxy`).
    pub fn forwards_read_up_to(&self, fl: usize, at: Instant) {
        if let Some(s) = self.forwards_seen_up_to.get(fl) {
            s.advance(self.epoch, at);
        }
    }

    /// Up to when every forward to FL `fl` has been adopted; None: not read up to date yet.
    pub fn forwards_seen_up_to(&self, fl: usize) -> Option<Instant> {
        if !self.tracked.load(Relaxed) {
            return Some(Instant::now());
        }
        self.forwards_seen_up_to.get(fl)?.get(self.epoch)
    }
}

/// When a message the router produced was delivered to Kafka (read through [`Delivered::at`]),
/// stamped by the ticket [`Delivered::new`] returns with it. A forwarded command's deadline and
/// an AliveRequest's timeout run from delivery: an FL is judged on what it could read, not on
/// what waited in the router's producer (e.g. for a new partition leader).
#[derive(Debug, Clone)]
pub struct Delivered(Arc<DeliveryCell>);

#[derive(Debug)]
struct DeliveryCell {
    epoch: Instant,
    at: Stamp,
}

/// Stamps its [`Delivered`] when dropped (by the delivery report of the message it rides on).
struct DeliveredGuard(Arc<DeliveryCell>);

impl Drop for DeliveredGuard {
    fn drop(&mut self) {
        self.0.at.set(self.0.epoch, Instant::now());
    }
}

impl Delivered {
    /// The record and the ticket to attach to the message whose delivery it records.
    pub fn new(epoch: Instant) -> (Self, crate::runtime::outbox::Ticket) {
        let cell = Arc::new(DeliveryCell {
            epoch,
            at: Stamp::default(),
        });
        let ticket = crate::runtime::outbox::Ticket::new(DeliveredGuard(cell.clone()));
        (Self(cell), ticket)
    }

    /// When it was delivered; None while it is not.
    pub fn at(&self) -> Option<Instant> {
        self.0.at.get(self.0.epoch)
    }
}

/// A delivery stamp as a ticket guard: sets `stamp` when the message it rides on is delivered
/// (the outage monitor's AliveRequests).
pub struct DeliveryStamp {
    epoch: Instant,
    stamp: Arc<Stamp>,
}

impl DeliveryStamp {
    pub fn new(epoch: Instant, stamp: Arc<Stamp>) -> Self {
        Self { epoch, stamp }
    }
}

impl Drop for DeliveryStamp {
    fn drop(&mut self) {
        self.stamp.set(self.epoch, Instant::now());
    }
}
