//! Test support: an [`Outbox`] that records what the engine produces, for in-process tests of
//! the engine and of anything built on it. Not used by the running service.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::outbox::{Outbox, Outgoing};
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
    s.sync.at_start = false;
    s.sync.periodic = Duration::ZERO;
    s.timeouts.alive_interval = Duration::from_secs(3600);
    s.timeouts.alive_timeout = Duration::from_secs(7200);
    s
}

/// Sends every produced message into a channel.
pub struct RecordingOutbox(mpsc::UnboundedSender<Outgoing>);

impl Outbox for RecordingOutbox {
    fn send(&self, msg: Outgoing) {
        let _ = self.0.send(msg);
    }
}

/// The receiving end: what the engine produced, in order.
pub struct Recorded(mpsc::UnboundedReceiver<Outgoing>);

pub fn recording_outbox() -> (std::sync::Arc<RecordingOutbox>, Recorded) {
    let (tx, rx) = mpsc::unbounded_channel();
    (std::sync::Arc::new(RecordingOutbox(tx)), Recorded(rx))
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

    /// Everything produced so far, without waiting.
    pub fn drain(&mut self) -> Vec<Outgoing> {
        let mut v = Vec::new();
        while let Ok(m) = self.0.try_recv() {
            v.push(m);
        }
        v
    }
}
