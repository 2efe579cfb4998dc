//! Timing: recovery time measured on the DR action's timeline.

use super::params::{Duration, Site};
use super::DrWorld;
use cucumber::then;

#[then(expr = "the VM serves again on site {site} within {duration}")]
async fn serves_within(w: &mut DrWorld, site: Site, d: Duration) -> anyhow::Result<()> {
    let o = w.outcome()?;
    anyhow::ensure!(o.to == site.0, "the last DR action moved the VM to site {}, not {}", o.to, site.0);
    let serving = o.timeline.get("serving").ok_or_else(|| anyhow::anyhow!("the VM never served on site {}", o.to))?;
    let limit = d.0.as_secs_f64() * 1e3;
    anyhow::ensure!(serving <= limit, "the VM served again after {:.1}s, more than {:.1}s ({})", serving / 1e3, limit / 1e3, o.timeline.render());
    Ok(())
}
