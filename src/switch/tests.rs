//! Scenario tests of the forwarding core and a property test of the FDB
//! against a plain model.

use super::*;
use crate::wire::write_header;

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

fn frame(dst: &str, src: &str) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    write_header(&mut f, mac(dst), mac(src), 0x0800).unwrap();
    f
}

fn t(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

/// A switch with three ports, as the scenario tests use it.
fn three_ports() -> (Switch, PortId, PortId, PortId) {
    let mut sw = Switch::default();
    let a = sw.add_port(PortPolicy::default()).unwrap();
    let b = sw.add_port(PortPolicy::default()).unwrap();
    let c = sw.add_port(PortPolicy::default()).unwrap();
    (sw, a, b, c)
}

const H1: &str = "02:00:00:00:00:01";
const H2: &str = "02:00:00:00:00:02";

#[test]
fn unknown_unicast_floods_then_known_forwards() {
    let (mut sw, a, b, _c) = three_ports();
    let d = sw.decide(a, &frame(H2, H1), t(1), Mode::Apply);
    assert_eq!(d.learn, LearnOutcome::New);
    assert_eq!(
        d.action,
        Action::Flood {
            kind: FloodKind::UnknownUnicast
        }
    );
    assert_eq!(
        sw.flood_targets(a).collect::<Vec<_>>(),
        vec![PortId(1), PortId(2)]
    );

    let d = sw.decide(b, &frame(H1, H2), t(2), Mode::Apply);
    assert_eq!(d.action, Action::Forward { port: a });
    let d = sw.decide(a, &frame(H2, H1), t(3), Mode::Apply);
    assert_eq!(d.action, Action::Forward { port: b });
}

#[test]
fn broadcast_and_multicast_flood() {
    let (mut sw, a, _, _) = three_ports();
    let d = sw.decide(a, &frame("ff:ff:ff:ff:ff:ff", H1), t(1), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Flood {
            kind: FloodKind::Broadcast
        }
    );
    let d = sw.decide(a, &frame("33:33:00:00:00:01", H1), t(1), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Flood {
            kind: FloodKind::Multicast
        }
    );
}

#[test]
fn invalid_sources_are_dropped_and_not_learned() {
    let (mut sw, a, _, _) = three_ports();
    for src in [
        "ff:ff:ff:ff:ff:ff",
        "01:00:5e:00:00:01",
        "00:00:00:00:00:00",
    ] {
        let d = sw.decide(a, &frame(H2, src), t(1), Mode::Apply);
        assert_eq!(
            d.action,
            Action::Drop {
                reason: DropReason::InvalidSource
            }
        );
        assert_eq!(d.learn, LearnOutcome::NotLearned);
    }
    assert!(sw.fdb().is_empty());
}

#[test]
fn runts_are_dropped() {
    let (mut sw, a, _, _) = three_ports();
    let d = sw.decide(a, &[0u8; 13], t(1), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Drop {
            reason: DropReason::Runt
        }
    );
}

#[test]
fn pause_frames_are_dropped_without_learning() {
    let (mut sw, a, _, _) = three_ports();
    let d = sw.decide(a, &frame("01:80:c2:00:00:01", H1), t(1), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Drop {
            reason: DropReason::MacControl
        }
    );
    assert!(sw.fdb().is_empty());
}

#[test]
fn reserved_groups_are_learned_from_but_not_forwarded() {
    let (mut sw, a, _, _) = three_ports();
    for g in [0x02u8, 0x03, 0x0e, 0x0f] {
        let dst = format!("01:80:c2:00:00:{g:02x}");
        let d = sw.decide(a, &frame(&dst, H1), t(1), Mode::Apply);
        assert_eq!(
            d.action,
            Action::Drop {
                reason: DropReason::ReservedGroup
            },
            "{dst}"
        );
    }
    assert_eq!(
        sw.fdb().lookup(FdbKey::new(0, mac(H1)), t(1)).unwrap().port,
        a
    );
}

#[test]
fn stp_bpdus_flood_when_no_stp_runs() {
    let (mut sw, a, _, _) = three_ports();
    let d = sw.decide(a, &frame("01:80:c2:00:00:00", H1), t(1), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Flood {
            kind: FloodKind::Multicast
        }
    );
}

#[test]
fn group_fwd_mask_opens_reserved_groups_except_restricted() {
    let (mut sw, a, _, _) = three_ports();
    sw.set_group_fwd_mask(1 << 0x0e).unwrap();
    let d = sw.decide(a, &frame("01:80:c2:00:00:0e", H1), t(1), Mode::Apply);
    assert!(matches!(d.action, Action::Flood { .. }));
    assert!(sw.set_group_fwd_mask(1 << 2).is_err());
    assert!(sw.set_group_fwd_mask(1 << 1).is_err());
}

#[test]
fn frame_for_the_ingress_port_is_dropped() {
    let (mut sw, a, _, _) = three_ports();
    sw.decide(a, &frame(H2, H1), t(1), Mode::Apply);
    sw.decide(a, &frame(H1, H2), t(1), Mode::Apply);
    let d = sw.decide(a, &frame(H2, H1), t(2), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Drop {
            reason: DropReason::SamePort
        }
    );
}

#[test]
fn ageing_brings_flooding_back() {
    let (mut sw, a, b, _) = three_ports();
    sw.set_ageing_time(10);
    sw.decide(b, &frame(H1, H2), t(100), Mode::Apply);
    assert_eq!(
        sw.decide(a, &frame(H2, H1), t(105), Mode::Apply).action,
        Action::Forward { port: b }
    );
    let d = sw.decide(a, &frame(H2, H1), t(111), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Flood {
            kind: FloodKind::UnknownUnicast
        }
    );
}

#[test]
fn mac_move_is_followed_at_once() {
    let (mut sw, a, b, c) = three_ports();
    sw.decide(b, &frame(H1, H2), t(1), Mode::Apply);
    let d = sw.decide(c, &frame(H1, H2), t(2), Mode::Apply);
    assert_eq!(d.learn, LearnOutcome::Moved { from: b });
    assert_eq!(
        sw.decide(a, &frame(H2, H1), t(3), Mode::Apply).action,
        Action::Forward { port: c }
    );
}

#[test]
fn static_entries_hold_against_moves_and_frames_still_flow() {
    let (mut sw, a, b, c) = three_ports();
    sw.fdb_mut()
        .add_static(FdbKey::new(0, mac(H2)), b, t(0))
        .unwrap();
    let d = sw.decide(c, &frame(H1, H2), t(1), Mode::Apply);
    assert_eq!(d.learn, LearnOutcome::Static { port: b });
    assert!(matches!(d.action, Action::Flood { .. }));
    assert_eq!(
        sw.decide(a, &frame(H2, H1), t(1), Mode::Apply).action,
        Action::Forward { port: b }
    );
}

#[test]
fn fdb_limit_refuses_but_still_floods() {
    let (mut sw, a, _, _) = three_ports();
    sw.set_fdb_max(1);
    sw.decide(a, &frame(H2, H1), t(1), Mode::Apply);
    let d = sw.decide(a, &frame(H1, H2), t(1), Mode::Apply);
    assert_eq!(d.learn, LearnOutcome::RefusedFull);
    assert_eq!(
        d.action,
        Action::Drop {
            reason: DropReason::SamePort
        }
    );
    let d = sw.decide(
        a,
        &frame("02:00:00:00:00:09", "02:00:00:00:00:03"),
        t(1),
        Mode::Apply,
    );
    assert_eq!(d.learn, LearnOutcome::RefusedFull);
    assert!(matches!(d.action, Action::Flood { .. }));
    assert_eq!(sw.fdb().counters().refused_full, 2);
}

#[test]
fn per_port_limit_comes_from_policy_or_switch_default() {
    let (mut sw, a, b, _) = three_ports();
    sw.set_fdb_max_per_port(1);
    sw.set_port_policy(
        b,
        PortPolicy {
            max_learned: Some(2),
            ..PortPolicy::default()
        },
    )
    .unwrap();
    sw.decide(a, &frame(H2, "02:00:00:00:00:11"), t(1), Mode::Apply);
    let d = sw.decide(a, &frame(H2, "02:00:00:00:00:12"), t(1), Mode::Apply);
    assert_eq!(d.learn, LearnOutcome::RefusedPortLimit);
    sw.decide(b, &frame(H2, "02:00:00:00:00:21"), t(1), Mode::Apply);
    let d = sw.decide(b, &frame(H2, "02:00:00:00:00:22"), t(1), Mode::Apply);
    assert_eq!(d.learn, LearnOutcome::New);
}

#[test]
fn removing_a_port_flushes_its_entries() {
    let (mut sw, a, b, _) = three_ports();
    sw.decide(b, &frame(H1, H2), t(1), Mode::Apply);
    sw.fdb_mut()
        .add_static(FdbKey::new(0, mac("02:00:00:00:00:07")), b, t(0))
        .unwrap();
    assert_eq!(sw.remove_port(b).unwrap(), 2);
    assert!(sw.fdb().is_empty());
    assert_eq!(sw.flood_targets(a).count(), 1);
    // The slot is reused.
    assert_eq!(sw.add_port(PortPolicy::default()).unwrap(), b);
}

#[test]
fn single_port_switch_has_nowhere_to_flood() {
    let mut sw = Switch::default();
    let a = sw.add_port(PortPolicy::default()).unwrap();
    let d = sw.decide(a, &frame("ff:ff:ff:ff:ff:ff", H1), t(1), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Drop {
            reason: DropReason::NoEgress
        }
    );
}

#[test]
fn preview_mode_learns_nothing() {
    let (mut sw, a, _, _) = three_ports();
    let d = sw.decide(a, &frame(H2, H1), t(1), Mode::Preview);
    assert_eq!(d.learn, LearnOutcome::New);
    assert!(sw.fdb().is_empty());
    assert_eq!(sw.fdb().counters(), FdbCounters::default());
}

#[test]
fn tagged_frames_are_switched_untouched_in_vlan_0() {
    let (mut sw, a, b, _) = three_ports();
    let mut f = frame(H1, H2);
    f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    f[14..16].copy_from_slice(&10u16.to_be_bytes());
    let d = sw.decide(b, &f, t(1), Mode::Apply);
    assert_eq!(d.vlan, 0);
    assert_eq!(
        sw.fdb().lookup(FdbKey::new(0, mac(H2)), t(1)).unwrap().port,
        b
    );
    let _ = a;
}

/// A tagged frame (0x8100, `vid`).
fn tagged(dst: &str, src: &str, vid: u16) -> Vec<u8> {
    let mut f = frame(dst, src);
    f.splice(12..12, [0x81, 0x00, (vid >> 8) as u8, vid as u8]);
    f
}

fn policy(f: impl FnOnce(&mut PortPolicy)) -> PortPolicy {
    let mut p = PortPolicy::default();
    f(&mut p);
    p
}

fn egress_of(sw: &Switch, ingress: PortId, d: &Decision) -> Vec<(u16, Encap)> {
    sw.egress(ingress, d).map(|(p, e)| (p.0, e)).collect()
}

#[test]
fn vlan_unaware_until_a_port_has_a_mode() {
    let (mut sw, a, _, _) = three_ports();
    assert!(!sw.vlan_aware());
    let d = sw.decide(a, &tagged(H2, H1, 10), t(1), Mode::Apply);
    assert_eq!(d.vlan, 0);
    assert!(egress_of(&sw, a, &d)
        .iter()
        .all(|(_, e)| *e == Encap::AsReceived));
    sw.set_port_policy(a, policy(|p| p.vlan = Some(VlanMode::Access { tag: 10 })))
        .unwrap();
    assert!(sw.vlan_aware());
}

#[test]
fn access_and_trunk_ports_scope_floods_and_tag_on_the_way_out() {
    let (mut sw, a, b, c) = three_ports();
    sw.set_port_policy(a, policy(|p| p.vlan = Some(VlanMode::Access { tag: 10 })))
        .unwrap();
    sw.set_port_policy(b, policy(|p| p.vlan = Some(VlanMode::Access { tag: 20 })))
        .unwrap();
    sw.set_port_policy(
        c,
        policy(|p| p.vlan = Some(VlanMode::Trunk { trunks: None })),
    )
    .unwrap();
    let d = sw.decide(a, &frame("ff:ff:ff:ff:ff:ff", H1), t(1), Mode::Apply);
    assert_eq!(d.vlan, 10);
    assert_eq!(
        egress_of(&sw, a, &d),
        vec![(2, Encap::Tagged)],
        "VLAN 20 port excluded"
    );
    assert_eq!(sw.egress_choice(a, &d, b), Err(Exclusion::NotInVlan));
    // Back from the trunk in VLAN 10 to the access port, untagged.
    let d = sw.decide(c, &tagged(H1, H2, 10), t(2), Mode::Apply);
    assert_eq!(d.action, Action::Forward { port: a });
    assert_eq!(egress_of(&sw, c, &d), vec![(0, Encap::Untagged)]);
    // Tagged frames on an access port are dropped; priority tags are not.
    let d = sw.decide(a, &tagged(H2, H1, 10), t(3), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Drop {
            reason: DropReason::VlanTaggedOnAccess
        }
    );
    let d = sw.decide(a, &tagged(H2, H1, 0), t(3), Mode::Apply);
    assert_eq!(d.vlan, 10);
    // VID 4095 is switched like any other (as Open vSwitch does).
    let d = sw.decide(c, &tagged(H2, H1, 4095), t(3), Mode::Apply);
    assert_eq!(d.vlan, 4095);
}

#[test]
fn the_same_mac_in_two_vlans_is_two_entries() {
    let (mut sw, a, b, c) = three_ports();
    for p in [a, b, c] {
        sw.set_port_policy(
            p,
            policy(|x| x.vlan = Some(VlanMode::Trunk { trunks: None })),
        )
        .unwrap();
    }
    sw.decide(a, &tagged("ff:ff:ff:ff:ff:ff", H1, 10), t(1), Mode::Apply);
    sw.decide(b, &tagged("ff:ff:ff:ff:ff:ff", H1, 20), t(1), Mode::Apply);
    assert_eq!(
        sw.fdb()
            .lookup(FdbKey::new(10, mac(H1)), t(1))
            .unwrap()
            .port,
        a
    );
    assert_eq!(
        sw.fdb()
            .lookup(FdbKey::new(20, mac(H1)), t(1))
            .unwrap()
            .port,
        b
    );
    let d = sw.decide(c, &tagged(H1, H2, 20), t(2), Mode::Apply);
    assert_eq!(d.action, Action::Forward { port: b });
}

#[test]
fn bridge_port_flags_shape_flooding() {
    let (mut sw, a, b, c) = three_ports();
    sw.set_port_policy(b, policy(|p| p.flood = false)).unwrap();
    sw.set_port_policy(c, policy(|p| p.bcast_flood = false))
        .unwrap();
    let d = sw.decide(a, &frame(H2, H1), t(1), Mode::Apply);
    assert_eq!(egress_of(&sw, a, &d), vec![(2, Encap::AsReceived)]);
    assert_eq!(sw.egress_choice(a, &d, b), Err(Exclusion::FloodOff));
    let d = sw.decide(a, &frame("ff:ff:ff:ff:ff:ff", H1), t(1), Mode::Apply);
    assert_eq!(egress_of(&sw, a, &d), vec![(1, Encap::AsReceived)]);
    sw.set_port_policy(b, policy(|p| p.mcast_flood = false))
        .unwrap();
    let d = sw.decide(a, &frame("01:00:5e:00:00:01", H1), t(1), Mode::Apply);
    assert_eq!(egress_of(&sw, a, &d), vec![(2, Encap::AsReceived)]);
}

#[test]
fn learning_off_keeps_a_station_unknown() {
    let (mut sw, a, b, _) = three_ports();
    sw.set_port_policy(b, policy(|p| p.learning = false))
        .unwrap();
    let d = sw.decide(b, &frame(H1, H2), t(1), Mode::Apply);
    assert_eq!(d.learn, LearnOutcome::NotLearned);
    let d = sw.decide(a, &frame(H2, H1), t(2), Mode::Apply);
    assert!(matches!(d.action, Action::Flood { .. }));
}

#[test]
fn isolated_ports_reach_only_non_isolated_ones() {
    let (mut sw, a, b, c) = three_ports();
    sw.set_port_policy(a, policy(|p| p.isolated = true))
        .unwrap();
    sw.set_port_policy(b, policy(|p| p.isolated = true))
        .unwrap();
    let d = sw.decide(a, &frame("ff:ff:ff:ff:ff:ff", H1), t(1), Mode::Apply);
    assert_eq!(egress_of(&sw, a, &d), vec![(c.0, Encap::AsReceived)]);
    sw.decide(b, &frame(H1, H2), t(1), Mode::Apply);
    let d = sw.decide(a, &frame(H2, H1), t(2), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Drop {
            reason: DropReason::Isolated
        }
    );
    let d = sw.decide(c, &frame(H2, "02:00:00:00:00:03"), t(2), Mode::Apply);
    assert_eq!(d.action, Action::Forward { port: b });
}

#[test]
fn hairpin_sends_frames_back_out_the_ingress_port() {
    let (mut sw, a, _, _) = three_ports();
    sw.set_port_policy(a, policy(|p| p.hairpin = true)).unwrap();
    sw.decide(a, &frame(H2, H1), t(1), Mode::Apply);
    sw.decide(a, &frame(H1, H2), t(1), Mode::Apply);
    let d = sw.decide(a, &frame(H2, H1), t(2), Mode::Apply);
    assert_eq!(d.action, Action::Forward { port: a });
    let d = sw.decide(a, &frame("ff:ff:ff:ff:ff:ff", H1), t(2), Mode::Apply);
    assert_eq!(
        egress_of(&sw, a, &d).len(),
        3,
        "floods include the hairpin ingress port"
    );
}

#[test]
fn per_port_group_fwd_mask_opens_reserved_groups_received_there() {
    let (mut sw, a, b, _) = three_ports();
    sw.set_port_policy(a, policy(|p| p.group_fwd_mask = 1 << 0x0e))
        .unwrap();
    let d = sw.decide(a, &frame("01:80:c2:00:00:0e", H1), t(1), Mode::Apply);
    assert!(matches!(d.action, Action::Flood { .. }));
    let d = sw.decide(b, &frame("01:80:c2:00:00:0e", H2), t(1), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Drop {
            reason: DropReason::ReservedGroup
        }
    );
}

#[test]
fn mirror_output_ports_do_no_switching() {
    let (mut sw, a, b, c) = three_ports();
    sw.add_mirror(Mirror {
        name: "m".into(),
        output: c,
        src: vec![a],
        dst: vec![],
    })
    .unwrap();
    let d = sw.decide(a, &frame("ff:ff:ff:ff:ff:ff", H1), t(1), Mode::Apply);
    assert_eq!(egress_of(&sw, a, &d), vec![(b.0, Encap::AsReceived)]);
    assert_eq!(sw.egress_choice(a, &d, c), Err(Exclusion::MirrorOutput));
    let d = sw.decide(c, &frame("ff:ff:ff:ff:ff:ff", H2), t(1), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Drop {
            reason: DropReason::MirrorOutput
        }
    );
    assert!(matches!(
        sw.add_mirror(Mirror {
            name: "m".into(),
            output: b,
            src: vec![],
            dst: vec![a]
        }),
        Err(SwitchError::DuplicateMirror(_))
    ));
    assert!(matches!(
        sw.add_mirror(Mirror {
            name: "n".into(),
            output: b,
            src: vec![b],
            dst: vec![]
        }),
        Err(SwitchError::MirrorLoop)
    ));
    sw.remove_port(c).unwrap();
    assert!(
        sw.mirrors().is_empty(),
        "a mirror goes with its output port"
    );
}

mod model {
    //! The FDB against a model that stores entries in a plain list.
    use super::super::fdb::*;
    use super::super::{PortId, Timestamp};
    use crate::wire::MacAddr;
    use proptest::prelude::*;
    use std::time::Duration;

    #[derive(Debug, Clone)]
    enum Op {
        Learn { mac: u8, port: u16 },
        Static { mac: u8, port: u16 },
        Remove { mac: u8 },
        Flush { port: Option<u16>, statics: bool },
        Age,
        Tick { secs: u64 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..12, 0u16..4).prop_map(|(mac, port)| Op::Learn { mac, port }),
            1 => (0u8..12, 0u16..4).prop_map(|(mac, port)| Op::Static { mac, port }),
            1 => (0u8..12).prop_map(|mac| Op::Remove { mac }),
            1 => (proptest::option::of(0u16..4), any::<bool>())
                .prop_map(|(port, statics)| Op::Flush { port, statics }),
            1 => Just(Op::Age),
            2 => (0u64..8).prop_map(|secs| Op::Tick { secs }),
        ]
    }

    #[derive(Clone, Copy, Debug)]
    struct ModelEntry {
        mac: u8,
        port: u16,
        is_static: bool,
        updated: u64,
    }

    struct Model {
        entries: Vec<ModelEntry>,
        ageing: u64,
        max: usize,
        per_port: usize,
    }

    impl Model {
        fn live(&self, e: &ModelEntry, now: u64) -> bool {
            e.is_static || now - e.updated < self.ageing
        }
        fn learned_on(&self, port: u16) -> usize {
            self.entries
                .iter()
                .filter(|e| !e.is_static && e.port == port)
                .count()
        }
        fn learned(&self) -> usize {
            self.entries.iter().filter(|e| !e.is_static).count()
        }
        fn learn(&mut self, mac: u8, port: u16, now: u64) {
            if let Some(i) = self.entries.iter().position(|e| e.mac == mac) {
                let e = self.entries[i];
                if e.is_static {
                    return;
                }
                if e.port == port {
                    self.entries[i].updated = now;
                    return;
                }
                if self.per_port != 0 && self.learned_on(port) >= self.per_port {
                    self.entries.remove(i);
                    return;
                }
                self.entries[i] = ModelEntry {
                    mac,
                    port,
                    is_static: false,
                    updated: now,
                };
                return;
            }
            if self.max != 0 && self.learned() >= self.max {
                return;
            }
            if self.per_port != 0 && self.learned_on(port) >= self.per_port {
                return;
            }
            self.entries.push(ModelEntry {
                mac,
                port,
                is_static: false,
                updated: now,
            });
        }
    }

    fn mac(m: u8) -> FdbKey {
        FdbKey::new(0, MacAddr([2, 0, 0, 0, 0, m]))
    }

    proptest! {
        #[test]
        fn fdb_matches_model(
            ops in proptest::collection::vec(op(), 1..200),
            ageing in 1u64..20,
            max in 0usize..8,
            per_port in 0usize..4,
        ) {
            let mut fdb = Fdb::new(Duration::from_secs(ageing), max);
            let mut model = Model { entries: vec![], ageing, max, per_port };
            let mut now = 1000u64;
            for op in ops {
                let ts = Timestamp::from_secs(now);
                match op {
                    Op::Learn { mac: m, port } => {
                        fdb.learn(mac(m), PortId(port), per_port, ts, true);
                        model.learn(m, port, now);
                    }
                    Op::Static { mac: m, port } => {
                        fdb.add_static(mac(m), PortId(port), ts).unwrap();
                        model.entries.retain(|e| e.mac != m);
                        model.entries.push(ModelEntry { mac: m, port, is_static: true, updated: now });
                    }
                    Op::Remove { mac: m } => {
                        let had = model.entries.iter().any(|e| e.mac == m);
                        prop_assert_eq!(fdb.remove(mac(m)).is_ok(), had);
                        model.entries.retain(|e| e.mac != m);
                    }
                    Op::Flush { port, statics } => {
                        let before = model.entries.len();
                        model.entries.retain(|e| {
                            !(port.is_none_or(|p| p == e.port) && (statics || !e.is_static))
                        });
                        let n = fdb.flush(port.map(PortId), statics);
                        prop_assert_eq!(n, before - model.entries.len());
                    }
                    Op::Age => {
                        let before = model.entries.len();
                        let keep: Vec<_> = model.entries.iter().copied()
                            .filter(|e| model.live(e, now)).collect();
                        model.entries = keep;
                        prop_assert_eq!(fdb.age(ts), before - model.entries.len());
                    }
                    Op::Tick { secs } => now += secs,
                }
                let ts = Timestamp::from_secs(now);
                for m in 0u8..12 {
                    let want = model.entries.iter()
                        .find(|e| e.mac == m && model.live(e, now))
                        .map(|e| e.port);
                    prop_assert_eq!(fdb.lookup(mac(m), ts).map(|e| e.port.0), want, "mac {}", m);
                }
                prop_assert_eq!(fdb.len(), model.entries.len());
                prop_assert_eq!(fdb.learned_total(), model.learned());
                for p in 0u16..4 {
                    prop_assert_eq!(fdb.learned_on(PortId(p)) as usize, model.learned_on(p));
                }
            }
        }
    }
}

