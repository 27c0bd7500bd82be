//! OpenKilda's classes: the defaults of the `protocol` settings — envelope and payload class
//! names, where each OpenKilda message keeps its target switch, which commands are broadcast,
//! what a switch event's states mean. The only place the engine names OpenKilda's classes
//! (`actors/tests/layers.rs`); every one can be overridden in the configuration.
//!
//! Followed: OpenKilda's messaging classes (`src-java/kilda-model`, `messaging`), as listed in
//! shared/OPENKILDA.md with their source paths.

use std::collections::BTreeMap;

use crate::settings::{BroadcastRules, Classes, MultiSwitchRules, SwitchEventRules, SwitchIdRules};

impl Default for BroadcastRules {
    fn default() -> Self {
        Self {
            to_every_fl: vec!["org.openkilda.messaging.command.discovery.PortsCommandData".into()],
            every_switch_once: vec!["org.openkilda.messaging.command.stats.StatsRequest".into()],
            wrapper_class: "org.openkilda.messaging.command.BroadcastWrapper".into(),
        }
    }
}

impl Default for MultiSwitchRules {
    fn default() -> Self {
        Self {
            all_classes: Vec::new(),
            all_values: vec!["*".into(), "ALL".into()],
            result_class: "org.openkilda.flrouter.MultiSwitchResult".into(),
        }
    }
}

impl Default for Classes {
    fn default() -> Self {
        let s = |v: &str| v.to_string();
        Self {
            command_message: s("org.openkilda.messaging.command.CommandMessage"),
            info_message: s("org.openkilda.messaging.info.InfoMessage"),
            error_message: s("org.openkilda.messaging.error.ErrorMessage"),
            chunked_info_message: s("org.openkilda.messaging.info.ChunkedInfoMessage"),
            error_data: s("org.openkilda.messaging.error.ErrorData"),
            fl_receive_ack: s("org.openkilda.messaging.info.FlReceiveAck"),
            alive_request: s("org.openkilda.messaging.AliveRequest"),
            alive_response: s("org.openkilda.messaging.AliveResponse"),
            sync_request: s("org.openkilda.messaging.command.discovery.NetworkCommandData"),
            unmanaged_switch_notification: s(
                "org.openkilda.messaging.info.event.UnmanagedSwitchNotification",
            ),
            switch_offline_notification: s(
                "org.openkilda.messaging.info.event.SwitchOfflineNotification",
            ),
            switch_availability_notification: s(
                "org.openkilda.messaging.info.switches.SwitchAvailabilityUpdateNotification",
            ),
            switch_connect_notification: s(
                "org.openkilda.messaging.info.switches.SwitchConnectNotification",
            ),
            switch_disconnect_notification: s(
                "org.openkilda.messaging.info.switches.SwitchDisconnectNotification",
            ),
            fl_outage_notification: s("org.openkilda.messaging.info.event.FlOutageNotification"),
            sync_summary: s("org.openkilda.messaging.info.event.SyncSessionSummary"),
            network_dump_switch: s("org.openkilda.messaging.info.discovery.NetworkDumpSwitchData"),
            network_dump_begin: s("org.openkilda.messaging.info.discovery.NetworkDumpBeginMarker"),
            network_dump_end: s("org.openkilda.messaging.info.discovery.NetworkDumpEndMarker"),
            hub_flow_error: s("org.openkilda.floodlight.flow.response.FlowErrorResponse"),
            hub_data_response: s("org.openkilda.floodlight.api.response.SpeakerDataResponse"),
            hub_speaker_commands_error: s(
                "org.openkilda.floodlight.api.response.rulemanager.SpeakerCommandResponse",
            ),
        }
    }
}

impl Default for SwitchIdRules {
    fn default() -> Self {
        Self {
            // For classes not listed: the places OpenKilda's messages keep a target switch.
            default: vec![
                "/payload/switch_id".into(),
                "/switch_id".into(),
                "/endpoint/switch_id".into(),
                "/payload/switch_record/datapath".into(),
                "/payload/scope".into(),
            ],
            by_class: openkilda_switch_rules(),
        }
    }
}

