//! Data verdicts: the oracle judges the last DR action's evidence. A failed bound fails the step with the
//! oracle's reasons; it is never retried.

use super::params::Duration;
use super::DrWorld;
use cucumber::then;

#[then("no acknowledged write is lost")]
async fn no_loss(w: &mut DrWorld) -> anyhow::Result<()> {
    Ok(w.s()?.no_loss()?)
}

#[then("the STOP record of the graceful shutdown survives")]
async fn stop_survives(w: &mut DrWorld) -> anyhow::Result<()> {
    Ok(w.s()?.stop_survives()?)
}

/// The disks of a VM of several disks hold data from points in time at most this far apart.
#[then(expr = "the VM's disks are at most {duration} apart after the failover")]
async fn disks_apart(w: &mut DrWorld, d: Duration) -> anyhow::Result<()> {
    Ok(w.s()?.disks_apart(d.0)?)
}

#[then("the data loss window is at most the replication interval")]
async fn window(w: &mut DrWorld) -> anyhow::Result<()> {
    Ok(w.s()?.window()?)
}

#[then("every write the old VM attempts after the fence fails")]
async fn split_brain_refused(w: &mut DrWorld) -> anyhow::Result<()> {
    Ok(w.s()?.split_brain_refused().await?)
}

/// The golden blocks of a disk cloned from the golden image, never written by the guest, as the site the last
/// DR action moved the VM to read them when the action ended.
#[then("the golden image's data is intact")]
async fn golden_intact(w: &mut DrWorld) -> anyhow::Result<()> {
    Ok(w.s()?.golden_intact()?)
}
