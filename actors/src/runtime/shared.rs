//! What every engine actor shares: settings, the outbox, counters, the mailbox registry; and
//! the outputs several actors produce (router errors, dead letters), written once here.

use std::sync::Arc;

use bytes::Bytes;

use crate::dialect::answers::ErrorRoutes;
use crate::dialect::version::Versions;
use crate::fl::liveness::Liveness;
use crate::protocol::{self, ErrorType, HubRequest, MessageView, Requester};
use crate::routing::replay::Previous;
use crate::runtime::counters::Counters;
use crate::runtime::mailbox::MailboxRegistry;
use crate::runtime::outbox::{headers, Inbound, Outbox, Outgoing, Ticket};
use crate::runtime::traces::{Delivery, DeliveryNote, Step, Traces};
use crate::settings::PART_FL_HEADER;
use crate::settings::{Family, Settings};

pub struct Shared {
    pub settings: Settings,
    pub outbox: Arc<dyn Outbox>,
    pub counters: Counters,
    pub mailboxes: MailboxRegistry,
    pub liveness: Liveness,
    /// What a previous incarnation did with the commands read again after a restart.
    pub previous: Previous,
    /// The recent commands' lives (`crate::runtime::traces`).
    pub traces: Arc<Traces>,
    /// The version header of the records the router makes (and what it learned of it).
    pub versions: Versions,
    /// Where and in which family the router's own answers go.
    pub error_routes: ErrorRoutes,
    /// Command topic → its lane (the FL topic template a command from it goes to).
    lanes: std::collections::HashMap<String, usize>,
    /// Set by [`crate::Engine::stop`]: every actor's timer stops its actor (a supervised one
    /// comes back once, without timers), so nothing of a replaced engine runs on.
    retired: std::sync::atomic::AtomicBool,
}

/// Where a dead-lettered message was read.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    Commands,
    Fl(&'a str),
}

impl Shared {
    pub fn new(settings: Settings, outbox: Arc<dyn Outbox>) -> Arc<Self> {
        let traces = Traces::new(settings.limits.traced_commands);
        Self::with_traces(settings, outbox, traces)
    }

