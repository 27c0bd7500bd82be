//! Command traces (`fl_router_actors::runtime::traces`): the cost per command of the steps a forwarded
//! command records (received, forwarded, forward delivered) and the heap held per kept life.
//!
//!   cargo bench -p fl-router-actors --bench trace

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use fl_router_actors::runtime::traces::{Delivery, DeliveryNote, Step, Traces};

#[path = "common/counting.rs"]
mod counting;
use counting::{Counting, LIVE};

#[global_allocator]
static GLOBAL: Counting = Counting;

const KEPT: usize = 50_000;
const COMMANDS: usize = 1_000_000;

fn main() {
    let topic: Arc<str> = Arc::from("kilda.speaker");
    let read_topic: Arc<str> = Arc::from("kilda.speaker.fl1");
    let fl: Arc<str> = Arc::from("fl1");
    let switch: Arc<str> = Arc::from("00:00:00:00:00:00:00:01");
    let cids: Vec<String> = (0..COMMANDS)
        .map(|i| {
            format!(
                "{}",
                uuid::Uuid::from_u128(i as u128 * 0x9e37_79b9_7f4a_7c15)
            )
        })
        .collect();
    let before = LIVE.load(Relaxed);
    let traces = Traces::new(KEPT);
    let start = Instant::now();
    for (i, cid) in cids.iter().enumerate() {
        traces.record(
            cid,
            Step::Received {
                topic: topic.clone(),
                partition: 0,
                offset: i as i64,
                key: Some(Bytes::from(cid.clone())),
            },
        );
        traces.record(
            cid,
            Step::Forwarded {
                fl: fl.clone(),
                switch: switch.clone(),
                topic: read_topic.clone(),
            },
        );
        if let Some(note) = DeliveryNote::new(&traces, cid, Delivery::Forward, &read_topic) {
            note.delivered(1, i as i64);
        }
    }
    let took = start.elapsed();
    let held = LIVE.load(Relaxed).saturating_sub(before) as f64;
    let w = traces.window();
    let lookup = Instant::now();
    let found = traces
        .life(&cids[COMMANDS - 1])
        .map_or(0, |l| l.steps.len());
    println!(
        "{COMMANDS} commands, 3 steps each: {:.0} ns per command; {} steps kept (sized for {} commands), heap {:.1} MiB = {:.0} bytes per step, {:.0} per command; reading one life: {:.1} ms ({found} steps)",
        took.as_nanos() as f64 / COMMANDS as f64,
        w.kept_steps,
        w.commands,
        held / (1024.0 * 1024.0),
        held / w.kept_steps as f64,
        held / w.kept_steps as f64 * 3.0,
        lookup.elapsed().as_secs_f64() * 1000.0,
    );
}
