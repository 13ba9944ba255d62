//! `DataplaneHandle`'s requests: the typed way other threads ask the
//! dataplane to do or show something, and starting the thread. Each request
//! is a closure run on the dataplane thread (see `event_loop`) between
//! batches, through `requests.rs`; tunnel ports' requests are `tunnel.rs`.

use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use mio::{Poll, Waker};

use super::components::flow_table::{FastPath, FastpathStatus, FlowRow, Retired};
use super::components::impair_queue::PortImpair;
use super::components::monitors::MonitorHandle;
use super::event_loop::run;
use super::meta::{DataplaneEvent, PortMeta, ReturnedPorts};
use super::poll_mode::BusyPoll;
use super::protect;
use super::readers::{ActiveReader, ReaderHandle, ReaderSpec};
use super::requests::{insert_port, DataplaneError, DataplaneHandle};
use super::snapshot::{
    FdbRow, LatencyRow, MirrorRow, PortRow, PortStats, StatsSnapshot, SwitchTotals,
};
use super::state::{Job, State, WAKER_TOKEN};
use super::tunnel;
use crate::impair::{ImpairRow, ImpairSpec};
use crate::observe::events::SwitchEvent;
use crate::observe::explain::explain;
use crate::observe::records::TraceReport;
use crate::observe::{LatencyHistogram, PortCounters};
use crate::port::Port;
use crate::switch::{FdbKey, Mirror, Mode, Plan, PortId, PortPolicy, Settings, Switch, Timestamp};
use crate::wire::MacAddr;

/// A switch-wide setting, as `l2sw set` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    AgeingTime(u64),
    FdbMax(usize),
    FdbMaxPerPort(u32),
    GroupFwdMask(u16),
    LoopProtect(crate::switch::LoopProtect),
    FlapThreshold(u32),
    LoopHold(u64),
}

/// Returned by `spawn`: the handle, the thread, and the event stream.
pub struct Spawned {
    pub handle: DataplaneHandle,
    pub thread: JoinHandle<ReturnedPorts>,
    pub events: Receiver<DataplaneEvent>,
}

impl DataplaneHandle {
    /// Starts the dataplane thread with an empty switch, in the default
    /// poll mode.
    pub fn spawn(settings: Settings) -> std::io::Result<Spawned> {
        Self::spawn_with(settings, BusyPoll::default())
    }

    /// Starts the dataplane thread, spinning instead of sleeping as `busy` says.
    pub fn spawn_with(settings: Settings, busy: BusyPoll) -> std::io::Result<Spawned> {
        let poll = Poll::new()?;
        let waker = std::sync::Arc::new(Waker::new(poll.registry(), WAKER_TOKEN)?);
        let registry = poll.registry().try_clone()?;
        let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<Job>();
        let (ev_tx, ev_rx) = crossbeam_channel::unbounded();
        let state = State::new(Switch::new(settings), registry, ev_tx);
        let thread = std::thread::Builder::new()
            .name("l2sw-dataplane".into())
            .spawn(move || run(state, poll, jobs_rx, busy))?;
        Ok(Spawned {
            handle: DataplaneHandle::new(jobs_tx, waker),
            thread,
            events: ev_rx,
        })
    }

    pub fn add_port(&self, port: Box<dyn Port>, meta: PortMeta) -> Result<PortId, DataplaneError> {
        // Asked here, not on the dataplane thread: it waits on netlink.
        let peer = crate::fastpath::peer_elsewhere(&port.info().ifname);
        let (id, pending) = self.call(move |st| {
            let id = insert_port(st, port, meta)?;
            // A new port can change flood sets and VLAN awareness.
            st.fastpath_flush();
            let pending = match st.ports.get(id.index()) {
                Some(Some(e)) => st.fastpath.attach_later(id, e, peer),
                _ => None,
            };
            Ok::<_, DataplaneError>((id, pending))
        })??;
        // The port forwards in user space from here; the offload follows
        // when its tcx link is made (docs/benchmarks.md: ~10 ms of every
        // `ns plug` was spent waiting for it).
        if let Some(p) = pending {
            let handle = self.clone();
            let spawned = std::thread::Builder::new()
                .name("l2sw-offload".into())
                .spawn(move || {
                    let link = p.link();
                    // The dataplane stopped meanwhile: the link detaches on drop.
                    let _ = handle.call(move |st| {
                        let State {
                            fastpath, ports, ..
                        } = st;
                        fastpath.complete(p, link, ports);
                    });
                });
            if let Err(e) = spawned {
                eprintln!("l2sw: port {id:?} stays in user space: cannot start a thread: {e}");
            }
        }
        Ok(id)
    }

