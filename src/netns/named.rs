//! Named network namespaces the way iproute2 keeps them: a bind mount of a
//! namespace on /run/netns/NAME, so `ip netns exec NAME` and every other
//! tool see what l2sw made, and l2sw sees theirs. Creating one needs no
//! fork: a short-lived thread unshares its network namespace and pins it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use super::{netns_path, sys, validate_netns_name, NetnsError, NETNS_DIR};
use crate::netlink::Rtnl;

/// An open network namespace (a name under /run/netns, or any path such as
/// a container runtime's /proc/PID/ns/net or /var/run/netns/cni-...).
/// Holding it keeps the namespace alive.
#[derive(Debug)]
pub struct Namespace {
    label: String,
    file: File,
}

impl Namespace {
    /// Opens /run/netns/`name`.
    pub fn open(name: &str) -> Result<Namespace, NetnsError> {
        Self::open_labelled(&netns_path(name), name)
    }

    /// Opens the namespace at `path`; errors name it by its path.
    pub fn open_path(path: &Path) -> Result<Namespace, NetnsError> {
        Self::open_labelled(path, &path.display().to_string())
    }

    fn open_labelled(path: &Path, label: &str) -> Result<Namespace, NetnsError> {
        match File::open(path) {
            Ok(file) => Ok(Namespace {
                label: label.to_string(),
                file,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(NetnsError::NoSuchNamespace(label.to_string()))
            }
            Err(source) => Err(NetnsError::Enter {
                name: label.to_string(),
                source,
            }),
        }
    }

    /// The name (or path) it was opened by.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The namespace's fd, for [`Rtnl::create_veth`] and
    /// [`Rtnl::move_to_netns`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Runs `f` in a fresh thread that has entered this namespace. Sockets
    /// `f` opens stay in it for their whole life, wherever they are used.
    pub fn run<F, R>(&self, f: F) -> Result<R, NetnsError>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        std::thread::scope(|s| {
            s.spawn(move || {
                sys::enter_netns(&self.file).map_err(|source| NetnsError::Enter {
                    name: self.label.clone(),
                    source,
                })?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// A netlink socket inside this namespace.
    pub fn rtnl(&self) -> Result<Rtnl, NetnsError> {
        Ok(self.run(Rtnl::open)??)
    }
}

/// Makes /run/netns a shared mount point, as `ip netns add` does, so that
/// namespaces pinned there are seen from mount namespaces made later.
fn prepare_dir() -> io::Result<()> {
    let dir = Path::new(NETNS_DIR);
    std::fs::create_dir_all(dir)?;
    match sys::make_rshared(dir) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // Not a mount point yet: make it one, then shared.
            sys::rbind_onto_itself(dir)?;
            sys::make_rshared(dir)
        }
        r => r,
    }
}

/// Creates namespace `name` (/run/netns/`name`) with its loopback up.
pub fn create(name: &str) -> Result<(), NetnsError> {
    validate_netns_name(name)?;
    let fail = |step: &'static str| {
        move |err: io::Error| NetnsError::Create {
            name: name.to_string(),
            step,
            err,
        }
    };
    prepare_dir().map_err(fail("prepare /run/netns"))?;
    let path = netns_path(name);
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => drop(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(NetnsError::Exists(name.to_string()))
        }
        Err(e) => return Err(fail("create its file under /run/netns")(e)),
    }
    let made = std::thread::scope(|s| {
        s.spawn(|| -> Result<(), NetnsError> {
            sys::unshare_netns().map_err(fail("unshare"))?;
            sys::bind_mount(Path::new("/proc/thread-self/ns/net"), &path)
                .map_err(fail("bind-mount it on /run/netns"))?;
            Rtnl::open()
                .and_then(|mut nl| nl.set_up("lo"))
                .map_err(|e| e.in_netns(name))?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    if made.is_err() {
        let _ = sys::umount_detach(&path);
        let _ = std::fs::remove_file(&path);
    }
    made
}

/// Deletes namespace `name` as `ip netns del` does: the namespace goes when
/// its last user (a process in it, an open fd) lets go.
pub fn delete(name: &str) -> Result<(), NetnsError> {
    validate_netns_name(name)?;
    let path: PathBuf = netns_path(name);
    // Not mounted (a stale file): removing the file is all there is to do.
    let _ = sys::umount_detach(&path);
    std::fs::remove_file(&path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            NetnsError::NoSuchNamespace(name.to_string())
        } else {
            NetnsError::Delete {
                name: name.to_string(),
                err: e,
            }
        }
    })
}
