//! Run output in `reports/<run-id>/`: `summary.json` (per scenario: verdict, records, loss window, interval,
//! RTO segments, environment and replication in force) and one `history-*.jsonl` per VM (every write, ack,
//! snapshot and fault event). `junit.xml` and `cucumber.json` come from cucumber's own writers.

use crate::clock::Wt;
use crate::config::EnvConfig;
use crate::error::Cause;
use crate::fault::Receipt;
use crate::oracle::Verdict;
use crate::outcome::Outcome;
use crate::timeline::{ActionKind, Segment};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a gather wrote, and what it could not get.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Gathered {
    pub items: Vec<String>,
    pub missing: Vec<String>,
}

impl Gathered {
    pub fn extend(&mut self, other: Gathered) {
        self.items.extend(other.items);
        self.missing.extend(other.missing);
    }
}

/// Round trips measured from one site to another.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoundTrip {
    pub from: String,
    pub to: String,
    pub samples: usize,
    pub median_ms: f64,
    pub max_ms: f64,
}

impl RoundTrip {
    /// From samples sorted ascending.
    pub fn new(from: &str, to: &str, sorted: &[Duration]) -> RoundTrip {
        let ms = |d: Option<&Duration>| d.map(|d| d.as_secs_f64() * 1e3).unwrap_or(f64::NAN);
        RoundTrip { from: from.into(), to: to.into(), samples: sorted.len(), median_ms: ms(sorted.get(sorted.len() / 2)), max_ms: ms(sorted.last()) }
    }
}

/// The p50 and p99 of durable write latencies, microseconds. Pure.
pub fn percentiles(lat_us: &[u32]) -> Option<(u32, u32)> {
    if lat_us.is_empty() {
        return None;
    }
    let mut v = lat_us.to_vec();
    v.sort_unstable();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Some((at(0.5), at(0.99)))
}

/// What one scenario did, as plain data: the reports are made from this, never from the World.
#[derive(Clone, Debug, Default)]
pub struct ScenarioRecord {
    pub started: Wt,
    pub duration: Duration,
    /// Every VM the scenario started.
    pub vms: Vec<String>,
    pub vm: Option<String>,
    pub receipts: Vec<Receipt>,
    /// Every fault undone (by the scenario, or when it ended), with what showed it gone.
    pub undone: Vec<crate::fault::Undone>,
    /// Every DR action, in order.
    pub outcomes: Vec<Outcome>,
    /// Sites that came back, and how they were repaired.
    pub repairs: Vec<crate::outcome::Repair>,
    pub verdicts: Vec<(String, Verdict)>,
    /// Round trips measured between sites.
    pub rtts: Vec<RoundTrip>,
    /// The cause of the scenario's failure, if it failed (the harness's outranks the system's).
    pub cause: Option<Cause>,
    /// The check that failed the scenario was itself inconclusive.
    pub inconclusive: bool,
    /// What went wrong after the scenario (recovering its faults): the run exits 2.
    pub harness_errors: Vec<String>,
    /// Ceph stretch mode over the scenario: the flags' transitions, the monitors' elections, every
    /// data-site partition (the side kept, the VM's stall).
    pub stretch: Option<serde_json::Value>,
    /// Each DR action over several VMs at once (an application): per VM its verdict, the fleet's spread.
    pub fleet: Vec<serde_json::Value>,
    /// A failed scenario's gather: where, and what it holds.
    pub gather: Option<(PathBuf, Gathered)>,
}

/// A whole run, as plain data.
#[derive(Debug, Default)]
pub struct RunResult {
    pub scenarios: Vec<ScenarioSummary>,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub harness_errors: Vec<String>,
    /// Round trips between the environment's failure domains, measured when it came up.
    pub round_trips: Vec<RoundTrip>,
    /// `--allow-skipped`: a run where every scenario was skipped may pass.
    pub allow_skipped: bool,
}

impl RunResult {
    /// Counts the scenarios.
    pub fn new(scenarios: Vec<ScenarioSummary>, harness_errors: Vec<String>) -> RunResult {
        let mut r = RunResult { harness_errors, ..Default::default() };
        for s in &scenarios {
            match s.status.as_str() {
                "passed" => r.passed += 1,
                "skipped" => r.skipped += 1,
                _ => r.failed += 1,
            }
        }
        r.scenarios = scenarios;
        r
    }

