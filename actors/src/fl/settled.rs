//! `RecentlySettled`: the correlation ids of the last commands an FL proxy settled, in fixed
//! memory. A command forwarded twice — replayed after a restart before the router knew its
//! first forward, or adopted again after a rebalance — is answered twice by its FL; the second
//! answer finds no pending command and would be routed by kind (to a default topic, where
//! nobody waits for it). With this set it is recognised as a duplicate and dropped.
//!
//! Only 64-bit hashes are kept (8 bytes per id in the ring, a few more in the set); a
//! collision would drop an unmatched message whose id hashes like a settled one — 2^-64 per
//! pair, less than the chance of the FL itself reusing an id.

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;

pub struct RecentlySettled {
    hasher: foldhash::fast::RandomState,
    set: HashSet<u64, foldhash::fast::RandomState>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl RecentlySettled {
    /// Remembers the last `capacity` ids (0: remembers nothing).
    pub fn new(capacity: usize) -> Self {
        Self {
            hasher: foldhash::fast::RandomState::default(),
            set: HashSet::default(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub fn insert(&mut self, cid: &str) {
        if self.capacity == 0 {
            return;
        }
        let h = self.hasher.hash_one(cid);
        if !self.set.insert(h) {
            return;
        }
        self.order.push_back(h);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    pub fn contains(&self, cid: &str) -> bool {
        self.capacity > 0 && self.set.contains(&self.hasher.hash_one(cid))
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_ids_only() {
        let mut r = RecentlySettled::new(2);
        r.insert("a");
        r.insert("b");
        r.insert("a"); // already there: no second slot
        assert!(r.contains("a") && r.contains("b"));
        r.insert("c");
        assert!(!r.contains("a"), "the oldest went");
        assert!(r.contains("b") && r.contains("c"));
        assert_eq!(r.len(), 2);
        let off = RecentlySettled::new(0);
        assert!(!off.contains("a"));
    }
}
