//! Request and response types of the control protocol, and their parsing with
//! precise errors.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::policy::PolicyFlags;
use crate::netns::Cidr;
use crate::switch::{VlanMode, VlanSet};
use crate::wire::MacAddr;

/// Longest request line the server reads.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

/// How a namespace is wired to the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// A veth pair: one end in the namespace, the other an AF_PACKET port.
    #[default]
    Veth,
    /// A TAP device moved into the namespace; the switch holds its queue.
    Tap,
}

/// Where a TAP port's netdev goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TapSetup {
    /// Persistent TAP left for a VM (qemu -netdev tap,ifname=NAME); the switch
    /// attaches to the netdev.
    #[default]
    Vm,
    /// The switch holds the queue; the netdev stays in the switch's namespace.
    Host,
    /// The switch holds the queue; the netdev is moved into `netns`.
    Netns,
}

/// Which backend `port add` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddKind {
    /// An existing interface, through AF_PACKET.
    Iface,
    /// A TAP device the switch creates.
    Tap,
    /// QEMU `-netdev stream`: a Unix stream socket the switch listens on.
    Stream,
    /// QEMU `-netdev dgram`: a Unix datagram socket bound by the switch.
    Dgram,
    /// QEMU `-netdev vhost-user`: a vhost-user-net backend socket.
    #[serde(rename = "vhost-user")]
    VhostUser,
}

impl AddKind {
    /// Kinds whose peer is a program behind a socket (a VM), not a device.
    pub fn is_socket(self) -> bool {
        matches!(self, AddKind::Stream | AddKind::Dgram | AddKind::VhostUser)
    }
}

/// `port add` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortAdd {
    pub kind: AddKind,
    pub ifname: String,
    /// Port name; defaults to the interface name.
    #[serde(default)]
    pub name: Option<String>,
    /// TAP only: where the netdev goes (default `vm`, or `netns` when `netns` is set).
    #[serde(default)]
    pub mode: Option<TapSetup>,
    /// TAP only: the namespace to move the netdev into.
    #[serde(default)]
    pub netns: Option<String>,
    /// TAP in `host`/`netns` mode only: addresses for the netdev.
    #[serde(default)]
    pub ip: Vec<Cidr>,
    /// TAP only: MTU of the new device.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// TAP in `host`/`netns` mode only: MAC of the netdev.
    #[serde(default)]
    pub mac: Option<MacAddr>,
    #[serde(default)]
    pub max_learned: Option<u32>,
    /// Socket kinds: the switch's socket path (stream: where it listens;
    /// dgram: what it binds). Default: `RUN_DIR/SWITCH/PORT.sock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<std::path::PathBuf>,
    /// dgram only: the VM's socket path (QEMU's `local.path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<std::path::PathBuf>,
    /// vhost-user only: QEMU listens on `socket` and the switch connects
    /// (and reconnects); otherwise the switch listens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client: bool,
    /// Socket kinds: owner and mode of the socket, so an unprivileged
    /// user's QEMU may open it.
    #[serde(default, skip_serializing_if = "SocketAccess::is_default")]
    pub access: SocketAccess,
}

/// Owner and mode for a socket the switch creates for a VM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketAccess {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Permission bits, e.g. 0o660.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

impl SocketAccess {
    pub fn is_default(&self) -> bool {
        self.uid.is_none() && self.gid.is_none() && self.mode.is_none()
    }
}

/// `port add vxlan` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VxlanAdd {
    /// Port name.
    pub name: String,
    pub vni: u32,
    /// Local VTEP address (an address of an interface in `netns`).
    pub local: std::net::Ipv4Addr,
    /// Static flood-list members (head-end replication).
    #[serde(default)]
    pub remote: Vec<std::net::Ipv4Addr>,
    /// UDP port (default 4789).
    #[serde(default)]
    pub dstport: Option<u16>,
    /// Learn MACs and VTEPs from decapsulated frames (default on).
    #[serde(default)]
    pub learning: Option<bool>,
    /// Namespace of the underlay socket.
    #[serde(default)]
    pub netns: Option<String>,
    /// Map the VNI to this VLAN of a VLAN-aware switch (the port becomes an
    /// access port of it).
    #[serde(default)]
    pub vlan: Option<u16>,
    /// Outer TTL (default 64).
    #[serde(default)]
    pub ttl: Option<u8>,
    /// Set DF on the outer header (default off).
    #[serde(default)]
    pub df: Option<bool>,
    /// Inner MTU (default: the underlay interface's MTU minus 50).
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub max_learned: Option<u32>,
}

