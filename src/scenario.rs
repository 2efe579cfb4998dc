//! One scenario's part of a drill: its VM, the faults it injected (with their receipts), its DR action and
//! the verdicts reached. Every sentence of a feature file is one method here; the step definitions only
//! translate. A failing method records its cause (the system under test, or the harness and its input)
//! so that the run's exit code is decided by data, not by text.

use crate::clock::Wt;
use crate::config::Replication;
use crate::drill::{self, Outcome};
use crate::error::{Cause, Caused, EnvError};
use crate::fault::{Fault, Receipt, Undone};
use crate::lint::{self, rules, LintError, Severity};
use crate::oracle::{Conclusion, Verdict};
use crate::report::{RoundTrip, ScenarioRecord};
use crate::session::Session;
use crate::timeline::Segment;
use crate::units::Dur;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The scenario does not fit the environment it runs against.
    #[error("{0}")]
    Mismatch(String),
    /// A sentence came before what it needs (no VM yet, no DR action yet).
    #[error("{0}")]
    Order(String),
    /// The system under test did not do what the sentence expects.
    #[error("{0}")]
    Expectation(String),
    #[error("{msg}")]
    Verdict { msg: String, conclusion: Conclusion },
    #[error(transparent)]
    Lint(#[from] LintError),
    /// Several VMs of a fleet failed, each for its own reason (each tracked as it failed).
    #[error("{msg}")]
    Fleet { msg: String, cause: Cause },
}

impl Caused for StepError {
    fn cause(&self) -> Cause {
        match self {
            StepError::Env(e) => e.cause(),
            StepError::Expectation(_) => Cause::System,
            StepError::Fleet { cause, .. } => *cause,
            StepError::Verdict { conclusion: Conclusion::Failed, .. } => Cause::System,
            StepError::Verdict { .. } | StepError::Mismatch(_) | StepError::Order(_) | StepError::Lint(_) => Cause::Harness,
        }
    }
}

pub struct Scenario {
    session: Arc<Session>,
    pub started: Wt,
    /// The VM the sentences act on (the newest one started).
    vm: Option<String>,
    /// Every VM the scenario started: each is stopped and released when it ends.
    vms: Vec<String>,
    /// The VMs the "the VMs ..." sentences act on (an application, started as one).
    fleet: Vec<String>,
    /// The fleet's VM whose disk its protection leaves out (a negative control): nothing of it is awaited.
    left_out: Option<String>,
    /// A VM of several disks (its name): `fleet` holds its disks, each judged on its own, and the "the VM
    /// ..." sentences act on all of them as one VM.
    disks_of: Option<String>,
    /// VMs whose disk is a clone of the golden image, and where its pattern sits.
    golden: BTreeMap<String, crate::golden::GoldenLayout>,
    /// The outcomes (by index) of the last DR action: one, or one per VM of a fleet.
    last_action: Vec<usize>,
    /// Each DR action over a fleet, for the summary (per VM verdicts, the fleet's spread).
    fleet_actions: Vec<serde_json::Value>,
    receipts: Vec<Receipt>,
    /// Receipts (by index) the scenario itself undid (a thaw, a healed partition, a reconnection), and when.
    undone: Vec<Undone>,
    /// Every DR action of the scenario, in order (the sentences judge the last).
    outcomes: Vec<Outcome>,
    /// Sites that came back, and how they were repaired.
    repairs: Vec<drill::Repair>,
    verdicts: Vec<(String, Verdict)>,
    rtts: Vec<RoundTrip>,
    causes: Vec<Cause>,
    /// The check that failed the scenario was itself inconclusive (proved nothing either way).
    inconclusive: bool,
    harness_errors: Vec<String>,
    /// Data-site partitions judged against a stall budget (receipt index and the report).
    partitions: Vec<(usize, crate::stretch::PartitionReport)>,
    /// Where the VM ran when each fault was injected (receipt index, site).
    vm_site_at: Vec<(usize, String)>,
}

/// The earliest outage of `site` still in force (its power lost, frozen, cut off, partitioned from a peer):
/// the fault a failover from it counts from. Outages undone before (`undone`: receipt index and when) are
/// left out, however early they were. Pure.
pub fn outage_in_force(receipts: &[Receipt], undone: &[Undone], site: &str) -> Option<Receipt> {
    receipts
        .iter()
        .enumerate()
        .filter(|(i, r)| !undone.iter().any(|u| u.receipt == *i) && r.fault.takes(site))
        .min_by_key(|(_, r)| r.at)
        .map(|(_, r)| r.clone())
}

/// The failures of some of a fleet's `n` VMs as one (each tracked as it came): none passes, one is itself,
/// several are told together (each by its line), the worst cause deciding.
fn one_of(mut errs: Vec<(String, StepError)>, n: usize) -> Result<(), StepError> {
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.pop().expect("one").1),
        k => {
            let cause = errs.iter().map(|(_, e)| e.cause()).max().expect("some");
            let lines: Vec<String> = errs.into_iter().map(|(l, _)| l).collect();
            Err(StepError::Fleet { msg: format!("{k} of {n} VMs failed: {}", lines.join("; ")), cause })
        }
    }
}

/// A VM's write rate must be 1..1000 records per second (what the probe and the disk hold).
fn rate_in_range(rate: u32) -> Result<(), StepError> {
    if (1..=1000).contains(&rate) {
        Ok(())
    } else {
        Err(StepError::Mismatch(format!("a rate of {rate} records per second is outside 1..1000")))
    }
}

/// How a site that comes back is repaired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repairing {
    /// As the DR operator does (Regional-DR: demote and resync; Metro-DR: unfence, replicas clean).
    Full,
    /// Negative control: the stale primary demoted but not resynced.
    WithoutResync,
    /// Negative control: the site back, nothing repaired (a stale primary stays primary).
    Skipped,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scenario(vm {:?}, {} faults)", self.vm, self.receipts.len())
    }
}

type R = Result<(), StepError>;

impl Scenario {
    pub fn new(session: Arc<Session>) -> Scenario {
        Scenario {
            session,
            started: Wt::now(),
            vm: None,
            vms: vec![],
            fleet: vec![],
            left_out: None,
            disks_of: None,
            golden: BTreeMap::new(),
            last_action: vec![],
            fleet_actions: vec![],
            receipts: vec![],
            undone: vec![],
            outcomes: vec![],
            repairs: vec![],
            verdicts: vec![],
            rtts: vec![],
            causes: vec![],
            inconclusive: false,
            harness_errors: vec![],
            partitions: vec![],
            vm_site_at: vec![],
        }
    }

    /// Records the cause of a failure, and whether the failing check itself was inconclusive.
    fn track<T>(&mut self, r: Result<T, StepError>) -> Result<T, StepError> {
        if let Err(e) = &r {
            self.causes.push(e.cause());
            self.inconclusive = matches!(e, StepError::Verdict { conclusion: Conclusion::Inconclusive, .. });
        }
        r
    }

    /// Is the receipt at `i` still in force (not undone by the scenario)?
    fn in_force(&self, i: usize) -> bool {
        !self.undone.iter().any(|u| u.receipt == i)
    }

