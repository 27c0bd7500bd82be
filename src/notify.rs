//! What the service manager hears from the router (systemd's `Type=notify` protocol, through
//! `NOTIFY_SOCKET`): `READY=1` once the first router routes commands, `WATCHDOG=1` while its
//! engine answers (when the unit sets `WatchdogSec=`), `STOPPING=1` at shutdown. Without a
//! service manager every call is a no-op.

use std::time::Duration;

use fl_router_actors::Engine;
use tokio::sync::{oneshot, watch};

/// Tells the service manager and `tx` once `ready` turns true; then, when the unit asks for a
/// watchdog, pings it at half its interval for as long as the current engine (`engine`, which
/// a reload replaces) answers a question within a quarter of it. A wedged engine stops the
/// pings and systemd restarts the router (`Restart=on-failure` covers a watchdog kill).
pub fn on_ready(
    mut ready: watch::Receiver<bool>,
    tx: Option<oneshot::Sender<()>>,
    engine: watch::Receiver<Engine>,
) {
    tokio::spawn(async move {
        if ready.wait_for(|r| *r).await.is_err() {
            return;
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        if let Some(tx) = tx {
            let _ = tx.send(());
        }
        if let Some(interval) = watchdog_interval() {
            watchdog(interval, engine).await;
        }
    });
}

/// `WATCHDOG_USEC`, when it is meant for this process: as sd_watchdog_enabled(3) reads it,
/// `WATCHDOG_PID` either unset or ours (the sd-notify crate also refuses an unset one).
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    let for_us = match std::env::var("WATCHDOG_PID") {
        Ok(pid) => pid.parse::<u32>().ok() == Some(std::process::id()),
        Err(_) => true,
    };
    (for_us && usec > 0).then(|| Duration::from_micros(usec))
}

async fn watchdog(interval: Duration, engine: watch::Receiver<Engine>) {
    let mut tick = tokio::time::interval(interval / 2);
    loop {
        tick.tick().await;
        let current = engine.borrow().clone();
        match tokio::time::timeout(interval / 4, current.switch_counts()).await {
            Ok(Ok(_)) => {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            }
            _ => tracing::warn!(
                "the engine did not answer within {:?}: no watchdog ping (systemd restarts the router if it stays so)",
                interval / 4
            ),
        }
    }
}

/// `STOPPING=1`: the router drains.
pub fn stopping() {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
}
