//! The switch → FL map: which FL currently manages each switch.
//!
//! Owned by the [`crate::dispatcher::Dispatcher`] and changed only by FL switch events (and, later,
//! sync chains and outages), so there is one writer and no locking on the command path.

use std::collections::HashMap;

/// Index of an FL in the engine's FL list (cheaper to store than the id string).
pub type FlIndex = usize;

#[derive(Debug, Default)]
pub struct SwitchMap {
    owner: HashMap<String, FlIndex>,
}

/// What a map change did, for logging and counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    /// The switch moved from another FL (the previous owner is given).
    Moved(FlIndex),
    Unchanged,
    Removed,
    /// A down event from an FL that does not own the switch: ignored.
    NotOwner,
}

impl SwitchMap {
    pub fn get(&self, switch: &str) -> Option<FlIndex> {
        self.owner.get(switch).copied()
    }

    pub fn connect(&mut self, switch: &str, fl: FlIndex) -> Change {
        match self.owner.insert(switch.to_string(), fl) {
            None => Change::Added,
            Some(prev) if prev == fl => Change::Unchanged,
            Some(prev) => Change::Moved(prev),
        }
    }

    /// Unmaps the switch only if `fl` owns it: a late disconnect from the old FL after a
    /// switch moved must not unmap it from the new one.
    pub fn disconnect(&mut self, switch: &str, fl: FlIndex) -> Change {
        match self.owner.get(switch) {
            Some(&owner) if owner == fl => {
                self.owner.remove(switch);
                Change::Removed
            }
            _ => Change::NotOwner,
        }
    }

    pub fn switches_of(&self, fl: FlIndex) -> Vec<String> {
        let mut v: Vec<_> = self
            .owner
            .iter()
            .filter(|(_, &o)| o == fl)
            .map(|(s, _)| s.clone())
            .collect();
        v.sort();
        v
    }

    /// How many switches each of `fls` FLs manages, in one pass.
    pub fn counts(&self, fls: usize) -> Vec<usize> {
        let mut c = vec![0; fls];
        for &fl in self.owner.values() {
            if let Some(n) = c.get_mut(fl) {
                *n += 1;
            }
        }
        c
    }

    pub fn len(&self) -> usize {
        self.owner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owner.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_move_and_owner_only_disconnect() {
        let mut m = SwitchMap::default();
        assert_eq!(m.connect("s1", 0), Change::Added);
        assert_eq!(m.connect("s1", 0), Change::Unchanged);
        assert_eq!(m.connect("s1", 1), Change::Moved(0));
        assert_eq!(m.disconnect("s1", 0), Change::NotOwner);
        assert_eq!(m.get("s1"), Some(1));
        assert_eq!(m.disconnect("s1", 1), Change::Removed);
        assert_eq!(m.get("s1"), None);
        assert!(m.is_empty());
    }
}
