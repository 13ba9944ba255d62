//! The `l2sw` command: runs a switch (`run`, `demo`) or talks to a running one
//! over its control socket. Parsing and printing only; the work is in the library.

use std::path::PathBuf;

mod impair_cli;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

use l2sw::config::Config;
use l2sw::control::access::Access;
use l2sw::control::client::{decode, Client};
use l2sw::control::policy::on_off;
use l2sw::control::protocol::{
    AddKind, EvpnEnable, Limit, NsPlug, PortAdd, PortSet, Request, TapSetup, Via, VxlanAdd,
};
use l2sw::control::{render, socket_path, validate_switch_name, DEFAULT_NAME, DEFAULT_RUN_DIR};
use l2sw::daemon::{Daemon, DaemonOptions};
use l2sw::dataplane::BusyPoll;
use l2sw::netns::Cidr;
use l2sw::switch::Settings;
use l2sw::wire::MacAddr;

#[derive(Parser)]
#[command(
    name = "l2sw",
    version,
    about = "A userspace L2 switch for Linux you can see into"
)]
struct Cli {
    /// Which switch: each name has its own control socket. Give it before
    /// the command (`l2sw --name lab port list`): after a command, `--name`
    /// is that command's own option where it has one.
    /// [default: default]
    #[arg(long, env = "L2SW_NAME")]
    name: Option<String>,
    /// Directory of the control sockets and journals.
    #[arg(long, global = true, env = "L2SW_RUN_DIR", default_value = DEFAULT_RUN_DIR)]
    run_dir: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
// Parsed once per run: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Cmd {
    /// Run a switch in the foreground until SIGINT, SIGTERM, SIGHUP or SIGQUIT.
    Run(RunArgs),
    /// Bring up the embedded default lab, ping across it, show the FDB and counters, clean up.
    Demo,
    /// Show the switch's name, uptime and sizes.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Wait up to SECS for the switch to answer (e.g. right after `run &`).
        #[arg(long, value_name = "SECS")]
        wait: Option<f64>,
    },
    /// Add, remove, list and tune ports.
    #[command(subcommand)]
    Port(PortCmd),
    /// Show and edit the forwarding database.
    #[command(subcommand)]
    Fdb(FdbCmd),
    /// Change a switch-wide setting: ageing-time SECS, fdb-max N, fdb-max-per-port N, group-fwd-mask MASK.
    Set {
        /// ageing-time, fdb-max, fdb-max-per-port or group-fwd-mask.
        key: String,
        /// The new value: a number (group-fwd-mask also 0x hex).
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Show the switch-wide settings.
    Get(JsonFlag),
    /// Per-port frame/byte counters and drops per reason.
    Stats {
        /// Only this port's counters.
        #[arg(long)]
        port: Option<String>,
        /// Zero the counters after showing them.
        #[arg(long)]
        reset: bool,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Plug network namespaces into the switch.
    #[command(subcommand)]
    Ns(NsCmd),
    /// Port mirroring (SPAN).
    #[command(subcommand)]
    Mirror(MirrorCmd),
    /// BGP EVPN through a gobgpd: advertise local MACs and VTEPs, import remote ones.
    #[command(subcommand)]
    Evpn(EvpnCmd),
    /// Record frames as pcapng: per-port interfaces, direction, packet id, the decision as comment.
    Capture {
        /// Only these ports (repeatable; default every port).
        #[arg(long)]
        port: Vec<String>,
        /// Only records matching EXPR (see docs/capture.md).
        #[arg(long)]
        filter: Option<String>,
        /// Stop after N records.
        #[arg(long, short = 'c')]
        count: Option<u64>,
        /// Keep at most N bytes of each frame.
        #[arg(long, short = 's')]
        snaplen: Option<u32>,
        /// Only frames matching this pcap-filter expression (tcpdump's
        /// language, e.g. 'tcp port 80'), besides --filter and --port.
        #[arg(long, value_name = "EXPR")]
        bpf: Option<String>,
        /// Output file, or - for stdout (e.g. `| wireshark -k -i -`).
        #[arg(short = 'w', long = "write")]
        write: String,
        /// Which records: `in` (what ports receive: one record per frame),
        /// `out` (what ports send) or `both`.
        #[arg(long, value_enum, default_value = "both")]
        direction: DirectionArg,
    },
    /// Explain the decision for a frame: synthetic (--in --src --dst) or real ones (--live).
    Trace(TraceArgs),
    /// Residence time of frames in the switch: per egress port and per port pair, in µs.
    Latency {
        /// Only this egress port (and the pairs ending there).
        #[arg(long, conflicts_with = "pair")]
        port: Option<String>,
        /// Only the pair INGRESS,EGRESS.
        #[arg(long)]
        pair: Option<String>,
        /// Empty the histograms shown, after showing them.
        #[arg(long)]
        reset: bool,
        /// Print the HdrHistogram percentile distribution (.hgrm) of each histogram.
        #[arg(long, conflicts_with = "json")]
        hgrm: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send timestamped UDP from one namespace to another and back; report RTT and one-way percentiles.
    Probe(ProbeArgs),
    /// The kernel fast path (tc BPF): which flows it carries.
    #[command(subcommand)]
    Fastpath(FastpathCmd),
    /// Stop the switch (as SIGTERM would).
    Shutdown,
    /// The switches running on this host (and dead ones that left things behind).
    List(JsonFlag),
    /// One overview of the switch, like `ovs-vsctl show`: ports, links, VLANs, flags, MACs, mirrors, settings.
    Show(JsonFlag),
    /// The running topology as TOML.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Switch events as they happen: FDB learned/moved/aged/flushed/full, ports, links, settings.
    Monitor {
        /// Stop after N events.
        #[arg(long, short = 'c')]
        count: Option<u64>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Live full-screen view: per-port rates, drops/s by reason, FDB churn, busiest MACs, latency.
    Top(TopArgs),
    /// Remove what a switch that died (SIGKILL, crash) left behind, as its journal lists it.
    Cleanup {
        /// Only this switch (default: every dead switch under the run directory).
        #[arg(long = "name", value_name = "NAME")]
        switch: Option<String>,
    },
}

/// `l2sw top`: keys and columns are in docs/operations.md (and behind `?`).
#[derive(Args)]
struct TopArgs {
    /// Which switch (the same as `l2sw --name NAME top`).
    #[arg(long = "name", value_name = "NAME")]
    switch: Option<String>,
    /// Print one frame as text (after one 1-second interval) and exit; for
    /// scripts and when stdout is not a terminal.
    #[arg(long)]
    once: bool,
    /// The view to start in.
    #[arg(long, value_enum, default_value = "ports")]
    view: TopView,
    /// The column to sort by (default: the view's first: rx for ports,
    /// drops for drops, rx for fdb, p99 for latency).
    #[arg(long, value_enum)]
    sort: Option<TopSort>,
    /// Reverse the order.
    #[arg(long)]
    reverse: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum TopView {
    Ports,
    Drops,
    Fdb,
    Latency,
}

#[derive(Clone, Copy, ValueEnum)]
enum TopSort {
    Name,
    Rx,
    Tx,
    Drops,
    P99,
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print the running topology as TOML that `run --config` accepts.
    Dump,
}

#[derive(Subcommand)]
enum FastpathCmd {
    /// Entries the kernel carries: ports, VLAN, MACs, hit counts, last-seen age.
    Show(JsonFlag),
}

#[derive(Args)]
struct ProbeArgs {
    /// Namespace to send from.
    #[arg(long)]
    from: String,
    /// Namespace to echo in (its first global IPv4 address unless --to-addr).
    #[arg(long)]
    to: String,
    /// Address to send to instead of the first one in --to.
    #[arg(long)]
    to_addr: Option<std::net::IpAddr>,
    /// Probes to send.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Probes per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// UDP payload bytes (at least 32 for one-way delays).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Print the round-trip .hgrm distribution after the summary.
    #[arg(long, conflicts_with = "json")]
    hgrm: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct TraceArgs {
    /// Ingress port of the synthetic frame.
    #[arg(long = "in", required_unless_present = "live")]
    ingress: Option<String>,
    /// Source MAC of the synthetic frame.
    #[arg(long, required_unless_present = "live")]
    src: Option<MacAddr>,
    /// Destination MAC of the synthetic frame.
    #[arg(long, required_unless_present = "live")]
    dst: Option<MacAddr>,
    /// 802.1Q tag for the synthetic frame.
    #[arg(long)]
    vlan: Option<u16>,
    /// EtherType: number (0x0806) or name (arp, ipv4, ipv6, lldp); default ipv4.
    #[arg(long)]
    ethertype: Option<String>,
    /// Explain real frames as they pass instead.
    #[arg(long, conflicts_with_all = ["ingress", "src", "dst", "vlan", "ethertype"])]
    live: bool,
    /// With --live: only frames arriving on these ports.
    #[arg(long, requires = "live")]
    port: Vec<String>,
    /// With --live: only frames matching EXPR.
    #[arg(long, requires = "live")]
    filter: Option<String>,
    /// With --live: stop after N frames.
    #[arg(long, short = 'c', requires = "live")]
    count: Option<u64>,
    /// With --live: only frames matching this pcap-filter expression
    /// (tcpdump's language), besides --filter and --port.
    #[arg(long, requires = "live", value_name = "EXPR")]
    bpf: Option<String>,
    /// Print JSON (with --live: one object per line).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RunArgs {
    /// TOML topology: [switch] settings, [[port]] and [[namespace]] tables.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Bring up the embedded default lab (three namespaces; see `l2sw demo`).
    #[arg(long, conflicts_with = "config")]
    lab: bool,
    /// FDB ageing time in seconds (default 300).
    #[arg(long)]
    ageing_time: Option<u64>,
    /// Learned FDB entries allowed switch-wide; 0 = unlimited (default 8192).
    #[arg(long)]
    fdb_max: Option<u64>,
    /// Learned FDB entries allowed per port; 0 = unlimited (default 0).
    #[arg(long)]
    fdb_max_per_port: Option<u64>,
    /// How long the dataplane polls after the last frame before it sleeps:
    /// USECS (default 50), `off` (sleep at once), or without a value: always
    /// (one core stays busy).
    #[arg(long, value_name = "MODE|USECS", num_args = 0..=1, default_missing_value = "always")]
    busy_poll: Option<BusyPoll>,
    /// Let members of this group use the control socket (mode 0660); without
    /// it the socket is root-only (0600).
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics: IP:PORT, or PORT
    /// alone for loopback (e.g. 9830). Off by default.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Let the kernel carry known unicast flows (tc BPF fast path): on
    /// (default where the kernel supports it) or off (every frame through
    /// user space). Overrides `[switch] fastpath` of the config.
    #[arg(long, env = "L2SW_FASTPATH", value_name = "on|off", value_parser = on_off)]
    fastpath: Option<bool>,
    /// What a flapping MAC (a loop) does: off, report (default: monitor,
    /// metrics, log) or block (also block the port the MAC moved to).
    /// Overrides `[switch] loop_protect`.
    #[arg(long, value_name = "off|report|block")]
    loop_protect: Option<String>,
    /// Moves within a second beyond which a MAC is flapping (default 5).
    #[arg(long, value_name = "MOVES")]
    flap_threshold: Option<u64>,
    /// How long a blocked port stays blocked: 30s (default), 5m, or 0
    /// (until `l2sw port unblock`).
    #[arg(long, value_name = "DURATION")]
    loop_hold: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DirectionArg {
    In,
    Out,
    Both,
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    /// An existing interface, read through AF_PACKET (e.g. a veth end).
    Iface,
    /// A TAP device the switch creates (for a VM, the host, or a namespace).
    Tap,
    /// QEMU -netdev stream (Unix socket the switch listens on).
    Stream,
    /// QEMU -netdev dgram (Unix datagram sockets).
    Dgram,
    /// QEMU -netdev vhost-user (vhost-user-net backend socket; guest memory shared with the switch).
    VhostUser,
    Vxlan,
}

// Parsed once per command line; the size of `Add` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum PortCmd {
    /// Attach an existing interface (iface), create a TAP device (tap), a VXLAN tunnel port (vxlan NAME --vni N --local IP) or a socket for a VM (stream, dgram, vhost-user).
    Add {
        /// iface: attach an existing interface; tap: create a TAP device.
        kind: KindArg,
        /// The interface (iface, tap), or the port's name (vxlan).
        ifname: String,
        /// Port name (default: the interface name).
        #[arg(long = "port-name", visible_alias = "name")]
        port_name: Option<String>,
        /// TAP: move the device into this namespace (created if missing); the switch holds the queue.
        #[arg(long)]
        netns: Option<String>,
        /// TAP: keep the device in this namespace for the host stack; the switch holds the queue.
        #[arg(long, conflicts_with_all = ["netns", "vm"])]
        host: bool,
        /// TAP: leave the queue to a VM (default without --netns/--host).
        #[arg(long, conflicts_with = "netns")]
        vm: bool,
        /// TAP with --netns/--host: address for the device (repeatable).
        #[arg(long)]
        ip: Vec<Cidr>,
        /// TAP: MTU of the device.
        #[arg(long)]
        mtu: Option<u32>,
        /// TAP with --netns/--host: MAC of the device.
        #[arg(long)]
        mac: Option<MacAddr>,
        /// Learned FDB entries allowed on this port (0 = unlimited).
        #[arg(long)]
        max_learned: Option<u32>,
        /// stream: the socket to listen on (default RUN_DIR/SWITCH/NAME.sock).
        #[arg(long, conflicts_with = "bind")]
        listen: Option<PathBuf>,
        /// dgram: the switch's socket to bind (default RUN_DIR/SWITCH/NAME.sock).
        #[arg(long)]
        bind: Option<PathBuf>,
        /// dgram: the VM's socket (QEMU's local.path) to send frames to.
        #[arg(long)]
        peer: Option<PathBuf>,
        /// vhost-user: the socket (default RUN_DIR/SWITCH/NAME.sock; with --client, QEMU's socket).
        #[arg(long, conflicts_with_all = ["listen", "bind"])]
        socket: Option<PathBuf>,
        /// vhost-user: the switch listens on the socket and QEMU connects (the default).
        #[arg(long, conflicts_with = "client")]
        server: bool,
        /// vhost-user: QEMU listens (-chardev socket,server=on); the switch connects and reconnects.
        #[arg(long)]
        client: bool,
        /// stream/dgram/vhost-user: give the socket to USER[:GROUP] (names or numbers), so their QEMU may open it.
        #[arg(long)]
        owner: Option<String>,
        /// stream/dgram/vhost-user: permission bits of the socket, in octal (e.g. 0660).
        #[arg(long)]
        socket_mode: Option<String>,
        #[command(flatten)]
        vxlan: VxlanArgs,
    },
    /// Remove a port (and any device the switch created for it).
    Del {
        /// The port to remove.
        port: String,
    },
    /// List ports.
    List(JsonFlag),
    /// Change a port's policy (the Linux bridge's port flags); options left out stay as they are.
    Set {
        /// The port to change.
        port: String,
        /// Learned FDB entries allowed on this port: a number (0 = unlimited) or "default".
        #[arg(long)]
        max_learned: Option<String>,
        #[command(flatten)]
        flags: l2sw::control::policy::PolicyFlags,
    },
    /// Reopen a port blocked by loop protection or BPDU guard.
    Unblock {
        /// The blocked port.
        port: String,
    },
    /// Impair a port's link like netem: delay, jitter, loss, duplication, reordering, corruption, rate (--clear removes it).
    Impair(impair_cli::ImpairArgs),
    /// Set a port's VLAN mode (Open vSwitch's vocabulary); `--mode none` removes it.
    Vlan {
        /// The port to change.
        port: String,
        /// access, trunk, native-untagged, native-tagged or none.
        #[arg(long)]
        mode: String,
        /// The access VLAN, or the native VLAN of a native-* port.
        #[arg(long)]
        tag: Option<u16>,
        /// VLANs a trunk carries, e.g. 10,20,30-40 (default: all).
        #[arg(long)]
        trunks: Option<l2sw::switch::VlanSet>,
    },
}

/// Options of `port add vxlan` (with --netns: the underlay socket's
/// namespace; with --mtu: the inner MTU).
#[derive(Args)]
struct VxlanArgs {
    /// VXLAN: the VNI (0..=16777215).
    #[arg(long)]
    vni: Option<u32>,
    /// VXLAN: local VTEP address (an address of an interface in --netns).
    #[arg(long)]
    local: Option<std::net::Ipv4Addr>,
    /// VXLAN: a remote VTEP floods are replicated to (repeatable).
    #[arg(long)]
    remote: Vec<std::net::Ipv4Addr>,
    /// VXLAN: UDP port to listen on and send to.
    #[arg(long = "port", default_value_t = 4789)]
    dstport: u16,
    /// VXLAN: learn MACs and VTEPs from decapsulated frames (off: only VTEPs of the flood list are heard).
    #[arg(long, value_parser = on_off)]
    learning: Option<bool>,
    /// VXLAN: map the VNI to this VLAN of a VLAN-aware switch (the bridge's vlan_tunnel).
    #[arg(long)]
    vlan: Option<u16>,
    /// VXLAN: TTL of the outer IPv4 header (default 64).
    #[arg(long)]
    ttl: Option<u8>,
    /// VXLAN: set DF on the outer header (default off).
    #[arg(long, value_parser = on_off)]
    df: Option<bool>,
}

impl VxlanArgs {
    fn given(&self) -> Option<&'static str> {
        if self.vni.is_some() {
            Some("--vni")
        } else if self.local.is_some() {
            Some("--local")
        } else if !self.remote.is_empty() {
            Some("--remote")
        } else if self.dstport != 4789 {
            Some("--port")
        } else if self.learning.is_some() {
            Some("--learning")
        } else if self.vlan.is_some() {
            Some("--vlan")
        } else if self.ttl.is_some() {
            Some("--ttl")
        } else if self.df.is_some() {
            Some("--df")
        } else {
            None
        }
    }
}

#[derive(Subcommand)]
enum MirrorCmd {
    /// Copy what --src ports receive and --dst ports send to port --to (which then does no switching).
    Add {
        /// Name of the new mirror.
        mirror: String,
        /// Output port: gets the copies.
        #[arg(long)]
        to: String,
        /// Ports whose received frames are copied (comma-separated or repeated).
        #[arg(long, value_delimiter = ',')]
        src: Vec<String>,
        /// Ports whose sent frames are copied.
        #[arg(long, value_delimiter = ',')]
        dst: Vec<String>,
    },
    /// Remove a mirror.
    Del {
        /// The mirror to remove.
        mirror: String,
    },
    /// List mirrors.
    List(JsonFlag),
}

#[derive(Subcommand)]
enum EvpnCmd {
    /// Connect to gobgpd's gRPC API and join the fabric (VXLAN ports' VNIs).
    Enable {
        /// gobgpd's gRPC listener (its --api-hosts), e.g. 127.0.0.1:50051.
        #[arg(long)]
        gobgp: String,
        /// The network namespace gobgpd listens in (default: the switch's own).
        #[arg(long)]
        netns: Option<String>,
        /// AS number for the route targets (ASN:VNI), as in gobgpd's config.
        #[arg(long)]
        asn: u32,
        /// Router id for the route distinguishers (default: the first VXLAN port's --local).
        #[arg(long)]
        router_id: Option<std::net::Ipv4Addr>,
    },
    /// Withdraw the switch's routes, remove the imported ones, disconnect.
    Disable,
    /// The session, the routes advertised and the routes imported.
    Show(JsonFlag),
}

#[derive(Subcommand)]
enum FdbCmd {
    /// Show entries.
    Show {
        /// Only entries pointing at this port.
        #[arg(long)]
        port: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Add a static entry: MAC is always sent to PORT (behind VTEP --dst on a VXLAN port), never learned elsewhere.
    Add {
        /// The MAC, as aa:bb:cc:dd:ee:ff.
        mac: MacAddr,
        /// The port frames to MAC go to.
        port: String,
        /// VLAN of the entry (0: the VLAN-unaware table).
        #[arg(long, default_value_t = 0)]
        vlan: u16,
        /// VXLAN port: the remote VTEP the MAC sits behind.
        #[arg(long)]
        dst: Option<std::net::Ipv4Addr>,
    },
    /// Remove an entry (learned or static).
    Del {
        /// The MAC, as aa:bb:cc:dd:ee:ff.
        mac: MacAddr,
        /// VLAN of the entry (0: the VLAN-unaware table).
        #[arg(long, default_value_t = 0)]
        vlan: u16,
    },
    /// Remove learned entries (of one port with --port; static ones too with --static).
    Flush {
        /// Only entries pointing at this port.
        #[arg(long)]
        port: Option<String>,
        /// Static entries too.
        #[arg(long = "static")]
        include_static: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ViaArg {
    /// A veth pair: one end in the namespace, the other read by the switch.
    Veth,
    /// A TAP device moved into the namespace; the switch holds its queue.
    Tap,
}

#[derive(Subcommand)]
enum NsCmd {
    /// Plug namespace NS into the switch (created if missing).
    Plug {
        /// The namespace (a name under /run/netns).
        ns: String,
        /// Address inside the namespace (repeatable), e.g. 10.0.0.1/24.
        #[arg(long)]
        ip: Vec<Cidr>,
        /// Wire it with a veth pair (default) or a TAP device.
        #[arg(long, value_enum, default_value = "veth")]
        via: ViaArg,
        /// MTU of both ends of the link.
        #[arg(long)]
        mtu: Option<u32>,
        /// MAC of the interface inside the namespace.
        #[arg(long)]
        mac: Option<MacAddr>,
        /// Interface name inside the namespace (default eth0).
        #[arg(long)]
        ifname: Option<String>,
        /// Learned FDB entries allowed on this port (0 = unlimited).
        #[arg(long)]
        max_learned: Option<u32>,
    },
    /// Unplug NS: remove its port and link, and the namespace if the switch created it.
    Unplug {
        /// The namespace to unplug.
        ns: String,
    },
    /// List plugged namespaces.
    List(JsonFlag),
}

/// The signals that end a process by default from a terminal or a
/// supervisor: each stops the switch cleanly.
const STOP_SIGNALS: [i32; 4] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGQUIT,
];

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => misplaced_name_hint(e).exit(),
    };
    if let Err(e) = real_main(cli) {
        if is_broken_pipe(&e) {
            // The reader (`| head`, `| tshark -c 20`) has what it wanted.
            std::process::exit(0);
        }
        eprintln!("l2sw: error: {}", l2sw::control::error_chain(&e));
        std::process::exit(1);
    }
}

/// `l2sw status --name lab`: clap's "unexpected argument" says nothing of
/// where `--name` belongs; say it.
fn misplaced_name_hint(e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let is_name = matches!(
        e.get(ContextKind::InvalidArg),
        Some(ContextValue::String(a)) if a == "--name" || a.starts_with("--name=")
    );
    if e.kind() != ErrorKind::UnknownArgument || !is_name {
        return e;
    }
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.error(
        ErrorKind::UnknownArgument,
        "this command has no --name option; the switch's name goes before the command: `l2sw --name NAME COMMAND ...`",
    )
}

/// Whether the error is our stdout closed by its reader.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<l2sw::control::streams::StreamError>()
                .is_some_and(|s| s.is_broken_pipe())
    })
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    if let Some(n) = &cli.name {
        validate_switch_name(n).map_err(anyhow::Error::msg)?;
    }
    let name = cli.name.clone().unwrap_or_else(|| DEFAULT_NAME.to_string());
    match cli.cmd {
        Cmd::Run(args) => run(&name, &cli.run_dir, args),
        Cmd::Demo => l2sw::demo::run(&cli.run_dir),
        Cmd::Probe(p) => probe(p),
        Cmd::List(j) => {
            let rows = l2sw::daemon::listing::list_switches(&cli.run_dir);
            let text = if j.json {
                format!("{}\n", serde_json::to_string(&rows)?)
            } else {
                l2sw::control::views::render_list(&rows)
            };
            write_stdout(&text)?;
            Ok(())
        }
        Cmd::Cleanup { switch } => {
            let target = switch.or(cli.name);
            if let Some(n) = &target {
                validate_switch_name(n).map_err(anyhow::Error::msg)?;
            }
            let outcomes = l2sw::daemon::journal::cleanup(&cli.run_dir, target.as_deref())?;
            if outcomes.is_empty() {
                eprintln!(
                    "l2sw: no journals under {}: nothing to clean up",
                    cli.run_dir.display()
                );
            }
            for o in &outcomes {
                eprintln!("l2sw: {o}");
            }
            Ok(())
        }
        Cmd::Top(t) => top(cli.name, &cli.run_dir, t),
        cmd => client(&name, &cli.run_dir, cmd),
    }
}

fn top(global: Option<String>, run_dir: &std::path::Path, t: TopArgs) -> anyhow::Result<()> {
    use l2sw::top::{SortKey, TopOptions, View};
    let name = t
        .switch
        .or(global)
        .unwrap_or_else(|| DEFAULT_NAME.to_string());
    validate_switch_name(&name).map_err(anyhow::Error::msg)?;
    let opts = TopOptions {
        view: match t.view {
            TopView::Ports => View::Ports,
            TopView::Drops => View::Drops,
            TopView::Fdb => View::Macs,
            TopView::Latency => View::Latency,
        },
        sort: t.sort.map(|s| match s {
            TopSort::Name => SortKey::Name,
            TopSort::Rx => SortKey::Rx,
            TopSort::Tx => SortKey::Tx,
            TopSort::Drops => SortKey::Drops,
            TopSort::P99 => SortKey::P99,
        }),
        reverse: t.reverse,
        once: t.once,
    };
    if let Some(text) = l2sw::top::run(&name, &socket_path(run_dir, &name), &opts)? {
        write_stdout(&text)?;
    }
    Ok(())
}

fn write_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

fn run(name: &str, run_dir: &std::path::Path, args: RunArgs) -> anyhow::Result<()> {
    let config = match (&args.config, args.lab) {
        (Some(path), _) => Some(Config::from_file(path)?),
        (None, true) => Some(Config::default_lab()),
        (None, false) => None,
    };
    // Signals first: a SIGTERM during setup must still clean up.
    let (sig_tx, sig_rx) = crossbeam_channel::bounded::<String>(1);
    let mut signals = signal_hook::iterator::Signals::new(STOP_SIGNALS)
        .context("cannot install signal handlers")?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let name = match sig {
                signal_hook::consts::SIGINT => "SIGINT",
                signal_hook::consts::SIGTERM => "SIGTERM",
                signal_hook::consts::SIGHUP => "SIGHUP",
                signal_hook::consts::SIGQUIT => "SIGQUIT",
                _ => "a signal",
            };
            let _ = sig_tx.send(name.to_string());
        }
    });

    let busy_poll = args.busy_poll.unwrap_or_default();
    let access = match &args.group {
        Some(g) => Access::with_group(g)?,
        None => Access::root_only(),
    };
    let mut daemon = Daemon::start(DaemonOptions {
        name: name.to_string(),
        run_dir: run_dir.to_path_buf(),
        settings: Settings::default(),
        busy_poll,
        access,
    })?;
    let fastpath = args
        .fastpath
        .or(config.as_ref().and_then(|c| c.switch.fastpath))
        .unwrap_or(true);
    let setup = (|| -> anyhow::Result<()> {
        // Before any port, so every port is attached as it is added.
        let st = daemon.dataplane().set_fastpath(fastpath)?;
        if let (true, Some(why)) = (fastpath, &st.reason) {
            eprintln!("l2sw: fast path {why}; every frame goes through user space");
        }
        if let Some(c) = &config {
            daemon.apply(c)?;
        }
        let overrides = [
            ("ageing-time", args.ageing_time),
            ("fdb-max", args.fdb_max),
            ("fdb-max-per-port", args.fdb_max_per_port),
        ];
        let overrides = overrides
            .into_iter()
            .map(|(k, v)| (k, v.map(Value::from)))
            .chain([
                ("flap-threshold", args.flap_threshold.map(Value::from)),
                ("loop-protect", args.loop_protect.clone().map(Value::from)),
                ("loop-hold", args.loop_hold.clone().map(Value::from)),
            ]);
        for (key, v) in overrides {
            if let Some(value) = v {
                let r = daemon.request(Request::Set {
                    key: key.into(),
                    value,
                });
                if !r.ok {
                    anyhow::bail!("--{key}: {}", r.error.unwrap_or_default());
                }
            }
        }
        Ok(())
    })();
    // Metrics (the command line wins over the config file), once set up.
    let metrics = setup.and_then(|()| {
        let (addr, what) = match (
            &args.metrics,
            config.as_ref().and_then(|c| c.switch.metrics.as_ref()),
        ) {
            (Some(a), _) => (a, "--metrics"),
            (None, Some(a)) => (a, "config [switch] metrics"),
            (None, None) => return Ok(None),
        };
        let addr = l2sw::metrics::parse_listen_addr(addr).with_context(|| what.to_string())?;
        let server = l2sw::metrics::MetricsServer::start(addr, daemon.dataplane().clone())?;
        eprintln!("l2sw: metrics at http://{}/metrics", server.addr());
        Ok(Some(server))
    });
    let metrics = match metrics {
        Ok(m) => m,
        Err(e) => {
            for c in daemon.shutdown() {
                eprintln!("l2sw: cleanup: {c}");
            }
            return Err(e);
        }
    };
    daemon.serve();
    eprintln!(
        "l2sw: switch {name} running; control socket {}; Ctrl-C stops it",
        daemon.socket().display()
    );
    let shutdown_rx = daemon.shutdown_requests();
    let why = crossbeam_channel::select! {
        recv(sig_rx) -> m => m.unwrap_or_else(|_| "signal".into()),
        recv(shutdown_rx) -> m => m.unwrap_or_else(|_| "shutdown".into()),
    };
    eprintln!("l2sw: stopping switch {name} ({why})");
    drop(metrics);
    let errors = daemon.shutdown();
    for e in &errors {
        eprintln!("l2sw: cleanup: {e}");
    }
    if errors.is_empty() {
        eprintln!("l2sw: switch {name} stopped; everything it created is removed");
        Ok(())
    } else {
        anyhow::bail!("{} cleanup problems (see above)", errors.len())
    }
}

