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
    vm: Option<String>,
    receipts: Vec<Receipt>,
    /// Faults the scenario itself undid (a thaw, a healed partition), and when.
    recovered: Vec<(Fault, Wt)>,
    outcome: Option<Outcome>,
    verdicts: Vec<(String, Verdict)>,
    rtts: Vec<RoundTrip>,
    causes: Vec<Cause>,
    harness_errors: Vec<String>,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scenario(vm {:?}, {} faults)", self.vm, self.receipts.len())
    }
}

type R = Result<(), StepError>;

impl Scenario {
    pub fn new(session: Arc<Session>) -> Scenario {
        Scenario { session, started: Wt::now(), vm: None, receipts: vec![], recovered: vec![], outcome: None, verdicts: vec![], rtts: vec![], causes: vec![], harness_errors: vec![] }
    }

    /// Records the cause of a failure.
    fn track<T>(&mut self, r: Result<T, StepError>) -> Result<T, StepError> {
        if let Err(e) = &r {
            self.causes.push(e.cause());
        }
        r
    }

    fn vm(&self) -> Result<String, StepError> {
        self.vm.clone().ok_or_else(|| StepError::Order("no VM in this scenario yet: start with \"a VM writing N records per second on site X\"".into()))
    }

    fn outcome(&self) -> Result<&Outcome, StepError> {
        self.outcome.as_ref().ok_or_else(|| StepError::Order("no DR action ran in this scenario: relocate or fail over the VM first".into()))
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

    /// Recovers the newest fault of the scenario equal to `fault` (a partition heals, a site thaws).
    pub async fn recover(&mut self, fault: Fault) -> R {
        let r = async {
            let receipt = self.receipts.iter().rev().find(|r| r.fault == fault).cloned();
            let receipt = receipt.ok_or_else(|| StepError::Order(format!("nothing to undo: \"{fault}\" was not done in this scenario")))?;
            self.session.env().await?.faults.recover(&receipt).await?;
            Ok(receipt.fault)
        }
        .await;
        let f = self.track(r)?;
        self.recovered.push((f, Wt::now()));
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
            println!("      round trip {} -> {}: median {:.2} ms, max {:.2} ms ({} samples)", t.from, t.to, t.median_ms, t.max_ms, t.samples);
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
            println!("      replicated: {proof}, +{:.1}s", Wt::now().since(since).as_secs_f64());
            Ok(())
        }
        .await;
        self.track(r)
    }

    /// Replication to `site` resumes: the scenario's pause of it is recovered.
    pub async fn resume_replication(&mut self, site: &str) -> R {
        let r = async {
            let paused = Fault::PauseReplication { site: site.to_string() };
            let receipt = self.receipts.iter().rev().find(|r| r.fault == paused).cloned();
            let receipt = receipt.ok_or_else(|| StepError::Order(format!("replication to site {site} was not paused in this scenario")))?;
            Ok(self.session.env().await?.faults.recover(&receipt).await?)
        }
        .await;
        self.track(r)
    }

    pub async fn relocate(&mut self, to: &str, barrier: bool) -> R {
        let r = async {
            let vm = self.vm()?;
            let mut env = self.session.env().await?;
            Ok(drill::relocate(&mut env, &vm, to, barrier).await?)
        }
        .await;
        let o = self.track(r)?;
        println!("      relocate {} -> {}: {}", o.from, o.to, o.timeline.render());
        self.outcome = Some(o);
        Ok(())
    }

    /// Fails the VM over to `to`; `fence: false` is the negative control that leaves the lost site unfenced.
    pub async fn failover(&mut self, to: &str, fence: bool) -> R {
        let r = async {
            let vm = self.vm()?;
            let mut env = self.session.env().await?;
            let from = env.driver.primary(&vm)?;
            // the outage that took the primary, if the scenario injected one: its power lost, it froze, or it
            // was cut off (isolated, or partitioned from a peer); the earliest is when it was lost
            let outage = |f: &Fault| match f {
                Fault::PowerLoss { site } | Fault::Freeze { site } | Fault::Isolate { site } => *site == from,
                Fault::Partition { a, b } => *a == from || *b == from,
                _ => false,
            };
            let fault = self.receipts.iter().find(|r| outage(&r.fault)).cloned();
            Ok(drill::failover(&mut env, &vm, to, fault.as_ref(), fence).await?)
        }
        .await;
        let mut o = self.track(r)?;
        println!("      failover {} -> {}: {}", o.from, o.to, o.timeline.render());
        self.receipts.append(&mut o.receipts);
        self.outcome = Some(o);
        Ok(())
    }

    /// Negative control: damages one record on the VM's disk through a guest on `site`, then verifies the
    /// disk again, so that the verdicts judge the damaged disk.
    pub async fn corrupt(&mut self, seq: u64, site: &str) -> R {
        let r = async {
            let vm = self.vm()?;
            let mut env = self.session.env().await?;
            let site = env.topology.site(site)?;
            if !env.cfg.spec.disposable {
                return Err(EnvError::NotDisposable { what: "damage a record on disk".into(), env: env.cfg.spec.name.clone() }.into());
            }
            let volume = env.driver.volume(&vm)?;
            Ok(env.workload.damage(&vm, &site, &volume, seq).await?)
        }
        .await;
        let d = self.track(r)?;
        if let Some(o) = self.outcome.as_mut() {
            o.evidence.scan = d.scan;
            o.evidence.history = d.history;
            // the STOP now expected is the last graceful stop's
            o.evidence.stop_seq = d.last_stop;
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
            v.loss_window_ms.map(|l| format!(", loss window {l:.0} ms")).unwrap_or_default() + &v.bound_ms.map(|b| format!(" (bound {b:.0} ms)")).unwrap_or_default()
        );
        println!("      {what}: {line}");
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
                return Err(StepError::Mismatch(format!("the last DR action ({}) promises no loss, not a loss window: judge it with \"no acknowledged write is lost\"", o.kind)));
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
            if !self.recovered.iter().any(|(f, at)| *f == (Fault::Freeze { site: from.clone() }) && *at > fence_at) {
                return Err(StepError::Order(format!("site {from} was not thawed after the failover (\"site {from} thaws\"): the old VM had no chance to write")));
            }
            let mut env = self.session.env().await?;
            let running = env.workload.abandoned_alive(&vm, old)?;
            let volume = env.driver.volume(&vm)?;
            let scan = env.workload.verify(&vm, &to, &volume).await?;
            // read after the verify boot: every ack the old writer got until then counts
            let history = env.workload.history(&vm)?;
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
                return Err(StepError::Expectation(format!("the VM served again after {:.1}s, more than {:.1}s ({})", serving / 1e3, limit / 1e3, o.timeline.render())));
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
            if let Some(vm) = &self.vm {
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
            outcome: self.outcome,
            verdicts: self.verdicts,
            rtts: self.rtts,
            cause: self.causes.into_iter().max(),
            harness_errors: self.harness_errors,
        }
    }
}
