//! Doubles of two clusters' replicated storage, for drills on test clusters (real API servers, the real
//! probe): a PVC binder (what a CSI provisioner does) and the csi-addons VolumeReplication operator with the
//! replication itself. Every interval the primary's disk file is copied to the peer's, with the VM's probe
//! stopped (SIGSTOP) for the copy as a storage snapshot freezes I/O, so each copy is crash-consistent;
//! `lastSyncTime` is the moment of the freeze truncated to the second (never later than the snapshot) and
//! `lastSyncDuration` how long the copy took. A demotion copies once more (the final sync). A site whose
//! API server is gone (or stopped) does nothing. Like real mirroring, a primary copies only to a peer that
//! is secondary: two primaries (after a forced promote, the old site back) replicate nothing. A primary
//! demoted while its peer is primary has diverged: with `autoResync` its copy is resynced from the peer (a
//! full copy back), without it it stays as it is (stale).

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// One site as the storage double sees it.
#[derive(Clone)]
pub struct Site {
    pub client: kube::Client,
    pub disks: PathBuf,
    /// The PID of the probe running VM `ns/name` on this site, if one runs.
    pub probe: PidOf,
}

/// The PID of the probe running VM `ns/name` on a site, if one runs.
pub type PidOf = Arc<dyn Fn(&str) -> Option<i32> + Send + Sync>;

pub struct Storage {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub syncs: Arc<std::sync::Mutex<Vec<(usize, String, Duration)>>>,
}

impl Drop for Storage {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

const NS: &str = "dr-drill";

fn vrs(c: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(c.clone(), NS, &ApiResource::from_gvk(&GroupVersionKind::gvk("replication.storage.openshift.io", "v1alpha1", "VolumeReplication")))
}

fn rfc3339(secs: u64) -> String {
    let out = std::process::Command::new("date").args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Copies `from`'s disk `pvc` to `to`'s, with the VM's probe frozen for the copy; returns (snapshot time in
/// unix seconds, how long it took).
fn snapshot(from: &Site, to: &Site, pvc: &str) -> Option<(f64, Duration)> {
    let src = from.disks.join(format!("{pvc}.img"));
    if !src.exists() {
        return None;
    }
    let vm = pvc.strip_suffix("-disk").unwrap_or(pvc);
    let pid = (from.probe)(&format!("{NS}/{vm}"));
    // SAFETY: signals to a probe the virt-api double started.
    if let Some(p) = pid {
        unsafe { libc::kill(p, libc::SIGSTOP) };
    }
    let t = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
    let t0 = Instant::now();
    let tmp = to.disks.join(format!(".{pvc}.img.tmp"));
    let ok = std::fs::copy(&src, &tmp).is_ok() && std::fs::rename(&tmp, to.disks.join(format!("{pvc}.img"))).is_ok();
    if let Some(p) = pid {
        unsafe { libc::kill(p, libc::SIGCONT) };
    }
    ok.then(|| (t, t0.elapsed()))
}

/// The state the peer's VolumeReplication `name` reports, if its API server answers within 2 s.
async fn peer_state(peer: &Site, name: &str) -> Option<String> {
    let got = tokio::time::timeout(Duration::from_secs(2), vrs(&peer.client).get_opt(name)).await.ok()?.ok()??;
    got.data["status"]["state"].as_str().map(String::from)
}

impl Storage {
    pub fn start(sites: Vec<Site>, interval: Duration) -> Storage {
        let mut tasks = vec![];
        let syncs: Arc<std::sync::Mutex<Vec<(usize, String, Duration)>>> = Arc::default();
        for (i, s) in sites.iter().enumerate() {
            tasks.push(tokio::spawn(binder(s.clone())));
            let peer = sites[1 - i].clone();
            tasks.push(tokio::spawn(operator(i, s.clone(), peer, interval, syncs.clone())));
        }
        Storage { tasks, syncs }
    }
}

/// Binds pending PVCs: a new one to a new volume (its handle the PVC's name: the disk file), a staged
/// twin to the volume it names.
async fn binder(s: Site) {
    let pvcs: Api<DynamicObject> =
        Api::namespaced_with(s.client.clone(), NS, &ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "PersistentVolumeClaim")));
    let pvs: Api<DynamicObject> = Api::all_with(s.client.clone(), &ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "PersistentVolume")));
    loop {
        if let Ok(list) = pvcs.list(&ListParams::default()).await {
            for p in list.items.iter().filter(|p| p.data["status"]["phase"] != "Bound") {
                let name = p.metadata.name.clone().unwrap();
                if p.data["spec"]["volumeName"].as_str().unwrap_or("").is_empty() {
                    let pv = format!("pvc-{}", p.metadata.uid.clone().unwrap());
                    let spec = &p.data["spec"];
                    let v: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
                        "spec": {"capacity": {"storage": spec["resources"]["requests"]["storage"]}, "accessModes": spec["accessModes"], "volumeMode": spec["volumeMode"],
                                 "storageClassName": spec["storageClassName"], "persistentVolumeReclaimPolicy": "Delete",
                                 "csi": {"driver": "disk-file.double", "volumeHandle": name},
                                 "claimRef": {"namespace": NS, "name": name, "uid": p.metadata.uid}}})).unwrap();
                    // the provisioner makes the volume: a zeroed file of the size asked for
                    let bytes: u64 = spec["resources"]["requests"]["storage"].as_str().and_then(|b| b.parse().ok()).unwrap_or(64 << 20);
                    let f = std::fs::File::create(s.disks.join(format!("{name}.img"))).unwrap();
                    f.set_len(bytes).unwrap();
                    let _ = pvs.create(&PostParams::default(), &v).await;
                    let _ = pvcs.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"volumeName": pv}}))).await;
                }
                let _ = pvcs.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Bound"}}))).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The VolumeReplication operator of one site: states follow the spec; the primary's disk is copied to the
