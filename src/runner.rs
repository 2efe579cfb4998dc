//! Cucumber wiring: features are parsed and every step checked before anything is started, scenarios run
//! serially against one shared lab, and cucumber's events flow through one writer pipeline to the
//! terminal, JUnit and JSON; the run's own records go to summary.json and history files.

use crate::clock::Wt;
use crate::config::EnvConfig;
use crate::env::lab::procs;
use crate::env::Environment;
use crate::report::{self, ScenarioSummary};
use crate::steps::DrWorld;
use cucumber::event::ScenarioFinished;
use cucumber::gherkin::{self, tagexpr::TagOperation};
use cucumber::tag::Ext as _;
use cucumber::{writer, World as _, WriterExt as _};
use futures::FutureExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Errors of the run's input, each naming the file and line.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("failed to read features from {path}: {msg}")]
    Features { path: PathBuf, msg: String },
    #[error("{path}:{line}: unknown step: {step}")]
    UnknownStep { path: PathBuf, line: usize, step: String },
    #[error("{path}:{line}: ambiguous step: {step} matches more than one definition")]
    AmbiguousStep { path: PathBuf, line: usize, step: String },
    #[error("invalid tag expression {expr:?}: {msg}")]
    Tags { expr: String, msg: String },
    #[error("{path}:{line}: refusing to run destructive step \"{step}\": environment {env} is not marked disposable (set `disposable: true`)")]
    NotDisposable { path: PathBuf, line: usize, step: String, env: String },
    #[error(transparent)]
    Lab(#[from] crate::env::lab::LabError),
    #[error("no scenario matches (tags: {0})")]
    NothingSelected(String),
    #[error("failed to write reports to {path}: {source}")]
    Report { path: PathBuf, source: std::io::Error },
}

pub struct RunOptions {
    pub cfg: EnvConfig,
    pub paths: Vec<PathBuf>,
    pub tags: Option<String>,
    pub report_dir: PathBuf,
    pub keep: bool,
}

#[derive(Debug, Default)]
pub struct RunResult {
    pub scenarios: Vec<ScenarioSummary>,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub harness_errors: Vec<String>,
}

struct RunCtx {
    cfg: EnvConfig,
    env: tokio::sync::Mutex<Option<Environment>>,
    lab_error: Mutex<Option<String>>,
    harness_errors: Mutex<Vec<String>>,
    scenarios: Mutex<Vec<ScenarioSummary>>,
    report_dir: PathBuf,
}

static CTX: OnceLock<RunCtx> = OnceLock::new();

fn ctx() -> &'static RunCtx {
    CTX.get().expect("the runner sets the run context before any step runs")
}

pub fn config() -> &'static EnvConfig {
    &ctx().cfg
}

/// Records that the harness (not the system under test) broke: the run exits 2.
pub fn harness_error(msg: String) {
    if let Some(c) = CTX.get() {
        c.harness_errors.lock().unwrap().push(msg);
    }
}

/// The run's environment, brought up on first use; a failed bring-up is remembered and not retried.
pub async fn env() -> Result<tokio::sync::MappedMutexGuard<'static, Environment>, String> {
    let c = ctx();
    let mut g = c.env.lock().await;
    if g.is_none() {
        if let Some(e) = c.lab_error.lock().unwrap().clone() {
            return Err(format!("the environment could not be brought up earlier in this run: {e}"));
        }
        println!("      bringing up {} ({}) ...", c.cfg.spec.name, c.cfg.replication_summary());
        for ns in procs::reap_stale_netns() {
            println!("      removed namespace {ns} left by an earlier run that was killed");
        }
        match Environment::up(&c.cfg).await {
            Ok(e) => {
                println!("      {}", e.describe());
                *g = Some(e)
            }
            Err(e) => {
                let msg = format!("failed to bring up environment {}: {e}", c.cfg.spec.name);
                *c.lab_error.lock().unwrap() = Some(msg.clone());
                return Err(msg);
            }
        }
    }
    Ok(tokio::sync::MutexGuard::map(g, |l| l.as_mut().expect("set above")))
}

/// Feature files under `paths` (files as given, directories walked for `*.feature`), sorted.
pub fn feature_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, RunError> {
    let mut out = vec![];
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        if p.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)?.flatten().map(|e| e.path()).collect();
            entries.sort();
            for e in entries {
                walk(&e, out)?;
            }
        } else if p.extension().is_some_and(|x| x == "feature") {
            out.push(p.to_path_buf());
        }
        Ok(())
    }
    for p in paths {
        if !p.exists() {
            return Err(RunError::Features { path: p.clone(), msg: "no such file or directory".into() });
        }
        walk(p, &mut out).map_err(|e| RunError::Features { path: p.clone(), msg: e.to_string() })?;
    }
    if out.is_empty() {
        return Err(RunError::Features { path: paths.first().cloned().unwrap_or_default(), msg: "no .feature files found".into() });
    }
    Ok(out)
}

