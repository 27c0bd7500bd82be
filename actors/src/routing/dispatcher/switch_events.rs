//! What the FLs say about their switches, applied to the switch map: connect and disconnect
//! events, network dump entries (in the FL's order, `dialect::dump`), a complete dump's
//! verdict; and what each change means (failover, unmanaged, availability) told to the
//! controllers in the configured dialect (`dialect::notices`).

use super::*;

impl Dispatcher {
    pub(super) fn switch_event(&mut self, ev: SwitchEvent) {
        let now_ms = crate::runtime::clock::now_millis();
        if ev.via == Via::Sync {
            return self.dump_entry(ev, now_ms);
        }
        let t = if ev.up {
            let t = self
                .map
                .connect(&ev.switch_id, ev.fl, ev.mode, ev.via, now_ms);
            self.note_addresses(&ev.switch_id, ev.fl, ev.mode, ev.forward.as_ref());
            t
        } else {
            self.map.disconnect(&ev.switch_id, ev.fl, ev.mode)
        };
        let cause = Cause::Event {
            forward: ev.forward.map(Box::new),
        };
        debug!(switch = %ev.switch_id, fl = %self.shared.fl_id(ev.fl), up = ev.up, mode = ?ev.mode, transition = ?t, "switch connection changed");
        self.changed(&ev.switch_id, ev.fl, t, cause, &ev.ticket);
    }

    /// A network dump entry: the FL is connected to the switch in that mode (read-only means
    /// its read-write connection, if it had one, is gone: the FL is no longer master). Then the
    /// entry is forwarded only if the FL is the switch's active read-write FL, as OpenKilda's
    /// router does (`SwitchMonitor`): one voice per switch, never a read-only region's.
    pub(super) fn dump_entry(&mut self, ev: SwitchEvent, now_ms: u64) {
        let (sw, fl) = (ev.switch_id.as_str(), ev.fl);
        let entry = ev.forward.as_ref().map(|o| o.payload.clone());
        if ev.mode == Mode::ReadOnly {
            let t = self.map.disconnect(sw, fl, Mode::ReadWrite);
            if t != Transition::Unknown {
                let cause = Cause::Chain {
                    entry: entry.clone(),
                };
                self.changed(sw, fl, t, cause, &ev.ticket);
            }
        }
        let t = self.map.connect(sw, fl, ev.mode, Via::Sync, now_ms);
        self.note_addresses(sw, fl, ev.mode, ev.forward.as_ref());
        self.changed(sw, fl, t, Cause::Chain { entry }, &ev.ticket);
        let Some(out) = ev.forward else { return };
        let c = &self.shared.counters;
        if ev.mode == Mode::ReadWrite && self.map.active(sw) == Some(fl) {
            self.shared.outbox.send(out);
            Counters::inc(&c.sync_chain_messages);
        } else {
            Counters::inc(&c.standby_events_dropped);
            debug!(switch = %sw, fl = %self.shared.fl_id(fl), "dump entry from an FL that is not the switch's active read-write FL: not forwarded");
        }
    }

    /// The switch's view in an FL's event or dump entry (`protocol.switch_events.view_pointers`).
    pub(super) fn view_in(&self, payload: &[u8]) -> Option<serde_json::Value> {
        let text = std::str::from_utf8(payload).ok()?;
        let rules = &self.shared.settings.protocol.switch_events;
        rules.view_pointers.iter().find_map(|p| {
            let raw = protocol::lookup(text, p)?;
            serde_json::from_str::<serde_json::Value>(raw.get())
                .ok()
                .filter(serde_json::Value::is_object)
        })
    }

    /// Keeps the addresses the FL reported with a connection (for availability notices).
    pub(super) fn note_addresses(
        &mut self,
        sw: &str,
        fl: FlIndex,
        mode: Mode,
        msg: Option<&Outgoing>,
    ) {
        let Some(msg) = msg else { return };
        if let Some(a) = self
            .view_in(&msg.payload)
            .and_then(|v| notices::addresses_of(&v))
        {
            self.map.set_addresses(sw, fl, mode, a);
        }
    }

