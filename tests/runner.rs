//! The runner owns its run: nothing global, so one process runs it twice (each run with its own session,
//! event stream and reports). The readiness feature needs no lab.

#[path = "support/schema.rs"]
mod schema;

use dr_drill::runner::{run, RunOptions};
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_runs_twice_in_one_process() {
    dr_drill::clock::start();
    let cfg = dr_drill::config::load(Path::new("environments/lab-regional.yaml")).unwrap();
    for round in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            cfg: cfg.clone(),
            paths: vec!["features/readiness.feature".into()],
            tags: None,
            report_dir: dir.path().to_path_buf(),
            keep: false,
            confirmed: false,
            allow_skipped: false,
            quiet: false,
        };
        let res = run(opts).await.unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!((res.passed, res.failed, res.skipped, res.exit_code()), (1, 0, 0, 0), "round {round}: {:?}", res.scenarios);
        let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
        schema::check_run_folder(dir.path());
        assert_eq!(summary["scenarios"].as_array().unwrap().len(), 1, "round {round}");
        assert_eq!(summary["scenarios"][0]["status"], "passed");
    }
}

/// The summary check can fail (its negative control): a key out of the schema, a segment as a tuple, and a
/// snake_case key where the schema allows anything (a driver's facts) are each refused.
#[test]
fn the_summary_check_refuses_what_breaks_it() {
    let good: serde_json::Value = serde_json::from_str(include_str!("fixtures/report/lab-failover/summary.json")).unwrap();
    schema::check_summary(&good);
    let broken = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        f(&mut v);
        std::panic::catch_unwind(|| schema::check_summary(&v)).is_err()
    };
    assert!(broken(&|v| v["scenarios"][0]["records_lost"] = serde_json::json!(3)), "a key the schema does not know");
    assert!(broken(&|v| v["scenarios"][0]["action"]["rto"] = serde_json::json!([["fault", 0.0]])), "a segment as a tuple");
    assert!(broken(&|v| v["scenarios"][0]["action"]["driver"]["promote_attempts"] = serde_json::json!(1)), "snake_case inside free-form facts");
}
