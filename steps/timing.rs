//! Timing: recovery time measured on the DR action's timeline.

use super::params::{Duration, Site};
use super::DrWorld;
use cucumber::then;

#[then(expr = "the VM serves again on site {site} within {duration}")]
async fn serves_within(w: &mut DrWorld, site: Site, d: Duration) -> anyhow::Result<()> {
    Ok(w.s()?.serves_within(&site.0, d.0)?)
}