    /// Every selected scenario was skipped: the run proved nothing.
    pub fn ran_nothing(&self) -> bool {
        self.passed + self.failed == 0
    }

    /// 0 every scenario passed (skipped ones say why), 1 the system under test failed a scenario, 2 the
    /// harness or its input broke, a scenario proved nothing either way (inconclusive), or the run ran
    /// nothing at all (every scenario skipped, unless `--allow-skipped`).
    pub fn exit(&self) -> crate::error::Exit {
        let harness = !self.harness_errors.is_empty()
            || self.scenarios.iter().any(|s| s.cause == Some(Cause::Harness) || s.status == "inconclusive")
            || (self.ran_nothing() && !self.allow_skipped);
        if harness {
            crate::error::Exit::Broken
        } else if self.failed > 0 {
            crate::error::Exit::Failed
        } else {
            crate::error::Exit::Passed
        }
    }

    pub fn exit_code(&self) -> i32 {
        self.exit().code()
    }
}

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
    /// When the scenario started, witness clock (ms since the harness started: the histories' `tMs`).
    pub started_ms: Option<f64>,
    pub vm: Option<String>,
    /// Every VM the scenario started (each has its history file).
    pub vms: Vec<String>,
    /// The last DR action (the one the verdict sentences judged).
    pub action: Option<serde_json::Value>,
    /// Every DR action, in order, each with its own verdict and the roles after it.
    pub actions: Vec<serde_json::Value>,
    /// Sites that came back, and how they were repaired.
    pub repairs: Vec<serde_json::Value>,
    pub verdicts: Vec<CheckVerdict>,
    /// Who is at fault if it failed: the system under test (exit 1) or the harness and its input (exit 2).
    pub cause: Option<Cause>,
    pub records_acked: Option<u64>,
    pub records_lost: Option<u64>,
    pub records_indeterminate: Option<u64>,
    pub loss_window_ms: Option<f64>,
    pub loss_bound_ms: Option<f64>,
    /// The action's verdict: passed, failed (the system under test) or inconclusive (nothing proven).
    pub conclusion: Option<crate::oracle::Conclusion>,
    pub replication_interval: String,
    pub faults: Vec<serde_json::Value>,
    /// Round trips measured between sites (from, to, median, max).
    pub round_trips: Vec<RoundTrip>,
    /// Durable write latency of the probe (pwrite + fdatasync), p50 and p99, microseconds.
    pub write_latency_p50_us: Option<u32>,
    pub write_latency_p99_us: Option<u32>,
    /// The VM's history file (every boot, ack, scan, snapshot, fault and DR segment).
    pub history: Option<PathBuf>,
    /// Ceph stretch mode over the scenario (transitions, elections, partitions), where it runs.
    pub stretch: Option<serde_json::Value>,
    /// Each DR action over several VMs (an application): per VM its verdict, the fleet's min/median/max.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fleet: Vec<serde_json::Value>,
    /// A failed scenario's gather folder (the sites' state and logs, consoles, the environment file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gather: Option<PathBuf>,
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
            started_ms: None,
            vm: None,
            vms: vec![],
            action: None,
            actions: vec![],
            repairs: vec![],
            verdicts: vec![],
            cause: None,
            records_acked: None,
            records_lost: None,
            records_indeterminate: None,
            loss_window_ms: None,
            loss_bound_ms: None,
            conclusion: None,
            replication_interval: String::new(),
            faults: vec![],
            round_trips: vec![],
            write_latency_p50_us: None,
            write_latency_p99_us: None,
            history: None,
            stretch: None,
            fleet: vec![],
            gather: None,
        }
    }

    /// Fills in what the scenario did.
    pub fn fill(&mut self, rec: &ScenarioRecord, cfg: &EnvConfig) {
        self.duration_s = Some(rec.duration.as_secs_f64());
        self.vm = rec.vm.clone();
        self.replication_interval = crate::units::Dur(cfg.spec.interval()).to_string();
        self.started_ms = Some(rec.started.ms());
        self.vms = rec.vms.clone();
        self.faults = rec
            .receipts
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let gone = rec.undone.iter().find(|u| u.receipt == i).map(|u| json!({"atMs": u.at.ms(), "seen": u.proof.seen, "tookMs": u.proof.took_ms}));
                json!({"fault": r.fault, "atMs": r.at.ms(), "inEffect": r.proof, "gone": gone})
            })
            .collect();
        self.verdicts = rec.verdicts.iter().map(|(check, verdict)| CheckVerdict { check: check.clone(), verdict: verdict.clone() }).collect();
        self.round_trips = rec.rtts.clone();
        self.stretch = rec.stretch.clone();
        self.fleet = rec.fleet.clone();
        self.gather = rec.gather.as_ref().map(|g| g.0.clone());
        // a failure nobody accounted for (a panicking step, a world without its scenario) is the harness's
        self.cause = if self.status == "passed" { None } else { Some(rec.cause.unwrap_or(Cause::Harness)) };
        if rec.inconclusive && self.status == "failed" {
            // ran, proved nothing either way: neither passed nor a failure of the system (exit 2)
            self.status = "inconclusive".into();
        }
        self.actions = rec.outcomes.iter().map(action_json).collect();
        self.repairs =
            rec.repairs.iter().map(|r| json!({"site": r.site, "startMs": r.timeline.t0.ms(), "steps": segments(&r.timeline), "driver": r.details})).collect();
        if let Some(o) = rec.outcomes.last() {
            self.action = Some(action_json(o));
            let v = o.evidence.verdict();
            if let Some((p50, p99)) = percentiles(&o.evidence.history.latencies_us) {
                (self.write_latency_p50_us, self.write_latency_p99_us) = (Some(p50), Some(p99));
            }
            self.conclusion = Some(v.conclusion);
            self.records_acked = Some(v.acked);
            self.records_lost = Some(v.lost_count);
            self.records_indeterminate = Some(v.indeterminate);
            self.loss_window_ms = v.loss_window_ms;
            self.loss_bound_ms = v.bound_ms;
        }
    }
}

