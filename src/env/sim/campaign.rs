//! Seeded campaigns: random scenarios over the step vocabulary, written as feature files and run by the
//! ordinary runner on a simulated environment with random rates and intervals. Pure: a seed gives the
//! same environment file and features, so any seed that disagrees with its expectation replays.
//!
//! With honest storage every scenario must pass within its declared bound; with one misbehaviour switched
//! on, scenarios are drawn from the part of the vocabulary that lie concerns, and every one must fail.

use super::world::Rng;
use crate::config::Misbehaviour;
use std::fmt::Write as _;

/// One campaign batch: an environment file and a feature file of `scenarios` scenarios.
#[derive(Clone, Debug)]
pub struct Batch {
    pub seed: u64,
    pub metro: bool,
    pub lie: Option<Misbehaviour>,
    pub env_yaml: String,
    pub feature: String,
    pub scenarios: usize,
}

/// What kinds of scenario a lie shows in (None: honest storage, every kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Relocate,
    Failover,
    /// Failover, the lost site back and repaired, relocated back.
    Cycle,
    /// Metro: the old site frozen, failed over, thawed and reconnected: its writes must be refused.
    FenceHolds,
}

fn kinds(metro: bool, lie: Option<Misbehaviour>) -> &'static [Kind] {
    use Misbehaviour::*;
    match (metro, lie) {
        (false, None) => &[Kind::Relocate, Kind::Failover, Kind::Cycle],
        (true, None) => &[Kind::Relocate, Kind::Failover, Kind::Cycle, Kind::FenceHolds],
        (false, Some(AckUnpersisted | SnapshotCompleteEarly | StatusAhead | CloneLosesParent)) => &[Kind::Relocate, Kind::Failover, Kind::Cycle],
        (false, Some(PromoteRollsBack)) => &[Kind::Failover, Kind::Cycle],
        (false, Some(TwoPrimaries)) => &[Kind::Cycle],
        (true, Some(AckUnpersisted)) => &[Kind::Relocate, Kind::Failover, Kind::Cycle],
        (true, Some(FencedClientWrites)) => &[Kind::FenceHolds],
        _ => &[],
    }
}

/// The lies a replication mode can show (the others concern the other mode).
pub fn lies(metro: bool) -> Vec<Misbehaviour> {
    Misbehaviour::ALL.into_iter().filter(|m| !kinds(metro, Some(*m)).is_empty()).collect()
}

fn pick<T: Copy>(rng: &mut Rng, xs: &[T]) -> T {
    xs[rng.below(xs.len() as u64) as usize]
}

