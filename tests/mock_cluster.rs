//! Paths a real broker cannot provoke on demand, on librdkafka's mock cluster (protocol-error
//! injection): transient produce errors, a produce error retrying cannot fix, a dead-letter
//! topic that refuses what it is sent, and a rebalance with inputs still in flight. The real
//! broker tests (`restart.rs`) cover the rest.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fl_router::kafka::consumer::{self, TrackedConsumer};
use fl_router::kafka::offsets::OffsetTracker;
use fl_router::kafka::producer::KafkaOutbox;
use fl_router_actors::runtime::outbox::headers;
use fl_router_actors::{Outbox, Outgoing, Ticket};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::ClientConfig;

const DEAD: &str = "dead";
const OUT: &str = "out";
const WAIT: Duration = Duration::from_secs(30);

/// A ticket whose release is observable.
struct Flag(Arc<AtomicBool>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn flagged() -> (Ticket, Arc<AtomicBool>) {
    let f = Arc::new(AtomicBool::new(false));
    (Ticket::new(Flag(f.clone())), f)
}

fn cluster() -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
) {
    let c = MockCluster::new(1).expect("mock cluster");
    for t in [DEAD, OUT] {
        c.create_topic(t, 1, 1).expect("topic");
    }
    let b = c.bootstrap_servers();
    (c, b)
}

fn producer_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .set("retry.backoff.ms", "10")
        .set("enable.idempotence", "true");
    c
}

async fn released(flag: &AtomicBool) {
    tokio::time::timeout(WAIT, async {
        while !flag.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("ticket released (delivered)");
}

/// A record's value and one of its headers.
type ValueAndHeader = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Everything on `topic` so far: (value, header `name`).
fn read_all(brokers: &str, topic: &str, name: &str) -> Vec<ValueAndHeader> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("r-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (_, high) = c.fetch_watermarks(topic, 0, WAIT).unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    while (out.len() as i64) < high {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let h = m.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value.map(<[u8]>::to_vec))
            });
            out.push((m.payload().map(<[u8]>::to_vec), h));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_produce_error_is_retried_by_librdkafka_and_released_only_on_delivery() {
    let (cluster, brokers) = cluster();
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    let outbox = KafkaOutbox::start(&producer_config(&brokers), DEAD.into(), 5, None).unwrap();
    let (ticket, flag) = flagged();
    outbox.send(Outgoing::new(OUT, &b"hello"[..]).ticket(&ticket));
    drop(ticket);
    released(&flag).await;
    let c = &outbox.counters;
    assert_eq!(c.delivered.load(Ordering::SeqCst), 1);
    assert_eq!(c.dead_lettered.load(Ordering::SeqCst), 0);
    assert_eq!(
        c.retried.load(Ordering::SeqCst),
        0,
        "librdkafka's own retries suffice; no retry on top"
    );
    assert_eq!(read_all(&brokers, OUT, "x").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_retrying_cannot_fix_goes_to_the_dead_letter_topic_at_once() {
    let (cluster, brokers) = cluster();
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let outbox = KafkaOutbox::start(&producer_config(&brokers), DEAD.into(), 5, None).unwrap();
    let (ticket, flag) = flagged();
    outbox.send(Outgoing::new(OUT, &b"refused"[..]).ticket(&ticket));
    drop(ticket);
    released(&flag).await;
    let c = &outbox.counters;
    assert_eq!(c.retried.load(Ordering::SeqCst), 0, "not retried");
    assert_eq!(c.dead_lettered.load(Ordering::SeqCst), 1);
    let dl = read_all(&brokers, DEAD, headers::DEAD_LETTER_REASON);
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0].0.as_deref(), Some(&b"refused"[..]));
    let reason = String::from_utf8(dl[0].1.clone().unwrap()).unwrap();
    assert!(reason.contains("delivery to out failed"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_dead_letter_is_reduced_and_only_kept_when_even_its_headers_are_refused() {
    let (cluster, brokers) = cluster();
    let too_large = RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
    let outbox = KafkaOutbox::start(&producer_config(&brokers), DEAD.into(), 5, None).unwrap();
    let big = vec![b'x'; 40_000];

    // The original and two dead-letter forms refused: the headers-only form goes through.
    cluster.request_errors(RDKafkaApiKey::Produce, &[too_large; 3]);
    let (ticket, flag) = flagged();
    outbox.send(Outgoing::new(OUT, big.clone()).ticket(&ticket));
    drop(ticket);
    released(&flag).await;
    let c = &outbox.counters;
    assert_eq!(c.reduced.load(Ordering::SeqCst), 2);
    let dl = read_all(&brokers, DEAD, headers::DEAD_LETTER_REDUCED);
    assert_eq!(dl.len(), 1);
    assert_eq!(dl[0].0.as_deref().map(<[u8]>::len).unwrap_or(0), 0);
    assert_eq!(dl[0].1.as_deref(), Some(&b"0"[..]));

    // Every form refused: the input is kept (its offset stays uncommitted), loudly.
    cluster.request_errors(RDKafkaApiKey::Produce, &[too_large; 4]);
    let (ticket, flag) = flagged();
    outbox.send(Outgoing::new(OUT, big).ticket(&ticket));
    drop(ticket);
    tokio::time::timeout(WAIT, async {
        while c.stuck.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("counted as stuck");
    assert!(
        !flag.load(Ordering::SeqCst),
        "its ticket is held on purpose"
    );
}

fn group_consumer(brokers: &str, group: &str, instance: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("group.instance.id", instance)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("fetch.wait.max.ms", "10");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rebalance_a_partition_goes_on_after_what_was_read_not_from_the_commit() {
    let (cluster, brokers) = cluster();
    cluster.create_topic("cmds", 1, 1).unwrap();
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    for i in 0..10 {
        p.send(BaseRecord::<str, str>::to("cmds").payload(&format!("m{i}")))
            .unwrap();
    }
    p.flush(WAIT).unwrap();

    let tracker = OffsetTracker::new();
    let a: TrackedConsumer = consumer::create(
        &group_consumer(&brokers, "g", "a"),
        "commands",
        &["cmds".to_string()],
        tracker.clone(),
        None,
    )
    .unwrap();
    // Read all ten; the first five are answered, the rest still in the engine's care.
    let mut held = Vec::new();
    for i in 0..10 {
        let m = tokio::time::timeout(WAIT, a.recv())
            .await
            .expect("a reads")
            .unwrap();
        let t = tracker.track(m.topic(), m.partition(), m.offset());
        if i >= 5 {
            held.push(t);
        }
    }
    consumer::commit(
        &a,
        &tracker,
        "commands",
        true,
        rdkafka::consumer::CommitMode::Sync,
    );
    // Another member joins and leaves: the partition is revoked and assigned again.
    {
        let b: StreamConsumer = group_consumer(&brokers, "g", "b").create().unwrap();
        b.subscribe(&["cmds"]).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(8), b.recv()).await;
    }
    p.send(BaseRecord::<str, str>::to("cmds").payload("m10"))
        .unwrap();
    p.flush(WAIT).unwrap();
    let m = tokio::time::timeout(WAIT, a.recv())
        .await
        .expect("a reads again")
        .unwrap();
    assert_eq!(
        m.offset(),
        10,
        "the in-flight commands 5..9 are not read (and judged) a second time"
    );
    drop(held);
}
