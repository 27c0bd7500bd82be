//! At-least-once bookkeeping for one consumer: which offsets are still in the engine's care.
//!
//! Every consumed message gets a [`Ticket`] wrapping an [`OffsetGuard`]; the engine attaches the
//! ticket to everything it produces for that input (and keeps it in a pending command until the
//! command's final answer is out), the producer drops it only after a successful delivery
//! report. When the last clone is gone the guard's `Drop` marks the offset done. Delivery reports
//! come back out of order, so the committable position of a partition is its contiguous
//! low-watermark: the lowest offset still outstanding, or one past the highest seen.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use fl_router_actors::runtime::traces::Traces;
use fl_router_actors::Ticket;

struct Partition {
    topic: Arc<str>,
    partition: i32,
    /// False once forgotten (`forget`): read again as if never read.
    known: bool,
    /// Counts the starts: a ticket from before a `forget` releases nothing of what is read
    /// after it.
    epoch: u32,
    outstanding: BTreeSet<i64>,
    /// One past the highest offset handed out.
    next: i64,
    /// Last position returned by `commit_positions` (to commit only on change).
    committed: i64,
    /// One past the highest offset the engine has finished handling (None: none yet).
    handled: Option<i64>,
    /// False after a revocation: its inputs may still be in the engine's care, but its
    /// position is not committed until the partition is assigned here again.
    assigned: bool,
}

impl Partition {
    /// Read for the first time (or again after `forget`) at `offset`.
    fn start(&mut self, offset: i64) {
        self.known = true;
        self.epoch = self.epoch.wrapping_add(1);
        self.outstanding.clear();
        self.next = offset;
        self.committed = offset;
        self.handled = None;
        self.assigned = true;
    }
}

/// The partitions read so far. A guard names its partition by slot (a number, not a shared
/// topic name whose reference count every message's thread would touch), and the consume loop
/// finds one by `&str` without allocating.
#[derive(Default)]
struct Parts {
    index: HashMap<Arc<str>, HashMap<i32, usize>>,
    /// Never shrinks: a forgotten partition keeps its slot, `known: false`.
    slots: Vec<Partition>,
}

impl Parts {
    fn get_mut(&mut self, topic: &str, partition: i32) -> Option<&mut Partition> {
        let slot = *self.index.get(topic)?.get(&partition)?;
        self.slots.get_mut(slot).filter(|p| p.known)
    }

    fn get(&self, topic: &str, partition: i32) -> Option<&Partition> {
        let slot = *self.index.get(topic)?.get(&partition)?;
        self.slots.get(slot).filter(|p| p.known)
    }

    /// The partition's slot, started at `offset` if it was not known.
    fn slot(&mut self, topic: &Arc<str>, partition: i32, offset: i64) -> usize {
        let slots = &mut self.slots;
        let slot = *self
            .index
            .entry(topic.clone())
            .or_default()
            .entry(partition)
            .or_insert_with(|| {
                // Started just below, as a forgotten one would be.
                slots.push(Partition {
                    topic: topic.clone(),
                    partition,
                    known: false,
                    epoch: 0,
                    outstanding: BTreeSet::new(),
                    next: 0,
                    committed: 0,
                    handled: None,
                    assigned: false,
                });
                slots.len() - 1
            });
        if let Some(p) = self.slots.get_mut(slot) {
            if !p.known {
                p.start(offset);
            }
        }
        slot
    }
}

#[derive(Default)]
pub struct OffsetTracker {
    parts: Mutex<Parts>,
    /// Set when the assignment was lost (session timeout) until the next assignment: a commit
    /// then would carry a stale member id, which fences a static member (fatal in librdkafka).
    commits_suspended: std::sync::atomic::AtomicBool,
    /// The partitions the group has assigned to this consumer now (`/api/cluster`).
    assignment: Mutex<BTreeSet<(String, i32)>>,
    /// Where commits are reported, to date a command's offset commit in its trace.
    traces: std::sync::OnceLock<Arc<Traces>>,
}

/// Releases its offset when dropped (i.e. when the last ticket clone is gone).
pub struct OffsetGuard {
    tracker: Arc<OffsetTracker>,
    offset: i64,
    slot: u32,
    epoch: u32,
}

