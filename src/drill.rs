//! The two DR actions as sequences over the ports, whatever the backend:
//!
//! - relocate (planned): graceful stop (STOP record) -> the driver moves the disk (demote, barrier, promote
//!   on RBD mirroring) -> boot on the target (recovery scan, first new write) -> evidence + the driver's
//!   promise (no loss);
//! - failover (primary lost): I/O halted (by the fault, or here) -> the lost site fenced -> the driver
//!   makes the survivor primary -> boot there -> evidence + the promise (a window for Regional-DR).
//!
//! The evidence is frozen when the action ends: the writers up to the action, each read to its end, so a
//! writer started by the action cannot own what was lost in it.

use crate::clock::Wt;
use crate::env::Environment;
use crate::error::EnvError;
use crate::fault::{Fault, Receipt};
use crate::oracle::{Bound, RegionalBound};
use crate::ports::{Marker, Promise};
use crate::timeline::{ActionKind, Segment};
use dr_probe::ScanReport;
use std::time::Duration;

pub use crate::outcome::{Evidence, Outcome, Repair};

/// The bound a driver's promise stands for, once the orchestration knows the write period and the STOP.
fn bound(p: Promise, period: Duration, stop: Option<u64>) -> Bound {
    match p {
        Promise::NoLoss => Bound::NoLoss { stop },
        Promise::Window { interval, allowance, warmup, checkpoint, syncs, rollback } => {
            Bound::Window(RegionalBound { interval, allowance, period, checkpoint, syncs, warmup, rollback })
        }
    }
}

fn period(rate: u32) -> Duration {
    Duration::from_secs_f64(1.0 / rate.max(1) as f64)
}

/// One VM's part of a DR action over several (an application's): its marks, the evidence frozen so far,
/// or the error that stopped it (the others go on).
struct Leg {
    vm: String,
    /// Its marker (lent to the driver while it acts).
    m: Option<Marker>,
    failed: Option<EnvError>,
    history: Option<crate::oracle::History>,
    rate: u32,
    report: Option<crate::ports::DriverReport>,
    scan: Option<ScanReport>,
    stopped: Option<crate::ports::Stopped>,
    abandoned: Option<u64>,
}

impl Leg {
    fn new(env: &Environment, vm: &str, action: ActionKind, t0: Wt, first: Segment) -> Leg {
        Leg {
            vm: vm.into(),
            m: Some(Marker::new(env.bus.clone(), vm, action, t0, first)),
            failed: None,
            history: None,
            rate: 1,
            report: None,
            scan: None,
            stopped: None,
            abandoned: None,
        }
    }
    fn ok(&self) -> bool {
        self.failed.is_none()
    }
    fn mark_at(&mut self, what: Segment, at: Wt) {
        if let Some(m) = self.m.as_mut() {
            m.mark_at(what, at);
        }
    }
    /// Keeps a step's result, or the error that ends this VM's part.
    fn keep<T>(&mut self, r: Result<T, EnvError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.failed.get_or_insert(e);
                None
            }
        }
    }
}

/// A DR action over several VMs at once: each VM's outcome or the error that stopped it, in the order the
/// VMs were named, and the faults the action itself injected (the lost site's isolation, once for all).
pub struct FleetOutcome {
    pub outcomes: Vec<Result<Outcome, EnvError>>,
    pub receipts: Vec<Receipt>,
}

/// The one site every VM of the fleet is primary on (an application moves as one).
fn common_primary(env: &Environment, vms: &[String]) -> Result<String, EnvError> {
    let mut sites = std::collections::BTreeMap::<String, Vec<&str>>::new();
    for vm in vms {
        sites.entry(env.driver.primary(vm)?).or_default().push(vm);
    }
    match sites.len() {
        0 => Err(EnvError::Usage("no VM to act on".into())),
        1 => Ok(sites.into_keys().next().expect("one site")),
        _ => Err(EnvError::Usage(format!(
            "the VMs are primary on different sites ({}): an application moves as one",
            sites.iter().map(|(s, v)| format!("{} on {s}", v.join(", "))).collect::<Vec<_>>().join("; ")
        ))),
    }
}

/// Where the fleet moves from (the site every VM is primary on) and to (`to`, a known site, not that one).
fn route(env: &Environment, vms: &[String], to: &str) -> Result<(String, String), EnvError> {
    let to = env.topology.site(to)?;
    let from = common_primary(env, vms)?;
    if from == to {
        return Err(EnvError::Usage(format!(
            "{} already primary on site {to}",
            if vms.len() == 1 { format!("VM {} is", vms[0]) } else { "the VMs are".into() }
        )));
    }
    Ok((from, to))
}