impl Default for SwitchEventRules {
    fn default() -> Self {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        Self {
            classes: vec!["org.openkilda.messaging.info.event.SwitchInfoData".into()],
            state_pointer: "/payload/state".into(),
            read_write_up: v(&["ACTIVATED", "CONNECTED"]),
            read_write_down: v(&["DEACTIVATED", "DISCONNECTED"]),
            read_only_up: v(&["ADDED"]),
            read_only_down: v(&["REMOVED"]),
            write_mode_pointer: "/payload/write_mode".into(),
            view_pointers: v(&["/payload/switch", "/payload/switch_record"]),
            active_fl_only: v(&[
                "org.openkilda.messaging.info.event.PortInfoData",
                "org.openkilda.messaging.info.event.IslInfoData",
                "org.openkilda.messaging.info.event.IslOneWayLatency",
                "org.openkilda.messaging.info.event.IslRoundTripLatency",
                "org.openkilda.messaging.info.event.LldpInfoData",
                "org.openkilda.messaging.info.event.ArpInfoData",
            ]),
        }
    }
}

/// OpenKilda's classes and where each keeps the switch it targets (shared/OPENKILDA.md).
fn openkilda_switch_rules() -> BTreeMap<String, Vec<String>> {
    let mut m = BTreeMap::new();
    let mut put = |classes: &[&str], pointers: &[&str]| {
        for c in classes {
            m.insert(
                c.to_string(),
                pointers.iter().map(|p| p.to_string()).collect(),
            );
        }
    };
    put(
        &[
            "org.openkilda.messaging.command.discovery.DiscoverIslCommandData",
            "org.openkilda.messaging.command.switches.DumpRulesRequest",
            "org.openkilda.messaging.command.switches.DumpMetersRequest",
            "org.openkilda.messaging.command.flow.DeleteMeterRequest",
            "org.openkilda.messaging.command.switches.PortConfigurationRequest",
            "org.openkilda.messaging.command.switches.DumpSwitchPortsDescriptionRequest",
            "org.openkilda.messaging.command.switches.DumpPortDescriptionRequest",
            "org.openkilda.messaging.command.flow.MeterModifyCommandRequest",
            "org.openkilda.messaging.command.switches.SwitchRulesDeleteRequest",
            "org.openkilda.messaging.command.switches.Dump*ForSwitchManagerRequest",
            "org.openkilda.messaging.command.switches.Dump*ForFlowHsRequest",
        ],
        &["/payload/switch_id"],
    );
    put(
        &[
            "org.openkilda.messaging.floodlight.request.SetupBfdSession",
            "org.openkilda.messaging.floodlight.request.RemoveBfdSession",
        ],
        &["/payload/bfd-session/target/datapath"],
    );
    put(
        &["org.openkilda.messaging.floodlight.request.PingRequest"],
        &["/payload/ping/source/switch-id"],
    );
    // Flow segments: ingress, egress, one-switch, loops and mirrors keep the target in their
    // endpoint; transit segments have it top-level.
    put(
        &["org.openkilda.floodlight.api.request.*"],
        &["/endpoint/switch_id"],
    );
    put(
        &["org.openkilda.floodlight.api.request.Transit*"],
        &["/switch_id"],
    );
    put(
        &["org.openkilda.floodlight.api.request.rulemanager.*SpeakerCommandsRequest"],
        &["/switch_id"],
    );
    put(
        &["org.openkilda.messaging.command.BroadcastWrapper"],
        &["/payload/scope"],
    );
    // From the speaker.
    // Today's entry keeps the switch in its switch view; the 2018–2019 entry had `switch_id`.
    put(
        &["org.openkilda.messaging.info.discovery.NetworkDumpSwitchData"],
        &["/payload/switch_record/datapath", "/payload/switch_id"],
    );
    put(
        &["org.openkilda.messaging.info.event.IslInfoData"],
        &["/payload/destination/switch_id"],
    );
    put(
        &["org.openkilda.messaging.info.event.IslOneWayLatency"],
        &["/payload/dst_switch_id"],
    );
    // Decided by its source switch (`SpeakerToControllerProxyBolt`: an `IslBaseLatency`).
    put(
        &["org.openkilda.messaging.info.event.IslRoundTripLatency"],
        &["/payload/src_switch_id"],
    );
    put(
        &[
            "org.openkilda.floodlight.api.response.*",
            "org.openkilda.floodlight.flow.response.*",
        ],
        &["/switch_id"],
    );
    m
}