/// Turns a result into the text table people read.
/// A result's text form: the typed answer read from the JSON, then rendered.
type Renderer = fn(Value) -> Result<String, l2sw::control::client::ClientError>;

/// Sends `cmd` to the running switch and prints the answer.
fn client(name: &str, run_dir: &std::path::Path, cmd: Cmd) -> anyhow::Result<()> {
    let path = socket_path(run_dir, name);
    if let Cmd::Status {
        wait: Some(secs), ..
    } = cmd
    {
        let wait = std::time::Duration::try_from_secs_f64(secs)
            .unwrap_or_default()
            .min(std::time::Duration::from_secs(86_400));
        let deadline = std::time::Instant::now() + wait;
        while Client::connect(name, &path).is_err() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let mut c = Client::connect(name, &path)?;
    let (req, json, show): (Request, bool, Option<Renderer>) = match cmd {
        Cmd::Run(_)
        | Cmd::Demo
        | Cmd::Probe(_)
        | Cmd::List(_)
        | Cmd::Cleanup { .. }
        | Cmd::Top(_) => {
            unreachable!("handled by real_main")
        }
        Cmd::Show(j) => {
            let v = c.call(&Request::Show)?;
            let text = if j.json {
                format!("{v}\n")
            } else {
                let r: l2sw::control::views::ShowReport = serde_json::from_value(v)
                    .context("the switch sent a show report this l2sw cannot read")?;
                r.render()
            };
            write_stdout(&text)?;
            return Ok(());
        }
        Cmd::Config(ConfigCmd::Dump) => {
            let v = c.call(&Request::ConfigDump)?;
            let d: l2sw::config::ConfigDump = serde_json::from_value(v)
                .context("the switch sent a config this l2sw cannot read")?;
            write_stdout(&d.render(name).context("cannot write the config as TOML")?)?;
            return Ok(());
        }
        Cmd::Monitor { count, json } => {
            let stop = interrupt_flag()?;
            let out = std::io::stdout().lock();
            let req = Request::Monitor { count };
            let s = l2sw::control::streams::monitor(&mut c, &req, out, json, &stop)?;
            if s.skipped > 0 {
                eprintln!(
                    "l2sw: {} events not delivered: the reader was too slow",
                    s.skipped
                );
            }
            return Ok(());
        }
        Cmd::Status { json, .. } => (
            Request::Status,
            json,
            Some(|v| Ok(render::status(&decode(v)?))),
        ),
        Cmd::Port(p) => match p {
            PortCmd::Add {
                kind,
                ifname,
                port_name,
                netns,
                host,
                vm,
                ip,
                mtu,
                mac,
                max_learned,
                listen,
                bind,
                peer,
                owner,
                socket_mode,
                socket,
                server,
                client,
                vxlan,
            } => {
                let access = socket_access(owner.as_deref(), socket_mode.as_deref())?;
                if let KindArg::Vxlan = kind {
                    let tap_only = [
                        (port_name.is_some(), "--port-name (the port's name is NAME)"),
                        (host, "--host"),
                        (vm, "--vm"),
                        (!ip.is_empty(), "--ip"),
                        (mac.is_some(), "--mac"),
                    ];
                    if let Some((_, what)) = tap_only.iter().find(|(g, _)| *g) {
                        anyhow::bail!("{what} does not apply to VXLAN ports");
                    }
                    let (Some(vni), Some(local)) = (vxlan.vni, vxlan.local) else {
                        anyhow::bail!("port add vxlan NAME needs --vni N and --local IP");
                    };
                    let req = Request::PortAddVxlan(VxlanAdd {
                        name: ifname,
                        vni,
                        local,
                        remote: vxlan.remote,
                        dstport: Some(vxlan.dstport),
                        learning: vxlan.learning,
                        netns,
                        vlan: vxlan.vlan,
                        ttl: vxlan.ttl,
                        df: vxlan.df,
                        mtu,
                        max_learned,
                    });
                    return finish(&mut c, req);
                }
                if let Some(flag) = vxlan.given() {
                    anyhow::bail!("{flag} applies to VXLAN ports only (port add vxlan ...)");
                }
                let mode = match (host, vm) {
                    (true, _) => Some(TapSetup::Host),
                    (_, true) => Some(TapSetup::Vm),
                    _ => None,
                };
                let kind = match kind {
                    KindArg::Iface => AddKind::Iface,
                    KindArg::Tap => AddKind::Tap,
                    KindArg::Stream => AddKind::Stream,
                    KindArg::Dgram => AddKind::Dgram,
                    KindArg::VhostUser => AddKind::VhostUser,
                    KindArg::Vxlan => unreachable!("handled above"),
                };
                let vhost = matches!(kind, AddKind::VhostUser);
                if (socket.is_some() || server || client) && !vhost {
                    anyhow::bail!("--socket, --server and --client apply to vhost-user ports (stream ports take --listen, dgram ports --bind)");
                }
                if vhost && (listen.is_some() || bind.is_some()) {
                    anyhow::bail!("vhost-user ports take --socket PATH");
                }
                if bind.is_some() && !matches!(kind, AddKind::Dgram) {
                    anyhow::bail!("--bind applies to dgram ports (stream ports take --listen)");
                }
                if listen.is_some() && !matches!(kind, AddKind::Stream) {
                    anyhow::bail!("--listen applies to stream ports (dgram ports take --bind)");
                }
                let req = Request::PortAdd(PortAdd {
                    kind,
                    ifname,
                    name: port_name,
                    mode,
                    netns,
                    ip,
                    mtu,
                    mac,
                    max_learned,
                    socket: listen.or(bind).or(socket),
                    peer,
                    client,
                    access,
                });
                (req, false, None)
            }
            PortCmd::Del { port } => (Request::PortDel { name: port }, false, None),
            PortCmd::List(j) => (
                Request::PortList,
                j.json,
                Some(|v| Ok(render::ports(&decode::<Vec<_>>(v)?))),
            ),
            PortCmd::Set {
                port,
                max_learned,
                flags,
            } => {
                let max = match max_learned.as_deref() {
                    None => None,
                    Some("default") => Some(Limit::Default),
                    Some(n) => Some(Limit::Max(n.parse::<u32>().map_err(|_| {
                        anyhow::anyhow!(
                            "--max-learned takes a number (0 = unlimited) or \"default\", not {n:?}"
                        )
                    })?)),
                };
                let set = PortSet {
                    name: port,
                    max_learned: max,
                    flags,
                };
                (Request::PortSet(set), false, None)
            }
            PortCmd::Unblock { port } => (Request::PortUnblock { name: port }, false, None),
            PortCmd::Impair(args) => (args.request()?, false, None),
            PortCmd::Vlan {
                port,
                mode,
                tag,
                trunks,
            } => (
                Request::PortVlan {
                    name: port,
                    mode,
                    tag,
                    trunks,
                },
                false,
                None,
            ),
        },
        Cmd::Mirror(m) => match m {
            MirrorCmd::Add {
                mirror,
                to,
                src,
                dst,
            } => (
                Request::MirrorAdd {
                    name: mirror,
                    to,
                    src,
                    dst,
                },
                false,
                None,
            ),
            MirrorCmd::Del { mirror } => (Request::MirrorDel { name: mirror }, false, None),
            MirrorCmd::List(j) => (
                Request::MirrorList,
                j.json,
                Some(|v| Ok(render::mirrors(&decode::<Vec<_>>(v)?))),
            ),
        },
        Cmd::Evpn(e) => match e {
            EvpnCmd::Enable {
                gobgp,
                netns,
                asn,
                router_id,
            } => (
                Request::EvpnEnable(EvpnEnable {
                    gobgp,
                    netns,
                    asn,
                    router_id,
                }),
                false,
                None,
            ),
            EvpnCmd::Disable => (Request::EvpnDisable, false, None),
            EvpnCmd::Show(j) => (
                Request::EvpnShow,
                j.json,
                Some(|v| Ok(render::evpn(&decode(v)?))),
            ),
        },
        Cmd::Fdb(f) => match f {
            FdbCmd::Show { port, json } => (
                Request::FdbShow { port },
                json,
                Some(|v| Ok(render::fdb(&decode::<Vec<_>>(v)?))),
            ),
            FdbCmd::Add {
                mac,
                port,
                vlan,
                dst,
            } => (
                Request::FdbAdd {
                    mac,
                    port,
                    vlan,
                    dst,
                },
                false,
                None,
            ),
            FdbCmd::Del { mac, vlan } => (Request::FdbDel { mac, vlan }, false, None),
            FdbCmd::Flush {
                port,
                include_static,
            } => (
                Request::FdbFlush {
                    port,
                    include_static,
                },
                false,
                None,
            ),
        },
        Cmd::Set { key, value } => (
            Request::Set {
                key,
                value: Value::String(value),
            },
            false,
            None,
        ),
        Cmd::Get(j) => (
            Request::Get,
            j.json,
            Some(|v| Ok(render::settings(&decode(v)?))),
        ),
        Cmd::Stats { port, reset, json } => {
            let v = c.call(&Request::Stats { port })?;
            print_result(&v, json, Some(|v| Ok(render::stats(&decode(v)?))))?;
            if reset {
                c.call(&Request::StatsReset)?;
            }
            return Ok(());
        }
        Cmd::Ns(n) => match n {
            NsCmd::Plug {
                ns,
                ip,
                via,
                mtu,
                mac,
                ifname,
                max_learned,
            } => (
                Request::NsPlug(NsPlug {
                    ns,
                    ip,
                    via: match via {
                        ViaArg::Veth => Via::Veth,
                        ViaArg::Tap => Via::Tap,
                    },
                    mtu,
                    mac,
                    ifname,
                    max_learned,
                }),
                false,
                None,
            ),
            NsCmd::Unplug { ns } => (Request::NsUnplug { ns }, false, None),
            NsCmd::List(j) => (
                Request::NsList,
                j.json,
                Some(|v| Ok(render::namespaces(&decode::<Vec<_>>(v)?))),
            ),
        },
        Cmd::Capture {
            port,
            filter,
            count,
            snaplen,
            write,
            bpf,
            direction,
        } => {
            check_filter(filter.as_deref())?;
            check_bpf(bpf.as_deref())?;
            let req = Request::Capture {
                ports: port,
                filter,
                count,
                snaplen,
                bpf,
                direction: match direction {
                    DirectionArg::In => Some(l2sw::observe::records::Dir::In),
                    DirectionArg::Out => Some(l2sw::observe::records::Dir::Out),
                    DirectionArg::Both => None,
                },
            };
            let stop = interrupt_flag()?;
            let snap = snaplen.unwrap_or(0);
            let summary = if write == "-" {
                let out = std::io::stdout().lock();
                l2sw::control::streams::capture(&mut c, &req, out, snap, true, &stop)?
            } else {
                let f = std::fs::File::create(&write)
                    .with_context(|| format!("cannot create {write}"))?;
                let out = std::io::BufWriter::new(f);
                l2sw::control::streams::capture(&mut c, &req, out, snap, false, &stop)?
            };
            eprintln!(
                "l2sw: {} records captured, {} skipped because the reader was too slow",
                summary.delivered, summary.skipped
            );
            return Ok(());
        }
        Cmd::Trace(t) if t.live => {
            check_filter(t.filter.as_deref())?;
            check_bpf(t.bpf.as_deref())?;
            let req = Request::TraceLive {
                ports: t.port,
                filter: t.filter,
                count: t.count,
                bpf: t.bpf,
            };
            let stop = interrupt_flag()?;
            let out = std::io::stdout().lock();
            let s = l2sw::control::streams::trace_live(&mut c, &req, out, t.json, &stop)?;
            if s.skipped > 0 {
                eprintln!(
                    "l2sw: {} frames not traced: the reader was too slow",
                    s.skipped
                );
            }
            return Ok(());
        }
        Cmd::Trace(t) => {
            let ethertype = match t.ethertype.as_deref() {
                None => None,
                Some(e) => Some(parse_ethertype(e)?),
            };
            let req = Request::Trace {
                ingress: t.ingress.expect("clap requires --in"),
                src: t.src.expect("clap requires --src"),
                dst: t.dst.expect("clap requires --dst"),
                vlan: t.vlan,
                ethertype,
            };
            (req, t.json, Some(|v| Ok(render::trace(&decode(v)?))))
        }
        Cmd::Latency {
            port,
            pair,
            reset,
            hgrm,
            json,
        } => {
            let v = c.call(&Request::Latency { port, pair, reset })?;
            if hgrm {
                print!("{}", render::latency_hgrm(&decode::<Vec<_>>(v)?));
            } else {
                print_result(
                    &v,
                    json,
                    Some(|v| Ok(render::latency(&decode::<Vec<_>>(v)?))),
                )?;
            }
            return Ok(());
        }
        Cmd::Fastpath(FastpathCmd::Show(j)) => (
            Request::FastpathShow,
            j.json,
            Some(|v| Ok(render::fastpath(&decode::<Vec<_>>(v)?))),
        ),
        Cmd::Shutdown => (Request::Shutdown, false, None),
    };
    let v = c.call(&req)?;
    print_result(&v, json, show)?;
    Ok(())
}

/// Sends a change and prints what it did.
fn finish(c: &mut Client, req: Request) -> anyhow::Result<()> {
    let v = c.call(&req)?;
    print_result(&v, false, None)?;
    Ok(())
}

/// `l2sw probe`: needs no switch, only the two namespaces.
fn probe(p: ProbeArgs) -> anyhow::Result<()> {
    let mut opts = l2sw::probe::ProbeOptions::new(p.from, p.to);
    opts.to_addr = p.to_addr;
    opts.count = p.count;
    opts.rate_pps = p.rate;
    opts.size = p.size;
    let report = l2sw::probe::run(&opts)?;
    if p.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render_text());
        if p.hgrm {
            println!("\n# round trip, µs");
            print!("{}", report.rtt_hist()?.hgrm());
        }
    }
    Ok(())
}

