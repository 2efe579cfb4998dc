//! The kind environment: two kind clusters, each with KubeVirt, CDI, Rook-Ceph (one OSD on an explicitly
//! named loop device), csi-addons and a mirrored pool; RBD snapshot mirroring between them with bootstrap
//! peer tokens exchanged across the clusters. `plan` is pure: the complete ordered list of what `env up`
//! does (commands, manifests, pinned versions and digests), printed by `env up --dry-run`; `up` carries it
//! out step by step and records what it made, so that `down` removes exactly that.

use crate::config::{EnvConfig, KindSpec, Regional};
use crate::k8s::apply::Obj;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// One pinned component: its version, the artifact fetched, the digest that artifact must have (where it
/// is known), and where the pin was taken from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Pin {
    pub component: &'static str,
    pub version: &'static str,
    pub artifact: &'static str,
    /// sha256 of the image manifest (images) or of the file (manifests). `None`: not known here (no access
    /// to the registry or release page from this machine); for manifests `env up` fetches, it records the
    /// digest it fetched (`pinned.lock`) and refuses a different one on the next `env up`; images and the kind
    /// binary are then pinned by version only.
    pub digest: Option<&'static str>,
    pub source: &'static str,
}

pub const KIND_VERSION: &str = "v0.24.0";
pub const NODE_IMAGE: &str = "kindest/node:v1.31.0@sha256:53df588e04085fd41ae12de0c3fe4c72f7013bba32a20e7325357a1ac94ba865";
pub const KUBEVIRT: &str = "v1.3.1";
pub const CDI: &str = "v1.60.3";
pub const ROOK: &str = "v1.15.5";
pub const CEPH_IMAGE: &str = "quay.io/ceph/ceph:v18.2.4";
pub const CSI_ADDONS: &str = "v0.9.1";

/// Every pinned version, in install order.
pub fn pins() -> Vec<Pin> {
    vec![
        Pin {
            component: "kind",
            version: KIND_VERSION,
            artifact: "kind (binary on PATH; `kind version` checked)",
            digest: None,
            source: "https://github.com/kubernetes-sigs/kind/releases/tag/v0.24.0",
        },
        Pin {
            component: "kind node image",
            version: "v1.31.0",
            artifact: "kindest/node:v1.31.0",
            digest: Some("sha256:53df588e04085fd41ae12de0c3fe4c72f7013bba32a20e7325357a1ac94ba865"),
            source: "kind v0.24.0 release notes (images built for this release)",
        },
        Pin {
            component: "KubeVirt operator",
            version: KUBEVIRT,
            artifact: "https://github.com/kubevirt/kubevirt/releases/download/v1.3.1/kubevirt-operator.yaml",
            digest: None,
            source: "https://github.com/kubevirt/kubevirt/releases/tag/v1.3.1",
        },
        Pin {
            component: "CDI operator",
            version: CDI,
            artifact: "https://github.com/kubevirt/containerized-data-importer/releases/download/v1.60.3/cdi-operator.yaml",
            digest: None,
            source: "https://github.com/kubevirt/containerized-data-importer/releases/tag/v1.60.3",
        },
        Pin {
            component: "Rook CRDs",
            version: ROOK,
            artifact: "https://raw.githubusercontent.com/rook/rook/v1.15.5/deploy/examples/crds.yaml",
            digest: None,
            source: "https://github.com/rook/rook/tree/v1.15.5/deploy/examples",
        },
        Pin {
            component: "Rook common",
            version: ROOK,
            artifact: "https://raw.githubusercontent.com/rook/rook/v1.15.5/deploy/examples/common.yaml",
            digest: None,
            source: "https://github.com/rook/rook/tree/v1.15.5/deploy/examples",
        },
        Pin {
            component: "Rook operator",
            version: ROOK,
            artifact: "https://raw.githubusercontent.com/rook/rook/v1.15.5/deploy/examples/operator.yaml",
            digest: None,
            source: "https://github.com/rook/rook/tree/v1.15.5/deploy/examples",
        },
        Pin { component: "Ceph", version: "v18.2.4", artifact: CEPH_IMAGE, digest: None, source: "Rook v1.15 supported Ceph releases (Reef 18.2)" },
        Pin {
            component: "csi-addons CRDs",
            version: CSI_ADDONS,
            artifact: "https://github.com/csi-addons/kubernetes-csi-addons/releases/download/v0.9.1/crds.yaml",
            digest: None,
            source: "https://github.com/csi-addons/kubernetes-csi-addons/releases/tag/v0.9.1",
        },
        Pin {
            component: "csi-addons RBAC",
            version: CSI_ADDONS,
            artifact: "https://github.com/csi-addons/kubernetes-csi-addons/releases/download/v0.9.1/rbac.yaml",
            digest: None,
            source: "https://github.com/csi-addons/kubernetes-csi-addons/releases/tag/v0.9.1",
        },
        Pin {
            component: "csi-addons controller",
            version: CSI_ADDONS,
            artifact: "https://github.com/csi-addons/kubernetes-csi-addons/releases/download/v0.9.1/setup-controller.yaml",
            digest: None,
            source: "https://github.com/csi-addons/kubernetes-csi-addons/releases/tag/v0.9.1",
        },
    ]
}

