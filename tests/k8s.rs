//! dr-drill's Kubernetes code against a real kube-apiserver (1.20, built from Debian's source) and etcd:
//! the Ramen DR driver through a DRPlacementControl that a test controller advances the way Ramen does,
//! a stuck DRPC ending in a timeout that names it, and the VolumeReplication flip.

#[path = "support/ramen.rs"]
mod ramen_double;
#[path = "support/storage.rs"]
mod storage;
#[path = "support/apiserver.rs"]
mod support;
#[path = "support/virt_api.rs"]
mod virt_api;

use dr_drill::clock::Wt;
use dr_drill::env::cluster::ramen::RamenDriver;
use dr_drill::error::{Cause, Caused};
use dr_drill::events::Bus;
use dr_drill::k8s::ramen::DRPlacementControl;
use dr_drill::k8s::volrep::{self, Role, VolumeReplication};
use dr_drill::ports::{DrDriver, Marker, Promise};
use dr_drill::timeline::{ActionKind, Segment};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{apply, ApiServer};

fn rfc3339_ago(secs: u64) -> String {
    let out = std::process::Command::new("date").args(["-u", "-d", &format!("{secs} seconds ago"), "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn setup(api: &ApiServer) -> kube::Client {
    let client = api.client().await;
    api.apply_file(&client, Path::new("tests/fixtures/crds/dr.yaml")).await;
    apply(&client, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})).await;
    apply(&client, json!({"apiVersion": "ramendr.openshift.io/v1alpha1", "kind": "DRPolicy", "metadata": {"name": "dr-1m"}, "spec": {"drClusters": ["east", "west"], "schedulingInterval": "1m"}})).await;
    client
}

/// A protected application: its DRPC on the hub, deployed on `east` and PeerReady (as Ramen leaves it).
async fn protected(client: &kube::Client, name: &str) {
    let drpcs: Api<DRPlacementControl> = Api::namespaced(client.clone(), "apps");
    let d: DRPlacementControl = serde_json::from_value(json!({
        "apiVersion": "ramendr.openshift.io/v1alpha1", "kind": "DRPlacementControl",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"placementRef": {"kind": "Placement", "name": format!("{name}-placement")}, "drPolicyRef": {"name": "dr-1m"},
                 "preferredCluster": "east", "pvcSelector": {"matchLabels": {"app": name}}}
    }))
    .unwrap();
    let created = drpcs.create(&PostParams::default(), &d).await.unwrap();
    let g = created.metadata.generation.unwrap();
    let status = json!({"status": {"phase": "Deployed", "preferredDecision": {"clusterName": "east", "clusterNamespace": "east"},
        "conditions": [cond("Available", g), cond("PeerReady", g)], "lastGroupSyncTime": rfc3339_ago(20)}});
    drpcs.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
}

fn cond(t: &str, g: i64) -> serde_json::Value {
    json!({"type": t, "status": "True", "observedGeneration": g, "reason": "Success", "message": "", "lastTransitionTime": rfc3339_ago(0)})
}

