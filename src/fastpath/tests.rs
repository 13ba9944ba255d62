//! The programs themselves, run by the kernel on synthetic frames with
//! BPF_PROG_TEST_RUN (needs root: CAP_BPF). No device is needed: frames are
//! run on `lo` (ifindex 1), so keys use ifindex 1.
//!
//! Two quirks of test runs, unlike real traffic: a socket filter's
//! `skb->len` excludes the 14-byte Ethernet header (the test skb is pulled
//! to the network header; on a real AF_PACKET socket it is pushed back), and
//! a tag stays in the bytes (real receive moves it into skb metadata). The
//! program handles both placements of the tag alike.

use super::*;
use crate::port::sys::effective_uid;
use crate::wire::VlanTag;

const LO: u32 = 1;
const SKB_CTX_LEN: usize = 192;
const TC_ACT_REDIRECT: u32 = 7;
const PASS_WHOLE: u32 = u32::MAX;
const TCX_NEXT: u32 = u32::MAX;

fn require_root() {
    assert_eq!(
        effective_uid(),
        0,
        "this test needs root (CAP_BPF for BPF_PROG_TEST_RUN): run `sudo cargo test --release`"
    );
}

fn progs() -> Programs {
    require_root();
    match Programs::load() {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

const A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const C: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0c]);

/// A frame dst <- src, optionally with an outer tag (tpid, tci), `len` bytes.
fn frame(dst: MacAddr, src: MacAddr, tag: Option<(u16, u16)>, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    if let Some((tpid, tci)) = tag {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&0x88b5u16.to_be_bytes());
    f.resize(len, 0x5a);
    f
}

fn ctx(ifindex: u32, gso_size: u32) -> [u8; SKB_CTX_LEN] {
    let mut c = [0u8; SKB_CTX_LEN];
    c[40..44].copy_from_slice(&ifindex.to_ne_bytes());
    c[176..180].copy_from_slice(&gso_size.to_ne_bytes());
    c
}

fn key(dst: MacAddr, src: MacAddr, vlan: Option<(bool, u16)>) -> FlowKey {
    FlowKey {
        ifindex: LO,
        vlan,
        dst,
        src,
    }
}

const TO_7: FlowAction = FlowAction {
    egress: 7,
    peer: false,
    max_len: 1514,
    vlan: VlanEdit::Keep,
};

fn run_decide(p: &Programs, f: &[u8], gso: u32) -> u32 {
    p.decide
        .test_run(f, Some(&mut ctx(LO, gso)))
        .expect("test run")
}

fn run_carry(p: &Programs, f: &[u8]) -> u32 {
    p.carry
        .test_run(f, Some(&mut ctx(LO, 0)))
        .expect("test run")
}

/// Every CPU's slot, as 32-byte values.
fn slots(p: &Programs) -> Vec<[u8; SLOT_SIZE as usize]> {
    let mut v = vec![0u8; p.slot.value_len()];
    assert!(p.slot.lookup(&0u32.to_ne_bytes(), &mut v).unwrap());
    v.chunks(SLOT_SIZE.next_multiple_of(8) as usize)
        .map(|c| c[..SLOT_SIZE as usize].try_into().unwrap())
        .collect()
}

fn armed(p: &Programs) -> Vec<[u8; SLOT_SIZE as usize]> {
    slots(p)
        .into_iter()
        .filter(|s| u32::from_ne_bytes(s[0..4].try_into().unwrap()) != 0)
        .collect()
}

/// Writes `slot` to every CPU's element, as `decide` would on the CPU a
/// test run of `carry` lands on.
fn set_slots(p: &Programs, slot: &[u8; SLOT_SIZE as usize]) {
    let stride = SLOT_SIZE.next_multiple_of(8) as usize;
    let mut v = vec![0u8; p.slot.value_len()];
    for c in v.chunks_mut(stride) {
        c[..SLOT_SIZE as usize].copy_from_slice(slot);
    }
    p.slot.update(&0u32.to_ne_bytes(), &v, 0).unwrap();
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes(b[i..i + 4].try_into().unwrap())
}

