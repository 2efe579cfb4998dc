//! The commands, and the edge where errors become exit codes: 0 all passed, 1 the system under test failed
//! a scenario, 2 the harness or its input broke.

use crate::cli::{Cli, Command, EnvAction, DEFAULT_ENV};
use crate::config::{self, EnvConfig};
use crate::env::lab::site::SiteRef;
use crate::env::lab::vm::Mode;
use crate::env::lab::{mirror, procs, runs_dir, Assets, Lab, LabState};
use crate::runner::{self, RunOptions};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_BROKEN: i32 = 2;

/// Bundled copies, so the released binary runs drills without the repository.
const BUNDLED_ENV: &str = include_str!("../environments/lab-regional.yaml");
const BUNDLED_FEATURES: &[(&str, &str)] = &[
    ("relocate.feature", include_str!("../features/relocate.feature")),
    ("failover.feature", include_str!("../features/failover.feature")),
    ("negative/broken-replication.feature", include_str!("../features/negative/broken-replication.feature")),
    ("negative/corruption.feature", include_str!("../features/negative/corruption.feature")),
];

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
    crate::clock::start();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return EXIT_BROKEN;
        }
    };
    let _guard = CleanupGuard;
    rt.block_on(async {
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
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                EXIT_BROKEN
            }
        }
    })
}

/// The environment file; the default one falls back to the bundled copy outside the repository.
fn load_env(path: &Path) -> anyhow::Result<EnvConfig> {
    if path == Path::new(DEFAULT_ENV) && !path.exists() {
        return Ok(config::from_yaml(Path::new("(bundled) lab-regional.yaml"), BUNDLED_ENV)?);
    }
    Ok(config::load(path)?)
}

fn bundled_features() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("dr-drill-features-{}", std::process::id()));
    for (name, text) in BUNDLED_FEATURES {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap())?;
        std::fs::write(&p, text)?;
    }
    procs::track_dir(&dir);
    Ok(dir)
}

async fn dispatch(cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Run { env, tags, report_dir, keep, paths } => run(&env, tags, report_dir, keep, paths).await,
        Command::Env { action } => match action {
            EnvAction::Up { env } => env_up(&load_env(&env)?).await,
            EnvAction::Down { env } => env_down(&load_env(&env)?).await,
            EnvAction::Status { env } => env_status(&load_env(&env)?).await,
        },
        Command::Bench { env, rounds, drills } => {
            let cfg = load_env(&env)?;
            bench(&cfg, rounds).await?;
            if drills {
                bench_drills(&cfg).await?;
            }
            Ok(EXIT_OK)
        }
        Command::Lint { paths, format, fail_on, app_label, mode, dr, rpo, env, flatten, context, namespace, kubeconfig, peer_context } => {
            let rpo = match (rpo, env) {
                (Some(r), _) => Some(r.0),
                (None, Some(e)) => Some(load_env(&e)?.spec.replication.interval.0),
                (None, None) => None,
            };
            let mut opts = crate::lint::rules::Options { app_label, mode, dr, rpo, flatten, rtt: None };
            let (objects, kustomized) = match (context, namespace) {
                (Some(ctx), Some(ns)) => {
                    use crate::lint::live;
                    let client = live::client(&ctx, kubeconfig.as_deref()).await?;
                    if let Some(peer) = peer_context {
                        let pc = live::client(&peer, kubeconfig.as_deref()).await?;
                        opts.rtt = Some(live::apiserver_rtt(&pc, 5).await.with_context(|| format!("failed to reach the API server of context {peer}"))?);
                    }
                    (live::fetch(client, &ctx, &ns).await?, false)
                }
                _ => {
                    anyhow::ensure!(!paths.is_empty(), "lint needs at least one path (a file, a directory, or - for stdin), or --context and --namespace");
                    crate::lint::load_paths(&paths)?
                }
            };
            let findings = crate::lint::rules::check(&objects, kustomized, &opts);
            print!("{}", crate::lint::output::render(format, &findings, objects.len()));
            Ok(if findings.iter().any(|f| f.severity >= fail_on) { EXIT_FAILED } else { EXIT_OK })
        }
    }
}

