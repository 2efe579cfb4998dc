//! The DR driver for two clusters without Ramen: csi-addons VolumeReplication on the VM's PVC. Provision
//! makes the PVC on the primary, stages its twin on the peer (the same PersistentVolume, statically bound,
//! as Ramen's kube-object protection would restore it), and a VolumeReplication on each side (primary /
//! secondary). Relocate demotes then promotes; failover promotes the survivor. The replication rounds are
//! the primary VolumeReplication's `lastSyncTime` / `lastSyncDuration`, read by a poller while the VM runs;
//! the Regional-DR bound is the environment's declared interval and allowance, never what was seen.

use super::at_site;
use super::rounds::{checkpoint_before, Rounds};
use crate::clock::Wt;
use crate::error::{Cause, EnvError};
use crate::k8s::apply::{self, Obj};
use crate::k8s::volrep::{self, Role, VolumeReplication};
use crate::oracle::SyncSample;
use crate::ports::{self, role_of, DrDriver, DriverReport, Marker, Promise, SiteRole, Volume};
use crate::timeline::Segment;
use crate::units::Dur;
use async_trait::async_trait;
use kube::api::{Api, DeleteParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the driver needs to know of the environment.
#[derive(Clone, Debug)]
pub struct VolRepSettings {
    /// How long a returned site's resync may take (`budgets.resync`).
    pub resync: crate::wait::Deadline,
    /// The VM's disk (its namespace is the VolumeReplications').
    pub disk: super::Disk,
    pub replication_class: String,
    pub interval: Duration,
    pub allowance: Duration,
    /// How long a flip may take (`budgets.promote`).
    pub promote: crate::wait::Deadline,
}

struct App {
    pvc: String,
    primary: String,
    rounds: Rounds,
}

pub struct VolRepDriver {
    clients: BTreeMap<String, kube::Client>,
    s: VolRepSettings,
    apps: BTreeMap<String, App>,
}

const REQUEST: Duration = Duration::from_secs(15);

/// The PVC's twin for the peer: bound to a copy of the same PersistentVolume (reclaim Retain, no claim
/// uid), so that when the peer's VolumeReplication is promoted the VM finds its disk there. Pure.
pub fn twin(pvc: &Value, pv: &Value) -> (Value, Value) {
    let (ns, name) = (pvc["metadata"]["namespace"].clone(), pvc["metadata"]["name"].clone());
    let mut pv_spec = pv["spec"].clone();
    pv_spec["persistentVolumeReclaimPolicy"] = json!("Retain");
    pv_spec["claimRef"] = json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": ns, "name": name });
    let pv_copy = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": { "name": pv["metadata"]["name"], "labels": pv["metadata"]["labels"].clone() },
        "spec": pv_spec
    });
    let mut spec = pvc["spec"].clone();
    spec["volumeName"] = pv["metadata"]["name"].clone();
    let pvc_copy = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": { "name": name, "namespace": ns, "labels": pvc["metadata"]["labels"].clone() },
        "spec": spec
    });
    (pvc_copy, pv_copy)
}

/// A VolumeReplication for `pvc` in `role`. Pure.
pub fn replication(ns: &str, pvc: &str, class: &str, role: Role, label: (&str, &str)) -> Value {
    json!({
        "apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplication",
        "metadata": { "name": pvc, "namespace": ns, "labels": { label.0: label.1 } },
        "spec": { "volumeReplicationClass": class, "replicationState": role.spec(), "dataSource": { "kind": "PersistentVolumeClaim", "name": pvc } }
    })
}

/// The replication round a VolumeReplication's status reports (None before the first). Pure.
pub fn sync_of(v: &VolumeReplication) -> Option<SyncSample> {
    let started = volrep::last_sync(Some(v))?;
    let s = v.status.as_ref()?;
    let took = s.last_sync_duration.as_deref().and_then(|d| d.parse::<Dur>().ok());
    Some(SyncSample::new(
        format!("lastSyncTime {}", s.last_sync_time.clone().unwrap_or_default()),
        started,
        took.map(|t| Wt(started.0 + t.0.as_nanos() as u64)),
    ))
}