#[test]
fn unknown_flow_goes_to_user_space_whole() {
    let p = progs();
    p.insert(&key(B, C, None), &TO_7).unwrap();
    let f = frame(B, A, None, 60);
    assert_eq!(run_decide(&p, &f, 0), PASS_WHOLE);
    assert!(
        armed(&p).is_empty(),
        "no slot armed for a frame user space takes"
    );
    assert_eq!(p.stats(&key(B, C, None)).unwrap().unwrap().packets, 0);
}

#[test]
fn known_flow_is_taken_from_the_socket_counted_and_armed() {
    let p = progs();
    let action = FlowAction {
        egress: 9,
        peer: true,
        max_len: 1514,
        vlan: VlanEdit::Keep,
    };
    p.insert(&key(B, A, None), &action).unwrap();
    let f = frame(B, A, None, 100);
    // The programs stamp with the coarse clock: CLOCK_MONOTONIC as of the
    // last tick, so never after now and never before the coarse clock was.
    let before = sys::monotonic_coarse_ns();
    assert_eq!(run_decide(&p, &f, 0), 0, "no copy for the socket");
    assert_eq!(run_decide(&p, &f, 0), 0);
    let s = p.stats(&key(B, A, None)).unwrap().unwrap();
    assert_eq!(s.packets, 2);
    assert_eq!(
        s.bytes,
        2 * (100 - 14),
        "test-run skb->len has no MAC header"
    );
    assert!(s.last_seen_ns >= before && s.last_seen_ns <= monotonic_ns());
    let armed = armed(&p);
    assert_eq!(armed.len(), 1, "exactly this CPU's slot is armed");
    let slot = armed[0];
    assert_eq!(u32_at(&slot, SLOT_IFINDEX), LO);
    assert_eq!(u32_at(&slot, SLOT_EGRESS), 9);
    assert_eq!(u32_at(&slot, SLOT_FLAGS), FLAG_PEER);
    assert_eq!(&slot[SLOT_HDR..SLOT_HDR + 16], &f[..16]);
}

#[test]
fn a_source_on_another_port_misses() {
    // The entry says A sends from device 99; the same frame arriving on lo
    // (A moved) must go to user space, which follows the move.
    let p = progs();
    let mut k = key(B, A, None);
    k.ifindex = 99;
    p.insert(&k, &TO_7).unwrap();
    assert_eq!(run_decide(&p, &frame(B, A, None, 60), 0), PASS_WHOLE);
    // And another source to the same destination is not carried either.
    p.insert(&key(B, A, None), &TO_7).unwrap();
    assert_eq!(run_decide(&p, &frame(B, C, None, 60), 0), PASS_WHOLE);
    assert_eq!(run_decide(&p, &frame(B, A, None, 60), 0), 0);
}

#[test]
fn vlan_tag_is_part_of_the_key() {
    let p = progs();
    let tci = (3 << 13) | 10; // PCP 3, VID 10
    p.insert(&key(B, A, Some((false, tci))), &TO_7).unwrap();
    assert_eq!(
        run_decide(&p, &frame(B, A, None, 64), 0),
        PASS_WHOLE,
        "untagged frame, tagged entry"
    );
    assert_eq!(
        run_decide(&p, &frame(B, A, Some((0x8100, 10)), 64), 0),
        PASS_WHOLE,
        "other priority"
    );
    assert_eq!(
        run_decide(&p, &frame(B, A, Some((0x8100, (3 << 13) | 11)), 64), 0),
        PASS_WHOLE,
        "other VLAN"
    );
    assert_eq!(
        run_decide(&p, &frame(B, A, Some((0x88a8, tci)), 64), 0),
        PASS_WHOLE,
        "802.1ad is not 802.1Q"
    );
    assert_eq!(run_decide(&p, &frame(B, A, Some((0x8100, tci)), 64), 0), 0);
    p.insert(&key(B, A, Some((true, tci))), &TO_7).unwrap();
    assert_eq!(run_decide(&p, &frame(B, A, Some((0x88a8, tci)), 64), 0), 0);
    // An untagged entry does not catch tagged frames.
    p.insert(&key(C, A, None), &TO_7).unwrap();
    assert_eq!(
        run_decide(&p, &frame(C, A, Some((0x8100, 5)), 64), 0),
        PASS_WHOLE
    );
    // The key user space builds from a frame is the key the program builds.
    let f = frame(B, A, Some((0x88a8, tci)), 64);
    assert_eq!(
        FlowKey::of_frame(LO, &f),
        Some(key(B, A, Some((true, tci))))
    );
}

