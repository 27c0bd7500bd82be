//! [`Engine`]: starts the actors and is the shell's handle to them. The shell calls
//! [`Engine::command`] and [`Engine::fl_output`] for what it reads, and supplies the outbox for
//! what the engine writes. Must be started inside a running actix `System`.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use crate::counters::Counters;
use crate::dispatcher::{self, Command, Dispatcher, LookupSwitch, SetProxies};
use crate::fl_proxy::{self, FlOutput, FlProxy, GetStatus, ProxyStatus, Restart};
use crate::mailbox::{Mailbox, MailboxSnapshot, MailboxStats, SendRejected};
use crate::outbox::{Inbound, Outbox};
use crate::settings::{SettingError, Settings};
use crate::shared::{Shared, Source};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid settings: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Settings(Vec<SettingError>),
    #[error("unknown FL {0:?}")]
    UnknownFl(String),
    #[error(transparent)]
    Rejected(#[from] SendRejected),
}

#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    dispatcher: Mailbox<Dispatcher>,
    proxies: Arc<HashMap<String, Mailbox<FlProxy>>>,
    /// FL write topic → FL id, for the shell's consumer.
    write_topics: Arc<HashMap<String, String>>,
}

impl Engine {
    pub fn start(settings: Settings, outbox: Arc<dyn Outbox>) -> Result<Engine, EngineError> {
        let problems = settings.validate();
        if !problems.is_empty() {
            return Err(EngineError::Settings(problems));
        }
        let shared = Shared::new(settings, outbox);
        let dstats = MailboxStats::new("dispatcher", "dispatcher", dispatcher::MAILBOX_CAPACITY);
        shared.mailboxes.register(&dstats);
        let daddr = Dispatcher::new(shared.clone(), dstats.clone()).start();
        let dispatcher = Mailbox::new(daddr, dstats);

        let mut list = Vec::new();
        let mut proxies = HashMap::new();
        let mut write_topics = HashMap::new();
        for (index, fl) in shared.settings.fls.iter().enumerate() {
            let stats = MailboxStats::new("fl_proxy", fl.id.clone(), fl_proxy::MAILBOX_CAPACITY);
            shared.mailboxes.register(&stats);
            let (sh, d, st) = (shared.clone(), dispatcher.clone(), stats.clone());
            let addr = actix::Supervisor::start(move |_| FlProxy::new(index, sh, d, st));
            let mbox = Mailbox::new(addr, stats);
            list.push(mbox.clone());
            proxies.insert(fl.id.clone(), mbox);
            write_topics.insert(shared.settings.topics.fl_write_topic(&fl.id), fl.id.clone());
        }
        dispatcher.tell(SetProxies(list))?;
        Ok(Engine {
            shared,
            dispatcher,
            proxies: Arc::new(proxies),
            write_topics: Arc::new(write_topics),
        })
    }

    /// A message from an inbound command topic. Resolves once the dispatcher has taken it
    /// (backpressure for the consumer).
    pub async fn command(&self, msg: Inbound) -> Result<(), EngineError> {
        Ok(self.dispatcher.ask(Command(msg)).await?)
    }

    /// A message from FL `fl`'s write topic. An unknown FL's message is dead-lettered.
    pub async fn fl_output(&self, fl: &str, msg: Inbound) -> Result<(), EngineError> {
        match self.proxies.get(fl) {
            Some(p) => Ok(p.ask(FlOutput(msg)).await?),
            None => {
                self.shared.dead_letter(
                    msg.payload.clone(),
                    msg.key.clone(),
                    Source::Fl(fl),
                    &format!("message from unknown FL {fl:?}"),
                    &msg.ticket,
                );
                Err(EngineError::UnknownFl(fl.to_string()))
            }
        }
    }

    /// The FL that writes to `topic`, if any.
    pub fn fl_of_write_topic(&self, topic: &str) -> Option<&str> {
        self.write_topics.get(topic).map(String::as_str)
    }

    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    pub fn mailboxes(&self, reset_window: bool) -> Vec<MailboxSnapshot> {
        self.shared.mailboxes.snapshot(reset_window)
    }

    /// Which FL manages `switch` (normalised first), if any.
    pub async fn lookup_switch(&self, switch: &str) -> Result<Option<String>, EngineError> {
        Ok(self
            .dispatcher
            .ask(LookupSwitch(switch.to_string()))
            .await?)
    }

    pub async fn fl_status(&self, fl: &str) -> Result<ProxyStatus, EngineError> {
        let p = self
            .proxies
            .get(fl)
            .ok_or_else(|| EngineError::UnknownFl(fl.to_string()))?;
        Ok(p.ask(GetStatus).await?)
    }

    /// Status of every FL proxy, in configuration order.
    pub async fn fl_statuses(&self) -> Vec<ProxyStatus> {
        let mut out = Vec::new();
        for fl in &self.shared.settings.fls {
            if let Ok(st) = self.fl_status(&fl.id).await {
                out.push(st);
            }
        }
        out
    }

    /// Stops FL `fl`'s proxy; its supervisor restarts it with its pending commands.
    pub fn restart_fl_proxy(&self, fl: &str) -> Result<(), EngineError> {
        let p = self
            .proxies
            .get(fl)
            .ok_or_else(|| EngineError::UnknownFl(fl.to_string()))?;
        Ok(p.tell(Restart)?)
    }
}
