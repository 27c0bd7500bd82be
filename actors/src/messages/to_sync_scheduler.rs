//! Messages to the `SyncScheduler`.

use actix::prelude::*;

use crate::runtime::outbox::Inbound;

/// Why a sync session runs (reported in its summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncTrigger {
    Startup,
    Controller,
    Recovery,
    LostWrites,
    Periodic,
    /// A cluster instance took the FL over (its sync at start, as it were).
    Takeover,
}

/// Start a sync session over `fls` (indexes). `request` is the controller's SyncRequest, whose
/// bytes are forwarded unchanged and whose correlation id the session uses.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartSync {
    pub fls: Vec<usize>,
    pub trigger: SyncTrigger,
    pub request: Option<(String, Inbound)>,
    /// The request was read from the FLs' read topic (a cluster instance adopted a controller's
    /// SyncRequest there): the FL has it already, so it is sent again only as a re-send.
    pub adopted: bool,
}