/// A learned-entry limit to set: a number (0 = unlimited) or the switch default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Default,
    Max(u32),
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Default => s.serialize_str("default"),
            Limit::Max(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s == "default" => Ok(Limit::Default),
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Limit::Max)
                .ok_or_else(|| serde::de::Error::custom(format!("limit {n} is out of range"))),
            other => Err(serde::de::Error::custom(format!(
                "expected a number or \"default\", not {other}"
            ))),
        }
    }
}

/// `port set` arguments: the learned-entry limit and the port flags of
/// [`PolicyFlags`] (the flags' JSON keys sit beside `name`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSet {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_learned: Option<Limit>,
    #[serde(flatten)]
    pub flags: PolicyFlags,
}

impl PortSet {
    /// Applies the changes to a policy.
    pub fn apply(&self, p: &mut crate::switch::PortPolicy) {
        if let Some(l) = self.max_learned {
            p.max_learned = match l {
                Limit::Default => None,
                Limit::Max(n) => Some(n),
            };
        }
        self.flags.apply(p);
    }

    pub fn is_empty(&self) -> bool {
        self.max_learned.is_none() && self.flags.is_empty()
    }
}

/// The answer to `port-impair`: the port's impairment now (`None`: cleared).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortImpairReply {
    pub name: String,
    pub impair: Option<crate::impair::ImpairRow>,
}

/// Builds a VLAN mode from `port vlan` arguments, with errors that say what is missing.
pub fn vlan_mode(
    mode: &str,
    tag: Option<u16>,
    trunks: Option<VlanSet>,
) -> Result<Option<VlanMode>, String> {
    let need_tag = |m: &str| tag.ok_or_else(|| format!("--mode {m} needs --tag VLAN"));
    let m = match mode {
        "none" => {
            if tag.is_some() || trunks.is_some() {
                return Err("--mode none takes no --tag or --trunks".into());
            }
            return Ok(None);
        }
        "access" => {
            if trunks.is_some() {
                return Err("--mode access takes no --trunks (an access port carries only its --tag)".into());
            }
            VlanMode::Access {
                tag: need_tag("access")?,
            }
        }
        "trunk" => {
            if tag.is_some() {
                return Err("--mode trunk takes no --tag; use native-untagged or native-tagged for a native VLAN".into());
            }
            VlanMode::Trunk { trunks }
        }
        "native-untagged" => VlanMode::NativeUntagged {
            tag: need_tag("native-untagged")?,
            trunks,
        },
        "native-tagged" => VlanMode::NativeTagged {
            tag: need_tag("native-tagged")?,
            trunks,
        },
        other => {
            return Err(format!(
                "unknown VLAN mode {other:?} (known: access, trunk, native-untagged, native-tagged, none)"
            ))
        }
    };
    m.validate()?;
    Ok(Some(m))
}

/// `ns plug` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NsPlug {
    #[serde(alias = "name")]
    pub ns: String,
    #[serde(default)]
    pub ip: Vec<Cidr>,
    #[serde(default)]
    pub via: Via,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub mac: Option<MacAddr>,
    /// Interface name inside the namespace (default eth0).
    #[serde(default)]
    pub ifname: Option<String>,
    #[serde(default)]
    pub max_learned: Option<u32>,
}

