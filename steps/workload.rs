//! The VM and its workload: the probe writing sequence-numbered, acknowledged records.

use super::params::{Duration, Site};
use super::world::{env, step_err};
use super::DrWorld;
use cucumber::{given, when};

#[given(expr = "a VM writing {int} records per second on site {site}")]
async fn vm_writing(w: &mut DrWorld, rate: u32, site: Site) -> anyhow::Result<()> {
    anyhow::ensure!((1..=1000).contains(&rate), "a rate of {rate} records per second is outside 1..1000");
    let name = env().await?.start_vm(&site.0, rate).await.map_err(step_err)?;
    w.vm = Some(name);
    Ok(())
}

#[when(expr = "the VM has written {int} records")]
async fn has_written(w: &mut DrWorld, n: u64) -> anyhow::Result<()> {
    let vm = w.vm()?.to_string();
    let mut env = env().await?;
    let rate = env.rate(&vm).map_err(step_err)?;
    // Twice the time the rate needs, plus slack for a slow machine: a stalled writer fails the step.
    let deadline = std::time::Duration::from_secs_f64(n as f64 / rate as f64 * 2.0 + 30.0);
    env.wait_acks(&vm, n, deadline).await.map_err(step_err)
}

#[when(expr = "the VM runs for {duration}")]
async fn runs_for(w: &mut DrWorld, d: Duration) -> anyhow::Result<()> {
    let vm = w.vm()?.to_string();
    tokio::time::sleep(d.0).await;
    anyhow::ensure!(env().await?.writing(&vm).map_err(step_err)?, "VM {vm} stopped while it should have been writing");
    Ok(())
}
