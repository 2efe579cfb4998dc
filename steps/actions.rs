//! The two DR actions.

use super::params::Site;
use super::DrWorld;
use cucumber::when;

#[when(expr = "the VM is relocated to site {site}")]
async fn relocate(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.relocate(&site.0, true).await?)
}

/// Negative control: the new primary is promoted by force right after the demotion.
#[when(expr = "the VM is relocated to site {site} without waiting for the sync barrier")]
async fn relocate_without_barrier(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.relocate(&site.0, false).await?)
}

#[when(expr = "the VM is failed over to site {site}")]
async fn failover(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.failover(&site.0, true).await?)
}

/// Negative control: the lost site is neither isolated nor fenced at the storage.
#[when(expr = "the VM is failed over to site {site} without fencing")]
async fn failover_without_fencing(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.failover(&site.0, false).await?)
}
