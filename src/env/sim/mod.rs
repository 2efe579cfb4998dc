//! The simulated environment (`backend: sim`): every port in memory on a simulated clock (tokio's, paused:
//! time advances only when every task waits, so a two-minute drill runs in milliseconds). The harness's own
//! code runs unchanged over it: the probe workload and its witness (over an in-memory channel), the drill
//! engine, the oracle, the reports. Only what a site, its storage and a guest would do is simulated
//! (`world`, `guest`, `sites`, `driver`), seeded, so a run is replayed from its seed.

pub mod campaign;
pub mod driver;
pub mod guest;
pub mod sites;
pub mod world;

use crate::config::{EnvConfig, SimSpec};
use crate::env::probe::ProbeWorkload;
use crate::error::EnvError;
use crate::events::Bus;
use crate::topology::Topology;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Parts {
    pub workload: ProbeWorkload,
    pub sites: sites::SimSites,
    pub driver: driver::SimDriver,
}

/// The simulated world, up at once. Needs a tokio runtime; on a paused one (`dr-drill run` starts one
/// for `backend: sim`) the simulated clock is tokio's.
pub fn up(cfg: &EnvConfig, spec: &SimSpec, topology: &Topology, bus: Bus) -> Result<Parts, EnvError> {
    let sites: Vec<String> = cfg.site_names();
    let arbiter = cfg.spec.metro().map(|m| m.arbiter.clone());
    let world = Arc::new(Mutex::new(world::World::new(&sites, arbiter, spec.seed, (spec.sync_time_min.0, spec.sync_time_max.0), &spec.misbehave)));
    let guests: guest::Guests = Arc::default();
    let launcher = guest::SimLauncher { world: world.clone(), guests: guests.clone(), disk_records: spec.disk_records(), boot_time: spec.boot_time.0 };
    let w = world.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            w.lock().unwrap().tick(crate::clock::Wt::now());
        }
    });
    let workload = ProbeWorkload::new(Box::new(launcher), cfg.spec.budgets.clone(), bus.clone());
    let sites = sites::SimSites { world: world.clone(), guests, seed: spec.seed, ticker: Some(ticker), bus: bus.clone() };
    let driver = driver::SimDriver::new(world, topology.clone(), bus, cfg.spec.budgets.clone(), cfg.spec.regional().cloned(), spec.disk_records());
    Ok(Parts { workload, sites, driver })
}