impl VolRepDriver {
    pub fn new(clients: BTreeMap<String, kube::Client>, s: VolRepSettings) -> VolRepDriver {
        VolRepDriver { clients, s, apps: BTreeMap::new() }
    }

    fn client(&self, site: &str) -> Result<kube::Client, EnvError> {
        self.clients.get(site).cloned().ok_or_else(|| EnvError::Usage(format!("site {site} has no cluster in this environment")))
    }

    fn app(&self, vm: &str) -> Result<&App, EnvError> {
        self.apps.get(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} is protected in this scenario")))
    }

    fn vrs(&self, site: &str) -> Result<Api<VolumeReplication>, EnvError> {
        Ok(Api::namespaced(self.client(site)?, &self.s.disk.namespace))
    }

    fn peer_of(&self, site: &str) -> Result<String, EnvError> {
        self.clients.keys().find(|s| *s != site).cloned().ok_or_else(|| EnvError::Usage(format!("site {site} has no peer")))
    }

    async fn flip(&self, site: &str, pvc: &str, role: Role) -> Result<VolumeReplication, EnvError> {
        let api = self.vrs(site)?;
        let what = format!("make VolumeReplication {}/{pvc} {}", self.s.disk.namespace, role.spec());
        volrep::flip(&api, &self.s.disk.namespace, pvc, role, self.s.promote).await.map_err(at_site(site, &what))
    }

    /// Watches the rounds `site`'s VolumeReplication reports (the new primary).
    fn watch(&mut self, vm: &str, site: &str) -> Result<(), EnvError> {
        let api = self.vrs(site)?;
        let client = self.client(site)?;
        let a = self.apps.get_mut(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} is protected in this scenario")))?;
        let pvc = a.pvc.clone();
        a.rounds.watch(client, move || {
            let (api, pvc) = (api.clone(), pvc.clone());
            async move { api.get_opt(&pvc).await.ok().flatten().and_then(|v| sync_of(&v)) }
        });
        a.primary = site.to_string();
        Ok(())
    }

    fn label(&self, vm: &str) -> (String, String) {
        (self.s.disk.app_label.clone(), crate::k8s::kubevirt::app_of(vm))
    }
}

#[async_trait]
impl DrDriver for VolRepDriver {
    async fn provision(&mut self, vm: &str, site: &str) -> Result<Volume, EnvError> {
        let ns = self.s.disk.namespace.clone();
        let peer = self.peer_of(site)?;
        let (c, pc) = (self.client(site)?, self.client(&peer)?);
        let (lk, lv) = self.label(vm);
        let (pvc, bound) = self.s.disk.make(&c, site, vm).await?;
        let pv_name = bound
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .ok_or_else(|| EnvError::Site {
                site: site.into(),
                what: "read the VM's volume".into(),
                detail: format!("PVC {ns}/{pvc} is bound but names no volume"),
                cause: Cause::System,
            })?
            .to_string();
        let pv =
            apply::get(&c, &Obj::new("v1", "PersistentVolume", None, &pv_name)).await.map_err(at_site(site, "read the VM's volume"))?.ok_or_else(|| {
                EnvError::Site {
                    site: site.into(),
                    what: "read the VM's volume".into(),
                    detail: format!("PersistentVolume {pv_name} is missing"),
                    cause: Cause::System,
                }
            })?;
        let (pvc_twin, pv_twin) = twin(&bound, &pv);
        apply::apply_all(&pc, &[pv_twin, pvc_twin], false, Duration::from_secs(10)).await.map_err(at_site(&peer, "stage the VM's volume"))?;
        let class = self.s.replication_class.clone();
        apply::apply_all(&c, &[replication(&ns, &pvc, &class, Role::Primary, (&lk, &lv))], false, Duration::from_secs(10))
            .await
            .map_err(at_site(site, "protect the VM's PVC"))?;
        apply::apply_all(&pc, &[replication(&ns, &pvc, &class, Role::Secondary, (&lk, &lv))], false, Duration::from_secs(10))
            .await
            .map_err(at_site(&peer, "protect the VM's PVC"))?;
        for (s, role) in [(site.to_string(), Role::Primary), (peer.clone(), Role::Secondary)] {
            let api = self.vrs(&s)?;
            crate::k8s::wait_for(&api, &ns, &pvc, &format!("become {}", role.spec()), self.s.promote, volrep::in_role(role), |v| {
                format!("{:?}", v.and_then(|v| v.status.clone()))
            })
            .await
            .map_err(at_site(&s, "protect the VM's PVC"))?;
        }
        self.apps.insert(vm.into(), App { pvc: pvc.clone(), primary: site.into(), rounds: Rounds::default() });
        self.watch(vm, site)?;
        Ok(Volume { name: pvc })
    }

