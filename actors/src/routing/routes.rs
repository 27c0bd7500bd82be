//! [`Routes`]: the switch → active FL table that every command shard reads, on its own thread,
//! without a lock.
//!
//! The dispatcher alone owns the switch map (connections, failover, grace window) and is its
//! only writer: it publishes the active FL of every switch whose active FL changed at the end of
//! each of its handlers ([`crate::routing::switch_map::SwitchMap::publish`]), after the handler's own
//! forwards — so a command a shard routes by a newly published entry cannot overtake a command
//! the dispatcher released for that switch in the same handler. Reads are lock-free
//! (`papaya`: epoch-based reclamation, no reader ever waits for the writer); the switch count
//! is bounded by the deployment, and the writer changes entries only on switch events, rarely
//! compared with commands.
//!
//! Next to the table: per FL, the number of outages the dispatcher has applied. A shard that
//! finds a switch's FL with more outages declared (`Liveness::outages`) than applied leaves the
//! command to the dispatcher, which applies the outage first (no command is routed to an FL
//! already declared offline). And per FL, how many switch connections it has: a sync session
//! tells an empty region's silence from a region that did not answer by it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

type Table = papaya::HashMap<Arc<str>, FlIndex, foldhash::fast::RandomState>;

/// Index of an FL in the engine's FL list (cheaper to store than the id string).
pub type FlIndex = usize;

pub struct Routes {
    table: Table,
    outages_applied: Vec<AtomicU64>,
    connections: Vec<AtomicUsize>,
}

impl Routes {
    pub fn new(fls: usize) -> Self {
        Self {
            table: Table::with_hasher(foldhash::fast::RandomState::default()),
            outages_applied: (0..fls).map(|_| AtomicU64::new(0)).collect(),
            connections: (0..fls).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// The active FL of `switch` (normalised) and the map's shared id for it.
    pub fn get(&self, switch: &str) -> Option<(FlIndex, Arc<str>)> {
        let t = self.table.pin();
        t.get_key_value(switch).map(|(k, fl)| (*fl, k.clone()))
    }

    /// Sets (`Some`) or clears the active FL of `switch`. Only the dispatcher writes.
    pub fn set(&self, switch: Arc<str>, fl: Option<FlIndex>) {
        let t = self.table.pin();
        match fl {
            Some(fl) => {
                t.insert(switch, fl);
            }
            None => {
                t.remove(&*switch);
            }
        }
    }

    /// Outages of FL `fl` the dispatcher has applied to the map.
    pub fn outages_applied(&self, fl: FlIndex) -> u64 {
        self.outages_applied
            .get(fl)
            .map_or(0, |n| n.load(Ordering::Acquire))
    }

    pub fn set_outages_applied(&self, fl: FlIndex, n: u64) {
        if let Some(a) = self.outages_applied.get(fl) {
            a.store(n, Ordering::Release);
        }
    }

    /// Switch connections (any mode) FL `fl` has in the map.
    pub fn connections(&self, fl: FlIndex) -> usize {
        self.connections
            .get(fl)
            .map_or(0, |n| n.load(Ordering::Acquire))
    }

    pub fn set_connections(&self, fl: FlIndex, n: usize) {
        if let Some(a) = self.connections.get(fl) {
            a.store(n, Ordering::Release);
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_clear() {
        let r = Routes::new(2);
        assert_eq!(r.get("s1"), None);
        r.set(Arc::from("s1"), Some(1));
        let (fl, key) = r.get("s1").expect("set");
        assert_eq!((fl, &*key), (1, "s1"));
        r.set(Arc::from("s1"), Some(0));
        assert_eq!(r.get("s1").map(|x| x.0), Some(0));
        r.set(Arc::from("s1"), None);
        assert_eq!(r.get("s1"), None);
        assert!(r.is_empty());
        r.set_outages_applied(1, 3);
        assert_eq!((r.outages_applied(0), r.outages_applied(1)), (0, 3));
    }
}
