//! The environment a drill runs against: one type over the backends. Steps, the runner and the reports
//! talk to `Environment`; each backend implements the same operations its own way. Today: the lab
//! (namespaces, real Ceph, rbd-mirror, QEMU). The kind and existing-cluster backends slot in as variants
//! whose DR actions go through Ramen's DRPlacementControl instead of `rbd mirror image promote`.

pub mod lab;

use crate::config::{Backend, EnvConfig};
use crate::dr::{self, Evidence, Outcome};
use crate::fault::{Fault, Receipt};
use lab::{Lab, LabError};
use std::time::Duration;

pub enum Environment {
    Lab(Lab),
}

impl Environment {
    /// Brings the environment described by `cfg` up.
    pub async fn up(cfg: &EnvConfig) -> Result<Environment, LabError> {
        match cfg.spec.backend {
            Backend::Lab => Ok(Environment::Lab(Lab::up(cfg).await?)),
        }
    }

    pub fn cfg(&self) -> &EnvConfig {
        match self {
            Environment::Lab(l) => &l.cfg,
        }
    }

    /// One line on what is up, for the run's output.
    pub fn describe(&self) -> String {
        match self {
            Environment::Lab(l) => format!("lab {} up in {:.1}s", l.id, l.up_time.as_secs_f64()),
        }
    }

    /// Where a kept environment is, for `--keep`.
    pub fn kept_at(&self) -> String {
        match self {
            Environment::Lab(l) => format!(
                "lab {} in {}, namespaces {}",
                l.id,
                l.root().display(),
                l.sites.iter().map(|s| s.ns.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    pub async fn down(&mut self) {
        match self {
            Environment::Lab(l) => l.down().await,
        }
    }

    /// Index of a named site (errors name the environment's sites).
    pub fn site_index(&self, name: &str) -> Result<usize, LabError> {
        match self {
            Environment::Lab(l) => l.site_index(name),
        }
    }

    pub async fn inject(&mut self, f: Fault) -> Result<Receipt, LabError> {
        match self {
            Environment::Lab(l) => l.inject(f).await,
        }
    }

    pub async fn recover(&mut self, r: &Receipt) -> Result<(), LabError> {
        match self {
            Environment::Lab(l) => l.recover(r).await,
        }
    }

    /// Starts a VM writing `rate` records per second on `site`; returns its name.
    pub async fn start_vm(&mut self, site: &str, rate: u32) -> Result<String, LabError> {
        let i = self.site_index(site)?;
        match self {
            Environment::Lab(l) => l.start_vm(i, rate).await,
        }
    }

    pub async fn wait_acks(&mut self, vm: &str, n: u64, deadline: Duration) -> Result<(), LabError> {
        match self {
            Environment::Lab(l) => l.wait_acks(vm, n, deadline).await,
        }
    }

    pub fn writing(&mut self, vm: &str) -> Result<bool, LabError> {
        match self {
            Environment::Lab(l) => l.writing(vm),
        }
    }

    /// Records per second the VM writes.
    pub fn rate(&mut self, vm: &str) -> Result<u32, LabError> {
        match self {
            Environment::Lab(l) => Ok(l.slot(vm)?.rate),
        }
    }

    /// The site where the VM's disk is primary.
    pub fn primary_site(&mut self, vm: &str) -> Result<String, LabError> {
        match self {
            Environment::Lab(l) => {
                let i = l.slot(vm)?.primary;
                Ok(l.sites[i].name.clone())
            }
        }
    }

    /// Relocates the VM; `barrier: false` promotes without waiting for the sync barrier (negative control).
    pub async fn relocate(&mut self, vm: &str, to: &str, barrier: bool) -> Result<Outcome, LabError> {
        let to = self.site_index(to)?;
        match self {
            Environment::Lab(l) => dr::relocate(l, vm, to, barrier).await,
        }
    }

    pub async fn failover(&mut self, vm: &str, to: &str, fault: Option<&Receipt>) -> Result<Outcome, LabError> {
        let to = self.site_index(to)?;
        match self {
            Environment::Lab(l) => dr::failover(l, vm, to, fault).await,
        }
    }

    /// Negative control: damages record `seq` on `site`, re-verifies, and updates `evidence` to judge the
    /// damaged disk.
    pub async fn corrupt_record(&mut self, vm: &str, site: &str, seq: u64, evidence: Option<&mut Evidence>) -> Result<(), LabError> {
        let i = self.site_index(site)?;
        match self {
            Environment::Lab(l) => {
                let (scan, boots) = l.corrupt_record(vm, i, seq).await?;
                if let Some(e) = evidence {
                    e.scan = scan;
                    e.history = dr::history(&boots);
                    // the STOP now expected is the last graceful stop's
                    e.stop_seq = boots.iter().rev().find_map(|b| b.stopped.map(|s| s.1));
                }
                Ok(())
            }
        }
    }

    /// End of a scenario: the VM stops and its evidence is kept.
    pub async fn stop_vm(&mut self, vm: &str) {
        match self {
            Environment::Lab(l) => l.stop_vm(vm).await,
        }
    }
}
