//! The engine's runtime: the [`Engine`](engine::Engine) handle that starts the actors, the
//! counted mailboxes they talk through, the obligation every command carries, the outbox
//! boundary to the shell, command traces, counters and what every actor shares.

// First: `counted!` and `port!` are used by every actor file.
#[macro_use]
pub mod mailbox;
pub mod clock;
pub mod counters;
pub mod engine;
pub mod obligation;
pub mod outbox;
pub mod shared;
pub mod traces;
