//! Commands an FL has been given and not yet finished with, plus the blacklist of timed-out
//! correlation ids. Plain data owned by one `FlProxy`: it lives in the actor's state, so it
//! survives a supervisor restart (actix keeps the actor value and restarts its context).
//!
//! Controllers reuse correlation ids (one operation, several switch commands), so an id maps to
//! a queue of entries: an ack or answer settles the oldest one. Deadlines differ by class
//! (`timeouts.by_class`) and are re-armed by chunks, so they sit in a min-heap: O(log n) per
//! command, no timer per command; a re-armed or settled entry leaves a stale heap row that
//! expiry skips.
//!
//! Sized for a million pending commands: entries live in a slab that grows by chunks (no
//! hashing, no per-entry allocation beyond the correlation id, no copy of the table when it
//! grows: [`ChunkedSlab`]), and the index by correlation id is a bare hash table
//! of slab slots (8 bytes a slot; the id is read from the entry, and a reused id simply has
//! several slots). It is hashed with foldhash: seeded per process, several times faster than
//! SipHash, and correlation ids come from the deployment's own controller services, not from the
//! outside world.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashTable;

use tokio::time::Instant;

use crate::fl::chunked_slab::ChunkedSlab;
use crate::fl::liveness::Delivered;
use crate::messages::MultiSwitchPort;
use crate::protocol::Requester;
use crate::runtime::obligation::Obligation;
use crate::runtime::outbox::Ticket;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum State {
    /// Forwarded; the FL must ack or answer before the ack deadline.
    AwaitingAck,
    /// Acked; the router keeps the reply-to for the answer until the answer deadline.
    Acked,
}

#[derive(Debug)]
pub struct Entry {
    pub correlation_id: Box<str>,
    pub requester: Requester,
    pub switch_id: Arc<str>,
    /// Holds the command's offset until its final answer (or the router's error) is delivered.
    pub ticket: Ticket,
    pub state: State,
    pub since: Instant,
    /// Set for one FL's part of a multi-switch command: answers and failures go there (boxed:
    /// 8 bytes in every entry, for the few that are parts).
    pub multi: Option<Box<MultiSwitchPort>>,
    deadline: Instant,
    /// The first-answer timeout this command was given (its class's, or `timeouts.ack`), in
    /// milliseconds (4 bytes instead of 16; see [`Entry::timeout`]).
    timeout_ms: u32,
    /// When the forwarded command reached Kafka: the first-answer deadline runs from then
    /// (None: known delivered, e.g. adopted after a restart).
    delivered: Option<Delivered>,
    /// Boxed: 8 bytes in every entry instead of 48, for the few commands answered in chunks.
    #[allow(clippy::box_collection)]
    chain_seen: Option<Box<HashSet<u64>>>,
    /// Tells this entry's heap rows from those of an earlier entry in the same slab slot.
    seq: u64,
    /// The final answer owed (zero-sized).
    pub owed: Obligation,
}

impl Entry {
    /// The first-answer timeout this command was given.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeout_ms))
    }
}

/// What to do with an FL answer for a pending command.
#[derive(Debug)]
pub struct AnswerRoute {
    pub reply_to: Option<Arc<str>>,
    pub switch_id: Arc<str>,
    /// Present when this answer is the command's final one: attach it to the output.
    pub final_ticket: Option<Ticket>,
    pub multi: Option<Box<MultiSwitchPort>>,
    /// Present with `final_ticket`: met once the final answer is sent.
    pub owed: Option<Obligation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No ack and no answer in time: the router answers OPERATION_TIMED_OUT.
    AckTimeout,
    /// Acked but never answered: the router answers OPERATION_TIMED_OUT too.
    AnswerTimeout,
}

/// Slab slots by correlation id (see the module doc). Each row keeps 32 bits of the id's hash
/// beside the slot (8 bytes a row), so growing the table rehashes without reading the entries
/// (that read — a cache miss per entry — was 2 % of the router's CPU at a million pending).
#[derive(Default)]
struct Index {
    table: HashTable<(u32, u32)>,
    hasher: foldhash::fast::RandomState,
}

/// The table's hash of a row: its 32 kept bits in both halves (hashbrown takes the bucket from
/// the low bits and the tag from the top ones).
fn spread(h: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(h)
}