#[test]
fn too_long_for_the_egress_unless_gso() {
    let p = progs();
    let small = FlowAction {
        max_len: 1000,
        ..TO_7
    };
    p.insert(&key(B, A, None), &small).unwrap();
    // skb->len in a test run is the frame minus 14.
    assert_eq!(run_decide(&p, &frame(B, A, None, 1014), 0), 0, "fits");
    assert_eq!(
        run_decide(&p, &frame(B, A, None, 1015), 0),
        PASS_WHOLE,
        "one byte too long: user space drops and counts it"
    );
    assert_eq!(
        run_decide(&p, &frame(B, A, None, 1600), 1448),
        0,
        "a GSO super-frame's segments are what must fit"
    );
    assert_eq!(p.stats(&key(B, A, None)).unwrap().unwrap().packets, 2);
}

#[test]
fn runt_goes_to_user_space() {
    let p = progs();
    p.insert(&key(B, A, None), &TO_7).unwrap();
    // 15 bytes: a header but not the 16 bytes the program compares.
    let f = &frame(B, A, None, 60)[..15];
    assert_eq!(run_decide(&p, f, 0), PASS_WHOLE);
}

#[test]
fn carry_redirects_only_the_frame_the_slot_was_armed_for() {
    let p = progs();
    p.insert(&key(B, A, None), &TO_7).unwrap();
    let f = frame(B, A, None, 60);
    // decide arms one CPU's slot; copy it to all, as if carry ran there.
    assert_eq!(run_decide(&p, &f, 0), 0);
    let slot = armed(&p)[0];
    set_slots(&p, &slot);
    assert_eq!(run_carry(&p, &f), TC_ACT_REDIRECT);
    assert_eq!(
        armed(&p).len(),
        slots(&p).len() - 1,
        "carry disarmed its slot"
    );
    set_slots(&p, &[0; SLOT_SIZE as usize]);
    assert_eq!(run_carry(&p, &f), TCX_NEXT, "no armed slot: not ours");

    // A slot armed for another frame or device is disarmed, never used.
    set_slots(&p, &slot);
    assert_eq!(run_carry(&p, &frame(B, C, None, 60)), TCX_NEXT);
    assert_eq!(armed(&p).len(), slots(&p).len() - 1);
    let mut other_dev = slot;
    other_dev[SLOT_IFINDEX..SLOT_IFINDEX + 4].copy_from_slice(&5u32.to_ne_bytes());
    set_slots(&p, &other_dev);
    assert_eq!(run_carry(&p, &f), TCX_NEXT);

    // bpf_redirect_peer also answers TC_ACT_REDIRECT.
    let mut peer = slot;
    peer[SLOT_FLAGS..SLOT_FLAGS + 4].copy_from_slice(&FLAG_PEER.to_ne_bytes());
    set_slots(&p, &peer);
    assert_eq!(run_carry(&p, &f), TC_ACT_REDIRECT);
}

