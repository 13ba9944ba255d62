//! EVPN through GoBGP: the switch joins a BGP EVPN fabric by talking to a
//! gobgpd over its gRPC API. It advertises its local MACs (type-2 routes)
//! and its VTEP per VNI (type-3), withdraws them when the MACs age out,
//! move or lose their port, and turns other VTEPs' routes into FDB entries
//! (kind `evpn`) and flood-list members. gobgpd does the BGP sessions.
//!
//! The gRPC client runs on a thread of its own with a single-threaded tokio
//! runtime (the dataplane has none); it reaches the switch only through the
//! dataplane handle, like a control client. When gobgpd listens in another
//! network namespace, the thread enters it first so its sockets live there.
//! Each round (every [`ROUND`]) compares the switch's tunnel ports and FDB
//! and the routes GoBGP reported with what was done so far ([`sync`]), and
//! carries out the difference.

pub mod api;
mod client;
pub mod routes;
pub mod sync;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use crate::dataplane::DataplaneHandle;
use crate::switch::{VlanMode, VtepOrigin};
use client::Client;
use routes::{RouteKey, Speaker};
use sync::{Action, Advertised, Imported, Sync, Tunnel};

/// How often the switch's state is compared with the routes.
pub const ROUND: Duration = Duration::from_millis(100);
/// How long one gRPC call may take before the session counts as broken.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long stopping waits for the withdrawals.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// How to join the fabric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvpnOptions {
    /// gobgpd's gRPC listener, `HOST:PORT`.
    pub gobgp: String,
    /// The namespace gobgpd's listener is in (`None`: the switch's own).
    pub netns: Option<String>,
    /// The AS number route targets are derived from (`ASN:VNI`).
    pub asn: u32,
    /// The router id route distinguishers are derived from (default: the
    /// first VXLAN port's local address).
    pub router_id: Option<Ipv4Addr>,
}

/// What `evpn show` says.
#[derive(Debug, Clone, Serialize)]
pub struct EvpnStatus {
    pub gobgp: String,
    pub netns: Option<String>,
    pub asn: u32,
    pub router_id: Option<Ipv4Addr>,
    /// A session to gobgpd is up.
    pub connected: bool,
    /// The last thing that went wrong, if the session is down.
    pub error: Option<String>,
    pub advertised: Vec<Advertised>,
    pub imported: Vec<Imported>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvpnError {
    #[error("--asn 0 is not an AS number")]
    ZeroAsn,
    #[error("bad gobgpd address {0:?}: expected HOST:PORT")]
    Address(String),
    #[error("namespace {0} does not exist (it must hold gobgpd's gRPC listener)")]
    NoNamespace(String),
    #[error("cannot start the EVPN thread: {0}")]
    Thread(std::io::Error),
}

struct Shared {
    stop: AtomicBool,
    status: Mutex<EvpnStatus>,
}

/// A running EVPN client. [`stop`](Evpn::stop) withdraws its routes.
pub struct Evpn {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Evpn {
    pub fn start(dp: DataplaneHandle, opts: EvpnOptions) -> Result<Evpn, EvpnError> {
        if opts.asn == 0 {
            return Err(EvpnError::ZeroAsn);
        }
        match opts.gobgp.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0) => {}
            _ => return Err(EvpnError::Address(opts.gobgp.clone())),
        }
        if let Some(ns) = &opts.netns {
            if !crate::netns::exists(ns) {
                return Err(EvpnError::NoNamespace(ns.clone()));
            }
        }
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            status: Mutex::new(EvpnStatus {
                gobgp: opts.gobgp.clone(),
                netns: opts.netns.clone(),
                asn: opts.asn,
                router_id: opts.router_id,
                connected: false,
                error: None,
                advertised: Vec::new(),
                imported: Vec::new(),
            }),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("l2sw-evpn".into())
            .spawn(move || {
                let body = {
                    let s = s.clone();
                    let opts = opts.clone();
                    move || thread_main(&s, &dp, &opts)
                };
                let r = match &opts.netns {
                    Some(ns) => crate::netns::run_in(ns, body).map_err(|e| e.to_string()),
                    None => {
                        body();
                        Ok(())
                    }
                };
                if let Err(e) = r {
                    s.status.lock().unwrap_or_else(|p| p.into_inner()).error = Some(e);
                }
            })
            .map_err(EvpnError::Thread)?;
        Ok(Evpn {
            shared,
            thread: Some(thread),
        })
    }

