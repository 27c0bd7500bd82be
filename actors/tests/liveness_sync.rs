//! Liveness, outages, recovery and sync sessions, in-process with virtual time: each timeline of
//! issue 4 (outage and recovery; write errors; chains complete, with gaps, duplicated, empty,
//! never started; retries exhausted).

use std::time::Duration;

use fl_router_actors::fl::liveness::FlStatus;
use fl_router_actors::settings::{Classes, Timeouts};
use fl_router_actors::testkit::{body, class_of, quiet_settings, start_recorded, Recorded};
use fl_router_actors::{Engine, Inbound, Outgoing, Settings};
use serde_json::{json, Value};

const S1: &str = "00:00:00:00:00:00:00:01";
const S2: &str = "00:00:00:00:00:00:00:02";
const S3: &str = "00:00:00:00:00:00:00:03";

/// For liveness timelines: the default alive interval and timeout.
fn settings(at_start: bool) -> Settings {
    let mut s = sync_settings();
    s.sync.at_start = at_start;
    let defaults = Timeouts::default();
    s.timeouts.alive_interval = defaults.alive_interval;
    s.timeouts.alive_timeout = defaults.alive_timeout;
    s
}

/// For sync-only timelines: liveness out of the way (quiet FLs must not be declared offline);
/// periodic sync off (its own test below).
fn sync_settings() -> Settings {
    let mut s = quiet_settings(&["a", "b", "c"]);
    s.sync.at_start = true;
    s.timeouts.ack = Duration::from_secs(60); // so fail-fast is visible before any ack timeout
    s
}

fn start(s: Settings) -> (Engine, Recorded) {
    start_recorded(s)
}

fn classes() -> Classes {
    Classes::default()
}

fn is(o: &Outgoing, topic: &str, class: &str) -> bool {
    *o.topic == *topic && class_of(o) == class
}

fn info(cid: &str, payload: Value) -> Vec<u8> {
    json!({"clazz": classes().info_message, "correlation_id": cid, "timestamp": 1, "payload": payload})
        .to_string()
        .into_bytes()
}

fn switch_up(sw: &str) -> Vec<u8> {
    info(
        "ev",
        json!({"clazz":"org.openkilda.messaging.info.event.SwitchInfoData","switch_id":sw,"state":"ACTIVATED"}),
    )
}

fn chain(cid: &str, index: u64, total: u64, sw: Option<&str>) -> Vec<u8> {
    let payload = match sw {
        Some(sw) => {
            // OpenKilda's shape: the switch at switch_record.datapath, an RW connection.
            json!({"clazz": classes().network_dump_switch, "switch_record": {"datapath": sw}, "write_mode": true})
        }
        None => Value::Null,
    };
    json!({"clazz": classes().chunked_info_message, "correlation_id": cid, "timestamp": 1,
           "message_id": format!("{index} : {cid}"), "total_messages": total, "payload": payload})
    .to_string()
    .into_bytes()
}

fn command(cid: &str, sw: &str) -> Vec<u8> {
    json!({"clazz": classes().command_message, "correlation_id": cid, "timestamp": 1,
           "payload": {"clazz": "X", "switch_id": sw}})
    .to_string()
    .into_bytes()
}

const EVENTS: &str = "kilda.topo.disco.storm";
const LONG: Duration = Duration::from_secs(120);

/// Waits for the SyncRequest on `fl`'s read topic and returns its correlation id.
async fn sync_request_to(rec: &mut Recorded, fl: &str) -> String {
    let topic = format!("kilda.speaker_{fl}");
    let seen = rec
        .until(LONG, |o| is(o, &topic, &classes().sync_request))
        .await;
    body(seen.last().unwrap())["correlation_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn summary(rec: &mut Recorded) -> Value {
    let seen = rec
        .until(LONG, |o| is(o, EVENTS, &classes().sync_summary))
        .await;
    body(seen.last().unwrap())["payload"].clone()
}

fn fl_entry<'a>(summary: &'a Value, fl: &str) -> &'a Value {
    summary["fls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fl_id"] == fl)
        .unwrap()
}

