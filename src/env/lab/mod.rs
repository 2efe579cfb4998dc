//! The lab backend: sites on this machine, each a network namespace with a real Ceph cluster and an
//! rbd-mirror daemon, joined by a veth link the harness controls; VMs are real QEMU processes whose disks
//! are the mirrored RBD images. The harness, in the root namespace, is the witness.
//!
//! Its ports: `LabSites` (faults and lifecycle of the namespaces and daemons), `vm::QemuWorkload` (the VMs)
//! and `mirror::RbdMirrorDriver` (RBD snapshot mirroring: provision, relocate, failover).

pub mod gather;
pub mod initramfs;
pub mod mirror;
pub mod site;
pub mod state;
pub mod stretched;
pub mod vm;
pub mod wan;
pub mod witness;

use crate::clock::Wt;
use crate::config::{EnvConfig, LabSpec};
use crate::error::{Cause, EnvError};
use crate::events::{Bus, Event};
use crate::fault::{Fault, Observed, Phase, Proof, Receipt};
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
pub(crate) async fn ip(args: &[&str]) -> Result<(), EnvError> {
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
    procs::reap_stale_netns()
}

/// The lab's three ports, brought up together.
pub struct LabParts {
    pub sites: LabSites,
    pub workload: vm::QemuWorkload,
    pub driver: LabDriver,
}

/// The lab's DR driver, by replication mode.
pub enum LabDriver {
    Mirror(mirror::RbdMirrorDriver),
    Stretched(stretched::StretchedDriver),
}

impl LabDriver {
    pub fn boxed(self) -> Box<dyn crate::ports::DrDriver> {
        match self {
            LabDriver::Mirror(d) => Box::new(d),
            LabDriver::Stretched(d) => Box::new(d),
        }
    }
    /// The RBD mirroring driver (Regional-DR), for what measures mirroring itself.
    pub fn mirror(&mut self) -> Result<&mut mirror::RbdMirrorDriver, EnvError> {
        match self {
            LabDriver::Mirror(d) => Ok(d),
            LabDriver::Stretched(_) => Err(EnvError::Usage("this measures RBD mirroring: it needs a Regional-DR lab".into())),
        }
    }
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
    procs::claim(&id, &root).map_err(io("claim the lab's id"))?;
    let deadline = cfg.spec.budgets.command.0;
    // Regional-DR: a cluster per site, its address on the one link; Metro-DR: every failure domain (the
    // arbiter too) with an address on its loopback, reached over a link per pair.
    let metro = cfg.spec.metro().is_some();
    let sites = topology
        .domains()
        .enumerate()
        .map(|(i, n)| {
            let addr = if metro { stretched::addr(i) } else { format!("10.77.0.{}", i + 1) };
            Site::new(n, &format!("drd-{id}-{n}"), &addr, root.join(n), deadline)
        })
        .collect();
    let mut lab = LabSites {
        env: cfg.spec.name.clone(),
        disposable: cfg.spec.disposable,
        id,
        root: root.clone(),
        sites,
        links: vec![],
        up_time: Duration::ZERO,
        bus: bus.clone(),
        watch: None,
        budgets: cfg.spec.budgets.clone(),
        frozen: BTreeMap::new(),
        killed: BTreeMap::new(),
    };
    let initramfs = root.join("initramfs.cpio");
    let budget = cfg.spec.budgets.up.0;
    let res = match tokio::time::timeout(budget, lab.build(cfg, &assets, &initramfs)).await {
        Ok(r) => r,
        Err(_) => Err(EnvError::Timeout {
            site: "all".into(),
            what: "the lab to come up".into(),
            after: budget,
            cause: Cause::Harness,
            budget: Some(crate::config::Budget::Up.key()),
        }),
    };
    if let Err(e) = res {
        lab.down().await;
        return Err(e.harness());
    }
    lab.up_time = t0.elapsed();
    let refs: BTreeMap<String, SiteRef> = lab.sites.iter().map(|s| (s.name.clone(), s.r.clone())).collect();
    let workload = vm::qemu_workload(assets, initramfs, root.join("vms"), spec.clone(), cfg.spec.budgets.clone(), refs.clone(), bus.clone());
    let driver = match &cfg.spec.replication {
        crate::config::Replication::Regional(_) => LabDriver::Mirror(mirror::RbdMirrorDriver::new(cfg, topology.clone(), refs, bus)),
        crate::config::Replication::Metro(_) => LabDriver::Stretched(stretched::StretchedDriver::new(cfg, spec, topology.clone(), refs)),
    };
    Ok(LabParts { sites: lab, workload, driver })
}