/// One DR action for the summary: what moved where, its timeline, the driver's facts, its replication
/// rounds, its own verdict, and the roles the storage reported after it.
fn action_json(o: &Outcome) -> serde_json::Value {
    let regional = o.evidence.regional();
    let v = o.evidence.verdict();
    json!({
        "kind": o.kind, "vm": o.vm, "from": o.from, "to": o.to,
        "startMs": o.timeline.t0.ms(),
        "rto": segments(&o.timeline),
        "driver": o.details,
        "syncAllowanceMs": regional.map(|b| b.allowance.as_secs_f64() * 1e3),
        "syncs": regional.map(|b| &b.syncs),
        "checkpoint": regional.and_then(|b| b.checkpoint.as_ref()),
        "conclusion": v.conclusion, "recordsAcked": v.acked, "recordsLost": v.lost_count,
        "lossWindowMs": v.loss_window_ms, "lossBoundMs": v.bound_ms,
        "roles": o.roles,
        "newestSurviving": v.newest_surviving, "lost": v.lost, "why": v.why,
    })
}

/// A DR action's timeline for the summary: each segment as an object, `afterMs` from the action's start
/// (`startMs` beside it, on the witness clock the histories' `tMs` use).
pub fn segments(t: &crate::timeline::Timeline) -> serde_json::Value {
    json!(t.marks.iter().map(|(segment, ms)| json!({"segment": segment, "afterMs": ms})).collect::<Vec<_>>())
}

/// One verdict sentence's check and what it found.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckVerdict {
    pub check: String,
    pub verdict: Verdict,
}

pub fn write_summary(dir: &Path, cfg: &EnvConfig, started: Wt, res: &RunResult) -> std::io::Result<()> {
    let s = json!({
        "environment": {
            "name": cfg.spec.name, "file": cfg.path, "backend": cfg.spec.backend_name(),
            "replication": cfg.replication_summary(),
            "mode": cfg.spec.mode_name(), "interval": crate::units::Dur(cfg.spec.interval()).to_string(),
            "scheduler": cfg.spec.regional().map(|r| r.scheduler),
            "syncAllowance": cfg.spec.regional().map(|r| crate::units::Dur(r.allowance()).to_string()),
            "roundTrips": res.round_trips,
        },
        "startedUnix": started.unix_secs(),
        "durationS": Wt::now().since(started).as_secs_f64(),
        "passed": res.passed, "failed": res.failed, "skipped": res.skipped,
        "exitCode": res.exit_code(),
        "harnessErrors": res.harness_errors,
        "scenarios": res.scenarios,
    });
    std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(&s).map_err(std::io::Error::other)?)
}

