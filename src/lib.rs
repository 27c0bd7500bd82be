//! fl-router, the shell: configuration, Kafka I/O and the CLI around the engine
//! ([`fl_router_actors`]). [`run`] wires the consumers and the producer to the engine and owns
//! the orderly shutdown: stop reading commands, let pending commands finish (FL answers are
//! still read), flush the producer, commit.

pub mod admin;
pub mod bench;
pub mod chaos;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod embedded;
pub mod history;
pub mod kafka;
pub mod latency;
pub mod load;
pub mod metrics;
pub mod pipe;
pub mod reload;
pub mod router;
pub mod sim;
pub mod trace;

use crate::config::Config;
pub use crate::router::Router;
use std::future::Future;
use std::sync::Arc;

/// Runs the router until `shutdown` resolves, then drains and returns.
/// Must be called inside an actix `System` (the engine's actors live there).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_with(config, shutdown, RunOptions::default()).await
}

/// What runs in the router's process besides the router (staging and chaos runs), and where
/// its configuration came from.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The FL simulator (section `sim`), reachable through the admin fault endpoint.
    pub with_sim: bool,
    /// The load generator (section `load`), from the moment the router is ready.
    pub with_load: bool,
    /// The configuration file, read again on a reload (SIGHUP, `POST /api/reload`).
    pub config_path: Option<std::path::PathBuf>,
}

/// What ends the wait of [`run_with`]'s main loop.
enum Event {
    Shutdown,
    Fatal(String),
    Reload(reload::Request),
}

/// [`run`], optionally with the simulator and the load in the same process.
pub async fn run_with(
    config: Config,
    shutdown: impl Future<Output = ()>,
    opts: RunOptions,
) -> anyhow::Result<()> {
    let client = kafka::base_config(&config.kafka);
    let sim = match opts.with_sim {
        true => Some(sim::Simulator::start(
            client.clone(),
            &config.settings(),
            &config.sim,
        )?),
        false => None,
    };
    let router = Router::start(&config).await?;
    let slot = opts.with_load.then(|| Arc::new(admin::LoadSlot::default()));
    if let Some(slot) = &slot {
        let mut ready = router.ready();
        let _ = ready.wait_for(|r| *r).await;
        let reply = std::iter::once(config.load.reply_topic.clone()).collect();
        kafka::topics::ensure(&config, &client, &reply).await?;
        let switches = match &sim {
            Some(s) => s.switches(),
            None => sim::switches_of(&config),
        };
        let run = load::LoadRun::start(
            client,
            config.topics.command_topics()[0].clone(),
            switches,
            config.load.clone(),
            config.protocol.classes.clone(),
        )?;
        if let Ok(mut r) = slot.run.lock() {
            *r = Some(run);
        }
    }
    let (reload_tx, mut reloads) = tokio::sync::mpsc::unbounded_channel();
    hangups(reload_tx.clone());
    let admin = start_admin(
        &config,
        &router,
        sim.as_ref(),
        slot.clone(),
        None,
        Some(reload_tx),
    )?;
    let mut config = config;
    let mut router = router;
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
        if let Some((_, admin_slot)) = &admin {
            admin_slot.replace(admin_state(
                &config,
                &router,
                sim.as_ref(),
                slot.clone(),
                None,
            ));
        }
        tracing::info!(fls = ?config.fls.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), "reloaded: routing with the new FL list");
    };
    if let Some((h, _)) = admin {
        h.stop(true).await;
    }
    if let Some(run) = slot.and_then(|s| s.run.lock().ok().and_then(|mut r| r.take())) {
        let report = tokio::task::spawn_blocking(move || run.finish()).await??;
        println!("{}", report.summary_line());
    }
    router.shutdown().await;
    drop(sim);
    match fatal {
        // A non-zero exit: the service manager restarts the router.
        Some(why) => Err(anyhow::anyhow!("stopped on a fatal Kafka error: {why}")),
        None => Ok(()),
    }
}

/// Sends a reload request on every SIGHUP.
fn hangups(tx: tokio::sync::mpsc::UnboundedSender<reload::Request>) {
    #[cfg(unix)]
    tokio::spawn(async move {
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
    });
}

/// Serves the admin API for `router` when `admin.enabled`; `reload` takes `POST /api/reload`.
pub fn start_admin(
    config: &Config,
    router: &Router,
    sim: Option<&sim::Simulator>,
    load: Option<Arc<admin::LoadSlot>>,
    broker: Option<tokio::sync::mpsc::UnboundedSender<std::time::Duration>>,
    reload: Option<tokio::sync::mpsc::UnboundedSender<reload::Request>>,
) -> anyhow::Result<Option<(actix_web::dev::ServerHandle, Arc<admin::AdminSlot>)>> {
    if !config.admin.enabled {
        return Ok(None);
    }
    let slot = admin::AdminSlot::new(admin_state(config, router, sim, load, broker), reload);
    let handle = admin::serve(&config.admin, slot.clone())?;
    Ok(Some((handle, slot)))
}

/// The admin API's view of `router`.
pub fn admin_state(
    config: &Config,
    router: &Router,
    sim: Option<&sim::Simulator>,
    load: Option<Arc<admin::LoadSlot>>,
    broker: Option<tokio::sync::mpsc::UnboundedSender<std::time::Duration>>,
) -> admin::AdminState {
    admin::AdminState {
        engine: router.engine().clone(),
        outbox: Some(router.outbox().clone()),
        producer: Some(router.outbox().counters.clone()),
        kafka: Some(router.kafka_stats().clone()),
        ready: router.ready(),
        token: config.admin.effective_token(),
        sim: sim.map(|s| s.fls.clone()).unwrap_or_default(),
        load,
        broker,
        cluster: Some(Arc::new(router.cluster_view(config))),
        history: Some(router.history().clone()),
    }
}
