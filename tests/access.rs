//! Control socket access, checked as an unprivileged user (`nobody`,
//! through `setpriv`): root-only by default, a group with `run --group`,
//! and refusals by peer credentials when the file mode lets someone through.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Output};

use common::{Switch, BIN};

const NOBODY: &str = "65534";
/// A group `nobody` is not in, present on every Debian system.
const GROUP: &str = "users";
const GROUP_GID: u32 = 100;

/// Runs `l2sw ARGS` against `sw` as uid/gid 65534 with `groups` as its only
/// supplementary groups.
fn as_nobody(sw: &Switch, groups: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", NOBODY, "--regid", NOBODY]);
    match groups {
        Some(g) => c.args(["--groups", g]),
        None => c.arg("--clear-groups"),
    };
    c.arg(BIN)
        .args(["--name", &sw.name, "--run-dir"])
        .arg(&sw.run_dir)
        .args(args)
        .output()
        .expect("run setpriv (util-linux)")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_socket_is_root_only_by_default() {
    let sw = Switch::start("acc");
    let meta = std::fs::metadata(sw.socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), 0);

    let out = as_nobody(&sw, None, &["status"]);
    assert!(!out.status.success(), "nobody got an answer");
    let err = stderr(&out);
    assert!(
        err.contains("permission denied") && err.contains("root-only"),
        "{err}"
    );
    sw.ok(&["status"]);
}

#[test]
fn a_peer_outside_the_policy_is_refused_even_when_the_file_lets_it_connect() {
    let sw = Switch::start_logged("acr", &[]);
    // A mode loosened by hand: the kernel lets nobody connect, the switch
    // must still refuse by the peer's credentials.
    std::fs::set_permissions(sw.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&sw, None, &["fdb", "show"]);
    assert!(!out.status.success(), "nobody got an answer");
    let err = stderr(&out);
    assert!(
        err.contains("permission denied: uid 65534 (gid 65534) may not use the control socket"),
        "{err}"
    );
    assert!(
        common::eventually(std::time::Duration::from_secs(5), || sw
            .log()
            .contains("refused a client")
            && sw.log().contains("uid 65534")),
        "no refusal in the log: {}",
        sw.log()
    );
    // The switch keeps serving those it should.
    sw.ok(&["status"]);
}

#[test]
fn run_group_lets_its_members_in_and_no_one_else() {
    let sw = Switch::start_with("acg", &["--group", GROUP]);
    let meta = std::fs::metadata(sw.socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), GROUP_GID);

    let member = as_nobody(&sw, Some(&GROUP_GID.to_string()), &["status", "--json"]);
    assert!(
        member.status.success(),
        "member refused: {}",
        stderr(&member)
    );
    let v: serde_json::Value = serde_json::from_slice(&member.stdout).unwrap();
    assert_eq!(v["name"], sw.name.as_str());

    let outsider = as_nobody(&sw, None, &["status"]);
    assert!(!outsider.status.success());
    assert!(stderr(&outsider).contains("permission denied"));
}

#[test]
fn an_unknown_group_is_refused_at_start() {
    common::require_root();
    let dir = std::env::temp_dir().join(common::unique("l2sw-acu"));
    let out = Command::new(BIN)
        .args(["--name", &common::unique("acu"), "--run-dir"])
        .arg(&dir)
        .args(["run", "--group", "no-such-group-l2sw"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--group no-such-group-l2sw: no such group"),
        "{err}"
    );
}
