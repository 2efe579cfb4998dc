//! `dr-drill lint`: DR readiness of manifests or of a live namespace.

use super::{load_env, Exit};
use crate::cli::LintArgs;
use crate::lint::{self, live, output, rules};
use anyhow::Context as _;

pub async fn lint(a: LintArgs) -> anyhow::Result<Exit> {
    let rpo = match (a.rpo, &a.env) {
        (Some(r), _) => Some(r.0),
        (None, Some(e)) => Some(load_env(e)?.spec.interval()),
        (None, None) => None,
    };
    let mut opts = rules::Options { app_label: a.app_label, mode: a.mode, dr: a.dr, rpo, flatten: a.flatten, rtt: None };
    let (objects, kustomized) = match (a.context, a.namespace) {
        (Some(ctx), Some(ns)) => {
            let client = live::client(&ctx, a.kubeconfig.as_deref()).await?;
            if let Some(peer) = a.peer_context {
                let pc = live::client(&peer, a.kubeconfig.as_deref()).await?;
                opts.rtt = Some(live::apiserver_rtt(&pc, 5).await.with_context(|| format!("failed to reach the API server of context {peer}"))?);
            }
            (live::fetch(client, &ctx, &ns).await?, false)
        }
        _ => {
            anyhow::ensure!(!a.paths.is_empty(), "lint needs at least one path (a file, a directory, or - for stdin), or --context and --namespace");
            lint::load_paths(&a.paths)?
        }
    };
    let findings = rules::check(&objects, kustomized, &opts);
    print!("{}", output::render(a.format, &findings, objects.len()));
    Ok(if findings.iter().any(|f| f.severity >= a.fail_on) { Exit::Failed } else { Exit::Passed })
}
