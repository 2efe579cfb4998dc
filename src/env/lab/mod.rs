//! The lab backend: two sites on this machine, each a network namespace with a real Ceph cluster and an
//! rbd-mirror daemon, joined by a veth link the harness controls; VMs are real QEMU processes whose disks
//! are the mirrored RBD images. The harness, in the root namespace, is the witness.

pub mod initramfs;
pub mod mirror;
pub mod procs;
pub mod site;
pub mod vm;

use crate::clock::Wt;
use crate::config::EnvConfig;
use crate::fault::{Fault, Receipt};
use mirror::SnapLog;
use serde::{Deserialize, Serialize};
use site::Site;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vm::{Mode, VmProcess, VmSpec};

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("missing tool: {tool} ({hint})")]
    MissingTool { tool: String, hint: String },
    #[error("failed to {what} on site {site}: {detail}")]
    Site { site: String, what: String, detail: String },
    #[error("timed out after {after:?} waiting for {what} on site {site}")]
    Timeout { site: String, what: String, after: Duration },
    #[error("failed to run VM {vm} on site {site}: {detail}")]
    Vm { vm: String, site: String, detail: String },
    #[error("failed to {what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("refusing to {what}: environment {env} is not marked disposable (set `disposable: true`)")]
    NotDisposable { what: String, env: String },
    #[error("{0}")]
    Usage(String),
}

impl LabError {
    /// True when the harness or its machine broke, as opposed to the system under test falling short.
    pub fn is_harness(&self) -> bool {
        matches!(self, LabError::MissingTool { .. } | LabError::Io { .. } | LabError::NotDisposable { .. } | LabError::Usage(_))
    }
}

const SETUP_HINT: &str = "run scripts/setup.sh to install the lab's packages";

/// Where QEMU, the guest kernel and the static probe are.
#[derive(Clone, Debug)]
pub struct Assets {
    pub qemu_root: PathBuf,
    pub qemu_bin: PathBuf,
    pub kernel: PathBuf,
    pub modules: PathBuf,
    pub probe: PathBuf,
    pub busybox: Option<PathBuf>,
}

impl Assets {
    pub fn qemu_modules(&self) -> PathBuf {
        self.qemu_root.join("usr/lib/x86_64-linux-gnu/qemu")
    }

    /// Finds everything the lab needs or names the first missing piece.
    pub fn locate() -> Result<Assets, LabError> {
        let root = PathBuf::from(std::env::var("DR_DRILL_ASSETS").unwrap_or_else(|_| "/opt/dr-drill".into()));
        for tool in ["ip", "ceph", "rbd", "ceph-mon", "ceph-mgr", "ceph-osd", "rbd-mirror", "ceph-authtool", "monmaptool"] {
            if which(tool).is_none() {
                return Err(LabError::MissingTool { tool: tool.into(), hint: SETUP_HINT.into() });
            }
        }
        let probe = std::env::var("DR_DRILL_PROBE").map(PathBuf::from).unwrap_or_else(|_| root.join("bin/dr-probe"));
        let a = Assets {
            qemu_bin: root.join("qemu/usr/bin/qemu-system-x86_64"),
            qemu_root: root.join("qemu"),
            kernel: root.join("kernel/vmlinuz"),
            modules: root.join("kernel/modules"),
            probe,
            busybox: ["/bin/busybox", "/usr/bin/busybox"].iter().map(PathBuf::from).find(|p| p.exists()),
        };
        for (what, p) in [("qemu-system-x86_64", &a.qemu_bin), ("guest kernel", &a.kernel), ("dr-probe (static)", &a.probe)] {
            if !p.exists() {
                return Err(LabError::MissingTool { tool: format!("{what} at {}", p.display()), hint: SETUP_HINT.into() });
            }
        }
        Ok(a)
    }
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

/// What `env up` leaves on disk so that `env status` and `env down` find the lab again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabState {
    pub env: String,
    pub id: String,
    pub root: PathBuf,
    pub owner_pid: u32,
    pub netns: Vec<String>,
    /// (site, daemon, pid)
    pub daemons: Vec<(String, String, i32)>,
    pub replication: String,
}

/// A VM of a scenario: its image, where it is primary, and the process running it (if any).
pub struct VmSlot {
    pub name: String,
    pub image: String,
    pub primary: usize,
    /// When the current primary became primary (its replication rounds since then are judged).
    pub primary_since: Wt,
    /// Records per second the probe writes.
    pub rate: u32,
    pub process: Option<VmProcess>,
    /// Logs of the VM's earlier boots (each writer boot's acks stay evidence).
    pub boots: Vec<vm::BootLog>,
    pub snaps: Arc<Mutex<SnapLog>>,
    scheduler: Option<tokio::task::JoinHandle<()>>,
}

