//! The network dump: what an FL answers a sync request with, in every shape Floodlight has sent,
//! and what the router may conclude from what arrived.
//!
//! Shapes, told apart by what arrives (no configuration):
//! - **plain** (Floodlight since April 2020, `SwitchTrackingService.dumpAllSwitches`): one
//!   `InfoMessage(NetworkDumpSwitchData)` per connected switch, no count, no end marker, and
//!   nothing at all from a region with no switch;
//! - **chunked** (before that, and the simulator): `ChunkedInfoMessage`s with `message_id`
//!   `"<index> : <cid>"` and `total_messages` (an empty chain is one message with total 0);
//! - **markers** (2018–2019): `NetworkDumpBeginMarker`, the entries (`payload.switch_id`), then
//!   `NetworkDumpEndMarker`, written in order on one partition.
//!
//! What each lets the router conclude is [`DumpTally::verdict`]; docs/protocol.md ("The network
//! dump") has the evidence from Floodlight's source. In short: an entry always proves a
//! connection; only a counted chain that is whole, or an end marker, proves that a switch the
//! dump does not list is gone. A plain dump proves presence only.

use std::collections::HashSet;

use crate::protocol::{self, MessageView, Target};
use crate::settings::Mode;
use crate::settings::ProtocolSettings;

/// Where a chunk sits in a counted chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub index: u64,
    pub total: u64,
}

/// One message of a network dump, reduced to what the router needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpPart {
    /// A connected switch: a connection of the FL in `mode` (`write_mode`; absent = read-write).
    Entry {
        switch: String,
        mode: Mode,
        position: Option<Position>,
    },
    /// A dump entry with no readable switch id: dead-lettered, and its FL's dump can no longer
    /// be judged complete.
    Unreadable {
        reason: String,
        position: Option<Position>,
    },
    /// A chunk that is no entry (an empty chain's single message): it counts, nothing more.
    Chunk(Position),
    Begin,
    End,
}

impl DumpPart {
    fn position(&self) -> Option<Position> {
        match self {
            DumpPart::Entry { position, .. } | DumpPart::Unreadable { position, .. } => *position,
            DumpPart::Chunk(p) => Some(*p),
            DumpPart::Begin | DumpPart::End => None,
        }
    }
}

/// The dump part a message from an FL is, by its class (entries and markers); `None` for
/// anything else. A chunk of a running session's chain that is no entry is recognised by the
/// session's correlation id instead ([`chunk`]).
pub fn read(view: &MessageView<'_>, rules: &ProtocolSettings) -> Option<DumpPart> {
    let classes = &rules.classes;
    let class = view.class()?;
    if class == classes.network_dump_begin {
        return Some(DumpPart::Begin);
    }
    if class == classes.network_dump_end {
        return Some(DumpPart::End);
    }
    if class != classes.network_dump_switch {
        return None;
    }
    let position = position_of(view);
    let switch = match view.target(rules).map(|l| l.target) {
        Ok(Target::One(sw)) => sw,
        Ok(_) => {
            return Some(DumpPart::Unreadable {
                reason: "dump entry names several switches".into(),
                position,
            })
        }
        Err(e) => {
            return Some(DumpPart::Unreadable {
                reason: format!("dump entry without a readable switch: {e}"),
                position,
            })
        }
    };
    // `"write_mode": false` is a read-only connection; absent (or anything else) read-write.
    let write_mode = protocol::lookup(view.text, &rules.switch_events.write_mode_pointer);
    let mode = match write_mode.map(|v| v.get().trim()) {
        Some("false") => Mode::ReadOnly,
        _ => Mode::ReadWrite,
    };
    Some(DumpPart::Entry {
        switch,
        mode,
        position,
    })
}

/// A chunk of a counted chain (`message_id`, `total_messages`) that [`read`] did not recognise.
pub fn chunk(view: &MessageView<'_>) -> Option<DumpPart> {
    position_of(view).map(DumpPart::Chunk)
}

fn position_of(view: &MessageView<'_>) -> Option<Position> {
    view.head
        .chain_position()
        .map(|(index, total)| Position { index, total })
}

