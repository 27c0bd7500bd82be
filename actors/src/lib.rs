//! The fl-router engine: every actor, the protocol model and the switch map, in rooms by
//! concern (see ARCHITECTURE.md):
//!
//! - [`runtime`]: the engine handle, counted mailboxes, obligations, the outbox boundary,
//!   command traces, counters and what every actor shares;
//! - [`fl`]: one FL's side — its proxy actor, pending table, liveness and outage monitor;
//! - [`routing`]: the command shards, the dispatcher and the switch map it owns (routes,
//!   failover, grace window), and what a previous incarnation did (replays);
//! - [`sync`]: the sync scheduler and its sessions;
//! - [`fanout`]: multi-switch commands and their assembly;
//! - [`dialect`]: OpenKilda's classes, network dumps, notices, version header and answer
//!   routes — the only room that names OpenKilda's classes;
//! - [`protocol`], [`settings`], [`messages`]: the envelope model, the configuration schema
//!   and the messages that cross actors.
//!
//! No Kafka client lives here. The shell feeds [`Engine`] what it reads ([`Inbound`]) and
//! implements [`Outbox`] for what the engine writes, so everything below is tested
//! in-process, with virtual time where timers matter.

// First: its `counted!` and `port!` macros (in `runtime::mailbox`) are used by the rooms below.
#[macro_use]
pub mod runtime;
pub mod dialect;
pub mod fanout;
pub mod fl;
pub mod messages;
pub mod protocol;
pub mod routing;
pub mod settings;
pub mod sync;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use runtime::engine::{Engine, EngineError};
pub use runtime::outbox::{Inbound, Outbox, Outgoing, Ticket};
pub use settings::Settings;