/// Checks a filter before sending it, to show the caret under the problem.
fn check_filter(expr: Option<&str>) -> anyhow::Result<()> {
    if let Some(e) = expr {
        l2sw::observe::filter::Filter::parse(e)
            .map_err(|err| anyhow::anyhow!("{err}{}", l2sw::observe::bpf::pcap_hint(e)))?;
    }
    Ok(())
}

/// Compiles a `--bpf` expression here too, so a bad one fails before
/// anything is asked of the switch, with libpcap's message.
fn check_bpf(expr: Option<&str>) -> anyhow::Result<()> {
    if let Some(e) = expr {
        l2sw::observe::bpf::BpfFilter::compile(e)?;
    }
    Ok(())
}

fn parse_ethertype(s: &str) -> anyhow::Result<u16> {
    let v = match s.to_ascii_lowercase().as_str() {
        "ipv4" | "ip" => Some(0x0800),
        "arp" => Some(0x0806),
        "ipv6" | "ip6" => Some(0x86dd),
        "lldp" => Some(0x88cc),
        x => match x.strip_prefix("0x") {
            Some(h) => u16::from_str_radix(h, 16).ok(),
            None => x.parse().ok(),
        },
    };
    v.ok_or_else(|| {
        anyhow::anyhow!(
            "--ethertype {s:?}: expected a number (0x0806, 2054) or arp, ipv4, ipv6, lldp"
        )
    })
}

