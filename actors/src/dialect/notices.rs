//! What the router tells the controllers about switches and FLs, in each dialect.
//!
//! **OpenKilda** (`protocol.dialect: openkilda`), as its floodlightrouter does
//! (`floodlightrouter/service/monitor/SwitchMonitor.java`, `bolts/SwitchMonitorBolt.java`), on
//! `topics.events` keyed by the switch id:
//! - `SwitchConnectNotification{speakerData, availabilityData}` when a switch gets its first
//!   read-write connection, `speakerData` the switch's view from the event or dump entry that
//!   brought it (`SwitchInfoData.switch`, `NetworkDumpSwitchData.switch_record`);
//! - `SwitchDisconnectNotification{switchId, availabilityData, regionOffline}` when its last
//!   read-write connection goes (`regionOffline` true for an FL's outage), listing what is left;
//! - `SwitchAvailabilityUpdateNotification{switchId, availabilityData}` for any other change.
//!
//! Availability entries are `{regionName, connectMode, master, connectedAt, switchAddress,
//! speakerAddress}` (camelCase: Lombok `@Value` classes without `@JsonProperty`), one per FL (its
//! read-write connection wins), `connectedAt` in decimal epoch seconds (Jackson's
//! `JavaTimeModule`), the addresses from the view the FL reported (`switch-socket`,
//! `speaker-socket`). The envelope is an `InfoMessage` with its nulls written, as OpenKilda's
//! mapper writes it.
//!
//! **Design** (the embedded default, DESIGN.md): the FL's own connect/disconnect event is
//! forwarded; an outage sends `UnmanagedSwitchNotification{switch_id}`, a complete dump that no
//! longer lists a switch `SwitchOfflineNotification{switch_id, fl_id}`, and any other change the
//! same availability notice.
//!
//! The router's own notices (`FlOutageNotification`, the sync summary) are no OpenKilda classes:
//! they go to `topics.notices` (see `Shared::send_notice`).

use bytes::Bytes;
use serde_json::{json, Value};

use crate::runtime::clock::now_millis;
use crate::settings::Classes;

/// One connection as an availability notice lists it.
#[derive(Debug, Clone, Copy)]
pub struct AvailabilityEntry<'a> {
    pub fl: &'a str,
    pub read_write: bool,
    pub active: bool,
    pub since_ms: u64,
    /// `{"switchAddress": …, "speakerAddress": …}` as the FL reported them, if it did.
    pub addresses: Option<&'a Value>,
}

/// The `switchAddress`/`speakerAddress` pair of a switch's view (`SpeakerSwitchView`), for its
/// connection's availability entries.
pub fn addresses_of(view: &Value) -> Option<Value> {
    let (sw, sp) = (view.get("switch-socket")?, view.get("speaker-socket")?);
    Some(json!({"switchAddress": sw, "speakerAddress": sp}))
}

/// An InfoMessage the router makes. OpenKilda's mapper writes the envelope's nulls.
pub fn info_message(classes: &Classes, correlation_id: &str, payload: Value) -> Bytes {
    let v = json!({
        "clazz": classes.info_message,
        "payload": payload,
        "timestamp": now_millis(),
        "correlation_id": correlation_id,
        "destination": null,
        "region": null,
        "cookie": null,
    });
    Bytes::from(v.to_string())
}

fn new_cid(kind: &str) -> String {
    format!("flrouter-{kind}-{}", uuid::Uuid::new_v4().simple())
}

