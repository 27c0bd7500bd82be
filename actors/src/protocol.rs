//! The wire protocol (OpenKilda dialect by default): reading just enough of a message to route
//! it, and building the messages the router originates.
//!
//! Proxied messages are never re-serialised: [`Head::parse`] borrows from the input bytes and
//! reads only the envelope fields; [`lookup`] walks a JSON pointer over the raw text, skipping
//! everything else without building a tree. docs/protocol.md is the reference for the formats.

use crate::runtime::clock::now_millis;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::settings::{Classes, EnvelopeRules, ProtocolSettings};

/// Why an input cannot be routed. The text goes into REQUEST_INVALID errors and dead-letter headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("message has no correlation_id")]
    NoCorrelationId,
    #[error("no switch id found (looked at {0})")]
    NoSwitchId(String),
    #[error("invalid switch id {0:?}: expected 8 colon-separated hex bytes")]
    BadSwitchId(String),
}

/// The envelope fields the router reads; everything borrows from the input.
#[derive(Debug, Deserialize)]
pub struct Head<'a> {
    #[serde(borrow, default)]
    pub clazz: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub correlation_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub payload: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub message_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub total_messages: Option<u64>,
    /// The hub-and-spoke family's context (`correlation_id`, `create_time`).
    #[serde(borrow, default)]
    pub message_context: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct PayloadHead<'a> {
    #[serde(borrow, default)]
    clazz: Option<Cow<'a, str>>,
}

impl<'a> Head<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ProtocolError> {
        let text = std::str::from_utf8(bytes).map_err(|e| ProtocolError::Json(e.to_string()))?;
        serde_json::from_str(text).map_err(|e| ProtocolError::Json(e.to_string()))
    }

    /// The payload's own `clazz` (the message kind), when the payload is an object that has one.
    pub fn payload_class(&self) -> Option<Cow<'a, str>> {
        let raw = self.payload?;
        serde_json::from_str::<PayloadHead<'a>>(raw.get())
            .ok()?
            .clazz
    }

    /// A correlation id that is present and not empty.
    pub fn correlation(&self) -> Option<&str> {
        self.correlation_id.as_deref().filter(|c| !c.is_empty())
    }

    /// Chain position for chunked messages: (index, total). `message_id` is `"<index> : <cid>"`.
    pub fn chain_position(&self) -> Option<(u64, u64)> {
        let total = self.total_messages?;
        let index = match self.message_id.as_deref() {
            Some(id) => id.split(':').next()?.trim().parse().ok()?,
            None if total == 0 => 0,
            None => return None,
        };
        Some((index, total))
    }
}

/// A message read once: its envelope fields and what the configured envelope rules find
/// (correlation id and class in either envelope family). Borrows from the input bytes.
pub struct MessageView<'a> {
    pub text: &'a str,
    pub head: Head<'a>,
    /// `/correlation_id`, else `/message_context/correlation_id` (configurable); never empty.
    pub correlation_id: Option<Cow<'a, str>>,
    /// `/payload/clazz`, else `/clazz` (configurable): the class that decides what the message is.
    pub class: Option<Cow<'a, str>>,
}