fn pin(artifact_suffix: &str) -> Pin {
    pins().into_iter().find(|p| p.artifact.ends_with(artifact_suffix)).expect("a pinned artifact")
}

/// What this machine offers that changes the plan. Gathered by `HostFacts::probe`, given to `plan`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// /dev/kvm exists: KubeVirt uses it; otherwise software emulation.
    pub kvm: bool,
}

impl HostFacts {
    /// What this host offers, as the environment file allows it to be used.
    pub fn probe(spec: &KindSpec) -> HostFacts {
        HostFacts { kvm: !spec.emulation.unwrap_or(!std::path::Path::new("/dev/kvm").exists()) }
    }
}

/// A state an object must reach before the plan goes on. Pure predicates over the object as JSON.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Ready {
    /// `status.phase` equals this.
    Phase(&'static str),
    /// A condition of this type is True.
    Condition(&'static str),
    /// `status.readyReplicas` >= 1 (Deployments).
    Replicas,
    /// The JSON pointer under the object holds a non-empty value.
    Set(&'static str),
}

impl Ready {
    /// Does `obj` (as the API server returned it) satisfy this? Pure.
    pub fn holds(&self, obj: Option<&Value>) -> bool {
        let Some(o) = obj else { return false };
        match self {
            Ready::Phase(p) => o.pointer("/status/phase").and_then(Value::as_str) == Some(p),
            Ready::Condition(t) => {
                o.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| cs.iter().any(|c| c["type"] == *t && c["status"] == "True"))
            }
            Ready::Replicas => o.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0) >= 1,
            Ready::Set(ptr) => o.pointer(ptr).is_some_and(|v| !(v.is_null() || v.as_str() == Some("") || v.as_array().is_some_and(|a| a.is_empty()))),
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Ready::Phase(p) => format!("status.phase {p}"),
            Ready::Condition(t) => format!("condition {t} True"),
            Ready::Replicas => "a ready replica".into(),
            Ready::Set(p) => format!("{} set", p.trim_start_matches('/').replace('/', ".")),
        }
    }
}

/// One step of bringing the kind pair up.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum Step {
    /// A command on this machine.
    Run { why: String, argv: Vec<String> },
    /// A file the harness writes on this machine.
    Write { why: String, path: PathBuf, content: String },
    /// An upstream manifest, fetched over HTTPS, checked against its pin and applied server-side.
    ApplyUrl { cluster: String, pin: Pin },
    /// Manifests the harness generates, applied server-side.
    Apply { cluster: String, why: String, objects: Vec<Value> },
    /// Waits until an object is ready.
    Wait { cluster: String, obj: Obj, ready: Ready, deadline_s: u64 },
    /// Copies cluster `from`'s RBD mirror bootstrap peer token (the secret its CephBlockPool names in
    /// `status.info.rbdMirrorBootstrapPeerSecretName`) to `to` and lists it as `to`'s pool peer.
    ExchangePeer { from: String, to: String, pool: String },
}

impl Step {
    /// Where the step acts: `host` or a cluster's name.
    pub fn place(&self) -> &str {
        match self {
            Step::Run { .. } | Step::Write { .. } => "host",
            Step::ApplyUrl { cluster, .. } | Step::Apply { cluster, .. } | Step::Wait { cluster, .. } => cluster,
            Step::ExchangePeer { to, .. } => to,
        }
    }
}

/// The complete plan: what is pinned and every step in order.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plan {
    pub env: String,
    pub clusters: BTreeMap<String, String>,
    pub pins: Vec<Pin>,
    pub steps: Vec<Step>,
}

