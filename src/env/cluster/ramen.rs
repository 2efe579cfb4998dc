//! The DR driver for clusters protected by Ramen (OpenShift DR: RHACM hub + ODF): each VM is an application
//! with a DRPlacementControl on the hub. Relocate and failover are requests on it; Ramen does the rest
//! (final sync, demote, promote, restore). The Regional-DR bound comes from the DRPolicy's
//! `schedulingInterval` (Metro-DR policies have none: no loss), the checkpoint from `lastGroupSyncTime`.

use crate::clock::Wt;
use crate::error::EnvError;
use crate::k8s::ramen::{self, Action, DRPlacementControl, DRPolicy};
use crate::k8s::K8sError;
use crate::oracle::{Checkpoint, SyncSample};
use crate::ports::{role_of, DrDriver, DriverReport, Marker, Promise, Role, SiteRole, Volume};
use crate::timeline::Segment;
use crate::units::Dur;
use async_trait::async_trait;
use kube::{Api, Client};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// One protected application: its DRPC and where it runs.
#[derive(Debug)]
struct App {
    drpc: String,
    primary: String,
    /// The PVC Ramen protects (the VM's disk).
    volume: String,
    /// Group syncs the primary cluster's own VRG reported (fresher than the hub's copy).
    rounds: super::rounds::Rounds,
}

pub struct RamenDriver {
    drpcs: Api<DRPlacementControl>,
    drclusters: Api<ramen::DRCluster>,
    /// Managed clusters this driver fenced (Metro-DR), unfenced when the scenario ends.
    fenced: Vec<String>,
    policies: Api<DRPolicy>,
    namespace: String,
    /// Site of the scenario -> managed cluster name.
    clusters: BTreeMap<String, String>,
    /// How long Ramen may take for an action (`budgets.promote` from an environment file).
    deadline: crate::wait::Deadline,
    /// The environment file's promise (Regional-DR): interval and sync allowance. The bound comes from
    /// here, never from the DRPolicy: a policy that schedules less often cannot keep it.
    declared: Option<(Duration, Duration)>,
    /// The managed clusters of the DRPolicy protecting the apps.
    peers: Vec<String>,
    /// How long the repair of a returned cluster may take (`budgets.resync`).
    resync: crate::wait::Deadline,
    apps: BTreeMap<String, App>,
    /// The schedule of the DRPolicy protecting the apps (None: Metro-DR).
    interval: Option<Duration>,
    /// When set, the VM's disk is made here: site -> managed cluster client, the PVC's shape, and where the
    /// application's VRG is on the managed clusters. Ramen then protects the PVC (the DRPC's pvcSelector
    /// selects the application's label).
    disks: Option<(BTreeMap<String, Client>, super::Disk, String)>,
}

impl RamenDriver {
    /// `hub`: a client of the hub cluster; `namespace`: where the DRPCs are; `clusters`: site -> cluster.
    pub fn new(
        hub: Client,
        namespace: &str,
        clusters: BTreeMap<String, String>,
        deadline: impl Into<crate::wait::Deadline>,
        declared: Option<(Duration, Duration)>,
    ) -> RamenDriver {
        RamenDriver {
            drpcs: Api::namespaced(hub.clone(), namespace),
            drclusters: Api::all(hub.clone()),
            fenced: vec![],
            policies: Api::all(hub),
            namespace: namespace.into(),
            clusters,
            deadline: deadline.into(),
            declared,
            peers: vec![],
            resync: crate::wait::Deadline::budget(crate::config::Budget::Resync.key(), Duration::from_secs(180)),
            apps: BTreeMap::new(),
            interval: None,
            disks: None,
        }
    }

    /// How long the repair of a returned cluster may take.
    pub fn resync_within(mut self, budget: impl Into<crate::wait::Deadline>) -> RamenDriver {
        self.resync = budget.into();
        self
    }

    /// The driver also makes each VM's PVC (`<vm>-disk`, labelled `app_label: dr-drill-<vm>`) on the site
    /// it starts on, through `clients` (site -> managed cluster); the application's VRGs are in `vrgs`.
    pub fn making_disks(mut self, clients: BTreeMap<String, Client>, disk: super::Disk, vrgs: &str) -> RamenDriver {
        self.disks = Some((clients, disk, vrgs.to_string()));
        self
    }

