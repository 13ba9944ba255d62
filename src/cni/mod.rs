//! `l2sw-cni`: the CNI plugin (spec 1.0.0 and 1.1.0) that attaches
//! containers to a running l2sw switch the way the bridge plugin attaches
//! them to docker0.
//!
//! ADD creates a veth pair: CNI_IFNAME inside CNI_NETNS, and a host end
//! named after the container id ([`host_ifname`]); addresses come from the
//! IPAM plugin the configuration names ([`ipam`]); the switch is then asked
//! over its control socket to read the host end as a port named after the
//! container (`container-attach`). DEL removes the port and the veth and
//! releases the addresses, and succeeds when any of them is gone already.
//! Every setting comes from the network configuration on stdin and the
//! CNI_* variables ([`conf`]), never from other environment.

pub mod conf;
pub mod error;
pub mod ipam;
pub mod result;

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::control::client::{Client, ClientError};
use crate::control::protocol::{Attachment, ContainerAttach, ContainerRef, Request};
use crate::netns;
use conf::{Checked, CniEnv, SUPPORTED_VERSIONS};
use error::{code, CniError};
use result::{CniResult, Interface, IpConfig};

/// How long a new veth may take to become operational.
const LINK_UP_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one plugin call: the JSON to print on success (`None`: print
/// nothing), or the error to print.
pub fn run(env: &CniEnv, stdin: &[u8]) -> Result<Option<Value>, CniError> {
    match env.command.as_str() {
        "VERSION" => {
            let v = conf::version_of(stdin)
                .filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str()))
                .unwrap_or_else(|| "1.1.0".into());
            Ok(Some(
                json!({"cniVersion": v, "supportedVersions": SUPPORTED_VERSIONS}),
            ))
        }
        "ADD" => add(env, &conf::parse(stdin)?, stdin).map(Some),
        "DEL" => del(env, &conf::parse(stdin)?, stdin).map(|_| None),
        "CHECK" => check(env, &conf::parse(stdin)?, stdin).map(|_| None),
        "STATUS" => status(&conf::parse(stdin)?).map(|_| None),
        "GC" => gc(env, &conf::parse(stdin)?, stdin).map(|_| None),
        "" => Err(CniError::new(code::INVALID_ENV, "CNI_COMMAND is not set")),
        other => Err(CniError::new(
            code::INVALID_ENV,
            format!("unknown CNI_COMMAND {other:?} (known: ADD, DEL, CHECK, STATUS, GC, VERSION)"),
        )),
    }
}

/// The host end's name: "l2c" and 12 hex digits of a hash of the container
/// id and interface, so DEL finds it from the same two values, and 15 bytes
/// fit the kernel's limit.
pub fn host_ifname(container_id: &str, ifname: &str) -> String {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in container_id.bytes().chain([b'/']).chain(ifname.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("l2c{:012x}", h >> 16)
}

/// The port name asked for: the container's name when the runtime passes
/// it (podman: K8S_POD_NAME in CNI_ARGS), cut to an interface name's 15
/// bytes, else the short container id.
pub fn port_name(env: &CniEnv, container_id: &str) -> String {
    let name = env.arg("K8S_POD_NAME").unwrap_or("");
    let mut n: String = name
        .chars()
        .filter(|c| !(c.is_whitespace() || *c == '/' || *c == ':'))
        .collect();
    while n.len() > 15 {
        n.pop();
    }
    if n.is_empty() {
        container_id.chars().take(12).collect()
    } else {
        n
    }
}

fn link_err(e: impl std::fmt::Display) -> CniError {
    CniError::new(code::LINK, e.to_string())
}

fn connect(c: &Checked) -> Result<Client, CniError> {
    let name = &c.conf.switch;
    let path = crate::control::socket_path(&c.run_dir(), name);
    Client::connect(name, &path).map_err(|e| {
        CniError::new(
            code::SWITCH_UNREACHABLE,
            format!("switch {name} is not reachable: {e}"),
        )
    })
}

fn call(client: &mut Client, c: &Checked, req: &Request) -> Result<Value, CniError> {
    client.call(req).map_err(|e| match e {
        ClientError::Refused(msg) => CniError::new(
            code::SWITCH_REFUSED,
            format!("switch {}: {msg}", c.conf.switch),
        ),
        other => CniError::new(
            code::SWITCH_UNREACHABLE,
            format!("switch {}: {other}", c.conf.switch),
        ),
    })
}

fn need_netns<'a>(env: &'a CniEnv, id: &str) -> Result<&'a str, CniError> {
    let ns = env.need(&env.netns, "CNI_NETNS")?;
    if !Path::new(ns).exists() {
        return Err(CniError::new(
            code::UNKNOWN_CONTAINER,
            format!(
                "network namespace {ns} of container {} does not exist",
                short(id)
            ),
        ));
    }
    Ok(ns)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn need_ifname(env: &CniEnv) -> Result<&str, CniError> {
    let i = env.need(&env.ifname, "CNI_IFNAME")?;
    netns::validate_ifname(i)
        .map_err(|e| CniError::new(code::INVALID_ENV, format!("CNI_IFNAME: {e}")))?;
    Ok(i)
}