/// Advances DRPCs the way Ramen does: on a new action, the progressing phase, then the done phase with
/// Available for the new generation, the placement on the target and a fresh lastGroupSyncTime. DRPCs
/// named `stuck-*` stay in the progressing phase.
fn ramen_controller(client: kube::Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let drpcs: Api<DRPlacementControl> = Api::namespaced(client, "apps");
        loop {
            // the API server gone (the test over): the controller stops
            let Ok(list) = drpcs.list(&Default::default()).await else { return };
            for d in list {
                let name = d.metadata.name.clone().unwrap();
                let g = d.metadata.generation.unwrap();
                let Some(action) = d.spec.action.clone() else { continue };
                let (going, done, target) = match action.as_str() {
                    "Failover" => ("FailingOver", "FailedOver", d.spec.failover_cluster.clone().unwrap()),
                    _ => ("Relocating", "Relocated", d.spec.preferred_cluster.clone().unwrap()),
                };
                let s = d.status.clone().unwrap_or_default();
                let seen = s.conditions.iter().find(|c| c.type_ == "Available").and_then(|c| c.observed_generation).unwrap_or(0);
                let status = if s.phase.as_deref() == Some(done) && seen >= g {
                    continue;
                } else if s.phase.as_deref() != Some(going) || name.starts_with("stuck") {
                    json!({"status": {"phase": going, "progression": "FailingOverToCluster", "conditions": [{"type": "Available", "status": "False", "observedGeneration": g, "reason": "Progressing", "message": "", "lastTransitionTime": rfc3339_ago(0)}]}})
                } else {
                    json!({"status": {"phase": done, "progression": "Completed", "preferredDecision": {"clusterName": target, "clusterNamespace": target},
                        "conditions": [cond("Available", g), cond("PeerReady", g)], "lastGroupSyncTime": rfc3339_ago(7), "lastGroupSyncDuration": "1.5s"}})
                };
                let _ = drpcs.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// A Ramen driver holding the DRPolicy to the environment file's promise (`declared`: interval and sync
/// allowance; None: Metro-DR).
fn driver_declaring(client: &kube::Client, deadline: Duration, declared: Option<(Duration, Duration)>) -> RamenDriver {
    let clusters = BTreeMap::from([("a".to_string(), "east".to_string()), ("b".to_string(), "west".to_string())]);
    RamenDriver::new(client.clone(), "apps", clusters, deadline, declared)
}

/// The environment file declares a 2-minute interval with a 10 s allowance (the test DRPolicy: 1 minute).
fn driver(client: &kube::Client, deadline: Duration) -> RamenDriver {
    driver_declaring(client, deadline, Some((Duration::from_secs(120), Duration::from_secs(10))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramen_failover_and_relocate_through_the_drpc() {
    let api = ApiServer::start();
    let client = setup(&api).await;
    protected(&client, "vm0").await;
    let ctl = ramen_controller(client.clone());
    let mut d = driver(&client, Duration::from_secs(30));
    assert!(d.provision("vm0", "b").await.unwrap_err().to_string().contains("places the application on east"));
    d.provision("vm0", "a").await.unwrap();
    assert_eq!(d.primary("vm0").unwrap(), "a");

    let t0 = Wt::now();
    let mut m = Marker::new(Bus::new(), "vm0", ActionKind::Failover, t0, Segment::Fault);
    let r = d.failover("vm0", "b", t0, true, &mut m).await.unwrap();
    assert_eq!(d.primary("vm0").unwrap(), "b");
    assert!(m.timeline.get(Segment::Promoted).is_some());
    let Promise::Window { interval, allowance, checkpoint, syncs, .. } = r.promise else { panic!("a Regional-DR policy promises a window: {:?}", r.promise) };
    assert_eq!(interval, Duration::from_secs(120), "the bound comes from the environment file, never from the DRPolicy");
    assert_eq!(allowance, Duration::from_secs(10));
    let ck = checkpoint.expect("lastGroupSyncTime is the checkpoint");
    assert!(ck.name.starts_with("lastGroupSyncTime "), "{ck:?}");
    assert_eq!(syncs[0].sync_ms, Some(1500.0));
    assert_eq!(r.details["phase"], "FailedOver");
    let live: Api<DRPlacementControl> = Api::namespaced(client.clone(), "apps");
    let now = live.get("vm0").await.unwrap();
    assert_eq!((now.spec.action.as_deref(), now.spec.failover_cluster.as_deref()), (Some("Failover"), Some("west")));

    let mut m = Marker::new(Bus::new(), "vm0", ActionKind::Relocate, Wt::now(), Segment::Requested);
    let r = d.relocate("vm0", "a", true, &mut m).await.unwrap();
    assert_eq!(r.promise, Promise::NoLoss);
    assert_eq!(r.details["phase"], "Relocated");
    assert_eq!(live.get("vm0").await.unwrap().spec.preferred_cluster.as_deref(), Some("east"));
    // Ramen runs its own final sync: the lab-only negative controls are refused, not faked
    let mut m = Marker::new(Bus::new(), "vm0", ActionKind::Relocate, Wt::now(), Segment::Requested);
    assert!(d.relocate("vm0", "b", false, &mut m).await.is_err());
    // the proof step checks the site it names: the primary itself proves nothing
    assert!(d.replicated("vm0", "a", Wt::now()).await.unwrap_err().to_string().contains("site a is the VM's primary"));
    ctl.abort();
    // a DRPolicy that schedules less often than the file declares cannot keep the promise: refused
    // before anything runs, as the system's failure (exit 1), never a wider bound
    let mut strict = driver_declaring(&client, Duration::from_secs(30), Some((Duration::from_secs(30), Duration::from_secs(10))));
    let e = strict.provision("vm0", "a").await.unwrap_err();
    assert_eq!(dr_drill::error::Caused::cause(&e), dr_drill::error::Cause::System);
    assert!(e.to_string().contains("DRPolicy dr-1m schedules replication every 1m, above the interval the environment file declares (30s)"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_drpc_times_out_naming_it_and_what_it_showed() {
    let api = ApiServer::start();
    let client = setup(&api).await;
    protected(&client, "stuck-vm1").await;
    let ctl = ramen_controller(client.clone());
    let mut d = driver(&client, Duration::from_secs(3));
    d.provision("stuck-vm1", "a").await.unwrap();
    let mut m = Marker::new(Bus::new(), "stuck-vm1", ActionKind::Failover, Wt::now(), Segment::Fault);
    let e = d.failover("stuck-vm1", "b", Wt::now(), true, &mut m).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("DRPlacementControl apps/stuck-vm1") && msg.contains("report FailedOver to west"), "{msg}");
    assert!(msg.contains("phase FailingOver"), "the last state seen is named: {msg}");
    assert_eq!(e.cause(), Cause::System, "the DR orchestration not converging is the system's failure");
    assert_eq!(d.primary("stuck-vm1").unwrap(), "a");
    ctl.abort();
}

/// Follows VolumeReplications the way the csi-addons operator does (state for the new generation,
/// Completed True); `stuck-*` ones never follow.
fn volrep_controller(client: kube::Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let vrs: Api<VolumeReplication> = Api::namespaced(client, "apps");
        loop {
            for v in vrs.list(&Default::default()).await.unwrap() {
                let name = v.metadata.name.clone().unwrap();
                let g = v.metadata.generation.unwrap();
                if name.starts_with("stuck") || v.status.as_ref().is_some_and(|s| s.observed_generation >= g) {
                    continue;
                }
                let state = if v.spec.replication_state == "primary" { "Primary" } else { "Secondary" };
                let status = json!({"status": {"state": state, "observedGeneration": g, "lastSyncTime": rfc3339_ago(3),
                    "conditions": [{"type": "Completed", "status": "True", "observedGeneration": g, "reason": "Promoted", "message": "", "lastTransitionTime": rfc3339_ago(0)}]}});
                vrs.patch_status(&name, &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_replication_flips_and_a_stuck_one_times_out() {
    let api = ApiServer::start();
    let client = setup(&api).await;
    for name in ["vm0-disk", "stuck-disk"] {
        apply(&client, json!({"apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplication", "metadata": {"name": name, "namespace": "apps"},
            "spec": {"volumeReplicationClass": "rbd-1m", "replicationState": "secondary", "dataSource": {"kind": "PersistentVolumeClaim", "name": name}, "autoResync": false}})).await;
    }
    let ctl = volrep_controller(client.clone());
    let vrs: Api<VolumeReplication> = Api::namespaced(client.clone(), "apps");
    let v = volrep::flip(&vrs, "apps", "vm0-disk", Role::Primary, Duration::from_secs(20)).await.unwrap();
    assert_eq!(v.status.as_ref().unwrap().state.as_deref(), Some("Primary"));
    assert!(volrep::last_sync(Some(&v)).is_some());
    let v = volrep::flip(&vrs, "apps", "vm0-disk", Role::Secondary, Duration::from_secs(20)).await.unwrap();
    assert_eq!(v.spec.replication_state, "secondary");
    let e = volrep::flip(&vrs, "apps", "stuck-disk", Role::Primary, Duration::from_secs(2)).await.unwrap_err();
    assert!(e.to_string().contains("VolumeReplication apps/stuck-disk") && e.to_string().contains("asked primary"), "{e}");
    ctl.abort();
}

/// The object and rule of each finding, from `dr-drill lint --format json`.
fn findings(out: &std::process::Output) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let mut f: Vec<(String, String)> =
        v["findings"].as_array().unwrap().iter().map(|x| (x["rule"].as_str().unwrap().to_string(), x["object"].as_str().unwrap().to_string())).collect();
    f.sort();
    f
}

async fn apply_manifests(client: &kube::Client, path: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    for doc in text.split("\n---").filter(|d| d.contains("kind:")) {
        apply(client, serde_saphyr::from_str(doc).unwrap()).await;
    }
}

/// `dr-drill lint --context` on a namespace of a real API server finds what the same manifests as files
/// give, and a namespace fixed with the good manifests is clean; a wrong context is an input error (2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_a_live_namespace_like_its_manifests() {
    let api = ApiServer::start();
    let client = setup(&api).await;
    apply(&client, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})).await;
    apply_manifests(&client, "tests/fixtures/lint/dr001-bad.yaml").await;
    let lint = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("dr-drill")
            .unwrap()
            .arg("lint")
            .args(["--format", "json", "--kubeconfig"])
            .arg(&api.kubeconfig)
            .args(args)
            .output()
            .unwrap()
    };
    let live = lint(&["--context", "test", "--namespace", "shop"]);
    let files = assert_cmd::Command::cargo_bin("dr-drill").unwrap().args(["lint", "--format", "json", "tests/fixtures/lint/dr001-bad.yaml"]).output().unwrap();
    assert_eq!(live.status.code(), Some(1), "{}", String::from_utf8_lossy(&live.stderr));
    assert!(!findings(&live).is_empty());
    assert_eq!(findings(&live), findings(&files), "live and file lint disagree");

    apply_manifests(&client, "tests/fixtures/lint/dr001-good.yaml").await;
    let fixed = lint(&["--context", "test", "--namespace", "shop"]);
    assert_eq!(fixed.status.code(), Some(0), "{}", String::from_utf8_lossy(&fixed.stdout));

    let wrong = lint(&["--context", "nope", "--namespace", "shop"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("nope"), "{}", String::from_utf8_lossy(&wrong.stderr));
}

/// The kind environment's plan: every manifest the harness generates (KubeVirt and CDI settings, Rook's
/// operator settings, the CephCluster on the named loop device, the mirrored pool, the rbd-mirror daemon,
/// the storage class, the VolumeReplicationClass) is admitted by a real API server as a server-side dry
/// run, and nothing is stored; an invalid object is refused the same way, so the dry run checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_plan_manifests_pass_a_server_side_dry_run() {
    use dr_drill::env::cluster::kind;
    use dr_drill::k8s::apply::{self, Obj};
    let api = ApiServer::start();
    let client = setup(&api).await;
    api.apply_file(&client, Path::new("tests/fixtures/crds/platform.yaml")).await;
    // the namespaces the upstream operator manifests create
    for ns in ["kubevirt", "rook-ceph"] {
        apply(&client, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})).await;
    }
    let cfg = dr_drill::config::load(Path::new("environments/kind-regional.yaml")).unwrap();
    let dr_drill::config::Backend::Kind(spec) = &cfg.spec.backend else { panic!("kind") };
    let plan = kind::plan(&cfg, spec, &kind::HostFacts { kvm: false });
    let objs: Vec<serde_json::Value> = kind::generated(&plan).into_iter().filter(|(c, _)| c == "kind-regional-a").map(|(_, o)| o).collect();
    assert_eq!(objs.len(), 8, "{objs:?}");
    let lines = apply::apply_all(&client, &objs, true, Duration::from_secs(10)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lines.len(), 8);
    assert!(lines.iter().all(|l| l.ends_with("(server dry run)")), "{lines:?}");
    for o in &objs {
        let got = apply::get(&client, &Obj::of(o).unwrap()).await.unwrap();
        assert!(got.is_none(), "dry run stored {}", o["kind"]);
    }
    // the API server does check: a StorageClass without a provisioner is refused, dry run or not
    let mut bad = objs.iter().find(|o| o["kind"] == "StorageClass").unwrap().clone();
    bad.as_object_mut().unwrap().remove("provisioner");
    let e = apply::apply_all(&client, &[bad], true, Duration::from_secs(10)).await.unwrap_err().to_string();
    assert!(e.contains("StorageClass") && e.contains("provisioner"), "{e}");
    // the peer exchange's input: the readiness predicates read what Rook writes
    let pool = Obj { api_version: "ceph.rook.io/v1".into(), kind: "CephBlockPool".into(), namespace: Some("rook-ceph".into()), name: kind::POOL.into() };
    apply::apply_all(&client, &[objs.iter().find(|o| o["kind"] == "CephBlockPool").unwrap().clone()], false, Duration::from_secs(10)).await.unwrap();
    let ready = kind::Ready::Set("/status/info/rbdMirrorBootstrapPeerSecretName");
    let e = apply::wait_ready(&client, &pool, &ready.describe(), Duration::from_secs(3), |o| ready.holds(o)).await.unwrap_err().to_string();
    assert!(e.contains("CephBlockPool rook-ceph/replicapool") && e.contains("status.info.rbdMirrorBootstrapPeerSecretName set"), "{e}");
    let pools: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "rook-ceph",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("ceph.rook.io", "v1", "CephBlockPool")),
    );
    pools
        .patch_status(
            kind::POOL,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready", "info": {"rbdMirrorBootstrapPeerSecretName": "pool-peer-token-replicapool"}}})),
        )
        .await
        .unwrap();
    apply::wait_ready(&client, &pool, &ready.describe(), Duration::from_secs(10), |o| ready.holds(o)).await.unwrap();
}

/// The drill's VM on a real API server: its resources (ConfigMap, PVC, VirtualMachine) carry the
/// application's label; the VMI (made from the VM's template, as KubeVirt does) does not. `dr-drill lint
/// --context` finds the namespace clean, and finds the PVC once its label is taken away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vm_is_labelled_as_a_discovered_application() {
    use dr_drill::env::probe::{Launch, Mode};
    use dr_drill::k8s::apply;
    let api = ApiServer::start();
    let client = setup(&api).await;
    apply(&client, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dr-drill"}})).await;
    // the VM exactly as the KubeVirt launcher makes it for a first boot
    let launcher = dr_drill::env::cluster::kubevirt::KubeVirtLauncher::new(
        BTreeMap::new(),
        dr_drill::config::Guest::default(),
        "localhost/dr-drill/probe-kernel:v1",
        "rbd-mirrored",
        Duration::from_secs(30),
    );
    let volume = dr_drill::ports::Volume { name: "vm0-disk".into() };
    let vm = launcher.manifest(&Launch { vm: "vm0", site: "a", volume: &volume, mode: Mode::Write, rate: 50, scan_limit: 16383 });
    apply::apply_all(&client, &vm.resources(), false, Duration::from_secs(10)).await.unwrap();
    // what KubeVirt would make: the VMI from the VM's template
    let tmpl = &vm.virtual_machine()["spec"]["template"];
    apply(&client, json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance", "metadata": {"name": "vm0", "namespace": "dr-drill", "labels": tmpl["metadata"]["labels"]}, "spec": tmpl["spec"]})).await;
    let lint = || {
        assert_cmd::Command::cargo_bin("dr-drill")
            .unwrap()
            .args(["lint", "--format", "json", "--mode", "discovered", "--kubeconfig"])
            .arg(&api.kubeconfig)
            .args(["--context", "test", "-n", "dr-drill"])
            .output()
            .unwrap()
    };
    let clean = lint();
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stdout));
    let vmis: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "dr-drill",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachineInstance")),
    );
    let vmi = vmis.get("vm0").await.unwrap();
    assert!(!vmi.metadata.labels.unwrap_or_default().contains_key("app.kubernetes.io/part-of"));
    let vms: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "dr-drill",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine")),
    );
    assert_eq!(vms.get("vm0").await.unwrap().metadata.labels.unwrap()["app.kubernetes.io/part-of"], "dr-drill-vm0");
    // the negative: a PVC without the label is what lint reports
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = Api::namespaced(client.clone(), "dr-drill");
    pvcs.patch("vm0-disk", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"app.kubernetes.io/part-of": null}}}))).await.unwrap();
    let bad = lint();
    assert_eq!(bad.status.code(), Some(1), "{}", String::from_utf8_lossy(&bad.stdout));
    assert!(findings(&bad).iter().any(|(r, o)| r == "DR001" && o.contains("vm0-disk")), "{:?}", findings(&bad));
}

