//! Test support: an [`Outbox`] that records what the engine produces, for in-process tests of
//! the engine and of anything built on it. Not used by the running service.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::runtime::outbox::{Outbox, Outgoing};
use crate::settings::{FlSettings, Settings};

/// Settings with FLs `ids` and nothing the engine starts on its own: no startup or periodic
/// sync, liveness out of the way. Tests of one behaviour switch back on what they test.
pub fn quiet_settings(ids: &[&str]) -> Settings {
    let mut s = Settings {
        fls: ids
            .iter()
            .map(|id| FlSettings {
                id: id.to_string(),
                region: None,
            })
            .collect(),
        ..Settings::default()
    };
    // One shard: everything on the test's own thread, so virtual time reaches every timer.
    s.engine.shards = 1;
    s.sync.at_start = false;
    s.sync.periodic = Duration::ZERO;
    s.timeouts.alive_interval = Duration::from_secs(3600);
    s.timeouts.alive_timeout = Duration::from_secs(7200);
    s
}

/// Sends every produced message into a channel. By default delivery is instant: the tickets
/// are released as the message is recorded, as a Kafka producer releases them on its delivery
/// report. With [`recording_outbox_held`] the recorded message keeps them, and dropping it is
/// its delivery (for tests of when an input's offset is released).
///
/// Records on the default journal topic go to their own stream ([`Recorded::journal`]): most
/// tests are about what controllers and FLs see.
pub struct RecordingOutbox {
    tx: mpsc::UnboundedSender<Outgoing>,
    journal_tx: mpsc::UnboundedSender<Outgoing>,
    journal_topic: String,
    hold_tickets: bool,
}

impl Outbox for RecordingOutbox {
    fn send(&self, mut msg: Outgoing) {
        if !self.hold_tickets {
            msg.tickets.clear();
        }
        let tx = if *msg.topic == *self.journal_topic {
            &self.journal_tx
        } else {
            &self.tx
        };
        let _ = tx.send(msg);
    }
}

/// The receiving end: what the engine produced, in order. Dropping it (at the end of a test)
/// checks that no command's final answer was silently dropped on this thread
/// ([`crate::runtime::obligation`]): with one shard every actor runs on the test's thread.
pub struct Recorded(
    mpsc::UnboundedReceiver<Outgoing>,
    mpsc::UnboundedReceiver<Outgoing>,
);

fn recording(hold_tickets: bool) -> (std::sync::Arc<RecordingOutbox>, Recorded) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (journal_tx, journal_rx) = mpsc::unbounded_channel();
    let outbox = RecordingOutbox {
        tx,
        journal_tx,
        journal_topic: crate::settings::TopicSettings::default().journal,
        hold_tickets,
    };
    (std::sync::Arc::new(outbox), Recorded(rx, journal_rx))
}

pub fn recording_outbox() -> (std::sync::Arc<RecordingOutbox>, Recorded) {
    recording(false)
}

/// Like [`recording_outbox`], but a recorded message is delivered when the test drops it.
pub fn recording_outbox_held() -> (std::sync::Arc<RecordingOutbox>, Recorded) {
    recording(true)
}

impl Recorded {
    /// The next produced message; panics (failing the test) if none comes within `within`.
    pub async fn next_within(&mut self, within: Duration) -> Outgoing {
        match tokio::time::timeout(within, self.0.recv()).await {
            Ok(Some(m)) => m,
            Ok(None) => panic!("outbox closed"),
            Err(_) => panic!("nothing produced within {within:?}"),
        }
    }

    /// Reads until a message matches `pred`; returns everything read, the match last. Panics
    /// (failing the test) if no match comes within `within`.
    pub async fn until(
        &mut self,
        within: Duration,
        mut pred: impl FnMut(&Outgoing) -> bool,
    ) -> Vec<Outgoing> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.0.recv()).await {
                Ok(Some(m)) => {
                    let hit = pred(&m);
                    seen.push(m);
                    if hit {
                        return seen;
                    }
                }
                Ok(None) => panic!("outbox closed"),
                Err(_) => panic!(
                    "no matching message within {within:?}; saw {} others",
                    seen.len()
                ),
            }
        }
    }

    /// Everything produced within `d` (none is fine): for asserting that nothing happens yet.
    pub async fn collect_for(&mut self, d: Duration) -> Vec<Outgoing> {
        let deadline = tokio::time::Instant::now() + d;
        let mut seen = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, self.0.recv()).await {
            seen.push(m);
        }
        seen
    }

    /// Journal records produced so far (see `previous`), without waiting.
    pub fn journal(&mut self) -> Vec<Outgoing> {
        let mut v = Vec::new();
        while let Ok(m) = self.1.try_recv() {
            v.push(m);
        }
        v
    }

    /// Everything produced so far, without waiting.
    pub fn drain(&mut self) -> Vec<Outgoing> {
        let mut v = Vec::new();
        while let Ok(m) = self.0.try_recv() {
            v.push(m);
        }
        v
    }
}

/// A switch-map record (as `topics.switch_map` holds it) of `switch` connected read-write to
/// FL `fl` only, for [`crate::Engine::restore_switch_map`].
pub fn stored_switch(switch: &str, fl: &str) -> (String, bytes::Bytes) {
    let value = serde_json::json!({
        "active": fl,
        "connections": [{"fl": fl, "mode": "read_write", "since": 0, "via": "event"}],
    });
    (switch.to_string(), bytes::Bytes::from(value.to_string()))
}

/// Starts an engine on `settings` with a [`recording_outbox`].
pub fn start_recorded(settings: Settings) -> (crate::Engine, Recorded) {
    let (outbox, rec) = recording_outbox();
    (
        crate::Engine::start(settings, outbox).expect("valid settings"),
        rec,
    )
}

/// The engine's counter `name` (`Counters::snapshot` names); an unknown name fails the test.
pub fn counter(engine: &crate::Engine, name: &str) -> u64 {
    engine
        .counters()
        .snapshot()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no engine counter named {name:?}"))
}

/// A produced message's JSON (`Null` when it is not JSON, e.g. a tombstone).
pub fn body(o: &Outgoing) -> serde_json::Value {
    serde_json::from_slice(&o.payload).unwrap_or(serde_json::Value::Null)
}

/// A produced message's payload class (empty when it has none).
pub fn class_of(o: &Outgoing) -> String {
    body(o)["payload"]["clazz"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

impl Drop for Recorded {
    fn drop(&mut self) {
        let unmet = crate::runtime::obligation::unmet_here();
        if unmet > 0 && !std::thread::panicking() {
            panic!("{unmet} command obligation(s) dropped without a final answer on this thread");
        }
    }
}
