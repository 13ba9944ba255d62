//! The monitor stage: which switch events a decision just applied makes
//! (learned, moved, refused by a full FDB) and, once a second, which link
//! changes. The readers and their channels are `components/monitors.rs`.

use super::state::State;
use crate::observe::events::{FullLimit, SwitchEvent};
use crate::switch::{Decision, LearnOutcome, PortId};

/// The FDB side of a decision just applied: learned, moved, refused.
pub fn on_decision(st: &mut State, ingress: PortId, d: &Decision) {
    let Some(mac) = d.src else { return };
    let vlan = d.vlan;
    let refused = |limit| {
        move |st: &mut State| {
            if st.monitors.last_refused == Some((mac, vlan)) {
                return;
            }
            st.monitors.last_refused = Some((mac, vlan));
            let port = st.name_of(ingress);
            st.monitors.emit(|| SwitchEvent::FdbFull {
                mac,
                vlan,
                port,
                limit,
            });
        }
    };
    match d.learn {
        LearnOutcome::New => {
            let port = st.name_of(ingress);
            st.monitors
                .emit(|| SwitchEvent::Learned { mac, vlan, port });
        }
        LearnOutcome::Moved { from } => {
            let (from, to) = (st.name_of(from), st.name_of(ingress));
            st.monitors.emit(|| SwitchEvent::Moved {
                mac,
                vlan,
                from,
                to,
            });
        }
        LearnOutcome::RefusedFull => refused(FullLimit::Switch)(st),
        LearnOutcome::RefusedPortLimit => refused(FullLimit::Port)(st),
        LearnOutcome::Refreshed | LearnOutcome::Static { .. } | LearnOutcome::NotLearned => {}
    }
}

/// Compares every port's link state with the last seen (housekeeping, once
/// a second, only while someone listens). Ports whose device the switch
/// does not see (a TAP moved into a namespace) are always up; a socket
/// port's link is its peer being connected.
pub fn check_links(st: &mut State) {
    if st.monitors.is_empty() {
        return;
    }
    let mut changes = Vec::new();
    for (i, e) in st.ports.iter().enumerate() {
        let Some(e) = e else { continue };
        let info = e.port.info();
        // A VM behind a socket (stream, dgram, vhost-user) is the port's
        // link: QEMU going away is a link going down.
        let up = match (&info.peer, info.ifindex) {
            (Some(peer), _) => peer.connected,
            (None, None) => continue,
            (None, Some(_)) => match crate::port::sys::netdev::is_running(&info.ifname) {
                Ok(up) => up,
                Err(_) => continue,
            },
        };
        let id = PortId(i as u16);
        match st.monitors.links.insert(id, up) {
            Some(before) if before != up => changes.push((e.meta.name.clone(), up)),
            _ => {}
        }
    }
    st.monitors
        .links
        .retain(|id, _| st.ports.get(id.index()).is_some_and(|p| p.is_some()));
    for (port, up) in changes {
        st.monitors.emit(|| {
            if up {
                SwitchEvent::LinkUp { port }
            } else {
                SwitchEvent::LinkDown { port }
            }
        });
    }
}
