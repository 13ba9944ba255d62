//! Ports for containers: the CNI plugin (`l2sw-cni`) creates the veth and
//! asks the switch to read its host end. The switch did not create that
//! link, so it never deletes it (the plugin's DEL does, or the kernel when
//! the container's namespace goes); it claims the interface in the journal,
//! with the container it belongs to, like `port add iface` claims one.
//!
//! The claim keeps the VLAN settings and flags the network config gave, so
//! that when the switch starts again (after a crash, a `kill -9` or a clean
//! stop) it attaches every container whose veth is still there under the
//! same port name, as it was ([`Inner::restore_containers`]): a runtime
//! does not call ADD again for containers that are running.

use serde_json::{json, Value};

use super::resources::ContainerPort;
use super::Inner;
use crate::control::protocol::{Attachment, ContainerAttach, ContainerRef};
use crate::dataplane::{DataplaneError, PortMeta};
use crate::port::afpacket::AfPacketPort;
use crate::port::PortKind;
use crate::switch::PortPolicy;

impl Inner {
    /// `container-attach`.
    pub(super) fn attach_container(&self, req: ContainerAttach) -> anyhow::Result<Value> {
        let c = &req.container;
        crate::netns::validate_ifname(&req.ifname)?;
        let mut policy = PortPolicy::default();
        if let Some(v) = &req.vlan {
            policy.vlan = v.to_mode().map_err(|e| anyhow::anyhow!("vlan: {e}"))?;
        }
        if let Some(p) = &req.policy {
            p.apply(&mut policy);
        }
        let mut res = self.res.lock().unwrap_or_else(|p| p.into_inner());
        let existing = self.dp.ports()?;
        if let Some((port, _)) = res
            .containers
            .iter()
            .find(|(_, r)| r.container.id == c.id && r.container.ifname == c.ifname)
        {
            anyhow::bail!(
                "container {} already has interface {} attached as port {port}; detach it first (CNI DEL)",
                c.short_id(),
                c.ifname
            );
        }
        if let Some(p) = existing
            .iter()
            .find(|p| p.info.ifindex.is_some() && p.info.ifname == req.ifname)
        {
            anyhow::bail!("interface {} is already port {}", req.ifname, p.name);
        }
        let taken = |n: &str| existing.iter().any(|p| p.name == n) || res.plugs.contains_key(n);
        let name = [req.name.as_str(), c.short_id()]
            .into_iter()
            .find(|n| crate::netns::validate_ifname(n).is_ok() && !taken(n))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "ports named {} and {} already exist: cannot name the port of container {}",
                    req.name,
                    c.short_id(),
                    c.id
                )
            })?
            .to_string();
        let lock = self.claim_lock(&req.ifname)?;
        let port = match self.sockets.take() {
            Some(p) => AfPacketPort::open_prepared(p, &req.ifname, PortKind::Iface)?,
            None => AfPacketPort::open(&req.ifname, PortKind::Iface)?,
        };
        let meta = PortMeta {
            name: name.clone(),
            netns: Some(c.netns.display().to_string()),
            policy,
        };
        let id = self.dp.add_port(Box::new(port), meta)?;
        res.endpoints.insert(
            name.clone(),
            super::resources::Endpoint::at_path(&c.netns, &c.ifname),
        );
        res.containers.insert(
            name.clone(),
            ContainerPort {
                container: c.clone(),
                vlan: req.vlan.clone(),
                policy: req.policy.clone(),
            },
        );
        res.claim(&name, &req.ifname);
        drop(lock);
        Ok(json!({"name": name, "id": id.0}))
    }

    /// Attaches again the container ports the journal of this switch's
    /// previous run listed, before the control socket answers; returns a
    /// line per container for the log. A container whose host end is gone
    /// (it stopped, or its DEL ran, while the switch was down) is skipped
    /// and said so; one whose port name is now taken gets its short id.
    pub(super) fn restore_containers(&self) -> Vec<String> {
        let claims = self
            .res
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .restoring();
        let mut said = Vec::new();
        for claim in claims {
            let Some(c) = claim.container.clone() else {
                continue;
            };
            let who = format!(
                "container {} ({} in {})",
                c.short_id(),
                c.ifname,
                c.netns.display()
            );
            let line = if !crate::netns::link_exists(None, &claim.ifname) {
                format!(
                    "{who}: not attached again: its veth {} is gone (the container stopped, or was detached, while the switch was down)",
                    claim.ifname
                )
            } else {
                let req = ContainerAttach {
                    name: claim.port.clone(),
                    ifname: claim.ifname.clone(),
                    container: c,
                    vlan: claim.vlan.clone(),
                    policy: claim.policy.clone(),
                };
                match self.attach_container(req) {
                    Ok(v) if v["name"] == claim.port.as_str() => {
                        format!("{who}: attached again as port {}", claim.port)
                    }
                    Ok(v) => format!(
                        "{who}: attached again as port {} (port name {} is taken)",
                        v["name"].as_str().unwrap_or("?"),
                        claim.port
                    ),
                    Err(e) => format!("{who}: cannot attach it again: {e:#}"),
                }
            };
            self.res
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .restored(&claim.ifname);
            said.push(line);
        }
        said
    }

    /// `container-detach`: the port of that container interface, if any.
    /// `delete_link`, when it names that port's interface, is deleted on the
    /// reaper after the port is closed; any other name is left to the caller.
    pub(super) fn detach_container(
        &self,
        id: &str,
        ifname: &str,
        delete_link: Option<String>,
    ) -> anyhow::Result<Value> {
        let mut res = self.res.lock().unwrap_or_else(|p| p.into_inner());
        let Some(port) = res
            .containers
            .iter()
            .find(|(_, r)| r.container.id == id && r.container.ifname == ifname)
            .map(|(p, _)| p.clone())
        else {
            return Ok(json!({"removed": null}));
        };
        let removed = self.remove_container_port(&mut res, &port)?;
        let deleting = delete_link
            .filter(|h| removed["host_ifname"].as_str() == Some(h.as_str()))
            .is_some_and(|h| {
                let reaper = self.reaper.lock().unwrap_or_else(|p| p.into_inner());
                reaper
                    .as_ref()
                    .is_some_and(|r| r.send(super::reaper::Reap::Delete(h)).is_ok())
            });
        Ok(json!({"removed": removed, "deleting_link": deleting}))
    }

    /// `container-gc`: container ports of `network` not in `keep`.
    pub(super) fn gc_containers(
        &self,
        network: &str,
        keep: &[Attachment],
    ) -> anyhow::Result<Value> {
        let mut res = self.res.lock().unwrap_or_else(|p| p.into_inner());
        let stale: Vec<String> = res
            .containers
            .iter()
            .map(|(p, r)| (p, &r.container))
            .filter(|(_, r)| r.network == network)
            .filter(|(_, r)| !keep.iter().any(|k| k.id == r.id && k.ifname == r.ifname))
            .map(|(p, _)| p.clone())
            .collect();
        let mut removed = Vec::new();
        for port in stale {
            removed.push(self.remove_container_port(&mut res, &port)?);
        }
        Ok(json!({"removed": removed}))
    }

    fn remove_container_port(
        &self,
        res: &mut super::resources::Resources,
        port: &str,
    ) -> anyhow::Result<Value> {
        let container: Option<ContainerRef> = res.containers.get(port).map(|c| c.container.clone());
        let host = self
            .dp
            .ports()?
            .into_iter()
            .find(|p| p.name == port)
            .map(|p| p.info.ifname);
        match self.dp.remove_port_retiring(port) {
            // Closing it (ring, tcx link) is the reaper's.
            Ok((_, p, retired)) => {
                let reaper = self.reaper.lock().unwrap_or_else(|p| p.into_inner());
                match &*reaper {
                    Some(r) => {
                        let _ = r.send(super::reaper::Reap::Close(p, retired));
                    }
                    None => drop((p, retired)),
                }
            }
            // Its veth went with the container's namespace: the dataplane
            // removed the port already.
            Err(DataplaneError::NoSuchPort(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let errors = res.release_port(port);
        Ok(json!({
            "port": port,
            "host_ifname": host,
            "container": container,
            "cleanup_errors": errors,
        }))
    }
}
