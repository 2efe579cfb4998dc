//! Data verdicts: the oracle judges the last DR action's evidence. A failed bound fails the step with the
//! oracle's reasons; it is never retried.

use super::DrWorld;
use crate::oracle::Verdict;
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
    let passed = v.passed;
    let why = v.why.join("; ");
    w.verdicts.push((what.to_string(), v));
    anyhow::ensure!(passed, "{what}: {why} [{line}]");
    Ok(())
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
    let v = w.outcome()?.evidence.window();
    conclude(w, "loss window within the replication interval", v)
}
