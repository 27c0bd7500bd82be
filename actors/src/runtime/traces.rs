//! [`Traces`]: the recent lives of commands, by correlation id, for an operator who asks "what
//! happened to my command?" (`GET /api/commands/{correlation_id}`, `fl-router trace`).
//!
//! Every actor that does something to a command records a [`Step`] with its wall-clock time:
//! received (topic, partition, offset, key), forwarded to an FL's read topic, handed over to
//! the FL's owner, adopted, delivered by Kafka, acked and answered by the FL, answered by the
//! router (timed out, failed over, not found, …), dead-lettered, the reply delivered. The
//! shell adds the steps only it sees (deliveries, through a [`DeliveryNote`] on the outgoing
//! message; offset commits, kept per partition and matched when a life is read).
//!
//! The store is bounded: each recording thread appends to its own ring (no lock another thread
//! takes on the hot path), all rings together hold at most `limits.traced_commands` × 5 steps
//! (plus a floor per ring), the oldest overwritten first. Reading a life scans the rings for
//! its hashed id: an operator's question pays, not the command. A life shows at most
//! [`MAX_STEPS`] steps (a long chain of answers counts the rest). About 100 bytes per step, ~0.5
//! KiB per command (`cargo bench -p fl-router-actors --bench trace` measures both). Correlation
//! ids live here and in logs only, never in metric labels.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Serialize, Serializer};

use crate::runtime::clock::now_millis;

/// Steps kept per command; later ones are counted in [`Life::more_steps`].
pub const MAX_STEPS: usize = 24;
/// Commits kept per partition to date a command's offset commit.
const COMMITS_KEPT: usize = 4096;

/// One thing that happened to a command.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Read from a controller-side topic.
    Received {
        topic: Arc<str>,
        partition: i32,
        offset: i64,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "lossy_key")]
        key: Option<Bytes>,
    },
    /// Given to the FL that manages its switch, on its read topic (the lane's).
    Forwarded {
        fl: Arc<str>,
        switch: Arc<str>,
        topic: Arc<str>,
    },
    /// Forwarded for an FL another instance owns; that instance adopts it.
    HandedOver { fl: Arc<str>, topic: Arc<str> },
    /// Read back from the FL's read topic and kept pending here (a cluster instance owning
    /// the FL, or a command read again after a restart).
    Adopted { fl: Arc<str> },
    /// Multi-switch: sent to this many FLs (and switches no FL could be asked for); the
    /// router assembles one answer.
    FannedOut { fls: usize, unsent: usize },
    /// Multi-switch: the assembled answer went to the requester.
    Assembled { complete: bool, topic: Arc<str> },
    /// No FL has the switch now; it was lost recently: the command waits for a reconnect.
    WaitingForReconnect { switch: Arc<str>, up_to_ms: u64 },
    /// A message for this command was acknowledged by Kafka.
    Delivered {
        what: Delivery,
        topic: Arc<str>,
        partition: i32,
        offset: i64,
    },
    /// Kafka refused it for good; it went to the dead-letter topic instead.
    DeliveryFailed {
        what: Delivery,
        topic: Arc<str>,
        error: Box<str>,
    },
    /// The FL acknowledged it (its answer is still to come).
    AckedByFl { fl: Arc<str> },
    /// The FL's answer (or one chunk of a chain) went to the requester.
    Answered {
        fl: Arc<str>,
        topic: Arc<str>,
        last: bool,
    },
    /// The router answered itself: OPERATION_TIMED_OUT (no answer in time, FL offline, switch
    /// failed over), NOT_FOUND (no FL manages the switch), REQUEST_INVALID.
    RouterAnswered {
        error: &'static str,
        message: Box<str>,
        topic: Arc<str>,
    },
    /// An answer came after the router had given up (or a second one): dropped.
    LateAnswerDropped { fl: Arc<str> },
    /// The input could not be handled and went to the dead-letter topic.
    DeadLettered { reason: Box<str> },
    /// The input's offset was committed (added when the life is read).
    OffsetCommitted {
        topic: Arc<str>,
        partition: i32,
        /// The committed position (the next offset to read), the first one past this input.
        position: i64,
        /// True when the commit is older than the kept commits: it happened at or before `at`.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        at_or_before: bool,
    },
}

/// A Kafka key as text (OpenKilda's are text; anything else shows replacement characters).
fn lossy_key<S: Serializer>(key: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
    match key {
        Some(k) => s.serialize_str(&String::from_utf8_lossy(k)),
        None => s.serialize_none(),
    }
}

