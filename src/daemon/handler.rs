//! Executes control requests against the dataplane and the resource records.

use serde_json::{json, Value};

use super::journal::{claimed_by_other, RunDirLock};
use super::plug::plug_namespace;
use super::port_kinds::build_port;
use super::reaper::Reap;
use super::resources::{Origin, Plug};
use super::Inner;
use crate::control::protocol::{Request, Response, Via};
use crate::control::server::Handler;
use crate::dataplane::{PortMeta, Setting};
use crate::switch::PortPolicy;

/// Largest ageing time accepted (the bridge takes up to ~11 days too).
const MAX_AGEING_S: u64 = 1_000_000;

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Parses `set KEY VALUE`, accepting JSON numbers or strings of digits.
pub fn parse_setting(key: &str, value: &Value) -> Result<Setting, String> {
    let num = |max: u64| -> Result<u64, String> {
        let n = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => {
                let s = s.trim();
                if let Some(hex) = s.strip_prefix("0x") {
                    u64::from_str_radix(hex, 16).ok()
                } else {
                    s.parse().ok()
                }
            }
            _ => None,
        }
        .ok_or_else(|| format!("{key}: {value} is not a non-negative integer"))?;
        if n > max {
            return Err(format!("{key}: {n} is out of range (0..={max})"));
        }
        Ok(n)
    };
    match key {
        "ageing-time" | "ageing_time" => Ok(Setting::AgeingTime(num(MAX_AGEING_S)?)),
        "fdb-max" | "fdb_max" => Ok(Setting::FdbMax(num(u32::MAX as u64)? as usize)),
        "fdb-max-per-port" | "fdb_max_per_port" => {
            Ok(Setting::FdbMaxPerPort(num(u32::MAX as u64)? as u32))
        }
        "group-fwd-mask" | "group_fwd_mask" => Ok(Setting::GroupFwdMask(num(0xffff)? as u16)),
        "loop-protect" | "loop_protect" => match value {
            Value::String(s) => s
                .trim()
                .parse()
                .map(Setting::LoopProtect)
                .map_err(|e| format!("{key}: {e}")),
            other => Err(format!("{key}: {other} is not off, report or block")),
        },
        "flap-threshold" | "flap_threshold" => {
            match num(u32::MAX as u64)? {
                0 => Err(format!("{key}: must be at least 1 (moves per second)")),
                n => Ok(Setting::FlapThreshold(n as u32)),
            }
        }
        "loop-hold" | "loop_hold" => {
            // Seconds, with an optional unit: 30, 30s, 5m.
            let text = match value {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                other => return Err(format!("{key}: {other} is not a duration")),
            };
            let (digits, mult) = match text.strip_suffix('m') {
                Some(d) => (d, 60),
                None => (text.strip_suffix('s').unwrap_or(&text), 1),
            };
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("{key}: {text:?} is not a duration (e.g. 30s, 5m, 0 = until port unblock)"))?;
            Ok(Setting::LoopHold(n.saturating_mul(mult).min(MAX_AGEING_S)))
        }
        other => Err(format!(
            "unknown setting {other:?} (known: ageing-time, fdb-max, fdb-max-per-port, group-fwd-mask, loop-protect, flap-threshold, loop-hold)"
        )),
    }
}