impl<'a> MessageView<'a> {
    pub fn read(bytes: &'a [u8], rules: &EnvelopeRules) -> Result<Self, ProtocolError> {
        let text = std::str::from_utf8(bytes).map_err(|e| ProtocolError::Json(e.to_string()))?;
        let head: Head<'a> =
            serde_json::from_str(text).map_err(|e| ProtocolError::Json(e.to_string()))?;
        let field = |p: &str| -> Option<Cow<'a, str>> {
            match p {
                "/correlation_id" => head.correlation_id.clone(),
                "/clazz" => head.clazz.clone(),
                "/payload/clazz" => head.payload_class(),
                "/message_context/correlation_id" => {
                    let raw = head.message_context?;
                    lookup_str(raw.get(), "/correlation_id")
                }
                other => lookup_str(text, other),
            }
        };
        let first = |pointers: &[String]| {
            pointers
                .iter()
                .find_map(|p| field(p).filter(|v| !v.is_empty()))
        };
        let correlation_id = first(&rules.correlation_id);
        let class = first(&rules.class);
        Ok(Self {
            text,
            head,
            correlation_id,
            class,
        })
    }

    pub fn correlation(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }

    /// What this message is as a command, decided once: every command path (the shards' hot
    /// path and the dispatcher's) branches on this.
    pub fn command_kind(&self, rules: &ProtocolSettings) -> Result<CommandKind<'_>, ProtocolError> {
        let cid = self.correlation().ok_or(ProtocolError::NoCorrelationId)?;
        let class = self.class();
        if class == Some(rules.classes.sync_request.as_str()) {
            return Ok(CommandKind::SyncRequest { cid });
        }
        if rules.broadcast.covers(class) {
            let every_fl =
                class.is_some_and(|c| rules.broadcast.to_every_fl.iter().any(|x| x == c));
            return Ok(CommandKind::Broadcast { every_fl });
        }
        let located = self.target(rules)?;
        Ok(match located.target {
            Target::One(switch) => CommandKind::OneSwitch { cid, switch },
            target => CommandKind::MultiSwitch {
                cid,
                target,
                span: located.span,
            },
        })
    }

    /// The command's target switch(es), from what this read already found.
    pub fn target(&self, rules: &ProtocolSettings) -> Result<Located, ProtocolError> {
        locate_target_in(self.text, self.head.payload, self.class(), rules)
    }

    pub fn class(&self) -> Option<&str> {
        self.class.as_deref()
    }

    /// True for the hub-and-spoke family (no `payload` wrapper; the class is the top-level
    /// `clazz`): such a request is answered with a response of its own family.
    pub fn is_hub_and_spoke(&self) -> bool {
        self.head.payload.is_none() && self.head.message_context.is_some()
    }
}

/// The value at a JSON pointer (RFC 6901) inside `json`, without building a tree.
pub fn lookup<'a>(json: &'a str, pointer: &str) -> Option<&'a RawValue> {
    let mut current: &'a str = json;
    let mut found: Option<&'a RawValue> = None;
    let tokens = pointer.strip_prefix('/')?;
    for token in tokens.split('/') {
        let token = unescape(token);
        let mut de = serde_json::Deserializer::from_str(current);
        let next = Step { token: &token }.deserialize(&mut de).ok()??;
        current = next.get();
        found = Some(next);
    }
    found
}

fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    }
}

/// One pointer step: the member named `token` of an object, or element `token` of an array.
struct Step<'t> {
    token: &'t str,
}