/// The probe's workload on KubeVirt, end to end through a real API server: the VM applied with the probe's
/// mode in its kernel arguments, started through the `start` subresource, its serial console attached
/// through the aggregator as a `plain.kubevirt.io` websocket (a virt-api double runs the real probe on a
/// file standing for the PVC, and splits its output across frames). Write, graceful stop (STOP record),
/// crash recovery on resume, and a verify scan that finds every acknowledged record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubevirt_workload_runs_the_probe_over_the_console() {
    use dr_drill::config::{Budgets, Guest};
    use dr_drill::env::cluster::kubevirt::KubeVirtLauncher;
    use dr_drill::env::probe::ProbeWorkload;
    use dr_drill::ports::{Volume, Workload};
    let api = ApiServer::start();
    let client = setup(&api).await;
    apply(&client, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dr-drill"}})).await;
    let probe = PathBuf::from(std::env::var("DR_DRILL_ASSETS").unwrap_or_else(|_| "/opt/dr-drill".into())).join("bin/dr-probe");
    let double = virt_api::VirtApi::start(client.clone(), probe).await;
    let guest = Guest::default();
    double.disk("vm0-disk", guest.disk_size.0);
    let launcher = KubeVirtLauncher::new(
        BTreeMap::from([("a".to_string(), client.clone())]),
        guest,
        "localhost/dr-drill/probe-kernel:v1",
        "rbd-mirrored",
        Duration::from_secs(30),
    );
    let mut w = ProbeWorkload::new(Box::new(launcher), Budgets::default(), Bus::new());
    let volume = Volume { name: "vm0-disk".into() };
    w.start("vm0", "a", &volume, 100).await.unwrap_or_else(|e| panic!("{e}"));
    w.wait_acks("vm0", 150, Duration::from_secs(30)).await.unwrap();
    let stopped = w.graceful_stop("vm0").await.unwrap_or_else(|e| panic!("{e}"));
    let served = w.resume("vm0", "a", &volume).await.unwrap_or_else(|e| panic!("{e}"));
    // crash recovery found every record and the STOP record of the first boot
    assert_eq!(served.scan.stop, Some(stopped.seq), "{:?}", served.scan);
    assert!(served.scan.highest_contiguous >= stopped.seq);
    w.wait_acks("vm0", 100, Duration::from_secs(30)).await.unwrap();
    let scan = w.verify("vm0", "a", &volume).await.unwrap_or_else(|e| panic!("{e}"));
    let h = w.history("vm0", None).unwrap();
    let max_acked = h.acks.iter().map(|a| a.seq).max().unwrap();
    assert!(h.acks.len() >= 250, "{} acks", h.acks.len());
    assert_eq!(h.garbled, 0, "lines split across frames must still be whole lines");
    assert!(scan.highest_contiguous >= max_acked, "acked {max_acked}, disk holds 1..={}", scan.highest_contiguous);
    assert!(scan.corrupt.is_empty() && scan.chain_breaks.is_empty(), "{scan:?}");
    assert_eq!(*double.starts.lock().unwrap(), ["vm0", "vm0", "vm0"], "write, resume, verify: one start each");
    // the VMI (from the template) carries no application label; the VM does
    let vmis: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "dr-drill",
        &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachineInstance")),
    );
    let vmi = vmis.get("vm0").await.unwrap();
    assert_eq!(vmi.data["status"]["phase"], "Succeeded");
    assert!(!vmi.metadata.labels.unwrap_or_default().contains_key("app.kubernetes.io/part-of"));
    println!("kubevirt workload: {} acks over the console in 2 writer boots, disk holds 1..={}", h.acks.len(), scan.highest_contiguous);
    w.shutdown().await;
}

