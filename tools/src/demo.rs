//! The embedded demo (`fl-router-tools demo`, the default of `cargo run --release`): with `kafka.brokers: embedded`, one process runs an in-process Kafka
//! (librdkafka's mock cluster), the FL simulator, the router and a steady open-loop load, prints
//! a status line a second and, at the end, the load's summary line. It shows the system working
//! on a machine with nothing installed. Pointing `kafka.brokers` at a real cluster turns it off.
//!
//! Mock-cluster traps handled here (see shared KAFKA.md): topics are created through the mock
//! API (no CreateTopics), and consumers use a short `fetch.wait.max.ms`, or idle fetches would
//! add up to 500 ms of latency.

use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use tracing::info;

use std::sync::Arc;

use fl_router::kafka;
use fl_router::Router;

use crate::load::{self, LoadReport, LoadRun};
use crate::setup::Setup;
use crate::sim::Simulator;
use crate::stage::{LoadSlot, Staging};

/// Runs everything until `duration` passes or `interrupt` resolves; returns the load report.
pub fn run(
    setup: Setup,
    duration: Option<Duration>,
    interrupt: impl Future<Output = ()> + 'static,
) -> anyhow::Result<LoadReport> {
    let Setup {
        mut config,
        sim: sim_config,
        load: load_config,
    } = setup;
    let cluster = MockCluster::new(1)?;
    config.kafka.brokers = cluster.bootstrap_servers();
    for (k, v) in [("fetch.wait.max.ms", "5"), ("fetch.error.backoff.ms", "5")] {
        config
            .kafka
            .consumer
            .entry(k.into())
            .or_insert_with(|| v.into());
    }
    let mut topics = kafka::topics::all_topics(&config);
    topics.insert(load_config.reply_topic.clone());
    for t in &topics {
        cluster.create_topic(t, config.kafka.topic_partitions, 1)?;
    }
    info!(brokers = %config.kafka.brokers, topics = topics.len(), "embedded Kafka (mock cluster) started");

    let system = actix_rt::System::new();
    let cluster_ref = &cluster;
    let report = system.block_on(async move {
        let mut client = kafka::base_config(&config.kafka);
        for (k, v) in &config.kafka.consumer {
            client.set(k, v);
        }
        let settings = config.settings();
        // The simulator first: its switch events are then the backlog the router reads before
        // it routes the first command.
        let sim = Simulator::start(client.clone(), &settings, &sim_config)?;
        let router = Router::start(&config).await?;
        let mut ready = router.ready();
        tokio::time::timeout(Duration::from_secs(30), ready.wait_for(|r| *r))
            .await
            .map_err(|_| anyhow::anyhow!("the router did not become ready within 30s"))??;
        let load = LoadRun::start(
            client,
            config.topics.command_topics()[0].clone(),
            sim.switches(),
            load_config.clone(),
            settings.protocol.classes.clone(),
        )?;
        let stats = load.stats().clone();
        let slot = Arc::new(LoadSlot::default());
        if let Ok(mut r) = slot.run.lock() {
            *r = Some(load);
        }
        let (broker_tx, mut broker_rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
        let staging = Arc::new(Staging {
            sim: sim.fls.clone(),
            load: slot.clone(),
            broker: Some(broker_tx),
        });
        let admin = fl_router::start_admin(&config, None)?.map(|(h, slot)| {
            slot.replace(fl_router::admin_state(&config, &router, Some(staging)));
            h
        });
        let mut broker_back: Option<tokio::time::Instant> = None;
        println!(
            "embedded: router ready; {} simulated FLs x {} switches; load {:.0} commands/s{}",
            sim.fls.len(),
            sim_config.switches_per_fl,
            load_config.rate,
            duration.map(|d| format!(" for {}", humantime::format_duration(d))).unwrap_or_else(|| " until Ctrl-C".into())
        );
        let started = Instant::now();
        let end = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(end);
        tokio::pin!(interrupt);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut status = load::Status::default();
        loop {
            tokio::select! {
                _ = &mut end => break,
                _ = &mut interrupt => break,
                Some(down_for) = broker_rx.recv() => {
                    // Fault injection: the mock cluster's only broker goes down, then comes back.
                    tracing::warn!(ms = down_for.as_millis() as u64, "embedded broker down");
                    let _ = cluster_ref.broker_down(1);
                    broker_back = Some(tokio::time::Instant::now() + down_for);
                }
                _ = async { if let Some(t) = broker_back { tokio::time::sleep_until(t).await } else { std::future::pending().await } } => {
                    broker_back = None;
                    tracing::warn!("embedded broker up");
                    let _ = cluster_ref.broker_up(1);
                }
                _ = tick.tick() => {
                    let fls = router.engine().fl_statuses().await;
                    let online = fls.iter().filter(|f| f.last_seen_ms_ago.is_some_and(|ms| ms < 10_000)).count();
                    println!("{}", status.line(started.elapsed(), &stats, Some((online, fls.len()))));
                }
            }
        }
        if let Some(h) = admin {
            h.stop(true).await;
        }
        // The load may have been stopped through the admin API already.
        let run = slot.run.lock().ok().and_then(|mut r| r.take());
        let report = match run {
            Some(run) => tokio::task::spawn_blocking(move || run.finish()).await??,
            None => slot
                .report
                .lock()
                .ok()
                .and_then(|r| r.clone())
                .ok_or_else(|| anyhow::anyhow!("the load was stopped without a report"))?,
        };
        router.shutdown().await;
        drop(sim);
        anyhow::Ok(report)
    });
    // The actors hold the router's Kafka clients: drop them before the cluster they talk to.
    drop(system);
    drop(cluster);
    report
}