    fn vm(&self) -> Result<String, StepError> {
        self.vm.clone().ok_or_else(|| {
            if self.fleet.is_empty() {
                StepError::Order("no VM in this scenario yet: start with \"a VM writing N records per second on site X\"".into())
            } else {
                StepError::Order(format!("this scenario runs {} VMs as one application: say \"the VMs ...\"", self.fleet.len()))
            }
        })
    }

    /// The VMs the scenario's sentences act on: its fleet, or its one VM.
    fn targets(&self) -> Result<Vec<String>, StepError> {
        if self.vm.is_none() && !self.fleet.is_empty() {
            return Ok(self.fleet.clone());
        }
        self.vm().map(|vm| vec![vm])
    }

    /// The fleet the "the VMs ..." sentences act on.
    fn the_fleet(&self) -> Result<Vec<String>, StepError> {
        if self.fleet.is_empty() {
            return Err(StepError::Order("no VMs in this scenario yet: start with \"N VMs writing R records per second on site X\"".into()));
        }
        Ok(self.fleet.clone())
    }

    /// The one outcome of the last DR action (a sentence that judges one VM).
    fn outcome(&self) -> Result<&Outcome, StepError> {
        match self.last()?.as_slice() {
            [o] => Ok(o),
            all => Err(StepError::Order(format!("the last DR action moved {} VMs: this sentence judges one VM", all.len()))),
        }
    }

    /// Every outcome of the last DR action (one, or one per VM of a fleet).
    fn last(&self) -> Result<Vec<&Outcome>, StepError> {
        let all: Vec<&Outcome> = self.last_action.iter().filter_map(|&i| self.outcomes.get(i)).collect();
        if all.is_empty() {
            return Err(StepError::Order("no DR action ran in this scenario: relocate or fail over the VM first".into()));
        }
        Ok(all)
    }

    /// "a Regional-DR environment with sites A and B": the environment must be that, then it comes up.
    pub async fn regional_env(&mut self, a: &str, b: &str) -> R {
        let r = self.env_of(a, b, "Regional-DR", |r| matches!(r, Replication::Regional(_))).await;
        self.track(r)
    }

    /// "a Metro-DR environment with sites A and B".
    pub async fn metro_env(&mut self, a: &str, b: &str) -> R {
        let r = self.env_of(a, b, "Metro-DR", |r| matches!(r, Replication::Metro(_))).await;
        self.track(r)
    }

    /// "a Metro-DR environment without stretch mode with sites A and B": the deliberate misconfiguration a
    /// negative control runs on.
    pub async fn metro_env_without_stretch(&mut self, a: &str, b: &str) -> R {
        let r = self.env_of(a, b, "Metro-DR without stretch mode", |r| matches!(r, Replication::Metro(m) if !m.stretch_mode)).await;
        self.track(r)
    }

    async fn env_of(&mut self, a: &str, b: &str, kind: &str, is: impl Fn(&Replication) -> bool) -> R {
        let cfg = &self.session.cfg;
        let have = cfg.site_names();
        if have != [a, b] {
            return Err(StepError::Mismatch(format!(
                "the scenario names sites {a} and {b}, environment {} ({}) has {}",
                cfg.spec.name,
                cfg.path.display(),
                have.join(" and ")
            )));
        }
        if !is(&cfg.spec.replication) {
            return Err(StepError::Mismatch(format!("the scenario needs {kind}, environment {} is {}", cfg.spec.name, cfg.replication_summary())));
        }
        let _env = self.session.env().await?;
        Ok(())
    }

    pub async fn interval_is(&mut self, d: Duration) -> R {
        let cfg = &self.session.cfg;
        let have = cfg.spec.interval();
        let r = if have == d {
            Ok(())
        } else {
            Err(StepError::Mismatch(format!("the scenario needs a replication interval of {}, environment {} has {}", Dur(d), cfg.path.display(), Dur(have))))
        };
        self.track(r)
    }

    pub async fn start_vm(&mut self, rate: u32, site: &str) -> R {
        self.start_vm_from(rate, site, false).await
    }

    /// "a VM writing ...", its disk new or (`golden`) cloned from the environment's golden image.
    pub async fn start_vm_from(&mut self, rate: u32, site: &str, golden: bool) -> R {
        let r = async {
            rate_in_range(rate)?;
            Ok(self.session.env().await?.start_vm_from(site, rate, golden).await?)
        }
        .await;
        let (vm, layout) = self.track(r)?;
        if let Some(l) = layout {
            self.golden.insert(vm.clone(), l);
        }
        self.vms.push(vm.clone());
        self.vm = Some(vm);
        Ok(())
    }

    /// The golden span of `vm`'s disk as `site` reads it, judged against the golden image's pattern (or why
    /// it could not be read).
    async fn read_golden(&mut self, vm: &str, site: &str, layout: crate::golden::GoldenLayout) -> Result<crate::golden::GoldenCheck, String> {
        let mut env = self.session.env().await.map_err(|e| e.to_string())?;
        let image = env.driver.volume(vm).map_err(|e| e.to_string())?.name;
        match env.driver.read_golden(vm, site).await {
            Some(Ok(read)) => Ok(crate::golden::judge(layout, site, &image, &read)),
            Some(Err(e)) => Err(e.to_string()),
            None => Err(format!("environment {} cannot read a clone's golden blocks", env.cfg.spec.name)),
        }
    }

    /// The golden blocks of each VM of the last DR action cloned from the golden image, as its new site read
    /// them when the action ended, judged against the golden image's pattern; a read that failed is the
    /// storage's failure to serve them.
    pub fn golden_intact(&mut self) -> R {
        let r = self.last().and_then(|all| {
            let cloned: Vec<&Outcome> = all.into_iter().filter(|o| self.golden.contains_key(&o.vm)).collect();
            if cloned.is_empty() {
                return Err(StepError::Order(
                    "the last DR action moved no VM cloned from a golden image: start with \"a VM cloned from a golden image writing N records per second on site X\"".into(),
                ));
            }
            Ok(cloned
                .into_iter()
                .map(|o| {
                    let v = match &o.golden {
                        Some(Ok(check)) => crate::oracle::judge_golden(check.clone()),
                        Some(Err(e)) => Verdict {
                            conclusion: Conclusion::Failed,
                            why: vec![format!("the golden blocks could not be read on site {} after the {}: {e}", o.to, o.kind)],
                            ..Default::default()
                        },
                        None => Verdict {
                            conclusion: Conclusion::Inconclusive,
                            why: vec![format!("the golden blocks were not read when the {} ended", o.kind)],
                            ..Default::default()
                        },
                    };
                    (o.vm.clone(), v)
                })
                .collect())
        });
        let vs = self.track(r)?;
        self.conclude_each("the golden image's data intact", vs)
    }

