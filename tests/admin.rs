//! The admin API of a running router (binary, real broker): every read endpoint, and the fault
//! endpoint's refusals without the right token.

mod common;

use common::*;
use serde_json::{json, Value};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(base: &str, path: &str) -> (u16, String) {
    let mut r = agent()
        .get(format!("{base}{path}"))
        .call()
        .expect("admin reachable");
    (
        r.status().as_u16(),
        r.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn post_fault(base: &str, token: Option<&str>) -> u16 {
    let mut req = agent().post(format!("{base}/api/faults"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    req.send_json(json!({"action": "kill_outage_monitor"}))
        .expect("admin reachable")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_endpoints_report_the_running_router() {
    let w = World::new(&["fl1"], "30s").await;
    let router = w.start_router("router");
    let base = router.admin_url().await;
    let p = producer();
    let events = Reader::new(&w.events);
    announce(&p, &w, "fl1", SW1, &events).await;
    // A command the (test) FL never answers: it stays in flight.
    send(
        &p,
        &w.commands,
        None,
        &command("c-pending", SW1),
        Some(&w.reply),
    )
    .await;
    Reader::new(&w.fl_read("fl1")).expect(LONG).await;

    let b = base.clone();
    let (w_group, w_commands) = (w.group.clone(), w.commands.clone());
    tokio::task::spawn_blocking(move || {
        assert_eq!(get(&b, "/health").0, 200);
        let deadline = std::time::Instant::now() + LONG;
        while get(&b, "/ready").0 != 200 {
            assert!(std::time::Instant::now() < deadline, "never ready");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let (s, metrics) = get(&b, "/metrics");
        assert_eq!(s, 200);
        assert!(
            metrics.contains("flrouter_commands_received_total 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains(r#"flrouter_messages_routed_total{direction="command_to_fl"} 1"#),
            "{metrics}"
        );
        assert!(
            metrics.contains(r#"flrouter_actors{kind="fl_proxy"} 1"#),
            "{metrics}"
        );

        let (s, body) = get(&b, &format!("/api/switches/{SW1}"));
        let v = serde_json::from_str::<Value>(&body).unwrap();
        assert_eq!((s, v["fl_id"].clone()), (200, json!("fl1")));
        assert_eq!(v["connections"][0]["fl"], "fl1");
        assert_eq!(v["connections"][0]["mode"], "read_write");
        assert_eq!(v["connections"][0]["active"], true);
        assert!(
            metrics.contains(r#"flrouter_fl_switches{fl="fl1",role="active"} 1"#),
            "{metrics}"
        );
        assert_eq!(get(&b, &format!("/api/switches/{SW2}")).0, 404);
        assert_eq!(get(&b, "/api/switches/not-a-switch").0, 400);

        let inflight: Value = serde_json::from_str(&get(&b, "/api/inflight").1).unwrap();
        assert_eq!(
            inflight["fl1"][0]["correlation_id"], "c-pending",
            "{inflight}"
        );
        assert_eq!(inflight["fl1"][0]["state"], "AwaitingAck");

        let fls: Value = serde_json::from_str(&get(&b, "/api/fls").1).unwrap();
        assert_eq!(
            (
                fls[0]["fl"].clone(),
                fls[0]["switches"].clone(),
                fls[0]["pending"].clone()
            ),
            (json!("fl1"), json!(1), json!(1))
        );

        let boxes: Value = serde_json::from_str(&get(&b, "/api/mailboxes").1).unwrap();
        assert!(boxes
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["kind"] == "dispatcher" && m["received"].as_u64() >= Some(2)));

        // Ready means the command partition is assigned: /api/cluster shows it, per group.
        let (s, body) = get(&b, "/api/cluster");
        let cluster: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(s, 200, "{body}");
        assert_eq!(cluster["mode"], "single");
        assert!(
            cluster["instance_id"]
                .as_str()
                .is_some_and(|i| !i.is_empty()),
            "{cluster}"
        );
        assert_eq!(
            cluster["config_digest"].as_str().map(str::len),
            Some(16),
            "{cluster}"
        );
        let group = |consumer: &str| {
            cluster["groups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["consumer"] == consumer)
                .cloned()
                .unwrap_or_else(|| panic!("no {consumer} group in {cluster}"))
        };
        let commands = group("commands");
        assert_eq!(commands["group"], json!(w_group));
        assert_eq!(
            commands["partitions"],
            json!([{"topic": w_commands, "partition": 0}]),
            "{cluster}"
        );
        assert_eq!(group("fl")["group"], json!(format!("{w_group}-fl")));
        assert!(
            !group("fl")["partitions"].as_array().unwrap().is_empty(),
            "{cluster}"
        );

        // No token configured: faults are refused, whatever the request says.
        assert_eq!(post_fault(&b, None), 401);
        assert_eq!(post_fault(&b, Some("guess")), 401);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_need_the_configured_bearer_token() {
    let w = World::with(
        &["fl1"],
        json!({"admin": {"token": "right"}, "sync": {"at_start": false}}),
    )
    .await;
    let router = w.start_router("router");
    let base = router.admin_url().await;
    tokio::task::spawn_blocking(move || {
        assert_eq!(post_fault(&base, None), 401);
        assert_eq!(post_fault(&base, Some("wrong")), 401);
        assert_eq!(post_fault(&base, Some("right")), 200);
        // A simulator's fault needs the tooling in the process: refused, naming it.
        let mut r = agent()
            .post(format!("{base}/api/faults"))
            .header("Authorization", "Bearer right")
            .send_json(json!({"action": "silence_fl", "fl": "fl1"}))
            .expect("admin reachable");
        let (status, body) = (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        );
        assert_eq!(status, 409, "{body}");
        assert!(body.contains("fl-router-tools stage"), "{body}");
        // The restart it asked for happened.
        let deadline = std::time::Instant::now() + LONG;
        loop {
            let boxes: Value = serde_json::from_str(&get(&base, "/api/mailboxes").1).unwrap();
            let restarts = boxes
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["kind"] == "outage_monitor")
                .unwrap()["restarts"]
                .clone();
            if restarts == json!(1) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "outage monitor not restarted"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
}

/// The admin API is up before the router talks to Kafka: with a Kafka that cannot be reached,
/// `/health` says 200 and `/ready` 503 (an orchestrator's probes see a live process that does
/// not route yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_is_up_before_kafka_is_reached() {
    let w = World::with(
        &["fl1"],
        json!({"kafka": {"brokers": "127.0.0.1:1"}, "admin": {"bind": "127.0.0.1:0"}}),
    )
    .await;
    let router = w.start_router("router");
    let base = router.admin_url_listening().await;
    tokio::task::spawn_blocking(move || {
        assert_eq!(get(&base, "/health").0, 200);
        let (status, body) = get(&base, "/ready");
        assert_eq!(status, 503, "{body}");
        assert_eq!(get(&base, "/api/fls").0, 503);
    })
    .await
    .unwrap();
    assert!(
        !router.log_text().contains("router ready"),
        "it cannot route without Kafka"
    );
}

/// A busy admin port fails the start at once, with the one line that matters (before any Kafka
/// client exists, so nothing else is logged about Kafka).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_admin_port_fails_the_start_at_once() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let w = World::with(
        &["fl1"],
        json!({"admin": {"bind": format!("127.0.0.1:{port}")}}),
    )
    .await;
    let mut router = w.start_router("router");
    let deadline = tokio::time::Instant::now() + LONG;
    while !router.exited() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still running:\n{}",
            router.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = router.log_text();
    assert!(
        log.contains("admin.bind") && log.contains(&port.to_string()),
        "{log}"
    );
    assert!(!log.contains("librdkafka"), "Kafka was tried first:\n{log}");
    drop(busy);
}

/// The latency metric under load: a scrape (classic text, as Prometheus asks by default) that a
/// standard parser reads shows router-added latency above 0; OpenMetrics is served when asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_under_load_shows_router_added_latency() {
    let w = World::new(&["fl1"], "30s").await;
    let router = w.start_router("router");
    let base = router.admin_url().await;
    router.ready().await;
    let p = producer();
    let events = Reader::new(&w.events);
    announce(&p, &w, "fl1", SW1, &events).await;
    let read = Reader::new(&w.fl_read("fl1"));
    for i in 0..50 {
        send(
            &p,
            &w.commands,
            None,
            &command(&format!("lat-{i}"), SW1),
            Some(&w.reply),
        )
        .await;
    }
    for _ in 0..50 {
        read.expect(LONG).await;
    }
    tokio::task::spawn_blocking(move || {
        // The histogram takes in what was recorded every second (the history's interval).
        let deadline = std::time::Instant::now() + LONG;
        let (count, sum) = loop {
            let (status, text) = get(&base, "/metrics");
            assert_eq!(status, 200);
            let lines = text.lines().map(|l| Ok(l.to_string()));
            let scrape =
                prometheus_parse::Scrape::parse(lines).expect("a standard parser reads it");
            let value = |name: &str| {
                scrape
                    .samples
                    .iter()
                    .find(|s| s.metric == name)
                    .map(|s| match s.value {
                        prometheus_parse::Value::Untyped(v)
                        | prometheus_parse::Value::Gauge(v)
                        | prometheus_parse::Value::Counter(v) => v,
                        _ => 0.0,
                    })
                    .unwrap_or(0.0)
            };
            let count = value("flrouter_router_added_latency_seconds_count");
            if count >= 50.0 {
                break (count, value("flrouter_router_added_latency_seconds_sum"));
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no latency recorded:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        eprintln!("router-added latency: {count} messages, {sum} s in all");
        assert!(sum > 0.0, "a latency of 0 s for {count} messages");
        let mut r = agent()
            .get(format!("{base}/metrics"))
            .header("Accept", "application/openmetrics-text; version=1.0.0")
            .call()
            .expect("admin reachable");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
        assert!(r.body_mut().read_to_string().unwrap().ends_with("# EOF\n"));
    })
    .await
    .unwrap();
}
