//! One scenario's part of a drill: its VM, the faults it injected (with their receipts), its DR action and
//! the verdicts reached. Every sentence of a feature file is one method here; the step definitions only
//! translate. A failing method records its cause (the system under test, or the harness and its input)
//! so that the run's exit code is decided by data, not by text.

use crate::clock::Wt;
use crate::config::Replication;
use crate::drill::{self, Outcome};
use crate::error::{Cause, Caused, EnvError};
use crate::fault::{Fault, Receipt};
use crate::lint::{self, rules, LintError, Severity};
use crate::oracle::{Conclusion, Verdict};
use crate::report::{RoundTrip, ScenarioRecord};
use crate::session::Session;
use crate::timeline::Segment;
use crate::units::Dur;
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
}

impl Caused for StepError {
    fn cause(&self) -> Cause {
        match self {
            StepError::Env(e) => e.cause(),
            StepError::Expectation(_) => Cause::System,
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
    receipts: Vec<Receipt>,
    /// Receipts (by index) the scenario itself undid (a thaw, a healed partition, a reconnection), and when.
    undone: Vec<(usize, Wt)>,
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
}

/// The earliest outage of `site` still in force (its power lost, frozen, cut off, partitioned from a peer):
/// the fault a failover from it counts from. Outages undone before (`undone`: receipt index and when) are
/// left out, however early they were. Pure.
pub fn outage_in_force(receipts: &[Receipt], undone: &[(usize, Wt)], site: &str) -> Option<Receipt> {
    receipts.iter().enumerate().filter(|(i, r)| !undone.iter().any(|(j, _)| j == i) && r.fault.takes(site)).min_by_key(|(_, r)| r.at).map(|(_, r)| r.clone())
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
            receipts: vec![],
            undone: vec![],
            outcomes: vec![],
            repairs: vec![],
            verdicts: vec![],
            rtts: vec![],
            causes: vec![],
            inconclusive: false,
            harness_errors: vec![],
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
        !self.undone.iter().any(|(j, _)| *j == i)
    }

    fn vm(&self) -> Result<String, StepError> {
        self.vm.clone().ok_or_else(|| StepError::Order("no VM in this scenario yet: start with \"a VM writing N records per second on site X\"".into()))
    }

    fn outcome(&self) -> Result<&Outcome, StepError> {
        self.outcomes.last().ok_or_else(|| StepError::Order("no DR action ran in this scenario: relocate or fail over the VM first".into()))
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
        let r = async {
            if !(1..=1000).contains(&rate) {
                return Err(StepError::Mismatch(format!("a rate of {rate} records per second is outside 1..1000")));
            }
            Ok(self.session.env().await?.start_vm(site, rate).await?)
        }
        .await;
        let vm = self.track(r)?;
        self.vms.push(vm.clone());
        self.vm = Some(vm);
        Ok(())
    }

    /// Waits for `n` acknowledged records: twice the time the rate needs, plus slack for a slow machine.
    pub async fn written(&mut self, n: u64) -> R {
        let r = async {
            let vm = self.vm()?;
            let mut env = self.session.env().await?;
            let rate = env.workload.rate(&vm)?;
            let deadline = Duration::from_secs_f64(n as f64 / rate as f64 * 2.0 + 30.0);
            Ok(env.workload.wait_acks(&vm, n, deadline).await?)
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
            let vm = self.vm()?;
            tokio::time::sleep(d).await;
            if !self.session.env().await?.workload.writing(&vm)? {
                return Err(StepError::Expectation(format!("VM {vm} stopped while it should have been writing")));
            }
            Ok(())
        }
        .await;
        self.track(r)
    }

    pub async fn inject(&mut self, f: Fault) -> R {
        let r = async { Ok(self.session.env().await?.faults.inject(f).await?) }.await;
        let receipt = self.track(r)?;
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
            self.session.env().await?.faults.recover(&self.receipts[i]).await?;
            Ok(i)
        }
        .await;
        let i = self.track(r)?;
        self.undone.push((i, Wt::now()));
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
            let vm = self.vm()?;
            let mut env = self.session.env().await?;
            let site = env.topology.site(site)?;
            let proof = env.driver.replicated(&vm, &site, since).await?;
            self.session.bus.note(format!("replicated: {proof}, +{:.1}s", Wt::now().since(since).as_secs_f64()));
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
        let since = self.previous_action();
        let r = async {
            let vm = self.vm()?;
            let mut env = self.session.env().await?;
            Ok(drill::relocate(&mut env, &vm, to, barrier, since).await?)
        }
        .await;
        let o = self.track(r)?;
        self.session.bus.note(format!("relocate {} -> {}: {}", o.from, o.to, o.timeline.render()));
        self.judge_action(o).await
    }