    /// "N VMs writing R records per second on site X": one application of `n` VMs, started side by side.
    /// `unmirrored`: the VM (from 1) whose disk the application's protection leaves out (a negative control).
    pub async fn start_fleet(&mut self, n: u32, rate: u32, site: &str, unmirrored: Option<u32>) -> R {
        let r = async {
            rate_in_range(rate)?;
            if !(1..=64).contains(&n) {
                return Err(StepError::Mismatch(format!("a fleet of {n} VMs is outside 1..64")));
            }
            if !self.fleet.is_empty() || self.vm.is_some() {
                return Err(StepError::Order("this scenario has its VMs already: one application per scenario".into()));
            }
            if let Some(i) = unmirrored.filter(|i| !(1..=n).contains(i)) {
                return Err(StepError::Mismatch(format!("the application has VMs 1 to {n}, not {i}")));
            }
            let mut env = self.session.env().await?;
            if unmirrored.is_some() && !env.cfg.spec.disposable {
                return Err(EnvError::NotDisposable { what: "leave a VM's disk out of replication".into(), env: env.cfg.spec.name.clone() }.into());
            }
            let (vms, r) = env.start_vms(site, rate, n as usize, unmirrored.map(|i| i as usize - 1)).await;
            drop(env);
            self.vms.extend(vms.iter().cloned());
            self.fleet = vms;
            r.map_err(StepError::from)
        }
        .await;
        let vms = self.fleet.join(", ");
        let left_out = unmirrored.and_then(|i| self.fleet.get(i as usize - 1).cloned());
        self.left_out = left_out.clone();
        self.track(r)?;
        let left_out = left_out.map(|vm| format!(" ({vm}'s disk left out of mirroring)")).unwrap_or_default();
        self.session.bus.note(format!("{n} VMs writing on site {site}: {vms}{left_out}"));
        Ok(())
    }

    /// "a VM with N disks writing R records per second on site X": one machine, each disk its own protected
    /// image and writer; with `independent` the disks' snapshots are not taken together (each a fraction of
    /// an interval after the previous disk's), the case Ceph 16's lack of group mirroring leaves to chance.
    pub async fn start_vm_disks(&mut self, disks: u32, rate: u32, site: &str, independent: bool) -> R {
        let r = async {
            rate_in_range(rate)?;
            if !(2..=8).contains(&disks) {
                return Err(StepError::Mismatch(format!("a VM of {disks} disks is outside 2..8 (one disk: \"a VM writing ...\")")));
            }
            if !self.fleet.is_empty() || self.vm.is_some() {
                return Err(StepError::Order("this scenario has its VM already: one VM of several disks per scenario".into()));
            }
            let mut env = self.session.env().await?;
            let (vm, names, r) = env.start_disks(site, rate, disks as usize, independent).await;
            drop(env);
            self.vms.extend(names.iter().cloned());
            self.fleet = names;
            self.disks_of = Some(vm);
            r.map_err(StepError::from)
        }
        .await;
        self.track(r)?;
        let how = if independent { ", each disk snapshotted on its own" } else { ", its disks snapshotted together" };
        let vm = self.disks_of.clone().unwrap_or_default();
        self.session.bus.note(format!("VM {vm} with {disks} disks writing on site {site}: {}{how}", self.fleet.join(", ")));
        Ok(())
    }

    /// Waits for `n` acknowledged records: twice the time the rate needs, plus slack for a slow machine.
    pub async fn written(&mut self, n: u64) -> R {
        let r = async {
            let vms = if self.disks_of.is_some() { self.targets()? } else { vec![self.vm()?] };
            let mut env = self.session.env().await?;
            for vm in vms {
                let rate = env.workload.rate(&vm)?;
                let deadline = Duration::from_secs_f64(n as f64 / rate as f64 * 2.0 + 30.0);
                env.workload.wait_acks(&vm, n, deadline).await?;
            }
            Ok(())
        }
        .await;
        self.track(r)
    }

    /// Runs for `n` replication intervals of the environment (so one feature fits any declared interval).
    pub async fn runs_for_intervals(&mut self, n: u32) -> R {
        let interval = self.session.cfg.spec.interval();
        if interval.is_zero() {
            let r = Err(StepError::Mismatch(format!(
                "environment {} replicates synchronously: it has no replication interval to run for",
                self.session.cfg.spec.name
            )));
            return self.track(r);
        }
        self.runs_for(interval * n).await
    }

    pub async fn runs_for(&mut self, d: Duration) -> R {
        let r = async {
            let vms = self.targets()?;
            tokio::time::sleep(d).await;
            let env = self.session.env().await?;
            for vm in vms {
                if !env.workload.writing(&vm)? {
                    return Err(StepError::Expectation(format!("VM {vm} stopped while it should have been writing")));
                }
            }
            Ok(())
        }
        .await;
        self.track(r)
    }

    pub async fn inject(&mut self, f: Fault) -> R {
        let vm = self.vm.clone();
        let r = async {
            let mut env = self.session.env().await?;
            let site = vm.and_then(|vm| env.driver.primary(&vm).ok());
            Ok((env.faults.inject(f).await?, site))
        }
        .await;
        let (receipt, site) = self.track(r)?;
        if let Some(site) = site {
            self.vm_site_at.push((self.receipts.len(), site));
        }
        self.receipts.push(receipt);
        Ok(())
    }

    /// Injects the same kind of fault both ways between two sites.
    pub async fn inject_both_ways(&mut self, a: &str, b: &str, fault: impl Fn(&str, &str) -> Fault) -> R {
        self.inject(fault(a, b)).await?;
        self.inject(fault(b, a)).await
    }

    /// Recovers the newest fault of the scenario still in force that is `fault` (a partition heals, either
    /// way it is named; a site thaws; a site is reconnected).
    pub async fn recover(&mut self, fault: Fault) -> R {
        let found = (0..self.receipts.len()).rev().find(|&i| self.in_force(i) && self.receipts[i].fault.same_as(&fault));
        let r = async {
            let i = found.ok_or_else(|| StepError::Order(format!("nothing to undo: \"{fault}\" was not done in this scenario, or is undone already")))?;
            let proof = self.session.env().await?.faults.recover(&self.receipts[i]).await?;
            Ok((i, proof))
        }
        .await;
        let (receipt, proof) = self.track(r)?;
        self.undone.push(Undone { receipt, at: Wt::now(), proof });
        Ok(())
    }

    /// Measures the round-trip time between two sites (both ways, 10 handshakes each) and checks its
    /// median against `limit`; the figures go to the report whatever the outcome.
    pub async fn round_trip_at_most(&mut self, a: &str, b: &str, limit: Duration) -> R {
        let r = async {
            let mut env = self.session.env().await?;
            let mut out = vec![];
            for (from, to) in [(a, b), (b, a)] {
                let mut v = env.faults.round_trips(from, to, 10).await?;
                v.sort();
                out.push(RoundTrip::new(from, to, &v));
            }
            Ok::<_, StepError>(out)
        }
        .await;
        let measured = self.track(r)?;
        for t in &measured {
            self.session.bus.note(format!("round trip {} -> {}: median {:.2} ms, max {:.2} ms ({} samples)", t.from, t.to, t.median_ms, t.max_ms, t.samples));
        }
        let worst = measured.iter().map(|t| t.median_ms).fold(0.0, f64::max);
        self.rtts.extend(measured);
        let r = if worst > limit.as_secs_f64() * 1e3 {
            Err(StepError::Expectation(format!("the round-trip time between sites {a} and {b} is {worst:.2} ms (median), more than {}", Dur(limit))))
        } else {
            Ok(())
        };
        self.track(r)
    }