fn run_id() -> String {
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
    format!("{y:04}{m:02}{day:02}T{:02}{:02}{:02}Z-{}", s / 3600, s % 3600 / 60, s % 60, &crate::env::lab::site::uuid()[..4])
}

async fn run(env: &Path, tags: Option<String>, report_dir: Option<PathBuf>, keep: bool, paths: Vec<PathBuf>) -> anyhow::Result<i32> {
    let cfg = load_env(env)?;
    // The bundled features hold negative controls (expected to fail): left out unless asked for.
    let tags = if paths.is_empty() { tags.or_else(|| Some("not @negative".into())) } else { tags };
    let paths = if paths.is_empty() {
        if Path::new("features").is_dir() {
            vec![PathBuf::from("features")]
        } else {
            vec![bundled_features()?]
        }
    } else {
        paths
    };
    let report_dir = report_dir.unwrap_or_else(|| PathBuf::from("reports").join(run_id()));
    println!("dr-drill: environment {} ({}), {}", cfg.spec.name, cfg.path.display(), cfg.replication_summary());
    println!("dr-drill: reports in {}", report_dir.display());
    let res = runner::run(RunOptions { cfg, paths, tags, report_dir, keep }).await?;
    print!("{}", crate::report::figures(&res.scenarios));
    for e in &res.harness_errors {
        eprintln!("harness error: {e}");
    }
    println!("scenarios: {} passed, {} failed, {} skipped", res.passed, res.failed, res.skipped);
    Ok(if !res.harness_errors.is_empty() {
        EXIT_BROKEN
    } else if res.failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

fn state_file(cfg: &EnvConfig) -> PathBuf {
    runs_dir().join(format!("{}.state.json", cfg.spec.name))
}

fn read_state(cfg: &EnvConfig) -> anyhow::Result<Option<LabState>> {
    let p = state_file(cfg);
    if !p.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).with_context(|| format!("failed to read {}", p.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| format!("failed to parse {}", p.display()))?))
}

async fn env_up(cfg: &EnvConfig) -> anyhow::Result<i32> {
    if let Some(s) = read_state(cfg)? {
        if s.daemons.iter().any(|(_, d, pid)| procs::pid_is(*pid, daemon_comm(d))) {
            println!("environment {} is already up (lab {} in {})", cfg.spec.name, s.id, s.root.display());
            return Ok(EXIT_OK);
        }
    }
    procs::set_detached(true);
    let lab = Lab::up(cfg).await?;
    let state = lab.state();
    std::fs::create_dir_all(runs_dir())?;
    std::fs::write(state_file(cfg), serde_json::to_string_pretty(&state)?)?;
    // The lab now outlives this command on purpose; `env down` removes it.
    procs::set_keep(true);
    procs::forget_all();
    println!("environment {} up in {:.1}s: lab {} in {}", cfg.spec.name, lab.up_time.as_secs_f64(), lab.id, lab.root().display());
    println!("replication: {}", cfg.replication_summary());
    for s in &lab.sites {
        println!("site {}: namespace {}, address {}, daemons {}", s.name, s.ns, s.ip, s.daemons.iter().map(|d| format!("{}({})", d.name, d.pid)).collect::<Vec<_>>().join(" "));
    }
    println!("tear down with: dr-drill env down --env {}", cfg.path.display());
    Ok(EXIT_OK)
}

fn daemon_comm(name: &str) -> &'static str {
    match name {
        "mon" => "ceph-mon",
        "mgr" => "ceph-mgr",
        "osd" => "ceph-osd",
        "rbd-mirror" => "rbd-mirror",
        _ => "qemu-system-x86_64",
    }
}

async fn env_down(cfg: &EnvConfig) -> anyhow::Result<i32> {
    let Some(s) = read_state(cfg)? else {
        println!("environment {} is not up: nothing to do", cfg.spec.name);
        return Ok(EXIT_OK);
    };
    for (site, d, pid) in &s.daemons {
        if procs::pid_is(*pid, daemon_comm(d)) {
            unsafe { libc::kill(*pid, libc::SIGKILL) };
            println!("stopped {d} of site {site} (pid {pid})");
        }
    }
    for ns in &s.netns {
        for pid in procs::netns_pids(ns) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = tokio::process::Command::new("ip").args(["netns", "del", ns]).status().await;
        println!("deleted namespace {ns}");
    }
    // give killed daemons a moment to release their files before the directory goes
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = std::fs::remove_dir_all(&s.root);
    std::fs::remove_file(state_file(cfg))?;
    println!("environment {} is down", cfg.spec.name);
    Ok(EXIT_OK)
}

