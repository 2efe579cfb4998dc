//! Run output in `reports/<run-id>/`: `summary.json` (per scenario: verdict, records, loss window, interval,
//! RTO segments, environment and replication in force) and one `history-*.jsonl` per VM (every write, ack,
//! snapshot and fault event). `junit.xml` and `cucumber.json` come from cucumber's own writers.

use crate::clock::Wt;
use crate::config::EnvConfig;
use crate::oracle::Verdict;
use crate::runner::RunResult;
use crate::steps::DrWorld;
use cucumber::gherkin;
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioSummary {
    pub feature: String,
    pub scenario: String,
    pub file: Option<PathBuf>,
    pub line: usize,
    pub tags: Vec<String>,
    pub status: String,
    pub reason: Option<String>,
    pub duration_s: Option<f64>,
    pub vm: Option<String>,
    pub action: Option<serde_json::Value>,
    pub verdicts: Vec<(String, Verdict)>,
    pub records_acked: Option<u64>,
    pub records_lost: Option<u64>,
    pub records_indeterminate: Option<u64>,
    pub loss_window_ms: Option<f64>,
    pub loss_bound_ms: Option<f64>,
    /// The action's verdict: passed, failed (the system under test) or inconclusive (nothing proven).
    pub conclusion: Option<crate::oracle::Conclusion>,
    pub replication_interval: String,
    pub faults: Vec<serde_json::Value>,
    /// The VM's history file (every boot, ack, scan, snapshot, fault and DR segment).
    pub history: Option<PathBuf>,
}

impl ScenarioSummary {
    pub fn new(feature: &str, scenario: &str, file: Option<PathBuf>, line: usize, tags: Vec<String>, status: &str, reason: Option<String>) -> Self {
        ScenarioSummary {
            feature: feature.into(),
            scenario: scenario.into(),
            file,
            line,
            tags,
            status: status.into(),
            reason,
            duration_s: None,
            vm: None,
            action: None,
            verdicts: vec![],
            records_acked: None,
            records_lost: None,
            records_indeterminate: None,
            loss_window_ms: None,
            loss_bound_ms: None,
            conclusion: None,
            replication_interval: String::new(),
            faults: vec![],
            history: None,
        }
    }

    pub fn fill(&mut self, w: &DrWorld, cfg: &EnvConfig) {
        self.vm = w.vm.clone();
        self.replication_interval = cfg.spec.replication.interval.to_string();
        self.faults = w.receipts.iter().map(|r| json!({"fault": r.fault, "at_ms": r.at.ms()})).collect();
        self.verdicts = w.verdicts.clone();
        if let Some(o) = &w.outcome {
            self.action = Some(json!({
                "kind": o.kind, "from": o.from, "to": o.to,
                "rto": o.timeline.marks,
                "syncBarrierMs": o.sync.map(|d| d.as_secs_f64() * 1e3),
                "promoteAttempts": o.promote_attempts,
                "mirrorSnapshotsCompleted": o.snapshots_completed,
                "schedulerErrors": o.scheduler_errors,
                "syncAllowanceMs": o.evidence.regional.as_ref().map(|b| b.allowance.as_secs_f64() * 1e3),
                "syncs": o.evidence.regional.as_ref().map(|b| &b.syncs),
                "checkpoint": o.evidence.regional.as_ref().and_then(|b| b.checkpoint.as_ref()),
            }));
            let v = o.evidence.verdict();
            self.conclusion = Some(v.conclusion);
            if v.conclusion == crate::oracle::Conclusion::Inconclusive && self.status == "failed" {
                // ran, proved nothing either way: neither passed nor a failure of the system (exit 2)
                self.status = "inconclusive".into();
            }
            self.records_acked = Some(v.acked);
            self.records_lost = Some(v.lost_count);
            self.records_indeterminate = Some(v.indeterminate);
            self.loss_window_ms = v.loss_window_ms;
            self.loss_bound_ms = v.bound_ms;
        }
    }
}

pub fn skipped(f: &gherkin::Feature, s: &gherkin::Scenario, why: &str) -> ScenarioSummary {
    let tags = f.tags.iter().chain(s.tags.iter()).cloned().collect();
    ScenarioSummary::new(&f.name, &s.name, f.path.clone(), s.position.line, tags, "skipped", Some(why.to_string()))
}

pub fn write_summary(dir: &Path, cfg: &EnvConfig, started: Wt, scenarios: &[ScenarioSummary], res: &RunResult) -> std::io::Result<()> {
    let s = json!({
        "environment": {
            "name": cfg.spec.name, "file": cfg.path, "backend": cfg.spec.backend_name(),
            "replication": cfg.replication_summary(),
            "mode": cfg.spec.replication.mode, "interval": cfg.spec.replication.interval.to_string(),
            "scheduler": cfg.spec.replication.scheduler,
        },
        "startedUnix": started.unix_secs(),
        "durationS": Wt::now().since(started).as_secs_f64(),
        "passed": res.passed, "failed": res.failed, "skipped": res.skipped,
        "harnessErrors": res.harness_errors,
        "scenarios": scenarios,
    });
    std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&s).map_err(std::io::Error::other)?)
}

/// The closing table of a run: per scenario its wall time, records lost, loss window against its bound,
/// and when the VM served again after the DR action.
pub fn figures(scenarios: &[ScenarioSummary]) -> String {
    let mut s = format!("{:<54} {:<8} {:>7} {:>6} {:>22} {:>9}\n", "scenario", "status", "time", "lost", "loss window / bound", "serving");
    for sc in scenarios {
        let name: String = sc.scenario.chars().take(54).collect();
        let serving = sc
            .action
            .as_ref()
            .and_then(|a| a["rto"].as_array().and_then(|m| m.iter().find(|x| x[0] == "serving")).and_then(|x| x[1].as_f64()))
            .map(|ms| format!("{:.1}s", ms / 1e3))
            .unwrap_or_else(|| "-".into());
        let window = match (sc.loss_window_ms, sc.loss_bound_ms) {
            (Some(w), Some(b)) => format!("{w:.0} / {b:.0} ms"),
            (Some(w), None) => format!("{w:.0} ms"),
            _ => "-".into(),
        };
        s.push_str(&format!(
            "{:<54} {:<8} {:>7} {:>6} {:>22} {:>9}\n",
            name,
            sc.status,
            sc.duration_s.map(|d| format!("{d:.1}s")).unwrap_or_else(|| "-".into()),
            sc.records_lost.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
            window,
            serving
        ));
    }
    s
}
