//! csi-addons VolumeReplication without Ramen: one per PVC on each cluster; the DR action flips
//! `spec.replicationState` (the old primary to `secondary` when it can still be reached, the survivor to
//! `primary`) and waits until `status.state` follows for the new generation with `Completed` True.
//! `lastSyncTime` is when the newest replicated snapshot was taken; the VolumeReplicationClass carries the
//! schedule (`parameters.schedulingInterval`).

use super::{condition_true, Condition, K8sError};
use crate::clock::Wt;
use kube::api::{Api, Patch, PatchParams};
use kube::CustomResource;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    pub kind: String,
    pub name: String,
}

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "replication.storage.openshift.io",
    version = "v1alpha1",
    kind = "VolumeReplication",
    namespaced,
    status = "VrStatus",
    schema = "disabled",
    shortname = "vr"
)]
#[serde(rename_all = "camelCase")]
pub struct VrSpec {
    pub volume_replication_class: String,
    /// primary, secondary or resync.
    pub replication_state: String,
    pub data_source: LocalRef,
    #[serde(default)]
    pub auto_resync: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VrStatus {
    /// Primary, Secondary or Unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_duration: Option<String>,
}

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(group = "replication.storage.openshift.io", version = "v1alpha1", kind = "VolumeReplicationClass", schema = "disabled")]
#[serde(rename_all = "camelCase")]
pub struct VrClassSpec {
    pub provisioner: String,
    #[serde(default)]
    pub parameters: std::collections::BTreeMap<String, String>,
}

/// The replication state a VolumeReplication can be asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Primary,
    Secondary,
}

impl Role {
    pub fn spec(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
        }
    }
    pub fn state(self) -> &'static str {
        match self {
            Role::Primary => "Primary",
            Role::Secondary => "Secondary",
        }
    }
}

/// Condition: asked for `role`, and the operator reports that state for this generation with the
/// `Completed` condition True. Pure.
pub fn in_role(role: Role) -> impl Fn(Option<&VolumeReplication>) -> bool + Send + 'static {
    move |v| {
        let Some(v) = v else { return false };
        let Some(s) = v.status.as_ref() else { return false };
        let generation = v.metadata.generation.unwrap_or(0);
        v.spec.replication_state == role.spec()
            && s.state.as_deref() == Some(role.state())
            && s.observed_generation >= generation
            && condition_true(&s.conditions, "Completed", Some(generation))
    }
}

/// `lastSyncTime` on the witness clock.
pub fn last_sync(v: Option<&VolumeReplication>) -> Option<Wt> {
    let t = v?.status.as_ref()?.last_sync_time.as_deref()?;
    crate::clock::parse_rfc3339(t).map(Wt::from_unix_secs)
}

fn describe(v: Option<&VolumeReplication>) -> String {
    let Some(v) = v else { return "not found".into() };
    let s = v.status.clone().unwrap_or_default();
    let conds: Vec<String> = s.conditions.iter().map(|c| format!("{}={} ({})", c.type_, c.status, c.reason)).collect();
    format!(
        "asked {}, state {}, observed generation {} of {}, conditions [{}]",
        v.spec.replication_state,
        s.state.as_deref().unwrap_or("-"),
        s.observed_generation,
        v.metadata.generation.unwrap_or(0),
        conds.join(", ")
    )
}

/// Asks VolumeReplication `name` for `role` and waits (watching, at most `deadline`) until it is in it.
pub async fn flip(
    api: &Api<VolumeReplication>,
    ns: &str,
    name: &str,
    role: Role,
    deadline: impl Into<crate::wait::Deadline>,
) -> Result<VolumeReplication, K8sError> {
    flip_with(api, ns, name, role, None, deadline).await
}

/// [`flip`], also setting `spec.autoResync` (a demoted copy that diverged is resynced from the primary).
pub async fn flip_with(
    api: &Api<VolumeReplication>,
    ns: &str,
    name: &str,
    role: Role,
    auto_resync: Option<bool>,
    deadline: impl Into<crate::wait::Deadline>,
) -> Result<VolumeReplication, K8sError> {
    let mut patch = serde_json::json!({"spec": {"replicationState": role.spec()}});
    if let Some(r) = auto_resync {
        patch["spec"]["autoResync"] = serde_json::json!(r);
    }
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await.map_err(|source| K8sError::Api {
        what: format!("set replicationState {} on", role.spec()),
        kind: "VolumeReplication".into(),
        namespace: ns.into(),
        name: name.into(),
        source,
    })?;
    super::wait_for(api, ns, name, &format!("become {}", role.spec()), deadline, in_role(role), describe).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vr(yaml: &str) -> VolumeReplication {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn a_flip_is_done_when_the_state_follows_for_this_generation() {
        let promoted = vr(r#"
apiVersion: replication.storage.openshift.io/v1alpha1
kind: VolumeReplication
metadata: { name: vm0-disk, namespace: apps, generation: 2 }
spec:
  volumeReplicationClass: rbd-5m
  replicationState: primary
  dataSource: { kind: PersistentVolumeClaim, name: vm0-disk }
status:
  state: Primary
  observedGeneration: 2
  lastSyncTime: "2026-11-29T05:00:00Z"
  conditions:
    - { type: Completed, status: "True", observedGeneration: 2, reason: Promoted, message: "" }
    - { type: Degraded, status: "False", observedGeneration: 2, reason: Healthy, message: "" }
"#);
        assert!(in_role(Role::Primary)(Some(&promoted)));
        assert!(!in_role(Role::Secondary)(Some(&promoted)));
        assert!(!in_role(Role::Primary)(None));
        let mut stale = promoted.clone();
        stale.metadata.generation = Some(3);
        assert!(!in_role(Role::Primary)(Some(&stale)), "the operator has not seen the new request");
        let mut failed = promoted.clone();
        failed.status.as_mut().unwrap().conditions[0].status = "False".into();
        assert!(!in_role(Role::Primary)(Some(&failed)));
        assert!(last_sync(Some(&promoted)).is_some());
        assert!(describe(Some(&stale)).contains("observed generation 2 of 3"));
    }
}
