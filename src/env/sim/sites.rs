//! The simulated sites' faults and lifecycle: each fault changes the world's data and is confirmed there
//! before its receipt; recovery is idempotent.

use super::guest::Guests;
use super::world::{pair, World};
use super::world::{Daemon, Shared};
use crate::clock::Wt;
use crate::error::{Cause, EnvError};
use crate::fault::{judge, Fault, LineSeen, Observed, Phase, ProcSeen, Proof, Reach, Receipt};
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
        if on && w.lie(crate::config::Misbehaviour::FaultNotApplied) {
            // the fault surface says yes and does nothing: the proof must catch it
            return Ok(());
        }
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
            // TCP carries a lossy link's data, later: modelled as nothing lost (the share is kept, as a
            // delay line keeps its shape)
            Fault::Loss { from, to, permille } => {
                w.site(from).and(w.site(to)).map_err(|e| err(from, &what, e))?;
                let key = (from.clone(), to.clone());
                if on {
                    w.loss.insert(key, (*permille).min(1000));
                } else {
                    w.loss.remove(&key);
                }
            }
            // the capabilities keep it out (a simulated site is one failure domain, without hosts)
            Fault::HostLoss { site } => return Err(EnvError::Usage(format!("the simulation has no storage hosts: cannot {what} (site {site})"))),
        }
        Ok(())
    }
}

/// The simulated world seen as the lab's witness sees a lab: the site's processes (one stands for them
/// all), its rbd-mirror, connection attempts (a site without power, or frozen, still has a kernel that
/// answers: refused), round trips and throughput from the links' shapes. Pure over the world.
pub fn observe(w: &World, fault: &Fault, rtt_before: Option<Duration>) -> Observed {
    let proc_of = |s: &super::world::SiteState| -> Vec<ProcSeen> {
        if !s.powered {
            return vec![];
        }
        vec![ProcSeen { pid: 1, name: "site".into(), state: if s.frozen { 'T' } else { 'S' } }]
    };
    let reach = |w: &World, from: &str, to: &str| -> Reach {
        let t = Duration::from_micros(300);
        if !w.wire(from, to) {
            Reach::Silent(Duration::from_millis(1200))
        } else if w.sites.get(to).is_some_and(|s| s.alive()) {
            Reach::Answered(t)
        } else {
            Reach::Refused(t)
        }
    };
    let peers = |w: &World, site: &str| -> Vec<String> { w.sites.keys().filter(|s| *s != site).cloned().collect() };
    let mut o = Observed::default();
    match fault {
        Fault::PowerLoss { site } | Fault::Freeze { site } | Fault::HostLoss { site } => {
            o.processes = w.sites.get(site).map(proc_of);
            if matches!(fault, Fault::PowerLoss { .. }) {
                o.reach = peers(w, site).into_iter().map(|p| (p.clone(), site.clone(), reach(w, &p, site))).collect();
            }
        }
        Fault::StopReplication { site } | Fault::PauseReplication { site } => {
            let s = w.sites.get(site);
            o.processes = s.map(proc_of);
            let p = s.filter(|s| s.powered).and_then(|s| match s.mirror {
                Daemon::Stopped => None,
                Daemon::Paused => Some(ProcSeen { pid: 2, name: "rbd-mirror".into(), state: 'T' }),
                Daemon::Running => Some(ProcSeen { pid: 2, name: "rbd-mirror".into(), state: 'S' }),
            });
            o.daemon = Some((format!("rbd-mirror of site {site}"), p));
        }
        Fault::Isolate { site } => {
            let pairs = peers(w, site).into_iter().flat_map(|p| [(site.clone(), p.clone()), (p, site.clone())]);
            o.reach = pairs.map(|(f, t)| (f.clone(), t.clone(), reach(w, &f, &t))).collect();
        }
        Fault::Partition { a, b } => o.reach = vec![(a.clone(), b.clone(), reach(w, a, b)), (b.clone(), a.clone(), reach(w, b, a))],
        Fault::Latency { from, to, .. } => {
            let now = w.round_trip_mean(from, to);
            o.rtt = rtt_before.zip(now);
        }
        Fault::Loss { from, to, .. } | Fault::RateLimit { from, to, .. } => {
            let key = (from.clone(), to.clone());
            o.line =
                Some(LineSeen { loss_permille: w.loss.get(&key).copied().unwrap_or(0), rate_bps: w.rate_bps.get(&key).copied(), forwarded: 0, dropped: 0 });
            o.throughput_bps = w.rate_bps.get(&key).map(|b| *b as f64);
        }
    }
    // cuts other faults still hold: a partition outlives the isolation undone before it, an isolated site
    // stays cut off from the ends of a healed partition
    let cut_by_other = |f: &str, t: &str| match fault {
        Fault::Isolate { site } => {
            let peer = if f == site { t } else { f };
            w.partitions.contains(&pair(f, t)) || w.sites.get(peer).is_some_and(|s| s.isolated)
        }
        Fault::Partition { .. } => w.sites.get(f).is_some_and(|s| s.isolated) || w.sites.get(t).is_some_and(|s| s.isolated),
        _ => false,
    };
    o.also_cut = o.reach.iter().filter(|(f, t, _)| cut_by_other(f, t)).map(|(f, t, _)| (f.clone(), t.clone())).collect();
    o
}

impl SimSites {
    /// Shows `fault` in effect (or gone) in the simulated world, once (the simulated clock does not move
    /// while it looks).
    fn prove(&self, fault: &Fault, phase: Phase, rtt_before: Option<Duration>) -> Result<Proof, EnvError> {
        let seen = observe(&self.world.lock().unwrap(), fault, rtt_before);
        judge(fault, phase, &seen).map(|seen| Proof { seen, took_ms: 0.0 }).map_err(|why| EnvError::FaultUnproven {
            fault: fault.to_string(),
            phase: phase.to_string(),
            why,
        })
    }

    fn rtt_now(&self, fault: &Fault) -> Option<Duration> {
        match fault {
            Fault::Latency { from, to, .. } => self.world.lock().unwrap().round_trip_mean(from, to),
            _ => None,
        }
    }
}

#[async_trait]
impl Faults for SimSites {
    async fn inject(&mut self, fault: Fault) -> Result<Receipt, EnvError> {
        let before = self.rtt_now(&fault);
        self.apply(&fault, true)?;
        let at = Wt::now();
        let proof = self.prove(&fault, Phase::InEffect, before).inspect_err(|_| {
            // no receipt will be handed back: whatever part of it did land is undone here
            let _ = self.apply(&fault, false);
        })?;
        self.bus.publish_at(at, crate::events::Event::Fault { fault: fault.clone(), proof: proof.seen.clone() });
        Ok(Receipt { fault, at, proof })
    }

    async fn recover(&mut self, receipt: &Receipt) -> Result<Proof, EnvError> {
        let before = self.rtt_now(&receipt.fault);
        // a latency already undone is shown gone by the link's shape alone
        let already =
            matches!(&receipt.fault, Fault::Latency { from, to, .. } if !self.world.lock().unwrap().latency.contains_key(&(from.clone(), to.clone())));
        self.apply(&receipt.fault, false)?;
        let proof = if already {
            Proof { seen: vec!["already undone: the link holds no added delay".into()], took_ms: 0.0 }
        } else {
            self.prove(&receipt.fault, Phase::Gone, before)?
        };
        self.bus.publish(crate::events::Event::Recovered { fault: receipt.fault.clone(), proof: proof.seen.clone() });
        Ok(proof)
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
