//! Differential tests: the same topology and the same raw frames through a
//! reference switch and through l2sw, every namespace's captures compared
//! byte for byte (framework: tests/common/diff.rs).
//!
//! Open vSwitch (userspace datapath, a private instance per test, one bridge
//! per scenario) is the reference for VLANs and mirrors; the Linux bridge is
//! the reference for port policy, reserved group addresses and learning.
//! Every send states what the reference delivers — the behaviour recorded in
//! docs/vlan-reference.md — so these scenarios are that document in
//! executable form; where l2sw deliberately differs, the send says why and
//! what l2sw delivers instead.
//!
//! `L2SW_DIFF_REFERENCE_ONLY=1 cargo test --release --test differential --
//! --nocapture` drives only the references and prints what they delivered.

mod common;

use common::diff::{run_scenarios, Policy, Scenario, Vlan};
use common::frames::{ctag, describe, stag, step_of, FrameSpec, Tag};
use common::reference::Ovs;
use l2sw::wire::MacAddr;

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const D: usize = 3;

const BCAST: MacAddr = MacAddr::BROADCAST;
/// A multicast group nobody snoops (both references flood it).
const MCAST: MacAddr = MacAddr([0x01, 0x00, 0x5e, 0x11, 0x22, 0x33]);

/// Station `n`: a MAC only the test frames use.
fn st(n: u8) -> MacAddr {
    MacAddr([0x02, 0xdf, 0, 0, 0, n])
}

/// IEEE reserved group address 01:80:c2:00:00:0n.
fn reserved(n: u8) -> MacAddr {
    MacAddr([0x01, 0x80, 0xc2, 0, 0, n])
}

/// Why l2sw keeps the DEI bit of a tag it forwards untouched.
const DEI_KEPT: &str = "a tag l2sw forwards untouched keeps its DEI bit; OVS loses it on \
                        receive (netdev-linux re-inserts the kernel-stripped outer tag with \
                        eth_push_vlan, which clears CFI/DEI), an artifact of its Linux receive \
                        path rather than of its VLAN rules";

fn trunk_all() -> Vlan {
    Vlan::Trunk(vec![])
}

/// A frame from `src` to `dst` carrying `tags` (outermost first).
fn fr(dst: MacAddr, src: MacAddr, tags: &[Tag]) -> FrameSpec {
    FrameSpec::new(dst, src).tagged(tags)
}

// ---------------------------------------------------------------------------
// VLANs against Open vSwitch: access, trunk, native modes.

fn access_to_access() -> Scenario {
    let mut s = Scenario::ovs("access-to-access")
        .port("a", Vlan::Access(10))
        .port("b", Vlan::Access(10))
        .port("c", Vlan::Access(20))
        .port("d", trunk_all());
    let f = fr(BCAST, st(1), &[]);
    s.send(A, &f, [(B, f.clone()), (D, f.tagged(&[ctag(10)]))]);
    let m = fr(MCAST, st(1), &[]);
    s.send(A, &m, [(B, m.clone()), (D, m.tagged(&[ctag(10)]))]);
    s.settle();
    // Unknown unicast floods in VLAN 10 only; the reply is learned.
    let u = fr(st(2), st(1), &[]);
    s.send(A, &u, [(B, u.clone()), (D, u.tagged(&[ctag(10)]))]);
    s.settle();
    let r = fr(st(1), st(2), &[]);
    s.send_same(B, &r, &[A]);
    s.settle();
    s.send_same(A, &u, &[B]);
    let g = fr(BCAST, st(3), &[]);
    s.send(C, &g, [(D, g.tagged(&[ctag(20)]))]);
    s
}

fn access_trunk_push_pop() -> Scenario {
    let mut s = Scenario::ovs("access-trunk-push-pop")
        .port("a", Vlan::Access(10))
        .port("b", trunk_all())
        .port("c", Vlan::Trunk(vec![10, 20]))
        .port("d", Vlan::Access(20));
    let f = fr(BCAST, st(1), &[]);
    let t10 = [ctag(10)];
    s.send(A, &f, [(B, f.tagged(&t10)), (C, f.tagged(&t10))]);
    // PCP and DEI of a popped tag are gone; a trunk gets the tag as it came.
    let p = fr(BCAST, st(2), &[ctag(10).pcp(5)]);
    s.send(B, &p, [(A, p.untagged()), (C, p.clone())]);
    // OVS clears DEI even on a tag it passes through untouched: its Linux
    // receive path re-inserts the tag the kernel stripped with
    // eth_push_vlan(), which drops the CFI/DEI bit.
    let q = fr(BCAST, st(2), &[ctag(20).pcp(3).dei()]);
    s.send(
        B,
        &q,
        [(D, q.untagged()), (C, q.tagged(&[ctag(20).pcp(3)]))],
    )
    .l2sw_differs(DEI_KEPT, [(D, q.untagged()), (C, q.clone())]);
    // A 60-byte tagged frame popped is 56 bytes: nobody pads.
    let short = fr(BCAST, st(2), &[ctag(10)]).payload(42);
    s.send(B, &short, [(A, short.untagged()), (C, short.clone())]);
    let g = fr(BCAST, st(4), &[]);
    s.send(
        D,
        &g,
        [(B, g.tagged(&[ctag(20)])), (C, g.tagged(&[ctag(20)]))],
    );
    s
}

