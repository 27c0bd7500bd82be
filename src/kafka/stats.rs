//! Figures from librdkafka's statistics callback (`statistics.interval.ms`): the producer's
//! queue depth and each consumer's lag, for the metrics endpoint.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use rdkafka::Statistics;

/// How often librdkafka reports statistics.
pub const INTERVAL_MS: &str = "5000";

#[derive(Debug, Default)]
pub struct KafkaStats {
    /// Messages in the producer's queues (waiting or in flight).
    pub producer_queue: AtomicI64,
    /// Sum of partition lags of the command consumer.
    pub commands_lag: AtomicI64,
    /// Sum of partition lags of the FL-output consumer.
    pub fl_lag: AtomicI64,
}

impl KafkaStats {
    pub fn producer(&self, s: &Statistics) {
        self.producer_queue.store(s.msg_cnt as i64, Relaxed);
    }

    pub fn consumer(&self, name: &str, s: &Statistics) {
        let lag: i64 = s
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .map(|p| p.consumer_lag)
            .filter(|l| *l >= 0)
            .sum();
        match name {
            "commands" => self.commands_lag.store(lag, Relaxed),
            "fl" => self.fl_lag.store(lag, Relaxed),
            _ => {}
        }
    }
}
