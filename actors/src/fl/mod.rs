//! One FL's side of the engine: its proxy actor (forwards, answers, deadlines), the pending
//! table and the recently settled ids it keeps, what the engine knows of each FL's liveness,
//! and the outage monitor that asks every FL whether it is alive.

pub mod chunked_slab;
pub mod liveness;
pub mod outage_monitor;
pub mod pending;
pub mod proxy;
pub mod settled;
