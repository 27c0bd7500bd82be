//! Router-added latency: from the moment the shell read a message to the moment it handed
//! what the engine made of it (the forward, the routed answer or event) to the producer — the
//! router's own time, from its own clock; Kafka's delivery is not in it.
//!
//! Recorded on every forward and routed FL message, from several threads: each thread records
//! into its own HDR histogram (hdrhistogram), under a lock no other thread takes but the
//! sampler once a second, which takes and resets them ([`RouterLatency::take`]).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

const SHARDS: usize = 16;
/// Up to an hour, in microseconds, 2 significant digits (1 % error).
const MAX_US: u64 = 3_600_000_000;

pub struct RouterLatency {
    shards: Box<[Mutex<Histogram<u64>>]>,
}

fn shard_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

pub fn empty() -> Histogram<u64> {
    // Bounds that are valid by construction: 1 µs .. 1 h, 2 digits.
    Histogram::new_with_bounds(1, MAX_US, 2).unwrap_or_else(|_| {
        Histogram::new(2).unwrap_or_else(|_| unreachable!("2 significant digits are valid"))
    })
}

impl Default for RouterLatency {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(empty())).collect(),
        }
    }
}

impl RouterLatency {
    pub fn record(&self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, MAX_US);
        if let Ok(mut h) = self.shards[shard_of_this_thread()].lock() {
            // Within the bounds (clamped): cannot fail.
            let _ = h.record(us);
        }
    }

    /// Everything recorded since the last call, merged; the shards start again empty.
    pub fn take(&self) -> Histogram<u64> {
        let mut all = empty();
        for s in self.shards.iter() {
            if let Ok(mut h) = s.lock() {
                let _ = all.add(&*h);
                h.reset();
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_what_every_thread_recorded_and_starts_again() {
        let l = std::sync::Arc::new(RouterLatency::default());
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let l = l.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        l.record(Duration::from_micros(100 * (i + 1)));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let h = l.take();
        assert_eq!(h.len(), 400);
        assert!(
            (390..=410).contains(&h.value_at_quantile(0.99)),
            "{}",
            h.value_at_quantile(0.99)
        );
        assert_eq!(l.take().len(), 0);
    }
}
