//! The switch map: every FL connection of each switch — read-write (RW) or read-only (RO), since
//! when and how it was learned — and the one *active* RW connection that unicast commands go to.
//!
//! Owned by the [`crate::routing::dispatcher::Dispatcher`], so there is one writer and no lock on the
//! command path. Every change returns a [`Transition`] that says what it means for the switch
//! (now managed, failed over, unmanaged, or only its set of connections changed); the dispatcher
//! turns that into notices, stored records and failed-over commands. Choosing the new active FL
//! is deterministic: the best [`Preference`] rank, then the oldest connection, then config order.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use crate::routing::routes::{FlIndex, Routes};
use crate::settings::Mode;

use serde::{Deserialize, Serialize};

/// How a connection was learned (stored with it, shown by the admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Event,
    Sync,
}

#[derive(Debug, Clone)]
pub struct Connection {
    pub fl: FlIndex,
    pub mode: Mode,
    /// Wall-clock milliseconds since the epoch.
    pub since_ms: u64,
    pub via: Via,
    /// When the router last read evidence of it (an event, a dump entry; a restore counts as
    /// old news): a complete dump removes only connections learned before it was requested.
    pub learned: Instant,
    /// `{"switchAddress", "speakerAddress"}` as the FL last reported them (availability notices).
    pub addresses: Option<Arc<serde_json::Value>>,
}

/// What a connection is; when it was last confirmed is bookkeeping, not part of it.
impl PartialEq for Connection {
    fn eq(&self, o: &Self) -> bool {
        (self.fl, self.mode, self.since_ms, self.via) == (o.fl, o.mode, o.since_ms, o.via)
    }
}
impl Eq for Connection {}

/// One switch's connections and its active RW FL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Switch {
    connections: Vec<Connection>,
    active: Option<FlIndex>,
}

impl Switch {
    pub fn active(&self) -> Option<FlIndex> {
        self.active
    }

    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    fn position(&self, fl: FlIndex, mode: Mode) -> Option<usize> {
        self.connections
            .iter()
            .position(|c| c.fl == fl && c.mode == mode)
    }

    fn has_fl(&self, fl: FlIndex) -> bool {
        self.connections.iter().any(|c| c.fl == fl)
    }
}

/// What a change meant for the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The connection was already known: nothing changed.
    Unchanged,
    /// A disconnect for a connection the map does not have: nothing changed.
    Unknown,
    /// The first RW connection: the switch is managed, `to` is active.
    Managed { to: FlIndex },
    /// The active FL lost its RW connection; `to` (another RW connection) is active now.
    FailedOver { from: FlIndex, to: FlIndex },
    /// A more preferred FL connected RW and took over (`failover.return_home`).
    Returned { from: FlIndex, to: FlIndex },
    /// The last RW connection is gone (`from` was active); RO connections may remain.
    Unmanaged { from: FlIndex },
    /// The set of connections changed; the active FL did not.
    Availability,
}

/// Which RW connection becomes active: lower rank wins (`failover.prefer`; unlisted FLs rank
/// after every listed one), and whether a better one takes over when it connects.
#[derive(Debug, Clone, Default)]
pub struct Preference {
    pub rank: Vec<usize>,
    pub return_home: bool,
}

impl Preference {
    fn rank(&self, fl: FlIndex) -> usize {
        self.rank.get(fl).copied().unwrap_or(usize::MAX)
    }
}

/// Keyed by the normalised switch id, shared (`Arc<str>`) with every command for the switch;
/// hashed with foldhash (seeded; switch ids come from the deployment's own FLs).
#[derive(Debug, Default)]
pub struct SwitchMap {
    switches: HashMap<Arc<str>, Switch, foldhash::fast::RandomState>,
    pref: Preference,
    /// Switches whose active FL changed since the last [`SwitchMap::publish`].
    dirty: Vec<Arc<str>>,
    /// Connections per FL (any mode), kept as connections come and go.
    per_fl: Vec<usize>,
}

