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

/// One DR action (or repair) of a scenario, summed over the runs: its loss windows and its RTO segments.
#[derive(Default)]
struct ActionAcc {
    /// What it is, as the terminal says it: "failover a -> b", "relocate b -> a", "repair of site a".
    label: String,
    loss: Vec<f64>,
    bound: Option<f64>,
    /// Each RTO segment's figures, in the order the action passed them.
    rto: Vec<(String, Vec<f64>)>,
}

impl ActionAcc {
    fn segment(&mut self, seg: &str, ms: f64) {
        match self.rto.iter_mut().find(|(k, _)| k == seg) {
            Some((_, v)) => v.push(ms),
            None => self.rto.push((seg.to_string(), vec![ms])),
        }
    }

    /// The action's figures, and its segments as the scenario lists them (named with the action when
    /// `prefixed`: a scenario of several actions).
    fn json(&self, prefixed: bool) -> (Value, Vec<Value>) {
        let rto: Vec<Value> = self
            .rto
            .iter()
            .map(|(k, v)| {
                let mut x = spread(v);
                x["segment"] = json!(k);
                x
            })
            .collect();
        let listed = rto
            .iter()
            .map(|x| {
                let mut x = x.clone();
                if prefixed {
                    x["segment"] = json!(format!("{}: {}", self.label, x["segment"].as_str().unwrap_or("?")));
                }
                x
            })
            .collect();
        (json!({"action": self.label, "lossWindowMs": spread(&self.loss), "lossBoundMs": self.bound, "rtoMs": rto}), listed)
    }
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
    /// Every DR action and repair the scenario ran, in the order first seen; the same action of several
    /// VMs (the disks of one VM) sums into one.
    actions: Vec<ActionAcc>,
    per_run: Vec<Value>,
    failures: Vec<Value>,
}

impl Acc {
    fn action(&mut self, label: String) -> &mut ActionAcc {
        match self.actions.iter().position(|a| a.label == label) {
            Some(i) => &mut self.actions[i],
            None => {
                self.actions.push(ActionAcc { label, ..Default::default() });
                self.actions.last_mut().expect("just pushed")
            }
        }
    }
}