impl Drop for OffsetGuard {
    fn drop(&mut self) {
        self.tracker.release(self.slot, self.epoch, self.offset);
    }
}

impl OffsetTracker {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a consumed offset and returns the ticket that holds it open.
    /// (Pass the topic as an `Arc<str>` to share it rather than copy it per message.)
    pub fn track(
        self: &Arc<Self>,
        topic: impl Into<Arc<str>>,
        partition: i32,
        offset: i64,
    ) -> Ticket {
        let topic: Arc<str> = topic.into();
        let (mut slot, mut epoch) = (u32::MAX, 0);
        if let Ok(mut parts) = self.parts.lock() {
            let s = parts.slot(&topic, partition, offset);
            if let Some(p) = parts.slots.get_mut(s) {
                p.outstanding.insert(offset);
                p.next = p.next.max(offset + 1);
                (slot, epoch) = (u32::try_from(s).unwrap_or(u32::MAX), p.epoch);
            }
        }
        Ticket::new(OffsetGuard {
            tracker: self.clone(),
            offset,
            slot,
            epoch,
        })
    }

    fn release(&self, slot: u32, epoch: u32, offset: i64) {
        if let Ok(mut parts) = self.parts.lock() {
            if let Some(p) = parts.slots.get_mut(slot as usize) {
                if p.epoch == epoch {
                    p.outstanding.remove(&offset);
                }
            }
        }
    }

    /// Positions to commit (topic, partition, next offset to read): those that moved since the
    /// last call, or every known one when `all` (final and rebalance commits).
    pub fn commit_positions(&self, all: bool) -> Vec<(Arc<str>, i32, i64)> {
        let Ok(mut parts) = self.parts.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for p in parts.slots.iter_mut().filter(|p| p.known && p.assigned) {
            let low = p.outstanding.first().copied().unwrap_or(p.next);
            if low > p.committed || all {
                p.committed = low;
                out.push((p.topic.clone(), p.partition, low));
            }
        }
        out
    }

    /// The engine has handled the message at `offset` (it is in the engine's state now).
    pub fn mark_handled(&self, topic: &str, partition: i32, offset: i64) {
        if let Ok(mut parts) = self.parts.lock() {
            if let Some(p) = parts.get_mut(topic, partition) {
                p.handled = Some(p.handled.unwrap_or(0).max(offset + 1));
            }
        }
    }

    /// One past the highest offset of this partition the engine has handled, if any.
    pub fn handled(&self, topic: &str, partition: i32) -> Option<i64> {
        let parts = self.parts.lock().ok()?;
        parts.get(topic, partition)?.handled
    }