    /// Acts on what a map change meant, in the configured dialect (`crate::dialect::notices`):
    /// - design: the FL's own connection event is forwarded where it tells the controller the
    ///   truth about the switch being managed (it became managed, lost its last read-write
    ///   connection, or a repeat from the active FL); an outage or a complete dump that ends
    ///   the last connection sends the router's own notice;
    /// - openkilda: raw connection events never go on; the switch's first read-write connection
    ///   is a connect notice, its last one gone a disconnect notice (`regionOffline` for an
    ///   outage), and repeats or disconnects of unknown connections say nothing.
    ///
    /// In both, every other connection change — a failover included — is one availability
    /// notice.
    pub(super) fn changed(
        &mut self,
        sw: &str,
        fl: FlIndex,
        t: Transition,
        cause: Cause,
        ticket: &Ticket,
    ) {
        let s = self.shared.clone();
        let c = &s.counters;
        let openkilda = s.settings.protocol.dialect == Dialect::OpenKilda;
        let from_fact = matches!(cause, Cause::Fact);
        let forward = |cause: Cause| {
            if let Cause::Event { forward: Some(out) } = cause {
                s.outbox.send(*out);
                Counters::inc(&c.events_forwarded);
            }
        };
        match t {
            Transition::Unchanged => {
                if !openkilda && self.map.active(sw) == Some(fl) {
                    forward(cause);
                }
                return;
            }
            Transition::Unknown => {
                // A disconnect the map has no connection for: true news only if the switch has
                // no active FL at all (OpenKilda's router drops it).
                if !openkilda && self.map.active(sw).is_none() {
                    forward(cause);
                }
                return;
            }
            _ => {}
        }
        match t {
            Transition::Managed { to } => {
                debug!(switch = %sw, fl = %s.fl_id(to), "switch managed");
                self.lost.remove(sw);
                for set in &mut self.lost_in_outage {
                    set.remove(sw);
                }
                if openkilda {
                    self.connect_notice(sw, &cause);
                } else {
                    forward(cause);
                }
                self.release_waiting(sw, to);
            }
            Transition::FailedOver { from, to } => {
                Counters::inc(&c.failovers);
                let why = match &cause {
                    Cause::Outage { reason } => {
                        format!("FL {} went offline: {reason}", s.fl_id(from))
                    }
                    Cause::Event { .. } => format!("FL {} reported it disconnected", s.fl_id(from)),
                    Cause::Fact => format!(
                        "FL {}'s owner (another instance) reported it disconnected",
                        s.fl_id(from)
                    ),
                    Cause::Chain { .. } => format!(
                        "FL {}'s network dump no longer lists it read-write",
                        s.fl_id(from)
                    ),
                };
                info!(switch = %sw, from = %s.fl_id(from), to = %s.fl_id(to), reason = %why, "switch failed over");
                if !matches!(cause, Cause::Outage { .. }) {
                    // An outage fails all of the FL's pending commands at once (FailPending).
                    if let Some(p) = self.proxies.get(from) {
                        let _ = p.fail_switch.tell(FailSwitch {
                            switch_id: sw.to_string(),
                            reason: format!("failed over to FL {}: {why}", s.fl_id(to)),
                        });
                    }
                }
                self.availability(sw, &cause);
            }
            Transition::Returned { from, to } => {
                Counters::inc(&c.failbacks);
                info!(switch = %sw, from = %s.fl_id(from), to = %s.fl_id(to), "switch returned to its preferred FL");
                self.availability(sw, &cause);
            }
            Transition::Unmanaged { from } => {
                let why = match &cause {
                    Cause::Outage { reason } => {
                        format!(
                            "its last read-write FL {} went offline ({reason})",
                            s.fl_id(from)
                        )
                    }
                    Cause::Event { .. } => format!(
                        "its last read-write FL {} reported it disconnected",
                        s.fl_id(from)
                    ),
                    Cause::Fact => format!(
                        "its last read-write FL {}'s owner (another instance) reported it disconnected",
                        s.fl_id(from)
                    ),
                    Cause::Chain { .. } => format!(
                        "its last read-write FL {} no longer lists it",
                        s.fl_id(from)
                    ),
                };
                info!(switch = %sw, fl = %s.fl_id(from), "switch unmanaged: {why}");
                self.lost.insert(
                    sw.to_string(),
                    Lost {
                        at: Instant::now(),
                        why,
                    },
                );
                if let (Cause::Outage { .. }, Some(set)) =
                    (&cause, self.lost_in_outage.get_mut(from))
                {
                    set.insert(sw.to_string());
                }
                self.unmanaged_notice(sw, from, cause);
            }
            Transition::Availability => self.availability(sw, &cause),
            Transition::Unchanged | Transition::Unknown => {}
        }
        if self.cluster && !from_fact && s.liveness.is_owned(fl) {
            self.fact(sw, fl, ticket);
        }
        if self.leader {
            self.store(sw, ticket);
        }
    }

    /// The payload an FL sent that caused a change (its event, its dump entry).
    pub(super) fn source(cause: &Cause) -> Option<&[u8]> {
        match cause {
            Cause::Event { forward: Some(out) } => Some(&out.payload),
            Cause::Chain { entry: Some(e) } => Some(e),
            _ => None,
        }
    }

    /// The notice's correlation id: the FL message's that caused it, as OpenKilda's router keeps.
    pub(super) fn cause_cid(&self, cause: &Cause) -> Option<String> {
        let payload = Self::source(cause)?;
        let view = MessageView::read(payload, &self.shared.settings.protocol.envelope).ok()?;
        view.correlation().map(str::to_string)
    }

