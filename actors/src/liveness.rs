//! What the engine knows about each FL's liveness: when it last said anything (evidence) and
//! its status. Shared atomics: every FL message stamps its FL's evidence (one store, no actor
//! message per FL message); only the `OutageMonitor` changes a status; anyone may read.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlStatus {
    /// Not yet heard from since the router started; not declared offline before a full timeout.
    Starting,
    Online,
    Offline,
}

pub struct Liveness {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last evidence, rounded up, plus one (0 = never).
    /// Rounding up means evidence is never reported older than it was.
    last_evidence: Vec<AtomicU64>,
    status: Vec<AtomicU8>,
}

impl Liveness {
    pub fn new(fls: usize) -> Self {
        Self {
            epoch: Instant::now(),
            last_evidence: (0..fls).map(|_| AtomicU64::new(0)).collect(),
            status: (0..fls).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    /// FL `fl` said something just now.
    pub fn evidence(&self, fl: usize) {
        let ms = self.epoch.elapsed().as_micros().div_ceil(1000) as u64 + 1;
        if let Some(a) = self.last_evidence.get(fl) {
            a.store(ms, Relaxed);
        }
    }

    pub fn last_evidence(&self, fl: usize) -> Option<Instant> {
        match self.last_evidence.get(fl)?.load(Relaxed) {
            0 => None,
            ms => Some(self.epoch + std::time::Duration::from_millis(ms - 1)),
        }
    }

    pub fn status(&self, fl: usize) -> FlStatus {
        match self.status.get(fl).map_or(0, |s| s.load(Relaxed)) {
            1 => FlStatus::Online,
            2 => FlStatus::Offline,
            _ => FlStatus::Starting,
        }
    }

    pub fn set_status(&self, fl: usize, status: FlStatus) {
        if let Some(s) = self.status.get(fl) {
            s.store(
                match status {
                    FlStatus::Starting => 0,
                    FlStatus::Online => 1,
                    FlStatus::Offline => 2,
                },
                Relaxed,
            );
        }
    }
}