impl Inner {
    fn run(&self, req: Request) -> anyhow::Result<Value> {
        let dp = &self.dp;
        Ok(match req {
            Request::Status => {
                let ports = dp.ports()?;
                let res = self.res.lock().unwrap_or_else(|p| p.into_inner());
                to_value(crate::control::views::StatusReport {
                    name: self.name.clone(),
                    pid: std::process::id(),
                    uptime_s: self.started.elapsed().as_secs(),
                    socket: self.socket.clone(),
                    ports: ports.len(),
                    namespaces: res.plugs.len(),
                    fdb_entries: dp.fdb()?.len(),
                    settings: dp.settings()?,
                    busy_poll: self.busy_poll,
                    fastpath: dp.fastpath_status()?,
                    blocked_ports: ports
                        .iter()
                        .filter(|p| p.blocked.is_some())
                        .map(|p| p.name.clone())
                        .collect(),
                })
            }
            Request::PortAdd(add) => {
                let name = add.name.clone().unwrap_or_else(|| add.ifname.clone());
                crate::netns::validate_ifname(&name)
                    .map_err(|e| anyhow::anyhow!("port name: {e}"))?;
                let mut res = self.res.lock().unwrap_or_else(|p| p.into_inner());
                let existing = dp.ports()?;
                if existing.iter().any(|p| p.name == name) {
                    anyhow::bail!("a port named {name} already exists");
                }
                if let Some(p) = existing
                    .iter()
                    .find(|p| p.info.ifindex.is_some() && p.info.ifname == add.ifname)
                {
                    anyhow::bail!("interface {} is already port {}", add.ifname, p.name);
                }
                // Held until the claim is in the journal: another switch
                // checking the same interface waits and then sees it.
                let lock = match add.kind {
                    crate::control::protocol::AddKind::Iface => Some(self.claim_lock(&add.ifname)?),
                    _ => None,
                };
                let built = if add.kind.is_socket() {
                    let dir = self
                        .socket
                        .parent()
                        .unwrap_or(std::path::Path::new("."))
                        .join(&self.name);
                    let b = super::port_kinds::build_socket_port(&add, &name, &dir)?;
                    // Journaled once bound (a failed bind may have met a live
                    // socket that is not ours), so a crashed switch's socket
                    // is removed by the next start or `l2sw cleanup`.
                    if let Some(path) = super::port_kinds::created_socket(&add, &name, &dir) {
                        res.push_owned(&name, super::resources::Owned::SocketFile { path });
                    }
                    b
                } else {
                    build_port(&add, &name, &mut res)?
                };
                let meta = PortMeta {
                    name: name.clone(),
                    netns: built.netns.clone(),
                    policy: PortPolicy {
                        max_learned: add.max_learned,
                        ..PortPolicy::default()
                    },
                };
                let endpoint = built.endpoint;
                let reads = built.host_ifname.clone();
                match dp.add_port(built.port, meta) {
                    Ok(id) => {
                        if let Some(e) = endpoint {
                            res.endpoints.insert(name.clone(), e);
                        }
                        if let Some(i) = reads {
                            res.claim(&name, &i);
                        }
                        res.origins.insert(name.clone(), Origin::Port(add));
                        drop(lock);
                        json!({"name": name, "id": id.0})
                    }
                    Err(e) => {
                        res.release_port(&name);
                        return Err(e.into());
                    }
                }
            }
            Request::PortAddVxlan(add) => self.add_vxlan(add)?,
            Request::PortDel { name } => {
                let mut res = self.res.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(plug) = res.plugs.get(&name) {
                    anyhow::bail!(
                        "port {name} is namespace {} plugged into the switch; use `ns unplug {}`",
                        plug.ns,
                        plug.ns
                    );
                }
                let (_meta, port) = dp.remove_port(&name)?;
                drop(port);
                let errors = res.release_port(&name);
                json!({"removed": name, "cleanup_errors": errors})
            }
            Request::PortList => to_value(self.port_views()?),
            Request::PortSet(set) => {
                if set.is_empty() {
                    let mut flags = vec!["--max-learned".to_string()];
                    flags.extend(crate::control::policy::PolicyFlags::cli_flags());
                    let last = flags.pop().unwrap_or_default();
                    anyhow::bail!(
                        "port set {}: nothing to change (give {} or {last})",
                        set.name,
                        flags.join(", ")
                    );
                }
                let name = set.name.clone();
                let policy = dp.update_policy(&name, move |p| set.apply(p))?;
                json!({"name": name, "policy": to_value(policy)})
            }
            Request::PortUnblock { name } => {
                let was = dp.unblock(&name)?;
                json!({"name": name, "unblocked": was})
            }
            Request::PortImpair { name, impair } => {
                // Without --seed a seed is drawn here (the dataplane reads no
                // entropy) and shown, so the run can be replayed.
                let seed = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0)
                    ^ ((std::process::id() as u64) << 32);
                let row = dp.set_impair(&name, impair.map(|b| *b), seed)?;
                to_value(crate::control::protocol::PortImpairReply { name, impair: row })
            }
            Request::PortVlan {
                name,
                mode,
                tag,
                trunks,
            } => {
                let vlan = crate::control::protocol::vlan_mode(&mode, tag, trunks)
                    .map_err(anyhow::Error::msg)?;
                let policy = dp.update_policy(&name, move |p| p.vlan = vlan)?;
                json!({"name": name, "vlan": to_value(policy.vlan)})
            }
            Request::MirrorAdd { name, to, src, dst } => {
                if src.is_empty() && dst.is_empty() {
                    anyhow::bail!("mirror {name}: give --src and/or --dst ports to copy from");
                }
                dp.add_mirror(&name, &to, src, dst)?;
                to_value(dp.mirrors()?.into_iter().find(|m| m.name == name))
            }
            Request::MirrorDel { name } => {
                dp.remove_mirror(&name)?;
                json!({"removed": name})
            }
            Request::MirrorList => to_value(dp.mirrors()?),
            Request::FdbShow { port } => {
                let mut rows = dp.fdb()?;
                if let Some(p) = port {
                    if !dp.ports()?.iter().any(|r| r.name == p) {
                        anyhow::bail!("no port named {p}");
                    }
                    rows.retain(|r| r.port == p);
                }
                to_value(rows)
            }
            Request::FdbAdd {
                mac,
                port,
                vlan,
                dst,
            } => {
                check_vlan(vlan)?;
                match (dst, dp.is_tunnel(&port)?) {
                    (_, None) => anyhow::bail!("no port named {port}"),
                    (Some(d), Some(true)) => dp.fdb_add_remote(mac, vlan, &port, d)?,
                    (Some(_), Some(false)) => {
                        anyhow::bail!("--dst applies to VXLAN ports only; {port} is not one")
                    }
                    (None, Some(true)) => anyhow::bail!(
                        "{port} is a VXLAN port: give the remote VTEP the MAC sits behind with --dst IP"
                    ),
                    (None, Some(false)) => dp.fdb_add(mac, vlan, &port)?,
                }
                json!({"mac": mac, "vlan": vlan, "port": port, "type": "static", "dst": dst})
            }
            Request::FdbDel { mac, vlan } => {
                check_vlan(vlan)?;
                dp.fdb_del(mac, vlan)?;
                json!({"removed": mac, "vlan": vlan})
            }
            Request::FdbFlush {
                port,
                include_static,
            } => {
                let n = dp.fdb_flush(port.as_deref(), include_static)?;
                json!({"flushed": n})
            }
            Request::Set { key, value } => {
                let setting = parse_setting(&key, &value).map_err(anyhow::Error::msg)?;
                to_value(dp.set(setting)?)
            }
            Request::Get => to_value(dp.settings()?),
            Request::FastpathShow => to_value(dp.fastpath_flows()?),
            Request::Stats { port } => {
                let mut s = dp.stats()?;
                if let Some(p) = port {
                    s.ports.retain(|r| r.name == p);
                    if s.ports.is_empty() {
                        anyhow::bail!("no port named {p}");
                    }
                }
                to_value(s)
            }
            Request::StatsReset => {
                dp.reset_stats()?;
                json!({"reset": true})
            }
            Request::NsPlug(plug) => {
                let mut res = self.res.lock().unwrap_or_else(|p| p.into_inner());
                if res.plugs.contains_key(&plug.ns) {
                    anyhow::bail!("namespace {} is already plugged into this switch", plug.ns);
                }
                if dp.ports()?.iter().any(|p| p.name == plug.ns) {
                    anyhow::bail!(
                        "a port named {} already exists; the plugged namespace's port would take that name",
                        plug.ns
                    );
                }
                let built = plug_namespace(&self.name, &plug, &mut res, &self.sockets)?;
                let meta = PortMeta {
                    name: plug.ns.clone(),
                    netns: Some(plug.ns.clone()),
                    policy: PortPolicy {
                        max_learned: plug.max_learned,
                        ..PortPolicy::default()
                    },
                };
                let record = Plug {
                    ns: plug.ns.clone(),
                    via: plug.via,
                    port: plug.ns.clone(),
                    ifname: built.ifname.clone(),
                    host_ifname: built.host_ifname.clone(),
                    ip: plug.ip.clone(),
                    created_netns: built.created_netns,
                    port_vanished: false,
                };
                let endpoint = built.endpoint;
                match dp.add_port(built.port, meta) {
                    Ok(_) => {
                        res.plugs.insert(plug.ns.clone(), record.clone());
                        if let Some(e) = endpoint {
                            res.endpoints.insert(plug.ns.clone(), e);
                        }
                        if let Some(i) = &record.host_ifname {
                            res.claim(&plug.ns, i);
                        }
                        res.origins
                            .insert(plug.ns.clone(), Origin::Plug(plug.clone()));
                        to_value(record)
                    }
                    Err(e) => {
                        res.release_port(&plug.ns);
                        return Err(e.into());
                    }
                }
            }
            Request::NsUnplug { ns } => {
                let mut res = self.res.lock().unwrap_or_else(|p| p.into_inner());
                let Some(plug) = res.plugs.remove(&ns) else {
                    anyhow::bail!("namespace {ns} is not plugged into this switch");
                };
                let reaper = self.reaper.lock().unwrap_or_else(|p| p.into_inner());
                if !plug.port_vanished {
                    match dp.remove_port_retiring(&plug.port) {
                        // Closing it (ring, tcx link) is the reaper's.
                        Ok((_, port, retired)) => match &*reaper {
                            Some(r) => {
                                let _ = r.send(Reap::Close(port, retired));
                            }
                            None => drop((port, retired)),
                        },
                        // Vanished between the check and now: nothing to close.
                        Err(crate::dataplane::DataplaneError::NoSuchPort(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                // Deleting the namespace it made destroys the veth pair
                // too; no RTM_DELLINK of its own (see reaper.rs).
                let deferred = match (&plug.host_ifname, plug.via, &*reaper) {
                    (Some(host), Via::Veth, Some(_)) if plug.created_netns => {
                        res.defer_link(&plug.port, host).then(|| host.clone())
                    }
                    _ => None,
                };
                let errors = res.release_port(&plug.port);
                if let (Some(host), Some(r)) = (deferred, &*reaper) {
                    let _ = r.send(Reap::Link(host));
                }
                json!({
                    "unplugged": ns,
                    "removed_netns": plug.created_netns,
                    "cleanup_errors": errors,
                })
            }
            Request::ContainerAttach(a) => self.attach_container(a)?,
            Request::ContainerDetach {
                id,
                ifname,
                delete_link,
            } => self.detach_container(&id, &ifname, delete_link)?,
            Request::ContainerGc { network, keep } => self.gc_containers(&network, &keep)?,
            Request::NsList => {
                self.forget_deleted_namespaces();
                let res = self.res.lock().unwrap_or_else(|p| p.into_inner());
                to_value(res.plugs.values().collect::<Vec<_>>())
            }
            Request::Trace {
                ingress,
                src,
                dst,
                vlan,
                ethertype,
            } => {
                let frame = synthetic_frame(src, dst, vlan, ethertype.unwrap_or(0x0800))?;
                to_value(dp.trace(&ingress, frame)?)
            }
            Request::Show => to_value(self.show()?),
            Request::ConfigDump => to_value(self.config_dump()?),
            Request::Capture { .. } | Request::TraceLive { .. } | Request::Monitor { .. } => {
                anyhow::bail!(
                    "{} streams its answer; it is served on its own connection",
                    "this request"
                )
            }
            Request::Latency { port, pair, reset } => {
                if port.is_some() && pair.is_some() {
                    anyhow::bail!("give --port or --pair, not both");
                }
                let pair = match pair.as_deref() {
                    None => None,
                    Some(p) => match p.split_once(',') {
                        Some((a, b)) if !a.is_empty() && !b.is_empty() => Some((a, b)),
                        _ => {
                            anyhow::bail!("--pair takes INGRESS,EGRESS (two port names), not {p:?}")
                        }
                    },
                };
                to_value(dp.latency(port.as_deref(), pair, reset)?)
            }
            Request::EvpnEnable(req) => self.evpn_enable(req)?,
            Request::EvpnDisable => self.evpn_disable()?,
            Request::EvpnShow => self.evpn_show()?,
            Request::Shutdown => {
                let _ = self
                    .shutdown
                    .send("shutdown requested over the control socket".into());
                json!({"stopping": self.name})
            }
        })
    }
}

impl Inner {
    /// Refuses an interface another running switch reads; the returned lock
    /// keeps others from claiming it until this switch's journal says so.
    pub(super) fn claim_lock(&self, ifname: &str) -> anyhow::Result<RunDirLock> {
        let lock = RunDirLock::acquire(&self.run_dir)?;
        if let Some((other, port)) = claimed_by_other(&self.run_dir, &self.name, ifname) {
            anyhow::bail!(
                "interface {ifname} is already port {port} of switch {other} (an interface can be a port of one switch only)"
            );
        }
        Ok(lock)
    }

    /// Plugged namespaces that were deleted behind the switch's back (e.g.
    /// by another switch that shared them and unplugged them) are unplugged
    /// here too, so `ns list` shows what is there.
    pub(super) fn forget_deleted_namespaces(&self) {
        let mut res = self.res.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<Plug> = res
            .plugs
            .values()
            .filter(|p| !crate::netns::exists(&p.ns))
            .cloned()
            .collect();
        for plug in gone {
            res.plugs.remove(&plug.ns);
            if !plug.port_vanished {
                if let Ok((_, port)) = self.dp.remove_port(&plug.port) {
                    drop(port);
                }
            }
            for e in res.release_port(&plug.port) {
                eprintln!("l2sw: cleanup after namespace {} was deleted: {e}", plug.ns);
            }
            eprintln!(
                "l2sw: namespace {} was deleted by someone else: unplugged",
                plug.ns
            );
        }
    }

    /// `port list` rows: `mac` is the endpoint's (the interface stations
    /// behind the port send from, so it matches FDB entries), `switch_mac`
    /// the interface the switch itself reads, if it reads one.
    pub(super) fn port_views(&self) -> anyhow::Result<Vec<PortView>> {
        let rows = self.dp.ports()?;
        let res = self.res.lock().unwrap_or_else(|p| p.into_inner());
        let endpoints = res.endpoints.clone();
        let containers = res.containers.clone();
        drop(res);
        Ok(rows
            .into_iter()
            .map(|mut row| {
                // A TAP whose queue the switch holds has no switch-side netdev.
                let switch_mac = match row.info.kind {
                    crate::port::PortKind::Tap => None,
                    _ => row.info.mac,
                };
                row.info.mac = endpoints.get(&row.name).and_then(|e| e.mac());
                let container = containers.get(&row.name).map(|c| c.container.clone());
                PortView {
                    row,
                    switch_mac,
                    container,
                }
            })
            .collect())
    }
}

/// One `port list` row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PortView {
    #[serde(flatten)]
    pub row: crate::dataplane::PortRow,
    pub switch_mac: Option<crate::wire::MacAddr>,
    /// The container a CNI plugin attached through this port.
    pub container: Option<crate::control::protocol::ContainerRef>,
}

/// A minimum-size frame with the given addresses, tag and EtherType.
fn synthetic_frame(
    src: crate::wire::MacAddr,
    dst: crate::wire::MacAddr,
    vlan: Option<u16>,
    ethertype: u16,
) -> anyhow::Result<Vec<u8>> {
    let mut f = vec![0u8; 60];
    crate::wire::write_header(&mut f, dst, src, ethertype)?;
    if let Some(v) = vlan {
        if v > 4095 {
            anyhow::bail!("VLAN {v} is out of range (0..=4095)");
        }
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[14..16].copy_from_slice(&v.to_be_bytes());
        f[16..18].copy_from_slice(&ethertype.to_be_bytes());
    }
    Ok(f)
}

fn check_vlan(vlan: u16) -> anyhow::Result<()> {
    if vlan > 4094 {
        anyhow::bail!("VLAN {vlan} is out of range (0..=4094)");
    }
    Ok(())
}

impl Handler for Inner {
    fn handle(&self, req: Request) -> Response {
        match self.run(req) {
            Ok(v) => Response::ok(v),
            Err(e) => Response::err(crate::control::error_chain(&e)),
        }
    }

    fn stream(&self, req: Request, out: &mut std::os::unix::net::UnixStream) {
        self.serve_stream(req, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_precise_errors() {
        assert_eq!(
            parse_setting("ageing-time", &Value::from(60)).unwrap(),
            Setting::AgeingTime(60)
        );
        assert_eq!(
            parse_setting("fdb-max", &Value::from("100")).unwrap(),
            Setting::FdbMax(100)
        );
        assert_eq!(
            parse_setting("group-fwd-mask", &Value::from("0x4000")).unwrap(),
            Setting::GroupFwdMask(0x4000)
        );
        let e = parse_setting("ageing-time", &Value::from("soon")).unwrap_err();
        assert!(e.contains("not a non-negative integer"), "{e}");
        let e = parse_setting("ageing-time", &Value::from(-1)).unwrap_err();
        assert!(e.contains("not a non-negative integer"), "{e}");
        let e = parse_setting("ageing-time", &Value::from(10_000_000)).unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        let e = parse_setting("colour", &Value::from(1)).unwrap_err();
        assert!(e.contains("unknown setting \"colour\""), "{e}");
    }

    /// The client reads `port list` and `evpn show` into its own types
    /// (`control::answers`): what the switch writes must read back whole,
    /// every optional part present.
    #[test]
    fn port_list_and_evpn_answers_read_back_into_the_clients_types() {
        use crate::control::answers::{EvpnView, PortListRow};
        use crate::dataplane::{BlockedRow, FloodRow, PortRow, VxlanRow};
        use crate::port::{HeldFrames, PeerInfo, PortInfo, PortKind, TunnelInfo};
        let mac = crate::wire::MacAddr([2, 0, 0, 0, 0, 1]);
        let row = PortRow {
            name: "vm1".into(),
            id: 3,
            info: PortInfo {
                kind: PortKind::VhostUser,
                ifname: "vm1".into(),
                ifindex: Some(9),
                mtu: 1500,
                mac: Some(mac),
                capabilities: vec!["vnet-hdr"],
                peer: Some(PeerInfo {
                    connected: true,
                    endpoint: "/run/l2sw/x/vm1.sock".into(),
                    connects: 2,
                    negotiated: vec!["MRG_RXBUF".into()],
                    held: Some(HeldFrames {
                        queued: 5,
                        waiting: 1,
                        peak: 4,
                        lost: 2,
                    }),
                }),
            },
            netns: Some("red".into()),
            max_learned: Some(10),
            learned: 1,
            policy: crate::switch::PortPolicy::default(),
            impair: Some(crate::impair::ImpairRow {
                spec: crate::impair::ImpairSpec::default(),
                seed: 42,
                egress: None,
                ingress: None,
            }),
            vxlan: Some(VxlanRow {
                endpoint: TunnelInfo {
                    vni: 100,
                    local: "10.201.0.1".parse().unwrap(),
                    dstport: 4789,
                    ttl: 64,
                    df: true,
                    netns: Some("hosta".into()),
                    underlay: Some("eth0".into()),
                    underlay_mtu: Some(1500),
                    source_ports: vec![49152, 65535],
                },
                flood: vec![FloodRow {
                    vtep: "10.201.0.2".parse().unwrap(),
                    origin: vec![crate::switch::VtepOrigin::Static],
                }],
            }),
            blocked: Some(BlockedRow {
                reason: crate::switch::BlockReason::Loop,
                mac: Some(mac),
                vlan: Some(1),
                from: Some("red".into()),
                for_s: 3,
                remaining_s: None,
            }),
        };
        let view = PortView {
            row,
            switch_mac: Some(mac),
            container: None,
        };
        let read: Vec<PortListRow> =
            crate::control::client::decode(serde_json::to_value(vec![view]).unwrap()).unwrap();
        let p = &read[0];
        assert_eq!(
            (p.kind.as_str(), p.id, p.ifindex),
            ("vhost-user", 3, Some(9))
        );
        let peer = p.peer.as_ref().unwrap();
        assert_eq!((peer.connects, peer.held.unwrap().lost), (2, 2));
        assert_eq!(p.vxlan.as_ref().unwrap().flood[0].origin, ["static"]);
        assert_eq!(p.impair.as_ref().unwrap().seed, 42);
        assert!(p.blocked.is_some() && p.switch_mac == Some(mac));
        let text = crate::control::render::ports(&read);
        assert!(text.contains("up MRG_RXBUF held=5,lost=2"), "{text}");
        assert!(text.contains("flood list: 10.201.0.2 (static)"), "{text}");

        let status = crate::evpn::EvpnStatus {
            gobgp: "127.0.0.1:50051".into(),
            netns: Some("hosta".into()),
            asn: 65000,
            router_id: Some("10.201.0.1".parse().unwrap()),
            connected: false,
            error: Some("connection refused".into()),
            advertised: vec![crate::evpn::sync::Advertised {
                route_type: 2,
                vni: 100,
                mac: Some(mac),
                vtep: "10.201.0.1".parse().unwrap(),
                seq: 0,
            }],
            imported: vec![crate::evpn::sync::Imported {
                route_type: 3,
                vni: 100,
                port: "vx100".into(),
                mac: None,
                vtep: "10.201.0.2".parse().unwrap(),
                seq: 1,
            }],
        };
        let read: EvpnView =
            crate::control::client::decode(serde_json::to_value(&status).unwrap()).unwrap();
        let text = crate::control::render::evpn(&read);
        assert!(text.contains("not connected: connection refused"), "{text}");
        assert!(text.contains("remote"), "{text}");
        assert_eq!(read.imported[0].port.as_deref(), Some("vx100"));
    }
}