    pub fn status(&self) -> EvpnStatus {
        self.shared
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Withdraws the switch's routes, removes what the fabric's routes put
    /// into the switch, and ends the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Evpn {
    fn drop(&mut self) {
        self.halt();
    }
}

fn thread_main(s: &Shared, dp: &DataplaneHandle, opts: &EvpnOptions) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            s.status.lock().unwrap_or_else(|p| p.into_inner()).error =
                Some(format!("cannot start the EVPN runtime: {e}"));
            return;
        }
    };
    rt.block_on(run(s, dp, opts));
}

/// The switch's VXLAN ports.
fn tunnels(dp: &DataplaneHandle) -> Vec<Tunnel> {
    let Ok(ports) = dp.ports() else {
        return Vec::new();
    };
    ports
        .into_iter()
        .filter_map(|p| {
            let vx = p.vxlan?;
            let vlan = match p.policy.vlan {
                Some(VlanMode::Access { tag }) => tag,
                _ => 0,
            };
            Some(Tunnel {
                port: p.name,
                vni: vx.endpoint.vni,
                vtep: vx.endpoint.local,
                vlan,
            })
        })
        .collect()
}

/// The session state one thread keeps.
struct Run<'a> {
    s: &'a Shared,
    dp: &'a DataplaneHandle,
    opts: &'a EvpnOptions,
    sync: Sync,
    /// The uuid gobgpd gave each advertised route.
    uuids: HashMap<RouteKey, Vec<u8>>,
}

