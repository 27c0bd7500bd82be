//! Engine-wide event counters. Cheap atomics bumped on the data path. Each is declared once,
//! below; the shell reads them as a [`CounterValues`] (plain fields: a metric that reads a
//! counter that does not exist does not compile) or by name ([`Counters::snapshot`], for
//! `/api/stats` and the logs).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($($name:ident: $doc:literal),* $(,)?) => {
        /// Monotonic counters of what the engine did.
        #[derive(Debug, Default)]
        pub struct Counters { $(#[doc = $doc] pub $name: AtomicU64,)* }

        /// Every counter's value at one moment.
        #[derive(Debug, Default, Clone, Copy)]
        pub struct CounterValues { $(#[doc = $doc] pub $name: u64,)* }

        impl Counters {
            /// `(name, value)` pairs in a stable order.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Relaxed)),)*]
            }

            /// Every counter's value, as fields.
            pub fn values(&self) -> CounterValues {
                CounterValues { $($name: self.$name.load(Relaxed),)* }
            }
        }
    };
}

counters! {
    commands_received: "Commands read from the inbound topics.",
    commands_forwarded: "Commands forwarded to an FL read topic.",
    delivery_only_forwarded: "Commands of a class the speaker does not always answer (protocol.delivery_only), forwarded and tracked for delivery only.",
    fl_messages_received: "Messages read from FL write topics.",
    acks_received: "FlReceiveAck messages consumed.",
    answers_routed: "FL answers routed to a controller topic.",
    events_forwarded: "Switch events forwarded to the events topic.",
    errors_not_found: "NOT_FOUND errors the router sent.",
    errors_timed_out: "OPERATION_TIMED_OUT errors the router sent.",
    errors_invalid: "REQUEST_INVALID errors the router sent.",
    blacklist_drops: "FL messages dropped because their correlation id was blacklisted.",
    dead_letters: "Messages sent to the dead-letter topic.",
    acked_unanswered: "Commands acked by an FL whose answer never came within timeouts.answer (answered OPERATION_TIMED_OUT).",
    ack_timeouts: "Commands (or multi-switch parts) neither acked nor answered within timeouts.ack.",
    fl_outages: "FL outages declared (no evidence, or lost writes reported).",
    failed_fast: "Pending commands answered at once because their FL went offline.",
    sync_sessions_started: "Sync sessions started.",
    orphan_chain_messages: "Sync chain messages for a router's own session that is not running here (ended, or ran at the FL's previous owner): proxied to the events topic.",
    sync_requests_handed_over: "Controller SyncRequests a cluster instance sent on to every FL's read topic, for each FL's owner to adopt and run.",
    sync_requests_adopted: "Controller SyncRequests adopted from an owned FL's read topic (a cluster instance runs that FL's session).",
    sync_fl_complete: "FL dumps completed in sync sessions (counted and whole, or closed by an end marker).",
    sync_fl_uncounted: "FL dumps without a count (today's Floodlight): their entries mapped, nothing concluded about switches they did not list.",
    sync_fl_empty: "FLs that answered a sync with nothing while the router knew no switch of theirs (an empty region).",
    sync_fl_failed: "FLs whose dump never completed (missing, gaps, unreadable entries), retries exhausted.",
    sync_retries: "SyncRequests re-sent to an FL whose dump was missing or incomplete.",
    sync_chain_messages: "Network dump entries from FLs (each maps its switch; forwarded from the switch's active read-write FL).",
    sync_unreadable_entries: "Network dump entries without a readable switch (dead-lettered; their FL's dump is incomplete).",
    switch_offline_notifications: "Switches a complete dump no longer listed.",
    unmanaged_notifications: "UnmanagedSwitchNotifications sent (an FL outage left the switch without a read-write FL).",
    failovers: "Switches whose active FL was lost while another read-write connection existed (moved to it).",
    failbacks: "Switches whose active FL moved to a more preferred FL that connected (failover.return_home).",
    failed_over_commands: "Pending commands answered OPERATION_TIMED_OUT because their switch failed over to another FL.",
    availability_notifications: "Switch availability notices published (connections changed, the switch stayed managed or was never managed).",
    standby_events_dropped: "Switch-scoped FL messages (protocol.switch_events.active_fl_only) from an FL that is not the switch's active one (dropped).",
    grace_waits: "Commands that waited in the grace window for their switch to reconnect.",
    grace_forwarded: "Waiting commands forwarded when their switch reconnected.",
    grace_expired: "Waiting commands answered NOT_FOUND when the grace window ran out.",
    multi_commands: "Multi-switch commands split and forwarded.",
    multi_results: "Assembled multi-switch results sent.",
    multi_late_answers: "FL answers for a multi-switch part that had already settled (dropped).",
    replayed_answered: "Commands read again after a restart whose answer had been delivered (nothing sent again).",
    replayed_repeated: "Commands read again after a restart that the router had answered itself (the same answer sent again).",
    replayed_adopted: "Commands read again after a restart that were forwarded and not yet answered (pending again, not forwarded twice).",
    previous_answers_routed: "FL answers to commands a previous incarnation forwarded, routed to their reply-to.",
    duplicate_answers_dropped: "FL answers for commands that already had their outcome (dropped).",
    commands_handed_over: "Commands forwarded to an FL another instance owns, or pending when this instance stopped owning the FL (the owner adopts them from the FL read topic).",
    fl_messages_not_owned: "FL messages reaching the engine after it stopped owning the FL (dropped; its new owner reads them).",
    forwards_adopted: "Forwards read from an owned FL's read topic and made pending (a cluster instance).",
    answers_held: "FL acks and answers that waited for their forward's adoption (a cluster instance).",
    forwards_settled: "Forwards read back from an owned FL's read topic whose command already had its outcome (not adopted).",
}

impl Counters {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }
}
