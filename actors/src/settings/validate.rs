//! The settings' checks: every problem of a configuration at once, each naming its key.

use super::*;

/// A setting that is syntactically fine but cannot work; `key` is its dotted path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct SettingError {
    pub key: String,
    pub problem: String,
}

impl SettingError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// A topic template: its one variable is `{fl}`, which it must contain; the rest must be
/// valid in a topic name. Errors quote the template as written.
pub fn check_template(key: &str, template: &str) -> Result<(), SettingError> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name = after.split('}').next().unwrap_or(after);
        if name != "fl" || !after.contains('}') {
            return Err(SettingError::new(
                key,
                format!(
                    "template {template:?}: unknown variable {{{name}}}; the only one is {{fl}}"
                ),
            ));
        }
        rest = &after[name.len() + 1..];
    }
    if !template.contains("{fl}") {
        return Err(SettingError::new(
            key,
            format!("template {template:?} must contain {{fl}}"),
        ));
    }
    check_topic_name(key, &template.replace("{fl}", "x")).map_err(|_| {
        SettingError::new(
            key,
            format!("template {template:?} makes no valid topic name: allowed are a-z A-Z 0-9 . _ - and {{fl}}"),
        )
    })
}

/// Kafka topic names: 1..=249 chars of `[a-zA-Z0-9._-]`.
pub fn check_topic_name(key: &str, topic: &str) -> Result<(), SettingError> {
    if topic.is_empty() || topic.len() > 249 {
        return Err(SettingError::new(
            key,
            "a topic name must be 1 to 249 characters",
        ));
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(SettingError::new(
            key,
            format!("topic name {topic:?} has the character {c:?}; allowed are a-z A-Z 0-9 . _ -"),
        ));
    }
    Ok(())
}

impl Settings {
    /// Checks everything serde cannot; returns every problem, not just the first.
    pub fn validate(&self) -> Vec<SettingError> {
        let mut errs = Vec::new();
        self.check_topics(&mut errs);
        self.check_fls(&mut errs);
        self.check_timeouts(&mut errs);
        self.check_protocol(&mut errs);
        self.check_failover(&mut errs);
        errs
    }

    /// `topics` (lanes, templates, routes) and the dialect's checks.
    fn check_topics(&self, errs: &mut Vec<SettingError>) {
        let mut push = |r: Result<(), SettingError>| {
            if let Err(e) = r {
                errs.push(e)
            }
        };
        let t = &self.topics;
        if t.commands.is_empty() {
            push(Err(SettingError::new(
                "topics.commands",
                "at least one command topic is required",
            )));
        }
        for (i, c) in t.commands.iter().enumerate() {
            push(check_topic_name(&format!("topics.commands[{i}]"), c));
        }
        for (key, tpl) in [
            ("topics.fl_read", &t.fl_read),
            ("topics.fl_write", &t.fl_write),
        ] {
            push(check_template(key, tpl));
        }
        for (i, l) in t.lanes.commands.iter().enumerate() {
            push(check_topic_name(
                &format!("topics.lanes.commands[{i}].from"),
                &l.from,
            ));
            push(check_template(
                &format!("topics.lanes.commands[{i}].to"),
                &l.to,
            ));
        }
        for (i, l) in t.lanes.outputs.iter().enumerate() {
            push(check_template(
                &format!("topics.lanes.outputs[{i}].from"),
                &l.from,
            ));
            if let Some(to) = &l.to {
                push(check_topic_name(
                    &format!("topics.lanes.outputs[{i}].to"),
                    to,
                ));
            }
        }
        if let Some(c) = &t.lanes.control {
            push(check_template("topics.lanes.control", c));
            let read = t.command_lanes().iter().any(|l| &l.to == c);
            if self.engine.ownership == FlOwnership::Assigned && !read {
                // An FL's owner adopts a controller's SyncRequest from the FL's read topics.
                push(Err(SettingError::new(
                    "topics.lanes.control",
                    format!("{c:?} must be one of the command lanes' `to` templates in a cluster"),
                )));
            }
        }
        let mut froms = std::collections::HashSet::new();
        for (i, from) in t.command_topics().iter().enumerate() {
            if !froms.insert(from.clone()) {
                push(Err(SettingError::new(
                    format!("topics.lanes.commands[{i}].from"),
                    format!("{from:?} is the source of two command lanes"),
                )));
            }
        }
        if t.fl_read == t.fl_write {
            push(Err(SettingError::new(
                "topics.fl_write",
                "must differ from topics.fl_read",
            )));
        }
        for (key, v) in [
            ("topics.events", &t.events),
            ("topics.default_reply", &t.default_reply),
            ("topics.dead_letter", &t.dead_letter),
            ("topics.switch_map", &t.switch_map),
            ("topics.journal", &t.journal),
        ] {
            push(check_topic_name(key, v));
        }
        if let Some(n) = &t.notices {
            push(check_topic_name("topics.notices", n));
        }
        for (class, topic) in &t.by_class {
            push(check_topic_name(&format!("topics.by_class.{class}"), topic));
        }
        for (class, topic) in &t.errors_by_class {
            push(check_topic_name(
                &format!("topics.errors_by_class.{class}"),
                topic,
            ));
        }
        for (i, l) in t.lanes.commands.iter().enumerate() {
            if let Some(e) = &l.errors {
                push(check_topic_name(
                    &format!("topics.lanes.commands[{i}].errors"),
                    e,
                ));
            }
        }
        for e in dialect_checks(self) {
            push(Err(e));
        }
    }

