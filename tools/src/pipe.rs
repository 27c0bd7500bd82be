//! The baseline for benchmarks: a plain consume → lookup → produce pipe. A command goes to the
//! read topic of the FL whose simulated switch (`sim.switches_per_fl`, the simulator's ids) its
//! bytes name after `"switch_id":"` (a byte search and one hash lookup, no JSON parsing; the
//! first FL when none matches), and everything the FLs write is copied to one reply topic,
//! through the same Kafka clients, offset tracking and idempotent producer the router uses, with
//! no actors. Router figures divided by pipe figures are the router's own cost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fl_router_actors::runtime::outbox::headers;
use fl_router_actors::{Outbox, Outgoing};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::Setup;
use fl_router::kafka;
use fl_router::kafka::consumer::{self, TrackedConsumer};
use fl_router::kafka::offsets::OffsetTracker;
use fl_router::kafka::producer::KafkaOutbox;

/// Creates the topics the pipe needs; returns its routing table.
pub async fn prepare(setup: &Setup, reply_topic: &str) -> anyhow::Result<Route> {
    let config = &setup.config;
    let mut topics = kafka::topics::all_topics(config);
    topics.insert(reply_topic.to_string());
    kafka::topics::ensure(config, &kafka::base_config(&config.kafka), &topics).await?;
    route(setup)
}

/// Every simulated switch → its FL's read topic; the first FL's for any other.
pub fn route(setup: &Setup) -> anyhow::Result<Route> {
    let config = &setup.config;
    let fl = config
        .fls
        .first()
        .ok_or_else(|| anyhow::anyhow!("pipe: no FL configured"))?;
    let mut table: HashMap<Vec<u8>, Arc<str>> = HashMap::new();
    for (i, f) in config.fls.iter().enumerate() {
        let topic: Arc<str> = Arc::from(config.topics.fl_read_topic(&f.id));
        for j in 0..setup.sim.switches_per_fl {
            table.insert(crate::sim::fl::switch_id(i, j).into_bytes(), topic.clone());
        }
    }
    Ok(Route {
        table: Arc::new(table),
        default: Arc::from(config.topics.fl_read_topic(&fl.id)),
    })
}

/// The lean pipe (`pipe --lean`), on the calling thread until `stop`: one consumer of the
/// command topics and the FL write topics, one producer, a byte scan and a hash lookup per
/// command; offsets stored once a copy is queued and committed by librdkafka every
/// `kafka.commit_interval` (no delivery tracking: the leanest honest consume → produce).
/// With `pending` (`pipe --lean --pending`) it also keeps what any router that answers every
/// command must hold until the answer comes ([`Pending`]): the floor of a router's state.
pub fn run_lean(
    setup: &Setup,
    reply_topic: &str,
    route: Route,
    stop: &std::sync::atomic::AtomicBool,
    pending: bool,
) -> anyhow::Result<()> {
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use rdkafka::types::RDKafkaErrorCode;
    let config = &setup.config;
    let k = &config.kafka;
    let commands: std::collections::HashSet<String> =
        config.topics.command_topics().into_iter().collect();
    let mut from: Vec<String> = commands.iter().cloned().collect();
    from.extend(
        config
            .fls
            .iter()
            .map(|f| config.topics.fl_write_topic(&f.id)),
    );
    let consumer: BaseConsumer = {
        let mut c = kafka::base_config(k);
        c.set("group.id", format!("{}-lean", k.group_id))
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.commit.interval.ms",
                k.commit_interval.as_millis().to_string(),
            )
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "100");
        c.create()?
    };
    let refs: Vec<&str> = from.iter().map(String::as_str).collect();
    consumer.subscribe(&refs)?;
    let producer: BaseProducer = {
        let mut c = kafka::base_config(k);
        c.set("linger.ms", "1")
            .set("queue.buffering.max.messages", "1000000");
        c.create()?
    };
    let to = Destination::Lookup(route);
    let reply = Destination::Fixed(Arc::from(reply_topic));
    let mut assigned = false;
    let mut pending = pending.then(|| Pending::new(config.timeouts.ack));
    let mut expired = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        producer.poll(Duration::ZERO);
        if let Some(p) = pending.as_mut() {
            // A real router answers these with an error; the floor only forgets them.
            p.expire(std::time::Instant::now(), &mut expired);
            expired.clear();
        }
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "lean pipe consume error");
                continue;
            }
        };
        if !assigned {
            assigned = true;
            info!(to = %to, "pipe consumer assigned");
        }
        let payload = m.payload().unwrap_or_default();
        let command = commands.contains(m.topic());
        let mut answer_to = None;
        if let Some(p) = pending.as_mut() {
            match command {
                true => p.keep(payload, reply_to_header(m.headers())),
                false => answer_to = p.answered(payload),
            }
        }
        let topic = match (command, &answer_to) {
            (true, _) => to.topic(payload),
            (false, Some(Some(t))) => t,
            (false, _) => reply.topic(payload),
        };
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(payload);
        if let Some(key) = m.key() {
            record = record.key(key);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    producer.poll(Duration::from_millis(10));
                    record = r;
                }
                Err((e, _)) => {
                    warn!(error = %e, "lean pipe produce error");
                    break;
                }
            }
        }
        let _ = consumer.store_offset_from_message(&m);
    }
    let _ = producer.flush(Duration::from_secs(5));
    Ok(())
}

