//! fl-router's test tooling, kept out of the service binary: the embedded demo
//! ([`demo`], what `cargo run --release` runs), the FL simulator ([`sim`]), the open-loop load
//! generator ([`load`]), the router beside both in one process for staging and chaos runs
//! ([`stage`]), the scripted fault runner ([`chaos`]), the plain pipe baseline ([`pipe`]) and
//! the benchmarks ([`bench`]). It uses the service only through `fl_router`'s public API.

pub mod bench;
pub mod chaos;
pub mod cli;
pub mod demo;
pub mod load;
pub mod pipe;
pub mod setup;
pub mod sim;
pub mod stage;

pub use setup::Setup;
