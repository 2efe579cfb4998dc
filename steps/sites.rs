//! Sites and the environment they belong to.

use super::params::{Duration, Site};
use super::world::env;
use super::DrWorld;
use crate::runner;
use cucumber::given;

#[given(expr = "a Regional-DR lab with sites {site} and {site}")]
async fn regional_lab(_w: &mut DrWorld, a: Site, b: Site) -> anyhow::Result<()> {
    let cfg = runner::config();
    let have = cfg.site_names();
    if [a.0.as_str(), b.0.as_str()] != [have[0].as_str(), have[1].as_str()] {
        let msg = format!(
            "the scenario names sites {} and {}, environment {} ({}) has {} and {}",
            a.0,
            b.0,
            cfg.spec.name,
            cfg.path.display(),
            have[0],
            have[1]
        );
        runner::harness_error(msg.clone());
        anyhow::bail!(msg);
    }
    let _env = env().await?;
    Ok(())
}

#[given(expr = "the replication interval is {duration}")]
async fn interval(_w: &mut DrWorld, d: Duration) -> anyhow::Result<()> {
    let cfg = runner::config();
    let have = cfg.spec.replication.interval;
    if have.0 != d.0 {
        let msg = format!("the scenario needs a replication interval of {}, environment {} has {have}", crate::units::Dur(d.0), cfg.path.display());
        runner::harness_error(msg.clone());
        anyhow::bail!(msg);
    }
    Ok(())
}