impl Index {
    fn hash(&self, cid: &str) -> u32 {
        self.hasher.hash_one(cid) as u32
    }

    /// Every slot whose entry has this id.
    fn slots<'a>(
        &'a self,
        entries: &'a ChunkedSlab<Entry>,
        cid: &'a str,
    ) -> impl Iterator<Item = usize> + 'a {
        let h = self.hash(cid);
        self.table
            .iter_hash(spread(h))
            .filter(move |&&(rh, _)| rh == h)
            .map(|&(_, s)| s as usize)
            .filter(move |&s| entries.get(s).is_some_and(|e| &*e.correlation_id == cid))
    }

    /// The oldest entry with this id that satisfies `pred`.
    fn oldest(
        &self,
        entries: &ChunkedSlab<Entry>,
        cid: &str,
        pred: impl Fn(&Entry) -> bool,
    ) -> Option<usize> {
        self.slots(entries, cid)
            .filter(|&s| entries.get(s).is_some_and(&pred))
            .min_by_key(|&s| entries.get(s).map_or(u64::MAX, |e| e.seq))
    }

    fn insert(&mut self, cid: &str, slot: usize) {
        let h = self.hash(cid);
        // Slots stay far below 2^32: the pending table is bounded by `max_inflight_commands`.
        let slot = u32::try_from(slot).unwrap_or(u32::MAX);
        self.table
            .insert_unique(spread(h), (h, slot), |&(rh, _)| spread(rh));
    }

    fn remove(&mut self, cid: &str, slot: usize) {
        let h = self.hash(cid);
        if let Ok(found) = self
            .table
            .find_entry(spread(h), |&(_, s)| s as usize == slot)
        {
            found.remove();
        }
    }
}

/// A deadline row: (when, the entry's `seq`, its slab slot).
type Row = Reverse<(Instant, u64, usize)>;

#[derive(Default)]
pub struct PendingTable {
    next_seq: u64,
    entries: ChunkedSlab<Entry>,
    by_cid: Index,
    ack_deadlines: BinaryHeap<Row>,
    answer_deadlines: BinaryHeap<Row>,
}

