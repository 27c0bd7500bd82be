//! The dashboard in a real headless browser (Debian's Chromium, installed by scripts/deps.sh):
//! the page served at `/` by a running router must show live data from it.

mod common;

use std::process::Command;

use common::*;

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
    let dom = tokio::task::spawn_blocking({
        let url = url.clone();
        move || dump_dom(&url, None)
    })
    .await
    .unwrap();
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
