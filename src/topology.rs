//! Topology: the sites, their peers, and which failure domain holds which storage cluster. Regional-DR has
//! two sites, each its own failure domain with its own cluster, replicating to the other; Metro-DR (later)
//! has one cluster stretched over three failure domains (two sites and an arbiter). Site arithmetic lives
//! here and nowhere else.

use crate::config::{EnvConfig, Replication};
use crate::error::EnvError;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Runs VMs and holds data.
    Data,
    /// Holds a tie-breaking monitor only (Metro-DR).
    Arbiter,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailureDomain {
    pub name: String,
    pub role: Role,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StorageCluster {
    pub name: String,
    /// The failure domains it spans.
    pub domains: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Topology {
    /// The environment's name, for errors.
    pub env: String,
    pub domains: Vec<FailureDomain>,
    pub clusters: Vec<StorageCluster>,
}

impl Topology {
    /// The topology an environment file describes. Pure.
    pub fn of(cfg: &EnvConfig) -> Topology {
        let sites = cfg.site_names();
        let mut domains: Vec<FailureDomain> = sites.iter().map(|s| FailureDomain { name: s.clone(), role: Role::Data }).collect();
        let clusters = match &cfg.spec.replication {
            // one cluster per site, mirrored to the other
            Replication::Regional(_) => sites.iter().map(|s| StorageCluster { name: format!("ceph-{s}"), domains: vec![s.clone()] }).collect(),
            // one cluster over both sites and the arbiter
            Replication::Metro(m) => {
                domains.push(FailureDomain { name: m.arbiter.clone(), role: Role::Arbiter });
                vec![StorageCluster { name: "ceph".into(), domains: domains.iter().map(|d| d.name.clone()).collect() }]
            }
        };
        Topology { env: cfg.spec.name.clone(), domains, clusters }
    }

    /// The data sites, in the order of the environment file.
    pub fn sites(&self) -> impl Iterator<Item = &str> {
        self.domains.iter().filter(|d| d.role == Role::Data).map(|d| d.name.as_str())
    }

    /// `name` if it is a data site of this environment; the error names the sites there are.
    pub fn site(&self, name: &str) -> Result<String, EnvError> {
        if self.sites().any(|s| s == name) {
            Ok(name.to_string())
        } else {
            Err(EnvError::Usage(format!("unknown site {name:?}: environment {} has sites {}", self.env, self.sites().collect::<Vec<_>>().join(", "))))
        }
    }

    /// The other data site: where a site's data is replicated to and where its VMs fail over.
    pub fn peer_of(&self, site: &str) -> Result<String, EnvError> {
        self.site(site)?;
        let others: Vec<&str> = self.sites().filter(|s| *s != site).collect();
        match others.as_slice() {
            [one] => Ok(one.to_string()),
            _ => Err(EnvError::Usage(format!("site {site} of environment {} has {} peers, not one", self.env, others.len()))),
        }
    }

    /// The storage cluster holding the data of `site`.
    pub fn cluster_of(&self, site: &str) -> Result<&StorageCluster, EnvError> {
        self.site(site)?;
        self.clusters
            .iter()
            .find(|c| c.domains.iter().any(|d| d == site))
            .ok_or_else(|| EnvError::Usage(format!("no storage cluster holds site {site} in environment {}", self.env)))
    }

    /// Every failure domain, data sites first (what the network joins).
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.domains.iter().map(|d| d.name.as_str())
    }

    /// True when the two sites' data sit in one (stretched) cluster: nothing to replicate between them.
    pub fn shared_storage(&self, a: &str, b: &str) -> Result<bool, EnvError> {
        Ok(self.cluster_of(a)?.name == self.cluster_of(b)?.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regional() -> Topology {
        let text = "name: t\nbackend:\n  lab: {}\ndisposable: true\nsites:\n  - name: east\n  - name: west\nreplication:\n  regional:\n    interval: 5s\n    scheduler: harness\n";
        Topology::of(&crate::config::from_yaml(std::path::Path::new("t.yaml"), text).unwrap())
    }

    #[test]
    fn regional_has_two_sites_each_with_its_own_cluster() {
        let t = regional();
        assert_eq!(t.sites().collect::<Vec<_>>(), ["east", "west"]);
        assert_eq!(t.peer_of("east").unwrap(), "west");
        assert_eq!(t.peer_of("west").unwrap(), "east");
        assert_eq!(t.cluster_of("west").unwrap().name, "ceph-west");
        assert!(!t.shared_storage("east", "west").unwrap());
    }

    #[test]
    fn metro_has_one_cluster_over_two_sites_and_an_arbiter() {
        let text = "name: t\nbackend:\n  lab: {}\ndisposable: true\nsites:\n  - name: a\n  - name: b\nreplication:\n  metro:\n    arbiter: c\n";
        let t = Topology::of(&crate::config::from_yaml(std::path::Path::new("t.yaml"), text).unwrap());
        assert_eq!(t.sites().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(t.domains().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(t.peer_of("a").unwrap(), "b");
        assert!(t.shared_storage("a", "b").unwrap());
        assert!(t.site("c").is_err(), "the arbiter runs no VMs");
        assert_eq!(t.clusters[0].domains, ["a", "b", "c"]);
    }

    #[test]
    fn unknown_sites_are_named_with_the_ones_there_are() {
        let e = regional().peer_of("north").unwrap_err().to_string();
        assert_eq!(e, "unknown site \"north\": environment t has sites east, west");
    }
}