    /// `fls`: ids, regions, preferences.
    fn check_fls(&self, errs: &mut Vec<SettingError>) {
        let t = &self.topics;
        let mut push = |r: Result<(), SettingError>| {
            if let Err(e) = r {
                errs.push(e)
            }
        };
        if self.fls.is_empty() {
            push(Err(SettingError::new(
                "fls",
                "at least one FL instance is required",
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, fl) in self.fls.iter().enumerate() {
            let key = format!("fls[{i}].id");
            if fl.id.is_empty() {
                push(Err(SettingError::new(&key, "must not be empty")));
                continue;
            }
            if !seen.insert(fl.id.as_str()) {
                push(Err(SettingError::new(
                    &key,
                    format!("duplicate FL id {:?}", fl.id),
                )));
            }
            // Every topic of every lane for this FL must be a valid name (a bad template is
            // reported once, as its own key, not again for every FL).
            let templates_ok = t
                .lanes
                .commands
                .iter()
                .map(|l| l.to.as_str())
                .chain(t.lanes.outputs.iter().map(|l| l.from.as_str()))
                .chain([t.fl_read.as_str(), t.fl_write.as_str()])
                .chain(t.lanes.control.as_deref())
                .all(|tpl| check_template("", tpl).is_ok());
            if !templates_ok {
                continue;
            }
            for topic in t
                .fl_read_topics(&fl.id)
                .into_iter()
                .chain(t.fl_write_topics(&fl.id))
                .chain([t.control_topic(&fl.id)])
            {
                push(check_topic_name(&key, &topic));
            }
        }
    }

    /// `timeouts` and `limits`.
    fn check_timeouts(&self, errs: &mut Vec<SettingError>) {
        let mut push = |r: Result<(), SettingError>| {
            if let Err(e) = r {
                errs.push(e)
            }
        };
        let to = &self.timeouts;
        for (key, d) in [
            ("timeouts.ack", to.ack),
            ("timeouts.answer", to.answer),
            ("timeouts.blacklist_ttl", to.blacklist_ttl),
            ("timeouts.tick", to.tick),
            ("timeouts.alive_interval", to.alive_interval),
            ("timeouts.alive_timeout", to.alive_timeout),
            ("timeouts.sync_chain", to.sync_chain),
        ] {
            if d.is_zero() {
                push(Err(SettingError::new(key, "must be greater than zero")));
            }
        }
        for (class, d) in &to.by_class {
            if d.is_zero() {
                push(Err(SettingError::new(
                    format!("timeouts.by_class.{class}"),
                    "must be greater than zero",
                )));
            }
        }
        if to.tick > to.ack {
            push(Err(SettingError::new(
                "timeouts.tick",
                "must not exceed timeouts.ack",
            )));
        }
        if to.alive_timeout <= to.alive_interval {
            push(Err(SettingError::new(
                "timeouts.alive_timeout",
                "must be longer than timeouts.alive_interval (several intervals, to allow lost requests)",
            )));
        }
        if self.limits.max_message_bytes == 0 {
            push(Err(SettingError::new(
                "limits.max_message_bytes",
                "must be greater than zero",
            )));
        }
    }

    /// `protocol`: switch-id pointers, switch event states.
    fn check_protocol(&self, errs: &mut Vec<SettingError>) {
        let mut push = |r: Result<(), SettingError>| {
            if let Err(e) = r {
                errs.push(e)
            }
        };
        let rules = &self.protocol.switch_ids;
        let check_ptr = |key: String, p: &str| {
            if p.starts_with('/') {
                Ok(())
            } else {
                Err(SettingError::new(
                    key,
                    format!("JSON pointer {p:?} must start with '/'"),
                ))
            }
        };
        for (i, p) in rules.default.iter().enumerate() {
            push(check_ptr(format!("protocol.switch_ids.default[{i}]"), p));
        }
        for (class, ptrs) in &rules.by_class {
            for (i, p) in ptrs.iter().enumerate() {
                push(check_ptr(
                    format!("protocol.switch_ids.by_class.{class}[{i}]"),
                    p,
                ));
            }
        }
        let ev = &self.protocol.switch_events;
        push(check_ptr(
            "protocol.switch_events.state_pointer".into(),
            &ev.state_pointer,
        ));
        push(check_ptr(
            "protocol.switch_events.write_mode_pointer".into(),
            &ev.write_mode_pointer,
        ));
        let mut states = std::collections::HashMap::new();
        for (key, list) in [
            ("read_write_up", &ev.read_write_up),
            ("read_write_down", &ev.read_write_down),
            ("read_only_up", &ev.read_only_up),
            ("read_only_down", &ev.read_only_down),
        ] {
            for (i, st) in list.iter().enumerate() {
                if let Some(other) = states.insert(st.as_str(), key) {
                    push(Err(SettingError::new(
                        format!("protocol.switch_events.{key}[{i}]"),
                        format!("state {st:?} is already in protocol.switch_events.{other}"),
                    )));
                }
            }
        }
    }

    /// `failover` and `engine`.
    fn check_failover(&self, errs: &mut Vec<SettingError>) {
        let mut push = |r: Result<(), SettingError>| {
            if let Err(e) = r {
                errs.push(e)
            }
        };
        for (i, p) in self.failover.prefer.iter().enumerate() {
            if !self
                .fls
                .iter()
                .any(|f| f.id == *p || f.region.as_ref() == Some(p))
            {
                push(Err(SettingError::new(
                    format!("failover.prefer[{i}]"),
                    format!("no FL has the id or region {p:?}"),
                )));
            }
        }
        if self.engine.shards > MAX_SHARDS {
            push(Err(SettingError::new(
                "engine.shards",
                format!(
                    "{} is more than {MAX_SHARDS} (0 = one per core)",
                    self.engine.shards
                ),
            )));
        }
        if self.failover.max_waiting == 0 && !self.failover.grace.is_zero() {
            push(Err(SettingError::new(
                "failover.max_waiting",
                "must be greater than zero while failover.grace is on",
            )));
        }
    }
}

/// The dialect's settings checks (OpenKilda's version header and notices topic).
fn dialect_checks(s: &Settings) -> Vec<SettingError> {
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