    /// Fails the VM over to `to`; `fencing` less than full is a control (see [`drill::Fencing`]).
    pub async fn failover(&mut self, to: &str, fencing: drill::Fencing) -> R {
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
        self.judge_action(o).await
    }

    /// Every DR action is judged against its own promise as it ends, whatever the scenario asks next: a
    /// failed promise fails the scenario (a verdict sentence adds its own checks on top). Then each site's
    /// role is read from the storage's own view: two primaries are a split brain, named, and fail it.
    async fn judge_action(&mut self, mut o: Outcome) -> R {
        let v = o.evidence.verdict();
        let what = format!("{} {} -> {}: {}", o.kind, o.from, o.to, o.evidence.bound.promise());
        let roles = async { Ok::<_, StepError>(self.session.env().await?.driver.roles(&o.vm).await?) }.await;
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
            let vm = self.vm()?;
            let mut env = self.session.env().await?;
            let site = env.topology.site(site)?;
            let mut m = crate::ports::Marker::new(env.bus.clone(), &vm, crate::timeline::ActionKind::Repair, Wt::now(), crate::timeline::Segment::Requested);
            let outages: Vec<usize> = (0..self.receipts.len()).rev().filter(|&i| self.in_force(i) && self.receipts[i].fault.takes(&site)).collect();
            let mut undone = vec![];
            for i in outages {
                env.faults.recover(&self.receipts[i]).await?;
                undone.push((i, Wt::now()));
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
            let vm = self.vm()?;
            let mut env = self.session.env().await?;
            let site = env.topology.site(site)?;
            let roles = env.driver.roles(&vm).await?;
            crate::ports::only_primary(&vm, &site, &roles).map_err(StepError::Expectation)
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
        let line = format!(
            "acked {}, stable {}, lost {}, indeterminate {}{}",
            v.acked,
            v.stable,
            v.lost_count,
            v.indeterminate,
            v.loss_window_ms.map(|l| format!(", loss window {l:.0} ms")).unwrap_or_default()
                + &v.bound_ms.map(|b| format!(" (bound {b:.0} ms)")).unwrap_or_default()
        );
        self.session.bus.note(format!("{what}: {line}"));
        let (conclusion, why) = (v.conclusion, v.why.join("; "));
        self.verdicts.push((what.to_string(), v));
        let r = match conclusion {
            Conclusion::Passed => Ok(()),
            Conclusion::Failed => Err(StepError::Verdict { msg: format!("{what}: {why} [{line}]"), conclusion }),
            Conclusion::Inconclusive => Err(StepError::Verdict { msg: format!("{what}: inconclusive: {why} [{line}]"), conclusion }),
        };
        self.track(r)
    }

    pub fn no_loss(&mut self) -> R {
        let r = self.outcome().map(|o| o.evidence.no_loss());
        let v = self.track(r)?;
        self.conclude("no acknowledged write lost", v)
    }

    pub fn window(&mut self) -> R {
        let r = self.outcome().and_then(|o| {
            if o.evidence.regional().is_none() {
                return Err(StepError::Mismatch(format!(
                    "the last DR action ({}) promises no loss, not a loss window: judge it with \"no acknowledged write is lost\"",
                    o.kind
                )));
            }
            Ok(o.evidence.verdict())
        });
        let v = self.track(r)?;
        self.conclude("loss window within the replication interval", v)
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
            let undone_after_fence = |f: &Fault| self.undone.iter().any(|(i, at)| self.receipts[*i].fault == *f && *at > fence_at);
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
        let r = self.outcome().and_then(|o| {
            let e = &o.evidence;
            let stop = e.stop_seq.ok_or_else(|| StepError::Order("the VM was not shut down gracefully: there is no STOP record to look for".into()))?;
            if e.scan.stop != Some(stop) {
                return Err(StepError::Expectation(format!("the STOP record {stop} is not on disk (scan found {:?})", e.scan.stop)));
            }
            Ok(())
        });
        self.track(r)
    }

    pub fn serves_within(&mut self, site: &str, d: Duration) -> R {
        let r = self.outcome().and_then(|o| {
            if o.to != site {
                return Err(StepError::Mismatch(format!("the last DR action moved the VM to site {}, not {site}", o.to)));
            }
            let serving = o.timeline.get(Segment::Serving).ok_or_else(|| StepError::Expectation(format!("the VM never served on site {}", o.to)))?;
            let limit = d.as_secs_f64() * 1e3;
            if serving > limit {
                return Err(StepError::Expectation(format!(
                    "the VM served again after {:.1}s, more than {:.1}s ({})",
                    serving / 1e3,
                    limit / 1e3,
                    o.timeline.render()
                )));
            }
            Ok(())
        });
        self.track(r)
    }

    /// Fails with every error-severity finding; the environment's replication interval is the declared RPO.
    fn ready(&self, what: &str, objects: &[lint::Object], kustomized: bool) -> R {
        // the declared RPO: the replication interval (none for synchronous replication)
        let rpo = Some(self.session.cfg.spec.interval()).filter(|d| !d.is_zero());
        let opts = rules::Options { rpo, ..Default::default() };
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

    /// End of the scenario: its VM stops, every fault it injected is recovered (newest first), and what it
    /// did becomes a plain record for the reports.
    pub async fn finish(mut self) -> ScenarioRecord {
        if let Some(mut env) = self.session.env_if_up().await {
            for vm in &self.vms {
                env.workload.stop(vm).await;
                env.driver.release(vm).await;
                env.bus.publish(crate::events::Event::VmDone { vm: vm.clone() });
            }
            for r in self.receipts.iter().rev() {
                if let Err(e) = env.faults.recover(r).await {
                    self.harness_errors.push(format!("failed to recover from fault \"{}\": {e}", r.fault));
                }
            }
        }
        ScenarioRecord {
            duration: Wt::now().since(self.started),
            vm: self.vm,
            receipts: self.receipts,
            outcomes: self.outcomes,
            repairs: self.repairs,
            verdicts: self.verdicts,
            rtts: self.rtts,
            cause: self.causes.into_iter().max(),
            inconclusive: self.inconclusive,
            harness_errors: self.harness_errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_that_counts_is_the_outage_still_in_force() {
        let r = |fault: Fault, ms: u64| Receipt { fault, at: Wt::from_ms(ms) };
        let receipts = vec![
            r(Fault::Partition { a: "b".into(), b: "a".into() }, 1000),
            r(Fault::StopReplication { site: "b".into() }, 5000),
            r(Fault::PowerLoss { site: "a".into() }, 40_000),
        ];
        // the partition healed long before: the power loss counts
        let healed = [(0, Wt::from_ms(3000))];
        assert_eq!(outage_in_force(&receipts, &healed, "a").unwrap().at, Wt::from_ms(40_000));
        // still in force: the partition was the first outage
        assert_eq!(outage_in_force(&receipts, &[], "a").unwrap().at, Wt::from_ms(1000));
        // replication stopping takes no site
        assert!(outage_in_force(&receipts[1..2], &[], "b").is_none());
    }
}
