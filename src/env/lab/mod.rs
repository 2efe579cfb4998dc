//! The lab backend: sites on this machine, each a network namespace with a real Ceph cluster and an
//! rbd-mirror daemon, joined by a veth link the harness controls; VMs are real QEMU processes whose disks
//! are the mirrored RBD images. The harness, in the root namespace, is the witness.
//!
//! Its ports: `LabSites` (faults and lifecycle of the namespaces and daemons), `vm::QemuWorkload` (the VMs)
//! and `mirror::RbdMirrorDriver` (RBD snapshot mirroring: provision, relocate, failover).

pub mod initramfs;
pub mod mirror;
pub mod site;
pub mod state;
pub mod vm;

use crate::clock::Wt;
use crate::config::{EnvConfig, LabSpec};
use crate::error::{Cause, EnvError};
use crate::events::{Bus, Event};
use crate::fault::{Fault, Receipt};
use crate::ports::{Faults, Infrastructure};
use crate::procs;
use crate::topology::Topology;
use async_trait::async_trait;
use site::{Site, SiteRef};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    pub fn locate() -> Result<Assets, EnvError> {
        let root = PathBuf::from(std::env::var("DR_DRILL_ASSETS").unwrap_or_else(|_| "/opt/dr-drill".into()));
        for tool in ["ip", "ceph", "rbd", "ceph-mon", "ceph-mgr", "ceph-osd", "rbd-mirror", "ceph-authtool", "monmaptool"] {
            if which(tool).is_none() {
                return Err(EnvError::MissingTool { tool: tool.into(), hint: SETUP_HINT.into() });
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
                return Err(EnvError::MissingTool { tool: format!("{what} at {}", p.display()), hint: SETUP_HINT.into() });
            }
        }
        Ok(a)
    }
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

pub fn runs_dir() -> PathBuf {
    PathBuf::from(std::env::var("DR_DRILL_RUN_DIR").unwrap_or_else(|_| "/var/tmp/dr-drill".into()))
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> EnvError + '_ {
    move |source| EnvError::Io { what: what.into(), source }
}

/// Runs `ip` (the harness's own plumbing: a failure is the harness's).
async fn ip(args: &[&str]) -> Result<(), EnvError> {
    let mut c = tokio::process::Command::new("ip");
    c.args(args).kill_on_drop(true);
    let what = format!("ip {}", args.join(" "));
    let out = procs::run(c, Duration::from_secs(10), &what).await.map_err(EnvError::Usage)?;
    if !out.ok {
        return Err(EnvError::Site { site: "-".into(), what, detail: out.stderr.trim().into(), cause: Cause::Harness });
    }
    Ok(())
}

/// Deletes namespaces of earlier labs that no longer hold any process (left by a harness killed outright).
pub fn reap_stale() -> Vec<String> {
    procs::reap_stale_netns().into_iter().map(|ns| format!("namespace {ns}")).collect()
}

/// The lab's three ports, brought up together.
pub struct LabParts {
    pub sites: LabSites,
    pub workload: vm::QemuWorkload,
    pub driver: mirror::RbdMirrorDriver,
}

/// Brings the lab up from nothing: namespaces, link, a Ceph cluster per site, mirroring both ways. On any
/// failure everything made so far is torn down before the error (the harness's) is returned.
pub async fn up(cfg: &EnvConfig, spec: &LabSpec, topology: &Topology, bus: Bus) -> Result<LabParts, EnvError> {
    let assets = Assets::locate()?;
    let t0 = Instant::now();
    let id = site::uuid()[..6].to_string();
    let root = runs_dir().join(format!("{}-{id}", cfg.spec.name));
    std::fs::create_dir_all(&root).map_err(io("create the run directory"))?;
    procs::track_dir(&root);
    let deadline = cfg.spec.budgets.command.0;
    let sites = topology.sites().enumerate().map(|(i, n)| Site::new(n, &format!("drd-{id}-{n}"), &format!("10.77.0.{}", i + 1), root.join(n), deadline)).collect();
    let mut lab = LabSites { env: cfg.spec.name.clone(), disposable: cfg.spec.disposable, id, root: root.clone(), sites, up_time: Duration::ZERO, bus: bus.clone() };
    let initramfs = root.join("initramfs.cpio");
    let budget = cfg.spec.budgets.up.0;
    let res = match tokio::time::timeout(budget, lab.build(cfg, &assets, &initramfs)).await {
        Ok(r) => r,
        Err(_) => Err(EnvError::Timeout { site: "all".into(), what: "the lab to come up".into(), after: budget, cause: Cause::Harness }),
    };
    if let Err(e) = res {
        lab.down().await;
        return Err(e.harness());
    }
    lab.up_time = t0.elapsed();
    let refs: BTreeMap<String, SiteRef> = lab.sites.iter().map(|s| (s.name.clone(), s.r.clone())).collect();
    let workload = vm::QemuWorkload::new(assets, initramfs, root.join("vms"), spec.clone(), cfg.spec.budgets.clone(), refs.clone(), bus.clone());
    let driver = mirror::RbdMirrorDriver::new(cfg, topology.clone(), refs, bus);
    Ok(LabParts { sites: lab, workload, driver })
}

/// The lab's sites: namespaces, links and daemons. Their faults and their lifecycle.
pub struct LabSites {
    pub env: String,
    disposable: bool,
    pub id: String,
    pub root: PathBuf,
    pub sites: Vec<Site>,
    pub up_time: Duration,
    bus: Bus,
}

