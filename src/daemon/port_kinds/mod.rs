//! `port add`: one file per kind of port the switch can build, and the
//! dispatch on the requested kind. A new port kind (vhost-user, a QEMU
//! stream/dgram socket, a VXLAN tunnel) is a new file here with a function
//! returning a `Built`, and one arm in `build_port`.

mod iface;
mod socket;
mod tap;

pub use socket::{build_socket_port, created_socket};

use crate::control::protocol::{AddKind, PortAdd};
use crate::netns;

use super::build::{check_mac, Built};
use super::resources::Resources;

/// `port add`: builds the port `req` asks for; what it creates is recorded
/// in `res` under `owner`, the port's name.
pub fn build_port(req: &PortAdd, owner: &str, res: &mut Resources) -> anyhow::Result<Built> {
    netns::validate_ifname(&req.ifname)?;
    check_mac(req.mac)?;
    if req.socket.is_some() || req.peer.is_some() || req.client || !req.access.is_default() {
        anyhow::bail!(
            "--listen, --bind, --socket, --peer, --client, --owner and --socket-mode apply to stream, dgram and vhost-user ports only"
        );
    }
    match req.kind {
        AddKind::Iface => iface::build(req),
        AddKind::Tap => tap::build(req, owner, res),
        // Built by `build_socket_port`, which knows the switch's socket directory.
        AddKind::Stream | AddKind::Dgram | AddKind::VhostUser => {
            anyhow::bail!("stream, dgram and vhost-user ports have no device to build")
        }
    }
}

/// The error for an option that only TAP ports take.
fn tap_only(what: &str) -> anyhow::Result<()> {
    anyhow::bail!("{what} applies to TAP ports only (port add tap ...)")
}
