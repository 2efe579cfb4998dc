//! The DR driver over the simulated storage, the way the lab's drivers drive Ceph: Regional-DR by mirror
//! snapshots the harness schedules and times (the same `SnapLog` the lab keeps), demote / promote /
//! resync; Metro-DR by the storage fence and clean replicas. What it reports of a round is what the
//! storage's own status says: a storage that lies is caught by the oracle, not trusted by the driver.

use super::world::Shared;
use crate::clock::Wt;
use crate::config::{Budgets, Regional};
use crate::env::lab::mirror::{SnapLog, SnapRecord};
use crate::error::{from_wait, Cause, EnvError};
use crate::events::{Bus, Event};
use crate::golden::GoldenLayout;
use crate::ports::{DrDriver, DriverReport, Marker, Promise, Role, SiteRole, Volume};
use crate::timeline::Segment;
use crate::topology::Topology;
use crate::wait;
use async_trait::async_trait;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Protected {
    primary: String,
    /// When the primary became primary (its rounds are judged from then).
    since: Wt,
    snaps: Arc<Mutex<SnapLog>>,
    scheduler: Option<tokio::task::JoinHandle<()>>,
    /// Left out of mirroring (a negative control): no snapshot is taken of it any more.
    unmirrored: bool,
    /// Its rounds this far after the others' (disks snapshotted independently).
    phase: Duration,
}

pub struct SimDriver {
    pub world: Shared,
    pub topology: Topology,
    pub bus: Bus,
    pub budgets: Budgets,
    /// None: Metro-DR.
    pub regional: Option<Regional>,
    vms: BTreeMap<String, Protected>,
    /// Where the golden image's pattern sits on its clones.
    golden: GoldenLayout,
    /// The origin of every image's snapshot rounds (the driver's start).
    origin: tokio::time::Instant,
}

fn storage_err(site: &str, what: &str, e: String) -> EnvError {
    EnvError::Site { site: site.into(), what: what.into(), detail: e, cause: Cause::System }
}

impl SimDriver {
    /// `disk_records`: what the guest's disk holds (the golden pattern lies after it).
    pub fn new(world: Shared, topology: Topology, bus: Bus, budgets: Budgets, regional: Option<Regional>, disk_records: u64) -> SimDriver {
        let golden = GoldenLayout::after((disk_records + 1) * crate::golden::BLOCK, 1 << 20);
        SimDriver { world, topology, bus, budgets, regional, vms: BTreeMap::new(), golden, origin: tokio::time::Instant::now() }
    }

