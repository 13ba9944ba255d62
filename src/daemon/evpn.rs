//! `evpn enable|disable|show`: the daemon's one EVPN client, started on
//! request (or from a config's `[evpn]`), stopped before the dataplane so
//! its withdrawals go out while the switch still runs.

use serde_json::Value;

use super::Inner;
use crate::control::protocol::EvpnEnable;
use crate::evpn::{Evpn, EvpnOptions};

impl Inner {
    pub(super) fn evpn_enable(&self, req: EvpnEnable) -> anyhow::Result<Value> {
        let mut slot = self.evpn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = slot.as_ref() {
            anyhow::bail!(
                "EVPN is already enabled (gobgpd {}); `l2sw evpn disable` first",
                e.status().gobgp
            );
        }
        let opts = EvpnOptions {
            gobgp: req.gobgp,
            netns: req.netns,
            asn: req.asn,
            router_id: req.router_id,
        };
        let e = Evpn::start(self.dp.clone(), opts)?;
        let v = serde_json::to_value(e.status())?;
        *slot = Some(e);
        Ok(v)
    }

    pub(super) fn evpn_disable(&self) -> anyhow::Result<Value> {
        let e = self
            .evpn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| anyhow::anyhow!("EVPN is not enabled"))?;
        let withdrawn = e.status().advertised.len();
        e.stop();
        Ok(serde_json::json!({ "withdrawn": withdrawn }))
    }

    pub(super) fn evpn_show(&self) -> anyhow::Result<Value> {
        let slot = self.evpn.lock().unwrap_or_else(|p| p.into_inner());
        let e = slot.as_ref().ok_or_else(|| {
            anyhow::anyhow!("EVPN is not enabled (`l2sw evpn enable --gobgp HOST:PORT --asn N`)")
        })?;
        Ok(serde_json::to_value(e.status())?)
    }

    /// Stops EVPN, if enabled (the switch is stopping).
    pub(super) fn evpn_stop(&self) {
        let e = self.evpn.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(e) = e {
            e.stop();
        }
    }
}
