//! Text renderings of control results for people: aligned tables. The
//! `--json` forms print the result as the switch sent it.

use crate::control::answers::{EvpnView, PeerView, PortListRow, VxlanView};
use crate::control::protocol::{ContainerRef, Via};
use crate::control::table::Table;
use crate::control::views::{Plug, StatusReport};
use crate::dataplane::{FdbRow, FlowRow, LatencyRow, MirrorRow, StatsSnapshot};
use crate::observe::records::TraceReport;
use crate::switch::{DropReason, EntryKind, Settings};

/// A socket port's peer: `up`/`down`, then what was negotiated.
fn peer_text(p: &Option<PeerView>) -> String {
    let Some(p) = p else {
        return "-".into();
    };
    let mut t = if p.connected { "up" } else { "down" }.to_string();
    if !p.negotiated.is_empty() {
        t.push(' ');
        t.push_str(&p.negotiated.join(","));
    }
    // Frames that waited for the peer's buffers, and of those lost.
    if let Some(h) = p.held.filter(|h| h.queued > 0) {
        t.push_str(&format!(" held={}", h.queued));
        if h.lost > 0 {
            t.push_str(&format!(",lost={}", h.lost));
        }
    }
    t
}

/// `port list`
pub fn ports(rows: &[PortListRow]) -> String {
    let mut t = Table::new(&[
        "NAME",
        "KIND",
        "IFNAME",
        "IFINDEX",
        "MTU",
        "MAC",
        "SWITCH_MAC",
        "NETNS",
        "CONTAINER",
        "LEARNED",
        "LIMIT",
        "VLAN",
        "FLAGS",
        "CAPABILITIES",
        "PEER",
        "STATE",
    ]);
    let mut impaired = Vec::new();
    let mut blocked = Vec::new();
    for p in rows {
        if let Some(b) = &p.blocked {
            blocked.push(format!(
                "{}: {}",
                p.name,
                crate::control::views::blocked_text(b)
            ));
        }
        if let Some(row) = &p.impair {
            impaired.push(format!("{}: {}", p.name, impair_text(row)));
        }
        t.row(vec![
            p.name.clone(),
            p.kind.clone(),
            p.ifname.clone(),
            opt(&p.ifindex),
            p.mtu.to_string(),
            opt(&p.mac),
            opt(&p.switch_mac),
            opt(&p.netns),
            container_text(&p.container),
            p.learned.to_string(),
            opt(&p.max_learned),
            crate::control::views::vlan_text(&p.policy.vlan),
            crate::control::policy::flags_text(&p.policy),
            list(&p.capabilities),
            peer_text(&p.peer),
            if p.blocked.is_some() {
                "BLOCKED"
            } else {
                "forwarding"
            }
            .into(),
        ]);
    }
    let mut out = t.render();
    if !blocked.is_empty() {
        out.push_str("\nblocked ports (l2sw port unblock PORT reopens one):\n");
        for l in blocked {
            out.push_str(&format!("  {l}\n"));
        }
    }
    for p in rows {
        if let Some(x) = &p.vxlan {
            out.push_str(&vxlan_text(&p.name, p.mtu, x));
        }
    }
    if !impaired.is_empty() {
        out.push_str("\nimpaired links:\n");
        for l in impaired {
            out.push_str(&format!("  {l}\n"));
        }
    }
    out
}

/// A container port's container as `podman ps` shows ids, with its interface.
fn container_text(c: &Option<ContainerRef>) -> String {
    match c {
        Some(c) => format!("{}/{}", &c.id[..c.id.len().min(12)], c.ifname),
        None => "-".into(),
    }
}

/// The lines under `port list` for one VXLAN port: endpoint, MTUs, flood list.
fn vxlan_text(name: &str, mtu: u32, x: &VxlanView) -> String {
    let flood: Vec<String> = x
        .flood
        .iter()
        .map(|m| format!("{} ({})", m.vtep, list(&m.origin)))
        .collect();
    let netns = match &x.netns {
        Some(n) => format!(" in netns {n}"),
        None => String::new(),
    };
    let ports: Vec<String> = x.source_ports.iter().map(u16::to_string).collect();
    format!(
        "\nvxlan {name}: vni {} local {}:{}{netns}, underlay {} (mtu {}), inner mtu {mtu}, ttl {}, df {}, source ports {}\n  flood list: {}\n",
        x.vni,
        x.local,
        x.dstport,
        opt(&x.underlay),
        opt(&x.underlay_mtu),
        x.ttl,
        if x.df { "on" } else { "off" },
        list(&ports),
        if flood.is_empty() {
            "(empty: floods reach no remote VTEP)".to_string()
        } else {
            flood.join(", ")
        },
    )
}