fn bpdu() -> Vec<u8> {
    // 802.3 length field, then LLC 42 42 03 and a configuration BPDU.
    let mut f = vec![0u8; 60];
    write_header(&mut f, protect::STP_GROUP, mac(H1), 38).unwrap();
    f[14..17].copy_from_slice(&[0x42, 0x42, 0x03]);
    f
}

#[test]
fn storm_control_drops_floods_over_the_limit_and_leaves_unicast_alone() {
    let (mut sw, a, b, _c) = three_ports();
    let mut p = sw.port_policy(a).unwrap().clone();
    p.storm_bcast = 3;
    p.storm_unknown = 2;
    sw.set_port_policy(a, p).unwrap();
    let bc = frame("ff:ff:ff:ff:ff:ff", H1);
    let mut plan = Plan::new();
    let verdicts: Vec<_> = (0..5)
        .map(|_| {
            sw.plan(a, &bc, t(10), Mode::Apply, &mut plan);
            plan.drop_reason()
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            None,
            None,
            None,
            Some(DropReason::StormBroadcast),
            Some(DropReason::StormBroadcast)
        ]
    );
    assert_eq!(
        plan.protect,
        Some(ProtectNote::Storm {
            kind: FloodKind::Broadcast,
            limit_pps: 3
        })
    );
    // A preview tells the truth without spending the budget.
    sw.plan(a, &bc, t(10), Mode::Preview, &mut plan);
    assert_eq!(plan.drop_reason(), Some(DropReason::StormBroadcast));
    // Unknown unicast has its own bucket; known unicast none.
    for _ in 0..2 {
        assert!(
            sw.decide(a, &frame(H2, H1), t(10), Mode::Apply).action
                != Action::Drop {
                    reason: DropReason::StormUnknownUnicast
                }
        );
    }
    let d = sw.decide(a, &frame(H2, H1), t(10), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Drop {
            reason: DropReason::StormUnknownUnicast
        }
    );
    sw.decide(b, &frame(H1, H2), t(10), Mode::Apply);
    for _ in 0..20 {
        let d = sw.decide(a, &frame(H2, H1), t(10), Mode::Apply);
        assert_eq!(d.action, Action::Forward { port: b });
    }
    // A second later the budget is back.
    sw.plan(a, &bc, t(11), Mode::Apply, &mut plan);
    assert_eq!(plan.drop_reason(), None);
}

