//! Ceph stretch mode (Metro-DR as deployed): the cluster's own state judged, and what a partition between
//! the data sites did to the VM.

use super::params::Duration;
use super::DrWorld;
use cucumber::then;

#[then("the cluster entered degraded stretch mode")]
async fn entered_degraded(w: &mut DrWorld) -> anyhow::Result<()> {
    Ok(w.s()?.entered_degraded().await?)
}

#[then(expr = "the cluster returns to healthy stretch mode within {duration}")]
async fn healthy_within(w: &mut DrWorld, d: Duration) -> anyhow::Result<()> {
    Ok(w.s()?.healthy_within(d.0).await?)
}

#[then(expr = "the VM writes again within {duration} of the partition")]
async fn writes_again_within(w: &mut DrWorld, d: Duration) -> anyhow::Result<()> {
    Ok(w.s()?.writes_again_within(d.0).await?)
}
