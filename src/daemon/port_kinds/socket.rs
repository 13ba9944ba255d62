//! Building the ports whose peer is a VM behind a socket (QEMU `-netdev
//! stream` / `-netdev dgram` / `-netdev vhost-user`): where the socket goes,
//! who may open it. Device ports are built in `plug`.

use std::path::{Path, PathBuf};

use crate::control::protocol::{AddKind, PortAdd};
use crate::port::dgram::DgramPort;
use crate::port::stream::StreamPort;
use crate::port::unix_path::SocketAccess;
use crate::port::vhost_user::{Role, VhostUserPort};

use crate::daemon::build::Built;

/// MTU a socket port reports: what QEMU's virtio-net device uses by default.
const SOCKET_MTU: u32 = 1500;

/// Where a socket port's socket goes when `--socket` is not given:
/// `DIR/PORT.sock`, `DIR` being the switch's own directory in the run dir.
pub fn default_socket(dir: &Path, port: &str) -> PathBuf {
    dir.join(format!("{port}.sock"))
}

/// The socket file a socket port creates (and must remove), if any: the
/// path it binds or listens on. A `--client` vhost-user port dials QEMU's.
pub fn created_socket(req: &PortAdd, name: &str, dir: &Path) -> Option<PathBuf> {
    if req.kind == AddKind::VhostUser && req.client {
        return None;
    }
    Some(
        req.socket
            .clone()
            .unwrap_or_else(|| default_socket(dir, name)),
    )
}

/// `port add stream|dgram|vhost-user`.
pub fn build_socket_port(req: &PortAdd, name: &str, dir: &Path) -> anyhow::Result<Built> {
    if req.netns.is_some() || !req.ip.is_empty() || req.mode.is_some() || req.mac.is_some() {
        anyhow::bail!("--netns, --ip, --mac, --host and --vm apply to TAP ports only");
    }
    let mtu = req.mtu.unwrap_or(SOCKET_MTU);
    if !(68..=65535).contains(&mtu) {
        anyhow::bail!("--mtu {mtu}: expected 68..=65535");
    }
    let access = SocketAccess {
        uid: req.access.uid,
        gid: req.access.gid,
        mode: req.access.mode,
    };
    let path = req
        .socket
        .clone()
        .unwrap_or_else(|| default_socket(dir, name));
    if req.client && req.kind != AddKind::VhostUser {
        anyhow::bail!("--client applies to vhost-user ports only");
    }
    if req.peer.is_some() && req.kind != AddKind::Dgram {
        anyhow::bail!("--peer applies to dgram ports only (a stream port listens; QEMU connects)");
    }
    let port: Box<dyn crate::port::Port> = match req.kind {
        AddKind::VhostUser => {
            let role = if req.client {
                if req.socket.is_none() {
                    anyhow::bail!(
                        "a vhost-user --client port needs --socket PATH: the socket QEMU listens on (-chardev socket,server=on,path=PATH)"
                    );
                }
                if !req.access.is_default() {
                    anyhow::bail!("--owner and --socket-mode apply to sockets the switch creates (not with --client)");
                }
                Role::Client
            } else {
                Role::Server
            };
            Box::new(VhostUserPort::open(name, &path, role, &access, mtu)?)
        }
        AddKind::Stream => Box::new(StreamPort::listen(name, &path, &access, mtu)?),
        AddKind::Dgram => {
            let Some(peer) = &req.peer else {
                anyhow::bail!(
                    "a dgram port needs --peer PATH: the socket QEMU binds (its local.path)"
                );
            };
            if peer == &path {
                anyhow::bail!("--peer and --bind must be different paths");
            }
            Box::new(DgramPort::bind(name, &path, peer, &access, mtu)?)
        }
        AddKind::Iface | AddKind::Tap => {
            anyhow::bail!("port kind {:?} has no socket", req.kind)
        }
    };
    Ok(Built {
        port,
        netns: None,
        ifname: name.to_string(),
        host_ifname: None,
        created_netns: false,
        endpoint: None,
    })
}