fn access_isolation() -> Scenario {
    let mut s = Scenario::ovs("access-vlan-isolation")
        .port("a", Vlan::Access(10))
        .port("b", Vlan::Access(20))
        .port("c", Vlan::Access(10))
        .port("d", Vlan::Access(20));
    let f = fr(BCAST, st(1), &[]);
    s.send_same(A, &f, &[C]);
    let g = fr(BCAST, st(2), &[]);
    s.send_same(B, &g, &[D]);
    s.settle();
    // st(2) is known, but in VLAN 20: from VLAN 10 it is unknown.
    let u = fr(st(2), st(1), &[]);
    s.send_same(A, &u, &[C]);
    let m = fr(MCAST, st(2), &[]);
    s.send_same(B, &m, &[D]);
    s
}

fn trunk_allowed_list() -> Scenario {
    let mut s = Scenario::ovs("trunk-allowed-list")
        .port("a", Vlan::Trunk(vec![10, 20]))
        .port("b", trunk_all())
        .port("c", Vlan::Access(30))
        .port("d", Vlan::Access(10));
    let t10 = fr(BCAST, st(2), &[ctag(10)]);
    s.send(B, &t10, [(A, t10.clone()), (D, t10.untagged())]);
    let t30 = fr(BCAST, st(2), &[ctag(30)]);
    s.send(B, &t30, [(C, t30.untagged())]);
    // VID 30 is not allowed in on a either.
    let a30 = fr(BCAST, st(1), &[ctag(30)]);
    s.send_dropped(A, &a30);
    let a20 = fr(BCAST, st(1), &[ctag(20)]);
    s.send_same(A, &a20, &[B]);
    // Untagged is VLAN 0, which a trunk list without 0 does not carry; a
    // priority tag is VLAN 0 too.
    let u = fr(BCAST, st(1), &[]);
    s.send_dropped(A, &u);
    s.send_dropped(A, &fr(BCAST, st(1), &[ctag(0).pcp(3)]));
    let ub = fr(BCAST, st(2), &[]);
    s.send_dropped(B, &ub);
    let g = fr(BCAST, st(3), &[]);
    s.send(C, &g, [(B, g.tagged(&[ctag(30)]))]);
    s
}

fn trunk_untagged_vlan0() -> Scenario {
    let mut s = Scenario::ovs("trunk-untagged-is-vlan-0")
        .port("a", trunk_all())
        .port("b", trunk_all())
        .port("c", Vlan::Access(10))
        .port("d", Vlan::None);
    let u = fr(BCAST, st(1), &[]);
    s.send_same(A, &u, &[B, D]);
    let t = fr(BCAST, st(1), &[ctag(10)]);
    s.send(A, &t, [(B, t.clone()), (C, t.untagged()), (D, t.clone())]);
    let c = fr(BCAST, st(3), &[]);
    let c10 = c.tagged(&[ctag(10)]);
    s.send(C, &c, [(A, c10.clone()), (B, c10.clone()), (D, c10)]);
    let du = fr(BCAST, st(4), &[]);
    s.send_same(D, &du, &[A, B]);
    s
}

fn native_untagged() -> Scenario {
    let mut s = Scenario::ovs("native-untagged")
        .port("a", Vlan::NativeUntagged(10, vec![10, 20]))
        .port("b", trunk_all())
        .port("c", Vlan::Access(10))
        .port("d", Vlan::Access(20));
    let u = fr(BCAST, st(1), &[]);
    s.send(A, &u, [(B, u.tagged(&[ctag(10)])), (C, u.clone())]);
    let t10 = fr(BCAST, st(1), &[ctag(10)]);
    s.send(A, &t10, [(B, t10.clone()), (C, t10.untagged())]);
    let t20 = fr(BCAST, st(1), &[ctag(20)]);
    s.send(A, &t20, [(B, t20.clone()), (D, t20.untagged())]);
    let t30 = fr(BCAST, st(1), &[ctag(30)]);
    s.send_dropped(A, &t30);
    let b10 = fr(BCAST, st(2), &[ctag(10).pcp(4)]);
    s.send(B, &b10, [(A, b10.untagged()), (C, b10.untagged())]);
    let b20 = fr(BCAST, st(2), &[ctag(20)]);
    s.send(B, &b20, [(A, b20.clone()), (D, b20.untagged())]);
    // VLAN 0 (untagged on a trunk) is never carried by a native port.
    let b0 = fr(BCAST, st(2), &[]);
    s.send_dropped(B, &b0);
    // A priority tag on the native port: the native VLAN, PCP kept.
    let p = fr(BCAST, st(1), &[ctag(0).pcp(3)]);
    s.send(
        A,
        &p,
        [(B, p.tagged(&[ctag(10).pcp(3)])), (C, p.untagged())],
    );
    let c = fr(BCAST, st(3), &[]);
    s.send(C, &c, [(A, c.clone()), (B, c.tagged(&[ctag(10)]))]);
    s
}