/// Which of a command's outgoing messages a delivery step is about.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// The command on the FL's read topic.
    Forward,
    /// The answer or the router's error on the requester's topic.
    Reply,
}

/// A step with its wall-clock time (ms since the epoch).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stamped {
    pub at_ms: u64,
    #[serde(flatten)]
    pub step: Step,
}

/// What is known of one command.
#[derive(Debug, Clone, Serialize)]
pub struct Life {
    pub correlation_id: Box<str>,
    pub steps: Vec<Stamped>,
    /// Steps beyond [`MAX_STEPS`], not kept.
    pub more_steps: u32,
}

impl Life {
    /// What became of the command, in a sentence: its last decisive step.
    pub fn outcome(&self) -> String {
        for st in self.steps.iter().rev() {
            match &st.step {
                Step::RouterAnswered { error, message, .. } => {
                    return format!("the router answered {error}: {message}")
                }
                Step::Answered { fl, last: true, .. } => return format!("answered by FL {fl}"),
                Step::Assembled { complete, .. } => {
                    return format!(
                        "multi-switch result sent ({})",
                        if *complete { "complete" } else { "incomplete" }
                    )
                }
                Step::DeadLettered { reason } => return format!("dead-lettered: {reason}"),
                Step::HandedOver { fl, .. } => {
                    return format!(
                    "handed over to the router instance that owns FL {fl}: its trace has the rest"
                )
                }
                _ => {}
            }
        }
        let routed = self.steps.iter().any(|s| {
            matches!(
                s.step,
                Step::Forwarded { .. } | Step::Adopted { .. } | Step::FannedOut { .. }
            )
        });
        if routed {
            "no outcome yet: waiting for the FL".into()
        } else {
            "no outcome yet".into()
        }
    }
}

/// The store's bounds and reach, for the API's "older than the window" answer.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Commands the store is sized for (`limits.traced_commands`).
    pub commands: usize,
    /// Steps kept at most, all threads together.
    pub capacity_steps: usize,
    pub kept_steps: usize,
    /// Steps before this time may have been overwritten (None: nothing overwritten yet): a
    /// command first seen before it may be gone or incomplete.
    pub complete_from_ms: Option<u64>,
}

/// One recorded step, filed under its command's hashed id.
struct Entry {
    cid: u64,
    stamped: Stamped,
}

/// One recording thread's steps, oldest overwritten first once it is full.
#[derive(Default)]
struct Ring {
    entries: Vec<Entry>,
    /// No longer growing: each step overwrites the oldest, at `next`.
    full: bool,
    next: usize,
    /// The newest step overwritten so far.
    overwritten_up_to_ms: Option<u64>,
}

pub struct Traces {
    /// One per recording thread (threads beyond `RINGS` share): a step is an append under
    /// a lock no other thread takes, so the hot path neither waits nor moves cache lines.
    rings: Box<[Mutex<Ring>]>,
    commands: usize,
    /// Steps all rings may hold together; a ring grows while the budget lasts.
    budget: usize,
    used: AtomicUsize,
    hasher: foldhash::fast::FixedState,
    /// Per (topic, partition): commits in order, (position, ms).
    commits: Mutex<HashMap<(Arc<str>, i32), CommitLog>>,
}

/// One partition's commits in order: (position, ms).
type CommitLog = VecDeque<(i64, u64)>;

const RINGS: usize = 32;
/// Steps a ring may always hold, budget or not (a thread that starts recording late).
const RING_FLOOR: usize = 1024;
/// Steps budgeted per traced command: received, forwarded, delivered, answered, delivered.
const STEPS_PER_COMMAND: usize = 5;

fn ring_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static RING: usize = NEXT.fetch_add(1, Relaxed) % RINGS;
    }
    RING.with(|r| *r)
}

/// Order of steps recorded in the same millisecond on different threads: the life's order.
fn rank(step: &Step) -> u8 {
    match step {
        Step::Received { .. } => 0,
        Step::Forwarded { .. }
        | Step::HandedOver { .. }
        | Step::Adopted { .. }
        | Step::FannedOut { .. }
        | Step::WaitingForReconnect { .. } => 1,
        Step::Delivered {
            what: Delivery::Forward,
            ..
        }
        | Step::DeliveryFailed {
            what: Delivery::Forward,
            ..
        } => 2,
        Step::AckedByFl { .. } => 3,
        Step::Answered { .. }
        | Step::RouterAnswered { .. }
        | Step::Assembled { .. }
        | Step::DeadLettered { .. } => 4,
        Step::Delivered { .. } | Step::DeliveryFailed { .. } => 5,
        Step::LateAnswerDropped { .. } => 6,
        Step::OffsetCommitted { .. } => 7,
    }
}

