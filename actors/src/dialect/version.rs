//! The version header: every OpenKilda consumer (its Storm spouts, Floodlight's consumer) runs
//! `VersioningConsumerInterceptor` (`blue-green/…/kafka/interceptors/`), which silently drops a
//! record without exactly one `kafka.message.version.header` equal to the deployment's build
//! version; its producers' `VersioningProducerInterceptor` stamps their own version on every
//! record. Records the router passes on keep theirs. Every record the router *creates* gets
//! one here:
//!
//! - one that answers or wraps another (an error for a command, a broadcast wrapper, a
//!   multi-switch result, a sync summary for a controller's request) takes that record's value;
//! - a spontaneous one (an AliveRequest or dump request to an FL, a notice to the controllers)
//!   takes the configured `value`, or with `learn` the newest value seen from the side it is
//!   sent to (from that FL for an FL; from the commands for the controllers), the configured
//!   one until then. A blue/green switch then needs no restart: the router follows each side.
//!
//! Off (no header name) in the embedded default, on in the OpenKilda profile.

use std::borrow::Cow;
use std::sync::RwLock;

use bytes::Bytes;

use crate::runtime::outbox::{Inbound, Outgoing};

/// A version value seen on a command, interned ([`Versions::intern`]): two bytes in every
/// pending command instead of a copy of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionId(u16);

/// Distinct values kept for [`VersionId`]s (a deployment has one or two at a time).
const MAX_INTERNED: usize = 64;

/// The version header at run time: the configured rule and what was learned.
#[derive(Debug, Default)]
pub struct Versions {
    name: Option<String>,
    fixed: Option<Bytes>,
    learn: bool,
    /// Newest value read from each FL, and from the controllers' commands.
    from_fls: Vec<RwLock<Option<Bytes>>>,
    from_controllers: RwLock<Option<Bytes>>,
    interned: RwLock<Vec<Bytes>>,
}

impl Versions {
    pub fn new(rule: &crate::settings::VersionHeader, fls: usize) -> Self {
        let name = (!rule.name.is_empty()).then(|| rule.name.clone());
        Self {
            fixed: rule.value.clone().map(Bytes::from),
            learn: rule.learn && name.is_some(),
            name,
            from_fls: (0..fls).map(|_| RwLock::new(None)).collect(),
            from_controllers: RwLock::new(None),
            interned: RwLock::new(Vec::new()),
        }
    }

    /// The record's version as a small id (None: no header, or more distinct values than
    /// kept: its answer then takes the controllers' newest).
    pub fn intern(&self, msg: &Inbound) -> Option<VersionId> {
        let v = self.of(msg)?;
        if let Some(i) = self.interned.read().ok()?.iter().position(|x| *x == v) {
            return Some(VersionId(i as u16));
        }
        let mut table = self.interned.write().ok()?;
        if let Some(i) = table.iter().position(|x| *x == v) {
            return Some(VersionId(i as u16));
        }
        if table.len() >= MAX_INTERNED {
            return None;
        }
        table.push(v);
        Some(VersionId((table.len() - 1) as u16))
    }

    /// The value of an interned version.
    pub fn value(&self, id: VersionId) -> Option<Bytes> {
        self.interned.read().ok()?.get(usize::from(id.0)).cloned()
    }

    /// The value for a record answering one of version `id` (the controllers' when unknown).
    pub fn answering(&self, id: Option<VersionId>) -> Option<Bytes> {
        id.and_then(|i| self.value(i))
            .or_else(|| self.for_controllers())
    }

    pub fn enabled(&self) -> bool {
        self.name.is_some()
    }