/// "delay 10ms loss 1% (seed 42; egress: queued 3, lost 12, ...)" for a
/// port's impairment.
fn impair_text(row: &crate::impair::ImpairRow) -> String {
    let mut out = format!("{} (seed {})", row.spec, row.seed);
    for (dir, st) in [("egress", &row.egress), ("ingress", &row.ingress)] {
        if let Some(st) = st {
            out.push_str(&format!(
                "; {dir}: queued {}, sent {}, lost {}, limit drops {}, duplicated {}, reordered {}, corrupted {}",
                st.queued, st.released, st.lost, st.limit_drops, st.duplicated, st.reordered, st.corrupted
            ));
        }
    }
    out
}

/// `mirror list`
pub fn mirrors(rows: &[MirrorRow]) -> String {
    let mut t = Table::new(&["NAME", "TO", "SRC", "DST"]);
    for m in rows {
        t.row(vec![
            m.name.clone(),
            m.to.clone(),
            list(&m.src),
            list(&m.dst),
        ]);
    }
    t.render()
}

/// Names joined by commas, or `-`.
fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_else(|| "-".into())
}

/// `evpn show`: the session line, then one row per route, advertised
/// (`local`) and imported (`remote`), like `gobgp global rib -a evpn`.
pub fn evpn(v: &EvpnView) -> String {
    let mut out = format!(
        "gobgpd {}{}  asn {}  router-id {}  {}\n",
        v.gobgp,
        v.netns
            .as_ref()
            .map(|n| format!(" (netns {n})"))
            .unwrap_or_default(),
        v.asn,
        opt(&v.router_id),
        if v.connected {
            "connected".to_string()
        } else {
            format!("not connected: {}", opt(&v.error))
        }
    );
    let mut t = Table::new(&["ORIGIN", "TYPE", "VNI", "MAC", "VTEP", "PORT", "SEQ"]);
    for (origin, routes) in [("local", &v.advertised), ("remote", &v.imported)] {
        for r in routes {
            t.row(vec![
                origin.to_string(),
                r.route_type.to_string(),
                r.vni.to_string(),
                opt(&r.mac),
                r.vtep.to_string(),
                opt(&r.port),
                r.seq.to_string(),
            ]);
        }
    }
    out.push_str(&t.render());
    out
}

