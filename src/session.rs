//! The run's context: its environment file, its event stream, and the environment itself, brought up on
//! first use and shared by the run's scenarios (they run one at a time). The runner makes one per run and
//! hands it to every scenario; nothing here is global, so a process can run any number of runs.

use crate::config::EnvConfig;
use crate::env::Environment;
use crate::error::EnvError;
use crate::events::Bus;
use std::sync::{Arc, Mutex};
use tokio::sync::MappedMutexGuard;

pub struct Session {
    pub cfg: EnvConfig,
    pub bus: Bus,
    env: tokio::sync::Mutex<Option<Environment>>,
    /// A failed bring-up is remembered and not retried within the run.
    bring_up: Mutex<Option<String>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({})", self.cfg.spec.name)
    }
}

impl Session {
    pub fn new(cfg: EnvConfig, bus: Bus) -> Arc<Session> {
        Arc::new(Session { cfg, bus, env: tokio::sync::Mutex::new(None), bring_up: Mutex::new(None) })
    }

    /// The run's environment, brought up on first use.
    pub async fn env(&self) -> Result<MappedMutexGuard<'_, Environment>, EnvError> {
        let mut g = self.env.lock().await;
        if g.is_none() {
            if let Some(e) = self.bring_up.lock().unwrap().clone() {
                return Err(EnvError::Usage(format!("the environment could not be brought up earlier in this run: {e}")));
            }
            println!("      bringing up {} ({}) ...", self.cfg.spec.name, self.cfg.replication_summary());
            for left in crate::env::reap_stale(&self.cfg) {
                println!("      removed {left} left by an earlier run that was killed");
            }
            match Environment::up(&self.cfg, self.bus.clone()).await {
                Ok(e) => {
                    println!("      {}", e.faults.describe());
                    *g = Some(e)
                }
                Err(e) => {
                    let e = EnvError::BringUp { env: self.cfg.spec.name.clone(), source: Box::new(e) };
                    *self.bring_up.lock().unwrap() = Some(e.to_string());
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
                println!("kept on purpose (--keep): {}", env.faults.kept_at());
                crate::procs::set_keep(true);
            }
            env.down().await;
        }
    }
}
