//! Multi-switch commands, in-process with virtual time: the split per FL, the one assembled
//! result, and every way a part can end (answered, silent, unknown switch, duplicated, late).

use std::time::Duration;

use fl_router_actors::settings::Classes;
use fl_router_actors::testkit::{quiet_settings, recording_outbox, Recorded};
use fl_router_actors::{Engine, Inbound, Outgoing, Settings};
use serde_json::{json, Value};

const S1: &str = "00:00:00:00:00:00:00:01";
const S2: &str = "00:00:00:00:00:00:00:02";
const S3: &str = "00:00:00:00:00:00:00:03";
const S4: &str = "00:00:00:00:00:00:00:04";
const S9: &str = "00:00:00:00:00:00:00:09";
const REPLY: &str = "my.reply";
const WAIT: Duration = Duration::from_secs(120);

fn settings() -> Settings {
    quiet_settings(&["a", "b", "c"])
}

fn classes() -> Classes {
    Classes::default()
}

fn body(o: &Outgoing) -> Value {
    serde_json::from_slice(&o.payload).unwrap_or(Value::Null)
}

fn info(cid: &str, payload: Value) -> Vec<u8> {
    json!({"clazz": classes().info_message, "correlation_id": cid, "timestamp": 1, "payload": payload})
        .to_string()
        .into_bytes()
}

fn ack(cid: &str) -> Vec<u8> {
    info(cid, json!({"clazz": classes().fl_receive_ack}))
}

fn answer(cid: &str, fl: &str) -> Vec<u8> {
    info(cid, json!({"clazz": "Rules", "from": fl}))
}

/// Engine with a: S1, S2; b: S3; c: S4.
async fn start() -> (Engine, Recorded) {
    let (outbox, mut rec) = recording_outbox();
    let engine = Engine::start(settings(), outbox).expect("valid settings");
    for (fl, sw) in [("a", S1), ("a", S2), ("b", S3), ("c", S4)] {
        let ev = info(
            "ev",
            json!({"clazz":"org.openkilda.messaging.info.event.SwitchInfoData","switch_id":sw,"state":"ACTIVATED"}),
        );
        engine.fl_output(fl, Inbound::new(ev)).await.unwrap();
    }
    rec.until(WAIT, |_| true).await;
    rec.drain();
    (engine, rec)
}

fn multi_command(cid: &str, switches: Value) -> String {
    json!({"clazz": classes().command_message, "correlation_id": cid, "timestamp": 1,
           "payload": {"clazz": "DumpRules", "switch_id": switches, "flags": {"deep": true}}})
    .to_string()
}

/// Sends the command and returns the parts forwarded to each FL read topic, by FL: the FL,
/// the part as JSON, and its exact text.
async fn send(
    engine: &Engine,
    rec: &mut Recorded,
    cmd: &str,
    fls: &[&str],
) -> Vec<(String, Value, String)> {
    engine
        .command(Inbound::new(cmd.to_string()).reply_to(REPLY))
        .await
        .unwrap();
    let mut parts = Vec::new();
    while parts.len() < fls.len() {
        let seen = rec
            .until(WAIT, |o| o.topic.starts_with("kilda.speaker_"))
            .await;
        let o = seen.last().unwrap();
        let text = String::from_utf8(o.payload.to_vec()).unwrap();
        parts.push((
            o.topic.trim_start_matches("kilda.speaker_").to_string(),
            body(o),
            text,
        ));
    }
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    parts
}

async fn result(rec: &mut Recorded) -> Value {
    let seen = rec.until(WAIT, |o| *o.topic == *REPLY).await;
    body(seen.last().unwrap())
}

fn status_of<'a>(result: &'a Value, sw: &str) -> (&'a str, Option<&'a str>) {
    let e = result["payload"]["switches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["switch_id"] == sw)
        .unwrap();
    (e["status"].as_str().unwrap(), e["reason"].as_str())
}

#[actix_rt::test]
async fn each_fl_gets_only_its_switches_and_one_result_names_every_switch() {
    let (engine, mut rec) = start().await;
    let cmd = multi_command("m1", json!([S1, S2, S3, S4, S9]));
    let parts = send(&engine, &mut rec, &cmd, &["a", "b", "c"]).await;
    assert_eq!(parts[0].1["payload"]["switch_id"], json!([S1, S2]));
    assert_eq!(parts[1].1["payload"]["switch_id"], json!([S3]));
    assert_eq!(parts[2].1["payload"]["switch_id"], json!([S4]));
    // Only the switch list was rewritten: every other byte is the command's.
    let expect_a = cmd.replace(
        &json!([S1, S2, S3, S4, S9]).to_string(),
        &json!([S1, S2]).to_string(),
    );
    assert_eq!(parts[0].2, expect_a);
    for fl in ["a", "b", "c"] {
        engine.fl_output(fl, Inbound::new(ack("m1"))).await.unwrap();
        engine
            .fl_output(fl, Inbound::new(answer("m1", fl)))
            .await
            .unwrap();
    }
    let r = result(&mut rec).await;
    assert_eq!(r["correlation_id"], "m1");
    assert_eq!(
        r["payload"]["clazz"],
        "org.openkilda.flrouter.MultiSwitchResult"
    );
    assert_eq!(r["payload"]["complete"], false, "S9 has no FL");
    for sw in [S1, S2, S3, S4] {
        assert_eq!(status_of(&r, sw), ("success", None));
    }
    assert_eq!(status_of(&r, S9), ("failed", Some("no_fl")));
    assert_eq!(
        r["payload"]["results"]["b"][0]["from"], "b",
        "the FL's data, once per FL"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        rec.drain().iter().all(|o| *o.topic != *REPLY),
        "exactly one result"
    );
    assert!(
        engine
            .mailboxes(false)
            .iter()
            .all(|m| m.kind != "multi_switch"),
        "state dropped on completion"
    );
}

#[actix_rt::test]
async fn a_silent_fl_is_reported_timed_out_and_the_rest_still_succeeds() {
    tokio::time::pause();
    let (engine, mut rec) = start().await;
    send(
        &engine,
        &mut rec,
        &multi_command("m2", json!([S1, S3, S4])),
        &["a", "b", "c"],
    )
    .await;
    for fl in ["a", "c"] {
        engine
            .fl_output(fl, Inbound::new(answer("m2", fl)))
            .await
            .unwrap();
    }
    let r = result(&mut rec).await;
    assert_eq!(status_of(&r, S3), ("failed", Some("timed_out")));
    assert_eq!(status_of(&r, S1), ("success", None));
    assert_eq!(status_of(&r, S4), ("success", None));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        rec.drain().iter().all(|o| *o.topic != *REPLY),
        "no separate timeout error: one result only"
    );
}