    fn volume(&self, vm: &str) -> Result<Volume, EnvError> {
        self.app(vm).map(|a| Volume { name: a.pvc.clone() })
    }

    fn primary(&self, vm: &str) -> Result<String, EnvError> {
        self.app(vm).map(|a| a.primary.clone())
    }

    /// Demote (the storage takes the final snapshot and syncs it), then promote the peer.
    async fn relocate(&mut self, vm: &str, to: &str, barrier: bool, m: &mut Marker) -> Result<DriverReport, EnvError> {
        if !barrier {
            return Err(EnvError::Usage(
                "a relocate without the sync barrier is a lab-only negative control: VolumeReplication always syncs on demotion".into(),
            ));
        }
        let (pvc, from) = (self.app(vm)?.pvc.clone(), self.app(vm)?.primary.clone());
        let demoted = self.flip(&from, &pvc, Role::Secondary).await?;
        m.mark(Segment::Demoted);
        let promoted = self.flip(to, &pvc, Role::Primary).await?;
        m.mark(Segment::Promoted);
        self.watch(vm, to)?;
        let details = json!({ "demoted": { "site": from, "status": demoted.status }, "promoted": { "site": to, "status": promoted.status } });
        Ok(DriverReport { promise: Promise::NoLoss, details })
    }

    /// Promote the survivor; the lost site is fenced by the environment's faults (isolated or powered off).
    async fn failover(&mut self, vm: &str, to: &str, fault_at: Wt, fence: bool, m: &mut Marker) -> Result<DriverReport, EnvError> {
        if !fence {
            return Err(EnvError::Usage("a failover without fencing is a lab-only negative control".into()));
        }
        let pvc = self.app(vm)?.pvc.clone();
        if let Some(a) = self.apps.get_mut(vm) {
            a.rounds.stop();
        }
        let (syncs, offset) = (self.app(vm)?.rounds.seen(), self.app(vm)?.rounds.offset());
        let promoted = self.flip(to, &pvc, Role::Primary).await?;
        m.mark(Segment::Promoted);
        self.watch(vm, to)?;
        // the newest round the primary reported complete before the fault
        let checkpoint = checkpoint_before(&syncs, fault_at);
        let details = json!({ "promoted": { "site": to, "status": promoted.status }, "roundsSeen": syncs.len(), "primaryClockOffsetS": offset });
        Ok(DriverReport {
            promise: Promise::Window {
                interval: self.s.interval,
                allowance: self.s.allowance,
                warmup: crate::config::warmup(crate::config::Scheduler::Storage, self.s.interval, self.s.allowance),
                checkpoint,
                syncs,
                rollback: None,
            },
            details,
        })
    }