async fn run(s: &Shared, dp: &DataplaneHandle, opts: &EvpnOptions) {
    let mut r = Run {
        s,
        dp,
        opts,
        sync: Sync::default(),
        uuids: HashMap::new(),
    };
    while !s.stop.load(Ordering::SeqCst) {
        match Client::connect(&opts.gobgp).await {
            Ok(c) => {
                let why = r.session(c.clone()).await;
                r.set(|st| {
                    st.connected = false;
                    st.error = why;
                });
                if s.stop.load(Ordering::SeqCst) {
                    let mut c = c;
                    let _ = tokio::time::timeout(TEARDOWN_TIMEOUT, r.teardown(Some(&mut c))).await;
                    return;
                }
                r.sync.reset_session();
                r.uuids.clear();
            }
            Err(e) => {
                r.set(|st| st.error = Some(e.to_string()));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    // Stopped while no session was up: undo what is in the switch.
    let _ = tokio::time::timeout(TEARDOWN_TIMEOUT, r.teardown(None)).await;
}

impl Run<'_> {
    fn set(&self, f: impl FnOnce(&mut EvpnStatus)) {
        f(&mut self.s.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// One session: until the stop flag, or until gobgpd goes (the
    /// reason is returned).
    async fn session(&mut self, client: Client) -> Option<String> {
        let (tx, rx) = std::sync::mpsc::channel::<Result<api::Path, String>>();
        let mut wc = client.clone();
        let watcher = tokio::spawn(async move {
            let mut stream = match wc.watch_best().await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            loop {
                match stream.message().await {
                    Ok(Some(m)) => {
                        for p in m.table.into_iter().flat_map(|t| t.paths) {
                            if tx.send(Ok(p)).is_err() {
                                return;
                            }
                        }
                    }
                    Ok(None) => {
                        let _ = tx.send(Err("gobgpd ended the watch".into()));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("watch: {e}")));
                        return;
                    }
                }
            }
        });
        self.set(|st| {
            st.connected = true;
            st.error = None;
        });
        let mut client = client;
        let why = loop {
            if self.s.stop.load(Ordering::SeqCst) {
                break None;
            }
            let tunnels = tunnels(self.dp);
            let vteps: Vec<Ipv4Addr> = tunnels.iter().map(|t| t.vtep).collect();
            let mut broken = None;
            while let Ok(m) = rx.try_recv() {
                match m {
                    Ok(p) => {
                        if let Some(route) = routes::parse(&p) {
                            self.sync.remote(route, &vteps);
                        }
                    }
                    Err(e) => broken = Some(e),
                }
            }
            if broken.is_some() {
                break broken;
            }
            let fdb = self.dp.fdb().unwrap_or_default();
            let speaker =
                self.opts
                    .router_id
                    .or(tunnels.first().map(|t| t.vtep))
                    .map(|router_id| Speaker {
                        asn: self.opts.asn,
                        router_id,
                    });
            let actions = self.sync.round(&tunnels, &fdb);
            let mut failed = None;
            for a in actions {
                if let Err(e) = self.apply(a, speaker, Some(&mut client)).await {
                    failed = Some(e);
                    break;
                }
            }
            self.set(|st| {
                st.router_id = speaker.map(|s| s.router_id);
                st.advertised = self.sync.advertised_routes();
                st.imported = self.sync.imported(&tunnels);
            });
            if failed.is_some() {
                break failed;
            }
            tokio::time::sleep(ROUND).await;
        };
        watcher.abort();
        why
    }

    /// Carries out one action; an error means the session broke.
    async fn apply(
        &mut self,
        a: Action,
        speaker: Option<Speaker>,
        client: Option<&mut Client>,
    ) -> Result<(), String> {
        match a {
            Action::Advertise { key, vtep, seq } => {
                let (Some(sp), Some(c)) = (speaker, client) else {
                    return Ok(());
                };
                if let Some(old) = self.uuids.remove(&key) {
                    timed(c.delete_path(old)).await?;
                }
                let uuid = timed(c.add_path(routes::path(sp, key, vtep, seq))).await?;
                self.uuids.insert(key, uuid);
                self.sync.advertised(key, Some((vtep, seq)));
            }
            Action::Withdraw { key } => {
                if let (Some(uuid), Some(c)) = (self.uuids.remove(&key), client) {
                    timed(c.delete_path(uuid)).await?;
                }
                self.sync.advertised(key, None);
            }
            // The switch refusing one (a port that just went) is fixed by
            // a later round; it does not break the session.
            Action::SetFdb {
                port,
                vlan,
                mac,
                vtep,
            } => {
                let _ = self.dp.fdb_set_evpn(mac, vlan, &port, vtep);
            }
            Action::DelFdb { vlan, mac } => {
                let _ = self.dp.fdb_del_evpn(mac, vlan);
            }
            Action::AddFlood { port, vtep } => {
                let _ = self.dp.flood_update(&port, vtep, VtepOrigin::Evpn, true);
            }
            Action::DelFlood { port, vtep } => {
                let _ = self.dp.flood_update(&port, vtep, VtepOrigin::Evpn, false);
            }
        }
        Ok(())
    }

    /// Withdraws every route (with a session) and removes what the routes
    /// put into the switch.
    async fn teardown(&mut self, mut client: Option<&mut Client>) {
        for a in self.sync.teardown() {
            let c = client.as_deref_mut();
            if self.apply(a, None, c).await.is_err() {
                // gobgpd is gone: its routes went with it.
                client = None;
            }
        }
        self.set(|st| {
            st.connected = false;
            st.advertised.clear();
            st.imported.clear();
        });
    }
}

async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, client::ClientError>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "gobgpd did not answer within {}s",
            CALL_TIMEOUT.as_secs()
        )),
    }
}
