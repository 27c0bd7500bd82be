//! `MultiSwitchCommand`: one actor per in-flight command that names several switches (or all).
//!
//! The dispatcher splits the command by FL (each FL gets one command carrying only the switches
//! it manages: the switch list is replaced byte-for-byte at the matched pointer, nothing else
//! changes; an "all switches" command goes unchanged to every FL that has switches) and starts
//! this actor with the parts. It forwards each part through the FL's proxy — which keeps doing
//! ack deadlines and the blacklist — and the proxy hands the FL's answers (acks, results, chain
//! chunks), timeouts and outages back here instead of to a reply topic. When every part has
//! answered or failed, it sends exactly one assembled result naming each switch's outcome, so a
//! partial failure never hides the rest, and stops: its state is gone. A deadline (ack + answer
//! timeouts) bounds its life even if a proxy never reports back.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use serde_json::{json, Value};
use tracing::debug;

use crate::dialect::notices;
use crate::messages::{Failure, Forward, MultiSwitchPort, PartAnswer, PartFailed, Proxies};
use crate::protocol::Requester;
use crate::protocol::{Head, MessageView};
use crate::runtime::counters::Counters;
use crate::runtime::mailbox::{Mailbox, MailboxStats};
use crate::runtime::obligation::{Met, Obligation};
use crate::runtime::outbox::{Inbound, Outgoing, Ticket};
use crate::runtime::shared::Shared;
use crate::runtime::traces::{Delivery, DeliveryNote, Step};
use crate::settings::Dialect;

pub const MAILBOX_CAPACITY: usize = 64;

/// One FL's share of the command.
pub struct Part {
    pub fl: usize,
    pub switches: Vec<String>,
    pub payload: Bytes,
    /// The command lane the command came on (its part goes to that lane's FL topic).
    pub lane: usize,
}

enum State {
    Waiting,
    Answered,
    Failed(Failure, Option<String>),
}

struct PartState {
    part: Part,
    state: State,
    data: Vec<Value>,
}

pub struct MultiSwitchCommand {
    /// The FL proxies the parts go to.
    proxies: Proxies,
    /// The one assembled result this command is owed (taken when it is sent).
    owed: Option<Obligation>,
    shared: Arc<Shared>,
    stats: Arc<MailboxStats>,
    correlation_id: String,
    request_class: String,
    reply_to: Option<Arc<str>>,
    /// The command's version header: its result carries it.
    version: Option<bytes::Bytes>,
    /// Holds the command's offset until the assembled result is delivered.
    ticket: Ticket,
    parts: Vec<PartState>,
    /// Switches that could not be sent anywhere (no FL, FL offline), decided at dispatch.
    unsent: Vec<(String, Failure, Option<usize>)>,
    done: bool,
}

impl MultiSwitchCommand {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shared: Arc<Shared>,
        stats: Arc<MailboxStats>,
        proxies: Proxies,
        correlation_id: String,
        request_class: String,
        command: &Inbound,
        parts: Vec<Part>,
        unsent: Vec<(String, Failure, Option<usize>)>,
    ) -> Self {
        let version = shared.versions.of(command);
        Self {
            shared,
            stats,
            proxies,
            owed: Some(Obligation::new()),
            correlation_id,
            request_class,
            reply_to: command.reply_to.clone(),
            version,
            ticket: command.ticket.clone(),
            parts: parts
                .into_iter()
                .map(|part| PartState {
                    part,
                    state: State::Waiting,
                    data: Vec::new(),
                })
                .collect(),
            unsent,
            done: false,
        }
    }

    fn answer(&mut self, fl: usize, payload: Bytes, is_final: bool, ctx: &mut Context<Self>) {
        let s = self.shared.clone();
        let Some(p) = self.parts.iter_mut().find(|p| p.part.fl == fl) else {
            return;
        };
        if !matches!(p.state, State::Waiting) {
            Counters::inc(&s.counters.multi_late_answers);
            return;
        }
        let head = Head::parse(&payload).ok();
        let is_error = head.as_ref().and_then(|h| h.clazz.as_deref())
            == Some(s.settings.protocol.classes.error_message.as_str());
        let body: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        if is_error {
            let detail = body["payload"]["error-message"]
                .as_str()
                .map(str::to_string);
            p.data.push(body["payload"].clone());
            p.state = State::Failed(Failure::FlError, detail);
        } else {
            p.data.push(body["payload"].clone());
            if is_final {
                p.state = State::Answered;
            }
        }
        self.assemble_if_done(ctx);
    }

    fn failed(&mut self, fl: usize, failure: Failure, ctx: &mut Context<Self>) {
        if let Some(p) = self.parts.iter_mut().find(|p| p.part.fl == fl) {
            if matches!(p.state, State::Waiting) {
                p.state = State::Failed(failure, None);
            }
        }
        self.assemble_if_done(ctx);
    }

    fn assemble_if_done(&mut self, ctx: &mut Context<Self>) {
        if self.done || self.parts.iter().any(|p| matches!(p.state, State::Waiting)) {
            return;
        }
        self.assemble(ctx);
    }

    /// Sends the one result: per switch success or failure, the FLs' data once per FL.
    fn assemble(&mut self, ctx: &mut Context<Self>) {
        self.done = true;
        let s = &self.shared;
        let mut switches = Vec::new();
        let mut results = BTreeMap::new();
        let mut complete = true;
        for p in &mut self.parts {
            let fl_id = s.fl_id(p.part.fl);
            let (status, reason, detail) = match &p.state {
                State::Answered => ("success", None, None),
                State::Failed(f, d) => ("failed", Some(*f), d.clone()),
                // The deadline passed with the proxy silent: report it as a timeout.
                State::Waiting => ("failed", Some(Failure::TimedOut), None),
            };
            complete &= status == "success";
            for sw in &p.part.switches {
                let mut e = json!({"switch_id": sw, "fl_id": fl_id, "status": status});
                if let Some(r) = reason {
                    e["reason"] = json!(r);
                }
                if let Some(d) = &detail {
                    e["detail"] = json!(d);
                }
                switches.push(e);
            }
            if !p.data.is_empty() {
                results.insert(fl_id.to_string(), Value::Array(std::mem::take(&mut p.data)));
            }
        }
        for (sw, f, fl) in &self.unsent {
            complete = false;
            let mut e = json!({"switch_id": sw, "status": "failed", "reason": f});
            if let Some(fl) = fl {
                e["fl_id"] = json!(s.fl_id(*fl));
            }
            switches.push(e);
        }
        switches.sort_by(|a, b| a["switch_id"].as_str().cmp(&b["switch_id"].as_str()));
        let payload = json!({
            "clazz": s.settings.protocol.multi_switch.result_class,
            "request": self.request_class,
            "complete": complete,
            "switches": switches,
            "results": results,
        });
        let body =
            notices::info_message(&s.settings.protocol.classes, &self.correlation_id, payload);
        // No OpenKilda component reads a multi-switch result: without a reply-to it goes to
        // the router's own notices there.
        let topic = match (&self.reply_to, s.settings.protocol.dialect) {
            (None, Dialect::OpenKilda) => s.settings.topics.notices_topic().to_string(),
            _ => s.reply_topic(self.reply_to.as_deref()).to_string(),
        };
        let trace_topic: Arc<str> = Arc::from(topic.as_str());
        s.traces.record(
            &self.correlation_id,
            Step::Assembled {
                complete,
                topic: trace_topic.clone(),
            },
        );
        let version = self
            .version
            .clone()
            .or_else(|| s.versions.for_controllers());
        s.outbox.send(
            s.versions
                .stamp(Outgoing::new(topic, body), version)
                .key(Bytes::from(self.correlation_id.clone()))
                .ticket(&self.ticket)
                .note(DeliveryNote::new(
                    &s.traces,
                    &self.correlation_id,
                    Delivery::Reply,
                    &trace_topic,
                )),
        );
        Counters::inc(&s.counters.multi_results);
        if let Some(owed) = self.owed.take() {
            owed.met(Met::Answered);
        }
        debug!(correlation_id = %self.correlation_id, complete, "multi-switch result sent");
        ctx.stop();
    }
}