/// A flag set by SIGINT/SIGTERM/SIGHUP/SIGQUIT so streams end cleanly (the
/// file stays valid).
fn interrupt_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in STOP_SIGNALS {
        signal_hook::flag::register(sig, stop.clone()).context("cannot install signal handlers")?;
    }
    Ok(stop)
}

fn print_result(v: &Value, json: bool, show: Option<Renderer>) -> anyhow::Result<()> {
    use std::io::Write;
    let text = match (json, show) {
        (false, Some(f)) => f(v.clone())?,
        // Changes print what they did as one JSON line: scriptable and still readable.
        _ => format!("{v}\n"),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// `--owner USER[:GROUP]` and `--socket-mode OCTAL` for sockets the switch creates.
fn socket_access(
    owner: Option<&str>,
    mode: Option<&str>,
) -> anyhow::Result<l2sw::control::protocol::SocketAccess> {
    use l2sw::control::protocol::SocketAccess;
    use l2sw::port::unix_path::{lookup_group, lookup_user, parse_mode};
    let mut access = SocketAccess::default();
    if let Some(o) = owner {
        let (user, group) = match o.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (o, None),
        };
        let (uid, gid) = lookup_user(user).map_err(anyhow::Error::msg)?;
        access.uid = Some(uid);
        access.gid = match group {
            Some(g) => Some(lookup_group(g).map_err(anyhow::Error::msg)?),
            None => (gid != u32::MAX).then_some(gid),
        };
    }
    if let Some(m) = mode {
        access.mode = Some(parse_mode(m).map_err(anyhow::Error::msg)?);
    }
    Ok(access)
}
