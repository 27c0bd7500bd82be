//! The service's life in one process: the router, its admin API and its reloads (SIGHUP,
//! `POST /api/reload`), until the shutdown future resolves or a consumer hits a fatal error.
//! A reload stops the running router (one call: every task it owns, its engine's actors) and
//! starts the next one with the new FL list; the admin API stays up and serves the new one.

use std::future::Future;
use std::sync::Arc;

use crate::admin::{self, Extras};
use crate::config::Config;
use crate::notify;
use crate::reload;
use crate::router::Router;

/// Runs the router until `shutdown` resolves, then drains and returns.
/// Must be called inside an actix `System` (the engine's actors live there).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_with(config, shutdown, RunOptions::default()).await
}

/// Where the configuration came from, and what runs beside the router in this process.
#[derive(Default)]
pub struct RunOptions {
    /// The configuration file, read again on a reload (SIGHUP, `POST /api/reload`).
    pub config_path: Option<std::path::PathBuf>,
    /// The tooling's faults and load (`fl-router-tools stage`), served by the admin API.
    pub extras: Option<Arc<dyn Extras>>,
    /// Told once, when the first router routes commands.
    pub ready: Option<tokio::sync::oneshot::Sender<()>>,
}

/// What ends the wait of [`run_with`]'s main loop.
enum Event {
    Shutdown,
    Fatal(String),
    Reload(reload::Request),
}

/// [`run`], with the options of [`RunOptions`].
pub async fn run_with(
    config: Config,
    shutdown: impl Future<Output = ()>,
    opts: RunOptions,
) -> anyhow::Result<()> {
    // The admin API first: `/health` from the first second, `/ready` 503 until routing, and a
    // busy port fails the start before any Kafka client exists.
    let (reload_tx, mut reloads) = tokio::sync::mpsc::unbounded_channel();
    let admin = start_admin(&config, Some(reload_tx.clone()))?;
    let mut router = Router::start(&config).await?;
    if let Some((_, slot)) = &admin {
        slot.replace(admin_state(&config, &router, opts.extras.clone()));
        tracing::info!("admin API serving the router");
    }
    // Told once, when the first router routes: the caller and the service manager; then the
    // watchdog follows whichever engine runs.
    let (engine_tx, engine_rx) = tokio::sync::watch::channel(router.engine().clone());
    notify::on_ready(router.ready(), opts.ready, engine_rx);
    let hangups = hangups(reload_tx);
    let mut config = config;
    tokio::pin!(shutdown);
    let fatal = loop {
        let event = tokio::select! {
            _ = &mut shutdown => Event::Shutdown,
            why = router.fatal() => Event::Fatal(why),
            Some(r) = reloads.recv() => Event::Reload(r),
        };
        let request = match event {
            Event::Shutdown => break None,
            Event::Fatal(why) => break Some(why),
            Event::Reload(r) => r,
        };
        let (next, plan) = match reload::prepare(&config, opts.config_path.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(source = request.source, error = %e, "reload refused; running as before");
                if let Some(reply) = request.reply {
                    let _ = reply.send(Err(e));
                }
                continue;
            }
        };
        tracing::info!(source = request.source, added = ?plan.added, removed = ?plan.removed, changed = ?plan.changed,
            "reloading the FL list: draining the engine and starting it again with the new list");
        if let Some(reply) = request.reply {
            let _ = reply.send(Ok(plan.clone()));
        }
        let carried = router.carried();
        router.shutdown_leaving_groups().await;
        router = match Router::start_after(&next, Some(carried.clone())).await {
            Ok(r) => {
                config = next;
                r
            }
            Err(e) => {
                // The new list could not start (a topic it needs, …): back to the running one.
                tracing::error!(error = %e, "reload failed; starting again with the previous FL list");
                Router::start_after(&config, Some(carried)).await?
            }
        };
        if let Some((_, slot)) = &admin {
            slot.replace(admin_state(&config, &router, opts.extras.clone()));
        }
        let _ = engine_tx.send(router.engine().clone());
        tracing::info!(fls = ?config.fls.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), "reloaded: routing with the new FL list");
    };
    notify::stopping();
    if let Some((h, _)) = admin {
        h.stop(true).await;
    }
    hangups.abort();
    router.shutdown().await;
    match fatal {
        // A non-zero exit: the service manager restarts the router.
        Some(why) => Err(anyhow::anyhow!("stopped on a fatal Kafka error: {why}")),
        None => Ok(()),
    }
}

/// Sends a reload request on every SIGHUP, until aborted.
fn hangups(tx: tokio::sync::mpsc::UnboundedSender<reload::Request>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                let r = reload::Request {
                    reply: None,
                    source: "SIGHUP",
                };
                if tx.send(r).is_err() {
                    return;
                }
            }
        }
    })
}

/// Serves the admin API when `admin.enabled`, with no router yet (give it one with
/// `AdminSlot::replace(admin_state(…))`); `reload` takes `POST /api/reload`.
pub fn start_admin(
    config: &Config,
    reload: Option<tokio::sync::mpsc::UnboundedSender<reload::Request>>,
) -> anyhow::Result<Option<(actix_web::dev::ServerHandle, Arc<admin::AdminSlot>)>> {
    if !config.admin.enabled {
        return Ok(None);
    }
    let slot = admin::AdminSlot::new(None, reload);
    let handle = admin::serve(&config.admin, slot.clone())?;
    Ok(Some((handle, slot)))
}

/// The admin API's view of `router`.
pub fn admin_state(
    config: &Config,
    router: &Router,
    extras: Option<Arc<dyn Extras>>,
) -> admin::AdminState {
    admin::AdminState {
        engine: router.engine().clone(),
        outbox: Some(router.outbox().clone()),
        producer: Some(router.outbox().counters.clone()),
        kafka: Some(router.kafka_stats().clone()),
        ready: router.ready(),
        token: config.admin.effective_token(),
        extras,
        cluster: Some(Arc::new(router.cluster_view(config))),
        history: Some(router.history().clone()),
    }
}