    fn vm(&mut self, vm: &str) -> Result<&mut Protected, EnvError> {
        self.vms.get_mut(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))
    }

    fn stop_scheduler(&mut self, vm: &str) {
        if let Some(h) = self.vms.get_mut(vm).and_then(|p| p.scheduler.take()) {
            h.abort();
        }
    }

    /// The harness's scheduler: a mirror snapshot every interval on the primary, its start the moment it
    /// asked; completion on the peer as the peer's status reports it, polled every 200 ms.
    fn start_scheduler(&mut self, vm: &str) -> Result<(), EnvError> {
        let Some(regional) = self.regional.clone() else { return Ok(()) };
        let (world, bus) = (self.world.clone(), self.bus.clone());
        let p = self.vm(vm)?;
        if p.unmirrored || p.scheduler.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        let (primary, log, image, phase, origin) = (p.primary.clone(), p.snaps.clone(), vm.to_string(), p.phase, self.origin);
        let peer = self.topology.peer_of(&primary)?;
        let interval = regional.interval.0;
        let h = tokio::spawn(async move {
            // rounds on multiples of the interval from the driver's origin, as the lab's (and Ceph's own
            // schedule): every image's snapshots in the same round, unless staggered on purpose
            let mut next = crate::env::lab::mirror::aligned(origin, tokio::time::Instant::now(), interval) + phase;
            loop {
                if tokio::time::Instant::now() >= next {
                    let late = tokio::time::Instant::now().saturating_duration_since(next);
                    next += interval;
                    let asked = Wt::now();
                    let r = world.lock().unwrap().snapshot(&primary, &image, asked);
                    match r {
                        Ok(id) => {
                            let rec =
                                SnapRecord { id, site: primary.clone(), started: asked, completed: None, preexisting: false, untimed: false, late: Some(late) };
                            if log.lock().unwrap().record(rec) {
                                bus.publish_at(asked, Event::MirrorSnapshot { vm: image.clone(), id, site: primary.clone() });
                            }
                        }
                        Err(e) => log.lock().unwrap().errors.push(e),
                    }
                }
                let pending = log.lock().unwrap().snaps.iter().any(|s| s.site == primary && s.completed.is_none());
                if pending {
                    let polled = Wt::now();
                    let done = world.lock().unwrap().complete_on(&peer, &image);
                    match done {
                        Ok(done) => {
                            for id in log.lock().unwrap().complete(&primary, &done, polled) {
                                bus.publish_at(polled, Event::MirrorSnapshotComplete { vm: image.clone(), id, site: primary.clone() });
                            }
                        }
                        Err(e) => log.lock().unwrap().errors.push(e),
                    }
                }
                tokio::time::sleep_until(next.min(tokio::time::Instant::now() + Duration::from_millis(200))).await;
            }
        });
        self.vm(vm)?.scheduler = Some(h);
        Ok(())
    }

    /// Waits on the simulated storage until `check` holds (polled every 100 ms).
    async fn until<T>(
        &self,
        site: &str,
        what: String,
        budget: wait::Deadline,
        cause: Cause,
        check: impl Fn(&super::world::World) -> Result<Option<T>, String>,
    ) -> Result<T, EnvError> {
        let world = self.world.clone();
        let probe = || {
            let r = check(&world.lock().unwrap()).map_err(|e| storage_err(site, "ask the storage", e));
            async move { r }
        };
        wait::until(what, budget, probe, wait::every(Duration::from_millis(100))).await.map_err(|e| from_wait(site, cause, e))
    }

    /// `vm`'s new image protected: (Regional-DR) its first snapshot on the peer, the scheduler running.
    async fn protect(&mut self, vm: &str, site: &str) -> Result<Volume, EnvError> {
        let p = Protected { primary: site.into(), since: Wt::now(), snaps: Arc::default(), scheduler: None, unmirrored: false, phase: Duration::ZERO };
        self.vms.insert(vm.into(), p);
        if self.regional.is_some() {
            // the image's first snapshot on the peer before anything is written, as `mirror image enable` does
            let peer = self.topology.peer_of(site)?;
            let id = self.world.lock().unwrap().snapshot(site, vm, Wt::now()).map_err(|e| storage_err(site, "snapshot", e))?;
            let b = self.budgets.deadline(crate::config::Budget::SyncBarrier);
            self.until(&peer, format!("the first snapshot of {vm} to reach {peer}"), b, Cause::System, |w| {
                Ok(w.complete_on(&peer, vm)?.contains(&id).then_some(()))
            })
            .await?;
            self.vm(vm)?.since = Wt::now();
            self.start_scheduler(vm)?;
        }
        Ok(Volume { name: vm.into() })
    }

    fn details(&self, vm: &str, sync: Option<Duration>) -> serde_json::Value {
        let (completed, errors) = self.vms.get(vm).map(|p| p.snaps.lock().unwrap().summary()).unwrap_or_default();
        let lied: Vec<String> = self.world.lock().unwrap().lied.iter().map(|m| format!("{m:?}")).collect();
        json!({ "syncBarrierMs": sync.map(|d| d.as_secs_f64() * 1e3), "mirrorSnapshotsCompleted": completed, "schedulerErrors": errors, "simulatedLies": lied })
    }
}

