//! Messages to the `Dispatcher`, and the port the other actors reach it through.

use std::sync::Arc;

use actix::prelude::*;

use crate::mailbox::Outlet;
use crate::outbox::{Inbound, Outgoing, Ticket};
use crate::switch_map::{FlIndex, Mode, Via};

use super::{ChainApplied, DetourDone};

port! {
    /// What the shards, the proxies, the outage monitor and the sync sessions send the
    /// dispatcher (the engine, above every actor, uses its mailbox).
    DispatcherPort {
        detour: Detour,
        switch_event: SwitchEvent,
        from_active_only: FromActiveOnly,
        fl_lost: FlLost,
        notify_unmanaged: NotifyUnmanaged,
        sync_complete: SyncComplete,
    }
}

/// A command a shard leaves to the dispatcher (see [`crate::command_shard`]); the dispatcher
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

/// An FL reported a connection change for a switch, in an event or a sync chain entry.
/// `ticket` is the FL message's: its offset is committed only once the change is stored.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct SwitchEvent {
    pub fl: FlIndex,
    pub switch_id: String,
    pub up: bool,
    pub mode: Mode,
    pub via: Via,
    pub ticket: Ticket,
    /// The FL's event, ready to be forwarded unchanged if the dispatcher decides it should be
    /// (`None` for a chain entry: the sync session forwards chain messages itself).
    pub forward: Option<Outgoing>,
}

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

/// Tell the controller that the switches FL `fl` is active for are unmanaged (its chain failed).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct NotifyUnmanaged {
    pub fl: usize,
    pub reason: String,
}

/// FL `fl`'s sync chain is complete and reported exactly `switches` (with the connection mode
/// of each): its other connections are gone. The dispatcher confirms with [`ChainApplied`](super::ChainApplied) so
/// the session's summary follows the changes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncComplete {
    pub fl: usize,
    pub switches: Vec<(String, Mode)>,
    pub session: Outlet<ChainApplied>,
}