impl SwitchMap {
    pub fn new(pref: Preference) -> Self {
        Self {
            switches: HashMap::default(),
            pref,
            dirty: Vec::new(),
            per_fl: Vec::new(),
        }
    }

    /// Writes the active FL of every switch whose active FL changed since the last call to
    /// `routes` (the table the command shards read), and each FL's number of connections.
    pub fn publish(&mut self, routes: &Routes) {
        for key in self.dirty.drain(..) {
            routes.set(key.clone(), self.switches.get(&key).and_then(|s| s.active));
        }
        for (fl, n) in self.per_fl.iter().enumerate() {
            routes.set_connections(fl, *n);
        }
    }

    /// Connections FL `fl` has (to any switch, in any mode).
    pub fn connections_of(&self, fl: FlIndex) -> usize {
        self.per_fl.get(fl).copied().unwrap_or(0)
    }

    fn count(per_fl: &mut Vec<usize>, fl: FlIndex, added: bool) {
        if per_fl.len() <= fl {
            per_fl.resize(fl + 1, 0);
        }
        if added {
            per_fl[fl] += 1;
        } else {
            per_fl[fl] = per_fl[fl].saturating_sub(1);
        }
    }

    fn mark(&mut self, switch: &str, t: &Transition) {
        let moved = matches!(
            t,
            Transition::Managed { .. }
                | Transition::Returned { .. }
                | Transition::FailedOver { .. }
                | Transition::Unmanaged { .. }
        );
        if moved {
            if let Some((k, _)) = self.switches.get_key_value(switch) {
                self.dirty.push(k.clone());
            }
        }
    }

    /// The active RW FL of `switch`: where its unicast commands go.
    pub fn active(&self, switch: &str) -> Option<FlIndex> {
        self.switches.get(switch).and_then(|s| s.active)
    }

    /// The map's shared id of `switch`, if it has any connection.
    pub fn key(&self, switch: &str) -> Option<Arc<str>> {
        self.switches.get_key_value(switch).map(|(k, _)| k.clone())
    }

    pub fn get(&self, switch: &str) -> Option<&Switch> {
        self.switches.get(switch)
    }

    pub fn connect(
        &mut self,
        switch: &str,
        fl: FlIndex,
        mode: Mode,
        via: Via,
        now_ms: u64,
    ) -> Transition {
        let t = self.connect_inner(switch, fl, mode, via, now_ms);
        self.mark(switch, &t);
        t
    }

    fn connect_inner(
        &mut self,
        switch: &str,
        fl: FlIndex,
        mode: Mode,
        via: Via,
        now_ms: u64,
    ) -> Transition {
        let pref = &self.pref;
        if !self.switches.contains_key(switch) {
            self.switches.insert(Arc::from(switch), Switch::default());
        }
        let Some(sw) = self.switches.get_mut(switch) else {
            return Transition::Unknown;
        };
        if let Some(i) = sw.position(fl, mode) {
            sw.connections[i].learned = Instant::now();
            return Transition::Unchanged;
        }
        sw.connections.push(Connection {
            fl,
            mode,
            since_ms: now_ms,
            via,
            learned: Instant::now(),
            addresses: None,
        });
        Self::count(&mut self.per_fl, fl, true);
        if mode == Mode::ReadOnly {
            return Transition::Availability;
        }
        match sw.active {
            None => {
                sw.active = Some(fl);
                Transition::Managed { to: fl }
            }
            Some(from) if pref.return_home && pref.rank(fl) < pref.rank(from) => {
                sw.active = Some(fl);
                Transition::Returned { from, to: fl }
            }
            Some(_) => Transition::Availability,
        }
    }

    /// Removes one connection; if it was the active one, the best remaining RW connection
    /// takes over.
    pub fn disconnect(&mut self, switch: &str, fl: FlIndex, mode: Mode) -> Transition {
        let Some(sw) = self.switches.get_mut(switch) else {
            return Transition::Unknown;
        };
        let Some(i) = sw.position(fl, mode) else {
            return Transition::Unknown;
        };
        sw.connections.remove(i);
        Self::count(&mut self.per_fl, fl, false);
        let t = Self::after_loss(&self.pref, sw, fl);
        self.mark(switch, &t);
        self.drop_if_empty(switch);
        t
    }