pub struct Lab {
    pub cfg: EnvConfig,
    pub id: String,
    pub root: PathBuf,
    pub sites: Vec<Site>,
    pub assets: Assets,
    initramfs: PathBuf,
    pub vms: Vec<VmSlot>,
    pub up_time: Duration,
}

pub fn runs_dir() -> PathBuf {
    PathBuf::from(std::env::var("DR_DRILL_RUN_DIR").unwrap_or_else(|_| "/var/tmp/dr-drill".into()))
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |source| LabError::Io { what: what.into(), source }
}

async fn ip(args: &[&str]) -> Result<(), LabError> {
    let mut c = tokio::process::Command::new("ip");
    c.args(args).kill_on_drop(true);
    let what = format!("ip {}", args.join(" "));
    let out = procs::run(c, Duration::from_secs(10), &what).await.map_err(LabError::Usage)?;
    if !out.ok {
        return Err(LabError::Site { site: "-".into(), what, detail: out.stderr.trim().into() });
    }
    Ok(())
}

impl Lab {
    /// Brings both sites up from nothing: namespaces, link, two Ceph clusters, mirroring both ways.
    /// On any failure everything made so far is torn down before the error is returned.
    pub async fn up(cfg: &EnvConfig) -> Result<Lab, LabError> {
        let assets = Assets::locate()?;
        let t0 = Instant::now();
        let id = site::uuid()[..6].to_string();
        let root = runs_dir().join(format!("{}-{id}", cfg.spec.name));
        std::fs::create_dir_all(&root).map_err(io("create the run directory"))?;
        procs::track_dir(&root);
        let names = cfg.site_names();
        let deadline = cfg.spec.budgets.command.0;
        let mut sites = vec![];
        for (i, n) in names.iter().enumerate() {
            let ns = format!("drd-{id}-{n}");
            sites.push(Site::new(n, &ns, &format!("10.77.0.{}", i + 1), root.join(n), deadline));
        }
        let mut lab = Lab {
            cfg: cfg.clone(),
            id,
            root: root.clone(),
            sites,
            assets,
            initramfs: root.join("initramfs.cpio"),
            vms: vec![],
            up_time: Duration::ZERO,
        };
        let budget = cfg.spec.budgets.lab_up.0;
        let res = match tokio::time::timeout(budget, lab.build()).await {
            Ok(r) => r,
            Err(_) => Err(LabError::Timeout { site: "both".into(), what: "the lab to come up".into(), after: budget }),
        };
        if let Err(e) = res {
            lab.down().await;
            return Err(e);
        }
        lab.up_time = t0.elapsed();
        Ok(lab)
    }

    async fn build(&mut self) -> Result<(), LabError> {
        for s in &self.sites {
            ip(&["netns", "add", &s.ns]).await?;
            procs::track_netns(&s.ns);
            ip(&["-n", &s.ns, "link", "set", "lo", "up"]).await?;
        }
        let (a, b) = (&self.sites[0], &self.sites[1]);
        ip(&["link", "add", "wan0", "netns", &a.ns, "type", "veth", "peer", "name", "wan0", "netns", &b.ns]).await?;
        for s in &self.sites {
            ip(&["-n", &s.ns, "addr", "add", &format!("{}/24", s.ip), "dev", "wan0"]).await?;
            ip(&["-n", &s.ns, "link", "set", "wan0", "up"]).await?;
        }
        let img = initramfs::build(&self.assets.probe, &self.assets.modules, self.assets.busybox.as_deref())
            .map_err(io("build the guest initramfs"))?;
        std::fs::write(&self.initramfs, img).map_err(io("write the guest initramfs"))?;
        let (sa, sb) = self.sites.split_at_mut(1);
        let (ra, rb) = tokio::join!(sa[0].bootstrap(), sb[0].bootstrap());
        ra?;
        rb?;
        mirror::setup(&mut self.sites, &self.cfg).await?;
        Ok(())
    }

