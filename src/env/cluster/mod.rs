//! Kubernetes clusters as an environment (kind pairs, existing clusters): the kind pair's plan and its
//! bring-up, existing clusters' checks, the DR driver that acts through the clusters' own DR orchestration
//! (Ramen) and the faults on kind's node containers. The KubeVirt VM workload's resources and console are
//! in `k8s::kubevirt`; the workload port over them is not wired yet, so drills on these backends refuse
//! to start (exit 2) instead of pretending.

pub mod existing;
pub mod kind;
pub mod kind_up;
pub mod kubevirt;
pub mod nodes;
pub mod ramen;

use crate::config::EnvConfig;
use crate::error::EnvError;

/// Why a drill cannot run on a Kubernetes backend yet, naming what is missing and what does work.
pub fn drills_unavailable(cfg: &EnvConfig) -> EnvError {
    EnvError::Usage(format!(
        "{}: drills on the {} backend need the KubeVirt VM workload port, which this version does not have yet; what works here: `env up --dry-run`{}, `env status`, `lint --context`",
        cfg.path.display(),
        cfg.spec.backend_name(),
        if cfg.spec.backend_name() == "kind" { ", `env up`/`env down`" } else { "" }
    ))
}
