//! `fl-router-tools stage`: the router with simulated FLs and a steady load in one process, for
//! staging and chaos runs. The router is the service's own ([`fl_router::run_with`]: admin API,
//! reloads); this module adds what the service must not hold — the simulator, the load, the
//! faults only they can play — through the admin API's [`Extras`] hook.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fl_router::admin::{Extras, Refusal, StatusCode};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::load::{LoadReport, LoadRun};
use crate::setup::Setup;
use crate::sim::fl::SimFl;
use crate::sim::Simulator;

/// A fault of the tooling's, injected through `POST /api/faults` like the service's own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToolFault {
    /// The FL reads but says nothing (`on: false` ends it).
    SilenceFl {
        fl: String,
        #[serde(default = "yes")]
        on: bool,
    },
    /// Every answer of the FL is delayed this much more.
    DelayFl { fl: String, ms: u64 },
    /// This fraction of the FL's acks and answers is dropped.
    DropFl { fl: String, fraction: f64 },
    /// The FL's next `count` writes fail (reported in its AliveResponse).
    FailWrites { fl: String, count: u32 },
    /// The FL is down for `ms`, then reconnects its switches.
    CrashFl { fl: String, ms: u64 },
    /// All of the FL's fault knobs back to normal.
    RestoreFl { fl: String },
    /// The embedded Kafka's broker goes down for `ms` (the demo only).
    BrokerDown { ms: u64 },
    /// Stop the in-process load and keep its final report (`GET /api/load`).
    StopLoad,
}

fn yes() -> bool {
    true
}

/// The in-process load: running, then its final report.
#[derive(Default)]
pub struct LoadSlot {
    pub run: Mutex<Option<LoadRun>>,
    pub report: Mutex<Option<LoadReport>>,
}

impl LoadSlot {
    /// Stops the load (if it still runs) and keeps its report; returns the report.
    pub fn finish(&self) -> anyhow::Result<Option<LoadReport>> {
        let run = self.run.lock().ok().and_then(|mut r| r.take());
        if let Some(run) = run {
            let report = run.finish()?;
            if let Ok(mut r) = self.report.lock() {
                *r = Some(report);
            }
        }
        Ok(self.report.lock().ok().and_then(|r| r.clone()))
    }
}

/// What the tooling adds to the admin API.
pub struct Staging {
    pub sim: Vec<Arc<SimFl>>,
    pub load: Arc<LoadSlot>,
    /// Requests to take the embedded broker down for a while (the demo owns the mock cluster).
    pub broker: Option<tokio::sync::mpsc::UnboundedSender<Duration>>,
}

impl Staging {
    fn sim_fl(&self, fl: &str) -> Result<&Arc<SimFl>, Refusal> {
        if self.sim.is_empty() {
            return Err((
                StatusCode::CONFLICT,
                "no simulated FLs in this process".into(),
            ));
        }
        self.sim
            .iter()
            .find(|f| f.id == fl)
            .ok_or((StatusCode::BAD_REQUEST, format!("unknown FL {fl:?}")))
    }

    fn apply(&self, fault: ToolFault) -> Result<(), Refusal> {
        use std::sync::atomic::Ordering::Relaxed;
        match fault {
            ToolFault::SilenceFl { fl, on } => self.sim_fl(&fl)?.knobs.silent.store(on, Relaxed),
            ToolFault::DelayFl { fl, ms } => self
                .sim_fl(&fl)?
                .knobs
                .extra_delay_us
                .store(ms * 1000, Relaxed),
            ToolFault::DropFl { fl, fraction } => {
                self.sim_fl(&fl)?.knobs.set_drop_fraction(fraction)
            }
            ToolFault::FailWrites { fl, count } => self
                .sim_fl(&fl)?
                .knobs
                .fail_next_writes
                .store(count, Relaxed),
            ToolFault::CrashFl { fl, ms } => {
                self.sim_fl(&fl)?.knobs.crash_for(Duration::from_millis(ms))
            }
            ToolFault::RestoreFl { fl } => {
                let k = &self.sim_fl(&fl)?.knobs;
                k.silent.store(false, Relaxed);
                k.extra_delay_us.store(0, Relaxed);
                k.set_drop_fraction(0.0);
                k.fail_next_writes.store(0, Relaxed);
                k.crash_for(Duration::ZERO);
            }
            ToolFault::BrokerDown { ms } => {
                let tx = self.broker.as_ref().ok_or((
                    StatusCode::CONFLICT,
                    "no embedded broker in this process".to_string(),
                ))?;
                tx.send(Duration::from_millis(ms)).map_err(|_| {
                    (
                        StatusCode::CONFLICT,
                        "the embedded broker is gone".to_string(),
                    )
                })?;
            }
            ToolFault::StopLoad => unreachable!("applied on a blocking thread by fault()"),
        }
        Ok(())
    }
}

