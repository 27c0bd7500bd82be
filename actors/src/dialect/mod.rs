//! The dialect's room: what the router must know of its peers' conversation beyond routing one
//! message — the shapes of a network dump and what each proves, the version header OpenKilda's
//! consumers require. The class names and switch-id pointers it reads are settings (`protocol`,
//! OpenKilda's by default); the knowledge of how OpenKilda's Floodlight and services behave
//! lives here, each part naming the source it follows.
//!
//! Plain modules only: no actor is named here (`actors/tests/layers.rs`).

pub mod answers;
pub mod dump;
pub mod notices;
pub mod version;

use serde::{Deserialize, Serialize};

/// Whose conversation the records the router makes itself follow (`protocol.dialect`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// fl-router's own notices (DESIGN.md): the embedded default.
    #[default]
    Design,
    /// OpenKilda's: what its floodlightrouter publishes, readable by its services.
    #[serde(rename = "openkilda")]
    OpenKilda,
}

/// The dialect's settings checks (called by `Settings::validate`).
pub fn validate(s: &crate::settings::Settings) -> Vec<crate::settings::SettingError> {
    use crate::settings::SettingError;
    let mut errs = Vec::new();
    let v = &s.protocol.version_header;
    if !v.name.is_empty() && v.value.is_none() && !v.learn {
        errs.push(SettingError::new(
            "protocol.version_header.value",
            "a version header needs a value, or `learn: true` to take it from the records read",
        ));
    }
    if s.protocol.dialect == Dialect::OpenKilda {
        // The router's own notices are no OpenKilda classes: never where an OpenKilda
        // component reads.
        let t = &s.topics;
        let read_by_openkilda: Vec<String> = std::iter::once(t.events.clone())
            .chain(std::iter::once(t.default_reply.clone()))
            .chain(t.output_lanes().into_iter().filter_map(|l| l.to))
            .collect();
        match &t.notices {
            None => errs.push(SettingError::new(
                "topics.notices",
                "the openkilda dialect needs a topic of the router's own for its notices \
                 (FL outages, sync summaries), e.g. kilda.flrouter.notices",
            )),
            Some(n) if read_by_openkilda.contains(n) => errs.push(SettingError::new(
                "topics.notices",
                format!(
                    "{n:?} is read by OpenKilda's services, which cannot read the router's notices"
                ),
            )),
            Some(_) => {}
        }
    }
    errs
}
