//! The README's commands, run as written: the first of "The two commands"
//! builds and runs the demo; the tour's blocks run top to bottom as one
//! script. The tour uses fixed names (`lab`, `red`, `blue`, `veth-x`,
//! `tap7`), so it runs in a world of its own: new network, mount and pid
//! namespaces with private /run/netns and /run/l2sw. Whatever it leaves, on
//! success or failure, dies with that world.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{require_root, unique, BIN};

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md")
}

/// The ```sh blocks between the headings `from` and `to`.
fn sh_blocks(text: &str, from: &str, to: &str) -> Vec<String> {
    let start = text
        .find(from)
        .unwrap_or_else(|| panic!("README has no {from:?}"));
    let end = text[start..].find(to).map_or(text.len(), |e| start + e);
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in text[start..end].lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```sh") => cur = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                cur = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Runs `cmd` (killing it after `limit`); returns (success, stdout+stderr).
fn run_with_limit(mut cmd: Command, limit: Duration) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("l2sw-readme-out-{}", unique("o")));
    let out = std::fs::File::create(&dir).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    let ok = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&dir).unwrap_or_default();
    let _ = std::fs::remove_file(&dir);
    (ok, text)
}

#[test]
fn the_first_command_builds_and_runs_the_demo() {
    require_root();
    let blocks = sh_blocks(&readme(), "## The two commands", "\n## ");
    let first = blocks
        .first()
        .and_then(|b| b.lines().next())
        .expect("a first command")
        .to_string();
    assert!(first.starts_with("cargo run"), "{first}");
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &first])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let (ok, out) = run_with_limit(cmd, Duration::from_secs(1200));
    assert!(ok, "`{first}` failed:\n{out}");
    assert!(out.contains("demo passed"), "{out}");
}

#[test]
fn the_tour_runs_as_written() {
    require_root();
    let blocks = sh_blocks(&readme(), "## A five-minute tour", "## How it behaves");
    assert!(blocks.len() >= 3, "the tour has its blocks: {blocks:?}");
    let dir = std::env::temp_dir().join(format!("l2sw-tour-{}", unique("t")));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("tour.sh");
    // After the tour, the same world must be empty again.
    let check = r#"
echo "== after the tour"
test -z "$(ip netns list)" || { echo "namespaces left: $(ip netns list)"; exit 1; }
left=$(ls -A /run/l2sw | grep -vx .lock || true)
test -z "$left" || { echo "left in /run/l2sw: $left"; exit 1; }
! ip link show tap7 2>/dev/null || { echo "tap7 left"; exit 1; }
echo "tour done"
"#;
    std::fs::write(&script, format!("set -ex\n{}{check}", blocks.join("\n"))).unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let world = format!(
        "mkdir -p /run/netns /run/l2sw && mount -t tmpfs l2sw-tour /run/netns && mount -t tmpfs l2sw-tour /run/l2sw && ip link set lo up && cd {} && exec bash {}",
        dir.display(),
        script.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--net",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "bash",
        "-c",
        &world,
    ])
    .env("PATH", path)
    .current_dir(&dir);
    let (ok, out) = run_with_limit(cmd, Duration::from_secs(300));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        ok && out.contains("tour done"),
        "the README tour failed:\n{out}"
    );
}

#[test]
fn the_tour_extractor_finds_blocks_and_ignores_other_fences() {
    let text = "## A\n```sh\necho 1\n```\n```text\nno\n```\n## B\n```sh\necho 2\n```\n";
    assert_eq!(
        sh_blocks(text, "## A", "## B"),
        vec!["echo 1\n".to_string()]
    );
}
