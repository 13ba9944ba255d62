//! `port add`: one file per kind of port the switch can build, and the
//! dispatch on the requested kind. A new port kind (vhost-user, a QEMU
//! stream/dgram socket, a VXLAN tunnel) is a new file here with a function
//! returning a `Built`, and one arm in `build_port`.

mod iface;
mod socket;
mod tap;

pub use socket::build_socket_port;

use crate::control::protocol::{AddKind, PortAdd};
use crate::netns;

use super::build::{check_mac, Built};

/// `port add`: builds the port `req` asks for.
pub fn build_port(req: &PortAdd) -> anyhow::Result<Built> {
    netns::validate_ifname(&req.ifname)?;
    check_mac(req.mac)?;
    if req.socket.is_some() || req.peer.is_some() || !req.access.is_default() {
        anyhow::bail!(
            "--listen, --bind, --peer, --owner and --socket-mode apply to stream and dgram ports only"
        );
    }
    match req.kind {
        AddKind::Iface => iface::build(req),
        AddKind::Tap => tap::build(req),
        // Built by `build_socket_port`, which knows the switch's socket directory.
        AddKind::Stream | AddKind::Dgram => {
            anyhow::bail!("stream and dgram ports have no device to build")
        }
    }
}

/// The error for an option that only TAP ports take.
fn tap_only(what: &str) -> anyhow::Result<()> {
    anyhow::bail!("{what} applies to TAP ports only (port add tap ...)")
}