/// A scenario's DR actions in the order they ran: each action's label (its kind and direction; the n-th
/// of the same label for one VM is said "(n)") and its summary; an old summary's single `action` alone.
fn actions_of(s: &Value) -> Vec<(String, &Value)> {
    let listed: Vec<&Value> = match s["actions"].as_array() {
        Some(a) if !a.is_empty() => a.iter().collect(),
        _ => s.get("action").filter(|a| a.is_object()).into_iter().collect(),
    };
    let mut seen: Vec<(String, String)> = vec![];
    listed
        .into_iter()
        .map(|a| {
            let base = match (a["kind"].as_str(), a["from"].as_str(), a["to"].as_str()) {
                (Some(k), Some(f), Some(t)) => format!("{k} {f} -> {t}"),
                (Some(k), _, _) => k.to_string(),
                _ => "action".to_string(),
            };
            let vm = a["vm"].as_str().unwrap_or("").to_string();
            seen.push((vm.clone(), base.clone()));
            let nth = seen.iter().filter(|(v, b)| *v == vm && *b == base).count();
            (if nth > 1 { format!("{base} ({nth})") } else { base }, a)
        })
        .collect()
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
            let actions = actions_of(s);
            // the run's loss window: its worst action's (a scenario of several actions has one per action)
            let windows: Vec<f64> = actions.iter().filter_map(|(_, x)| x["lossWindowMs"].as_f64()).collect();
            let window = windows.iter().copied().reduce(f64::max).or(s["lossWindowMs"].as_f64());
            if let Some(w) = window {
                a.loss.push(w);
            }
            a.bound = a.bound.or(s["lossBoundMs"].as_f64()).or(actions.iter().find_map(|(_, x)| x["lossBoundMs"].as_f64()));
            let mut serving = None;
            for (label, x) in actions {
                let acc = a.action(label);
                if let Some(w) = x["lossWindowMs"].as_f64() {
                    acc.loss.push(w);
                }
                acc.bound = acc.bound.or(x["lossBoundMs"].as_f64());
                for m in x["rto"].as_array().into_iter().flatten() {
                    if let (Some(seg), Some(ms)) = (m["segment"].as_str(), m["afterMs"].as_f64()) {
                        if seg != "fault" && seg != "requested" {
                            acc.segment(seg, ms);
                            if seg == "serving" {
                                serving = Some(ms);
                            }
                        }
                    }
                }
            }
            for r in s["repairs"].as_array().into_iter().flatten() {
                let acc = a.action(format!("repair of site {}", r["site"].as_str().unwrap_or("?")));
                for m in r["steps"].as_array().into_iter().flatten() {
                    if let (Some(seg), Some(ms)) = (m["segment"].as_str(), m["afterMs"].as_f64()) {
                        if seg != "requested" {
                            acc.segment(seg, ms);
                        }
                    }
                }
            }
            a.per_run.push(json!({"run": run, "status": status, "lossWindowMs": window, "servingMs": serving, "durationS": s["durationS"]}));
            if status != "passed" {
                a.failures.push(json!({"run": run, "status": status, "cause": s["cause"], "reason": s["reason"]}));
            }
        }
    }
    let scenarios: Vec<Value> = by
        .into_iter()
        .map(|(name, a)| {
            // one action: its segments as they are; several: each segment named with its action
            let prefixed = a.actions.len() > 1;
            let (actions, rto): (Vec<Value>, Vec<Vec<Value>>) = a.actions.iter().map(|x| x.json(prefixed)).unzip();
            let rto: Vec<Value> = rto.into_iter().flatten().collect();
            json!({
                "scenario": name, "feature": a.feature, "runs": a.runs, "passed": a.passed, "failed": a.failed,
                "inconclusive": a.inconclusive, "passRate": if a.runs == 0 { 0.0 } else { a.passed as f64 / a.runs as f64 },
                "lossWindowMs": spread(&a.loss), "lossBoundMs": a.bound,
                "rtoMs": rto, "actions": actions,
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

    /// A scenario of several DR actions (the cycle: a failover, the repair, the relocate back; a VM of three
    /// disks) keeps every action's figures: none stands for the others, and the run's loss window is its
    /// worst action's.
    #[test]
    fn every_action_of_a_scenario_keeps_its_figures() {
        let rto = |promoted: f64| json!([{"segment": "fault", "afterMs": 0.0}, {"segment": "promoted", "afterMs": promoted}, {"segment": "serving", "afterMs": promoted * 2.0}]);
        let cycle = |i: f64| {
            json!({"scenario": "cycle", "status": "passed", "lossWindowMs": null,
                "actions": [
                    {"kind": "failover", "from": "a", "to": "b", "vm": "vm1", "lossWindowMs": 4000.0 + i, "lossBoundMs": 9020.0, "rto": rto(5000.0 + i)},
                    {"kind": "relocate", "from": "b", "to": "a", "vm": "vm1", "lossWindowMs": null, "rto": rto(6000.0 + i)},
                    {"kind": "relocate", "from": "a", "to": "b", "vm": "vm1", "lossWindowMs": null, "rto": rto(7000.0 + i)},
                    {"kind": "relocate", "from": "b", "to": "a", "vm": "vm1", "lossWindowMs": null, "rto": rto(8000.0 + i)}],
                "action": {"kind": "relocate", "from": "b", "to": "a", "rto": rto(8000.0 + i)},
                "repairs": [{"site": "a", "steps": [{"segment": "requested", "afterMs": 0.0}, {"segment": "site back", "afterMs": 9000.0}, {"segment": "resynced", "afterMs": 70_000.0 + i}]}]})
        };
        let disks = |i: f64| {
            let d = |n: usize| json!({"kind": "failover", "from": "a", "to": "b", "vm": format!("vm4-disk{n}"), "lossWindowMs": 1000.0 * n as f64 + i, "lossBoundMs": 9020.0, "rto": rto(4000.0)});
            json!({"scenario": "disks", "status": "passed", "lossWindowMs": 3000.0 + i, "lossBoundMs": 9020.0, "actions": [d(1), d(2), d(3)]})
        };
        let runs: Vec<(usize, Value)> = (1..=3).map(|i| (i, json!({"exitCode": 0, "scenarios": [cycle(i as f64), disks(i as f64)]}))).collect();
        let c = campaign(&runs, "a fresh lab per run");
        let sc = &c["scenarios"][0];
        let labels: Vec<&str> = sc["actions"].as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
        assert_eq!(labels, ["failover a -> b", "relocate b -> a", "relocate a -> b", "relocate b -> a (2)", "repair of site a"]);
        assert_eq!(
            sc["actions"][0]["lossWindowMs"],
            json!({"p50": 4002.0, "p95": 4003.0, "max": 4003.0, "n": 3}),
            "the failover's window, not the last action's"
        );
        assert_eq!(sc["lossWindowMs"]["max"], 4003.0, "the run's worst action");
        assert_eq!(sc["lossBoundMs"], 9020.0);
        assert_eq!(sc["actions"][1]["rtoMs"][0], json!({"segment": "promoted", "p50": 6002.0, "p95": 6003.0, "max": 6003.0, "n": 3}));
        assert_eq!(sc["actions"][3]["rtoMs"][0]["p50"], 8002.0, "the second relocate b -> a apart from the first");
        assert_eq!(
            sc["actions"][4]["rtoMs"],
            json!([{"segment": "site back", "p50": 9000.0, "p95": 9000.0, "max": 9000.0, "n": 3},
            {"segment": "resynced", "p50": 70_002.0, "p95": 70_003.0, "max": 70_003.0, "n": 3}])
        );
        let segs: Vec<&str> = sc["rtoMs"].as_array().unwrap().iter().map(|x| x["segment"].as_str().unwrap()).collect();
        assert_eq!(segs.len(), 2 + 2 + 2 + 2 + 2);
        assert_eq!((segs[0], segs[9]), ("failover a -> b: promoted", "repair of site a: resynced"));
        // the disks of one VM: one action, every disk's figures (3 per run)
        let d = &c["scenarios"][1];
        assert_eq!(d["actions"].as_array().unwrap().len(), 1);
        assert_eq!(d["actions"][0]["lossWindowMs"], json!({"p50": 2002.0, "p95": 3003.0, "max": 3003.0, "n": 9}));
        assert_eq!(d["rtoMs"][0]["segment"], "promoted", "one action: its segments as they are");
        assert_eq!(d["lossWindowMs"]["max"], 3003.0);
        let page = crate::html::render_campaign(&c);
        assert!(page.contains("repair of site a: resynced"), "{page}");
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
