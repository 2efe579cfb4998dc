//! The DR cycle after an outage: a lost site comes back and is repaired as the DR operator would, and the
//! roles each site's storage reports are checked.

use super::params::Site;
use super::DrWorld;
use crate::scenario::Repairing;
use cucumber::{then, when};

#[when(expr = "site {site} comes back")]
async fn comes_back(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.comes_back(&site.0, Repairing::Full).await?)
}

/// Negative control: the stale primary is demoted, not resynced from the new primary.
#[when(expr = "site {site} comes back without the resync")]
async fn comes_back_without_resync(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.comes_back(&site.0, Repairing::WithoutResync).await?)
}

/// Negative control: the site is back and nothing is repaired (after a forced promote it is still primary).
#[when(expr = "site {site} comes back without repair")]
async fn comes_back_without_repair(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.comes_back(&site.0, Repairing::Skipped).await?)
}

#[then(expr = "site {site} is the VM's only primary")]
async fn only_primary(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.only_primary(&site.0).await?)
}
