//! Messages to an `FlProxy`, and the port the other actors reach it through.

use std::sync::Arc;

use actix::prelude::*;

use crate::protocol::Requester;
use crate::runtime::mailbox::Outlet;
use crate::runtime::obligation::Obligation;
use crate::runtime::outbox::Inbound;

use super::{DumpSeen, MultiSwitchPort};

port! {
    /// What the dispatcher, the shards, multi-switch commands and sync sessions send an FL's
    /// proxy.
    ProxyPort {
        forward: Forward,
        forwards: Forwards,
        adopt: Adopt,
        fail_pending: FailPending,
        fail_switch: FailSwitch,
        watch_sync: WatchSync,
        unwatch_sync: UnwatchSync,
    }
}

/// Every FL's proxy, by FL index: what the actors that reach FLs are given at start.
pub type Proxies = Arc<[ProxyPort]>;

/// A command the dispatcher resolved to this FL.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forward {
    pub correlation_id: String,
    /// Shared with the switch map (no copy per command).
    pub switch_id: Arc<str>,
    pub requester: Requester,
    /// The first-answer deadline for this command's class; None: delivered only
    /// (`Settings::answer_deadline`).
    pub timeout: Option<std::time::Duration>,
    /// The command lane it came on: it goes to this FL's topic of that lane.
    pub lane: usize,
    pub msg: Inbound,
    /// Set when this is one FL's part of a multi-switch command: results go there.
    pub multi: Option<MultiSwitchPort>,
    /// The final answer this command is owed.
    pub owed: Obligation,
}

/// Commands a shard resolved to this FL from one batch, in read order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forwards(pub Vec<Forward>);

/// A command a previous incarnation of the router forwarded to this FL, read again after a
/// restart: pending again (deadline from the original forward), not forwarded a second time.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Adopt {
    pub correlation_id: String,
    pub switch_id: String,
    pub requester: Requester,
    pub msg: Inbound,
    pub forwarded_at_ms: u64,
    pub owed: Obligation,
}

/// Hand every message with this correlation id to a sync session (until unwatched).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchSync {
    pub correlation_id: String,
    pub session: Outlet<DumpSeen>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct UnwatchSync {
    pub correlation_id: String,
}

/// The FL went offline: answer every pending command now instead of letting each time out.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FailPending {
    pub reason: String,
}

/// The switch failed over to another FL: answer this FL's pending commands for it now (the
/// router cannot know whether they were applied; the new FL gets the switch's new commands).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FailSwitch {
    pub switch_id: String,
    pub reason: String,
}