fn native_tagged() -> Scenario {
    let mut s = Scenario::ovs("native-tagged")
        .port("a", Vlan::NativeTagged(10, vec![]))
        .port("b", trunk_all())
        .port("c", Vlan::Access(10));
    let u = fr(BCAST, st(1), &[]);
    s.send(A, &u, [(B, u.tagged(&[ctag(10)])), (C, u.clone())]);
    let t10 = fr(BCAST, st(1), &[ctag(10)]);
    s.send(A, &t10, [(B, t10.clone()), (C, t10.untagged())]);
    let b10 = fr(BCAST, st(2), &[ctag(10)]);
    s.send(B, &b10, [(A, b10.clone()), (C, b10.untagged())]);
    let b30 = fr(BCAST, st(2), &[ctag(30)]);
    s.send_same(B, &b30, &[A]);
    let b0 = fr(BCAST, st(2), &[]);
    s.send_dropped(B, &b0);
    let c = fr(BCAST, st(3), &[]);
    let c10 = c.tagged(&[ctag(10)]);
    s.send(C, &c, [(A, c10.clone()), (B, c10)]);
    s
}

#[test]
fn ovs_vlan_access_trunk_native() {
    let ovs = Ovs::start();
    run_scenarios(
        Some(&ovs),
        vec![
            access_to_access(),
            access_trunk_push_pop(),
            access_isolation(),
            trunk_allowed_list(),
            trunk_untagged_vlan0(),
            native_untagged(),
            native_tagged(),
        ],
    );
}

// ---------------------------------------------------------------------------
// VLANs against Open vSwitch: priority tags, VID 4095, tags on access ports,
// 802.1ad and QinQ.

fn priority_tags() -> Scenario {
    let mut s = Scenario::ovs("priority-tags")
        .port("a", Vlan::Access(10))
        .port("b", trunk_all())
        .port("c", trunk_all())
        .port("d", Vlan::Access(10));
    let p0 = fr(BCAST, st(1), &[ctag(0)]);
    let t = p0.tagged(&[ctag(10)]);
    s.send(A, &p0, [(B, t.clone()), (C, t), (D, p0.untagged())]);
    let p5 = fr(BCAST, st(1), &[ctag(0).pcp(5)]);
    let t = p5.tagged(&[ctag(10).pcp(5)]);
    s.send(A, &p5, [(B, t.clone()), (C, t), (D, p5.untagged())]);
    let p5d = fr(BCAST, st(1), &[ctag(0).pcp(5).dei()]);
    let t = p5d.tagged(&[ctag(10).pcp(5)]);
    s.send(A, &p5d, [(B, t.clone()), (C, t), (D, p5d.untagged())]);
    // On a trunk a priority tag is VLAN 0.
    let b0 = fr(BCAST, st(2), &[ctag(0)]);
    s.send(B, &b0, [(C, b0.untagged())]);
    let b5 = fr(BCAST, st(2), &[ctag(0).pcp(5)]);
    s.send_same(B, &b5, &[C]);
    let s0 = fr(BCAST, st(1), &[stag(0)]);
    let t = s0.tagged(&[stag(10)]);
    s.send(A, &s0, [(B, t.clone()), (C, t), (D, s0.untagged())]);
    s
}

fn vid_4095() -> Scenario {
    let mut s = Scenario::ovs("vid-4095")
        .port("a", trunk_all())
        .port("b", trunk_all())
        .port("c", Vlan::Access(10))
        .port("d", Vlan::Trunk(vec![10]));
    let t = fr(BCAST, st(1), &[ctag(4095)]);
    s.send_same(A, &t, &[B]);
    let tp = fr(BCAST, st(1), &[ctag(4095).pcp(7)]);
    s.send_same(A, &tp, &[B]);
    let ta = fr(BCAST, st(3), &[ctag(4095)]);
    s.send_dropped(C, &ta);
    let td = fr(BCAST, st(4), &[ctag(4095)]);
    s.send_dropped(D, &td);
    s
}

fn tagged_on_access() -> Scenario {
    let mut s = Scenario::ovs("tagged-frame-on-access-port")
        .port("a", Vlan::Access(10))
        .port("b", Vlan::Access(10))
        .port("c", trunk_all());
    // Any VID but 0 on an access port is dropped, its own VLAN included.
    s.send_dropped(A, &fr(BCAST, st(1), &[ctag(10)]));
    s.send_dropped(A, &fr(BCAST, st(1), &[ctag(20)]));
    s.send_dropped(A, &fr(BCAST, st(1), &[stag(10)]));
    // Priority-tagged outer, tagged inner: the outer tag becomes VLAN 10.
    let q = fr(BCAST, st(1), &[ctag(0), ctag(20)]);
    s.send(
        A,
        &q,
        [
            (B, q.tagged(&[ctag(20)])),
            (C, q.tagged(&[ctag(10), ctag(20)])),
        ],
    );
    s
}

