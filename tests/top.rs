//! `l2sw top` in a real terminal: a tmux session of its own (a private tmux
//! server, fixed 120x40) runs it against a switch carrying a flood ping
//! between two namespaces; keys go in with send-keys, the screen comes back
//! with capture-pane. Also `--once` and the refusal without a terminal.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

/// A tmux server and session used by this test only; killed on drop.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn start(tag: &str) -> Tmux {
        let t = Tmux {
            socket: unique(&format!("l2sw-{tag}")),
            session: unique(tag),
        };
        let ok = t
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                &t.session,
                "-x",
                "120",
                "-y",
                "40",
                "sh",
            ])
            .status()
            .expect("run tmux (the Debian package tmux)")
            .success();
        assert!(ok, "tmux new-session failed");
        t
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Types `text` literally, then Enter if asked.
    fn keys(&self, text: &str, enter: bool) {
        let target = &self.session;
        assert!(self
            .cmd(&["send-keys", "-t", target, "-l", text])
            .status()
            .unwrap()
            .success());
        if enter {
            assert!(self
                .cmd(&["send-keys", "-t", target, "Enter"])
                .status()
                .unwrap()
                .success());
        }
    }

    fn screen(&self) -> String {
        let out = self
            .cmd(&["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `pred`; fails showing the screen.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let ok = eventually(Duration::from_secs(20), || {
            last = self.screen();
            pred(&last)
        });
        assert!(ok, "{what}: the screen is\n{last}");
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Only our session (the private server then exits with it).
        let _ = self.cmd(&["kill-session", "-t", &self.session]).status();
    }
}

/// A process this test started, killed by its PID on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The whitespace-separated fields of the screen line starting with `first`.
fn row<'a>(screen: &'a str, first: &str) -> Option<Vec<&'a str>> {
    screen
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&first))
}

/// Line numbers of the rows starting with `a` and `b`.
fn positions(screen: &str, a: &str, b: &str) -> Option<(usize, usize)> {
    let at = |n: &str| {
        screen
            .lines()
            .position(|l| l.split_whitespace().next() == Some(n))
    };
    Some((at(a)?, at(b)?))
}

#[test]
fn top_in_a_terminal_shows_live_rates_switches_views_sorts_and_quits_cleanly() {
    let mut sw = Switch::start("top");
    let a = sw.plug("a", "10.118.0.1/24", "02:00:00:76:00:01", &[]);
    let _b = sw.plug("b", "10.118.0.2/24", "02:00:00:76:00:02", &[]);
    let (port_a, port_b) = (format!("{}-a", sw.name), format!("{}-b", sw.name));
    let (sent, got) = ping(&a, "10.118.0.2", &[]);
    assert_eq!((sent, got), (3, 3));
    // A flood ping for the whole test (it ends on its own after 90 s).
    let _flood = Proc(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &a,
                "ping",
                "-f",
                "-q",
                "-w",
                "90",
                "10.118.0.2",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ping -f"),
    );

    // Without a terminal: refused, or one text frame with --once.
    let err = sw.fails(&["top"]);
    assert!(
        err.contains("needs a terminal on stdout") && err.contains("--once"),
        "{err}"
    );
    let once = sw.ok(&["top", "--once"]);
    assert!(once.contains("Traffic per port"), "{once}");
    let r = row(&once, &port_a).unwrap_or_else(|| panic!("no row for {port_a}:\n{once}"));
    assert_ne!(r[1], "0", "rx frames/s of {port_a}:\n{once}");
    let err = sw.fails(&["top", "--once", "--view", "drops", "--sort", "tx"]);
    assert!(err.contains("cannot be sorted by tx"), "{err}");

    let tmux = Tmux::start("top");
    let dir = sw.run_dir.display().to_string();
    tmux.keys(
        &format!(
            "stty -g > {dir}/stty.before; {} --name {} --run-dir {dir} top; echo top-exit=$?; stty -g > {dir}/stty.after",
            BIN, sw.name
        ),
        true,
    );
    // Both ports, with non-zero rx and tx rates (frames/s and bits/s).
    let screen = tmux.wait_for("both ports with traffic", |s| {
        [&port_a, &port_b]
            .iter()
            .all(|p| row(s, p).is_some_and(|f| f.len() >= 6 && f[1..5].iter().all(|v| *v != "0")))
    });
    assert!(
        screen.contains("Traffic per port") && screen.contains("FDB "),
        "{screen}"
    );

    // Sorting by name puts a before b; reversing puts b first.
    tmux.keys("n", false);
    tmux.wait_for("sorted by name, a first", |s| {
        s.contains("sort: name") && positions(s, &port_a, &port_b).is_some_and(|(x, y)| x < y)
    });
    tmux.keys("i", false);
    tmux.wait_for("reversed, b first", |s| {
        s.contains("(reversed)") && positions(s, &port_a, &port_b).is_some_and(|(x, y)| x > y)
    });

    tmux.keys("2", false);
    tmux.wait_for("the drops view", |s| {
        s.contains("Drops per second by port and reason")
    });
    tmux.keys("3", false);
    tmux.wait_for("the MACs view with a's MAC sending", |s| {
        s.contains("Busiest MACs")
            && row(s, "02:00:00:76:00:01").is_some_and(|f| f.len() >= 5 && f[4] != "0")
    });
    tmux.keys("4", false);
    tmux.wait_for("the latency view with percentiles for a", |s| {
        s.contains("Forwarding latency")
            && row(s, &port_a).is_some_and(|f| f.len() >= 4 && f[2] != "-" && f[3] != "-")
    });
    tmux.keys("?", false);
    tmux.wait_for("the help", |s| {
        s.contains("Keys") && s.contains("reverse the order")
    });
    tmux.keys("z", false);
    tmux.wait_for("help closed", |s| !s.contains("reverse the order"));

    tmux.keys("q", false);
    let screen = tmux.wait_for("top exited", |s| s.contains("top-exit=0"));
    assert!(
        !screen.contains("Forwarding latency") && !screen.contains("sort:"),
        "the alternate screen was not left:\n{screen}"
    );
    let settled = eventually(Duration::from_secs(10), || {
        std::path::Path::new(&format!("{dir}/stty.after")).exists()
    });
    assert!(settled, "the shell did not get back to run stty");
    std::thread::sleep(Duration::from_millis(200));
    let before = std::fs::read_to_string(format!("{dir}/stty.before")).unwrap();
    let after = std::fs::read_to_string(format!("{dir}/stty.after")).unwrap();
    assert_eq!(
        before, after,
        "terminal modes differ after top (raw mode left on?)"
    );
}
