//! Messages to the `Dispatcher`, and the port the other actors reach it through.

use std::sync::Arc;

use actix::prelude::*;

use crate::routing::routes::FlIndex;
use crate::routing::switch_map::Via;
use crate::runtime::mailbox::Outlet;
use crate::runtime::outbox::{Inbound, Outgoing, Ticket};
use crate::settings::Mode;

use super::{ChainApplied, DetourDone};

port! {
    /// What the shards, the proxies, the outage monitor and the sync sessions send the
    /// dispatcher (the engine, above every actor, uses its mailbox).
    DispatcherPort {
        detour: Detour,
        switch_event: SwitchEvent,
        from_active_only: FromActiveOnly,
        in_order: InOrder,
        fl_lost: FlLost,
        sync_complete: SyncComplete,
    }
}

/// A command a shard leaves to the dispatcher (see [`crate::routing::shards`]); the dispatcher
/// reports it handled to `shard`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Detour {
    pub msg: Inbound,
    pub order: Order,
    /// Told `DetourDone(order)` once the dispatcher has handled it.
    pub shard: Outlet<DetourDone>,
}

/// Which later commands of the shard must follow a detour rather than overtake it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// None (the command is refused or answered, never forwarded).
    Free,
    /// This switch's.
    Switch(Arc<str>),
    /// Every command (a broadcast, a multi-switch command, a SyncRequest).
    All,
}

/// An FL reported a connection of a switch, in an event or a network dump entry
/// (`via: Sync`, always `up`). `ticket` is the FL message's: its offset is committed only once
/// the change is stored.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SwitchEvent {
    pub fl: FlIndex,
    pub switch_id: String,
    pub up: bool,
    pub mode: Mode,
    pub via: Via,
    pub ticket: Ticket,
    /// The FL's message, ready to be forwarded unchanged if the dispatcher decides it should
    /// be: an event when it tells the controller something true, a dump entry when `fl` is the
    /// switch's active read-write FL.
    pub forward: Option<Outgoing>,
}

/// An FL message about switches that must keep its place among the FL's switch events and
/// dump entries (they go through the dispatcher): forwarded as it is.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct InOrder(pub Outgoing);

/// An FL message about a switch that only the switch's active FL speaks for
/// (`protocol.switch_events.active_fl_only`): forwarded if `fl` is active (or none is).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct FromActiveOnly {
    pub fl: FlIndex,
    pub switch_id: String,
    pub forward: Outgoing,
}

/// FL `fl` was declared offline (`Liveness::set_offline`): its connections are gone
/// everywhere, what can fail over does, then its proxy answers its pending commands.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct FlLost {
    pub fl: usize,
}

/// FL `fl`'s network dump is complete and listed exactly `switches`: its connections to the
/// others, learned before `requested`, are gone (`None`: the request's time is not known here,
/// nothing is removed). The dispatcher confirms with [`ChainApplied`](super::ChainApplied) so the
/// session's summary follows the changes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncComplete {
    pub fl: usize,
    pub switches: Vec<(String, Mode)>,
    pub requested: Option<tokio::time::Instant>,
    pub session: Outlet<ChainApplied>,
}
