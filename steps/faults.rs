//! Faults: site outages, replication breakage, isolation, on-disk corruption. Each injection's receipt is
//! kept by the scenario, which recovers all of them when it ends.

use super::params::Site;
use super::DrWorld;
use crate::fault::Fault;
use cucumber::when;

#[when(expr = "site {site} loses power")]
async fn power_loss(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.inject(Fault::PowerLoss { site: site.0 }).await?)
}

/// One of the site's two storage hosts (Metro-DR in stretch mode): the site keeps serving on the other.
#[when(expr = "a storage host of site {site} loses power")]
async fn host_loss(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.inject(Fault::HostLoss { site: site.0 }).await?)
}

#[when(expr = "replication to site {site} stops")]
async fn stop_replication(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.inject(Fault::StopReplication { site: site.0 }).await?)
}

#[when(expr = "replication to site {site} pauses")]
async fn pause_replication(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.inject(Fault::PauseReplication { site: site.0 }).await?)
}

#[when(expr = "replication to site {site} resumes")]
async fn resume_replication(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.resume_replication(&site.0).await?)
}

#[when(expr = "site {site} is cut off from the other site")]
async fn isolate(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.inject(Fault::Isolate { site: site.0 }).await?)
}

/// Negative control: damages one record on the VM's disk (through a guest on that site), then verifies
/// the disk again so that the verdict steps judge the damaged disk.
#[when(expr = "record {int} of the VM's disk is corrupted on site {site}")]
async fn corrupt(w: &mut DrWorld, seq: u64, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.corrupt(seq, &site.0).await?)
}

/// Undoes the harness's isolation of the site (the scenario's, or a failover's fence): what still keeps the
/// old site out is the storage's own fence.
#[when(expr = "site {site} is reconnected")]
async fn reconnect(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.recover(Fault::Isolate { site: site.0 }).await?)
}

#[when(expr = "site {site} freezes")]
async fn freeze(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.inject(Fault::Freeze { site: site.0 }).await?)
}

#[when(expr = "site {site} thaws")]
async fn thaw(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.recover(Fault::Freeze { site: site.0 }).await?)
}