    /// OpenKilda's `SwitchConnectNotification`, sent by the instance that read the FL's message
    /// (in a cluster, the FL's owner; a fact from another instance announces nothing here).
    pub(super) fn connect_notice(&self, sw: &str, cause: &Cause) {
        let s = &self.shared;
        let Some(payload) = Self::source(cause) else {
            return;
        };
        let Some(view) = self.view_in(payload) else {
            // Floodlight's reduced event (no view): OpenKilda's network topology cannot read a
            // connect notice without `speakerData`; the availability notice says what changed
            // (and the next dump entry makes the switch online there).
            warn!(switch = %sw, "switch connected without its view: availability notice instead of a connect notice");
            return self.availability(sw, cause);
        };
        let cid = self.cause_cid(cause);
        let entries = self.entries(sw);
        Counters::inc(&s.counters.availability_notifications);
        s.send_event(
            sw,
            notices::connect(
                &s.settings.protocol.classes,
                cid.as_deref(),
                &view,
                &entries,
            ),
            &[],
        );
    }

    /// The switch lost its last read-write FL (`from`): what the controller is told.
    pub(super) fn unmanaged_notice(&self, sw: &str, from: FlIndex, cause: Cause) {
        let s = self.shared.clone();
        let c = &s.counters;
        let classes = &s.settings.protocol.classes;
        if s.settings.protocol.dialect == Dialect::OpenKilda {
            let region_offline = matches!(cause, Cause::Outage { .. });
            // The FL's event: its reader tells; an outage or a dump: the leader.
            let speaks = match cause {
                Cause::Event { .. } => true,
                Cause::Fact => false,
                _ => self.leader,
            };
            if speaks {
                Counters::inc(&c.unmanaged_notifications);
                let cid = self.cause_cid(&cause);
                let entries = self.entries(sw);
                s.send_event(
                    sw,
                    notices::disconnect(classes, cid.as_deref(), sw, &entries, region_offline),
                    &[],
                );
            }
            return;
        }
        match cause {
            Cause::Event {
                forward: Some(out), ..
            } => {
                s.outbox.send(*out);
                Counters::inc(&c.events_forwarded);
            }
            Cause::Event { .. } => {}
            // Its owner forwarded the FL's own event.
            Cause::Fact => {}
            _ if !self.leader => {}
            Cause::Chain { .. } if self.map.get(sw).is_none() => {
                Counters::inc(&c.switch_offline_notifications);
                s.send_event(sw, notices::switch_offline(classes, sw, s.fl_id(from)), &[]);
            }
            Cause::Outage { .. } | Cause::Chain { .. } => {
                Counters::inc(&c.unmanaged_notifications);
                s.send_event(sw, notices::unmanaged(classes, sw), &[]);
            }
        }
    }

    /// Every connection of the switch, as a notice lists them.
    pub(super) fn entries(&self, sw: &str) -> Vec<notices::AvailabilityEntry<'_>> {
        let s = &self.shared;
        self.map
            .get(sw)
            .map(|x| {
                x.connections()
                    .iter()
                    .map(|c| notices::AvailabilityEntry {
                        fl: s.fl_id(c.fl),
                        read_write: c.mode == Mode::ReadWrite,
                        active: x.active() == Some(c.fl) && c.mode == Mode::ReadWrite,
                        since_ms: c.since_ms,
                        addresses: c.addresses.as_deref(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Publishes the switch's connections (OpenKilda's SwitchAvailabilityUpdateNotification).
    pub(super) fn availability(&self, sw: &str, cause: &Cause) {
        if !self.leader {
            return; // the leader announces it
        }
        let s = &self.shared;
        Counters::inc(&s.counters.availability_notifications);
        let cid = self.cause_cid(cause);
        s.send_event(
            sw,
            notices::availability(
                &s.settings.protocol.classes,
                cid.as_deref(),
                sw,
                &self.entries(sw),
            ),
            &[],
        );
    }

    /// FL `fl`'s dump is known complete: its connections to switches the dump did not list,
    /// learned before the request, are gone; and the switches its last outage left unmanaged
    /// that the dump does not list are reported gone. `requested: None` removes nothing.
    pub(super) fn sync_complete(
        &mut self,
        fl: FlIndex,
        listed: Vec<(String, Mode)>,
        requested: Option<Instant>,
    ) {
        let s = self.shared.clone();
        let Some(requested) = requested else {
            return;
        };
        let before = std::mem::take(&mut self.lost_in_outage[fl]);
        // (OpenKilda's services heard of them at the outage: a disconnect notice each.)
        let design = s.settings.protocol.dialect == Dialect::Design;
        let mut gone: Vec<&String> = before
            .iter()
            .filter(|sw| {
                design && !listed.iter().any(|(r, _)| r == *sw) && self.map.active(sw).is_none()
            })
            .collect();
        gone.sort();
        for sw in gone {
            info!(switch = %sw, fl = %s.fl_id(fl), "switch no longer reported by its FL after its outage");
            Counters::inc(&s.counters.switch_offline_notifications);
            s.send_event(
                sw,
                notices::switch_offline(&s.settings.protocol.classes, sw, s.fl_id(fl)),
                &[],
            );
        }
        let changes = self.map.forget_unlisted(fl, &listed, requested);
        for (sw, t) in changes {
            self.changed(&sw, fl, t, Cause::Chain { entry: None }, &Ticket::none());
        }
    }
}
