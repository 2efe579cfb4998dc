//! Kubernetes clusters as an environment (kind pairs, existing clusters): the DR driver that acts through
//! the clusters' own DR orchestration (Ramen) and the faults on kind's node containers. The workload (a
//! KubeVirt VM) and operator-supplied fault commands come as further implementations of the same ports.

pub mod nodes;
pub mod ramen;
