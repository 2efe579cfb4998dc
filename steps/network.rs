//! The network between sites: latency, loss, rate, partitions, and the round-trip time measured.

use super::params::{Duration, Site};
use super::DrWorld;
use crate::fault::Fault;
use crate::units::Dur;
use cucumber::{given, then, when};

#[given(expr = "sites {site} and {site} are {duration} apart")]
#[when(expr = "sites {site} and {site} become {duration} apart")]
async fn apart(w: &mut DrWorld, a: Site, b: Site, d: Duration) -> anyhow::Result<()> {
    let latency = |from: &str, to: &str| Fault::Latency { from: from.into(), to: to.into(), delay: Dur(d.0), jitter: Dur(std::time::Duration::ZERO) };
    Ok(w.s()?.inject_both_ways(&a.0, &b.0, latency).await?)
}

#[given(expr = "sites {site} and {site} are {duration} apart with {duration} of jitter")]
async fn apart_with_jitter(w: &mut DrWorld, a: Site, b: Site, d: Duration, j: Duration) -> anyhow::Result<()> {
    let latency = |from: &str, to: &str| Fault::Latency { from: from.into(), to: to.into(), delay: Dur(d.0), jitter: Dur(j.0) };
    Ok(w.s()?.inject_both_ways(&a.0, &b.0, latency).await?)
}

#[given(expr = "{float}% of the packets between sites {site} and {site} are lost")]
async fn lossy(w: &mut DrWorld, percent: f64, a: Site, b: Site) -> anyhow::Result<()> {
    let permille = (percent * 10.0).round().clamp(0.0, 1000.0) as u32;
    Ok(w.s()?.inject_both_ways(&a.0, &b.0, |from, to| Fault::Loss { from: from.into(), to: to.into(), permille }).await?)
}

#[given(expr = "the link between sites {site} and {site} carries {int} Mbit\\/s")]
async fn rate(w: &mut DrWorld, a: Site, b: Site, mbit: u64) -> anyhow::Result<()> {
    Ok(w.s()?.inject_both_ways(&a.0, &b.0, |from, to| Fault::RateLimit { from: from.into(), to: to.into(), bps: mbit * 1_000_000 }).await?)
}

#[when(expr = "sites {site} and {site} are partitioned")]
async fn partition(w: &mut DrWorld, a: Site, b: Site) -> anyhow::Result<()> {
    Ok(w.s()?.inject(Fault::Partition { a: a.0, b: b.0 }).await?)
}

#[when(expr = "the partition between sites {site} and {site} heals")]
async fn heal(w: &mut DrWorld, a: Site, b: Site) -> anyhow::Result<()> {
    Ok(w.s()?.recover(Fault::Partition { a: a.0, b: b.0 }).await?)
}

#[then(expr = "the round-trip time between sites {site} and {site} is at most {duration}")]
#[given(expr = "the round-trip time between sites {site} and {site} is at most {duration}")]
async fn round_trip(w: &mut DrWorld, a: Site, b: Site, d: Duration) -> anyhow::Result<()> {
    Ok(w.s()?.round_trip_at_most(&a.0, &b.0, d.0).await?)
}
