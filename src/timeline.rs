//! The RTO timeline of a DR action: named points on the witness clock, measured from the request (relocate)
//! or the fault (failover). Pure: marks are data; publishing them is the caller's business.

use crate::clock::Wt;
use serde::{Serialize, Serializer};
use std::fmt;

/// The points a DR action passes. Backends mark the ones they pass; the orchestration marks the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    Requested,
    Fault,
    FailoverRequested,
    VmStopped,
    Demoted,
    Synced,
    Fenced,
    /// The lost site's storage clients cut off (blocklisted).
    StorageFenced,
    Promoted,
    VmBooted,
    Recovered,
    Serving,
    /// A lost site's outage undone (powered on, thawed, reconnected, healed).
    SiteBack,
    /// The returned site's image asked to resync from the primary.
    ResyncRequested,
    /// The returned site replays again: a snapshot taken after the resync began is complete there.
    Resynced,
    /// The returned site's storage fence lifted.
    Unfenced,
    /// Every placement group clean with a replica on each data site again.
    Clean,
    /// Ceph stretch mode: the cluster went on with one data site (degraded stretch mode).
    DegradedStretch,
    /// Every placement group active on the survivor without the lost site's OSDs: it can serve alone.
    StorageServes,
    /// RBD forced promote: the orphan snapshot that tells rbd-mirror to stop replaying is written.
    OrphanSnapshot,
    /// RBD forced promote: rbd-mirror on the survivor let go of the image (its watch gone).
    ReplayerReleased,
    /// RBD forced promote: the image rolled back to the newest snapshot complete there.
    RolledBack,
}

impl Segment {
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Requested => "requested",
            Segment::Fault => "fault",
            Segment::FailoverRequested => "failover requested",
            Segment::VmStopped => "vm stopped",
            Segment::Demoted => "demoted",
            Segment::Synced => "synced",
            Segment::Fenced => "fenced",
            Segment::StorageFenced => "storage fenced",
            Segment::Promoted => "promoted",
            Segment::VmBooted => "vm booted",
            Segment::Recovered => "recovered",
            Segment::Serving => "serving",
            Segment::SiteBack => "site back",
            Segment::ResyncRequested => "resync requested",
            Segment::Resynced => "resynced",
            Segment::Unfenced => "unfenced",
            Segment::Clean => "clean",
            Segment::DegradedStretch => "degraded stretch",
            Segment::StorageServes => "storage serves",
            Segment::OrphanSnapshot => "orphan snapshot",
            Segment::ReplayerReleased => "rbd-mirror released",
            Segment::RolledBack => "rolled back",
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Segment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionKind {
    Relocate,
    Failover,
    /// Not a DR action: a lost site comes back and the pair is repaired.
    Repair,
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActionKind::Relocate => "relocate",
            ActionKind::Failover => "failover",
            ActionKind::Repair => "repair",
        })
    }
}

/// Marks of one DR action: (segment, ms since `t0`), in the order they were passed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    #[serde(skip)]
    pub t0: Wt,
    pub marks: Vec<(Segment, f64)>,
}

impl Timeline {
    /// A timeline whose first segment is at `t0`.
    pub fn starting(t0: Wt, first: Segment) -> Timeline {
        Timeline { t0, marks: vec![(first, 0.0)] }
    }
    pub fn mark_at(&mut self, what: Segment, at: Wt) {
        self.marks.push((what, at.since(self.t0).as_secs_f64() * 1e3));
    }
    /// When `what` was passed, ms after t0.
    pub fn get(&self, what: Segment) -> Option<f64> {
        self.marks.iter().find(|m| m.0 == what).map(|m| m.1)
    }
    /// When `what` was passed, on the witness clock.
    pub fn at(&self, what: Segment) -> Option<Wt> {
        self.get(what).map(|ms| Wt(self.t0.0 + (ms * 1e6).round() as u64))
    }
    pub fn render(&self) -> String {
        self.marks.iter().map(|(n, ms)| format!("{n} +{:.1}s", ms / 1e3)).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_relative_to_the_start_and_serialize_by_name() {
        let mut t = Timeline::starting(Wt::from_ms(1000), Segment::Fault);
        t.mark_at(Segment::Promoted, Wt::from_ms(5200));
        t.mark_at(Segment::Serving, Wt::from_ms(9000));
        assert_eq!(t.get(Segment::Serving), Some(8000.0));
        assert_eq!(t.get(Segment::Synced), None);
        assert_eq!(t.at(Segment::Promoted), Some(Wt::from_ms(5200)));
        assert_eq!(t.at(Segment::Synced), None);
        assert_eq!(t.render(), "fault +0.0s, promoted +4.2s, serving +8.0s");
        assert_eq!(serde_json::to_value(&t).unwrap()["marks"][2], serde_json::json!(["serving", 8000.0]));
    }
}