/// Runs `f` inside the container's namespace.
fn inside<R: Send>(ns: &str, f: impl FnOnce() -> R + Send) -> Result<R, CniError> {
    netns::run_in_path(Path::new(ns), ns, f).map_err(link_err)
}

/// What an ADD made so far, undone when it fails half way.
struct Rollback<'a> {
    env: &'a CniEnv,
    stdin: &'a [u8],
    ipam: Option<&'a str>,
    host: Option<String>,
}

impl Rollback<'_> {
    fn disarm(mut self) {
        self.ipam = None;
        self.host = None;
    }
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if let Some(h) = self.host.take() {
            if netns::link_exists(None, &h) {
                let _ = netns::delete_link(None, &h);
            }
        }
        if let Some(kind) = self.ipam.take() {
            let _ = ipam::exec(kind, "DEL", self.env, self.stdin);
        }
    }
}

fn add(env: &CniEnv, c: &Checked, stdin: &[u8]) -> Result<Value, CniError> {
    let id = env.need(&env.container_id, "CNI_CONTAINERID")?;
    let ifname = need_ifname(env)?;
    let ns = need_netns(env, id)?;
    // Before anything is allocated: an ADD to a switch that is not running
    // would only have to be undone.
    let mut client = connect(c)?;
    let host = host_ifname(id, ifname);
    // Named after this attachment only: a leftover of an interrupted ADD,
    // or of a DEL whose switch is still deleting it (gone meanwhile is
    // fine). First: its container end goes with it.
    if netns::link_exists(None, &host) {
        if let Err(e) = netns::delete_link(None, &host) {
            if netns::link_exists(None, &host) {
                return Err(link_err(e));
            }
        }
    }
    if inside(ns, || netns::link_exists(None, ifname))? {
        return Err(CniError::new(
            code::LINK,
            format!("container {} already has an interface {ifname}", short(id)),
        ));
    }
    let mut undo = Rollback {
        env,
        stdin,
        ipam: None,
        host: None,
    };
    let ipam_result = match &c.ipam_type {
        Some(kind) => {
            let v = ipam::exec(kind, "ADD", env, stdin)?.ok_or_else(|| {
                CniError::new(
                    code::DECODE,
                    format!("IPAM plugin {kind} printed no result"),
                )
            })?;
            undo.ipam = Some(kind);
            Some(CniResult::from_value(
                v,
                &format!("the result of IPAM plugin {kind}"),
            )?)
        }
        None => None,
    };
    undo.host = Some(host.clone());
    netns::create_veth(&host, ifname, ns).map_err(link_err)?;
    netns::disable_ipv6(&host).map_err(link_err)?;
    if let Some(m) = c.conf.mtu {
        netns::set_mtu(None, &host, m).map_err(link_err)?;
    }
    netns::set_up(None, &host).map_err(link_err)?;
    let mut ips: Vec<IpConfig> = ipam_result
        .as_ref()
        .map(|r| r.ips.clone())
        .unwrap_or_default();
    for ip in &mut ips {
        // Interface 1 of the result is the container's end.
        ip.interface = Some(1);
    }
    let routes = ipam_result
        .as_ref()
        .map(|r| r.routes.clone())
        .unwrap_or_default();
    let cidrs = ips
        .iter()
        .map(IpConfig::cidr)
        .collect::<Result<Vec<_>, _>>()?;
    let mtu = c.conf.mtu;
    let inside_mac = inside(ns, || -> Result<_, netns::NetnsError> {
        if let Some(m) = mtu {
            netns::set_mtu(None, ifname, m)?;
        }
        for a in &cidrs {
            netns::add_addr(None, ifname, a)?;
        }
        netns::set_up(None, ifname)?;
        for r in &routes {
            // A route without a gateway goes through the gateway of its
            // address family, as the bridge plugin does.
            let v6 = r.dst.contains(':');
            let gw = r.gw.or_else(|| {
                ips.iter()
                    .filter_map(|i| i.gateway)
                    .find(|g| g.is_ipv6() == v6)
            });
            netns::add_route(None, ifname, &r.dst, gw)?;
        }
        netns::link_mac(None, ifname)
    })?
    .map_err(link_err)?;
    netns::wait_oper_up(None, &host, LINK_UP_TIMEOUT).map_err(link_err)?;
    let host_mac = netns::link_mac(None, &host).map_err(link_err)?;
    call(
        &mut client,
        c,
        &Request::ContainerAttach(ContainerAttach {
            name: port_name(env, id),
            ifname: host.clone(),
            container: ContainerRef {
                id: id.to_string(),
                netns: ns.into(),
                ifname: ifname.to_string(),
                network: c.conf.name.clone(),
            },
            vlan: c.conf.vlan.clone(),
            policy: c.policy.clone(),
        }),
    )?;
    undo.disarm();
    let dns = ipam_result
        .and_then(|r| r.dns)
        .filter(|d| d.as_object().is_some_and(|o| !o.is_empty()))
        .or_else(|| c.conf.dns.clone());
    let result = CniResult {
        cni_version: c.conf.cni_version.clone(),
        interfaces: vec![
            Interface {
                name: host,
                mac: Some(host_mac.to_string()),
                mtu,
                sandbox: None,
            },
            Interface {
                name: ifname.to_string(),
                mac: Some(inside_mac.to_string()),
                mtu,
                sandbox: Some(ns.to_string()),
            },
        ],
        ips,
        routes,
        dns,
    };
    serde_json::to_value(result)
        .map_err(|e| CniError::new(code::IO, format!("cannot encode the result: {e}")))
}