/// The lab's sites: namespaces, links and daemons. Their faults and their lifecycle.
pub struct LabSites {
    pub env: String,
    disposable: bool,
    pub id: String,
    pub root: PathBuf,
    pub sites: Vec<Site>,
    /// The links between sites through the harness's delay line (empty when the sites are joined by a
    /// plain veth pair: a lab that outlives the harness, `env up`).
    pub links: Vec<wan::WanLink>,
    pub up_time: Duration,
    bus: Bus,
    /// Metro-DR in stretch mode: the flags sampled in the background, and where the monitors log.
    watch: Option<StretchWatch>,
    budgets: crate::config::Budgets,
    /// The processes each frozen site had when it froze, and each site without power had when it lost it
    /// (what the fault is shown on: a command the harness starts in the site later is not the site's).
    frozen: BTreeMap<String, Vec<i32>>,
    killed: BTreeMap<String, Vec<i32>>,
}

/// Samples `ceph osd dump`'s stretch flags every 2 s from the first failure domain whose client gets an
/// answer (the arbiter first: it sees both data sites through a partition between them); each change goes
/// to the event bus. The monitors' elections are read from their own logs when asked.
struct StretchWatch {
    samples: std::sync::Arc<std::sync::Mutex<Vec<crate::stretch::Sample>>>,
    task: tokio::task::JoinHandle<()>,
    /// Each monitor's log file.
    logs: Vec<PathBuf>,
    mon_sites: BTreeMap<String, String>,
}

