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
        Promise::Window { interval, allowance, warmup, checkpoint, syncs } => {
            Bound::Window(RegionalBound { interval, allowance, period, checkpoint, syncs, warmup })
        }
    }
}

fn period(rate: u32) -> Duration {
    Duration::from_secs_f64(1.0 / rate.max(1) as f64)
}

/// Boots the VM on `to` after the driver moved its disk there, and marks boot, recovery and service.
async fn serve(env: &mut Environment, vm: &str, to: &str, m: &mut Marker) -> Result<ScanReport, EnvError> {
    let volume = env.driver.volume(vm)?;
    let s = env.workload.resume(vm, to, &volume).await?;
    m.mark_at(Segment::VmBooted, s.booted);
    m.mark_at(Segment::Recovered, s.recovered);
    m.mark_at(Segment::Serving, s.serving);
    env.driver.serving(vm).await?;
    Ok(s.scan)
}

/// `since`: when the previous DR action of the scenario began (None for the first): the action is judged on
/// the writers started since then, the earlier ones being that action's.
pub async fn relocate(env: &mut Environment, vm: &str, to: &str, barrier: bool, since: Option<Wt>) -> Result<Outcome, EnvError> {
    let to = env.topology.site(to)?;
    let from = env.driver.primary(vm)?;
    if from == to {
        return Err(EnvError::Usage(format!("VM {vm} is already primary on site {to}")));
    }
    let mut m = Marker::new(env.bus.clone(), vm, ActionKind::Relocate, Wt::now(), Segment::Requested);
    let stopped = env.workload.graceful_stop(vm).await?;
    m.mark_at(Segment::VmStopped, stopped.at);
    let history = env.workload.history(vm, since)?;
    let rate = env.workload.rate(vm)?;
    let report = env.driver.relocate(vm, &to, barrier, &mut m).await?;
    let scan = serve(env, vm, &to, &mut m).await?;
    let evidence = Evidence { history, scan, fault_at: None, stop_seq: Some(stopped.seq), bound: bound(report.promise, period(rate), Some(stopped.seq)) };
    Ok(Outcome {
        kind: ActionKind::Relocate,
        vm: vm.into(),
        from,
        to,
        timeline: m.timeline,
        evidence,
        details: report.details,
        receipts: vec![],
        fence_at: None,
        abandoned: None,
        roles: vec![],
    })
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

/// Fails the VM over to `to`. `fault` is the receipt of the outage that took the primary (if a step
/// injected one); without it, the VM's I/O is halted abruptly here, as fencing does. A frozen primary cannot
/// be reached: its VM is left where it stands (it may write again when the site thaws: the fence must stop
/// it). `fencing` says which fences are raised (see [`Fencing`]).
pub async fn failover(env: &mut Environment, vm: &str, to: &str, fault: Option<&Receipt>, fencing: Fencing, since: Option<Wt>) -> Result<Outcome, EnvError> {
    let to = env.topology.site(to)?;
    let from = env.driver.primary(vm)?;
    if from == to {
        return Err(EnvError::Usage(format!("VM {vm} is already primary on site {to}")));
    }
    let fault_at = fault.map(|r| r.at).unwrap_or_else(Wt::now);
    let mut m = Marker::new(env.bus.clone(), vm, ActionKind::Failover, fault_at, Segment::Fault);
    m.mark(Segment::FailoverRequested);
    let abandoned = match fault.map(|r| &r.fault) {
        Some(Fault::Freeze { .. }) => Some(env.workload.abandon(vm).await?),
        _ => {
            env.workload.halt(vm).await?;
            None
        }
    };
    let history = env.workload.history(vm, since)?;
    let rate = env.workload.rate(vm)?;
    let mut receipts = vec![];
    if fencing.isolate {
        // Fence: the old primary can no longer reach the survivor, whatever state it comes back in.
        receipts.push(env.faults.inject(Fault::Isolate { site: from.clone() }).await?);
        m.mark(Segment::Fenced);
    }
    let report = env.driver.failover(vm, &to, fault_at, fencing.storage, &mut m).await?;
    // the earliest fence (the isolation, else the storage fence), or the request when nothing fenced
    let fence_at = [Segment::Fenced, Segment::StorageFenced, Segment::FailoverRequested].into_iter().find_map(|s| m.timeline.at(s));
    let scan = serve(env, vm, &to, &mut m).await?;
    let evidence = Evidence { history, scan, fault_at: Some(fault_at), stop_seq: None, bound: bound(report.promise, period(rate), None) };
    Ok(Outcome {
        kind: ActionKind::Failover,
        vm: vm.into(),
        from,
        to,
        timeline: m.timeline,
        evidence,
        details: report.details,
        receipts,
        fence_at,
        abandoned,
        roles: vec![],
    })
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
        };
        let Bound::Window(b) = bound(p, period(50), None) else { panic!("not a window") };
        assert_eq!(b.max_window(), Duration::from_millis(8020));
        assert_eq!(bound(Promise::NoLoss, period(50), Some(7)), Bound::NoLoss { stop: Some(7) });
        assert_eq!(period(0), Duration::from_secs(1));
    }
}
