//! The cluster's shared map on the switch-map topic: the facts this instance writes (who
//! connected a switch) and the records it reads back from every instance.

use super::*;

impl Dispatcher {
    /// Publishes FL `fl`'s connection to `sw` as a fact for the other instances (a tombstone
    /// when it is gone); this instance owns `fl`, so it is the key's only writer.
    pub(super) fn fact(&self, sw: &str, fl: FlIndex, ticket: &Ticket) {
        let s = &self.shared;
        let topic = s.settings.topics.switch_map.clone();
        let key = Bytes::from(format!("{FACT_PREFIX}{}/{sw}", s.fl_id(fl)));
        let out = match self.map.connection(sw, fl) {
            Some(c) => {
                let value = StoredConnection {
                    fl: s.fl_id(fl).to_string(),
                    mode: c.mode,
                    since: c.since_ms,
                    via: c.via,
                    addresses: c.addresses.as_deref().cloned(),
                };
                Outgoing::new(topic, serde_json::to_vec(&value).unwrap_or_default()).key(key)
            }
            None => Outgoing::tombstone(topic, key),
        };
        s.outbox.send(out.ticket(ticket));
    }

    /// A record of the switch-map topic written by another instance (a cluster): a connection
    /// fact of an FL owned elsewhere is applied like that FL's event (the leader announces what
    /// it means); a decision of the leader sets the switch's active FL here.
    pub(super) fn map_record(&mut self, key: &str, value: Option<Bytes>) {
        let s = self.shared.clone();
        if let Some(rest) = key.strip_prefix(FACT_PREFIX) {
            let Some((fl_id, sw)) = rest.rsplit_once('/') else {
                return;
            };
            let (Some(fl), Ok(sw)) = (s.fl_index(fl_id), protocol::normalise_switch_id(sw)) else {
                warn!(key, "switch-map fact skipped (unknown FL or bad switch id)");
                return;
            };
            if s.liveness.is_owned(fl) {
                return; // this instance wrote it
            }
            let fact = value.and_then(|v| serde_json::from_slice::<StoredConnection>(&v).ok());
            let had = self.map.connection(&sw, fl).map(|c| c.mode);
            let t = match (fact, had) {
                (Some(f), had) => {
                    if let Some(old) = had.filter(|&m| m != f.mode) {
                        let t = self.map.disconnect(&sw, fl, old);
                        self.changed(&sw, fl, t, Cause::Fact, &Ticket::none());
                    }
                    self.map.connect(&sw, fl, f.mode, f.via, f.since)
                }
                (None, Some(mode)) => self.map.disconnect(&sw, fl, mode),
                (None, None) => Transition::Unknown,
            };
            self.changed(&sw, fl, t, Cause::Fact, &Ticket::none());
            return;
        }
        if self.leader {
            return; // its own decision
        }
        let Some(value) = value else {
            return; // the switch is gone: its facts remove the connections
        };
        let Ok(sw) = protocol::normalise_switch_id(key) else {
            return;
        };
        let Ok(stored) = serde_json::from_slice::<StoredSwitch>(&value) else {
            return;
        };
        let decided = stored.active.as_deref().and_then(|a| s.fl_index(a));
        if let Some(fl) = decided {
            if !self.map.set_active(&sw, fl) {
                // The leader has seen a connection this map has not yet: take its view.
                if let Some(entry) = stored.into_switch(|id| s.fl_index(id)) {
                    self.map.restore(sw.clone(), entry);
                }
            }
            if let Some(active) = self.map.active(&sw) {
                self.release_waiting(&sw, active);
            }
        }
    }
}
