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