/// Per pending command, what a router must keep to answer it (reply-to, when to give up),
/// found by a byte scan of `"correlation_id":"` like the switch: a map by correlation id and a
/// deadline queue (one timeout, so deadlines come in order). No trace, no class, no key.
/// Hashed with foldhash, as the router's pending table.
struct Pending {
    by_id: HashMap<Box<[u8]>, Option<Arc<str>>, foldhash::fast::RandomState>,
    deadlines: std::collections::VecDeque<(std::time::Instant, Box<[u8]>)>,
    timeout: Duration,
    names: std::collections::HashSet<Arc<str>>,
}

impl Pending {
    fn new(timeout: Duration) -> Pending {
        Pending {
            by_id: HashMap::default(),
            deadlines: Default::default(),
            timeout,
            names: Default::default(),
        }
    }

    fn correlation_id(payload: &[u8]) -> Option<&[u8]> {
        const NEEDLE: &[u8] = br#""correlation_id":""#;
        let at = memchr::memmem::find(payload, NEEDLE)?;
        let rest = &payload[at + NEEDLE.len()..];
        Some(&rest[..memchr::memchr(b'"', rest)?])
    }

    fn keep(&mut self, payload: &[u8], reply_to: Option<&str>) {
        let Some(id) = Self::correlation_id(payload) else {
            return;
        };
        let reply_to = reply_to.map(|name| match self.names.get(name) {
            Some(n) => n.clone(),
            None => {
                let n: Arc<str> = Arc::from(name);
                self.names.insert(n.clone());
                n
            }
        });
        let id: Box<[u8]> = id.into();
        self.deadlines
            .push_back((std::time::Instant::now() + self.timeout, id.clone()));
        self.by_id.insert(id, reply_to);
    }

    /// The reply-to of the command this answers, if it was pending (`Some(None)`: no reply-to).
    fn answered(&mut self, payload: &[u8]) -> Option<Option<Arc<str>>> {
        self.by_id.remove(Self::correlation_id(payload)?)
    }

    fn expire(&mut self, now: std::time::Instant, out: &mut Vec<Box<[u8]>>) {
        while self.deadlines.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, id)) = self.deadlines.pop_front() {
                if self.by_id.remove(&id).is_some() {
                    out.push(id);
                }
            }
        }
    }
}

fn reply_to_header(headers: Option<&rdkafka::message::BorrowedHeaders>) -> Option<&str> {
    use rdkafka::message::Headers;
    let h = headers?.iter().find(|h| h.key == headers::REPLY_TO)?;
    std::str::from_utf8(h.value?).ok()
}

/// Runs the pipe until `shutdown` resolves.
pub async fn run(
    setup: &Setup,
    reply_topic: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = &setup.config;
    let k = &config.kafka;
    let route = prepare(setup, reply_topic).await?;
    let outbox = KafkaOutbox::start(
        &kafka::producer_config(k),
        config.topics.dead_letter.clone(),
        k.produce_retries,
        None,
    )?;
    let (stop_tx, stop) = watch::channel(false);
    let write_topics: Vec<String> = config
        .fls
        .iter()
        .map(|f| config.topics.fl_write_topic(&f.id))
        .collect();
    let mut loops = Vec::new();
    for (name, from, to) in [
        (
            "pipe-commands",
            config.topics.commands.clone(),
            Destination::Lookup(route),
        ),
        (
            "pipe-fl",
            write_topics,
            Destination::Fixed(Arc::from(reply_topic)),
        ),
    ] {
        let tracker = OffsetTracker::new();
        let c = consumer::create(
            &kafka::consumer_config(k, &format!("{}-{name}", k.group_id), None),
            "pipe",
            &from,
            tracker.clone(),
            None,
        )?;
        loops.push(tokio::spawn(copy(
            Arc::new(c),
            tracker,
            outbox.clone(),
            to,
            stop.clone(),
            k.commit_interval,
        )));
    }
    info!(fls = config.fls.len(), "pipe started");
    shutdown.await;
    let _ = stop_tx.send(true);
    for l in loops {
        let _ = l.await;
    }
    outbox.flush(Duration::from_secs(5));
    Ok(())
}