    /// Tears everything down: VMs, daemons, namespaces, the run directory (unless kept on purpose).
    pub async fn down(&mut self) {
        for v in &mut self.vms {
            if let Some(s) = v.scheduler.take() {
                s.abort();
            }
            if let Some(p) = v.process.as_mut() {
                p.kill().await;
            }
        }
        if procs::keep() {
            return;
        }
        for s in &mut self.sites {
            s.stop_all().await;
        }
        for s in &self.sites {
            let _ = ip(&["netns", "del", &s.ns]).await;
            procs::untrack_netns(&s.ns);
        }
        let _ = std::fs::remove_dir_all(&self.root);
        procs::untrack_dir(&self.root);
    }

    pub fn state(&self) -> LabState {
        LabState {
            env: self.cfg.spec.name.clone(),
            id: self.id.clone(),
            root: self.root.clone(),
            owner_pid: std::process::id(),
            netns: self.sites.iter().map(|s| s.ns.clone()).collect(),
            daemons: self.sites.iter().flat_map(|s| s.daemons.iter().map(|d| (s.name.clone(), d.name.clone(), d.pid))).collect(),
            replication: self.cfg.replication_summary(),
        }
    }

    pub fn site_index(&self, name: &str) -> Result<usize, LabError> {
        self.sites.iter().position(|s| s.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.sites.iter().map(|s| s.name.as_str()).collect();
            LabError::Usage(format!("unknown site {name:?}: environment {} has sites {}", self.cfg.spec.name, known.join(", ")))
        })
    }

    fn require_disposable(&self, what: &str) -> Result<(), LabError> {
        if self.cfg.spec.disposable {
            Ok(())
        } else {
            Err(LabError::NotDisposable { what: what.into(), env: self.cfg.spec.name.clone() })
        }
    }

    pub fn slot(&mut self, vm: &str) -> Result<&mut VmSlot, LabError> {
        self.vms.iter_mut().find(|v| v.name == vm).ok_or_else(|| LabError::Usage(format!("no VM named {vm} in this scenario")))
    }

    /// Creates a mirrored image primary on `site` and waits until its first snapshot is on the peer,
    /// then starts the mirror-snapshot scheduler for it.
    pub async fn create_vm(&mut self, vm: &str, site: usize, rate: u32) -> Result<Duration, LabError> {
        let image = format!("{vm}-{}", self.vms.len());
        let size = format!("{}M", self.cfg.spec.vm.disk_size.0 >> 20);
        let s = &self.sites[site];
        s.cli("rbd", &["create", &format!("rbd/{image}"), "--size", &size]).await?;
        let t0 = Instant::now();
        s.cli("rbd", &["mirror", "image", "enable", &format!("rbd/{image}"), "snapshot"]).await?;
        let peer = &self.sites[1 - site];
        let first = mirror::newest_primary_snap(s, &image).await?;
        if let Some(id) = first {
            mirror::wait_synced(peer, &image, id, self.cfg.spec.budgets.sync_barrier.0).await?;
        }
        let snaps = Arc::new(Mutex::new(SnapLog::default()));
        let sched = mirror::spawn_scheduler(&self.cfg, vm.to_string(), (*self.sites[site]).clone(), (*self.sites[1 - site]).clone(), image.clone(), snaps.clone());
        self.vms.push(VmSlot { name: vm.into(), image, primary: site, primary_since: Wt::now(), rate, process: None, boots: vec![], snaps, scheduler: Some(sched) });
        Ok(t0.elapsed())
    }

    /// Boots the VM on `site` in `mode`.
    pub async fn boot(&mut self, vm: &str, site: usize, mode: Mode, scan_limit: u64) -> Result<(), LabError> {
        let mem = self.cfg.spec.vm.memory.0 >> 20;
        let s = &self.sites[site];
        let (ns, conf, sname) = (s.ns.clone(), s.conf(), s.name.clone());
        let assets = self.assets.clone();
        let initramfs = self.initramfs.clone();
        let dir = self.root.join("vms");
        std::fs::create_dir_all(&dir).map_err(io("create the VM directory"))?;
        let slot = self.slot(vm)?;
        let rate = slot.rate;
        if let Some(p) = slot.process.as_mut() {
            if p.qemu.alive() {
                return Err(LabError::Usage(format!("VM {vm} is already running on site {}", p.site)));
            }
        }
        let spec = VmSpec {
            vm,
            site: &sname,
            ns: &ns,
            conf: &conf,
            image: &slot.image,
            dir: &dir,
            memory_mib: mem,
            rate,
            scan_limit,
        };
        let p = VmProcess::boot(&assets, &initramfs, &spec, mode).await?;
        slot.process = Some(p);
        Ok(())
    }

    /// Injects a fault; the receipt is what the after hook hands back to `recover`.
    pub async fn inject(&mut self, fault: Fault) -> Result<Receipt, LabError> {
        self.require_disposable(&fault.to_string())?;
        let at;
        match &fault {
            Fault::PowerLoss { site } => {
                let i = self.site_index(site)?;
                // Everything in the site dies at once: QEMU first (the VM's I/O halts abruptly), then Ceph.
                at = Wt::now();
                for v in &mut self.vms {
                    if let Some(p) = v.process.as_mut() {
                        if p.site == *site {
                            p.kill().await;
                        }
                    }
                    if v.primary == i {
                        if let Some(s) = v.scheduler.take() {
                            s.abort();
                        }
                    }
                }
                self.sites[i].kill_all().await;
            }
            Fault::StopReplication { site } => {
                let i = self.site_index(site)?;
                at = Wt::now();
                if let Some(d) = self.sites[i].daemon_mut("rbd-mirror") {
                    d.kill().await;
                }
            }
            Fault::PauseReplication { site } => {
                let i = self.site_index(site)?;
                at = Wt::now();
                let Some(d) = self.sites[i].daemon_mut("rbd-mirror").filter(|d| d.pid > 0) else {
                    return Err(LabError::Usage(format!("cannot pause replication to site {site}: it has no rbd-mirror daemon")));
                };
                if !d.alive() {
                    return Err(LabError::Usage(format!("cannot pause replication to site {site}: its rbd-mirror daemon is not running")));
                }
                d.signal(libc::SIGSTOP);
            }
            Fault::Isolate { site } => {
                let i = self.site_index(site)?;
                at = Wt::now();
                ip(&["-n", &self.sites[i].ns, "link", "set", "wan0", "down"]).await?;
            }
        }
        crate::events::publish_at(at, crate::events::Event::Fault { fault: fault.clone() });
        Ok(Receipt { fault, at })
    }

    /// Undoes a fault. Idempotent: recovering what is already recovered does nothing.
    pub async fn recover(&mut self, r: &Receipt) -> Result<(), LabError> {
        match &r.fault {
            Fault::PowerLoss { site } => {
                let i = self.site_index(site)?;
                if !self.sites[i].powered() {
                    self.sites[i].power_on().await?;
                }
            }
            Fault::StopReplication { site } => {
                let i = self.site_index(site)?;
                let alive = self.sites[i].daemon_mut("rbd-mirror").is_some_and(|d| d.alive());
                if !alive && self.sites[i].powered() {
                    self.sites[i].start_rbd_mirror()?;
                }
            }
            Fault::PauseReplication { site } => {
                // SIGCONT to a running (or dead) daemon does nothing: idempotent
                let i = self.site_index(site)?;
                if let Some(d) = self.sites[i].daemon_mut("rbd-mirror") {
                    if d.alive() {
                        d.signal(libc::SIGCONT);
                    }
                }
            }
            Fault::Isolate { site } => {
                let i = self.site_index(site)?;
                for s in [i, 1 - i] {
                    ip(&["-n", &self.sites[s].ns, "link", "set", "wan0", "up"]).await?;
                }
            }
        }
        crate::events::publish(crate::events::Event::Recovered { fault: r.fault.clone() });
        Ok(())
    }

    /// Stops the scheduler of a VM (its primary is about to change).
    pub fn stop_scheduler(&mut self, vm: &str) -> Result<(), LabError> {
        if let Some(s) = self.slot(vm)?.scheduler.take() {
            s.abort();
        }
        Ok(())
    }

    /// Starts the scheduler for a VM on its (new) primary site.
    pub fn start_scheduler(&mut self, vm: &str) -> Result<(), LabError> {
        let cfg = self.cfg.clone();
        let idx = self.slot(vm)?.primary;
        let (p, q) = ((*self.sites[idx]).clone(), (*self.sites[1 - idx]).clone());
        let slot = self.slot(vm)?;
        let h = mirror::spawn_scheduler(&cfg, vm.to_string(), p, q, slot.image.clone(), slot.snaps.clone());
        slot.scheduler = Some(h);
        Ok(())
    }

    /// Peak resident memory of the lab's processes (daemons and VMs), in bytes, read from /proc.
    pub fn rss_bytes(&mut self) -> u64 {
        let mut pids: Vec<i32> = self.sites.iter().flat_map(|s| s.daemons.iter().map(|d| d.pid)).collect();
        pids.extend(self.vms.iter().filter_map(|v| v.process.as_ref().map(|p| p.qemu.pid)));
        pids.iter().map(|p| proc_hwm(*p)).sum()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// What the drill steps ask of a VM, on the lab.
impl Lab {
    /// Creates a mirrored disk primary on `site`, boots the VM writing `rate` records/s and waits for its
    /// first acknowledged record. Returns the VM's name.
    pub async fn start_vm(&mut self, site: usize, rate: u32) -> Result<String, LabError> {
        let name = format!("vm{}", self.vms.len());
        self.create_vm(&name, site, rate).await?;
        let limit = self.cfg.disk_records() + 1;
        self.boot(&name, site, Mode::Write, limit).await?;
        let boot = self.cfg.spec.budgets.boot.0;
        self.running(&name)?.wait_for("the first acknowledged write", boot, |g| g.acks.first().map(|_| ())).await?;
        Ok(name)
    }

    /// The VM's running process, or an error saying it is not running.
    pub fn running(&mut self, vm: &str) -> Result<&mut VmProcess, LabError> {
        self.slot(vm)?.process.as_mut().ok_or_else(|| LabError::Usage(format!("VM {vm} is not running")))
    }

    /// Waits until the current boot has acknowledged `n` records (at least one more than now).
    pub async fn wait_acks(&mut self, vm: &str, n: u64, deadline: Duration) -> Result<(), LabError> {
        let p = self.running(vm)?;
        let want = (p.snapshot().acks.len() as u64).max(n);
        p.wait_for(&format!("{want} acknowledged writes"), deadline, |g| (g.acks.len() as u64 >= want).then_some(())).await
    }

    /// Still writing (its probe has not gone away)?
    pub fn writing(&mut self, vm: &str) -> Result<bool, LabError> {
        Ok(self.running(vm)?.snapshot().eof.is_none())
    }

    /// Negative control: damages record `seq` of the VM's disk through a guest on `site` (the VM is
    /// stopped gracefully first if it runs), then verifies the disk again. Returns the new scan and every
    /// boot log of the VM so far.
    pub async fn corrupt_record(&mut self, vm: &str, site: usize, seq: u64) -> Result<(dr_probe::ScanReport, Vec<vm::BootLog>), LabError> {
        self.require_disposable("damage a record on disk")?;
        let budgets = self.cfg.spec.budgets.clone();
        if let Some(p) = self.slot(vm)?.process.as_mut() {
            if p.qemu.alive() {
                p.graceful_stop(budgets.graceful_stop.0).await?;
            }
        }
        self.archive(vm).await?;
        self.boot(vm, site, Mode::Corrupt(seq), 0).await?;
        let p = self.running(vm)?;
        p.wait_for("the record to be damaged", budgets.boot.0, |g| g.corrupted).await?;
        p.wait_poweroff(budgets.boot.0).await?;
        self.archive(vm).await?;
        let limit = self.cfg.disk_records() + 1;
        self.boot(vm, site, Mode::Verify, limit).await?;
        let p = self.running(vm)?;
        let (_, scan) = p.wait_for("the verify scan", budgets.boot.0, |g| g.scan.clone()).await?;
        p.wait_poweroff(budgets.boot.0).await?;
        self.archive(vm).await?;
        Ok((scan, self.slot(vm)?.boots.clone()))
    }

    /// Moves the VM's current boot log into its history once the witness has read its stream to the end
    /// (the process is gone: killed, powered off, or stopped gracefully).
    pub async fn archive(&mut self, vm: &str) -> Result<(), LabError> {
        let slot = self.slot(vm)?;
        if let Some(mut p) = slot.process.take() {
            if p.qemu.alive() {
                p.kill().await;
            }
            let drained = p.drain(Duration::from_secs(10)).await;
            slot.boots.push(p.snapshot());
            drained?;
        }
        Ok(())
    }

    /// End of a scenario: the VM is killed, its log archived, its scheduler stopped.
    pub async fn stop_vm(&mut self, vm: &str) {
        if let Ok(slot) = self.slot(vm) {
            if let Some(p) = slot.process.as_mut() {
                p.kill().await;
            }
        }
        let _ = self.archive(vm).await;
        let _ = self.stop_scheduler(vm);
        crate::events::publish(crate::events::Event::VmDone { vm: vm.to_string() });
    }
}

/// VmHWM (peak RSS) of a process, in bytes.
pub fn proc_hwm(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
