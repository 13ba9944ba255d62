//! What EVPN should look like against what it looks like, as actions:
//! which routes to advertise or withdraw, which FDB entries and flood-list
//! members to add or remove. No I/O here: the EVPN thread hands in the
//! switch's tunnel ports, its FDB and the routes GoBGP reported, and
//! carries the actions out. Working from whole states rather than from
//! events means a lost or repeated event cannot leave a stale route behind:
//! the next round corrects it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use serde::Serialize;

use super::routes::{Remote, RemoteKind, RouteKey};
use crate::dataplane::FdbRow;
use crate::switch::EntryKind;
use crate::wire::MacAddr;

/// One VXLAN port of the switch, as EVPN sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    pub port: String,
    pub vni: u32,
    pub vtep: Ipv4Addr,
    /// The FDB VLAN its VNI maps to (0 on a VLAN-unaware switch).
    pub vlan: u16,
}

/// Something to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Advertise {
        key: RouteKey,
        vtep: Ipv4Addr,
        seq: u32,
    },
    Withdraw {
        key: RouteKey,
    },
    SetFdb {
        port: String,
        vlan: u16,
        mac: MacAddr,
        vtep: Ipv4Addr,
    },
    DelFdb {
        vlan: u16,
        mac: MacAddr,
    },
    AddFlood {
        port: String,
        vtep: Ipv4Addr,
    },
    DelFlood {
        port: String,
        vtep: Ipv4Addr,
    },
}

/// An advertised route, for `evpn show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Advertised {
    #[serde(rename = "type")]
    pub route_type: u8,
    pub vni: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    pub vtep: Ipv4Addr,
    pub seq: u32,
}

/// A remote route in use, for `evpn show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Imported {
    #[serde(rename = "type")]
    pub route_type: u8,
    pub vni: u32,
    pub port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    pub vtep: Ipv4Addr,
    pub seq: u32,
}

#[derive(Debug, Default)]
pub struct Sync {
    /// Our routes in GoBGP: VTEP and mobility sequence number.
    advertised: BTreeMap<RouteKey, (Ipv4Addr, u32)>,
    /// Routes of other VTEPs, by route id.
    remote: HashMap<String, Remote>,
    /// What we put into the FDB: (vlan, mac) -> (port, VTEP).
    fdb: BTreeMap<(u16, MacAddr), (String, Ipv4Addr)>,
    /// What we put on flood lists: (port, VTEP).
    flood: BTreeSet<(String, Ipv4Addr)>,
}

impl Sync {
    /// A route GoBGP reported (added, replaced or withdrawn). Our own
    /// routes come back too and are left out by their VTEP.
    pub fn remote(&mut self, r: Remote, local_vteps: &[Ipv4Addr]) {
        if r.withdraw {
            self.remote.remove(&r.id);
            return;
        }
        match r.vtep {
            Some(v) if !local_vteps.contains(&v) => {
                self.remote.insert(r.id.clone(), r);
            }
            // Ours, or unusable: also drop an older version of it.
            _ => {
                self.remote.remove(&r.id);
            }
        }
    }

    /// Forgets every remote route (the session to GoBGP was lost; its
    /// initial dump on the next one tells them again) and every advertised
    /// one (re-advertised on the next session, as GoBGP may have
    /// restarted).
    pub fn reset_session(&mut self) {
        self.remote.clear();
        self.advertised.clear();
    }

    /// The advertised route `key` is now in GoBGP (or, `None`, gone).
    pub fn advertised(&mut self, key: RouteKey, state: Option<(Ipv4Addr, u32)>) {
        match state {
            Some(s) => {
                self.advertised.insert(key, s);
            }
            None => {
                self.advertised.remove(&key);
            }
        }
    }