/// Two test clusters for a drill: real API servers, a virt-api double each (the real probe), the storage
/// double replicating every `interval`, and an `existing` environment file naming them.
struct Pair {
    _a: ApiServer,
    _b: ApiServer,
    _hub: Option<(ApiServer, tokio::task::JoinHandle<()>)>,
    _va: virt_api::VirtApi,
    _vb: virt_api::VirtApi,
    storage: storage::Storage,
    dir: tempfile::TempDir,
    env: PathBuf,
}

async fn pair(interval: Duration) -> Pair {
    pair_with(interval, false).await
}

/// With `hub`, a third API server is the RHACM hub: the DRPC `vm0` protects the VM's application (its
/// PVC selected by the application's label) and a Ramen double acts on it.
async fn pair_with(interval: Duration, hub: bool) -> Pair {
    // one after the other: the servers' parent-death signal belongs to the thread that started them
    let (a, b) = (ApiServer::start(), ApiServer::start());
    let (ca, cb) = (setup(&a).await, setup(&b).await);
    let probe = PathBuf::from(std::env::var("DR_DRILL_ASSETS").unwrap_or_else(|_| "/opt/dr-drill".into())).join("bin/dr-probe");
    let va = virt_api::VirtApi::start(ca.clone(), probe.clone()).await;
    let vb = virt_api::VirtApi::start(cb.clone(), probe).await;
    let site = |c: &kube::Client, v: &virt_api::VirtApi| storage::Site { client: c.clone(), disks: v.disks.clone(), probe: v.pid_lookup() };
    let st = storage::Storage::start(vec![site(&ca, &va), site(&cb, &vb)], interval);
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let hub = if hub {
        let h = ApiServer::start();
        let hc = setup(&h).await;
        apply(&hc, json!({"apiVersion": "ramendr.openshift.io/v1alpha1", "kind": "DRPolicy", "metadata": {"name": "dr-5s"}, "spec": {"drClusters": ["ctx-a", "ctx-b"], "schedulingInterval": "5s"}})).await;
        apply(
            &hc,
            json!({"apiVersion": "ramendr.openshift.io/v1alpha1", "kind": "DRPlacementControl", "metadata": {"name": "vm0", "namespace": "apps"},
            "spec": {"placementRef": {"kind": "Placement", "name": "vm0-placement"}, "drPolicyRef": {"name": "dr-5s"}, "preferredCluster": "ctx-a",
                     "pvcSelector": {"matchLabels": {"app.kubernetes.io/part-of": "dr-drill-vm0"}}, "protectedNamespaces": ["dr-drill"]}}),
        )
        .await;
        let ctl = ramen_double::start(hc, "apps", BTreeMap::from([("ctx-a".to_string(), ca.clone()), ("ctx-b".to_string(), cb.clone())]));
        support::kubeconfig_of(&kc, &[("ctx-a", &a), ("ctx-b", &b), ("ctx-hub", &h)]);
        Some((h, ctl))
    } else {
        support::kubeconfig_of(&kc, &[("ctx-a", &a), ("ctx-b", &b)]);
        None
    };
    let protection = if hub.is_some() { "    hub: {context: ctx-hub, namespace: apps, drPolicy: dr-5s}\n" } else { "    volumeReplicationClass: vrc\n" };
    let pids = |api: &ApiServer| api.pids().iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ");
    // power loss of a site: its probes killed outright and its API server (with its etcd) stopped where it
    // stands (SIGSTOP: nothing of the cluster answers, its storage does nothing); its isolation (the fence
    // of a failover) makes sure nothing of it runs. Restored (and reconnected): the cluster continues with
    // its state as it was, its storage with it.
    let power = format!(
        "case $DR_DRILL_SITE in a) kill -9 $(cat {}); kill -STOP {} ;; b) kill -9 $(cat {}); kill -STOP {} ;; esac",
        va.pids.display(),
        pids(&a),
        vb.pids.display(),
        pids(&b)
    );
    let restore = format!("case $DR_DRILL_SITE in a) kill -CONT {} ;; b) kill -CONT {} ;; esac", pids(&a), pids(&b));
    let env = dir.path().join("doubles.yaml");
    std::fs::write(
        &env,
        format!(
            "name: doubles\ndisposable: true\nsites:\n  - name: a\n  - name: b\nbackend:\n  existing:\n    kubeconfig: {}\n    contexts: {{a: ctx-a, b: ctx-b}}\n    storageClass: rbd-mirrored\n{protection}    probeImage: localhost/dr-drill/probe-kernel:v1\n    commands:\n      powerLoss: \"{power}\"\n      restore: \"{restore}\"\n      isolate: \"{power} 2>/dev/null; true\"\n      reconnect: \"{restore}\"\nreplication:\n  regional:\n    interval: 5s\n    scheduler: storage\n    syncAllowance: 3s\nvm:\n  writeRate: 50\nbudgets:\n  boot: 60s\n  promote: 60s\n  syncBarrier: 60s\n  gracefulStop: 30s\n  command: 30s\n",
            kc.display()
        ),
    )
    .unwrap();
    Pair { _a: a, _b: b, _hub: hub, _va: va, _vb: vb, storage: st, dir, env }
}

