//! A small data-driven framework for differential tests: a [`Scenario`]
//! (ports with their VLAN mode and policy, mirrors, then a script of frames
//! to send) is built twice — on a reference switch and on l2sw, each with its
//! own namespaces — the same frames go into both, and what every namespace
//! receives is compared byte for byte.
//!
//! Every send also states what the reference is expected to deliver (the
//! behaviour observed and written down in docs/vlan-reference.md), so a
//! scenario checks three things: that the reference still behaves as
//! documented, that l2sw delivers what the reference delivers, and, where
//! l2sw deliberately differs, that it delivers the documented difference.
//!
//! Frames carry a marker naming the run and the send step
//! ([`super::frames`]), so captures are attributed to the step that caused
//! them even if a slow switch delivers them after the next step started;
//! frames without it (stack chatter) are ignored. Sends between two
//! [`Step::Settle`]s form a burst: frames a burst delivers to one namespace
//! are compared as a multiset, because two switches may legitimately
//! interleave frames from different ingress ports differently; causally
//! dependent sends (learn, then use) are separated by a settle.
//!
//! Environment:
//! - `L2SW_DIFF_REFERENCE_ONLY=1`: build and drive only the reference and
//!   print what it delivered (the l2sw half needs the VLAN, policy and
//!   mirror commands).
//! - `L2SW_DIFF_VERBOSE=1`: print the transcript in full mode too.
//! - `L2SW_DIFF_ONLY=SUBSTR`: run only scenarios whose name contains it.
//! - `L2SW_DIFF_SETTLE_MS=N`: the minimum capture window after a burst
//!   (default 200; the window also extends while frames keep arriving).
//!   This bounds how long to look, it asserts nothing about timing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use l2sw::netns;

use super::frames::{describe, hex, step_of, FrameSpec};
use super::reference::{quiet_namespace, KernelBridge, Ovs, OvsBridge};
use super::{Endpoint, Switch};

/// Which switch a scenario is checked against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reference {
    /// Open vSwitch, userspace datapath: VLANs and mirrors.
    Ovs,
    /// The Linux bridge: port policy, reserved groups, learning.
    Bridge,
}

/// A port's VLAN configuration, in OVS's vocabulary. An empty trunk list
/// means every VLAN.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Vlan {
    None,
    Access(u16),
    Trunk(Vec<u16>),
    NativeUntagged(u16, Vec<u16>),
    NativeTagged(u16, Vec<u16>),
}

impl Vlan {
    /// `l2sw port vlan PORT ...` arguments after the port name.
    fn l2sw_args(&self) -> Vec<String> {
        let trunks = |t: &[u16]| -> Vec<String> {
            if t.is_empty() {
                Vec::new()
            } else {
                let l: Vec<String> = t.iter().map(u16::to_string).collect();
                vec!["--trunks".into(), l.join(",")]
            }
        };
        let mut a: Vec<String> = vec!["--mode".into()];
        match self {
            Vlan::None => a.push("none".into()),
            Vlan::Access(tag) => a.extend(["access".into(), "--tag".into(), tag.to_string()]),
            Vlan::Trunk(t) => {
                a.push("trunk".into());
                a.extend(trunks(t));
            }
            Vlan::NativeUntagged(tag, t) => {
                a.extend(["native-untagged".into(), "--tag".into(), tag.to_string()]);
                a.extend(trunks(t));
            }
            Vlan::NativeTagged(tag, t) => {
                a.extend(["native-tagged".into(), "--tag".into(), tag.to_string()]);
                a.extend(trunks(t));
            }
        }
        a
    }

    fn summary(&self) -> String {
        let t = |t: &[u16]| {
            if t.is_empty() {
                "all".to_string()
            } else {
                format!("{t:?}")
            }
        };
        match self {
            Vlan::None => "no vlan config".into(),
            Vlan::Access(tag) => format!("access {tag}"),
            Vlan::Trunk(tr) => format!("trunk {}", t(tr)),
            Vlan::NativeUntagged(tag, tr) => format!("native-untagged {tag} trunks {}", t(tr)),
            Vlan::NativeTagged(tag, tr) => format!("native-tagged {tag} trunks {}", t(tr)),
        }
    }
}

