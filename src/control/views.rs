//! Typed answers of `show`, `config dump` and `list`, and their text forms.
//! The switch serializes these structs; the client reads them back into the
//! same structs, so both sides agree on every field by construction.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::control::policy::flags_text;
use crate::control::protocol::Via;
use crate::dataplane::{BusyPoll, MirrorRow};
use crate::netns::Cidr;
use crate::switch::{PortPolicy, Settings, VlanMode};
use crate::wire::MacAddr;

/// Link state as `show` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    Up,
    Down,
    /// The switch cannot see the device (a TAP moved into a namespace).
    Unknown,
}

/// One port in `show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowPort {
    pub name: String,
    pub id: u16,
    pub kind: String,
    /// The interface the switch reads.
    pub ifname: String,
    pub link: Link,
    pub mtu: u32,
    /// The endpoint's MAC (inside the namespace, the TAP netdev).
    pub mac: Option<MacAddr>,
    /// The MAC of the interface the switch reads, if it reads one.
    pub switch_mac: Option<MacAddr>,
    pub netns: Option<String>,
    /// For plugged namespaces: how, the interface inside, its addresses.
    pub via: Option<Via>,
    pub inside_ifname: Option<String>,
    #[serde(default)]
    pub ip: Vec<Cidr>,
    /// The switch created the namespace and removes it with the port.
    #[serde(default)]
    pub owns_netns: bool,
    /// For a port the CNI plugin attached: its container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<super::protocol::ContainerRef>,
    pub policy: PortPolicy,
    pub learned: u32,
    /// Set while the port is blocked (loop protection or BPDU guard).
    #[serde(default)]
    pub blocked: Option<crate::dataplane::BlockedRow>,
}

/// "loop (MAC 02:.. vlan 0 from port p1) for 3 s, opens in 27 s".
pub fn blocked_text(b: &crate::dataplane::BlockedRow) -> String {
    let mut out = b.reason.name().to_string();
    if let (Some(m), Some(f)) = (b.mac, &b.from) {
        out.push_str(&format!(
            " (MAC {m} vlan {} flapping from port {f})",
            b.vlan.unwrap_or(0)
        ));
    }
    out.push_str(&format!(" for {} s, ", b.for_s));
    match b.remaining_s {
        Some(r) => out.push_str(&format!("opens in {r} s")),
        None => out.push_str("until port unblock"),
    }
    out
}

/// `show`: the whole switch at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowReport {
    pub name: String,
    pub pid: u32,
    pub uptime_s: u64,
    pub socket: PathBuf,
    pub journal: PathBuf,
    pub settings: Settings,
    pub busy_poll: BusyPoll,
    pub fdb_entries: usize,
    pub fdb_learned: usize,
    pub ports: Vec<ShowPort>,
    pub mirrors: Vec<MirrorRow>,
}

/// A plugged namespace, as `ns list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plug {
    pub ns: String,
    pub via: Via,
    /// The switch port (named after the namespace).
    pub port: String,
    /// The interface inside the namespace.
    pub ifname: String,
    /// The switch-side interface (veth host end), if any.
    pub host_ifname: Option<String>,
    pub ip: Vec<Cidr>,
    pub created_netns: bool,
    /// The port was removed because its device vanished.
    pub port_vanished: bool,
}

/// `status`: who the switch is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub name: String,
    pub pid: u32,
    pub uptime_s: u64,
    pub socket: PathBuf,
    pub ports: usize,
    pub namespaces: usize,
    pub fdb_entries: usize,
    pub settings: Settings,
    pub busy_poll: BusyPoll,
    pub fastpath: crate::dataplane::FastpathStatus,
    pub blocked_ports: Vec<String>,
}

/// How a switch found under the run directory is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchState {
    Running,
    /// Its process is gone and its journal lists what it left:
    /// `l2sw cleanup` removes it.
    Dead,
    /// Its process runs but its control socket does not answer.
    Unreachable,
    /// It stopped cleanly, but its journal keeps its container ports, which
    /// its next start attaches again (`l2sw cleanup` forgets them).
    Stopped,
}

/// One row of `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchListing {
    pub name: String,
    pub state: SwitchState,
    pub pid: Option<u32>,
    pub ports: Option<usize>,
    pub namespaces: Option<usize>,
    pub uptime_s: Option<u64>,
    pub socket: PathBuf,
    /// Things a dead switch left (see its journal).
    #[serde(default)]
    pub leftovers: usize,
    /// Container ports a stopped or dead switch attaches again at its next start.
    #[serde(default)]
    pub containers: usize,
}

/// The parts of `status` that `list` shows.
#[derive(Debug, Clone, Deserialize)]
pub struct StatusSummary {
    pub pid: u32,
    pub uptime_s: u64,
    pub ports: usize,
    pub namespaces: usize,
}

