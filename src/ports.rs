//! The ports: what an environment can do, one small interface per axis, one implementation per backend.
//! The drill's orchestration (`drill`) knows only these; a new backend (a Metro-DR lab, kind, a user's
//! clusters) is a new implementation of one or more of them, not an edit across the tree.
//!
//! - `Workload`: a VM running the probe on a site: start, acks, graceful stop, halt, resume, evidence.
//! - `Faults` (+ `Infrastructure`, its lifecycle): inject a fault for a receipt; idempotent recovery.
//! - `DrDriver`: provision a protected disk, relocate and failover requests, and the promise each makes.
//! - `Topology` (in `topology`): sites, peers, failure domains and storage clusters (plain data).

use crate::clock::Wt;
use crate::error::EnvError;
use crate::events::{Bus, Event};
use crate::fault::{Fault, Proof, Receipt};
use crate::oracle::{Checkpoint, History, SyncSample};
use crate::timeline::{ActionKind, Segment, Timeline};
use async_trait::async_trait;
use dr_probe::ScanReport;
use std::time::Duration;

/// A VM's disk as the DR driver provisioned it (lab: an RBD image; Kubernetes: a PVC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
}

/// A graceful shutdown: the STOP record was written durably and acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    pub at: Wt,
    pub seq: u64,
}

/// A VM back in service after a DR action: booted, its crash recovery (a scan of the disk) done, writing.
#[derive(Clone, Debug)]
pub struct Served {
    pub booted: Wt,
    pub recovered: Wt,
    pub scan: ScanReport,
    pub serving: Wt,
}

/// One VM to boot: where, from which disk.
#[derive(Clone, Copy, Debug)]
pub struct Boot<'a> {
    pub vm: &'a str,
    pub site: &'a str,
    pub volume: &'a Volume,
}