#[async_trait]
impl DrDriver for SimDriver {
    /// A clone of the golden image: the parent's data on the primary; the peer gets it with the clone's
    /// first snapshot (CloneLosesParent: never).
    async fn provision_clone(&mut self, vm: &str, site: &str) -> Option<Result<(Volume, GoldenLayout), EnvError>> {
        self.world.lock().unwrap().create_clone(vm, site);
        Some(self.protect(vm, site).await.map(|v| (v, self.golden)))
    }

    async fn read_golden(&mut self, vm: &str, site: &str) -> Option<Result<Vec<u8>, EnvError>> {
        let r = self.world.lock().unwrap().reads_parent(site, vm).map_err(|e| storage_err(site, "read the golden blocks", e));
        Some(r.map(|parent| if parent { self.golden.span_bytes() } else { vec![0; self.golden.span().1 as usize] }))
    }

    async fn provision(&mut self, vm: &str, site: &str) -> Result<Volume, EnvError> {
        self.world.lock().unwrap().create(vm, site);
        self.protect(vm, site).await
    }

    fn volume(&self, vm: &str) -> Result<Volume, EnvError> {
        self.vms.get(vm).map(|_| Volume { name: vm.into() }).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))
    }

    fn primary(&self, vm: &str) -> Result<String, EnvError> {
        self.vms.get(vm).map(|p| p.primary.clone()).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))
    }

    async fn relocate(&mut self, vm: &str, to: &str, barrier: bool, m: &mut Marker) -> Result<DriverReport, EnvError> {
        let from = self.primary(vm)?;
        let sync = if self.regional.is_some() {
            if barrier {
                let b = self.budgets.deadline(crate::config::Budget::Resync);
                self.until(to, format!("site {to} to be ready to take {vm} over"), b, Cause::System, |w| {
                    let st = w.mirror_state(to, vm)?;
                    Ok((st == "up+replaying").then_some(()))
                })
                .await?;
            }
            self.stop_scheduler(vm);
            let id = self.world.lock().unwrap().demote(&from, vm, Wt::now()).map_err(|e| storage_err(&from, "demote", e))?;
            m.mark(Segment::Demoted);
            let t0 = Wt::now();
            if barrier {
                let b = self.budgets.deadline(crate::config::Budget::SyncBarrier);
                self.until(to, format!("the demotion snapshot of {vm} to reach {to}"), b, Cause::System, |w| {
                    Ok(w.complete_on(to, vm)?.contains(&id).then_some(()))
                })
                .await?;
                m.mark(Segment::Synced);
            }
            self.world.lock().unwrap().promote(to, vm, !barrier, Wt::now()).map_err(|e| storage_err(to, "promote", e))?;
            barrier.then(|| Wt::now().since(t0))
        } else {
            // Metro: one image; the barrier is every replica clean
            let t0 = Wt::now();
            if barrier {
                let b = self.budgets.deadline(crate::config::Budget::SyncBarrier);
                self.until(to, format!("every replica of {vm} clean"), b, Cause::System, |w| Ok(w.clean(vm).then_some(()))).await?;
                m.mark(Segment::Synced);
            }
            barrier.then(|| Wt::now().since(t0))
        };
        m.mark(Segment::Promoted);
        let p = self.vm(vm)?;
        p.primary = to.into();
        p.since = Wt::now();
        Ok(DriverReport { promise: Promise::NoLoss, details: self.details(vm, sync) })
    }

    async fn failover(&mut self, vm: &str, to: &str, _fault_at: Wt, fence: bool, m: &mut Marker) -> Result<DriverReport, EnvError> {
        let from = self.primary(vm)?;
        let promise = if let Some(regional) = self.regional.clone() {
            // as the lab: the harness's isolation of the lost site is the fence
            self.stop_scheduler(vm);
            let (since, log) = {
                let p = self.vm(vm)?;
                (p.since, p.snaps.clone())
            };
            let done = self.world.lock().unwrap().complete_on(to, vm).map_err(|e| storage_err(to, "list the mirror snapshots", e))?;
            log.lock().unwrap().complete_untimed(&from, &done);
            let newest = done.iter().copied().max();
            self.world.lock().unwrap().promote(to, vm, true, Wt::now()).map_err(|e| storage_err(to, "promote", e))?;
            m.mark(Segment::Promoted);
            let (checkpoint, syncs) = {
                let g = log.lock().unwrap();
                (newest.and_then(|id| g.checkpoint(&from, id)), g.syncs(&from, since))
            };
            Promise::Window { interval: regional.interval.0, allowance: regional.allowance(), warmup: regional.warmup(), checkpoint, syncs, rollback: None }
        } else {
            if fence {
                self.world.lock().unwrap().site_mut(&from).map_err(|e| storage_err(&from, "fence", e))?.fenced = true;
                m.mark(Segment::StorageFenced);
            }
            m.mark(Segment::Promoted);
            Promise::NoLoss
        };
        let p = self.vm(vm)?;
        p.primary = to.into();
        p.since = Wt::now();
        Ok(DriverReport { promise, details: self.details(vm, None) })
    }

    /// An image no snapshot of which is ever taken: the peer holds nothing of what the VM writes.
    async fn provision_unmirrored(&mut self, vm: &str, site: &str) -> Option<Result<Volume, EnvError>> {
        // Metro-DR has nothing to leave out: one image, replicated by the cluster itself
        self.regional.as_ref()?;
        self.world.lock().unwrap().create(vm, site);
        let p = Protected { primary: site.into(), since: Wt::now(), snaps: Arc::default(), scheduler: None, unmirrored: true, phase: Duration::ZERO };
        self.vms.insert(vm.into(), p);
        Some(Ok(Volume { name: vm.into() }))
    }

    async fn replicated(&mut self, vm: &str, to: &str, since: Wt) -> Result<String, EnvError> {
        let primary = self.primary(vm)?;
        if self.topology.peer_of(&primary)? != to {
            return Err(EnvError::Usage(format!("site {to} is not where {vm} replicates to: its primary is {primary}")));
        }
        let Some(regional) = self.regional.clone() else {
            let b = self.budgets.deadline(crate::config::Budget::SyncBarrier);
            return self
                .until(to, format!("every replica of {vm} clean"), b, Cause::System, |w| Ok(w.clean(vm).then(|| "every replica clean".to_string())))
                .await;
        };
        self.start_scheduler(vm)?;
        let log = self.vm(vm)?.snaps.clone();
        let check = || {
            let found = log.lock().unwrap().replicated_since(&primary, since).map(|r| format!("mirror snapshot {} complete on {to}", r.name()));
            async move { Ok::<_, EnvError>(found) }
        };
        let deadline = regional.interval.0 * 3 + regional.allowance();
        let what = format!("a mirror snapshot of {vm} taken after +{:.1}s to complete on {to}", since.ms() / 1e3);
        wait::until(what, deadline, check, wait::every(Duration::from_millis(200))).await.map_err(|e| from_wait(to, Cause::System, e))
    }

    async fn serving(&mut self, vm: &str) -> Result<(), EnvError> {
        self.start_scheduler(vm)
    }

    /// The scheduler (running since the image was protected) restarts on its new phase.
    fn stagger(&mut self, vm: &str, phase: Duration) -> bool {
        match self.vms.get_mut(vm) {
            Some(p) if self.regional.is_some() => p.phase = phase,
            _ => return false,
        }
        self.stop_scheduler(vm);
        self.start_scheduler(vm).is_ok()
    }

    async fn roles(&mut self, vm: &str) -> Result<Vec<SiteRole>, EnvError> {
        let p = self.primary(vm)?;
        let w = self.world.lock().unwrap();
        Ok(w.data_sites()
            .into_iter()
            .map(|site| {
                if w.metro() {
                    // the site the VM's unfenced clients are on is primary
                    return match w.site(&site) {
                        Ok(s) if !s.alive() => SiteRole { site, role: Role::Unknown, detail: "the site does not answer".into() },
                        Ok(s) if s.fenced => SiteRole { site, role: Role::Secondary, detail: "its clients are blocklisted".into() },
                        Ok(_) if site == p => SiteRole { site, role: Role::Primary, detail: "the VM's client is here".into() },
                        Ok(_) => SiteRole { site, role: Role::Secondary, detail: "a replica, no client of the VM".into() },
                        Err(e) => SiteRole { site, role: Role::Unknown, detail: e },
                    };
                }
                match w.is_primary(&site, vm) {
                    Ok(true) => SiteRole { site, role: Role::Primary, detail: "mirroring primary".into() },
                    Ok(false) => SiteRole { site, role: Role::Secondary, detail: "mirroring non-primary".into() },
                    Err(e) => SiteRole { site, role: Role::Unknown, detail: e },
                }
            })
            .collect())
    }

    async fn repair(&mut self, vm: &str, site: &str, resync: bool, m: &mut Marker) -> Result<serde_json::Value, EnvError> {
        let primary = self.primary(vm)?;
        if primary == site {
            return Ok(json!({ "note": format!("site {site} is VM {vm}'s primary: nothing to repair") }));
        }
        let budget = self.budgets.deadline(crate::config::Budget::Resync);
        let t0 = Wt::now();
        if self.regional.is_none() {
            self.world.lock().unwrap().site_mut(site).map_err(|e| storage_err(site, "unfence", e))?.fenced = false;
            m.mark(Segment::Unfenced);
            self.until(site, format!("every replica of {vm} clean after site {site} returned"), budget, Cause::System, |w| Ok(w.clean(vm).then_some(())))
                .await?;
            m.mark(Segment::Clean);
            return Ok(json!({ "repairMs": Wt::now().since(t0).as_secs_f64() * 1e3 }));
        }
        let was_primary = self.world.lock().unwrap().is_primary(site, vm).map_err(|e| storage_err(site, "read the image's role", e))?;
        if was_primary {
            self.world.lock().unwrap().demote(site, vm, Wt::now()).map_err(|e| storage_err(site, "demote", e))?;
            m.mark(Segment::Demoted);
        }
        if !resync {
            return Ok(json!({ "wasPrimary": was_primary, "resync": false }));
        }
        let since = Wt::now();
        self.world.lock().unwrap().resync(site, vm).map_err(|e| storage_err(site, "resync", e))?;
        m.mark(Segment::ResyncRequested);
        self.start_scheduler(vm)?;
        let log = self.vm(vm)?.snaps.clone();
        let world = self.world.clone();
        let check = || {
            let replaying = world.lock().unwrap().replaying(site, vm).unwrap_or(false);
            let snap = log.lock().unwrap().replicated_since(&primary, since).map(|r| r.name());
            async move { Ok::<_, EnvError>(snap.filter(|_| replaying)) }
        };
        let snap = wait::until(format!("site {site} to replay VM {vm}'s image again after the resync"), budget, check, wait::every(Duration::from_millis(200)))
            .await
            .map_err(|e| from_wait(site, Cause::System, e))?;
        m.mark(Segment::Resynced);
        self.vm(vm)?.since = Wt::now();
        Ok(
            json!({ "wasPrimary": was_primary, "resync": true, "resyncedWith": snap, "resyncMs": Wt::now().since(since).as_secs_f64() * 1e3, "repairMs": Wt::now().since(t0).as_secs_f64() * 1e3 }),
        )
    }

    async fn release(&mut self, vm: &str) {
        self.stop_scheduler(vm);
        self.vms.remove(vm);
        let mut w = self.world.lock().unwrap();
        w.remove(vm);
        // a scenario's storage fences end with it (the next scenario starts from healthy storage)
        for s in w.sites.values_mut() {
            s.fenced = false;
        }
    }

    async fn shutdown(&mut self) {
        for p in self.vms.values_mut() {
            if let Some(h) = p.scheduler.take() {
                h.abort();
            }
        }
    }
}
