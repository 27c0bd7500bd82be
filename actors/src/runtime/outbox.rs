//! The engine's boundary to the outside: what comes in ([`Inbound`]), what goes out
//! ([`Outgoing`] through an [`Outbox`]) and the [`Ticket`] that ties the two together.
//!
//! The engine holds no Kafka client. The shell implements [`Outbox`] with a Kafka producer; tests
//! implement it with a channel. A ticket stands for one inbound message's offset: the shell
//! commits an offset only once every clone of its ticket is gone, and the engine attaches
//! clones to everything it produces for that input (and keeps one in a pending command until
//! the command's final answer is out). That is the whole at-least-once contract in one type.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::runtime::traces::DeliveryNote;

/// Keeps an inbound message's offset uncommitted while any clone is alive.
#[derive(Clone, Default)]
pub struct Ticket(Option<Arc<dyn Any + Send + Sync>>);

impl Ticket {
    /// A ticket that holds nothing (for messages the router originates, and for tests).
    pub fn none() -> Self {
        Self(None)
    }
    /// Wraps the shell's offset guard; its `Drop` releases the offset.
    pub fn new(guard: impl Any + Send + Sync) -> Self {
        Self(Some(Arc::new(guard)))
    }
    /// How many holders share this ticket (for tests of release timing).
    pub fn holders(&self) -> usize {
        self.0.as_ref().map_or(0, Arc::strong_count)
    }
    /// The guard inside, if it is a `T` (for tests that follow inputs to outputs).
    pub fn guard<T: Any>(&self) -> Option<&T> {
        self.0.as_deref()?.downcast_ref()
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ticket({})", self.holders())
    }
}

/// Where an inbound message was read (for dead letters and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp (ms since the epoch), when Kafka gave one.
    pub timestamp_ms: Option<u64>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

/// Kafka record headers, in order: the router's own names are static, passed-through ones owned.
pub type Headers = Vec<(Cow<'static, str>, Bytes)>;

/// One message read from Kafka, as the engine sees it.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub payload: Bytes,
    /// Kafka's null value (a tombstone), not an empty one; `payload` is empty then.
    pub null_value: bool,
    pub key: Option<Bytes>,
    /// Every header as it came (a forwarded message leaves with them).
    pub headers: Headers,
    /// The `reply_to` header, when the sender set one. Shared: a deployment has a few reply
    /// topics and a million pending commands may name them (the shell interns them).
    pub reply_to: Option<Arc<str>>,
    pub ticket: Ticket,
    pub origin: Option<Origin>,
    /// When the shell read it (router-added latency is measured from here).
    pub read_at: Option<std::time::Instant>,
}

impl Inbound {
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Self {
            payload: payload.into(),
            null_value: false,
            key: None,
            headers: Vec::new(),
            reply_to: None,
            ticket: Ticket::none(),
            origin: None,
            read_at: None,
        }
    }
    /// Sets the `reply_to` header (and its parsed value).
    pub fn reply_to(mut self, topic: impl Into<String>) -> Self {
        let topic = topic.into();
        self.headers
            .push((Cow::Borrowed(headers::REPLY_TO), Bytes::from(topic.clone())));
        self.reply_to = Some(Arc::from(topic));
        self
    }
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
    pub fn ticket(mut self, ticket: Ticket) -> Self {
        self.ticket = ticket;
        self
    }
}

/// The tickets an outgoing message holds.
pub type Tickets = smallvec::SmallVec<[Ticket; 2]>;

