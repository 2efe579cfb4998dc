//! The environment a drill runs against: its topology and one implementation of each port (workload,
//! faults with the sites' lifecycle, DR driver), chosen from the environment file. Backends: the lab
//! (network-namespace sites, real Ceph, rbd-mirror, QEMU), kind (two kind clusters the harness builds)
//! and existing clusters (kubeconfig contexts).

pub mod cluster;
pub mod lab;
pub mod probe;
pub mod sim;

use crate::config::{Backend, EnvConfig};
use crate::error::EnvError;
use crate::events::Bus;
use crate::ports::{DrDriver, Infrastructure, Workload};
use crate::topology::Topology;

pub struct Environment {
    pub cfg: EnvConfig,
    pub topology: Topology,
    pub bus: Bus,
    pub workload: Box<dyn Workload>,
    pub faults: Box<dyn Infrastructure>,
    pub driver: Box<dyn DrDriver>,
    vms: usize,
}

impl Environment {
    /// Brings the environment described by `cfg` up; its observations go to `bus`.
    pub async fn up(cfg: &EnvConfig, bus: Bus) -> Result<Environment, EnvError> {
        let topology = Topology::of(cfg);
        let (workload, faults, driver): (Box<dyn Workload>, Box<dyn Infrastructure>, Box<dyn DrDriver>) = match &cfg.spec.backend {
            Backend::Lab(spec) => {
                let p = lab::up(cfg, spec, &topology, bus.clone()).await?;
                (Box::new(p.workload), Box::new(p.sites), p.driver.boxed())
            }
            Backend::Kind(spec) => {
                let p = cluster::up_kind(cfg, spec, bus.clone()).await?;
                (p.workload, p.faults, p.driver)
            }
            Backend::Existing(spec) => {
                let p = cluster::up_existing(cfg, spec, bus.clone()).await?;
                (p.workload, p.faults, p.driver)
            }
            Backend::Sim(spec) => {
                let p = sim::up(cfg, spec, &topology, bus.clone())?;
                (Box::new(p.workload), Box::new(p.sites), Box::new(p.driver))
            }
        };
        Ok(Environment { cfg: cfg.clone(), topology, bus, workload, faults, driver, vms: 0 })
    }

    /// Everything down, in order: VMs, protection, sites.
    pub async fn down(&mut self) {
        self.workload.shutdown().await;
        self.driver.shutdown().await;
        self.faults.down().await;
    }

    /// End of a run with `--keep`: the VMs and the schedulers stop, the sites stay as they are and are no
    /// longer this process's to remove (said where by the caller).
    pub async fn keep(&mut self) {
        self.workload.shutdown().await;
        self.driver.shutdown().await;
        crate::procs::forget_all();
    }

    /// `n` new VMs (an application) writing `rate` records per second each on `site`, their disks protected
    /// as the environment says, booted side by side where the workload can; returns their names once each
    /// has had its first write acknowledged. The VMs that started are returned with the first error, so
    /// that the scenario stops them.
    /// `unmirrored`: the index (from 0) of a VM whose disk is left out of replication (a negative control).
    pub async fn start_vms(&mut self, site: &str, rate: u32, n: usize, unmirrored: Option<usize>) -> (Vec<String>, Result<(), EnvError>) {
        let site = match self.topology.site(site) {
            Ok(s) => s,
            Err(e) => return (vec![], Err(e)),
        };
        let mut vms = vec![];
        let mut volumes = vec![];
        for i in 0..n {
            let vm = format!("vm{}", self.vms);
            self.vms += 1;
            let provisioned = if unmirrored == Some(i) {
                let name = &self.cfg.spec.name;
                match self.driver.provision_unmirrored(&vm, &site).await {
                    Some(r) => r,
                    None => Err(EnvError::Usage(format!("environment {name} cannot leave one VM's disk out of replication"))),
                }
            } else {
                self.driver.provision(&vm, &site).await
            };
            match provisioned {
                Ok(v) => {
                    vms.push(vm);
                    volumes.push(v);
                }
                Err(e) => {
                    self.driver.release(&vm).await;
                    return (vms, Err(e));
                }
            }
        }
        let r = self.boot_and_serve(&vms, &volumes, &site, rate, "VM").await;
        (vms, r)
    }