impl StretchWatch {
    fn start(sites: &[Site], bus: Bus) -> StretchWatch {
        let n = sites.len();
        // the arbiter first, then the data sites
        let order: Vec<SiteRef> = sites[n - 1..].iter().chain(&sites[..n - 1]).map(|s| s.r.clone()).collect();
        let mut logs = vec![];
        let mut mon_sites = BTreeMap::new();
        for (i, s) in sites.iter().enumerate() {
            for m in stretched::monitors(&s.name, &s.ip, i + 1 < n, true) {
                logs.push(s.dir.join("log").join(format!("ceph-mon.{}.log", m.id)));
                if i + 1 < n {
                    mon_sites.insert(m.id, s.name.clone());
                }
            }
        }
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = samples.clone();
        let task = tokio::spawn(async move {
            let mut last: Option<(crate::stretch::StretchState, Option<u64>)> = None;
            loop {
                let at = Wt::now();
                let mut flags = None;
                for s in &order {
                    if let Ok(d) = s.cli_within("ceph", &["osd", "dump", "--format", "json"], Duration::from_secs(4)).await {
                        flags = crate::stretch::parse_osd_dump(&d, "rbd").ok();
                        break;
                    }
                }
                if let Some(f) = &flags {
                    if last != Some((f.state, f.min_size)) {
                        last = Some((f.state, f.min_size));
                        let min = f.min_size.map(|m| format!(", pools at min_size {m}")).unwrap_or_default();
                        bus.publish_at(at, Event::Note { text: format!("stretch mode: {}{min} (osdmap e{})", f.state, f.epoch) });
                    }
                }
                out.lock().unwrap_or_else(|e| e.into_inner()).push(crate::stretch::Sample { at, flags });
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        StretchWatch { samples, task, logs, mon_sites }
    }

    fn evidence(&self, since: Wt) -> crate::stretch::Evidence {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|s| s.at >= since).cloned().collect();
        let mut elections: Vec<crate::stretch::Election> =
            self.logs.iter().flat_map(|p| crate::stretch::elections_in(&std::fs::read_to_string(p).unwrap_or_default(), since)).collect();
        elections.sort_by_key(|e| e.at);
        crate::stretch::Evidence { samples, elections, mon_sites: self.mon_sites.clone() }
    }
}

impl LabSites {
    async fn build(&mut self, cfg: &EnvConfig, assets: &Assets, initramfs: &Path) -> Result<(), EnvError> {
        for s in &self.sites {
            ip(&["netns", "add", &s.ns]).await?;
            procs::track_netns(&s.ns);
            ip(&["-n", &s.ns, "link", "set", "lo", "up"]).await?;
        }
        let img = initramfs::build(&assets.probe, &assets.modules, assets.busybox.as_deref()).map_err(io("build the guest initramfs"))?;
        std::fs::write(initramfs, img).map_err(io("write the guest initramfs"))?;
        if cfg.spec.metro().is_some() {
            if procs::detached() {
                return Err(EnvError::Usage(
                    "a Metro-DR lab's sites are joined by the harness's delay line: it lives only as long as a run (use `dr-drill run`)".into(),
                ));
            }
            stretched::network(&self.sites, &mut self.links).await?;
            let metro = cfg.spec.metro().cloned().ok_or_else(|| EnvError::Usage("a Metro-DR lab needs `replication.metro`".into()))?;
            stretched::bootstrap(&mut self.sites, metro.placement, metro.stretch_mode).await?;
            if metro.stretch_mode {
                self.watch = Some(StretchWatch::start(&self.sites, self.bus.clone()));
            }
            return Ok(());
        }
        let [a, b] = self.sites.as_slice() else {
            return Err(EnvError::Usage(format!("the lab joins two sites, environment {} has {}", self.env, self.sites.len())));
        };
        if procs::detached() {
            // the lab outlives this process, so no process of its can carry the packets
            ip(&["link", "add", "wan0", "netns", &a.ns, "type", "veth", "peer", "name", "wan0", "netns", &b.ns]).await?;
        } else {
            self.links.push(wan::WanLink::open((&a.name, &a.ns, "wan0"), (&b.name, &b.ns, "wan0"))?);
        }
        for s in &self.sites {
            ip(&["-n", &s.ns, "addr", "add", &format!("{}/24", s.ip), "dev", "wan0"]).await?;
            ip(&["-n", &s.ns, "link", "set", "wan0", "mtu", "9000", "up"]).await?;
        }
        let results = futures::future::join_all(self.sites.iter_mut().map(|s| s.bootstrap())).await;
        results.into_iter().collect::<Result<Vec<()>, EnvError>>()?;
        mirror::setup(&mut self.sites, cfg).await?;
        Ok(())
    }

    pub fn site_mut(&mut self, name: &str) -> Result<&mut Site, EnvError> {
        let env = self.env.clone();
        let known: Vec<String> = self.sites.iter().map(|s| s.name.clone()).collect();
        self.sites
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| EnvError::Usage(format!("unknown site {name:?}: environment {env} has sites {}", known.join(", "))))
    }

    pub fn site(&self, name: &str) -> Result<&Site, EnvError> {
        self.sites.iter().find(|s| s.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.sites.iter().map(|s| s.name.as_str()).collect();
            EnvError::Usage(format!("unknown site {name:?}: environment {} has sites {}", self.env, known.join(", ")))
        })
    }

    /// The delay line's direction from `from` to `to`; an error names what is missing.
    fn direction(&mut self, from: &str, to: &str) -> Result<wan::Direction, EnvError> {
        self.site_mut(from)?;
        self.site_mut(to)?;
        if self.links.is_empty() {
            return Err(EnvError::Usage(format!(
                "the link between sites {from} and {to} is a plain veth pair (a lab made by `env up`): latency, loss and partitions need a run's delay line"
            )));
        }
        self.links.iter().find_map(|l| l.direction(from, to)).cloned().ok_or_else(|| EnvError::Usage(format!("no link joins sites {from} and {to}")))
    }

    /// Changes the shape of the direction from `from` to `to`.
    fn shape(&mut self, from: &str, to: &str, change: impl FnOnce(&mut wan::Shape)) -> Result<(), EnvError> {
        let d = self.direction(from, to)?;
        change(&mut d.shape.lock().unwrap());
        Ok(())
    }