    /// Removes every connection of `fl` (an outage), switch by switch in id order.
    pub fn drop_fl(&mut self, fl: FlIndex) -> Vec<(String, Transition)> {
        let mut hit: Vec<String> = self
            .switches
            .iter()
            .filter(|(_, s)| s.has_fl(fl))
            .map(|(id, _)| id.to_string())
            .collect();
        hit.sort();
        hit.into_iter()
            .map(|id| {
                let t = self.remove_fl(&id, fl);
                (id, t)
            })
            .collect()
    }

    /// A complete dump of `fl` that did not list these switches: `fl`'s connections to every
    /// switch it did not list are removed — only those learned before `requested` (a connection
    /// confirmed since may come from an event written after the dump). Other FLs' connections
    /// stay. Switch by switch in id order.
    pub fn forget_unlisted(
        &mut self,
        fl: FlIndex,
        listed: &[(String, Mode)],
        requested: Instant,
    ) -> Vec<(String, Transition)> {
        let keep: HashMap<&str, Mode> = listed.iter().map(|(s, m)| (s.as_str(), *m)).collect();
        let mut gone: Vec<String> = self
            .switches
            .iter()
            .filter(|(id, s)| {
                !keep.contains_key(&***id)
                    && s.connections
                        .iter()
                        .any(|c| c.fl == fl && c.learned < requested)
            })
            .map(|(id, _)| id.to_string())
            .collect();
        gone.sort();
        gone.into_iter()
            .map(|id| {
                let t = self.remove_fl_before(&id, fl, Some(requested));
                (id, t)
            })
            .collect()
    }

    /// Records the addresses FL `fl` reported for its connection to `switch` in `mode`.
    pub fn set_addresses(&mut self, switch: &str, fl: FlIndex, mode: Mode, a: serde_json::Value) {
        if let Some(sw) = self.switches.get_mut(switch) {
            if let Some(i) = sw.position(fl, mode) {
                sw.connections[i].addresses = Some(Arc::new(a));
            }
        }
    }

    /// FL `fl`'s connection to `switch`, if any (read-write first).
    pub fn connection(&self, switch: &str, fl: FlIndex) -> Option<&Connection> {
        let sw = self.switches.get(switch)?;
        sw.connections
            .iter()
            .filter(|c| c.fl == fl)
            .min_by_key(|c| c.mode != Mode::ReadWrite)
    }

    /// Makes `fl` the switch's active FL (a cluster leader's decision), if `fl` is connected
    /// to it read-write here. False when it is not (this map has not seen that connection).
    pub fn set_active(&mut self, switch: &str, fl: FlIndex) -> bool {
        let Some(key) = self.key(switch) else {
            return false;
        };
        let Some(sw) = self.switches.get_mut(switch) else {
            return false;
        };
        if sw.position(fl, Mode::ReadWrite).is_none() {
            return false;
        }
        if sw.active != Some(fl) {
            sw.active = Some(fl);
            self.dirty.push(key);
        }
        true
    }

    /// Puts back a switch as stored before a restart (no transition: nothing is announced).
    pub fn restore(&mut self, switch: String, mut sw: Switch) {
        if sw.connections.is_empty() {
            return;
        }
        let active_ok = sw
            .active
            .is_some_and(|a| sw.position(a, Mode::ReadWrite).is_some());
        if !active_ok {
            sw.active = Self::best(&self.pref, &sw);
        }
        for c in &sw.connections {
            Self::count(&mut self.per_fl, c.fl, true);
        }
        let key: Arc<str> = Arc::from(switch);
        if let Some(old) = self.switches.insert(key.clone(), sw) {
            for c in &old.connections {
                Self::count(&mut self.per_fl, c.fl, false);
            }
        }
        self.dirty.push(key);
    }