/// The container behind a port the CNI plugin attached: what the runtime
/// called it, so `port list` can name it and DEL/GC can find the port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerRef {
    /// CNI_CONTAINERID.
    pub id: String,
    /// CNI_NETNS: the container's network namespace file.
    pub netns: std::path::PathBuf,
    /// CNI_IFNAME: the interface inside the container.
    pub ifname: String,
    /// The CNI network's name (GC collects per network).
    pub network: String,
}

impl ContainerRef {
    /// The container id as `port list` shows it (as `podman ps` does).
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// One attachment a runtime still uses (`cni.dev/valid-attachments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub id: String,
    pub ifname: String,
}

/// A port's VLAN settings as `port vlan` takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VlanConf {
    /// access, trunk, native-untagged, native-tagged or none.
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunks: Option<VlanSet>,
}

impl VlanConf {
    pub fn to_mode(&self) -> Result<Option<VlanMode>, String> {
        vlan_mode(&self.mode, self.tag, self.trunks.clone())
    }
}

/// `container-attach`: the CNI plugin's ADD, once the veth exists: read
/// `ifname` (the host end) as a port named after the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerAttach {
    /// The port name wanted (the container's name); when it is taken, the
    /// port is named after the container id instead.
    pub name: String,
    /// The veth end in the switch's namespace.
    pub ifname: String,
    pub container: ContainerRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<VlanConf>,
    /// Port flags as `port set` takes them (its `name` is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PortSet>,
}

