//! Data verdicts: the oracle judges the last DR action's evidence. A failed bound fails the step with the
//! oracle's reasons; it is never retried.

use super::DrWorld;
use crate::oracle::{Conclusion, Verdict};
use cucumber::then;

fn conclude(w: &mut DrWorld, what: &str, v: Verdict) -> anyhow::Result<()> {
    let line = format!(
        "acked {}, stable {}, lost {}, indeterminate {}{}",
        v.acked,
        v.stable,
        v.lost_count,
        v.indeterminate,
        v.loss_window_ms.map(|l| format!(", loss window {l:.0} ms")).unwrap_or_default()
            + &v.bound_ms.map(|b| format!(" (bound {b:.0} ms)")).unwrap_or_default()
    );
    println!("      {what}: {line}");
    let conclusion = v.conclusion;
    let why = v.why.join("; ");
    w.verdicts.push((what.to_string(), v));
    match conclusion {
        Conclusion::Passed => Ok(()),
        Conclusion::Failed => anyhow::bail!("{what}: {why} [{line}]"),
        // nothing proven either way: not a pass, and not the system's failure (exit 2)
        Conclusion::Inconclusive => {
            let msg = format!("{what}: inconclusive: {why} [{line}]");
            crate::runner::harness_error(msg.clone());
            anyhow::bail!(msg)
        }
    }
}

#[then("no acknowledged write is lost")]
async fn no_loss(w: &mut DrWorld) -> anyhow::Result<()> {
    let v = w.outcome()?.evidence.no_loss();
    conclude(w, "no acknowledged write lost", v)
}

#[then("the STOP record of the graceful shutdown survives")]
async fn stop_survives(w: &mut DrWorld) -> anyhow::Result<()> {
    let e = &w.outcome()?.evidence;
    let stop = e.stop_seq.ok_or_else(|| anyhow::anyhow!("the VM was not shut down gracefully: there is no STOP record to look for"))?;
    anyhow::ensure!(e.scan.stop == Some(stop), "the STOP record {stop} is not on disk (scan found {:?})", e.scan.stop);
    Ok(())
}

#[then("the data loss window is at most the replication interval")]
async fn window(w: &mut DrWorld) -> anyhow::Result<()> {
    let o = w.outcome()?;
    let v = o.evidence.window().ok_or_else(|| anyhow::anyhow!("the last DR action ({:?}) promises no loss, not a loss window: judge it with \"no acknowledged write is lost\"", o.kind))?;
    conclude(w, "loss window within the replication interval", v)
}