/// Boots every VM still in the action on `to` (side by side where the workload can) and marks boot,
/// recovery and service on each.
async fn serve_all(env: &mut Environment, legs: &mut [Leg], to: &str) {
    let volumes: Vec<Option<crate::ports::Volume>> = legs.iter_mut().map(|l| if l.ok() { l.keep(env.driver.volume(&l.vm)) } else { None }).collect();
    let boots: Vec<(usize, crate::ports::Boot<'_>)> = legs
        .iter()
        .zip(&volumes)
        .enumerate()
        .filter_map(|(i, (l, v))| v.as_ref().filter(|_| l.ok()).map(|volume| (i, crate::ports::Boot { vm: &l.vm, site: to, volume })))
        .collect();
    let (idx, boots): (Vec<usize>, Vec<crate::ports::Boot<'_>>) = boots.into_iter().unzip();
    let served = env.workload.resume_all(&boots).await;
    drop(boots);
    for (i, s) in idx.into_iter().zip(served) {
        let l = &mut legs[i];
        if let Some(s) = l.keep(s) {
            l.mark_at(Segment::VmBooted, s.booted);
            l.mark_at(Segment::Recovered, s.recovered);
            l.mark_at(Segment::Serving, s.serving);
            l.scan = Some(s.scan);
            let r = env.driver.serving(&l.vm).await;
            l.keep(r);
        }
    }
}

/// The markers of the VMs still in the action, lent to the driver (each leg keeps a placeholder).
fn take_marks(legs: &mut [Leg]) -> (Vec<String>, Vec<Marker>) {
    legs.iter_mut().filter(|l| l.ok()).filter_map(|l| l.m.take().map(|m| (l.vm.clone(), m))).unzip()
}

/// The markers back from the driver, with each VM's report.
fn give_marks(legs: &mut [Leg], marks: Vec<Marker>, reports: Vec<Result<crate::ports::DriverReport, EnvError>>) {
    for ((l, m), r) in legs.iter_mut().filter(|l| l.ok() && l.m.is_none()).zip(marks).zip(reports) {
        l.m = Some(m);
        l.report = l.keep(r);
    }
}

fn outcome_of(l: Leg, kind: ActionKind, from: &str, to: &str, fault_at: Option<Wt>, fence_at: Option<Wt>) -> Result<Outcome, EnvError> {
    if let Some(e) = l.failed {
        return Err(e);
    }
    let (Some(history), Some(report), Some(scan), Some(m)) = (l.history, l.report, l.scan, l.m) else {
        return Err(EnvError::Usage(format!("VM {}: the action ended without its evidence", l.vm)));
    };
    let stop = l.stopped.map(|s| s.seq);
    let evidence = Evidence { history, scan, fault_at, stop_seq: stop, bound: bound(report.promise, period(l.rate), stop) };
    Ok(Outcome {
        kind,
        vm: l.vm,
        from: from.into(),
        to: to.into(),
        timeline: m.timeline,
        evidence,
        details: report.details,
        receipts: vec![],
        fence_at,
        abandoned: l.abandoned,
        roles: vec![],
        golden: None,
    })
}

/// The one outcome of a fleet of one, its receipts its own.
fn single(f: FleetOutcome) -> Result<Outcome, EnvError> {
    let mut o = f.outcomes.into_iter().next().expect("one VM, one outcome")?;
    o.receipts = f.receipts;
    Ok(o)
}

/// `since`: when the previous DR action of the scenario began (None for the first): the action is judged on
/// the writers started since then, the earlier ones being that action's.
pub async fn relocate(env: &mut Environment, vm: &str, to: &str, barrier: bool, since: Option<Wt>) -> Result<Outcome, EnvError> {
    single(relocate_all(env, &[vm.to_string()], to, barrier, since).await?)
}

/// Relocates every VM of `vms` (an application) to `to`: each is stopped gracefully, its disk moved by the
/// driver, and all boot on `to`; each VM judged on its own.
pub async fn relocate_all(env: &mut Environment, vms: &[String], to: &str, barrier: bool, since: Option<Wt>) -> Result<FleetOutcome, EnvError> {
    let (from, to) = route(env, vms, to)?;
    let t0 = Wt::now();
    let mut legs: Vec<Leg> = vms.iter().map(|vm| Leg::new(env, vm, ActionKind::Relocate, t0, Segment::Requested)).collect();
    for l in legs.iter_mut() {
        if let Some(stopped) = l.keep(env.workload.graceful_stop(&l.vm).await) {
            l.mark_at(Segment::VmStopped, stopped.at);
            l.stopped = Some(stopped);
            l.history = l.keep(env.workload.history(&l.vm, since));
            l.rate = l.keep(env.workload.rate(&l.vm)).unwrap_or(1);
        }
    }
    let (names, mut marks) = take_marks(&mut legs);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let reports = env.driver.relocate_all(&refs, &to, barrier, &mut marks).await;
    give_marks(&mut legs, marks, reports);
    serve_all(env, &mut legs, &to).await;
    Ok(FleetOutcome { outcomes: legs.into_iter().map(|l| outcome_of(l, ActionKind::Relocate, &from, &to, None, None)).collect(), receipts: vec![] })
}

/// How a failover fences the lost site: the harness cuts it off (isolation), and the DR driver fences its
/// clients at the storage (where the driver fences). Both by default; anything less is a control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fencing {
    pub isolate: bool,
    pub storage: bool,
}

impl Fencing {
    pub const FULL: Fencing = Fencing { isolate: true, storage: true };
    /// Negative control: the lost site is neither cut off nor fenced at the storage.
    pub const NONE: Fencing = Fencing { isolate: false, storage: false };
    /// Negative control: only the isolation, which the harness undoes later; the storage does not fence.
    pub const ISOLATION_ONLY: Fencing = Fencing { isolate: true, storage: false };
    /// Positive control: the storage fence alone, the site never cut off.
    pub const STORAGE_ONLY: Fencing = Fencing { isolate: false, storage: true };
}

/// A failover that failed after fencing: its own faults (the lost site's isolation) are undone before the
/// error goes back, so that nothing it injected outlives it (the scenario never got their receipts).
async fn undo(env: &mut Environment, receipts: &[Receipt], e: EnvError) -> EnvError {
    for r in receipts.iter().rev() {
        if let Err(x) = env.faults.recover(r).await {
            return EnvError::Usage(format!("{e}; and the failover's own fault \"{}\" could not be undone: {x}", r.fault));
        }
    }
    e
}

/// Fails the VM over to `to`. `fault` is the receipt of the outage that took the primary (if a step
/// injected one); without it, the VM's I/O is halted abruptly here, as fencing does. A frozen primary cannot
/// be reached: its VM is left where it stands (it may write again when the site thaws: the fence must stop
/// it). `fencing` says which fences are raised (see [`Fencing`]).
pub async fn failover(env: &mut Environment, vm: &str, to: &str, fault: Option<&Receipt>, fencing: Fencing, since: Option<Wt>) -> Result<Outcome, EnvError> {
    single(failover_all(env, &[vm.to_string()], to, fault, fencing, since).await?)
}

/// Fails every VM of `vms` (an application) over to `to` at once: all halted, the lost site fenced once,
/// the driver promoting them (side by side where it can), all booted on `to`. A VM that fails stops only
/// its own part; when all fail, the action's own isolation is undone before the first error goes back.
pub async fn failover_all(
    env: &mut Environment,
    vms: &[String],
    to: &str,
    fault: Option<&Receipt>,
    fencing: Fencing,
    since: Option<Wt>,
) -> Result<FleetOutcome, EnvError> {
    let (from, to) = route(env, vms, to)?;
    let fault_at = fault.map(|r| r.at).unwrap_or_else(Wt::now);
    let mut legs: Vec<Leg> = vms.iter().map(|vm| Leg::new(env, vm, ActionKind::Failover, fault_at, Segment::Fault)).collect();
    let requested = Wt::now();
    let frozen = matches!(fault.map(|r| &r.fault), Some(Fault::Freeze { .. }));
    for l in legs.iter_mut() {
        l.mark_at(Segment::FailoverRequested, requested);
        if frozen {
            l.abandoned = l.keep(env.workload.abandon(&l.vm).await);
        } else {
            l.keep(env.workload.halt(&l.vm).await);
        }
        if l.ok() {
            l.history = l.keep(env.workload.history(&l.vm, since));
            l.rate = l.keep(env.workload.rate(&l.vm)).unwrap_or(1);
        }
    }
    let mut receipts = vec![];
    if fencing.isolate {
        // Fence: the old primary can no longer reach the survivor, whatever state it comes back in.
        receipts.push(env.faults.inject(Fault::Isolate { site: from.clone() }).await?);
        let at = Wt::now();
        for l in legs.iter_mut() {
            l.mark_at(Segment::Fenced, at);
        }
    }
    let (names, mut marks) = take_marks(&mut legs);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let reports = env.driver.failover_all(&refs, &to, fault_at, fencing.storage, &mut marks).await;
    give_marks(&mut legs, marks, reports);
    serve_all(env, &mut legs, &to).await;
    if legs.iter().all(|l| !l.ok()) {
        let first = legs.iter_mut().find_map(|l| l.failed.take()).expect("every VM failed");
        return Err(undo(env, &receipts, first).await);
    }
    let outcomes = legs
        .into_iter()
        .map(|l| {
            // the earliest fence (the isolation, else the storage fence), or the request when nothing fenced
            let fence_at =
                [Segment::Fenced, Segment::StorageFenced, Segment::FailoverRequested].into_iter().find_map(|s| l.m.as_ref().and_then(|m| m.timeline.at(s)));
            outcome_of(l, ActionKind::Failover, &from, &to, Some(fault_at), fence_at)
        })
        .collect();
    Ok(FleetOutcome { outcomes, receipts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::Checkpoint;

    #[test]
    fn a_window_promise_becomes_the_declared_regional_bound() {
        let p = Promise::Window {
            interval: Duration::from_secs(5),
            allowance: Duration::from_secs(3),
            warmup: Duration::from_secs(8),
            checkpoint: Some(Checkpoint { name: "a/4".into(), started: Wt::from_ms(9) }),
            syncs: vec![],
            rollback: None,
        };
        let Bound::Window(b) = bound(p, period(50), None) else { panic!("not a window") };
        assert_eq!(b.max_window(), Duration::from_millis(8020));
        assert_eq!(bound(Promise::NoLoss, period(50), Some(7)), Bound::NoLoss { stop: Some(7) });
        assert_eq!(period(0), Duration::from_secs(1));
    }
}