/// One control request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Name, uptime, settings, port and namespace counts.
    Status,
    PortAdd(PortAdd),
    /// Adds a VXLAN tunnel port.
    PortAddVxlan(VxlanAdd),
    PortDel {
        name: String,
    },
    PortList,
    /// Changes a port's policy; fields left out stay as they are.
    PortSet(PortSet),
    /// Opens a port blocked by loop protection or BPDU guard.
    PortUnblock {
        name: String,
    },
    /// Impairs a port's link (netem's knobs); `impair` absent clears it.
    PortImpair {
        name: String,
        #[serde(default)]
        impair: Option<Box<crate::impair::ImpairSpec>>,
    },
    /// Sets (or with mode "none" removes) a port's VLAN configuration.
    PortVlan {
        name: String,
        /// access, trunk, native-untagged, native-tagged or none.
        mode: String,
        #[serde(default)]
        tag: Option<u16>,
        /// VLANs a trunk carries ("10,20,30-40" or a list); absent = all.
        #[serde(default)]
        trunks: Option<VlanSet>,
    },
    /// Adds a SPAN mirror: what `src` ports receive and `dst` ports send is
    /// copied to `to`, which then does no switching.
    MirrorAdd {
        name: String,
        to: String,
        #[serde(default)]
        src: Vec<String>,
        #[serde(default)]
        dst: Vec<String>,
    },
    MirrorDel {
        name: String,
    },
    MirrorList,
    FdbShow {
        #[serde(default)]
        port: Option<String>,
    },
    FdbAdd {
        mac: MacAddr,
        port: String,
        #[serde(default)]
        vlan: u16,
        /// On a VXLAN port: the remote VTEP the MAC sits behind.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dst: Option<std::net::Ipv4Addr>,
    },
    FdbDel {
        mac: MacAddr,
        #[serde(default)]
        vlan: u16,
    },
    FdbFlush {
        #[serde(default)]
        port: Option<String>,
        /// Also remove static entries.
        #[serde(default, rename = "static")]
        include_static: bool,
    },
    /// Changes a switch-wide setting (`ageing-time`, `fdb-max`, ...).
    Set {
        key: String,
        value: Value,
    },
    /// Shows the switch-wide settings.
    Get,
    Stats {
        #[serde(default)]
        port: Option<String>,
    },
    StatsReset,
    NsPlug(NsPlug),
    NsUnplug {
        ns: String,
    },
    NsList,
    /// Attaches a container's veth (the CNI plugin's ADD).
    ContainerAttach(ContainerAttach),
    /// Removes the port of a container's interface, if there is one (DEL).
    ContainerDetach {
        id: String,
        ifname: String,
        /// The host end of the container's veth, which the switch deletes
        /// after answering when it is the removed port's interface (the
        /// answer says so in `deleting_link`): the kernel takes ~30 ms to
        /// delete a veth, which CNI DEL then need not wait for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delete_link: Option<String>,
    },
    /// Removes the container ports of `network` whose attachment is not in
    /// `keep` (GC).
    ContainerGc {
        network: String,
        #[serde(default)]
        keep: Vec<Attachment>,
    },
    /// Streams frame records (one JSON object per line) until `count`
    /// records, or until the client closes the connection.
    Capture {
        #[serde(default)]
        ports: Vec<String>,
        #[serde(default)]
        filter: Option<String>,
        #[serde(default)]
        count: Option<u64>,
        /// Bytes kept per frame; 0 or absent = whole frames.
        #[serde(default)]
        snaplen: Option<u32>,
        /// A pcap-filter expression (tcpdump's language) frames must also match.
        #[serde(default)]
        bpf: Option<String>,
        /// Only records of this direction ("in": what ports receive,
        /// "out": what they send); absent = both.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        direction: Option<crate::observe::records::Dir>,
    },
    /// Explains what the switch would do with a frame; nothing is sent or learned.
    Trace {
        #[serde(rename = "in")]
        ingress: String,
        src: MacAddr,
        dst: MacAddr,
        #[serde(default)]
        vlan: Option<u16>,
        #[serde(default)]
        ethertype: Option<u16>,
    },
    /// Streams an explanation per real frame, like `capture`.
    TraceLive {
        #[serde(default)]
        ports: Vec<String>,
        #[serde(default)]
        filter: Option<String>,
        #[serde(default)]
        count: Option<u64>,
        /// A pcap-filter expression (tcpdump's language) frames must also match.
        #[serde(default)]
        bpf: Option<String>,
    },
    /// Residence-time histograms (per egress port and per port pair).
    Latency {
        #[serde(default)]
        port: Option<String>,
        /// "INGRESS,EGRESS".
        #[serde(default)]
        pair: Option<String>,
        /// Empty the histograms shown.
        #[serde(default)]
        reset: bool,
    },
    /// The kernel fast path's installed entries with hit counts.
    FastpathShow,
    /// Stops the switch as SIGTERM would.
    Shutdown,
    /// One overview of the switch (`l2sw show`): a [`ShowReport`](super::views::ShowReport).
    Show,
    /// The running topology as a config (`l2sw config dump`): a
    /// [`ConfigDump`](crate::config::ConfigDump).
    ConfigDump,
    /// Streams switch events (one `EventRecord` per line) until `count`
    /// events, or until the client closes the connection.
    Monitor {
        #[serde(default)]
        count: Option<u64>,
    },
    /// Joins a BGP EVPN fabric through a gobgpd (see `docs/vxlan.md`).
    EvpnEnable(EvpnEnable),
    /// Withdraws the switch's EVPN routes and leaves the fabric.
    EvpnDisable,
    /// The EVPN session and its routes: an `EvpnStatus`.
    EvpnShow,
}

/// `evpn enable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvpnEnable {
    /// gobgpd's gRPC listener, `HOST:PORT`.
    pub gobgp: String,
    /// The namespace that listener is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// AS number for the route targets (`ASN:VNI`).
    pub asn: u32,
    /// Router id for the route distinguishers (default: the first VXLAN
    /// port's local address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<std::net::Ipv4Addr>,
}