#[test]
fn a_flapping_mac_is_reported_and_with_block_blocks_the_later_port() {
    let (mut sw, a, b, c) = three_ports();
    sw.set_flap_threshold(3).unwrap();
    let bc = frame("ff:ff:ff:ff:ff:ff", H1);
    let mut plan = Plan::new();
    // Report: moves a->b->a->b (3 moves) pass, the 4th is a flap.
    sw.plan(a, &bc, t(5), Mode::Apply, &mut plan);
    for (i, p) in [b, a, b].into_iter().enumerate() {
        sw.plan(
            p,
            &bc,
            t(5).plus(Duration::from_millis(i as u64)),
            Mode::Apply,
            &mut plan,
        );
        assert_eq!(plan.protect, None);
    }
    sw.plan(
        a,
        &bc,
        t(5).plus(Duration::from_millis(10)),
        Mode::Apply,
        &mut plan,
    );
    assert!(
        matches!(plan.protect, Some(ProtectNote::Flap { from, moves: 4, blocked: false, .. }) if from == b)
    );
    assert!(!sw.is_blocked(a));
    assert_eq!(sw.protect_counters().mac_flaps, 1);

    sw.set_loop_protect(LoopProtect::Block);
    sw.set_loop_hold(30);
    let t0 = t(20);
    sw.plan(a, &bc, t0, Mode::Apply, &mut plan);
    for (i, p) in [b, a, b].into_iter().enumerate() {
        sw.plan(
            p,
            &bc,
            t0.plus(Duration::from_millis(i as u64)),
            Mode::Apply,
            &mut plan,
        );
    }
    sw.plan(
        c,
        &bc,
        t0.plus(Duration::from_millis(5)),
        Mode::Apply,
        &mut plan,
    );
    assert!(
        matches!(plan.protect, Some(ProtectNote::Flap { from, blocked: true, .. }) if from == b)
    );
    assert_eq!(plan.drop_reason(), Some(DropReason::PortBlocked));
    assert_eq!(sw.blocked(c).unwrap().reason, BlockReason::Loop);
    assert_eq!(sw.blocked(c).unwrap().mac, Some((mac(H1), 0)));
    assert!(!sw.is_blocked(a) && !sw.is_blocked(b));
    // The flapping MAC is forgotten, to be learned where it really is.
    assert!(sw.fdb().lookup(FdbKey::new(0, mac(H1)), t0).is_none());

    // Blocked: nothing in (not learned), nothing out (floods skip it,
    // known unicast toward it is dropped).
    let mut ex = Plan::explained();
    sw.plan(
        c,
        &frame("ff:ff:ff:ff:ff:ff", H2),
        t0.plus(Duration::from_secs(1)),
        Mode::Apply,
        &mut ex,
    );
    assert_eq!(ex.drop_reason(), Some(DropReason::PortBlocked));
    assert!(sw.fdb().lookup(FdbKey::new(0, mac(H2)), t0).is_none());
    sw.plan(
        a,
        &frame("ff:ff:ff:ff:ff:ff", H2),
        t0.plus(Duration::from_secs(1)),
        Mode::Apply,
        &mut ex,
    );
    assert_eq!(
        ex.egress().iter().map(|e| e.port).collect::<Vec<_>>(),
        vec![b]
    );
    assert!(ex.excluded().contains(&(c, Exclusion::Blocked)));
    sw.fdb_mut()
        .add_static(FdbKey::new(0, mac("02:00:00:00:00:09")), c, t0)
        .unwrap();
    let d = sw.decide(a, &frame("02:00:00:00:00:09", H2), t0, Mode::Apply);
    assert_eq!(
        d.action,
        Action::Drop {
            reason: DropReason::PortBlocked
        }
    );

    // The hold time opens it again.
    assert!(sw
        .expire_protection(t0.plus(Duration::from_secs(29)))
        .is_empty());
    // Blocked 5 ms after t0, for 30 s.
    let opened = sw.expire_protection(t0.plus(Duration::from_secs(31)));
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].0, c);
    assert!(!sw.is_blocked(c));
    assert_eq!(sw.protect_counters().loop_blocks, 1);
}