/// What one FL's dump lets the router conclude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Whole: every index of a counted chain, or the end marker, and every entry readable.
    /// The FL's connections it does not list are gone (only those older than the request).
    Complete,
    /// Entries without a count or markers (today's Floodlight): each proves a connection;
    /// nothing is proven about the switches it did not list.
    Uncounted,
    /// Started but not whole (a gap, no end marker, an unreadable entry): asked again.
    Incomplete(String),
    /// Nothing arrived: an empty region (Floodlight answers nothing), or a request it never
    /// read (it reads the discovery topic from its latest offset).
    Silent,
}

/// One FL's dump as it arrives.
#[derive(Debug, Default, Clone)]
pub struct DumpTally {
    seen: HashSet<u64>,
    total: Option<u64>,
    begun: bool,
    ended: bool,
    uncounted: usize,
    unreadable: usize,
    switches: Vec<(String, Mode)>,
}

impl DumpTally {
    pub fn add(&mut self, part: &DumpPart) {
        if let Some(p) = part.position() {
            self.total = Some(p.total);
            self.seen.insert(p.index);
        }
        match part {
            DumpPart::Entry {
                switch,
                mode,
                position,
            } => {
                if position.is_none() {
                    self.uncounted += 1;
                }
                match self.switches.iter_mut().find(|(s, _)| s == switch) {
                    Some(known) => known.1 = *mode,
                    None => self.switches.push((switch.clone(), *mode)),
                }
            }
            DumpPart::Unreadable { .. } => self.unreadable += 1,
            DumpPart::Begin => self.begun = true,
            DumpPart::End => self.ended = true,
            DumpPart::Chunk(_) => {}
        }
    }

    /// Whole now: the FL's other connections may be judged at once.
    pub fn is_complete(&self) -> bool {
        self.verdict() == Verdict::Complete
    }

    pub fn verdict(&self) -> Verdict {
        let counted = self.total.is_some_and(|t| self.seen.len() as u64 >= t);
        if self.unreadable > 0 {
            return Verdict::Incomplete(format!("{} unreadable entries", self.unreadable));
        }
        if counted || self.ended {
            return Verdict::Complete;
        }
        if let Some(t) = self.total {
            return Verdict::Incomplete(format!("{} of {t} chain messages", self.seen.len()));
        }
        if self.begun {
            return Verdict::Incomplete("no end marker".into());
        }
        if self.uncounted > 0 {
            return Verdict::Uncounted;
        }
        Verdict::Silent
    }

    /// The switches the dump listed, each with its connection mode (the last one reported).
    pub fn switches(&self) -> &[(String, Mode)] {
        &self.switches
    }

    pub fn unreadable(&self) -> usize {
        self.unreadable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Classes, EnvelopeRules};
    use serde_json::json;

    const S1: &str = "00:00:00:00:00:00:00:01";
    const S2: &str = "00:00:00:00:00:00:00:02";

    fn part(v: serde_json::Value) -> Option<DumpPart> {
        let text = v.to_string();
        let rules = ProtocolSettings::default();
        let view = MessageView::read(text.as_bytes(), &EnvelopeRules::default()).unwrap();
        read(&view, &rules).or_else(|| chunk(&view))
    }

    fn info(payload: serde_json::Value) -> serde_json::Value {
        json!({"clazz": Classes::default().info_message, "correlation_id": "c : network-dump(1)",
               "timestamp": 1, "payload": payload})
    }

    fn plain(sw: &str, write_mode: bool) -> serde_json::Value {
        info(json!({"clazz": Classes::default().network_dump_switch,
                    "switch_record": {"datapath": sw}, "dump_id": "d1", "write_mode": write_mode}))
    }

    #[test]
    fn a_plain_entry_is_an_uncounted_connection_in_its_mode() {
        assert_eq!(
            part(plain(S1, true)),
            Some(DumpPart::Entry {
                switch: S1.into(),
                mode: Mode::ReadWrite,
                position: None
            })
        );
        assert!(matches!(
            part(plain(S2, false)),
            Some(DumpPart::Entry {
                mode: Mode::ReadOnly,
                ..
            })
        ));
    }