/// The least, the median and the greatest of some figures (a fleet's loss windows, its RTOs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    /// None for no figures; the median of an even count is the mean of the middle two.
    pub fn of(v: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Some(Spread { min: v[0], median, max: v[n - 1] })
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.0}/{:.0}/{:.0}", self.min, self.median, self.max)
    }
}

/// One DR action over a fleet, for the summary: each VM's verdict (or the error that stopped it) and the
/// fleet's spread of RTO (fault or request to serving) and loss window, milliseconds.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetAction {
    pub kind: ActionKind,
    pub from: String,
    pub to: String,
    pub vms: usize,
    pub failed: Vec<String>,
    pub rto_ms: Option<Spread>,
    pub loss_window_ms: Option<Spread>,
    pub per_vm: Vec<serde_json::Value>,
    /// The action moved the disks of one VM of several disks (this VM), not VMs of one disk each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disks_of: Option<String>,
}

impl FleetAction {
    /// `outcomes`: the VMs the action brought through (judged, passed or not); `errored`: the VMs whose
    /// part failed before there was anything to judge, with the error.
    pub fn of(kind: ActionKind, from: &str, to: &str, outcomes: &[&Outcome], errored: &[(String, String)]) -> FleetAction {
        let serving = |o: &Outcome| o.timeline.get(Segment::Serving);
        let per_vm = outcomes
            .iter()
            .map(|o| {
                let v = o.evidence.verdict();
                json!({"vm": o.vm, "conclusion": v.conclusion, "recordsAcked": v.acked, "recordsLost": v.lost_count,
                       "lossWindowMs": v.loss_window_ms, "lossBoundMs": v.bound_ms, "servingMs": serving(o), "why": v.why})
            })
            .chain(errored.iter().map(|(vm, why)| json!({"vm": vm, "conclusion": "failed", "error": why})))
            .collect();
        let rto: Vec<f64> = outcomes.iter().filter_map(|o| serving(o)).collect();
        let loss: Vec<f64> = outcomes.iter().map(|o| o.evidence.verdict().loss_window_ms.unwrap_or(0.0)).collect();
        FleetAction {
            kind,
            from: from.into(),
            to: to.into(),
            vms: outcomes.len() + errored.len(),
            failed: vec![],
            rto_ms: Spread::of(&rto),
            loss_window_ms: Spread::of(&loss),
            per_vm,
            disks_of: None,
        }
    }

    /// One line for the run's output.
    pub fn line(&self) -> String {
        let or = |s: Option<Spread>| s.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        let (what, units) = match &self.disks_of {
            Some(vm) => (format!("VM {vm}"), "disks"),
            None => ("fleet".to_string(), "VMs"),
        };
        format!(
            "{what} {} {} -> {}: {} {units}, {} failed{}; RTO min/median/max {} ms; loss window {} ms",
            self.kind,
            self.from,
            self.to,
            self.vms,
            self.failed.len(),
            if self.failed.is_empty() { String::new() } else { format!(" ({})", self.failed.join(", ")) },
            or(self.rto_ms),
            or(self.loss_window_ms)
        )
    }
}

