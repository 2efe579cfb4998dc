//! Cucumber wiring: features are parsed and every step checked before anything is started, scenarios run
//! serially against the run's one environment, and cucumber's events flow through one writer pipeline to
//! the terminal, JUnit and JSON; the run's own records go to summary.json and history files. Each run owns
//! its session (environment, event stream) and hands it to every scenario in the `before` hook.

use crate::clock::Wt;
use crate::config::{EnvConfig, Replication, Scheduler};
use crate::error::{Cause, EnvError};
use crate::events::{Bus, HistoryWriter};
use crate::report::{self, RunResult, ScenarioSummary};
use crate::scenario::Scenario;
use crate::session::Session;
use crate::steps::DrWorld;
use cucumber::event::ScenarioFinished;
use cucumber::gherkin::{self, tagexpr::TagOperation};
use cucumber::tag::Ext as _;
use cucumber::{writer, World as _, WriterExt as _};
use futures::FutureExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    #[error("{path}:{line}: refusing to run destructive step \"{step}\" against the existing clusters of environment {env}: it is marked disposable, but the command line must confirm it too (--confirm {env})")]
    NotConfirmed { path: PathBuf, line: usize, step: String, env: String },
    #[error(transparent)]
    Env(#[from] EnvError),
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
    /// The command line named this environment in `--confirm`: destructive steps may run against existing
    /// clusters marked disposable.
    pub confirmed: bool,
    /// A run where every selected scenario is skipped may exit 0 (otherwise it ran nothing: exit 2).
    pub allow_skipped: bool,
    /// No console output (the reports are written all the same).
    pub quiet: bool,
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
    type Output =
        futures::stream::Iter<std::iter::Map<std::vec::IntoIter<gherkin::Feature>, fn(gherkin::Feature) -> cucumber::parser::Result<gherkin::Feature>>>;
    fn parse(self, input: Vec<gherkin::Feature>, _: Self::Cli) -> Self::Output {
        futures::stream::iter(input.into_iter().map(Ok as fn(_) -> _))
    }
}

fn all_tags<'a>(f: &'a gherkin::Feature, r: Option<&'a gherkin::Rule>, s: &'a gherkin::Scenario) -> Vec<&'a str> {
    f.tags.iter().chain(r.iter().flat_map(|r| r.tags.iter())).chain(s.tags.iter()).map(|t| t.as_str()).collect()
}

/// Steps that destroy or damage something (faults, forced promotion): refused on non-disposable
/// environments. What each sentence needs is declared in `capability`. Pure.
pub fn is_destructive(step: &str) -> bool {
    crate::capability::is_destructive(step)
}

/// Why this environment cannot run a scenario with these tags, if it cannot (the scenario is then skipped,
/// never passed). Pure.
pub fn unsupported(cfg: &EnvConfig, tags: &[&str]) -> Option<String> {
    let (name, what) = (&cfg.spec.name, cfg.replication_summary());
    // where the bundled environments of the same backend are, for a newcomer
    let try_env = |file: &str| match &cfg.spec.backend {
        crate::config::Backend::Lab(_) => format!(": run with --env environments/lab-{file}.yaml"),
        crate::config::Backend::Sim(_) => format!(": run with --env environments/sim-{file}.yaml"),
        _ => String::new(),
    };
    match &cfg.spec.replication {
        Replication::Regional(_) if tags.contains(&"metro") => {
            Some(format!("needs Metro-DR (synchronous replication); environment {name} is {what}{}", try_env("metro")))
        }
        Replication::Metro(_) if tags.contains(&"regional") => {
            Some(format!("needs Regional-DR (asynchronous replication); environment {name} is {what}{}", try_env("regional")))
        }
        Replication::Metro(_) if tags.contains(&"scheduler-ceph") => {
            Some(format!("needs Regional-DR on Ceph's own mirror snapshot schedule; environment {name} is {what}"))
        }
        Replication::Regional(r) if tags.contains(&"scheduler-ceph") && r.scheduler != Scheduler::Ceph => {
            Some(format!("needs Ceph's own mirror snapshot schedule (scheduler: ceph); environment {name} is {what}"))
        }
        _ => None,
    }
}