async fn env_status(cfg: &EnvConfig) -> anyhow::Result<i32> {
    println!("environment {} ({}), backend {}", cfg.spec.name, cfg.path.display(), cfg.spec.backend_name());
    println!("replication: {}", cfg.replication_summary());
    let Some(s) = read_state(cfg)? else {
        println!("state: down");
        return Ok(EXIT_OK);
    };
    println!("state: up (lab {} in {})", s.id, s.root.display());
    for (i, name) in cfg.site_names().iter().enumerate() {
        let daemons: Vec<String> = s
            .daemons
            .iter()
            .filter(|d| &d.0 == name)
            .map(|(_, d, pid)| format!("{d}({pid}, {})", if procs::pid_is(*pid, daemon_comm(d)) { "running" } else { "gone" }))
            .collect();
        let site = SiteRef { name: name.clone(), ns: s.netns[i].clone(), ip: String::new(), dir: s.root.join(name), cmd_deadline: Duration::from_secs(5) };
        let health = site.cli_within("ceph", &["health"], Duration::from_secs(5)).await.map(|h| h.trim().to_string()).unwrap_or_else(|e| format!("unreachable ({e})"));
        let mirror = site
            .cli_within("rbd", &["mirror", "pool", "status", "rbd"], Duration::from_secs(5))
            .await
            .map(|m| m.lines().map(str::trim).collect::<Vec<_>>().join("; "))
            .unwrap_or_else(|e| format!("unknown ({e})"));
        println!("site {name}: {health}; daemons {}; mirroring: {mirror}", daemons.join(" "));
    }
    Ok(EXIT_OK)
}

/// Lab figures against the targets: bring-up (≤ 30 s), boot to first ack (< 10 s), sync-barrier latency for
/// a small delta, peak RSS of the whole lab.
async fn bench(cfg: &EnvConfig, rounds: u32) -> anyhow::Result<()> {
    Assets::locate()?;
    let mut ups = vec![];
    for round in 1..=rounds.max(1) {
        let t0 = Instant::now();
        let mut lab = Lab::up(cfg).await?;
        let up = t0.elapsed();
        let healthy = wait_healthy_and_mirroring(&lab, Duration::from_secs(120)).await?;
        println!(
            "bench: round {round}: lab up (both OSDs serving, mirroring configured, rbd-mirror running) in {:.1}s; both sites HEALTH_OK with rbd-mirror daemon health OK at {:.1}s (target <= 30s)",
            up.as_secs_f64(),
            (up + healthy).as_secs_f64()
        );
        ups.push((up + healthy).as_secs_f64());
        if round < rounds.max(1) {
            lab.down().await;
            continue;
        }
        let res = bench_vm(&mut lab).await;
        let rss = lab.rss_bytes();
        lab.down().await;
        res?;
        println!("bench: peak RSS of the lab (sum of VmHWM of every daemon and QEMU): {} MiB", rss >> 20);
    }
    if ups.len() > 1 {
        let mean = ups.iter().sum::<f64>() / ups.len() as f64;
        println!("bench: lab up over {} rounds: mean {mean:.1}s, max {:.1}s", ups.len(), ups.iter().cloned().fold(0.0, f64::max));
    }
    Ok(())
}

