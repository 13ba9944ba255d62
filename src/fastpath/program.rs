//! The fast path's two BPF programs, in bytecode, with their map layouts.
//!
//! Where they run, in `__netif_receive_skb_core` of a port's device:
//!
//! ```text
//!   frame arrives on port A's device
//!     |-- packet taps (ptype_all): the switch's AF_PACKET socket on A runs
//!     |     `decide` as its socket filter (tpacket_rcv -> run_filter, before
//!     |     any copy); other taps (tcpdump) see the frame as usual
//!     |-- tcx ingress: `carry` re-tags (VLAN pop/push) and redirects the
//!     |     frame `decide` chose, or lets it go on (TCX_NEXT) into the host
//!     |     stack where nothing wants it
//! ```
//!
//! One decision per frame: `decide` looks the frame up in `flows` (the
//! plans user space installed), and either returns 0 (the socket gets no
//! copy: the kernel carries the frame) after arming this CPU's `slot` with
//! the egress, or returns "keep the whole frame" after disarming the slot
//! (user space forwards it, as without a fast path). `carry` runs next on the
//! same CPU in the same softirq, so it reads the slot `decide` just wrote;
//! it redirects only when the slot is armed *and* names this device and the
//! frame's first 16 header bytes, so a slot left by a frame `carry` never saw
//! is never applied to another frame. It disarms the slot before anything
//! else: every armed slot is used at most once.
//!
//! Verifier rules each block satisfies are noted where they apply. Offsets
//! of `struct __sk_buff` are the stable UAPI ones (checked against the
//! running kernel's BTF); helpers are called by their stable ids.

use super::asm::{Alu, Asm, AsmError, Cond, Helper, Insn, Reg, Size, FP};

// struct __sk_buff fields the programs read (all u32).
const SKB_LEN: i16 = 0;
const SKB_VLAN_PRESENT: i16 = 20;
const SKB_VLAN_TCI: i16 = 24;
const SKB_VLAN_PROTO: i16 = 28;
const SKB_IFINDEX: i16 = 40;
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;
const SKB_GSO_SIZE: i16 = 176;

/// `bpf_skb_load_bytes_relative` from the MAC header: works in both
/// program types and in BPF_PROG_TEST_RUN, whatever `skb->data` points at.
const HDR_START_MAC: i32 = 0;

/// tcx verdicts (`enum tcx_action_base`): go on to the next program / the
/// stack.
const TCX_NEXT: i32 = -1;
/// TCX_DROP: a frame we took from user space but could not re-tag.
const TCX_DROP: i32 = 2;

// ---- the `flows` hash map: one entry per offloaded plan ----

/// Key: everything the plan depended on.
/// `ifindex: u32` (ingress device), `vlan: u32` (0 when untagged, else
/// [`VLAN_TAGGED`] | [`VLAN_8021AD`]? | TCI of the outer tag), then the
/// frame's destination and source MACs as they appear on the wire.
pub const KEY_SIZE: u32 = 20;
pub const KEY_IFINDEX: usize = 0;
pub const KEY_VLAN: usize = 4;
pub const KEY_MACS: usize = 8;
/// Set in the key's `vlan` for a frame with an outer tag.
pub const VLAN_TAGGED: u32 = 0x8000_0000;
/// Set with [`VLAN_TAGGED`] when the outer tag's TPID is 802.1ad (0x88a8).
pub const VLAN_8021AD: u32 = 0x4000_0000;