fn dot1ad_and_qinq() -> Scenario {
    let mut s = Scenario::ovs("802.1ad-and-qinq")
        .port("a", trunk_all())
        .port("b", trunk_all())
        .port("c", Vlan::Access(10))
        .port("d", Vlan::Access(20));
    // An 802.1ad outer tag is a VLAN like an 802.1Q one.
    let s10 = fr(BCAST, st(1), &[stag(10)]);
    s.send(A, &s10, [(B, s10.clone()), (C, s10.untagged())]);
    let sq = fr(BCAST, st(1), &[stag(10), ctag(20)]);
    s.send(A, &sq, [(B, sq.clone()), (C, sq.tagged(&[ctag(20)]))]);
    // Only the outer tag goes through the kernel's stripping: an inner
    // tag's DEI survives.
    let sqd = fr(BCAST, st(1), &[stag(10), ctag(20).pcp(1).dei()]);
    s.send(
        A,
        &sqd,
        [(B, sqd.clone()), (C, sqd.tagged(&[ctag(20).pcp(1).dei()]))],
    );
    let cq = fr(BCAST, st(1), &[ctag(10), ctag(20)]);
    s.send(A, &cq, [(B, cq.clone()), (C, cq.tagged(&[ctag(20)]))]);
    let sq20 = fr(BCAST, st(1), &[stag(20).pcp(2), ctag(30)]);
    s.send(A, &sq20, [(B, sq20.clone()), (D, sq20.tagged(&[ctag(30)]))]);
    let c = fr(BCAST, st(3), &[]);
    let c10 = c.tagged(&[ctag(10)]);
    s.send(C, &c, [(A, c10.clone()), (B, c10)]);
    // 0x9100 is not a VLAN TPID to OVS: an untagged (VLAN 0) frame.
    let old = fr(
        BCAST,
        st(1),
        &[Tag {
            tpid: 0x9100,
            ..ctag(10)
        }],
    );
    s.send_same(A, &old, &[B]);
    s
}

#[test]
fn ovs_vlan_special_tags() {
    let ovs = Ovs::start();
    run_scenarios(
        Some(&ovs),
        vec![
            priority_tags(),
            vid_4095(),
            tagged_on_access(),
            dot1ad_and_qinq(),
        ],
    );
}

// ---------------------------------------------------------------------------
// Learning and flooding per VLAN, VLAN-unaware mode, reserved groups, against
// Open vSwitch.

fn per_vlan_learning() -> Scenario {
    let mut s = Scenario::ovs("per-vlan-learning")
        .port("a", trunk_all())
        .port("b", trunk_all())
        .port("c", Vlan::Access(10))
        .port("d", Vlan::Access(20));
    // The same MAC in VLAN 10 behind a and in VLAN 20 behind b.
    let m10 = fr(BCAST, st(1), &[ctag(10)]);
    s.send(A, &m10, [(B, m10.clone()), (C, m10.untagged())]);
    s.settle();
    let m20 = fr(BCAST, st(1), &[ctag(20)]);
    s.send(B, &m20, [(A, m20.clone()), (D, m20.untagged())]);
    s.settle();
    let to10 = fr(st(1), st(3), &[]);
    s.send(C, &to10, [(A, to10.tagged(&[ctag(10)]))]);
    let to20 = fr(st(1), st(4), &[]);
    s.send(D, &to20, [(B, to20.tagged(&[ctag(20)]))]);
    s.settle();
    // Both replies were learned in their own VLAN.
    let back10 = fr(st(3), st(1), &[ctag(10)]);
    s.send(A, &back10, [(C, back10.untagged())]);
    let back20 = fr(st(4), st(1), &[ctag(20)]);
    s.send(B, &back20, [(D, back20.untagged())]);
    s
}

fn flood_scope() -> Scenario {
    let mut s = Scenario::ovs("flooding-scoped-to-the-vlan")
        .port("a", Vlan::Access(10))
        .port("b", Vlan::Trunk(vec![20]))
        .port("c", Vlan::NativeUntagged(10, vec![20]))
        .port("d", trunk_all());
    for dst in [BCAST, MCAST, st(9)] {
        let f = fr(dst, st(1), &[]);
        s.send(A, &f, [(C, f.clone()), (D, f.tagged(&[ctag(10)]))]);
    }
    let t20 = fr(BCAST, st(4), &[ctag(20)]);
    s.send_same(D, &t20, &[B, C]);
    let t30 = fr(BCAST, st(4), &[ctag(30)]);
    s.send_dropped(D, &t30);
    s
}

fn mac_move_in_vlan() -> Scenario {
    let mut s = Scenario::ovs("mac-move-within-a-vlan")
        .port("a", Vlan::Access(10))
        .port("b", Vlan::Access(10))
        .port("c", Vlan::Access(10));
    let m = fr(BCAST, st(1), &[]);
    s.send_same(A, &m, &[B, C]);
    s.settle();
    let to = fr(st(1), st(3), &[]);
    s.send_same(C, &to, &[A]);
    s.settle();
    s.send_same(B, &m, &[A, C]);
    s.settle();
    s.send_same(C, &to, &[B]);
    s
}

fn vlan_unaware() -> Scenario {
    const WHY: &str = "no port has a VLAN mode: l2sw is VLAN-unaware like a bridge without \
                       vlan_filtering (one FDB, VLAN 0), OVS always learns per VLAN";
    let mut s = Scenario::ovs("vlan-unaware-switch")
        .port("a", Vlan::None)
        .port("b", Vlan::None)
        .port("c", Vlan::None);
    let t = fr(BCAST, st(1), &[ctag(10).pcp(6)]);
    s.send_same(A, &t, &[B, C]);
    let q = fr(BCAST, st(1), &[stag(100), ctag(10)]);
    s.send_same(A, &q, &[B, C]);
    s.settle();
    // OVS learned st(1) in VLAN 10 and VLAN 100 only.
    let u = fr(st(1), st(2), &[]);
    s.send_same(B, &u, &[A, C])
        .l2sw_differs(WHY, [(A, u.clone())]);
    let t20 = fr(st(1), st(3), &[ctag(20)]);
    s.send_same(C, &t20, &[A, B])
        .l2sw_differs(WHY, [(A, t20.clone())]);
    let t10 = fr(st(1), st(3), &[ctag(10)]);
    s.send_same(C, &t10, &[A]);
    s
}

