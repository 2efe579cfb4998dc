//! A double of Ramen for drills on test clusters: it runs against the hub's real API server and the
//! managed clusters' real API servers, and does what Ramen's hub and VRG controllers do for a DRPC, through
//! the same objects: once the application's PVC (selected by the DRPC's pvcSelector) is bound on the
//! preferred cluster, it is protected (a primary VolumeReplication there, its twin staged on the peer with
//! a secondary one) and the DRPC turns PeerReady; the primary's `lastSyncTime` is reported as
//! `lastGroupSyncTime`; a Failover promotes the failover cluster's VolumeReplication, a Relocate demotes
//! the current one first; each managed cluster shows its own view in a VolumeReplicationGroup. The
//! replication itself is the storage double's. After a failover, once the old primary's cluster answers
//! again and its VolumeReplication is still primary, it is demoted with `autoResync` (the storage double
//! resyncs it from the new primary), as Ramen makes the returned cluster's VRG secondary. A managed cluster
//! that does not answer (stopped) holds up one pass for at most a few seconds.

use dr_drill::env::cluster::volrep::{replication, twin};
use dr_drill::k8s::volrep::Role;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const NS: &str = "dr-drill";

fn api(c: &kube::Client, group: &str, version: &str, kind: &str, ns: Option<&str>) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    match ns {
        Some(ns) => Api::namespaced_with(c.clone(), ns, &ar),
        None => Api::all_with(c.clone(), &ar),
    }
}