    /// Makes the VM's PVC on `site` and waits until it is bound.
    async fn make_disk(&self, vm: &str, site: &str) -> Result<String, EnvError> {
        let Some((clients, disk, _)) = &self.disks else { return Ok(vm.to_string()) };
        let c = clients.get(site).ok_or_else(|| EnvError::Usage(format!("site {site} has no cluster in this environment")))?;
        Ok(disk.make(c, site, vm).await?.0)
    }

    fn vrg(&self, vm: &str) -> Option<crate::k8s::apply::Obj> {
        let (_, _, vrgs) = self.disks.as_ref()?;
        let name = self.apps.get(vm).map(|a| a.drpc.as_str()).unwrap_or(vm);
        Some(crate::k8s::apply::Obj::new("ramendr.openshift.io/v1alpha1", "VolumeReplicationGroup", Some(vrgs), name))
    }

    /// Watches the group syncs the primary cluster's own VRG reports.
    fn watch_syncs(&mut self, vm: &str) {
        let (Some(o), Some((clients, _, _))) = (self.vrg(vm), self.disks.as_ref()) else { return };
        let Some(c) = self.apps.get(vm).and_then(|a| clients.get(&a.primary)).cloned() else { return };
        if let Some(a) = self.apps.get_mut(vm) {
            a.rounds.watch(c.clone(), move || {
                let (c, o) = (c.clone(), o.clone());
                async move { crate::k8s::apply::get(&c, &o).await.ok().flatten().and_then(|v| ramen::vrg_sync(&v)) }
            });
        }
    }

    fn cluster(&self, site: &str) -> Result<&str, EnvError> {
        self.clusters.get(site).map(String::as_str).ok_or_else(|| {
            EnvError::Usage(format!("site {site} names no managed cluster (sites: {})", self.clusters.keys().cloned().collect::<Vec<_>>().join(", ")))
        })
    }

    fn app(&self, vm: &str) -> Result<&App, EnvError> {
        self.apps.get(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} is protected in this scenario")))
    }

    /// Requests `action` towards `to` and waits until Ramen reports it done.
    async fn act(&mut self, vm: &str, to: &str, action: Action, m: &mut Marker) -> Result<DRPlacementControl, EnvError> {
        let drpc = self.app(vm)?.drpc.clone();
        let cluster = self.cluster(to)?.to_string();
        ramen::request(&self.drpcs, &self.namespace, &drpc, action, &cluster).await?;
        let what = format!("report {} to {cluster}", action.done_phase());
        let d = ramen::wait_for(&self.drpcs, &self.namespace, &drpc, &what, self.deadline, ramen::action_done(action, &cluster)).await?;
        // the hub's word is confirmed by the target cluster's own VRG (the hub's copy of it can lag)
        if let (Some(o), Some((clients, _, _))) = (self.vrg(vm), self.disks.as_ref()) {
            if let Some(c) = clients.get(to) {
                crate::k8s::apply::wait_ready(c, &o, "become Primary on the target cluster", self.deadline, ramen::vrg_in("Primary")).await?;
            }
        }
        m.mark(Segment::Promoted);
        if let Some(a) = self.apps.get_mut(vm) {
            a.primary = to.to_string();
        }
        self.watch_syncs(vm);
        Ok(d)
    }

    fn details(d: &DRPlacementControl) -> serde_json::Value {
        let s = d.status.clone().unwrap_or_default();
        json!({
            "drpc": format!("{}/{}", d.metadata.namespace.as_deref().unwrap_or(""), d.metadata.name.as_deref().unwrap_or("")),
            "phase": s.phase,
            "progression": s.progression,
            "lastGroupSyncTime": s.last_group_sync_time,
            "lastGroupSyncDuration": s.last_group_sync_duration,
            "lastKubeObjectProtectionTime": s.last_kube_object_protection_time,
        })
    }
}

/// What the survivor holds after a Ramen failover: `lastGroupSyncTime` as the checkpoint and, with
/// `lastGroupSyncDuration`, the one sync Ramen reports. Pure.
pub fn checkpoint(d: &DRPlacementControl) -> (Option<Checkpoint>, Vec<SyncSample>) {
    let Some(started) = ramen::last_group_sync(Some(d)) else { return (None, vec![]) };
    let s = d.status.as_ref();
    let name = format!("lastGroupSyncTime {}", s.and_then(|s| s.last_group_sync_time.clone()).unwrap_or_default());
    let took = s.and_then(|s| s.last_group_sync_duration.as_deref()).and_then(|t| t.parse::<Dur>().ok());
    let syncs = took.map(|t| SyncSample::new(name.clone(), started, Some(Wt(started.0 + t.0.as_nanos() as u64)))).into_iter().collect();
    (Some(Checkpoint { name, started }), syncs)
}