impl MultiSwitchCommand {
    /// Starts the collector and forwards its parts at once, from the caller's handler: a
    /// command the dispatcher handles next (read after this one) cannot reach an FL's proxy
    /// before these parts do. (Forwarded from `started`, they would leave a turn later.)
    pub fn start_forwarding(mut self) -> Addr<Self> {
        Self::create(move |ctx| {
            let me = MultiSwitchPort::of(&Mailbox::new(ctx.address(), self.stats.clone()));
            self.send_parts(me);
            self
        })
    }

    fn send_parts(&mut self, me: MultiSwitchPort) {
        let s = self.shared.clone();
        let mut unreachable = Vec::new();
        // A cluster instance: each part's FL owner may be another instance, which adopts the
        // part from the FL's read topic and sends its results to this instance's collect topic.
        let collect = s.settings.engine.collect.as_ref().map(|c| c.topic.clone());
        for p in &self.parts {
            let mut msg = Inbound::new(p.part.payload.clone());
            if let Some(topic) = &collect {
                msg = msg.reply_to(topic.clone());
            }
            let forward = Forward {
                correlation_id: self.correlation_id.clone(),
                switch_id: Arc::from(p.part.switches.first().map_or("", String::as_str)),
                requester: Requester {
                    reply_to: collect.as_deref().map(Arc::from),
                    ..Requester::default()
                },
                // Every part is owed a result, whatever its class.
                timeout: Some(
                    match MessageView::read(&p.part.payload, &s.settings.protocol.envelope) {
                        Ok(v) => s.settings.part_deadline(v.class()),
                        Err(_) => s.settings.part_deadline(None),
                    },
                ),
                lane: p.part.lane,
                msg,
                multi: Some(me.clone()),
                owed: Obligation::new(),
            };
            let sent = self
                .proxies
                .get(p.part.fl)
                .map(|px| px.forward.tell(forward).is_ok());
            if sent != Some(true) {
                unreachable.push(p.part.fl); // only while the engine shuts down
            }
        }
        for p in self
            .parts
            .iter_mut()
            .filter(|p| unreachable.contains(&p.part.fl))
        {
            p.state = State::Failed(Failure::FlOffline, None);
        }
    }
}

impl Drop for MultiSwitchCommand {
    /// Stopped before its result (the engine is stopping): the command was never committed,
    /// so the next incarnation reads it again.
    fn drop(&mut self) {
        if let Some(owed) = self.owed.take() {
            owed.met(Met::LeftForRestart);
        }
    }
}

impl Actor for MultiSwitchCommand {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        let s = self.shared.clone();
        let t = &s.settings.timeouts;
        ctx.run_later(
            s.settings.longest_outcome_wait() + t.tick * 2,
            |act, ctx| {
                if act.shared.retired() {
                    return ctx.stop();
                }
                if !act.done {
                    act.assemble(ctx);
                }
            },
        );
        self.assemble_if_done(ctx);
    }
}

counted!(MultiSwitchCommand, PartAnswer => (), |this, msg, ctx| {
    let PartAnswer {
        fl,
        payload,
        is_final,
    } = msg;
    this.answer(fl, payload, is_final, ctx);
});

counted!(MultiSwitchCommand, PartFailed => (), |this, msg, ctx| {
    this.failed(msg.fl, msg.failure, ctx);
});