    /// Each site's VolumeReplication as its cluster reports it (`status.state`).
    async fn roles(&mut self, vm: &str) -> Result<Vec<SiteRole>, EnvError> {
        let pvc = self.app(vm)?.pvc.clone();
        let mut out = vec![];
        for site in self.clients.keys().cloned().collect::<Vec<_>>() {
            let api = self.vrs(&site)?;
            let r = tokio::time::timeout(Duration::from_secs(3), api.get_opt(&pvc)).await;
            out.push(match r {
                Ok(Ok(Some(v))) => {
                    let state = v.status.as_ref().and_then(|s| s.state.clone());
                    SiteRole {
                        site,
                        role: role_of(state.as_deref()),
                        detail: format!("VolumeReplication {pvc}: asked {}, state {}", v.spec.replication_state, state.as_deref().unwrap_or("-")),
                    }
                }
                Ok(Ok(None)) => SiteRole { site, role: ports::Role::Unknown, detail: format!("no VolumeReplication {pvc}") },
                Ok(Err(e)) => SiteRole { site, role: ports::Role::Unknown, detail: e.to_string() },
                Err(_) => SiteRole { site, role: ports::Role::Unknown, detail: "the cluster did not answer within 3s".into() },
            });
        }
        Ok(out)
    }

    /// The returned site's VolumeReplication set secondary (still primary after the failover) with
    /// `autoResync` as asked: the storage resyncs the diverged copy from the primary; with the resync, a
    /// round the primary reports after it began is awaited (budget `resync`), as the proof it replicates.
    async fn repair(&mut self, vm: &str, site: &str, resync: bool, m: &mut Marker) -> Result<serde_json::Value, EnvError> {
        let (pvc, primary) = {
            let a = self.app(vm)?;
            (a.pvc.clone(), a.primary.clone())
        };
        if primary == site {
            return Ok(json!({ "note": format!("site {site} is VM {vm}'s primary: nothing to repair") }));
        }
        let since = Wt::now();
        let api = self.vrs(site)?;
        let what = format!("make VolumeReplication {}/{pvc} secondary", self.s.disk.namespace);
        let demoted =
            volrep::flip_with(&api, &self.s.disk.namespace, &pvc, Role::Secondary, Some(resync), self.s.resync).await.map_err(at_site(site, &what))?;
        m.mark(Segment::Demoted);
        if !resync {
            return Ok(json!({ "demoted": demoted.status, "resync": false }));
        }
        m.mark(Segment::ResyncRequested);
        let round = self.app(vm)?.rounds.wait_since(since, self.s.resync, &primary).await?;
        m.mark(Segment::Resynced);
        Ok(json!({ "demoted": demoted.status, "resync": true, "resyncedWith": round, "resyncMs": Wt::now().since(since).as_secs_f64() * 1e3 }))
    }

    /// Waits until the primary reports a round taken at or after `since` (three intervals + the allowance).
    async fn replicated(&mut self, vm: &str, to: &str, since: Wt) -> Result<String, EnvError> {
        let a = self.app(vm)?;
        // the rounds the primary reports complete are replicated to its peer: site X must be that peer
        if a.primary == to {
            return Err(EnvError::Usage(format!("site {to} is the VM's primary: replication to it proves nothing")));
        }
        if !self.clients.contains_key(to) {
            return Err(EnvError::Usage(format!("site {to} has no cluster in this environment")));
        }
        a.rounds.wait_since(since, self.s.interval * 3 + self.s.allowance, &a.primary).await
    }

    async fn serving(&mut self, _vm: &str) -> Result<(), EnvError> {
        Ok(())
    }

    /// Each site's VolumeReplications, VMs, PVCs and events in the disk's namespace.
    async fn gather(&mut self, dir: &std::path::Path, _vms: &[String]) -> crate::ports::Gathered {
        let mut g = crate::ports::Gathered::default();
        for (site, c) in &self.clients {
            g.extend(crate::k8s::gather::namespace(c, &format!("site-{site}"), &self.s.disk.namespace, dir).await);
        }
        g
    }

