//! Faults on existing clusters: the harness cannot cut a data center's power itself, so the environment
//! file names the operator's own commands (`commands.powerLoss` / `restore`, `isolate` / `reconnect`), run
//! with `sh -c` and `DR_DRILL_SITE`, `DR_DRILL_CONTEXT` and `DR_DRILL_FAULT` set. A command that fails
//! is the harness's (its input's) failure; recovery commands must be idempotent, as every recovery is.

use crate::clock::Wt;
use crate::error::{Cause, EnvError};
use crate::events::{Bus, Event};
use crate::fault::{Fault, Proof, Receipt};
use crate::ports::{Faults, Infrastructure};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;

pub struct OperatorCommands {
    env: String,
    disposable: bool,
    commands: BTreeMap<String, String>,
    /// site -> kubeconfig context.
    contexts: BTreeMap<String, String>,
    bus: Bus,
    deadline: Duration,
}

/// The command that injects a fault and the one that recovers from it, by their keys. Pure.
pub fn keys(f: &Fault) -> Option<(&'static str, &'static str, &str)> {
    match f {
        Fault::PowerLoss { site } => Some(("powerLoss", "restore", site)),
        Fault::Isolate { site } => Some(("isolate", "reconnect", site)),
        _ => None,
    }
}

impl OperatorCommands {
    pub fn new(
        env: &str,
        disposable: bool,
        commands: BTreeMap<String, String>,
        contexts: BTreeMap<String, String>,
        bus: Bus,
        deadline: Duration,
    ) -> OperatorCommands {
        OperatorCommands { env: env.into(), disposable, commands, contexts, bus, deadline }
    }

    async fn run(&self, key: &str, site: &str, fault: &Fault) -> Result<(), EnvError> {
        let cmd = self.commands.get(key).ok_or_else(|| {
            EnvError::Usage(format!(
                "environment {}: no `commands.{key}` to {fault} (existing clusters: the operator's commands do what the harness cannot)",
                self.env
            ))
        })?;
        let mut c = tokio::process::Command::new("sh");
        c.args(["-c", cmd])
            .env("DR_DRILL_SITE", site)
            .env("DR_DRILL_CONTEXT", self.contexts.get(site).map(String::as_str).unwrap_or(""))
            .env("DR_DRILL_FAULT", key);
        let out = crate::procs::run(c, self.deadline, &format!("commands.{key}")).await.map_err(|e| EnvError::Site {
            site: site.into(),
            what: format!("run commands.{key}"),
            detail: e,
            cause: Cause::Harness,
        })?;
        if !out.ok {
            return Err(EnvError::Site {
                site: site.into(),
                what: format!("run commands.{key} ({cmd})"),
                detail: out.stderr.trim().lines().last().unwrap_or("failed").to_string(),
                cause: Cause::Harness,
            });
        }
        Ok(())
    }
}

/// The only proof existing clusters give: the operator's command ran to its end with exit code 0.
fn operators_word(key: &str, t0: Wt) -> Proof {
    Proof::seen_since(vec![format!("commands.{key} exited 0 (the operator's command's word: the harness cannot look inside existing sites)")], t0)
}

#[async_trait]
impl Faults for OperatorCommands {
    async fn inject(&mut self, fault: Fault) -> Result<Receipt, EnvError> {
        if !self.disposable {
            return Err(EnvError::NotDisposable { what: fault.to_string(), env: self.env.clone() });
        }
        let (k, _, site) = keys(&fault).ok_or_else(|| {
            EnvError::Usage(format!("\"{fault}\" cannot be caused on existing clusters (power loss and isolation can, through the operator's commands)"))
        })?;
        let site = site.to_string();
        let t0 = Wt::now();
        self.run(k, &site, &fault).await?;
        // the fault counts from when the operator's command says it is done (it may take minutes); the
        // harness cannot see inside the operator's sites: the command's word is the proof, and says so
        let at = Wt::now();
        let proof = operators_word(k, t0);
        self.bus.publish_at(at, Event::Fault { fault: fault.clone(), proof: proof.seen.clone() });
        Ok(Receipt { fault, at, proof })
    }

    async fn recover(&mut self, r: &Receipt) -> Result<Proof, EnvError> {
        let Some((_, k, site)) = keys(&r.fault) else { return Ok(Proof::default()) };
        let site = site.to_string();
        let t0 = Wt::now();
        self.run(k, &site, &r.fault).await?;
        let proof = operators_word(k, t0);
        self.bus.publish(Event::Recovered { fault: r.fault.clone(), proof: proof.seen.clone() });
        Ok(proof)
    }
}

#[async_trait]
impl Infrastructure for OperatorCommands {
    fn describe(&self) -> String {
        format!("existing clusters: {}", self.contexts.iter().map(|(s, c)| format!("site {s} = context {c}")).collect::<Vec<_>>().join(", "))
    }
    fn kept_at(&self) -> String {
        "the clusters are the operator's: nothing of theirs is removed".into()
    }
    fn rss_bytes(&self) -> u64 {
        0
    }
    async fn round_trips(&mut self, _from: &str, _to: &str, _samples: u32) -> Result<Vec<Duration>, EnvError> {
        Err(EnvError::Usage("inter-site round trips cannot be measured from outside existing clusters: run `dr-drill lint --context <primary> --peer-context <peer>` from the primary site".into()))
    }
    async fn down(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fault_has_its_command_and_its_undoing() {
        assert_eq!(keys(&Fault::PowerLoss { site: "a".into() }), Some(("powerLoss", "restore", "a")));
        assert_eq!(keys(&Fault::Isolate { site: "b".into() }), Some(("isolate", "reconnect", "b")));
        assert_eq!(keys(&Fault::Freeze { site: "a".into() }), None);
    }
}
