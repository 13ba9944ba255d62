//! What the dataplane does for tunnel ports beyond ordinary ones: adding one
//! with its flood list, remote FDB entries, flood-list changes, what `port
//! list` shows, and the drop reasons of packets a tunnel port could not
//! decapsulate.

use std::net::Ipv4Addr;

use super::meta::PortMeta;
use super::requests::{insert_port, DataplaneError, DataplaneHandle};
use super::snapshot::{FloodRow, VxlanRow};
use super::state::State;
use crate::port::{Port, RxInvalid};
use crate::switch::{DropReason, FdbKey, FloodList, PortId, Timestamp, VtepOrigin};
use crate::wire::MacAddr;

/// The counter a refused tunnel packet goes to.
pub fn drop_reason(why: RxInvalid) -> DropReason {
    match why {
        RxInvalid::VxlanShort => DropReason::VxlanShort,
        RxInvalid::VxlanBadFlags => DropReason::VxlanBadFlags,
        RxInvalid::VxlanUnknownVni => DropReason::VxlanUnknownVni,
        RxInvalid::VxlanOwnSource => DropReason::VxlanOwnSource,
    }
}

/// `port list`'s view of a tunnel port.
pub fn row(st: &State, id: PortId, port: &dyn Port) -> Option<VxlanRow> {
    let endpoint = port.tunnel()?;
    let flood = st
        .switch
        .tunnel(id)
        .map(|l| {
            l.members()
                .iter()
                .map(|m| FloodRow {
                    vtep: m.vtep,
                    origin: m.origins(),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(VxlanRow { endpoint, flood })
}

fn tunnel_port(st: &State, name: &str) -> Result<PortId, DataplaneError> {
    let id = st
        .find(name)
        .ok_or_else(|| DataplaneError::NoSuchPort(name.to_string()))?;
    if st.switch.tunnel(id).is_none() {
        return Err(DataplaneError::NotTunnel(name.to_string()));
    }
    Ok(id)
}

impl DataplaneHandle {
    /// Adds a tunnel port with its static flood list, in one step so no
    /// frame is switched before the port is known as a tunnel.
    pub fn add_tunnel_port(
        &self,
        port: Box<dyn Port>,
        meta: PortMeta,
        remotes: Vec<Ipv4Addr>,
    ) -> Result<PortId, DataplaneError> {
        self.call(move |st| {
            let id = insert_port(st, port, meta)?;
            st.switch.make_tunnel(id, FloodList::new(&remotes))?;
            Ok(id)
        })?
    }

    /// A static FDB entry: `mac` sits behind VTEP `dst` of tunnel port `port`.
    pub fn fdb_add_remote(
        &self,
        mac: MacAddr,
        vlan: u16,
        port: &str,
        dst: Ipv4Addr,
    ) -> Result<(), DataplaneError> {
        let port = port.to_string();
        self.call(move |st| {
            let id = tunnel_port(st, &port)?;
            st.switch.fdb_mut().add_static_to(
                FdbKey::new(vlan, mac),
                id,
                Some(dst),
                Timestamp::now(),
            )?;
            Ok(())
        })?
    }

    /// An EVPN entry: `mac` sits behind VTEP `dst` of tunnel port `port`
    /// (a remote type-2 route). False if a static entry kept the MAC.
    pub fn fdb_set_evpn(
        &self,
        mac: MacAddr,
        vlan: u16,
        port: &str,
        dst: Ipv4Addr,
    ) -> Result<bool, DataplaneError> {
        let port = port.to_string();
        self.call(move |st| {
            let id = tunnel_port(st, &port)?;
            let set =
                st.switch
                    .fdb_mut()
                    .add_evpn(FdbKey::new(vlan, mac), id, dst, Timestamp::now())?;
            // A learned entry it replaced may be offloaded.
            st.fastpath_flush();
            Ok(set)
        })?
    }

    /// Removes `mac`'s EVPN entry (its route was withdrawn); an entry that
    /// local learning took over in the meantime stays.
    pub fn fdb_del_evpn(&self, mac: MacAddr, vlan: u16) -> Result<bool, DataplaneError> {
        self.call(move |st| {
            let gone = st.switch.fdb_mut().remove_evpn(FdbKey::new(vlan, mac));
            if gone {
                st.fastpath_flush();
            }
            gone
        })
    }

    /// Whether `port` is a tunnel port (`None`: no such port).
    pub fn is_tunnel(&self, port: &str) -> Result<Option<bool>, DataplaneError> {
        let port = port.to_string();
        self.call(move |st| st.find(&port).map(|id| st.switch.tunnel(id).is_some()))
    }

    /// Adds (`add`) or withdraws `origin`'s claim on `vtep` in a tunnel
    /// port's flood list. Returns whether the list changed.
    pub fn flood_update(
        &self,
        port: &str,
        vtep: Ipv4Addr,
        origin: VtepOrigin,
        add: bool,
    ) -> Result<bool, DataplaneError> {
        let port = port.to_string();
        self.call(move |st| {
            let id = tunnel_port(st, &port)?;
            let list = st.switch.tunnel_mut(id).expect("checked a tunnel");
            Ok(if add {
                list.add(vtep, origin, Timestamp::now())
            } else {
                list.remove(vtep, origin)
            })
        })?
    }
}