/// A tag expression ("@relocate and not @slow"); empty selects everything. Pure.
pub fn tag_filter(expr: &str) -> Result<impl Fn(&[&str]) -> bool + Clone + 'static, RunError> {
    let op: Option<TagOperation> =
        if expr.trim().is_empty() { None } else { Some(expr.parse().map_err(|e| RunError::Tags { expr: expr.to_string(), msg: format!("{e}") })?) };
    Ok(move |tags: &[&str]| op.as_ref().is_none_or(|op| op.eval(tags.iter())))
}

/// The scenarios skipped before the run, summed up once per reason (a newcomer on the default lab reads one
/// line for the Metro-DR scenarios, not eleven); a reason only one scenario has names it. Pure.
pub fn skipped_lines(skipped: &[ScenarioSummary]) -> Vec<String> {
    let mut by_reason: Vec<(&str, Vec<&str>)> = vec![];
    for s in skipped {
        let why = s.reason.as_deref().unwrap_or("");
        match by_reason.iter_mut().find(|(r, _)| *r == why) {
            Some((_, names)) => names.push(&s.scenario),
            None => by_reason.push((why, vec![&s.scenario])),
        }
    }
    by_reason
        .into_iter()
        .map(|(why, names)| match names.as_slice() {
            [one] => format!("  skipped: {one} ({why})"),
            many => format!("  skipped: {} scenarios ({why})", many.len()),
        })
        .collect()
}

fn skipped(f: &gherkin::Feature, r: Option<&gherkin::Rule>, s: &gherkin::Scenario, why: &str) -> ScenarioSummary {
    let tags = all_tags(f, r, s).into_iter().map(String::from).collect();
    ScenarioSummary::new(&f.name, &s.name, f.path.clone(), s.position.line, tags, "skipped", Some(why.to_string()))
}