#[test]
fn loop_protect_off_watches_no_moves() {
    let (mut sw, a, b, _) = three_ports();
    sw.set_loop_protect(LoopProtect::Off);
    sw.set_flap_threshold(1).unwrap();
    let bc = frame("ff:ff:ff:ff:ff:ff", H1);
    let mut plan = Plan::new();
    for i in 0..10 {
        let p = if i % 2 == 0 { a } else { b };
        sw.plan(p, &bc, t(1), Mode::Apply, &mut plan);
        assert_eq!(plan.protect, None);
    }
    assert_eq!(sw.protect_counters().mac_flaps, 0);
    assert!(sw.set_flap_threshold(0).is_err());
}

#[test]
fn bpdu_guard_blocks_the_port_a_bpdu_arrives_on() {
    let (mut sw, a, b, _) = three_ports();
    // Without the guard a BPDU floods (the bridge with STP off).
    let d = sw.decide(a, &bpdu(), t(1), Mode::Apply);
    assert!(matches!(d.action, Action::Flood { .. }));
    let mut p = sw.port_policy(a).unwrap().clone();
    p.bpdu_guard = true;
    sw.set_port_policy(a, p).unwrap();
    // Other frames to the STP group without the LLC header are no BPDU.
    let mut not_bpdu = bpdu();
    not_bpdu[14] = 0xaa;
    let d = sw.decide(a, &not_bpdu, t(1), Mode::Apply);
    assert!(matches!(d.action, Action::Flood { .. }));
    // A preview says what would happen and blocks nothing.
    let mut plan = Plan::new();
    sw.plan(a, &bpdu(), t(2), Mode::Preview, &mut plan);
    assert_eq!(plan.drop_reason(), Some(DropReason::BpduGuard));
    assert_eq!(plan.protect, Some(ProtectNote::BpduGuard));
    assert!(!sw.is_blocked(a));
    sw.plan(a, &bpdu(), t(2), Mode::Apply, &mut plan);
    assert_eq!(plan.drop_reason(), Some(DropReason::BpduGuard));
    assert_eq!(sw.blocked(a).unwrap().reason, BlockReason::BpduGuard);
    let d = sw.decide(a, &frame(H2, H1), t(3), Mode::Apply);
    assert_eq!(
        d.action,
        Action::Drop {
            reason: DropReason::PortBlocked
        }
    );
    // Unblocking by hand opens it; hold 0 would have kept it shut.
    assert!(sw.unblock(a).unwrap().is_some());
    assert!(sw.unblock(a).unwrap().is_none());
    let d = sw.decide(a, &frame(H2, H1), t(3), Mode::Apply);
    assert!(matches!(d.action, Action::Flood { .. }));
    sw.set_loop_hold(0);
    sw.decide(a, &bpdu(), t(4), Mode::Apply);
    assert!(sw.expire_protection(t(100_000)).is_empty());
    assert!(sw.is_blocked(a));
    // A guarded port's BPDU does not block another port.
    assert!(!sw.is_blocked(b));
    assert_eq!(sw.protect_counters().bpdu_guard_blocks, 2);
}
