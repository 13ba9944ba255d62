//! What the dataplane thread does once a second, between batches: the
//! fast path's counts refresh the FDB before it ages, ageing (and what it
//! takes out of the fast path), tunnel ageing, protection hold times, link
//! changes for monitors, finished readers, kernel drop counts, and ports
//! whose device is gone.

use super::monitor;
use super::protect;
use super::state::State;
use crate::observe::events::SwitchEvent;
use crate::switch::{PortId, Timestamp};

/// Once a second: age the FDB, count kernel drops, check every port is
/// still there.
pub fn housekeeping(st: &mut State, now: Timestamp) {
    // Attachments of ports that vanished by themselves: the kernel has
    // detached them with the device, so closing them costs little.
    drop(st.fastpath.take_retired());
    // What the kernel carried refreshes its sources before they age.
    st.fastpath_refresh_fdb();
    let aged_n = if st.monitors.is_empty() {
        st.switch.fdb_mut().age(now)
    } else {
        let mut aged = Vec::new();
        let n = st
            .switch
            .fdb_mut()
            .age_each(now, |k, port| aged.push((k, port)));
        for (k, port) in aged {
            let port = st.name_of(port);
            st.monitors.emit(|| SwitchEvent::Aged {
                mac: k.mac,
                vlan: k.vlan,
                port,
            });
        }
        n
    };
    if aged_n > 0 {
        st.fastpath_after_ageing();
    }
    st.switch.age_tunnels(now);
    protect::expire(st, now);
    monitor::check_links(st);
    st.readers.retain(|t| !t.finished());
    st.collect_kernel_drops();
    let mut gone = Vec::new();
    for (i, slot) in st.ports.iter_mut().enumerate() {
        if let Some(e) = slot {
            if let Err(err) = e.port.check() {
                if err.is_vanished() {
                    gone.push((PortId(i as u16), err.to_string()));
                }
            }
        }
    }
    for (id, why) in gone {
        st.remove_vanished(id, why);
    }
}