/// Value: `egress: u32` (device index), `flags: u32` ([`FLAG_PEER`],
/// [`FLAG_POP`], [`FLAG_PUSH`]), `max_len: u32` (largest non-GSO `skb->len`
/// the egress MTU takes: MTU + 14; VLAN tags are out of `skb->len` on
/// receive, and the one allowed tag is out of the MTU, as in user space),
/// `push: u32` (the tag [`FLAG_PUSH`] writes: TPID in network order in the
/// high half, TCI in the low half, the two arguments of
/// `bpf_skb_vlan_push`), `packets: u64`, `bytes: u64`, `last_seen: u64`
/// (`bpf_ktime_get_coarse_ns`, CLOCK_MONOTONIC_COARSE).
///
/// The map is BPF_MAP_TYPE_PERCPU_HASH: every CPU has its own copy of the
/// value, a lookup in a program returns this CPU's, and user space reads
/// and writes all of them at once (value size times the possible CPUs).
/// The plan part is written alike into every copy; each CPU counts and
/// stamps in its own, so `decide` needs no atomic instruction and no cache
/// line moves between CPUs. An entry's counts are the sum of its copies,
/// its last frame the newest stamp (`FlowStats::of_percpu`); reading them
/// with lookup-and-delete when the entry goes loses none.
pub const VALUE_SIZE: u32 = 40;
pub const VAL_EGRESS: usize = 0;
pub const VAL_FLAGS: usize = 4;
pub const VAL_MAX_LEN: usize = 8;
pub const VAL_PUSH: usize = 12;
pub const VAL_PACKETS: usize = 16;
pub const VAL_BYTES: usize = 24;
pub const VAL_LAST_SEEN: usize = 32;
/// Redirect with `bpf_redirect_peer`: the egress device is a veth whose
/// peer (the endpoint) is in another namespace; the frame enters the peer
/// without a second pass through the backlog.
pub const FLAG_PEER: u32 = 1;
/// Take the frame's outer tag off first (`bpf_skb_vlan_pop`): trunk ->
/// access, or the first half of a re-tag.
pub const FLAG_POP: u32 = 2;
/// Then put `push` on as the outer tag (`bpf_skb_vlan_push`): access ->
/// trunk, or the second half of a re-tag. On receive the kernel holds the
/// outer tag in skb metadata, so both are metadata updates, not copies.
pub const FLAG_PUSH: u32 = 4;

// ---- the `slot` per-CPU array (one element): decide -> carry ----

/// `armed: u32`, `ifindex: u32`, `egress: u32`, `flags: u32`, the 16
/// header bytes the decision was made for, then the entry's `push: u32`
/// and 4 bytes of padding.
pub const SLOT_SIZE: u32 = 40;
pub const SLOT_ARMED: usize = 0;
pub const SLOT_IFINDEX: usize = 4;
pub const SLOT_EGRESS: usize = 8;
pub const SLOT_FLAGS: usize = 12;
pub const SLOT_HDR: usize = 16;
pub const SLOT_PUSH: usize = 32;

// Stack layout shared by both programs (offsets from FP; the verifier wants
// every stack access aligned to its size and every byte read written first).
const ST_KEY: i16 = -32; // the 20-byte flow key: -32..-12
const ST_VLAN: i16 = -28; // key.vlan
const ST_HDR: i16 = -24; // 16 header bytes: dst, src, ethertype, TCI (-24..-8)
const ST_ETHERTYPE: i16 = -12;
const ST_TCI: i16 = -10;
const ST_ZERO: i16 = -36; // the u32 key 0 of the slot array

/// Loads the first 16 bytes from the MAC header to `ST_HDR`; R0 != 0 when
/// the frame is shorter. Clobbers R1-R5. Needs the context in R6.
fn load_header(a: &mut Asm) {
    a.mov64(Reg::R1, Reg::R6) // arg1: the skb (the verifier tracks R6 as ctx)
        .mov64_imm(Reg::R2, 0) // arg2: offset 0
        .mov64(Reg::R3, FP) // arg3: a stack buffer ...
        .alu64_imm(Alu::Add, Reg::R3, ST_HDR as i32) // ... at FP-24
        .mov64_imm(Reg::R4, 16) // arg4: a constant size (ARG_CONST_SIZE)
        .mov64_imm(Reg::R5, HDR_START_MAC)
        .call(Helper::SkbLoadBytesRelative);
}

/// R0 = this CPU's slot or NULL. Clobbers R1-R5.
fn lookup_slot(a: &mut Asm, slot_fd: i32) {
    a.st_imm(Size::W, FP, ST_ZERO, 0) // the key must be initialised stack
        .ld_map_fd(Reg::R1, slot_fd)
        .mov64(Reg::R2, FP)
        .alu64_imm(Alu::Add, Reg::R2, ST_ZERO as i32)
        .call(Helper::MapLookupElem);
}