/// A batch from `seed`. Pure.
pub fn batch(seed: u64, metro: bool, lie: Option<Misbehaviour>, scenarios: usize) -> Batch {
    let mut rng = Rng::new(seed);
    let interval = pick(&mut rng, &[2u64, 3, 5, 10, 30]);
    let allowance_ms = interval * 1000 * pick(&mut rng, &[4u64, 6, 10]) / 10;
    let sync_max = (allowance_ms * 2 / 3).max(400);
    let lie_line = lie
        .map(|l| format!("    misbehave: [{}]\n", serde_json::to_value(l).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()))
        .unwrap_or_default();
    let replication = if metro {
        "  metro:\n    arbiter: c\n    maxRtt: 10ms\n".to_string()
    } else {
        format!("  regional:\n    interval: {interval}s\n    scheduler: harness\n    syncAllowance: {allowance_ms}ms\n")
    };
    let env_yaml = format!(
        "# campaign batch, seed {seed}\nname: sim-campaign-{seed}\ndisposable: true\nsites:\n  - name: a\n  - name: b\nbackend:\n  sim:\n    seed: {seed}\n    syncTimeMin: 100ms\n    syncTimeMax: {sync_max}ms\n    bootTime: {}ms\n{lie_line}replication:\n{replication}",
        500 + rng.below(3000)
    );
    let mut f = format!("Feature: campaign batch {seed}\n");
    let menu = kinds(metro, lie);
    for i in 0..scenarios {
        let kind = pick(&mut rng, menu);
        // at most 400 records an interval: a scenario of ~8 intervals stays well inside the disk (16383
        // records) and a campaign inside its minute
        let rates: Vec<u32> = [5u32, 10, 20, 50, 100, 200].into_iter().filter(|r| metro || *r as u64 * interval <= 400).collect();
        let rate = pick(&mut rng, &rates);
        let env = if metro { "a Metro-DR environment with sites a and b" } else { "a Regional-DR environment with sites a and b" };
        let _ = writeln!(f, "\n  Scenario: seed {seed} #{i}: {kind:?}\n    Given {env}\n    And a VM writing {rate} records per second on site a");
        if rng.below(3) == 0 {
            let ms = pick(&mut rng, &[1u32, 2, 4]);
            let _ = writeln!(f, "    And sites a and b are {ms}ms apart");
        }
        if metro {
            let _ = writeln!(f, "    When the VM has written {} records", 50 + rng.below(400));
            let _ = writeln!(f, "    And the VM's writes so far are replicated to site b");
        } else {
            let _ = writeln!(f, "    When the VM runs for {} replication intervals", 2 + rng.below(3));
            if rng.below(2) == 0 {
                let _ = writeln!(f, "    And the VM's writes so far are replicated to site b\n    And the VM runs for {}ms", rng.below(interval * 1000));
            }
        }
        let verdict = if metro { "no acknowledged write is lost" } else { "the data loss window is at most the replication interval" };
        match kind {
            Kind::Relocate => {
                let _ = writeln!(f, "    And the VM is relocated to site b\n    Then no acknowledged write is lost\n    And the STOP record of the graceful shutdown survives\n    And site b is the VM's only primary");
            }
            Kind::Failover | Kind::Cycle => {
                let faults: &[&str] = if metro {
                    &["site a loses power", "site a freezes", "site a is cut off from the other site"]
                } else {
                    &["site a loses power", "site a freezes", "site a is cut off from the other site", "sites a and b are partitioned"]
                };
                let _ = writeln!(f, "    And {}\n    And the VM is failed over to site b\n    Then {verdict}", pick(&mut rng, faults));
                if kind == Kind::Cycle {
                    let _ = writeln!(f, "    When site a comes back\n    And the VM runs for {}\n    And the VM is relocated to site a\n    Then no acknowledged write is lost\n    And site a is the VM's only primary", if metro { format!("{}s", 2 + rng.below(10)) } else { "2 replication intervals".into() });
                }
            }
            Kind::FenceHolds => {
                let storage_alone = rng.below(2) == 0;
                let _ = writeln!(
                    f,
                    "    And site a freezes\n    And the VM is failed over to site b{}\n    And site a thaws",
                    if storage_alone { " with the storage fence alone" } else { "" }
                );
                if !storage_alone {
                    let _ = writeln!(f, "    And site a is reconnected");
                }
                let _ = writeln!(f, "    And the VM runs for {}s\n    Then every write the old VM attempts after the fence fails", 3 + rng.below(10));
            }
        }
    }
    Batch { seed, metro, lie, env_yaml, feature: f, scenarios }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_batch_and_every_step_is_known() {
        let (x, y) = (batch(7, false, None, 20), batch(7, false, None, 20));
        assert_eq!((x.env_yaml.clone(), x.feature.clone()), (y.env_yaml, y.feature));
        assert_ne!(batch(8, false, None, 20).feature, x.feature);
        for metro in [false, true] {
            for lie in std::iter::once(None).chain(lies(metro).into_iter().map(Some)) {
                let b = batch(3, metro, lie, 12);
                let cfg = crate::config::from_yaml(std::path::Path::new("campaign.yaml"), &b.env_yaml).unwrap_or_else(|e| panic!("{e}\n{}", b.env_yaml));
                assert_eq!(cfg.spec.metro().is_some(), metro);
                let dir = tempfile::tempdir().unwrap();
                let p = dir.path().join("c.feature");
                std::fs::write(&p, &b.feature).unwrap();
                crate::runner::load_features(&[p]).unwrap_or_else(|e| panic!("{e}\n{}", b.feature));
            }
        }
        assert_eq!(lies(false).len(), 6);
        assert_eq!(lies(true), vec![Misbehaviour::AckUnpersisted, Misbehaviour::FencedClientWrites]);
    }
}