/// The checkpoint and rounds of a failover from both views: the hub's DRPC and what the lost primary's own
/// VRG reported before the fault (fresher; the hub's copy lags by its refresh). The later checkpoint holds
/// (both are rounds the storage reported complete; on a tie, the cluster's own). Pure.
pub fn merge_views(hub: Option<Checkpoint>, hub_syncs: Vec<SyncSample>, own: &[SyncSample], fault_at: Wt) -> (Option<Checkpoint>, Vec<SyncSample>) {
    let mine = super::rounds::checkpoint_before(own, fault_at).map(|c| Checkpoint { name: format!("{} (primary's VRG)", c.name), started: c.started });
    let checkpoint = match (hub, mine) {
        (Some(h), Some(m)) => Some(if m.started >= h.started { m } else { h }),
        (h, m) => h.or(m),
    };
    let mut syncs: Vec<SyncSample> = own.to_vec();
    syncs.extend(hub_syncs.into_iter().filter(|h| !own.iter().any(|o| o.name == h.name)));
    (checkpoint, syncs)
}

#[async_trait]
impl DrDriver for RamenDriver {
    /// The application must already be protected: its DRPC (named after the VM) placed on `site`'s cluster
    /// and PeerReady. Its DRPolicy gives the schedule.
    async fn provision(&mut self, vm: &str, site: &str) -> Result<Volume, EnvError> {
        let cluster = self.cluster(site)?.to_string();
        let d = self.drpcs.get_opt(vm).await.map_err(|source| K8sError::Api {
            what: "read".into(),
            kind: "DRPlacementControl".into(),
            namespace: self.namespace.clone(),
            name: vm.into(),
            source,
        })?;
        let d = d.ok_or_else(|| EnvError::Usage(format!("no DRPlacementControl {}/{vm}: protect the VM's application with Ramen first", self.namespace)))?;
        let placed = d.status.as_ref().and_then(|s| s.preferred_decision.as_ref()).map(|p| p.cluster_name.clone()).or(d.spec.preferred_cluster.clone());
        if placed.as_deref() != Some(cluster.as_str()) {
            return Err(EnvError::Usage(format!(
                "DRPlacementControl {}/{vm} places the application on {}, the scenario starts it on site {site} ({cluster})",
                self.namespace,
                placed.as_deref().unwrap_or("no cluster")
            )));
        }
        let volume = self.make_disk(vm, site).await?;
        // protection of a new PVC takes Ramen a round: PeerReady within the action deadline
        let d = ramen::wait_for(&self.drpcs, &self.namespace, vm, "be PeerReady (the application protected)", self.deadline, ramen::peer_ready).await?;
        let policy = self.policies.get(&d.spec.dr_policy_ref.name).await.map_err(|source| K8sError::Api {
            what: "read".into(),
            kind: "DRPolicy".into(),
            namespace: String::new(),
            name: d.spec.dr_policy_ref.name.clone(),
            source,
        })?;
        let interval = policy.spec.scheduling_interval.trim();
        self.interval = if interval.is_empty() {
            None
        } else {
            Some(interval.parse::<Dur>().map_err(|e| EnvError::Usage(format!("DRPolicy {}: schedulingInterval: {e}", d.spec.dr_policy_ref.name)))?.0)
        };
        self.peers = policy.spec.dr_clusters.clone();
        check_policy(&d.spec.dr_policy_ref.name, self.interval, self.declared)?;
        self.apps.insert(vm.to_string(), App { drpc: vm.to_string(), primary: site.to_string(), volume: volume.clone(), rounds: Default::default() });
        self.watch_syncs(vm);
        Ok(Volume { name: volume })
    }

    fn volume(&self, vm: &str) -> Result<Volume, EnvError> {
        self.app(vm).map(|a| Volume { name: a.volume.clone() })
    }

    fn primary(&self, vm: &str) -> Result<String, EnvError> {
        self.app(vm).map(|a| a.primary.clone())
    }

