//! Messages to a `SyncSession`.

use actix::prelude::*;

use crate::dialect::dump::DumpPart;

/// A part of FL `fl`'s network dump carrying this session's correlation id (told by its proxy,
/// which has already applied it to the map and forwarded it).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct DumpSeen {
    pub fl: usize,
    pub part: DumpPart,
}

/// The dispatcher has applied FL `fl`'s complete dump to the map.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChainApplied {
    pub fl: usize,
}