/// `fdb show`
pub fn fdb(rows: &[FdbRow]) -> String {
    let mut t = Table::new(&["MAC", "VLAN", "PORT", "TYPE", "AGE_S", "DST"]);
    for e in rows {
        t.row(vec![
            e.mac.to_string(),
            e.vlan.to_string(),
            e.port.clone(),
            match e.kind {
                EntryKind::Learned => "learned",
                EntryKind::Static => "static",
                EntryKind::Evpn => "evpn",
            }
            .into(),
            e.age_s.to_string(),
            // `bridge fdb show`'s "dst IP" for entries behind a VTEP.
            e.dst
                .map(|d| format!("dst {d}"))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    t.render()
}

/// `stats`: per-port traffic, then every drop reason with per-port counts.
pub fn stats(v: &StatsSnapshot) -> String {
    let mut out = String::new();
    let mut t = Table::new(&[
        "PORT",
        "RX_FRAMES",
        "RX_BYTES",
        "TX_FRAMES",
        "TX_BYTES",
        "DROPS",
    ]);
    let row = |name: &str, c: &crate::observe::PortCounters| {
        vec![
            name.to_string(),
            c.rx_frames.to_string(),
            c.rx_bytes.to_string(),
            c.tx_frames.to_string(),
            c.tx_bytes.to_string(),
            c.drops.total().to_string(),
        ]
    };
    for p in &v.ports {
        t.row(row(&p.name, &p.counters));
    }
    let tot = &v.totals;
    t.row(row("(total)", &tot.counters));
    out.push_str(&t.render());

    out.push_str("\ndrops by reason:\n");
    let mut t = Table::new(&["REASON", "COUNT", "MEANING"]);
    for r in DropReason::ALL {
        t.row(vec![
            r.name().to_string(),
            tot.counters.drops.get(*r).to_string(),
            r.help().to_string(),
        ]);
    }
    out.push_str(&t.render());

    let f = &tot.fdb;
    out.push_str(&format!(
        "\nfdb: {} entries ({} learned); learned {} moved {} aged {} refused (full) {} refused (port limit) {} static conflicts {}\n",
        tot.fdb_entries,
        tot.fdb_learned,
        f.learned,
        f.moved,
        f.aged,
        f.refused_full,
        f.refused_port_limit,
        f.static_conflicts,
    ));
    if !v.removed_ports.is_empty() {
        out.push_str("\nports removed by the switch:\n");
        let mut t = Table::new(&["PORT", "AT_S", "REASON"]);
        for r in &v.removed_ports {
            t.row(vec![r.name.clone(), r.at_s.to_string(), r.reason.clone()]);
        }
        out.push_str(&t.render());
    }
    out
}

/// `get`: the switch-wide settings.
pub fn settings(v: &Settings) -> String {
    let mut t = Table::new(&["SETTING", "VALUE"]);
    t.row(vec!["ageing-time".into(), v.ageing_time_s.to_string()]);
    t.row(vec!["fdb-max".into(), v.fdb_max.to_string()]);
    t.row(vec![
        "fdb-max-per-port".into(),
        v.fdb_max_per_port.to_string(),
    ]);
    t.row(vec![
        "group-fwd-mask".into(),
        format!("{:#06x}", v.group_fwd_mask),
    ]);
    t.row(vec!["loop-protect".into(), v.loop_protect.name().into()]);
    t.row(vec!["flap-threshold".into(), v.flap_threshold.to_string()]);
    t.row(vec![
        "loop-hold".into(),
        match v.loop_hold_s {
            0 => "0 (until port unblock)".into(),
            n => format!("{n}s"),
        },
    ]);
    t.render()
}

/// `ns list`
pub fn namespaces(rows: &[Plug]) -> String {
    let mut t = Table::new(&["NETNS", "VIA", "PORT", "IFNAME", "ADDRESSES", "CREATED"]);
    for n in rows {
        let ip: Vec<String> = n.ip.iter().map(|c| c.to_string()).collect();
        t.row(vec![
            n.ns.clone(),
            match n.via {
                Via::Veth => "veth",
                Via::Tap => "tap",
            }
            .into(),
            n.port.clone(),
            n.ifname.clone(),
            list(&ip),
            if n.created_netns { "yes" } else { "no" }.into(),
        ]);
    }
    t.render()
}

/// `latency`: one row per histogram, microseconds.
pub fn latency(rows: &[LatencyRow]) -> String {
    let mut t = Table::new(&[
        "SCOPE", "FROM", "TO", "COUNT", "MIN", "P50", "P90", "P99", "P99.9", "P99.99", "MAX",
    ]);
    let us = |x: f64| format!("{x:.1}");
    for r in rows {
        let m = &r.summary;
        t.row(vec![
            r.scope.clone(),
            opt(&r.ingress),
            r.egress.clone(),
            m.count.to_string(),
            us(m.min_us),
            us(m.p50_us),
            us(m.p90_us),
            us(m.p99_us),
            us(m.p999_us),
            us(m.p9999_us),
            us(m.max_us),
        ]);
    }
    let mut out = t.render();
    out.push_str("(residence time in the switch, µs: kernel receive stamp to send return)\n");
    out
}

/// `latency --hgrm`: each histogram's percentile distribution, headed by a
/// comment line naming it.
pub fn latency_hgrm(rows: &[LatencyRow]) -> String {
    let mut out = String::new();
    for r in rows {
        match &r.ingress {
            Some(i) => out.push_str(&format!("# pair {i} -> {}\n", r.egress)),
            None => out.push_str(&format!("# port {}\n", r.egress)),
        }
        out.push_str(&r.histogram.hgrm());
    }
    out
}

/// `trace`
pub fn trace(r: &TraceReport) -> String {
    r.render()
}

/// `status`
pub fn status(v: &StatusReport) -> String {
    let mut out = format!(
        "switch {} (pid {}): up {} s, {} ports, {} namespaces plugged, {} FDB entries\ncontrol socket {}\n",
        v.name,
        v.pid,
        v.uptime_s,
        v.ports,
        v.namespaces,
        v.fdb_entries,
        v.socket.display(),
    );
    let f = &v.fastpath;
    if f.enabled {
        out.push_str(&format!(
            "fast path on: {} ports attached, {} entries\n",
            f.ports, f.entries
        ));
    } else {
        out.push_str(&format!("fast path {}\n", opt(&f.reason)));
    }
    let st = &v.settings;
    out.push_str(&format!(
        "loop protection {} (flap threshold {} moves/s, hold {} s)\n",
        st.loop_protect.name(),
        st.flap_threshold,
        st.loop_hold_s
    ));
    if !v.blocked_ports.is_empty() {
        out.push_str(&format!("BLOCKED ports: {}\n", v.blocked_ports.join(", ")));
    }
    out
}

/// `fastpath show`: one row per entry the kernel carries.
pub fn fastpath(rows: &[FlowRow]) -> String {
    let mut t = Table::new(&[
        "IN",
        "OUT",
        "VLAN",
        "SRC",
        "DST",
        "TAG OUT",
        "REDIRECT",
        "PACKETS",
        "BYTES",
        "LAST SEEN",
    ]);
    for r in rows {
        let vlan = match (r.vlan, r.tpid) {
            (None, _) => "-".to_string(),
            (Some(vid), Some(0x88a8)) => format!("{vid}(ad)"),
            (Some(vid), _) => vid.to_string(),
        };
        let seen = match r.last_seen_s {
            Some(x) => format!("{x:.1} s"),
            None => "never".into(),
        };
        // What the kernel does to the outer tag on the way.
        let tag_out = match r.vlan_edit.as_str() {
            "pop" => "pop".to_string(),
            e @ ("push" | "retag") => format!("{e} {}", opt(&r.egress_vlan)),
            _ => "as in".to_string(),
        };
        t.row(vec![
            r.ingress.clone(),
            r.egress.clone(),
            vlan,
            r.src.to_string(),
            r.dst.to_string(),
            tag_out,
            r.redirect.clone(),
            r.packets.to_string(),
            r.bytes.to_string(),
            seen,
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_right_align_numbers() {
        let mut t = Table::new(&["NAME", "N"]);
        t.row(vec!["a".into(), "5".into()]);
        t.row(vec!["longer".into(), "123".into()]);
        assert_eq!(t.render(), "NAME      N\na         5\nlonger  123\n");
    }

    #[test]
    fn fdb_renders_every_entry() {
        let v: Vec<FdbRow> = serde_json::from_value(json!([
            {"mac":"02:00:00:00:00:01","vlan":0,"port":"red","type":"learned","age_s":3},
            {"mac":"02:00:00:00:00:09","vlan":0,"port":"veth-x","type":"static","age_s":0}
        ]))
        .unwrap();
        let out = fdb(&v);
        assert!(
            out.contains("02:00:00:00:00:01     0  red     learned      3"),
            "{out}"
        );
        assert_eq!(out.lines().count(), 3);
        let remote: Vec<FdbRow> = serde_json::from_value(json!([
            {"mac":"02:00:00:00:00:07","vlan":0,"port":"vx100","type":"static","age_s":0,"dst":"10.201.0.2"}
        ]))
        .unwrap();
        assert!(
            fdb(&remote).contains("vx100  static      0  dst 10.201.0.2"),
            "{}",
            fdb(&remote)
        );
    }

    #[test]
    fn port_flags_show_what_differs_from_the_defaults() {
        let row = |name: &str, policy: serde_json::Value| {
            json!({"name": name, "id": 1, "kind": "iface", "ifname": name, "ifindex": 7,
                "mtu": 1500, "mac": null, "switch_mac": null, "netns": null, "container": null,
                "learned": 0, "max_learned": null, "policy": policy, "capabilities": [],
                "blocked": null})
        };
        let defaults = json!({"learning": true, "flood": true, "mcast_flood": true,
            "bcast_flood": true, "isolated": false, "hairpin": false, "gro": true,
            "group_fwd_mask": 0, "vlan": null});
        let mut no_gro = defaults.clone();
        no_gro["gro"] = json!(false);
        let mut several = no_gro.clone();
        several["learning"] = json!(false);
        several["hairpin"] = json!(true);
        let rows: Vec<PortListRow> = serde_json::from_value(json!([
            row("plain", defaults),
            row("nogro", no_gro),
            row("several", several),
        ]))
        .unwrap();
        let out = ports(&rows);
        let col = out
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .position(|h| h == "FLAGS")
            .unwrap();
        let flags = |name: &str| {
            let line = out
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no row {name}:\n{out}"));
            line.split_whitespace().nth(col).unwrap().to_string()
        };
        assert_eq!(flags("plain"), "-", "{out}");
        assert_eq!(flags("nogro"), "no-gro", "{out}");
        assert_eq!(flags("several"), "no-learning,no-gro,hairpin", "{out}");
    }

    #[test]
    fn stats_lists_every_drop_reason() {
        let mut totals = crate::observe::PortCounters::default();
        totals.drops.add(DropReason::SamePort, 4);
        let v = StatsSnapshot {
            uptime_s: 1,
            settings: Settings::default(),
            ports: Vec::new(),
            totals: crate::dataplane::SwitchTotals {
                fdb_entries: 0,
                fdb_learned: 0,
                fdb: Default::default(),
                counters: totals,
            },
            removed_ports: Vec::new(),
            protect: Default::default(),
        };
        let out = stats(&v);
        for r in DropReason::ALL {
            assert!(out.contains(r.name()), "{}", r.name());
        }
        assert!(
            out.lines()
                .any(|l| l.starts_with("same_port") && l.split_whitespace().nth(1) == Some("4")),
            "{out}"
        );
    }
}