fn mode_none_again() -> Scenario {
    let mut s = Scenario::ovs("mode-none-returns-to-no-vlan-config")
        .port("a", Vlan::Access(10))
        .port("b", Vlan::Access(10))
        .port("c", trunk_all());
    let f = fr(BCAST, st(1), &[]);
    s.send(A, &f, [(B, f.clone()), (C, f.tagged(&[ctag(10)]))]);
    s.settle();
    s.set_vlan(A, Vlan::None);
    s.set_vlan(B, Vlan::None);
    s.set_vlan(C, Vlan::None);
    let g = fr(BCAST, st(2), &[]);
    s.send_same(A, &g, &[B, C]);
    let t = fr(BCAST, st(2), &[ctag(10)]);
    s.send_same(A, &t, &[B, C]);
    s
}

fn reserved_groups_ovs() -> Scenario {
    const WHY: &str = "l2sw floods STP BPDUs while it runs no STP, as the Linux bridge; OVS \
                       drops every reserved address unless other_config:forward-bpdu=true";
    let mut s = Scenario::ovs("reserved-groups-ovs")
        .port("a", trunk_all())
        .port("b", trunk_all())
        .port("c", trunk_all());
    let stp = fr(reserved(0), st(1), &[]);
    s.send_dropped(A, &stp)
        .l2sw_differs(WHY, [(B, stp.clone()), (C, stp.clone())]);
    for n in [0x02, 0x03, 0x0e] {
        s.send_dropped(A, &fr(reserved(n), st(1), &[]));
    }
    let lldp10 = fr(reserved(0x0e), st(1), &[ctag(10)]);
    s.send_dropped(A, &lldp10);
    let next = fr(reserved(0x10), st(1), &[]);
    s.send_same(A, &next, &[B, C]);
    // OVS's reserved list also has Cisco's addresses (CDP/VTP/PAgP...).
    let cdp = fr(MacAddr([0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcc]), st(1), &[]);
    s.send_dropped(A, &cdp).l2sw_differs(
        "l2sw reserves only 01:80:c2:00:00:00-0f, as the Linux bridge, which floods CDP",
        [(B, cdp.clone()), (C, cdp.clone())],
    );
    s.settle();
    // OVS learns nothing from reserved frames, so st(7) stays unknown to it;
    // l2sw, like the Linux bridge, learns from them (not from PAUSE).
    let lldp = fr(reserved(0x0e), st(7), &[]);
    s.send_dropped(A, &lldp);
    s.settle();
    let to = fr(st(7), st(2), &[]);
    s.send_same(B, &to, &[A, C]).l2sw_differs(
        "l2sw learns from reserved-group frames as the Linux bridge does; OVS does not",
        [(A, to.clone())],
    );
    s
}

#[test]
fn ovs_vlan_learning_and_flooding() {
    let ovs = Ovs::start();
    run_scenarios(
        Some(&ovs),
        vec![
            per_vlan_learning(),
            flood_scope(),
            mac_move_in_vlan(),
            vlan_unaware(),
            mode_none_again(),
            reserved_groups_ovs(),
        ],
    );
}

// ---------------------------------------------------------------------------
// Mirrors against Open vSwitch.

fn mirror_src() -> Scenario {
    let mut s = Scenario::ovs("mirror-source-port")
        .port("a", Vlan::None)
        .port("b", Vlan::None)
        .port("c", Vlan::None)
        .port("m", Vlan::None)
        .mirror("span", D, &[A], &[]);
    let f = fr(BCAST, st(1), &[]);
    s.send_same(A, &f, &[B, C, D]);
    let g = fr(BCAST, st(2), &[]);
    s.send_same(B, &g, &[A, C]);
    s.settle();
    let u = fr(st(2), st(1), &[]);
    s.send_same(A, &u, &[B, D]);
    let r = fr(st(1), st(2), &[]);
    s.send_same(B, &r, &[A]);
    // Unknown unicast from an unmirrored port does not reach the output.
    let x = fr(st(9), st(3), &[]);
    s.send_same(C, &x, &[A, B]);
    // Frames normal switching drops are still mirrored: a reserved group
    // address, and unicast for a station behind the ingress port.
    let lldp = fr(reserved(0x0e), st(1), &[]);
    s.send_same(A, &lldp, &[D]);
    let back = fr(st(1), st(6), &[]);
    s.send_same(A, &back, &[D]);
    // The output port's own frames go nowhere and teach nothing.
    let fromm = fr(BCAST, st(4), &[]);
    s.send_dropped(D, &fromm);
    s.settle();
    let to4 = fr(st(4), st(1), &[]);
    s.send_same(A, &to4, &[B, C, D]);
    s.settle();
    s.del_mirror("span");
    // A former output port is a normal port again.
    s.send_same(A, &f, &[B, C, D]);
    let fromm2 = fr(BCAST, st(5), &[]);
    s.send_same(D, &fromm2, &[A, B, C]);
    s
}

