//! Campaigns: the same scenarios run N times (`dr-drill run --repeat N`), summed up per scenario: the pass
//! rate, the p50/p95/max of the loss window and of each RTO segment, each failed run with its reason.
//! Pure: from the runs' summary.json values.

use crate::html::percentile;
use serde_json::{json, Value};

/// p50/p95/max (nearest rank) and how many figures, or null without figures.
pub fn spread(v: &[f64]) -> Value {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    match (percentile(&v, 0.5), percentile(&v, 0.95), v.last()) {
        (Some(p50), Some(p95), Some(max)) => json!({"p50": p50, "p95": p95, "max": max, "n": v.len()}),
        _ => Value::Null,
    }
}

/// The flake figure of a campaign: how many runs were green (exit 0), failed for the system (exit 1), or
/// broke or proved nothing (exit 2: the harness's, apart from the system's), the green share, and the
/// spread of the runs' durations (the scenarios' time, seconds). A run without an exit code counts as 2.
pub fn outcomes(runs: &[(usize, Value)]) -> Value {
    let code = |s: &Value| s["exitCode"].as_i64().unwrap_or(2);
    let count = |c: i64| runs.iter().filter(|(_, s)| code(s) == c).count();
    let durations: Vec<f64> = runs.iter().map(|(_, s)| s["scenarios"].as_array().into_iter().flatten().filter_map(|x| x["durationS"].as_f64()).sum()).collect();
    let green = count(0);
    json!({
        "green": green,
        "systemFailed": count(1),
        "harnessOrInconclusive": runs.len() - green - count(1),
        "greenRate": if runs.is_empty() { 0.0 } else { green as f64 / runs.len() as f64 },
        "durationS": spread(&durations),
    })
}

#[derive(Default)]
struct Acc {
    feature: String,
    runs: usize,
    passed: usize,
    failed: usize,
    inconclusive: usize,
    loss: Vec<f64>,
    bound: Option<f64>,
    /// Each RTO segment's figures, in the order the actions passed them.
    rto: Vec<(String, Vec<f64>)>,
    per_run: Vec<Value>,
    failures: Vec<Value>,
}

