//! Errors of the environments, with their cause carried as data: an error of the harness itself (a tool
//! missing, a command the harness ran wrongly, its own machinery timing out, an environment that could not
//! be built) makes the run exit 2; a failure of the system under test (storage refusing a promote,
//! replication that does not arrive, a guest that cannot write) exits 1. Never decided by matching text.

use serde::Serialize;
use std::time::Duration;

/// Who is at fault when something fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Cause {
    /// The system under test fell short (exit 1).
    System,
    /// The harness or its input broke, or nothing could be proven (exit 2).
    Harness,
}

/// An error that knows its cause.
pub trait Caused {
    fn cause(&self) -> Cause;
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("missing tool: {tool} ({hint})")]
    MissingTool { tool: String, hint: String },
    #[error("failed to {what} on site {site}: {detail}")]
    Site { site: String, what: String, detail: String, cause: Cause },
    #[error("timed out after {after:?} waiting for {what} on site {site}{}", crate::wait::budget_note(.budget))]
    Timeout { site: String, what: String, after: Duration, cause: Cause, budget: Option<&'static str> },
    #[error("failed to run VM {vm} on site {site}: {detail}")]
    Vm { vm: String, site: String, detail: String, cause: Cause },
    #[error("failed to {what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("refusing to {what}: environment {env} is not marked disposable (set `disposable: true`)")]
    NotDisposable { what: String, env: String },
    /// A request that does not fit the environment (unknown site, VM not running, ...).
    #[error("{0}")]
    Usage(String),
    #[error("failed to bring up environment {env}: {source}")]
    BringUp { env: String, source: Box<EnvError> },
    /// The environment came up but is outside what its DR mode supports (a Metro-DR pair too far apart).
    #[error("environment {env} is out of spec: {what}")]
    OutOfSpec { env: String, what: String },
    /// The system under test is set up so that it cannot keep the promise the environment file declares
    /// (a DR policy scheduling less often than the declared interval).
    #[error("the declared promise cannot be kept: {0}")]
    Unkeepable(String),
    /// A fault the harness set out to cause (or undo) could not be shown in effect (or gone): whatever
    /// came after would prove nothing.
    #[error("the fault \"{fault}\" was not shown {phase}: {why}")]
    FaultUnproven { fault: String, phase: String, why: String },
    /// An error met earlier in the run, told again (with its cause).
    #[error("{msg}")]
    Earlier { msg: String, cause: Cause },
}

impl Caused for EnvError {
    fn cause(&self) -> Cause {
        match self {
            EnvError::Site { cause, .. } | EnvError::Timeout { cause, .. } | EnvError::Vm { cause, .. } | EnvError::Earlier { cause, .. } => *cause,
            EnvError::OutOfSpec { .. } | EnvError::Unkeepable(_) => Cause::System,
            EnvError::MissingTool { .. }
            | EnvError::FaultUnproven { .. }
            | EnvError::Io { .. }
            | EnvError::NotDisposable { .. }
            | EnvError::Usage(_)
            | EnvError::BringUp { .. } => Cause::Harness,
        }
    }
}

impl EnvError {
    /// The same error told again (for each of several VMs it stopped), with its cause.
    pub fn again(&self) -> EnvError {
        EnvError::Earlier { msg: self.to_string(), cause: self.cause() }
    }

    /// The same error, blamed on the harness (it happened while the harness built or ran its machinery).
    pub fn harness(self) -> EnvError {
        match self {
            EnvError::Site { site, what, detail, .. } => EnvError::Site { site, what, detail, cause: Cause::Harness },
            EnvError::Timeout { site, what, after, budget, .. } => EnvError::Timeout { site, what, after, cause: Cause::Harness, budget },
            EnvError::Vm { vm, site, detail, .. } => EnvError::Vm { vm, site, detail, cause: Cause::Harness },
            e => e,
        }
    }
}

/// How a command ends, as its exit code says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 0: everything passed.
    Passed,
    /// 1: the system under test fell short.
    Failed,
    /// 2: the harness or its input broke, or a drill proved nothing either way.
    Broken,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Passed => 0,
            Exit::Failed => 1,
            Exit::Broken => 2,
        }
    }
}

/// Turns a wait's error into an environment error naming the site; a timeout gets `cause`.
pub fn from_wait(site: &str, cause: Cause, e: crate::wait::WaitError<EnvError>) -> EnvError {
    match e {
        crate::wait::WaitError::Timeout { what, after, budget } => EnvError::Timeout { site: site.into(), what, after, cause, budget },
        crate::wait::WaitError::Failed(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_data() {
        let storage = EnvError::Site { site: "b".into(), what: "promote".into(), detail: "refused".into(), cause: Cause::System };
        assert_eq!(storage.cause(), Cause::System);
        assert_eq!(storage.harness().cause(), Cause::Harness);
        assert_eq!(EnvError::MissingTool { tool: "qemu".into(), hint: "x".into() }.cause(), Cause::Harness);
        let up = EnvError::BringUp { env: "lab".into(), source: Box::new(EnvError::Usage("x".into())) };
        assert_eq!(up.cause(), Cause::Harness);
        assert_eq!(up.to_string(), "failed to bring up environment lab: x");
        // a wait that ran out: what, on which site, how long, and the budget key that would change it
        let e = from_wait(
            "b",
            Cause::System,
            crate::wait::WaitError::Timeout { what: "the forced promote".into(), after: std::time::Duration::from_secs(90), budget: Some("budgets.promote") },
        );
        assert_eq!(e.to_string(), "timed out after 90s waiting for the forced promote on site b (the environment file's `budgets.promote`)");
        assert_eq!(e.cause(), Cause::System);
    }
}
