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

/// What runs in the router's process besides the router (staging and chaos runs).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// The FL simulator (section `sim`), reachable through the admin fault endpoint.
    pub with_sim: bool,
    /// The load generator (section `load`), from the moment the router is ready.
    pub with_load: bool,
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
    let admin = start_admin(&config, &router, sim.as_ref(), slot.clone(), None)?;
    let fatal = tokio::select! {
        _ = shutdown => None,
        why = router.fatal() => Some(why),
    };
    if let Some(h) = admin {
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

/// Serves the admin API for `router` when `admin.enabled`.
pub fn start_admin(
    config: &Config,
    router: &Router,
    sim: Option<&sim::Simulator>,
    load: Option<Arc<admin::LoadSlot>>,
    broker: Option<tokio::sync::mpsc::UnboundedSender<std::time::Duration>>,
) -> anyhow::Result<Option<actix_web::dev::ServerHandle>> {
    if !config.admin.enabled {
        return Ok(None);
    }
    let state = admin::AdminState {
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
    };
    admin::serve(&config.admin, state).map(Some)
}