    /// The VM's replication, PVCs and staged volumes go (best effort: a lost site may not answer).
    async fn release(&mut self, vm: &str) {
        let Some(mut a) = self.apps.remove(vm) else { return };
        a.rounds.stop();
        for (site, c) in &self.clients {
            let ns = &self.s.disk.namespace;
            let vrs: Api<VolumeReplication> = Api::namespaced(c.clone(), ns);
            let _ = tokio::time::timeout(REQUEST, vrs.delete(&a.pvc, &DeleteParams::default())).await;
            let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = Api::namespaced(c.clone(), ns);
            let pv =
                tokio::time::timeout(REQUEST, pvcs.get_opt(&a.pvc)).await.ok().and_then(|r| r.ok()).flatten().and_then(|p| p.spec.and_then(|s| s.volume_name));
            let _ = tokio::time::timeout(REQUEST, pvcs.delete(&a.pvc, &DeleteParams::default())).await;
            // the staged twin's volume is Retain: removed here (the provisioner's own goes with its claim)
            if let Some(pv) = pv {
                if *site != a.primary {
                    let pvs: Api<k8s_openapi::api::core::v1::PersistentVolume> = Api::all(c.clone());
                    let _ = tokio::time::timeout(REQUEST, pvs.delete(&pv, &DeleteParams::default())).await;
                }
            }
        }
    }

    async fn shutdown(&mut self) {
        let vms: Vec<String> = self.apps.keys().cloned().collect();
        for vm in vms {
            self.release(&vm).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_twin_is_statically_bound_to_the_same_volume() {
        let y = |s: &str| -> Value { serde_saphyr::from_str(s).unwrap() };
        let pvc = y("metadata: {name: vm0-disk, namespace: dr-drill, uid: u1, resourceVersion: '7', labels: {app.kubernetes.io/part-of: dr-drill-vm0}}\nspec: {storageClassName: rbd-mirrored, volumeMode: Block, volumeName: pvc-u1, accessModes: [ReadWriteOnce], resources: {requests: {storage: '67108864'}}}\nstatus: {phase: Bound}");
        let pv = y("metadata: {name: pvc-u1, uid: u2}\nspec: {persistentVolumeReclaimPolicy: Delete, claimRef: {namespace: dr-drill, name: vm0-disk, uid: u1}, csi: {driver: rook-ceph.rbd.csi.ceph.com, volumeHandle: 0001-x}, volumeMode: Block}");
        let (c, v) = twin(&pvc, &pv);
        assert_eq!(c["spec"]["volumeName"], "pvc-u1");
        assert!(c["metadata"].get("uid").is_none() && c.get("status").is_none());
        assert_eq!(c["metadata"]["labels"]["app.kubernetes.io/part-of"], "dr-drill-vm0");
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert!(v["spec"]["claimRef"].get("uid").is_none());
        assert_eq!(v["spec"]["csi"]["volumeHandle"], "0001-x");
    }

    #[test]
    fn a_round_is_read_from_the_status() {
        let v: VolumeReplication = serde_saphyr::from_str("apiVersion: replication.storage.openshift.io/v1alpha1\nkind: VolumeReplication\nmetadata: {name: d, namespace: n}\nspec: {volumeReplicationClass: c, replicationState: primary, dataSource: {kind: PersistentVolumeClaim, name: d}}\nstatus: {lastSyncTime: '2026-11-29T05:00:00Z', lastSyncDuration: 1.5s}").unwrap();
        let s = sync_of(&v).unwrap();
        assert_eq!(s.sync_ms, Some(1500.0));
        assert_eq!(s.name, "lastSyncTime 2026-11-29T05:00:00Z");
        let mut none = v.clone();
        none.status = None;
        assert!(sync_of(&none).is_none());
    }
}