/// Per-port policy, as the Linux bridge port flags; `None` = default.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Policy {
    pub learning: Option<bool>,
    pub flood: Option<bool>,
    pub mcast_flood: Option<bool>,
    pub bcast_flood: Option<bool>,
    pub isolated: Option<bool>,
    pub hairpin: Option<bool>,
    pub group_fwd_mask: Option<u16>,
}

impl Policy {
    pub fn is_default(&self) -> bool {
        *self == Policy::default()
    }

    /// `l2sw port set PORT ...` arguments after the port name.
    fn l2sw_args(&self) -> Vec<String> {
        let onoff = |b: bool| if b { "on" } else { "off" };
        let mut a = Vec::new();
        for (opt, v) in [
            ("--learning", self.learning),
            ("--flood", self.flood),
            ("--mcast-flood", self.mcast_flood),
            ("--bcast-flood", self.bcast_flood),
            ("--isolated", self.isolated),
            ("--hairpin", self.hairpin),
        ] {
            if let Some(v) = v {
                a.push(opt.to_string());
                a.push(onoff(v).to_string());
            }
        }
        if let Some(m) = self.group_fwd_mask {
            a.push("--group-fwd-mask".into());
            a.push(format!("{m:#x}"));
        }
        a
    }
}

pub struct PortCfg {
    /// Short name used in reports ("a", "b", ...).
    pub name: &'static str,
    pub vlan: Vlan,
    pub policy: Policy,
}

/// A SPAN mirror: frames received on `src` ports and sent on `dst` ports
/// are copied to `to`, which does no normal switching.
pub struct MirrorCfg {
    pub name: &'static str,
    pub to: usize,
    pub src: Vec<usize>,
    pub dst: Vec<usize>,
}

/// Deliveries: (namespace index, frame as it should arrive).
pub type Deliveries = Vec<(usize, FrameSpec)>;

pub struct Send {
    pub from: usize,
    pub frame: FrameSpec,
    /// What the reference delivers (documented, checked on every run).
    pub expect: Deliveries,
    /// Where l2sw deliberately differs: why, and what l2sw delivers instead.
    pub l2sw_differs: Option<(&'static str, Deliveries)>,
}

impl Send {
    /// l2sw deliberately delivers `instead` for this frame; `why` says so.
    pub fn l2sw_differs(
        &mut self,
        why: &'static str,
        instead: impl IntoIterator<Item = (usize, FrameSpec)>,
    ) {
        self.l2sw_differs = Some((why, instead.into_iter().collect()));
    }
}

pub enum Step {
    Send(Send),
    /// Wait until everything sent so far has been delivered.
    Settle,
    /// Change a port's VLAN mode on both switches.
    SetVlan(usize, Vlan),
    /// Delete a mirror on both switches.
    DelMirror(&'static str),
}

pub struct Scenario {
    pub name: &'static str,
    pub reference: Reference,
    pub ports: Vec<PortCfg>,
    pub mirrors: Vec<MirrorCfg>,
    /// Bridge-wide group_fwd_mask (`l2sw set group-fwd-mask`).
    pub group_fwd_mask: Option<u16>,
    pub steps: Vec<Step>,
}

impl Scenario {
    pub fn new(name: &'static str, reference: Reference) -> Scenario {
        Scenario {
            name,
            reference,
            ports: Vec::new(),
            mirrors: Vec::new(),
            group_fwd_mask: None,
            steps: Vec::new(),
        }
    }

    pub fn ovs(name: &'static str) -> Scenario {
        Self::new(name, Reference::Ovs)
    }

    pub fn bridge(name: &'static str) -> Scenario {
        Self::new(name, Reference::Bridge)
    }

    pub fn port(self, name: &'static str, vlan: Vlan) -> Scenario {
        self.port_with(name, vlan, Policy::default())
    }