async fn drill(p: &Pair, feature: &str) -> dr_drill::report::RunResult {
    let cfg = dr_drill::config::load(&p.env).unwrap_or_else(|e| panic!("{e}"));
    let opts = dr_drill::runner::RunOptions {
        cfg,
        paths: vec![feature.into()],
        tags: None,
        report_dir: p.dir.path().join("reports"),
        keep: false,
        confirmed: true,
        allow_skipped: false,
        quiet: false,
    };
    dr_drill::runner::run(opts).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The bundled failover feature, unchanged, on two clusters reached only through their API servers: the
/// VM is a KubeVirt VM (the real probe behind a virt-api double), the faults are the operator's commands
/// (site a's API server, etcd and probe killed outright), the DR driver flips VolumeReplication, and the
/// oracle judges the loss window against the declared bound (5 s + 3 s + one write period).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_drill_on_two_clusters_passes_within_the_bound() {
    let p = pair(Duration::from_secs(5)).await;
    let r = drill(&p, "features/failover.feature").await;
    let s = &r.scenarios[0];
    println!(
        "failover on clusters: {} acked, {} lost, loss window {:?} ms (bound {:?} ms), {} replication rounds",
        s.records_acked.unwrap_or(0),
        s.records_lost.unwrap_or(0),
        s.loss_window_ms,
        s.loss_bound_ms,
        p.storage.syncs.lock().unwrap().len()
    );
    assert_eq!((r.passed, r.failed, r.skipped), (1, 0, 0), "{:?}", r.scenarios.iter().map(|s| (&s.status, &s.reason)).collect::<Vec<_>>());
    assert_eq!(r.exit_code(), 0);
    assert!(s.records_acked.unwrap() > 300, "{:?}", s.records_acked);
    assert!(s.loss_window_ms.unwrap() <= s.loss_bound_ms.unwrap());
}

