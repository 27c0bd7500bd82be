//! The messages that cross actors, one file per receiving actor, beneath every actor file.
//!
//! An actor file imports these and the engine's plain modules (protocol, switch map, pending
//! table, mailbox …), never another actor's file — except to *start* that actor: the
//! dispatcher starts multi-switch commands, the sync scheduler starts sync sessions, and the
//! engine starts everything. So the actor files form layers instead of a circle:
//!
//! ```text
//!   engine ─┬─ dispatcher ── multi_switch
//!           ├─ sync_scheduler ── sync_session
//!           ├─ command_shard, fl_proxy, outage_monitor
//!           └────────────────────────── messages ── mailbox, protocol, switch_map, pending, …
//! ```
//!
//! Addresses travel as [`Outlet`](crate::runtime::mailbox::Outlet)s — a counted, type-erased send side
//! for one message — grouped into a *port* per actor (declared with [`port!`]): the senders see
//! what they may send, not who receives it. `actors/tests/layers.rs` checks the rule.
//!
//! What only the engine sends (the shell's inputs, the admin API's questions, fault injection)
//! stays beside its actor: the engine is above every actor and may name them all.

pub mod to_command_shard;
pub mod to_dispatcher;
pub mod to_fl_proxy;
pub mod to_multi_switch;
pub mod to_outage_monitor;
pub mod to_sync_scheduler;
pub mod to_sync_session;

pub use to_command_shard::*;
pub use to_dispatcher::*;
pub use to_fl_proxy::*;
pub use to_multi_switch::*;
pub use to_outage_monitor::*;
pub use to_sync_scheduler::*;
pub use to_sync_session::*;