impl Request {
    /// Every command name, for the "unknown command" message.
    pub const COMMANDS: &'static [&'static str] = &[
        "status",
        "port-add",
        "port-add-vxlan",
        "port-del",
        "port-list",
        "port-set",
        "port-unblock",
        "port-impair",
        "port-vlan",
        "mirror-add",
        "mirror-del",
        "mirror-list",
        "fdb-show",
        "fdb-add",
        "fdb-del",
        "fdb-flush",
        "set",
        "get",
        "stats",
        "stats-reset",
        "ns-plug",
        "ns-unplug",
        "ns-list",
        "container-attach",
        "container-detach",
        "container-gc",
        "capture",
        "trace",
        "trace-live",
        "latency",
        "fastpath-show",
        "shutdown",
        "show",
        "config-dump",
        "monitor",
        "evpn-enable",
        "evpn-disable",
        "evpn-show",
    ];

    /// Requests answered with a stream of lines rather than one response.
    pub fn is_stream(&self) -> bool {
        matches!(
            self,
            Request::Capture { .. } | Request::TraceLive { .. } | Request::Monitor { .. }
        )
    }

    /// Parses one request line, with errors that say what is wrong.
    pub fn parse(line: &str) -> Result<Request, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("malformed JSON: {e}"))?;
        let obj = v
            .as_object()
            .ok_or("a request must be a JSON object like {\"cmd\":\"status\"}")?;
        let cmd = match obj.get("cmd") {
            None => return Err("request has no \"cmd\" field".into()),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(format!("\"cmd\" must be a string, not {other}")),
        };
        if !Self::COMMANDS.contains(&cmd.as_str()) {
            return Err(format!(
                "unknown command {cmd:?} (known: {})",
                Self::COMMANDS.join(", ")
            ));
        }
        let req: Request = serde_json::from_value(v.clone())
            .map_err(|e| format!("bad arguments for {cmd:?}: {e}"))?;
        // Commands without arguments are unit variants, which serde does not
        // check for stray fields: compare with what the request encodes to.
        let known = serde_json::to_value(&req).unwrap_or(Value::Null);
        if let (Some(given), Some(known)) = (v.as_object(), known.as_object()) {
            if let Some(k) = given
                .keys()
                .find(|k| !known.contains_key(*k) && *k != "name")
            {
                return Err(format!("bad arguments for {cmd:?}: unknown field `{k}`"));
            }
        }
        Ok(req)
    }
}