/// The bundled relocate feature, unchanged, on the two clusters: graceful stop, demotion (the final
/// copy), promotion, resume on b: nothing lost, the STOP record survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relocate_drill_on_two_clusters_loses_nothing() {
    let p = pair(Duration::from_secs(5)).await;
    let r = drill(&p, "features/relocate.feature").await;
    let s = &r.scenarios[0];
    println!("relocate on clusters: {} acked, {} lost", s.records_acked.unwrap_or(0), s.records_lost.unwrap_or(0));
    assert_eq!((r.passed, r.failed, r.skipped), (1, 0, 0), "{:?}", r.scenarios.iter().map(|s| (&s.status, &s.reason)).collect::<Vec<_>>());
    assert_eq!(s.records_lost, Some(0));
}

/// Negative control: storage that never replicates within the run. The same failover must fail (exit 1,
/// the system under test), with the lost records counted: the oracle does not take the driver's word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_without_replication_fails() {
    let p = pair(Duration::from_secs(3600)).await;
    // the power lost with no round awaited first: the bundled failover would stop at that wait
    let r = drill(&p, "tests/fixtures/features/failover-at-any-moment.feature").await;
    let s = &r.scenarios[0];
    println!(
        "failover without replication: {} acked, {} lost, status {} ({:?})",
        s.records_acked.unwrap_or(0),
        s.records_lost.unwrap_or(0),
        s.status,
        s.reason
    );
    assert_eq!(r.failed, 1, "{:?}", r.scenarios.iter().map(|s| (&s.status, &s.reason)).collect::<Vec<_>>());
    assert_eq!(r.exit_code(), 1, "{:?}", s.reason);
    assert!(s.records_lost.unwrap_or(0) > 300, "{:?}", s.records_lost);
    // the failed scenario explains itself: the environment file and the surviving cluster's DR objects
    let g = s.gather.as_ref().expect("a failed scenario has a gather");
    let index = std::fs::read_to_string(g.join("gather.txt")).unwrap();
    println!("{index}");
    assert!(g.join("environment.yaml").is_file(), "{index}");
    assert!(g.join("cluster-site-b/VolumeReplication.json").is_file() && g.join("cluster-site-b/Event.json").is_file(), "{index}");
    assert!(index.contains("cluster site-a"), "the lost site is said, not skipped: {index}");
}