fn mirror_dst() -> Scenario {
    let mut s = Scenario::ovs("mirror-destination-port")
        .port("a", Vlan::None)
        .port("b", Vlan::None)
        .port("c", Vlan::None)
        .port("m", Vlan::None)
        .mirror("span", D, &[], &[B]);
    let f = fr(BCAST, st(1), &[]);
    s.send_same(A, &f, &[B, C, D]);
    let g = fr(BCAST, st(2), &[]);
    s.send_same(B, &g, &[A, C]);
    s.settle();
    let u = fr(st(2), st(3), &[]);
    s.send_same(C, &u, &[B, D]);
    let v = fr(st(1), st(3), &[]);
    s.send_same(C, &v, &[A]);
    s
}

fn mirror_src_and_dst() -> Scenario {
    let mut s = Scenario::ovs("mirror-source-and-destination")
        .port("a", Vlan::None)
        .port("b", Vlan::None)
        .port("c", Vlan::None)
        .port("m", Vlan::None)
        .mirror("span", D, &[A], &[B]);
    // Selected twice (received on a, sent on b): one copy.
    let f = fr(BCAST, st(1), &[]);
    s.send_same(A, &f, &[B, C, D]);
    let g = fr(BCAST, st(3), &[]);
    s.send_same(C, &g, &[A, B, D]);
    s
}

fn two_mirrors_one_output() -> Scenario {
    let mut s = Scenario::ovs("two-mirrors-same-output")
        .port("a", Vlan::None)
        .port("b", Vlan::None)
        .port("c", Vlan::None)
        .port("m", Vlan::None)
        .mirror("in-a", D, &[A], &[])
        .mirror("out-b", D, &[], &[B]);
    let f = fr(BCAST, st(1), &[]);
    s.send_same(A, &f, &[B, C, D]);
    let g = fr(BCAST, st(3), &[]);
    s.send_same(C, &g, &[A, B, D]);
    s
}

fn mirror_vlans() -> Scenario {
    let mut s = Scenario::ovs("mirror-of-vlan-ports")
        .port("a", Vlan::Access(10))
        .port("b", Vlan::Access(10))
        .port("c", trunk_all())
        .port("m", Vlan::None)
        .mirror("span", D, &[A], &[B]);
    // The copy carries the frame's VLAN as the output port's mode demands
    // (m is a trunk): tagged, though a and b only see it untagged.
    let f = fr(BCAST, st(1), &[]);
    let t = f.tagged(&[ctag(10)]);
    s.send(A, &f, [(B, f.clone()), (C, t.clone()), (D, t)]);
    // Copied because it is sent on b: the copy is b's untagged output
    // classified as if received on b — VLAN 10, the PCP gone.
    let g = fr(BCAST, st(3), &[ctag(10).pcp(2)]);
    s.send(
        C,
        &g,
        [
            (A, g.untagged()),
            (B, g.untagged()),
            (D, g.tagged(&[ctag(10)])),
        ],
    );
    // Dropped at the input (tagged on an access port): not mirrored.
    s.send_dropped(A, &fr(BCAST, st(1), &[ctag(20)]));
    s
}

fn mirror_pcp() -> Scenario {
    let mut s = Scenario::ovs("mirror-copies-and-pcp")
        .port("a", trunk_all())
        .port("b", trunk_all())
        .port("c", Vlan::NativeUntagged(10, vec![]))
        .port("m", Vlan::None)
        .mirror("in-a", D, &[A], &[])
        .mirror("out-bc", D, &[], &[B, C]);
    // Received on a: copied as received.
    let f = fr(BCAST, st(1), &[ctag(20).pcp(5)]);
    s.send_same(A, &f, &[B, C, D]);
    // Sent on trunk b (from c, untagged = VLAN 10): the copy is the frame as
    // sent on b.
    let g = fr(BCAST, st(3), &[ctag(0).pcp(4)]);
    let g10 = g.tagged(&[ctag(10).pcp(4)]);
    s.send(C, &g, [(A, g10.clone()), (B, g10.clone()), (D, g10)]);
    // Sent on c, whose native VLAN pops the tag: the copy is that untagged
    // output classified as if received on c — VLAN 10, PCP 0.
    let h = fr(BCAST, st(2), &[ctag(10).pcp(6)]);
    s.send(
        B,
        &h,
        [
            (A, h.clone()),
            (C, h.untagged()),
            (D, h.tagged(&[ctag(10)])),
        ],
    );
    s
}

#[test]
fn ovs_mirrors() {
    let ovs = Ovs::start();
    run_scenarios(
        Some(&ovs),
        vec![
            mirror_src(),
            mirror_dst(),
            mirror_src_and_dst(),
            two_mirrors_one_output(),
            mirror_vlans(),
            mirror_pcp(),
        ],
    );
}

// ---------------------------------------------------------------------------
// Port policy against the Linux bridge.

fn pol() -> Policy {
    Policy::default()
}

