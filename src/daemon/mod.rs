//! One running switch: the dataplane thread, the control server, and the
//! devices and namespaces it created, which it removes again when a port goes
//! and when it stops. What it created is journaled (see [`journal`]) so that
//! a switch that died without cleaning up is cleaned up by the next start of
//! the same name, or by `l2sw cleanup`.

mod build;
mod containers;
mod evpn;
mod handler;
pub mod journal;
pub mod listing;
mod overview;
mod owned;
mod plug;
mod port_kinds;
mod reaper;
mod resources;
mod sockets;
mod stream;
mod vxlan;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::config::Config;
use crate::control::access::Access;
use crate::control::protocol::{Request, Response};
use crate::control::server::{ControlServer, Handler};
use crate::control::{socket_path, validate_switch_name};
use crate::dataplane::{BusyPoll, DataplaneEvent, DataplaneHandle, ReturnedPorts};
use crate::switch::Settings;

use resources::Resources;
pub use resources::{Owned, Plug};

/// How to start a switch.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub name: String,
    pub run_dir: PathBuf,
    pub settings: Settings,
    pub busy_poll: BusyPoll,
    /// Who may use the control socket.
    pub access: Access,
}

/// Shared between the control threads and the daemon.
pub(crate) struct Inner {
    name: String,
    socket: PathBuf,
    run_dir: PathBuf,
    started: Instant,
    dp: DataplaneHandle,
    /// Also serializes port and namespace changes.
    res: Mutex<Resources>,
    shutdown: Sender<String>,
    busy_poll: BusyPoll,
    access: Access,
    /// The EVPN client, while enabled.
    evpn: Mutex<Option<crate::evpn::Evpn>>,
    /// Deferred unplug work ([`reaper`]); `None` once stopping.
    reaper: Mutex<Option<Sender<reaper::Reap>>>,
    /// Sockets made ahead of time for the next ports ([`sockets`]).
    sockets: sockets::SocketPool,
}

/// A running switch. Call [`Daemon::shutdown`] (or drop it) to stop it and
/// remove everything it created.
pub struct Daemon {
    inner: Arc<Inner>,
    /// Bound at start, served from `serve` on.
    listener: Option<std::os::unix::net::UnixListener>,
    server: Option<ControlServer>,
    dp_thread: Option<JoinHandle<ReturnedPorts>>,
    events_thread: Option<JoinHandle<()>>,
    reaper_thread: Option<JoinHandle<()>>,
    shutdown_rx: Receiver<String>,
}