    /// [`Shared::new`] recording into `traces` (kept from an engine this one replaces).
    pub fn with_traces(
        settings: Settings,
        outbox: Arc<dyn Outbox>,
        traces: Arc<Traces>,
    ) -> Arc<Self> {
        let fls = settings.fls.len();
        let lanes = settings
            .topics
            .command_topics()
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, i))
            .collect();
        let versions = Versions::new(&settings.protocol.version_header, fls);
        let error_routes = ErrorRoutes::new(&settings.topics);
        Arc::new(Self {
            lanes,
            versions,
            error_routes,
            settings,
            outbox,
            counters: Counters::default(),
            mailboxes: MailboxRegistry::default(),
            liveness: Liveness::new(fls),
            previous: Previous::default(),
            traces,
            retired: Default::default(),
        })
    }

    /// This engine was stopped ([`crate::Engine::stop`]).
    pub fn retired(&self) -> bool {
        self.retired.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn retire(&self) {
        self.retired
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The lane of the topic a command was read from (the first lane when unknown).
    pub fn lane_of(&self, msg: &Inbound) -> usize {
        msg.origin
            .as_ref()
            .and_then(|o| self.lanes.get(o.topic.as_ref()))
            .copied()
            .unwrap_or(0)
    }

    /// The index of FL `id` in the configured order.
    pub fn fl_index(&self, id: &str) -> Option<usize> {
        self.settings.fls.iter().position(|f| f.id == id)
    }

    pub fn fl_id(&self, fl: usize) -> &str {
        self.settings.fls.get(fl).map_or("?", |f| f.id.as_str())
    }

    /// Sends a router-originated event (notification, summary) to the events topic.
    pub fn send_event(&self, key: &str, payload: Bytes, tickets: &[&Ticket]) {
        let mut out = Outgoing::new(self.settings.topics.events.clone(), payload)
            .key(Bytes::from(key.to_string()));
        for t in tickets {
            out = out.ticket(t);
        }
        self.outbox.send(self.to_controllers(out));
    }

    /// Sends one of the router's own notices (an FL outage, a sync summary) to
    /// `topics.notices`.
    pub fn send_notice(&self, key: &str, payload: Bytes, tickets: &[&Ticket]) {
        let mut out = Outgoing::new(self.settings.topics.notices_topic().to_string(), payload)
            .key(Bytes::from(key.to_string()));
        for t in tickets {
            out = out.ticket(t);
        }
        self.outbox.send(self.to_controllers(out));
    }

    /// A record the router makes on its own for FL `fl`, with that side's version header.
    pub fn to_fl(&self, fl: usize, out: Outgoing) -> Outgoing {
        self.versions.stamp(out, self.versions.for_fl(fl))
    }

    /// A record the router makes on its own for the controllers, with their version header.
    pub fn to_controllers(&self, out: Outgoing) -> Outgoing {
        self.versions.stamp(out, self.versions.for_controllers())
    }

    /// A record answering or wrapping `msg`: it takes `msg`'s version header (the controllers'
    /// when `msg` has none).
    pub fn answering(&self, msg: &Inbound, out: Outgoing) -> Outgoing {
        let v = self
            .versions
            .of(msg)
            .or_else(|| self.versions.for_controllers());
        self.versions.stamp(out, v)
    }

    /// The topic for an error the router answers a command with.
    pub fn reply_topic<'a>(&'a self, reply_to: Option<&'a str>) -> &'a str {
        reply_to.unwrap_or(&self.settings.topics.default_reply)
    }

    /// Answers a command with the router's own error (an ErrorMessage, or a response of the
    /// request's hub-and-spoke family) and counts it by type. Keyed by the command's key, else
    /// its correlation id.
    #[allow(clippy::too_many_arguments)]
    pub fn send_error(
        &self,
        to: &Requester,
        correlation_id: &str,
        switch: Option<&str>,
        error_type: ErrorType,
        message: &str,
        description: &str,
        tickets: &[&Ticket],
    ) {
        self.send_error_from(
            None,
            to,
            correlation_id,
            switch,
            error_type,
            message,
            description,
            tickets,
        )
    }

    /// [`Shared::send_error`] by FL `fl`'s proxy: to a cluster's collect topic (a multi-switch
    /// part's), the error names the FL (its collector matches it to the part).
    #[allow(clippy::too_many_arguments)]
    pub fn send_error_from(
        &self,
        fl: Option<&str>,
        to: &Requester,
        correlation_id: &str,
        switch: Option<&str>,
        error_type: ErrorType,
        message: &str,
        description: &str,
        tickets: &[&Ticket],
    ) {
        let reply_to = to.reply_to.as_deref();
        let key = to.key.clone().or_else(|| {
            (!correlation_id.is_empty()).then(|| Bytes::from(correlation_id.to_string()))
        });
        let c = &self.counters;
        Counters::inc(match error_type {
            ErrorType::NotFound => &c.errors_not_found,
            ErrorType::OperationTimedOut => &c.errors_timed_out,
            ErrorType::RequestInvalid => &c.errors_invalid,
        });
        let classes = &self.settings.protocol.classes;
        let hub = to.hub_request.as_ref().and_then(|raw| {
            let view = MessageView::read(raw, &self.settings.protocol.envelope).ok()?;
            HubRequest::of(&view)
        });
        let topic = reply_to
            .or_else(|| to.errors_to.and_then(|r| self.error_routes.topic(r)))
            .unwrap_or(&self.settings.topics.default_reply);
        // In the family the topic's reader reads (the request's own when unknown).
        let body = match (&hub, self.error_routes.family(topic)) {
            (Some(hub), None | Some(Family::Hub)) => {
                protocol::hub_error(classes, hub, switch, error_type, description)
            }
            (None, Some(Family::Hub)) => {
                protocol::hub_data_error(classes, correlation_id, error_type, message, description)
            }
            _ => protocol::error_message(classes, correlation_id, error_type, message, description),
        };
        if !correlation_id.is_empty() {
            // Journaled with the same tickets: a command read again after a crash is answered
            // the same way, never differently (see `previous`).
            let mut j = Outgoing::new(self.settings.topics.journal.clone(), body.clone())
                .key(Bytes::from(correlation_id.to_string()))
                .header(headers::REPLY_TO, Bytes::from(topic.to_string()));
            if let Some(k) = &key {
                j = j.header(headers::JOURNAL_KEY, k.clone());
            }
            for t in tickets {
                j = j.ticket(t);
            }
            self.outbox.send(j);
        }
        let version = self.versions.answering(to.version);
        let mut out = self
            .versions
            .stamp(Outgoing::new(topic, body).key_opt(key), version);
        if let Some(fl) = fl.filter(|_| self.is_collect_topic(topic)) {
            out = out.header(PART_FL_HEADER, Bytes::from(fl.to_string()));
        }
        for t in tickets {
            out = out.ticket(t);
        }
        if !correlation_id.is_empty() && self.traces.enabled() {
            let topic: Arc<str> = Arc::from(topic);
            out = out.note(DeliveryNote::new(
                &self.traces,
                correlation_id,
                Delivery::Reply,
                &topic,
            ));
            self.traces.record(
                correlation_id,
                Step::RouterAnswered {
                    error: error_type.as_str(),
                    message: message.into(),
                    topic,
                },
            );
        }
        self.outbox.send(out);
    }

    /// Records that a command was read (its first step; `crate::runtime::traces`).
    pub fn trace_received(&self, cid: &str, msg: &Inbound) {
        if !self.traces.enabled() {
            return;
        }
        let (topic, partition, offset) = msg.origin.as_ref().map_or_else(
            || (Arc::from(""), -1, -1),
            |o| (o.topic.clone(), o.partition, o.offset),
        );
        // Enough of the key to recognise it (OpenKilda's keys carry request/reply matching).
        let key = msg.key.as_ref().map(|k| k.slice(..k.len().min(96)));
        self.traces.record(
            cid,
            Step::Received {
                topic,
                partition,
                offset,
                key,
            },
        );
    }

    /// Whether `topic` is a cluster instance's collect topic (see `EngineSettings::collect`).
    pub fn is_collect_topic(&self, topic: &str) -> bool {
        self.settings
            .engine
            .collect
            .as_ref()
            .is_some_and(|c| topic.starts_with(&c.prefix))
    }

    /// Keeps an unprocessable input byte for byte (a null value stays null), with why, where
    /// from and its size in headers.
    pub fn dead_letter(&self, msg: &Inbound, source: Source, reason: &str) {
        Counters::inc(&self.counters.dead_letters);
        let source = match source {
            Source::Commands => Bytes::from_static(b"commands"),
            Source::Fl(id) => Bytes::from(format!("fl:{id}")),
        };
        let mut out = Outgoing::new(
            self.settings.topics.dead_letter.clone(),
            msg.payload.clone(),
        )
        .key_opt(msg.key.clone())
        .header(headers::DEAD_LETTER_REASON, Bytes::from(reason.to_string()))
        .header(headers::DEAD_LETTER_SOURCE, source)
        .header(
            headers::DEAD_LETTER_SIZE,
            Bytes::from(msg.payload.len().to_string()),
        )
        .ticket(&msg.ticket);
        if let Some(o) = &msg.origin {
            out = out.header(headers::DEAD_LETTER_ORIGIN, Bytes::from(o.to_string()));
        }
        out.null_value = msg.null_value;
        self.outbox.send(out);
        if self.traces.enabled() {
            let cid = MessageView::read(&msg.payload, &self.settings.protocol.envelope)
                .ok()
                .and_then(|v| v.correlation().map(str::to_string));
            if let Some(cid) = cid {
                self.traces.record(
                    &cid,
                    Step::DeadLettered {
                        reason: reason.into(),
                    },
                );
            }
        }
    }
}

impl Shared {
    /// Who waits for a command's outcome: its reply-to, its key, its version header, and its
    /// bytes when it is a hub-and-spoke request (answered in its own family).
    pub fn requester(&self, msg: &Inbound, view: Option<&MessageView<'_>>) -> Requester {
        Requester {
            reply_to: msg.reply_to.clone(),
            key: msg.key.clone(),
            hub_request: view
                .filter(|v| v.is_hub_and_spoke())
                .map(|_| Box::new(msg.payload.clone())),
            version: self.versions.intern(msg),
            errors_to: match &msg.reply_to {
                Some(_) => None,
                None => self
                    .error_routes
                    .route(self.lane_of(msg), view.and_then(MessageView::class)),
            },
        }
    }
}
