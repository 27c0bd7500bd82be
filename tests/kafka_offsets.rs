//! `kafka::end_offsets` (one ListOffsets round for every partition asked, metadata of those
//! topics only) agrees with each partition's high watermark on a real broker, and names a
//! topic that does not exist.

mod common;

use std::time::Duration;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_offsets_are_the_high_watermarks_of_every_partition() {
    let w = World::new(&["fl1"], "5s").await;
    add_partitions(&w.commands, 3).await;
    let p = producer();
    // Uneven partitions: 5, 0 and 12 records.
    for (partition, n) in [(0, 5), (2, 12)] {
        for i in 0..n {
            p.send(
                rdkafka::producer::FutureRecord::<str, str>::to(&w.commands)
                    .partition(partition)
                    .payload(&format!("r{i}")),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
        }
    }
    let consumer: BaseConsumer = sim_client().create().unwrap();
    let topics = vec![w.commands.clone()];
    let ends = tokio::task::spawn_blocking(move || {
        let ends = fl_router::kafka::end_offsets(&consumer, &topics, Duration::from_secs(20))
            .expect("end offsets");
        let marks: Vec<i64> = (0..3)
            .map(|p| {
                consumer
                    .fetch_watermarks(&topics[0], p, Duration::from_secs(10))
                    .unwrap()
                    .1
            })
            .collect();
        let missing = fl_router::kafka::end_offsets(
            &consumer,
            &["no-such-topic-for-end-offsets".to_string()],
            Duration::from_millis(500),
        );
        (ends, marks, missing)
    })
    .await
    .unwrap();
    let (ends, marks, missing) = ends;
    let got: Vec<(i32, i64)> = ends.iter().map(|(_, p, h)| (*p, *h)).collect();
    assert_eq!(got, vec![(0, 5), (1, 0), (2, 12)]);
    assert_eq!(marks, vec![5, 0, 12]);
    let err = missing
        .expect_err("a missing topic is an error")
        .to_string();
    assert!(err.contains("no-such-topic-for-end-offsets"), "{err}");
}