fn learning_off() -> Scenario {
    let mut s = Scenario::bridge("learning-off")
        .port_with(
            "a",
            Vlan::None,
            Policy {
                learning: Some(false),
                ..pol()
            },
        )
        .port("b", Vlan::None)
        .port("c", Vlan::None);
    let f = fr(BCAST, st(1), &[]);
    s.send_same(A, &f, &[B, C]);
    let g = fr(BCAST, st(3), &[]);
    s.send_same(C, &g, &[A, B]);
    s.settle();
    // st(1) was never learned: unicast to it keeps flooding.
    let u = fr(st(1), st(2), &[]);
    s.send_same(B, &u, &[A, C]);
    s.settle();
    s.send_same(B, &u, &[A, C]);
    // a still forwards to what others taught.
    let v = fr(st(3), st(1), &[]);
    s.send_same(A, &v, &[C]);
    s
}

fn flood_flags(
    name: &'static str,
    policy: Policy,
    bcast: bool,
    mcast: bool,
    unknown: bool,
) -> Scenario {
    let mut s = Scenario::bridge(name)
        .port("a", Vlan::None)
        .port("b", Vlan::None)
        .port_with("c", Vlan::None, policy);
    let to = |yes: bool| if yes { vec![B, C] } else { vec![B] };
    s.send_same(A, &fr(BCAST, st(1), &[]), &to(bcast));
    s.send_same(A, &fr(MCAST, st(1), &[]), &to(mcast));
    s.send_same(A, &fr(st(9), st(1), &[]), &to(unknown));
    // STP BPDUs are flooded as multicast.
    s.send_same(A, &fr(reserved(0), st(1), &[]), &to(mcast));
    let g = fr(BCAST, st(3), &[]);
    s.send_same(C, &g, &[A, B]);
    s.settle();
    // Known unicast to c is not flooding: it always arrives.
    let k = fr(st(3), st(1), &[]);
    s.send_same(A, &k, &[C]);
    s
}

fn isolated_ports() -> Scenario {
    let iso = Policy {
        isolated: Some(true),
        ..pol()
    };
    let mut s = Scenario::bridge("isolated-ports")
        .port_with("a", Vlan::None, iso.clone())
        .port_with("b", Vlan::None, iso)
        .port("c", Vlan::None)
        .port("d", Vlan::None);
    s.send_same(A, &fr(BCAST, st(1), &[]), &[C, D]);
    s.send_same(B, &fr(BCAST, st(2), &[]), &[C, D]);
    s.send_same(C, &fr(BCAST, st(3), &[]), &[A, B, D]);
    s.settle();
    s.send_dropped(A, &fr(st(2), st(1), &[]));
    s.send_same(A, &fr(st(3), st(1), &[]), &[C]);
    s.send_same(C, &fr(st(1), st(3), &[]), &[A]);
    s.send_same(D, &fr(st(2), st(4), &[]), &[B]);
    s.send_same(A, &fr(st(9), st(1), &[]), &[C, D]);
    s
}

fn hairpin() -> Scenario {
    let mut s = Scenario::bridge("hairpin")
        .port_with(
            "a",
            Vlan::None,
            Policy {
                hairpin: Some(true),
                ..pol()
            },
        )
        .port_with(
            "b",
            Vlan::None,
            Policy {
                hairpin: Some(false),
                ..pol()
            },
        )
        .port("c", Vlan::None)
        .port_with(
            "d",
            Vlan::None,
            Policy {
                hairpin: Some(true),
                isolated: Some(true),
                ..pol()
            },
        );
    // Floods go back out a hairpin port too.
    s.send_same(A, &fr(BCAST, st(1), &[]), &[A, B, C, D]);
    s.send_same(B, &fr(BCAST, st(2), &[]), &[A, C, D]);
    // Isolation wins over hairpin: an isolated port is its own neighbour.
    s.send_same(D, &fr(BCAST, st(4), &[]), &[A, B, C]);
    s.settle();
    // Known unicast for a station behind the ingress port.
    s.send_same(A, &fr(st(1), st(5), &[]), &[A]);
    s.send_dropped(B, &fr(st(2), st(6), &[]));
    s.send_dropped(D, &fr(st(4), st(7), &[]));
    s.send_same(A, &fr(st(9), st(1), &[]), &[A, B, C, D]);
    s
}

#[test]
fn bridge_port_policy() {
    run_scenarios(
        None,
        vec![
            learning_off(),
            flood_flags(
                "flood-off",
                Policy {
                    flood: Some(false),
                    ..pol()
                },
                true,
                true,
                false,
            ),
            flood_flags(
                "mcast-flood-off",
                Policy {
                    mcast_flood: Some(false),
                    ..pol()
                },
                true,
                false,
                true,
            ),
            flood_flags(
                "bcast-flood-off",
                Policy {
                    bcast_flood: Some(false),
                    ..pol()
                },
                false,
                true,
                true,
            ),
            isolated_ports(),
            hairpin(),
        ],
    );
}

// ---------------------------------------------------------------------------
// Reserved group addresses, group_fwd_mask, MAC moves against the bridge.