/// peer every interval.
async fn operator(i: usize, s: Site, peer: Site, interval: Duration, syncs: Arc<std::sync::Mutex<Vec<(usize, String, Duration)>>>) {
    let api = vrs(&s.client);
    let mut next = Instant::now() + interval;
    loop {
        let Ok(list) = api.list(&ListParams::default()).await else {
            // this site's API server is gone: its storage does nothing more
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let tick = Instant::now() >= next;
        if tick {
            next += interval;
        }
        for v in &list.items {
            let name = v.metadata.name.clone().unwrap();
            let generation = v.metadata.generation.unwrap_or(0);
            let want = if v.data["spec"]["replicationState"] == "primary" { "Primary" } else { "Secondary" };
            let state = v.data["status"]["state"].as_str().unwrap_or("").to_string();
            let observed = v.data["status"]["observedGeneration"].as_i64().unwrap_or(-1);
            let mut status = json!({});
            if state != want || observed != generation {
                if state == "Primary" && want == "Secondary" {
                    match peer_state(&peer, &name).await.as_deref() {
                        // demotion: the final snapshot reaches the peer before the state changes
                        Some("Secondary") => {
                            if let Some((t, d)) = snapshot(&s, &peer, &name) {
                                status["lastSyncTime"] = json!(rfc3339(t as u64));
                                status["lastSyncDuration"] = json!(format!("{}ms", d.as_millis().max(1)));
                                syncs.lock().unwrap().push((i, name.clone(), d));
                            }
                        }
                        // the peer was promoted while this copy was away: it diverged; resynced from the
                        // peer only when asked (autoResync), else left stale
                        Some("Primary") if v.data["spec"]["autoResync"] == true => {
                            snapshot(&peer, &s, &name);
                        }
                        _ => {}
                    }
                }
                let own = s.disks.join(format!("{name}.img"));
                if want == "Secondary" && !own.exists() {
                    // mirroring enabled: the secondary image exists from the start, empty until a round arrives
                    let len = std::fs::metadata(peer.disks.join(format!("{name}.img"))).map(|m| m.len()).unwrap_or(64 << 20);
                    std::fs::File::create(&own).unwrap().set_len(len).unwrap();
                }
                status["state"] = json!(want);
                status["observedGeneration"] = json!(generation);
                status["conditions"] = json!([{"type": "Completed", "status": "True", "observedGeneration": generation, "reason": if want == "Primary" { "Promoted" } else { "Demoted" }, "message": "", "lastTransitionTime": rfc3339(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs())}]);
            } else if tick && want == "Primary" && peer_state(&peer, &name).await.as_deref() == Some("Secondary") {
                if let Some((t, d)) = snapshot(&s, &peer, &name) {
                    status["lastSyncTime"] = json!(rfc3339(t as u64));
                    status["lastSyncDuration"] = json!(format!("{}ms", d.as_millis().max(1)));
                    syncs.lock().unwrap().push((i, name.clone(), d));
                }
            }
            if status.as_object().is_some_and(|o| !o.is_empty()) {
                let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({ "status": status }))).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