pub const ROOK_NS: &str = "rook-ceph";
pub const POOL: &str = "replicapool";
pub const STORAGE_CLASS: &str = "rbd-mirrored";
pub const VRC: &str = "rbd-volumereplicationclass";
pub const PROBE_IMAGE: &str = "localhost/dr-drill/probe-kernel:v1";

/// The kind cluster of each site: `<env>-<site>`.
pub fn cluster_names(cfg: &EnvConfig) -> BTreeMap<String, String> {
    cfg.site_names().into_iter().map(|s| (s.clone(), format!("{}-{s}", cfg.spec.name))).collect()
}

/// The kubeconfig context kind writes for a cluster.
pub fn context_of(cluster: &str) -> String {
    format!("kind-{cluster}")
}

/// Ceph's schedule interval as Ceph and csi-addons write it (`5m`, `1h`).
fn schedule(r: &Regional) -> String {
    let m = r.interval.0.as_secs() / 60;
    if m % 60 == 0 {
        format!("{}h", m / 60)
    } else {
        format!("{m}m")
    }
}

/// The kind cluster config: one node, the OSD's loop device (and /dev/kvm where there is one) mounted in.
pub fn kind_config(cluster: &str, node_image: &str, device: &std::path::Path, facts: &HostFacts) -> String {
    let mut mounts = format!("  - hostPath: {0}\n    containerPath: {0}\n", device.display());
    if facts.kvm {
        mounts.push_str("  - hostPath: /dev/kvm\n    containerPath: /dev/kvm\n");
    }
    format!(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: {cluster}\nnodes:\n- role: control-plane\n  image: {node_image}\n  extraMounts:\n{mounts}"
    )
}

