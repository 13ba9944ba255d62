//! Unix socket paths the switch creates for VMs: making the directory,
//! replacing a stale socket left by a crashed switch (never a live one or a
//! file that is not a socket), and giving the socket the owner and mode an
//! unprivileged user's QEMU needs to open it.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Who may open a socket the switch creates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketAccess {
    /// Owner uid (`None`: stays root's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group gid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Permission bits, e.g. 0o660 (`None`: what the umask leaves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

impl SocketAccess {
    pub fn is_default(&self) -> bool {
        self.uid.is_none() && self.gid.is_none() && self.mode.is_none()
    }

    /// Applies owner and mode to `path`. The parent directory gets the same
    /// owner so that user can also reach the socket (and remove it).
    pub fn apply(&self, path: &Path) -> io::Result<()> {
        if self.uid.is_some() || self.gid.is_some() {
            std::os::unix::fs::chown(path, self.uid, self.gid)?;
        }
        if let Some(mode) = self.mode {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        }
        Ok(())
    }
}

/// Which kind of socket a stale path is probed with.
#[derive(Debug, Clone, Copy)]
pub enum SocketType {
    Stream,
    Dgram,
}

/// Gets `path` ready to bind: creates its directory, removes a socket
/// nobody listens on, refuses a live socket or any other file.
pub fn prepare_bind(path: &Path, ty: SocketType) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            fs::create_dir_all(dir)?;
        }
    }
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    let live = match ty {
        SocketType::Stream => UnixStream::connect(path).is_ok(),
        SocketType::Dgram => UnixDatagram::unbound()
            .and_then(|s| s.connect(path))
            .is_ok(),
    };
    if live {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use by another process", path.display()),
        ));
    }
    fs::remove_file(path)
}

/// Looks a user up by name or number in /etc/passwd; returns (uid, primary gid).
pub fn lookup_user(user: &str) -> Result<(u32, u32), String> {
    lookup("/etc/passwd", user)
        .map(|f| {
            (
                f[2].parse().unwrap_or(u32::MAX),
                f[3].parse().unwrap_or(u32::MAX),
            )
        })
        .or_else(|| user.parse().ok().map(|u| (u, u32::MAX)))
        .ok_or_else(|| format!("no user named {user:?} in /etc/passwd"))
}

/// Looks a group up by name or number in /etc/group.
pub fn lookup_group(group: &str) -> Result<u32, String> {
    lookup("/etc/group", group)
        .and_then(|f| f[2].parse().ok())
        .or_else(|| group.parse().ok())
        .ok_or_else(|| format!("no group named {group:?} in /etc/group"))
}

fn lookup(file: &str, name: &str) -> Option<Vec<String>> {
    let text = fs::read_to_string(file).ok()?;
    text.lines()
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && f[0] == name)
}

/// Parses an octal mode such as `660` or `0660`.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let m = u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .map_err(|_| format!("invalid mode {s:?}: expected octal digits such as 0660"))?;
    if m > 0o777 {
        return Err(format!("invalid mode {s:?}: at most 0777"));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_octal() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert!(parse_mode("999").is_err());
        assert!(parse_mode("1777").is_err());
    }

    #[test]
    fn root_is_known() {
        assert_eq!(lookup_user("root").unwrap().0, 0);
        assert_eq!(lookup_group("root"), Ok(0));
        assert_eq!(lookup_user("1234").unwrap().0, 1234);
        assert!(lookup_user("no-such-user-l2sw").is_err());
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        let dir = std::env::temp_dir().join(format!("l2sw-up-{}", std::process::id()));
        let p = dir.join("s.sock");
        prepare_bind(&p, SocketType::Stream).unwrap();
        let l = std::os::unix::net::UnixListener::bind(&p).unwrap();
        assert!(prepare_bind(&p, SocketType::Stream).is_err());
        drop(l);
        prepare_bind(&p, SocketType::Stream).unwrap();
        assert!(!p.exists());
        fs::write(&p, b"x").unwrap();
        assert!(prepare_bind(&p, SocketType::Stream).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