    /// Boots `names` (VMs, or the disks of one VM) on `site` from `volumes`, side by side where the workload
    /// can, and starts each one's protection from there; the first error, naming its `what` (VM, disk).
    async fn boot_and_serve(&mut self, names: &[String], volumes: &[crate::ports::Volume], site: &str, rate: u32, what: &str) -> Result<(), EnvError> {
        let boots: Vec<crate::ports::Boot<'_>> = names.iter().zip(volumes).map(|(vm, volume)| crate::ports::Boot { vm, site, volume }).collect();
        let started = self.workload.start_all(&boots, rate).await;
        drop(boots);
        let mut first = None;
        for (name, r) in names.iter().zip(started) {
            let r = match r {
                Ok(()) => self.driver.serving(name).await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                first.get_or_insert(EnvError::Earlier { msg: format!("{what} {name}: {e}"), cause: crate::error::Caused::cause(&e) });
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// A new VM of `disks` disks on `site` (one machine), each disk its own protected image and writer at
    /// `rate` records per second; with `independent`, each disk's snapshots are taken `interval / disks`
    /// after the previous disk's, not together. Returns the VM's name and its disks' (`vm0-disk1`, ...); the
    /// disks that started are returned with the first error, so that the scenario stops them.
    pub async fn start_disks(&mut self, site: &str, rate: u32, disks: usize, independent: bool) -> (String, Vec<String>, Result<(), EnvError>) {
        let vm = format!("vm{}", self.vms);
        self.vms += 1;
        let site = match self.topology.site(site) {
            Ok(s) => s,
            Err(e) => return (vm, vec![], Err(e)),
        };
        let (mut names, mut volumes) = (vec![], vec![]);
        for i in 0..disks {
            let disk = format!("{vm}-disk{}", i + 1);
            match self.driver.provision(&disk, &site).await {
                Ok(v) => {
                    names.push(disk);
                    volumes.push(v);
                }
                Err(e) => {
                    self.driver.release(&disk).await;
                    return (vm, names, Err(e));
                }
            }
        }
        if independent {
            let interval = self.cfg.spec.interval();
            for (i, d) in names.iter().enumerate() {
                if !self.driver.stagger(d, interval * i as u32 / disks as u32) {
                    let env = &self.cfg.spec.name;
                    return (vm, names, Err(EnvError::Usage(format!("environment {env} cannot time each disk's snapshots on its own"))));
                }
            }
        }
        if let Err(e) = self.workload.one_machine(&names) {
            return (vm, names, Err(e));
        }
        let r = self.boot_and_serve(&names, &volumes, &site, rate, "disk").await;
        (vm, names, r)
    }

    /// A new VM writing `rate` records per second on `site`, its disk protected as the environment says;
    /// returns its name once its first write is acknowledged.
    pub async fn start_vm(&mut self, site: &str, rate: u32) -> Result<String, EnvError> {
        self.start_vm_from(site, rate, false).await.map(|(vm, _)| vm)
    }

    /// As [`Environment::start_vm`]; with `golden`, the VM's disk is a clone of the environment's golden
    /// image (where the golden pattern sits on it is returned).
    pub async fn start_vm_from(&mut self, site: &str, rate: u32, golden: bool) -> Result<(String, Option<crate::golden::GoldenLayout>), EnvError> {
        let site = self.topology.site(site)?;
        let vm = format!("vm{}", self.vms);
        self.vms += 1;
        let (volume, layout) = if golden {
            let name = &self.cfg.spec.name;
            match self.driver.provision_clone(&vm, &site).await {
                Some(r) => r.map(|(v, l)| (v, Some(l)))?,
                None => return Err(EnvError::Usage(format!("environment {name} cannot clone a VM's disk from a golden image"))),
            }
        } else {
            (self.driver.provision(&vm, &site).await?, None)
        };
        self.workload.start(&vm, &site, &volume, rate).await?;
        self.driver.serving(&vm).await?;
        Ok((vm, layout))
    }
}

/// Checks that this machine has what the environment needs, before anything is started.
pub fn preflight(cfg: &EnvConfig) -> Result<(), EnvError> {
    match &cfg.spec.backend {
        Backend::Lab(_) => lab::Assets::locate().map(|_| ()),
        Backend::Kind(spec) => cluster::kind_up::preflight(cfg, spec),
        Backend::Existing(spec) => cluster::existing::preflight(cfg, spec),
        Backend::Sim(_) => Ok(()),
    }
}

/// `dr-drill env up --dry-run`: the complete ordered plan, touching nothing.
pub fn plan(cfg: &EnvConfig) -> Result<String, EnvError> {
    match &cfg.spec.backend {
        Backend::Kind(spec) => Ok(cluster::kind::render(&cluster::kind::plan(cfg, spec, &cluster::kind::HostFacts::probe(spec)))),
        Backend::Lab(_) => Ok(format!(
            "# env up --dry-run: {} (lab); nothing was touched\n  1. [host] network namespaces, one per site{}\n  2. [site] Ceph 16.2 (mon, mgr, BlueStore OSD on a sparse file) per {}\n  3. [site] {}\n",
            cfg.spec.name,
            if cfg.spec.metro().is_some() { " and the arbiter, joined by the harness's delay line" } else { ", joined by a veth pair" },
            if cfg.spec.metro().is_some() { "failure domain, one cluster stretched over them" } else { "site" },
            cfg.replication_summary()
        )),
        Backend::Existing(_) => Err(EnvError::Usage(format!("{}: existing clusters are not brought up by dr-drill (nothing to plan); `dr-drill env status` checks them", cfg.path.display()))),
        Backend::Sim(_) => Ok(format!("# env up --dry-run: {} (sim); nothing was touched\n  1. [memory] simulated sites {}, storage ({}), a probe guest per VM, on a simulated clock\n", cfg.spec.name, cfg.site_names().join(", "), cfg.replication_summary())),
    }
}

/// Removes what earlier runs of this backend left behind when they were killed outright; says what.
pub fn reap_stale(cfg: &EnvConfig) -> Vec<String> {
    match &cfg.spec.backend {
        Backend::Lab(_) => lab::reap_stale(),
        Backend::Kind(_) | Backend::Existing(_) | Backend::Sim(_) => vec![],
    }
}

/// `dr-drill env up`: an environment that outlives the command, until `env down`.
pub async fn up_detached(cfg: &EnvConfig) -> Result<Vec<String>, EnvError> {
    match &cfg.spec.backend {
        Backend::Lab(spec) => lab::state::up(cfg, spec).await,
        Backend::Kind(spec) => cluster::kind_up::up(cfg, spec).await,
        Backend::Existing(_) => Err(EnvError::Usage(format!("{}: existing clusters are not brought up or torn down by dr-drill", cfg.path.display()))),
        Backend::Sim(_) => Err(sim_lives_in_a_run(cfg)),
    }
}

fn sim_lives_in_a_run(cfg: &EnvConfig) -> EnvError {
    EnvError::Usage(format!(
        "{}: a simulated environment lives in the memory of one `dr-drill run`: there is nothing to bring up, tear down or ask",
        cfg.path.display()
    ))
}

/// `dr-drill env down`: removes what `env up` made; says what.
pub async fn down_detached(cfg: &EnvConfig) -> Result<Vec<String>, EnvError> {
    match &cfg.spec.backend {
        Backend::Lab(_) => lab::state::down(cfg).await,
        Backend::Kind(spec) => cluster::kind_up::down(cfg, spec).await,
        Backend::Existing(_) => Err(EnvError::Usage(format!("{}: existing clusters are not brought up or torn down by dr-drill", cfg.path.display()))),
        Backend::Sim(_) => Err(sim_lives_in_a_run(cfg)),
    }
}

/// `dr-drill env status`: lines on whether it is up, its sites' health and the replication in force.
pub async fn status(cfg: &EnvConfig) -> Result<Vec<String>, EnvError> {
    match &cfg.spec.backend {
        Backend::Lab(_) => lab::state::status(cfg).await,
        Backend::Kind(spec) => cluster::kind_up::status(cfg, spec).await,
        Backend::Existing(spec) => cluster::existing::status(cfg, spec).await,
        Backend::Sim(_) => Err(sim_lives_in_a_run(cfg)),
    }
}
