//! The life of one command on a running router (binary, real broker): `GET
//! /api/commands/{id}` and `fl-router trace <id>` show a timed-out command's timeout, an
//! answered command's ack and answer, the deliveries and the offset commit; an id the router
//! does not keep is said to be outside its window.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// `fl-router trace <cid> --admin <url>`: (exit code, stdout).
fn trace_cli(cid: &str, admin: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fl-router"))
        .args(["trace", cid, "--admin", admin])
        .output()
        .expect("run fl-router trace");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn life(admin: &str, cid: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .get(format!("{admin}/api/commands/{cid}"))
        .call()
        .expect("admin reachable");
    (r.status().as_u16(), r.body_mut().read_json().expect("JSON"))
}

fn steps(v: &Value) -> Vec<String> {
    v["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["step"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Polls the API until the life has every step in `want` (deliveries and the offset commit
/// come from Kafka's reports, after the answer itself).
async fn life_with(admin: &str, cid: &str, want: &[&str]) -> Value {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let (a, c) = (admin.to_string(), cid.to_string());
        let (status, v) = tokio::task::spawn_blocking(move || life(&a, &c))
            .await
            .unwrap();
        let have = steps(&v);
        if status == 200 && want.iter().all(|w| have.iter().any(|h| h == w)) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the life of {cid} never had all of {want:?}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_command_and_an_answered_one_are_traced_to_their_outcome() {
    let w = World::new(&["fl1"], "2s").await;
    let router = w.start_router("router");
    let admin = router.admin_url().await;
    let p = producer();
    let events = Reader::new(&w.events);
    announce(&p, &w, "fl1", SW1, &events).await;
    let fl_read = Reader::new(&w.fl_read("fl1"));
    let replies = Reader::new(&w.reply);

    // A command the FL never answers: the router answers OPERATION_TIMED_OUT.
    send(
        &p,
        &w.commands,
        Some("key-t1"),
        &command("trace-t1", SW1),
        Some(&w.reply),
    )
    .await;
    fl_read.expect(LONG).await;
    let err = replies.expect(LONG).await.json();
    assert_eq!(error_type(&err), Some("OPERATION_TIMED_OUT"));
    // Its late answer is dropped; the life says so.
    send(&p, &w.fl_write("fl1"), None, &answer("trace-t1"), None).await;
    let v = life_with(
        &admin,
        "trace-t1",
        &[
            "received",
            "forwarded",
            "delivered",
            "router_answered",
            "late_answer_dropped",
            "offset_committed",
        ],
    )
    .await;
    assert_eq!(v["steps"][0]["topic"], w.commands.as_str());
    assert_eq!(v["steps"][0]["key"], "key-t1");
    let timeout = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "router_answered")
        .unwrap();
    assert_eq!(timeout["error"], "OPERATION_TIMED_OUT");
    assert_eq!(timeout["topic"], w.reply.as_str());
    let delivered: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "delivered")
        .map(|s| s["what"].as_str().unwrap())
        .collect();
    assert_eq!(delivered, ["forward", "reply"], "{v:#}");

    let a = admin.clone();
    let (code, text) = tokio::task::spawn_blocking(move || trace_cli("trace-t1", &a))
        .await
        .unwrap();
    assert_eq!(code, 0, "{text}");
    eprintln!("{text}");
    for line in [
        format!("received on {} partition 0", w.commands),
        format!("forwarded to FL fl1 (switch {SW1})"),
        "forward delivered by Kafka".to_string(),
        "the router answered OPERATION_TIMED_OUT (FL did not answer in time)".to_string(),
        "a late or second answer from FL fl1 dropped".to_string(),
        "input offset committed".to_string(),
        "outcome: the router answered OPERATION_TIMED_OUT".to_string(),
    ] {
        assert!(text.contains(&line), "missing {line:?} in:\n{text}");
    }

    // A command the FL acks and answers.
    send(
        &p,
        &w.commands,
        None,
        &command("trace-a1", SW1),
        Some(&w.reply),
    )
    .await;
    fl_read.expect(LONG).await;
    send(&p, &w.fl_write("fl1"), None, &ack("trace-a1"), None).await;
    send(&p, &w.fl_write("fl1"), None, &answer("trace-a1"), None).await;
    assert_eq!(cid_of(&replies.expect(LONG).await.json()), "trace-a1");
    let v = life_with(
        &admin,
        "trace-a1",
        &["acked_by_fl", "answered", "offset_committed"],
    )
    .await;
    assert_eq!(v["outcome"], "answered by FL fl1");

    // An id the router never read: said so, exit 1.
    let a = admin.clone();
    let (code, text) = tokio::task::spawn_blocking(move || trace_cli("never-sent", &a))
        .await
        .unwrap();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no command \"never-sent\""), "{text}");
}