    /// Waits until `site` holds everything the VM had acknowledged when the sentence began (the driver's
    /// proof: a mirror snapshot taken since then complete there, or synchronous replicas all clean).
    pub async fn replicated_to(&mut self, site: &str) -> R {
        let since = Wt::now();
        let r = async {
            let vms = self.targets()?;
            let mut env = self.session.env().await?;
            let site = env.topology.site(site)?;
            for vm in vms {
                if self.left_out.as_ref() == Some(&vm) {
                    self.session.bus.note(format!("replicated: VM {vm} is left out of mirroring: not awaited"));
                    continue;
                }
                let proof = env.driver.replicated(&vm, &site, since).await?;
                self.session.bus.note(format!("replicated: {proof}, +{:.1}s", Wt::now().since(since).as_secs_f64()));
            }
            Ok(())
        }
        .await;
        self.track(r)
    }

    /// Replication to `site` resumes: the scenario's pause of it is recovered.
    pub async fn resume_replication(&mut self, site: &str) -> R {
        self.recover(Fault::PauseReplication { site: site.to_string() }).await
    }

    /// When the previous DR action began: the next one is judged on the writers since then.
    fn previous_action(&self) -> Option<Wt> {
        self.outcomes.last().map(|o| o.timeline.t0)
    }

    pub async fn relocate(&mut self, to: &str, barrier: bool) -> R {
        if self.disks_of.is_some() {
            if !barrier {
                return self.track(Err(StepError::Mismatch("a relocate without the sync barrier is a control for a VM of one disk".into())));
            }
            return self.relocate_fleet(to).await;
        }
        let since = self.previous_action();
        let r = async {
            let vm = self.vm()?;
            let mut env = self.session.env().await?;
            Ok(drill::relocate(&mut env, &vm, to, barrier, since).await?)
        }
        .await;
        let o = self.track(r)?;
        self.session.bus.note(format!("relocate {} -> {}: {}", o.from, o.to, o.timeline.render()));
        self.last_action.clear();
        self.judge_action(o).await
    }

    /// The fleet relocated at once (an application's planned move), each VM judged on its own.
    pub async fn relocate_fleet(&mut self, to: &str) -> R {
        let since = self.previous_action();
        let r = async {
            let vms = self.the_fleet()?;
            let mut env = self.session.env().await?;
            Ok(drill::relocate_all(&mut env, &vms, to, true, since).await?)
        }
        .await;
        let f = self.track(r)?;
        self.judge_fleet(crate::timeline::ActionKind::Relocate, f).await
    }

    /// The fleet failed over at once (its site lost), each VM judged on its own.
    pub async fn failover_fleet(&mut self, to: &str) -> R {
        let since = self.previous_action();
        let r = async {
            let vms = self.the_fleet()?;
            let mut env = self.session.env().await?;
            let from = env.driver.primary(&vms[0])?;
            let fault = outage_in_force(&self.receipts, &self.undone, &from);
            Ok(drill::failover_all(&mut env, &vms, to, fault.as_ref(), drill::Fencing::FULL, since).await?)
        }
        .await;
        let mut f = self.track(r)?;
        self.receipts.append(&mut f.receipts);
        self.judge_fleet(crate::timeline::ActionKind::Failover, f).await
    }

    /// Each VM of a fleet's action judged against the action's promise (and roles checked) on its own; a
    /// VM whose part failed is named with its error. Fails naming every VM that failed, the others passing.
    async fn judge_fleet(&mut self, kind: crate::timeline::ActionKind, f: drill::FleetOutcome) -> R {
        self.last_action.clear();
        let mut failed: Vec<(String, String)> = vec![];
        let mut errs: Vec<(String, StepError)> = vec![];
        let names = self.fleet.clone();
        let brought: Vec<&str> = names.iter().zip(&f.outcomes).filter(|(_, o)| o.is_ok()).map(|(vm, _)| vm.as_str()).collect();
        let roles = match self.session.env().await {
            Ok(mut env) => env.driver.roles_all(&brought).await,
            Err(e) => brought.iter().map(|_| Err(e.again())).collect(),
        };
        let mut roles = roles.into_iter();
        for (vm, o) in names.iter().zip(f.outcomes) {
            let r = match o {
                Ok(o) => {
                    self.session.bus.note(format!("{kind} {} -> {} of VM {vm}: {}", o.from, o.to, o.timeline.render()));
                    let r = roles.next().unwrap_or_else(|| Err(EnvError::Usage(format!("no roles read for VM {vm}")))).map_err(StepError::from);
                    self.judge_with_roles(o, r).await
                }
                Err(e) => {
                    let cause = e.cause();
                    self.track(Err(StepError::Env(EnvError::Earlier { msg: format!("VM {vm}: {e}"), cause })))
                }
            };
            if let Err(e) = r {
                failed.push((vm.clone(), e.to_string()));
                errs.push((format!("VM {vm}: {e}"), e));
            }
        }
        let outs: Vec<&Outcome> = self.last_action.iter().map(|&i| &self.outcomes[i]).collect();
        let (from, to) = outs.first().map(|o| (o.from.clone(), o.to.clone())).unwrap_or_default();
        let judged = outs;
        let errored: Vec<(String, String)> = failed.iter().filter(|(vm, _)| !self.last_action.iter().any(|&i| self.outcomes[i].vm == *vm)).cloned().collect();
        let mut fa = crate::report::FleetAction::of(kind, &from, &to, &judged, &errored);
        fa.failed = failed.iter().map(|f| f.0.clone()).collect();
        fa.disks_of = self.disks_of.clone();
        // VMs judged and failed: the reason beside their verdict
        for (vm, why) in &failed {
            if let Some(x) = fa.per_vm.iter_mut().find(|x| x["vm"] == vm.as_str() && x.get("error").is_none()) {
                x["failure"] = serde_json::json!(why);
            }
        }
        self.session.bus.note(fa.line());
        let j = serde_json::to_value(&fa).unwrap_or_default();
        self.fleet_actions.push(j);
        one_of(errs, names.len())
    }

    /// Fails the VM over to `to`; `fencing` less than full is a control (see [`drill::Fencing`]).
    pub async fn failover(&mut self, to: &str, fencing: drill::Fencing) -> R {
        if self.disks_of.is_some() {
            if fencing != drill::Fencing::FULL {
                return self.track(Err(StepError::Mismatch("a failover with less than full fencing is a control for a VM of one disk".into())));
            }
            return self.failover_fleet(to).await;
        }
        let since = self.previous_action();
        let r = async {
            let vm = self.vm()?;
            let mut env = self.session.env().await?;
            let from = env.driver.primary(&vm)?;
            let fault = outage_in_force(&self.receipts, &self.undone, &from);
            Ok(drill::failover(&mut env, &vm, to, fault.as_ref(), fencing, since).await?)
        }
        .await;
        let mut o = self.track(r)?;
        self.session.bus.note(format!("failover {} -> {}: {}", o.from, o.to, o.timeline.render()));
        self.receipts.append(&mut o.receipts);
        self.last_action.clear();
        self.judge_action(o).await
    }

    /// Every DR action is judged against its own promise as it ends, whatever the scenario asks next: a
    /// failed promise fails the scenario (a verdict sentence adds its own checks on top). Then each site's
    /// role is read from the storage's own view: two primaries are a split brain, named, and fail it.
    async fn judge_action(&mut self, o: Outcome) -> R {
        let roles = async { Ok::<_, StepError>(self.session.env().await?.driver.roles(&o.vm).await?) }.await;
        self.judge_with_roles(o, roles).await
    }