/// One message to produce. `tickets` are released when Kafka has acknowledged it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Shared: the read topics, reply topics and the like are few, messages to them many.
    pub topic: Arc<str>,
    pub key: Option<Bytes>,
    /// Chooses the partition when the topic has several (the key does otherwise): a forwarded
    /// command keeps the requester's key but is partitioned by its switch, so commands for one
    /// switch stay in order. (The switch id, shared with the routes: no copy per command.)
    pub partition_key: Option<Arc<str>>,
    pub headers: Headers,
    pub payload: Bytes,
    /// Produce Kafka's null value (a tombstone) instead of `payload`.
    pub null_value: bool,
    /// Inline up to two (a forward holds its input's and its delivery stamp's): no vector
    /// allocated per message, and none freed on the producer's delivery thread.
    pub tickets: Tickets,
    /// Its delivery is a step of a command's life (`crate::runtime::traces`): the shell reports it.
    pub note: Option<DeliveryNote>,
    /// When the input it passes on was read: the shell measures router-added latency.
    pub read_at: Option<std::time::Instant>,
}

impl Outgoing {
    pub fn new(topic: impl Into<Arc<str>>, payload: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            key: None,
            partition_key: None,
            headers: Vec::new(),
            payload: payload.into(),
            null_value: false,
            tickets: Tickets::new(),
            note: None,
            read_at: None,
        }
    }
    /// A message passed through to `topic`: the input's bytes, key and headers unchanged,
    /// holding its ticket.
    pub fn pass_through(topic: impl Into<Arc<str>>, msg: &Inbound) -> Self {
        let mut out = Self::new(topic, msg.payload.clone())
            .key_opt(msg.key.clone())
            .headers(msg.headers.clone())
            .ticket(&msg.ticket);
        out.null_value = msg.null_value;
        out.read_at = msg.read_at;
        out
    }
    /// A tombstone (null value) for `key` on a compacted topic.
    pub fn tombstone(topic: impl Into<Arc<str>>, key: impl Into<Bytes>) -> Self {
        let mut out = Self::new(topic, Bytes::new()).key(key);
        out.null_value = true;
        out
    }
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
    pub fn key_opt(mut self, key: Option<Bytes>) -> Self {
        self.key = key;
        self
    }
    pub fn header(mut self, name: &'static str, value: impl Into<Bytes>) -> Self {
        self.headers.push((Cow::Borrowed(name), value.into()));
        self
    }
    /// The headers of a message passed through, unchanged and in order.
    pub fn headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }
    pub fn partition_key(mut self, key: impl Into<Arc<str>>) -> Self {
        self.partition_key = Some(key.into());
        self
    }
    pub fn note(mut self, note: Option<DeliveryNote>) -> Self {
        self.note = note;
        self
    }
    pub fn ticket(mut self, ticket: &Ticket) -> Self {
        if ticket.holders() > 0 {
            self.tickets.push(ticket.clone());
        }
        self
    }
}

/// Where the engine puts what it produces. Must not block for long: the shell queues.
pub trait Outbox: Send + Sync + 'static {
    fn send(&self, msg: Outgoing);
}

/// Header names the router writes.
pub mod headers {
    /// Reply-to topic of a command: read on input, kept on the forwarded command (so a
    /// restarted router can find where the answer goes), and on journal records.
    pub const REPLY_TO: &str = "reply_to";
    /// On a controller's SyncRequest a cluster instance re-sends to an FL whose chain was
    /// missing: its session runs already, so the FL's owner does not adopt it as a new one.
    pub const SYNC_RESEND: &str = "flrouter_sync_resend";
    /// On a journal record: the Kafka key the router's error was sent with.
    pub const JOURNAL_KEY: &str = "flrouter_key";
    /// Why a message went to the dead-letter topic.
    pub const DEAD_LETTER_REASON: &str = "flrouter_reason";
    /// Where a dead-lettered message came from: `commands` or `fl:<id>`.
    pub const DEAD_LETTER_SOURCE: &str = "flrouter_source";
    /// Topic/partition/offset a dead-lettered message was read at.
    pub const DEAD_LETTER_ORIGIN: &str = "flrouter_origin";
    /// Size in bytes of the value as it was read (a reduced dead letter keeps only a prefix).
    pub const DEAD_LETTER_SIZE: &str = "flrouter_original_size";
    /// Set on a dead letter whose value was cut to fit the dead-letter topic: the bytes kept.
    pub const DEAD_LETTER_REDUCED: &str = "flrouter_reduced_to";
}