fn now() -> String {
    let out = std::process::Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn cond(t: &str, g: i64) -> Value {
    json!({"type": t, "status": "True", "observedGeneration": g, "reason": "Success", "message": "", "lastTransitionTime": now()})
}

/// A VolumeReplication's (spec state, reported state, observed generation == generation).
async fn vr(c: &kube::Client, name: &str) -> Option<(String, String, bool)> {
    let v = api(c, "replication.storage.openshift.io", "v1alpha1", "VolumeReplication", Some(NS)).get_opt(name).await.ok()??;
    let g = v.metadata.generation.unwrap_or(0);
    Some((
        v.data["spec"]["replicationState"].as_str().unwrap_or("").into(),
        v.data["status"]["state"].as_str().unwrap_or("").into(),
        v.data["status"]["observedGeneration"].as_i64() == Some(g),
    ))
}

async fn ask(c: &kube::Client, name: &str, role: Role) {
    let _ = api(c, "replication.storage.openshift.io", "v1alpha1", "VolumeReplication", Some(NS))
        .patch(name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicationState": role.spec()}})))
        .await;
}

/// Demotes a diverged copy, asking the storage to resync it from the primary.
async fn demote_resync(c: &kube::Client, name: &str) {
    let spec = json!({"spec": {"replicationState": Role::Secondary.spec(), "autoResync": true}});
    let _ =
        api(c, "replication.storage.openshift.io", "v1alpha1", "VolumeReplication", Some(NS)).patch(name, &PatchParams::default(), &Patch::Merge(spec)).await;
}

/// Runs the double: `hub` holds the DRPCs in `drpc_ns`; `clusters` maps managed cluster names to clients.
pub fn start(hub: kube::Client, drpc_ns: &'static str, clusters: BTreeMap<String, kube::Client>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let drpcs = api(&hub, "ramendr.openshift.io", "v1alpha1", "DRPlacementControl", Some(drpc_ns));
        loop {
            for d in drpcs.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default() {
                // a managed cluster that does not answer holds up a pass for a few seconds at most
                let _ = tokio::time::timeout(std::time::Duration::from_secs(15), step(&drpcs, &d, &clusters)).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
}

async fn step(drpcs: &Api<DynamicObject>, d: &DynamicObject, clusters: &BTreeMap<String, kube::Client>) {
    let name = d.metadata.name.clone().unwrap();
    let g = d.metadata.generation.unwrap_or(0);
    let (spec, status) = (&d.data["spec"], &d.data["status"]);
    let current = status["preferredDecision"]["clusterName"].as_str().or(spec["preferredCluster"].as_str()).unwrap_or("").to_string();
    let peer = clusters.keys().find(|c| **c != current).cloned().unwrap_or_default();
    let pvc = format!("{name}-disk");
    let mut patch = json!({});
    match spec["action"].as_str() {
        None => {
            // protection: the PVC bound on the preferred cluster gets its replication and its staged twin
            let Some(c) = clusters.get(&current) else { return };
            if vr(c, &pvc).await.is_none() {
                let pvcs = api(c, "", "v1", "PersistentVolumeClaim", Some(NS));
                let Ok(Some(p)) = pvcs.get_opt(&pvc).await else { return };
                if p.data["status"]["phase"] != "Bound" {
                    return;
                }
                let pv_name = p.data["spec"]["volumeName"].as_str().unwrap_or("").to_string();
                let Ok(pv) = api(c, "", "v1", "PersistentVolume", None).get(&pv_name).await else { return };
                let (pvc_twin, pv_twin) = twin(&serde_json::to_value(&p).unwrap(), &serde_json::to_value(&pv).unwrap());
                let pc = &clusters[&peer];
                let _ = api(pc, "", "v1", "PersistentVolume", None).create(&PostParams::default(), &serde_json::from_value(pv_twin).unwrap()).await;
                let _ = api(pc, "", "v1", "PersistentVolumeClaim", Some(NS)).create(&PostParams::default(), &serde_json::from_value(pvc_twin).unwrap()).await;
                let label = ("app.kubernetes.io/part-of", "ramen-protected");
                let vrs = |c: &kube::Client| api(c, "replication.storage.openshift.io", "v1alpha1", "VolumeReplication", Some(NS));
                let _ = vrs(c).create(&PostParams::default(), &serde_json::from_value(replication(NS, &pvc, "vrc", Role::Primary, label)).unwrap()).await;
                let _ = vrs(pc).create(&PostParams::default(), &serde_json::from_value(replication(NS, &pvc, "vrc", Role::Secondary, label)).unwrap()).await;
                return;
            }
            let ready = matches!(vr(c, &pvc).await, Some((_, s, true)) if s == "Primary")
                && matches!(vr(&clusters[&peer], &pvc).await, Some((_, s, true)) if s == "Secondary");
            if ready {
                patch["status"] = json!({"phase": "Deployed", "preferredDecision": {"clusterName": current, "clusterNamespace": current}, "conditions": [cond("Available", g), cond("PeerReady", g)]});
            }
        }
        Some(action) => {
            let target = if action == "Failover" { spec["failoverCluster"].as_str() } else { spec["preferredCluster"].as_str() }.unwrap_or("").to_string();
            let done = if action == "Failover" { "FailedOver" } else { "Relocated" };
            let seen = status["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
                .and_then(|c| c["observedGeneration"].as_i64())
                .unwrap_or(0);
            if status["phase"] == done && current == target && seen >= g {
                // done: keep reporting the primary's replication rounds; after a failover, the old primary's
                // cluster, back and still primary, is made secondary with a resync
                if action == "Failover" {
                    let wait = std::time::Duration::from_secs(3);
                    for (_, c) in clusters.iter().filter(|(k, _)| **k != target) {
                        // a cluster that does not answer (still down) is left for a later pass
                        let stale = tokio::time::timeout(wait, vr(c, &pvc)).await.ok().flatten().is_some_and(|(_, s, _)| s == "Primary");
                        if stale {
                            let _ = tokio::time::timeout(wait, demote_resync(c, &pvc)).await;
                        }
                    }
                }
            } else {
                let Some(tc) = clusters.get(&target) else { return };
                let src_demoted = action == "Failover" || current == target || {
                    let sc = &clusters[&current];
                    ask(sc, &pvc, Role::Secondary).await;
                    matches!(vr(sc, &pvc).await, Some((_, s, true)) if s == "Secondary")
                };
                let promoted = src_demoted && {
                    ask(tc, &pvc, Role::Primary).await;
                    matches!(vr(tc, &pvc).await, Some((_, s, true)) if s == "Primary")
                };
                patch["status"] = if promoted {
                    json!({"phase": done, "progression": "Completed", "preferredDecision": {"clusterName": target, "clusterNamespace": target}, "conditions": [cond("Available", g), cond("PeerReady", g)]})
                } else {
                    json!({"phase": if action == "Failover" { "FailingOver" } else { "Relocating" }, "progression": "Running", "conditions": [{"type": "Available", "status": "False", "observedGeneration": g, "reason": "Progressing", "message": "", "lastTransitionTime": now()}]})
                };
            }
        }
    }
    // the group sync Ramen reports: the current primary's newest round
    let primary = patch["status"]["preferredDecision"]["clusterName"].as_str().map(String::from).unwrap_or(current);
    if let Some(c) = clusters.get(&primary) {
        if let Ok(Some(v)) = api(c, "replication.storage.openshift.io", "v1alpha1", "VolumeReplication", Some(NS)).get_opt(&pvc).await {
            if let (Some(t), Some(dur)) = (v.data["status"]["lastSyncTime"].as_str(), v.data["status"]["lastSyncDuration"].as_str()) {
                if status["lastGroupSyncTime"].as_str() != Some(t) {
                    if !patch["status"].is_object() {
                        patch["status"] = json!({});
                    }
                    patch["status"]["lastGroupSyncTime"] = json!(t);
                    patch["status"]["lastGroupSyncDuration"] = json!(dur);
                }
            }
        }
    }
    if patch["status"].is_object() {
        let _ = drpcs.patch_status(&name, &PatchParams::default(), &Patch::Merge(patch)).await;
    }
    // each managed cluster's own view: a VRG named after the DRPC, its state that of its VolumeReplication,
    // the primary's group sync that of its VolumeReplication's rounds
    for c in clusters.values() {
        // each cluster on its own: one that does not answer must not hold up the others' views
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), own_view(c, &name, &pvc, spec)).await;
    }
}

/// A managed cluster's own view: a VRG named after the DRPC, its state that of its VolumeReplication, the
/// primary's group sync that of its VolumeReplication's rounds.
async fn own_view(c: &kube::Client, name: &str, pvc: &str, spec: &Value) {
    let Ok(Some(v)) = api(c, "replication.storage.openshift.io", "v1alpha1", "VolumeReplication", Some(NS)).get_opt(pvc).await else { return };
    let want = v.data["spec"]["replicationState"].as_str().unwrap_or("secondary").to_string();
    let vrgs = api(c, "ramendr.openshift.io", "v1alpha1", "VolumeReplicationGroup", Some(NS));
    let vrg: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "ramendr.openshift.io/v1alpha1", "kind": "VolumeReplicationGroup", "metadata": {"name": name, "namespace": NS},
        "spec": {"replicationState": want, "pvcSelector": spec["pvcSelector"]}}),
    )
    .unwrap();
    if vrgs.create(&PostParams::default(), &vrg).await.is_err() {
        let _ = vrgs.patch(name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicationState": want}}))).await;
    }
    let mut st = json!({"state": v.data["status"]["state"].as_str().unwrap_or("Unknown")});
    if v.data["status"]["state"] == "Primary" {
        st["lastGroupSyncTime"] = v.data["status"]["lastSyncTime"].clone();
        st["lastGroupSyncDuration"] = v.data["status"]["lastSyncDuration"].clone();
    }
    let _ = vrgs.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({ "status": st }))).await;
}
