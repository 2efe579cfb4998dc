//! Faults as plain data. Injecting one returns a receipt; the scenario's after hook hands every receipt
//! back for recovery, which is idempotent (recovering what is already recovered does nothing).

use crate::clock::Wt;
use crate::units::Dur;
use serde::Serialize;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Fault {
    /// Every process of the site dies at once (SIGKILL): its Ceph daemons and its VMs.
    PowerLoss { site: String },
    /// One storage host of the site loses power: its second OSD host's daemons die (SIGKILL); the site's
    /// other host, its monitors and its VMs keep running.
    HostLoss { site: String },
    /// Every process of the site is stopped where it stands (SIGSTOP), keeping its state; recovered by
    /// thawing it (SIGCONT).
    Freeze { site: String },
    /// The site's rbd-mirror daemon is killed: nothing more is replicated to that site.
    StopReplication { site: String },
    /// The site's rbd-mirror daemon is frozen (SIGSTOP): replication to the site stalls, then catches up
    /// when it is thawed (SIGCONT). Replication slowed, not stopped.
    PauseReplication { site: String },
    /// The site's link to the other site goes down.
    Isolate { site: String },
    /// Packets from one site to the other take `delay` longer, plus up to `jitter` (one way).
    Latency { from: String, to: String, delay: Dur, jitter: Dur },
    /// A share of the packets from one site to the other is lost, in thousandths.
    Loss { from: String, to: String, permille: u32 },
    /// Packets from one site to the other are paced to `bps` bits per second.
    RateLimit { from: String, to: String, bps: u64 },
    /// Nothing passes between the two sites, either way.
    Partition { a: String, b: String },
}

impl Fault {
    /// The same fault, whichever way a symmetric one is named (`a and b` partitioned is `b and a`).
    pub fn same_as(&self, other: &Fault) -> bool {
        match (self, other) {
            (Fault::Partition { a, b }, Fault::Partition { a: c, b: d }) => (a == c && b == d) || (a == d && b == c),
            _ => self == other,
        }
    }

    /// Does this fault take `site` out of service (its primary lost): its power lost, frozen, cut off, or
    /// partitioned from a peer?
    pub fn takes(&self, site: &str) -> bool {
        match self {
            Fault::PowerLoss { site: s } | Fault::Freeze { site: s } | Fault::Isolate { site: s } => s == site,
            Fault::Partition { a, b } => a == site || b == site,
            _ => false,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::PowerLoss { site } => write!(f, "cut the power of site {site}"),
            Fault::HostLoss { site } => write!(f, "cut the power of a storage host of site {site}"),
            Fault::Freeze { site } => write!(f, "freeze site {site}"),
            Fault::StopReplication { site } => write!(f, "stop replication to site {site}"),
            Fault::PauseReplication { site } => write!(f, "pause replication to site {site}"),
            Fault::Isolate { site } => write!(f, "isolate site {site}"),
            Fault::Latency { from, to, delay, jitter } => write!(f, "delay packets from site {from} to site {to} by {delay} (jitter {jitter})"),
            Fault::Loss { from, to, permille } => write!(f, "lose {:.1}% of the packets from site {from} to site {to}", *permille as f64 / 10.0),
            Fault::RateLimit { from, to, bps } => write!(f, "limit the link from site {from} to site {to} to {:.1} Mbit/s", *bps as f64 / 1e6),
            Fault::Partition { a, b } => write!(f, "partition sites {a} and {b}"),
        }
    }
}

/// Proof that a fault was injected, and when (witness clock).
#[derive(Clone, Debug, Serialize)]
pub struct Receipt {
    pub fault: Fault,
    pub at: Wt,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_the_same_either_way_and_outages_take_their_site() {
        let ab = Fault::Partition { a: "a".into(), b: "b".into() };
        assert!(ab.same_as(&Fault::Partition { a: "b".into(), b: "a".into() }));
        assert!(!ab.same_as(&Fault::Partition { a: "a".into(), b: "c".into() }));
        assert!(ab.takes("a") && ab.takes("b") && !ab.takes("c"));
        assert!(Fault::PowerLoss { site: "a".into() }.takes("a"));
        assert!(!Fault::StopReplication { site: "a".into() }.takes("a"));
    }
}
