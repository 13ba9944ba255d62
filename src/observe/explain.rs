//! Explaining a plan: from the frame and the `Plan` that `Switch::plan`
//! filled, a step-by-step account of ingress checks, VLAN classification,
//! learning, lookup and every port's part (included with the shape it
//! leaves in, or excluded with the reason). Nothing is decided here: the
//! report is a rendering of the same value the dataplane executes, for
//! synthetic frames (`trace`) and real ones (`trace --live`).

use crate::observe::records::{EgressChoice, EgressShape, FrameSummary, TraceReport, TraceStep};
use crate::switch::{
    Action, Cause, Decision, DropReason, Exclusion, LearnOutcome, Lookup, MirrorCause, Plan,
    PortId, Shape, Switch, Timestamp, VlanMode,
};
use crate::wire::{EtherType, EthernetFrame, MacAddr};

/// Names of the IEEE reserved group addresses people meet.
fn reserved_name(n: u8) -> &'static str {
    match n {
        0x00 => "STP/RSTP bridge group",
        0x01 => "802.3x PAUSE",
        0x02 => "slow protocols (LACP, OAM)",
        0x03 => "802.1X PAE",
        0x0e => "LLDP",
        _ => "IEEE 802.1 reserved",
    }
}

fn ethertype_name(et: EtherType) -> String {
    let name = match et {
        EtherType::Ipv4 => Some("ipv4"),
        EtherType::Arp => Some("arp"),
        EtherType::Ipv6 => Some("ipv6"),
        EtherType::Lldp => Some("lldp"),
        EtherType::MacControl => Some("mac control"),
        EtherType::Vlan => Some("802.1Q"),
        EtherType::QinQ => Some("802.1ad"),
        EtherType::Unknown(_) => None,
    };
    match name {
        Some(n) => format!("{:#06x} ({n})", et.to_u16()),
        None => format!("{:#06x}", et.to_u16()),
    }
}

pub fn summarize(frame: &[u8]) -> FrameSummary {
    match EthernetFrame::new_checked(frame) {
        Ok(f) => FrameSummary {
            len: frame.len(),
            src: Some(f.src().to_string()),
            dst: Some(f.dst().to_string()),
            vlan: f
                .vlan()
                .map(|t| format!("{:#06x} vid {} pcp {}", t.tpid, t.vid, t.pcp)),
            ethertype: Some(ethertype_name(f.ethertype())),
        },
        Err(_) => FrameSummary {
            len: frame.len(),
            src: None,
            dst: None,
            vlan: None,
            ethertype: None,
        },
    }
}

/// A one-line verdict, also the comment of capture records.
pub fn verdict(d: &Decision, name: &dyn Fn(PortId) -> String) -> String {
    match d.action {
        Action::Forward { port } => format!("forward: known unicast -> {}", name(port)),
        Action::Flood { kind } => format!("flood: {}", kind.name()),
        Action::Drop { reason } => format!("drop: {}", reason.name()),
    }
}

fn learn_text(
    l: LearnOutcome,
    ingress: &str,
    synthetic: bool,
    name: &dyn Fn(PortId) -> String,
    sw: &Switch,
) -> String {
    let would = if synthetic { "would be " } else { "" };
    match l {
        LearnOutcome::New => format!("source {would}learned on {ingress} (new entry)"),
        LearnOutcome::Refreshed => format!("source known on {ingress}; age {would}reset"),
        LearnOutcome::Moved { from } => {
            format!("source {would}moved from {} to {ingress}", name(from))
        }
        LearnOutcome::RefusedFull => format!(
            "not learned: the FDB holds its limit of {} learned entries (fdb-max)",
            sw.settings().fdb_max
        ),
        LearnOutcome::RefusedPortLimit => {
            format!("not learned: port {ingress} is at its learned-entry limit")
        }
        LearnOutcome::Static { port } => {
            format!("source is a static entry on {}; unchanged", name(port))
        }
        LearnOutcome::NotLearned => "not learned".into(),
    }
}

/// How a port's VLAN mode reads in a trace.
fn mode_text(mode: Option<&VlanMode>) -> String {
    let trunks = |t: &Option<crate::switch::VlanSet>| match t {
        Some(t) => t.to_string(),
        None => "all".to_string(),
    };
    match mode {
        None => "no VLAN mode: a trunk of all VLANs".into(),
        Some(VlanMode::Access { tag }) => format!("access {tag}"),
        Some(VlanMode::Trunk { trunks: t }) => format!("trunk {}", trunks(t)),
        Some(VlanMode::NativeUntagged { tag, trunks: t }) => {
            format!("native-untagged {tag}, trunks {}", trunks(t))
        }
        Some(VlanMode::NativeTagged { tag, trunks: t }) => {
            format!("native-tagged {tag}, trunks {}", trunks(t))
        }
    }
}