    /// The tunnel carrying a remote route, if the route is for one of ours.
    fn tunnel_for<'t>(r: &Remote, tunnels: &'t [Tunnel]) -> Option<&'t Tunnel> {
        r.vnis
            .iter()
            .find_map(|v| tunnels.iter().find(|t| t.vni == *v))
    }

    /// One round: the actions that make GoBGP and the switch agree with
    /// `tunnels` and `fdb`. Apply them, then report each advertisement
    /// through [`advertised`](Self::advertised).
    pub fn round(&mut self, tunnels: &[Tunnel], fdb: &[FdbRow]) -> Vec<Action> {
        let mut out = Vec::new();
        // Remote MACs: per (vlan, mac), the route with the highest sequence
        // number wins (RFC 7432 section 7.7), then the lowest VTEP.
        let mut want_fdb: BTreeMap<(u16, MacAddr), (String, Ipv4Addr, u32)> = BTreeMap::new();
        let mut want_flood: BTreeSet<(String, Ipv4Addr)> = BTreeSet::new();
        for r in self.remote.values() {
            let (Some(t), Some(vtep)) = (Self::tunnel_for(r, tunnels), r.vtep) else {
                continue;
            };
            match r.kind {
                RemoteKind::Mac(mac) => {
                    let slot = want_fdb.entry((t.vlan, mac));
                    let cand = (t.port.clone(), vtep, r.seq);
                    match slot {
                        std::collections::btree_map::Entry::Vacant(v) => {
                            v.insert(cand);
                        }
                        std::collections::btree_map::Entry::Occupied(mut o) => {
                            let cur = o.get();
                            if (r.seq, std::cmp::Reverse(vtep)) > (cur.2, std::cmp::Reverse(cur.1))
                            {
                                o.insert(cand);
                            }
                        }
                    }
                }
                RemoteKind::Flood => {
                    want_flood.insert((t.port.clone(), vtep));
                }
            }
        }
        let rows: HashMap<(u16, MacAddr), &FdbRow> =
            fdb.iter().map(|r| ((r.vlan, r.mac), r)).collect();
        // FDB: withdrawn or replaced remote MACs go, new ones come; one of
        // ours missing from the FDB (flushed, port re-added) comes back
        // unless the MAC is on a port of this switch now.
        for (k, (port, _)) in &self.fdb {
            if !want_fdb.contains_key(k) {
                out.push(Action::DelFdb {
                    vlan: k.0,
                    mac: k.1,
                });
                let _ = port;
            }
        }
        let mut programmed = BTreeMap::new();
        for (k, (port, vtep, _)) in &want_fdb {
            let row = rows.get(k);
            let have = self.fdb.get(k);
            let current = have == Some(&(port.clone(), *vtep));
            let missing = row.is_none();
            if !current || missing {
                out.push(Action::SetFdb {
                    port: port.clone(),
                    vlan: k.0,
                    mac: k.1,
                    vtep: *vtep,
                });
            }
            programmed.insert(*k, (port.clone(), *vtep));
        }
        self.fdb = programmed;
        for f in self.flood.difference(&want_flood) {
            out.push(Action::DelFlood {
                port: f.0.clone(),
                vtep: f.1,
            });
        }
        for f in want_flood.difference(&self.flood) {
            out.push(Action::AddFlood {
                port: f.0.clone(),
                vtep: f.1,
            });
        }
        self.flood = want_flood;

        // Our routes: a type 3 per tunnel, a type 2 per MAC on one of the
        // switch's own ports in the tunnel's VLAN.
        let tunnel_ports: BTreeSet<&str> = tunnels.iter().map(|t| t.port.as_str()).collect();
        let mut want: BTreeMap<RouteKey, Ipv4Addr> = BTreeMap::new();
        for t in tunnels {
            want.insert(RouteKey::Flood { vni: t.vni }, t.vtep);
            for r in fdb {
                let local = matches!(r.kind, EntryKind::Learned | EntryKind::Static)
                    && !tunnel_ports.contains(r.port.as_str());
                if local && r.vlan == t.vlan {
                    want.insert(
                        RouteKey::Mac {
                            vni: t.vni,
                            mac: r.mac,
                        },
                        t.vtep,
                    );
                }
            }
        }
        for k in self.advertised.keys() {
            if !want.contains_key(k) {
                out.push(Action::Withdraw { key: *k });
            }
        }
        for (k, vtep) in &want {
            match self.advertised.get(k) {
                Some((v, _)) if v == vtep => {}
                _ => {
                    // A MAC that came here from another VTEP is announced
                    // with a higher sequence number than the route it
                    // replaces, so the others prefer ours.
                    let seq = match k {
                        RouteKey::Mac { vni, mac } => self
                            .remote
                            .values()
                            .filter(|r| r.kind == RemoteKind::Mac(*mac) && r.vnis.contains(vni))
                            .map(|r| r.seq + 1)
                            .max()
                            .unwrap_or(0),
                        RouteKey::Flood { .. } => 0,
                    };
                    out.push(Action::Advertise {
                        key: *k,
                        vtep: *vtep,
                        seq,
                    });
                }
            }
        }
        out
    }

    /// Everything to undo when EVPN stops: our routes and what we programmed.
    pub fn teardown(&mut self) -> Vec<Action> {
        let mut out: Vec<Action> = self
            .advertised
            .keys()
            .map(|k| Action::Withdraw { key: *k })
            .collect();
        out.extend(self.fdb.keys().map(|k| Action::DelFdb {
            vlan: k.0,
            mac: k.1,
        }));
        out.extend(self.flood.iter().map(|f| Action::DelFlood {
            port: f.0.clone(),
            vtep: f.1,
        }));
        self.fdb.clear();
        self.flood.clear();
        out
    }

    pub fn advertised_routes(&self) -> Vec<Advertised> {
        self.advertised
            .iter()
            .map(|(k, (vtep, seq))| match k {
                RouteKey::Mac { vni, mac } => Advertised {
                    route_type: 2,
                    vni: *vni,
                    mac: Some(*mac),
                    vtep: *vtep,
                    seq: *seq,
                },
                RouteKey::Flood { vni } => Advertised {
                    route_type: 3,
                    vni: *vni,
                    mac: None,
                    vtep: *vtep,
                    seq: 0,
                },
            })
            .collect()
    }

    /// Remote routes that are in the switch (FDB entries, flood members).
    pub fn imported(&self, tunnels: &[Tunnel]) -> Vec<Imported> {
        let vni_of = |port: &str| tunnels.iter().find(|t| t.port == port).map(|t| t.vni);
        let mut v: Vec<Imported> = self
            .fdb
            .iter()
            .map(|((_, mac), (port, vtep))| Imported {
                route_type: 2,
                vni: vni_of(port).unwrap_or(0),
                port: port.clone(),
                mac: Some(*mac),
                vtep: *vtep,
                seq: self
                    .remote
                    .values()
                    .filter(|r| r.kind == RemoteKind::Mac(*mac) && r.vtep == Some(*vtep))
                    .map(|r| r.seq)
                    .max()
                    .unwrap_or(0),
            })
            .collect();
        v.extend(self.flood.iter().map(|(port, vtep)| Imported {
            route_type: 3,
            vni: vni_of(port).unwrap_or(0),
            port: port.clone(),
            mac: None,
            vtep: *vtep,
            seq: 0,
        }));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);

    fn tunnels() -> Vec<Tunnel> {
        vec![Tunnel {
            port: "vx100".into(),
            vni: 100,
            vtep: A,
            vlan: 0,
        }]
    }

    fn mac(s: &str) -> MacAddr {
        s.parse().unwrap()
    }

    fn row(m: &str, port: &str, kind: EntryKind, dst: Option<Ipv4Addr>) -> FdbRow {
        FdbRow {
            mac: mac(m),
            vlan: 0,
            port: port.into(),
            kind,
            age_s: 0,
            dst,
            frames: 0,
        }
    }

    fn remote_mac(m: &str, vtep: Ipv4Addr, seq: u32, withdraw: bool) -> Remote {
        Remote {
            id: format!("2:{vtep}:100:0:{m}:"),
            withdraw,
            kind: RemoteKind::Mac(mac(m)),
            vtep: Some(vtep),
            vnis: vec![100],
            seq,
        }
    }

    /// Applies a round's advertisements as GoBGP would accept them.
    fn apply(s: &mut Sync, acts: &[Action]) {
        for a in acts {
            match a {
                Action::Advertise { key, vtep, seq } => s.advertised(*key, Some((*vtep, *seq))),
                Action::Withdraw { key } => s.advertised(*key, None),
                _ => {}
            }
        }
    }

    #[test]
    fn local_macs_and_the_vtep_are_advertised_and_withdrawn_when_they_age_out() {
        let mut s = Sync::default();
        let fdb = vec![row("02:00:00:00:00:01", "cA", EntryKind::Learned, None)];
        let acts = s.round(&tunnels(), &fdb);
        let m = RouteKey::Mac {
            vni: 100,
            mac: mac("02:00:00:00:00:01"),
        };
        assert!(acts.contains(&Action::Advertise {
            key: RouteKey::Flood { vni: 100 },
            vtep: A,
            seq: 0
        }));
        assert!(acts.contains(&Action::Advertise {
            key: m,
            vtep: A,
            seq: 0
        }));
        apply(&mut s, &acts);
        assert_eq!(s.round(&tunnels(), &fdb), vec![], "nothing changed");
        let acts = s.round(&tunnels(), &[]);
        assert_eq!(acts, vec![Action::Withdraw { key: m }]);
        apply(&mut s, &acts);
        // The port (tunnel) goes: so does its type 3.
        assert_eq!(
            s.round(&[], &[]),
            vec![Action::Withdraw {
                key: RouteKey::Flood { vni: 100 }
            }]
        );
    }

    #[test]
    fn remote_routes_become_fdb_entries_and_flood_members_until_withdrawn() {
        let mut s = Sync::default();
        let m = "02:00:00:00:00:02";
        s.remote(remote_mac(m, B, 0, false), &[A]);
        s.remote(
            Remote {
                id: "3:b".into(),
                withdraw: false,
                kind: RemoteKind::Flood,
                vtep: Some(B),
                vnis: vec![100],
                seq: 0,
            },
            &[A],
        );
        // Our own route coming back is not imported.
        s.remote(remote_mac("02:00:00:00:00:09", A, 0, false), &[A]);
        let acts = s.round(&tunnels(), &[]);
        assert!(acts.contains(&Action::SetFdb {
            port: "vx100".into(),
            vlan: 0,
            mac: mac(m),
            vtep: B
        }));
        assert!(acts.contains(&Action::AddFlood {
            port: "vx100".into(),
            vtep: B
        }));
        assert!(!acts
            .iter()
            .any(|a| matches!(a, Action::SetFdb { mac: x, .. } if *x == mac("02:00:00:00:00:09"))));
        apply(&mut s, &acts);
        let fdb = vec![row(m, "vx100", EntryKind::Evpn, Some(B))];
        // The EVPN entry is not advertised as ours.
        assert_eq!(s.round(&tunnels(), &fdb), vec![]);
        s.remote(remote_mac(m, B, 0, true), &[A]);
        assert_eq!(
            s.round(&tunnels(), &fdb),
            vec![Action::DelFdb {
                vlan: 0,
                mac: mac(m)
            }]
        );
    }

    #[test]
    fn a_mac_moving_here_is_advertised_with_a_higher_sequence_number() {
        let mut s = Sync::default();
        let m = "02:00:00:00:00:03";
        s.remote(remote_mac(m, B, 4, false), &[A]);
        let acts = s.round(&tunnels(), &[]);
        apply(&mut s, &acts);
        // Local learning took the entry over: the station is here now.
        let fdb = vec![row(m, "cA", EntryKind::Learned, None)];
        let acts = s.round(&tunnels(), &fdb);
        assert!(acts.contains(&Action::Advertise {
            key: RouteKey::Mac {
                vni: 100,
                mac: mac(m)
            },
            vtep: A,
            seq: 5
        }));
    }

    #[test]
    fn the_highest_sequence_number_wins_among_remote_routes() {
        let mut s = Sync::default();
        let m = "02:00:00:00:00:04";
        let c = Ipv4Addr::new(10, 201, 0, 3);
        s.remote(remote_mac(m, B, 1, false), &[A]);
        s.remote(remote_mac(m, c, 2, false), &[A]);
        let acts = s.round(&tunnels(), &[]);
        assert!(acts.contains(&Action::SetFdb {
            port: "vx100".into(),
            vlan: 0,
            mac: mac(m),
            vtep: c
        }));
    }

    #[test]
    fn teardown_withdraws_everything_it_did() {
        let mut s = Sync::default();
        s.remote(remote_mac("02:00:00:00:00:05", B, 0, false), &[A]);
        let acts = s.round(&tunnels(), &[]);
        apply(&mut s, &acts);
        let t = s.teardown();
        assert!(t.contains(&Action::Withdraw {
            key: RouteKey::Flood { vni: 100 }
        }));
        assert!(t.contains(&Action::DelFdb {
            vlan: 0,
            mac: mac("02:00:00:00:00:05")
        }));
    }
}
