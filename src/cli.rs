//! The service's command line: run the router (the default), check a configuration file, or
//! ask a running router about one command. Test tooling has its own binary (`fl-router-tools`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "fl-router",
    version,
    about = "Routes SDN controller commands to Floodlight speakers over Kafka"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The exit code of a configuration error (sysexits' `EX_CONFIG`); a usage error (a wrong
/// option) exits 2, a failure while running 1.
pub const EXIT_CONFIG: u8 = 78;

/// The options every binary of the project takes (the service's and the tooling's).
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Configuration file (the tooling reads its `sim` and `load` sections from it too).
    #[arg(
        long,
        short,
        global = true,
        default_value = "config.yaml",
        env = "FLROUTER_CONFIG"
    )]
    pub config: PathBuf,
    /// Stop after this long (humantime: 20s, 5m); default: until Ctrl-C/SIGTERM.
    #[arg(long, global = true, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Log lines as text (colour only on a terminal, never with NO_COLOR) or as JSON objects,
    /// one per line with the same fields.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "FLROUTER_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// How log lines are written (on stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the router (the default).
    Run,
    /// Validate a configuration file and print the effective configuration.
    CheckConfig {
        /// The file to check (defaults to --config).
        file: Option<PathBuf>,
    },
    /// Print what a running router did with one recent command (received, routed, answered or
    /// timed out, delivered, committed); exits 1 when the router no longer keeps it.
    Trace {
        /// The command's correlation id.
        correlation_id: String,
        /// The router's admin API (default: the configuration's `admin.bind`, else
        /// http://127.0.0.1:9464).
        #[arg(long)]
        admin: Option<String>,
    },
}

/// Resolves on Ctrl-C, SIGTERM, or after `duration`.
pub async fn stop_signal(duration: Option<Duration>) {
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

/// The log subscriber every binary of the project uses: `RUST_LOG`, else `default`, on stderr;
/// ANSI colour only when stderr is a terminal and `NO_COLOR` is not set (a file or the journal
/// gets plain text).
pub fn init_logs(default: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).init()
        }
    }
}

/// librdkafka reports every connection change at info; keep those out unless asked for.
/// actix-web's server logs its workers and runtime at info: the router says where the admin API
/// listens, once.
pub const DEFAULT_LOG: &str = "info,librdkafka=warn,rdkafka=warn,actix_server=warn";