/// The manifests the harness generates for one cluster, in order. Pure.
pub fn cluster_manifests(cluster: &str, device: &std::path::Path, r: &Regional, facts: &HostFacts) -> Vec<(String, Vec<Value>)> {
    let node = format!("{cluster}-control-plane");
    let mut kv_cfg = json!({ "developerConfiguration": { "featureGates": [] } });
    if !facts.kvm {
        kv_cfg["developerConfiguration"]["useEmulation"] = json!(true);
    }
    vec![
        (
            "KubeVirt (software emulation when there is no /dev/kvm)".into(),
            vec![json!({
                "apiVersion": "kubevirt.io/v1", "kind": "KubeVirt",
                "metadata": { "name": "kubevirt", "namespace": "kubevirt" },
                "spec": { "configuration": kv_cfg, "imagePullPolicy": "IfNotPresent" }
            })],
        ),
        (
            "CDI".into(),
            vec![json!({
                "apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "CDI",
                "metadata": { "name": "cdi" },
                "spec": { "imagePullPolicy": "IfNotPresent", "config": { "featureGates": ["HonorWaitForFirstConsumer"] } }
            })],
        ),
        (
            "Rook operator settings: csi-addons sidecar, OMAP generator (mirroring), loop devices allowed".into(),
            vec![json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "rook-ceph-operator-config", "namespace": ROOK_NS },
                "data": {
                    "CSI_ENABLE_CSIADDONS": "true",
                    "CSI_ENABLE_OMAP_GENERATOR": "true",
                    "ROOK_CEPH_ALLOW_LOOP_DEVICES": "true",
                    "ROOK_CSI_ENABLE_CEPHFS": "false",
                    "CSI_ENABLE_HOST_NETWORK": "true"
                }
            })],
        ),
        (
            format!(
                "Ceph cluster: 1 mon, 1 mgr, one OSD on {} only (useAllDevices: false), host network so the other cluster's rbd-mirror reaches it",
                device.display()
            ),
            vec![json!({
                "apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
                "metadata": { "name": ROOK_NS, "namespace": ROOK_NS },
                "spec": {
                    "cephVersion": { "image": CEPH_IMAGE, "allowUnsupported": false },
                    "dataDirHostPath": "/var/lib/rook",
                    "mon": { "count": 1, "allowMultiplePerNode": true },
                    "mgr": { "count": 1, "allowMultiplePerNode": true, "modules": [{ "name": "rbd_support", "enabled": true }] },
                    "dashboard": { "enabled": false },
                    "network": { "provider": "host" },
                    "crashCollector": { "disable": true },
                    "storage": {
                        "useAllNodes": false,
                        "useAllDevices": false,
                        "nodes": [{ "name": node, "devices": [{ "name": device.display().to_string() }] }]
                    },
                    "healthCheck": { "daemonHealth": { "mon": { "interval": "45s" } } }
                }
            })],
        ),
        (
            format!("mirrored pool (image mode, snapshot schedule every {}) and the rbd-mirror daemon", schedule(r)),
            vec![
                json!({
                    "apiVersion": "ceph.rook.io/v1", "kind": "CephBlockPool",
                    "metadata": { "name": POOL, "namespace": ROOK_NS },
                    "spec": {
                        "failureDomain": "osd",
                        "replicated": { "size": 1, "requireSafeReplicaSize": false },
                        "mirroring": { "enabled": true, "mode": "image", "snapshotSchedules": [{ "interval": schedule(r) }] },
                        "statusCheck": { "mirror": { "disabled": false, "interval": "30s" } }
                    }
                }),
                json!({
                    "apiVersion": "ceph.rook.io/v1", "kind": "CephRBDMirror",
                    "metadata": { "name": "rbd-mirror", "namespace": ROOK_NS },
                    "spec": { "count": 1 }
                }),
            ],
        ),
        (
            "storage class of the VM disks (block, exclusive-lock for mirroring) and the VolumeReplicationClass carrying the interval".into(),
            vec![
                json!({
                    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                    "metadata": { "name": STORAGE_CLASS },
                    "provisioner": "rook-ceph.rbd.csi.ceph.com",
                    "parameters": {
                        "clusterID": ROOK_NS, "pool": POOL, "imageFormat": "2",
                        "imageFeatures": "layering,exclusive-lock,object-map,fast-diff",
                        "csi.storage.k8s.io/provisioner-secret-name": "rook-csi-rbd-provisioner",
                        "csi.storage.k8s.io/provisioner-secret-namespace": ROOK_NS,
                        "csi.storage.k8s.io/controller-expand-secret-name": "rook-csi-rbd-provisioner",
                        "csi.storage.k8s.io/controller-expand-secret-namespace": ROOK_NS,
                        "csi.storage.k8s.io/node-stage-secret-name": "rook-csi-rbd-node",
                        "csi.storage.k8s.io/node-stage-secret-namespace": ROOK_NS
                    },
                    "reclaimPolicy": "Delete",
                    "allowVolumeExpansion": true,
                    "volumeBindingMode": "Immediate"
                }),
                json!({
                    "apiVersion": "replication.storage.openshift.io/v1alpha1", "kind": "VolumeReplicationClass",
                    "metadata": { "name": VRC },
                    "spec": {
                        "provisioner": "rook-ceph.rbd.csi.ceph.com",
                        "parameters": {
                            "mirroringMode": "snapshot",
                            "schedulingInterval": schedule(r),
                            "replication.storage.openshift.io/replication-secret-name": "rook-csi-rbd-provisioner",
                            "replication.storage.openshift.io/replication-secret-namespace": ROOK_NS
                        }
                    }
                }),
            ],
        ),
    ]
}

