//! The VM and its workload: the probe writing sequence-numbered, acknowledged records.

use super::params::{Duration, Site};
use super::DrWorld;
use cucumber::{given, when};

#[given(expr = "a VM writing {int} records per second on site {site}")]
async fn vm_writing(w: &mut DrWorld, rate: u32, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.start_vm(rate, &site.0).await?)
}

/// The VM's disk an RBD clone of the environment's golden image (as CDI clones VM disks).
#[given(expr = "a VM cloned from a golden image writing {int} records per second on site {site}")]
async fn vm_cloned_writing(w: &mut DrWorld, rate: u32, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.start_vm_from(rate, &site.0, true).await?)
}

/// A VM of several disks (one machine), each disk its own protected image and record stream.
#[given(expr = "a VM with {int} disks writing {int} records per second on site {site}")]
async fn vm_with_disks(w: &mut DrWorld, disks: u32, rate: u32, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.start_vm_disks(disks, rate, &site.0, false).await?)
}

/// As above, each disk's snapshots taken on their own (a fraction of an interval apart), not together.
#[given(expr = "a VM with {int} disks writing {int} records per second on site {site}, each disk snapshotted on its own")]
async fn vm_with_disks_apart(w: &mut DrWorld, disks: u32, rate: u32, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.start_vm_disks(disks, rate, &site.0, true).await?)
}

#[when(expr = "the VM has written {int} records")]
async fn has_written(w: &mut DrWorld, n: u64) -> anyhow::Result<()> {
    Ok(w.s()?.written(n).await?)
}

#[when(expr = "the VM runs for {duration}")]
async fn runs_for(w: &mut DrWorld, d: Duration) -> anyhow::Result<()> {
    Ok(w.s()?.runs_for(d.0).await?)
}

/// Durations relative to the environment's declared interval, so one feature fits any environment.
#[when(expr = "the VM runs for {int} replication intervals")]
async fn runs_for_intervals(w: &mut DrWorld, n: u32) -> anyhow::Result<()> {
    Ok(w.s()?.runs_for_intervals(n).await?)
}

#[when(expr = "the VM's writes so far are replicated to site {site}")]
async fn replicated(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    Ok(w.s()?.replicated_to(&site.0).await?)
}