    #[test]
    fn a_chunked_entry_has_its_position_and_an_empty_chain_is_a_chunk() {
        let mut v = plain(S1, true);
        v["clazz"] = json!(Classes::default().chunked_info_message);
        v["message_id"] = json!("1 : c");
        v["total_messages"] = json!(3);
        assert!(matches!(
            part(v),
            Some(DumpPart::Entry {
                position: Some(Position { index: 1, total: 3 }),
                ..
            })
        ));
        let empty = json!({"clazz": Classes::default().chunked_info_message, "correlation_id": "c",
                           "total_messages": 0, "payload": null});
        assert_eq!(
            part(empty),
            Some(DumpPart::Chunk(Position { index: 0, total: 0 }))
        );
    }

    #[test]
    fn the_marker_era_shape_reads_its_switch_and_its_markers() {
        let entry = info(json!({"clazz": Classes::default().network_dump_switch, "switch_id": S2}));
        assert!(matches!(part(entry), Some(DumpPart::Entry { switch, .. }) if switch == S2));
        let begin =
            info(json!({"clazz": "org.openkilda.messaging.info.discovery.NetworkDumpBeginMarker"}));
        let end =
            info(json!({"clazz": "org.openkilda.messaging.info.discovery.NetworkDumpEndMarker"}));
        assert_eq!(part(begin), Some(DumpPart::Begin));
        assert_eq!(part(end), Some(DumpPart::End));
    }

    #[test]
    fn an_entry_without_a_readable_switch_is_unreadable() {
        let v = info(json!({"clazz": Classes::default().network_dump_switch,
                            "switch_record": {"hostname": "sw1"}, "write_mode": true}));
        assert!(matches!(part(v), Some(DumpPart::Unreadable { .. })));
        let bad = info(json!({"clazz": Classes::default().network_dump_switch,
                              "switch_record": {"datapath": "not-a-dpid"}}));
        assert!(matches!(part(bad), Some(DumpPart::Unreadable { .. })));
    }

    #[test]
    fn other_messages_are_no_dump_part() {
        let v = info(
            json!({"clazz": "org.openkilda.messaging.info.event.SwitchInfoData",
                            "switch_id": S1, "state": "ACTIVATED"}),
        );
        assert_eq!(part(v), None);
    }

    fn entry(sw: &str, position: Option<(u64, u64)>) -> DumpPart {
        DumpPart::Entry {
            switch: sw.into(),
            mode: Mode::ReadWrite,
            position: position.map(|(index, total)| Position { index, total }),
        }
    }

    #[test]
    fn verdicts_follow_what_arrived() {
        let t = DumpTally::default();
        assert_eq!(t.verdict(), Verdict::Silent);

        let mut plain = DumpTally::default();
        plain.add(&entry(S1, None));
        plain.add(&entry(S2, None));
        assert_eq!(plain.verdict(), Verdict::Uncounted);
        assert_eq!(plain.switches().len(), 2);

        let mut chunked = DumpTally::default();
        chunked.add(&entry(S1, Some((0, 2))));
        assert_eq!(
            chunked.verdict(),
            Verdict::Incomplete("1 of 2 chain messages".into())
        );
        chunked.add(&entry(S1, Some((0, 2))));
        assert!(!chunked.is_complete(), "a duplicate does not count twice");
        chunked.add(&entry(S2, Some((1, 2))));
        assert!(chunked.is_complete());

        let mut empty = DumpTally::default();
        empty.add(&DumpPart::Chunk(Position { index: 0, total: 0 }));
        assert!(empty.is_complete());
        assert!(empty.switches().is_empty());

        let mut markers = DumpTally::default();
        markers.add(&DumpPart::Begin);
        markers.add(&entry(S1, None));
        assert_eq!(
            markers.verdict(),
            Verdict::Incomplete("no end marker".into())
        );
        markers.add(&DumpPart::End);
        assert!(markers.is_complete());

        let mut unreadable = DumpTally::default();
        unreadable.add(&entry(S1, Some((0, 2))));
        unreadable.add(&DumpPart::Unreadable {
            reason: "x".into(),
            position: Some(Position { index: 1, total: 2 }),
        });
        assert_eq!(
            unreadable.verdict(),
            Verdict::Incomplete("1 unreadable entries".into()),
            "never complete with fewer switches"
        );
        let mut plain_unreadable = DumpTally::default();
        plain_unreadable.add(&entry(S1, None));
        plain_unreadable.add(&DumpPart::Unreadable {
            reason: "x".into(),
            position: None,
        });
        assert!(matches!(plain_unreadable.verdict(), Verdict::Incomplete(_)));
    }
}