impl Daemon {
    /// Starts the dataplane and binds the control socket (which refuses a
    /// second switch of the same name). Clients are answered from
    /// [`serve`](Self::serve) on, so a switch set up from a config file
    /// answers only once it is built.
    pub fn start(opts: DaemonOptions) -> anyhow::Result<Daemon> {
        validate_switch_name(&opts.name).map_err(anyhow::Error::msg)?;
        let socket = socket_path(&opts.run_dir, &opts.name);
        let jpath = journal::journal_path(&opts.run_dir, &opts.name);
        // Starts of one name and interface claims wait for each other.
        let lock = journal::RunDirLock::acquire(&opts.run_dir)?;
        let mut adopted = Vec::new();
        let mut leftover = Vec::new();
        let mut restore = Vec::new();
        match journal::Journal::read(&jpath) {
            Ok(None) => {}
            Ok(Some(j)) if j.is_alive() => anyhow::bail!(
                "switch {} is already running (pid {}, control socket {})",
                opts.name,
                j.pid,
                socket.display()
            ),
            Ok(Some(j)) => {
                let (r, a) = journal::recover(&j, true);
                if !j.stopped || !r.removed.is_empty() || !r.failed.is_empty() {
                    eprintln!("l2sw: {}", r.summary());
                }
                adopted = a;
                leftover = r.failed.into_iter().map(|(e, _)| e).collect();
                // Its container ports, attached again once set up (`serve`).
                for c in j.ports.into_iter().filter(|c| c.container.is_some()) {
                    if !restore
                        .iter()
                        .any(|r: &journal::Claim| r.ifname == c.ifname)
                    {
                        restore.push(c);
                    }
                }
            }
            Err(e) => eprintln!("l2sw: {e}; starting without recovering from it"),
        }
        let listener = ControlServer::bind(&opts.name, &socket, &opts.access)?;
        let mut res = Resources::with_journal(jpath, journal::Journal::new(&opts.name, &socket));
        res.push_owned(
            journal::SWITCH_OWNER,
            Owned::SocketFile {
                path: socket.clone(),
            },
        );
        for e in adopted.into_iter().chain(leftover) {
            res.push_owned(journal::SWITCH_OWNER, e.what);
        }
        if !restore.is_empty() {
            res.set_restoring(restore);
        }
        drop(lock);
        let spawned = DataplaneHandle::spawn_with(opts.settings, opts.busy_poll)
            .map_err(|e| anyhow::anyhow!("cannot start the dataplane thread: {e}"))?;
        let (shutdown_tx, shutdown_rx) = crossbeam_channel::unbounded();
        let (reap_tx, reap_rx) = crossbeam_channel::unbounded();
        let inner = Arc::new(Inner {
            name: opts.name.clone(),
            socket: socket.clone(),
            run_dir: opts.run_dir.clone(),
            started: Instant::now(),
            dp: spawned.handle,
            res: Mutex::new(res),
            shutdown: shutdown_tx,
            busy_poll: opts.busy_poll,
            access: opts.access.clone(),
            evpn: Mutex::new(None),
            reaper: Mutex::new(Some(reap_tx)),
            sockets: sockets::SocketPool::start(),
        });
        let reaper_thread = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("l2sw-reaper".into())
                .spawn(move || reaper::run(&inner, reap_rx))?
        };
        let events_thread = {
            let inner = inner.clone();
            let events = spawned.events;
            std::thread::Builder::new()
                .name("l2sw-events".into())
                .spawn(move || handle_events(&inner, events))?
        };
        Ok(Daemon {
            inner,
            listener: Some(listener),
            server: None,
            dp_thread: Some(spawned.thread),
            events_thread: Some(events_thread),
            reaper_thread: Some(reaper_thread),
            shutdown_rx,
        })
    }

    /// Starts answering on the control socket. First the container ports
    /// of this switch's previous run are attached again (after the config
    /// and the fast path are set up, as if their ADDs came now), so a
    /// client that sees the switch answer sees them too.
    pub fn serve(&mut self) {
        if let Some(listener) = self.listener.take() {
            for line in self.inner.restore_containers() {
                eprintln!("l2sw: {line}");
            }
            let server = ControlServer::spawn(
                listener,
                self.inner.socket.clone(),
                self.inner.clone() as Arc<dyn Handler>,
                &self.inner.name,
                self.inner.access.clone(),
            );
            self.server = Some(server);
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn socket(&self) -> &std::path::Path {
        &self.inner.socket
    }

    pub fn dataplane(&self) -> &DataplaneHandle {
        &self.inner.dp
    }

    /// Runs one request as if it came over the control socket.
    pub fn request(&self, req: Request) -> Response {
        self.inner.handle(req)
    }

    /// Applies a configuration: settings, ports, namespaces, in that order.
    /// Stops at the first error, saying which item failed.
    pub fn apply(&self, config: &Config) -> anyhow::Result<()> {
        for (what, req) in config.requests() {
            let resp = self.request(req);
            if !resp.ok {
                anyhow::bail!(
                    "config: {what}: {}",
                    resp.error.unwrap_or_else(|| "failed".into())
                );
            }
        }
        Ok(())
    }

    /// A channel that yields a reason when a control client asked the switch to stop.
    pub fn shutdown_requests(&self) -> Receiver<String> {
        self.shutdown_rx.clone()
    }

    /// Stops the control socket and the dataplane, then removes every device
    /// and namespace the switch created. Returns cleanup problems, if any.
    pub fn shutdown(mut self) -> Vec<String> {
        self.stop()
    }

    fn stop(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Some(mut s) = self.server.take() {
            s.stop();
        }
        if self.listener.take().is_some() {
            // Never served: the socket file is still ours to remove.
            let _ = std::fs::remove_file(&self.inner.socket);
        }
        // Withdraw EVPN routes while the dataplane still answers.
        self.inner.evpn_stop();
        self.inner.sockets.stop();
        if let Some(t) = self.dp_thread.take() {
            self.inner.dp.stop();
            match t.join() {
                // Close every port (TAP queues go with their fds) before
                // deleting links and namespaces.
                Ok(ports) => drop(ports),
                Err(_) => errors.push("the dataplane thread panicked".to_string()),
            }
        }
        // Deferred unplug work first: its links are still in the journal.
        drop(
            self.inner
                .reaper
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        if let Some(t) = self.reaper_thread.take() {
            if t.join().is_err() {
                errors.push("the reaper thread panicked".to_string());
            }
        }
        let mut res = self.inner.res.lock().unwrap_or_else(|p| p.into_inner());
        let released = res.release_all();
        errors.extend(res.finish(released));
        drop(res);
        if let Some(t) = self.events_thread.take() {
            // The events channel closes with the dataplane; the thread ends.
            let _ = t.join();
        }
        errors
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        for e in self.stop() {
            eprintln!("l2sw: cleanup: {e}");
        }
    }
}

/// Follows ports the dataplane removed by itself: release what they owned.
fn handle_events(inner: &Inner, events: Receiver<DataplaneEvent>) {
    for ev in events {
        match ev {
            DataplaneEvent::PortRemoved { name, .. } => {
                let mut res = inner.res.lock().unwrap_or_else(|p| p.into_inner());
                // Keep a namespace we created until it is unplugged or the
                // switch stops: the user may still be looking into it.
                for e in res.release_port_keeping_namespaces(&name) {
                    eprintln!("l2sw: cleanup after port {name} vanished: {e}");
                }
                if let Some(p) = res.plugs.get_mut(&name) {
                    p.port_vanished = true;
                }
                drop(res);
                // The namespace itself may be what went (another switch
                // sharing it unplugged it): then unplug it here too.
                inner.forget_deleted_namespaces();
            }
        }
    }
}
