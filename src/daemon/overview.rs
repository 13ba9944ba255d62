//! `show` and `config dump`: the switch described from its live state, for
//! people (one overview) and for `run --config` (the topology as TOML).

use super::resources::Origin;
use super::Inner;
use crate::config::ConfigDump;
use crate::config::{Config, ConfigFdb, ConfigMirror, PolicyFields, SwitchSection, WithPolicy};
use crate::control::protocol::TapSetup as TapMode;
use crate::control::views::{Link, ShowPort, ShowReport};
use crate::port::PortKind;
use crate::switch::EntryKind;

impl Inner {
    pub(super) fn show(&self) -> anyhow::Result<ShowReport> {
        let views = self.port_views()?;
        let fdb = self.dp.fdb()?;
        let res = self.res.lock().unwrap_or_else(|p| p.into_inner());
        let ports = views
            .into_iter()
            .map(|v| {
                let r = v.row;
                let plug = res.plugs.get(&r.name);
                let link = match r.info.ifindex {
                    Some(_) => match crate::port::sys::netdev::is_running(&r.info.ifname) {
                        Ok(true) => Link::Up,
                        Ok(false) => Link::Down,
                        Err(_) => Link::Unknown,
                    },
                    None => Link::Unknown,
                };
                ShowPort {
                    name: r.name.clone(),
                    id: r.id,
                    kind: r.info.kind.name().to_string(),
                    ifname: r.info.ifname.clone(),
                    link,
                    mtu: r.info.mtu,
                    mac: r.info.mac,
                    switch_mac: v.switch_mac,
                    container: v.container.clone(),
                    netns: r.netns.clone(),
                    via: plug.map(|p| p.via),
                    inside_ifname: plug.map(|p| p.ifname.clone()),
                    ip: plug.map(|p| p.ip.clone()).unwrap_or_default(),
                    owns_netns: plug.is_some_and(|p| p.created_netns),
                    policy: r.policy.clone(),
                    learned: r.learned,
                    blocked: r.blocked.clone(),
                }
            })
            .collect();
        drop(res);
        Ok(ShowReport {
            name: self.name.clone(),
            pid: std::process::id(),
            uptime_s: self.started.elapsed().as_secs(),
            socket: self.socket.clone(),
            journal: super::journal::journal_path(&self.run_dir, &self.name),
            settings: self.dp.settings()?,
            busy_poll: self.busy_poll,
            fdb_entries: fdb.len(),
            fdb_learned: fdb.iter().filter(|e| e.kind == EntryKind::Learned).count(),
            ports,
            mirrors: self.dp.mirrors()?,
        })
    }

    /// The topology as `run --config` takes it: every setting, each port as
    /// the request that made it with its policy as it is now, static FDB
    /// entries, mirrors. MACs the kernel chose are written out, so a switch
    /// started from the dump shows the same MACs.
    pub(super) fn config_dump(&self) -> anyhow::Result<ConfigDump> {
        let views = self.port_views()?;
        let settings = self.dp.settings()?;
        let fdb = self.dp.fdb()?;
        let mirrors = self.dp.mirrors()?;
        let evpn = self
            .evpn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|e| e.status());
        let res = self.res.lock().unwrap_or_else(|p| p.into_inner());
        let mut config = Config {
            evpn: evpn.map(|e| crate::control::protocol::EvpnEnable {
                gobgp: e.gobgp,
                netns: e.netns,
                asn: e.asn,
                router_id: e.router_id,
            }),
            switch: SwitchSection {
                ageing_time: Some(settings.ageing_time_s),
                fdb_max: Some(settings.fdb_max as u64),
                fdb_max_per_port: Some(settings.fdb_max_per_port as u64),
                group_fwd_mask: Some(settings.group_fwd_mask),
                loop_protect: Some(settings.loop_protect.name().to_string()),
                flap_threshold: Some(settings.flap_threshold.into()),
                loop_hold: Some(settings.loop_hold_s),
                ..SwitchSection::default()
            },
            ..Config::default()
        };
        let mut skipped = Vec::new();
        for v in &views {
            let r = &v.row;
            // The flags go with the port's own table; `[ports.NAME]` keeps
            // what only it can say (the impairment).
            let ps = crate::config::PortSettings {
                impair: r.impair.as_ref().map(|imp| imp.spec.clone()),
                ..Default::default()
            };
            if !ps.is_empty() {
                config.port_settings.insert(r.name.clone(), ps);
            }
            let policy = PolicyFields::from_policy(&r.policy);
            match res.origins.get(&r.name) {
                Some(Origin::Port(add)) => {
                    let mut item = add.clone();
                    item.max_learned = r.max_learned;
                    let keeps_mac = item.kind == crate::control::protocol::AddKind::Tap
                        && (item.netns.is_some()
                            || matches!(item.mode, Some(TapMode::Host | TapMode::Netns)));
                    if keeps_mac {
                        item.mac = r.info.mac.or(item.mac);
                    }
                    config.ports.push(WithPolicy { item, policy });
                }
                Some(Origin::Plug(plug)) => {
                    let mut item = plug.clone();
                    item.max_learned = r.max_learned;
                    item.mac = r.info.mac.or(item.mac);
                    config.namespaces.push(WithPolicy { item, policy });
                }
                None if v.container.is_some() => skipped.push(format!(
                    "port {}, attached for a container by the CNI plugin (the container runtime attaches it again)",
                    r.name
                )),
                None => skipped.push(format!(
                    "port {} (kind {}), added by other means than port add or ns plug",
                    r.name,
                    match r.info.kind {
                        PortKind::Pipe => "pipe",
                        k => k.name(),
                    }
                )),
            }
        }
        drop(res);
        let known: Vec<&str> = views.iter().map(|v| v.row.name.as_str()).collect();
        config.fdb = fdb
            .into_iter()
            .filter(|e| e.kind == EntryKind::Static)
            .map(|e| ConfigFdb {
                mac: e.mac,
                port: e.port,
                vlan: e.vlan,
                dst: e.dst,
            })
            .collect();
        config.mirrors = mirrors
            .into_iter()
            .map(|m| ConfigMirror {
                name: m.name,
                to: m.to,
                src: m.src,
                dst: m.dst,
            })
            .collect();
        // Entries and mirrors on ports the dump leaves out would not load.
        config.fdb.retain(|f| {
            known.contains(&f.port.as_str())
                && !skipped
                    .iter()
                    .any(|s| s.starts_with(&format!("port {} ", f.port)))
        });
        Ok(ConfigDump { config, skipped })
    }
}