/// A stopped engine (a reload replaced it) asks nothing any more, and nothing of it times
/// out or syncs: its engine's replacement is the only one asking.
#[actix_rt::test]
async fn a_stopped_engine_sends_nothing_more() {
    tokio::time::pause();
    let (old, mut rec) = start(settings(false));
    let t = old.settings().timeouts.clone();
    tokio::time::sleep(t.alive_interval * 2 + Duration::from_millis(100)).await;
    assert!(
        rec.drain()
            .iter()
            .any(|o| is(o, "kilda.speaker_a", &classes().alive_request)),
        "it asked while running"
    );
    old.stop();
    assert!(old.stopped());
    tokio::time::sleep(t.alive_timeout * 3).await;
    let after = rec.drain();
    assert!(
        after.is_empty(),
        "a stopped engine still sends: {:?}",
        after.iter().map(class_of).collect::<Vec<_>>()
    );
}

#[actix_rt::test]
async fn alive_requests_go_out_every_interval_and_no_outage_before_a_full_timeout() {
    tokio::time::pause();
    let (engine, mut rec) = start(settings(false));
    let t = engine.settings().timeouts.clone();
    tokio::time::sleep(t.alive_timeout - Duration::from_millis(500)).await;
    let out = rec.drain();
    let alive_a = out
        .iter()
        .filter(|o| is(o, "kilda.speaker_a", &classes().alive_request))
        .count();
    assert_eq!(
        alive_a as u32,
        (t.alive_timeout.as_secs() / t.alive_interval.as_secs() - 1) as u32
    );
    assert!(
        out.iter()
            .all(|o| class_of(o) != classes().fl_outage_notification),
        "no outage yet"
    );
    assert_eq!(engine.fl_liveness("a"), Some(FlStatus::Starting));
}

#[actix_rt::test]
async fn silent_fl_outage_notifies_unmanaged_switches_and_fails_pending_commands_fast() {
    tokio::time::pause();
    let (engine, mut rec) = start(settings(false));
    engine
        .fl_output("a", Inbound::new(switch_up(S1)))
        .await
        .unwrap();
    engine
        .fl_output("a", Inbound::new(switch_up(S2)))
        .await
        .unwrap();
    engine
        .command(Inbound::new(command("c1", S1)).reply_to("my.reply"))
        .await
        .unwrap();
    let started = tokio::time::Instant::now();

    let seen = rec
        .until(LONG, |o| {
            is(o, EVENTS, &classes().fl_outage_notification) && body(o)["payload"]["fl_id"] == "a"
        })
        .await;
    let t = engine.settings().timeouts.clone();
    // The first AliveRequest after the FL fell silent (within one interval), plus the
    // timeout, judged at the next tick.
    assert!(
        started.elapsed() <= t.alive_interval + t.alive_timeout + t.tick,
        "detected within one interval + timeout + one tick: {:?}",
        started.elapsed()
    );
    assert!(body(seen.last().unwrap())["payload"]["reason"]
        .as_str()
        .unwrap()
        .contains("no message from FL a"));
    let mut rest = rec.drain();
    rest.extend(seen);
    let unmanaged: Vec<String> = rest
        .iter()
        .filter(|o| is(o, EVENTS, &classes().unmanaged_switch_notification))
        .map(|o| {
            body(o)["payload"]["switch_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        unmanaged.contains(&S1.to_string()) && unmanaged.contains(&S2.to_string()),
        "{unmanaged:?}"
    );
    let failed = rest
        .iter()
        .find(|o| *o.topic == *"my.reply")
        .expect("pending command answered at once");
    assert_eq!(body(failed)["payload"]["error-type"], "OPERATION_TIMED_OUT");
    assert!(
        started.elapsed() < t.ack,
        "failed fast, long before its ack timeout"
    );
    assert_eq!(engine.fl_liveness("a"), Some(FlStatus::Offline));

    // New commands for its switches are refused with the reason.
    engine
        .command(Inbound::new(command("c2", S1)).reply_to("my.reply"))
        .await
        .unwrap();
    let seen = rec.until(LONG, |o| *o.topic == *"my.reply").await;
    let err = body(seen.last().unwrap());
    assert_eq!(err["payload"]["error-type"], "NOT_FOUND");
    assert!(err["payload"]["error-description"]
        .as_str()
        .unwrap()
        .contains("offline"));
}

#[actix_rt::test]
async fn a_router_that_cannot_see_an_fl_declares_no_outage_and_no_timeout() {
    tokio::time::pause();
    let (engine, mut rec) = start(settings(false));
    // The shell reports reads: nothing was read up to date yet (not assigned, or paused).
    engine.track_fl_reads();
    let t = engine.settings().timeouts.clone();
    engine
        .fl_output("a", Inbound::new(switch_up(S1)))
        .await
        .unwrap();
    engine
        .command(Inbound::new(command("c1", S1)).reply_to("my.reply"))
        .await
        .unwrap();
    tokio::time::sleep((t.alive_timeout + t.ack) * 3).await;
    let out = rec.drain();
    assert!(
        out.iter()
            .all(|o| class_of(o) != classes().fl_outage_notification && *o.topic != *"my.reply"),
        "blind: no outage, no timeout"
    );
    assert_ne!(engine.fl_liveness("a"), Some(FlStatus::Offline));

    // The router catches up: the FL's answer was waiting in Kafka.
    engine
        .fl_output("a", Inbound::new(info("c1", json!({"clazz": "R"}))))
        .await
        .unwrap();
    let now = tokio::time::Instant::now();
    for fl in ["a", "b", "c"] {
        engine.fl_read_up_to(fl, now);
    }
    let seen = rec.until(LONG, |o| *o.topic == *"my.reply").await;
    assert_eq!(
        body(seen.last().unwrap())["payload"]["clazz"],
        "R",
        "the FL's own answer, not the router's timeout"
    );
    tokio::time::sleep(t.tick * 4).await;
    assert!(rec.drain().iter().all(|o| *o.topic != *"my.reply"));
    assert_ne!(engine.fl_liveness("a"), Some(FlStatus::Offline));

    // Seen up to date, an FL that stays silent is declared offline, once the requests it
    // could read have waited a full timeout; and a command to it times out.
    engine
        .command(Inbound::new(command("c2", S1)).reply_to("my.reply"))
        .await
        .unwrap();
    let fresh = tokio::spawn({
        let engine = engine.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                for fl in ["a", "b", "c"] {
                    engine.fl_read_up_to(fl, tokio::time::Instant::now());
                }
            }
        }
    });
    rec.until(LONG, |o| {
        is(o, EVENTS, &classes().fl_outage_notification) && body(o)["payload"]["fl_id"] == "a"
    })
    .await;
    let seen = rec.until(LONG, |o| *o.topic == *"my.reply").await;
    assert_eq!(
        body(seen.last().unwrap())["payload"]["error-type"],
        "OPERATION_TIMED_OUT"
    );
    fresh.abort();
}