/// The VLAN part of the ingress step.
fn vlan_text(sw: &Switch, plan: &Plan) -> String {
    if !plan.vlan_aware {
        return format!(
            "VLAN {} (VLAN-unaware: tags pass untouched)",
            plan.decision.vlan
        );
    }
    let mode = mode_text(sw.port_policy(plan.ingress).and_then(|p| p.vlan.as_ref()));
    let tag = match plan.outer_tag {
        Some(t) if t.vid == 0 => format!("priority-tagged (pcp {})", t.pcp),
        Some(t) => format!("tagged vid {}", t.vid),
        None => "untagged".into(),
    };
    match plan.drop_reason() {
        Some(r @ (DropReason::VlanTaggedOnAccess | DropReason::VlanNotCarried)) => {
            format!("{tag} on a VLAN-aware port ({mode}): refused, {}", r.help())
        }
        _ => format!(
            "{tag} on a VLAN-aware port ({mode}): VLAN {}",
            plan.decision.vlan
        ),
    }
}

pub fn shape_record(s: Shape) -> EgressShape {
    match s {
        Shape::AsReceived => EgressShape::Received,
        Shape::Untagged => EgressShape::Untagged,
        Shape::Tagged { tag, pushed } => EgressShape::Tagged {
            tpid: tag.tpid,
            vid: tag.vid,
            pcp: tag.pcp,
            pushed,
        },
    }
}

/// Every port's row: included with why and how, or excluded with why.
fn egress_rows(sw: &Switch, name: &dyn Fn(PortId) -> String, plan: &Plan) -> Vec<EgressChoice> {
    let d = &plan.decision;
    sw.ports()
        .map(|p| {
            let row = |included, reason: String, cause: &str| EgressChoice {
                port: name(p),
                included,
                reason,
                cause: cause.to_string(),
                mirror: None,
                shape: None,
                io: None,
            };
            if let Some(e) = plan.egress().iter().find(|e| e.port == p) {
                let mut r = match (e.cause, d.action) {
                    (Cause::Mirror { mirror, cause }, _) => {
                        let m = sw
                            .mirrors()
                            .get(mirror as usize)
                            .map(|m| m.name.clone())
                            .unwrap_or_default();
                        let what = match cause {
                            MirrorCause::Received => {
                                format!("what {} receives", name(plan.ingress))
                            }
                            MirrorCause::Sent { port } => format!("what {} sends", name(port)),
                        };
                        let mut r = row(true, format!("mirror {m}: a copy of {what}"), "mirror");
                        r.mirror = Some(m);
                        r
                    }
                    (Cause::Switched, Action::Flood { kind }) => {
                        row(true, format!("flood: {}", kind.name()), "flood")
                    }
                    (Cause::Switched, _) if p == plan.ingress => row(
                        true,
                        "the destination was learned here (hairpin on)".into(),
                        "forward",
                    ),
                    (Cause::Switched, _) => {
                        row(true, "the destination was learned here".into(), "forward")
                    }
                };
                r.shape = Some(shape_record(e.shape));
                return r;
            }
            match plan.excluded().iter().find(|(x, _)| *x == p) {
                Some((_, Exclusion::Dropped)) => {
                    let why = plan.drop_reason().map(|r| r.name()).unwrap_or("dropped");
                    row(false, format!("frame dropped: {why}"), "dropped")
                }
                Some((_, why)) => row(false, why.text().to_string(), why.name()),
                None => row(false, "not considered".into(), "not_considered"),
            }
        })
        .collect()
}

/// Explains `plan`, made for `frame` (an explained plan: see `Plan::explained`).
pub fn explain(
    sw: &Switch,
    name: &dyn Fn(PortId) -> String,
    frame: &[u8],
    plan: &Plan,
    now: Timestamp,
    synthetic: bool,
) -> TraceReport {
    let d = &plan.decision;
    let in_name = name(plan.ingress);
    let mut steps = Vec::new();
    let mut step = |s: &str, r: String| {
        steps.push(TraceStep {
            step: s.to_string(),
            result: r,
        })
    };
    let eth = EthernetFrame::new_checked(frame).ok();
    match (&eth, d.src, d.dst) {
        (None, _, _) | (_, None, _) | (_, _, None) => {
            step(
                "ingress",
                format!("{} bytes: too short for an Ethernet header", frame.len()),
            );
        }
        (Some(_), Some(src), Some(dst)) => {
            step(
                "ingress",
                format!(
                    "{} bytes on port {in_name}, {}",
                    frame.len(),
                    vlan_text(sw, plan)
                ),
            );
            step(
                "source",
                if src.is_valid_source() {
                    format!("{src}: unicast, valid")
                } else {
                    format!("{src}: multicast, broadcast or zero: not a station address")
                },
            );
            step("destination", dst_class(dst, sw));
        }
    }
    step(
        "learning",
        learn_text(d.learn, &in_name, synthetic, name, sw),
    );
    if let (Some(dst), true) = (d.dst, d.src.is_some_and(|s| s.is_valid_source())) {
        let r = match plan.lookup {
            Lookup::Hit(e) => format!(
                "{dst} in VLAN {}: port {} ({}, age {} s)",
                d.vlan,
                name(e.port),
                match e.kind {
                    crate::switch::EntryKind::Learned => "learned",
                    crate::switch::EntryKind::Static => "static",
                    crate::switch::EntryKind::Evpn => "evpn",
                },
                sw.fdb().age_secs(&e, now)
            ),
            Lookup::Miss => format!("{dst} in VLAN {}: not in the FDB", d.vlan),
            Lookup::NotDone if dst.is_multicast() => {
                "none: group addresses are not looked up".into()
            }
            Lookup::NotDone => "none: the frame was dropped before the lookup".into(),
        };
        step("lookup", r);
    }
    if let Some(note) = &plan.protect {
        step("protection", note.text(name));
    }
    TraceReport {
        id: None,
        ts_ns: 0,
        ingress: in_name,
        synthetic,
        vlan_aware: plan.vlan_aware,
        vlan: d.vlan,
        frame: summarize(frame),
        steps,
        egress: egress_rows(sw, name, plan),
        verdict: verdict(d, name),
    }
}

