//! `dr-drill run`: the drills.

use super::{default_features, Exit, DEFAULT_TAGS};
use crate::config::EnvConfig;
use crate::runner::{self, RunOptions};
use std::path::PathBuf;

/// What `dr-drill run` was asked.
pub struct RunArgs {
    pub tags: Option<String>,
    pub report_dir: Option<PathBuf>,
    pub keep: bool,
    pub confirm: Option<String>,
    pub allow_skipped: bool,
    pub seed: Option<u64>,
    /// Run the selection this many times (a campaign).
    pub repeat: u32,
    pub paths: Vec<PathBuf>,
}

pub async fn run(cfg: &EnvConfig, args: RunArgs) -> anyhow::Result<Exit> {
    let RunArgs { tags, report_dir, keep, confirm, allow_skipped, seed, repeat, paths } = args;
    let mut cfg = cfg.clone();
    if let Some(seed) = seed {
        match &mut cfg.spec.backend {
            crate::config::Backend::Sim(s) => s.seed = seed,
            _ => anyhow::bail!("--seed is for simulated environments (backend: sim); {} is {}", cfg.path.display(), cfg.spec.backend_name()),
        }
    }
    let cfg = &cfg;
    if let Some(c) = &confirm {
        if *c != cfg.spec.name {
            anyhow::bail!("--confirm {c} does not name this environment ({}, {}): destructive steps stay refused", cfg.spec.name, cfg.path.display());
        }
    }
    // Negative controls (expected to fail) and WAN drills are left out unless asked for.
    let tags = if paths.is_empty() { tags.or_else(|| Some(DEFAULT_TAGS.into())) } else { tags };
    let paths = if paths.is_empty() { default_features()? } else { paths };
    let report_dir = report_dir.unwrap_or_else(|| PathBuf::from("reports").join(super::run_id()));
    println!("dr-drill: environment {} ({}), {}", cfg.spec.name, cfg.path.display(), cfg.replication_summary());
    let opts = |report_dir: PathBuf| RunOptions {
        cfg: cfg.clone(),
        paths: paths.clone(),
        tags: tags.clone(),
        report_dir,
        keep,
        confirmed: confirm.is_some(),
        allow_skipped,
        quiet: false,
    };
    if repeat > 1 {
        return campaign(cfg, repeat, &report_dir, opts).await;
    }
    println!("dr-drill: reports in {}", report_dir.display());
    let res = runner::run(opts(report_dir.clone())).await?;
    say(cfg, &res, allow_skipped, &report_dir);
    Ok(res.exit())
}

const FRESH: &str = "a fresh environment per run (brought up and torn down by each run)";

/// `--repeat N`: N runs, each with its own environment brought up and down, in `run-K` folders; then the
/// campaign's figures. The exit code is the worst run's (a harness error outranks a failure).
async fn campaign(cfg: &EnvConfig, n: u32, dir: &std::path::Path, opts: impl Fn(PathBuf) -> RunOptions) -> anyhow::Result<Exit> {
    println!("dr-drill: campaign of {n} runs in {}, each with a fresh environment (brought up and torn down per run)", dir.display());
    let mut runs = vec![];
    let mut worst = Exit::Passed;
    for k in 1..=n as usize {
        let d = dir.join(format!("run-{k}"));
        println!("dr-drill: run {k} of {n}: reports in {}", d.display());
        let res = runner::run(opts(d.clone())).await?;
        say(cfg, &res, opts(d.clone()).allow_skipped, &d);
        worst = worst.max(res.exit());
        runs.push((k, d));
        // the figures so far after every run: a campaign stopped part way keeps those of the runs it finished
        crate::evidence::write_campaign(dir, &runs, FRESH)?;
    }
    let (c, page) = crate::evidence::write_campaign(dir, &runs, FRESH)?;
    let o = &c["outcomes"];
    println!(
        "campaign: {n} runs: {} green, {} failed for the system (exit 1), {} harness errors or inconclusive (exit 2); run time p50/p95/max {}; {}",
        o["green"],
        o["systemFailed"],
        o["harnessOrInconclusive"],
        match (o["durationS"]["p50"].as_f64(), o["durationS"]["p95"].as_f64(), o["durationS"]["max"].as_f64()) {
            (Some(a), Some(b), Some(m)) => format!("{a:.0}/{b:.0}/{m:.0} s"),
            _ => "-".into(),
        },
        dir.join("campaign.json").display()
    );
    for sc in c["scenarios"].as_array().into_iter().flatten() {
        let p = |v: &serde_json::Value| match (v["p50"].as_f64(), v["p95"].as_f64(), v["max"].as_f64()) {
            (Some(a), Some(b), Some(m)) => format!("{a:.0}/{b:.0}/{m:.0} ms"),
            _ => "-".into(),
        };
        // serving after each DR action (named when the scenario ran several)
        let actions: Vec<&serde_json::Value> =
            sc["actions"].as_array().into_iter().flatten().filter(|a| !a["action"].as_str().unwrap_or("").starts_with("repair")).collect();
        let serving =
            |a: &serde_json::Value| p(a["rtoMs"].as_array().and_then(|r| r.iter().find(|x| x["segment"] == "serving")).unwrap_or(&serde_json::Value::Null));
        let serving = match actions.as_slice() {
            [one] => serving(one),
            [] => "-".into(),
            many => many.iter().map(|a| format!("{} {}", a["action"].as_str().unwrap_or("?"), serving(a))).collect::<Vec<_>>().join(", "),
        };
        println!(
            "  {}: {}/{} passed; loss window p50/p95/max {}; serving p50/p95/max {serving}",
            sc["scenario"].as_str().unwrap_or("?"),
            sc["passed"],
            sc["runs"],
            p(&sc["lossWindowMs"]),
        );
    }
    println!("campaign report: {}", page.display());
    Ok(worst)
}

/// The end of one run on the terminal: the table, the harness's errors, what was skipped, the counts.
fn say(cfg: &EnvConfig, res: &crate::report::RunResult, allow_skipped: bool, report_dir: &std::path::Path) {
    print!("{}", crate::report::figures(&res.scenarios));
    for e in &res.harness_errors {
        eprintln!("harness error: {e}");
    }
    for s in res.scenarios.iter().filter(|s| s.cause == Some(crate::error::Cause::Harness) || s.status == "inconclusive") {
        eprintln!("harness error: {}: {}", s.scenario, s.reason.as_deref().unwrap_or("(no reason)"));
    }
    if res.ran_nothing() {
        let mut reasons: Vec<&str> = res.scenarios.iter().filter_map(|s| s.reason.as_deref()).collect();
        reasons.dedup();
        let verdict = if allow_skipped { "accepted (--allow-skipped)" } else { "not a pass: the run proved nothing (pass --allow-skipped to accept it)" };
        eprintln!("no scenario ran: all {} selected were skipped, {verdict}; why: {}", res.skipped, reasons.join("; "));
    }
    println!("report: {}", report_dir.join("index.html").display());
    println!("scenarios: {} passed, {} failed, {} skipped", res.passed, res.failed, res.skipped);
    if let (crate::config::Backend::Sim(s), true) = (&cfg.spec.backend, res.exit() != Exit::Passed) {
        println!("simulated run, seed {}: replay it with `dr-drill run --env {} --seed {}` and the same features", s.seed, cfg.path.display(), s.seed);
    }
}
