//! Metro-DR in the lab: one Ceph cluster stretched over three failure domains, each its own network
//! namespace: the two data sites (a monitor, a manager and an OSD each) and an arbiter (a monitor only).
//! CRUSH keeps one replica per data site (a rule over `datacenter` buckets, size 2, min_size 1), so every
//! acknowledged write is on both sites and either can serve alone. The domains reach each other only over
//! the harness's delay line (a link per pair), each by an address on its loopback.
//!
//! The DR driver has nothing to replicate: failover fences the lost site the way ODF does (its clients
//! blocklisted, so a site that comes back cannot write) and the VM restarts on the survivor against the
//! same image; relocate is a graceful stop and a start on the other site.

use super::ip;
use super::site::{mon_addr, ConfShape, Site, SiteRef};
use super::wan::WanLink;
use crate::clock::Wt;
use crate::config::{Budgets, EnvConfig, LabSpec, Placement};
use crate::error::{Cause, EnvError};
use crate::ports::{DrDriver, DriverReport, Marker, Promise, Role, SiteRole, Volume};
use crate::topology::Topology;
use async_trait::async_trait;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// The address of the i-th failure domain (on its loopback).
pub fn addr(i: usize) -> String {
    format!("10.78.0.{}", i + 1)
}

/// The device in `site`'s namespace that leads to `peer`.
pub fn dev(peer: &str) -> String {
    format!("to-{peer}")
}

/// A link per pair of failure domains through the delay line, routes to every other domain's address.
pub async fn network(sites: &[Site], links: &mut Vec<WanLink>) -> Result<(), EnvError> {
    for s in sites {
        ip(&["-n", &s.ns, "addr", "add", &format!("{}/32", s.ip), "dev", "lo"]).await?;
        // packets from a peer arrive on that peer's device, which is also the way back: no reverse-path drop
        let mut c = crate::procs::in_netns(&s.ns, "sysctl");
        c.args(["-q", "-w", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]);
        let out = crate::procs::run(c, Duration::from_secs(10), "sysctl rp_filter").await.map_err(EnvError::Usage)?;
        if !out.ok {
            return Err(EnvError::Site { site: s.name.clone(), what: "turn reverse-path filtering off".into(), detail: out.stderr, cause: Cause::Harness });
        }
    }
    for (i, a) in sites.iter().enumerate() {
        for b in &sites[i + 1..] {
            let (da, db) = (dev(&b.name), dev(&a.name));
            links.push(WanLink::open((&a.name, &a.ns, &da), (&b.name, &b.ns, &db))?);
            for (s, d, peer) in [(a, &da, b), (b, &db, a)] {
                ip(&["-n", &s.ns, "link", "set", d, "mtu", "9000", "up"]).await?;
                ip(&["-n", &s.ns, "route", "add", &format!("{}/32", peer.ip), "dev", d, "src", &s.ip]).await?;
            }
        }
    }
    Ok(())
}

/// The shape of every domain's ceph.conf: all three monitors, its own address, one replica per site.
fn shape(site: &Site, mons: &str, data: bool) -> ConfShape {
    let osd = if data { format!("crush_location = root=default datacenter=site-{n} host=host-{n}\n", n = site.name) } else { String::new() };
    ConfShape {
        mon_host: mons.to_string(),
        public_network: "10.78.0.0/24".into(),
        global: format!(
            // librbd's own blocklisting on lock break is off: the drill's fence is the only fence, so a
            // drill without it (the negative control) shows what a missing fence does
            "public_addr = {}\nosd_pool_default_size = 2\nosd_pool_default_min_size = 1\nmon_osd_min_down_reporters = 1\nosd_heartbeat_grace = 5\nosd_heartbeat_interval = 1\nmon_osd_down_out_interval = 0\nrbd_blocklist_on_break_lock = false\n",
            site.ip
        ),
        osd,
    }
}

