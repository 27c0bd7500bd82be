//! `fl-router`, the service: parses the command line and the configuration, then hands over to
//! the library ([`fl_router::run_with`], [`fl_router::trace_view`]).

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use fl_router::cli::{self, Cli, Command};
use fl_router::config::Config;

// mimalloc: memory is allocated on the actor and consumer threads and freed on librdkafka's
// delivery thread; glibc's malloc serialises that on its arena lock (a tenth of the router's
// samples at saturation were malloc/free and the lock's futex waits).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `--version` says which build this is: the commit and the librdkafka it links.
    let version = format!(
        "{} (commit {}, librdkafka {})",
        env!("CARGO_PKG_VERSION"),
        env!("FLROUTER_COMMIT"),
        rdkafka::util::get_rdkafka_version().1
    );
    let version: &'static str = Box::leak(version.into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    cli::init_logs(cli::DEFAULT_LOG, cli.common.log_format);
    if let Some(Command::Trace {
        correlation_id,
        admin,
    }) = &cli.command
    {
        // The router the configuration describes, unless told otherwise.
        let admin = admin.clone().unwrap_or_else(|| {
            Config::load(&cli.common.config)
                .map(|c| format!("http://{}", c.admin.bind))
                .unwrap_or_else(|_| "http://127.0.0.1:9464".into())
        });
        return match fl_router::trace_view::run(correlation_id, &admin) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let path = match &cli.command {
        Some(Command::CheckConfig { file: Some(f) }) => f.clone(),
        _ => cli.common.config.clone(),
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(cli::EXIT_CONFIG);
        }
    };
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig { .. } => {
            print!("{}", config.to_yaml());
            eprintln!("{}: ok", path.display());
            Ok(())
        }
        Command::Run if config.is_embedded() => {
            eprintln!(
                "error: {}: kafka.brokers: `embedded` is the demo's in-process Kafka, not one the \
                 service can use: run the demo with `cargo run --release` (fl-router-tools), or \
                 set kafka.brokers (or FLROUTER_KAFKA_BROKERS) to a real Kafka",
                path.display()
            );
            return ExitCode::from(cli::EXIT_CONFIG);
        }
        Command::Run => {
            let opts = fl_router::RunOptions {
                config_path: Some(path.clone()),
                ..Default::default()
            };
            let system = actix_rt::System::new();
            system.block_on(fl_router::run_with(
                config,
                cli::stop_signal(cli.common.duration),
                opts,
            ))
        }
        Command::Trace { .. } => Ok(()), // handled above
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
