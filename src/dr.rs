//! The two DR actions on the lab, and the RTO timeline each one measures.
//!
//! Relocate (planned): graceful guest shutdown (STOP record), demote on the old primary, sync barrier on
//! the demotion snapshot, promote on the new primary, boot there, verify.
//! Failover (primary lost): fence the old site, forced promote on the survivor, boot there (the guest runs
//! its crash recovery: a scan), verify.

use crate::clock::Wt;
use crate::env::lab::mirror;
use crate::env::lab::vm::{BootLog, Mode};
use crate::env::lab::{Lab, LabError};
use crate::fault::{Fault, Receipt};
use crate::oracle::{self, Ack, Bound, History, RegionalBound, Verdict};
use dr_probe::{boot_tag_hex, ScanReport};
use serde::Serialize;
use std::time::Duration;

/// Named points of a DR action, measured on the witness clock from the request (or the fault).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timeline {
    #[serde(skip)]
    pub t0: Wt,
    #[serde(skip)]
    vm: String,
    #[serde(skip)]
    action: String,
    /// (segment, ms since t0)
    pub marks: Vec<(String, f64)>,
}

impl Timeline {
    /// A timeline of `action` on `vm` whose first segment, `first`, is at `t0`. Every mark is also
    /// published on the event stream.
    pub fn starting(t0: Wt, first: &str, vm: &str, action: &str) -> Timeline {
        let mut tl = Timeline { t0, vm: vm.into(), action: action.into(), marks: vec![] };
        tl.mark_at(first, t0);
        tl
    }
    pub fn mark_at(&mut self, what: &str, at: Wt) {
        crate::events::publish_at(at, crate::events::Event::Dr { vm: self.vm.clone(), action: self.action.clone(), segment: what.into() });
        self.marks.push((what.into(), at.since(self.t0).as_secs_f64() * 1e3));
    }
    pub fn mark(&mut self, what: &str) {
        self.mark_at(what, Wt::now());
    }
    pub fn get(&self, what: &str) -> Option<f64> {
        self.marks.iter().find(|m| m.0 == what).map(|m| m.1)
    }
    pub fn render(&self) -> String {
        self.marks.iter().map(|(n, ms)| format!("{n} +{:.1}s", ms / 1e3)).collect::<Vec<_>>().join(", ")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionKind {
    Relocate,
    Failover,
}

/// What the oracle needs, frozen when the DR action ends, so that each verdict step judges it against its
/// own bound.
#[derive(Clone, Debug)]
pub struct Evidence {
    /// The writers the action is judged on: every boot up to the one running when the action started
    /// (a writer started by the action itself cannot own what was lost in it), each read to its end.
    pub history: History,
    pub scan: ScanReport,
    pub fault_at: Option<Wt>,
    pub stop_seq: Option<u64>,
    /// The Regional-DR promise (failover): declared bound, the checkpoint the survivor holds, the syncs.
    pub regional: Option<RegionalBound>,
}

impl Evidence {
    pub fn judge(&self, bound: &Bound) -> Verdict {
        oracle::judge(&self.history, &self.scan, self.fault_at, bound)
    }
    pub fn no_loss(&self) -> Verdict {
        self.judge(&Bound::NoLoss { stop: self.stop_seq })
    }
    /// The Regional-DR verdict; without a Regional-DR promise (a relocate) it cannot be judged.
    pub fn window(&self) -> Option<Verdict> {
        self.regional.clone().map(|b| self.judge(&Bound::Window(b)))
    }
    /// The verdict that fits the action: the window after a failover, no loss after a relocate.
    pub fn verdict(&self) -> Verdict {
        self.window().unwrap_or_else(|| self.no_loss())
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
    pub sync: Option<Duration>,
    pub promote_attempts: u32,
    pub snapshots_completed: usize,
    /// Snapshot commands or listings of the scheduler that failed.
    pub scheduler_errors: Vec<String>,
    /// Receipts of faults the action itself injected (fencing): the after hook recovers them.
    pub receipts: Vec<Receipt>,
}

/// The witness's record of `boots`: their acks tagged with the boot that made them, their STOP records,
/// and the lines it could not read.
pub fn history(boots: &[BootLog]) -> History {
    let mut h = History::default();
    for b in boots {
        let Some(tag) = b.boot_id().and_then(boot_tag_hex) else { continue };
        h.acks.extend(b.acks.iter().map(|(seq, at, _)| Ack { seq: *seq, at: *at, boot: tag }));
        h.stops.extend(b.stopped.map(|s| (tag, s.1)));
        h.garbled += b.garbled.len();
    }
    h
}

/// How far the verify scan reads: past the newest acknowledged record, with margin, within the disk.
fn scan_limit(lab: &Lab, boots: &[BootLog]) -> u64 {
    let max = boots.iter().flat_map(|b| b.acks.iter().map(|a| a.0)).max().unwrap_or(0);
    (max + 1 + 2048).min(lab.cfg.disk_records() + 1)
}

/// Boots on `site` in resume mode and measures boot, recovery scan and first new acknowledged write.
async fn boot_and_serve(lab: &mut Lab, vm: &str, site: usize, tl: &mut Timeline) -> Result<ScanReport, LabError> {
    lab.archive(vm).await?;
    let boots = lab.slot(vm)?.boots.clone();
    let limit = scan_limit(lab, &boots);
    let boot = lab.cfg.spec.budgets.boot.0;
    lab.boot(vm, site, Mode::Resume, limit).await?;
    let p = lab.running(vm)?;
    let hello = p.wait_for("the probe to start", boot, |g| g.hello.as_ref().map(|h| h.0)).await?;
    tl.mark_at("vm booted", hello);
    let (scanned, scan) = p.wait_for("the recovery scan", boot, |g| g.scan.clone()).await?;
    tl.mark_at("recovered", scanned);
    let first = p.wait_for("the first new acknowledged write", boot, |g| g.acks.first().map(|a| a.1)).await?;
    tl.mark_at("serving", first);
    Ok(scan)
}

/// Relocates the VM to `to`. With `barrier: false` (a negative control) the new primary is promoted by
/// force right after the demotion, without waiting for the demotion snapshot to reach it.
pub async fn relocate(lab: &mut Lab, vm: &str, to: usize, barrier: bool) -> Result<Outcome, LabError> {
    let from = lab.slot(vm)?.primary;
    if from == to {
        return Err(LabError::Usage(format!("VM {vm} is already primary on site {}", lab.sites[to].name)));
    }
    let budgets = lab.cfg.spec.budgets.clone();
    let mut tl = Timeline::starting(Wt::now(), "requested", vm, "relocate");
    let p = lab.running(vm)?;
    let (stopped_at, stop_seq) = p.graceful_stop(budgets.graceful_stop.0).await?;
    tl.mark_at("vm stopped", stopped_at);
    lab.archive(vm).await?;
    // the writers this relocate is judged on, read to their end
    let judged = history(&lab.slot(vm)?.boots);
    lab.stop_scheduler(vm)?;
    let image = lab.slot(vm)?.image.clone();
    let demotion = mirror::demote(&lab.sites[from], &image).await?;
    tl.mark("demoted");
    let (sync, attempts) = if barrier {
        let sync = mirror::wait_synced(&lab.sites[to], &image, demotion, budgets.sync_barrier.0).await?;
        tl.mark("synced");
        (Some(sync), mirror::promote(&lab.sites[to], &image, false, budgets.promote.0).await?)
    } else {
        (None, mirror::promote(&lab.sites[to], &image, true, budgets.promote.0).await?)
    };
    tl.mark("promoted");
    lab.slot(vm)?.primary = to;
    lab.slot(vm)?.primary_since = Wt::now();
    let scan = boot_and_serve(lab, vm, to, &mut tl).await?;
    lab.start_scheduler(vm)?;
    let slot = lab.slot(vm)?;
    let (snaps, errors) = {
        let g = slot.snaps.lock().unwrap();
        (g.snaps.iter().filter(|s| s.completed.is_some()).count(), g.errors.clone())
    };
    let evidence = Evidence { history: judged, scan, fault_at: None, stop_seq: Some(stop_seq), regional: None };
    Ok(Outcome {
        kind: ActionKind::Relocate,
        vm: vm.into(),
        from: lab.sites[from].name.clone(),
        to: lab.sites[to].name.clone(),
        timeline: tl,
        evidence,
        sync,
        promote_attempts: attempts,
        snapshots_completed: snaps,
        scheduler_errors: errors,
        receipts: vec![],
    })
}

/// Fails the VM over to `to`. `fault` is the receipt of the outage that took the primary (if a step
/// injected one); without it, the VM's I/O is halted abruptly here (its QEMU is killed) as fencing does.
pub async fn failover(lab: &mut Lab, vm: &str, to: usize, fault: Option<&Receipt>) -> Result<Outcome, LabError> {
    let from = lab.slot(vm)?.primary;
    if from == to {
        return Err(LabError::Usage(format!("VM {vm} is already primary on site {}", lab.sites[to].name)));
    }
    let budgets = lab.cfg.spec.budgets.clone();
    let repl = lab.cfg.spec.replication.clone();
    lab.stop_scheduler(vm)?;
    let fault_at = match fault {
        Some(r) => r.at,
        None => {
            let at = Wt::now();
            if let Some(p) = lab.slot(vm)?.process.as_mut() {
                p.kill().await;
            }
            at
        }
    };
    let mut tl = Timeline::starting(fault_at, "fault", vm, "failover");
    tl.mark("failover requested");
    lab.archive(vm).await?;
    // the writers this failover is judged on, read to their end: the resumed writer is not among them
    let judged = history(&lab.slot(vm)?.boots);
    // Fence: the old primary can no longer reach the survivor, whatever state it comes back in.
    let fence = lab.inject(Fault::Isolate { site: lab.sites[from].name.clone() }).await?;
    tl.mark("fenced");
    let image = lab.slot(vm)?.image.clone();
    // What the survivor holds: the newest mirror snapshot of the old primary complete there.
    let on_survivor = mirror::snaps(&lab.sites[to], &image).await?;
    let done = mirror::completed_on_peer(&on_survivor);
    let newest_complete = done.iter().copied().max();
    let from_name = lab.sites[from].name.clone();
    lab.slot(vm)?.snaps.lock().unwrap().complete_untimed(&from_name, &done);
    let attempts = mirror::promote(&lab.sites[to], &image, true, budgets.promote.0).await?;
    tl.mark("promoted");
    let since = lab.slot(vm)?.primary_since;
    lab.slot(vm)?.primary = to;
    lab.slot(vm)?.primary_since = Wt::now();
    let scan = boot_and_serve(lab, vm, to, &mut tl).await?;
    lab.start_scheduler(vm)?;
    let slot = lab.slot(vm)?;
    let period = Duration::from_secs_f64(1.0 / slot.rate.max(1) as f64);
    let (snaps, errors, regional) = {
        let g = slot.snaps.lock().unwrap();
        let checkpoint = newest_complete.and_then(|id| g.checkpoint(&from_name, id));
        let regional = RegionalBound { interval: repl.interval.0, allowance: repl.allowance(), period, checkpoint, syncs: g.syncs(&from_name, since) };
        (g.snaps.iter().filter(|s| s.completed.is_some()).count(), g.errors.clone(), regional)
    };
    let evidence = Evidence { history: judged, scan, fault_at: Some(fault_at), stop_seq: None, regional: Some(regional) };
    Ok(Outcome {
        kind: ActionKind::Failover,
        vm: vm.into(),
        from: from_name,
        to: lab.sites[to].name.clone(),
        timeline: tl,
        evidence,
        sync: None,
        promote_attempts: attempts,
        snapshots_completed: snaps,
        scheduler_errors: errors,
        receipts: vec![fence],
    })
}
