//! Existing clusters, by kubeconfig context: checked before anything runs (the kubeconfig readable, every
//! context the environment names present), and read-only unless the file says `disposable: true` and the
//! command line confirms (`--confirm <name>`, enforced by the runner before any step runs).

use super::kind_up::client_for;
use crate::config::{EnvConfig, ExistingSpec};
use crate::error::EnvError;

fn kubeconfig_path(spec: &ExistingSpec) -> String {
    match &spec.kubeconfig {
        Some(p) => p.display().to_string(),
        None => std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into()),
    }
}

/// Every context the environment names exists in the kubeconfig. Reads files only: no cluster is contacted.
pub fn preflight(cfg: &EnvConfig, spec: &ExistingSpec) -> Result<(), EnvError> {
    let kc = match &spec.kubeconfig {
        Some(p) => kube::config::Kubeconfig::read_from(p),
        None => kube::config::Kubeconfig::read(),
    }
    .map_err(|e| EnvError::Usage(format!("{}: kubeconfig: failed to read {}: {e}", cfg.path.display(), kubeconfig_path(spec))))?;
    let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
    let named = spec.contexts.iter().map(|(site, c)| (format!("contexts.{site}"), c)).chain(spec.hub.iter().map(|h| ("hub.context".to_string(), &h.context)));
    for (field, ctx) in named {
        if !known.contains(&ctx.as_str()) {
            return Err(EnvError::Usage(format!(
                "{}: {field}: context {ctx:?} is not in kubeconfig {} (it has: {})",
                cfg.path.display(),
                kubeconfig_path(spec),
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// `env status`: each context answering, and whether the pieces a drill needs are installed there.
pub async fn status(cfg: &EnvConfig, spec: &ExistingSpec) -> Result<Vec<String>, EnvError> {
    preflight(cfg, spec)?;
    let mut out = vec![format!(
        "environment {} (existing clusters, {})",
        cfg.spec.name,
        if cfg.spec.disposable { "disposable: destructive steps need --confirm" } else { "read-only" }
    )];
    let kcp = spec.kubeconfig.as_deref();
    let mut places: Vec<(String, String)> = spec.contexts.iter().map(|(s, c)| (format!("site {s}"), c.clone())).collect();
    if let Some(h) = &spec.hub {
        places.push(("hub".into(), h.context.clone()));
    }
    for (what, ctx) in places {
        let line = match client_for(&ctx, kcp).await {
            Err(e) => format!("{what}: {e}"),
            Ok(c) => match c.apiserver_version().await {
                Err(e) => format!("{what}: context {ctx} does not answer: {e}"),
                Ok(v) => {
                    let groups = c.list_api_groups().await.map(|g| g.groups.into_iter().map(|g| g.name).collect::<Vec<_>>()).unwrap_or_default();
                    let has = |g: &str| if groups.iter().any(|x| x == g) { "yes" } else { "no" };
                    format!(
                        "{what}: context {ctx} answers (Kubernetes {}.{}); KubeVirt {}, CDI {}, VolumeReplication {}, Ramen {}",
                        v.major,
                        v.minor,
                        has("kubevirt.io"),
                        has("cdi.kubevirt.io"),
                        has("replication.storage.openshift.io"),
                        has("ramendr.openshift.io")
                    )
                }
            },
        };
        out.push(line);
    }
    out.push(format!("replication: {}", cfg.replication_summary()));
    Ok(out)
}