#[actix_rt::test]
async fn recovery_is_registered_at_once_not_at_the_next_tick() {
    tokio::time::pause();
    let (engine, mut rec) = start(settings(false));
    engine
        .fl_output("a", Inbound::new(switch_up(S1)))
        .await
        .unwrap();
    rec.until(LONG, |o| {
        is(o, EVENTS, &classes().fl_outage_notification) && body(o)["payload"]["fl_id"] == "a"
    })
    .await;
    assert_eq!(engine.fl_liveness("a"), Some(FlStatus::Offline));
    let back = tokio::time::Instant::now();
    engine
        .fl_output("a", Inbound::new(info("hello", json!({"clazz":"Y"}))))
        .await
        .unwrap();
    sync_request_to(&mut rec, "a").await;
    assert_eq!(engine.fl_liveness("a"), Some(FlStatus::Online));
    assert!(
        back.elapsed() < engine.settings().timeouts.tick,
        "online {:?} after the evidence",
        back.elapsed()
    );
}

#[actix_rt::test]
async fn recovered_fl_gets_a_sync_replayed_and_its_map_rebuilt_from_the_chain() {
    tokio::time::pause();
    let (engine, mut rec) = start(settings(false));
    engine
        .fl_output("a", Inbound::new(switch_up(S1)))
        .await
        .unwrap();
    engine
        .fl_output("a", Inbound::new(switch_up(S2)))
        .await
        .unwrap();
    rec.until(LONG, |o| {
        is(o, EVENTS, &classes().fl_outage_notification) && body(o)["payload"]["fl_id"] == "a"
    })
    .await;

    // Evidence returns: any message will do.
    engine
        .fl_output("a", Inbound::new(info("hello", json!({"clazz":"Y"}))))
        .await
        .unwrap();
    let cid = sync_request_to(&mut rec, "a").await;
    assert_eq!(engine.fl_liveness("a"), Some(FlStatus::Online));

    // The chain now reports S1 and S3: S2 is gone, S3 is new.
    let c0 = chain(&cid, 0, 2, Some(S1));
    let c1 = chain(&cid, 1, 2, Some(S3));
    engine
        .fl_output("a", Inbound::new(c0.clone()))
        .await
        .unwrap();
    engine
        .fl_output("a", Inbound::new(c1.clone()))
        .await
        .unwrap();
    let seen = rec
        .until(LONG, |o| is(o, EVENTS, &classes().sync_summary))
        .await;
    let proxied: Vec<&Outgoing> = seen
        .iter()
        .filter(|o| *o.topic == *EVENTS && class_of(o) == classes().network_dump_switch)
        .collect();
    assert_eq!(proxied.len(), 2);
    assert_eq!(
        proxied[0].payload.as_ref(),
        c0.as_slice(),
        "chain proxied unmodified"
    );
    let offline: Vec<&Outgoing> = seen
        .iter()
        .filter(|o| is(o, EVENTS, &classes().switch_offline_notification))
        .collect();
    assert_eq!(offline.len(), 1);
    assert_eq!(body(offline[0])["payload"]["switch_id"], S2);
    let s = body(seen.last().unwrap())["payload"].clone();
    assert_eq!(s["trigger"], "recovery");
    assert_eq!(s["complete"], true);
    assert_eq!(
        engine.lookup_switch(S3).await.unwrap().as_deref(),
        Some("a")
    );
    assert_eq!(engine.lookup_switch(S2).await.unwrap(), None);
    assert_eq!(
        engine.lookup_switch(S1).await.unwrap().as_deref(),
        Some("a")
    );
}

