//! The commands, one module each, and the edge where errors become exit codes: 0 all passed, 1 the system
//! under test failed, 2 the harness or its input broke (or a drill proved nothing either way).

pub mod bench;
pub mod env;
pub mod lint;
pub mod run;

use crate::cli::{Cli, Command, EnvAction, DEFAULT_ENV};
use crate::config::{self, EnvConfig};
use crate::procs;
use std::path::{Path, PathBuf};

pub use crate::error::Exit;

/// Without tags and paths, `run` leaves out the negative controls (expected to fail), the drills across a
/// shaped inter-site link (they need an environment that declares a larger sync allowance) and the long
/// `@slow` cycles (run by tag).
pub const DEFAULT_TAGS: &str = "not @negative and not @wan and not @slow and not @known-defect and not @fleet";

/// Bundled copies, so the released binary runs drills without the repository.
const BUNDLED_ENV: &str = include_str!("../../environments/lab-regional.yaml");
const BUNDLED_FEATURES: &[(&str, &str)] = &[
    ("relocate.feature", include_str!("../../features/relocate.feature")),
    ("failover.feature", include_str!("../../features/failover.feature")),
    ("failback.feature", include_str!("../../features/failback.feature")),
    ("cycle.feature", include_str!("../../features/cycle.feature")),
    ("negative/failback-without-resync.feature", include_str!("../../features/negative/failback-without-resync.feature")),
    ("negative/split-brain-after-return.feature", include_str!("../../features/negative/split-brain-after-return.feature")),
    ("negative/broken-replication.feature", include_str!("../../features/negative/broken-replication.feature")),
    ("negative/slow-replication.feature", include_str!("../../features/negative/slow-replication.feature")),
    ("negative/relocate-without-barrier.feature", include_str!("../../features/negative/relocate-without-barrier.feature")),
    ("negative/ceph-schedule.feature", include_str!("../../features/negative/ceph-schedule.feature")),
    ("negative/corruption.feature", include_str!("../../features/negative/corruption.feature")),
    ("network.feature", include_str!("../../features/network.feature")),
    ("metro.feature", include_str!("../../features/metro.feature")),
    ("negative/metro-out-of-spec.feature", include_str!("../../features/negative/metro-out-of-spec.feature")),
    ("negative/metro-split-brain.feature", include_str!("../../features/negative/metro-split-brain.feature")),
    ("negative/metro-isolation-only.feature", include_str!("../../features/negative/metro-isolation-only.feature")),
    ("negative/metro-no-stretch.feature", include_str!("../../features/negative/metro-no-stretch.feature")),
    ("fleet.feature", include_str!("../../features/fleet.feature")),
    ("golden.feature", include_str!("../../features/golden.feature")),
    ("blackhole.feature", include_str!("../../features/blackhole.feature")),
    ("rollback.feature", include_str!("../../features/rollback.feature")),
    ("ceph-schedule.feature", include_str!("../../features/ceph-schedule.feature")),
    ("negative/fleet-unmirrored.feature", include_str!("../../features/negative/fleet-unmirrored.feature")),
    ("negative/healed-fault.feature", include_str!("../../features/negative/healed-fault.feature")),
    ("multidisk.feature", include_str!("../../features/multidisk.feature")),
    ("negative/multidisk-independent.feature", include_str!("../../features/negative/multidisk-independent.feature")),
];

/// Features that need the repository's fixtures, so they are not bundled.
#[cfg(test)]
const NOT_BUNDLED: &[&str] = &["readiness.feature"];

/// Removes what the harness made if it leaves `main` by an error or a panic that unwinds.
struct CleanupGuard;
impl Drop for CleanupGuard {
    fn drop(&mut self) {
        for what in procs::emergency_cleanup() {
            eprintln!("cleanup: {what}");
        }
    }
}