impl PendingTable {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, cid: &str) -> bool {
        self.by_cid.slots(&self.entries, cid).next().is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().map(|(_, e)| e)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        correlation_id: &str,
        requester: Requester,
        switch_id: Arc<str>,
        ticket: Ticket,
        multi: Option<MultiSwitchPort>,
        delivered: Option<Delivered>,
        now: Instant,
        ack_timeout: Duration,
        owed: Obligation,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let deadline = now + ack_timeout;
        let slot = self.entries.insert(Entry {
            correlation_id: correlation_id.into(),
            requester,
            switch_id,
            ticket,
            state: State::AwaitingAck,
            since: now,
            multi: multi.map(Box::new),
            deadline,
            // Saturates at ~49 days: longer is "never" for a command deadline.
            timeout_ms: u32::try_from(ack_timeout.as_millis()).unwrap_or(u32::MAX),
            delivered,
            chain_seen: None,
            seq,
            owed,
        });
        self.by_cid.insert(correlation_id, slot);
        self.ack_deadlines.push(Reverse((deadline, seq, slot)));
    }

    /// Rebuilds the id index and the deadline queues from the entries. The entries are the
    /// truth; the rest is derived, and an update cut short (a failure caught in the middle of
    /// a handler, see `FlProxy::guarded`) may have left it out of step.
    pub fn reindex(&mut self) {
        self.by_cid.table.clear();
        self.ack_deadlines.clear();
        self.answer_deadlines.clear();
        for (slot, e) in self.entries.iter() {
            self.by_cid.insert(&e.correlation_id, slot);
            let row = Reverse((e.deadline, e.seq, slot));
            match e.state {
                State::AwaitingAck => self.ack_deadlines.push(row),
                State::Acked => self.answer_deadlines.push(row),
            }
        }
    }

    /// Marks the oldest un-acked command with this id as acked. False when none was waiting.
    pub fn ack(&mut self, cid: &str, now: Instant, answer_timeout: Duration) -> bool {
        let Some(slot) = self
            .by_cid
            .oldest(&self.entries, cid, |e| e.state == State::AwaitingAck)
        else {
            return false;
        };
        if let Some(e) = self.entries.get_mut(slot) {
            e.state = State::Acked;
            e.deadline = now + answer_timeout;
            self.answer_deadlines
                .push(Reverse((e.deadline, e.seq, slot)));
        }
        true
    }

    /// Routes an answer to the oldest command with this id. `chain` is (index, total) for
    /// chunked answers: the command is final once every index has arrived, and each chunk
    /// before that pushes its deadline out (a long dump is an FL at work, not a silent one).
    pub fn answer(
        &mut self,
        cid: &str,
        chain: Option<(u64, u64)>,
        now: Instant,
        answer_timeout: Duration,
    ) -> Option<AnswerRoute> {
        let slot = self.by_cid.oldest(&self.entries, cid, |_| true)?;
        let entry = self.entries.get_mut(slot)?;
        let is_final = match chain {
            None => true,
            Some((_, 0)) => true,
            Some((index, total)) => {
                let seen = entry.chain_seen.get_or_insert_with(Default::default);
                seen.insert(index);
                seen.len() as u64 >= total
            }
        };
        if !is_final {
            // The old heap row goes stale and is skipped by `expire`.
            let (queue, timeout) = match entry.state {
                // Its own class's first-answer deadline again (`Settings::answer_deadline`).
                State::AwaitingAck => (&mut self.ack_deadlines, entry.timeout()),
                State::Acked => (&mut self.answer_deadlines, answer_timeout),
            };
            entry.deadline = now + timeout;
            queue.push(Reverse((entry.deadline, entry.seq, slot)));
            return Some(AnswerRoute {
                reply_to: entry.requester.reply_to.clone(),
                switch_id: entry.switch_id.clone(),
                final_ticket: None,
                multi: entry.multi.clone(),
                owed: None,
            });
        }
        let entry = self.remove(slot)?;
        Some(AnswerRoute {
            reply_to: entry.requester.reply_to,
            switch_id: entry.switch_id,
            final_ticket: Some(entry.ticket),
            multi: entry.multi,
            owed: Some(entry.owed),
        })
    }

    /// Removes and returns every command whose deadline has passed.
    pub fn expire(&mut self, now: Instant) -> Vec<(Expiry, Entry)> {
        let mut out = Vec::new();
        let mut due = Vec::new();
        for kind in [Expiry::AckTimeout, Expiry::AnswerTimeout] {
            let queue = match kind {
                Expiry::AckTimeout => &mut self.ack_deadlines,
                Expiry::AnswerTimeout => &mut self.answer_deadlines,
            };
            due.clear();
            while let Some(&Reverse((deadline, seq, slot))) = queue.peek() {
                if deadline > now {
                    break;
                }
                queue.pop();
                due.push((deadline, seq, slot));
            }
            for &(deadline, seq, slot) in &due {
                // Stale rows (entry answered, its slot reused, or re-armed) are skipped.
                let Some(e) = self.entries.get_mut(slot) else {
                    continue;
                };
                if e.seq != seq
                    || e.deadline != deadline
                    || (e.state == State::AwaitingAck) != (kind == Expiry::AckTimeout)
                {
                    continue;
                }
                // A first-answer deadline runs from delivery: not delivered yet, or delivered
                // later than forwarded, it moves out.
                if kind == Expiry::AckTimeout {
                    if let Some(d) = &e.delivered {
                        let due_at = d.at().map_or(now + e.timeout(), |at| at + e.timeout());
                        if due_at > now {
                            e.deadline = due_at;
                            self.ack_deadlines.push(Reverse((due_at, seq, slot)));
                            continue;
                        }
                    }
                }
                out.extend(self.remove(slot).map(|e| (kind, e)));
            }
        }
        out
    }

    /// Removes the single-switch commands for `switch` (it failed over to another FL); parts of
    /// multi-switch commands stay (their answer covers other switches too).
    pub fn drain_switch(&mut self, switch: &str) -> Vec<Entry> {
        let mut slots: Vec<(u64, usize)> = self
            .entries
            .iter()
            .filter(|(_, e)| &*e.switch_id == switch && e.multi.is_none())
            .map(|(slot, e)| (e.seq, slot))
            .collect();
        slots.sort_unstable();
        // Their heap rows become stale and are skipped by `expire`.
        slots
            .into_iter()
            .filter_map(|(_, slot)| self.remove(slot))
            .collect()
    }

    /// Removes every entry (an FL outage fails them all at once), oldest first.
    pub fn drain(&mut self) -> Vec<Entry> {
        self.by_cid.table.clear();
        self.ack_deadlines.clear();
        self.answer_deadlines.clear();
        let mut v: Vec<Entry> = self.entries.take_all();
        v.sort_by_key(|e| e.seq);
        v
    }

    fn remove(&mut self, slot: usize) -> Option<Entry> {
        let entry = self.entries.try_remove(slot)?;
        self.by_cid.remove(&entry.correlation_id, slot);
        Some(entry)
    }
}