impl Traces {
    /// Sized for about the last `commands` commands (0 = records nothing).
    pub fn new(commands: usize) -> Arc<Self> {
        Arc::new(Self {
            rings: (0..RINGS).map(|_| Mutex::new(Ring::default())).collect(),
            commands,
            budget: commands * STEPS_PER_COMMAND,
            used: AtomicUsize::new(0),
            hasher: foldhash::fast::FixedState::with_seed(0x5eed_f10e),
            commits: Mutex::new(HashMap::new()),
        })
    }

    pub fn enabled(&self) -> bool {
        self.commands > 0
    }

    pub fn hash(&self, cid: &str) -> u64 {
        self.hasher.hash_one(cid)
    }

    /// Records `step` for the command `cid` now.
    pub fn record(&self, cid: &str, step: Step) {
        if self.enabled() && !cid.is_empty() {
            self.push(self.hash(cid), now_millis(), step);
        }
    }

    pub fn record_at(&self, cid: &str, at_ms: u64, step: Step) {
        if self.enabled() && !cid.is_empty() {
            self.push(self.hash(cid), at_ms, step);
        }
    }

    /// Records `step` for the command whose id hashes to `cid` ([`Traces::hash`]).
    pub fn record_hashed(&self, cid: u64, step: Step) {
        if self.enabled() {
            self.push(cid, now_millis(), step);
        }
    }

    fn push(&self, cid: u64, at_ms: u64, step: Step) {
        let entry = Entry {
            cid,
            stamped: Stamped { at_ms, step },
        };
        // A poisoned lock only means a panic elsewhere mid-record; the data is still a trace.
        let mut ring = self.rings[ring_of_this_thread()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if !ring.full {
            // Growing: while the shared budget lasts, and always up to the floor.
            let budgeted = self
                .used
                .fetch_update(Relaxed, Relaxed, |u| (u < self.budget).then_some(u + 1))
                .is_ok();
            if budgeted || ring.entries.len() < RING_FLOOR {
                ring.entries.push(entry);
                return;
            }
            ring.full = true;
            ring.next = 0;
        }
        let at = ring.next;
        let old = std::mem::replace(&mut ring.entries[at], entry);
        ring.next = (at + 1) % ring.entries.len();
        let newest = ring
            .overwritten_up_to_ms
            .unwrap_or(0)
            .max(old.stamped.at_ms);
        ring.overwritten_up_to_ms = Some(newest);
    }

    /// The shell committed `position` (the next offset to read) on a partition.
    pub fn committed(&self, topic: &str, partition: i32, position: i64) {
        if !self.enabled() {
            return;
        }
        let now = now_millis();
        let mut c = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        let log = c.entry((Arc::from(topic), partition)).or_default();
        if log.back().is_some_and(|&(p, _)| p >= position) {
            return;
        }
        log.push_back((position, now));
        if log.len() > COMMITS_KEPT {
            log.pop_front();
        }
    }

    /// The life of `cid`, its offset commits added, steps in time order; None when no step of
    /// it is kept. (A scan of every ring: an operator's question, not the hot path.)
    pub fn life(&self, cid: &str) -> Option<Life> {
        let h = self.hash(cid);
        let mut steps: Vec<Stamped> = Vec::new();
        for ring in self.rings.iter() {
            let r = ring.lock().unwrap_or_else(|p| p.into_inner());
            steps.extend(
                r.entries
                    .iter()
                    .filter(|e| e.cid == h)
                    .map(|e| e.stamped.clone()),
            );
        }
        if steps.is_empty() {
            return None;
        }
        let commits = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        let mut added = Vec::new();
        for st in &steps {
            let Step::Received {
                topic,
                partition,
                offset,
                ..
            } = &st.step
            else {
                continue;
            };
            let Some(log) = commits.get(&(topic.clone(), *partition)) else {
                continue;
            };
            // The first commit whose position is past this offset.
            let i = log.partition_point(|&(p, _)| p <= *offset);
            if let Some(&(position, at_ms)) = log.get(i) {
                added.push(Stamped {
                    at_ms,
                    step: Step::OffsetCommitted {
                        topic: topic.clone(),
                        partition: *partition,
                        position,
                        at_or_before: i == 0 && log.len() >= COMMITS_KEPT,
                    },
                });
            }
        }
        steps.extend(added);
        steps.sort_by_key(|s| (s.at_ms, rank(&s.step)));
        let more_steps = steps.len().saturating_sub(MAX_STEPS) as u32;
        steps.truncate(MAX_STEPS);
        Some(Life {
            correlation_id: cid.into(),
            steps,
            more_steps,
        })
    }

    pub fn window(&self) -> Window {
        let mut kept = 0;
        let mut from: Option<u64> = None;
        for ring in self.rings.iter() {
            let r = ring.lock().unwrap_or_else(|p| p.into_inner());
            kept += r.entries.len();
            if let Some(e) = r.overwritten_up_to_ms {
                from = Some(from.map_or(e, |x| x.max(e)));
            }
        }
        Window {
            commands: self.commands,
            capacity_steps: self.budget + RINGS * RING_FLOOR,
            kept_steps: kept,
            complete_from_ms: from,
        }
    }
}

/// Rides on an outgoing message whose delivery is a step of a command's life: the shell calls
/// [`DeliveryNote::delivered`] or [`DeliveryNote::failed`] from its delivery report.
#[derive(Clone)]
pub struct DeliveryNote {
    traces: Arc<Traces>,
    /// The command's id, hashed ([`Traces::hash`]): no copy of the id per message.
    cid: u64,
    what: Delivery,
    topic: Arc<str>,
}

impl std::fmt::Debug for DeliveryNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeliveryNote({:x}, {:?}, {})",
            self.cid, self.what, self.topic
        )
    }
}