#[actix_rt::test]
async fn lost_writes_are_an_outage_notice_and_a_resync_of_that_fl() {
    tokio::time::pause();
    let (engine, mut rec) = start(settings(false));
    let resp = info(
        "alive-1",
        json!({"clazz": classes().alive_response, "region": "r", "failed_messages": 3}),
    );
    engine.fl_output("b", Inbound::new(resp)).await.unwrap();
    let seen = rec
        .until(LONG, |o| is(o, "kilda.speaker_b", &classes().sync_request))
        .await;
    let note = seen
        .iter()
        .find(|o| is(o, EVENTS, &classes().fl_outage_notification))
        .expect("outage notification");
    assert_eq!(body(note)["payload"]["fl_id"], "b");
    assert!(body(note)["payload"]["reason"]
        .as_str()
        .unwrap()
        .contains("failed to write 3"));
    assert!(
        seen.iter()
            .all(|o| *o.topic != *"kilda.speaker_a" || class_of(o) != classes().sync_request),
        "b only"
    );
    // The AliveResponse itself is consumed, not forwarded.
    assert!(seen.iter().all(|o| class_of(o) != classes().alive_response));
}

#[actix_rt::test]
async fn controller_sync_reaches_every_fl_and_ends_with_one_summary() {
    tokio::time::pause();
    let mut s = sync_settings();
    s.sync.at_start = false;
    let (engine, mut rec) = start(s);
    let req = json!({"clazz": classes().command_message, "correlation_id": "ctl-1", "timestamp": 1,
                     "payload": {"clazz": classes().sync_request, "dump_id": "d1"}})
    .to_string();
    engine
        .command(Inbound::new(req.clone()).reply_to("ctl.reply"))
        .await
        .unwrap();
    for fl in ["a", "b", "c"] {
        let seen = rec
            .until(LONG, |o| *o.topic == *format!("kilda.speaker_{fl}"))
            .await;
        assert_eq!(
            seen.last().unwrap().payload.as_ref(),
            req.as_bytes(),
            "forwarded unchanged to {fl}"
        );
    }
    // a: complete; b: duplicated chunk; c: empty chain.
    let chunks = [
        ("a", chain("ctl-1", 0, 2, Some(S1))),
        ("a", chain("ctl-1", 1, 2, Some(S2))),
        ("b", chain("ctl-1", 0, 1, Some(S3))),
        ("b", chain("ctl-1", 0, 1, Some(S3))),
        ("c", chain("ctl-1", 0, 0, None)),
    ];
    for (fl, c) in &chunks {
        engine.fl_output(fl, Inbound::new(c.clone())).await.unwrap();
    }
    let seen = rec
        .until(LONG, |o| is(o, EVENTS, &classes().sync_summary))
        .await;
    let proxied = seen
        .iter()
        .filter(|o| {
            *o.topic == *EVENTS
                && chunks
                    .iter()
                    .any(|(_, c)| c.as_slice() == o.payload.as_ref())
        })
        .count();
    assert_eq!(
        proxied,
        chunks.len(),
        "every chain message proxied, duplicates too"
    );
    let s = body(seen.last().unwrap())["payload"].clone();
    assert_eq!(s["complete"], true);
    assert_eq!(s["trigger"], "controller");
    assert_eq!(fl_entry(&s, "a")["switches"], 2);
    assert_eq!(fl_entry(&s, "b")["switches"], 1);
    assert_eq!(fl_entry(&s, "c")["status"], "complete");
    let more = rec.until(LONG, |o| *o.topic == *"ctl.reply").await;
    assert_eq!(
        class_of(more.last().unwrap()),
        classes().sync_summary,
        "summary also to the reply-to"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        rec.drain()
            .iter()
            .filter(|o| is(o, EVENTS, &classes().sync_summary))
            .count(),
        0,
        "exactly one summary"
    );
}