#[actix_rt::test]
async fn answers_out_of_order_and_duplicated_make_one_result_and_late_ones_are_dropped() {
    let (engine, mut rec) = start().await;
    send(
        &engine,
        &mut rec,
        &multi_command("m3", json!([S1, S3, S4])),
        &["a", "b", "c"],
    )
    .await;
    engine
        .fl_output("c", Inbound::new(answer("m3", "c")))
        .await
        .unwrap();
    engine
        .fl_output("a", Inbound::new(answer("m3", "a")))
        .await
        .unwrap();
    engine
        .fl_output("a", Inbound::new(answer("m3", "a")))
        .await
        .unwrap(); // duplicate
    engine
        .fl_output("b", Inbound::new(ack("m3")))
        .await
        .unwrap();
    engine
        .fl_output("b", Inbound::new(answer("m3", "b")))
        .await
        .unwrap();
    let r = result(&mut rec).await;
    assert_eq!(r["payload"]["complete"], true);
    assert_eq!(
        r["payload"]["results"]["a"].as_array().unwrap().len(),
        1,
        "the duplicate is not data"
    );
    engine
        .fl_output("b", Inbound::new(answer("m3", "b")))
        .await
        .unwrap(); // after assembly
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        rec.drain()
            .iter()
            .all(|o| *o.topic != *REPLY && *o.topic != *"kilda.northbound.storm"),
        "dropped"
    );
    let drops = engine
        .counters()
        .snapshot()
        .into_iter()
        .find(|(n, _)| *n == "blacklist_drops")
        .unwrap()
        .1;
    assert_eq!(drops, 2, "both duplicates dropped and counted");
}

#[actix_rt::test]
async fn a_timeout_racing_a_late_answer_counts_as_timed_out_once() {
    tokio::time::pause();
    let (engine, mut rec) = start().await;
    let ack_timeout = engine.settings().timeouts.ack;
    send(
        &engine,
        &mut rec,
        &multi_command("m4", json!([S1, S3])),
        &["a", "b"],
    )
    .await;
    engine
        .fl_output("a", Inbound::new(answer("m4", "a")))
        .await
        .unwrap();
    tokio::time::sleep(ack_timeout + Duration::from_millis(200)).await;
    engine
        .fl_output("b", Inbound::new(answer("m4", "b")))
        .await
        .unwrap(); // just too late
    let r = result(&mut rec).await;
    assert_eq!(status_of(&r, S3), ("failed", Some("timed_out")));
    assert!(
        r["payload"]["results"].get("b").is_none(),
        "the late answer is not in the result"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(rec
        .drain()
        .iter()
        .all(|o| *o.topic != *REPLY && *o.topic != *"kilda.northbound.storm"));
}

#[actix_rt::test]
async fn an_all_switches_command_goes_unchanged_to_every_fl_with_switches() {
    let (engine, mut rec) = start().await;
    let cmd = multi_command("m5", json!("*"));
    let parts = send(&engine, &mut rec, &cmd, &["a", "b", "c"]).await;
    for (_, _, text) in &parts {
        assert_eq!(text, &cmd, "forwarded unchanged");
    }
    for fl in ["a", "b", "c"] {
        engine
            .fl_output(fl, Inbound::new(answer("m5", fl)))
            .await
            .unwrap();
    }
    let r = result(&mut rec).await;
    assert_eq!(r["payload"]["complete"], true);
    assert_eq!(
        r["payload"]["switches"].as_array().unwrap().len(),
        4,
        "every known switch listed"
    );
}

#[actix_rt::test]
async fn a_one_element_list_is_an_ordinary_command() {
    let (engine, mut rec) = start().await;
    let cmd = multi_command("m6", json!([S3]));
    engine
        .command(Inbound::new(cmd.clone()).reply_to(REPLY))
        .await
        .unwrap();
    let seen = rec.until(WAIT, |o| *o.topic == *"kilda.speaker_b").await;
    assert_eq!(
        seen.last().unwrap().payload.as_ref(),
        cmd.as_bytes(),
        "bytes in = bytes out"
    );
    engine
        .fl_output("b", Inbound::new(answer("m6", "b")))
        .await
        .unwrap();
    let seen = rec.until(WAIT, |o| *o.topic == *REPLY).await;
    assert_eq!(
        body(seen.last().unwrap())["payload"]["from"],
        "b",
        "the FL's own answer, not an assembled result"
    );
}
