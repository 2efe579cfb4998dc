//! What a drill found, as plain data: the evidence a DR action froze, the outcome of each action and
//! repair, and each site's role as the storage reported it. Pure (a core module: reports read it without
//! importing the drill engine).

use crate::clock::Wt;
use crate::fault::Receipt;
use crate::oracle::{self, Bound, History, RegionalBound, Verdict};
use crate::timeline::{ActionKind, Timeline};
use dr_probe::ScanReport;

/// What the oracle needs, frozen when the DR action ends.
#[derive(Clone, Debug)]
pub struct Evidence {
    pub history: History,
    pub scan: ScanReport,
    pub fault_at: Option<Wt>,
    /// The STOP record of the graceful shutdown (relocate).
    pub stop_seq: Option<u64>,
    /// What the action promised (its bound).
    pub bound: Bound,
}

impl Evidence {
    pub fn judge(&self, bound: &Bound) -> Verdict {
        oracle::judge(&self.history, &self.scan, self.fault_at, bound)
    }
    /// Judged against "nothing acknowledged is lost" (and the STOP record, after a graceful shutdown).
    pub fn no_loss(&self) -> Verdict {
        self.judge(&Bound::NoLoss { stop: self.stop_seq })
    }
    /// Judged against the action's own promise.
    pub fn verdict(&self) -> Verdict {
        self.judge(&self.bound)
    }
    /// The Regional-DR promise, if the action made one.
    pub fn regional(&self) -> Option<&RegionalBound> {
        match &self.bound {
            Bound::Window(b) => Some(b),
            Bound::NoLoss { .. } => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub kind: ActionKind,
    pub vm: String,
    pub from: String,
    pub to: String,
    pub timeline: Timeline,
    pub evidence: Evidence,
    /// The driver's own facts.
    pub details: serde_json::Value,
    /// Receipts of faults the action itself injected (fencing): the after hook recovers them.
    pub receipts: Vec<Receipt>,
    /// From when the old primary must not write any more: the fence (or, unfenced, the failover request).
    pub fence_at: Option<Wt>,
    /// The writer boot left running on a site the harness could not reach (frozen), by tag.
    pub abandoned: Option<u64>,
    /// Each site's role for the VM's disk after the action, from the storage's own view.
    pub roles: Vec<SiteRole>,
    /// A disk cloned from the golden image: its golden blocks as the VM's new site read them when the action
    /// ended (or why they could not be read). None: not a clone.
    pub golden: Option<Result<crate::golden::GoldenCheck, String>>,
}

/// A lost site come back and the pair repaired: what was undone, the repair's marks, the driver's facts.
#[derive(Clone, Debug)]
pub struct Repair {
    pub site: String,
    pub timeline: Timeline,
    pub details: Vec<serde_json::Value>,
}

/// A site's role for a VM's disk, from the storage's own view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Its copy takes the VM's writes (Regional: the primary image; Metro: the site the VM's clients are on).
    Primary,
    /// Its copy follows the primary (a non-primary image, replaying).
    Secondary,
    /// The storage there could not be asked (the site is down or cut off), or holds no copy.
    Unknown,
}

/// One site's role, with what the storage said.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SiteRole {
    pub site: String,
    pub role: Role,
    pub detail: String,
}

/// A role from a state a Kubernetes object reports (`Primary`, `Secondary`, anything else Unknown). Pure.
pub fn role_of(state: Option<&str>) -> Role {
    match state {
        Some(s) if s.eq_ignore_ascii_case("primary") => Role::Primary,
        Some(s) if s.eq_ignore_ascii_case("secondary") => Role::Secondary,
        _ => Role::Unknown,
    }
}

/// Two sites primary for one disk: a split brain, by name. Pure.
pub fn split_brain(vm: &str, roles: &[SiteRole]) -> Option<String> {
    let primaries: Vec<&str> = roles.iter().filter(|r| r.role == Role::Primary).map(|r| r.site.as_str()).collect();
    (primaries.len() > 1).then(|| {
        format!(
            "split brain: sites {} are all primary for VM {vm}'s disk ({})",
            primaries.join(" and "),
            roles.iter().map(|r| format!("{}: {}", r.site, r.detail)).collect::<Vec<_>>().join("; ")
        )
    })
}

/// A split brain among the sites that can serve: a primary on a site still lost to an outage (`out`: powered
/// off, frozen, cut off) is the stale primary a Regional-DR failover leaves until the site comes back and
/// is repaired, not a second writer. Pure.
pub fn split_brain_among(vm: &str, roles: &[SiteRole], out: &[String]) -> Option<String> {
    let serving: Vec<SiteRole> = roles.iter().filter(|r| !out.contains(&r.site)).cloned().collect();
    split_brain(vm, &serving).map(|sb| format!("{sb}; roles: {}", roles.iter().map(|r| format!("{}: {}", r.site, r.detail)).collect::<Vec<_>>().join("; ")))
}

/// `site` is the only primary of the VM's disk, or why not. Pure.
pub fn only_primary(vm: &str, site: &str, roles: &[SiteRole]) -> Result<(), String> {
    if let Some(sb) = split_brain(vm, roles) {
        return Err(sb);
    }
    match roles.iter().find(|r| r.site == site) {
        Some(r) if r.role == Role::Primary => Ok(()),
        Some(r) => Err(format!("site {site} is not VM {vm}'s primary: {:?} ({})", r.role, r.detail)),
        None => Err(format!("the storage reported no role for site {site} (roles: {roles:?})")),
    }
}
