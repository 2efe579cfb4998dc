//! Kubernetes clusters as an environment (kind pairs, existing clusters): the kind pair's plan and its
//! bring-up, existing clusters' checks, and the ports over clusters: the probe in a KubeVirt VM (workload),
//! kind's node containers or the operator's commands (faults), csi-addons VolumeReplication or Ramen's
//! DRPlacementControl (DR driver).

pub mod commands;
pub mod existing;
pub mod kind;
pub mod kind_up;
pub mod kubevirt;
pub mod nodes;
pub mod ramen;
pub mod rounds;
pub mod volrep;

use crate::config::{EnvConfig, ExistingSpec, Guest, KindSpec};
use crate::env::probe::ProbeWorkload;
use crate::error::EnvError;
use crate::events::Bus;
use crate::ports::{DrDriver, Infrastructure, Workload};
use std::collections::BTreeMap;
use std::time::Duration;

/// The VM's disk on a cluster: a blank block-mode PVC on the mirrored storage class, labelled as the
/// application's (`app_label: dr-drill-<vm>`).
#[derive(Clone, Debug)]
pub struct Disk {
    pub namespace: String,
    pub storage_class: String,
    pub bytes: u64,
    pub app_label: String,
    /// How long the PVC may take to bind.
    pub bind: Duration,
}

impl Disk {
    /// Makes `<vm>-disk` on `site`'s cluster and waits until it is bound; returns its name and the PVC as
    /// the API server has it.
    pub async fn make(&self, c: &kube::Client, site: &str, vm: &str) -> Result<(String, serde_json::Value), EnvError> {
        let (pvc, label) = (format!("{vm}-disk"), crate::k8s::kubevirt::app_of(vm));
        let claim = crate::k8s::kubevirt::pvc_manifest(&self.namespace, &pvc, &self.storage_class, self.bytes, (&self.app_label, &label));
        crate::k8s::apply::apply_all(c, &[claim], false, Duration::from_secs(10)).await.map_err(at_site(site, "create the VM's PVC"))?;
        let o = crate::k8s::apply::Obj::new("v1", "PersistentVolumeClaim", Some(&self.namespace), &pvc);
        let bound =
            crate::k8s::apply::wait_ready(c, &o, "bind", self.bind, crate::k8s::kubevirt::pvc_bound).await.map_err(at_site(site, "bind the VM's PVC"))?;
        Ok((pvc, bound))
    }
}

/// A Kubernetes error met doing `what` on `site`, with its cause.
pub fn at_site(site: &str, what: &str) -> impl Fn(crate::k8s::K8sError) -> EnvError {
    let (site, what) = (site.to_string(), what.to_string());
    move |e| EnvError::Site { site: site.clone(), what: what.clone(), detail: e.to_string(), cause: crate::error::Caused::cause(&e) }
}

fn disk_of(guest: &Guest, storage_class: &str, bind: Duration) -> Disk {
    Disk { namespace: guest.namespace.clone(), storage_class: storage_class.into(), bytes: guest.disk_size.0, app_label: guest.app_label.clone(), bind }
}

/// The ports of a cluster environment.
pub struct ClusterParts {
    pub workload: Box<dyn Workload>,
    pub faults: Box<dyn Infrastructure>,
    pub driver: Box<dyn DrDriver>,
}

/// Each site's client, checked to answer; the VM's namespace made where it is missing.
async fn clients(
    cfg: &EnvConfig,
    contexts: &BTreeMap<String, String>,
    kubeconfig: Option<&std::path::Path>,
    guest: &Guest,
) -> Result<BTreeMap<String, kube::Client>, EnvError> {
    let mut out = BTreeMap::new();
    for (site, ctx) in contexts {
        let c = kind_up::client_for(ctx, kubeconfig).await?;
        match tokio::time::timeout(Duration::from_secs(15), c.apiserver_version()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(EnvError::Usage(format!("{}: site {site}: context {ctx} does not answer: {e}", cfg.path.display()))),
            Err(_) => return Err(EnvError::Usage(format!("{}: site {site}: context {ctx} does not answer within 15s", cfg.path.display()))),
        }
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": guest.namespace}});
        crate::k8s::apply::apply_all(&c, &[ns], false, Duration::from_secs(10)).await.map_err(|e| EnvError::Site {
            site: site.clone(),
            what: format!("make namespace {}", guest.namespace),
            detail: e.to_string(),
            cause: crate::error::Cause::Harness,
        })?;
        out.insert(site.clone(), c);
    }
    Ok(out)
}