fn reserved_groups_default() -> Scenario {
    let mut s = Scenario::bridge("reserved-groups-default")
        .port("a", Vlan::None)
        .port("b", Vlan::None)
        .port("c", Vlan::None);
    s.send_same(A, &fr(reserved(0), st(1), &[]), &[B, C]);
    for n in 0x01..=0x0f {
        s.send_dropped(A, &fr(reserved(n), st(1), &[]));
    }
    s.send_same(A, &fr(reserved(0x10), st(1), &[]), &[B, C]);
    let cdp = MacAddr([0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcc]);
    s.send_same(A, &fr(cdp, st(1), &[]), &[B, C]);
    // Tagged reserved frames are reserved too.
    s.send_dropped(A, &fr(reserved(0x0e), st(1), &[ctag(10)]));
    s.settle();
    // Learned from a reserved frame, not from PAUSE.
    s.send_dropped(A, &fr(reserved(0x0e), st(7), &[]));
    s.send_dropped(A, &fr(reserved(0x01), st(8), &[]));
    s.settle();
    s.send_same(B, &fr(st(7), st(2), &[]), &[A]);
    s.send_same(B, &fr(st(8), st(2), &[]), &[A, C]);
    s
}

fn group_fwd_mask_bridge() -> Scenario {
    let mut s = Scenario::bridge("group-fwd-mask-bridge-wide")
        .port("a", Vlan::None)
        .port("b", Vlan::None)
        .port("c", Vlan::None)
        .group_fwd_mask(0x4008);
    s.send_same(A, &fr(reserved(0x0e), st(1), &[]), &[B, C]);
    s.send_same(B, &fr(reserved(0x03), st(2), &[]), &[A, C]);
    s.send_dropped(A, &fr(reserved(0x02), st(1), &[]));
    s.send_dropped(A, &fr(reserved(0x0d), st(1), &[]));
    s.send_dropped(A, &fr(reserved(0x01), st(1), &[]));
    s.send_same(A, &fr(reserved(0x00), st(1), &[]), &[B, C]);
    // The mask goes by destination address alone: tagged frames too.
    let tagged = fr(reserved(0x0e), st(1), &[ctag(10).pcp(7)]);
    s.send_same(A, &tagged, &[B, C]);
    s
}

fn group_fwd_mask_port() -> Scenario {
    let mut s = Scenario::bridge("group-fwd-mask-per-port")
        .port_with(
            "a",
            Vlan::None,
            Policy {
                group_fwd_mask: Some(0x400c),
                ..pol()
            },
        )
        .port("b", Vlan::None)
        .port("c", Vlan::None);
    // The ingress port's mask decides; per port, bit 2 (slow protocols)
    // may be opened too.
    s.send_same(A, &fr(reserved(0x0e), st(1), &[]), &[B, C]);
    s.send_same(A, &fr(reserved(0x03), st(1), &[]), &[B, C]);
    s.send_same(A, &fr(reserved(0x02), st(1), &[]), &[B, C]);
    s.send_dropped(A, &fr(reserved(0x0d), st(1), &[]));
    s.send_dropped(B, &fr(reserved(0x0e), st(2), &[]));
    s.send_dropped(B, &fr(reserved(0x03), st(2), &[]));
    s
}

fn mac_moves_bridge() -> Scenario {
    let mut s = Scenario::bridge("mac-moves")
        .port("a", Vlan::None)
        .port("b", Vlan::None)
        .port("c", Vlan::None);
    let m = fr(BCAST, st(1), &[]);
    s.send_same(A, &m, &[B, C]);
    s.settle();
    let to = fr(st(1), st(3), &[]);
    s.send_same(C, &to, &[A]);
    s.settle();
    s.send_same(B, &m, &[A, C]);
    s.settle();
    s.send_same(C, &to, &[B]);
    s.settle();
    // Back again, this time by unicast.
    s.send_same(A, &fr(st(3), st(1), &[]), &[C]);
    s.settle();
    s.send_same(C, &to, &[A]);
    s
}

#[test]
fn bridge_reserved_groups_and_learning() {
    run_scenarios(
        None,
        vec![
            reserved_groups_default(),
            group_fwd_mask_bridge(),
            group_fwd_mask_port(),
            mac_moves_bridge(),
        ],
    );
}

// A per-port MAC limit has no kernel reference: the bridge's only limit,
// fdb_max_learned, is bridge-wide (IFLA_BR_FDB_MAX_LEARNED, Linux 6.8+), and
// this iproute2 cannot set it. See docs/vlan-reference.md.

/// The framework's own frame encoding and marker lookup (no root needed).
#[test]
fn frames_encode_tags_and_markers() {
    let f = FrameSpec::new(BCAST, st(10))
        .tagged(&[stag(10).pcp(5), ctag(20).dei()])
        .encode(7, 3);
    assert_eq!(f.len(), 68);
    assert_eq!(&f[12..16], &[0x88, 0xa8, 0xa0, 0x0a]);
    assert_eq!(&f[16..20], &[0x81, 0x00, 0x10, 0x14]);
    assert_eq!(&f[20..22], &[0x88, 0xb5]);
    assert_eq!(step_of(&f, 7), Some(3));
    assert_eq!(step_of(&f, 8), None);
    let d = describe(&f, 7);
    assert!(
        d.contains("88a8 pcp 5 vid 10 | 8100 pcp 0 DEI vid 20 | type 88b5 | 68 bytes | step #3"),
        "{d}"
    );
    let short = FrameSpec::new(BCAST, st(10)).tagged(&[ctag(1)]).payload(42);
    assert_eq!(short.encode(1, 1).len(), 60);
    assert_eq!(short.untagged().encode(1, 1).len(), 56);
}
