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
    pub paths: Vec<PathBuf>,
}

pub async fn run(cfg: &EnvConfig, args: RunArgs) -> anyhow::Result<Exit> {
    let RunArgs { tags, report_dir, keep, confirm, allow_skipped, seed, paths } = args;
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
    println!("dr-drill: reports in {}", report_dir.display());
    let res = runner::run(RunOptions { cfg: cfg.clone(), paths, tags, report_dir, keep, confirmed: confirm.is_some(), allow_skipped, quiet: false }).await?;
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
    println!("scenarios: {} passed, {} failed, {} skipped", res.passed, res.failed, res.skipped);
    if let (crate::config::Backend::Sim(s), true) = (&cfg.spec.backend, res.exit() != Exit::Passed) {
        println!("simulated run, seed {}: replay it with `dr-drill run --env {} --seed {}` and the same features", s.seed, cfg.path.display(), s.seed);
    }
    Ok(res.exit())
}