    async fn relocate(&mut self, vm: &str, to: &str, barrier: bool, m: &mut Marker) -> Result<DriverReport, EnvError> {
        if !barrier {
            return Err(EnvError::Usage(
                "Ramen always runs its final sync before a relocate: \"without waiting for the sync barrier\" is a lab-only negative control".into(),
            ));
        }
        let d = self.act(vm, to, Action::Relocate, m).await?;
        Ok(DriverReport { promise: Promise::NoLoss, details: Self::details(&d) })
    }

    /// Metro-DR: the lost cluster is fenced through its DRCluster first (and unfenced when the scenario
    /// ends); `fence: false` cannot be asked of Ramen.
    async fn failover(&mut self, vm: &str, to: &str, fault_at: Wt, fence: bool, m: &mut Marker) -> Result<DriverReport, EnvError> {
        if !fence {
            return Err(EnvError::Usage("a failover without fencing is a lab-only negative control: Ramen fences through its DRClusters".into()));
        }
        if self.interval.is_none() {
            // Metro-DR: Ramen fails over only from a fenced cluster; the lost one is fenced first
            let lost = self.cluster(&self.app(vm)?.primary)?.to_string();
            ramen::fence(&self.drclusters, &lost, "Fenced", self.deadline).await?;
            m.mark(Segment::StorageFenced);
            self.fenced.push(lost);
        }
        // what the lost primary's own VRG reported before the fault
        if let Some(a) = self.apps.get_mut(vm) {
            a.rounds.stop();
        }
        let (own, offset) = (self.app(vm)?.rounds.seen(), self.app(vm)?.rounds.offset());
        let d = self.act(vm, to, Action::Failover, m).await?;
        let promise = match self.interval {
            Some(interval) => {
                let (hub, hub_syncs) = checkpoint(&d);
                let (checkpoint, syncs) = merge_views(hub, hub_syncs, &own, fault_at);
                let (interval, allowance) = self.declared.unwrap_or((interval, interval));
                Promise::Window {
                    interval,
                    allowance,
                    warmup: crate::config::warmup(crate::config::Scheduler::Storage, interval, allowance),
                    checkpoint,
                    syncs,
                    rollback: None,
                }
            }
            None => Promise::NoLoss,
        };
        let mut details = Self::details(&d);
        // the lost primary's clock against the witness's (seconds, bounds): its rounds were moved by it
        details["primaryClockOffsetS"] = json!(offset);
        Ok(DriverReport { promise, details })
    }

    /// Waits until Ramen reports a group sync taken at or after `since` (three intervals + the allowance):
    /// the primary cluster's own VRG where the driver can read it, else the hub's DRPC.
    async fn replicated(&mut self, vm: &str, to: &str, since: Wt) -> Result<String, EnvError> {
        let drpc = self.app(vm)?.drpc.clone();
        // site X must be the VM's peer: a cluster of the application's DRPolicy other than its primary
        let (primary, cluster) = (self.app(vm)?.primary.clone(), self.cluster(to)?.to_string());
        if primary == to {
            return Err(EnvError::Usage(format!("site {to} is the VM's primary: replication to it proves nothing")));
        }
        if !self.peers.contains(&cluster) {
            return Err(EnvError::Usage(format!("site {to} ({cluster}) is not a cluster of the application's DRPolicy ({})", self.peers.join(", "))));
        }
        let Some(interval) = self.interval else {
            // Metro-DR: the hub reports the peer ready (the volumes replicated synchronously to it)
            let deadline = self.deadline;
            ramen::wait_for(&self.drpcs, &self.namespace, &drpc, &format!("be PeerReady with {cluster}"), deadline, ramen::peer_ready).await?;
            return Ok(format!("Metro-DR: DRPlacementControl {drpc} PeerReady, {cluster} in its DRPolicy"));
        };
        let (interval, allowance) = self.declared.unwrap_or((interval, interval));
        let deadline = interval * 3 + allowance;
        let a = self.app(vm)?;
        if a.rounds.watching() {
            return a.rounds.wait_since(since, deadline, &a.primary).await.map(|n| format!("{n} (the primary cluster's VRG)"));
        }
        let d =
            ramen::wait_for(&self.drpcs, &self.namespace, &drpc, "report a group sync taken since the VM wrote", deadline, ramen::synced_since(since)).await?;
        Ok(format!("lastGroupSyncTime {}", d.status.and_then(|s| s.last_group_sync_time).unwrap_or_default()))
    }