fn volrep_settings(cfg: &EnvConfig, guest: &Guest, storage_class: &str, class: &str) -> Result<volrep::VolRepSettings, EnvError> {
    let r = cfg.spec.regional().ok_or_else(|| {
        EnvError::Usage(format!("{}: VolumeReplication protects Regional-DR environments; Metro-DR on clusters goes through Ramen (a hub)", cfg.path.display()))
    })?;
    let b = &cfg.spec.budgets;
    Ok(volrep::VolRepSettings {
        disk: disk_of(guest, storage_class, b.boot.0),
        replication_class: class.into(),
        interval: r.interval.0,
        allowance: r.allowance(),
        promote: b.deadline(crate::config::Budget::Promote),
        resync: b.deadline(crate::config::Budget::Resync),
    })
}

/// The kind pair made by `env up`: KubeVirt VMs, faults on the node containers, VolumeReplication.
pub async fn up_kind(cfg: &EnvConfig, spec: &KindSpec, bus: Bus) -> Result<ClusterParts, EnvError> {
    if !kind_up::is_up(cfg, spec) {
        return Err(EnvError::Usage(format!(
            "environment {} is not up: `dr-drill env up --env {}` first (drills use the kind clusters, they do not make them)",
            cfg.spec.name,
            cfg.path.display()
        )));
    }
    let clusters = kind::cluster_names(cfg);
    let contexts = clusters.iter().map(|(s, c)| (s.clone(), kind::context_of(c))).collect();
    let clients = clients(cfg, &contexts, None, &spec.guest).await?;
    let launcher = kubevirt::KubeVirtLauncher::new(clients.clone(), spec.guest.clone(), kind::PROBE_IMAGE, kind::STORAGE_CLASS, cfg.spec.budgets.boot.0);
    Ok(ClusterParts {
        workload: Box::new(ProbeWorkload::new(Box::new(launcher), cfg.spec.budgets.clone(), bus.clone())),
        faults: Box::new(nodes::DockerNodes::new(&cfg.spec.name, cfg.spec.disposable, clusters, &spec.network, bus)),
        driver: Box::new(volrep::VolRepDriver::new(clients, volrep_settings(cfg, &spec.guest, kind::STORAGE_CLASS, kind::VRC)?)),
    })
}

/// Existing clusters: KubeVirt VMs, the operator's fault commands, and Ramen's DRPlacementControl (with a
/// hub) or csi-addons VolumeReplication (without).
pub async fn up_existing(cfg: &EnvConfig, spec: &ExistingSpec, bus: Bus) -> Result<ClusterParts, EnvError> {
    let clients = clients(cfg, &spec.contexts, spec.kubeconfig.as_deref(), &spec.guest).await?;
    let b = &cfg.spec.budgets;
    let driver: Box<dyn DrDriver> = match &spec.hub {
        // Ramen: the application's DRPlacementControl (named after the VM) on the hub; the harness makes
        // the VM's PVC and its VM, Ramen protects and moves them
        Some(hub) => {
            let hc = kind_up::client_for(&hub.context, spec.kubeconfig.as_deref()).await?;
            let managed =
                cfg.site_names().into_iter().map(|s| (s.clone(), hub.clusters.get(&s).cloned().unwrap_or_else(|| spec.contexts[&s].clone()))).collect();
            let declared = cfg.spec.regional().map(|r| (r.interval.0, r.allowance()));
            let vrgs = hub.vrg_namespace.clone().unwrap_or_else(|| spec.guest.namespace.clone());
            Box::new(
                ramen::RamenDriver::new(hc, &hub.namespace, managed, b.deadline(crate::config::Budget::Promote), declared)
                    .resync_within(b.deadline(crate::config::Budget::Resync))
                    .making_disks(clients.clone(), disk_of(&spec.guest, &spec.storage_class, b.boot.0), &vrgs),
            )
        }
        None => {
            let class = spec
                .volume_replication_class
                .clone()
                .ok_or_else(|| EnvError::Usage(format!("{}: volumeReplicationClass: needed without a hub", cfg.path.display())))?;
            Box::new(volrep::VolRepDriver::new(clients.clone(), volrep_settings(cfg, &spec.guest, &spec.storage_class, &class)?))
        }
    };
    let launcher = kubevirt::KubeVirtLauncher::new(clients, spec.guest.clone(), &spec.probe_image, &spec.storage_class, b.boot.0);
    Ok(ClusterParts {
        workload: Box::new(ProbeWorkload::new(Box::new(launcher), b.clone(), bus.clone())),
        faults: Box::new(commands::OperatorCommands::new(&cfg.spec.name, cfg.spec.disposable, spec.commands.clone(), spec.contexts.clone(), bus, b.command.0)),
        driver,
    })
}