impl LabSites {
    async fn build(&mut self, cfg: &EnvConfig, assets: &Assets, initramfs: &Path) -> Result<(), EnvError> {
        for s in &self.sites {
            ip(&["netns", "add", &s.ns]).await?;
            procs::track_netns(&s.ns);
            ip(&["-n", &s.ns, "link", "set", "lo", "up"]).await?;
        }
        let [a, b] = self.sites.as_slice() else {
            return Err(EnvError::Usage(format!("the lab joins two sites, environment {} has {}", self.env, self.sites.len())));
        };
        ip(&["link", "add", "wan0", "netns", &a.ns, "type", "veth", "peer", "name", "wan0", "netns", &b.ns]).await?;
        for s in &self.sites {
            ip(&["-n", &s.ns, "addr", "add", &format!("{}/24", s.ip), "dev", "wan0"]).await?;
            ip(&["-n", &s.ns, "link", "set", "wan0", "up"]).await?;
        }
        let img = initramfs::build(&assets.probe, &assets.modules, assets.busybox.as_deref()).map_err(io("build the guest initramfs"))?;
        std::fs::write(initramfs, img).map_err(io("write the guest initramfs"))?;
        let results = futures::future::join_all(self.sites.iter_mut().map(|s| s.bootstrap())).await;
        results.into_iter().collect::<Result<Vec<()>, EnvError>>()?;
        mirror::setup(&mut self.sites, cfg).await?;
        Ok(())
    }

    pub fn site_mut(&mut self, name: &str) -> Result<&mut Site, EnvError> {
        let env = self.env.clone();
        let known: Vec<String> = self.sites.iter().map(|s| s.name.clone()).collect();
        self.sites.iter_mut().find(|s| s.name == name).ok_or_else(|| EnvError::Usage(format!("unknown site {name:?}: environment {env} has sites {}", known.join(", "))))
    }

    pub fn state(&self, replication: String) -> state::LabState {
        state::LabState {
            env: self.env.clone(),
            id: self.id.clone(),
            root: self.root.clone(),
            owner_pid: std::process::id(),
            netns: self.sites.iter().map(|s| s.ns.clone()).collect(),
            daemons: self.sites.iter().flat_map(|s| s.daemons.iter().map(|d| (s.name.clone(), d.name.clone(), d.pid))).collect(),
            replication,
        }
    }
}

#[async_trait]
impl Faults for LabSites {
    async fn inject(&mut self, fault: Fault) -> Result<Receipt, EnvError> {
        if !self.disposable {
            return Err(EnvError::NotDisposable { what: fault.to_string(), env: self.env.clone() });
        }
        let at;
        match &fault {
            Fault::PowerLoss { site } => {
                let s = self.site_mut(site)?;
                // Everything in the site dies at once, its VMs with it: the VMs' I/O halts abruptly.
                at = Wt::now();
                s.kill_all().await;
            }
            Fault::StopReplication { site } => {
                let s = self.site_mut(site)?;
                at = Wt::now();
                if let Some(d) = s.daemon_mut("rbd-mirror") {
                    d.kill().await;
                }
            }
            Fault::PauseReplication { site } => {
                let s = self.site_mut(site)?;
                at = Wt::now();
                let Some(d) = s.daemon_mut("rbd-mirror") else {
                    return Err(EnvError::Usage(format!("cannot pause replication to site {site}: it has no rbd-mirror daemon")));
                };
                if !d.alive() {
                    return Err(EnvError::Usage(format!("cannot pause replication to site {site}: its rbd-mirror daemon is not running")));
                }
                d.signal(libc::SIGSTOP);
            }
            Fault::Isolate { site } => {
                let ns = self.site_mut(site)?.ns.clone();
                at = Wt::now();
                ip(&["-n", &ns, "link", "set", "wan0", "down"]).await?;
            }
        }
        self.bus.publish_at(at, Event::Fault { fault: fault.clone() });
        Ok(Receipt { fault, at })
    }

    async fn recover(&mut self, r: &Receipt) -> Result<(), EnvError> {
        match &r.fault {
            Fault::PowerLoss { site } => {
                let s = self.site_mut(site)?;
                if !s.powered() {
                    s.power_on().await?;
                }
            }
            Fault::StopReplication { site } => {
                let s = self.site_mut(site)?;
                let alive = s.daemon_mut("rbd-mirror").is_some_and(|d| d.alive());
                if !alive && s.powered() {
                    s.start_rbd_mirror()?;
                }
            }
            Fault::PauseReplication { site } => {
                // SIGCONT to a running daemon does nothing: idempotent
                if let Some(d) = self.site_mut(site)?.daemon_mut("rbd-mirror") {
                    d.signal(libc::SIGCONT);
                }
            }
            Fault::Isolate { site } => {
                self.site_mut(site)?;
                // both ends of the link
                for s in &self.sites {
                    ip(&["-n", &s.ns, "link", "set", "wan0", "up"]).await?;
                }
            }
        }
        self.bus.publish(Event::Recovered { fault: r.fault.clone() });
        Ok(())
    }
}

#[async_trait]
impl Infrastructure for LabSites {
    fn describe(&self) -> String {
        format!("lab {} up in {:.1}s", self.id, self.up_time.as_secs_f64())
    }

    fn kept_at(&self) -> String {
        format!("lab {} in {}, namespaces {}", self.id, self.root.display(), self.sites.iter().map(|s| s.ns.as_str()).collect::<Vec<_>>().join(", "))
    }

    fn rss_bytes(&self) -> u64 {
        self.sites.iter().flat_map(|s| s.daemons.iter().map(|d| procs::hwm(d.pid))).sum()
    }

    /// Tears everything down: daemons, namespaces, the run directory (unless kept on purpose).
    async fn down(&mut self) {
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
}