    /// The partitions assigned to this consumer now, in order.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.assignment
            .lock()
            .map(|a| a.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Reports this consumer's commits to `traces` from now on.
    pub fn trace_commits_to(&self, traces: Arc<Traces>) {
        let _ = self.traces.set(traces);
    }

    /// Positions that Kafka accepted as committed.
    pub fn committed(&self, positions: &[(Arc<str>, i32, i64)]) {
        if let Some(t) = self.traces.get() {
            for (topic, partition, position) in positions {
                t.committed(topic, *partition, *position);
            }
        }
    }

    /// Stops (or resumes) committing; see `commits_suspended`.
    pub fn suspend_commits(&self, suspended: bool) {
        self.commits_suspended
            .store(suspended, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn commits_suspended(&self) -> bool {
        self.commits_suspended
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Offsets handed out and not yet released, over all partitions.
    pub fn outstanding(&self) -> usize {
        self.parts
            .lock()
            .map(|p| {
                p.slots
                    .iter()
                    .filter(|p| p.known)
                    .map(|p| p.outstanding.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The group assigned this partition to this consumer.
    pub fn assigned(&self, topic: &str, partition: i32) {
        if let Ok(mut a) = self.assignment.lock() {
            a.insert((topic.to_string(), partition));
        }
    }

    /// Forgets what this process read of the partition: it is assigned again from its
    /// committed offset, because the state that made the rest safe to skip is gone (a cluster
    /// instance that gave an FL up and takes it back: its engine dropped that FL's commands).
    pub fn forget(&self, topic: &str, partition: i32) {
        if let Ok(mut parts) = self.parts.lock() {
            if let Some(p) = parts.get_mut(topic, partition) {
                p.known = false;
                p.outstanding.clear();
            }
        }
    }

    /// Every partition was taken away at once (a failed rebalance).
    pub fn clear_assignment(&self) {
        if let Ok(mut a) = self.assignment.lock() {
            a.clear();
        }
    }

    /// The partition was revoked: its position is no longer committed from here, but what
    /// was read of it stays known (its inputs may still be in the engine's care).
    pub fn revoke(&self, topic: &str, partition: i32) {
        if let Ok(mut a) = self.assignment.lock() {
            a.remove(&(topic.to_string(), partition));
        }
        if let Ok(mut parts) = self.parts.lock() {
            if let Some(p) = parts.get_mut(topic, partition) {
                p.assigned = false;
            }
        }
    }

    /// The partition is assigned (again). If this process has read it before, the offset to
    /// go on from: everything before it is answered or still in the engine's care, so reading
    /// it again would only judge the same commands twice.
    pub fn resume_at(&self, topic: &str, partition: i32) -> Option<i64> {
        let mut parts = self.parts.lock().ok()?;
        let p = parts.get_mut(topic, partition)?;
        p.assigned = true;
        Some(p.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_the_contiguous_low_watermark_only() {
        let t = OffsetTracker::new();
        let a = t.track("x", 0, 10);
        let b = t.track("x", 0, 11);
        let c = t.track("x", 0, 12);
        drop(c);
        drop(b);
        assert!(
            t.commit_positions(false).is_empty(),
            "10 is still outstanding"
        );
        drop(a);
        assert_eq!(t.commit_positions(false), vec![(Arc::from("x"), 0, 13)]);
        assert!(t.commit_positions(false).is_empty(), "no change, no commit");
    }

    #[test]
    fn a_revoked_partition_is_not_committed_and_resumes_after_what_was_read() {
        let t = OffsetTracker::new();
        let a = t.track("x", 0, 5);
        let b = t.track("x", 0, 6);
        drop(a);
        t.revoke("x", 0);
        assert!(
            t.commit_positions(true).is_empty(),
            "not ours to commit now"
        );
        assert_eq!(
            t.resume_at("x", 0),
            Some(7),
            "6 is still in the engine's care"
        );
        assert_eq!(t.resume_at("y", 0), None);
        drop(b);
        assert_eq!(t.commit_positions(false), vec![(Arc::from("x"), 0, 7)]);
    }

    #[test]
    fn a_ticket_from_before_a_forget_does_not_release_the_offset_read_again() {
        let t = OffsetTracker::new();
        let old = t.track("x", 0, 5);
        t.forget("x", 0);
        assert_eq!(t.outstanding(), 0, "forgotten");
        assert_eq!(
            t.resume_at("x", 0),
            None,
            "read again from the committed offset"
        );
        let again = t.track("x", 0, 5);
        drop(old);
        assert_eq!(
            t.outstanding(),
            1,
            "the offset read again is still in the engine's care"
        );
        assert!(t.commit_positions(false).is_empty());
        drop(again);
        assert_eq!(t.commit_positions(false), vec![(Arc::from("x"), 0, 6)]);
    }

    #[test]
    fn handled_positions_are_found_by_name() {
        let t = OffsetTracker::new();
        let _a = t.track("x", 2, 40);
        assert_eq!(t.handled("x", 2), None);
        t.mark_handled("x", 2, 40);
        assert_eq!(t.handled("x", 2), Some(41));
        assert_eq!(t.handled("x", 3), None);
        assert_eq!(t.handled("y", 2), None);
    }

    #[test]
    fn clones_hold_the_offset_until_all_are_dropped() {
        let t = OffsetTracker::new();
        let a = t.track("x", 1, 0);
        let a2 = a.clone();
        drop(a);
        assert_eq!(t.outstanding(), 1);
        drop(a2);
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.commit_positions(false), vec![(Arc::from("x"), 1, 1)]);
    }
}
