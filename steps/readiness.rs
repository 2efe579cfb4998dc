//! DR readiness: the lint checks as a step, so a drill can start with them.

use super::DrWorld;
use crate::lint::{self, rules, Severity};
use crate::runner;
use cucumber::given;

#[given(expr = "the manifests in {string} pass the DR readiness checks")]
async fn manifests_ready(_w: &mut DrWorld, path: String) -> anyhow::Result<()> {
    let (objects, kustomized) = lint::load_paths(&[path.clone().into()]).map_err(|e| {
        runner::harness_error(e.to_string());
        anyhow::Error::new(e)
    })?;
    let opts = rules::Options { rpo: Some(runner::config().spec.replication.interval.0), ..Default::default() };
    let errors: Vec<String> = rules::check(&objects, kustomized, &opts)
        .into_iter()
        .filter(|f| f.severity >= Severity::Error)
        .map(|f| format!("{}:{}: [{}] {}", f.file, f.line, f.rule, f.message))
        .collect();
    anyhow::ensure!(errors.is_empty(), "{} is not ready for DR: {}", path, errors.join("; "));
    Ok(())
}