/// "access 10", "trunk 10,20", "native-untagged 10 +20", "trunk all".
pub fn vlan_text(v: &Option<VlanMode>) -> String {
    let trunks = |t: &Option<crate::switch::VlanSet>| match t {
        Some(t) => t.to_string(),
        None => "all".into(),
    };
    match v {
        None => "-".into(),
        Some(VlanMode::Access { tag }) => format!("access {tag}"),
        Some(VlanMode::Trunk { trunks: t }) => format!("trunk {}", trunks(t)),
        Some(VlanMode::NativeUntagged { tag, trunks: t }) => {
            format!("native-untagged {tag} +{}", trunks(t))
        }
        Some(VlanMode::NativeTagged { tag, trunks: t }) => {
            format!("native-tagged {tag} +{}", trunks(t))
        }
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_else(|| "-".into())
}

fn limit(n: u64, unit: &str) -> String {
    if n == 0 {
        "unlimited".into()
    } else {
        format!("{n}{unit}")
    }
}

impl ShowReport {
    /// An indented overview in the manner of `ovs-vsctl show`.
    pub fn render(&self) -> String {
        let s = &self.settings;
        let mut out = format!(
            "switch {} (pid {}), up {} s, control socket {}\n",
            self.name,
            self.pid,
            self.uptime_s,
            self.socket.display()
        );
        out.push_str(&format!(
            "    settings: ageing-time {} s, fdb-max {}, fdb-max-per-port {}, group-fwd-mask {:#06x}, busy-poll {}\n",
            s.ageing_time_s,
            limit(s.fdb_max as u64, ""),
            limit(s.fdb_max_per_port as u64, ""),
            s.group_fwd_mask,
            match self.busy_poll {
                BusyPoll::For(d) => format!("{} µs", d.as_micros()),
                other => other.to_string(),
            }
        ));
        out.push_str(&format!(
            "    fdb: {} entries ({} learned, {} static)\n",
            self.fdb_entries,
            self.fdb_learned,
            self.fdb_entries.saturating_sub(self.fdb_learned)
        ));
        for p in &self.ports {
            out.push_str(&format!("    port {}\n", p.name));
            out.push_str(&format!(
                "        kind: {}, ifname: {}, link: {}, mtu: {}\n",
                p.kind,
                p.ifname,
                match p.link {
                    Link::Up => "up",
                    Link::Down => "down",
                    Link::Unknown => "-",
                },
                p.mtu
            ));
            if let Some(ns) = &p.netns {
                let mut line = format!("        namespace: {ns}");
                if let Some(via) = p.via {
                    line.push_str(&format!(
                        " (via {}, {}",
                        match via {
                            Via::Veth => "veth",
                            Via::Tap => "tap",
                        },
                        opt(&p.inside_ifname)
                    ));
                    for ip in &p.ip {
                        line.push_str(&format!(" {ip}"));
                    }
                    line.push(')');
                }
                if p.owns_netns {
                    line.push_str(", created by the switch");
                }
                out.push_str(&line);
                out.push('\n');
            }
            if let Some(c) = &p.container {
                out.push_str(&format!(
                    "        container: {} (interface {} in {}, network {})\n",
                    c.id,
                    c.ifname,
                    c.netns.display(),
                    c.network
                ));
            }
            out.push_str(&format!(
                "        mac: {}, switch-side mac: {}\n",
                opt(&p.mac),
                opt(&p.switch_mac)
            ));
            out.push_str(&format!(
                "        vlan: {}, flags: {}\n",
                vlan_text(&p.policy.vlan),
                flags_text(&p.policy)
            ));
            if let Some(b) = &p.blocked {
                out.push_str(&format!("        BLOCKED: {}\n", blocked_text(b)));
            }
            out.push_str(&format!(
                "        learned: {} (limit: {})\n",
                p.learned,
                match p.policy.max_learned {
                    None => "switch default".to_string(),
                    Some(n) => limit(n as u64, ""),
                }
            ));
        }
        for m in &self.mirrors {
            out.push_str(&format!(
                "    mirror {}\n        to: {}, src: {}, dst: {}\n",
                m.name,
                m.to,
                if m.src.is_empty() {
                    "-".into()
                } else {
                    m.src.join(",")
                },
                if m.dst.is_empty() {
                    "-".into()
                } else {
                    m.dst.join(",")
                },
            ));
        }
        out
    }
}

/// `list`: one aligned row per switch.
pub fn render_list(rows: &[SwitchListing]) -> String {
    let mut t = crate::control::table::Table::new(&[
        "NAME",
        "STATE",
        "PID",
        "PORTS",
        "NAMESPACES",
        "UPTIME_S",
        "SOCKET",
    ]);
    for r in rows {
        t.row(vec![
            r.name.clone(),
            match r.state {
                SwitchState::Running => "running".into(),
                SwitchState::Unreachable => "unreachable".into(),
                SwitchState::Dead => format!("dead ({} left; l2sw cleanup)", r.leftovers),
                SwitchState::Stopped => format!(
                    "stopped ({} container port{} to attach again at start)",
                    r.containers,
                    if r.containers == 1 { "" } else { "s" }
                ),
            },
            opt(&r.pid),
            opt(&r.ports),
            opt(&r.namespaces),
            opt(&r.uptime_s),
            r.socket.display().to_string(),
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_vlans_read_like_the_commands_that_set_them() {
        let p = PortPolicy {
            learning: false,
            isolated: true,
            group_fwd_mask: 0x4000,
            ..PortPolicy::default()
        };
        assert_eq!(flags_text(&p), "no-learning,isolated,group-fwd-mask=0x4000");
        assert_eq!(flags_text(&PortPolicy::default()), "-");
        assert_eq!(vlan_text(&Some(VlanMode::Access { tag: 10 })), "access 10");
        assert_eq!(
            vlan_text(&Some(VlanMode::Trunk { trunks: None })),
            "trunk all"
        );
    }
}
