//! Where a command goes: the command shards (the hot path, one per thread), the dispatcher —
//! the one owner of the switch map, for every decision that needs all of it (failover, the
//! grace window, broadcasts and multi-switch splits, replays, cluster facts) — the lock-free
//! routes table the shards read, and what a previous incarnation did with commands read again.

pub mod dispatcher;
pub mod replay;
pub mod routes;
pub mod shards;
pub mod switch_map;
