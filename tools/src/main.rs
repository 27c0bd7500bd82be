//! `fl-router-tools`: parses the command line and the configuration, then hands over to the
//! tooling library: the embedded demo (the default), staging, the simulator, the load, the pipe,
//! the benchmarks or the chaos runner.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use fl_router::cli::{init_logs, stop_signal, DEFAULT_LOG};
use fl_router::kafka;
use fl_router_tools::cli::{ChaosCommand, Cli, Command};
use fl_router_tools::{demo, load, sim, Setup};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(DEFAULT_LOG, cli.common.log_format);
    // The chaos runner is only an HTTP client of a running router: it needs no configuration.
    if let Some(Command::Chaos {
        command:
            ChaosCommand::Run {
                scenario,
                admin,
                token,
            },
    }) = &cli.command
    {
        return run_chaos(scenario, admin, token.clone());
    }
    // The benchmark writes its own configurations (it runs the router and the pipe as children).
    if let Some(Command::Bench(args)) = &cli.command {
        return match fl_router_tools::bench::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let setup = match Setup::load(&cli.common.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(fl_router::cli::EXIT_CONFIG);
        }
    };
    let result = match cli.command.unwrap_or(Command::Demo) {
        Command::Demo => match setup.config.is_embedded() {
            true => demo::run(setup, cli.common.duration, stop_signal(None)).map(|r| r.print()),
            false => Err(anyhow::anyhow!(
                "the demo runs its own Kafka: set kafka.brokers: embedded (config.yaml has it); \
                 on a real Kafka use `fl-router-tools stage`"
            )),
        },
        Command::Stage => real_kafka(&setup, "stage").and_then(|()| {
            let system = actix_rt::System::new();
            system.block_on(fl_router_tools::stage::run(
                setup,
                Some(cli.common.config.clone()),
                stop_signal(cli.common.duration),
            ))
        }),
        Command::Chaos { .. } | Command::Bench(_) => Ok(()), // handled above
        Command::Sim => run_sim(setup, cli.common.duration),
        Command::Pipe { lean, pending } => real_kafka(&setup, "pipe").and_then(|()| {
            let reply = setup.load.reply_topic.clone();
            let rt = runtime()?;
            match lean || pending {
                true => {
                    let stop = Arc::new(AtomicBool::new(false));
                    let flag = stop.clone();
                    rt.spawn(async move {
                        stop_signal(cli.common.duration).await;
                        flag.store(true, Ordering::Relaxed);
                    });
                    let topics = rt.block_on(fl_router_tools::pipe::prepare(&setup, &reply))?;
                    fl_router_tools::pipe::run_lean(&setup, &reply, topics, &stop, pending)
                }
                false => rt.block_on(fl_router_tools::pipe::run(
                    &setup,
                    &reply,
                    stop_signal(cli.common.duration),
                )),
            }
        }),
        Command::Load { rate, report, plot } => {
            run_load(setup, cli.common.duration, rate, report, plot)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_chaos(path: &std::path::Path, admin: &str, token: Option<String>) -> ExitCode {
    let result = fl_router_tools::chaos::load(path)
        .and_then(|s| fl_router_tools::chaos::run(&s, admin, token));
    match result {
        Ok((lines, ok)) => {
            for l in lines {
                println!("{l}");
            }
            println!(
                "{}",
                if ok {
                    "chaos: all expectations met"
                } else {
                    "chaos: expectations FAILED"
                }
            );
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn real_kafka(setup: &Setup, what: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !setup.config.is_embedded(),
        "`fl-router-tools {what}` needs a real Kafka (set kafka.brokers or FLROUTER_KAFKA_BROKERS); the demo already runs it"
    );
    Ok(())
}

fn run_sim(setup: Setup, duration: Option<Duration>) -> anyhow::Result<()> {
    real_kafka(&setup, "sim")?;
    let config = &setup.config;
    runtime()?.block_on(async {
        let client = kafka::base_config(&config.kafka);
        kafka::topics::ensure(config, &client, &kafka::topics::all_topics(config)).await?;
        let sim = sim::Simulator::start(
            kafka::base_config(&config.kafka),
            &config.settings(),
            &setup.sim,
        )?;
        println!(
            "sim: {} FLs x {} switches on {}",
            sim.fls.len(),
            setup.sim.switches_per_fl,
            config.kafka.brokers
        );
        stop_signal(duration).await;
        drop(sim);
        Ok(())
    })
}

fn run_load(
    mut setup: Setup,
    duration: Option<Duration>,
    rate: Option<f64>,
    report: Option<std::path::PathBuf>,
    plot: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    real_kafka(&setup, "load")?;
    if let Some(r) = rate {
        setup.load.rate = r;
    }
    let problems = setup.load.validate();
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
    let switches = sim::switches_of(&setup);
    let config = &setup.config;
    let rt = runtime()?;
    let report_data = rt.block_on(async {
        let reply = std::iter::once(setup.load.reply_topic.clone()).collect();
        kafka::topics::ensure(config, &kafka::base_config(&config.kafka), &reply).await?;
        let run = load::LoadRun::start(
            kafka::base_config(&config.kafka),
            config.topics.command_topics()[0].clone(),
            switches,
            setup.load.clone(),
            config.protocol.classes.clone(),
        )?;
        let started = Instant::now();
        let stop = stop_signal(duration);
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut status = load::Status::default();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => println!("{}", status.line(started.elapsed(), run.stats(), None)),
            }
        }
        tokio::task::spawn_blocking(move || run.finish()).await?
    })?;
    if let Some(p) = report {
        report_data.write_json(&p)?;
        eprintln!("report written to {}", p.display());
    }
    if let Some(p) = plot {
        report_data.write_plot(&p)?;
        eprintln!("plot written to {}", p.display());
    }
    report_data.print();
    Ok(())
}
