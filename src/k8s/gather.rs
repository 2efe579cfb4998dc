//! A failed scenario's gather on a cluster, as ramenctl's `.data/` holds it: the DR objects of the
//! application's namespace (DRPlacementControls, VolumeReplicationGroups, VolumeReplications, the VMs and
//! their instances, the PVCs) and the namespace's events, one JSON file per kind. Each request has a
//! deadline; a kind the cluster does not serve is said, not an error.

use crate::report::Gathered;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::Client;
use std::path::Path;
use std::time::Duration;

/// (group, version, kind, plural) of what a DR failure is read from.
pub const KINDS: &[(&str, &str, &str, &str)] = &[
    ("ramendr.openshift.io", "v1alpha1", "DRPlacementControl", "drplacementcontrols"),
    ("ramendr.openshift.io", "v1alpha1", "VolumeReplicationGroup", "volumereplicationgroups"),
    ("replication.storage.openshift.io", "v1alpha1", "VolumeReplication", "volumereplications"),
    ("kubevirt.io", "v1", "VirtualMachine", "virtualmachines"),
    ("kubevirt.io", "v1", "VirtualMachineInstance", "virtualmachineinstances"),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("", "v1", "Event", "events"),
];

/// Lists every kind of `KINDS` in `namespace` of the cluster `cluster` into `dir/<cluster>/<kind>.json`.
pub async fn namespace(client: &Client, cluster: &str, namespace: &str, dir: &Path) -> Gathered {
    let mut g = Gathered::default();
    let d = dir.join(format!("cluster-{cluster}"));
    if let Err(e) = std::fs::create_dir_all(&d) {
        g.missing.push(format!("{}: {e}", d.display()));
        return g;
    }
    for (group, version, kind, plural) in KINDS {
        let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
        match tokio::time::timeout(Duration::from_secs(10), api.list(&ListParams::default())).await {
            Err(_) => {
                // a cluster that does not answer costs its deadline once
                g.missing.push(format!("cluster {cluster}: listing {kind} in {namespace} took over 10 s: nothing more asked of it"));
                return g;
            }
            Ok(Err(kube::Error::Api(s))) if s.is_not_found() || s.code == 404 => g.missing.push(format!("cluster {cluster} serves no {kind}")),
            Ok(Err(e)) => g.missing.push(format!("cluster {cluster}: listing {kind} in {namespace}: {e}")),
            Ok(Ok(list)) => {
                let p = d.join(format!("{kind}.json"));
                let text = serde_json::to_string_pretty(&list.items).unwrap_or_default();
                match std::fs::write(&p, text) {
                    Ok(()) => g.items.push(format!("{}: {} {kind} in {namespace}", p.display(), list.items.len())),
                    Err(e) => g.missing.push(format!("{}: {e}", p.display())),
                }
            }
        }
    }
    g
}