#[actix_rt::test]
async fn chain_with_a_gap_is_requested_again_from_that_fl_only() {
    tokio::time::pause();
    let (engine, mut rec) = start(sync_settings());
    let t = engine.settings().timeouts.clone();
    // The startup session asks a, b, c in that order: wait for the last initial request.
    let cid = sync_request_to(&mut rec, "c").await;
    engine
        .fl_output("a", Inbound::new(chain(&cid, 0, 1, Some(S1))))
        .await
        .unwrap();
    engine
        .fl_output("c", Inbound::new(chain(&cid, 0, 0, None)))
        .await
        .unwrap();
    engine
        .fl_output("b", Inbound::new(chain(&cid, 0, 3, Some(S2))))
        .await
        .unwrap();
    engine
        .fl_output("b", Inbound::new(chain(&cid, 2, 3, Some(S3))))
        .await
        .unwrap(); // index 1 missing
    let before = tokio::time::Instant::now();
    let seen = rec
        .until(LONG, |o| is(o, "kilda.speaker_b", &classes().sync_request))
        .await;
    assert!(
        before.elapsed() >= t.sync_chain - Duration::from_secs(1),
        "re-sent only after the deadline"
    );
    // A dump the router cannot judge removes nothing and announces nothing: b's switches,
    // mapped as its entries arrived, stay routable.
    assert!(
        seen.iter().all(|o| {
            let c = class_of(o);
            c != classes().unmanaged_switch_notification
                && c != classes().switch_offline_notification
        }),
        "no notice for an incomplete dump"
    );
    for sw in [S2, S3] {
        assert_eq!(
            engine.lookup_switch(sw).await.unwrap().as_deref(),
            Some("b")
        );
    }
    assert!(
        seen.iter()
            .all(|o| !(class_of(o) == classes().sync_request && *o.topic != *"kilda.speaker_b")),
        "only b is asked again"
    );
    for i in 0..3 {
        let sw = [S2, "00:00:00:00:00:00:00:09", S3][i as usize];
        engine
            .fl_output("b", Inbound::new(chain(&cid, i, 3, Some(sw))))
            .await
            .unwrap();
    }
    let s = summary(&mut rec).await;
    assert_eq!(s["complete"], true);
    assert_eq!(fl_entry(&s, "b")["retries"], 1);
    assert_eq!(fl_entry(&s, "a")["retries"], 0);
}