/// Correlation ids the router has already answered with a timeout; late FL messages are dropped.
#[derive(Default)]
pub struct Blacklist {
    until: HashMap<Arc<str>, Instant, foldhash::fast::RandomState>,
    order: VecDeque<(Instant, Arc<str>)>,
}

impl Blacklist {
    pub fn insert(&mut self, cid: &str, now: Instant, ttl: Duration) {
        let until = now + ttl;
        let cid: Arc<str> = Arc::from(cid);
        self.until.insert(cid.clone(), until);
        self.order.push_back((until, cid));
    }

    pub fn contains(&self, cid: &str, now: Instant) -> bool {
        matches!(self.until.get(cid), Some(&until) if until > now)
    }

    pub fn purge(&mut self, now: Instant) {
        while let Some((until, _)) = self.order.front() {
            if *until > now {
                break;
            }
            if let Some((until, cid)) = self.order.pop_front() {
                if self.until.get(&cid) == Some(&until) {
                    self.until.remove(&cid);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACK: Duration = Duration::from_secs(5);
    const ANSWER: Duration = Duration::from_secs(30);

    fn table_with(cids: &[&str], now: Instant) -> PendingTable {
        let mut t = PendingTable::default();
        for c in cids {
            t.insert(
                c,
                Requester {
                    reply_to: Some(format!("reply.{c}").into()),
                    ..Requester::default()
                },
                "s".into(),
                Ticket::none(),
                None,
                None,
                now,
                ACK,
                Obligation::new(),
            );
        }
        t
    }

    #[test]
    fn reindex_rebuilds_what_an_update_cut_short_lost() {
        let now = Instant::now();
        let mut t = table_with(&["a", "b"], now);
        assert!(t.ack("b", now, ANSWER));
        // An update cut short: the index and the queues lost track of the entries.
        t.by_cid.table.clear();
        t.ack_deadlines.clear();
        t.answer_deadlines.clear();
        assert!(!t.contains("a"));
        t.reindex();
        assert!(t.contains("a") && t.contains("b"));
        let mut due: Vec<_> = t
            .expire(now + ANSWER + ACK)
            .into_iter()
            .map(|(kind, e)| {
                e.owed.met(crate::runtime::obligation::Met::RouterAnswered);
                (e.correlation_id.to_string(), kind)
            })
            .collect();
        due.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(
            due,
            vec![
                ("a".to_string(), Expiry::AckTimeout),
                ("b".to_string(), Expiry::AnswerTimeout)
            ]
        );
        assert!(t.is_empty());
    }

    #[test]
    fn reused_correlation_ids_settle_oldest_first() {
        let now = Instant::now();
        let mut t = PendingTable::default();
        t.insert(
            "c",
            Requester {
                reply_to: Some("r1".into()),
                ..Requester::default()
            },
            "s1".into(),
            Ticket::none(),
            None,
            None,
            now,
            ACK,
            Obligation::new(),
        );
        t.insert(
            "c",
            Requester {
                reply_to: Some("r2".into()),
                ..Requester::default()
            },
            "s2".into(),
            Ticket::none(),
            None,
            None,
            now,
            ACK,
            Obligation::new(),
        );
        assert_eq!(
            t.answer("c", None, now, ANSWER)
                .unwrap()
                .reply_to
                .as_deref(),
            Some("r1")
        );
        assert_eq!(
            t.answer("c", None, now, ANSWER)
                .unwrap()
                .reply_to
                .as_deref(),
            Some("r2")
        );
        assert!(t.answer("c", None, now, ANSWER).is_none());
        assert!(t.is_empty());
    }

    #[test]
    fn ack_timeout_only_for_unacked_and_after_deadline() {
        let now = Instant::now();
        let mut t = table_with(&["a", "b"], now);
        assert!(t.ack("a", now, ANSWER));
        assert!(t.expire(now + ACK - Duration::from_millis(1)).is_empty());
        let due = t.expire(now + ACK);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, Expiry::AckTimeout);
        assert_eq!(&*due[0].1.correlation_id, "b");
        let later = t.expire(now + ANSWER + ACK);
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].0, Expiry::AnswerTimeout);
        assert!(t.is_empty());
    }

    #[test]
    fn chain_answer_is_final_when_all_indexes_seen_duplicates_ignored() {
        let now = Instant::now();
        let mut t = table_with(&["c"], now);
        assert!(t
            .answer("c", Some((0, 3)), now, ANSWER)
            .unwrap()
            .final_ticket
            .is_none());
        assert!(t
            .answer("c", Some((0, 3)), now, ANSWER)
            .unwrap()
            .final_ticket
            .is_none());
        assert!(t
            .answer("c", Some((2, 3)), now, ANSWER)
            .unwrap()
            .final_ticket
            .is_none());
        assert!(t
            .answer("c", Some((1, 3)), now, ANSWER)
            .unwrap()
            .final_ticket
            .is_some());
        assert!(t.is_empty());
        let mut t = table_with(&["e"], now);
        assert!(t
            .answer("e", Some((0, 0)), now, ANSWER)
            .unwrap()
            .final_ticket
            .is_some());
    }

    #[test]
    fn each_chain_chunk_pushes_the_deadline_out() {
        let now = Instant::now();
        let mut t = table_with(&["c"], now);
        let step = ACK - Duration::from_millis(1);
        // 20 chunks, each within the ack timeout of the previous one: 20 x ~5 s in total.
        for i in 0..19 {
            let at = now + step * (i + 1);
            assert!(t.expire(at).is_empty(), "chunk {i} kept the command alive");
            assert!(t.answer("c", Some((i as u64, 20)), at, ANSWER).is_some());
        }
        let last = now + step * 20;
        assert!(t.expire(last).is_empty());
        let done = t.answer("c", Some((19, 20)), last, ANSWER).unwrap();
        assert!(done.final_ticket.is_some(), "the complete chain is final");
        assert!(t.is_empty());
        // A chain that stops: the deadline runs from its last chunk.
        let mut t = table_with(&["d"], now);
        t.answer("d", Some((0, 3)), now + step, ANSWER);
        assert!(t
            .expire(now + step + ACK - Duration::from_millis(1))
            .is_empty());
        assert_eq!(t.expire(now + step + ACK).len(), 1);
    }

    #[tokio::test]
    async fn the_first_answer_deadline_runs_from_delivery() {
        tokio::time::pause();
        let epoch = Instant::now();
        let now = Instant::now();
        let mut t = PendingTable::default();
        let (delivered, ticket) = Delivered::new(epoch);
        t.insert(
            "c",
            Requester::default(),
            "s".into(),
            Ticket::none(),
            None,
            Some(delivered),
            now,
            ACK,
            Obligation::new(),
        );
        // Held in the producer (a leader failover): never due while undelivered.
        tokio::time::advance(ACK * 3).await;
        assert!(t.expire(Instant::now()).is_empty());
        // Delivered now: the full timeout from here.
        drop(ticket);
        let at = Instant::now();
        assert!(t.expire(at + ACK - Duration::from_millis(1)).is_empty());
        assert_eq!(t.expire(at + ACK + Duration::from_millis(1)).len(), 1);
    }

    #[test]
    fn blacklist_expires_after_ttl() {
        let now = Instant::now();
        let mut b = Blacklist::default();
        b.insert("x", now, Duration::from_secs(60));
        assert!(b.contains("x", now + Duration::from_secs(59)));
        assert!(!b.contains("x", now + Duration::from_secs(60)));
        b.purge(now + Duration::from_secs(61));
        assert!(b.is_empty());
    }
}