fn del(env: &CniEnv, c: &Checked, stdin: &[u8]) -> Result<(), CniError> {
    let id = env.need(&env.container_id, "CNI_CONTAINERID")?;
    let ifname = need_ifname(env)?;
    let host = host_ifname(id, ifname);
    // The switch deletes the host end itself after answering when it is
    // the port it removed: the kernel's ~30 ms for a veth are not DEL's.
    let handed_over = match connect(c) {
        Ok(mut client) => call(
            &mut client,
            c,
            &Request::ContainerDetach {
                id: id.to_string(),
                ifname: ifname.to_string(),
                delete_link: Some(host.clone()),
            },
        )?
        .get("deleting_link")
        .and_then(Value::as_bool)
        .unwrap_or(false),
        // No switch, no port: what is left to do is the link and the addresses.
        Err(e) if e.code == code::SWITCH_UNREACHABLE => false,
        Err(e) => return Err(e),
    };
    // Deleting the host end deletes the container's end with it; that end is
    // never deleted by name, as an interface of that name may not be ours.
    if !handed_over && netns::link_exists(None, &host) {
        netns::delete_link(None, &host).map_err(link_err)?;
    }
    if let Some(kind) = &c.ipam_type {
        ipam::exec(kind, "DEL", env, stdin)?;
    }
    Ok(())
}

fn check_failed(msg: String) -> CniError {
    CniError::new(code::CHECK_FAILED, msg)
}

fn check(env: &CniEnv, c: &Checked, stdin: &[u8]) -> Result<(), CniError> {
    let id = env.need(&env.container_id, "CNI_CONTAINERID")?;
    let ifname = need_ifname(env)?;
    let ns = need_netns(env, id)?;
    let prev = c.conf.prev_result.clone().ok_or_else(|| {
        CniError::new(
            code::INVALID_CONFIG,
            "CHECK needs prevResult (the result of ADD) in the configuration",
        )
    })?;
    let prev = CniResult::from_value(prev, "prevResult")?;
    let mut client = connect(c)?;
    let ports = call(&mut client, c, &Request::PortList)?;
    let port = ports
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["container"]["id"] == id && p["container"]["ifname"] == ifname)
        .ok_or_else(|| {
            check_failed(format!(
                "switch {} has no port for interface {ifname} of container {}",
                c.conf.switch,
                short(id)
            ))
        })?;
    let pname = port["name"].as_str().unwrap_or("?");
    let host = host_ifname(id, ifname);
    if port["ifname"] != host.as_str() {
        return Err(check_failed(format!(
            "port {pname} reads {} instead of {host}",
            port["ifname"]
        )));
    }
    if !netns::link_exists(None, &host) {
        return Err(check_failed(format!(
            "the host end {host} of container {}'s veth is gone",
            short(id)
        )));
    }
    let want_vlan = match &c.conf.vlan {
        Some(v) => v
            .to_mode()
            .map_err(|e| CniError::new(code::INVALID_CONFIG, e))?,
        None => None,
    };
    let have_vlan = serde_json::from_value(port["policy"]["vlan"].clone())
        .ok()
        .flatten();
    if want_vlan != have_vlan {
        return Err(check_failed(format!(
            "port {pname} has VLAN settings {} instead of the configuration's",
            port["policy"]["vlan"]
        )));
    }
    let (exists, addrs, mac) = inside(ns, || {
        (
            netns::link_exists(None, ifname),
            netns::link_addrs(None, ifname),
            netns::link_mac(None, ifname),
        )
    })?;
    if !exists {
        return Err(check_failed(format!(
            "container {} has no interface {ifname}",
            short(id)
        )));
    }
    let addrs = addrs.map_err(link_err)?;
    let sandbox = prev
        .interfaces
        .iter()
        .position(|i| i.name == ifname && i.sandbox.is_some());
    if let (Some(i), Ok(mac)) = (sandbox, mac) {
        if let Some(want) = &prev.interfaces[i].mac {
            if !want.eq_ignore_ascii_case(&mac.to_string()) {
                return Err(check_failed(format!(
                    "{ifname} in container {} has MAC {mac}, not {want}",
                    short(id)
                )));
            }
        }
    }
    for ip in prev
        .ips
        .iter()
        .filter(|ip| ip.interface.is_none() || ip.interface == sandbox)
    {
        let want = ip.cidr()?;
        if !addrs.contains(&want) {
            return Err(check_failed(format!(
                "{ifname} in container {} lacks address {want}",
                short(id)
            )));
        }
    }
    if let Some(kind) = &c.ipam_type {
        ipam::exec(kind, "CHECK", env, stdin)?;
    }
    Ok(())
}

