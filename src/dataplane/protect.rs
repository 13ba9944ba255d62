//! The dataplane's part in loop and storm protection (decided in
//! `switch::protect`): when a plan says a MAC flapped or a port was
//! blocked, the fast path forgets its entries (so the kernel carries
//! nothing from or to a blocked port), monitors get the event and the log a
//! line; once a second, ports whose hold time has passed open again.

use super::snapshot::BlockedRow;
use super::state::State;
use crate::observe::events::SwitchEvent;
use crate::switch::{PortId, ProtectNote, Timestamp};

/// What a plan's protection note asks of the dataplane (storm drops and
/// frames of blocked ports are counted with their drop reason already).
pub fn on_note(st: &mut State, ingress: PortId, note: ProtectNote, now: Timestamp) {
    match note {
        ProtectNote::Flap {
            mac,
            vlan,
            from,
            moves,
            blocked,
        } => {
            let (from, to) = (st.name_of(from), st.name_of(ingress));
            // One line per MAC and second at most, and at most ten a second.
            if let Some(missed) = st.log_limit.allow(now) {
                let more = if missed > 0 {
                    format!(" ({missed} similar lines suppressed)")
                } else {
                    String::new()
                };
                eprintln!(
                    "l2sw: MAC {mac} vlan {vlan} is flapping: moved from port {from} to port {to} {moves} times within a second{more}"
                );
            }
            st.monitors.emit(|| SwitchEvent::MacFlap {
                mac,
                vlan,
                from,
                to,
                moves,
            });
            if blocked {
                blocked_now(st, ingress, now);
            }
        }
        ProtectNote::BpduGuard if st.switch.is_blocked(ingress) => blocked_now(st, ingress, now),
        _ => {}
    }
}

/// Port `id` has just been blocked by the switch.
fn blocked_now(st: &mut State, id: PortId, now: Timestamp) {
    // Entries from or to it, and entries of the flushed MACs, must go.
    st.fastpath_flush();
    let Some(b) = st.switch.blocked(id).copied() else {
        return;
    };
    let port = st.name_of(id);
    let from = b.from.map(|p| st.name_of(p));
    let hold_s = b.until.map(|u| u.since(now).as_secs());
    // Blocks are rare (once per port and hold time): always logged.
    eprintln!(
        "l2sw: port {port} blocked ({}){}; {}",
        b.reason.name(),
        match (b.mac, &from) {
            (Some((m, v)), Some(f)) => format!(": MAC {m} vlan {v} flapping from port {f}"),
            _ => String::new(),
        },
        match hold_s {
            Some(s) => format!("it opens again in {s} s, or with `l2sw port unblock {port}`"),
            None => format!("`l2sw port unblock {port}` opens it"),
        }
    );
    st.monitors.emit(|| SwitchEvent::PortBlocked {
        port,
        reason: b.reason.name().to_string(),
        mac: b.mac.map(|(m, _)| m),
        from,
        hold_s,
    });
}

/// Housekeeping: ports whose hold time has passed are open again.
pub fn expire(st: &mut State, now: Timestamp) {
    for (id, b) in st.switch.expire_protection(now) {
        let port = st.name_of(id);
        eprintln!(
            "l2sw: port {port} unblocked: its hold time passed (blocked for {})",
            b.reason.name()
        );
        st.monitors.emit(|| SwitchEvent::PortUnblocked {
            port,
            by: "hold_expired".into(),
        });
    }
}

/// `port unblock`: whether the port was blocked.
pub fn unblock(st: &mut State, id: PortId) -> Result<bool, crate::switch::SwitchError> {
    let was = st.switch.unblock(id)?;
    if was.is_some() {
        let port = st.name_of(id);
        eprintln!("l2sw: port {port} unblocked by the operator");
        st.monitors.emit(|| SwitchEvent::PortUnblocked {
            port,
            by: "operator".into(),
        });
    }
    Ok(was.is_some())
}

/// A port's blocked state for `port list`/`show`.
pub fn row(st: &State, id: PortId, now: Timestamp) -> Option<BlockedRow> {
    let b = st.switch.blocked(id)?;
    Some(BlockedRow {
        reason: b.reason,
        mac: b.mac.map(|(m, _)| m),
        vlan: b.mac.map(|(_, v)| v),
        from: b.from.map(|p| st.name_of(p)),
        for_s: now.since(b.since).as_secs(),
        remaining_s: b.until.map(|u| u.since(now).as_secs()),
    })
}
