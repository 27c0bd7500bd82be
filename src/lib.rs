//! fl-router, the shell: configuration, Kafka I/O, the admin API and the CLI around the engine
//! ([`fl_router_actors`]). [`run`] is the service: the router, its admin API and its reloads,
//! until `shutdown` resolves. Test tooling (simulator, load, benchmarks, chaos, the embedded
//! demo) lives in its own crate, `fl-router-tools`, and reaches the service only through this
//! library's public items and [`admin::Extras`].

pub mod admin;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod history;
pub mod kafka;
pub mod latency;
pub mod metrics;
pub mod notify;
pub mod reload;
pub mod router;
pub mod service;
pub mod trace_view;

pub use crate::router::Router;
pub use crate::service::{admin_state, run, run_with, start_admin, RunOptions};
