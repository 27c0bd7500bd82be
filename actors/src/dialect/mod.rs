//! The dialect's room: what the router must know of its peers' conversation beyond routing one
//! message — the shapes of a network dump and what each proves, the version header OpenKilda's
//! consumers require. The class names and switch-id pointers it reads are settings (`protocol`,
//! OpenKilda's by default); the knowledge of how OpenKilda's Floodlight and services behave
//! lives here, each part naming the source it follows.
//!
//! Plain modules only: no actor is named here (`actors/tests/layers.rs`).

pub mod answers;
pub mod classes;
pub mod dump;
pub mod notices;
pub mod version;