/// Everything `env up` does for `spec`, in order. Pure: `facts` is what the host offers.
pub fn plan(cfg: &EnvConfig, spec: &KindSpec, facts: &HostFacts) -> Plan {
    let r = cfg.spec.regional().expect("the kind environment is validated to be regional");
    let clusters = cluster_names(cfg);
    let node_image = spec.node_image.clone().unwrap_or_else(|| NODE_IMAGE.to_string());
    let mut steps = vec![Step::Run {
        why: "the working directory (OSD files, kind configs, state)".into(),
        argv: vec!["mkdir".into(), "-p".into(), spec.work_dir.display().to_string()],
    }];
    let minutes = |m: u64| m * 60;
    for (site, cluster) in &clusters {
        let dev = &spec.osd_devices[site];
        let file = spec.work_dir.join(format!("{cluster}-osd.img"));
        let conf = spec.work_dir.join(format!("{cluster}.kind.yaml"));
        steps.push(Step::Run {
            why: format!("sparse file backing site {site}'s OSD"),
            argv: vec!["truncate".into(), "-s".into(), spec.osd_size.0.to_string(), file.display().to_string()],
        });
        steps.push(Step::Run {
            why: format!("site {site}'s OSD device, at exactly the name the environment file gives (refused if in use)"),
            argv: vec!["losetup".into(), dev.display().to_string(), file.display().to_string()],
        });
        steps.push(Step::Write { why: format!("kind config of {cluster}"), path: conf.clone(), content: kind_config(cluster, &node_image, dev, facts) });
        steps.push(Step::Run {
            why: format!("cluster {cluster} (site {site})"),
            argv: vec![
                "kind".into(),
                "create".into(),
                "cluster".into(),
                "--name".into(),
                cluster.clone(),
                "--config".into(),
                conf.display().to_string(),
                "--wait".into(),
                "5m".into(),
            ],
        });
        steps.push(Step::Run {
            why: "the probe's kernel-boot image, built locally, into the cluster's node".into(),
            argv: vec!["kind".into(), "load".into(), "docker-image".into(), PROBE_IMAGE.into(), "--name".into(), cluster.clone()],
        });
    }
    for cluster in clusters.values() {
        let ctx = cluster.clone();
        let m = cluster_manifests(cluster, &spec.osd_devices[clusters.iter().find(|(_, c)| *c == cluster).map(|(s, _)| s).expect("site of cluster")], r, facts);
        let mut gen = m.into_iter();
        let mut apply = |steps: &mut Vec<Step>| {
            let (why, objects) = gen.next().expect("manifest group");
            steps.push(Step::Apply { cluster: ctx.clone(), why, objects });
        };
        steps.push(Step::ApplyUrl { cluster: ctx.clone(), pin: pin("kubevirt-operator.yaml") });
        apply(&mut steps);
        steps.push(Step::Wait {
            cluster: ctx.clone(),
            obj: Obj::new("kubevirt.io/v1", "KubeVirt", Some("kubevirt"), "kubevirt"),
            ready: Ready::Phase("Deployed"),
            deadline_s: minutes(10),
        });
        steps.push(Step::ApplyUrl { cluster: ctx.clone(), pin: pin("cdi-operator.yaml") });
        apply(&mut steps);
        steps.push(Step::Wait {
            cluster: ctx.clone(),
            obj: Obj::new("cdi.kubevirt.io/v1beta1", "CDI", None, "cdi"),
            ready: Ready::Phase("Deployed"),
            deadline_s: minutes(10),
        });
        steps.push(Step::ApplyUrl { cluster: ctx.clone(), pin: pin("deploy/examples/crds.yaml") });
        steps.push(Step::ApplyUrl { cluster: ctx.clone(), pin: pin("examples/common.yaml") });
        steps.push(Step::ApplyUrl { cluster: ctx.clone(), pin: pin("examples/operator.yaml") });
        apply(&mut steps);
        steps.push(Step::Wait {
            cluster: ctx.clone(),
            obj: Obj::new("apps/v1", "Deployment", Some(ROOK_NS), "rook-ceph-operator"),
            ready: Ready::Replicas,
            deadline_s: minutes(5),
        });
        steps.push(Step::ApplyUrl { cluster: ctx.clone(), pin: pin("v0.9.1/crds.yaml") });
        steps.push(Step::ApplyUrl { cluster: ctx.clone(), pin: pin("rbac.yaml") });
        steps.push(Step::ApplyUrl { cluster: ctx.clone(), pin: pin("setup-controller.yaml") });
        steps.push(Step::Wait {
            cluster: ctx.clone(),
            obj: Obj::new("apps/v1", "Deployment", Some("csi-addons-system"), "csi-addons-controller-manager"),
            ready: Ready::Replicas,
            deadline_s: minutes(5),
        });
        apply(&mut steps);
        steps.push(Step::Wait {
            cluster: ctx.clone(),
            obj: Obj::new("ceph.rook.io/v1", "CephCluster", Some(ROOK_NS), ROOK_NS),
            ready: Ready::Phase("Ready"),
            deadline_s: minutes(15),
        });
        apply(&mut steps);
        steps.push(Step::Wait {
            cluster: ctx.clone(),
            obj: Obj::new("ceph.rook.io/v1", "CephBlockPool", Some(ROOK_NS), POOL),
            ready: Ready::Set("/status/info/rbdMirrorBootstrapPeerSecretName"),
            deadline_s: minutes(5),
        });
        apply(&mut steps);
    }
    let names: Vec<&String> = clusters.values().collect();
    for (from, to) in [(names[0], names[1]), (names[1], names[0])] {
        steps.push(Step::ExchangePeer { from: from.clone(), to: to.clone(), pool: POOL.into() });
    }
    for c in clusters.values() {
        steps.push(Step::Wait {
            cluster: c.clone(),
            obj: Obj::new("ceph.rook.io/v1", "CephBlockPool", Some(ROOK_NS), POOL),
            ready: Ready::Set("/status/mirroringInfo/peers"),
            deadline_s: minutes(5),
        });
    }
    Plan { env: cfg.spec.name.clone(), clusters, pins: pins(), steps }
}

