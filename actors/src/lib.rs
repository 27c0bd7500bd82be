//! The fl-router engine: every actor, the protocol model and the switch map.
//!
//! No Kafka client lives here. The shell feeds [`Engine`] what it reads ([`outbox::Inbound`])
//! and implements [`outbox::Outbox`] for what the engine writes, so everything below is tested
//! in-process, with virtual time where timers matter.

// First: its `counted!` and `port!` macros are used by the modules below.
#[macro_use]
pub mod mailbox;
pub mod chunked_slab;
pub mod command_shard;
pub mod counters;
pub mod dialect;
pub mod dispatcher;
pub mod engine;
pub mod fl_proxy;
pub mod liveness;
pub mod messages;
pub mod multi_switch;
pub mod obligation;
pub mod outage_monitor;
pub mod outbox;
pub mod pending;
pub mod previous;
pub mod protocol;
pub mod recent;
pub mod routes;
pub mod settings;
pub mod shared;
pub mod switch_map;
pub mod sync_scheduler;
pub mod sync_session;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod trace;

pub use engine::{Engine, EngineError};
pub use outbox::{Inbound, Outbox, Outgoing, Ticket};
pub use settings::Settings;