    async fn serving(&mut self, _vm: &str) -> Result<(), EnvError> {
        Ok(())
    }

    /// Each managed cluster's own VolumeReplicationGroup (`status.state`), where the driver can read the
    /// managed clusters; else Unknown, saying so.
    async fn roles(&mut self, vm: &str) -> Result<Vec<SiteRole>, EnvError> {
        let (Some(o), Some((clients, _, _))) = (self.vrg(vm), self.disks.as_ref()) else {
            return Ok(self
                .clusters
                .keys()
                .map(|s| SiteRole { site: s.clone(), role: Role::Unknown, detail: "the managed clusters are not reachable from this environment".into() })
                .collect());
        };
        let mut out = vec![];
        for (site, c) in clients {
            let r = tokio::time::timeout(Duration::from_secs(3), crate::k8s::apply::get(c, &o)).await;
            out.push(match r {
                Ok(Ok(Some(v))) => {
                    let state = v.pointer("/status/state").and_then(|s| s.as_str());
                    SiteRole { site: site.clone(), role: role_of(state), detail: format!("VolumeReplicationGroup {}: state {}", o.name, state.unwrap_or("-")) }
                }
                Ok(Ok(None)) => SiteRole { site: site.clone(), role: Role::Unknown, detail: format!("no VolumeReplicationGroup {}", o.name) },
                Ok(Err(e)) => SiteRole { site: site.clone(), role: Role::Unknown, detail: e.to_string() },
                Err(_) => SiteRole { site: site.clone(), role: Role::Unknown, detail: "the cluster did not answer within 3s".into() },
            });
        }
        Ok(out)
    }

    /// Ramen repairs the pair itself once the returned cluster answers: awaited (budget `resync`) until
    /// that cluster's own VolumeReplicationGroup is Secondary, the primary reports a group sync taken after
    /// the repair began, and the hub's DRPC is PeerReady. Ramen always resyncs: the negative controls that
    /// skip it are the lab's.
    async fn repair(&mut self, vm: &str, site: &str, resync: bool, m: &mut Marker) -> Result<serde_json::Value, EnvError> {
        if !resync {
            return Err(EnvError::Usage(
                "Ramen resyncs a returned cluster itself: coming back without the resync (or without repair) is a lab-only negative control".into(),
            ));
        }
        let (drpc, primary) = {
            let a = self.app(vm)?;
            (a.drpc.clone(), a.primary.clone())
        };
        if primary == site {
            return Ok(json!({ "note": format!("site {site} is VM {vm}'s primary: nothing to repair") }));
        }
        let (Some(o), Some((clients, _, _))) = (self.vrg(vm), self.disks.as_ref()) else {
            return Err(EnvError::Usage(format!("the managed clusters are not reachable from this environment: the repair of site {site} cannot be seen")));
        };
        let c = clients.get(site).cloned().ok_or_else(|| EnvError::Usage(format!("site {site} has no managed cluster client")))?;
        let (since, budget) = (Wt::now(), self.resync);
        crate::k8s::apply::wait_ready(&c, &o, "become Secondary on the returned cluster", budget, ramen::vrg_in("Secondary")).await?;
        m.mark(Segment::Demoted);
        let round = self.app(vm)?.rounds.wait_since(since, budget, &primary).await?;
        m.mark(Segment::Resynced);
        let d = ramen::wait_for(&self.drpcs, &self.namespace, &drpc, "be PeerReady again", budget, ramen::peer_ready).await?;
        Ok(json!({ "resyncedWith": round, "resyncMs": Wt::now().since(since).as_secs_f64() * 1e3, "drpc": Self::details(&d) }))
    }

    /// The hub's DRPCs and events in their namespace; each managed cluster's VRGs, VolumeReplications,
    /// VMs, PVCs and events in the application's namespace (where this driver made the disks).
    async fn gather(&mut self, dir: &std::path::Path, _vms: &[String]) -> crate::ports::Gathered {
        let mut g = crate::k8s::gather::namespace(&self.drpcs.clone().into_client(), "hub", &self.namespace, dir).await;
        match &self.disks {
            Some((clients, _, ns)) => {
                for (site, c) in clients {
                    g.extend(crate::k8s::gather::namespace(c, &format!("site-{site}"), ns, dir).await);
                }
            }
            None => g.missing.push("the managed clusters: this environment gives the driver no client of theirs (only the hub's)".into()),
        }
        g
    }

