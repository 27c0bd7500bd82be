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

/// The error routes of the configured lanes, built once (a command only clones an `Arc`).
#[derive(Debug, Default)]
pub struct ErrorRoutes {
    by_lane: Vec<Option<Arc<str>>>,
    by_class: BTreeMap<String, Arc<str>>,
    families: HashMap<String, Family>,
}

impl ErrorRoutes {
    pub fn new(t: &TopicSettings) -> Self {
        Self {
            by_lane: t
                .command_lanes()
                .into_iter()
                .map(|l| l.errors.map(Arc::from))
                .collect(),
            by_class: t
                .errors_by_class
                .iter()
                .map(|(c, topic)| (c.clone(), Arc::from(topic.as_str())))
                .collect(),
            families: t
                .output_lanes()
                .into_iter()
                .filter_map(|l| Some((l.to?, l.family)))
                .collect(),
        }
    }

    /// Where the router answers a command of `class` read on `lane` (None: `default_reply`).
    pub fn route(&self, lane: usize, class: Option<&str>) -> Option<Arc<str>> {
        by_class(&self.by_class, class)
            .or_else(|| self.by_lane.get(lane).and_then(Option::as_ref))
            .cloned()
    }

    /// The family `topic`'s reader expects, when the lanes say.
    pub fn family(&self, topic: &str) -> Option<Family> {
        self.families.get(topic).copied()
    }
}