/// The bundled failover feature through Ramen: the harness makes the VM's PVC and VM, the DRPC on the hub
/// protects them (a Ramen double over real API servers), the failover is Ramen's (`action: Failover`), the
/// bound comes from the DRPolicy's schedulingInterval and the checkpoint from lastGroupSyncTime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_drill_through_ramen_passes_within_the_bound() {
    let p = pair_with(Duration::from_secs(5), true).await;
    let r = drill(&p, "features/failover.feature").await;
    let s = &r.scenarios[0];
    println!(
        "failover through Ramen: {} acked, {} lost, loss window {:?} ms (bound {:?} ms)",
        s.records_acked.unwrap_or(0),
        s.records_lost.unwrap_or(0),
        s.loss_window_ms,
        s.loss_bound_ms
    );
    assert_eq!((r.passed, r.failed, r.skipped), (1, 0, 0), "{:?}", r.scenarios.iter().map(|s| (&s.status, &s.reason)).collect::<Vec<_>>());
    assert!(s.loss_window_ms.unwrap() <= s.loss_bound_ms.unwrap());
    assert_eq!(s.action.as_ref().unwrap()["driver"]["phase"], "FailedOver", "{:?}", s.action);
    // the checkpoint is the later of the two views: the lost primary's own VRG (usually fresher) or the
    // hub's copy (when the cluster stopped answering between the hub's read and the watcher's); which one
    // wins on what is `ramen::merge_views`'s unit test
    let ck = s.action.as_ref().unwrap()["checkpoint"]["name"].as_str().unwrap_or("").to_string();
    assert!(ck.starts_with("lastGroupSyncTime "), "{ck}");
}

/// The whole cycle on two clusters through VolumeReplication: the bundled failback feature (its Regional-DR
/// scenario; the Metro-DR one is skipped with the reason). Site a's cluster stops answering (power loss),
/// the VM fails over to b, a comes back still primary: its VolumeReplication is set secondary with
/// `autoResync`, the storage double resyncs it from b (a copy back) and a round of b's after it is awaited;
/// the VM writes on b, then relocates back to a: nothing lost, a the only primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failback_cycle_on_two_clusters_loses_nothing() {
    let p = pair(Duration::from_secs(5)).await;
    failback_cycle_passes(&drill(&p, "features/failback.feature").await);
}

