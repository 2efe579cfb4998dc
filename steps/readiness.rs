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
    ready(&path, &objects, kustomized)
}

/// Fails with every error-severity finding; the environment's replication interval is the declared RPO.
fn ready(what: &str, objects: &[lint::Object], kustomized: bool) -> anyhow::Result<()> {
    let opts = rules::Options { rpo: Some(runner::config().spec.replication.interval.0), ..Default::default() };
    let errors: Vec<String> = rules::check(objects, kustomized, &opts)
        .into_iter()
        .filter(|f| f.severity >= Severity::Error)
        .map(|f| format!("{}:{}: [{}] {}", f.file, f.line, f.rule, f.message))
        .collect();
    anyhow::ensure!(errors.is_empty(), "{what} is not ready for DR: {}", errors.join("; "));
    Ok(())
}

#[given(expr = "namespace {string} of context {string} passes the DR readiness checks")]
async fn namespace_ready(_w: &mut DrWorld, namespace: String, context: String) -> anyhow::Result<()> {
    let harness = |e: lint::LintError| {
        runner::harness_error(e.to_string());
        anyhow::Error::new(e)
    };
    let client = lint::live::client(&context, None).await.map_err(harness)?;
    let objects = lint::live::fetch(client, &context, &namespace).await.map_err(harness)?;
    ready(&format!("namespace {namespace} of context {context}"), &objects, false)
}
