//! The two DR actions.

use super::params::Site;
use super::world::{env, step_err};
use super::DrWorld;
use crate::fault::Fault;
use cucumber::when;

async fn relocate_to(w: &mut DrWorld, site: Site, barrier: bool) -> anyhow::Result<()> {
    let vm = w.vm()?.to_string();
    let o = env().await?.relocate(&vm, &site.0, barrier).await.map_err(step_err)?;
    println!("      relocate {} -> {}: {}", o.from, o.to, o.timeline.render());
    w.outcome = Some(o);
    Ok(())
}

#[when(expr = "the VM is relocated to site {site}")]
async fn relocate(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    relocate_to(w, site, true).await
}

/// Negative control: the new primary is promoted by force right after the demotion.
#[when(expr = "the VM is relocated to site {site} without waiting for the sync barrier")]
async fn relocate_without_barrier(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    relocate_to(w, site, false).await
}

#[when(expr = "the VM is failed over to site {site}")]
async fn failover(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    let vm = w.vm()?.to_string();
    let mut env = env().await?;
    let from = env.primary_site(&vm).map_err(step_err)?;
    // the outage that took the primary, if a step injected one
    let fault = w.receipts.iter().rev().find(|r| matches!(&r.fault, Fault::PowerLoss { site } if *site == from)).cloned();
    let mut o = env.failover(&vm, &site.0, fault.as_ref()).await.map_err(step_err)?;
    println!("      failover {} -> {}: {}", o.from, o.to, o.timeline.render());
    w.receipts.append(&mut o.receipts);
    w.outcome = Some(o);
    Ok(())
}
