//! Faults: site outages, replication breakage, isolation, on-disk corruption. Each injection's receipt is
//! kept in the World; the after hook recovers all of them.

use super::params::Site;
use super::world::{lab, step_err};
use super::DrWorld;
use crate::dr::archive;
use crate::env::lab::vm::Mode;
use crate::fault::Fault;
use cucumber::when;

async fn inject(w: &mut DrWorld, f: Fault) -> anyhow::Result<()> {
    let mut lab = lab().await?;
    let r = lab.inject(f).await.map_err(step_err)?;
    w.receipts.push(r);
    Ok(())
}

#[when(expr = "site {site} loses power")]
async fn power_loss(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    inject(w, Fault::PowerLoss { site: site.0 }).await
}

#[when(expr = "replication to site {site} stops")]
async fn stop_replication(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    inject(w, Fault::StopReplication { site: site.0 }).await
}

#[when(expr = "site {site} is cut off from the other site")]
async fn isolate(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    inject(w, Fault::Isolate { site: site.0 }).await
}

/// Negative control: damages one record on the VM's disk (through a guest on that site), then verifies
/// the disk again so that the verdict steps judge the damaged disk.
#[when(expr = "record {int} of the VM's disk is corrupted on site {site}")]
async fn corrupt(w: &mut DrWorld, seq: u64, site: Site) -> anyhow::Result<()> {
    let vm = w.vm()?.to_string();
    let mut lab = lab().await?;
    let i = lab.site_index(&site.0).map_err(step_err)?;
    anyhow::ensure!(lab.cfg.spec.disposable, "refusing to corrupt a disk: environment {} is not marked disposable", lab.cfg.spec.name);
    let budgets = lab.cfg.spec.budgets.clone();
    if let Some(p) = lab.slot(&vm).map_err(step_err)?.process.as_mut() {
        if p.qemu.alive() {
            p.graceful_stop(budgets.graceful_stop.0).await.map_err(step_err)?;
        }
    }
    archive(&mut lab, &vm).map_err(step_err)?;
    lab.boot(&vm, i, Mode::Corrupt(seq), 0).await.map_err(step_err)?;
    let p = lab.slot(&vm).map_err(step_err)?.process.as_mut().expect("booted");
    p.wait_for("the record to be damaged", budgets.boot.0, |g| g.corrupted).await.map_err(step_err)?;
    p.wait_poweroff(budgets.boot.0).await.map_err(step_err)?;
    lab.slot(&vm).map_err(step_err)?.process = None;
    let limit = lab.cfg.disk_records() + 1;
    lab.boot(&vm, i, Mode::Verify, limit).await.map_err(step_err)?;
    let p = lab.slot(&vm).map_err(step_err)?.process.as_mut().expect("booted");
    let (_, scan) = p.wait_for("the verify scan", budgets.boot.0, |g| g.scan.clone()).await.map_err(step_err)?;
    p.wait_poweroff(budgets.boot.0).await.map_err(step_err)?;
    archive(&mut lab, &vm).map_err(step_err)?;
    let boots = lab.slot(&vm).map_err(step_err)?.boots.clone();
    if let Some(o) = w.outcome.as_mut() {
        o.evidence.scan = scan;
        o.evidence.acks = crate::dr::all_acks(&boots);
        // the STOP now expected is the last graceful stop's
        o.evidence.stop_seq = boots.iter().rev().find_map(|b| b.stopped.map(|s| s.1));
    }
    Ok(())
}