#[test]
fn a_frame_for_user_space_disarms_a_stale_slot() {
    let p = progs();
    p.insert(&key(B, A, None), &TO_7).unwrap();
    assert_eq!(run_decide(&p, &frame(B, A, None, 60), 0), 0);
    let slot = armed(&p)[0];
    set_slots(&p, &slot);
    assert_eq!(run_decide(&p, &frame(C, A, None, 60), 0), PASS_WHOLE);
    assert_eq!(armed(&p).len(), slots(&p).len() - 1);
}

#[test]
fn entries_come_out_with_their_counts() {
    let p = progs();
    let (k1, k2) = (key(B, A, None), key(A, B, Some((false, 7))));
    p.insert(&k1, &TO_7).unwrap();
    p.insert(&k2, &TO_7).unwrap();
    let mut keys = p.keys().unwrap();
    keys.sort_by_key(|k| k.dst.0);
    assert_eq!(keys, vec![k2, k1]);
    run_decide(&p, &frame(B, A, None, 60), 0);
    let s = p.remove(&k1).unwrap().unwrap();
    assert_eq!((s.packets, s.bytes), (1, 46));
    assert_eq!(p.remove(&k1).unwrap(), None);
    assert_eq!(p.keys().unwrap(), vec![k2]);
}

#[test]
fn counts_on_every_cpu_add_up_exactly() {
    // `flows` is per-CPU: each CPU counts in its own copy of the entry, and
    // stats / remove must sum them, so no frame is lost or counted twice.
    let p = progs();
    let online: Vec<usize> = (0..sys::possible_cpus().unwrap())
        .filter(|&c| {
            std::thread::scope(|s| s.spawn(|| sys::pin_this_thread(c).is_ok()).join().unwrap())
        })
        .collect();
    let k = key(B, A, None);
    p.insert(&k, &TO_7).unwrap();
    let f = frame(B, A, None, 60);
    std::thread::scope(|s| {
        for (i, &cpu) in online.iter().enumerate() {
            let (p, f) = (&p, &f);
            s.spawn(move || {
                sys::pin_this_thread(cpu).unwrap();
                for _ in 0..=i {
                    assert_eq!(run_decide(p, f, 0), 0);
                }
            });
        }
    });
    let n = (online.len() * (online.len() + 1) / 2) as u64;
    let s = p.stats(&k).unwrap().unwrap();
    assert_eq!((s.packets, s.bytes), (n, n * 46), "on {online:?}");
    assert!(s.last_seen_ns > 0);
    let last = p.remove(&k).unwrap().unwrap();
    assert_eq!((last.packets, last.bytes), (n, n * 46));
    if online.len() > 1 {
        let mut v = vec![0u8; p.flows.value_len()];
        p.insert(&k, &TO_7).unwrap();
        assert!(p.flows.lookup(&k.to_bytes(), &mut v).unwrap());
        assert!(
            v.chunks_exact(VALUE_STRIDE).all(|c| c[..16] == v[..16]),
            "every CPU's copy carries the plan"
        );
    }
}

fn ctag(vid: u16) -> VlanTag {
    VlanTag {
        tpid: 0x8100,
        pcp: 0,
        dei: false,
        vid,
    }
}

/// Runs `decide` on `f`, copies the slot it armed to every CPU, then runs
/// `carry`: the frame's way through both programs on one CPU.
fn through_both(p: &Programs, f: &[u8]) -> (u32, [u8; SLOT_SIZE as usize], u32, Vec<u8>) {
    let d = run_decide(p, f, 0);
    let slot = armed(p).first().copied().unwrap_or([0; SLOT_SIZE as usize]);
    set_slots(p, &slot);
    let (c, out) = p
        .carry
        .test_run_out(f, Some(&mut ctx(LO, 0)))
        .expect("test run");
    (d, slot, c, out)
}

