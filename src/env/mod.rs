//! The environment a drill runs against: its topology and one implementation of each port (workload,
//! faults with the sites' lifecycle, DR driver), chosen from the environment file. Today's backend is the
//! lab (network-namespace sites, real Ceph, rbd-mirror, QEMU); kind and existing clusters come as further
//! implementations of the same ports.

pub mod cluster;
pub mod lab;

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
        };
        Ok(Environment { cfg: cfg.clone(), topology, bus, workload, faults, driver, vms: 0 })
    }

    /// Everything down, in order: VMs, protection, sites.
    pub async fn down(&mut self) {
        self.workload.shutdown().await;
        self.driver.shutdown().await;
        self.faults.down().await;
    }

    /// A new VM writing `rate` records per second on `site`, its disk protected as the environment says;
    /// returns its name once its first write is acknowledged.
    pub async fn start_vm(&mut self, site: &str, rate: u32) -> Result<String, EnvError> {
        let site = self.topology.site(site)?;
        let vm = format!("vm{}", self.vms);
        self.vms += 1;
        let volume = self.driver.provision(&vm, &site).await?;
        self.workload.start(&vm, &site, &volume, rate).await?;
        self.driver.serving(&vm).await?;
        Ok(vm)
    }

}

/// Checks that this machine has what the environment needs, before anything is started.
pub fn preflight(cfg: &EnvConfig) -> Result<(), EnvError> {
    match &cfg.spec.backend {
        Backend::Lab(_) => lab::Assets::locate().map(|_| ()),
    }
}

/// Removes what earlier runs of this backend left behind when they were killed outright; says what.
pub fn reap_stale(cfg: &EnvConfig) -> Vec<String> {
    match &cfg.spec.backend {
        Backend::Lab(_) => lab::reap_stale(),
    }
}

/// `dr-drill env up`: an environment that outlives the command, until `env down`.
pub async fn up_detached(cfg: &EnvConfig) -> Result<Vec<String>, EnvError> {
    match &cfg.spec.backend {
        Backend::Lab(spec) => lab::state::up(cfg, spec).await,
    }
}

/// `dr-drill env down`: removes what `env up` made; says what.
pub async fn down_detached(cfg: &EnvConfig) -> Result<Vec<String>, EnvError> {
    match &cfg.spec.backend {
        Backend::Lab(_) => lab::state::down(cfg).await,
    }
}

/// `dr-drill env status`: lines on whether it is up, its sites' health and the replication in force.
pub async fn status(cfg: &EnvConfig) -> Result<Vec<String>, EnvError> {
    match &cfg.spec.backend {
        Backend::Lab(_) => lab::state::status(cfg).await,
    }
}
