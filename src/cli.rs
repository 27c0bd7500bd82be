//! Command-line interface. With no sub-command, `fl-router` runs the router.

use std::path::PathBuf;

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
}