impl DeliveryNote {
    /// None when traces are off or there is no id to file it under.
    pub fn new(traces: &Arc<Traces>, cid: &str, what: Delivery, topic: &Arc<str>) -> Option<Self> {
        (traces.enabled() && !cid.is_empty()).then(|| Self {
            traces: traces.clone(),
            cid: traces.hash(cid),
            what,
            topic: topic.clone(),
        })
    }

    pub fn delivered(&self, partition: i32, offset: i64) {
        self.traces.record_hashed(
            self.cid,
            Step::Delivered {
                what: self.what,
                topic: self.topic.clone(),
                partition,
                offset,
            },
        );
    }

    pub fn failed(&self, error: &str) {
        self.traces.record_hashed(
            self.cid,
            Step::DeliveryFailed {
                what: self.what,
                topic: self.topic.clone(),
                error: error.into(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(offset: i64) -> Step {
        Step::Received {
            topic: Arc::from("cmds"),
            partition: 0,
            offset,
            key: None,
        }
    }

    #[test]
    fn records_steps_in_order_and_adds_the_offset_commit() {
        let t = Traces::new(1000);
        t.record_at("c1", 10, received(5));
        t.record_at(
            "c1",
            20,
            Step::AckedByFl {
                fl: Arc::from("fl1"),
            },
        );
        t.committed("cmds", 0, 3);
        t.committed("cmds", 0, 6);
        let life = t.life("c1").expect("kept");
        assert_eq!(life.steps.len(), 3);
        let last = &life.steps[2].step;
        assert!(
            matches!(last, Step::OffsetCommitted { position: 6, .. }),
            "{last:?}"
        );
        assert!(t.life("c2").is_none());
    }

    #[test]
    fn keeps_a_bounded_window_and_says_how_far_it_reaches() {
        let t = Traces::new(1000);
        let n = (1000 * STEPS_PER_COMMAND + RINGS * RING_FLOOR) as u64 * 2;
        for i in 0..n {
            t.record_at(&format!("c{i}"), i, received(i as i64));
        }
        let w = t.window();
        assert!(w.kept_steps <= w.capacity_steps, "{w:?}");
        assert!(w.complete_from_ms.is_some(), "{w:?}");
        assert!(t.life("c0").is_none(), "the oldest is gone");
        assert!(
            t.life(&format!("c{}", n - 1)).is_some(),
            "the newest is kept"
        );
    }

    #[test]
    fn a_long_life_counts_steps_beyond_the_limit() {
        let t = Traces::new(100);
        for i in 0..MAX_STEPS as u64 + 5 {
            t.record_at("c", i, received(0));
        }
        let life = t.life("c").unwrap();
        assert_eq!(life.steps.len(), MAX_STEPS);
        assert_eq!(life.more_steps, 5);
    }

    #[test]
    fn off_records_nothing() {
        let t = Traces::new(0);
        t.record("c", received(1));
        assert!(t.life("c").is_none());
        assert!(DeliveryNote::new(&t, "c", Delivery::Reply, &Arc::from("r")).is_none());
    }
}
