//! Building the ports whose peer is a VM behind a socket (QEMU `-netdev
//! stream` / `-netdev dgram`): where the socket goes, who may open it. Device ports are built in `plug`.

use std::path::{Path, PathBuf};

use crate::control::protocol::{AddKind, PortAdd};
use crate::port::dgram::DgramPort;
use crate::port::stream::StreamPort;
use crate::port::unix_path::SocketAccess;

use crate::daemon::build::Built;

/// MTU a socket port reports: what QEMU's virtio-net device uses by default.
const SOCKET_MTU: u32 = 1500;

/// Where a socket port's socket goes when `--socket` is not given:
/// `DIR/PORT.sock`, `DIR` being the switch's own directory in the run dir.
pub fn default_socket(dir: &Path, port: &str) -> PathBuf {
    dir.join(format!("{port}.sock"))
}

/// `port add stream|dgram`.
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
    let port: Box<dyn crate::port::Port> = match req.kind {
        AddKind::Stream => {
            if req.peer.is_some() {
                anyhow::bail!(
                    "--peer applies to dgram ports only (a stream port listens; QEMU connects)"
                );
            }
            Box::new(StreamPort::listen(name, &path, &access, mtu)?)
        }
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
        owned: Vec::new(),
        netns: None,
        ifname: name.to_string(),
        host_ifname: None,
        created_netns: false,
    })
}
