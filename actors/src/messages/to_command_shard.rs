//! Messages to a `CommandShard`.

use actix::prelude::*;

use super::Order;

/// The dispatcher has handled a detour of this shard.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DetourDone(pub Order);