/// Builds the stretched cluster: monitors in every domain, a manager and an OSD in each data site, the
/// CRUSH rule and the pool. `sites` are the data sites first, the arbiter last.
pub async fn bootstrap(sites: &mut [Site], placement: Placement) -> Result<(), EnvError> {
    let fsid = super::site::uuid();
    let mons: Vec<String> = sites.iter().map(|s| mon_addr(&s.ip)).collect();
    let mon_host = mons.join(",");
    let n = sites.len();
    for (i, s) in sites.iter().enumerate() {
        for sub in ["mon", "mgr", "osd", "run", "log"] {
            std::fs::create_dir_all(s.dir.join(sub)).map_err(|e| s.err("create run directory", e.to_string()))?;
        }
        s.write_conf(&fsid, &shape(s, &mon_host, i + 1 < n)).map_err(|e| s.err("write ceph.conf", e.to_string()))?;
    }
    let first = sites[0].r.clone();
    let p = |f: &str| first.dir.join(f).display().to_string();
    let (monk, admk, monmap) = (p("mon.keyring"), p("admin.keyring"), p("monmap"));
    let s0 = &sites[0];
    s0.local("ceph-authtool", &["--create-keyring", &monk, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"]).await?;
    s0.local(
        "ceph-authtool",
        &["--create-keyring", &admk, "--gen-key", "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *"],
    )
    .await?;
    s0.local("ceph-authtool", &[&monk, "--import-keyring", &admk]).await?;
    let mut args = vec!["--create".to_string()];
    for s in sites.iter() {
        args.extend(["--addv".to_string(), s.name.clone(), mon_addr(&s.ip)]);
    }
    args.extend(["--fsid".to_string(), fsid.clone(), monmap.clone()]);
    s0.local("monmaptool", &args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    for s in sites.iter_mut() {
        for f in ["admin.keyring", "mon.keyring", "monmap"] {
            if s.dir != first.dir {
                std::fs::copy(first.dir.join(f), s.dir.join(f)).map_err(|e| s.err(&format!("copy {f}"), e.to_string()))?;
            }
        }
        let (mk, mm) = (s.dir.join("mon.keyring").display().to_string(), s.dir.join("monmap").display().to_string());
        let name = s.name.clone();
        s.cli("ceph-mon", &["--mkfs", "-i", &name, "--monmap", &mm, "--keyring", &mk]).await?;
        s.start("mon", "ceph-mon", &["-i", &name, "-f"])?;
    }
    sites[0].wait_cli_ok("the monitors to form a quorum", Duration::from_secs(60), "ceph", &["quorum_status"]).await?;
    let data = n - 1;
    for s in sites[..data].iter_mut() {
        let name = s.name.clone();
        let key = s.cli("ceph", &["auth", "get-or-create", &format!("mgr.{name}"), "mon", "allow profile mgr", "osd", "allow *"]).await?;
        std::fs::write(s.dir.join("mgr/keyring"), key).map_err(|e| s.err("write mgr keyring", e.to_string()))?;
        s.start("mgr", "ceph-mgr", &["-i", &name, "-f"])?;
        let osd_uuid = super::site::uuid();
        let secret = s.local("ceph-authtool", &["--gen-print-key"]).await?.trim().to_string();
        let secret_file = s.dir.join("osd-secret.json");
        std::fs::write(&secret_file, format!("{{\"cephx_secret\": \"{secret}\"}}")).map_err(|e| s.err("write osd secret", e.to_string()))?;
        let id = s.cli("ceph", &["osd", "new", &osd_uuid, "-i", &secret_file.display().to_string()]).await?.trim().to_string();
        let osd_id: u32 = id.parse().map_err(|_| s.err("create an OSD", format!("unexpected id {id:?}")))?;
        std::fs::create_dir_all(s.dir.join(format!("osd{osd_id}"))).map_err(|e| s.err("create the OSD directory", e.to_string()))?;
        let kr = s.dir.join(format!("osd{osd_id}/keyring")).display().to_string();
        s.local("ceph-authtool", &["--create-keyring", &kr, "--name", &format!("osd.{osd_id}"), "--add-key", &secret]).await?;
        s.cli("ceph-osd", &["-i", &id, "--mkfs", "--osd-uuid", &osd_uuid]).await?;
        s.start("osd", "ceph-osd", &["-i", &id, "-f"])?;
        s.osd = Some(osd_id);
    }
    for s in sites[..data].iter_mut() {
        s.wait_osd().await?;
    }
    let s0 = &sites[0];
    match placement {
        Placement::PerSite => s0.cli("ceph", &["osd", "crush", "rule", "create-replicated", "stretch", "default", "datacenter"]).await?,
        // the misconfiguration: the rule is rooted in the first site, so both replicas land there (on its
        // one OSD: size 2 cannot be met, the PGs run undersized on that site alone)
        Placement::FirstSiteOnly => s0.cli("ceph", &["osd", "crush", "rule", "create-replicated", "stretch", &format!("site-{}", s0.name), "osd"]).await?,
    };
    s0.cli("ceph", &["osd", "pool", "create", "rbd", "8", "8", "replicated", "stretch"]).await?;
    s0.cli("ceph", &["osd", "pool", "set", "rbd", "size", "2"]).await?;
    s0.cli("ceph", &["osd", "pool", "set", "rbd", "min_size", "1"]).await?;
    s0.cli("rbd", &["pool", "init", "rbd"]).await?;
    Ok(())
}

/// One VM disk on the stretched cluster: where its VM runs, and the Ceph clients that wrote it from there.
struct Disk {
    image: String,
    primary: String,
    /// Client addresses (`ip:port/nonce`) of the image's writers, as `rbd status` showed them.
    clients: Vec<String>,
}

/// The watchers' addresses in `rbd status --format json`. Pure.
pub fn watchers(json: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("unreadable rbd status: {e}"))?;
    Ok(v["watchers"].as_array().into_iter().flatten().filter_map(|w| w["address"].as_str().map(String::from)).collect())
}

/// The client addresses to fence when `lost_ip` is lost: those from that address. Pure.
pub fn to_fence(clients: &[String], lost_ip: &str) -> Vec<String> {
    let mut v: Vec<String> = clients.iter().filter(|a| a.split(':').next() == Some(lost_ip)).cloned().collect();
    v.sort();
    v.dedup();
    v
}

/// The data site of each OSD, from `ceph osd tree --format json` (datacenter buckets named `site-X`). Pure.
pub fn osd_sites(json: &str) -> Result<BTreeMap<i64, String>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("unreadable osd tree: {e}"))?;
    let nodes = v["nodes"].as_array().ok_or("osd tree without nodes")?;
    let by_id: BTreeMap<i64, &serde_json::Value> = nodes.iter().filter_map(|n| Some((n["id"].as_i64()?, n))).collect();
    let mut out = BTreeMap::new();
    // walk down from each datacenter bucket to its OSDs
    for dc in nodes.iter().filter(|n| n["type"] == "datacenter") {
        let site = dc["name"].as_str().unwrap_or_default().trim_start_matches("site-").to_string();
        let mut stack: Vec<i64> = dc["children"].as_array().into_iter().flatten().filter_map(|c| c.as_i64()).collect();
        while let Some(id) = stack.pop() {
            if id >= 0 {
                out.insert(id, site.clone());
            } else if let Some(n) = by_id.get(&id) {
                stack.extend(n["children"].as_array().into_iter().flatten().filter_map(|c| c.as_i64()));
            }
        }
    }
    Ok(out)
}

