//! Test support: an [`Outbox`] that records what the engine produces, for in-process tests of
//! the engine and of anything built on it. Not used by the running service.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::outbox::{Outbox, Outgoing};

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

    /// Everything produced so far, without waiting.
    pub fn drain(&mut self) -> Vec<Outgoing> {
        let mut v = Vec::new();
        while let Ok(m) = self.0.try_recv() {
            v.push(m);
        }
        v
    }
}
