//! Faults as plain data. Injecting one returns a receipt; the scenario's after hook hands every receipt
//! back for recovery, which is idempotent (recovering what is already recovered does nothing).

use crate::clock::Wt;
use serde::Serialize;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Fault {
    /// Every process of the site dies at once (SIGKILL): its Ceph daemons and its VMs.
    PowerLoss { site: String },
    /// The site's rbd-mirror daemon is killed: nothing more is replicated to that site.
    StopReplication { site: String },
    /// The site's rbd-mirror daemon is frozen (SIGSTOP): replication to the site stalls, then catches up
    /// when it is thawed (SIGCONT). Replication slowed, not stopped.
    PauseReplication { site: String },
    /// The site's link to the other site goes down.
    Isolate { site: String },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::PowerLoss { site } => write!(f, "cut the power of site {site}"),
            Fault::StopReplication { site } => write!(f, "stop replication to site {site}"),
            Fault::PauseReplication { site } => write!(f, "pause replication to site {site}"),
            Fault::Isolate { site } => write!(f, "isolate site {site}"),
        }
    }
}

/// Proof that a fault was injected, and when (witness clock).
#[derive(Clone, Debug, Serialize)]
pub struct Receipt {
    pub fault: Fault,
    pub at: Wt,
}