    /// As [`Scenario::judge_action`], with the roles read already (a fleet's, asked side by side).
    async fn judge_with_roles(&mut self, mut o: Outcome, roles: Result<Vec<crate::ports::SiteRole>, StepError>) -> R {
        let v = o.evidence.verdict();
        let of = if self.fleet.is_empty() { String::new() } else { format!(" of VM {}", o.vm) };
        let what = format!("{} {} -> {}{of}: {}", o.kind, o.from, o.to, o.evidence.bound.promise());
        let roles = self.track(roles)?;
        // a site still lost (its outage in force, a failover's fence included) keeps its stale primary
        // until it comes back and is repaired: not a second writer
        let out: Vec<String> = roles.iter().map(|r| r.site.clone()).filter(|s| outage_in_force(&self.receipts, &self.undone, s).is_some()).collect();
        let stale =
            |r: &crate::ports::SiteRole| if out.contains(&r.site) && r.role == crate::ports::Role::Primary { " (stale: the site is still out)" } else { "" };
        self.session.bus.note(format!(
            "roles after {} {} -> {}: {}",
            o.kind,
            o.from,
            o.to,
            roles.iter().map(|r| format!("{} {:?}{}", r.site, r.role, stale(r))).collect::<Vec<_>>().join(", ")
        ));
        let split = crate::ports::split_brain_among(&o.vm, &roles, &out);
        o.roles = roles;
        // a clone of the golden image: its golden blocks read on the new site now, frozen with the evidence
        if let Some(layout) = self.golden.get(&o.vm).copied() {
            o.golden = Some(self.read_golden(&o.vm, &o.to, layout).await);
        }
        self.last_action.push(self.outcomes.len());
        self.outcomes.push(o);
        self.conclude(&what, v)?;
        match split {
            Some(sb) => {
                let r = Err(StepError::Expectation(format!("after the {what}: {sb}")));
                self.track(r)
            }
            None => Ok(()),
        }
    }

    /// `site` comes back: every outage of it still in force is undone (power restored, thawed, reconnected,
    /// healed), the VM's boots left behind there are cleaned up, and (unless `repair` says otherwise) the
    /// DR driver repairs the pair as the DR operator would. Each step is marked on the repair's timeline.
    pub async fn comes_back(&mut self, site: &str, repair: Repairing) -> R {
        let r = async {
            let vm = self.targets()?.join(" ");
            let mut env = self.session.env().await?;
            let site = env.topology.site(site)?;
            let mut m = crate::ports::Marker::new(env.bus.clone(), &vm, crate::timeline::ActionKind::Repair, Wt::now(), crate::timeline::Segment::Requested);
            let outages: Vec<usize> = (0..self.receipts.len()).rev().filter(|&i| self.in_force(i) && self.receipts[i].fault.takes(&site)).collect();
            let mut undone = vec![];
            for i in outages {
                let proof = env.faults.recover(&self.receipts[i]).await?;
                undone.push(Undone { receipt: i, at: Wt::now(), proof });
            }
            for vm in &self.vms {
                env.workload.retire(vm, &site).await;
            }
            m.mark(crate::timeline::Segment::SiteBack);
            let mut details = vec![];
            if repair != Repairing::Skipped {
                for vm in &self.vms {
                    details.push(env.driver.repair(vm, &site, repair == Repairing::Full, &mut m).await?);
                }
            }
            Ok::<_, StepError>((drill::Repair { site, timeline: m.timeline, details }, undone))
        }
        .await;
        let (rep, undone) = self.track(r)?;
        self.session.bus.note(format!("{} comes back: {}", rep.site, rep.timeline.render()));
        self.undone.extend(undone);
        self.repairs.push(rep);
        Ok(())
    }