/// Where the pipe copies a message.
enum Destination {
    Fixed(Arc<str>),
    Lookup(Route),
}

#[derive(Clone)]
pub struct Route {
    table: Arc<HashMap<Vec<u8>, Arc<str>>>,
    default: Arc<str>,
}

impl Route {
    /// The table as `switch<TAB>topic` lines, and the topic for any other switch (the Kafka
    /// Streams baseline reads them from a file).
    pub fn lines(&self) -> (String, &str) {
        let mut out = String::new();
        for (switch, topic) in self.table.iter() {
            out.push_str(&String::from_utf8_lossy(switch));
            out.push('\t');
            out.push_str(topic);
            out.push('\n');
        }
        (out, &self.default)
    }
}

impl Destination {
    fn topic(&self, payload: &[u8]) -> &str {
        match self {
            Destination::Fixed(t) => t,
            Destination::Lookup(r) => {
                const NEEDLE: &[u8] = br#""switch_id":""#;
                memchr::memmem::find(payload, NEEDLE)
                    .and_then(|at| {
                        let rest = &payload[at + NEEDLE.len()..];
                        let end = memchr::memchr(b'"', rest)?;
                        r.table.get(&rest[..end])
                    })
                    .unwrap_or(&r.default)
            }
        }
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Fixed(t) => write!(f, "{t}"),
            Destination::Lookup(r) => write!(f, "{} FLs by switch", r.table.len()),
        }
    }
}

async fn copy(
    consumer: Arc<TrackedConsumer>,
    tracker: Arc<OffsetTracker>,
    outbox: Arc<KafkaOutbox>,
    to: Destination,
    mut stop: watch::Receiver<bool>,
    commit_interval: Duration,
) {
    let mut tick = tokio::time::interval(commit_interval);
    let mut assigned = false;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                consumer::commit(&*consumer, &tracker, "pipe", false, CommitMode::Async);
                if !assigned && consumer.assignment().map(|a| a.count() > 0).unwrap_or(false) {
                    assigned = true;
                    info!(to = %to, "pipe consumer assigned");
                }
            }
            m = consumer.recv() => match m {
                Ok(m) => {
                    let ticket = tracker.track(m.topic(), m.partition(), m.offset());
                    let payload = m.payload().unwrap_or_default();
                    let out = Outgoing::new(to.topic(payload), Bytes::copy_from_slice(payload))
                        .key_opt(m.key().map(Bytes::copy_from_slice))
                        .ticket(&ticket);
                    outbox.send(out);
                }
                Err(e) => {
                    warn!(error = %e, "pipe consume error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    consumer::commit(&*consumer, &tracker, "pipe", true, CommitMode::Sync);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(cid: &str) -> Vec<u8> {
        format!(r#"{{"clazz":"x","correlation_id":"{cid}","payload":{{"switch_id":"00:01"}}}}"#)
            .into_bytes()
    }

    #[test]
    fn the_floor_keeps_a_command_until_its_answer_or_its_deadline() {
        let mut p = Pending::new(Duration::from_secs(10));
        p.keep(&command("a"), Some("kilda.northbound"));
        p.keep(&command("b"), None);
        p.keep(b"not a command", None);
        assert_eq!(p.by_id.len(), 2, "one entry per command with an id");
        let to = p.answered(&command("a")).expect("a was pending");
        assert_eq!(to.as_deref(), Some("kilda.northbound"));
        assert!(p.answered(&command("a")).is_none(), "answered once");
        let mut expired = Vec::new();
        p.expire(std::time::Instant::now(), &mut expired);
        assert!(expired.is_empty(), "nothing is due yet");
        p.expire(
            std::time::Instant::now() + Duration::from_secs(11),
            &mut expired,
        );
        assert_eq!(
            expired,
            vec![Box::<[u8]>::from(&b"b"[..])],
            "only the unanswered one"
        );
        assert!(p.by_id.is_empty() && p.deadlines.is_empty());
    }
}
