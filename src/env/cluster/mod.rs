//! Kubernetes clusters as an environment (kind pairs, existing clusters): the DR drivers that act through
//! the clusters' own DR orchestration. The workload (a KubeVirt VM) and the faults (node containers,
//! operator commands) come as further implementations of the same ports.

pub mod ramen;
