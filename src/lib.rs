//! fl-router, the shell: configuration, Kafka I/O and the CLI around the engine
//! ([`fl_router_actors`]). [`run`] wires the consumers and the producer to the engine and owns
//! the orderly shutdown: stop reading commands, let pending commands finish (FL answers are
//! still read), flush the producer, commit.

pub mod cli;
pub mod config;
pub mod embedded;
pub mod kafka;
pub mod load;
pub mod pipe;
pub mod router;
pub mod sim;

use crate::config::Config;
pub use crate::router::Router;
use std::future::Future;

/// Runs the router until `shutdown` resolves, then drains and returns.
/// Must be called inside an actix `System` (the engine's actors live there).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let router = Router::start(&config).await?;
    shutdown.await;
    router.shutdown().await;
    Ok(())
}
