//! Switch events as `l2sw monitor` shows them: FDB changes (learned, moved,
//! aged, flushed, refused because full), ports coming and going, links going
//! up and down, settings changed. The dataplane makes them only while a
//! monitor listens (see `dataplane::monitor`).

use serde::{Deserialize, Serialize};

use crate::switch::{PortPolicy, Settings};
use crate::wire::MacAddr;

/// Which limit refused to learn a MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FullLimit {
    /// The switch-wide `fdb-max`.
    Switch,
    /// The port's learned-entry limit.
    Port,
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SwitchEvent {
    /// A MAC was learned on a port.
    Learned {
        mac: MacAddr,
        vlan: u16,
        port: String,
    },
    /// A learned MAC appeared on another port.
    Moved {
        mac: MacAddr,
        vlan: u16,
        from: String,
        to: String,
    },
    /// A learned entry expired.
    Aged {
        mac: MacAddr,
        vlan: u16,
        port: String,
    },
    /// `fdb flush`: how many entries went.
    Flushed {
        port: Option<String>,
        include_static: bool,
        entries: usize,
    },
    /// `fdb add`.
    StaticAdded {
        mac: MacAddr,
        vlan: u16,
        port: String,
    },
    /// `fdb del`.
    Deleted {
        mac: MacAddr,
        vlan: u16,
    },
    /// A MAC was not learned because a limit is reached (said once per MAC
    /// in a row, not once per frame).
    FdbFull {
        mac: MacAddr,
        vlan: u16,
        port: String,
        limit: FullLimit,
    },
    PortAdded {
        port: String,
        kind: String,
        ifname: String,
    },
    PortRemoved {
        port: String,
    },
    /// The port's device went away; the switch removed the port.
    PortVanished {
        port: String,
        reason: String,
    },
    LinkUp {
        port: String,
    },
    LinkDown {
        port: String,
    },
    /// `set`: the switch-wide settings after the change.
    SettingsChanged {
        settings: Settings,
    },
    /// `port set` / `port vlan`: the port's policy after the change.
    PortChanged {
        port: String,
        policy: PortPolicy,
    },
    /// A MAC moved between ports more often within a second than the flap
    /// threshold allows (reported once per MAC and second).
    MacFlap {
        mac: MacAddr,
        vlan: u16,
        /// The port it moved from and the port it moved to (the later one).
        from: String,
        to: String,
        moves: u32,
    },
    /// A port was blocked: it takes and gets no frames until unblocked.
    PortBlocked {
        port: String,
        /// "loop" or "bpdu_guard".
        reason: String,
        /// For a loop: the flapping MAC and the port it moved from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mac: Option<MacAddr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Seconds until it opens again by itself; `None`: only `port unblock` opens it.
        hold_s: Option<u64>,
    },
    /// A blocked port is open again: "operator" (`port unblock`) or "hold_expired".
    PortUnblocked {
        port: String,
        by: String,
    },
    /// The reader was too slow: this many events were not delivered.
    Missed {
        count: u64,
    },
}

/// An event and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Wall-clock time, ns since the Unix epoch.
    pub ts_ns: u64,
    #[serde(flatten)]
    pub event: SwitchEvent,
}

impl EventRecord {
    pub fn new(event: SwitchEvent) -> EventRecord {
        EventRecord {
            ts_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            event,
        }
    }

    /// One line for people: UTC time, then what happened, in the words of
    /// `bridge monitor fdb` where it has them.
    pub fn render(&self) -> String {
        let secs = self.ts_ns / 1_000_000_000;
        let ms = (self.ts_ns / 1_000_000) % 1000;
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let what = match &self.event {
            SwitchEvent::Learned { mac, vlan, port } => {
                format!("learned {mac} vlan {vlan} port {port}")
            }
            SwitchEvent::Moved {
                mac,
                vlan,
                from,
                to,
            } => format!("moved {mac} vlan {vlan} port {from} -> {to}"),
            SwitchEvent::Aged { mac, vlan, port } => {
                format!("aged {mac} vlan {vlan} port {port}")
            }
            SwitchEvent::Flushed {
                port,
                include_static,
                entries,
            } => format!(
                "flushed {entries} entries{}{}",
                port.as_ref()
                    .map(|p| format!(" of port {p}"))
                    .unwrap_or_default(),
                if *include_static { " (static too)" } else { "" }
            ),
            SwitchEvent::StaticAdded { mac, vlan, port } => {
                format!("static {mac} vlan {vlan} port {port}")
            }
            SwitchEvent::Deleted { mac, vlan } => format!("deleted {mac} vlan {vlan}"),
            SwitchEvent::FdbFull {
                mac,
                vlan,
                port,
                limit,
            } => format!(
                "fdb-full {mac} vlan {vlan} port {port}: not learned ({} limit reached)",
                match limit {
                    FullLimit::Switch => "fdb-max",
                    FullLimit::Port => "port",
                }
            ),
            SwitchEvent::PortAdded { port, kind, ifname } => {
                format!("port-added {port} ({kind} {ifname})")
            }
            SwitchEvent::PortRemoved { port } => format!("port-removed {port}"),
            SwitchEvent::PortVanished { port, reason } => {
                format!("port-vanished {port}: {reason}")
            }
            SwitchEvent::LinkUp { port } => format!("link-up {port}"),
            SwitchEvent::LinkDown { port } => format!("link-down {port}"),
            SwitchEvent::SettingsChanged { settings: s } => format!(
                "settings ageing-time {} fdb-max {} fdb-max-per-port {} group-fwd-mask {:#06x}",
                s.ageing_time_s, s.fdb_max, s.fdb_max_per_port, s.group_fwd_mask
            ),
            SwitchEvent::PortChanged { port, .. } => format!("port-changed {port}"),
            SwitchEvent::MacFlap {
                mac,
                vlan,
                from,
                to,
                moves,
            } => {
                format!("mac-flap {mac} vlan {vlan} port {from} -> {to} ({moves} moves within 1 s)")
            }
            SwitchEvent::PortBlocked {
                port,
                reason,
                mac,
                from,
                hold_s,
            } => format!(
                "port-blocked {port}: {reason}{}{}",
                match (mac, from) {
                    (Some(m), Some(f)) => format!(" (MAC {m} flapping from port {f})"),
                    _ => String::new(),
                },
                match hold_s {
                    Some(s) => format!(", hold {s} s"),
                    None => ", until port unblock".into(),
                }
            ),
            SwitchEvent::PortUnblocked { port, by } => format!("port-unblocked {port} ({by})"),
            SwitchEvent::Missed { count } => {
                format!("missed {count} events: the reader was too slow")
            }
        };
        format!("{h:02}:{m:02}:{s:02}.{ms:03} {what}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_their_name_and_render_as_one_line() {
        let r = EventRecord {
            ts_ns: 3_723_004_000_000,
            event: SwitchEvent::Moved {
                mac: "02:00:00:00:00:01".parse().unwrap(),
                vlan: 0,
                from: "red".into(),
                to: "blue".into(),
            },
        };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains(r#""event":"moved""#), "{j}");
        assert_eq!(serde_json::from_str::<EventRecord>(&j).unwrap(), r);
        assert_eq!(
            r.render(),
            "01:02:03.004 moved 02:00:00:00:00:01 vlan 0 port red -> blue"
        );
    }
}
