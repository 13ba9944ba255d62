//! `l2sw demo`: brings up the embedded default lab on a private switch, shows
//! that every namespace reaches every other through it, prints what the
//! switch learned and counted, and removes everything it created.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::control::client::{decode, ClientError};
use crate::control::protocol::Request;
use crate::control::render;
use crate::daemon::{Daemon, DaemonOptions};
use crate::netns;
use crate::switch::Settings;

/// One ping from a namespace to an address.
#[derive(Debug, Clone)]
pub struct PingResult {
    pub from: String,
    pub to: String,
    pub addr: String,
    pub sent: u32,
    pub received: u32,
    pub avg_ms: Option<f64>,
}

/// Runs `ping` inside `ns` and reads its summary: (sent, received, avg ms).
pub fn ping(ns: &str, addr: &str, count: u32) -> anyhow::Result<(u32, u32, Option<f64>)> {
    let c = count.to_string();
    ping_args(ns, &["-i", "0.2", "-W", "2", "-c", &c, addr])
}

/// `ip netns exec NS ping -n -q ARGS`, summarized.
pub fn ping_args(ns: &str, args: &[&str]) -> anyhow::Result<(u32, u32, Option<f64>)> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-n", "-q"])
        .args(args)
        .output()
        .context(
            "cannot run `ip netns exec ... ping` (are iproute2 and iputils-ping installed?)",
        )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut sent = 0;
    let mut received = 0;
    let mut avg = None;
    for line in text.lines() {
        if line.contains("packets transmitted") {
            let nums: Vec<u32> = line
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect();
            if nums.len() >= 2 {
                sent = nums[0];
                received = nums[1];
            }
        }
        if let Some(rest) = line.split(" = ").nth(1).filter(|_| line.starts_with("rtt")) {
            avg = rest.split('/').nth(1).and_then(|v| v.parse().ok());
        }
    }
    if sent == 0 {
        let err = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!("ping in {ns} did not run: {}", err.trim());
    }
    Ok((sent, received, avg))
}

/// Runs the demo; `Ok` only if every pair pinged.
pub fn run(run_dir: &Path) -> anyhow::Result<()> {
    if !is_root() {
        anyhow::bail!(
            "l2sw demo needs root: it creates network namespaces, veth pairs and a TAP device (run it with sudo)"
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGQUIT,
    ] {
        signal_hook::flag::register(sig, stop.clone()).context("cannot install signal handlers")?;
    }
    let pid = std::process::id();
    let name = format!("demo-{pid}");
    let prefix = format!("l2demo{pid}-");
    let lab = Config::default_lab().with_netns_prefix(&prefix);

    println!("== starting switch {name} with the embedded default lab");
    let mut daemon = Daemon::start(DaemonOptions {
        name: name.clone(),
        run_dir: run_dir.to_path_buf(),
        settings: Settings::default(),
        busy_poll: Default::default(),
        access: crate::control::access::Access::root_only(),
    })?;
    let result = (|| -> anyhow::Result<bool> {
        daemon.apply(&lab)?;
        daemon.serve();
        for n in &lab.namespaces {
            let ips: Vec<String> = n.item.ip.iter().map(|c| c.to_string()).collect();
            println!(
                "   plugged namespace {:<22} via {:<4}  {}",
                n.item.ns,
                format!("{:?}", n.item.via).to_lowercase(),
                ips.join(", ")
            );
        }
        println!("\n== every namespace pings every other, through l2sw");
        let mut all_ok = true;
        for a in &lab.namespaces {
            for b in &lab.namespaces {
                if a.item.ns == b.item.ns || stop.load(Ordering::SeqCst) {
                    continue;
                }
                let addr = b.item.ip[0].addr.to_string();
                let (sent, recv, avg) = ping(&a.item.ns, &addr, 3)?;
                let ok = recv == sent;
                all_ok &= ok;
                println!(
                    "   {:<22} -> {:<22} {:<10} {}/{} replies{}  {}",
                    a.item.ns,
                    b.item.ns,
                    addr,
                    recv,
                    sent,
                    avg.map(|v| format!(", avg {v:.3} ms")).unwrap_or_default(),
                    if ok { "ok" } else { "FAILED" }
                );
            }
        }
        if stop.load(Ordering::SeqCst) {
            anyhow::bail!("interrupted");
        }
        type Text = fn(serde_json::Value) -> Result<String, ClientError>;
        let show = |title: &str, req: Request, f: Text| {
            let resp = daemon.request(req);
            println!("\n== {title}");
            match resp.result.map(f) {
                Some(Ok(text)) => print!("{text}"),
                Some(Err(e)) => println!("   error: {e}"),
                None => println!("   error: {}", resp.error.unwrap_or_default()),
            }
        };
        show("ports (l2sw port list)", Request::PortList, |v| {
            Ok(render::ports(&decode::<Vec<_>>(v)?))
        });
        show(
            "forwarding database (l2sw fdb show)",
            Request::FdbShow { port: None },
            |v| Ok(render::fdb(&decode::<Vec<_>>(v)?)),
        );
        show(
            "counters (l2sw stats)",
            Request::Stats { port: None },
            |v| Ok(render::stats(&decode(v)?)),
        );
        Ok(all_ok)
    })();

    println!("\n== stopping the switch and removing what it created");
    let errors = daemon.shutdown();
    for e in &errors {
        println!("   cleanup problem: {e}");
    }
    let left: Vec<&str> = lab
        .namespaces
        .iter()
        .map(|n| n.item.ns.as_str())
        .filter(|ns| netns::exists(ns))
        .collect();
    if left.is_empty() && errors.is_empty() {
        println!(
            "   removed {} namespaces and their links",
            lab.namespaces.len()
        );
    } else if !left.is_empty() {
        anyhow::bail!("namespaces left behind: {}", left.join(", "));
    }
    match result {
        Ok(true) => {
            println!("\ndemo passed: every pair pinged through l2sw.");
            Ok(())
        }
        Ok(false) => anyhow::bail!("some pings failed (see above)"),
        Err(e) => Err(e),
    }
}

/// Whether the effective user is root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
