//! The simulated sites' faults and lifecycle: each fault changes the world's data and is confirmed there
//! before its receipt; recovery is idempotent.

use super::guest::Guests;
use super::world::{Daemon, Shared};
use crate::clock::Wt;
use crate::error::{Cause, EnvError};
use crate::fault::{Fault, Receipt};
use crate::ports::{Faults, Infrastructure};
use async_trait::async_trait;
use std::time::Duration;

pub struct SimSites {
    pub world: Shared,
    pub guests: Guests,
    pub seed: u64,
    /// The task that advances replication on the simulated clock.
    pub ticker: Option<tokio::task::JoinHandle<()>>,
    /// The run's event stream: faults in effect and undone go on every VM's timeline.
    pub bus: crate::events::Bus,
}

fn err(site: &str, what: &str, e: String) -> EnvError {
    EnvError::Site { site: site.into(), what: what.into(), detail: e, cause: Cause::Harness }
}

impl SimSites {
    fn apply(&mut self, fault: &Fault, on: bool) -> Result<(), EnvError> {
        let mut w = self.world.lock().unwrap();
        let what = fault.to_string();
        match fault {
            Fault::PowerLoss { site } => {
                w.site_mut(site).map_err(|e| err(site, &what, e))?.powered = !on;
                if on {
                    // every process of the site dies at once, its VMs among them
                    for (s, t) in self.guests.lock().unwrap().iter() {
                        if s == site {
                            t.abort();
                        }
                    }
                } else {
                    w.site_mut(site).map_err(|e| err(site, &what, e))?.frozen = false;
                }
            }
            Fault::Freeze { site } => w.site_mut(site).map_err(|e| err(site, &what, e))?.frozen = on,
            Fault::StopReplication { site } => w.site_mut(site).map_err(|e| err(site, &what, e))?.mirror = if on { Daemon::Stopped } else { Daemon::Running },
            Fault::PauseReplication { site } => w.site_mut(site).map_err(|e| err(site, &what, e))?.mirror = if on { Daemon::Paused } else { Daemon::Running },
            Fault::Isolate { site } => w.site_mut(site).map_err(|e| err(site, &what, e))?.isolated = on,
            Fault::Partition { a, b } => {
                w.site(a).and(w.site(b)).map_err(|e| err(a, &what, e))?;
                w.partition(a, b, on);
            }
            Fault::Latency { from, to, delay, jitter } => {
                w.site(from).and(w.site(to)).map_err(|e| err(from, &what, e))?;
                let key = (from.clone(), to.clone());
                if on {
                    w.latency.insert(key, (delay.0, jitter.0));
                } else {
                    w.latency.remove(&key);
                }
            }
            Fault::RateLimit { from, to, bps } => {
                let key = (from.clone(), to.clone());
                if on {
                    w.rate_bps.insert(key, *bps);
                } else {
                    w.rate_bps.remove(&key);
                }
            }
            // TCP carries a lossy link's data, later: modelled as nothing lost
            Fault::Loss { .. } => {}
            // the capabilities keep it out (a simulated site is one failure domain, without hosts)
            Fault::HostLoss { site } => return Err(EnvError::Usage(format!("the simulation has no storage hosts: cannot {what} (site {site})"))),
        }
        Ok(())
    }
}

#[async_trait]
impl Faults for SimSites {
    async fn inject(&mut self, fault: Fault) -> Result<Receipt, EnvError> {
        self.apply(&fault, true)?;
        let at = Wt::now();
        self.bus.publish_at(at, crate::events::Event::Fault { fault: fault.clone() });
        Ok(Receipt { fault, at })
    }

    async fn recover(&mut self, receipt: &Receipt) -> Result<(), EnvError> {
        self.apply(&receipt.fault, false)?;
        self.bus.publish(crate::events::Event::Recovered { fault: receipt.fault.clone() });
        Ok(())
    }
}

#[async_trait]
impl Infrastructure for SimSites {
    fn describe(&self) -> String {
        let w = self.world.lock().unwrap();
        let mode = if w.metro() { "Metro-DR: one cluster, a replica per data site, an arbiter" } else { "Regional-DR: snapshot mirroring" };
        let lies = if w.lies.is_empty() { "honest storage".to_string() } else { format!("storage that lies on purpose: {:?}", w.lies) };
        format!(
            "simulated sites {} ({mode}; {lies}; seed {}): every port in memory, on a simulated clock",
            w.sites.keys().cloned().collect::<Vec<_>>().join(", "),
            self.seed
        )
    }

    fn kept_at(&self) -> String {
        "nothing to keep: the simulation lives in this process's memory".into()
    }

    /// The simulated world as it stands: each site's state (power, freeze, isolation, rbd-mirror), each
    /// image's copies and snapshots, the links' shapes, the storage's lies and the seed.
    async fn gather(&mut self, dir: &std::path::Path, _since: Wt) -> crate::ports::Gathered {
        let text = {
            let w = self.world.lock().unwrap();
            let mut t = format!("seed {}\nlies {:?}\nlatency {:?}\nrate {:?}\n\n", self.seed, w.lies, w.latency, w.rate_bps);
            t.push_str(&format!("{:#?}\n\n", w.sites));
            for (name, image) in &w.images {
                // the image's shape, not its data (its blocks are the records the verdicts judged)
                t.push_str(&format!("image {name}{}\n", if image.golden { " (a clone of the golden image)" } else { "" }));
                for (site, c) in &image.copies {
                    t.push_str(&format!(
                        "  copy on {site}: {} blocks, primary {}, snapshots complete {:?}, diverged {}, stale primary {}, version {}\n",
                        c.blocks.len(),
                        c.primary,
                        c.complete,
                        c.diverged,
                        c.stale_primary,
                        c.version
                    ));
                }
                for (site, snaps) in &image.snaps {
                    let list: Vec<String> = snaps.iter().map(|s| format!("{}@{:.1}s", s.id, s.taken.ms() / 1e3)).collect();
                    t.push_str(&format!("  snapshots taken on {site}: {}\n", list.join(", ")));
                }
            }
            t
        };
        let p = dir.join("sim-world.txt");
        match std::fs::write(&p, text) {
            Ok(()) => crate::ports::Gathered { items: vec![format!("{}: the simulated sites and images as they stand", p.display())], missing: vec![] },
            Err(e) => crate::ports::Gathered { items: vec![], missing: vec![format!("{}: {e}", p.display())] },
        }
    }

    fn rss_bytes(&self) -> u64 {
        0
    }

    async fn round_trips(&mut self, from: &str, to: &str, samples: u32) -> Result<Vec<Duration>, EnvError> {
        let mut v = vec![];
        for _ in 0..samples {
            let rtt = self.world.lock().unwrap().round_trip(from, to).map_err(|e| err(from, &format!("measure the round trip to site {to}"), e))?;
            tokio::time::sleep(rtt).await;
            v.push(rtt);
        }
        Ok(v)
    }

    async fn down(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        for (_, t) in self.guests.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}