impl<'de> DeserializeSeed<'de> for Step<'_> {
    type Value = Option<&'de RawValue>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Step<'_> {
    type Value = Option<&'de RawValue>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        // serde_json wants every entry consumed, so keep skipping after a hit.
        while let Some(hit) = map.next_key_seed(KeyIs(self.token))? {
            if hit && found.is_none() {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let want: Option<usize> = self.token.parse().ok();
        let mut i = 0usize;
        let mut found = None;
        loop {
            if Some(i) == want {
                match seq.next_element::<&'de RawValue>()? {
                    Some(v) => found = Some(v),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Compares an object key with the wanted name without allocating.
struct KeyIs<'t>(&'t str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// The string at a pointer, when there is one.
pub fn lookup_str<'a>(json: &'a str, pointer: &str) -> Option<Cow<'a, str>> {
    let raw = lookup(json, pointer)?;
    serde_json::from_str::<Cow<'a, str>>(raw.get()).ok()
}

/// What a command's switch-id rules found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    One(String),
    Many(Vec<String>),
    /// Every switch (an "all" marker value or payload class).
    All,
}

/// What a command is ([`MessageView::command_kind`]); borrows from the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandKind<'a> {
    /// A controller's SyncRequest: a sync session over every FL.
    SyncRequest { cid: &'a str },
    /// Sent to FLs with their switches as scope: to every FL, or each switch once.
    Broadcast { every_fl: bool },
    /// Several switches, or all: split by FL, the parts' results assembled into one.
    MultiSwitch {
        cid: &'a str,
        target: Target,
        /// Where the switch ids are in the text (replaced per FL).
        span: Option<std::ops::Range<usize>>,
    },
    /// One switch (normalised): the common case.
    OneSwitch { cid: &'a str, switch: String },
}

/// A command's target and where in its text the switch ids were found (for the per-FL rewrite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub target: Target,
    /// Byte range of the matched JSON value in the message text; None for an "all" class.
    pub span: Option<std::ops::Range<usize>>,
}

/// Like [`switch_target`], but also says where the value was and honours the multi-switch
/// "all" rules.
pub fn locate_target(
    json: &str,
    payload_class: Option<&str>,
    rules: &ProtocolSettings,
) -> Result<Located, ProtocolError> {
    locate_target_in(json, None, payload_class, rules)
}

/// [`locate_target`] for a message already read: a `/payload/…` pointer is looked up inside the
/// payload the envelope parse already found, not from the top of the text again.
pub fn locate_target_in(
    json: &str,
    payload: Option<&RawValue>,
    payload_class: Option<&str>,
    rules: &ProtocolSettings,
) -> Result<Located, ProtocolError> {
    let ms = &rules.multi_switch;
    if payload_class.is_some_and(|c| ms.all_classes.iter().any(|a| a == c)) {
        return Ok(Located {
            target: Target::All,
            span: None,
        });
    }
    let pointers = rules.switch_ids.pointers_for(payload_class);
    for p in pointers {
        let in_payload = p.strip_prefix("/payload").filter(|r| r.starts_with('/'));
        let found = match (payload, in_payload) {
            (Some(pl), Some(rest)) => lookup(pl.get(), rest),
            _ => lookup(json, p),
        };
        let Some(raw) = found else { continue };
        // The raw value borrows from `json`, so its position is plain pointer arithmetic.
        let start = raw.get().as_ptr() as usize - json.as_ptr() as usize;
        let span = Some(start..start + raw.get().len());
        if let Ok(s) = serde_json::from_str::<Cow<str>>(raw.get()) {
            if ms.all_values.iter().any(|a| a == s.as_ref()) {
                return Ok(Located {
                    target: Target::All,
                    span,
                });
            }
            return Ok(Located {
                target: Target::One(normalise_switch_id(&s)?),
                span,
            });
        }
        if let Ok(list) = serde_json::from_str::<Vec<Cow<str>>>(raw.get()) {
            let mut ids = list
                .iter()
                .map(|s| normalise_switch_id(s))
                .collect::<Result<Vec<_>, _>>()?;
            ids.dedup();
            let target = match ids.len() {
                0 => continue,
                1 => Target::One(ids.remove(0)),
                _ => Target::Many(ids),
            };
            return Ok(Located { target, span });
        }
    }
    Err(ProtocolError::NoSwitchId(pointers.join(", ")))
}

/// The command with the value at `span` replaced by `switches` (a JSON list): the only bytes
/// the router ever changes in a proxied message, and only for a multi-switch command's per-FL part.
pub fn splice_switches(json: &str, span: &std::ops::Range<usize>, switches: &[String]) -> Bytes {
    let list = serde_json::to_string(switches).unwrap_or_else(|_| "[]".into());
    let mut out = String::with_capacity(json.len() + list.len());
    out.push_str(&json[..span.start]);
    out.push_str(&list);
    out.push_str(&json[span.end..]);
    Bytes::from(out)
}

/// A broadcast command for one FL: the message with its `payload` value replaced by
/// `{"clazz": <wrapper>, "scope": [switches], "payload": <the original payload, byte for byte>}`;
/// every other byte of the message is kept. None when the message has no payload object.
pub fn wrap_broadcast(
    view: &MessageView<'_>,
    wrapper_class: &str,
    scope: &[String],
) -> Option<Bytes> {
    let raw = view.head.payload?;
    let text = view.text;
    let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
    let end = start + raw.get().len();
    let scope = serde_json::to_string(scope).ok()?;
    let class = serde_json::to_string(wrapper_class).ok()?;
    let mut out = String::with_capacity(text.len() + scope.len() + 64);
    out.push_str(&text[..start]);
    out.push_str(&format!(r#"{{"clazz":{class},"scope":{scope},"payload":"#));
    out.push_str(raw.get());
    out.push('}');
    out.push_str(&text[end..]);
    Some(Bytes::from(out))
}

/// Normalises a switch id to lower-case colon hex (`00:00:b0:d2:f5:00:5a:b8`), or says why it
/// is not one. Accepted: 8 bytes as hex pairs separated by colons or dashes, or 16 hex digits
/// with no separator; any case. Only for lookup: the bytes of a message are never rewritten.
pub fn normalise_switch_id(raw: &str) -> Result<String, ProtocolError> {
    let s = raw.trim();
    let bad = || ProtocolError::BadSwitchId(raw.to_string());
    let digits: Vec<u8> = match s.len() {
        16 => s.bytes().collect(),
        23 => {
            let sep = s.as_bytes()[2];
            if sep != b':' && sep != b'-' {
                return Err(bad());
            }
            let mut d = Vec::with_capacity(16);
            for (i, pair) in s.split(sep as char).enumerate() {
                if i >= 8 || pair.len() != 2 {
                    return Err(bad());
                }
                d.extend_from_slice(pair.as_bytes());
            }
            d
        }
        _ => return Err(bad()),
    };
    if digits.len() != 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    let mut out = String::with_capacity(23);
    for (i, pair) in digits.chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        for c in pair {
            out.push(c.to_ascii_lowercase() as char);
        }
    }
    Ok(out)
}

/// Finds the switch id(s) of a message by the configured pointers (first pointer that hits wins).
pub fn switch_target(
    json: &str,
    payload_class: Option<&str>,
    rules: &ProtocolSettings,
) -> Result<Target, ProtocolError> {
    locate_target(json, payload_class, rules).map(|l| l.target)
}

/// Error types the router itself sends (ErrorData `error-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorType {
    NotFound,
    OperationTimedOut,
    RequestInvalid,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::NotFound => "NOT_FOUND",
            ErrorType::OperationTimedOut => "OPERATION_TIMED_OUT",
            ErrorType::RequestInvalid => "REQUEST_INVALID",
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a, P: Serialize> {
    clazz: &'a str,
    timestamp: u64,
    correlation_id: &'a str,
    payload: P,
}

#[derive(Serialize)]
struct ErrorData<'a> {
    clazz: &'a str,
    #[serde(rename = "error-type")]
    error_type: ErrorType,
    #[serde(rename = "error-message")]
    message: &'a str,
    #[serde(rename = "error-description")]
    description: &'a str,
}

/// Who waits for a command's outcome and how the router answers them itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requester {
    /// The `reply_to` header, when the sender set one (shared with the input's).
    pub reply_to: Option<Arc<str>>,
    /// The command's Kafka key: the router's own answer carries it (OpenKilda's services match
    /// replies to requests by key); without one, the correlation id.
    pub key: Option<Bytes>,
    /// A hub-and-spoke request's bytes (a cheap shared copy): it is answered with a response
    /// of its own family, whose parts are read from these only when the router must answer.
    /// Boxed: 8 bytes in every pending command instead of 32, for the one family that has it.
    pub hub_request: Option<Box<Bytes>>,
    /// The command's version header (`protocol.version_header`): the router's answer carries
    /// it. None when the header is not in use.
    pub version: Option<crate::dialect::version::VersionId>,
    /// Where the router answers it without a reply-to (`crate::dialect::answers`); None:
    /// `topics.default_reply`.
    pub errors_to: Option<crate::dialect::answers::RouteId>,
}

/// A hub-and-spoke request's own parts, kept to answer it in its family when the router has to
/// answer it itself (raw JSON, copied byte for byte into the response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRequest {
    pub class: String,
    pub message_context: String,
    pub command_id: Option<String>,
    pub metadata: Option<String>,
    /// `command_data[*].data.uuid` of a speaker-commands request.
    pub command_uuids: Vec<String>,
}

