//! DR readiness: the lint checks as a step, so a drill can start with them.

use super::DrWorld;
use cucumber::given;

#[given(expr = "the manifests in {string} pass the DR readiness checks")]
async fn manifests_ready(w: &mut DrWorld, path: String) -> anyhow::Result<()> {
    Ok(w.s()?.manifests_ready(&path)?)
}

#[given(expr = "namespace {string} of context {string} passes the DR readiness checks")]
async fn namespace_ready(w: &mut DrWorld, namespace: String, context: String) -> anyhow::Result<()> {
    Ok(w.s()?.namespace_ready(&namespace, &context).await?)
}