/// What keeps `pg ls --format json` from proving every write is on each of `sites`: placement groups not
/// active+clean, or whose acting set has no OSD on one of the sites. Empty: every placement group holds a
/// clean replica on every site. Pure.
pub fn placement_gaps(pg_ls: &str, osd_site: &BTreeMap<i64, String>, sites: &[&str]) -> Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_str(pg_ls).map_err(|e| format!("unreadable pg ls: {e}"))?;
    let pgs = v.get("pg_stats").unwrap_or(&v).as_array().ok_or("pg ls without pg_stats")?;
    if pgs.is_empty() {
        return Err("pg ls lists no placement group".into());
    }
    let mut gaps = vec![];
    for pg in pgs {
        let id = pg["pgid"].as_str().unwrap_or("?");
        let state = pg["state"].as_str().unwrap_or("?");
        let acting: Vec<i64> = pg["acting"].as_array().into_iter().flatten().filter_map(|o| o.as_i64()).collect();
        for site in sites {
            if !acting.iter().any(|o| osd_site.get(o).map(String::as_str) == Some(*site)) {
                gaps.push(format!("placement group {id} has no replica on site {site} (acting {acting:?})"));
            }
        }
        if state != "active+clean" {
            gaps.push(format!("placement group {id} is {state}"));
        }
    }
    Ok(gaps)
}

/// The Metro-DR driver: one image, nothing to replicate; failover fences the lost site by blocklisting its
/// address on the cluster, relocate moves nothing but the VM.
pub struct StretchedDriver {
    topology: Topology,
    sites: BTreeMap<String, SiteRef>,
    disk_mib: u64,
    budgets: Budgets,
    vms: BTreeMap<String, Disk>,
    /// Addresses blocklisted by failovers (removed when the scenario ends).
    fenced: Vec<(String, String)>,
}

