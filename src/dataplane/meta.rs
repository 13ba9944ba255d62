//! Who a port is beyond its I/O, and what the dataplane tells its owner on
//! its own: plain types shared by the handle, the thread's state and the
//! daemon, so that neither imports the other.

use serde::{Deserialize, Serialize};

use crate::port::Port;
use crate::switch::PortPolicy;

/// Who a port is, beyond its I/O.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMeta {
    /// Unique within the switch; what users type.
    pub name: String,
    /// The namespace the port was plugged into, if any.
    pub netns: Option<String>,
    pub policy: PortPolicy,
}

/// Something the dataplane did on its own.
#[derive(Debug, Clone)]
pub enum DataplaneEvent {
    PortRemoved {
        name: String,
        netns: Option<String>,
        reason: String,
    },
}

/// Every port, handed back when the dataplane thread ends.
pub type ReturnedPorts = Vec<(PortMeta, Box<dyn Port>)>;