    /// `site` is the VM's only primary, from the storage's own view now.
    pub async fn only_primary(&mut self, site: &str) -> R {
        let r = async {
            let mut env = self.session.env().await?;
            let site = env.topology.site(site)?;
            let mut wrong = vec![];
            for vm in self.targets()? {
                let roles = env.driver.roles(&vm).await?;
                if let Err(e) = crate::ports::only_primary(&vm, &site, &roles) {
                    wrong.push(e);
                }
            }
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(StepError::Expectation(wrong.join("; ")))
            }
        }
        .await;
        self.track(r)
    }

    /// Negative control: damages one record (from 1) on the disk of the last DR action's VM through a guest
    /// on `site`, then verifies the disk again: the verdicts judge the damaged disk. Only the scan changes:
    /// the history and the STOP record the action froze stay as they were.
    pub async fn corrupt(&mut self, seq: u64, site: &str) -> R {
        let r = async {
            if seq == 0 {
                return Err(StepError::Mismatch("records start at 1: there is no record 0 to damage".into()));
            }
            let vm = self.vm()?;
            let acted_on = self.outcome()?.vm.clone();
            if acted_on != vm {
                return Err(StepError::Order(format!("the damage would judge VM {vm}, but the last DR action moved VM {acted_on}")));
            }
            let mut env = self.session.env().await?;
            let site = env.topology.site(site)?;
            if !env.cfg.spec.disposable {
                return Err(EnvError::NotDisposable { what: "damage a record on disk".into(), env: env.cfg.spec.name.clone() }.into());
            }
            let volume = env.driver.volume(&vm)?;
            let scan = env.workload.damage(&vm, &site, &volume, seq).await?;
            Ok((scan, env.workload.history(&vm, None)?))
        }
        .await;
        let (scan, now) = self.track(r)?;
        if let Some(o) = self.outcomes.last_mut() {
            o.evidence.scan = scan;
            // writers started after the action wrote on the disk too: their records are theirs, not judged
            let known: std::collections::BTreeSet<u64> = o.evidence.history.acks.iter().map(|a| a.boot).collect();
            o.evidence.history.unjudged_boots =
                now.acks.iter().map(|a| a.boot).filter(|b| !known.contains(b)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        }
        Ok(())
    }

    fn conclude(&mut self, what: &str, v: Verdict) -> R {
        let line = if let Some(g) = &v.golden {
            g.describe()
        } else if let Some(k) = &v.skew {
            format!("skew {} (bound {:.2} s)", k.skew_ms.map(|m| format!("{:.2} s", m / 1e3)).unwrap_or("-".into()), k.bound_ms / 1e3)
        } else {
            format!(
                "acked {}, stable {}, lost {}, indeterminate {}{}",
                v.acked,
                v.stable,
                v.lost_count,
                v.indeterminate,
                v.loss_window_ms.map(|l| format!(", loss window {l:.0} ms")).unwrap_or_default()
                    + &v.bound_ms.map(|b| format!(" (bound {b:.0} ms)")).unwrap_or_default()
            )
        };
        self.session.bus.note(format!("{what}: {line}"));
        let (conclusion, why, golden) = (v.conclusion, v.why.join("; "), v.golden.is_some() || v.skew.is_some());
        self.verdicts.push((what.to_string(), v));
        let r = match conclusion {
            Conclusion::Passed => Ok(()),
            Conclusion::Failed if golden => Err(StepError::Verdict { msg: format!("{what}: {why}"), conclusion }),
            Conclusion::Failed => Err(StepError::Verdict { msg: format!("{what}: {why} [{line}]"), conclusion }),
            Conclusion::Inconclusive => Err(StepError::Verdict { msg: format!("{what}: inconclusive: {why} [{line}]"), conclusion }),
        };
        self.track(r)
    }

    pub fn no_loss(&mut self) -> R {
        let r = self.last().map(|all| all.into_iter().map(|o| (o.vm.clone(), o.evidence.no_loss())).collect());
        let vs = self.track(r)?;
        self.conclude_each("no acknowledged write lost", vs)
    }

    pub fn window(&mut self) -> R {
        let r = self.last().and_then(|all| {
            all.into_iter()
                .map(|o| {
                    if o.evidence.regional().is_none() {
                        return Err(StepError::Mismatch(format!(
                            "the last DR action ({}) promises no loss, not a loss window: judge it with \"no acknowledged write is lost\"",
                            o.kind
                        )));
                    }
                    Ok((o.vm.clone(), o.evidence.verdict()))
                })
                .collect::<Result<Vec<_>, _>>()
        });
        let vs = self.track(r)?;
        self.conclude_each("loss window within the replication interval", vs)
    }

    /// "the VM's disks are at most D apart after the failover": the disks of the VM of several disks, each
    /// judged by the last failover, hold data from points in time at most `bound` apart (see
    /// [`crate::oracle::judge_skew`]).
    pub fn disks_apart(&mut self, bound: Duration) -> R {
        let r = (|| {
            let Some(vm) = self.disks_of.clone() else {
                return Err(StepError::Order("no VM of several disks in this scenario: start with \"a VM with N disks writing ...\"".into()));
            };
            let all = self.last()?;
            if all.iter().any(|o| o.kind != crate::timeline::ActionKind::Failover) {
                return Err(StepError::Order(format!("the last DR action of VM {vm} was not a failover: its disks were stopped together, nothing to measure")));
            }
            let judged: Vec<(String, Verdict)> = all.iter().map(|o| (o.vm.clone(), o.evidence.verdict())).collect();
            if judged.len() < self.fleet.len() {
                let missing: Vec<&str> = self.fleet.iter().filter(|d| !judged.iter().any(|(j, _)| j == *d)).map(String::as_str).collect();
                return Err(StepError::Expectation(format!("the failover did not bring every disk of VM {vm} back: {}", missing.join(", "))));
            }
            let refs: Vec<(String, &Verdict)> = judged.iter().map(|(d, v)| (d.clone(), v)).collect();
            Ok((vm, crate::oracle::judge_skew(&refs, bound)))
        })();
        let (vm, v) = self.track(r)?;
        if let Some(s) = &v.skew {
            let each: Vec<String> = s.disks.iter().map(|(d, _, w)| format!("{d} {}", w.map(|w| format!("{:.2} s", w / 1e3)).unwrap_or("-".into()))).collect();
            self.session.bus.note(format!(
                "VM {vm}'s disks: newest surviving record acknowledged before the fault: {}; skew {}",
                each.join(", "),
                s.skew_ms.map(|m| format!("{:.2} s", m / 1e3)).unwrap_or("-".into())
            ));
        }
        self.conclude(&format!("the disks of VM {vm} at most {} apart", Dur(bound)), v)
    }

    /// One verdict per VM of the last action (named by VM when there are several); fails naming each VM
    /// that failed, the worst conclusion deciding.
    fn conclude_each(&mut self, what: &str, vs: Vec<(String, Verdict)>) -> R {
        if let [(_, v)] = vs.as_slice() {
            return self.conclude(what, v.clone());
        }
        let n = vs.len();
        let mut errs = vec![];
        for (vm, v) in vs {
            if let Err(e) = self.conclude(&format!("VM {vm}: {what}"), v) {
                errs.push((e.to_string(), e));
            }
        }
        one_of(errs, n)
    }

    /// Split brain refused: the VM left running on the frozen site, thawed since, had no write acknowledged
    /// after the fence, and the survivor's disk (verified now, the VM stopped gracefully) holds nothing it
    /// wrote after the fence.
    pub async fn split_brain_refused(&mut self) -> R {
        let r = async {
            let vm = self.vm()?;
            let o = self.outcome()?;
            let (Some(old), Some(fence_at)) = (o.abandoned, o.fence_at) else {
                return Err(StepError::Order("no VM was left behind by the failover: freeze its site (\"site X freezes\") before failing over".into()));
            };
            let (from, to) = (o.from.clone(), o.to.clone());
            let undone_after_fence = |f: &Fault| self.undone.iter().any(|u| self.receipts[u.receipt].fault == *f && u.at > fence_at);
            if !undone_after_fence(&Fault::Freeze { site: from.clone() }) {
                return Err(StepError::Order(format!("site {from} was not thawed after the failover (\"site {from} thaws\"): the old VM had no chance to write")));
            }
            // the fence is judged on its own: the harness's isolation of the old site must be undone first
            let isolated = Fault::Isolate { site: from.clone() };
            if self.receipts.iter().enumerate().any(|(i, r)| r.fault == isolated && self.in_force(i)) {
                return Err(StepError::Order(format!(
                    "site {from} is still cut off by the harness: the storage fence is judged on its own once the site is reconnected (\"site {from} is reconnected\")"
                )));
            }
            let mut env = self.session.env().await?;
            let running = env.workload.abandoned_alive(&vm, old)?;
            let volume = env.driver.volume(&vm)?;
            let scan = env.workload.verify(&vm, &to, &volume).await?;
            // read after the verify boot: every ack the old writer got until then counts
            let history = env.workload.history(&vm, None)?;
            Ok(crate::oracle::judge_split_brain(&history, old, fence_at, &scan, running))
        }
        .await;
        let v = self.track(r)?;
        self.conclude("no write of the old VM after the fence", v)
    }

    pub fn stop_survives(&mut self) -> R {
        let r = self.last().and_then(|all| {
            let many = all.len() > 1;
            for o in all {
                let e = &o.evidence;
                let of = if many { format!("VM {}: ", o.vm) } else { String::new() };
                let stop =
                    e.stop_seq.ok_or_else(|| StepError::Order(format!("{of}the VM was not shut down gracefully: there is no STOP record to look for")))?;
                if e.scan.stop != Some(stop) {
                    return Err(StepError::Expectation(format!("{of}the STOP record {stop} is not on disk (scan found {:?})", e.scan.stop)));
                }
            }
            Ok(())
        });
        self.track(r)
    }

    pub fn serves_within(&mut self, site: &str, d: Duration) -> R {
        let r = self.last().and_then(|all| {
            let many = all.len() > 1;
            let mut late = vec![];
            for o in all {
                let of = if many { format!("VM {}: ", o.vm) } else { String::new() };
                if o.to != site {
                    return Err(StepError::Mismatch(format!("{of}the last DR action moved the VM to site {}, not {site}", o.to)));
                }
                let serving = o.timeline.get(Segment::Serving).ok_or_else(|| StepError::Expectation(format!("{of}the VM never served on site {}", o.to)))?;
                let limit = d.as_secs_f64() * 1e3;
                if serving > limit {
                    late.push(format!("{of}the VM served again after {:.1}s, more than {:.1}s ({})", serving / 1e3, limit / 1e3, o.timeline.render()));
                }
            }
            if late.is_empty() {
                Ok(())
            } else {
                Err(StepError::Expectation(late.join("; ")))
            }
        });
        self.track(r)
    }

    /// The stretch cluster's evidence since the scenario began; a mismatch where the environment has none.
    async fn stretch_evidence(&self) -> Result<crate::stretch::Evidence, StepError> {
        let mut env = self.session.env().await?;
        env.faults.stretch(self.started).await.ok_or_else(|| {
            StepError::Mismatch(format!("environment {} does not run Ceph in stretch mode: there is no stretch state to judge", self.session.cfg.spec.name))
        })
    }

    /// "the cluster entered degraded stretch mode": some sample since the scenario began says so.
    pub async fn entered_degraded(&mut self) -> R {
        let r = async {
            let ev = self.stretch_evidence().await?;
            // counted from the scenario's first fault: a cluster still degraded by an earlier scenario
            // proves nothing about this one
            let Some(first) = self.receipts.iter().map(|r| r.at).min() else {
                return Err(StepError::Order("no fault in this scenario yet: take a data site out first (\"site a loses power\")".into()));
            };
            let seen: Vec<crate::stretch::Transition> = ev.transitions().into_iter().filter(|t| t.at >= first).collect();
            match seen.iter().find(|t| t.state == crate::stretch::StretchState::Degraded) {
                Some(t) => {
                    let min = t.min_size.map(|m| format!(", pools at min_size {m}")).unwrap_or_default();
                    let line = format!("degraded stretch mode {:.1} s after the first fault{min}", t.at.since(first).as_secs_f64());
                    self.session.bus.note(format!("stretch mode: {line}"));
                    Ok(())
                }
                None => Err(StepError::Expectation(format!(
                    "the cluster never entered degraded stretch mode; states seen: {}",
                    seen.iter().map(|t| t.state.to_string()).collect::<Vec<_>>().join(" -> ")
                ))),
            }
        }
        .await;
        self.track(r)
    }

    /// "the cluster returns to healthy stretch mode within D": counted from the newest outage the scenario
    /// undid (a site back, a partition healed), or from the scenario's start.
    pub async fn healthy_within(&mut self, d: Duration) -> R {
        let from = self.undone.iter().map(|u| u.at).chain(self.repairs.iter().map(|r| r.timeline.t0)).max().unwrap_or(self.started);
        let r = async {
            let ev = self.stretch_evidence().await?;
            let healthy = |ev: &crate::stretch::Evidence| {
                ev.samples.iter().find(|s| s.at >= from && s.flags.as_ref().is_some_and(|f| f.state == crate::stretch::StretchState::Healthy)).map(|s| s.at)
            };
            let latest = std::sync::Mutex::new(ev);
            let check = || async {
                let ev = self.stretch_evidence().await?;
                let at = healthy(&ev);
                *latest.lock().unwrap() = ev;
                Ok::<_, StepError>(at)
            };
            let left = d.saturating_sub(Wt::now().since(from));
            let res = crate::wait::until("the cluster to return to healthy stretch mode", left, check, crate::wait::every(Duration::from_secs(2))).await;
            match res {
                Ok(at) => {
                    self.session.bus.note(format!("stretch mode: healthy again {:.1} s after the outage ended", at.since(from).as_secs_f64()));
                    Ok(())
                }
                Err(crate::wait::WaitError::Timeout { .. }) => {
                    let ev = latest.into_inner().unwrap();
                    let last = ev
                        .latest()
                        .map(|(at, f)| format!("{} (min_size {:?}) at {:.1} s", f.state, f.min_size, at.since(from).as_secs_f64()))
                        .unwrap_or("no answer".into());
                    Err(StepError::Expectation(format!(
                        "the cluster did not return to healthy stretch mode within {} of the outage's end: last seen {last}",
                        Dur(d)
                    )))
                }
                Err(crate::wait::WaitError::Failed(e)) => Err(e),
            }
        }
        .await;
        self.track(r)
    }

    /// What each data-site partition of the scenario did (the newest first judged): the side the
    /// tiebreaker kept, the elections, the VM's longest stall; `budget` judges the newest.
    async fn partition_reports(&self, budget: Option<Duration>) -> Result<Vec<(usize, crate::stretch::PartitionReport)>, StepError> {
        let vm = self.vm()?;
        let ev = self.stretch_evidence().await?;
        let env = self.session.env().await?;
        let history = env.workload.history(&vm, None)?;
        let now_site = env.driver.primary(&vm)?;
        drop(env);
        let mut acks: Vec<Wt> = history.acks.iter().map(|a| a.at).collect();
        acks.sort();
        let now = Wt::now();
        let cuts: Vec<usize> = (0..self.receipts.len()).filter(|&i| matches!(self.receipts[i].fault, Fault::Partition { .. })).collect();
        let newest = cuts.last().copied();
        Ok(cuts
            .into_iter()
            .map(|i| {
                let healed = self.undone.iter().find(|u| u.receipt == i).map(|u| u.at).unwrap_or(now);
                let b = if Some(i) == newest { budget } else { None };
                // the VM's site when the partition began (a later relocate moves it)
                let vm_site = self.vm_site_at.iter().find(|x| x.0 == i).map(|x| x.1.clone()).unwrap_or_else(|| now_site.clone());
                (i, ev.partition(self.receipts[i].at, healed, now, &acks, &vm_site, b))
            })
            .collect())
    }

    /// "the VM writes again within D of the partition": the VM's longest time without an acknowledged
    /// write during the newest partition (until it healed) is at most D; a failure names an election loop,
    /// the tiebreaker keeping the other site, or the stall alone.
    pub async fn writes_again_within(&mut self, d: Duration) -> R {
        let r = async {
            let reports = self.partition_reports(Some(d)).await?;
            let Some((i, rep)) = reports.into_iter().last() else {
                return Err(StepError::Order("no partition in this scenario: partition the sites first (\"sites a and b are partitioned\")".into()));
            };
            let verdict = rep.judge();
            self.partitions.retain(|p| p.0 != i);
            self.partitions.push((i, rep));
            match verdict {
                Ok(line) => {
                    self.session.bus.note(format!("partition: {line}"));
                    Ok(())
                }
                Err(why) => Err(StepError::Expectation(why)),
            }
        }
        .await;
        self.track(r)
    }

    /// Fails with every error-severity finding; the environment's replication interval is the declared RPO.
    fn ready(&self, what: &str, objects: &[lint::Object], kustomized: bool) -> R {
        // the declared RPO: the replication interval (none for synchronous replication)
        let rpo = Some(self.session.cfg.spec.interval()).filter(|d| !d.is_zero());
        let dr = if self.session.cfg.spec.metro().is_some() { rules::DrKind::Metro } else { rules::DrKind::Regional };
        let opts = rules::Options { rpo, dr, ..Default::default() };
        let errors: Vec<String> = rules::check(objects, kustomized, &opts)
            .into_iter()
            .filter(|f| f.severity >= Severity::Error)
            .map(|f| format!("{}:{}: [{}] {}", f.file, f.line, f.rule, f.message))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(StepError::Expectation(format!("{what} is not ready for DR: {}", errors.join("; "))))
        }
    }

    pub fn manifests_ready(&mut self, path: &str) -> R {
        let r = lint::load_paths(&[path.into()]).map_err(StepError::from).and_then(|(objects, kustomized)| self.ready(path, &objects, kustomized));
        self.track(r)
    }

    pub async fn namespace_ready(&mut self, namespace: &str, context: &str) -> R {
        let r = async {
            let client = lint::live::client(context, None).await?;
            let objects = lint::live::fetch(client, context, namespace).await?;
            self.ready(&format!("namespace {namespace} of context {context}"), &objects, false)
        }
        .await;
        self.track(r)
    }

    /// A failed scenario explains itself: under `dir`, the environment file, each VM's console, the sites'
    /// state and logs over the scenario's span (and on clusters the DR objects and events), with
    /// `gather.txt` listing what is there and what could not be had. Done before anything is undone.
    async fn gather(&mut self, dir: &std::path::Path) -> crate::ports::Gathered {
        let mut g = crate::ports::Gathered::default();
        if let Err(e) = std::fs::create_dir_all(dir) {
            g.missing.push(format!("{}: {e}", dir.display()));
            return g;
        }
        let cfg = &self.session.cfg;
        let env_file = dir.join("environment.yaml");
        match std::fs::write(&env_file, &cfg.text) {
            Ok(()) => g.items.push(format!("{}: the environment file {}", env_file.display(), cfg.path.display())),
            Err(e) => g.missing.push(format!("{}: {e}", env_file.display())),
        }
        match self.session.env_if_up().await {
            None => g.missing.push("the environment never came up: no site to ask, no console".into()),
            Some(mut env) => {
                for vm in &self.vms {
                    let consoles = env.workload.consoles(vm);
                    if consoles.is_empty() {
                        g.missing.push(format!("VM {vm}: this backend keeps no console of its own"));
                    }
                    for c in consoles {
                        let to = dir.join(c.file_name().unwrap_or_default());
                        match std::fs::copy(&c, &to) {
                            Ok(_) => g.items.push(format!("{}: VM {vm}'s console", to.display())),
                            Err(e) => g.missing.push(format!("{}: {e}", c.display())),
                        }
                    }
                }
                let since = self.started;
                g.extend(env.faults.gather(dir, since).await);
                let vms = self.vms.clone();
                g.extend(env.driver.gather(dir, &vms).await);
            }
        }
        let index = format!(
            "gathered when the scenario failed\n\n{}\n\nnot gathered\n\n{}\n",
            g.items.iter().map(|i| format!("- {i}")).collect::<Vec<_>>().join("\n"),
            if g.missing.is_empty() { "- (nothing)".to_string() } else { g.missing.iter().map(|i| format!("- {i}")).collect::<Vec<_>>().join("\n") }
        );
        let _ = std::fs::write(dir.join("gather.txt"), index);
        g
    }

    /// End of the scenario: its VM stops, every fault it injected is recovered (newest first), and what it
    /// did becomes a plain record for the reports. With `gather` (it failed), its gather is written there
    /// first, before anything is undone.
    pub async fn finish(mut self, gather: Option<std::path::PathBuf>) -> ScenarioRecord {
        let gathered = match &gather {
            Some(dir) => Some(self.gather(dir).await),
            None => None,
        };
        // the stretch evidence frozen before anything is undone: every partition reported, judged or not
        let mut stretch = None;
        if self.session.env_if_up().await.is_some() {
            if let Ok(ev) = self.stretch_evidence().await {
                let mut partitions = self.partitions.clone();
                if self.vm.is_some() {
                    for (i, rep) in self.partition_reports(None).await.unwrap_or_default() {
                        if !partitions.iter().any(|p| p.0 == i) {
                            partitions.push((i, rep));
                        }
                    }
                }
                partitions.sort_by_key(|p| p.0);
                let mut j = ev.to_json(self.started);
                j["partitions"] = serde_json::json!(partitions
                    .iter()
                    .map(|(i, p)| {
                        let mut v = serde_json::to_value(p).unwrap_or_default();
                        v["atMs"] = serde_json::json!((self.receipts[*i].at.since(self.started).as_secs_f64() * 1e4).round() / 10.0);
                        v["summary"] = serde_json::json!(p.line());
                        v
                    })
                    .collect::<Vec<_>>());
                stretch = Some(j);
            }
        }
        if let Some(mut env) = self.session.env_if_up().await {
            for vm in &self.vms {
                env.workload.stop(vm).await;
                env.driver.release(vm).await;
                env.bus.publish(crate::events::Event::VmDone { vm: vm.clone() });
            }
            // what the scenario undid itself is shown gone already
            for (i, r) in self.receipts.iter().enumerate().rev() {
                if self.undone.iter().any(|u| u.receipt == i) {
                    continue;
                }
                match env.faults.recover(r).await {
                    Ok(proof) => self.undone.push(Undone { receipt: i, at: Wt::now(), proof }),
                    Err(e) => self.harness_errors.push(format!("failed to recover from fault \"{}\": {e}", r.fault)),
                }
            }
        }
        ScenarioRecord {
            started: self.started,
            duration: Wt::now().since(self.started),
            vms: self.vms,
            vm: self.vm,
            receipts: self.receipts,
            undone: self.undone,
            outcomes: self.outcomes,
            repairs: self.repairs,
            verdicts: self.verdicts,
            fleet: self.fleet_actions,
            rtts: self.rtts,
            cause: self.causes.into_iter().max(),
            inconclusive: self.inconclusive,
            harness_errors: self.harness_errors,
            stretch,
            gather: gather.zip(gathered),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_failed_vms_are_told_together_the_worst_cause_deciding() {
        assert!(one_of(vec![], 3).is_ok());
        let one = one_of(vec![("VM vm1: x".into(), StepError::Expectation("x".into()))], 3).unwrap_err();
        assert_eq!(one.to_string(), "x");
        let two = vec![("VM vm1: x".into(), StepError::Expectation("x".into())), ("VM vm2: y".into(), StepError::Order("y".into()))];
        let e = one_of(two, 3).unwrap_err();
        assert_eq!(e.to_string(), "2 of 3 VMs failed: VM vm1: x; VM vm2: y");
        assert_eq!(e.cause(), Cause::Harness);
    }

    #[test]
    fn the_fault_that_counts_is_the_outage_still_in_force() {
        let r = |fault: Fault, ms: u64| Receipt { fault, at: Wt::from_ms(ms), proof: Default::default() };
        let receipts = vec![
            r(Fault::Partition { a: "b".into(), b: "a".into() }, 1000),
            r(Fault::StopReplication { site: "b".into() }, 5000),
            r(Fault::PowerLoss { site: "a".into() }, 40_000),
        ];
        // the partition healed long before: the power loss counts
        let healed = [Undone { receipt: 0, at: Wt::from_ms(3000), proof: Default::default() }];
        assert_eq!(outage_in_force(&receipts, &healed, "a").unwrap().at, Wt::from_ms(40_000));
        // still in force: the partition was the first outage
        assert_eq!(outage_in_force(&receipts, &[], "a").unwrap().at, Wt::from_ms(1000));
        // replication stopping takes no site
        assert!(outage_in_force(&receipts[1..2], &[], "b").is_none());
    }
}