impl StretchedDriver {
    pub fn new(cfg: &EnvConfig, spec: &LabSpec, topology: Topology, sites: BTreeMap<String, SiteRef>) -> StretchedDriver {
        StretchedDriver { topology, sites, disk_mib: spec.disk_size.0 >> 20, budgets: cfg.spec.budgets.clone(), vms: BTreeMap::new(), fenced: vec![] }
    }

    fn site(&self, name: &str) -> Result<&SiteRef, EnvError> {
        self.sites.get(name).ok_or_else(|| EnvError::Usage(format!("site {name} has no storage in this lab")))
    }

    fn disk(&mut self, vm: &str) -> Result<&mut Disk, EnvError> {
        self.vms.get_mut(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))
    }

    /// Lifts the fences of earlier failovers (from a site that is up).
    async fn unfence(&mut self) {
        for (via, addr) in std::mem::take(&mut self.fenced) {
            if let Ok(s) = self.site(&via) {
                let _ = s.cli("ceph", &["osd", "blocklist", "rm", &addr]).await;
            }
        }
    }
}

#[async_trait]
impl DrDriver for StretchedDriver {
    async fn provision(&mut self, vm: &str, site: &str) -> Result<Volume, EnvError> {
        let s = self.site(site)?.clone();
        s.cli("rbd", &["create", &format!("rbd/{vm}"), "--size", &format!("{}M", self.disk_mib)]).await?;
        self.vms.insert(vm.to_string(), Disk { image: vm.to_string(), primary: site.to_string(), clients: vec![] });
        Ok(Volume { name: vm.to_string() })
    }

    fn volume(&self, vm: &str) -> Result<Volume, EnvError> {
        self.vms.get(vm).map(|d| Volume { name: d.image.clone() }).ok_or_else(|| EnvError::Usage(format!("no VM named {vm}")))
    }