/// Parses every feature and checks every step against the step definitions. Pure but for reading files.
pub fn load_features(files: &[PathBuf]) -> Result<Vec<gherkin::Feature>, RunError> {
    use cucumber::feature::Ext as _;
    let steps = DrWorld::collection();
    let mut out = vec![];
    for f in files {
        let feat = gherkin::Feature::parse_path(f, gherkin::GherkinEnv::default())
            .map_err(|e| RunError::Features { path: f.clone(), msg: e.to_string() })?
            .expand_examples()
            .map_err(|e| RunError::Features { path: f.clone(), msg: e.to_string() })?;
        let all_steps = feat
            .background
            .iter()
            .flat_map(|b| b.steps.iter())
            .chain(feat.scenarios.iter().flat_map(|s| s.steps.iter()))
            .chain(feat.rules.iter().flat_map(|r| r.background.iter().flat_map(|b| b.steps.iter()).chain(r.scenarios.iter().flat_map(|s| s.steps.iter()))));
        for st in all_steps {
            let text = format!("{} {}", st.keyword.trim(), st.value);
            match steps.find(st) {
                Ok(Some(_)) => {}
                Ok(None) => return Err(RunError::UnknownStep { path: f.clone(), line: st.position.line, step: text }),
                Err(_) => return Err(RunError::AmbiguousStep { path: f.clone(), line: st.position.line, step: text }),
            }
        }
        out.push(feat);
    }
    Ok(out)
}

/// Features already parsed and checked, fed to cucumber as they are.
struct PreParsed;

impl cucumber::Parser<Vec<gherkin::Feature>> for PreParsed {
    type Cli = cucumber::cli::Empty;
    type Output = futures::stream::Iter<std::iter::Map<std::vec::IntoIter<gherkin::Feature>, fn(gherkin::Feature) -> cucumber::parser::Result<gherkin::Feature>>>;
    fn parse(self, input: Vec<gherkin::Feature>, _: Self::Cli) -> Self::Output {
        futures::stream::iter(input.into_iter().map(Ok as fn(_) -> _))
    }
}

fn all_tags<'a>(f: &'a gherkin::Feature, r: Option<&'a gherkin::Rule>, s: &'a gherkin::Scenario) -> Vec<&'a str> {
    f.tags.iter().chain(r.iter().flat_map(|r| r.tags.iter())).chain(s.tags.iter()).map(|t| t.as_str()).collect()
}

/// Steps that destroy or damage something (faults, forced promotion): refused on non-disposable environments.
pub fn is_destructive(step: &str) -> bool {
    ["loses power", "replication to site", "is cut off", "is corrupted", "is failed over", "without waiting for the sync barrier"].iter().any(|p| step.contains(p))
}

/// Why this environment cannot run a scenario, if it cannot (the scenario is then skipped, never passed).
fn unsupported(cfg: &EnvConfig, tags: &[&str]) -> Option<String> {
    if tags.contains(&"metro") {
        return Some(format!("needs Metro-DR (synchronous replication); environment {} is {}", cfg.spec.name, cfg.replication_summary()));
    }
    if tags.contains(&"scheduler-ceph") && cfg.spec.replication.scheduler != crate::config::Scheduler::Ceph {
        return Some(format!("needs Ceph's own mirror snapshot schedule (scheduler: ceph); environment {} is {}", cfg.spec.name, cfg.replication_summary()));
    }
    None
}