    pub fn port_with(mut self, name: &'static str, vlan: Vlan, policy: Policy) -> Scenario {
        self.ports.push(PortCfg { name, vlan, policy });
        self
    }

    pub fn mirror(
        mut self,
        name: &'static str,
        to: usize,
        src: &[usize],
        dst: &[usize],
    ) -> Scenario {
        self.mirrors.push(MirrorCfg {
            name,
            to,
            src: src.to_vec(),
            dst: dst.to_vec(),
        });
        self
    }

    pub fn group_fwd_mask(mut self, mask: u16) -> Scenario {
        self.group_fwd_mask = Some(mask);
        self
    }

    /// Sends `frame` from port `from`; the reference is expected to deliver
    /// exactly `expect` (namespace, frame) and nothing else.
    pub fn send(
        &mut self,
        from: usize,
        frame: &FrameSpec,
        expect: impl IntoIterator<Item = (usize, FrameSpec)>,
    ) -> &mut Send {
        self.steps.push(Step::Send(Send {
            from,
            frame: frame.clone(),
            expect: expect.into_iter().collect(),
            l2sw_differs: None,
        }));
        match self.steps.last_mut() {
            Some(Step::Send(s)) => s,
            _ => unreachable!(),
        }
    }

    /// `send` where nothing may arrive anywhere.
    pub fn send_dropped(&mut self, from: usize, frame: &FrameSpec) -> &mut Send {
        self.send(from, frame, [])
    }

    /// `send` where `to` receive the frame unchanged.
    pub fn send_same(&mut self, from: usize, frame: &FrameSpec, to: &[usize]) -> &mut Send {
        let d: Deliveries = to.iter().map(|&n| (n, frame.clone())).collect();
        self.send(from, frame, d)
    }

    pub fn settle(&mut self) {
        self.steps.push(Step::Settle);
    }

    pub fn set_vlan(&mut self, port: usize, vlan: Vlan) {
        self.steps.push(Step::SetVlan(port, vlan));
    }

    pub fn del_mirror(&mut self, name: &'static str) {
        self.steps.push(Step::DelMirror(name));
    }

    fn port_name(&self, i: usize) -> &'static str {
        self.ports.get(i).map(|p| p.name).unwrap_or("?")
    }

