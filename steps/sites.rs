//! Sites and the environment they belong to.

use super::params::{Duration, Site};
use super::DrWorld;
use cucumber::given;

#[given(expr = "a Regional-DR environment with sites {site} and {site}")]
async fn regional_env(w: &mut DrWorld, a: Site, b: Site) -> anyhow::Result<()> {
    Ok(w.s()?.regional_env(&a.0, &b.0).await?)
}

/// The same sentence as the lab once knew it (feature files in use say it).
#[given(expr = "a Regional-DR lab with sites {site} and {site}")]
async fn regional_lab(w: &mut DrWorld, a: Site, b: Site) -> anyhow::Result<()> {
    Ok(w.s()?.regional_env(&a.0, &b.0).await?)
}

#[given(expr = "a Metro-DR environment with sites {site} and {site}")]
async fn metro_env(w: &mut DrWorld, a: Site, b: Site) -> anyhow::Result<()> {
    Ok(w.s()?.metro_env(&a.0, &b.0).await?)
}

/// A negative control's environment: Metro-DR deliberately without Ceph's stretch mode.
#[given(expr = "a Metro-DR environment without stretch mode with sites {site} and {site}")]
async fn metro_env_without_stretch(w: &mut DrWorld, a: Site, b: Site) -> anyhow::Result<()> {
    Ok(w.s()?.metro_env_without_stretch(&a.0, &b.0).await?)
}

#[given(expr = "the replication interval is {duration}")]
async fn interval(w: &mut DrWorld, d: Duration) -> anyhow::Result<()> {
    Ok(w.s()?.interval_is(d.0).await?)
}