pub async fn run(opts: RunOptions) -> Result<RunResult, RunError> {
    let files = feature_files(&opts.paths)?;
    let features = load_features(&files)?;
    let expr = opts.tags.clone().unwrap_or_default();
    let op: Option<TagOperation> = if expr.trim().is_empty() {
        None
    } else {
        Some(expr.parse().map_err(|e| RunError::Tags { expr: expr.clone(), msg: format!("{e}") })?)
    };
    let selects = move |tags: &[&str]| op.as_ref().is_none_or(|op| op.eval(tags.iter()));
    let mut selected = 0;
    let mut skipped = vec![];
    for f in &features {
        let scenarios = f.scenarios.iter().map(|s| (None, s)).chain(f.rules.iter().flat_map(|r| r.scenarios.iter().map(move |s| (Some(r), s))));
        for (r, s) in scenarios {
            let tags = all_tags(f, r, s);
            if selects(&tags) {
                if let Some(st) = s.steps.iter().find(|st| !opts.cfg.spec.disposable && is_destructive(&st.value)) {
                    return Err(RunError::NotDisposable {
                        path: f.path.clone().unwrap_or_default(),
                        line: st.position.line,
                        step: format!("{} {}", st.keyword.trim(), st.value),
                        env: opts.cfg.spec.name.clone(),
                    });
                }
                match unsupported(&opts.cfg, &tags) {
                    Some(why) => skipped.push(report::skipped(f, s, &why)),
                    None => selected += 1,
                }
            }
        }
    }
    // Input is sound: now check that the machine has what the environment needs.
    crate::env::lab::Assets::locate()?;
    if selected == 0 && skipped.is_empty() {
        return Err(RunError::NothingSelected(if expr.is_empty() { "none".into() } else { expr }));
    }
    std::fs::create_dir_all(&opts.report_dir).map_err(|source| RunError::Report { path: opts.report_dir.clone(), source })?;
    let _ = CTX.set(RunCtx {
        cfg: opts.cfg.clone(),
        env: tokio::sync::Mutex::new(None),
        lab_error: Mutex::new(None),
        harness_errors: Mutex::new(vec![]),
        scenarios: Mutex::new(vec![]),
        report_dir: opts.report_dir.clone(),
    });
    for s in &skipped {
        println!("  skipped: {} ({})", s.scenario, s.reason.as_deref().unwrap_or(""));
    }
    let open = |name: &str| {
        let p = opts.report_dir.join(name);
        std::fs::File::create(&p).map_err(|source| RunError::Report { path: p, source })
    };
    let (junit, json) = (open("junit.xml")?, open("cucumber.json")?);
    let cfg = opts.cfg.clone();
    let started = Wt::now();
    let history = crate::events::HistoryWriter::start(&opts.report_dir);
    let _writer = DrWorld::cucumber::<PathBuf>()
        .with_parser(PreParsed)
        .max_concurrent_scenarios(1)
        .fail_on_skipped()
        .with_writer(
            writer::Basic::raw(std::io::stdout(), writer::Coloring::Auto, 0)
                .summarized()
                .tee::<DrWorld, _>(writer::JUnit::for_tee(junit, 0))
                .tee::<DrWorld, _>(writer::Json::for_tee(json))
                .normalized(),
        )
        .before(|_, _, _, w| {
            async move {
                w.started = Some(Wt::now());
            }
            .boxed_local()
        })
        .after(|f, r, s, finished, w| {
            let tags: Vec<String> = all_tags(f, r, s).into_iter().map(String::from).collect();
            let (feature, scenario, line) = (f.name.clone(), s.name.clone(), s.position.line);
            let path = f.path.clone();
            let (status, reason) = match finished {
                ScenarioFinished::StepPassed => ("passed", None),
                ScenarioFinished::StepSkipped => ("skipped", Some("a step has no definition".to_string())),
                ScenarioFinished::StepFailed(_, _, e) => ("failed", Some(e.to_string())),
                ScenarioFinished::BeforeHookFailed(_) => ("failed", Some("the before hook failed".to_string())),
            };
            async move {
                let c = ctx();
                let mut summary = ScenarioSummary::new(&feature, &scenario, path, line, tags, status, reason);
                if let Some(w) = w {
                    teardown(w, &mut summary, &c.report_dir).await;
                }
                c.scenarios.lock().unwrap().push(summary);
            }
            .boxed_local()
        })
        .with_default_cli()
        .filter_run(features, move |f, r, s| {
            let tags = all_tags(f, r, s);
            selects(&tags) && unsupported(&cfg, &tags).is_none()
        })
        .await;

    let c = ctx();
    if let Some(mut env) = c.env.lock().await.take() {
        if opts.keep {
            println!("kept on purpose (--keep): {}", env.kept_at());
            procs::set_keep(true);
        }
        env.down().await;
    }
    if let Err(e) = history.finish().await {
        c.harness_errors.lock().unwrap().push(format!("failed to write history files in {}: {e}", opts.report_dir.display()));
    }
    let mut scenarios = std::mem::take(&mut *c.scenarios.lock().unwrap());
    scenarios.extend(skipped);
    let mut res = RunResult { harness_errors: c.harness_errors.lock().unwrap().clone(), ..Default::default() };
    for s in &scenarios {
        match s.status.as_str() {
            "passed" => res.passed += 1,
            "skipped" => res.skipped += 1,
            _ => res.failed += 1,
        }
    }
    if scenarios.iter().any(|s| s.status == "skipped" && s.reason.as_deref() == Some("a step has no definition")) {
        res.harness_errors.push("a step has no definition".into());
    }
    report::write_summary(&opts.report_dir, &opts.cfg, started, &scenarios, &res)
        .map_err(|source| RunError::Report { path: opts.report_dir.clone(), source })?;
    res.scenarios = scenarios;
    Ok(res)
}

/// After every scenario: stop its VM, recover every injected fault (newest first), write its history.
async fn teardown(w: &mut DrWorld, summary: &mut ScenarioSummary, dir: &Path) {
    let c = ctx();
    summary.duration_s = w.started.map(|s| Wt::now().since(s).as_secs_f64());
    let mut g = c.env.lock().await;
    let Some(env) = g.as_mut() else { return };
    if let Some(vm) = w.vm.clone() {
        env.stop_vm(&vm).await;
    }
    for r in w.receipts.iter().rev() {
        if let Err(e) = env.recover(r).await {
            c.harness_errors.lock().unwrap().push(format!("failed to recover from fault \"{}\": {e}", r.fault));
        }
    }
    summary.fill(w, env.cfg());
    summary.history = w.vm.as_deref().map(|vm| crate::events::history_path(dir, vm));
}