/// The last line of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEnd {
    pub end: bool,
    /// Records sent to the client.
    pub delivered: u64,
    /// Records the switch skipped because the client read too slowly.
    pub skipped: u64,
}

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub fn ok(result: Value) -> Response {
        Response {
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    pub fn err(msg: impl Into<String>) -> Response {
        Response {
            ok: false,
            result: None,
            error: Some(msg.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(
            Request::parse(r#"{"cmd":"status"}"#).unwrap(),
            Request::Status
        );
        let r = Request::parse(r#"{"cmd":"fdb-add","mac":"02:00:00:00:00:09","port":"veth-x"}"#)
            .unwrap();
        assert_eq!(
            r,
            Request::FdbAdd {
                mac: "02:00:00:00:00:09".parse().unwrap(),
                port: "veth-x".into(),
                vlan: 0,
                dst: None,
            }
        );
        let r = Request::parse(r#"{"cmd":"port-add","kind":"tap","ifname":"tap7"}"#).unwrap();
        assert!(matches!(
            r,
            Request::PortAdd(PortAdd {
                kind: AddKind::Tap,
                ..
            })
        ));
        let r = Request::parse(r#"{"cmd":"ns-plug","ns":"red","ip":["10.0.0.1/24"],"via":"tap"}"#)
            .unwrap();
        match r {
            Request::NsPlug(plug) => {
                assert_eq!(plug.via, Via::Tap);
                assert_eq!(plug.ip[0].to_string(), "10.0.0.1/24");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn port_set_flags_apply_and_gro_alone_is_a_change() {
        let r = Request::parse(r#"{"cmd":"port-set","name":"red","gro":false}"#).unwrap();
        let Request::PortSet(set) = r else {
            panic!("{r:?}")
        };
        assert_eq!(set.flags.gro, Some(false));
        assert!(!set.is_empty());
        let mut p = crate::switch::PortPolicy::default();
        assert!(p.gro, "gro is on by default");
        set.apply(&mut p);
        assert!(!p.gro);
        assert_eq!(
            p,
            crate::switch::PortPolicy {
                gro: false,
                ..Default::default()
            },
            "nothing else changes"
        );
        let on = PortSet {
            name: "red".into(),
            flags: PolicyFlags {
                gro: Some(true),
                ..PolicyFlags::default()
            },
            ..PortSet::default()
        };
        on.apply(&mut p);
        assert!(p.gro);
        let untouched = PortSet {
            name: "red".into(),
            flags: PolicyFlags {
                hairpin: Some(true),
                ..PolicyFlags::default()
            },
            ..PortSet::default()
        };
        untouched.apply(&mut p);
        assert!(p.gro, "a port set without gro leaves it as it is");
        assert!(PortSet {
            name: "red".into(),
            ..PortSet::default()
        }
        .is_empty());
        let e = Request::parse(r#"{"cmd":"port-set","name":"red","gro":"off"}"#).unwrap_err();
        assert!(e.contains("invalid type"), "{e}");
        let e = Request::parse(r#"{"cmd":"port-set","name":"red","groo":true}"#).unwrap_err();
        assert!(e.contains("unknown field `groo`"), "{e}");
        let e = serde_json::from_str::<PortSet>(r#"{"name":"","groo":true}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `groo`"), "{e}");
    }

    #[test]
    fn round_trips_every_request_shape() {
        let reqs = vec![
            Request::PortDel { name: "a".into() },
            Request::FdbFlush {
                port: Some("a".into()),
                include_static: true,
            },
            Request::Set {
                key: "ageing-time".into(),
                value: Value::from(60),
            },
            Request::NsUnplug { ns: "red".into() },
            Request::FdbAdd {
                mac: "02:00:00:00:00:09".parse().unwrap(),
                port: "vx100".into(),
                vlan: 0,
                dst: Some("10.201.0.2".parse().unwrap()),
            },
            Request::PortAddVxlan(VxlanAdd {
                name: "vx100".into(),
                vni: 100,
                local: "10.201.0.1".parse().unwrap(),
                remote: vec!["10.201.0.2".parse().unwrap()],
                dstport: Some(4789),
                learning: Some(false),
                netns: Some("underlay".into()),
                vlan: Some(10),
                ttl: None,
                df: Some(true),
                mtu: None,
                max_learned: None,
            }),
            Request::PortSet(PortSet {
                name: "red".into(),
                max_learned: Some(Limit::Default),
                flags: PolicyFlags {
                    hairpin: Some(true),
                    gro: Some(false),
                    storm_bcast: Some(20),
                    ..PolicyFlags::default()
                },
            }),
        ];
        for r in reqs {
            let line = serde_json::to_string(&r).unwrap();
            assert_eq!(Request::parse(&line).unwrap(), r, "{line}");
        }
    }

    #[test]
    fn errors_are_precise() {
        let cases = [
            ("{", "malformed JSON"),
            ("[1]", "must be a JSON object"),
            ("{}", "no \"cmd\" field"),
            (r#"{"cmd":7}"#, "\"cmd\" must be a string"),
            (r#"{"cmd":"frobnicate"}"#, "unknown command \"frobnicate\""),
            (
                r#"{"cmd":"fdb-add","mac":"zz","port":"p"}"#,
                "invalid MAC address \"zz\"",
            ),
            (
                r#"{"cmd":"fdb-add","mac":"02:00:00:00:00:01"}"#,
                "missing field `port`",
            ),
            (
                r#"{"cmd":"ns-plug","ns":"red","ip":["10.0.0.1"]}"#,
                "invalid address \"10.0.0.1\"",
            ),
            (r#"{"cmd":"status","bogus":1}"#, "unknown field `bogus`"),
            (
                r#"{"cmd":"ns-plug","ns":"r","bogus":1}"#,
                "unknown field `bogus`",
            ),
            (
                r#"{"cmd":"port-add","kind":"veth","ifname":"x"}"#,
                "unknown variant `veth`",
            ),
        ];
        for (line, want) in cases {
            let e = Request::parse(line).unwrap_err();
            assert!(e.contains(want), "{line}: got {e:?}, want {want:?}");
        }
    }
}