#[test]
fn carry_pops_the_outer_tag_toward_an_access_port() {
    let p = progs();
    let action = FlowAction {
        vlan: VlanEdit::Pop,
        ..TO_7
    };
    p.insert(&key(B, A, Some((false, 10))), &action).unwrap();
    let f = frame(B, A, Some((0x8100, 10)), 64);
    let (d, slot, c, out) = through_both(&p, &f);
    assert_eq!(d, 0, "known flow: no copy for the socket");
    assert_eq!(u32_at(&slot, SLOT_FLAGS), FLAG_POP);
    assert_eq!(c, TC_ACT_REDIRECT);
    assert_eq!(out, frame(B, A, None, 60), "the tag is gone, nothing else");
}

#[test]
fn carry_pushes_the_tag_toward_a_trunk_port() {
    let p = progs();
    let tag = VlanTag { pcp: 5, ..ctag(10) };
    let action = FlowAction {
        vlan: VlanEdit::Push(tag),
        peer: true,
        ..TO_7
    };
    p.insert(&key(B, A, None), &action).unwrap();
    let f = frame(B, A, None, 60);
    let (d, slot, c, out) = through_both(&p, &f);
    assert_eq!(d, 0);
    assert_eq!(u32_at(&slot, SLOT_FLAGS), FLAG_PUSH | FLAG_PEER);
    assert_eq!(
        u32_at(&slot, SLOT_PUSH),
        (0x8100u16.to_be() as u32) << 16 | tag.tci() as u32,
        "the helper's arguments: TPID in network order, TCI"
    );
    assert_eq!(c, TC_ACT_REDIRECT, "the push succeeded");
    // The helper puts the tag in skb metadata (where real receive keeps
    // the outer tag, and where veth and AF_PACKET take it from); a test
    // run returns only the data, so the bytes look unchanged here.
    // tests/fastpath.rs sees the tag on the wire.
    assert_eq!(out, f);
}

#[test]
fn carry_retags_with_pop_then_push() {
    let p = progs();
    // A priority-tagged frame (VID 0) classified into VLAN 20 leaves a trunk
    // re-tagged.
    let action = FlowAction {
        vlan: VlanEdit::Retag(VlanTag { pcp: 3, ..ctag(20) }),
        ..TO_7
    };
    p.insert(&key(B, A, Some((false, 3 << 13))), &action)
        .unwrap();
    let f = frame(B, A, Some((0x8100, 3 << 13)), 64);
    let (d, slot, c, out) = through_both(&p, &f);
    assert_eq!(d, 0);
    assert_eq!(u32_at(&slot, SLOT_FLAGS), FLAG_POP | FLAG_PUSH);
    assert_eq!(c, TC_ACT_REDIRECT);
    // The old tag is gone from the data; the new one is in metadata.
    assert_eq!(out, frame(B, A, None, 60));

    // Double-tagged: the pop moves the inner tag into metadata, the push
    // writes it back into the data in front of the new outer tag, so the
    // inner tag survives a re-tag of the outer one.
    let mut inner = frame(B, A, Some((0x8100, 3 << 13)), 68);
    inner.splice(16..16, [0x81, 0x00, 0x00, 0x07]);
    inner.truncate(68);
    let (d, _, c, out) = through_both(&p, &inner);
    assert_eq!((d, c), (0, TC_ACT_REDIRECT));
    let mut want = frame(B, A, Some((0x8100, 7)), 64);
    want[16..].copy_from_slice(&inner[20..]);
    assert_eq!(out, want);
}

#[test]
fn a_tag_edit_is_only_made_on_the_frame_the_slot_was_armed_for() {
    let p = progs();
    let action = FlowAction {
        vlan: VlanEdit::Pop,
        ..TO_7
    };
    p.insert(&key(B, A, Some((false, 10))), &action).unwrap();
    let f = frame(B, A, Some((0x8100, 10)), 64);
    let (_, slot, _, _) = through_both(&p, &f);
    set_slots(&p, &slot);
    let other = frame(B, C, Some((0x8100, 10)), 64);
    let (c, out) = p.carry.test_run_out(&other, Some(&mut ctx(LO, 0))).unwrap();
    assert_eq!(c, TCX_NEXT);
    assert_eq!(out, other, "untouched");
}
