//! Ramen (OpenShift DR): the DRPlacementControl on the hub carries the DR action of one application; its
//! DRPolicy carries the Regional-DR schedule. A failover patches `spec.action: Failover` with
//! `failoverCluster`, a relocate `spec.action: Relocate` with `preferredCluster`; Ramen's phase then goes
//! FailingOver -> FailedOver or Relocating -> Relocated, with the `Available` condition for the new
//! generation. `lastGroupSyncTime` is when the newest synchronisation of all the application's PVCs was
//! taken (the checkpoint the survivor holds), `lastGroupSyncDuration` how long the slowest of them took.

use super::{condition_true, Condition, K8sError};
use crate::clock::Wt;
use kube::api::{Api, Patch, PatchParams};
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// A reference to an object (`v1.ObjectReference`, the fields Ramen reads).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "ramendr.openshift.io",
    version = "v1alpha1",
    kind = "DRPlacementControl",
    namespaced,
    status = "DrpcStatus",
    schema = "disabled",
    shortname = "drpc"
)]
#[serde(rename_all = "camelCase")]
pub struct DrpcSpec {
    pub placement_ref: ObjectRef,
    pub dr_policy_ref: ObjectRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_cluster: Option<String>,
    #[serde(default)]
    pub pvc_selector: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_namespaces: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementDecision {
    #[serde(default)]
    pub cluster_name: String,
    #[serde(default)]
    pub cluster_namespace: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrpcStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_decision: Option<PlacementDecision>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_group_sync_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_group_sync_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_kube_object_protection_time: Option<String>,
}

#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(group = "ramendr.openshift.io", version = "v1alpha1", kind = "DRPolicy", schema = "disabled")]
#[serde(rename_all = "camelCase")]
pub struct DrPolicySpec {
    #[serde(default)]
    pub dr_clusters: Vec<String>,
    /// Regional-DR: how often the PVCs are synchronised ("5m"); empty for Metro-DR.
    #[serde(default)]
    pub scheduling_interval: String,
}

/// A managed cluster as Ramen knows it; Metro-DR fences a lost cluster through it (`clusterFence`), which
/// Ramen carries out with csi-addons NetworkFence on the peer.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(group = "ramendr.openshift.io", version = "v1alpha1", kind = "DRCluster", status = "DrClusterStatus", schema = "disabled")]
#[serde(rename_all = "camelCase")]
pub struct DrClusterSpec {
    /// Unfenced, Fenced, ManuallyFenced or ManuallyUnfenced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_fence: Option<String>,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub s3_profile_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrClusterStatus {
    /// Available, Fencing, Fenced, Unfencing, Unfenced, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// Condition: the DRCluster was asked for `fence` (Fenced / Unfenced) and reports that phase. Pure.
pub fn fence_state(fence: &'static str) -> impl Fn(Option<&DRCluster>) -> bool + Send + 'static {
    move |c| c.is_some_and(|c| c.spec.cluster_fence.as_deref() == Some(fence) && c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(fence))
}

fn describe_cluster(c: Option<&DRCluster>) -> String {
    let Some(c) = c else { return "not found".into() };
    format!("clusterFence {}, phase {}", c.spec.cluster_fence.as_deref().unwrap_or("-"), c.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("-"))
}

/// Asks Ramen to fence (`Fenced`) or unfence (`Unfenced`) managed cluster `name` and waits for it.
pub async fn fence(api: &Api<DRCluster>, name: &str, state: &'static str, deadline: impl Into<crate::wait::Deadline>) -> Result<DRCluster, K8sError> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"spec": {"clusterFence": state}}))).await.map_err(|source| K8sError::Api {
        what: format!("set clusterFence {state} on"),
        kind: "DRCluster".into(),
        namespace: String::new(),
        name: name.into(),
        source,
    })?;
    super::wait_for(api, "", name, &format!("be {state}"), deadline, fence_state(state), describe_cluster).await
}

/// The managed cluster's own view of a protected application: its VolumeReplicationGroup (named after the
/// DRPC), read as JSON. Is it asked for and in `state` (Primary / Secondary)? Pure.
pub fn vrg_in(state: &'static str) -> impl Fn(Option<&serde_json::Value>) -> bool + Send + 'static {
    move |v| {
        let Some(v) = v else { return false };
        v.pointer("/spec/replicationState").and_then(|s| s.as_str()).is_some_and(|s| s.eq_ignore_ascii_case(state))
            && v.pointer("/status/state").and_then(|s| s.as_str()) == Some(state)
    }
}

/// The group sync a VRG reports (`lastGroupSyncTime`, `lastGroupSyncDuration`). Pure.
pub fn vrg_sync(v: &serde_json::Value) -> Option<crate::oracle::SyncSample> {
    let t = v.pointer("/status/lastGroupSyncTime")?.as_str()?;
    let started = Wt::from_unix_secs(crate::clock::parse_rfc3339(t)?);
    let took = v.pointer("/status/lastGroupSyncDuration").and_then(|d| d.as_str()).and_then(|d| d.parse::<crate::units::Dur>().ok());
    Some(crate::oracle::SyncSample::new(format!("lastGroupSyncTime {t}"), started, took.map(|d| Wt(started.0 + d.0.as_nanos() as u64))))
}

/// A DR action Ramen carries out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Failover,
    Relocate,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failover => "Failover",
            Action::Relocate => "Relocate",
        }
    }
    /// The phase Ramen reports when the action is done.
    pub fn done_phase(self) -> &'static str {
        match self {
            Action::Failover => "FailedOver",
            Action::Relocate => "Relocated",
        }
    }
    /// The spec patch that requests the action towards `cluster`.
    pub fn patch(self, cluster: &str) -> serde_json::Value {
        match self {
            Action::Failover => serde_json::json!({"spec": {"action": "Failover", "failoverCluster": cluster}}),
            Action::Relocate => serde_json::json!({"spec": {"action": "Relocate", "preferredCluster": cluster}}),
        }
    }
}