    /// The record's own version (the first such header), when the header is in use.
    pub fn of(&self, msg: &Inbound) -> Option<Bytes> {
        let name = self.name.as_deref()?;
        msg.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// A command was read: its version is the controllers' newest (when learning).
    pub fn observe_controller(&self, msg: &Inbound) {
        if self.learn {
            Self::observe(&self.from_controllers, self.of(msg));
        }
    }

    /// FL `fl` wrote a record: its version is that FL's newest (when learning).
    pub fn observe_fl(&self, fl: usize, msg: &Inbound) {
        if let (true, Some(slot)) = (self.learn, self.from_fls.get(fl)) {
            Self::observe(slot, self.of(msg));
        }
    }

    fn observe(slot: &RwLock<Option<Bytes>>, seen: Option<Bytes>) {
        let Some(seen) = seen else { return };
        let same = slot
            .read()
            .map(|v| v.as_ref() == Some(&seen))
            .unwrap_or(true);
        if !same {
            if let Ok(mut v) = slot.write() {
                *v = Some(seen);
            }
        }
    }

    fn learned(&self, slot: Option<&RwLock<Option<Bytes>>>) -> Option<Bytes> {
        let learned = slot
            .filter(|_| self.learn)
            .and_then(|s| s.read().ok().and_then(|v| v.clone()));
        learned.or_else(|| self.fixed.clone())
    }

    /// The value for a record the router makes on its own for FL `fl`.
    pub fn for_fl(&self, fl: usize) -> Option<Bytes> {
        self.learned(self.from_fls.get(fl))
    }

    /// The value for a record the router makes on its own for the controllers.
    pub fn for_controllers(&self) -> Option<Bytes> {
        self.learned(Some(&self.from_controllers))
    }

    /// `out` with exactly one version header of `value` (any other copy removed), or
    /// unchanged when the header is not in use or there is no value.
    pub fn stamp(&self, mut out: Outgoing, value: Option<Bytes>) -> Outgoing {
        let (Some(name), Some(value)) = (self.name.as_deref(), value) else {
            return out;
        };
        out.headers.retain(|(n, _)| n != name);
        out.headers.push((Cow::Owned(name.to_string()), value));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::VersionHeader;

    const H: &str = "kafka.message.version.header";

    fn with(v: &str) -> Inbound {
        let mut m = Inbound::new("{}");
        m.headers
            .push((Cow::Borrowed(H), Bytes::from(v.to_string())));
        m
    }

    fn header(o: &Outgoing) -> Vec<&[u8]> {
        o.headers
            .iter()
            .filter(|(n, _)| n == H)
            .map(|(_, v)| v.as_ref())
            .collect()
    }

    #[test]
    fn off_without_a_name() {
        let v = Versions::new(&VersionHeader::default(), 1);
        assert!(!v.enabled());
        let out = v.stamp(Outgoing::new("t", "x"), Some(Bytes::from("v1")));
        assert!(out.headers.is_empty());
    }

    #[test]
    fn a_fixed_value_until_learned_then_the_newest_of_each_side() {
        let rule = VersionHeader {
            name: H.into(),
            value: Some("blue".into()),
            learn: true,
        };
        let v = Versions::new(&rule, 2);
        assert_eq!(v.for_fl(1).as_deref(), Some(&b"blue"[..]));
        v.observe_fl(1, &with("green"));
        v.observe_controller(&with("cyan"));
        assert_eq!(v.for_fl(1).as_deref(), Some(&b"green"[..]));
        assert_eq!(v.for_fl(0).as_deref(), Some(&b"blue"[..]), "per FL");
        assert_eq!(v.for_controllers().as_deref(), Some(&b"cyan"[..]));
        v.observe_fl(1, &Inbound::new("{}"));
        assert_eq!(
            v.for_fl(1).as_deref(),
            Some(&b"green"[..]),
            "no header: no news"
        );
    }

    #[test]
    fn without_learn_the_configured_value_stays() {
        let rule = VersionHeader {
            name: H.into(),
            value: Some("blue".into()),
            learn: false,
        };
        let v = Versions::new(&rule, 1);
        v.observe_fl(0, &with("green"));
        assert_eq!(v.for_fl(0).as_deref(), Some(&b"blue"[..]));
    }

    #[test]
    fn a_stamp_leaves_exactly_one_header() {
        let rule = VersionHeader {
            name: H.into(),
            value: None,
            learn: true,
        };
        let v = Versions::new(&rule, 1);
        let mut out = Outgoing::new("t", "x");
        out.headers.push((Cow::Borrowed(H), Bytes::from("old")));
        let out = v.stamp(out, v.of(&with("new")));
        assert_eq!(header(&out), vec![&b"new"[..]]);
        assert_eq!(v.for_fl(0), None, "nothing configured, nothing learned yet");
    }
}
