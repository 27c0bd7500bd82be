//! Messages to a `MultiSwitchCommand`, and the port its FL proxies report through.

use actix::prelude::*;
use bytes::Bytes;

port! {
    /// Where an FL's proxy reports on its part of a multi-switch command.
    MultiSwitchPort {
        answer: PartAnswer,
        failed: PartFailed,
    }
}

/// Why a switch of a multi-switch command failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// No FL manages the switch.
    NoFl,
    /// Its FL is offline.
    FlOffline,
    /// Its FL sent neither an ack nor an answer within the ack timeout.
    TimedOut,
    /// Its FL acked but sent no answer within the answer timeout.
    NoAnswer,
    /// Its FL answered with an ErrorMessage.
    FlError,
}

/// An FL's answer to its part (one message; chains arrive as several).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PartAnswer {
    pub fl: usize,
    pub payload: Bytes,
    pub is_final: bool,
}

/// An FL's part failed before any final answer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PartFailed {
    pub fl: usize,
    pub failure: Failure,
}