pub fn main(cli: Cli) -> i32 {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    // a simulated environment runs on one thread with tokio's clock paused: simulated time
    let is_sim = |env: &PathBuf| load_env(env).is_ok_and(|c| matches!(c.spec.backend, config::Backend::Sim(_)));
    let sim = match &cli.command {
        Command::Run { env, .. } | Command::Bench { env, .. } => is_sim(env),
        _ => false,
    };
    let built = if sim {
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return Exit::Broken.code();
        }
    };
    let _guard = CleanupGuard;
    rt.block_on(async {
        // the witness clock starts on the runtime's: on a paused one, simulated time from zero (a replay
        // has the same figures)
        crate::clock::start();
        tokio::spawn(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            let code = tokio::select! {
                _ = tokio::signal::ctrl_c() => 130,
                _ = term.recv() => 143,
            };
            eprintln!("\ninterrupted: removing everything this run made");
            for what in procs::emergency_cleanup() {
                eprintln!("cleanup: {what}");
            }
            std::process::exit(code);
        });
        match dispatch(cli.command).await {
            Ok(exit) => exit.code(),
            Err(e) => {
                eprintln!("error: {e:#}");
                Exit::Broken.code()
            }
        }
    })
}

/// The environment file; the default one falls back to the bundled copy outside the repository.
pub fn load_env(path: &Path) -> anyhow::Result<EnvConfig> {
    if path == Path::new(DEFAULT_ENV) && !path.exists() {
        return Ok(config::from_yaml(Path::new("(bundled) lab-regional.yaml"), BUNDLED_ENV)?);
    }
    Ok(config::load(path)?)
}

/// The features to run: `features/` here, or the bundled copies written to a temporary directory.
pub fn default_features() -> anyhow::Result<Vec<PathBuf>> {
    if Path::new("features").is_dir() {
        return Ok(vec![PathBuf::from("features")]);
    }
    let dir = std::env::temp_dir().join(format!("dr-drill-features-{}", std::process::id()));
    for (name, text) in BUNDLED_FEATURES {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().expect("bundled names have a directory"))?;
        std::fs::write(&p, text)?;
    }
    procs::track_dir(&dir);
    Ok(vec![dir])
}

async fn dispatch(cmd: Command) -> anyhow::Result<Exit> {
    match cmd {
        Command::Run { env, tags, report_dir, keep, confirm, allow_skipped, seed, repeat, paths } => {
            run::run(&load_env(&env)?, run::RunArgs { tags, report_dir, keep, confirm, allow_skipped, seed, repeat, paths }).await
        }
        Command::Report { dir, compare } => {
            let page = match (compare.as_deref(), dir) {
                (Some([now, before]), _) => crate::evidence::compare(now, before)?,
                (_, Some(dir)) => crate::evidence::rebuild(&dir)?,
                _ => anyhow::bail!("report: give a run's folder, or --compare NEW OLD"),
            };
            println!("{}", page.display());
            Ok(Exit::Passed)
        }
        Command::Env { action } => match action {
            EnvAction::Up { env, dry_run } => env::up(&load_env(&env)?, dry_run).await,
            EnvAction::Down { env } => env::down(&load_env(&env)?).await,
            EnvAction::Status { env } => env::status(&load_env(&env)?).await,
            EnvAction::Image { env, push } => env::image(&load_env(&env)?, push).await,
        },
        Command::Bench { env, rounds, drills } => bench::bench(&load_env(&env)?, rounds, drills).await,
        Command::Lint(args) => lint::lint(args).await,
    }
}

/// A run's id: UTC time of day and a random suffix (`20261129T014153Z-ab12`).
pub fn run_id() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (d, s) = (secs / 86400, secs % 86400);
    // civil from days (Howard Hinnant)
    let z = d as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    let mut b = [0u8; 2];
    // SAFETY: getrandom(2) into a local buffer.
    unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, 2, 0) };
    format!("{y:04}{m:02}{day:02}T{:02}{:02}{:02}Z-{:02x}{:02x}", s / 3600, s % 3600 / 60, s % 60, b[0], b[1])
}

#[cfg(test)]
mod bundled_tests {
    use super::*;

    /// Every feature of the repository is bundled into the binary (or named as needing the repository).
    #[test]
    fn every_feature_is_bundled() {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else if p.extension().is_some_and(|x| x == "feature") {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("features");
        let mut found = vec![];
        walk(&base, &base, &mut found);
        for f in found {
            assert!(BUNDLED_FEATURES.iter().any(|(n, _)| *n == f) || NOT_BUNDLED.contains(&f.as_str()), "{f} is not bundled (src/commands/mod.rs)");
        }
    }
}