fn dst_class(dst: MacAddr, sw: &Switch) -> String {
    if let Some(g) = dst.reserved_group() {
        let fwd = g == 0 || sw.settings().group_fwd_mask & (1 << g) != 0;
        let what = reserved_name(g);
        return match (g, fwd) {
            (1, _) => format!("{dst}: {what}: never forwarded"),
            (0, _) => format!("{dst}: {what}: forwarded, no STP runs here"),
            (_, true) => format!("{dst}: {what}: forwarded by group-fwd-mask"),
            (_, false) => format!("{dst}: {what}: not forwarded by bridges"),
        };
    }
    if dst.is_broadcast() {
        format!("{dst}: broadcast")
    } else if dst.is_multicast() {
        format!("{dst}: multicast")
    } else {
        format!("{dst}: unicast")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::{Mode, PortPolicy};

    fn plan(sw: &mut Switch, ingress: PortId, f: &[u8], now: Timestamp) -> Plan {
        let mut p = Plan::explained();
        sw.plan(ingress, f, now, Mode::Preview, &mut p);
        p
    }
    use crate::wire::write_header;

    fn frame(dst: &str, src: &str) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        write_header(&mut f, dst.parse().unwrap(), src.parse().unwrap(), 0x0800).unwrap();
        f
    }

    #[test]
    fn explains_known_unicast_with_the_learned_port() {
        let mut sw = Switch::default();
        let a = sw.add_port(PortPolicy::default()).unwrap();
        let b = sw.add_port(PortPolicy::default()).unwrap();
        let c = sw.add_port(PortPolicy::default()).unwrap();
        let now = Timestamp::from_secs(10);
        sw.decide(
            b,
            &frame("02:00:00:00:00:01", "02:00:00:00:00:02"),
            now,
            Mode::Apply,
        );
        let f = frame("02:00:00:00:00:02", "02:00:00:00:00:01");
        let p = plan(&mut sw, a, &f, now);
        let names = |p: PortId| ["red", "green", "blue"][p.index()].to_string();
        let r = explain(&sw, &names, &f, &p, now, true);
        assert_eq!(r.verdict, "forward: known unicast -> green");
        let lookup = r.steps.iter().find(|s| s.step == "lookup").unwrap();
        assert!(lookup.result.contains("port green (learned"), "{lookup:?}");
        let learn = r.steps.iter().find(|s| s.step == "learning").unwrap();
        assert!(learn.result.contains("would be learned"), "{learn:?}");
        assert_eq!(r.egress.len(), 3);
        assert!(!r.egress[0].included && r.egress[0].reason == "the ingress port (hairpin off)");
        assert_eq!(r.egress[1].shape, Some(EgressShape::Received));
        assert!(r.egress[1].included);
        assert!(!r.egress[2].included);
        let _ = c;
        let text = r.render();
        assert!(
            text.contains("verdict: forward: known unicast -> green"),
            "{text}"
        );
    }

    #[test]
    fn explains_reserved_group_drops() {
        let mut sw = Switch::default();
        let a = sw.add_port(PortPolicy::default()).unwrap();
        sw.add_port(PortPolicy::default()).unwrap();
        let f = frame("01:80:c2:00:00:0e", "02:00:00:00:00:01");
        let now = Timestamp::from_secs(1);
        let p = plan(&mut sw, a, &f, now);
        let names = |p: PortId| format!("p{}", p.0);
        let r = explain(&sw, &names, &f, &p, now, true);
        assert_eq!(r.verdict, "drop: reserved_group");
        assert!(r
            .steps
            .iter()
            .any(|s| s.result.contains("LLDP: not forwarded")));
        assert!(r.egress.iter().all(|e| !e.included));
    }
}