impl Extras for Staging {
    fn fault(&self, fault: serde_json::Value) -> BoxFuture<'static, Result<(), Refusal>> {
        let parsed: Result<ToolFault, Refusal> = serde_json::from_value(fault)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad fault: {e}")));
        let done = match parsed {
            Ok(ToolFault::StopLoad) => {
                let slot = self.load.clone();
                return Box::pin(async move {
                    tokio::task::spawn_blocking(move || slot.finish())
                        .await
                        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
                        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                    Ok(())
                });
            }
            Ok(f) => self.apply(f),
            Err(e) => Err(e),
        };
        Box::pin(async move { done })
    }

    fn load(&self) -> Option<serde_json::Value> {
        if let Some(r) = self.load.report.lock().ok().and_then(|r| r.clone()) {
            return Some(json!({"running": false, "report": r, "summary": r.summary_line()}));
        }
        let live = self.load.run.lock().ok().and_then(|r| {
            r.as_ref().map(|run| {
                let st = run.stats();
                use std::sync::atomic::Ordering::Relaxed;
                json!({"sent": st.sent.load(Relaxed), "answered": st.answered.load(Relaxed),
                       "router_errors": st.router_errors.load(Relaxed), "duplicates": st.duplicates.load(Relaxed),
                       "unanswered": st.unanswered()})
            })
        });
        Some(match live {
            Some(live) => json!({"running": true, "live": live}),
            // The load starts once the router routes: until then it is on its way.
            None => json!({"running": false, "starting": true}),
        })
    }
}

/// Runs the router with the simulator and the load until `shutdown` resolves; then the load
/// stops first (its summary line is printed), then the router drains.
pub async fn run(
    setup: Setup,
    config_path: Option<std::path::PathBuf>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let Setup { config, sim, load } = setup;
    let client = fl_router::kafka::base_config(&config.kafka);
    // The simulated FLs read their topics from the start: create them first (on a fresh
    // Kafka the router would create them only after the simulator had asked for them).
    let topics = fl_router::kafka::topics::all_topics(&config);
    fl_router::kafka::topics::ensure(&config, &client, &topics).await?;
    let simulator = Simulator::start(client.clone(), &config.settings(), &sim)?;
    let switches = simulator.switches();
    let slot = Arc::new(LoadSlot::default());
    let staging = Arc::new(Staging {
        sim: simulator.fls.clone(),
        load: slot.clone(),
        broker: None,
    });
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let opts = fl_router::RunOptions {
        config_path,
        extras: Some(staging),
        ready: Some(ready_tx),
    };
    // Once the router routes, the load starts.
    let starter = {
        let (config, slot) = (config.clone(), slot.clone());
        async move {
            if ready.await.is_err() {
                return anyhow::Ok(());
            }
            let reply = std::iter::once(load.reply_topic.clone()).collect();
            fl_router::kafka::topics::ensure(&config, &client, &reply).await?;
            let run = LoadRun::start(
                client,
                config.topics.command_topics()[0].clone(),
                switches,
                load,
                config.protocol.classes.clone(),
            )?;
            if let Ok(mut r) = slot.run.lock() {
                *r = Some(run);
            }
            anyhow::Ok(())
        }
    };
    let starter = tokio::spawn(starter);
    let stop = {
        let slot = slot.clone();
        async move {
            shutdown.await;
            match tokio::task::spawn_blocking(move || slot.finish()).await {
                Ok(Ok(Some(report))) => report.print(),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the load did not finish cleanly"),
                Err(e) => tracing::warn!(error = %e, "the load did not finish cleanly"),
            }
        }
    };
    let result = fl_router::run_with(config, stop, opts).await;
    starter.abort();
    drop(simulator);
    result
}
