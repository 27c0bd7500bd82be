//! The Kafka side of the shell: client configuration, consumers, the producer-backed outbox,
//! offset tracking and topic set-up. Everything else in the router is Kafka-agnostic.

pub mod consumer;
pub mod offsets;
pub mod producer;
pub mod topics;

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

/// Settings every client shares: brokers plus `kafka.options`.
pub fn base_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers);
    for (name, value) in &k.options {
        c.set(name, value);
    }
    c
}

pub fn consumer_config(k: &KafkaConfig, group: &str) -> ClientConfig {
    let mut c = base_config(k);
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        // A restarted router gets its partitions back after the old member's session expires.
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000");
    for (name, value) in &k.consumer {
        c.set(name, value);
    }
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    c
}

pub fn producer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = base_config(k);
    c.set("linger.ms", "1")
        .set("queue.buffering.max.messages", "1000000");
    for (name, value) in &k.producer {
        c.set(name, value);
    }
    c.set("enable.idempotence", "true");
    c
}