/// Condition: the DRPC carries `action` towards `cluster` and Ramen reports it done for the current
/// generation (phase, `Available` for that generation, and the placement decided for that cluster when
/// Ramen reports a decision). Pure.
pub fn action_done(action: Action, cluster: &str) -> impl Fn(Option<&DRPlacementControl>) -> bool + Send + 'static {
    let cluster = cluster.to_string();
    move |d| {
        let Some(d) = d else { return false };
        let target = match action {
            Action::Failover => d.spec.failover_cluster.as_deref(),
            Action::Relocate => d.spec.preferred_cluster.as_deref(),
        };
        let Some(s) = d.status.as_ref() else { return false };
        d.spec.action.as_deref() == Some(action.as_str())
            && target == Some(cluster.as_str())
            && s.phase.as_deref() == Some(action.done_phase())
            && condition_true(&s.conditions, "Available", d.metadata.generation)
            && s.preferred_decision.as_ref().is_none_or(|p| p.cluster_name.is_empty() || p.cluster_name == *cluster)
    }
}

/// Condition: protected and ready to move (`PeerReady` True for the current generation). Pure.
pub fn peer_ready(d: Option<&DRPlacementControl>) -> bool {
    d.and_then(|d| d.status.as_ref().map(|s| condition_true(&s.conditions, "PeerReady", d.metadata.generation))).unwrap_or(false)
}

/// Condition: a group sync taken at or after `since` is reported. Pure.
pub fn synced_since(since: Wt) -> impl Fn(Option<&DRPlacementControl>) -> bool + Send + 'static {
    move |d| last_group_sync(d).is_some_and(|t| t >= since)
}

/// `lastGroupSyncTime` on the witness clock.
pub fn last_group_sync(d: Option<&DRPlacementControl>) -> Option<Wt> {
    let t = d?.status.as_ref()?.last_group_sync_time.as_deref()?;
    crate::clock::parse_rfc3339(t).map(Wt::from_unix_secs)
}

/// What the DRPC shows, in one line, for errors and logs.
pub fn describe(d: Option<&DRPlacementControl>) -> String {
    let Some(d) = d else { return "not found".into() };
    let s = d.status.clone().unwrap_or_default();
    let conds: Vec<String> = s.conditions.iter().map(|c| format!("{}={}", c.type_, c.status)).collect();
    format!(
        "action {}, phase {}, progression {}, conditions [{}], generation {}",
        d.spec.action.as_deref().unwrap_or("-"),
        s.phase.as_deref().unwrap_or("-"),
        s.progression.as_deref().unwrap_or("-"),
        conds.join(", "),
        d.metadata.generation.unwrap_or(0)
    )
}

fn api_err(what: String, ns: &str, name: &str) -> impl FnOnce(kube::Error) -> K8sError {
    let (ns, name) = (ns.to_string(), name.to_string());
    move |source| K8sError::Api { what, kind: "DRPlacementControl".into(), namespace: ns, name, source }
}

/// Requests `action` towards `cluster` on DRPC `name` (a merge patch of its spec).
pub async fn request(api: &Api<DRPlacementControl>, ns: &str, name: &str, action: Action, cluster: &str) -> Result<DRPlacementControl, K8sError> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(action.patch(cluster))).await.map_err(api_err(
        format!("request {} to {cluster} on", action.as_str()),
        ns,
        name,
    ))
}

