//! The dashboard in a real headless browser (Debian's Chromium, installed by scripts/deps.sh):
//! the page served at `/` by a running router must show live data from it.

mod common;

use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use common::*;
use fl_router_tools::load::{LoadConfig, LoadRun};

/// Runs headless Chromium on `url`; returns the DOM after the page's scripts ran.
fn dump_dom(url: &str, screenshot: Option<&std::path::Path>) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()));
    if let Some(p) = screenshot {
        cmd.arg(format!("--screenshot={}", p.display()));
    } else {
        cmd.arg("--dump-dom");
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("chromium is installed (scripts/deps.sh)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// FL `fl`'s status in the newest sample of the router's history.
async fn fl_status_now(admin: &str, fl: &str) -> Option<String> {
    let (url, fl) = (format!("{admin}/api/history"), fl.to_string());
    tokio::task::spawn_blocking(move || {
        let v: serde_json::Value = ureq::get(&url).call().ok()?.body_mut().read_json().ok()?;
        let last = v["samples"].as_array()?.last()?.clone();
        last["fls"][&fl].as_str().map(str::to_string)
    })
    .await
    .unwrap()
}

/// The page at `url` after its scripts ran, from a blocking task.
async fn page(url: &str) -> String {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || dump_dom(&url, None))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_live_fl_status_switch_counts_and_rates() {
    let w = World::new(&["fl1", "fl2"], "5s").await;
    let router = w.start_router("router");
    let events = Reader::new(&w.events);
    let p = producer();
    for sw in [SW1, SW2] {
        send(
            &p,
            &w.fl_write("fl1"),
            Some(sw),
            &switch_event(sw, "ACTIVATED"),
            None,
        )
        .await;
        events.expect(LONG).await;
    }
    // fl2 stands by for SW1 (a second read-write connection): shown, not counted as active.
    send(
        &p,
        &w.fl_write("fl2"),
        Some(SW1),
        &switch_event(SW1, "ACTIVATED"),
        None,
    )
    .await;
    events.expect(LONG).await; // its availability notice
    let url = router.admin_url().await;
    let dom = page(&url).await;
    assert!(
        dom.contains(r#"data-live="1""#),
        "the page fetched live data:\n{dom}"
    );
    let row = dom.split(r#"data-fl="fl1""#).nth(1).expect("a row for fl1");
    assert!(
        row.contains(r#"<td class="switches">2</td>"#),
        "fl1 manages 2 switches:\n{row}"
    );
    let row2 = dom.split(r#"data-fl="fl2""#).nth(1).expect("a row for fl2");
    assert!(
        row2.contains(r#"<td class="switches">0</td><td class="standby">1</td>"#),
        "fl2 stands by for one switch:\n{row2}"
    );
    assert!(dom.contains("fl_proxy"), "busiest mailboxes listed");
    assert!(
        dom.contains(r#"data-mode="single""#) && dom.contains("owns fl1, fl2"),
        "this instance's shares shown:\n{dom}"
    );

    // The screenshot step of the docs, exercised: a PNG of the live page.
    let png = w.dir.path().join("dashboard.png");
    let path = png.clone();
    tokio::task::spawn_blocking(move || dump_dom(&url, Some(&path)))
        .await
        .unwrap();
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
}

/// `data-<attr>` of the chart `key` in the DOM, as a number.
fn chart_attr(dom: &str, key: &str, attr: &str) -> u64 {
    let tag = dom
        .split(&format!(r#"data-chart="{key}""#))
        .nth(1)
        .unwrap_or_else(|| panic!("a {key} chart:\n{dom}"));
    let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
    tag.split(&format!(r#"data-{attr}=""#))
        .nth(1)
        .and_then(|v| v.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("data-{attr} on the {key} chart: {tag}"))
}

/// The charts, drawn from the router's own history while a load runs through it: commands in
/// and answers out, router errors (one FL stays silent for a while: its commands time out),
/// router-added latency, each FL's status (fl2 offline while silent), the busiest mailboxes. With
/// `FLROUTER_DOCS_SCREENSHOT=<path>` the page is also saved there (docs/dashboard.png is made
/// so; `DASHBOARD_LOAD_SECONDS` lengthens the run for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_show_the_last_minutes_of_a_router_under_load() {
    // Liveness on, quickly: a silent FL is declared offline within seconds.
    let w = World::with(
        &["fl1", "fl2", "fl3"],
        serde_json::json!({
            "timeouts": {"ack": "2s", "alive_interval": "500ms", "alive_timeout": "2s"},
            "sync": {"at_start": false, "periodic": "0s"},
        }),
    )
    .await;
    let (sim, router) = simulated_network(&w, 4, "router").await;
    let load = LoadRun::start(
        sim_client(),
        w.commands.clone(),
        sim.switches(),
        LoadConfig {
            rate: 200.0,
            grace: Duration::from_secs(5),
            reply_topic: w.reply.clone(),
            unknown_switch_fraction: 0.02,
            ..LoadConfig::default()
        },
        fl_router_actors::settings::Classes::default(),
    )
    .expect("load");
    let seconds: u64 = std::env::var("DASHBOARD_LOAD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    // fl2 is silent for the middle third: its commands are answered OPERATION_TIMED_OUT.
    let sent_by = |n: u64| {
        let load = &load;
        async move {
            tokio::time::timeout(LONG * 20, async {
                while load.stats().sent.load(Relaxed) < n {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .expect("the load sends");
        }
    };
    let per_third = 200 * seconds / 3;
    sent_by(per_third).await;
    let silent = &sim.fl("fl2").expect("fl2").knobs.silent;
    silent.store(true, Relaxed);
    sent_by(2 * per_third).await;
    // Silent until a sample of the router's history has fl2 offline (the timeline must show it).
    let url = router.admin_url().await;
    let deadline = tokio::time::Instant::now() + LONG;
    while fl_status_now(&url, "fl2").await.as_deref() != Some("offline") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fl2 never sampled offline"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    silent.store(false, Relaxed);
    sent_by(3 * per_third).await;
    let dom = page(&url).await;
    assert!(
        dom.contains(r#"data-charts="1""#),
        "the charts were drawn:\n{dom}"
    );
    assert!(
        chart_attr(&dom, "traffic", "points") >= seconds.min(8) - 2,
        "a sample a second:\n{dom}"
    );
    for key in ["traffic", "errors", "latency", "fl_status"] {
        assert!(
            chart_attr(&dom, key, "nonzero") > 0,
            "the {key} chart has data:\n{dom}"
        );
    }
    assert!(dom.contains(r#"data-status="online""#), "FLs shown online");
    assert!(
        dom.contains(r#"data-status="offline""#),
        "fl2's silence shown offline in the timeline"
    );
    if let Ok(path) = std::env::var("FLROUTER_DOCS_SCREENSHOT") {
        let path = std::path::PathBuf::from(path);
        tokio::task::spawn_blocking(move || dump_dom(&url, Some(&path)))
            .await
            .unwrap();
    }
    let report = tokio::task::spawn_blocking(move || load.finish())
        .await
        .unwrap()
        .unwrap();
    assert!(report.answered > 0, "{}", report.summary_line());
}
