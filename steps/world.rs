//! The per-scenario World, and the bridge from library errors to step failures.

use crate::dr::Outcome;
use crate::env::lab::LabError;
use crate::env::Environment;
use crate::fault::Receipt;
use crate::oracle::Verdict;
use crate::runner;

#[derive(Debug, Default, cucumber::World)]
pub struct DrWorld {
    /// The scenario's VM, once created.
    pub vm: Option<String>,
    /// Faults injected by the scenario; the after hook recovers every one of them.
    pub receipts: Vec<Receipt>,
    /// The last DR action's outcome and evidence.
    pub outcome: Option<Outcome>,
    /// Verdicts the `Then` steps reached, for the summary.
    pub verdicts: Vec<(String, Verdict)>,
    pub started: Option<crate::clock::Wt>,
}

impl DrWorld {
    pub fn vm(&self) -> anyhow::Result<&str> {
        self.vm.as_deref().ok_or_else(|| anyhow::anyhow!("no VM in this scenario yet: start with \"a VM writing N records per second on site X\""))
    }
    pub fn outcome(&self) -> anyhow::Result<&Outcome> {
        self.outcome.as_ref().ok_or_else(|| anyhow::anyhow!("no DR action ran in this scenario: relocate or fail over the VM first"))
    }
}

/// Turns a lab error into a step failure; errors of the harness itself (not of the system under test)
/// are also recorded so that the run exits 2.
pub fn step_err(e: LabError) -> anyhow::Error {
    if e.is_harness() {
        runner::harness_error(e.to_string());
    }
    anyhow::Error::new(e)
}

/// The run's environment, brought up on first use and shared by every scenario (scenarios run serially).
pub async fn env() -> anyhow::Result<tokio::sync::MappedMutexGuard<'static, Environment>> {
    runner::env().await.map_err(|e| {
        runner::harness_error(e.clone());
        anyhow::anyhow!(e)
    })
}
