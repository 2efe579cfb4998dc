//! The two DR actions.

use super::params::Site;
use super::world::{lab, step_err};
use super::DrWorld;
use crate::dr;
use crate::fault::Fault;
use cucumber::when;

#[when(expr = "the VM is relocated to site {site}")]
async fn relocate(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    let vm = w.vm()?.to_string();
    let mut lab = lab().await?;
    let to = lab.site_index(&site.0).map_err(step_err)?;
    let o = dr::relocate(&mut lab, &vm, to).await.map_err(step_err)?;
    println!("      relocate {} -> {}: {}", o.from, o.to, o.timeline.render());
    w.outcome = Some(o);
    Ok(())
}

#[when(expr = "the VM is failed over to site {site}")]
async fn failover(w: &mut DrWorld, site: Site) -> anyhow::Result<()> {
    let vm = w.vm()?.to_string();
    let mut lab = lab().await?;
    let to = lab.site_index(&site.0).map_err(step_err)?;
    let from = lab.slot(&vm).map_err(step_err)?.primary;
    let from_name = lab.sites[from].name.clone();
    let fault = w.receipts.iter().rev().find(|r| matches!(&r.fault, Fault::PowerLoss { site } if *site == from_name)).cloned();
    let mut o = dr::failover(&mut lab, &vm, to, fault.as_ref()).await.map_err(step_err)?;
    println!("      failover {} -> {}: {}", o.from, o.to, o.timeline.render());
    w.receipts.append(&mut o.receipts);
    w.outcome = Some(o);
    Ok(())
}