fn status(c: &Checked) -> Result<(), CniError> {
    let unavailable = |e: CniError| CniError::new(code::NOT_AVAILABLE, e.msg);
    let mut client = connect(c).map_err(unavailable)?;
    call(&mut client, c, &Request::Status).map_err(unavailable)?;
    Ok(())
}

fn gc(env: &CniEnv, c: &Checked, stdin: &[u8]) -> Result<(), CniError> {
    let keep: Vec<Attachment> = c
        .conf
        .valid_attachments
        .iter()
        .flatten()
        .map(|a| Attachment {
            id: a.container_id.clone(),
            ifname: a.ifname.clone(),
        })
        .collect();
    match connect(c) {
        Ok(mut client) => {
            let r = call(
                &mut client,
                c,
                &Request::ContainerGc {
                    network: c.conf.name.clone(),
                    keep,
                },
            )?;
            for p in r["removed"].as_array().into_iter().flatten() {
                let Some(host) = p["host_ifname"].as_str() else {
                    continue;
                };
                if netns::link_exists(None, host) {
                    netns::delete_link(None, host).map_err(link_err)?;
                }
            }
        }
        // A switch that is not running has no ports to collect.
        Err(e) if e.code == code::SWITCH_UNREACHABLE => {}
        Err(e) => return Err(e),
    }
    if let Some(kind) = &c.ipam_type {
        // GC came with spec 1.1.0: an older IPAM plugin (Debian 12's
        // host-local speaks up to 1.0.0) cannot be asked, and has no
        // attachments of its own to collect beyond what DEL releases.
        if ipam::supports(kind, env, "1.1.0")? {
            ipam::exec(kind, "GC", env, stdin)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_stable_short_and_per_interface() {
        let a = host_ifname("0123456789abcdef", "eth0");
        assert_eq!(a, host_ifname("0123456789abcdef", "eth0"));
        assert_ne!(a, host_ifname("0123456789abcdef", "eth1"));
        assert_eq!(a.len(), 15);
        assert!(netns::validate_ifname(&a).is_ok());
    }

    #[test]
    fn ports_are_named_after_the_container() {
        let env = CniEnv::from_lookup(|k| {
            (k == "CNI_ARGS")
                .then(|| "IgnoreUnknown=1;K8S_POD_NAME=a-very-long-container-name".to_string())
        });
        assert_eq!(port_name(&env, "abc"), "a-very-long-con");
        let none = CniEnv::default();
        assert_eq!(port_name(&none, "0123456789abcdef0"), "0123456789ab");
    }

    #[test]
    fn commands_and_versions() {
        let env = |c: &str| CniEnv {
            command: c.into(),
            ..CniEnv::default()
        };
        let v = run(&env("VERSION"), br#"{"cniVersion":"1.0.0"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(v["supportedVersions"], json!(["1.0.0", "1.1.0"]));
        let e = run(&env("FROB"), b"{}").unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(e.msg.contains("unknown CNI_COMMAND \"FROB\""), "{e}");
        let e = run(&env(""), b"{}").unwrap_err();
        assert!(e.msg.contains("CNI_COMMAND is not set"), "{e}");
    }
}
