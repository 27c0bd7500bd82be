//! `fl-router-tools`' command line. With no sub-command it runs the embedded demo (what
//! `cargo run --release` runs at the repository root).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "fl-router-tools",
    version,
    about = "fl-router's test tooling: the embedded demo, simulated FLs, load, benchmarks, chaos"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: fl_router::cli::Common,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The embedded demo (the default): an in-process Kafka (librdkafka's mock cluster), the
    /// simulated FLs, the router and a steady load, with a status line a second. Needs
    /// `kafka.brokers: embedded`.
    Demo,
    /// The router with simulated FLs (section `sim`) and a steady load (section `load`) in one
    /// process, on a real Kafka: staging and chaos runs (faults through the admin API).
    Stage,
    /// Simulate the configured FLs (section `sim`) against the configured Kafka.
    Sim,
    /// Benchmark baseline: copy commands to their switch's FL (a byte scan and a hash lookup)
    /// and the FLs' output to the load's reply topic, with no routing logic.
    Pipe {
        /// The leanest baseline: one thread, plain rdkafka consumer and producer, offsets
        /// committed automatically (no delivery tracking).
        #[arg(long)]
        lean: bool,
        /// The lean pipe keeping, per command until its answer, what any router that answers
        /// every command must (correlation id, reply-to, deadline): the floor of a router's
        /// state. Implies `--lean`.
        #[arg(long)]
        pending: bool,
    },
    /// Router vs. pipe on a real broker: one-way saturation and round-trip figures (CPU, memory,
    /// throughput, latency), A/B alternating; see docs/benchmarks.md.
    Bench(Box<crate::bench::BenchArgs>),
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