    fn primary(&self, vm: &str) -> Result<String, EnvError> {
        self.vms.get(vm).map(|d| d.primary.clone()).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))
    }

    async fn relocate(&mut self, vm: &str, to: &str, _barrier: bool, _m: &mut Marker) -> Result<DriverReport, EnvError> {
        // one image on both sites: the graceful stop already made every write durable on both
        self.disk(vm)?.primary = to.to_string();
        Ok(DriverReport { promise: Promise::NoLoss, details: json!({"storage": "stretched", "fenced": null}) })
    }

    async fn failover(&mut self, vm: &str, to: &str, _fault_at: Wt, fence: bool, m: &mut Marker) -> Result<DriverReport, EnvError> {
        let (from, image, mut clients) = {
            let d = self.disk(vm)?;
            (d.primary.clone(), d.image.clone(), d.clients.clone())
        };
        let lost = self.site(&from)?.ip.clone();
        let survivor = self.site(to)?.clone();
        // Fence as ODF does, at the level this lab has: every Ceph client that wrote the image from the lost
        // site is blocklisted (as `rbd lock rm` or a NetworkFence would), so a VM that comes back there
        // cannot write. The site's own daemons stay unfenced: they rejoin when it comes back.
        if let Ok(out) = survivor.cli("rbd", &["status", &format!("rbd/{image}"), "--format", "json"]).await {
            clients.extend(watchers(&out).unwrap_or_default());
        }
        let candidates = to_fence(&clients, &lost);
        if candidates.is_empty() {
            return Err(EnvError::Site {
                site: from,
                what: format!("find the Ceph clients of {image} to fence"),
                detail: "none was ever seen".into(),
                cause: Cause::Harness,
            });
        }
        // without fencing (a negative control) the lost site's clients are left as they are
        let fence = if fence { candidates } else { vec![] };
        for entry in &fence {
            survivor.cli_within("ceph", &["osd", "blocklist", "add", entry, "3600"], self.budgets.promote.0).await?;
            self.fenced.push((to.to_string(), entry.clone()));
        }
        if !fence.is_empty() {
            m.mark(crate::timeline::Segment::StorageFenced);
        }
        self.topology.site(to)?;
        self.disk(vm)?.primary = to.to_string();
        Ok(DriverReport { promise: Promise::NoLoss, details: json!({"storage": "stretched", "fencedClients": fence}) })
    }

    /// The VM writes on its site: its Ceph client's address is remembered, for fencing.
    async fn serving(&mut self, vm: &str) -> Result<(), EnvError> {
        let (site, image) = {
            let d = self.disk(vm)?;
            (d.primary.clone(), d.image.clone())
        };
        let s = self.site(&site)?.clone();
        let out = s.cli("rbd", &["status", &format!("rbd/{image}"), "--format", "json"]).await?;
        let w = watchers(&out).map_err(|e| s.err(&format!("read the watchers of {image}"), e))?;
        self.disk(vm)?.clients.extend(w);
        Ok(())
    }

    /// Synchronous replication: what was acknowledged is on both sites as long as every placement group
    /// of the pool is clean with a replica in each site (with a site down, min_size 1 lets writes land on
    /// one replica only; a CRUSH rule that keeps the data on one site never gets there). Waits up to the
    /// sync barrier budget; the error names what was still missing.
    async fn replicated(&mut self, vm: &str, to: &str, _since: Wt) -> Result<String, EnvError> {
        let from = self.disk(vm)?.primary.clone();
        if from == to {
            return Err(EnvError::Usage(format!("site {to} is where {vm} runs, not a replica")));
        }
        self.wait_clean(vm, &from, to, self.budgets.sync_barrier.0).await
    }

    /// The VM's site is where its unfenced clients are (`rbd status` watchers, by address); a site whose
    /// clients were fenced holds no primary, whatever watch the cluster still lists for them.
    async fn roles(&mut self, vm: &str) -> Result<Vec<SiteRole>, EnvError> {
        let (primary, image) = {
            let d = self.disk(vm)?;
            (d.primary.clone(), d.image.clone())
        };
        let fenced: Vec<String> = self.fenced.iter().map(|f| f.1.clone()).collect();
        let mut asked = None;
        for s in std::iter::once(self.site(&primary)?.clone()).chain(self.sites.values().cloned()) {
            if let Ok(out) = s.cli_within("rbd", &["status", &format!("rbd/{image}"), "--format", "json"], Duration::from_secs(10)).await {
                asked = Some(watchers(&out).map_err(|e| s.err(&format!("read the watchers of {image}"), e))?);
                break;
            }
        }
        let Some(clients) = asked else {
            return Ok(self
                .topology
                .sites()
                .map(|s| SiteRole { site: s.to_string(), role: Role::Unknown, detail: "no site answered rbd status".into() })
                .collect());
        };
        Ok(self
            .topology
            .sites()
            .map(|site| {
                let ip = self.sites.get(site).map(|s| s.ip.clone()).unwrap_or_default();
                let here: Vec<&String> = clients.iter().filter(|c| c.split(':').next() == Some(ip.as_str())).collect();
                let live: Vec<&&String> = here.iter().filter(|c| !fenced.contains(c)).collect();
                let (role, detail) = match (live.len(), here.len()) {
                    (0, 0) => (Role::Secondary, "a replica, no client of the disk".to_string()),
                    (0, n) => (Role::Secondary, format!("{n} fenced client(s) still listed")),
                    (_, _) => (Role::Primary, format!("client(s) {}", live.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "))),
                };
                SiteRole { site: site.to_string(), role, detail }
            })
            .collect())
    }

    /// The returned site's fence lifted (the blocklist entries of its clients removed: the VM there was
    /// cleaned up first), then every placement group clean with a replica on each data site again (budget
    /// `resync`).
    async fn repair(&mut self, vm: &str, site: &str, _resync: bool, m: &mut Marker) -> Result<serde_json::Value, EnvError> {
        let primary = self.disk(vm)?.primary.clone();
        if primary == site {
            return Ok(json!({ "note": format!("site {site} is VM {vm}'s primary: nothing to repair") }));
        }
        let ip = self.site(site)?.ip.clone();
        let (theirs, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.fenced).into_iter().partition(|(_, a)| a.split(':').next() == Some(ip.as_str()));
        self.fenced = others;
        let t0 = Wt::now();
        for (via, addr) in &theirs {
            self.site(via)?.clone().cli("ceph", &["osd", "blocklist", "rm", addr]).await?;
        }
        m.mark(crate::timeline::Segment::Unfenced);
        let proof = self.wait_clean(vm, &primary, site, self.budgets.resync.0).await?;
        m.mark(crate::timeline::Segment::Clean);
        Ok(json!({ "unfenced": theirs.iter().map(|t| &t.1).collect::<Vec<_>>(), "clean": proof, "repairMs": Wt::now().since(t0).as_secs_f64() * 1e3 }))
    }

    async fn release(&mut self, _vm: &str) {
        self.unfence().await;
    }

    async fn shutdown(&mut self) {}
}

impl StretchedDriver {
    /// Waits until every placement group of the pool is clean with a replica on sites `from` and `to`,
    /// asked of `to`; the error names what was still missing.
    async fn wait_clean(&mut self, vm: &str, from: &str, to: &str, deadline: Duration) -> Result<String, EnvError> {
        let s = self.site(to)?.clone();
        let last = std::sync::Mutex::new(Vec::<String>::new());
        let unreadable =
            |e: String| EnvError::Site { site: s.name.clone(), what: "read where the placement groups are".into(), detail: e, cause: Cause::Harness };
        let check = || async {
            let tree = s.cli("ceph", &["osd", "tree", "--format", "json"]).await?;
            let pgs = s.cli("ceph", &["pg", "ls-by-pool", "rbd", "--format", "json"]).await?;
            let gaps = placement_gaps(&pgs, &osd_sites(&tree).map_err(unreadable)?, &[from, to]).map_err(unreadable)?;
            let done = gaps.is_empty();
            *last.lock().unwrap() = gaps;
            Ok(done.then(|| format!("every placement group clean with a replica on sites {from} and {to}")))
        };
        crate::wait::until("every placement group to hold a clean replica on both sites", deadline, check, crate::wait::every(Duration::from_millis(500)))
            .await
            .map_err(|e| match e {
                crate::wait::WaitError::Timeout { .. } => {
                    let gaps = last.lock().unwrap().clone();
                    let shown = gaps.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
                    s.err(
                        &format!("see {vm}'s writes replicated within {deadline:?}"),
                        format!("{shown}{}", if gaps.len() > 3 { format!(" (and {} more)", gaps.len() - 3) } else { String::new() }),
                    )
                }
                crate::wait::WaitError::Failed(e) => e,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lost_sites_clients_are_the_ones_fenced() {
        let w =
            watchers(r#"{"watchers":[{"address":"10.78.0.1:0/2851230001","client":4171,"cookie":1},{"address":"10.78.0.2:0/77","client":4200,"cookie":2}]}"#)
                .unwrap();
        assert_eq!(w, ["10.78.0.1:0/2851230001", "10.78.0.2:0/77"]);
        assert_eq!(to_fence(&w, "10.78.0.1"), ["10.78.0.1:0/2851230001"]);
        assert_eq!(to_fence(&w, "10.78.0.11"), Vec::<String>::new(), "an address is matched whole, not by prefix");
        assert_eq!(watchers("{}").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_replica_on_every_site_and_clean_or_the_gap_is_named() {
        let tree = r#"{"nodes":[{"id":-1,"name":"default","type":"root","children":[-3,-5]},
            {"id":-3,"name":"site-a","type":"datacenter","children":[-2]},{"id":-2,"name":"host-a","type":"host","children":[0]},
            {"id":-5,"name":"site-b","type":"datacenter","children":[-4]},{"id":-4,"name":"host-b","type":"host","children":[1]},
            {"id":0,"name":"osd.0","type":"osd"},{"id":1,"name":"osd.1","type":"osd"}],"stray":[]}"#;
        let sites = osd_sites(tree).unwrap();
        assert_eq!(sites, BTreeMap::from([(0, "a".to_string()), (1, "b".to_string())]));
        let good =
            r#"{"pg_ready":true,"pg_stats":[{"pgid":"1.0","state":"active+clean","acting":[0,1]},{"pgid":"1.1","state":"active+clean","acting":[1,0]}]}"#;
        assert_eq!(placement_gaps(good, &sites, &["a", "b"]).unwrap(), Vec::<String>::new());
        // a CRUSH rule rooted in site a: both replicas wanted there, one OSD: undersized, nothing on b
        let one_site = r#"{"pg_stats":[{"pgid":"1.0","state":"active+undersized","acting":[0]}]}"#;
        assert_eq!(
            placement_gaps(one_site, &sites, &["a", "b"]).unwrap(),
            ["placement group 1.0 has no replica on site b (acting [0])", "placement group 1.0 is active+undersized"]
        );
        // site b down: degraded
        let degraded = r#"[{"pgid":"1.0","state":"active+undersized+degraded","acting":[0]}]"#;
        assert_eq!(placement_gaps(degraded, &sites, &["a", "b"]).unwrap().len(), 2);
        assert!(placement_gaps(r#"{"pg_stats":[]}"#, &sites, &["a", "b"]).is_err(), "no placement group proves nothing");
        assert!(osd_sites("{}").is_err());
    }
}
