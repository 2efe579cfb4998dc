//! The run's context: its environment file, its event stream, and the environment itself, brought up on
//! first use and shared by the run's scenarios (they run one at a time). The runner makes one per run and
//! hands it to every scenario; nothing here is global, so a process can run any number of runs.

use crate::config::EnvConfig;
use crate::env::Environment;
use crate::error::{Cause, Caused, EnvError};
use crate::events::Bus;
use std::sync::{Arc, Mutex};
use tokio::sync::MappedMutexGuard;

pub struct Session {
    pub cfg: EnvConfig,
    pub bus: Bus,
    env: tokio::sync::Mutex<Option<Environment>>,
    /// A failed bring-up is remembered (with its cause) and not retried within the run.
    bring_up: Mutex<Option<(String, Cause)>>,
    /// Round trips between every pair of failure domains, measured when the environment came up.
    pub round_trips: Mutex<Vec<crate::report::RoundTrip>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({})", self.cfg.spec.name)
    }
}

impl Session {
    pub fn new(cfg: EnvConfig, bus: Bus) -> Arc<Session> {
        Arc::new(Session { cfg, bus, env: tokio::sync::Mutex::new(None), bring_up: Mutex::new(None), round_trips: Mutex::new(vec![]) })
    }

    /// The run's environment, brought up on first use.
    pub async fn env(&self) -> Result<MappedMutexGuard<'_, Environment>, EnvError> {
        let mut g = self.env.lock().await;
        if g.is_none() {
            if let Some((e, cause)) = self.bring_up.lock().unwrap().clone() {
                return Err(EnvError::Earlier { msg: format!("the environment could not be used, as found earlier in this run: {e}"), cause });
            }
            self.bus.note(format!("bringing up {} ({}) ...", self.cfg.spec.name, self.cfg.replication_summary()));
            for left in crate::env::reap_stale(&self.cfg) {
                self.bus.note(format!("removed {left} left by an earlier run that was killed"));
            }
            let up = match Environment::up(&self.cfg, self.bus.clone()).await {
                Ok(mut e) => {
                    self.bus.note(e.faults.describe());
                    match in_spec(&mut e).await {
                        Ok(matrix) => {
                            *self.round_trips.lock().unwrap() = matrix;
                            Ok(e)
                        }
                        Err(err) => {
                            e.down().await;
                            Err(err)
                        }
                    }
                }
                Err(e) => Err(EnvError::BringUp { env: self.cfg.spec.name.clone(), source: Box::new(e) }),
            };
            match up {
                Ok(e) => *g = Some(e),
                Err(e) => {
                    *self.bring_up.lock().unwrap() = Some((e.to_string(), e.cause()));
                    return Err(e);
                }
            }
        }
        Ok(tokio::sync::MutexGuard::map(g, |l| l.as_mut().expect("set above")))
    }

    /// The environment if it is up (for the end of a scenario: nothing is brought up for it).
    pub async fn env_if_up(&self) -> Option<MappedMutexGuard<'_, Environment>> {
        let g = self.env.lock().await;
        if g.is_none() {
            return None;
        }
        Some(tokio::sync::MutexGuard::map(g, |l| l.as_mut().expect("checked")))
    }

    /// Ends the run: the environment is torn down, or kept on purpose (and said where).
    pub async fn finish(&self, keep: bool) {
        if let Some(mut env) = self.env.lock().await.take() {
            if keep {
                self.bus.note(format!("kept on purpose (--keep): {}", env.faults.kept_at()));
                env.keep().await;
            } else {
                env.down().await;
            }
        }
    }
}

/// Metro-DR is supported only with the data sites at most `maxRtt` apart: measured before any drill (both
/// ways, 10 TCP handshakes each), and a larger median fails the run with the figure (exit 1). Every other
/// pair of failure domains (a site and the arbiter) is measured too, for the report: the matrix returned.
async fn in_spec(env: &mut Environment) -> Result<Vec<crate::report::RoundTrip>, EnvError> {
    let Some(metro) = env.cfg.spec.metro().cloned() else { return Ok(vec![]) };
    let sites: Vec<String> = env.topology.sites().map(String::from).collect();
    let domains: Vec<String> = env.topology.domains().map(String::from).collect();
    let mut matrix = vec![];
    for from in &domains {
        for to in domains.iter().filter(|d| *d != from) {
            let mut v = env.faults.round_trips(from, to, 10).await?;
            v.sort();
            matrix.push(crate::report::RoundTrip::new(from, to, &v));
        }
    }
    let data = |t: &&crate::report::RoundTrip| sites.contains(&t.from) && sites.contains(&t.to);
    for t in &matrix {
        let limit = if data(&t) { format!(" (Metro-DR allows {})", metro.max_rtt) } else { String::new() };
        env.bus.note(format!("round trip {} -> {}: median {:.2} ms{limit}", t.from, t.to, t.median_ms));
    }
    if let Some(worst) = matrix.iter().filter(data).max_by(|x, y| x.median_ms.total_cmp(&y.median_ms)) {
        if worst.median_ms > metro.max_rtt.0.as_secs_f64() * 1e3 {
            return Err(EnvError::OutOfSpec {
                env: env.cfg.spec.name.clone(),
                what: format!("round trip {} -> {} is {:.2} ms (median), Metro-DR allows at most {}", worst.from, worst.to, worst.median_ms, metro.max_rtt),
            });
        }
    }
    Ok(matrix)
}
