//! Messages to a `SyncSession`.

use actix::prelude::*;

use crate::outbox::Inbound;

/// A message from FL `fl` with this session's correlation id (handed over by its proxy).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChainItem {
    pub fl: usize,
    pub msg: Inbound,
}

/// The dispatcher has applied FL `fl`'s complete chain to the map.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChainApplied {
    pub fl: usize,
}
