//! `fl-router`: parses the CLI and configuration, then hands over to the library:
//! [`fl_router::run`], the embedded default, the simulator or the load generator.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use fl_router::cli::{ChaosCommand, Cli, Command};
use fl_router::config::Config;
use fl_router::{embedded, kafka, load, sim};
use tracing_subscriber::EnvFilter;

/// librdkafka reports every connection change at info; keep those out unless asked for.
/// actix-web's server logs its workers and runtime at info: the router says where the admin API
/// listens, once.
const DEFAULT_LOG: &str = "info,librdkafka=warn,rdkafka=warn,actix_server=warn";

// mimalloc: memory is allocated on the actor and consumer threads and freed on librdkafka's
// delivery thread; glibc's malloc serialises that on its arena lock (a tenth of the router's
// samples at saturation were malloc/free and the lock's futex waits).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .init();
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
    if let Some(Command::Trace {
        correlation_id,
        admin,
    }) = &cli.command
    {
        return match fl_router::trace::run(correlation_id, admin) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    // The benchmark writes its own configurations (it runs the router and the pipe as children).
    if let Some(Command::Bench(args)) = &cli.command {
        return match fl_router::bench::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let path = match &cli.command {
        Some(Command::CheckConfig { file: Some(f) }) => f.clone(),
        _ => cli.config.clone(),
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig { .. } => {
            print!("{}", config.to_yaml());
            eprintln!("{}: ok", path.display());
            Ok(())
        }
        Command::Run if config.is_embedded() => {
            embedded::run(config, cli.duration, stop_signal(None))
                .map(|r| println!("{}", r.summary_line()))
        }
        Command::Run => {
            let opts = fl_router::RunOptions {
                with_sim: cli.with_sim,
                with_load: cli.with_load,
                config_path: Some(path.clone()),
            };
            let system = actix_rt::System::new();
            system.block_on(fl_router::run_with(config, stop_signal(cli.duration), opts))
        }
        Command::Chaos { .. } | Command::Bench(_) | Command::Trace { .. } => Ok(()), // handled above
        Command::Sim => run_sim(config, cli.duration),
        Command::Pipe => real_kafka(&config, "pipe").and_then(|()| {
            let reply = config.load.reply_topic.clone();
            runtime()?.block_on(fl_router::pipe::run(
                &config,
                &reply,
                stop_signal(cli.duration),
            ))
        }),
        Command::Load { rate, report, plot } => run_load(config, cli.duration, rate, report, plot),
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
    let result = fl_router::chaos::load(path).and_then(|s| fl_router::chaos::run(&s, admin, token));
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

fn real_kafka(config: &Config, what: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !config.is_embedded(),
        "`fl-router {what}` needs a real Kafka (set kafka.brokers or FLROUTER_KAFKA_BROKERS); the embedded default already runs it"
    );
    Ok(())
}

fn run_sim(config: Config, duration: Option<Duration>) -> anyhow::Result<()> {
    real_kafka(&config, "sim")?;
    runtime()?.block_on(async {
        let sim = sim::Simulator::start(
            kafka::base_config(&config.kafka),
            &config.settings(),
            &config.sim,
        )?;
        println!(
            "sim: {} FLs x {} switches on {}",
            sim.fls.len(),
            config.sim.switches_per_fl,
            config.kafka.brokers
        );
        stop_signal(duration).await;
        drop(sim);
        Ok(())
    })
}

fn run_load(
    mut config: Config,
    duration: Option<Duration>,
    rate: Option<f64>,
    report: Option<std::path::PathBuf>,
    plot: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    real_kafka(&config, "load")?;
    if let Some(r) = rate {
        config.load.rate = r;
    }
    let problems = config.load.validate();
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
    let switches = sim::switches_of(&config);
    let rt = runtime()?;
    let report_data = rt.block_on(async {
        let reply = std::iter::once(config.load.reply_topic.clone()).collect();
        kafka::topics::ensure(&config, &kafka::base_config(&config.kafka), &reply).await?;
        let run = load::LoadRun::start(
            kafka::base_config(&config.kafka),
            config.topics.command_topics()[0].clone(),
            switches,
            config.load.clone(),
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
    println!("{}", report_data.summary_line());
    Ok(())
}

/// Resolves on Ctrl-C, SIGTERM, or after `duration`.
async fn stop_signal(duration: Option<Duration>) {
    let timer = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
                _ = timer => {}
            }
            return;
        }
    }
    tokio::select! {
        _ = ctrl_c => {}
        _ = timer => {}
    }
}