#[async_trait]
pub trait Workload: Send {
    /// Boots `vm` writing `rate` records/s on `site` from `volume`; returns once its first write is
    /// acknowledged.
    async fn start(&mut self, vm: &str, site: &str, volume: &Volume, rate: u32) -> Result<(), EnvError>;
    /// Waits until the current boot has acknowledged `n` records.
    async fn wait_acks(&mut self, vm: &str, n: u64, deadline: Duration) -> Result<(), EnvError>;
    /// Still writing?
    fn writing(&self, vm: &str) -> Result<bool, EnvError>;
    /// Records per second the VM writes.
    fn rate(&self, vm: &str) -> Result<u32, EnvError>;
    /// Graceful shutdown: the guest writes its STOP record and powers off.
    async fn graceful_stop(&mut self, vm: &str) -> Result<Stopped, EnvError>;
    /// I/O halted abruptly: the VM is killed if it still runs (it may be gone already with its site).
    /// Returns once every line it sent before dying has reached the witness.
    async fn halt(&mut self, vm: &str) -> Result<(), EnvError>;
    /// Boots `vm` on `site` after a DR action: crash recovery (scan), then the first new acknowledged write.
    async fn resume(&mut self, vm: &str, site: &str, volume: &Volume) -> Result<Served, EnvError>;
    /// Starts several VMs as [`Workload::start`] does, each judged on its own (one after the other unless
    /// the backend boots them side by side).
    async fn start_all(&mut self, vms: &[Boot<'_>], rate: u32) -> Vec<Result<(), EnvError>> {
        let mut out = vec![];
        for b in vms {
            out.push(self.start(b.vm, b.site, b.volume, rate).await);
        }
        out
    }
    /// Resumes several VMs as [`Workload::resume`] does (an application failed over or relocated at once);
    /// each VM's times are its own.
    async fn resume_all(&mut self, vms: &[Boot<'_>]) -> Vec<Result<Served, EnvError>> {
        let mut out = vec![];
        for b in vms {
            out.push(self.resume(b.vm, b.site, b.volume).await);
        }
        out
    }
    /// `disks` are the disks of one VM (several disks, one machine): from now on they boot together, and a
    /// graceful stop of one asks every one of them for its STOP record. Backends that boot one disk per
    /// machine refuse (the capabilities keep such scenarios off them).
    fn one_machine(&mut self, disks: &[String]) -> Result<(), EnvError> {
        Err(EnvError::Usage(format!("this workload boots one disk per VM, not {} disks as one VM", disks.len())))
    }
    /// The VM's site cannot be reached (frozen): the harness cannot stop the VM, so its boot is left where
    /// it stands, still watched by the witness; the next boot of the VM runs beside it. Returns its tag.
    async fn abandon(&mut self, vm: &str) -> Result<u64, EnvError>;
    /// The site is back: the boots of `vm` left behind there (frozen when it was lost) are cleaned up as the
    /// operator would before the site rejoins (killed, read to their end, kept as evidence).
    async fn retire(&mut self, vm: &str, site: &str);
    /// Is the abandoned boot `tag` of `vm` still running (so still trying to write)?
    fn abandoned_alive(&self, vm: &str, tag: u64) -> Result<bool, EnvError>;
    /// Graceful stop of the running boot (if any), then a verify boot on `site`: the disk as it is there.
    async fn verify(&mut self, vm: &str, site: &str, volume: &Volume) -> Result<ScanReport, EnvError>;
    /// Every writer boot started at or after `since` (all with None), abandoned ones included, each read
    /// to its end (running boots: their acks so far); the others' tags as not judged.
    fn history(&self, vm: &str, since: Option<Wt>) -> Result<History, EnvError>;
    /// Negative control: damages record `seq` (from 1) through a guest on `site`, then verifies the disk.
    /// Returns only the scan: the history a DR action froze is not the damage's to change.
    async fn damage(&mut self, vm: &str, site: &str, volume: &Volume, seq: u64) -> Result<ScanReport, EnvError>;
    /// End of a scenario: the VM stops; its evidence stays.
    async fn stop(&mut self, vm: &str);
    /// Peak resident memory of the VMs, bytes.
    fn rss_bytes(&self) -> u64;
    /// The serial console files of `vm`'s boots (for the gather of a failed scenario); none where the
    /// backend has no console of its own.
    fn consoles(&self, _vm: &str) -> Vec<std::path::PathBuf> {
        vec![]
    }
    async fn shutdown(&mut self);
}

#[async_trait]
pub trait Faults: Send {
    /// Injects a fault and shows it in effect, from outside the faulted site, before giving its receipt
    /// (the receipt is what `recover` takes back). A fault that cannot be shown in effect is an error
    /// (`EnvError::FaultUnproven`, the harness's), never a receipt.
    async fn inject(&mut self, fault: Fault) -> Result<Receipt, EnvError>;
    /// Undoes a fault and shows it gone. Idempotent: recovering what is already recovered does nothing
    /// (and shows it gone again).
    async fn recover(&mut self, receipt: &Receipt) -> Result<Proof, EnvError>;
}

/// The sites themselves: their faults and their lifecycle.
#[async_trait]
pub trait Infrastructure: Faults {
    /// One line on what is up.
    fn describe(&self) -> String;
    /// Where a kept environment is, for `--keep`.
    fn kept_at(&self) -> String;
    /// Peak resident memory of the sites' daemons, bytes.
    fn rss_bytes(&self) -> u64;
    /// Round trips over the network from site `from` to site `to`, `samples` of them.
    async fn round_trips(&mut self, from: &str, to: &str, samples: u32) -> Result<Vec<Duration>, EnvError>;
    /// Ceph stretch mode's evidence at or after `since`: its flags as sampled, the monitors' elections from
    /// their logs. None: the environment has no stretch mode.
    async fn stretch(&mut self, _since: Wt) -> Option<crate::stretch::Evidence> {
        None
    }
    /// A failed scenario's gather: the sites' state now and their logs from `since` on, written under
    /// `dir`. Returns what was gathered (`file: what it holds`) and, apart, what could not be (`why`), each
    /// one line. Every item is bounded in time: a site that cannot answer costs its deadline once.
    async fn gather(&mut self, _dir: &std::path::Path, _since: Wt) -> Gathered {
        Gathered { items: vec![], missing: vec!["this backend gathers nothing of its sites".into()] }
    }
    async fn down(&mut self);
}

pub use crate::report::Gathered;

/// What a DR action promises about the data.
#[derive(Clone, Debug, PartialEq)]
pub enum Promise {
    /// Every acknowledged record survives (relocate; Metro-DR failover).
    NoLoss,
    /// Regional-DR failover: the declared bound, the checkpoint the survivor holds, the replication rounds.
    /// `warmup`: how long the first round may take (see `config::warmup`).
    /// `rollback`: what the storage's forced promote said it rolled back to, if it said.
    Window { interval: Duration, allowance: Duration, warmup: Duration, checkpoint: Option<Checkpoint>, syncs: Vec<SyncSample>, rollback: Option<String> },
}

pub use crate::outcome::{only_primary, role_of, split_brain, split_brain_among, Role, SiteRole};

/// What a driver reports of a DR action: its promise and its own facts (for the summary).
#[derive(Clone, Debug)]
pub struct DriverReport {
    pub promise: Promise,
    /// Driver-specific facts (RBD: sync barrier, promote attempts, snapshots completed, scheduler errors).
    pub details: serde_json::Value,
}

#[async_trait]
pub trait DrDriver: Send {
    /// A protected disk for `vm`, primary on `site`, replicated as the environment says.
    async fn provision(&mut self, vm: &str, site: &str) -> Result<Volume, EnvError>;
    fn volume(&self, vm: &str) -> Result<Volume, EnvError>;
    /// The site whose copy of the disk is primary.
    fn primary(&self, vm: &str) -> Result<String, EnvError>;
    /// Planned move (the VM is stopped): make `to` primary with everything the old primary had. With
    /// `barrier: false` (a negative control) `to` is promoted by force without waiting for the last sync.
    async fn relocate(&mut self, vm: &str, to: &str, barrier: bool, m: &mut Marker) -> Result<DriverReport, EnvError>;
    /// The primary was lost at `fault_at`: make `to` primary with what it holds. With `fence` the lost
    /// site's access to the storage is cut first (where the driver fences); without it (a negative control)
    /// a site that comes back can still write.
    async fn failover(&mut self, vm: &str, to: &str, fault_at: Wt, fence: bool, m: &mut Marker) -> Result<DriverReport, EnvError>;
    /// Relocates several VMs at once (an application's planned move; the VMs are stopped), each with its
    /// own marker and result: one after the other unless the backend does them side by side.
    async fn relocate_all(&mut self, vms: &[&str], to: &str, barrier: bool, ms: &mut [Marker]) -> Vec<Result<DriverReport, EnvError>> {
        let mut out = vec![];
        for (vm, m) in vms.iter().zip(ms.iter_mut()) {
            out.push(self.relocate(vm, to, barrier, m).await);
        }
        out
    }
    /// Each VM's roles as [`DrDriver::roles`] reads them, asked side by side where the backend can (a lost
    /// site that never answers costs its timeout once, not once per VM).
    async fn roles_all(&mut self, vms: &[&str]) -> Vec<Result<Vec<SiteRole>, EnvError>> {
        let mut out = vec![];
        for vm in vms {
            out.push(self.roles(vm).await);
        }
        out
    }
    /// Fails several VMs over at once (an application's, as Ramen moves it), each with its own marker and
    /// its own result: one after the other unless the backend does them side by side.
    async fn failover_all(&mut self, vms: &[&str], to: &str, fault_at: Wt, fence: bool, ms: &mut [Marker]) -> Vec<Result<DriverReport, EnvError>> {
        let mut out = vec![];
        for (vm, m) in vms.iter().zip(ms.iter_mut()) {
            out.push(self.failover(vm, to, fault_at, fence, m).await);
        }
        out
    }
    /// `vm`'s disk snapshotted `phase` after the rounds of the run's other disks (the disks of a VM
    /// snapshotted independently, not together). false: the backend cannot (its snapshots are not the
    /// harness's to time).
    fn stagger(&mut self, _vm: &str, _phase: Duration) -> bool {
        false
    }
    /// Negative control: a disk for `vm` on `site` that is never replicated (a volume the application's
    /// protection does not select). None: the backend cannot do it.
    async fn provision_unmirrored(&mut self, _vm: &str, _site: &str) -> Option<Result<Volume, EnvError>> {
        None
    }
    /// A disk for `vm` on `site` cloned from the environment's golden image (made, checked and protected
    /// on first use, as a CDI golden image is), its clone protected as `provision` protects a disk. Returns
    /// where the golden pattern sits on it. None: the backend cannot.
    async fn provision_clone(&mut self, _vm: &str, _site: &str) -> Option<Result<(Volume, crate::golden::GoldenLayout), EnvError>> {
        None
    }
    /// The golden span of `vm`'s disk as `site` reads it now (through the clone's parent there). None: the
    /// backend cannot.
    async fn read_golden(&mut self, _vm: &str, _site: &str) -> Option<Result<Vec<u8>, EnvError>> {
        None
    }
    /// Waits until `to` holds a copy of everything `vm` had acknowledged at `since` (Regional-DR: a mirror
    /// snapshot taken at or after `since` complete on `to`; Metro-DR: every placement group clean on both
    /// sites). The deadline is the driver's, from what the environment declares. Returns what proves it.
    async fn replicated(&mut self, vm: &str, to: &str, since: Wt) -> Result<String, EnvError>;
    /// The VM serves on its new primary: protection resumes from there.
    async fn serving(&mut self, vm: &str) -> Result<(), EnvError>;
    /// Each site's role for the VM's disk, from the storage's own view (not the driver's bookkeeping).
    async fn roles(&mut self, vm: &str) -> Result<Vec<SiteRole>, EnvError>;
    /// `site` is back (its outage undone): the pair is repaired the way the DR operator does, each step
    /// marked (Regional-DR: the stale primary demoted and, with `resync`, resynced from the primary and
    /// awaited; Metro-DR: the site's fence lifted and its replicas clean again). Returns the driver's facts.
    async fn repair(&mut self, vm: &str, site: &str, resync: bool, m: &mut Marker) -> Result<serde_json::Value, EnvError>;
    /// A failed scenario's gather of the DR objects of `vms` under `dir` (on clusters: their
    /// DRPlacementControls, VolumeReplicationGroups, VolumeReplications, VirtualMachines and the namespace's
    /// events). The lab's and the simulation's state is the sites' (see [`Infrastructure::gather`]).
    async fn gather(&mut self, _dir: &std::path::Path, _vms: &[String]) -> Gathered {
        Gathered::default()
    }
    /// End of a scenario: stop protecting `vm`.
    async fn release(&mut self, vm: &str);
    async fn shutdown(&mut self);
}

/// The timeline of a DR action being marked, each mark published on the run's event stream as it happens.
pub struct Marker {
    pub timeline: Timeline,
    bus: Bus,
    vm: String,
    action: ActionKind,
}

impl Marker {
    pub fn new(bus: Bus, vm: &str, action: ActionKind, t0: Wt, first: Segment) -> Marker {
        let mut m = Marker { timeline: Timeline { t0, marks: vec![] }, bus, vm: vm.into(), action };
        m.mark_at(first, t0);
        m
    }
    pub fn mark_at(&mut self, what: Segment, at: Wt) {
        self.bus.publish_at(at, Event::Dr { vm: self.vm.clone(), action: self.action.to_string(), segment: what.to_string() });
        self.timeline.mark_at(what, at);
    }
    pub fn mark(&mut self, what: Segment) {
        self.mark_at(what, Wt::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(site: &str, role: Role) -> SiteRole {
        SiteRole { site: site.into(), role, detail: format!("{role:?}") }
    }

    #[test]
    fn two_primaries_are_a_split_brain_named() {
        let ok = [role("a", Role::Secondary), role("b", Role::Primary)];
        assert_eq!(split_brain("vm0", &ok), None);
        assert!(only_primary("vm0", "b", &ok).is_ok());
        assert!(only_primary("vm0", "a", &ok).unwrap_err().contains("site a is not VM vm0's primary"));
        let both = [role("a", Role::Primary), role("b", Role::Primary)];
        assert!(split_brain("vm0", &both).unwrap().starts_with("split brain: sites a and b are all primary for VM vm0's disk"));
        assert!(only_primary("vm0", "b", &both).unwrap_err().starts_with("split brain"));
        // a site that cannot be asked is no second primary
        assert!(only_primary("vm0", "b", &[role("a", Role::Unknown), role("b", Role::Primary)]).is_ok());
        // nor is the stale primary of a site still cut off; once it is back, it is a split brain
        assert_eq!(split_brain_among("vm0", &both, &["a".to_string()]), None);
        assert!(split_brain_among("vm0", &both, &[]).unwrap().starts_with("split brain: sites a and b"));
    }
}