    /// Switches whose active FL is `fl`, sorted.
    pub fn active_of(&self, fl: FlIndex) -> Vec<String> {
        self.select(|s| s.active == Some(fl))
    }

    /// Switches `fl` has a read-only connection to, sorted.
    pub fn read_only_of(&self, fl: FlIndex) -> Vec<String> {
        self.select(|s| s.position(fl, Mode::ReadOnly).is_some())
    }

    fn select(&self, pred: impl Fn(&Switch) -> bool) -> Vec<String> {
        let mut v: Vec<_> = self
            .switches
            .iter()
            .filter(|(_, s)| pred(s))
            .map(|(id, _)| id.to_string())
            .collect();
        v.sort();
        v
    }

    /// Per FL: (switches it is active for, switches it is connected to as a standby — RW
    /// but not active, or RO only), in one pass.
    pub fn counts(&self, fls: usize) -> Vec<(usize, usize)> {
        let mut c = vec![(0, 0); fls];
        for s in self.switches.values() {
            let mut seen: Vec<FlIndex> = Vec::with_capacity(s.connections.len());
            for conn in &s.connections {
                if seen.contains(&conn.fl) {
                    continue;
                }
                seen.push(conn.fl);
                if let Some(n) = c.get_mut(conn.fl) {
                    if s.active == Some(conn.fl) {
                        n.0 += 1;
                    } else {
                        n.1 += 1;
                    }
                }
            }
        }
        c
    }

    pub fn len(&self) -> usize {
        self.switches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.switches.is_empty()
    }

    fn remove_fl(&mut self, switch: &str, fl: FlIndex) -> Transition {
        self.remove_fl_before(switch, fl, None)
    }

    /// Removes `fl`'s connections to `switch` (only those learned before `before`, if given).
    fn remove_fl_before(
        &mut self,
        switch: &str,
        fl: FlIndex,
        before: Option<Instant>,
    ) -> Transition {
        let Some(sw) = self.switches.get_mut(switch) else {
            return Transition::Unknown;
        };
        let per_fl = &mut self.per_fl;
        sw.connections.retain(|c| {
            let gone = c.fl == fl && before.is_none_or(|b| c.learned < b);
            if gone {
                Self::count(per_fl, fl, false);
            }
            !gone
        });
        let t = Self::after_loss(&self.pref, sw, fl);
        self.mark(switch, &t);
        self.drop_if_empty(switch);
        t
    }

    /// After `fl` lost a connection: if it was active and no longer has an RW connection, the
    /// best remaining one takes over, or the switch is unmanaged.
    fn after_loss(pref: &Preference, sw: &mut Switch, fl: FlIndex) -> Transition {
        if sw.active != Some(fl) || sw.position(fl, Mode::ReadWrite).is_some() {
            return Transition::Availability;
        }
        sw.active = Self::best(pref, sw);
        match sw.active {
            Some(to) => Transition::FailedOver { from: fl, to },
            None => Transition::Unmanaged { from: fl },
        }
    }

    fn best(pref: &Preference, sw: &Switch) -> Option<FlIndex> {
        sw.connections
            .iter()
            .filter(|c| c.mode == Mode::ReadWrite)
            .min_by_key(|c| (pref.rank(c.fl), c.since_ms, c.fl))
            .map(|c| c.fl)
    }

    fn drop_if_empty(&mut self, switch: &str) {
        if self
            .switches
            .get(switch)
            .is_some_and(|s| s.connections.is_empty())
        {
            self.switches.remove(switch);
        }
    }
}

/// The stored form of one switch (value of `topics.switch_map`, keyed by switch id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSwitch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    #[serde(default)]
    pub connections: Vec<StoredConnection>,
    /// The single-FL format written before connections existed: `{"fl": .., "since": .., "via": ..}`.
    #[serde(default, skip_serializing)]
    pub fl: Option<String>,
    #[serde(default, skip_serializing)]
    pub since: Option<u64>,
    #[serde(default, skip_serializing)]
    pub via: Option<Via>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredConnection {
    pub fl: String,
    pub mode: Mode,
    pub since: u64,
    pub via: Via,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<serde_json::Value>,
}

