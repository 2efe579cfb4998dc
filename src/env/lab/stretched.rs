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

/// The domain's second address (its second monitor in stretch mode), from its first. Pure.
pub fn second_addr(ip: &str) -> String {
    let (net, last) = ip.rsplit_once('.').unwrap_or((ip, "0"));
    format!("{net}.{}", last.parse::<u32>().unwrap_or(0) + 100)
}

/// The device in `site`'s namespace that leads to `peer`.
pub fn dev(peer: &str) -> String {
    format!("to-{peer}")
}

/// A link per pair of failure domains through the delay line, routes to every other domain's addresses
/// (each domain has two on its loopback: a stretch-mode data site runs a monitor on each).
pub async fn network(sites: &[Site], links: &mut Vec<WanLink>) -> Result<(), EnvError> {
    for s in sites {
        for a in [s.ip.clone(), second_addr(&s.ip)] {
            ip(&["-n", &s.ns, "addr", "add", &format!("{a}/32"), "dev", "lo"]).await?;
        }
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
                for to in [peer.ip.clone(), second_addr(&peer.ip)] {
                    ip(&["-n", &s.ns, "route", "add", &format!("{to}/32"), "dev", d, "src", &s.ip]).await?;
                }
            }
        }
    }
    Ok(())
}

/// The shape of every domain's ceph.conf: all monitors, its own address; in stretch mode the pools get
/// their replica counts from `enable_stretch_mode`, without it one replica per site.
fn shape(site: &Site, mons: &str, data: bool, stretch: bool, first: bool) -> ConfShape {
    let mut osd = if data && !stretch { format!("crush_location = root=default datacenter=site-{n} host=host-{n}\n", n = site.name) } else { String::new() };
    if data && !stretch && !first {
        // Without stretch mode a partition between the data sites is a race of failure reports: whichever
        // OSD is reported first is marked down, the other site writes on alone. The second site's OSD
        // never reports a peer within a drill (grace 1000 s; with 20 s it still won 1 race in 3 here), so
        // the first site always wins: the case the negative control shows (site a writing alone, writes
        // site b never sees), every run.
        osd.push_str("osd_heartbeat_grace = 1000\n");
    }
    let pools = if stretch { "" } else { "osd_pool_default_size = 2\nosd_pool_default_min_size = 1\n" };
    ConfShape {
        mon_host: mons.to_string(),
        public_network: "10.78.0.0/24".into(),
        global: format!(
            // librbd's own blocklisting on lock break is off: the drill's fence is the only fence, so a
            // drill without it (the negative control) shows what a missing fence does. Recovery is not
            // throttled for the "hdd" file OSDs: a returned site catches up in seconds, not minutes.
            "public_addr = {}\n{pools}mon_osd_min_down_reporters = 1\nosd_heartbeat_grace = 5\nosd_heartbeat_interval = 1\nmon_osd_down_out_interval = 0\nrbd_blocklist_on_break_lock = false\nosd_recovery_sleep_hdd = 0\nosd_max_backfills = 4\n",
            site.ip
        ),
        osd,
    }
}

/// A monitor of a failure domain: the harness's daemon name, its Ceph id and its address.
pub struct Member {
    pub daemon: &'static str,
    pub id: String,
    pub addr: String,
}

/// The monitors of a domain: one on each address of a stretch-mode data site (`a`, `a2`), one elsewhere.
/// Pure.
pub fn monitors(site: &str, ip: &str, data: bool, stretch: bool) -> Vec<Member> {
    let mut v = vec![Member { daemon: "mon", id: site.to_string(), addr: ip.to_string() }];
    if data && stretch {
        v.push(Member { daemon: "mon2", id: format!("{site}2"), addr: second_addr(ip) });
    }
    v
}

/// The CRUSH rule stretch mode needs, in crushtool's text: two datacenters, two hosts in each.
pub const STRETCH_RULE: &str = "rule stretch_rule {
\tid 1
\ttype replicated
\tmin_size 1
\tmax_size 10
\tstep take default
\tstep choose firstn 0 type datacenter
\tstep chooseleaf firstn 2 type host
\tstep emit
}
";

/// The decompiled CRUSH map with the stretch rule added before its end. Pure.
pub fn with_stretch_rule(map: &str) -> String {
    match map.rfind("# end crush map") {
        Some(i) => format!("{}{STRETCH_RULE}{}", &map[..i], &map[i..]),
        None => format!("{map}\n{STRETCH_RULE}"),
    }
}