/// The closing table of a run: per scenario its wall time, records lost, loss window against its bound,
/// and when the VM served again after the DR action.
pub fn figures(scenarios: &[ScenarioSummary]) -> String {
    // every scenario that ran, its name whole; the skipped ones summed up (their reasons are above the run)
    let ran: Vec<&ScenarioSummary> = scenarios.iter().filter(|s| s.status != "skipped").collect();
    let w = ran.iter().map(|s| s.scenario.chars().count()).max().unwrap_or(0).max("scenario".len());
    let mut s = format!("{:<w$} {:<12} {:>7} {:>6} {:>22} {:>9}\n", "scenario", "status", "time", "lost", "loss window / bound", "serving");
    for sc in ran {
        let name = &sc.scenario;
        let serving = sc
            .action
            .as_ref()
            .and_then(|a| a["rto"].as_array().and_then(|m| m.iter().find(|x| x["segment"] == Segment::Serving.as_str())).and_then(|x| x["afterMs"].as_f64()))
            .map(|ms| format!("{:.1}s", ms / 1e3))
            .unwrap_or_else(|| "-".into());
        let window = match (sc.loss_window_ms, sc.loss_bound_ms) {
            (Some(w), Some(b)) => format!("{w:.0} / {b:.0} ms"),
            (Some(w), None) => format!("{w:.0} ms"),
            _ => "-".into(),
        };
        s.push_str(&format!(
            "{:<w$} {:<12} {:>7} {:>6} {:>22} {:>9}\n",
            name,
            sc.status,
            sc.duration_s.map(|d| format!("{d:.1}s")).unwrap_or_else(|| "-".into()),
            sc.records_lost.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
            window,
            serving
        ));
    }
    let skipped = scenarios.len() - scenarios.iter().filter(|s| s.status != "skipped").count();
    if skipped > 0 {
        s.push_str(&format!("({skipped} skipped, each with its reason in summary.json)\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Wt;
    use crate::fault::Fault;
    use crate::oracle::{Ack, Bound, Checkpoint, History, RegionalBound, SyncSample};
    use crate::outcome::Evidence;
    use crate::timeline::{ActionKind, Timeline};
    use dr_probe::ScanReport;

    fn cfg() -> EnvConfig {
        let text = "name: snap\nbackend:\n  lab: {}\ndisposable: true\nsites:\n  - name: a\n  - name: b\nreplication:\n  regional:\n    interval: 5s\n    scheduler: harness\n    syncAllowance: 3s\n";
        crate::config::from_yaml(Path::new("snap.yaml"), text).unwrap()
    }

    /// A failover that lost the tail 91..=100 within its bound, summarised: the summary is a snapshot of
    /// plain data, field by field.
    #[test]
    fn a_failover_summary_as_a_snapshot() {
        let boot = 0xb1;
        let acks = (1..=100).map(|s| Ack { seq: s, at: Wt::from_ms(1000 + 20 * s), boot }).collect();
        let scan = ScanReport { ranges: vec![(1, 90, boot)], highest_contiguous: 90, ..Default::default() };
        let bound = Bound::Window(RegionalBound {
            interval: Duration::from_secs(5),
            allowance: Duration::from_secs(3),
            warmup: Duration::from_secs(8),
            period: Duration::from_millis(20),
            checkpoint: Some(Checkpoint { name: "a/7".into(), started: Wt::from_ms(2500) }),
            syncs: vec![SyncSample::new("a/7".into(), Wt::from_ms(2500), Some(Wt::from_ms(3600)))],
            rollback: None,
        });
        let mut timeline = Timeline::starting(Wt::from_ms(3100), Segment::Fault);
        timeline.mark_at(Segment::Promoted, Wt::from_ms(8100));
        timeline.mark_at(Segment::Serving, Wt::from_ms(12_100));
        let outcome = Outcome {
            kind: ActionKind::Failover,
            vm: "vm0".into(),
            from: "a".into(),
            to: "b".into(),
            timeline,
            evidence: Evidence { history: History { acks, ..Default::default() }, scan, fault_at: Some(Wt::from_ms(3100)), stop_seq: None, bound },
            details: json!({"promoteAttempts": 1}),
            receipts: vec![],
            fence_at: Some(Wt::from_ms(3200)),
            abandoned: None,
            roles: vec![],
            golden: None,
        };
        let rec = ScenarioRecord {
            duration: Duration::from_millis(51_000),
            vm: Some("vm0".into()),
            receipts: vec![Receipt {
                fault: Fault::PowerLoss { site: "a".into() },
                at: Wt::from_ms(3100),
                proof: crate::fault::Proof { seen: vec!["no process left on site a".into()], took_ms: 2.0 },
            }],
            outcomes: vec![outcome],
            ..Default::default()
        };
        let mut s = ScenarioSummary::new("Failover", "power loss", None, 7, vec!["failover".into()], "passed", None);
        s.fill(&rec, &cfg());
        let v = serde_json::to_value(&s).unwrap();
        let expect = json!({
            "status": "passed", "conclusion": "passed", "cause": null, "durationS": 51.0, "vm": "vm0",
            "recordsAcked": 100, "recordsLost": 10, "recordsIndeterminate": 0,
            "lossWindowMs": 300.0, "lossBoundMs": 8020.0, "replicationInterval": "5s",
        });
        for (k, want) in expect.as_object().unwrap() {
            assert_eq!(&v[k], want, "{k}");
        }
        let a = &v["action"];
        assert_eq!(a["kind"], "failover");
        assert_eq!(
            a["rto"],
            json!([{"segment": "fault", "afterMs": 0.0}, {"segment": "promoted", "afterMs": 5000.0}, {"segment": "serving", "afterMs": 9000.0}])
        );
        assert_eq!(a["startMs"], 3100.0);
        assert_eq!(a["lost"], json!([[91, 100]]));
        assert_eq!(a["checkpoint"]["name"], "a/7");
        assert_eq!(a["syncs"][0]["syncMs"], 1100.0);
        assert_eq!(a["syncAllowanceMs"], 3000.0);
        assert_eq!(a["driver"]["promoteAttempts"], 1);
        assert_eq!(v["faults"][0]["fault"], json!({"kind": "powerLoss", "site": "a"}));
        assert!(figures(&[s]).contains("300 / 8020 ms"));
    }

    /// The closing table names every scenario that ran in full, however long, and sums up the skipped ones.
    #[test]
    fn the_table_keeps_whole_names_and_sums_up_the_skipped() {
        let long = "Regional-DR failover with site a black-holed, still running: the forced promote within its budget";
        let ran = ScenarioSummary::new("Failover", long, None, 7, vec![], "passed", None);
        let skip = |n: &str| ScenarioSummary::new("Metro", n, None, 9, vec![], "skipped", Some("needs Metro-DR".into()));
        let t = figures(&[ran, skip("one"), skip("two")]);
        assert!(t.lines().any(|l| l.starts_with(long) && l.contains("passed")), "{t}");
        assert!(!t.lines().any(|l| l.starts_with("one") || l.starts_with("two")), "{t}");
        assert!(t.ends_with("(2 skipped, each with its reason in summary.json)\n"), "{t}");
    }

    #[test]
    fn write_latency_percentiles() {
        assert_eq!(percentiles(&[]), None);
        let v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(percentiles(&v), Some((51, 99)));
        assert_eq!(percentiles(&[7]), Some((7, 7)));
    }

    #[test]
    fn exit_codes_by_cause() {
        let sc = |status: &str, cause| {
            let mut s = ScenarioSummary::new("f", "s", None, 1, vec![], status, None);
            s.cause = cause;
            s
        };
        assert_eq!(RunResult::new(vec![sc("passed", None), sc("skipped", None)], vec![]).exit_code(), 0);
        assert_eq!(RunResult::new(vec![sc("passed", None), sc("failed", Some(Cause::System))], vec![]).exit_code(), 1);
        assert_eq!(RunResult::new(vec![sc("failed", Some(Cause::System)), sc("failed", Some(Cause::Harness))], vec![]).exit_code(), 2);
        assert_eq!(RunResult::new(vec![sc("inconclusive", Some(Cause::Harness))], vec![]).exit_code(), 2);
        assert_eq!(RunResult::new(vec![sc("passed", None)], vec!["failed to recover".into()]).exit_code(), 2);
        // a run that ran nothing is not green, unless asked for
        let mut all_skipped = RunResult::new(vec![sc("skipped", None), sc("skipped", None)], vec![]);
        assert_eq!(all_skipped.exit_code(), 2);
        all_skipped.allow_skipped = true;
        assert_eq!(all_skipped.exit_code(), 0);
        // a failure nobody accounted for is the harness's (exit 2), not the system's
        let mut s = ScenarioSummary::new("f", "s", None, 1, vec![], "failed", Some("panicked".into()));
        s.fill(&ScenarioRecord::default(), &cfg());
        assert_eq!(s.cause, Some(Cause::Harness));
        assert_eq!(RunResult::new(vec![s], vec![]).exit_code(), 2);
        // inconclusive only when the failing check itself was
        let mut s = ScenarioSummary::new("f", "s", None, 1, vec![], "failed", Some("served after 3 min".into()));
        s.fill(&ScenarioRecord { cause: Some(Cause::System), ..Default::default() }, &cfg());
        assert_eq!((s.status.as_str(), s.cause), ("failed", Some(Cause::System)));
        let mut s = ScenarioSummary::new("f", "s", None, 1, vec![], "failed", Some("inconclusive".into()));
        s.fill(&ScenarioRecord { cause: Some(Cause::Harness), inconclusive: true, ..Default::default() }, &cfg());
        assert_eq!(s.status, "inconclusive");
    }
}
