//! Changing the FL list of a running router (binary, real broker): `POST /api/reload` with the
//! token adds an FL and the router routes to it (the traces and the charts' history of before
//! stay); a change to anything but `fls` is refused and the router goes on; SIGHUP removes the
//! FL again.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const TOKEN: &str = "reload-t0ken";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

async fn post_reload(admin: &str, token: Option<&'static str>) -> (u16, Value) {
    let url = format!("{admin}/api/reload");
    tokio::task::spawn_blocking(move || {
        let mut req = agent().post(url);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut r = req.send_empty().expect("admin reachable");
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

async fn fl_ids(admin: &str) -> Vec<String> {
    let url = format!("{admin}/api/fls");
    tokio::task::spawn_blocking(move || {
        let v: Value = agent()
            .get(url)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json().ok())
            .unwrap_or(Value::Null);
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["fl"].as_str().map(str::to_string))
            .collect()
    })
    .await
    .unwrap()
}

/// Waits until the router lists exactly `want` and is ready.
async fn serving(admin: &str, want: &[&str]) {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let ready = {
            let url = format!("{admin}/ready");
            tokio::task::spawn_blocking(move || {
                agent()
                    .get(url)
                    .call()
                    .map(|r| r.status().as_u16() == 200)
                    .unwrap_or(false)
            })
            .await
            .unwrap()
        };
        let ids = fl_ids(admin).await;
        if ready && ids == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not serving {want:?}: ready={ready}, fls={ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_json(admin: &str, path: &str) -> (u16, Value) {
    let url = format!("{admin}{path}");
    tokio::task::spawn_blocking(move || {
        let mut r = agent().get(url).call().expect("admin reachable");
        (
            r.status().as_u16(),
            r.body_mut().read_json().unwrap_or(Value::Null),
        )
    })
    .await
    .unwrap()
}

async fn history_len(admin: &str) -> usize {
    let (_, v) = get_json(admin, "/api/history").await;
    v["samples"].as_array().map_or(0, Vec::len)
}

fn edit_config(w: &World, f: impl FnOnce(&mut Value)) {
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(&w.config_path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&w.config_path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fl_added_by_reload_is_routed_to_and_removed_by_sighup() {
    let w = World::with(
        &["fl1"],
        json!({
            "timeouts": {"ack": "5s", "alive_interval": "1h", "alive_timeout": "2h"},
            "sync": {"at_start": false, "periodic": "0s"},
            "admin": {"bind": "127.0.0.1:0", "token": TOKEN},
        }),
    )
    .await;
    let router = w.start_router("router");
    let admin = router.admin_url().await;
    serving(&admin, &["fl1"]).await;
    let p = producer();
    let events = Reader::new(&w.events);
    announce(&p, &w, "fl1", SW1, &events).await;
    // A command answered before the reload: its trace and the charts' history outlive it.
    let fl1_read = Reader::at_end(&w.fl_read("fl1"));
    let replies = Reader::new(&w.reply);
    send(&p, &w.commands, None, &command("r-0", SW1), Some(&w.reply)).await;
    fl1_read.expect(LONG).await;
    send(&p, &w.fl_write("fl1"), None, &answer("r-0"), None).await;
    assert_eq!(cid_of(&replies.expect(LONG).await.json()), "r-0");
    // The first sample comes a second after the start.
    let deadline = tokio::time::Instant::now() + LONG;
    let before = loop {
        let n = history_len(&admin).await;
        if n > 0 {
            break n;
        }
        assert!(tokio::time::Instant::now() < deadline, "no history sample");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Add fl2 to the file; the admin call needs the token.
    edit_config(&w, |v| v["fls"] = json!([{"id": "fl1"}, {"id": "fl2"}]));
    assert_eq!(post_reload(&admin, None).await.0, 401);
    let (status, body) = post_reload(&admin, Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["plan"]["added"], json!(["fl2"]), "{body}");
    serving(&admin, &["fl1", "fl2"]).await;
    assert!(
        router
            .log_text()
            .contains("reloaded: routing with the new FL list"),
        "the change is logged"
    );
    let (status, life) = get_json(&admin, "/api/commands/r-0").await;
    assert_eq!(
        status, 200,
        "the trace of a command before the reload: {life}"
    );
    assert_eq!(life["outcome"], "answered by FL fl1");
    assert!(history_len(&admin).await >= before, "the history goes on");

    // fl2 is routed to; fl1's switch still routes (the map came back from its topic).
    announce(&p, &w, "fl2", SW2, &events).await;
    let fl2_read = Reader::new(&w.fl_read("fl2"));
    send(&p, &w.commands, None, &command("r-2", SW2), Some(&w.reply)).await;
    let fwd = fl2_read.expect(LONG).await;
    assert_eq!(cid_of(&fwd.json()), "r-2");
    send(&p, &w.fl_write("fl2"), None, &answer("r-2"), None).await;
    let got = replies.expect(LONG).await.json();
    assert_eq!((cid_of(&got).as_str(), error_type(&got)), ("r-2", None));
    send(&p, &w.commands, None, &command("r-1", SW1), Some(&w.reply)).await;
    assert_eq!(cid_of(&fl1_read.expect(LONG).await.json()), "r-1");

    // Anything else than fls: refused, naming the key; the router goes on unchanged.
    edit_config(&w, |v| v["timeouts"]["ack"] = json!("9s"));
    let (status, body) = post_reload(&admin, Some(TOKEN)).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timeouts.ack"),
        "{body}"
    );
    serving(&admin, &["fl1", "fl2"]).await;

    // SIGHUP with fl2 gone from the file: removed; its switch is no longer routed.
    edit_config(&w, |v| {
        v["timeouts"]["ack"] = json!("5s");
        v["fls"] = json!([{"id": "fl1"}]);
    });
    router.hangup();
    serving(&admin, &["fl1"]).await;
    send(&p, &w.commands, None, &command("r-3", SW2), Some(&w.reply)).await;
    let got = replies.until(LONG, |v| cid_of(v) == "r-3").await;
    assert_eq!(error_type(&got), Some("NOT_FOUND"), "{got}");
    // How long routing paused (for the docs): the log from each reload to ready again.
    for l in router.log_text().lines().filter(|l| {
        l.contains("reload") || l.contains("router ready") || l.contains("shutting down")
    }) {
        eprintln!("{l}");
    }
}

/// The AliveRequests one FL gets per alive interval, measured over the next `n` of them by
/// their own timestamps (one engine asks once per interval; a replaced engine still running
/// would make it two, three …).
async fn alive_requests_per_interval(w: &World, fl: &str, interval_ms: f64, n: usize) -> f64 {
    let classes = fl_router_actors::settings::Classes::default();
    let read = Reader::at_end(&w.fl_read(fl));
    let mut stamps = Vec::new();
    while stamps.len() < n {
        let m = read.expect(LONG).await.json();
        if m["payload"]["clazz"] == classes.alive_request.as_str() {
            stamps.push(
                m["timestamp"]
                    .as_i64()
                    .expect("an AliveRequest has a timestamp"),
            );
        }
    }
    let span_ms = (stamps[n - 1] - stamps[0]).max(1) as f64;
    (n - 1) as f64 / (span_ms / interval_ms)
}

/// A reload leaves exactly one engine: after two (remove an FL, add it back) every FL gets one
/// AliveRequest per alive interval, as before the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reloads_leave_one_engine_asking_each_fl_once_per_interval() {
    let w = World::with(
        &["fl1", "fl2"],
        json!({
            "timeouts": {"alive_interval": "300ms", "alive_timeout": "1h"},
            "sync": {"at_start": false, "periodic": "0s"},
            "admin": {"bind": "127.0.0.1:0", "token": TOKEN},
        }),
    )
    .await;
    let router = w.start_router("router");
    let admin = router.admin_url().await;
    serving(&admin, &["fl1", "fl2"]).await;
    let before = alive_requests_per_interval(&w, "fl1", 300.0, 9).await;

    edit_config(&w, |v| v["fls"] = json!([{"id": "fl1"}]));
    router.hangup();
    serving(&admin, &["fl1"]).await;
    edit_config(&w, |v| v["fls"] = json!([{"id": "fl1"}, {"id": "fl2"}]));
    router.hangup();
    serving(&admin, &["fl1", "fl2"]).await;

    for fl in ["fl1", "fl2"] {
        let after = alive_requests_per_interval(&w, fl, 300.0, 9).await;
        eprintln!(
            "{fl}: {before:.2} AliveRequests per interval before the reloads, {after:.2} after"
        );
        assert!(
            after < 1.5,
            "{fl}: {after:.2} AliveRequests per alive interval after two reloads (one engine asks once)"
        );
    }
}