/// The campaign over `runs` (run number from 1, its summary.json). `fresh` says how the environment was
/// had for each run.
pub fn campaign(runs: &[(usize, Value)], fresh: &str) -> Value {
    let mut by: Vec<(String, Acc)> = vec![];
    for (run, summary) in runs {
        for s in summary["scenarios"].as_array().into_iter().flatten().filter(|s| s["status"] != "skipped") {
            let name = s["scenario"].as_str().unwrap_or("?").to_string();
            let i = match by.iter().position(|(n, _)| *n == name) {
                Some(i) => i,
                None => {
                    by.push((name, Acc { feature: s["feature"].as_str().unwrap_or("").into(), ..Default::default() }));
                    by.len() - 1
                }
            };
            let a = &mut by[i].1;
            a.runs += 1;
            let status = s["status"].as_str().unwrap_or("failed");
            match status {
                "passed" => a.passed += 1,
                "inconclusive" => a.inconclusive += 1,
                _ => a.failed += 1,
            }
            if let Some(w) = s["lossWindowMs"].as_f64() {
                a.loss.push(w);
            }
            a.bound = a.bound.or(s["lossBoundMs"].as_f64());
            for m in s["action"]["rto"].as_array().into_iter().flatten() {
                if let (Some(seg), Some(ms)) = (m["segment"].as_str(), m["afterMs"].as_f64()) {
                    if seg != "fault" && seg != "requested" {
                        match a.rto.iter_mut().find(|(k, _)| k == seg) {
                            Some((_, v)) => v.push(ms),
                            None => a.rto.push((seg.to_string(), vec![ms])),
                        }
                    }
                }
            }
            let serving = s["action"]["rto"].as_array().and_then(|m| m.iter().find(|x| x["segment"] == "serving")).and_then(|x| x["afterMs"].as_f64());
            a.per_run.push(json!({"run": run, "status": status, "lossWindowMs": s["lossWindowMs"], "servingMs": serving, "durationS": s["durationS"]}));
            if status != "passed" {
                a.failures.push(json!({"run": run, "status": status, "cause": s["cause"], "reason": s["reason"]}));
            }
        }
    }
    let scenarios: Vec<Value> = by
        .into_iter()
        .map(|(name, a)| {
            json!({
                "scenario": name, "feature": a.feature, "runs": a.runs, "passed": a.passed, "failed": a.failed,
                "inconclusive": a.inconclusive, "passRate": if a.runs == 0 { 0.0 } else { a.passed as f64 / a.runs as f64 },
                "lossWindowMs": spread(&a.loss), "lossBoundMs": a.bound,
                "rtoMs": a.rto.iter().map(|(k, v)| { let mut x = spread(v); x["segment"] = json!(k); x }).collect::<Vec<_>>(),
                "perRun": a.per_run, "failures": a.failures,
            })
        })
        .collect();
    let exit_codes: Vec<Value> = runs.iter().map(|(run, s)| json!({"run": run, "exitCode": s["exitCode"]})).collect();
    json!({
        "runs": runs.len(),
        "environment": runs.first().map(|r| r.1["environment"].clone()).unwrap_or(Value::Null),
        "labPerRun": fresh,
        "exitCodes": exit_codes,
        "outcomes": outcomes(runs),
        "scenarios": scenarios,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: &str, loss: f64, serving: f64) -> Value {
        json!({"environment": {"name": "lab"}, "scenarios": [
            {"feature": "F", "scenario": "failover", "status": status, "reason": if status == "passed" { Value::Null } else { json!("lag") },
             "lossWindowMs": loss, "lossBoundMs": 8020.0,
             "action": {"rto": [{"segment": "fault", "afterMs": 0.0}, {"segment": "promoted", "afterMs": serving / 2.0}, {"segment": "serving", "afterMs": serving}]}},
            {"feature": "F", "scenario": "skipped one", "status": "skipped"}
        ]})
    }

    #[test]
    fn pass_rate_percentiles_and_failures_per_scenario() {
        let runs: Vec<(usize, Value)> =
            (1..=5).map(|i| (i, run(if i == 4 { "failed" } else { "passed" }, 1000.0 * i as f64, 10_000.0 + i as f64 * 100.0))).collect();
        let c = campaign(&runs, "a fresh lab per run");
        assert_eq!(c["runs"], 5);
        let sc = &c["scenarios"][0];
        assert_eq!(c["scenarios"].as_array().unwrap().len(), 1, "skipped scenarios are not in the campaign");
        assert_eq!((sc["runs"].as_u64(), sc["passed"].as_u64()), (Some(5), Some(4)));
        assert_eq!(sc["passRate"], 0.8);
        assert_eq!(sc["lossWindowMs"], json!({"p50": 3000.0, "p95": 5000.0, "max": 5000.0, "n": 5}));
        let rto = sc["rtoMs"].as_array().unwrap();
        assert_eq!(rto.iter().map(|x| x["segment"].as_str().unwrap()).collect::<Vec<_>>(), ["promoted", "serving"], "in the order passed, no fault");
        assert_eq!(rto[1]["p50"], 10_300.0);
        assert_eq!(sc["failures"], json!([{"run": 4, "status": "failed", "cause": null, "reason": "lag"}]));
        let page = crate::html::render_campaign(&c);
        assert!(page.contains("4/5 (80%)") && page.contains("3000 / 5000 / 5000"), "{page}");
        assert!(page.contains("run 4: failed: lag"));
        let cmp = crate::html::render_compare(&c, &campaign(&runs[..2], "reused"));
        assert!(cmp.contains("2/2 (100%)"), "{cmp}");
    }

    /// The flake figure counts each run by its exit code: the harness's errors apart from the system's
    /// failures, a run with no exit code as a harness error (never as green).
    #[test]
    fn outcomes_count_runs_by_exit_code() {
        let r = |code: Option<i64>, d: f64| {
            let mut v = json!({"scenarios": [{"durationS": d}, {"durationS": 1.0}]});
            if let Some(c) = code {
                v["exitCode"] = json!(c);
            }
            v
        };
        let runs: Vec<(usize, Value)> = vec![(1, r(Some(0), 9.0)), (2, r(Some(1), 19.0)), (3, r(Some(2), 29.0)), (4, r(None, 39.0)), (5, r(Some(0), 49.0))];
        let o = outcomes(&runs);
        assert_eq!((o["green"].as_u64(), o["systemFailed"].as_u64(), o["harnessOrInconclusive"].as_u64()), (Some(2), Some(1), Some(2)));
        assert_eq!(o["greenRate"], 0.4);
        assert_eq!((o["durationS"]["p50"].as_f64(), o["durationS"]["max"].as_f64()), (Some(30.0), Some(50.0)));
    }

    #[test]
    fn no_figures_no_spread() {
        assert_eq!(spread(&[]), Value::Null);
        assert_eq!(spread(&[f64::NAN]), Value::Null);
    }
}