impl HubRequest {
    /// The parts of a hub-and-spoke request, or None for the message family.
    pub fn of(view: &MessageView<'_>) -> Option<Self> {
        if !view.is_hub_and_spoke() {
            return None;
        }
        let raw = |p: &str| lookup(view.text, p).map(|v| v.get().to_string());
        let command_uuids = lookup(view.text, "/command_data")
            .and_then(|v| serde_json::from_str::<Vec<serde_json::Value>>(v.get()).ok())
            .map(|cmds| {
                cmds.iter()
                    .filter_map(|c| c.pointer("/data/uuid")?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            class: view.class()?.to_string(),
            message_context: view.head.message_context?.get().to_string(),
            command_id: raw("/command_id"),
            metadata: raw("/metadata"),
            command_uuids,
        })
    }
}

/// The router's own answer to a hub-and-spoke request, in that family: a
/// `SpeakerCommandResponse` (success false, every command failed) for a speaker-commands
/// request, else a `FlowErrorResponse` whose `error_code` says why (`SWITCH_UNAVAILABLE` for
/// NOT_FOUND, `OPERATION_TIMED_OUT`, `BAD_COMMAND` for REQUEST_INVALID). The request's
/// `message_context` (so its correlation id), `command_id` and `metadata` are copied unchanged.
pub fn hub_error(
    classes: &Classes,
    req: &HubRequest,
    switch: Option<&str>,
    error_type: ErrorType,
    description: &str,
) -> Bytes {
    let text = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let switch = switch.map_or_else(|| "null".to_string(), text);
    let command_id = req.command_id.as_deref().unwrap_or("null");
    let mut out = String::with_capacity(256 + req.message_context.len());
    if req.class.ends_with("SpeakerCommandsRequest") {
        let failed: Vec<String> = req
            .command_uuids
            .iter()
            .map(|u| format!("{}:{}", text(u), text(description)))
            .collect();
        out.push_str(&format!(
            r#"{{"clazz":{},"message_context":{},"command_id":{command_id},"switch_id":{switch},"success":false,"failed_command_ids":{{{}}}}}"#,
            text(&classes.hub_speaker_commands_error),
            req.message_context,
            failed.join(",")
        ));
    } else {
        let code = match error_type {
            ErrorType::NotFound => "SWITCH_UNAVAILABLE",
            ErrorType::OperationTimedOut => "OPERATION_TIMED_OUT",
            ErrorType::RequestInvalid => "BAD_COMMAND",
        };
        let create_time = lookup(&req.message_context, "/create_time")
            .map(|v| v.get().to_string())
            .unwrap_or_else(|| "0".into());
        out.push_str(&format!(
            r#"{{"clazz":{},"message_context":{},"command_id":{command_id},"switch_id":{switch},"#,
            text(&classes.hub_flow_error),
            req.message_context,
        ));
        if let Some(m) = &req.metadata {
            out.push_str(&format!(r#""metadata":{m},"#));
        }
        out.push_str(&format!(
            r#""error_code":"{code}","description":{},"requestCreateTime":{create_time},"executionTime":0}}"#,
            text(description)
        ));
    }
    Bytes::from(out)
}

/// The router's answer in the hub-and-spoke family to a Message-family request whose
/// requester reads that family (a flow-hs dump): OpenKilda's `SpeakerDataResponse` carrying an
/// `ErrorData`, as `ControllerToSpeakerSharedProxyBolt` builds it.
pub fn hub_data_error(
    classes: &Classes,
    correlation_id: &str,
    error_type: ErrorType,
    message: &str,
    description: &str,
) -> Bytes {
    let v = serde_json::json!({
        "clazz": classes.hub_data_response,
        "message_context": {"correlation_id": correlation_id, "create_time": now_millis()},
        "data": {
            "clazz": classes.error_data,
            "error-type": error_type,
            "error-message": message,
            "error-description": description,
            "timestamp": now_millis(),
        },
    });
    Bytes::from(v.to_string())
}

/// An ErrorMessage the router originates (NOT_FOUND, OPERATION_TIMED_OUT, REQUEST_INVALID).
pub fn error_message(
    classes: &Classes,
    correlation_id: &str,
    error_type: ErrorType,
    message: &str,
    description: &str,
) -> Bytes {
    let env = Envelope {
        clazz: &classes.error_message,
        timestamp: now_millis(),
        correlation_id,
        payload: ErrorData {
            clazz: &classes.error_data,
            error_type,
            message,
            description,
        },
    };
    // Serialising plain structs of strings cannot fail.
    Bytes::from(serde_json::to_vec(&env).unwrap_or_default())
}

fn envelope(class: &str, correlation_id: &str, payload: serde_json::Value) -> Bytes {
    let v = serde_json::json!({
        "clazz": class,
        "timestamp": now_millis(),
        "correlation_id": correlation_id,
        "payload": payload,
    });
    Bytes::from(v.to_string())
}

/// A CommandMessage the router originates (AliveRequest, SyncRequest).
pub fn command_message(
    classes: &Classes,
    correlation_id: &str,
    payload: serde_json::Value,
) -> Bytes {
    envelope(&classes.command_message, correlation_id, payload)
}

pub fn alive_request(classes: &Classes, correlation_id: &str) -> Bytes {
    command_message(
        classes,
        correlation_id,
        serde_json::json!({"clazz": classes.alive_request}),
    )
}

/// A network dump request (`NetworkCommandData`). Without a `dump_id` (a partial dump: one
/// region's recovery) the field is left out, as OpenKilda's mapper leaves out nulls.
pub fn sync_request(classes: &Classes, correlation_id: &str, dump_id: Option<&str>) -> Bytes {
    let mut payload = serde_json::json!({"clazz": classes.sync_request});
    if let Some(id) = dump_id {
        payload["dump_id"] = serde_json::Value::from(id);
    }
    command_message(classes, correlation_id, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_walks_objects_and_arrays_and_skips_the_rest() {
        let j = r#"{"a":{"x":[1,{"y":"z"}],"b":"c"},"payload":{"switch_id":"00:00:00:00:00:00:00:01"}}"#;
        assert_eq!(lookup(j, "/a/x/1/y").unwrap().get(), r#""z""#);
        assert_eq!(lookup(j, "/a/b").unwrap().get(), r#""c""#);
        assert!(lookup(j, "/a/nope").is_none());
        assert!(lookup(j, "/a/x/7").is_none());
        assert!(lookup(j, "/a/b/deeper").is_none());
        assert_eq!(
            lookup_str(j, "/payload/switch_id").unwrap(),
            "00:00:00:00:00:00:00:01"
        );
    }

    #[test]
    fn lookup_handles_escaped_pointer_tokens_and_keys() {
        let j = r#"{"a/b":{"m~n":1},"e\"q":2}"#;
        assert_eq!(lookup(j, "/a~1b/m~0n").unwrap().get(), "1");
        assert_eq!(lookup(j, "/e\"q").unwrap().get(), "2");
    }

    #[test]
    fn head_reads_envelope_and_chain_fields() {
        let j = br#"{"clazz":"C","correlation_id":"c1","timestamp":1,"message_id":"2 : c1","total_messages":3,"payload":{"clazz":"P","v":1}}"#;
        let h = Head::parse(j).unwrap();
        assert_eq!(h.clazz.as_deref(), Some("C"));
        assert_eq!(h.correlation(), Some("c1"));
        assert_eq!(h.payload_class().as_deref(), Some("P"));
        assert_eq!(h.chain_position(), Some((2, 3)));
        let empty =
            Head::parse(br#"{"correlation_id":"c","total_messages":0,"payload":null}"#).unwrap();
        assert_eq!(empty.chain_position(), Some((0, 0)));
        assert!(empty.payload_class().is_none());
    }

    #[test]
    fn switch_ids_normalise_from_colon_dash_or_plain_hex_in_any_case() {
        for raw in [
            "00:00:B0:d2:f5:00:5a:b8",
            "00-00-b0-D2-f5-00-5a-b8",
            "0000b0d2f5005aB8",
            " 00:00:b0:d2:f5:00:5a:b8 ",
        ] {
            assert_eq!(
                normalise_switch_id(raw).unwrap(),
                "00:00:b0:d2:f5:00:5a:b8",
                "{raw}"
            );
        }
        for bad in [
            "00:00:b0:d2:f5:00:5a",
            "00:00-b0:d2:f5:00:5a:b8",
            "0000b0d2f5005ab",
            "zz:00:b0:d2:f5:00:5a:b8",
            "00:00:b0:d2:f5:00:5a:b8:00",
            "SW0000b0d2f5005ab8",
        ] {
            assert!(normalise_switch_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn both_envelope_families_give_correlation_id_and_class() {
        let rules = EnvelopeRules::default();
        let msg = br#"{"clazz":"org.openkilda.messaging.command.CommandMessage","correlation_id":"c1","payload":{"clazz":"P"}}"#;
        let e = MessageView::read(msg, &rules).unwrap();
        assert_eq!((e.correlation(), e.class()), (Some("c1"), Some("P")));
        assert!(!e.is_hub_and_spoke());
        let hs = br#"{"clazz":"org.openkilda.floodlight.api.request.IngressFlowSegmentInstallRequest","message_context":{"correlation_id":"5d6e : { switch-validate : 0a1b }","create_time":5},"endpoint":{"switch_id":"00:00:00:00:00:00:00:01"}}"#;
        let e = MessageView::read(hs, &rules).unwrap();
        assert_eq!(e.correlation(), Some("5d6e : { switch-validate : 0a1b }"));
        assert_eq!(
            e.class(),
            Some("org.openkilda.floodlight.api.request.IngressFlowSegmentInstallRequest")
        );
        assert!(e.is_hub_and_spoke());
        let none = br#"{"clazz":"X","correlation_id":"","payload":{}}"#;
        let e = MessageView::read(none, &rules).unwrap();
        assert_eq!(e.correlation(), None, "empty is absent");
        assert_eq!(e.class(), Some("X"), "falls back to the top-level clazz");
    }

    #[test]
    fn head_rejects_malformed_json() {
        assert!(matches!(
            Head::parse(b"{not json"),
            Err(ProtocolError::Json(_))
        ));
        assert!(matches!(Head::parse(b"[1,2]"), Err(ProtocolError::Json(_))));
        assert!(matches!(
            Head::parse(&[0xff, 0xfe]),
            Err(ProtocolError::Json(_))
        ));
    }

    #[test]
    fn switch_target_follows_rules_in_order_and_normalises() {
        let rules = ProtocolSettings::default();
        let j = r#"{"payload":{"switch_record":{"datapath":"00:00:00:00:00:00:00:AB"}}}"#;
        assert_eq!(
            switch_target(j, None, &rules).unwrap(),
            Target::One("00:00:00:00:00:00:00:ab".into())
        );
        let many =
            r#"{"payload":{"switch_id":["00:00:00:00:00:00:00:01","00:00:00:00:00:00:00:02"]}}"#;
        assert!(
            matches!(switch_target(many, None, &rules).unwrap(), Target::Many(v) if v.len() == 2)
        );
        assert!(matches!(
            switch_target(r#"{"payload":{}}"#, None, &rules),
            Err(ProtocolError::NoSwitchId(_))
        ));
        assert!(matches!(
            switch_target(r#"{"payload":{"switch_id":"sw1"}}"#, None, &rules),
            Err(ProtocolError::BadSwitchId(_))
        ));
    }

    #[test]
    fn per_class_rules_replace_the_defaults() {
        let mut rules = ProtocolSettings::default();
        rules
            .switch_ids
            .by_class
            .insert("K".into(), vec!["/payload/dpid".into()]);
        let j = r#"{"payload":{"clazz":"K","dpid":"00:00:00:00:00:00:00:02","switch_id":"00:00:00:00:00:00:00:01"}}"#;
        assert_eq!(
            switch_target(j, Some("K"), &rules).unwrap(),
            Target::One("00:00:00:00:00:00:00:02".into())
        );
    }

    #[test]
    fn locate_finds_lists_all_markers_and_their_span() {
        let rules = ProtocolSettings::default();
        let j = r#"{"a":1, "payload":{"clazz":"X","switch_id":["00:00:00:00:00:00:00:01","00:00:00:00:00:00:00:02"],"z":2}}"#;
        let l = locate_target(j, Some("X"), &rules).unwrap();
        assert!(matches!(l.target, Target::Many(ref v) if v.len() == 2));
        let span = l.span.unwrap();
        assert!(j[span.clone()].starts_with('[') && j[span.clone()].ends_with(']'));
        let one = splice_switches(j, &span, &["00:00:00:00:00:00:00:02".to_string()]);
        assert_eq!(
            std::str::from_utf8(&one).unwrap(),
            r#"{"a":1, "payload":{"clazz":"X","switch_id":["00:00:00:00:00:00:00:02"],"z":2}}"#,
            "only the list changed, every other byte kept"
        );
        let all = r#"{"payload":{"switch_id":"*"}}"#;
        assert_eq!(
            locate_target(all, None, &rules).unwrap().target,
            Target::All
        );
        let mut r2 = rules.clone();
        r2.multi_switch.all_classes.push("DumpAll".into());
        assert_eq!(
            locate_target("{}", Some("DumpAll"), &r2).unwrap().target,
            Target::All
        );
    }

    #[test]
    fn a_hub_and_spoke_request_is_answered_in_its_family_with_its_context() {
        let classes = Classes::default();
        let rules = EnvelopeRules::default();
        let req = br#"{"clazz":"org.openkilda.floodlight.api.request.IngressFlowSegmentInstallRequest","message_context":{"correlation_id":"c : {x}","create_time":42},"command_id":"9c1f","metadata":{"flow_id":"f1","cookie":-5},"endpoint":{"switch_id":"00:00:00:00:00:00:00:01"}}"#;
        let view = MessageView::read(req, &rules).unwrap();
        let hub = HubRequest::of(&view).unwrap();
        let b = hub_error(
            &classes,
            &hub,
            Some("00:00:00:00:00:00:00:01"),
            ErrorType::NotFound,
            "no FL",
        );
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v["clazz"],
            "org.openkilda.floodlight.flow.response.FlowErrorResponse"
        );
        assert_eq!(v["message_context"]["correlation_id"], "c : {x}");
        assert_eq!(v["command_id"], "9c1f");
        assert_eq!(v["metadata"]["cookie"], -5);
        assert_eq!(v["error_code"], "SWITCH_UNAVAILABLE");
        assert_eq!(v["requestCreateTime"], 42);
        assert_eq!(v["switch_id"], "00:00:00:00:00:00:00:01");

        let req = br#"{"clazz":"org.openkilda.floodlight.api.request.rulemanager.InstallSpeakerCommandsRequest","message_context":{"correlation_id":"c2","create_time":1},"command_id":"77","switch_id":"00:00:00:00:00:00:00:02","command_data":[{"clazz":"x.FlowCommand","data":{"uuid":"u1"}},{"data":{"uuid":"u2"}}]}"#;
        let view = MessageView::read(req, &rules).unwrap();
        let hub = HubRequest::of(&view).unwrap();
        assert_eq!(hub.command_uuids, ["u1", "u2"]);
        let b = hub_error(
            &classes,
            &hub,
            Some("00:00:00:00:00:00:00:02"),
            ErrorType::OperationTimedOut,
            "late",
        );
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            v["clazz"],
            "org.openkilda.floodlight.api.response.rulemanager.SpeakerCommandResponse"
        );
        assert_eq!(v["success"], false);
        assert_eq!(v["failed_command_ids"]["u2"], "late");
        assert_eq!(v["message_context"]["correlation_id"], "c2");
        // The message family has no such parts.
        let msg = br#"{"clazz":"C","correlation_id":"c","payload":{"clazz":"P"}}"#;
        assert!(HubRequest::of(&MessageView::read(msg, &rules).unwrap()).is_none());
    }

    #[test]
    fn error_message_has_the_hyphenated_error_data_fields() {
        let b = error_message(&Classes::default(), "c9", ErrorType::NotFound, "m", "d");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["clazz"], "org.openkilda.messaging.error.ErrorMessage");
        assert_eq!(v["correlation_id"], "c9");
        assert_eq!(v["payload"]["error-type"], "NOT_FOUND");
        assert_eq!(v["payload"]["error-message"], "m");
        assert_eq!(v["payload"]["error-description"], "d");
        assert!(v["timestamp"].as_u64().unwrap() > 0);
    }
}
