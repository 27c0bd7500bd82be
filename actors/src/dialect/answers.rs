//! Where the router's own answer to a command goes, and in which envelope family: where the
//! FL's answer would have gone, in the family its requester reads.
//!
//! OpenKilda's requesters read the speaker's answers on the topic of the lane they asked on
//! (`floodlightrouter/bolts/ControllerToSpeakerSharedProxyBolt.java`: a switch-manager dump's
//! error on `kilda.topo.switch.manager.storm`, a northbound request's on
//! `kilda.northbound.storm`, a flow-hs dump's a `SpeakerDataResponse(ErrorData)` on
//! `kilda.speaker.flowhs.priv`). So: a `reply_to` header wins; then the class's topic
//! (`topics.errors_by_class`), then the lane's (`topics.lanes.commands[].errors`), then
//! `topics.default_reply`. The family is the reader's (`topics.lanes.outputs[].family`): a
//! hub-and-spoke reader gets a hub-and-spoke response, a Message reader an `ErrorMessage`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::settings::{by_class, Family, TopicSettings};

/// One of the configured error topics (two bytes in every pending command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteId(u16);

/// The error routes of the configured lanes, built once.
#[derive(Debug, Default)]
pub struct ErrorRoutes {
    topics: Vec<Arc<str>>,
    by_lane: Vec<Option<RouteId>>,
    by_class: BTreeMap<String, RouteId>,
    families: HashMap<String, Family>,
}

impl ErrorRoutes {
    pub fn new(t: &TopicSettings) -> Self {
        let mut topics: Vec<Arc<str>> = Vec::new();
        let mut id = |topic: &str| {
            let i = topics
                .iter()
                .position(|x| &**x == topic)
                .unwrap_or_else(|| {
                    topics.push(Arc::from(topic));
                    topics.len() - 1
                });
            RouteId(i as u16)
        };
        let by_lane = t
            .command_lanes()
            .into_iter()
            .map(|l| l.errors.as_deref().map(&mut id))
            .collect();
        let by_class = t
            .errors_by_class
            .iter()
            .map(|(c, topic)| (c.clone(), id(topic)))
            .collect();
        Self {
            topics,
            by_lane,
            by_class,
            families: t
                .output_lanes()
                .into_iter()
                .filter_map(|l| Some((l.to?, l.family)))
                .collect(),
        }
    }

    /// Where the router answers a command of `class` read on `lane` (None: `default_reply`).
    pub fn route(&self, lane: usize, class: Option<&str>) -> Option<RouteId> {
        by_class(&self.by_class, class)
            .or_else(|| self.by_lane.get(lane).and_then(Option::as_ref))
            .copied()
    }

    pub fn topic(&self, id: RouteId) -> Option<&str> {
        self.topics.get(usize::from(id.0)).map(|t| &**t)
    }

    /// The family `topic`'s reader expects, when the lanes say.
    pub fn family(&self, topic: &str) -> Option<Family> {
        self.families.get(topic).copied()
    }
}