/// Builds the stretched cluster: monitors in every domain, a manager and OSDs in each data site, the
/// CRUSH rule and the pool; in stretch mode (the default) two monitors and two OSD hosts per data site,
/// the arbiter's monitor the tiebreaker, connectivity elections and `enable_stretch_mode`. `sites` are the
/// data sites first, the arbiter last.
pub async fn bootstrap(sites: &mut [Site], placement: Placement, stretch: bool) -> Result<(), EnvError> {
    let fsid = super::site::uuid();
    let n = sites.len();
    let data = n - 1;
    let mons: Vec<(usize, Member)> =
        sites.iter().enumerate().flat_map(|(i, s)| monitors(&s.name, &s.ip, i < data, stretch).into_iter().map(move |m| (i, m))).collect();
    let mon_host = mons.iter().map(|(_, m)| mon_addr(&m.addr)).collect::<Vec<_>>().join(",");
    for (i, s) in sites.iter().enumerate() {
        for sub in ["mon", "mgr", "osd", "run", "log"] {
            std::fs::create_dir_all(s.dir.join(sub)).map_err(|e| s.err("create run directory", e.to_string()))?;
        }
        s.write_conf(&fsid, &shape(s, &mon_host, i < data, stretch, i == 0)).map_err(|e| s.err("write ceph.conf", e.to_string()))?;
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
    for (_, m) in &mons {
        args.extend(["--addv".to_string(), m.id.clone(), mon_addr(&m.addr)]);
    }
    args.extend(["--fsid".to_string(), fsid.clone(), monmap.clone()]);
    s0.local("monmaptool", &args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    for s in sites.iter() {
        for f in ["admin.keyring", "mon.keyring", "monmap"] {
            if s.dir != first.dir {
                std::fs::copy(first.dir.join(f), s.dir.join(f)).map_err(|e| s.err(&format!("copy {f}"), e.to_string()))?;
            }
        }
    }
    for (i, m) in &mons {
        let s = &mut sites[*i];
        let (mk, mm) = (s.dir.join("mon.keyring").display().to_string(), s.dir.join("monmap").display().to_string());
        s.cli("ceph-mon", &["--mkfs", "-i", &m.id, "--monmap", &mm, "--keyring", &mk, "--public-addr", &m.addr]).await?;
        s.start(m.daemon, "ceph-mon", &["-i", &m.id, "-f", "--public-addr", &m.addr])?;
    }
    sites[0].wait_cli_ok("the monitors to form a quorum", Duration::from_secs(90), "ceph", &["quorum_status"]).await?;
    let hosts = if stretch { 2 } else { 1 };
    for s in sites[..data].iter_mut() {
        let name = s.name.clone();
        let key = s.cli("ceph", &["auth", "get-or-create", &format!("mgr.{name}"), "mon", "allow profile mgr", "osd", "allow *"]).await?;
        std::fs::write(s.dir.join("mgr/keyring"), key).map_err(|e| s.err("write mgr keyring", e.to_string()))?;
        s.start("mgr", "ceph-mgr", &["-i", &name, "-f"])?;
        for h in 1..=hosts {
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
            if stretch {
                // each OSD its own CRUSH host in the site's datacenter: the site's two storage hosts
                let loc = format!("root=default datacenter=site-{name} host=host-{name}{h}");
                s.start(if h == 1 { "osd" } else { "osd2" }, "ceph-osd", &["-i", &id, "-f", "--crush-location", &loc])?;
            } else {
                s.start("osd", "ceph-osd", &["-i", &id, "-f"])?;
            }
            s.osds.push(osd_id);
        }
    }
    for s in sites[..data].iter_mut() {
        s.wait_osd().await?;
    }
    let s0 = &sites[0];
    if stretch {
        for (i, m) in &mons {
            s0.cli("ceph", &["mon", "set_location", &m.id, &format!("datacenter=site-{}", sites[*i].name)]).await?;
        }
        s0.cli("ceph", &["mon", "set", "election_strategy", "connectivity"]).await?;
        let (bin, txt) = (p("crush.bin"), p("crush.txt"));
        s0.cli("ceph", &["osd", "getcrushmap", "-o", &bin]).await?;
        s0.local("crushtool", &["-d", &bin, "-o", &txt]).await?;
        let map = std::fs::read_to_string(&txt).map_err(|e| s0.err("read the CRUSH map", e.to_string()))?;
        std::fs::write(&txt, with_stretch_rule(&map)).map_err(|e| s0.err("write the CRUSH map", e.to_string()))?;
        s0.local("crushtool", &["-c", &txt, "-o", &bin]).await?;
        s0.cli("ceph", &["osd", "setcrushmap", "-i", &bin]).await?;
        s0.cli("ceph", &["osd", "pool", "create", "rbd", "16", "16", "replicated", "stretch_rule"]).await?;
        let tiebreaker = sites[data].name.clone();
        s0.cli("ceph", &["mon", "enable_stretch_mode", &tiebreaker, "stretch_rule", "datacenter"]).await?;
        s0.cli("rbd", &["pool", "init", "rbd"]).await?;
        return Ok(());
    }
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

/// Is the client address (`ip:port/nonce`) one of the site's whose first address is `site_ip`? A client
/// talks from either of the site's addresses (the second one when it reached a monitor there first). Pure.
pub fn of_site(client: &str, site_ip: &str) -> bool {
    client.split(':').next().is_some_and(|ip| ip == site_ip || ip == second_addr(site_ip))
}

/// The client addresses to fence when `lost_ip` is lost: those from that address. Pure.
pub fn to_fence(clients: &[String], lost_ip: &str) -> Vec<String> {
    let mut v: Vec<String> = clients.iter().filter(|a| of_site(a, lost_ip)).cloned().collect();
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

/// One placement group as `pg ls --format json` lists it.
struct Pg {
    id: String,
    state: String,
    acting: Vec<i64>,
    /// The OSDs its peering waits for (Ceph's `blocked_by`).
    blocked_by: Vec<i64>,
}

/// The placement groups of `pg ls --format json` (an object with `pg_stats`, or the bare list); none is an
/// error: it proves nothing. Pure.
fn pg_stats(pg_ls: &str) -> Result<Vec<Pg>, String> {
    let v: serde_json::Value = serde_json::from_str(pg_ls).map_err(|e| format!("unreadable pg ls: {e}"))?;
    let pgs = v.get("pg_stats").unwrap_or(&v).as_array().ok_or("pg ls without pg_stats")?;
    if pgs.is_empty() {
        return Err("pg ls lists no placement group".into());
    }
    let osds = |pg: &serde_json::Value, k: &str| pg[k].as_array().into_iter().flatten().filter_map(|o| o.as_i64()).collect();
    Ok(pgs
        .iter()
        .map(|pg| Pg {
            id: pg["pgid"].as_str().unwrap_or("?").to_string(),
            state: pg["state"].as_str().unwrap_or("?").to_string(),
            acting: osds(pg, "acting"),
            blocked_by: osds(pg, "blocked_by"),
        })
        .collect())
}

/// What keeps `pg ls --format json` from proving every write is on each of `sites`: placement groups not
/// active+clean, or whose acting set has no OSD on one of the sites. Empty: every placement group holds a
/// clean replica on every site. Pure.
pub fn placement_gaps(pg_ls: &str, osd_site: &BTreeMap<i64, String>, sites: &[&str]) -> Result<Vec<String>, String> {
    let mut gaps = vec![];
    for Pg { id, state, acting, .. } in pg_stats(pg_ls)? {
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

/// What keeps the survivor `to` from serving the pool without the lost site `from`, from `pg ls --format
/// json` and the OSDs' sites: placement groups not active, still acting with an OSD of the lost site (their
/// writes wait for it), or with none on the survivor (the lost site's OSDs hold writes the survivor never
/// saw). Empty: the survivor serves alone. Pure.
pub fn serve_gaps(pg_ls: &str, osd_site: &BTreeMap<i64, String>, from: &str, to: &str) -> Result<Vec<String>, String> {
    let mut gaps = vec![];
    for Pg { id, state, acting, blocked_by } in pg_stats(pg_ls)? {
        let on = |site: &str| acting.iter().filter(|o| osd_site.get(o).map(String::as_str) == Some(site)).map(|o| format!("osd.{o}")).collect::<Vec<_>>();
        let (lost, here) = (on(from), on(to));
        if here.is_empty() && !lost.is_empty() {
            gaps.push(format!(
                "placement group {id} waits for {} on site {from}, which holds writes site {to} never saw ({state}, acting {acting:?})",
                lost.join(", ")
            ));
        } else if here.is_empty() {
            gaps.push(format!("placement group {id} has no replica on site {to} ({state}, acting {acting:?})"));
        } else if !lost.is_empty() {
            gaps.push(format!("placement group {id} still waits for {} on site {from} ({state})", lost.join(", ")));
        } else if !state.starts_with("active") {
            // peering blocked on an OSD that may hold newer writes (Ceph's `blocked_by`)
            let theirs: Vec<String> = blocked_by.iter().filter(|o| osd_site.get(o).map(String::as_str) == Some(from)).map(|o| format!("osd.{o}")).collect();
            if theirs.is_empty() {
                gaps.push(format!("placement group {id} is {state}"));
            } else {
                let names = theirs.join(", ");
                gaps.push(format!("placement group {id} is {state}, waiting for {names} on site {from}, which holds writes site {to} never saw"));
            }
        }
    }
    Ok(gaps)
}

/// The OSDs of `site` that `ceph osd dump --format json` still has up. Pure.
pub fn lost_osds_up(dump: &str, osd_site: &BTreeMap<i64, String>, site: &str) -> Result<Vec<i64>, String> {
    let v: serde_json::Value = serde_json::from_str(dump).map_err(|e| format!("unreadable osd dump: {e}"))?;
    let osds = v["osds"].as_array().ok_or("osd dump without osds")?;
    Ok(osds
        .iter()
        .filter(|o| o["up"].as_u64() == Some(1))
        .filter_map(|o| o["osd"].as_i64())
        .filter(|o| osd_site.get(o).map(String::as_str) == Some(site))
        .collect())
}

/// The Metro-DR driver: one image, nothing to replicate; failover fences the lost site by blocklisting its
/// address on the cluster, relocate moves nothing but the VM.
pub struct StretchedDriver {
    stretch: bool,
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
        let stretch = cfg.spec.metro().is_some_and(|m| m.stretch_mode);
        StretchedDriver { stretch, topology, sites, disk_mib: spec.disk_size.0 >> 20, budgets: cfg.spec.budgets.clone(), vms: BTreeMap::new(), fenced: vec![] }
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
        if self.stretch {
            self.wait_whole(&s).await?;
        }
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
        // the survivor must serve alone before the VM starts there: every placement group active without
        // the lost site's OSDs (stretch mode: degraded, one site peering)
        let serves = self.wait_serves(&from, to, m).await?;
        self.disk(vm)?.primary = to.to_string();
        Ok(DriverReport { promise: Promise::NoLoss, details: json!({"storage": "stretched", "fencedClients": fence, "serves": serves}) })
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
        self.wait_clean(vm, &from, to, self.budgets.deadline(crate::config::Budget::SyncBarrier)).await
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
                let here: Vec<&String> = clients.iter().filter(|c| of_site(c, &ip)).collect();
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
        let (theirs, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.fenced).into_iter().partition(|(_, a)| of_site(a, &ip));
        self.fenced = others;
        let t0 = Wt::now();
        for (via, addr) in &theirs {
            self.site(via)?.clone().cli("ceph", &["osd", "blocklist", "rm", addr]).await?;
        }
        m.mark(crate::timeline::Segment::Unfenced);
        let proof = self.wait_clean(vm, &primary, site, self.budgets.deadline(crate::config::Budget::Resync)).await?;
        m.mark(crate::timeline::Segment::Clean);
        Ok(json!({ "unfenced": theirs.iter().map(|t| &t.1).collect::<Vec<_>>(), "clean": proof, "repairMs": Wt::now().since(t0).as_secs_f64() * 1e3 }))
    }

    async fn release(&mut self, _vm: &str) {
        self.unfence().await;
    }

    async fn shutdown(&mut self) {}
}

impl StretchedDriver {
    /// What keeps `to` from serving alone, from where the monitors map each placement group of the pool
    /// (`ceph pg map`, one per placement group: only for a diagnosis).
    async fn mapped_gaps(&self, s: &SiteRef, from: &str, to: &str) -> Result<Vec<String>, EnvError> {
        let d = Duration::from_secs(10);
        let tree = s.cli_within("ceph", &["osd", "tree", "--format", "json"], d).await?;
        let dump = s.cli_within("ceph", &["osd", "dump", "--format", "json"], d).await?;
        let sites = osd_sites(&tree).map_err(|e| s.err("read the OSD tree", e))?;
        let v: serde_json::Value = serde_json::from_str(&dump).map_err(|e| s.err("read the OSD map", e.to_string()))?;
        let pool = v["pools"].as_array().into_iter().flatten().find(|p| p["pool_name"] == "rbd").ok_or_else(|| s.err("read the OSD map", "no pool rbd"))?;
        let (id, n) = (pool["pool"].as_u64().unwrap_or(0), pool["pg_num"].as_u64().unwrap_or(0));
        let mut stats = vec![];
        for i in 0..n {
            let pgid = format!("{id}.{i:x}");
            let m: serde_json::Value = serde_json::from_str(&s.cli_within("ceph", &["pg", "map", &pgid, "--format", "json"], d).await?)
                .map_err(|e| s.err("read a placement group's map", e.to_string()))?;
            stats.push(json!({"pgid": pgid, "state": "as the monitors map it", "acting": m["acting"]}));
        }
        serve_gaps(&json!({ "pg_stats": stats }).to_string(), &sites, from, to).map_err(|e| s.err("read where the placement groups are", e))
    }

    /// A scenario starts on the whole cluster: healthy stretch mode, every OSD up (an earlier scenario's
    /// outage healed first; budget `resync`). The error, the system's, names what was still missing.
    async fn wait_whole(&self, s: &SiteRef) -> Result<(), EnvError> {
        let last = std::sync::Mutex::new(String::from("no answer from the monitors"));
        let check = || async {
            let Ok(dump) = s.cli_within("ceph", &["osd", "dump", "--format", "json"], Duration::from_secs(10)).await else { return Ok(None) };
            let f = crate::stretch::parse_osd_dump(&dump, "rbd").map_err(|e| s.err("read the OSD map", e))?;
            let v: serde_json::Value = serde_json::from_str(&dump).unwrap_or_default();
            let down: Vec<String> = v["osds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|o| o["up"].as_u64() != Some(1))
                .filter_map(|o| o["osd"].as_i64())
                .map(|o| format!("osd.{o}"))
                .collect();
            let whole = f.state == crate::stretch::StretchState::Healthy && down.is_empty();
            *last.lock().unwrap() = format!("{} mode, down: {}", f.state, if down.is_empty() { "none".into() } else { down.join(", ") });
            Ok(whole.then_some(()))
        };
        let budget = self.budgets.deadline(crate::config::Budget::Resync);
        match crate::wait::until("the stretch cluster to be whole", budget, check, crate::wait::every(Duration::from_secs(1))).await {
            Ok(()) => Ok(()),
            Err(crate::wait::WaitError::Timeout { .. }) => Err(s.err(
                &format!("see the cluster whole (healthy stretch mode, every OSD up) within {:?}{}", budget.after, crate::wait::budget_note(&budget.key)),
                last.into_inner().unwrap(),
            )),
            Err(crate::wait::WaitError::Failed(e)) => Err(e),
        }
    }

    /// Waits (budget `promote`) until site `to` serves the pool without site `from`, seen twice in a row
    /// half a second apart; in stretch mode the degraded flag is marked on the timeline when seen. The
    /// error (the system's) names the placement groups still waiting and why.
    async fn wait_serves(&mut self, from: &str, to: &str, m: &mut Marker) -> Result<serde_json::Value, EnvError> {
        let s = self.site(to)?.clone();
        let stretch = self.stretch;
        let last = std::sync::Mutex::new((Vec::<String>::new(), 0u32, None::<Wt>));
        let unreadable =
            |e: String| EnvError::Site { site: s.name.clone(), what: "read where the placement groups are".into(), detail: e, cause: Cause::Harness };
        let check = || async {
            // the monitors' view (the OSD map), not the manager's placement-group statistics: the active
            // manager may have died with the lost site, and its successor reports nothing for ~30 s
            let tree = s.cli_within("ceph", &["osd", "tree", "--format", "json"], Duration::from_secs(10)).await;
            let dump = s.cli_within("ceph", &["osd", "dump", "--format", "json"], Duration::from_secs(10)).await;
            // the monitors re-electing answer nothing for a while: not an error, a wait
            let (Ok(tree), Ok(dump)) = (tree, dump) else { return Ok(None) };
            let sites = osd_sites(&tree).map_err(unreadable)?;
            let mut gaps: Vec<String> = lost_osds_up(&dump, &sites, from)
                .map_err(unreadable)?
                .into_iter()
                .map(|o| format!("osd.{o} of site {from} is still up in the OSD map"))
                .collect();
            if stretch {
                let f = crate::stretch::parse_osd_dump(&dump, "rbd").map_err(unreadable)?;
                if f.state == crate::stretch::StretchState::Degraded {
                    last.lock().unwrap().2.get_or_insert(Wt::now());
                } else if gaps.is_empty() {
                    gaps.push(format!("the cluster is in {} mode, not degraded stretch mode", f.state));
                }
            }
            let mut l = last.lock().unwrap();
            l.1 = if gaps.is_empty() { l.1 + 1 } else { 0 };
            l.0 = gaps;
            Ok((l.1 >= 2).then(|| format!("every OSD of site {from} down, site {to} serving alone{}", if stretch { " (degraded stretch mode)" } else { "" })))
        };
        let budget = self.budgets.deadline(crate::config::Budget::Promote);
        let r = crate::wait::until(&format!("site {to} to serve without site {from}"), budget, check, crate::wait::every(Duration::from_millis(500))).await;
        let (gaps, _, degraded) = last.into_inner().unwrap();
        if let Some(at) = degraded {
            m.mark_at(crate::timeline::Segment::DegradedStretch, at);
        }
        match r {
            Ok(proof) => {
                m.mark(crate::timeline::Segment::StorageServes);
                Ok(json!(proof))
            }
            Err(crate::wait::WaitError::Timeout { .. }) => {
                // why, placement group by placement group, as the monitors map them (the manager's
                // statistics may be minutes old, or empty after a manager failover)
                let gaps = match self.mapped_gaps(&s, from, to).await {
                    Ok(g) if !g.is_empty() => g,
                    _ => gaps,
                };
                let shown = gaps.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
                let more = if gaps.len() > 3 { format!(" (and {} more)", gaps.len() - 3) } else { String::new() };
                let detail = if gaps.is_empty() { "the cluster never answered where its placement groups are".to_string() } else { format!("{shown}{more}") };
                Err(s.err(&format!("serve without site {from} within {:?}{}", budget.after, crate::wait::budget_note(&budget.key)), detail))
            }
            Err(crate::wait::WaitError::Failed(e)) => Err(e),
        }
    }

    /// Waits until every placement group of the pool is clean with a replica on sites `from` and `to`,
    /// asked of `to`; the error names what was still missing.
    async fn wait_clean(&mut self, vm: &str, from: &str, to: &str, deadline: crate::wait::Deadline) -> Result<String, EnvError> {
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
                        &format!("see {vm}'s writes replicated within {:?}{}", deadline.after, crate::wait::budget_note(&deadline.key)),
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
        // a client of site a that reached site a's second monitor first talks from the site's second address
        assert_eq!(to_fence(&["10.78.0.101:0/9".to_string(), "10.78.0.102:0/8".to_string()], "10.78.0.1"), ["10.78.0.101:0/9"]);
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
        let dump = r#"{"epoch":9,"osds":[{"osd":0,"up":1,"in":1},{"osd":1,"up":1,"in":1}]}"#;
        assert_eq!(lost_osds_up(dump, &sites, "a").unwrap(), [0]);
        assert_eq!(lost_osds_up(&dump.replace(r#""osd":0,"up":1"#, r#""osd":0,"up":0"#), &sites, "a").unwrap(), Vec::<i64>::new());
        assert!(lost_osds_up("{}", &sites, "a").is_err());
        // the survivor b serves alone: every placement group active without site a's OSD
        let alone = r#"{"pg_stats":[{"pgid":"1.0","state":"active+undersized+degraded","acting":[1]}]}"#;
        assert_eq!(serve_gaps(alone, &sites, "a", "b").unwrap(), Vec::<String>::new());
        // still acting with the lost site's OSD: writes wait for it
        assert_eq!(serve_gaps(good, &sites, "a", "b").unwrap()[0], "placement group 1.0 still waits for osd.0 on site a (active+clean)");
        // served by site a alone (without stretch mode, a partition between the data sites): b never saw its writes
        let a_only = r#"{"pg_stats":[{"pgid":"1.0","state":"active+undersized+degraded","acting":[0]}]}"#;
        assert!(serve_gaps(a_only, &sites, "a", "b").unwrap()[0].contains("waits for osd.0 on site a, which holds writes site b never saw"));
        // b's OSD back in the acting set, peering blocked on a's OSD (it may hold newer writes)
        let blocked = r#"{"pg_stats":[{"pgid":"1.0","state":"down","acting":[1],"blocked_by":[0]}]}"#;
        assert_eq!(
            serve_gaps(blocked, &sites, "a", "b").unwrap(),
            ["placement group 1.0 is down, waiting for osd.0 on site a, which holds writes site b never saw"]
        );
        assert!(osd_sites("{}").is_err());
    }
}
