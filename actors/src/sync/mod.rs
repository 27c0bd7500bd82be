//! Network sync: the scheduler (startup, periodic on the wall clock, recovery, on request) and
//! one session actor per sync, which asks every FL for its dump, judges it complete or not
//! (`dialect::dump`) and asks again.

pub mod scheduler;
pub mod session;