/// Runs the selected scenarios of `opts.paths` against `opts.cfg`. Everything the run needs (its session,
/// its event stream, the summaries) belongs to this call: a process may run any number of runs.
pub async fn run(opts: RunOptions) -> Result<RunResult, RunError> {
    let files = feature_files(&opts.paths)?;
    let features = load_features(&files)?;
    let expr = opts.tags.clone().unwrap_or_default();
    let selects = tag_filter(&expr)?;
    let caps = crate::capability::Capabilities::of(&opts.cfg);
    let mut selected = 0;
    let mut skipped_scenarios = vec![];
    // (file, line) of scenarios skipped before the run: never started, not even up to the step they lack
    let mut not_run: Vec<(Option<PathBuf>, usize)> = vec![];
    for f in &features {
        let scenarios = f.scenarios.iter().map(|s| (None, s)).chain(f.rules.iter().flat_map(|r| r.scenarios.iter().map(move |s| (Some(r), s))));
        for (r, s) in scenarios {
            let tags = all_tags(f, r, s);
            if selects(&tags) {
                if let Some(st) = s.steps.iter().find(|st| is_destructive(&st.value)) {
                    let (path, line, step, env) =
                        (f.path.clone().unwrap_or_default(), st.position.line, format!("{} {}", st.keyword.trim(), st.value), opts.cfg.spec.name.clone());
                    if !opts.cfg.spec.disposable {
                        return Err(RunError::NotDisposable { path, line, step, env });
                    }
                    if matches!(opts.cfg.spec.backend, crate::config::Backend::Existing(_)) && !opts.confirmed {
                        return Err(RunError::NotConfirmed { path, line, step, env });
                    }
                }
                let step_why = caps.first_missing(s.steps.iter().map(|st| st.value.as_str()));
                match unsupported(&opts.cfg, &tags).or(step_why) {
                    Some(why) => {
                        skipped_scenarios.push(skipped(f, r, s, &why));
                        not_run.push((f.path.clone(), s.position.line));
                    }
                    None => selected += 1,
                }
            }
        }
    }
    // Input is sound: now check that the machine has what the environment needs.
    crate::env::preflight(&opts.cfg)?;
    if selected == 0 && skipped_scenarios.is_empty() {
        return Err(RunError::NothingSelected(if expr.is_empty() { "none".into() } else { expr }));
    }
    std::fs::create_dir_all(&opts.report_dir).map_err(|source| RunError::Report { path: opts.report_dir.clone(), source })?;
    if !opts.quiet {
        for line in skipped_lines(&skipped_scenarios) {
            println!("{line}");
        }
    }
    let open = |name: &str| {
        let p = opts.report_dir.join(name);
        std::fs::File::create(&p).map_err(|source| RunError::Report { path: p, source })
    };
    let (junit, json) = (open("junit.xml")?, open("cucumber.json")?);
    let bus = Bus::new();
    if !opts.quiet {
        crate::progress::console(&bus, opts.cfg.spec.budgets.clone());
    }
    let session = Session::new(opts.cfg.clone(), bus.clone());
    let summaries: Arc<Mutex<Vec<ScenarioSummary>>> = Arc::default();
    let run_errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Wt::now();
    let history = HistoryWriter::start(&bus, &opts.report_dir);
    let cfg2 = opts.cfg.clone();
    let (s_before, s_after, e_after) = (session.clone(), summaries.clone(), run_errors.clone());
    let finished_count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let report_dir = opts.report_dir.clone();
    let _writer = DrWorld::cucumber::<PathBuf>()
        .with_parser(PreParsed)
        .max_concurrent_scenarios(1)
        .fail_on_skipped()
        .with_writer(
            writer::Basic::raw(
                if opts.quiet { Box::new(std::io::sink()) as Box<dyn std::io::Write> } else { Box::new(std::io::stdout()) },
                writer::Coloring::Auto,
                0,
            )
            .summarized()
            .tee::<DrWorld, _>(writer::JUnit::for_tee(junit, 0))
            .tee::<DrWorld, _>(writer::Json::for_tee(json))
            .normalized(),
        )
        .before(move |_, _, _, w| {
            let session = s_before.clone();
            async move {
                w.scenario = Some(Scenario::new(session));
            }
            .boxed_local()
        })
        .after(move |f, r, s, finished, w| {
            let tags: Vec<String> = all_tags(f, r, s).into_iter().map(String::from).collect();
            let (feature, scenario, line) = (f.name.clone(), s.name.clone(), s.position.line);
            let path = f.path.clone();
            let (status, reason) = match finished {
                ScenarioFinished::StepPassed => ("passed", None),
                ScenarioFinished::StepSkipped => ("skipped", Some("a step has no definition".to_string())),
                ScenarioFinished::StepFailed(_, _, e) => ("failed", Some(e.to_string())),
                ScenarioFinished::BeforeHookFailed(_) => ("failed", Some("the before hook failed".to_string())),
            };
            let state = w.and_then(|w| w.scenario.take());
            let (cfg, summaries, run_errors, dir) = (cfg2.clone(), s_after.clone(), e_after.clone(), report_dir.clone());
            let seq = finished_count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                let mut summary = ScenarioSummary::new(&feature, &scenario, path, line, tags, status, reason);
                if let Some(sc) = state {
                    // a failed scenario explains itself: its gather, in a folder of its own
                    let gather = (status == "failed").then(|| dir.join("gather").join(format!("{:02}-{}", seq, crate::text::slug(&scenario))));
                    let rec = sc.finish(gather).await;
                    summary.fill(&rec, &cfg);
                    summary.history = rec.vm.as_deref().map(|vm| crate::events::history_path(&dir, vm));
                    run_errors.lock().unwrap().extend(rec.harness_errors);
                }
                if status == "skipped" {
                    // a step without definition: the input broke
                    summary.cause = Some(Cause::Harness);
                }
                summaries.lock().unwrap().push(summary);
            }
            .boxed_local()
        })
        .with_default_cli()
        .filter_run(features, move |f, r, s| {
            let tags = all_tags(f, r, s);
            selects(&tags) && !not_run.iter().any(|(p, l)| *p == f.path && *l == s.position.line)
        })
        .await;

    session.finish(opts.keep).await;
    let mut errors = std::mem::take(&mut *run_errors.lock().unwrap());
    if let Err(e) = history.finish().await {
        errors.push(format!("failed to write history files in {}: {e}", opts.report_dir.display()));
    }
    let mut scenarios = std::mem::take(&mut *summaries.lock().unwrap());
    scenarios.extend(skipped_scenarios);
    let mut res = RunResult::new(scenarios, errors);
    res.allow_skipped = opts.allow_skipped;
    res.round_trips = std::mem::take(&mut *session.round_trips.lock().unwrap());
    report::write_summary(&opts.report_dir, &opts.cfg, started, &res).map_err(|source| RunError::Report { path: opts.report_dir.clone(), source })?;
    // the page and the Jepsen histories, from the files just written (as `dr-drill report` makes them)
    if let Err(e) = crate::evidence::write_run_pages(&opts.report_dir) {
        res.harness_errors.push(format!("failed to write the run's evidence pages: {e}"));
        report::write_summary(&opts.report_dir, &opts.cfg, started, &res).map_err(|source| RunError::Report { path: opts.report_dir.clone(), source })?;
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skipped scenarios are summed up once per reason; a reason one scenario has names it.
    #[test]
    fn skipped_scenarios_are_summed_up_per_reason() {
        let sk = |n: &str, why: &str| ScenarioSummary::new("F", n, None, 1, vec![], "skipped", Some(why.into()));
        let lines = skipped_lines(&[sk("m1", "needs Metro-DR"), sk("k", "needs a live cluster"), sk("m2", "needs Metro-DR"), sk("m3", "needs Metro-DR")]);
        assert_eq!(lines, ["  skipped: 3 scenarios (needs Metro-DR)", "  skipped: k (needs a live cluster)"]);
        assert!(skipped_lines(&[]).is_empty());
    }

    #[test]
    fn destructive_steps_are_recognised() {
        for s in [
            "site a loses power",
            "replication to site b stops",
            "replication to site b pauses",
            "site a is cut off from the other site",
            "record 5 of the VM's disk is corrupted on site b",
            "the VM is failed over to site b",
            "the VM is relocated to site b without waiting for the sync barrier",
            "site a freezes",
            "sites a and b are 50ms apart",
            "1% of the packets between sites a and b are lost",
            "sites a and b are partitioned",
            "the link between sites a and b carries 10 Mbit/s",
        ] {
            assert!(is_destructive(s), "{s}");
        }
        for s in [
            "the VM is relocated to site b",
            "a VM writing 50 records per second on site a",
            "no acknowledged write is lost",
            "the VM runs for 12s",
            "the round-trip time between sites a and b is at most 10ms",
        ] {
            assert!(!is_destructive(s), "{s}");
        }
    }

    #[test]
    fn tag_expressions_select() {
        let f = tag_filter("@negative and not @scheduler-ceph").unwrap();
        assert!(f(&["negative"]));
        assert!(!f(&["negative", "scheduler-ceph"]));
        assert!(!f(&["failover"]));
        assert!(tag_filter("").unwrap()(&["anything"]));
        assert!(matches!(tag_filter("@a and and"), Err(RunError::Tags { .. })));
    }

    #[test]
    fn scenarios_an_environment_cannot_run_are_skipped_with_the_reason() {
        let text = "name: e\nbackend:\n  lab: {}\ndisposable: true\nsites:\n  - name: a\n  - name: b\nreplication:\n  regional:\n    interval: 5s\n    scheduler: harness\n";
        let cfg = crate::config::from_yaml(Path::new("e.yaml"), text).unwrap();
        assert!(unsupported(&cfg, &["metro"]).unwrap().contains("needs Metro-DR"));
        assert!(unsupported(&cfg, &["negative", "scheduler-ceph"]).unwrap().contains("scheduler: ceph"));
        assert_eq!(unsupported(&cfg, &["failover"]), None);
    }
}
