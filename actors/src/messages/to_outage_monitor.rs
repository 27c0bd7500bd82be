//! Messages to the `OutageMonitor`, and the port the FL proxies reach it through.

use actix::prelude::*;

port! {
    /// What an FL's proxy tells the outage monitor.
    MonitorPort {
        evidence: Evidence,
        write_errors: WriteErrors,
    }
}

/// An FL reported writes that failed since its last AliveResponse (it lost events).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct WriteErrors {
    pub fl: usize,
    pub failed: u64,
}

/// An offline FL wrote something: it may have recovered (sent once per outage by its proxy).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Evidence {
    pub fl: usize,
}