    /// Removes a port and hands it back (dropping it closes its fd).
    pub fn remove_port(&self, name: &str) -> Result<(PortMeta, Box<dyn Port>), DataplaneError> {
        self.remove_port_retiring(name)
            .map(|(meta, port, _)| (meta, port))
    }

    /// [`remove_port`](Self::remove_port), also handing back the port's
    /// fast-path attachment, so the caller decides which thread pays for
    /// closing it (and the port's ring).
    pub fn remove_port_retiring(
        &self,
        name: &str,
    ) -> Result<(PortMeta, Box<dyn Port>, Retired), DataplaneError> {
        let name = name.to_string();
        self.call(move |st| {
            let id = st
                .find(&name)
                .ok_or_else(|| DataplaneError::NoSuchPort(name.clone()))?;
            let e = st.take(id).ok_or(DataplaneError::NoSuchPort(name))?;
            let port = e.meta.name.clone();
            st.monitors.emit(|| SwitchEvent::PortRemoved { port });
            Ok((e.meta, e.port, st.fastpath.take_retired()))
        })?
    }

    pub fn ports(&self) -> Result<Vec<PortRow>, DataplaneError> {
        self.call(|st| {
            let now = Timestamp::now();
            st.ports
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.as_ref().map(|e| (PortId(i as u16), e)))
                .map(|(id, e)| PortRow {
                    name: e.meta.name.clone(),
                    id: id.0,
                    info: e.port.info(),
                    netns: e.meta.netns.clone(),
                    max_learned: e.meta.policy.max_learned,
                    learned: st.switch.fdb().learned_on(id),
                    policy: e.meta.policy.clone(),
                    vxlan: tunnel::row(st, id, e.port.as_ref()),
                    impair: e
                        .impair
                        .as_ref()
                        .and_then(|s| s.active.as_ref())
                        .map(|a| a.row()),
                    blocked: protect::row(st, id, now),
                })
                .collect()
        })
    }

    /// Opens a port blocked by loop protection or BPDU guard; whether it was blocked.
    pub fn unblock(&self, name: &str) -> Result<bool, DataplaneError> {
        let name = name.to_string();
        self.call(move |st| {
            let id = st
                .find(&name)
                .ok_or_else(|| DataplaneError::NoSuchPort(name.clone()))?;
            Ok(protect::unblock(st, id)?)
        })?
    }

    /// Impairs a port's link as `spec` says (checked with `validate`), or
    /// with `None` clears it. Frames still queued under the previous
    /// settings leave at once. `fallback_seed` seeds the random source when
    /// the spec has none.
    pub fn set_impair(
        &self,
        name: &str,
        spec: Option<ImpairSpec>,
        fallback_seed: u64,
    ) -> Result<Option<ImpairRow>, DataplaneError> {
        if let Some(s) = &spec {
            s.validate()?;
        }
        let name = name.to_string();
        self.call(move |st| {
            let id = st
                .find(&name)
                .ok_or_else(|| DataplaneError::NoSuchPort(name.clone()))?;
            let Some(Some(e)) = st.ports.get_mut(id.index()) else {
                return Err(DataplaneError::NoSuchPort(name));
            };
            let next = spec.map(|s| PortImpair::new(s, fallback_seed));
            let row = next.as_ref().map(|p| p.row());
            if e.impair.is_none() {
                if next.is_none() {
                    return Ok(None);
                }
                e.impair = Some(Box::default());
                st.impaired += 1;
            }
            if let Some(slot) = e.impair.as_mut() {
                slot.replace(next);
            }
            // An impaired port's frames must all pass its queue.
            st.fastpath_flush();
            Ok(row)
        })?
    }

    /// Changes a port's policy with `f`; the switch validates the result.
    pub fn update_policy(
        &self,
        name: &str,
        f: impl FnOnce(&mut PortPolicy) + Send + 'static,
    ) -> Result<PortPolicy, DataplaneError> {
        let name = name.to_string();
        self.call(move |st| {
            let id = st
                .find(&name)
                .ok_or_else(|| DataplaneError::NoSuchPort(name.clone()))?;
            let mut policy = st
                .switch
                .port_policy(id)
                .cloned()
                .ok_or_else(|| DataplaneError::NoSuchPort(name.clone()))?;
            f(&mut policy);
            st.switch.set_port_policy(id, policy.clone())?;
            st.fastpath_flush();
            if let Some(Some(e)) = st.ports.get_mut(id.index()) {
                e.meta.policy = policy.clone();
            }
            let p = policy.clone();
            st.monitors.emit(|| SwitchEvent::PortChanged {
                port: name,
                policy: p,
            });
            Ok(policy)
        })?
    }

    /// Adds a mirror between named ports.
    pub fn add_mirror(
        &self,
        name: &str,
        to: &str,
        src: Vec<String>,
        dst: Vec<String>,
    ) -> Result<(), DataplaneError> {
        let (name, to) = (name.to_string(), to.to_string());
        self.call(move |st| {
            let find = |n: &str| {
                st.find(n)
                    .ok_or_else(|| DataplaneError::NoSuchPort(n.into()))
            };
            let m = Mirror {
                name,
                output: find(&to)?,
                src: src.iter().map(|n| find(n)).collect::<Result<_, _>>()?,
                dst: dst.iter().map(|n| find(n)).collect::<Result<_, _>>()?,
            };
            st.switch.add_mirror(m)?;
            st.fastpath_flush();
            Ok(())
        })?
    }

    pub fn remove_mirror(&self, name: &str) -> Result<(), DataplaneError> {
        let name = name.to_string();
        self.call(move |st| {
            st.fastpath_flush();
            st.switch.remove_mirror(&name).map(drop).map_err(Into::into)
        })?
    }

    /// Mirrors with port names.
    pub fn mirrors(&self) -> Result<Vec<MirrorRow>, DataplaneError> {
        self.call(|st| {
            let names = st.names();
            let name = |p: &PortId| names.get(p.index()).cloned().unwrap_or_default();
            st.switch
                .mirrors()
                .iter()
                .map(|m| MirrorRow {
                    name: m.name.clone(),
                    to: name(&m.output),
                    src: m.src.iter().map(name).collect(),
                    dst: m.dst.iter().map(name).collect(),
                })
                .collect()
        })
    }

    /// FDB entries, sorted by VLAN, then MAC.
    pub fn fdb(&self) -> Result<Vec<FdbRow>, DataplaneError> {
        self.call(|st| {
            let now = Timestamp::now();
            let fdb = st.switch.fdb();
            let mut rows: Vec<FdbRow> = fdb
                .entries_counted(now)
                .map(|(k, e, frames)| FdbRow {
                    mac: k.mac,
                    vlan: k.vlan,
                    port: st.name_of(e.port),
                    kind: e.kind,
                    age_s: fdb.age_secs(&e, now),
                    frames,
                    dst: e.remote,
                })
                .collect();
            rows.sort_by_key(|r| (r.vlan, r.mac));
            rows
        })
    }

    pub fn fdb_add(&self, mac: MacAddr, vlan: u16, port: &str) -> Result<(), DataplaneError> {
        let port = port.to_string();
        self.call(move |st| {
            let id = st
                .find(&port)
                .ok_or_else(|| DataplaneError::NoSuchPort(port.clone()))?;
            st.switch
                .fdb_mut()
                .add_static(FdbKey::new(vlan, mac), id, Timestamp::now())?;
            st.fastpath_flush();
            st.monitors
                .emit(|| SwitchEvent::StaticAdded { mac, vlan, port });
            Ok(())
        })?
    }

    pub fn fdb_del(&self, mac: MacAddr, vlan: u16) -> Result<(), DataplaneError> {
        self.call(move |st| {
            st.switch.fdb_mut().remove(FdbKey::new(vlan, mac))?;
            st.fastpath_flush();
            st.monitors.emit(|| SwitchEvent::Deleted { mac, vlan });
            Ok(())
        })?
    }

    /// Flushes learned entries (and static ones with `include_static`).
    pub fn fdb_flush(
        &self,
        port: Option<&str>,
        include_static: bool,
    ) -> Result<usize, DataplaneError> {
        let port = port.map(str::to_string);
        self.call(move |st| {
            let id = match &port {
                Some(p) => Some(
                    st.find(p)
                        .ok_or_else(|| DataplaneError::NoSuchPort(p.clone()))?,
                ),
                None => None,
            };
            let entries = st.switch.fdb_mut().flush(id, include_static);
            st.fastpath_flush();
            st.monitors.emit(|| SwitchEvent::Flushed {
                port,
                include_static,
                entries,
            });
            Ok(entries)
        })?
    }

    pub fn settings(&self) -> Result<Settings, DataplaneError> {
        self.call(|st| st.switch.settings())
    }

    pub fn set(&self, setting: Setting) -> Result<Settings, DataplaneError> {
        self.call(move |st| {
            match setting {
                Setting::AgeingTime(s) => st.switch.set_ageing_time(s),
                Setting::FdbMax(n) => st.switch.set_fdb_max(n),
                Setting::FdbMaxPerPort(n) => st.switch.set_fdb_max_per_port(n),
                Setting::GroupFwdMask(m) => st.switch.set_group_fwd_mask(m)?,
                Setting::LoopProtect(m) => st.switch.set_loop_protect(m),
                Setting::FlapThreshold(n) => st.switch.set_flap_threshold(n)?,
                Setting::LoopHold(s) => st.switch.set_loop_hold(s),
            }
            st.fastpath_flush();
            let settings = st.switch.settings();
            st.monitors
                .emit(|| SwitchEvent::SettingsChanged { settings });
            Ok(settings)
        })?
    }

    pub fn stats(&self) -> Result<StatsSnapshot, DataplaneError> {
        self.call(|st| {
            st.collect_kernel_drops();
            let State {
                fastpath, ports, ..
            } = &mut *st;
            fastpath.sync(ports);
            let mut totals = st.departed;
            let ports: Vec<PortStats> = st
                .ports
                .iter()
                .flatten()
                .map(|e| {
                    totals.merge(&e.counters);
                    PortStats {
                        name: e.meta.name.clone(),
                        counters: e.counters.with_fastpath(),
                    }
                })
                .collect();
            let fdb = st.switch.fdb();
            StatsSnapshot {
                uptime_s: Timestamp::now().since(st.started).as_secs(),
                settings: st.switch.settings(),
                ports,
                totals: SwitchTotals {
                    fdb_entries: fdb.entries(Timestamp::now()).count(),
                    fdb_learned: fdb.learned_total(),
                    fdb: fdb.counters(),
                    counters: totals.with_fastpath(),
                },
                removed_ports: st.removed.clone(),
                protect: super::snapshot::ProtectTotals {
                    counters: st.switch.protect_counters(),
                    blocked: st
                        .switch
                        .ports()
                        .filter(|p| st.switch.is_blocked(*p))
                        .map(|p| st.name_of(p))
                        .collect(),
                },
            }
        })
    }

    pub fn reset_stats(&self) -> Result<(), DataplaneError> {
        self.call(|st| {
            // Kernel counts so far become the baseline, then everything is zeroed.
            let State {
                fastpath, ports, ..
            } = &mut *st;
            fastpath.sync(ports);
            for e in st.ports.iter_mut().flatten() {
                e.counters = PortCounters::default();
            }
            st.departed = PortCounters::default();
            st.switch.fdb_mut().reset_counters();
            st.removed.clear();
        })
    }

    /// Residence-time histograms: every egress port's, then every pair's,
    /// narrowed to one egress port or one (ingress, egress) pair. With
    /// `reset`, the selected histograms are emptied after being read.
    pub fn latency(
        &self,
        port: Option<&str>,
        pair: Option<(&str, &str)>,
        reset: bool,
    ) -> Result<Vec<LatencyRow>, DataplaneError> {
        let port = port.map(str::to_string);
        let pair = pair.map(|(a, b)| (a.to_string(), b.to_string()));
        self.call(move |st| {
            let find = |n: &str| {
                st.find(n)
                    .ok_or_else(|| DataplaneError::NoSuchPort(n.into()))
            };
            let port = port.as_deref().map(find).transpose()?;
            let pair = match &pair {
                Some((a, b)) => Some((find(a)?, find(b)?)),
                None => None,
            };
            let names = st.names();
            let name = |p: PortId| names.get(p.index()).cloned().unwrap_or_default();
            let mut rows = Vec::new();
            if pair.is_none() {
                for (i, e) in st.ports.iter_mut().enumerate() {
                    let Some(e) = e else { continue };
                    let id = PortId(i as u16);
                    if port.is_some_and(|p| p != id) {
                        continue;
                    }
                    rows.push(LatencyRow {
                        scope: "port".into(),
                        ingress: None,
                        egress: name(id),
                        summary: e.latency.summary(),
                        histogram: e.latency.clone(),
                    });
                    if reset {
                        e.latency.reset();
                    }
                }
            }
            let mut keys: Vec<(PortId, PortId)> = st.pairs.keys().copied().collect();
            keys.sort();
            for k in keys {
                let wanted = match (pair, port) {
                    (Some(p), _) => p == k,
                    (None, Some(p)) => k.1 == p,
                    (None, None) => true,
                };
                if !wanted {
                    continue;
                }
                let h = st.pairs.get_mut(&k).expect("key listed");
                rows.push(LatencyRow {
                    scope: "pair".into(),
                    ingress: Some(name(k.0)),
                    egress: name(k.1),
                    summary: h.summary(),
                    histogram: h.clone(),
                });
                if reset {
                    h.reset();
                }
            }
            if let (Some((a, b)), true) = (pair, rows.is_empty()) {
                // A pair that never carried a frame: an empty histogram.
                rows.push(LatencyRow {
                    scope: "pair".into(),
                    ingress: Some(name(a)),
                    egress: name(b),
                    summary: LatencyHistogram::new().summary(),
                    histogram: LatencyHistogram::new(),
                });
            }
            Ok(rows)
        })?
    }

    /// Starts a capture or live-trace tap. Port names (in `spec.ports` and in
    /// the filter) must exist.
    pub fn add_reader(&self, spec: ReaderSpec) -> Result<ReaderHandle, DataplaneError> {
        self.call(move |st| {
            for n in spec.filter.ports() {
                if st.find(&n).is_none() {
                    return Err(DataplaneError::NoSuchPort(n));
                }
            }
            let ports = if spec.ports.is_empty() {
                None
            } else {
                let mut ids = Vec::new();
                for n in &spec.ports {
                    ids.push(
                        st.find(n)
                            .ok_or_else(|| DataplaneError::NoSuchPort(n.clone()))?,
                    );
                }
                Some(ids)
            };
            let id = st.next_reader_id;
            st.next_reader_id += 1;
            // Observed ports take the user-space path while the reader lives.
            st.fastpath_flush();
            let (tap, handle) = ActiveReader::new(id, ports, spec);
            st.readers.push(tap);
            Ok(handle)
        })?
    }

    /// Starts delivering switch events to a new monitor.
    pub fn subscribe(&self) -> Result<MonitorHandle, DataplaneError> {
        self.call(|st| st.monitors.subscribe())
    }

    pub fn unsubscribe(&self, id: u64) -> Result<(), DataplaneError> {
        self.call(move |st| st.monitors.unsubscribe(id))
    }

    pub fn remove_reader(&self, id: u64) -> Result<(), DataplaneError> {
        self.call(move |st| st.readers.retain(|t| t.id != id))
    }

    /// Runs `frame` through the decision as if received on `ingress`,
    /// without learning or sending, and explains it.
    pub fn trace(&self, ingress: &str, frame: Vec<u8>) -> Result<TraceReport, DataplaneError> {
        let ingress = ingress.to_string();
        self.call(move |st| {
            let id = st
                .find(&ingress)
                .ok_or_else(|| DataplaneError::NoSuchPort(ingress.clone()))?;
            let now = Timestamp::now();
            let mut plan = Plan::explained();
            st.switch.plan(id, &frame, now, Mode::Preview, &mut plan);
            let names = st.names();
            let name = |p: PortId| names.get(p.index()).cloned().unwrap_or_default();
            let mut report = explain(&st.switch, &name, &frame, &plan, now, true);
            report.steps.push(st.fastpath_step(id, &frame, &plan));
            Ok(report)
        })?
    }

    /// Turns the fast path on (loading the programs and attaching them to
    /// every port that can carry them) or off (every entry out, every
    /// program detached). Returns the resulting status.
    pub fn set_fastpath(&self, on: bool) -> Result<FastpathStatus, DataplaneError> {
        let peers: Vec<(String, bool)> = if on {
            self.ports()?
                .into_iter()
                .map(|p| {
                    let peer = crate::fastpath::peer_elsewhere(&p.info.ifname);
                    (p.name, peer)
                })
                .collect()
        } else {
            Vec::new()
        };
        self.call(move |st| {
            let ids: Vec<PortId> = st.switch.ports().collect();
            for &id in &ids {
                st.fastpath.detach(id, &mut st.ports);
            }
            st.fastpath = FastPath::default();
            if on && st.fastpath.enable().is_ok() {
                for (name, peer) in peers {
                    if let Some(id) = st.find(&name) {
                        attach_port(st, id, peer);
                    }
                }
            }
            st.fastpath.status()
        })
    }

    /// Whether the fast path is on, and why not.
    pub fn fastpath_status(&self) -> Result<FastpathStatus, DataplaneError> {
        self.call(|st| st.fastpath.status())
    }

    /// Installed fast-path entries with their counts.
    pub fn fastpath_flows(&self) -> Result<Vec<FlowRow>, DataplaneError> {
        self.call(|st| st.fastpath_rows())
    }

    /// Asks the thread to stop; `Spawned::thread` then returns the ports.
    pub fn stop(&self) {
        let _ = self.call(|st| st.stop = true);
    }
}
/// Attaches the fast-path programs to port `id` where its kind allows.
fn attach_port(st: &mut State, id: PortId, peer: bool) {
    let State {
        fastpath, ports, ..
    } = st;
    if let Some(Some(e)) = ports.get(id.index()) {
        fastpath.attach(id, e, peer);
    }
}