    fn summary(&self) -> String {
        let mut s = String::new();
        for p in &self.ports {
            let _ = write!(s, "{}: {}", p.name, p.vlan.summary());
            if !p.policy.is_default() {
                let _ = write!(s, " {}", p.policy.l2sw_args().join(" "));
            }
            s.push_str("; ");
        }
        for m in &self.mirrors {
            let names = |v: &[usize]| {
                v.iter()
                    .map(|&i| self.port_name(i))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let _ = write!(
                s,
                "mirror {} src [{}] dst [{}] -> {}; ",
                m.name,
                names(&m.src),
                names(&m.dst),
                self.port_name(m.to)
            );
        }
        if let Some(m) = self.group_fwd_mask {
            let _ = write!(s, "group_fwd_mask {m:#06x}; ");
        }
        s
    }
}

/// A switch built for a scenario, reference or l2sw.
pub trait Fabric {
    fn label(&self) -> String;
    /// One endpoint per scenario port, in order: `eth0` in its namespace.
    fn endpoints(&mut self) -> &mut [Endpoint];
    fn set_vlan(&mut self, port: usize, vlan: &Vlan);
    fn del_mirror(&mut self, name: &str);
    /// Called after each capture window.
    fn settled(&mut self) {}
    /// The forwarding table, for failure reports.
    fn state(&self) -> String;
}

/// l2sw built the scenario's way: `ns plug` per port, then `port vlan`,
/// `port set`, `mirror add`, `set group-fwd-mask`.
pub struct L2swFabric {
    sw: Switch,
    ports: Vec<String>,
    endpoints: Vec<Endpoint>,
}

impl L2swFabric {
    pub fn build(sc: &Scenario) -> L2swFabric {
        let mut sw = Switch::start("df");
        if let Some(m) = sc.group_fwd_mask {
            sw.ok(&["set", "group-fwd-mask", &format!("{m:#x}")]);
        }
        let mut ports = Vec::new();
        for p in &sc.ports {
            // Our own quiet namespace (the switch then leaves it alone; the
            // fixture deletes it on drop).
            let ns = sw.ns(p.name);
            netns::create(&ns).expect("create namespace");
            quiet_namespace(&ns);
            sw.ok(&["ns", "plug", &ns]);
            if p.vlan != Vlan::None {
                let mut a = vec!["port".to_string(), "vlan".into(), ns.clone()];
                a.extend(p.vlan.l2sw_args());
                sw.ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
            }
            if !p.policy.is_default() {
                let mut a = vec!["port".to_string(), "set".into(), ns.clone()];
                a.extend(p.policy.l2sw_args());
                sw.ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
            }
            ports.push(ns);
        }
        for m in &sc.mirrors {
            let list = |v: &[usize]| {
                v.iter()
                    .map(|&i| ports[i].as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let mut a = vec![
                "mirror".to_string(),
                "add".into(),
                m.name.into(),
                "--to".into(),
                ports[m.to].clone(),
            ];
            if !m.src.is_empty() {
                a.extend(["--src".into(), list(&m.src)]);
            }
            if !m.dst.is_empty() {
                a.extend(["--dst".into(), list(&m.dst)]);
            }
            sw.ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
        }
        let endpoints = ports.iter().map(|ns| Endpoint::open(ns, "eth0")).collect();
        L2swFabric {
            sw,
            ports,
            endpoints,
        }
    }
}

impl Fabric for L2swFabric {
    fn label(&self) -> String {
        "l2sw".into()
    }

    fn endpoints(&mut self) -> &mut [Endpoint] {
        &mut self.endpoints
    }

    fn set_vlan(&mut self, port: usize, vlan: &Vlan) {
        let mut a = vec!["port".to_string(), "vlan".into(), self.ports[port].clone()];
        a.extend(vlan.l2sw_args());
        self.sw
            .ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    }

    fn del_mirror(&mut self, name: &str) {
        self.sw.ok(&["mirror", "del", name]);
    }

    fn state(&self) -> String {
        let out = self.sw.cli(&["fdb", "show"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    ReferenceOnly,
    Full,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn settle_min() -> Duration {
    let ms = std::env::var("L2SW_DIFF_SETTLE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    Duration::from_millis(ms)
}

/// Keep looking while frames still arrive, until this long without one.
const QUIET: Duration = Duration::from_millis(80);
/// Give up extending the window after this (a storm, say): whatever arrives
/// later is still attributed to its step.
const SETTLE_MAX: Duration = Duration::from_secs(5);

/// (namespace, send step) -> frames, in arrival order.
type Captured = BTreeMap<(usize, u16), Vec<Vec<u8>>>;

/// Runs every scenario against its reference (and l2sw unless
/// `L2SW_DIFF_REFERENCE_ONLY`), then fails with one report listing every
/// scenario that did not match. `ovs` must be given when any scenario uses
/// the OVS reference.
pub fn run_scenarios(ovs: Option<&Ovs>, scenarios: Vec<Scenario>) {
    let mode = if env_flag("L2SW_DIFF_REFERENCE_ONLY") {
        Mode::ReferenceOnly
    } else {
        Mode::Full
    };
    let verbose = mode == Mode::ReferenceOnly || env_flag("L2SW_DIFF_VERBOSE");
    let only = std::env::var("L2SW_DIFF_ONLY").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for sc in &scenarios {
        if only.as_deref().is_some_and(|o| !sc.name.contains(o)) {
            continue;
        }
        ran += 1;
        let result = catch_unwind(AssertUnwindSafe(|| run_one(ovs, sc, mode)));
        match result {
            Ok(Ok(transcript)) => {
                if verbose {
                    println!("{transcript}");
                }
            }
            Ok(Err(report)) => {
                println!("{report}");
                failures.push(format!("{}: frames differ (report above)", sc.name));
            }
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: could not run: {msg}", sc.name));
            }
        }
    }
    assert!(
        only.is_some() || ran > 0,
        "no scenario ran: an empty scenario list passes nothing"
    );
    if mode == Mode::ReferenceOnly {
        println!("(reference only: l2sw was not run; unset L2SW_DIFF_REFERENCE_ONLY to compare)");
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} scenarios failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// A marker id for one scenario run: distinct across runs and processes, so
/// a frame can never be mistaken for another run's.
fn run_id() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id().rotate_left(16) ^ N.fetch_add(1, Ordering::Relaxed).rotate_left(8)
}

/// Builds the scenario on the reference (and l2sw), drives it, compares.
/// Ok: the transcript. Err: a report of every difference.
fn run_one(ovs: Option<&Ovs>, sc: &Scenario, mode: Mode) -> Result<String, String> {
    let run = run_id();
    let mut reference: Box<dyn Fabric + '_> = match sc.reference {
        Reference::Ovs => Box::new(OvsBridge::build(
            ovs.expect("an OVS scenario needs the test's Ovs instance"),
            sc,
        )),
        Reference::Bridge => Box::new(KernelBridge::build(sc)),
    };
    let mut l2sw: Option<Box<dyn Fabric>> = match mode {
        Mode::Full => Some(Box::new(L2swFabric::build(sc))),
        Mode::ReferenceOnly => None,
    };
    let mut fabrics: Vec<&mut dyn Fabric> = vec![reference.as_mut()];
    if let Some(l) = l2sw.as_mut() {
        fabrics.push(l.as_mut());
    }
    for f in fabrics.iter_mut() {
        for e in f.endpoints() {
            e.drain();
        }
    }

    let mut rec = Recorder::new(run, fabrics.len());
    let mut pending = false;
    let mut step_no = 0u16;
    for step in &sc.steps {
        match step {
            Step::Send(s) => {
                step_no += 1;
                let bytes = s.frame.encode(run, step_no);
                for f in fabrics.iter_mut() {
                    f.endpoints()[s.from].send(&bytes);
                }
                rec.sent(step_no, s);
                pending = true;
            }
            Step::Settle | Step::SetVlan(..) | Step::DelMirror(_) => {
                if pending {
                    rec.capture(&mut fabrics);
                    pending = false;
                }
                for f in fabrics.iter_mut() {
                    match step {
                        Step::SetVlan(p, v) => f.set_vlan(*p, v),
                        Step::DelMirror(m) => f.del_mirror(m),
                        _ => {}
                    }
                }
            }
        }
    }
    if pending {
        rec.capture(&mut fabrics);
    }
    let Recorder { captured, late, .. } = rec;

    let sends: Vec<&Send> = sc
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Send(s) => Some(s),
            _ => None,
        })
        .collect();
    let declared = expected(&sends, run, |s| Some(&s.expect));
    let mut report = String::new();
    let ref_label = fabrics[0].label();
    let ref_diff = compare(&declared, &captured[0]);
    if !ref_diff.is_empty() {
        let _ = writeln!(
            report,
            "== {}: the reference ({ref_label}) no longer delivers what docs/vlan-reference.md documents",
            sc.name
        );
        render_diff(
            &mut report,
            sc,
            &sends,
            run,
            &ref_diff,
            "documented",
            "reference",
        );
        let _ = writeln!(report, "reference FDB:\n{}", fabrics[0].state());
    }
    if fabrics.len() > 1 {
        // l2sw must deliver what the reference did, except where the
        // scenario documents a deliberate difference.
        let mut want: Captured = captured[0]
            .iter()
            .filter(|((_, step), _)| sends[usize::from(*step) - 1].l2sw_differs.is_none())
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (k, v) in expected(&sends, run, |s| s.l2sw_differs.as_ref().map(|(_, d)| d)) {
            want.entry(k).or_default().extend(v);
        }
        let l2_diff = compare(&want, &captured[1]);
        if !l2_diff.is_empty() {
            let _ = writeln!(
                report,
                "== {}: l2sw delivers different frames than the reference ({ref_label})",
                sc.name
            );
            render_diff(&mut report, sc, &sends, run, &l2_diff, "reference", "l2sw");
            let _ = writeln!(
                report,
                "reference FDB:\n{}\nl2sw FDB:\n{}",
                fabrics[0].state(),
                fabrics[1].state()
            );
        }
    }
    let transcript = render_transcript(sc, &sends, run, &ref_label, &captured[0], &late);
    if report.is_empty() {
        Ok(transcript)
    } else {
        Err(format!("{report}\n{transcript}"))
    }
}

/// What each fabric delivered, attributed to the send that caused it.
struct Recorder {
    run: u32,
    /// Per fabric (reference first).
    captured: Vec<Captured>,
    /// The burst each send belongs to.
    burst_of_step: BTreeMap<u16, usize>,
    /// (fabric, namespace, step) that arrived after their burst's window,
    /// to point out in the transcript.
    late: BTreeSet<(usize, usize, u16)>,
    burst: usize,
    /// Frames each fabric is documented to deliver in the current burst:
    /// the capture window stays open until they are in (or SETTLE_MAX), so
    /// a switch slowed down by a loaded machine is not overtaken by the next
    /// burst.
    want: Vec<usize>,
}

impl Recorder {
    fn new(run: u32, fabrics: usize) -> Recorder {
        Recorder {
            run,
            captured: vec![Captured::new(); fabrics],
            burst_of_step: BTreeMap::new(),
            late: BTreeSet::new(),
            burst: 0,
            want: vec![0; fabrics],
        }
    }

    fn sent(&mut self, step: u16, s: &Send) {
        self.burst_of_step.insert(step, self.burst);
        for (fi, w) in self.want.iter_mut().enumerate() {
            *w += match (&s.l2sw_differs, fi) {
                (Some((_, d)), 1) => d.len(),
                _ => s.expect.len(),
            };
        }
    }

    /// The burst's frames went out; watch every endpoint of every fabric
    /// until the minimum window has passed, each fabric delivered what it is
    /// documented to, and nothing arrived for a while — or SETTLE_MAX.
    fn capture(&mut self, fabrics: &mut [&mut dyn Fabric]) {
        let run = self.run;
        let start = Instant::now();
        let mut last_rx = start;
        let mut got = vec![0usize; fabrics.len()];
        loop {
            let mut got_any = false;
            for (fi, f) in fabrics.iter_mut().enumerate() {
                for (ns, e) in f.endpoints().iter_mut().enumerate() {
                    for frame in e.poll_where(|fr| step_of(fr, run).is_some()) {
                        let step = step_of(&frame, run).unwrap();
                        match self.burst_of_step.get(&step) {
                            Some(&b) if b < self.burst => {
                                self.late.insert((fi, ns, step));
                            }
                            _ => got[fi] += 1,
                        }
                        self.captured[fi].entry((ns, step)).or_default().push(frame);
                        got_any = true;
                    }
                }
            }
            let now = Instant::now();
            if got_any {
                last_rx = now;
            }
            let waited = now - start;
            let all_in = got.iter().zip(&self.want).all(|(g, w)| g >= w);
            if (waited >= settle_min() && now - last_rx >= QUIET && all_in) || waited >= SETTLE_MAX
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        for f in fabrics.iter_mut() {
            f.settled();
        }
        self.burst += 1;
        self.want.iter_mut().for_each(|w| *w = 0);
    }
}

/// The captures `pick` declares for each send.
fn expected<'s>(
    sends: &[&'s Send],
    run: u32,
    pick: impl Fn(&'s Send) -> Option<&'s Deliveries>,
) -> Captured {
    let mut out = Captured::new();
    for (i, s) in sends.iter().enumerate() {
        let step = (i + 1) as u16;
        if let Some(d) = pick(s) {
            for (ns, spec) in d {
                out.entry((*ns, step))
                    .or_default()
                    .push(spec.encode(run, step));
            }
        }
    }
    out
}

/// One (namespace, step) where two captures differ.
struct Mismatch {
    ns: usize,
    step: u16,
    only_left: Vec<Vec<u8>>,
    only_right: Vec<Vec<u8>>,
}

/// Multiset difference per (namespace, step).
fn compare(left: &Captured, right: &Captured) -> Vec<Mismatch> {
    let keys: BTreeSet<(usize, u16)> = left.keys().chain(right.keys()).copied().collect();
    let mut out = Vec::new();
    for k in keys {
        let mut l = left.get(&k).cloned().unwrap_or_default();
        let mut r = right.get(&k).cloned().unwrap_or_default();
        l.sort();
        r.sort();
        let (mut only_l, mut only_r) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        while i < l.len() || j < r.len() {
            if j == r.len() || (i < l.len() && l[i] < r[j]) {
                only_l.push(l[i].clone());
                i += 1;
            } else if i == l.len() || r[j] < l[i] {
                only_r.push(r[j].clone());
                j += 1;
            } else {
                i += 1;
                j += 1;
            }
        }
        if !only_l.is_empty() || !only_r.is_empty() {
            out.push(Mismatch {
                ns: k.0,
                step: k.1,
                only_left: only_l,
                only_right: only_r,
            });
        }
    }
    out
}

fn render_diff(
    out: &mut String,
    sc: &Scenario,
    sends: &[&Send],
    run: u32,
    diff: &[Mismatch],
    left: &str,
    right: &str,
) {
    let _ = writeln!(out, "   config: {}", sc.summary());
    let mut last_step = 0;
    for m in diff {
        if m.step != last_step {
            let s = sends[usize::from(m.step) - 1];
            let _ = writeln!(
                out,
                "-- send #{} from {}: {}",
                m.step,
                sc.port_name(s.from),
                describe(&s.frame.encode(run, m.step), run)
            );
            if let Some((why, _)) = &s.l2sw_differs {
                let _ = writeln!(out, "   (l2sw deliberately differs here: {why})");
            }
            last_step = m.step;
        }
        let _ = writeln!(out, "   namespace {}:", sc.port_name(m.ns));
        for (label, frames) in [(left, &m.only_left), (right, &m.only_right)] {
            let _ = writeln!(out, "     only {label} ({}):", frames.len());
            for f in frames.iter() {
                let _ = writeln!(out, "       {}", describe(f, run));
                out.push_str(&hex(f, "         "));
            }
        }
    }
}

fn render_transcript(
    sc: &Scenario,
    sends: &[&Send],
    run: u32,
    ref_label: &str,
    captured: &Captured,
    late: &BTreeSet<(usize, usize, u16)>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== scenario {} — reference {ref_label}", sc.name);
    let _ = writeln!(out, "   config: {}", sc.summary());
    let mut step_no = 0u16;
    for step in &sc.steps {
        match step {
            Step::Send(_) => {
                step_no += 1;
                let s = sends[usize::from(step_no) - 1];
                let _ = writeln!(
                    out,
                    "-- #{step_no} {} sends {}",
                    sc.port_name(s.from),
                    describe(&s.frame.encode(run, step_no), run)
                );
                let mut any = false;
                for ns in 0..sc.ports.len() {
                    for f in captured.get(&(ns, step_no)).into_iter().flatten() {
                        let lateness = if late.contains(&(0, ns, step_no)) {
                            " (arrived after its burst's window)"
                        } else {
                            ""
                        };
                        let _ = writeln!(
                            out,
                            "     {} <- {}{lateness}",
                            sc.port_name(ns),
                            describe(f, run)
                        );
                        any = true;
                    }
                }
                if !any {
                    let _ = writeln!(out, "     (delivered nowhere)");
                }
            }
            Step::Settle => {}
            Step::SetVlan(p, v) => {
                let _ = writeln!(out, "-- port {} set to {}", sc.port_name(*p), v.summary());
            }
            Step::DelMirror(m) => {
                let _ = writeln!(out, "-- mirror {m} deleted");
            }
        }
    }
    out
}