/// The plan as `env up --dry-run` prints it: the pins, then each step numbered with where it acts, the
/// command or the manifests (as YAML) in full.
pub fn render(plan: &Plan) -> String {
    let mut s = format!(
        "# env up --dry-run: {} (kind, {} clusters: {}); nothing was touched\n# pinned versions\n",
        plan.env,
        plan.clusters.len(),
        plan.clusters.iter().map(|(s, c)| format!("site {s} = {c} (context {})", context_of(c))).collect::<Vec<_>>().join(", ")
    );
    for p in &plan.pins {
        let digest = match p.digest {
            Some(d) => d,
            // what `env up` fetches itself is held to the digest first fetched; the rest is pinned by tag
            None if p.artifact.starts_with("https://") => "recorded at first fetch (pinned.lock)",
            None => "none confirmed here (pinned by version)",
        };
        s.push_str(&format!("#   {:<22} {:<9} {}  digest: {}  (from {})\n", p.component, p.version, p.artifact, digest, p.source));
    }
    for (i, st) in plan.steps.iter().enumerate() {
        let n = i + 1;
        match st {
            Step::Run { why, argv } => s.push_str(&format!("{n:>3}. [host] {}    # {why}\n", argv.join(" "))),
            Step::Write { why, path, content } => {
                s.push_str(&format!("{n:>3}. [host] write {}    # {why}\n", path.display()));
                for l in content.lines() {
                    s.push_str(&format!("       | {l}\n"));
                }
            }
            Step::ApplyUrl { cluster, pin } => s.push_str(&format!(
                "{n:>3}. [{cluster}] apply --server-side {}    # {} {}, digest {}\n",
                pin.artifact,
                pin.component,
                pin.version,
                pin.digest.unwrap_or("recorded at first fetch")
            )),
            Step::Apply { cluster, why, objects } => {
                s.push_str(&format!("{n:>3}. [{cluster}] apply --server-side    # {why}\n"));
                for o in objects {
                    s.push_str("       ---\n");
                    let y = serde_saphyr::to_string(o).unwrap_or_else(|_| o.to_string());
                    for l in y.lines() {
                        s.push_str(&format!("       {l}\n"));
                    }
                }
            }
            Step::Wait { cluster, obj, ready, deadline_s } => {
                s.push_str(&format!("{n:>3}. [{cluster}] wait for {} {} ({}), at most {}s\n", obj.kind, obj.key(), ready.describe(), deadline_s))
            }
            Step::ExchangePeer { from, to, pool } => s.push_str(&format!(
                "{n:>3}. [{to}] import {from}'s RBD mirror bootstrap peer token as secret rbd-peer-{from} and add it to pool {pool}'s peers\n"
            )),
        }
    }
    s
}

/// Every generated object of the plan, with the cluster it goes to.
pub fn generated(plan: &Plan) -> Vec<(String, Value)> {
    plan.steps
        .iter()
        .flat_map(|s| match s {
            Step::Apply { cluster, objects, .. } => objects.iter().map(|o| (cluster.clone(), o.clone())).collect(),
            _ => vec![],
        })
        .collect()
}