    /// Sends `sig` to every process of a site (freeze and thaw).
    fn signal_all(&mut self, site: &str, sig: i32) -> Result<(), EnvError> {
        let ns = self.site_mut(site)?.ns.clone();
        for pid in procs::netns_pids(&ns) {
            // SAFETY: kill(2) on a process inside a namespace the harness made.
            unsafe { libc::kill(pid, sig) };
        }
        Ok(())
    }

    /// The monitor's address of site `name` (every lab site runs one; the arbiter too).
    fn monitor(&self, name: &str) -> Result<std::net::SocketAddr, EnvError> {
        let ip = self.site(name)?.ip.clone();
        format!("{ip}:3300").parse().map_err(|e| EnvError::Usage(format!("bad address of site {name}: {e}")))
    }

    /// The sites `site` has a link to (through the delay line; every other site when they share a plain
    /// veth pair).
    fn peers(&self, site: &str) -> Vec<String> {
        if self.links.is_empty() {
            return self.sites.iter().map(|s| s.name.clone()).filter(|s| s != site).collect();
        }
        self.links
            .iter()
            .filter_map(|l| {
                if l.a == site {
                    Some(l.b.clone())
                } else if l.b == site {
                    Some(l.a.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    /// Connection attempts, all at once, each from inside its `from` site to the monitor of its `to`.
    async fn reach_all(&self, pairs: &[(String, String)]) -> Result<Vec<(String, String, crate::fault::Reach)>, EnvError> {
        let mut looks = vec![];
        for (from, to) in pairs {
            let ns = self.site(from)?.ns.clone();
            let addr = self.monitor(to)?;
            // the most the delay line adds to this round trip as shaped now (a cut aside)
            let added: Duration = [(from, to), (to, from)]
                .iter()
                .filter_map(|(x, y)| self.links.iter().find_map(|l| l.direction(x, y)))
                .map(|d| {
                    let s = d.shape.lock().unwrap();
                    s.delay + s.jitter
                })
                .sum();
            let timeout = witness::silent_after(added);
            looks.push(async move { (from.clone(), to.clone(), witness::reach(&ns, addr, timeout).await) });
        }
        let mut out = vec![];
        for (from, to, r) in futures::future::join_all(looks).await {
            let r = r.map_err(|e| EnvError::Site {
                site: from.clone(),
                what: format!("try a connection to site {to}"),
                detail: e.to_string(),
                cause: Cause::Harness,
            })?;
            out.push((from, to, r));
        }
        Ok(out)
    }

    /// The median round trip from `from` to the monitor of `to` (5 handshakes).
    async fn rtt(&self, from: &str, to: &str) -> Result<Option<Duration>, EnvError> {
        let ns = self.site(from)?.ns.clone();
        let addr = self.monitor(to)?;
        witness::median_rtt(&ns, addr, 5).await.map_err(|e| EnvError::Site {
            site: from.into(),
            what: format!("measure the round trip to site {to}"),
            detail: e.to_string(),
            cause: Cause::Harness,
        })
    }

    /// What the delay line says of the direction from `from` to `to` (None: no delay line).
    fn line(&self, from: &str, to: &str) -> Option<crate::fault::LineSeen> {
        let d = self.links.iter().find_map(|l| l.direction(from, to))?;
        let s = d.shape.lock().unwrap().clone();
        Some(crate::fault::LineSeen {
            loss_permille: (s.loss * 1000.0).round() as u32,
            rate_bps: s.rate_bps,
            forwarded: d.counters.forwarded.load(std::sync::atomic::Ordering::Relaxed),
            dropped: d.counters.dropped.load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Looks at the sites, from outside the faulted one, for what `fault` changes. `rtt_before`: the
    /// round trip measured just before a latency changed.
    async fn observe(&self, fault: &Fault, phase: Phase, rtt_before: Option<Duration>) -> Result<Observed, EnvError> {
        let mut o = Observed::default();
        let daemon = |s: &Site, name: &str| -> (String, Option<crate::fault::ProcSeen>) {
            let seen = s.daemons.iter().find(|d| d.name == name).and_then(|d| witness::process(d.pid));
            (format!("{name} of site {}", s.name), seen)
        };
        match fault {
            Fault::PowerLoss { site } => {
                let ns = self.site(site)?.ns.clone();
                o.processes = Some(match (phase, self.killed.get(site)) {
                    (Phase::InEffect, Some(pids)) => pids.iter().filter_map(|p| witness::process(*p)).collect(),
                    _ => witness::processes(&ns),
                });
                let pairs: Vec<(String, String)> = self.peers(site).into_iter().map(|p| (p, site.clone())).collect();
                o.reach = self.reach_all(&pairs).await?;
            }
            Fault::Freeze { site } => {
                o.processes = Some(match self.frozen.get(site) {
                    Some(pids) => pids.iter().filter_map(|p| witness::process(*p)).collect(),
                    None => witness::processes(&self.site(site)?.ns.clone()),
                })
            }
            Fault::HostLoss { site } => {
                let s = self.site(site)?;
                o.daemon = Some(daemon(s, "osd2"));
                o.processes = Some(witness::processes(&s.ns.clone()));
            }
            Fault::StopReplication { site } | Fault::PauseReplication { site } => {
                let s = self.site(site)?;
                o.daemon = Some(daemon(s, "rbd-mirror"));
                o.processes = Some(witness::processes(&s.ns.clone()));
            }
            Fault::Isolate { site } => {
                let pairs: Vec<(String, String)> = self.peers(site).into_iter().flat_map(|p| [(site.clone(), p.clone()), (p, site.clone())]).collect();
                o.reach = self.reach_all(&pairs).await?;
            }
            Fault::Partition { a, b } => o.reach = self.reach_all(&[(a.clone(), b.clone()), (b.clone(), a.clone())]).await?,
            Fault::Latency { from, to, .. } => {
                let now = self.rtt(from, to).await?;
                o.rtt = rtt_before.zip(now);
            }
            Fault::Loss { from, to, .. } => o.line = self.line(from, to),
            Fault::RateLimit { from, to, bps } => {
                o.line = self.line(from, to);
                // a third of a second's worth at the asked rate (32 KiB to 8 MiB); once gone, the same size
                let bytes = ((*bps as f64 / 8.0 * 0.3) as usize).clamp(32 * 1024, 8 << 20);
                let (fns, tns, tip) = (self.site(from)?.ns.clone(), self.site(to)?.ns.clone(), self.site(to)?.ip.clone());
                o.throughput_bps = match witness::throughput(&fns, &tns, &tip, bytes).await {
                    Ok(b) => Some(b),
                    Err(e) if phase == Phase::InEffect => {
                        return Err(EnvError::Site {
                            site: from.clone(),
                            what: format!("measure the throughput to site {to}"),
                            detail: e.to_string(),
                            cause: Cause::Harness,
                        })
                    }
                    Err(_) => None,
                };
            }
        }
        Ok(o)
    }

    /// Shows `fault` in effect (or gone) from outside the faulted site, looking again until the budget
    /// `faultProof` runs out (a measured round trip or the delay line's word is looked at once); what showed
    /// it, or `FaultUnproven` naming what was seen instead.
    async fn prove(&self, fault: &Fault, phase: Phase, rtt_before: Option<Duration>) -> Result<Proof, EnvError> {
        let t0 = Wt::now();
        let once = matches!(fault, Fault::Latency { .. } | Fault::Loss { .. } | Fault::RateLimit { .. });
        let deadline = if once { Duration::ZERO.into() } else { self.budgets.deadline(crate::config::Budget::FaultProof) };
        let last = std::sync::Mutex::new(String::new());
        let r = crate::wait::until(
            format!("\"{fault}\" to be {phase}"),
            deadline,
            || async {
                let seen = self.observe(fault, phase, rtt_before).await?;
                Ok::<_, EnvError>(match crate::fault::judge(fault, phase, &seen) {
                    Ok(lines) => Some(lines),
                    Err(why) => {
                        *last.lock().unwrap() = why;
                        None
                    }
                })
            },
            || tokio::time::sleep(Duration::from_millis(250)),
        )
        .await;
        match r {
            Ok(lines) => Ok(Proof::seen_since(lines, t0)),
            Err(crate::wait::WaitError::Failed(e)) => Err(e),
            Err(crate::wait::WaitError::Timeout { budget, .. }) => Err(EnvError::FaultUnproven {
                fault: fault.to_string(),
                phase: phase.to_string(),
                why: format!("{} (looked for {:.1} s{})", last.into_inner().unwrap(), Wt::now().since(t0).as_secs_f64(), crate::wait::budget_note(&budget)),
            }),
        }
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
        // a latency is shown by the round trip it adds: measured just before
        let rtt_before = match &fault {
            Fault::Latency { from, to, .. } => {
                self.direction(from, to)?;
                self.rtt(from, to).await?
            }
            _ => None,
        };
        match &fault {
            Fault::PowerLoss { site } => {
                let s = self.site_mut(site)?;
                let pids = procs::netns_pids(&s.ns);
                // Everything in the site dies at once, its VMs with it: the VMs' I/O halts abruptly.
                s.kill_all().await;
                self.killed.insert(site.clone(), pids);
            }
            Fault::HostLoss { site } => {
                let s = self.site_mut(site)?;
                // the site's second storage host: its OSD (a stretch-mode data site has two hosts)
                let Some(d) = s.daemon_mut("osd2") else {
                    return Err(EnvError::Usage(format!("site {site} has one storage host: losing one needs Metro-DR in stretch mode (two per data site)")));
                };
                d.kill().await;
            }
            Fault::StopReplication { site } => {
                let s = self.site_mut(site)?;
                if let Some(d) = s.daemon_mut("rbd-mirror") {
                    d.kill().await;
                }
            }
            Fault::PauseReplication { site } => {
                let s = self.site_mut(site)?;
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
                if self.links.is_empty() {
                    ip(&["-n", &ns, "link", "set", "wan0", "down"]).await?;
                } else {
                    // every link of the site cut in the delay line, both ways (the kernel's links and routes
                    // stay as they are)
                    for d in self.links.iter().flat_map(|l| [&l.ab, &l.ba].into_iter().filter(move |_| l.a == *site || l.b == *site)) {
                        d.shape.lock().unwrap().cut = true;
                    }
                }
            }
            Fault::Freeze { site } => {
                let ns = self.site_mut(site)?.ns.clone();
                self.frozen.insert(site.clone(), procs::netns_pids(&ns));
                self.signal_all(site, libc::SIGSTOP)?;
            }
            Fault::Latency { from, to, delay, jitter } => {
                self.shape(from, to, |s| (s.delay, s.jitter) = (delay.0, jitter.0))?;
            }
            Fault::Loss { from, to, permille } => {
                self.shape(from, to, |s| s.loss = (*permille).min(1000) as f64 / 1000.0)?;
            }
            Fault::RateLimit { from, to, bps } => {
                self.shape(from, to, |s| s.rate_bps = Some(*bps))?;
            }
            Fault::Partition { a, b } => {
                let (ab, ba) = (self.direction(a, b)?, self.direction(b, a)?);
                ab.shape.lock().unwrap().cut = true;
                ba.shape.lock().unwrap().cut = true;
            }
        }
        // the fault counts from when it is caused; its receipt comes once it is shown in effect
        let at = Wt::now();
        let proof = match self.prove(&fault, Phase::InEffect, rtt_before).await {
            Ok(p) => p,
            Err(e) => {
                // no receipt will be handed back: whatever part of it did land is undone here
                let _ = self.undo(&fault).await;
                return Err(e);
            }
        };
        self.bus.publish_at(at, Event::Fault { fault: fault.clone(), proof: proof.seen.clone() });
        Ok(Receipt { fault, at, proof })
    }

    async fn recover(&mut self, r: &Receipt) -> Result<Proof, EnvError> {
        let rtt_before = match &r.fault {
            Fault::Latency { from, to, .. } => {
                // recovering what is recovered: the delay line's word that nothing is added is the proof
                let d = self.direction(from, to)?;
                if d.shape.lock().unwrap().delay.is_zero() {
                    let proof = Proof { seen: vec![format!("already undone: the delay line from site {from} to site {to} adds no delay")], took_ms: 0.0 };
                    self.bus.publish(Event::Recovered { fault: r.fault.clone(), proof: proof.seen.clone() });
                    return Ok(proof);
                }
                self.rtt(from, to).await?
            }
            _ => None,
        };
        self.undo(&r.fault).await?;
        let proof = self.prove(&r.fault, Phase::Gone, rtt_before).await?;
        self.bus.publish(Event::Recovered { fault: r.fault.clone(), proof: proof.seen.clone() });
        Ok(proof)
    }
}

impl LabSites {
    /// Undoes `fault` (idempotent: what is not in force is left as it is).
    async fn undo(&mut self, fault: &Fault) -> Result<(), EnvError> {
        match fault {
            Fault::PowerLoss { site } => {
                let s = self.site_mut(site)?;
                if !s.powered() {
                    s.power_on().await?;
                }
            }
            Fault::HostLoss { site } => {
                let s = self.site_mut(site)?;
                if s.powered() {
                    s.restart("osd2")?;
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
                let ns = self.site_mut(site)?.ns.clone();
                if self.links.is_empty() {
                    ip(&["-n", &ns, "link", "set", "wan0", "up"]).await?;
                }
                for d in self.links.iter().flat_map(|l| [&l.ab, &l.ba].into_iter().filter(move |_| l.a == *site || l.b == *site)) {
                    d.shape.lock().unwrap().cut = false;
                }
            }
            // thawing a running process does nothing: idempotent; shown on what froze
            Fault::Freeze { site } => self.signal_all(site, libc::SIGCONT)?,
            Fault::Latency { from, to, .. } => self.shape(from, to, |s| (s.delay, s.jitter) = (Duration::ZERO, Duration::ZERO))?,
            Fault::Loss { from, to, .. } => self.shape(from, to, |s| s.loss = 0.0)?,
            Fault::RateLimit { from, to, .. } => self.shape(from, to, |s| s.rate_bps = None)?,
            Fault::Partition { a, b } => {
                self.shape(a, b, |s| s.cut = false)?;
                self.shape(b, a, |s| s.cut = false)?;
            }
        }
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

    /// TCP handshakes from inside `from` to the monitor of `to` (SYN to SYN-ACK is one round trip over
    /// the link, through the delay line like every other packet).
    async fn round_trips(&mut self, from: &str, to: &str, samples: u32) -> Result<Vec<Duration>, EnvError> {
        let ns = self.site_mut(from)?.ns.clone();
        let ip = self.site_mut(to)?.ip.clone();
        let addr: std::net::SocketAddr = format!("{ip}:3300").parse().map_err(|e| EnvError::Usage(format!("bad address of site {to}: {e}")))?;
        let what = format!("measure the round trip from site {from} to site {to}");
        let (tx, rx) = tokio::sync::oneshot::channel();
        // a thread of its own: it enters the site's namespace and never serves anything else
        std::thread::spawn(move || {
            let r = (|| {
                let nsf = std::fs::File::open(format!("/run/netns/{ns}"))?;
                // SAFETY: setns(2) on this thread only.
                if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&nsf), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let mut v = vec![];
                for _ in 0..samples {
                    let t = std::time::Instant::now();
                    let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
                    v.push(t.elapsed());
                    drop(s);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(v)
            })();
            let _ = tx.send(r);
        });
        let r = rx.await.map_err(|_| EnvError::Usage(format!("failed to {what}: the measuring thread died")))?;
        r.map_err(|e| EnvError::Site { site: from.into(), what, detail: e.to_string(), cause: Cause::System })
    }

    async fn stretch(&mut self, since: Wt) -> Option<crate::stretch::Evidence> {
        self.watch.as_ref().map(|w| w.evidence(since))
    }

    /// Each site's Ceph status, health, the DR parts of its OSD map, rbd-mirror's pool status and its
    /// daemons' logs from `since` (a second earlier, for clocks read apart).
    async fn gather(&mut self, dir: &std::path::Path, since: Wt) -> crate::ports::Gathered {
        let since_unix = since.unix_secs() - 1.0;
        let mut g = crate::ports::Gathered::default();
        for s in &mut self.sites {
            g.extend(gather::site(s, dir, since_unix).await);
        }
        g
    }

    /// Tears everything down: daemons, namespaces, the run directory (a lab kept on purpose is never
    /// brought down: see `Environment::keep`).
    async fn down(&mut self) {
        if let Some(w) = self.watch.take() {
            w.task.abort();
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
        let claim = procs::claims_dir().join(&self.id);
        let _ = std::fs::remove_dir_all(&claim);
        procs::untrack_dir(&claim);
    }
}