/// The socket filter on the switch's AF_PACKET socket of every offloaded
/// port (BPF_PROG_TYPE_SOCKET_FILTER). Returns 0 (no copy for user space)
/// for a frame whose plan is installed, after counting it and arming the
/// slot for `carry`; the whole frame otherwise.
pub fn decide(flows_fd: i32, slot_fd: i32) -> Result<Vec<Insn>, AsmError> {
    let mut a = Asm::new();
    let (untagged_meta, tag_in_data, have_tag, store_vlan) =
        (a.label(), a.label(), a.label(), a.label());
    let (fits, pass, accept) = (a.label(), a.label(), a.label());

    // R6 = ctx: helpers that take the skb need it in a register the calls
    // keep (R6-R9 survive calls; R1 does not).
    a.mov64(Reg::R6, Reg::R1);

    // key.ifindex = skb->ifindex (the port's device).
    a.ldx(Size::W, Reg::R2, Reg::R6, SKB_IFINDEX)
        .stx(Size::W, FP, ST_KEY, Reg::R2);

    // dst, src, ethertype and TCI into the stack; the MACs land right in
    // key.macs. Socket filters have no direct packet access, hence the
    // helper. A frame under 16 bytes is not ours.
    load_header(&mut a);
    a.jmp_imm(Cond::Ne, Reg::R0, 0, pass);

    // key.vlan. On receive the kernel moves the outer tag into skb metadata
    // (skb_vlan_untag, before taps and tc), so that is where it usually is;
    // a tag still in the data (BPF_PROG_TEST_RUN frames) counts the same.
    // R2 = TCI, R3 = TPID as the kernel stores it (big-endian in a u16 read
    // on a little-endian CPU: 0x8100 reads 0x0081, 0x88a8 reads 0xa888).
    a.ldx(Size::W, Reg::R2, Reg::R6, SKB_VLAN_PRESENT)
        .jmp_imm(Cond::Eq, Reg::R2, 0, untagged_meta)
        .ldx(Size::W, Reg::R2, Reg::R6, SKB_VLAN_TCI)
        .ldx(Size::W, Reg::R3, Reg::R6, SKB_VLAN_PROTO)
        .ja(have_tag);
    a.bind(untagged_meta)
        .ldx(Size::H, Reg::R3, FP, ST_ETHERTYPE)
        .mov32_imm(Reg::R2, 0)
        .jmp_imm(Cond::Eq, Reg::R3, 0x0081, tag_in_data)
        .jmp_imm(Cond::Eq, Reg::R3, 0xa888, tag_in_data)
        .ja(store_vlan);
    a.bind(tag_in_data)
        .ldx(Size::H, Reg::R2, FP, ST_TCI)
        .be16(Reg::R2);
    a.bind(have_tag)
        .alu32_imm(Alu::And, Reg::R2, 0xffff)
        .alu32_imm(Alu::Or, Reg::R2, VLAN_TAGGED as i32)
        .jmp_imm(Cond::Ne, Reg::R3, 0xa888, store_vlan)
        .alu32_imm(Alu::Or, Reg::R2, VLAN_8021AD as i32);
    a.bind(store_vlan).stx(Size::W, FP, ST_VLAN, Reg::R2);

    // The plan for this key, if user space installed one. The verifier
    // makes us test R0 against NULL before any use (PTR_TO_MAP_VALUE_OR_NULL).
    a.ld_map_fd(Reg::R1, flows_fd)
        .mov64(Reg::R2, FP)
        .alu64_imm(Alu::Add, Reg::R2, ST_KEY as i32)
        .call(Helper::MapLookupElem)
        .jmp_imm(Cond::Eq, Reg::R0, 0, pass)
        .mov64(Reg::R7, Reg::R0); // R7 = &plan, kept across calls

    // A frame too long for the egress MTU goes to user space, which drops
    // and counts it (egress_too_big); GSO super-frames are exempt (their
    // segments are what must fit), as in user space and on the bridge.
    a.ldx(Size::W, Reg::R8, Reg::R6, SKB_LEN)
        .ldx(Size::W, Reg::R2, Reg::R6, SKB_GSO_SIZE)
        .jmp_imm(Cond::Ne, Reg::R2, 0, fits)
        .ldx(Size::W, Reg::R3, Reg::R7, VAL_MAX_LEN as i16)
        .jmp_reg(Cond::Gt, Reg::R8, Reg::R3, pass);
    a.bind(fits);

    // Count it and stamp it, in this CPU's copy of the entry (`flows` is
    // per-CPU): plain loads and stores, no atomics and no cache line shared
    // with the other CPUs. No other writer can interleave: socket filters
    // run with bottom halves off and migration disabled, so two runs never
    // nest on one CPU. User space sums the copies (and takes the newest
    // stamp). The stamp is CLOCK_MONOTONIC_COARSE, CLOCK_MONOTONIC as of the
    // last tick (at most one tick, 1-10 ms, behind): the cheapest clock the
    // kernel has, and ageing's resolution is a second (the sweep's).
    a.ldx(Size::DW, Reg::R1, Reg::R7, VAL_PACKETS as i16)
        .alu64_imm(Alu::Add, Reg::R1, 1)
        .stx(Size::DW, Reg::R7, VAL_PACKETS as i16, Reg::R1)
        .ldx(Size::DW, Reg::R1, Reg::R7, VAL_BYTES as i16)
        .alu64(Alu::Add, Reg::R1, Reg::R8)
        .stx(Size::DW, Reg::R7, VAL_BYTES as i16, Reg::R1)
        .call(Helper::KtimeGetCoarseNs)
        .stx(Size::DW, Reg::R7, VAL_LAST_SEEN as i16, Reg::R0);

    // Arm this CPU's slot for `carry`: egress, flags, device, header.
    lookup_slot(&mut a, slot_fd);
    a.jmp_imm(Cond::Eq, Reg::R0, 0, accept) // cannot happen: index 0 exists
        .ldx(Size::W, Reg::R1, Reg::R7, VAL_EGRESS as i16)
        .stx(Size::W, Reg::R0, SLOT_EGRESS as i16, Reg::R1)
        .ldx(Size::W, Reg::R1, Reg::R7, VAL_FLAGS as i16)
        .stx(Size::W, Reg::R0, SLOT_FLAGS as i16, Reg::R1)
        .ldx(Size::W, Reg::R1, Reg::R7, VAL_PUSH as i16)
        .stx(Size::W, Reg::R0, SLOT_PUSH as i16, Reg::R1)
        .ldx(Size::W, Reg::R1, FP, ST_KEY)
        .stx(Size::W, Reg::R0, SLOT_IFINDEX as i16, Reg::R1)
        .ldx(Size::DW, Reg::R1, FP, ST_HDR)
        .stx(Size::DW, Reg::R0, SLOT_HDR as i16, Reg::R1)
        .ldx(Size::DW, Reg::R1, FP, ST_HDR + 8)
        .stx(Size::DW, Reg::R0, SLOT_HDR as i16 + 8, Reg::R1)
        .st_imm(Size::W, Reg::R0, SLOT_ARMED as i16, 1)
        // 0: the socket gets nothing; the kernel carries the frame.
        .mov64_imm(Reg::R0, 0)
        .exit();

    // User space takes this frame: make sure no slot from an earlier frame
    // is left armed, then keep all of it (the return value is a length).
    a.bind(pass);
    lookup_slot(&mut a, slot_fd);
    a.jmp_imm(Cond::Eq, Reg::R0, 0, accept)
        .st_imm(Size::W, Reg::R0, SLOT_ARMED as i16, 0);
    a.bind(accept).mov32_imm(Reg::R0, -1).exit();
    a.finish()
}

