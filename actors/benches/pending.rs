//! Heap held by the engine per pending command: 200,000 single-switch commands (256 bytes,
//! keyed by correlation id, as OpenKilda sends them) forwarded to FLs that never answer. The
//! shell adds its offset guard per command on top (see docs/benchmarks.md).
//!
//! Prints the average (with the engine's bounded trace rings, full by then) and the marginal
//! cost from 100,000 to 200,000 pending; `PENDING_NO_TRACES=1` turns the traces off.
//!
//!   cargo bench -p fl-router-actors --bench pending

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use fl_router_actors::testkit::{quiet_settings, recording_outbox, stored_switch};
use fl_router_actors::{Engine, Inbound};

#[path = "common/counting.rs"]
mod counting;
use counting::{Counting, LIVE};

#[global_allocator]
static GLOBAL: Counting = Counting;

const COMMANDS: usize = 200_000;
const SWITCHES: usize = 1_000;

fn switch(i: usize) -> String {
    format!(
        "00:00:00:00:00:{:02x}:{:02x}:{:02x}",
        i % 4 + 1,
        i >> 8,
        i & 0xff
    )
}

fn command(cid: &str, sw: &str) -> Vec<u8> {
    let mut body = format!(
        r#"{{"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":"{cid}","timestamp":1,"payload":{{"clazz":"org.openkilda.messaging.command.switches.DumpRulesRequest","switch_id":"{sw}","pad":""}}}}"#
    );
    let pad = 256usize.saturating_sub(body.len());
    body.insert_str(body.len() - 3, &"x".repeat(pad));
    body.into_bytes()
}

/// Feeds commands `from..to`, waits until the proxies hold `to` pending, drops what was
/// produced; returns (pending, heap held since `before`).
async fn feed(
    engine: &Engine,
    rec: &mut fl_router_actors::testkit::Recorded,
    from: usize,
    to: usize,
    before: i64,
) -> (usize, i64) {
    for n in from..to {
        let cid = format!("bench-{n:09}");
        let msg =
            Inbound::new(command(&cid, &switch(n % SWITCHES))).key(bytes::Bytes::from(cid.clone()));
        engine.command(msg).await.expect("command");
        if n % 1024 == 0 {
            rec.drain(); // the forwarded copies, delivered
        }
    }
    // Let the proxies take the last commands, then drop what was produced.
    let mut pending = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        rec.drain();
        pending = 0;
        for fl in ["fl1", "fl2", "fl3", "fl4"] {
            pending += engine.fl_status(fl).await.expect("status").pending;
        }
        if pending == to {
            break;
        }
    }
    (pending, LIVE.load(Relaxed) - before)
}

fn main() {
    actix::System::new().block_on(async {
        let mut s = quiet_settings(&["fl1", "fl2", "fl3", "fl4"]);
        s.timeouts.ack = Duration::from_secs(3600);
        if std::env::var_os("PENDING_NO_TRACES").is_some() {
            s.limits.traced_commands = 0;
        }
        let (outbox, mut rec) = recording_outbox();
        let engine = Engine::start(s, outbox).expect("settings");
        let stored: Vec<_> = (0..SWITCHES)
            .map(|i| stored_switch(&switch(i), &format!("fl{}", i % 4 + 1)))
            .collect();
        engine.restore_switch_map(stored).await.expect("restore");
        // Heap held with `n` commands pending: fed, forwarded, the copies dropped.
        let before = LIVE.load(Relaxed);
        let started = Instant::now();
        let (half, held_half) = feed(&engine, &mut rec, 0, COMMANDS / 2, before).await;
        let (pending, held) = feed(&engine, &mut rec, COMMANDS / 2, COMMANDS, before).await;
        // The marginal cost is what a pending command costs; the average also carries the
        // engine's bounded stores (the trace rings, `limits.traced_commands`), full by then.
        println!(
            "{pending} commands pending: {:.0} bytes of heap each on average ({:.1} MiB in all); \
             {:.0} bytes per pending command from {half} to {pending}; fed in {:.2} s",
            held as f64 / pending.max(1) as f64,
            held as f64 / (1 << 20) as f64,
            (held - held_half) as f64 / (pending - half).max(1) as f64,
            started.elapsed().as_secs_f64()
        );
    });
}