    async fn release(&mut self, vm: &str) {
        if let Some(mut a) = self.apps.remove(vm) {
            a.rounds.stop();
        }
        // what this drill fenced is unfenced (best effort: Ramen may need the cluster back first)
        for c in std::mem::take(&mut self.fenced) {
            if let Err(e) = ramen::fence(&self.drclusters, &c, "Unfenced", self.deadline).await {
                tracing::warn!("failed to unfence managed cluster {c}: {e}");
            }
        }
    }

    async fn shutdown(&mut self) {}
}

/// A DRPolicy that schedules less often than the environment file declares cannot keep the declared
/// promise: refused before the drill starts (the system's failure), never a wider bound. Pure.
pub fn check_policy(name: &str, scheduled: Option<Duration>, declared: Option<(Duration, Duration)>) -> Result<(), EnvError> {
    match (scheduled, declared) {
        (Some(s), Some((d, _))) if s > d => Err(EnvError::Unkeepable(format!(
            "DRPolicy {name} schedules replication every {}, above the interval the environment file declares ({}): the declared bound cannot be kept",
            Dur(s),
            Dur(d)
        ))),
        (Some(s), None) => {
            Err(EnvError::Usage(format!("DRPolicy {name} is Regional-DR (schedulingInterval {}), the environment file declares Metro-DR", Dur(s))))
        }
        (None, Some(_)) => Err(EnvError::Usage(format!("DRPolicy {name} is Metro-DR (no schedulingInterval), the environment file declares Regional-DR"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_the_environment_files_never_the_policys() {
        let m = |s: u64| Duration::from_secs(60 * s);
        assert!(check_policy("p", Some(m(5)), Some((m(5), m(1)))).is_ok());
        assert!(check_policy("p", Some(m(1)), Some((m(5), m(1)))).is_ok());
        let e = check_policy("dr-1h", Some(m(60)), Some((m(5), m(1)))).unwrap_err();
        assert_eq!(crate::error::Caused::cause(&e), crate::error::Cause::System);
        assert!(e.to_string().contains("DRPolicy dr-1h schedules replication every 1h, above the interval the environment file declares (5m)"), "{e}");
        assert!(check_policy("p", None, None).is_ok());
        assert!(check_policy("p", Some(m(5)), None).is_err() && check_policy("p", None, Some((m(5), m(1)))).is_err());
    }

    #[test]
    fn the_checkpoint_and_sync_come_from_the_drpc() {
        let d: DRPlacementControl = serde_saphyr::from_str(
            r#"
apiVersion: ramendr.openshift.io/v1alpha1
kind: DRPlacementControl
metadata: { name: vm0, namespace: apps }
spec: { placementRef: { name: p }, drPolicyRef: { name: dr-5m } }
status: { lastGroupSyncTime: "2026-11-29T05:00:00Z", lastGroupSyncDuration: 2.5s }
"#,
        )
        .unwrap();
        let (c, syncs) = checkpoint(&d);
        let c = c.unwrap();
        assert_eq!(c.name, "lastGroupSyncTime 2026-11-29T05:00:00Z");
        assert_eq!(syncs[0].sync_ms, Some(2500.0));
        let mut none = d.clone();
        none.status = None;
        assert_eq!(checkpoint(&none), (None, vec![]));
        // the primary's own view is fresher: its later round before the fault is the checkpoint
        let s = |t: u64, took: u64| SyncSample::new(format!("lastGroupSyncTime {t}"), Wt::from_ms(t), Some(Wt::from_ms(t + took)));
        let own = [s(1000, 100), s(6000, 100), s(11_000, 100)];
        let hub = Some(Checkpoint { name: "hub".into(), started: Wt::from_ms(1000) });
        let (ck, syncs) = merge_views(hub.clone(), vec![s(1000, 100)], &own, Wt::from_ms(10_000));
        assert_eq!(ck.unwrap().started, Wt::from_ms(6000), "the round after the fault does not count");
        assert_eq!(syncs.len(), 3, "the hub's copy of a round the VRG reported is not counted twice");
        let (ck, _) = merge_views(hub, vec![], &[], Wt::from_ms(10_000));
        assert_eq!(ck.unwrap().name, "hub");
    }
}
