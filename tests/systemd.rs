//! The service manager learns when the router routes (systemd's `Type=notify`): `READY=1` on
//! `NOTIFY_SOCKET` once commands are routed, not at process start; `STOPPING=1` at shutdown.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_notified_when_the_router_routes() {
    let w = World::new(&["fl1"], "5s").await;
    let path = w.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket.set_read_timeout(Some(LONG)).expect("socket timeout");
    let mut router = w.start_router_env("router", &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let log = router.log.clone();
    let first = tokio::task::spawn_blocking(move || {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("a notification");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        (
            text,
            std::fs::read_to_string(&log).unwrap_or_default(),
            socket,
        )
    })
    .await
    .unwrap();
    let (text, log_then, socket) = first;
    assert!(text.contains("READY=1"), "{text}");
    assert!(
        log_then.contains("router ready: routing commands"),
        "READY=1 came before the router routed:\n{log_then}"
    );
    router.terminate();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("a stopping notification");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
}

/// With `WatchdogSec=` (systemd passes `WATCHDOG_USEC`), the router pings `WATCHDOG=1` at half
/// the interval while its engine answers; without it (the test above) it sends none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_is_pinged_while_the_engine_answers() {
    let w = World::new(&["fl1"], "5s").await;
    let path = w.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket.set_read_timeout(Some(LONG)).expect("socket timeout");
    let mut router = w.start_router_env(
        "router",
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let messages = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        // READY=1, then four pings (every 200 ms).
        while seen
            .iter()
            .filter(|m: &&String| m.contains("WATCHDOG=1"))
            .count()
            < 4
        {
            let n = socket.recv(&mut buf).expect("a notification");
            seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
        seen
    })
    .await
    .unwrap();
    assert!(messages[0].contains("READY=1"), "{messages:?}");
    assert!(
        messages[1..].iter().all(|m| m.contains("WATCHDOG=1")),
        "{messages:?}"
    );
    router.terminate();
}