/// How long `env up` may take at most (the sum of its waits plus the cluster creations).
pub fn budget(plan: &Plan) -> Duration {
    let waits: u64 = plan.steps.iter().map(|s| if let Step::Wait { deadline_s, .. } = s { *deadline_s } else { 0 }).sum();
    Duration::from_secs(waits + 600 * plan.clusters.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const ENV: &str = include_str!("../../../environments/kind-regional.yaml");

    fn cfg() -> EnvConfig {
        crate::config::from_yaml(Path::new("environments/kind-regional.yaml"), ENV).unwrap()
    }

    fn the_plan(kvm: bool) -> Plan {
        let c = cfg();
        let crate::config::Backend::Kind(k) = &c.spec.backend else { panic!("kind") };
        plan(&c, k, &HostFacts { kvm })
    }

    #[test]
    fn osds_get_only_the_named_loop_devices() {
        let p = the_plan(false);
        let gen = generated(&p);
        let clusters: Vec<&Value> = gen.iter().filter(|(_, o)| o["kind"] == "CephCluster").map(|(_, o)| o).collect();
        assert_eq!(clusters.len(), 2);
        for c in clusters {
            let st = &c["spec"]["storage"];
            assert_eq!((st["useAllDevices"].as_bool(), st["useAllNodes"].as_bool()), (Some(false), Some(false)), "{st}");
            let devs: Vec<&str> = st["nodes"][0]["devices"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
            assert!(devs.len() == 1 && devs[0].starts_with("/dev/loop"), "{devs:?}");
            assert!(!st.to_string().contains("deviceFilter"), "{st}");
        }
        let losetup: Vec<&Vec<String>> =
            p.steps.iter().filter_map(|s| if let Step::Run { argv, .. } = s { (argv[0] == "losetup").then_some(argv) } else { None }).collect();
        assert_eq!(losetup.iter().map(|a| a[1].as_str()).collect::<Vec<_>>(), ["/dev/loop20", "/dev/loop21"]);
    }

    #[test]
    fn plan_is_ordered_and_complete() {
        let p = the_plan(false);
        let text = render(&p);
        // every pin is printed with where it came from, the node image with its digest
        assert!(text.contains(NODE_IMAGE.split('@').nth(1).unwrap()), "{text}");
        for pn in pins() {
            assert!(text.contains(pn.artifact), "{} missing", pn.artifact);
        }
        // order: operators before their custom resources, pools before the peer exchange
        let idx = |pred: &dyn Fn(&Step) -> bool| p.steps.iter().position(pred).unwrap();
        let kv_op = idx(&|s| matches!(s, Step::ApplyUrl { pin, .. } if pin.artifact.ends_with("kubevirt-operator.yaml")));
        let kv_cr = idx(&|s| matches!(s, Step::Apply { objects, .. } if objects[0]["kind"] == "KubeVirt"));
        let ceph = idx(&|s| matches!(s, Step::Apply { objects, .. } if objects[0]["kind"] == "CephCluster"));
        let rook_op = idx(&|s| matches!(s, Step::ApplyUrl { pin, .. } if pin.artifact.ends_with("operator.yaml") && pin.component == "Rook operator"));
        let exchange = idx(&|s| matches!(s, Step::ExchangePeer { .. }));
        let last_pool = p.steps.iter().rposition(|s| matches!(s, Step::Apply { objects, .. } if objects[0]["kind"] == "CephBlockPool")).unwrap();
        assert!(kv_op < kv_cr && rook_op < ceph && last_pool < exchange, "{text}");
        assert_eq!(p.steps.iter().filter(|s| matches!(s, Step::ExchangePeer { .. })).count(), 2);
        // emulation without /dev/kvm, the device passed through with it
        assert!(text.contains("useEmulation: true"), "{text}");
        let with_kvm = render(&the_plan(true));
        assert!(!with_kvm.contains("useEmulation") && with_kvm.contains("containerPath: /dev/kvm"));
        // the interval reaches Ceph's schedule and the VolumeReplicationClass
        let vrc = generated(&p).into_iter().find(|(_, o)| o["kind"] == "VolumeReplicationClass").unwrap().1;
        assert_eq!(vrc["spec"]["parameters"]["schedulingInterval"], "5m");
        assert!(text.contains("interval: 5m"), "{text}");
        assert!(budget(&p) > Duration::from_secs(3600));
    }

    #[test]
    fn readiness_predicates() {
        let y = |s: &str| -> Value { serde_saphyr::from_str(s).unwrap() };
        assert!(Ready::Phase("Deployed").holds(Some(&y("status: {phase: Deployed}"))));
        assert!(!Ready::Phase("Deployed").holds(Some(&y("status: {phase: Deploying}"))));
        assert!(!Ready::Phase("Deployed").holds(None));
        assert!(Ready::Replicas.holds(Some(&y("status: {readyReplicas: 1}"))));
        assert!(!Ready::Replicas.holds(Some(&y("status: {replicas: 1}"))));
        let set = Ready::Set("/status/mirroringInfo/peers");
        assert!(set.holds(Some(&y("status: {mirroringInfo: {peers: [{uuid: x}]}}"))));
        assert!(!set.holds(Some(&y("status: {mirroringInfo: {peers: []}}"))));
        assert!(Ready::Condition("Available").holds(Some(&y("status: {conditions: [{type: Available, status: 'True'}]}"))));
    }
}