/// The tcx ingress program of every offloaded port
/// (BPF_PROG_TYPE_SCHED_CLS): re-tags (pop and/or push) and redirects the
/// frame `decide` armed the slot for; TCX_NEXT for everything else.
pub fn carry(slot_fd: i32) -> Result<Vec<Insn>, AsmError> {
    let mut a = Asm::new();
    let (next, no_pop, no_push, peer, shot) =
        (a.label(), a.label(), a.label(), a.label(), a.label());
    let (copy_header, compare) = (a.label(), a.label());

    a.mov64(Reg::R6, Reg::R1); // R6 = ctx, kept across calls

    // This CPU's slot; disarm it at once so it serves one frame only.
    lookup_slot(&mut a, slot_fd);
    a.jmp_imm(Cond::Eq, Reg::R0, 0, next) // NULL check the verifier requires
        .mov64(Reg::R7, Reg::R0)
        .ldx(Size::W, Reg::R1, Reg::R7, SLOT_ARMED as i16)
        .jmp_imm(Cond::Eq, Reg::R1, 0, next)
        .st_imm(Size::W, Reg::R7, SLOT_ARMED as i16, 0);

    // Same device ...
    a.ldx(Size::W, Reg::R1, Reg::R6, SKB_IFINDEX)
        .ldx(Size::W, Reg::R2, Reg::R7, SLOT_IFINDEX as i16)
        .jmp_reg(Cond::Ne, Reg::R1, Reg::R2, next);
    // ... and same 16 header bytes, compared as two u64s. tc programs may
    // read the packet directly (no helper call) once the verifier has seen
    // `data + 16 <= data_end` checked; `data` is the MAC header at tcx
    // ingress. A frame whose linear part is shorter (rare: drivers and veth
    // put the headers there) is read with the helper instead, as `decide`
    // read it. R1, R2 = the frame's two words on either way.
    a.ldx(Size::W, Reg::R2, Reg::R6, SKB_DATA)
        .ldx(Size::W, Reg::R3, Reg::R6, SKB_DATA_END)
        .mov64(Reg::R4, Reg::R2)
        .alu64_imm(Alu::Add, Reg::R4, 16)
        .jmp_reg(Cond::Gt, Reg::R4, Reg::R3, copy_header)
        .ldx(Size::DW, Reg::R1, Reg::R2, 0)
        .ldx(Size::DW, Reg::R2, Reg::R2, 8)
        .ja(compare);
    a.bind(copy_header);
    load_header(&mut a);
    a.jmp_imm(Cond::Ne, Reg::R0, 0, next)
        .ldx(Size::DW, Reg::R1, FP, ST_HDR)
        .ldx(Size::DW, Reg::R2, FP, ST_HDR + 8);
    a.bind(compare)
        .ldx(Size::DW, Reg::R3, Reg::R7, SLOT_HDR as i16)
        .jmp_reg(Cond::Ne, Reg::R1, Reg::R3, next)
        .ldx(Size::DW, Reg::R3, Reg::R7, SLOT_HDR as i16 + 8)
        .jmp_reg(Cond::Ne, Reg::R2, Reg::R3, next);

    // The plan's re-shaping, as user space would have done it. R8 = flags
    // (kept across the calls). The helpers change packet data, which only
    // invalidates packet pointers; R7 (a map value) stays valid. From here
    // on the frame is ours (`decide` kept it from user space): a helper
    // failing (out of memory) drops it, as a failed send would.
    a.ldx(Size::W, Reg::R8, Reg::R7, SLOT_FLAGS as i16)
        .mov64(Reg::R1, Reg::R8)
        .alu64_imm(Alu::And, Reg::R1, FLAG_POP as i32)
        .jmp_imm(Cond::Eq, Reg::R1, 0, no_pop)
        .mov64(Reg::R1, Reg::R6)
        .call(Helper::SkbVlanPop)
        .jmp_imm(Cond::Ne, Reg::R0, 0, shot);
    // Push: R2 = TPID (network order, as the helper takes it), R3 = TCI.
    a.bind(no_pop)
        .mov64(Reg::R1, Reg::R8)
        .alu64_imm(Alu::And, Reg::R1, FLAG_PUSH as i32)
        .jmp_imm(Cond::Eq, Reg::R1, 0, no_push)
        .ldx(Size::W, Reg::R2, Reg::R7, SLOT_PUSH as i16)
        .mov64(Reg::R3, Reg::R2)
        .alu64_imm(Alu::Rsh, Reg::R2, 16)
        .alu64_imm(Alu::And, Reg::R3, 0xffff)
        .mov64(Reg::R1, Reg::R6)
        .call(Helper::SkbVlanPush)
        .jmp_imm(Cond::Ne, Reg::R0, 0, shot);

    // Redirect: R1 = egress device, R2 = 0 flags. The helpers return
    // TC_ACT_REDIRECT (7), which is also tcx's TCX_REDIRECT.
    a.bind(no_push)
        .ldx(Size::W, Reg::R1, Reg::R7, SLOT_EGRESS as i16)
        .mov64_imm(Reg::R2, 0)
        .jmp_imm(Cond::Set, Reg::R8, FLAG_PEER as i32, peer)
        .call(Helper::Redirect)
        .exit();
    a.bind(peer).call(Helper::RedirectPeer).exit();

    a.bind(shot).mov64_imm(Reg::R0, TCX_DROP).exit();
    a.bind(next).mov64_imm(Reg::R0, TCX_NEXT).exit();
    a.finish()
}
