//! [`Obligation`]: the router's duty to give one command its final answer, as a value.
//!
//! It is created where the router takes a command on (a `Forward` is built), travels with the
//! command (into the FL proxy's pending table, a grace-window queue, a multi-switch collector)
//! and has exactly one way out: [`Obligation::met`], saying how. It is not `Clone`, it is
//! `#[must_use]` (ignoring one is a compile error under `-D warnings`), and dropping one is
//! never silent: it is counted ([`unmet`], `flrouter_obligations_unmet_total`) and logged as an
//! error, and the engine tests assert that none was dropped on their thread ([`unmet_here`]).
//! It is zero-sized: a million pending commands carry it for free.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How an obligation was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Met {
    /// The FL's final answer went to the requester.
    Answered,
    /// The router answered itself (NOT_FOUND, OPERATION_TIMED_OUT, …).
    RouterAnswered,
    /// A multi-switch part: its outcome went to the collector, which owes the final answer.
    Collected,
    /// The engine is stopping with the command unanswered: its offset is not committed, so
    /// the next incarnation reads it again.
    LeftForRestart,
    /// Of a class its speaker does not always answer (`protocol.delivery_only`): delivered,
    /// and its requester keeps its own timeout.
    DeliveryOnly,
    /// Forwarded to an FL another instance owns, or left when this instance stopped owning
    /// the FL: the FL's owner adopts it from the FL's read topic (`docs/design/cluster.md`).
    HandedOver,
}

#[must_use = "a command's final answer is owed: end the obligation with `met`"]
#[derive(Debug)]
pub struct Obligation(());

static UNMET: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static UNMET_HERE: Cell<u64> = const { Cell::new(0) };
}

impl Obligation {
    pub(crate) fn new() -> Self {
        Obligation(())
    }

    /// The command got its final answer (or is legitimately left for the next incarnation).
    pub fn met(self, how: Met) {
        let _ = how;
        std::mem::forget(self);
    }
}

impl Drop for Obligation {
    fn drop(&mut self) {
        UNMET.fetch_add(1, Relaxed);
        UNMET_HERE.with(|c| c.set(c.get() + 1));
        tracing::error!("a command's final answer was owed and its obligation was dropped");
    }
}

/// Obligations dropped unmet in this process.
pub fn unmet() -> u64 {
    UNMET.load(Relaxed)
}

/// Obligations dropped unmet on this thread (an engine test with one shard runs every actor on
/// its own thread).
pub fn unmet_here() -> u64 {
    UNMET_HERE.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn met_is_silent_and_a_drop_is_counted() {
        let before = unmet_here();
        Obligation::new().met(Met::Answered);
        assert_eq!(unmet_here(), before);
        drop(Obligation::new());
        assert_eq!(unmet_here(), before + 1);
        assert!(unmet() >= 1);
        assert_eq!(std::mem::size_of::<Obligation>(), 0);
    }
}
