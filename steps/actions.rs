//! The two DR actions.

use super::params::Site;
use super::DrWorld;
use crate::drill::Fencing;
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
    Ok(w.s()?.failover(&site.0, Fencing::FULL).await?)
}

/// Negative control: the lost site is neither isolated nor fenced at the storage.
#[when(expr = "the VM is failed over to site {site} without fencing")]
async fn failover_without_fencing(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.failover(&site.0, Fencing::NONE).await?)
}

/// Negative control: the lost site is only cut off by the harness (undone later); the storage does not
/// fence its clients.
#[when(expr = "the VM is failed over to site {site} without the storage fence")]
async fn failover_isolation_only(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.failover(&site.0, Fencing::ISOLATION_ONLY).await?)
}

/// Positive control: the storage fence alone, the lost site never cut off by the harness.
#[when(expr = "the VM is failed over to site {site} with the storage fence alone")]
async fn failover_storage_only(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.failover(&site.0, Fencing::STORAGE_ONLY).await?)
}
