//! The Workload port on Kubernetes: the probe in a KubeVirt VM. A boot applies the VM (its kernel
//! arguments carry the probe's mode) and its ConfigMap, asks KubeVirt to start it (the `start`
//! subresource; `runStrategy: Manual`, so nothing restarts it behind the harness's back), waits for the VMI
//! to run, attaches to its serial console and tells the probe to go. The witness then reads the console
//! exactly as it reads the lab's virtio-serial port (`env::probe`).

use crate::clock::Wt;
use crate::config::Guest;
use crate::env::probe::{Launch, Launched, Launcher, Machine};
use crate::error::{Cause, EnvError};
use crate::k8s::apply::{self, Obj};
use crate::k8s::kubevirt::{app_of, kernel_args, vmi_ended, vmi_running, VmManifest};
use crate::k8s::{console, K8sError};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Boots the probe's VM on the site's cluster.
pub struct KubeVirtLauncher {
    /// Site -> client of its cluster.
    clients: BTreeMap<String, kube::Client>,
    guest: Guest,
    image: String,
    storage_class: String,
    /// How long a VMI may take to run, and to end.
    boot: Duration,
}

/// How long one request to a cluster may take (a lost site must not hang the drill).
const REQUEST: Duration = Duration::from_secs(15);

fn vm_err(vm: &str, site: &str, cause: Cause, detail: impl Into<String>) -> EnvError {
    EnvError::Vm { vm: vm.into(), site: site.into(), detail: detail.into(), cause }
}

impl KubeVirtLauncher {
    pub fn new(clients: BTreeMap<String, kube::Client>, guest: Guest, image: &str, storage_class: &str, boot: Duration) -> KubeVirtLauncher {
        KubeVirtLauncher { clients, guest, image: image.into(), storage_class: storage_class.into(), boot }
    }

    /// The VM's resources for this boot.
    pub fn manifest(&self, l: &Launch<'_>) -> VmManifest {
        VmManifest {
            name: l.vm.into(),
            namespace: self.guest.namespace.clone(),
            app_label: self.guest.app_label.clone(),
            app: app_of(l.vm),
            image: self.image.clone(),
            memory_bytes: self.guest.memory.0,
            disk_bytes: self.guest.disk_size.0,
            storage_class: self.storage_class.clone(),
            disk: l.volume.name.clone(),
            kernel_args: kernel_args(&l.mode.cmdline(), l.rate, l.scan_limit),
        }
    }
}

/// Asks KubeVirt to `start` or `stop` a VM through its subresource.
async fn vm_action(client: &kube::Client, m: &VmManifest, action: &str, body: &str) -> Result<(), K8sError> {
    let req = http::Request::put(m.action_path(action))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.as_bytes().to_vec())
        .expect("a valid request");
    match tokio::time::timeout(REQUEST, client.request_text(req)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => {
            Err(K8sError::Api { what: action.into(), kind: "VirtualMachine".into(), namespace: m.namespace.clone(), name: m.name.clone(), source })
        }
        Err(_) => Err(K8sError::Usage(format!("failed to {action} VirtualMachine {}/{}: no answer within {REQUEST:?}", m.namespace, m.name))),
    }
}

fn vmi_of(m: &VmManifest) -> Obj {
    Obj::new("kubevirt.io/v1", "VirtualMachineInstance", Some(&m.namespace), &m.name)
}

#[async_trait]
impl Launcher for KubeVirtLauncher {
    fn disk_records(&self) -> u64 {
        self.guest.disk_size.0 / 4096 - 1
    }

    /// The VM and its ConfigMap go from every site (best effort: a lost site may not answer).
    async fn forget(&mut self, vm: &str) {
        for c in self.clients.values() {
            let ns = &self.guest.namespace;
            for (api_version, kind, name) in [("kubevirt.io/v1", "VirtualMachine", vm.to_string()), ("v1", "ConfigMap", format!("{vm}-probe"))] {
                let o = Obj::new(api_version, kind, Some(ns), &name);
                let _ = tokio::time::timeout(REQUEST, apply::delete(c, &o)).await;
            }
        }
    }

    async fn launch(&mut self, l: &Launch<'_>) -> Result<Launched, EnvError> {
        let client = self.clients.get(l.site).ok_or_else(|| EnvError::Usage(format!("site {} has no cluster in this environment", l.site)))?.clone();
        let m = self.manifest(l);
        let vmi = vmi_of(&m);
        let err = |e: K8sError| vm_err(l.vm, l.site, crate::error::Caused::cause(&e), e.to_string());
        // an earlier boot's VMI ends first (a lost site's is not waited for: its cluster is another)
        apply::wait_ready(&client, &vmi, "the previous boot's VMI to end", self.boot, vmi_ended).await.map_err(err)?;
        apply::apply_all(&client, &[m.config_map(), m.virtual_machine()], false, Duration::from_secs(10)).await.map_err(err)?;
        let started = Wt::now();
        vm_action(&client, &m, "start", "{}").await.map_err(err)?;
        apply::wait_ready(&client, &vmi, "the VMI to run", self.boot, vmi_running).await.map_err(err)?;
        let (reader, mut writer) = console::connect(&client, &m.console_path()).await.map_err(err)?;
        // the console is attached: the probe may start (it waits for this, so no line is lost)
        writer.write_all(b"go\n").await.map_err(|e| vm_err(l.vm, l.site, Cause::Harness, format!("failed to send go over the console: {e}")))?;
        let machine = KubeVirtMachine { client, m, phase: String::new() };
        Ok(Launched { machine: Box::new(machine), reader: Box::new(reader), writer: Box::new(writer), started })
    }
}

/// A VMI as the harness sees it through its cluster's API.
pub struct KubeVirtMachine {
    client: kube::Client,
    m: VmManifest,
    /// The phase last seen, for errors.
    phase: String,
}

impl KubeVirtMachine {
    async fn read(&mut self) -> Option<Option<serde_json::Value>> {
        let got = tokio::time::timeout(REQUEST, apply::get(&self.client, &vmi_of(&self.m))).await.ok()?.ok()?;
        self.phase = got.as_ref().and_then(|v| v.pointer("/status/phase")).and_then(|p| p.as_str()).unwrap_or("gone").to_string();
        Some(got)
    }
}

#[async_trait]
impl Machine for KubeVirtMachine {
    /// Running as far as its cluster says; a cluster that does not answer cannot run it for the harness.
    async fn alive(&mut self) -> bool {
        match self.read().await {
            Some(v) => !vmi_ended(v.as_ref()),
            None => false,
        }
    }

    async fn kill(&mut self) {
        // immediate: no grace period; a lost site's cluster may not answer at all (black-holed): not waited on
        let _ = tokio::time::timeout(Duration::from_secs(3), vm_action(&self.client, &self.m, "stop", r#"{"gracePeriod":0}"#)).await;
    }

    async fn wait_exit(&mut self, deadline: Duration) -> bool {
        let r = apply::wait_ready(&self.client, &vmi_of(&self.m), "the VMI to end", deadline, vmi_ended).await.is_ok();
        if r {
            // powered off by itself: KubeVirt is told the VM stays stopped (Manual: nothing restarts it anyway)
            let _ = vm_action(&self.client, &self.m, "stop", "{}").await;
        }
        r
    }

    fn rss_bytes(&self) -> u64 {
        0
    }

    fn console_tail(&self, _lines: usize) -> String {
        format!("VMI {}/{} last seen {}", self.m.namespace, self.m.name, if self.phase.is_empty() { "not yet read" } else { &self.phase })
    }
}