/// The default drills, timed against their targets.
async fn bench_drills(cfg: &EnvConfig) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let report_dir = PathBuf::from("reports").join(format!("bench-{}", run_id()));
    let paths = if Path::new("features").is_dir() { vec![PathBuf::from("features")] } else { vec![bundled_features()?] };
    let res = runner::run(RunOptions { cfg: cfg.clone(), paths, tags: Some("not @negative".into()), report_dir, keep: false }).await?;
    let total = t0.elapsed().as_secs_f64();
    print!("{}", crate::report::figures(&res.scenarios));
    println!("bench: default run {total:.1}s for {} scenarios ({} passed, {} failed, {} skipped) (target <= 600s)", res.scenarios.len(), res.passed, res.failed, res.skipped);
    let target = cfg.spec.replication.interval.0.as_secs_f64() + 60.0;
    for s in res.scenarios.iter().filter(|s| s.action.as_ref().is_some_and(|a| a["kind"] == "failover")) {
        println!("bench: failover scenario \"{}\" {:.1}s (target <= interval + 60s = {target:.0}s)", s.scenario, s.duration_s.unwrap_or(f64::NAN));
    }
    anyhow::ensure!(res.harness_errors.is_empty() && res.failed == 0, "the drills did not all pass: {:?}", res.harness_errors);
    Ok(())
}

/// Polls both sites until `ceph health` is HEALTH_OK and `rbd mirror pool status` reports daemon health OK.
async fn wait_healthy_and_mirroring(lab: &Lab, deadline: Duration) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    loop {
        let mut ok = true;
        for s in &lab.sites {
            let h = s.cli_within("ceph", &["health"], Duration::from_secs(5)).await.unwrap_or_default();
            let m = s.cli_within("rbd", &["mirror", "pool", "status", "rbd"], Duration::from_secs(5)).await.unwrap_or_default();
            ok &= h.trim() == "HEALTH_OK" && m.contains("daemon health: OK");
        }
        if ok {
            return Ok(t0.elapsed());
        }
        anyhow::ensure!(t0.elapsed() < deadline, "the sites were not healthy and mirroring within {deadline:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn bench_vm(lab: &mut Lab) -> anyhow::Result<()> {
    let t = lab.create_vm("bench", 0, lab.cfg.spec.vm.write_rate).await?;
    println!("bench: new mirrored image replicated to the peer (first snapshot complete) in {:.1}s", t.as_secs_f64());
    lab.stop_scheduler("bench")?;
    let t0 = Instant::now();
    let limit = lab.cfg.disk_records() + 1;
    let configured = lab.cfg.spec.vm.write_rate;
    lab.boot("bench", 0, Mode::Write, limit).await?;
    let p = lab.running("bench")?;
    p.wait_for("the first ack", Duration::from_secs(60), |g| g.acks.first().map(|_| ())).await?;
    println!("bench: VM boot to first acknowledged record: {:.2}s (target < 10s)", t0.elapsed().as_secs_f64());
    p.wait_for("200 acks", Duration::from_secs(60), |g| (g.acks.len() >= 200).then_some(())).await?;
    let log = p.snapshot();
    let gaps: Vec<f64> = log.acks.windows(2).map(|w| w[1].1.since(w[0].1).as_secs_f64() * 1e3).collect();
    let max_gap = gaps.iter().cloned().fold(0.0, f64::max);
    let rate = (log.acks.len() - 1) as f64 / log.acks.last().unwrap().1.since(log.acks[0].1).as_secs_f64();
    println!("bench: probe write rate {rate:.1}/s (configured {}), max gap between acks {max_gap:.0} ms", configured);
    // How late the witness can learn of a durable record: the port's round trip bounds the one-way delay
    // from the probe's ack to the witness's stamp, i.e. the error of every loss-window figure.
    let mut rtt = vec![];
    for n in 0..50 {
        rtt.push(p.ping(n).await?.as_secs_f64() * 1e3);
    }
    rtt.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let period = 1e3 / configured as f64;
    println!(
        "bench: probe port round trip (ping -> PONG) over 50 pings while writing: median {:.2} ms, max {:.2} ms; one write period is {period:.0} ms",
        rtt[25], rtt[49]
    );
    let image = lab.slot("bench")?.image.clone();
    let mut lat = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        let id = mirror::take_snapshot(&lab.sites[0], &image).await?;
        mirror::wait_synced(&lab.sites[1], &image, id, Duration::from_secs(60)).await?;
        lat.push(t.elapsed().as_secs_f64());
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "bench: sync barrier for a small delta (mirror snapshot taken -> complete on the peer), 5 runs: min {:.2}s, median {:.2}s, max {:.2}s",
        lat[0], lat[2], lat[4]
    );
    Ok(())
}