/// The bundled failback feature's Regional-DR scenario passed (the Metro-DR one skipped): failover to b with
/// b the only primary, site a back, demoted and resynced, relocate back with a the only primary, nothing lost.
fn failback_cycle_passes(r: &dr_drill::report::RunResult) -> &dr_drill::report::ScenarioSummary {
    assert_eq!((r.passed, r.failed, r.skipped), (1, 0, 1), "{:?}", r.scenarios.iter().map(|s| (&s.status, &s.reason)).collect::<Vec<_>>());
    let s = r.scenarios.iter().find(|s| s.status == "passed").unwrap();
    assert_eq!(s.actions.len(), 2);
    let steps: Vec<&str> = s.repairs[0]["steps"].as_array().unwrap().iter().map(|x| x["segment"].as_str().unwrap()).collect();
    assert!(["site back", "demoted", "resynced"].iter().all(|x| steps.contains(x)), "{steps:?}");
    let primaries = |a: &serde_json::Value| {
        a["roles"].as_array().unwrap().iter().filter(|r| r["role"] == "primary").map(|r| r["site"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!((primaries(&s.actions[0]), primaries(&s.actions[1])), (vec!["b".to_string()], vec!["a".to_string()]));
    assert_eq!(s.records_lost, Some(0));
    s
}

/// The whole cycle through Ramen: the failover is Ramen's; when site a's cluster answers again the Ramen
/// double makes its VolumeReplication secondary with a resync (its VRG follows), the storage double copies
/// b back over a's diverged copy, and the DRPC turns PeerReady; the relocate back is Ramen's too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failback_cycle_through_ramen_loses_nothing() {
    let p = pair_with(Duration::from_secs(5), true).await;
    let r = drill(&p, "features/failback.feature").await;
    let s = failback_cycle_passes(&r);
    assert_eq!(s.actions[1]["driver"]["phase"], "Relocated", "{:?}", s.actions[1]);
}

/// The bundled relocate feature through Ramen: nothing lost, the STOP record survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relocate_drill_through_ramen_loses_nothing() {
    let p = pair_with(Duration::from_secs(5), true).await;
    let r = drill(&p, "features/relocate.feature").await;
    let s = &r.scenarios[0];
    assert_eq!((r.passed, r.failed, r.skipped), (1, 0, 0), "{:?}", r.scenarios.iter().map(|s| (&s.status, &s.reason)).collect::<Vec<_>>());
    assert_eq!(s.records_lost, Some(0));
    assert_eq!(s.action.as_ref().unwrap()["driver"]["phase"], "Relocated", "{:?}", s.action);
}

/// Metro-DR through Ramen: the lost cluster is fenced through its DRCluster (`clusterFence: Fenced`, phase
/// Fenced) before the failover is requested (the Ramen double, like Ramen, fails a Metro DRPC over only
/// from a fenced cluster), the promise is no loss, and the fence is lifted when the scenario ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metro_failover_through_ramen_fences_the_lost_cluster_first() {
    let api = ApiServer::start();
    let client = setup(&api).await;
    apply(&client, json!({"apiVersion": "ramendr.openshift.io/v1alpha1", "kind": "DRPolicy", "metadata": {"name": "metro"}, "spec": {"drClusters": ["east", "west"], "schedulingInterval": ""}})).await;
    for c in ["east", "west"] {
        apply(&client, json!({"apiVersion": "ramendr.openshift.io/v1alpha1", "kind": "DRCluster", "metadata": {"name": c}, "spec": {"region": c, "s3ProfileName": format!("s3-{c}")}})).await;
    }
    protected(&client, "vm0").await;
    let drpcs: Api<DRPlacementControl> = Api::namespaced(client.clone(), "apps");
    drpcs.patch("vm0", &PatchParams::default(), &Patch::Merge(json!({"spec": {"drPolicyRef": {"name": "metro"}}}))).await.unwrap();
    protected_again(&client, "vm0").await;
    // DRClusters: the phase follows clusterFence after a moment, as Ramen's NetworkFence does
    let dc = client.clone();
    let fencer = tokio::spawn(async move {
        let api: Api<dr_drill::k8s::ramen::DRCluster> = Api::all(dc);
        loop {
            let Ok(list) = api.list(&Default::default()).await else { return };
            for c in list {
                let want = c.spec.cluster_fence.clone().unwrap_or_else(|| "Unfenced".into());
                if c.status.as_ref().and_then(|s| s.phase.clone()) != Some(want.clone()) {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    api.patch_status(c.metadata.name.as_deref().unwrap(), &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": want}})))
                        .await
                        .unwrap();
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    // the Ramen double fails a Metro DRPC over only once east is fenced
    let gate = client.clone();
    let ctl = tokio::spawn(async move {
        let api: Api<dr_drill::k8s::ramen::DRCluster> = Api::all(gate.clone());
        loop {
            let fenced = api.get("east").await.ok().and_then(|c| c.status).and_then(|s| s.phase).as_deref() == Some("Fenced");
            if fenced {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ramen_controller(gate).await.ok();
    });
    let mut d = driver_declaring(&client, Duration::from_secs(30), None);
    d.provision("vm0", "a").await.unwrap();
    // Metro-DR: the proof step waits for the hub to report the named peer ready
    assert!(d.replicated("vm0", "b", Wt::now()).await.unwrap().contains("PeerReady, west in its DRPolicy"));
    let t0 = Wt::now();
    let mut m = Marker::new(Bus::new(), "vm0", ActionKind::Failover, t0, Segment::Fault);
    let r = d.failover("vm0", "b", t0, true, &mut m).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.promise, Promise::NoLoss, "a Metro-DR policy promises no loss");
    let (fenced, promoted) = (m.timeline.at(Segment::StorageFenced).unwrap(), m.timeline.at(Segment::Promoted).unwrap());
    assert!(fenced <= promoted);
    let clusters: Api<dr_drill::k8s::ramen::DRCluster> = Api::all(client.clone());
    assert_eq!(clusters.get("east").await.unwrap().spec.cluster_fence.as_deref(), Some("Fenced"));
    assert_ne!(clusters.get("west").await.unwrap().spec.cluster_fence.as_deref(), Some("Fenced"), "only the lost cluster");
    d.release("vm0").await;
    let east = clusters.get("east").await.unwrap();
    assert_eq!((east.spec.cluster_fence.as_deref(), east.status.and_then(|s| s.phase).as_deref()), (Some("Unfenced"), Some("Unfenced")));
    ctl.abort();
    fencer.abort();
}

/// The DRPC's status again after a spec change (a new generation): Deployed and PeerReady for it.
async fn protected_again(client: &kube::Client, name: &str) {
    let drpcs: Api<DRPlacementControl> = Api::namespaced(client.clone(), "apps");
    let g = drpcs.get(name).await.unwrap().metadata.generation.unwrap();
    let status = json!({"status": {"phase": "Deployed", "preferredDecision": {"clusterName": "east", "clusterNamespace": "east"}, "conditions": [cond("Available", g), cond("PeerReady", g)], "lastGroupSyncTime": rfc3339_ago(20)}});
    drpcs.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await.unwrap();
}