fn availability_data(entries: &[AvailabilityEntry<'_>]) -> Value {
    let connections: Vec<Value> = entries
        .iter()
        .filter(|e| e.read_write || !entries.iter().any(|o| o.read_write && o.fl == e.fl))
        .map(|e| {
            let mut c = json!({
                "regionName": e.fl,
                "connectMode": if e.read_write { "READ_WRITE" } else { "READ_ONLY" },
                "master": e.active,
                // Decimal epoch seconds, as JavaTimeModule writes an Instant.
                "connectedAt": e.since_ms as f64 / 1000.0,
            });
            if let (Some(a), Some(obj)) = (e.addresses, c.as_object_mut()) {
                for k in ["switchAddress", "speakerAddress"] {
                    if let Some(v) = a.get(k) {
                        obj.insert(k.into(), v.clone());
                    }
                }
            }
            c
        })
        .collect();
    json!({"connections": connections})
}

/// `SwitchAvailabilityUpdateNotification`: every connection of the switch (both dialects).
pub fn availability(
    classes: &Classes,
    cid: Option<&str>,
    switch: &str,
    entries: &[AvailabilityEntry<'_>],
) -> Bytes {
    info_message(
        classes,
        &cid.map_or_else(|| new_cid("availability"), str::to_string),
        json!({
            "clazz": classes.switch_availability_notification,
            "switchId": switch,
            "availabilityData": availability_data(entries),
            "timestamp": now_millis(),
        }),
    )
}

/// OpenKilda's `SwitchConnectNotification`: the switch's first read-write connection.
pub fn connect(
    classes: &Classes,
    cid: Option<&str>,
    speaker_data: &Value,
    entries: &[AvailabilityEntry<'_>],
) -> Bytes {
    info_message(
        classes,
        &cid.map_or_else(|| new_cid("connect"), str::to_string),
        json!({
            "clazz": classes.switch_connect_notification,
            "speakerData": speaker_data,
            "availabilityData": availability_data(entries),
            "timestamp": now_millis(),
        }),
    )
}

/// OpenKilda's `SwitchDisconnectNotification`: the last read-write connection is gone
/// (`region_offline`: by the FL's outage); `entries` are what is left.
pub fn disconnect(
    classes: &Classes,
    cid: Option<&str>,
    switch: &str,
    entries: &[AvailabilityEntry<'_>],
    region_offline: bool,
) -> Bytes {
    info_message(
        classes,
        &cid.map_or_else(|| new_cid("disconnect"), str::to_string),
        json!({
            "clazz": classes.switch_disconnect_notification,
            "switchId": switch,
            "availabilityData": availability_data(entries),
            "regionOffline": region_offline,
            "timestamp": now_millis(),
        }),
    )
}

/// The design dialect's notice that an FL's outage left a switch without a read-write FL.
pub fn unmanaged(classes: &Classes, switch: &str) -> Bytes {
    info_message(
        classes,
        &new_cid("unmanaged"),
        json!({"clazz": classes.unmanaged_switch_notification, "switch_id": switch}),
    )
}

/// The design dialect's notice that a complete dump no longer lists a switch.
pub fn switch_offline(classes: &Classes, switch: &str, fl: &str) -> Bytes {
    info_message(
        classes,
        &new_cid("offline"),
        json!({"clazz": classes.switch_offline_notification, "switch_id": switch, "fl_id": fl}),
    )
}

/// The router's own notice of an FL's outage (to `topics.notices`).
pub fn fl_outage(classes: &Classes, fl: &str, reason: &str) -> Bytes {
    info_message(
        classes,
        &format!("{} : {fl}", new_cid("outage")),
        json!({"clazz": classes.fl_outage_notification, "fl_id": fl, "reason": reason}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_lists_each_fl_once_with_its_addresses_and_decimal_seconds() {
        let addr = json!({"switchAddress": {"address": "192.0.2.10", "port": 41234},
                          "speakerAddress": {"address": "192.0.2.1", "port": 6653}});
        let entries = [
            AvailabilityEntry {
                fl: "1",
                read_write: true,
                active: true,
                since_ms: 1_699_999_940_000,
                addresses: Some(&addr),
            },
            AvailabilityEntry {
                fl: "1",
                read_write: false,
                active: false,
                since_ms: 1_699_999_941_000,
                addresses: None,
            },
            AvailabilityEntry {
                fl: "1.stats",
                read_write: false,
                active: false,
                since_ms: 1_699_999_942_500,
                addresses: None,
            },
        ];
        let v: Value = serde_json::from_slice(&availability(
            &Classes::default(),
            Some("c"),
            "00:00:00:00:00:00:00:01",
            &entries,
        ))
        .unwrap();
        let conns = v["payload"]["availabilityData"]["connections"]
            .as_array()
            .unwrap();
        assert_eq!(conns.len(), 2, "region 1's read-write connection wins");
        assert_eq!(conns[0]["connectedAt"], json!(1_699_999_940.0));
        assert_eq!(conns[0]["switchAddress"]["port"], 41234);
        assert_eq!(conns[1]["connectMode"], "READ_ONLY");
        assert_eq!(conns[1]["connectedAt"], json!(1_699_999_942.5));
        assert!(v["destination"].is_null() && v.get("region").is_some());
        assert_eq!(v["correlation_id"], "c");
    }
}
