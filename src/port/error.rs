//! Errors of the port backends: one variant per step that can fail, each with
//! the interface name and what the user can do about it.

use std::io;

/// Opening, configuring or reading a port failed.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("invalid interface name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    #[error("no interface named {name}")]
    NoSuchInterface { name: String },
    #[error("cannot {step} for {name}: permission denied (needs CAP_NET_ADMIN, CAP_NET_RAW: run as root)")]
    PermissionDenied { step: &'static str, name: String },
    #[error("cannot {step} for {name}: {source}")]
    Setup {
        step: &'static str,
        name: String,
        #[source]
        source: io::Error,
    },
    /// A TAP device whose queue another process (a VM, another switch)
    /// holds: the kernel lets only one attach to a single-queue TAP.
    #[error(
        "interface {name} is busy: another process (a VM or another switch) holds its TAP queue"
    )]
    Busy { name: String },
    #[error("interface {name} vanished")]
    Vanished { name: String },
    #[error("cannot receive on {name}: {source}")]
    Recv {
        name: String,
        #[source]
        source: io::Error,
    },
}

impl PortError {
    /// Classifies an OS error of `step` on `name`, turning EPERM/EACCES into
    /// the message that says which capability is missing.
    pub fn setup(step: &'static str, name: &str, source: io::Error) -> PortError {
        match source.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => PortError::PermissionDenied {
                step,
                name: name.to_string(),
            },
            Some(libc::ENODEV) => PortError::NoSuchInterface {
                name: name.to_string(),
            },
            _ => PortError::Setup {
                step,
                name: name.to_string(),
                source,
            },
        }
    }

    pub fn is_vanished(&self) -> bool {
        matches!(self, PortError::Vanished { .. })
    }
}

/// Why a frame was not handed to the kernel.
#[derive(Debug)]
pub enum SendError {
    /// The socket or queue is full (EAGAIN / ENOBUFS).
    WouldBlock,
    /// Larger than the link takes (EMSGSIZE).
    TooBig,
    /// The link is down (ENETDOWN / ENXIO while the device exists).
    LinkDown,
    /// The device is gone.
    Vanished,
    Io(io::Error),
}