#[actix_rt::test]
async fn a_dump_that_never_comes_from_an_fl_with_switches_exhausts_the_retries_and_fails() {
    tokio::time::pause();
    let mut s = sync_settings();
    s.sync.at_start = false;
    s.sync.retries = 2;
    let (engine, mut rec) = start(s);
    // c has a switch: its silence is a request it never read, not an empty region.
    engine
        .fl_output("c", Inbound::new(switch_up(S3)))
        .await
        .unwrap();
    let req = json!({"clazz": classes().command_message, "correlation_id": "ctl-2", "timestamp": 1,
                     "payload": {"clazz": classes().sync_request, "dump_id": "d2"}})
    .to_string();
    engine.command(Inbound::new(req)).await.unwrap();
    let cid = "ctl-2";
    rec.until(LONG, |o| is(o, "kilda.speaker_c", &classes().sync_request))
        .await;
    engine
        .fl_output("a", Inbound::new(chain(cid, 0, 0, None)))
        .await
        .unwrap();
    let seen = rec
        .until(Duration::from_secs(600), |o| {
            is(o, EVENTS, &classes().sync_summary)
        })
        .await;
    let to_c = seen
        .iter()
        .filter(|o| *o.topic == *"kilda.speaker_c")
        .count();
    assert_eq!(to_c, 2, "re-sent twice after the first request");
    let to_b = seen
        .iter()
        .filter(|o| *o.topic == *"kilda.speaker_b")
        .count();
    assert_eq!(
        to_b, 0,
        "b (no switch known) is an empty region: not asked again"
    );
    let s = body(seen.last().unwrap())["payload"].clone();
    assert_eq!(s["complete"], false);
    assert_eq!(fl_entry(&s, "c")["status"], "failed");
    assert_eq!(fl_entry(&s, "c")["retries"], 2);
    assert_eq!(fl_entry(&s, "b")["status"], "empty");
    assert_eq!(fl_entry(&s, "b")["retries"], 0);
    assert_eq!(fl_entry(&s, "a")["status"], "complete");
    assert_eq!(
        engine.lookup_switch(S3).await.unwrap().as_deref(),
        Some("c"),
        "a dump that never came removes nothing"
    );
    drop(engine);
}

#[actix_rt::test]
async fn startup_sync_learns_the_map_without_switch_events() {
    tokio::time::pause();
    let (engine, mut rec) = start(sync_settings());
    let cid = sync_request_to(&mut rec, "c").await;
    engine
        .fl_output("c", Inbound::new(chain(&cid, 0, 1, Some(S3))))
        .await
        .unwrap();
    // Mapped as soon as its chain message is read, before the session ends.
    assert_eq!(
        engine.lookup_switch(S3).await.unwrap().as_deref(),
        Some("c")
    );
}

#[actix_rt::test]
async fn periodic_network_sync_runs_over_every_fl_and_can_be_switched_off() {
    tokio::time::pause();
    let mut s = sync_settings();
    s.sync.at_start = false;
    s.sync.periodic = Duration::from_secs(60);
    let (_engine, mut rec) = start(s);
    let started = tokio::time::Instant::now();
    // Each round asks a, b, c in order under one dump_id (OpenKilda's network topology counts
    // each new id as a generation); the rounds run on the period's boundaries.
    let mut ids = Vec::new();
    for round in 0..2 {
        let seen = rec
            .until(LONG, |o| is(o, "kilda.speaker_c", &classes().sync_request))
            .await;
        assert!(
            started.elapsed() <= Duration::from_secs(60 * (round + 1) + 1),
            "round {round} within its period"
        );
        let round_ids: Vec<Value> = ["a", "b", "c"]
            .iter()
            .map(|fl| {
                let topic = format!("kilda.speaker_{fl}");
                let req = seen
                    .iter()
                    .rev()
                    .find(|o| is(o, &topic, &classes().sync_request))
                    .unwrap_or_else(|| panic!("{fl} asked too"));
                body(req)["payload"]["dump_id"].clone()
            })
            .collect();
        assert!(round_ids[0].is_string(), "a periodic dump has a dump_id");
        assert!(
            round_ids.iter().all(|d| *d == round_ids[0]),
            "one dump_id for every FL: {round_ids:?}"
        );
        ids.push(round_ids[0].clone());
    }
    assert_ne!(ids[0], ids[1], "a new dump_id each round");

    let mut off = sync_settings();
    off.sync.at_start = false;
    off.sync.periodic = Duration::ZERO;
    let (_engine, mut rec) = start(off);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(
        rec.drain()
            .iter()
            .all(|o| class_of(o) != classes().sync_request),
        "switched off: no sync in 10 minutes"
    );
}
