//! Commands for more than one switch: a multi-switch command's actor, which forwards its
//! parts (split by the dispatcher, the switch map's owner) and assembles one result.

pub mod multi_switch;