/// Waits until `cond` holds on DRPC `name`, watching it, for at most `deadline`; the timeout names the
/// DRPC, what was awaited and what it last showed.
pub async fn wait_for(
    api: &Api<DRPlacementControl>,
    ns: &str,
    name: &str,
    what: &str,
    deadline: impl Into<crate::wait::Deadline>,
    cond: impl Fn(Option<&DRPlacementControl>) -> bool + Send + 'static,
) -> Result<DRPlacementControl, K8sError> {
    super::wait_for(api, ns, name, what, deadline, cond, describe).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drpc(yaml: &str) -> DRPlacementControl {
        serde_saphyr::from_str(yaml).unwrap()
    }

    const FAILED_OVER: &str = r#"
apiVersion: ramendr.openshift.io/v1alpha1
kind: DRPlacementControl
metadata: { name: vm0, namespace: apps, generation: 3 }
spec:
  placementRef: { kind: Placement, name: vm0-placement }
  drPolicyRef: { name: dr-5m }
  preferredCluster: east
  failoverCluster: west
  pvcSelector: { matchLabels: { app: vm0 } }
  action: Failover
status:
  phase: FailedOver
  progression: Completed
  preferredDecision: { clusterName: west, clusterNamespace: west }
  lastGroupSyncTime: "2026-11-29T05:00:00Z"
  lastGroupSyncDuration: 2.5s
  conditions:
    - { type: Available, status: "True", observedGeneration: 3, reason: FailedOver, message: done }
    - { type: PeerReady, status: "False", observedGeneration: 3, reason: NotStarted, message: "" }
"#;

    #[test]
    fn a_failover_is_done_only_for_its_cluster_and_generation() {
        let d = drpc(FAILED_OVER);
        assert!(action_done(Action::Failover, "west")(Some(&d)));
        assert!(!action_done(Action::Failover, "east")(Some(&d)), "another cluster");
        assert!(!action_done(Action::Relocate, "west")(Some(&d)), "another action");
        assert!(!action_done(Action::Failover, "west")(None));
        // Available from an older generation: the request just made is not done yet
        let mut old = d.clone();
        old.metadata.generation = Some(4);
        assert!(!action_done(Action::Failover, "west")(Some(&old)));
        let mut going = d.clone();
        going.status.as_mut().unwrap().phase = Some("FailingOver".into());
        assert!(!action_done(Action::Failover, "west")(Some(&going)));
        assert!(!peer_ready(Some(&d)));
    }

    #[test]
    fn the_checkpoint_is_the_last_group_sync() {
        let d = drpc(FAILED_OVER);
        let unix = crate::clock::parse_rfc3339("2026-11-29T05:00:00Z").unwrap();
        assert_eq!(last_group_sync(Some(&d)), Some(Wt::from_unix_secs(unix)));
        assert!(describe(Some(&d)).contains("phase FailedOver"));
        assert_eq!(describe(None), "not found");
        assert_eq!(Action::Relocate.patch("east"), serde_json::json!({"spec": {"action": "Relocate", "preferredCluster": "east"}}));
    }

    #[test]
    fn the_clusters_own_view_and_the_fence() {
        let y = |t: &str| -> serde_json::Value { serde_saphyr::from_str(t).unwrap() };
        let primary = y("spec: {replicationState: primary}\nstatus: {state: Primary, lastGroupSyncTime: '2026-11-29T05:00:00Z', lastGroupSyncDuration: 2s}");
        assert!(vrg_in("Primary")(Some(&primary)));
        assert!(!vrg_in("Primary")(Some(&y("spec: {replicationState: primary}\nstatus: {state: Secondary}"))), "asked, not yet there");
        assert!(!vrg_in("Primary")(None));
        let s = vrg_sync(&primary).unwrap();
        assert_eq!((s.name.as_str(), s.sync_ms), ("lastGroupSyncTime 2026-11-29T05:00:00Z", Some(2000.0)));
        assert!(vrg_sync(&y("status: {state: Secondary}")).is_none());
        let c: DRCluster = serde_saphyr::from_str(
            "apiVersion: ramendr.openshift.io/v1alpha1\nkind: DRCluster\nmetadata: {name: east}\nspec: {clusterFence: Fenced}\nstatus: {phase: Fencing}",
        )
        .unwrap();
        assert!(!fence_state("Fenced")(Some(&c)), "asked, still fencing");
        let mut done = c.clone();
        done.status.as_mut().unwrap().phase = Some("Fenced".into());
        assert!(fence_state("Fenced")(Some(&done)));
        assert!(!fence_state("Unfenced")(Some(&done)));
    }
}
