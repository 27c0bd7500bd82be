//! Command-line interface. With no sub-command, `fl-router` runs the router (and, with
//! `kafka.brokers: embedded`, the whole embedded demo).

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
    /// Configuration file.
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
    /// Run: also simulate the configured FLs in this process (section `sim`; staging, chaos).
    #[arg(long)]
    pub with_sim: bool,
    /// Run: also send the configured load (section `load`) once the router is ready.
    #[arg(long)]
    pub with_load: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
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
    /// Simulate the configured FLs (section `sim`) against the configured Kafka.
    Sim,
    /// Benchmark baseline: copy commands to the first FL and its output to the load's reply
    /// topic, with no routing logic.
    Pipe,
    /// Router vs. pipe on a real broker: one-way saturation and round-trip figures (CPU, memory,
    /// throughput, latency), A/B alternating; see docs/benchmarks.md.
    Bench(crate::bench::BenchArgs),
    /// Print what a running router did with one recent command (received, routed, answered or
    /// timed out, delivered, committed); exits 1 when the router no longer keeps it.
    Trace {
        /// The command's correlation id.
        correlation_id: String,
        /// The router's admin API.
        #[arg(long, default_value = "http://127.0.0.1:9464")]
        admin: String,
    },
    /// Scripted fault injection against a running router (see scenarios/).
    Chaos {
        #[command(subcommand)]
        command: ChaosCommand,
    },
    /// Send an open-loop command load (section `load`) through a running router and simulator.
    Load {
        /// Commands per second (overrides load.rate).
        #[arg(long)]
        rate: Option<f64>,
        /// Write the JSON report here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write the latency-over-time plot (SVG) here.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChaosCommand {
    /// Apply a scenario and check its expectations; exits non-zero when one fails.
    Run {
        /// The scenario file (YAML).
        scenario: PathBuf,
        /// The router's admin API.
        #[arg(long, default_value = "http://127.0.0.1:9464")]
        admin: String,
        /// Bearer token for the fault endpoint.
        #[arg(long, env = "FLROUTER_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}
