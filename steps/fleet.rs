//! An application of many VMs, moved as one: each VM judged on its own evidence by the verdict sentences.

use super::params::{Duration, Site};
use super::DrWorld;
use cucumber::{given, then, when};

#[given(expr = "{int} VMs writing {int} records per second on site {site}")]
async fn fleet_writing(w: &mut DrWorld, n: u32, rate: u32, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.start_fleet(n, rate, &site.0, None).await?)
}

/// Negative control: one VM's disk is not selected by the application's protection.
#[given(expr = "{int} VMs writing {int} records per second on site {site}, VM {int} left out of mirroring")]
async fn fleet_writing_one_left_out(w: &mut DrWorld, n: u32, rate: u32, site: Site, i: u32) -> anyhow::Result<()> {
    Ok(w.s()?.start_fleet(n, rate, &site.0, Some(i)).await?)
}

#[when(expr = "the VMs run for {duration}")]
async fn fleet_runs_for(w: &mut DrWorld, d: Duration) -> anyhow::Result<()> {
    Ok(w.s()?.runs_for(d.0).await?)
}

#[when(expr = "the VMs run for {int} replication intervals")]
async fn fleet_runs_for_intervals(w: &mut DrWorld, n: u32) -> anyhow::Result<()> {
    Ok(w.s()?.runs_for_intervals(n).await?)
}

#[when(expr = "the VMs' writes so far are replicated to site {site}")]
async fn fleet_replicated(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.replicated_to(&site.0).await?)
}

#[when(expr = "the VMs are failed over to site {site}")]
async fn fleet_failover(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.failover_fleet(&site.0).await?)
}

#[when(expr = "the VMs are relocated to site {site}")]
async fn fleet_relocate(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.relocate_fleet(&site.0).await?)
}

#[then(expr = "the VMs serve again on site {site} within {duration}")]
async fn fleet_serves_within(w: &mut DrWorld, site: Site, d: Duration) -> anyhow::Result<()> {
    Ok(w.s()?.serves_within(&site.0, d.0)?)
}

#[then(expr = "site {site} is every VM's only primary")]
async fn every_only_primary(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.only_primary(&site.0).await?)
}
