//! The VM and its workload: the probe writing sequence-numbered, acknowledged records.

use super::params::{Duration, Site};
use super::world::{lab, step_err, VM};
use super::DrWorld;
use crate::env::lab::vm::Mode;
use cucumber::{given, when};

#[given(expr = "a VM writing {int} records per second on site {site}")]
async fn vm_writing(w: &mut DrWorld, rate: u32, site: Site) -> anyhow::Result<()> {
    anyhow::ensure!((1..=1000).contains(&rate), "a rate of {rate} records per second is outside 1..1000");
    let mut lab = lab().await?;
    let i = lab.site_index(&site.0).map_err(step_err)?;
    let name = format!("{VM}{}", lab.vms.len());
    lab.create_vm(&name, i, rate).await.map_err(step_err)?;
    let limit = lab.cfg.disk_records() + 1;
    lab.boot(&name, i, Mode::Write, limit).await.map_err(step_err)?;
    let boot = lab.cfg.spec.budgets.boot.0;
    let p = lab.slot(&name).map_err(step_err)?.process.as_mut().expect("booted");
    p.wait_for("the first acknowledged write", boot, |g| g.acks.first().map(|_| ())).await.map_err(step_err)?;
    w.vm = Some(name);
    Ok(())
}

async fn wait_acks(w: &mut DrWorld, n: u64, deadline: std::time::Duration) -> anyhow::Result<()> {
    let vm = w.vm()?.to_string();
    let mut lab = lab().await?;
    let p = lab.slot(&vm).map_err(step_err)?.process.as_mut().ok_or_else(|| anyhow::anyhow!("VM {vm} is not running"))?;
    let have = p.snapshot().acks.len() as u64;
    let want = have.max(n);
    p.wait_for(&format!("{want} acknowledged writes"), deadline, |g| (g.acks.len() as u64 >= want).then_some(())).await.map_err(step_err)?;
    Ok(())
}

#[when(expr = "the VM has written {int} records")]
async fn has_written(w: &mut DrWorld, n: u64) -> anyhow::Result<()> {
    let rate = {
        let mut lab = lab().await?;
        lab.slot(w.vm()?).map_err(step_err)?.rate
    };
    // Twice the time the rate needs, plus slack for a slow machine: a stalled writer fails the step.
    let deadline = std::time::Duration::from_secs_f64(n as f64 / rate as f64 * 2.0 + 30.0);
    wait_acks(w, n, deadline).await
}

#[when(expr = "the VM runs for {duration}")]
async fn runs_for(w: &mut DrWorld, d: Duration) -> anyhow::Result<()> {
    w.vm()?;
    tokio::time::sleep(d.0).await;
    let vm = w.vm()?.to_string();
    let mut lab = lab().await?;
    let p = lab.slot(&vm).map_err(step_err)?.process.as_mut().ok_or_else(|| anyhow::anyhow!("VM {vm} is not running"))?;
    let log = p.snapshot();
    anyhow::ensure!(log.eof.is_none(), "VM {vm} stopped while it should have been writing");
    Ok(())
}
