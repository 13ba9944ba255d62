//! l2sw: a userspace L2 switch for Linux you can see into.
//!
//! Layers, lowest first; each only uses the ones before it (modules on one
//! line use neither each other; `tools/check-layers` checks this):
//! - [`wire`]: zero-copy views over frame bytes (MAC, Ethernet, VLAN tags);
//! - [`netlink`]: rtnetlink requests (links, addresses, routes) on a blocking
//!   socket, in the namespace the socket was opened in;
//! - [`switch`]: the sans-I/O forwarding core: port table, FDB, the plan for
//!   one frame, drop reasons. No sockets, threads or clocks;
//!   [`port`]: I/O backends (AF_PACKET on existing interfaces, TAP) behind
//!   one batch-oriented trait; all `unsafe` and ioctls live in `port::sys`;
//! - [`observe`]: counters, latency histograms, capture and trace records;
//! - [`dataplane`]: the forwarding thread: event loop, buffers, batching; it
//!   asks `switch` for a plan per frame and executes it on `port`s;
//!   [`netns`]: plugging network namespaces into the switch (veth or TAP);
//! - [`control`]: the control socket (JSON lines), its server and client;
//!   [`evpn`]: BGP EVPN through gobgpd's gRPC API, on a thread of its own;
//! - [`config`]: TOML topology and the embedded default lab, as control
//!   requests; [`cni`]: the CNI plugin `l2sw-cni` (a control client that
//!   makes a container's veth and asks the switch to attach it);
//! - [`daemon`]: one running switch: dataplane + control + the resources it made;
//!   [`metrics`]: Prometheus `/metrics` from dataplane snapshots;
//! - [`demo`]: the embedded lab brought up, pinged through and torn down;
//!   [`probe`]: end-to-end latency between two namespaces, whatever joins them;
//!   [`top`]: the live view of a running switch, a control-socket client.
#![deny(unsafe_code)]

pub mod cni;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod demo;
pub mod evpn;
pub mod fastpath;
pub mod impair;
pub mod metrics;
pub mod netlink;
pub mod netns;
pub mod observe;
pub mod port;
pub mod probe;
pub mod switch;
pub mod top;
pub mod wire;