impl StoredSwitch {
    pub fn of(sw: &Switch, fl_id: impl Fn(FlIndex) -> String) -> Self {
        Self {
            active: sw.active.map(&fl_id),
            connections: sw
                .connections
                .iter()
                .map(|c| StoredConnection {
                    fl: fl_id(c.fl),
                    mode: c.mode,
                    since: c.since_ms,
                    via: c.via,
                    addresses: c.addresses.as_deref().cloned(),
                })
                .collect(),
            fl: None,
            since: None,
            via: None,
        }
    }

    /// Back to a [`Switch`]; `None` when a connection names an FL that is not configured any
    /// more or nothing is left. `fl_index` resolves FL ids.
    pub fn into_switch(self, fl_index: impl Fn(&str) -> Option<FlIndex>) -> Option<Switch> {
        let mut connections = Vec::new();
        if let Some(fl) = &self.fl {
            connections.push(Connection {
                fl: fl_index(fl)?,
                mode: Mode::ReadWrite,
                since_ms: self.since.unwrap_or(0),
                via: self.via.unwrap_or(Via::Event),
                learned: Instant::now(),
                addresses: None,
            });
        }
        for c in &self.connections {
            connections.push(Connection {
                fl: fl_index(&c.fl)?,
                mode: c.mode,
                since_ms: c.since,
                via: c.via,
                learned: Instant::now(),
                addresses: c.addresses.clone().map(Arc::new),
            });
        }
        let active = match (&self.active, &self.fl) {
            (Some(a), _) | (None, Some(a)) => fl_index(a),
            _ => None,
        };
        (!connections.is_empty()).then_some(Switch {
            connections,
            active,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Mode::{ReadOnly as RO, ReadWrite as RW};
    use Transition::*;

    fn map() -> SwitchMap {
        SwitchMap::default()
    }

    #[test]
    fn first_rw_connection_manages_the_switch_and_others_stand_by() {
        let mut m = map();
        assert_eq!(m.connect("s1", 0, RO, Via::Event, 1), Availability);
        assert_eq!(m.active("s1"), None, "read-only does not manage a switch");
        assert_eq!(m.connect("s1", 0, RW, Via::Event, 2), Managed { to: 0 });
        assert_eq!(m.connect("s1", 1, RW, Via::Event, 3), Availability);
        assert_eq!(m.connect("s1", 1, RW, Via::Event, 4), Unchanged);
        assert_eq!(m.active("s1"), Some(0), "no move without a loss");
        assert_eq!(m.counts(2), vec![(1, 0), (0, 1)]);
    }

    #[test]
    fn losing_the_active_fails_over_to_the_oldest_standby_then_unmanages() {
        let mut m = map();
        m.connect("s1", 0, RW, Via::Event, 1);
        m.connect("s1", 2, RW, Via::Event, 3);
        m.connect("s1", 1, RW, Via::Event, 2);
        assert_eq!(m.disconnect("s1", 2, RW), Availability, "a standby left");
        assert_eq!(m.disconnect("s1", 0, RW), FailedOver { from: 0, to: 1 });
        assert_eq!(m.active("s1"), Some(1));
        assert_eq!(m.disconnect("s1", 0, RW), Unknown);
        m.connect("s1", 1, RO, Via::Event, 5);
        assert_eq!(m.disconnect("s1", 1, RW), Unmanaged { from: 1 });
        assert!(m.get("s1").is_some(), "the RO connection remains");
        assert_eq!(m.disconnect("s1", 1, RO), Availability);
        assert!(m.is_empty());
    }

    #[test]
    fn preference_picks_the_standby_and_return_home_moves_back() {
        let pref = Preference {
            rank: vec![0, 2, 1],
            return_home: false,
        };
        let mut m = SwitchMap::new(pref.clone());
        m.connect("s1", 0, RW, Via::Event, 1);
        m.connect("s1", 1, RW, Via::Event, 2);
        m.connect("s1", 2, RW, Via::Event, 3);
        assert_eq!(m.disconnect("s1", 0, RW), FailedOver { from: 0, to: 2 });
        assert_eq!(m.connect("s1", 0, RW, Via::Event, 4), Availability);
        let mut m = SwitchMap::new(Preference {
            return_home: true,
            ..pref
        });
        m.connect("s1", 1, RW, Via::Event, 1);
        assert_eq!(
            m.connect("s1", 0, RW, Via::Event, 2),
            Returned { from: 1, to: 0 }
        );
    }

    #[test]
    fn an_outage_drops_every_connection_of_the_fl() {
        let mut m = map();
        m.connect("s1", 0, RW, Via::Event, 1);
        m.connect("s1", 1, RW, Via::Event, 2);
        m.connect("s2", 0, RW, Via::Event, 1);
        m.connect("s3", 1, RW, Via::Event, 1);
        m.connect("s3", 0, RO, Via::Event, 2);
        assert_eq!(
            m.drop_fl(0),
            vec![
                ("s1".into(), FailedOver { from: 0, to: 1 }),
                ("s2".into(), Unmanaged { from: 0 }),
                ("s3".into(), Availability),
            ]
        );
        assert_eq!(m.counts(2), vec![(0, 0), (2, 0)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_dump_removes_only_its_fls_connections_learned_before_the_request() {
        let mut m = map();
        m.connect("s1", 0, RW, Via::Event, 1);
        m.connect("s1", 1, RW, Via::Event, 2);
        m.connect("s2", 0, RW, Via::Event, 1);
        m.connect("s4", 0, RW, Via::Event, 1);
        tokio::time::advance(std::time::Duration::from_millis(10)).await;
        let requested = Instant::now();
        tokio::time::advance(std::time::Duration::from_millis(10)).await;
        // After the request: s4 confirmed (an event written after the dump, perhaps), s5 new.
        assert_eq!(m.connect("s4", 0, RW, Via::Event, 9), Unchanged);
        m.connect("s5", 0, RW, Via::Event, 9);
        assert_eq!(m.connections_of(0), 4);
        let out = m.forget_unlisted(0, &[("s3".into(), RW)], requested);
        assert_eq!(
            out,
            vec![
                ("s1".into(), FailedOver { from: 0, to: 1 }),
                ("s2".into(), Unmanaged { from: 0 }),
            ]
        );
        assert_eq!(m.active("s1"), Some(1));
        assert_eq!(m.active("s4"), Some(0), "confirmed after the request: kept");
        assert_eq!(m.active("s5"), Some(0), "learned after the request: kept");
        assert_eq!((m.connections_of(0), m.connections_of(1)), (2, 1));
    }

    #[test]
    fn stored_form_round_trips_and_reads_the_single_fl_format() {
        let mut m = map();
        m.connect("s1", 0, RW, Via::Event, 1);
        m.connect("s1", 1, RO, Via::Sync, 2);
        let ids = ["a", "b"];
        let stored = StoredSwitch::of(m.get("s1").unwrap(), |i| ids[i].to_string());
        let json = serde_json::to_string(&stored).unwrap();
        let back: StoredSwitch = serde_json::from_str(&json).unwrap();
        let idx = |s: &str| ids.iter().position(|i| *i == s);
        assert_eq!(back.into_switch(idx).as_ref(), m.get("s1"));
        let old: StoredSwitch =
            serde_json::from_str(r#"{"fl":"b","since":7,"via":"sync"}"#).unwrap();
        let sw = old.into_switch(idx).unwrap();
        assert_eq!(sw.active(), Some(1));
        assert_eq!(sw.connections()[0].mode, RW);
        let gone: StoredSwitch = serde_json::from_str(r#"{"fl":"zzz"}"#).unwrap();
        assert!(gone.into_switch(idx).is_none());
    }
}
