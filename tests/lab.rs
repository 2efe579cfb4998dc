//! Integration tests on the real lab: real Ceph, real rbd-mirror, real QEMU, no mocks. They need root and
//! what `scripts/setup.sh` installs; they run one at a time (the machine has two cores).

#[path = "support/browser.rs"]
mod browser;
#[path = "support/schema.rs"]
mod schema;

use assert_cmd::Command;
use dr_drill::config;
use dr_drill::env::lab::vm::Mode;
use dr_drill::env::lab::{self, mirror};
use dr_drill::events::Bus;
use dr_drill::ports::{DrDriver, Infrastructure, Workload};
use dr_drill::topology::Topology;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn netns() -> Vec<String> {
    let out = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split_whitespace().next()).filter(|n| n.starts_with("drd-")).map(String::from).collect()
}

/// PIDs of lab daemons and VMs whose command line mentions `needle` (a run directory of a test).
fn procs_mentioning(needle: &str) -> Vec<String> {
    let mut v = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        // daemons get their configuration through CEPH_CONF, so look at the environment too
        let read = |f: &str| std::fs::read(e.path().join(f)).map(|b| String::from_utf8_lossy(&b).replace('\0', " ")).unwrap_or_default();
        let (cmd, environ) = (read("cmdline"), read("environ"));
        if (cmd.contains(needle) || environ.contains(needle)) && !cmd.contains("cargo") {
            v.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
        }
    }
    v
}

fn env() -> config::EnvConfig {
    config::load(Path::new("environments/lab-regional.yaml")).unwrap()
}

/// The lab chain of the lab issue, by hand through the library: both sites up; the VM boots on site a and
/// writes at least 200 acknowledged records; a mirror snapshot passes the sync barrier; the VM stops
/// gracefully; a is demoted, b promoted; the VM boots on b in verify mode: every acknowledged record is
/// there, the chain is intact, and the STOP record is present.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // the serial guard is held for the whole test on purpose
#[ignore = "release qualification, under a minute: cargo test --test lab -- --ignored (CI relocates through the CLI in default_drills_pass)"]
async fn write_on_a_relocate_verify_on_b() {
    let _g = serial();
    let cfg = env();
    let spec = cfg.spec.lab().expect("a lab environment");
    let t0 = Instant::now();
    let mut lab = lab::up(&cfg, spec, &Topology::of(&cfg), Bus::new()).await.expect("lab up");
    println!("lab up in {:.1}s", t0.elapsed().as_secs_f64());
    let limit = spec.disk_records() + 1;
    let res = async {
        let driver = lab.driver.mirror()?;
        let volume = driver.provision("t", "a").await?;
        driver.stop_scheduler("t")?;
        lab.workload.start_stopped("t", 50);
        lab.workload.boot("t", "a", &volume, Mode::Write, limit).await?;
        let p = lab.workload.running("t")?;
        p.wait_for("250 acks", Duration::from_secs(90), |g| (g.acks.len() >= 250).then_some(())).await?;
        let (a, b) = (lab.driver.mirror()?.site("a")?.clone(), lab.driver.mirror()?.site("b")?.clone());
        let id = mirror::take_snapshot(&a, &volume.name).await?;
        let sync = mirror::wait_synced(&b, &volume.name, id, Duration::from_secs(60)).await?;
        println!("sync barrier passed in {:.2}s", sync.as_secs_f64());
        let p = lab.workload.running("t")?;
        let (_, stop) = p.graceful_stop(Duration::from_secs(30)).await?;
        let writer = p.snapshot();
        let demoted = mirror::demote(&a, &volume.name).await?;
        mirror::wait_synced(&b, &volume.name, demoted, Duration::from_secs(60)).await?;
        mirror::promote(&b, &volume.name, false, Duration::from_secs(60)).await?;
        lab.workload.archive("t").await?;
        lab.workload.boot("t", "b", &volume, Mode::Verify, limit).await?;
        let p = lab.workload.running("t")?;
        let (_, scan) = p.wait_for("the scan", Duration::from_secs(60), |g| g.scan.clone()).await?;
        p.wait_poweroff(Duration::from_secs(30)).await?;
        Ok::<_, dr_drill::error::EnvError>((writer, stop, scan))
    }
    .await;
    lab.workload.shutdown().await;
    lab.driver.mirror().unwrap().shutdown().await;
    lab.sites.down().await;
    let (writer, stop, scan) = res.expect("the chain runs");
    assert!(writer.acks.len() >= 250);
    let tag = dr_probe::boot_tag_hex(writer.boot_id().unwrap()).unwrap();
    for (seq, _, _) in &writer.acks {
        assert_eq!(scan.boot_of(*seq), Some(tag), "acknowledged record {seq} missing on site b");
    }
    assert!(scan.corrupt.is_empty() && scan.chain_breaks.is_empty() && scan.holes().is_empty(), "{scan:?}");
    assert_eq!(scan.stop, Some(stop));
    assert_eq!(scan.highest_contiguous, stop);
    assert!(netns().iter().all(|n| !n.contains(&lab.sites.id)), "namespaces left: {:?}", netns());
}

/// Where a run is interrupted: a step of `env up` seen from outside (a namespace made, the guest's
/// initramfs written, a daemon started), or a line the run prints as it passes a step of a DR action.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// `ip netns` lists a namespace of the run.
    Namespaces,
    /// The run directory holds the guest's initramfs.
    Initramfs,
    /// A process of the run whose command line names this program.
    Process(&'static str),
    /// The run printed a line holding this.
    Line(&'static str),
}

/// The steps of `env up` and of a drill through a whole cycle (failover, site a back and resynced, relocate
/// back: features/failback.feature), in the order a run passes them.
const ENV_UP_STEPS: &[Step] = &[Step::Namespaces, Step::Initramfs, Step::Process("ceph-mon"), Step::Process("ceph-osd"), Step::Process("rbd-mirror")];
const DRILL_STEPS: &[Step] = &[
    Step::Line("VM vm0 booting on site a"),
    Step::Line("failover of vm0: fault"),
    Step::Line("failover of vm0: fenced"),
    Step::Line("failover of vm0: orphan snapshot"),
    Step::Line("failover of vm0: rbd-mirror released"),
    Step::Line("failover of vm0: promoted"),
    Step::Line("VM vm0 booting on site b"),
    Step::Line("failover of vm0: serving"),
    Step::Line("repair of vm0: site back"),
    Step::Line("repair of vm0: resync requested"),
    Step::Line("repair of vm0: resynced"),
    Step::Line("relocate of vm0: requested"),
    Step::Line("relocate of vm0: vm stopped"),
    Step::Line("relocate of vm0: synced"),
    Step::Line("relocate of vm0: promoted"),
    Step::Line("VM vm0 booting on site a (resume)"),
];

/// Everything a run made, by what it was given: its run directory and its claims directory.
struct Leftovers {
    runs: tempfile::TempDir,
    claims: tempfile::TempDir,
    netns_before: Vec<String>,
}

impl Leftovers {
    fn new() -> Leftovers {
        Leftovers { runs: tempfile::tempdir().unwrap(), claims: tempfile::tempdir().unwrap(), netns_before: netns() }
    }
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("dr-drill"));
        c.args(args).env("DR_DRILL_RUN_DIR", self.runs.path()).env("DR_DRILL_CLAIMS_DIR", self.claims.path());
        c
    }
    /// What is left: processes, namespaces, files in the run and claims directories.
    fn left(&self) -> Vec<String> {
        let mut v = procs_mentioning(&self.runs.path().display().to_string());
        v.extend(netns().into_iter().filter(|n| !self.netns_before.contains(n)).map(|n| format!("namespace {n}")));
        for d in [self.runs.path(), self.claims.path()] {
            v.extend(std::fs::read_dir(d).unwrap().flatten().map(|e| format!("file {}", e.path().display())));
        }
        v
    }
    /// Waits (up to 5 s: a process killed is reaped by its parent) until nothing is left; what is left.
    fn settle(&self) -> Vec<String> {
        let t0 = Instant::now();
        loop {
            let left = self.left();
            if left.is_empty() || t0.elapsed() > Duration::from_secs(5) {
                return left;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Starts `args`, waits until it reaches `step` (within 4 minutes), sends `sig`; the run's exit code and
/// the lines it printed.
fn interrupt_at(l: &Leftovers, args: &[&str], step: Step, sig: i32) -> (Option<i32>, Vec<String>) {
    use std::io::BufRead;
    let mut child = l.command(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = vec![];
    let t0 = Instant::now();
    let runs = l.runs.path().display().to_string();
    loop {
        while let Ok(line) = rx.try_recv() {
            lines.push(line);
        }
        let reached = match step {
            Step::Namespaces => netns().iter().any(|n| !l.netns_before.contains(n)),
            Step::Initramfs => std::fs::read_dir(l.runs.path()).unwrap().flatten().any(|d| d.path().join("initramfs.cpio").is_file()),
            Step::Process(p) => procs_mentioning(&runs).iter().any(|c| c.contains(p)),
            Step::Line(s) => lines.iter().any(|x| x.contains(s)),
        };
        if reached {
            break;
        }
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the run ended ({st}) before it reached {step:?}:\n{}", lines.join("\n"));
        }
        assert!(t0.elapsed() < Duration::from_secs(240), "{step:?} not reached in 4 minutes:\n{}", lines.join("\n"));
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
    let code = child.wait().unwrap().code();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    (code, lines)
}

/// Interrupts (SIGINT, and SIGTERM) at steps of `env up` and of a whole DR cycle: each run exits 130 or 143
/// and leaves nothing (processes, namespaces with their TUN devices and sockets, run directory, claim),
/// and the next run needs no cleanup by hand. CI runs a step of `env up` and one deep in a drill; `DR_DRILL_INTERRUPTS=every-step`
/// interrupts every step once (the drill's alternating the signals), `all` every step with both signals
/// (release qualification).
#[test]
fn interrupts_at_every_step_leave_nothing() {
    let _g = serial();
    let sweep = std::env::var("DR_DRILL_INTERRUPTS").unwrap_or_default();
    let mut plan: Vec<(&[&str], Step, i32)> = vec![];
    let env_up: &[&str] = &["env", "up"];
    let cycle: &[&str] = &["run", "--report-dir", "/dev/null/none", "features/failback.feature", "--tags", "@regional"];
    if sweep == "all" {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            plan.extend(ENV_UP_STEPS.iter().map(|s| (env_up, *s, sig)));
            plan.extend(DRILL_STEPS.iter().map(|s| (cycle, *s, sig)));
        }
    } else if sweep == "every-step" {
        // every step once: `env up`'s with both signals, the drill's alternating them
        for sig in [libc::SIGINT, libc::SIGTERM] {
            plan.extend(ENV_UP_STEPS.iter().map(|s| (env_up, *s, sig)));
        }
        plan.extend(DRILL_STEPS.iter().enumerate().map(|(i, s)| (cycle, *s, if i % 2 == 0 { libc::SIGINT } else { libc::SIGTERM })));
    } else {
        // (the failover's "fenced" is where `a_run_after_a_killed_one_cleans_up_and_passes` kills the harness)
        plan = vec![(env_up, Step::Process("ceph-osd"), libc::SIGINT), (cycle, Step::Line("repair of vm0: resync requested"), libc::SIGTERM)];
    }
    let mut seen = vec![];
    for (args, step, sig) in plan {
        let l = Leftovers::new();
        let reports = tempfile::tempdir().unwrap();
        let args: Vec<&str> = args.iter().map(|a| if *a == "/dev/null/none" { reports.path().to_str().unwrap() } else { *a }).collect();
        let t0 = Instant::now();
        let (code, lines) = interrupt_at(&l, &args, step, sig);
        let left = l.settle();
        let name = if sig == libc::SIGINT { "SIGINT" } else { "SIGTERM" };
        println!("{name} at {step:?} of `dr-drill {}`: exit {code:?}, {:.1} s, left {left:?}", args[0], t0.elapsed().as_secs_f64());
        assert_eq!(code, Some(128 + sig), "{name} at {step:?}:\n{}", lines.join("\n"));
        assert!(left.is_empty(), "{name} at {step:?} left {left:#?}");
        seen.push(format!("{name} {step:?}"));
    }
    println!("interrupted at {} steps, nothing left after any: {seen:?}", seen.len());
}

/// SIGKILL of the harness in the middle of a failover (nothing of it can run): its daemons and VMs die
/// with it (the parent-death signal), and the next `dr-drill run` removes the namespaces, run directory
/// and claim it left, says so, and passes.
#[test]
fn a_run_after_a_killed_one_cleans_up_and_passes() {
    let _g = serial();
    let l = Leftovers::new();
    let reports = tempfile::tempdir().unwrap();
    let (code, _) = interrupt_at(
        &l,
        &["run", "--report-dir", reports.path().to_str().unwrap(), "features/failover.feature"],
        Step::Line("failover of vm0: fenced"),
        libc::SIGKILL,
    );
    assert_eq!(code, None, "killed");
    std::thread::sleep(Duration::from_secs(1));
    let left = l.left();
    assert!(procs_mentioning(&l.runs.path().display().to_string()).is_empty(), "processes outlived their harness: {left:#?}");
    assert!(left.iter().any(|x| x.starts_with("namespace")), "a killed harness cannot remove its namespaces: {left:#?}");
    let out = l.command(&["run", "--report-dir", reports.path().to_str().unwrap(), "features/relocate.feature"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", digest(&stdout));
    assert!(stdout.contains("left by an earlier run that was killed"), "{}", digest(&stdout));
    let left = l.settle();
    assert!(left.is_empty(), "after the next run: {left:#?}");
    println!("{}", stdout.lines().filter(|x| x.contains("left by an earlier run")).collect::<Vec<_>>().join("\n"));
}

/// Runs each (environment, feature) of `runs` at once, the second started 2 s after the first, all in one
/// run directory: every run passes (two labs on two cores: a Regional-DR failover may fail for a known
/// failure of the system under test, named by the oracle: replication lag, or this Ceph's forced promote
/// rolled back below a completed snapshot; accepted and said, never a collision) and nothing of any is
/// left.
fn at_once(runs: &[(&str, &str)]) {
    let l = Leftovers::new();
    let t0 = Instant::now();
    let mut started = vec![];
    for (i, (env, feature)) in runs.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(2));
        }
        let reports = tempfile::tempdir().unwrap();
        let child = l
            .command(&["run", "--env", env, "--report-dir", reports.path().to_str().unwrap(), feature])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        started.push((child, reports, env, feature));
    }
    for (child, reports, env, feature) in started {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let s = summary(reports.path());
        let sc = &s["scenarios"][0];
        let lag = (out.status.code() == Some(1)).then(|| known_system_failure(sc)).flatten();
        println!(
            "{env} {feature}: exit {:?} after {:.0} s{}",
            out.status.code(),
            t0.elapsed().as_secs_f64(),
            lag.as_ref().map(|w| format!(" (the system under test, a known failure named: {w:?})")).unwrap_or_default()
        );
        assert!(out.status.code() == Some(0) || lag.is_some(), "{env} {feature}:\n{}\n{}", digest(&stdout), String::from_utf8_lossy(&out.stderr));
    }
    let left = l.settle();
    assert!(left.is_empty(), "{left:#?}");
}

/// Two runs at once on this machine do not collide: each has its own lab (namespaces, addresses inside
/// them, run directory, sockets, claim), and a run starting while another is mid-bring-up leaves the
/// other's lab alone. Two failovers at once, of two environments (the Regional-DR lab and its WAN
/// variant), started 2 s apart.
#[test]
fn two_runs_at_once_do_not_collide() {
    let _g = serial();
    at_once(&[("environments/lab-regional.yaml", "features/failover.feature"), ("environments/lab-regional-wan.yaml", "features/failover.feature")]);
}

/// Release qualification: a Regional-DR relocate beside a Metro-DR failover (a stretched cluster of three
/// failure domains), at once.
#[test]
#[ignore = "release qualification, about 3 minutes here: cargo test --test lab -- --ignored"]
fn a_regional_and_a_metro_run_at_once() {
    let _g = serial();
    at_once(&[
        ("environments/lab-regional.yaml", "features/relocate.feature"),
        ("environments/lab-metro.yaml", "tests/fixtures/features/metro-failover.feature"),
    ]);
}

/// `env up`, `env status`, `env down`: the lab outlives `env up` and `env down` removes all of it.
#[test]
fn env_up_status_down() {
    let _g = serial();
    let runs = tempfile::tempdir().unwrap();
    let cmd = |args: &[&str]| {
        let out = Command::cargo_bin("dr-drill").unwrap().args(args).env("DR_DRILL_RUN_DIR", runs.path()).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = cmd(&["env", "up"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("mirror snapshot every 5s issued by the harness"), "{out}");
    let (code, out) = cmd(&["env", "status"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("state: up") && out.matches("HEALTH_OK").count() == 2, "{out}");
    let (code, out) = cmd(&["env", "down"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("is down"));
    assert_eq!(procs_mentioning(&runs.path().display().to_string()), Vec::<String>::new());
    let (_, out) = cmd(&["env", "status"]);
    assert!(out.contains("state: down"), "{out}");
}

/// What a run said that matters when a test fails: every failed step with what it captured, and the
/// results from the summary on (CI shows the tail of a failing test's output: a whole run's lines would
/// push another failing test's reason out of it).
fn digest(stdout: &str) -> String {
    let lines: Vec<&str> = stdout.lines().collect();
    let mut out = vec![];
    let mut keep = 0;
    for (i, l) in lines.iter().enumerate() {
        if l.contains('\u{2718}') || l.starts_with("dr-drill:") {
            keep = 5;
        }
        if l.trim_start().starts_with("Defined:") || l.trim_start().starts_with("Matched:") {
            continue;
        }
        if l.trim_start().starts_with("Scenario:") {
            out.push(l.to_string());
            continue;
        }
        if l.starts_with("[Summary]") {
            out.extend(lines[i..].iter().map(|l| l.to_string()));
            break;
        }
        if keep > 0 {
            out.push(l.chars().take(600).collect::<String>());
            keep -= 1;
        }
    }
    if out.is_empty() {
        return stdout.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    }
    out.join("\n")
}

/// A scenario that failed at its last DR action, a failover, for replication lag alone (every reason
/// "replication lagged": the rbd-mirror round over the allowance this machine shows now and then): those
/// reasons. None when it failed for anything else or got further.
fn lag_only_failover(sc: &serde_json::Value) -> Option<Vec<String>> {
    failed_failover_reasons(sc).filter(|why| lag_alone(why))
}

/// The reasons of the scenario's last action, when it is a failover that failed.
fn failed_failover_reasons(sc: &serde_json::Value) -> Option<Vec<String>> {
    let last = sc["actions"].as_array()?.last()?;
    if last["kind"] != "failover" || last["conclusion"] != "failed" {
        return None;
    }
    Some(last["why"].as_array()?.iter().filter_map(|r| r.as_str().map(String::from)).collect())
}

/// A failover that failed for what this lab's Ceph is known to do under load, named by the oracle: the
/// forced promote rolled back below a snapshot reported complete (Ceph tracker 53537; measured rate in the
/// README), or replication lagged. A true verdict on the system under test, never a collision of runs.
fn known_system_failure(sc: &serde_json::Value) -> Option<Vec<String>> {
    let why = failed_failover_reasons(sc)?;
    let named = |r: &String| r.starts_with("replication lagged") || r.starts_with("no replication round completed") || r.contains("rolled back below snapshot");
    (!why.is_empty()
        && why.iter().all(|r| named(r) || r.starts_with("loss window") || r.contains("acknowledged records lost") || r.contains("records acknowledged before"))
        && why.iter().any(named))
    .then_some(why)
}

/// Reasons that are all, and only, replication lag.
fn lag_alone<S: AsRef<str>>(reasons: &[S]) -> bool {
    !reasons.is_empty() && reasons.iter().all(|r| r.as_ref().starts_with("replication lagged"))
}

fn summary(dir: &Path) -> serde_json::Value {
    schema::check_run_folder(dir);
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// The main job: the default drills (relocate and Regional-DR failover) pass and write all four reports.
#[test]
fn default_drills_pass() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("dr-drill").unwrap().args(["run", "--report-dir"]).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{}", digest(&stdout));
    assert_eq!(out.status.code(), Some(0), "{}\n{}", digest(&stdout), String::from_utf8_lossy(&out.stderr));
    // the Metro-DR scenarios are skipped here, each with the reason
    assert!(stdout.lines().any(|l| l.starts_with("scenarios: 8 passed, 0 failed, ") && l.ends_with(" skipped")), "{}", digest(&stdout));
    for f in ["junit.xml", "cucumber.json", "summary.json"] {
        assert!(dir.path().join(f).metadata().unwrap().len() > 0, "{f}");
    }
    let s = summary(dir.path());
    // the run's report opens in a browser: every chart drew, nothing requested; kept with its screenshot
    // (a copy under target/evidence/default-drills)
    let page = dir.path().join("index.html");
    let charts = std::fs::read_to_string(&page).unwrap().matches("<svg class=chart").count();
    let opened = browser::open(&page, &dir.path().join("screenshot.png"));
    assert_eq!(opened.charts_rendered, Some(charts), "every chart drew");
    assert!(opened.page_requests.is_empty(), "{:?}", opened.page_requests);
    let keep = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/evidence/default-drills");
    let _ = std::fs::remove_dir_all(&keep);
    std::fs::create_dir_all(&keep).unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap().flatten().filter(|e| e.path().is_file()) {
        std::fs::copy(e.path(), keep.join(e.file_name())).unwrap();
    }
    println!("report: {charts} charts drew, screenshot {}; kept in {}", opened.screenshot.display(), keep.display());
    let scenarios = s["scenarios"].as_array().unwrap();
    let failover = scenarios.iter().find(|x| x["scenario"].as_str().unwrap().contains("Regional-DR failover after a power loss")).unwrap();
    assert_eq!(failover["status"], "passed");
    assert!(failover["lossWindowMs"].as_f64().unwrap() <= failover["lossBoundMs"].as_f64().unwrap());
    // the old primary black-holed (cut off, still running): the forced promote within its budget
    let blackholed = scenarios.iter().find(|x| x["scenario"].as_str().unwrap().contains("black-holed")).unwrap();
    assert_eq!(blackholed["status"], "passed", "{blackholed}");
    let promoted =
        blackholed["action"]["rto"].as_array().unwrap().iter().find(|m| m["segment"] == "promoted").expect("a promoted mark")["afterMs"].as_f64().unwrap();
    println!("black-holed: promoted {promoted} ms after the cut");
    assert!(promoted < 90_000.0, "{blackholed}");
    let relocate = scenarios.iter().find(|x| x["scenario"].as_str().unwrap().contains("Relocate")).unwrap();
    assert_eq!(relocate["recordsLost"], 0);
    let skipped: Vec<_> = scenarios.iter().filter(|x| x["status"] == "skipped").collect();
    assert!(skipped.len() >= 3 && skipped.iter().all(|s| s["reason"].as_str().unwrap().contains("needs Metro-DR")), "{skipped:?}");
    let history = std::fs::read_to_string(failover["history"].as_str().unwrap()).unwrap();
    assert!(history.lines().any(|l| l.contains("\"event\":\"fault\"")) && history.lines().filter(|l| l.contains("\"event\":\"ack\"")).count() > 100);
    // the whole cycle: failover, site a back and resynced, relocate back; each action judged and roles
    // checked after it
    let cycle = scenarios.iter().find(|x| x["scenario"].as_str().unwrap().contains("resynced, relocate back")).unwrap();
    assert_eq!(cycle["status"], "passed", "{cycle}");
    let actions = cycle["actions"].as_array().unwrap();
    assert_eq!(actions.iter().map(|a| a["kind"].as_str().unwrap()).collect::<Vec<_>>(), ["failover", "relocate"], "{cycle}");
    assert!(actions.iter().all(|a| a["conclusion"] == "passed"), "{cycle}");
    let roles = |a: &serde_json::Value| {
        a["roles"].as_array().unwrap().iter().filter(|r| r["role"] == "primary").map(|r| r["site"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!((roles(&actions[0]), roles(&actions[1])), (vec!["b".to_string()], vec!["a".to_string()]), "{cycle}");
    let steps: Vec<&str> = cycle["repairs"][0]["steps"].as_array().unwrap().iter().map(|s| s["segment"].as_str().unwrap()).collect();
    assert!(["site back", "demoted", "resync requested", "resynced"].iter().all(|s| steps.contains(s)), "{steps:?}");
    println!("failback: repair {}, relocate {}", cycle["repairs"][0], actions[1]["rto"]);
    // a VM cloned from the golden image: its golden blocks read back intact where it moved, both times
    let golden = scenarios.iter().find(|x| x["scenario"].as_str().unwrap().contains("cloned from a golden image")).unwrap();
    assert_eq!(golden["status"], "passed", "{golden}");
    let checks: Vec<&serde_json::Value> = golden["verdicts"].as_array().unwrap().iter().filter_map(|v| v["verdict"].get("golden")).collect();
    assert_eq!(checks.len(), 2, "{golden}");
    assert!(checks.iter().all(|c| c["damaged"].as_array().unwrap().is_empty() && c["blocksIntact"].as_u64().unwrap() >= 2048), "{golden}");
    assert_eq!(checks.iter().map(|c| c["site"].as_str().unwrap()).collect::<Vec<_>>(), ["b", "a"], "{golden}");
    // a VM of 3 disks (one guest, a writer and a mirrored image per disk): relocated, and failed over, each
    // disk judged on its own; after the failover the disks, snapshotted in the same round, within 2 s
    for name in ["A VM with 3 disks fails over", "A VM with 3 disks is relocated"] {
        let md = scenarios.iter().find(|x| x["scenario"].as_str().unwrap().contains(name)).unwrap();
        assert_eq!(md["status"], "passed", "{md}");
        let fleet = md["fleet"].as_array().unwrap();
        assert!(fleet.len() == 1 && fleet[0]["disksOf"].as_str().is_some_and(|v| v.starts_with("vm")), "{md}");
        assert!(fleet[0]["vms"] == 3 && fleet[0]["failed"].as_array().unwrap().is_empty(), "{md}");
    }
    let md = scenarios.iter().find(|x| x["scenario"].as_str().unwrap().contains("A VM with 3 disks fails over")).unwrap();
    let skew = md["verdicts"].as_array().unwrap().iter().find(|v| v["check"].as_str().unwrap().starts_with("the disks of VM")).expect("a skew verdict")
        ["verdict"]["skew"]
        .clone();
    assert!(skew["disks"].as_array().unwrap().len() == 3 && skew["skewMs"].as_f64().unwrap() <= 2000.0, "{skew}");
    println!("a VM of 3 disks: skew after the failover {} ms ({})", skew["skewMs"], skew["disks"]);
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuites") && junit.contains("Relocate a writing VM"));
}

/// Runs the negative controls of `features/negative/<name>.feature` for each name: the run must exit 1
/// and end with `counts`. Its report folder (kept while the caller holds it) and summary.
fn negative_run(names: &[&str], counts: &str) -> (tempfile::TempDir, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let features = names.iter().map(|f| format!("features/negative/{f}.feature"));
    let out = Command::cargo_bin("dr-drill").unwrap().args(["run", "--tags", "@negative", "--report-dir"]).arg(dir.path()).args(features).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{}", digest(&stdout));
    assert_eq!(out.status.code(), Some(1), "{}\n{}", digest(&stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l == counts), "{}", digest(&stdout));
    let s = summary(dir.path());
    (dir, s)
}

/// The negative controls whose evidence only the lab gives (rbd-mirror killed and paused, a promote
/// without the sync barrier on real RBD mirroring, a record corrupted on a real disk): replication stopped
/// before a failover, replication lagging for several intervals (then caught up), a relocate promoted
/// without the sync barrier, a record corrupted on disk, a lossy failover asked only for its recovery time,
/// damage after a lossy relocate must all fail (exit 1), each for its own reason. The others (a healed
/// outage that must not count as the fault, failback without the resync, a site back unrepaired, a VM
/// left out of an application's mirroring, disks snapshotted each on their own) are judged by the same
/// code on the simulation on every run (tests/sim.rs) and on the lab in release qualification
/// (`negative_controls_qualification`).
#[test]
fn negative_controls_fail() {
    let _g = serial();
    let (_dir, s) =
        negative_run(&["broken-replication", "slow-replication", "relocate-without-barrier", "corruption"], "scenarios: 0 passed, 4 failed, 0 skipped");
    let sc = s["scenarios"].as_array().unwrap();
    let find = |needle: &str| sc.iter().find(|x| x["scenario"].as_str().unwrap().contains(needle)).unwrap_or_else(|| panic!("no scenario {needle}"));
    // judged against its own promise, though the scenario asked only for the time to serve
    let broken = find("replication to site b stopped, asked only");
    assert_eq!(broken["status"], "failed");
    assert!(broken["reason"].as_str().unwrap().contains("failover a -> b: its promise, the loss window within the declared bound"), "{broken}");
    assert_eq!(broken["conclusion"], "failed");
    assert!(broken["reason"].as_str().unwrap().contains("exceeds the bound"), "{broken}");
    assert!(broken["lossWindowMs"].as_f64().unwrap() > broken["lossBoundMs"].as_f64().unwrap());
    assert!(broken["recordsLost"].as_u64().unwrap() > 0);
    // the slow snapshot fails the drill; the bound stays the declared one (interval + allowance + period)
    let lagged = find("lagged");
    assert_eq!(lagged["status"], "failed");
    assert!(lagged["reason"].as_str().unwrap().contains("replication lagged: snapshot a/"), "{lagged}");
    assert_eq!(lagged["lossBoundMs"].as_f64().unwrap(), broken["lossBoundMs"].as_f64().unwrap());
    // and the damage after it cannot swap its evidence: the lost records are named
    let unbarriered = find("without waiting for the sync barrier");
    assert_eq!(unbarriered["status"], "failed");
    assert!(unbarriered["reason"].as_str().unwrap().contains("acknowledged records lost"), "{unbarriered}");
    // a failed scenario explains itself: its gather holds every item (both sites answered here)
    let g = Path::new(unbarriered["gather"].as_str().expect("a gather"));
    let index = std::fs::read_to_string(g.join("gather.txt")).unwrap();
    for site in ["a", "b"] {
        for f in ["ceph-status.txt", "ceph-health-detail.txt", "osd-dump.txt", "rbd-mirror-pool-status.txt"] {
            let p = g.join(format!("site-{site}")).join(f);
            assert!(p.metadata().map(|m| m.len() > 0).unwrap_or(false), "{} missing or empty:\n{index}", p.display());
        }
        let logs: Vec<_> = std::fs::read_dir(g.join(format!("site-{site}/log"))).unwrap().flatten().filter(|e| e.metadata().unwrap().len() > 0).collect();
        assert!(logs.iter().any(|e| e.file_name().to_string_lossy().starts_with("ceph-mon")), "site {site}'s monitor log over the scenario:\n{index}");
    }
    assert!(std::fs::read_to_string(g.join("site-b/osd-dump.txt")).unwrap().contains("pool "), "the pools of the OSD map");
    assert!(std::fs::read_to_string(g.join("site-a/rbd-mirror-pool-status.txt")).unwrap().contains("vm"), "every image's mirror status");
    assert!(std::fs::read_dir(g).unwrap().flatten().any(|e| e.file_name().to_string_lossy().ends_with(".console")), "the VM's console:\n{index}");
    assert!(g.join("environment.yaml").is_file());
    println!("gather of {}:\n{index}", unbarriered["scenario"]);
    // a site that lost its power is said, not asked
    let lost_site = std::fs::read_to_string(Path::new(broken["gather"].as_str().unwrap()).join("gather.txt")).unwrap();
    assert!(lost_site.contains("site a: powered off"), "{lost_site}");
    let corrupt = find("then damage one record");
    assert_eq!(corrupt["status"], "failed");
    assert!(corrupt["reason"].as_str().unwrap().contains("block 50 (bad-payload-checksum)"), "{corrupt}");
}

/// Release qualification: the lab's negative controls that the simulation also proves on every run:
/// a partition healed before the power loss (the outage still in force is the fault that counts),
/// failback onto the stale copy without the resync, a site back unrepaired after a forced promote (split
/// brain), a VM left out of an application's mirroring, the disks of a VM snapshotted each on their own;
/// and the Ceph-schedule and Metro-DR controls skipped here with their reasons. Each must fail (exit 1)
/// for its own reason.
#[test]
#[ignore = "release qualification, about 8 minutes here: cargo test --test lab -- --ignored (CI runs them on the simulation)"]
fn negative_controls_qualification() {
    let _g = serial();
    let (_dir, s) = negative_run(
        &[
            "healed-fault",
            "failback-without-resync",
            "split-brain-after-return",
            "fleet-unmirrored",
            "multidisk-independent",
            "ceph-schedule",
            "metro-split-brain",
        ],
        "scenarios: 0 passed, 5 failed, 2 skipped",
    );
    let sc = s["scenarios"].as_array().unwrap();
    let find = |needle: &str| sc.iter().find(|x| x["scenario"].as_str().unwrap().contains(needle)).unwrap_or_else(|| panic!("no scenario {needle}"));
    // the fault that counts is the outage still in force: the power loss, not the partition healed before
    let healed = find("healed partition");
    assert_eq!((healed["status"].as_str(), healed["cause"].as_str()), (Some("failed"), Some("system")), "{healed}");
    assert!(healed["reason"].as_str().unwrap().contains("exceeds the bound"), "{healed}");
    assert!(healed["lossWindowMs"].as_f64().unwrap() > healed["lossBoundMs"].as_f64().unwrap(), "{healed}");
    assert!(healed["reason"].as_str().unwrap().contains("no replication round completed for"), "{healed}");
    let at = |kind: &str| healed["faults"].as_array().unwrap().iter().find(|f| f["fault"]["kind"] == kind).unwrap()["atMs"].as_f64().unwrap();
    assert_eq!(healed["action"]["rto"][0]["segment"], "fault");
    assert!(at("powerLoss") > at("partition"));
    // a failback onto the stale copy (no resync): what was acknowledged on b after the failover is named
    // (both controls below begin with a failover: on this machine rbd-mirror now and then takes one round
    // over the allowance, and the failover then fails first, for that lag alone, named: a true verdict,
    // accepted and said; the simulation proves both controls' own verdicts on every run)
    let stale = find("Failback without the resync");
    assert_eq!((stale["status"].as_str(), stale["cause"].as_str()), (Some("failed"), Some("system")), "{stale}");
    let reason = stale["reason"].as_str().unwrap();
    if let Some(why) = lag_only_failover(stale).filter(|_| !reason.contains("relocate b -> a")) {
        println!("failback control: its failover failed first, for lag alone: {why:?}");
    } else {
        assert!(reason.contains("relocate b -> a") && reason.contains("acknowledged records lost"), "{stale}");
    }
    // a site back unrepaired after a forced promote: the split brain named
    let twice = find("back without repair");
    assert_eq!(twice["status"], "failed", "{twice}");
    let reason = twice["reason"].as_str().unwrap();
    if let Some(why) = lag_only_failover(twice).filter(|_| !reason.contains("split brain")) {
        println!("split-brain control: its failover failed first, for lag alone: {why:?}");
    } else {
        assert!(reason.contains("split brain: sites a and b are all primary"), "{twice}");
    }
    let metro = find("without fencing");
    assert_eq!(metro["status"], "skipped");
    assert!(metro["reason"].as_str().unwrap().contains("needs Metro-DR"), "{metro}");
    // an application's VM left out of mirroring: that VM fails, named; the others pass on their own evidence
    let left_out = find("the second left out of mirroring");
    assert_eq!((left_out["status"].as_str(), left_out["cause"].as_str()), (Some("failed"), Some("system")), "{left_out}");
    let fleet = &left_out["fleet"][0];
    let failed: Vec<&str> = fleet["failed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let why = |v: &serde_json::Value| format!("{} {} {} {}", v["vm"], v["conclusion"], v["failure"].as_str().or(v["error"].as_str()).unwrap_or(""), v["why"]);
    let per_vm: Vec<String> = fleet["perVm"].as_array().unwrap().iter().map(why).collect();
    let per: Vec<&serde_json::Value> = fleet["perVm"].as_array().unwrap().iter().collect();
    assert_eq!(per.len(), 3, "{fleet}");
    // the VM left out fails, named, for the copy its peer site does not hold
    let not_mirrored: Vec<&&serde_json::Value> = per.iter().filter(|v| why(v).contains("is not mirrored there")).collect();
    assert_eq!(not_mirrored.len(), 1, "fleet control: {per_vm:#?}");
    let left_out_vm = not_mirrored[0]["vm"].as_str().unwrap();
    assert!(failed.contains(&left_out_vm) && left_out["reason"].as_str().unwrap().contains(&format!("VM {left_out_vm}")), "{left_out}");
    // the others are judged on their own evidence: they pass, or (a loaded machine: CI's replication rounds
    // have taken 7 s against the declared 4 s) fail for that lag alone, each reason naming it; never for
    // the left-out VM's disk, never for a lost or damaged record beyond the bound
    for v in per.iter().filter(|v| v["vm"] != left_out_vm) {
        let reasons: Vec<&str> = v["why"].as_array().map(|w| w.iter().filter_map(|r| r.as_str()).collect()).unwrap_or_default();
        let lag_only = v["conclusion"] == "failed" && lag_alone(&reasons);
        assert!(v["conclusion"] == "passed" || lag_only, "fleet control, a mirrored VM failed for more than lag: {per_vm:#?}");
        if lag_only {
            println!("fleet control: {} failed for replication lag on this machine, named: {reasons:?}", v["vm"]);
        }
    }
    println!("fleet control: {}", left_out["reason"]);
    // the disks of a VM snapshotted each on their own: far apart after the failover, named
    // (with a round every half interval rbd-mirror on this machine sometimes takes one over the allowance:
    // the failover then fails first, for that lag alone, named, and the skew is not reached: accepted and
    // said; the simulation proves the skew verdict on every run)
    let apart = find("snapshotted each on its own");
    assert_eq!((apart["status"].as_str(), apart["cause"].as_str()), (Some("failed"), Some("system")), "{apart}");
    let skew = apart["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["check"].as_str().unwrap().starts_with("the disks of VM"))
        .map(|v| v["verdict"]["skew"].clone());
    match skew {
        Some(skew) => {
            assert!(apart["reason"].as_str().unwrap().contains("apart after the failover (bound 2.00 s)"), "{apart}");
            println!("disks snapshotted each on their own: skew {} ms", skew["skewMs"]);
            assert!(skew["skewMs"].as_f64().unwrap() > 2000.0, "{skew}");
        }
        None => {
            let failover = &apart["fleet"][0];
            let why: Vec<&str> =
                failover["perVm"].as_array().unwrap().iter().flat_map(|v| v["why"].as_array().into_iter().flatten().filter_map(|r| r.as_str())).collect();
            assert!(lag_alone(&why), "the control failed before its skew for more than lag: {apart}");
            println!("disks snapshotted each on their own: the failover failed first, for lag alone: {why:?}");
        }
    }
    let skipped = find("Ceph's 1-minute schedule");
    assert_eq!(skipped["status"], "skipped");
    assert!(skipped["reason"].as_str().unwrap().contains("scheduler: ceph"), "{skipped}");
}

/// Negative control on Ceph's own schedule, in a time zone 8 hours west of UTC: one scheduled snapshot
/// replicates, then replication stops for more than an interval. Snapshot times must be read right (the
/// must-survive check runs against a snapshot taken while the VM wrote) and the drill must fail.
#[test]
#[ignore = "release qualification, about 4 minutes here (Ceph's 1-minute schedule): cargo test --test lab -- --ignored (CI runs the unit tests of Ceph's timestamps and of TZ=UTC for every Ceph tool)"]
fn ceph_schedule_negative_control_fails_in_any_time_zone() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("dr-drill")
        .unwrap()
        .args(["run", "--env", "environments/lab-regional-ceph-schedule.yaml", "--tags", "@scheduler-ceph and @negative", "--report-dir"])
        .arg(dir.path())
        .env("TZ", "WST+08")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{}", digest(&stdout));
    assert_eq!(out.status.code(), Some(1), "{}\n{}", digest(&stdout), String::from_utf8_lossy(&out.stderr));
    let s = summary(dir.path());
    let sc = &s["scenarios"][0];
    assert_eq!(sc["status"], "failed");
    assert!(sc["reason"].as_str().unwrap().contains("exceeds the bound"), "{sc}");
    let v = &sc["verdicts"][0]["verdict"];
    assert!(v["mustSurviveCheckedAgainst"].as_str().is_some_and(|c| c.starts_with("a/")), "the must-survive check did not run: {v}");
    // the checkpoint's start lies inside the run, on the witness clock (not hours off): after the scenario
    // began, before replication stopped
    let started = sc["action"]["checkpoint"]["startedNs"].as_f64().unwrap() / 1e6;
    let at = |kind: &str| sc["faults"].as_array().unwrap().iter().find(|f| f["fault"]["kind"] == kind).unwrap()["atMs"].as_f64().unwrap();
    let stopped = at("stopReplication");
    let duration_ms = sc["durationS"].as_f64().unwrap() * 1e3;
    assert!(started < stopped && started > at("powerLoss") - duration_ms, "checkpoint started at {started} ms, replication stopped at {stopped} ms");
}

/// Exit codes by cause. A harness error (the QEMU binary removed after the run checked for it, while the
/// lab comes up) exits 2; a replication failure (a relocate whose sync barrier never passes, replication
/// to the target stopped) exits 1.
#[test]
fn exit_codes_follow_the_cause() {
    let _g = serial();
    // the assets, with QEMU's binary as a link the test can take away
    let assets = tempfile::tempdir().unwrap();
    let real = PathBuf::from(std::env::var("DR_DRILL_ASSETS").unwrap_or_else(|_| "/opt/dr-drill".into()));
    for d in ["kernel", "bin"] {
        std::os::unix::fs::symlink(real.join(d), assets.path().join(d)).unwrap();
    }
    std::fs::create_dir_all(assets.path().join("qemu/usr/bin")).unwrap();
    for d in ["share", "lib"] {
        std::os::unix::fs::symlink(real.join("qemu/usr").join(d), assets.path().join("qemu/usr").join(d)).unwrap();
    }
    let qemu = assets.path().join("qemu/usr/bin/qemu-system-x86_64");
    std::os::unix::fs::symlink(real.join("qemu/usr/bin/qemu-system-x86_64"), &qemu).unwrap();
    let runs = tempfile::tempdir().unwrap();
    let reports = tempfile::tempdir().unwrap();
    let needle = runs.path().display().to_string();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dr-drill"))
        .args(["run", "features/relocate.feature", "--report-dir"])
        .arg(reports.path())
        .env("DR_DRILL_ASSETS", assets.path())
        .env("DR_DRILL_RUN_DIR", runs.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while procs_mentioning(&needle).iter().all(|p| !p.contains("ceph-mon -i")) {
        assert!(t0.elapsed() < Duration::from_secs(60), "the run never started its lab");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::remove_file(&qemu).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{}", digest(&stdout));
    assert_eq!(out.status.code(), Some(2), "{}", digest(&stdout));
    // ip netns exec starts, then cannot exec QEMU: either way the VM never ran
    assert!(stdout.contains("QEMU exited at start") || stdout.contains("failed to start QEMU"), "{}", digest(&stdout));
    let s = summary(reports.path());
    assert_eq!(s["scenarios"][0]["cause"], "harness", "{s}");

    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("dr-drill")
        .unwrap()
        .args(["run", "--env", "tests/fixtures/lab-short-barrier.yaml", "tests/fixtures/features/relocate-replication-stopped.feature", "--report-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{}", digest(&stdout));
    assert_eq!(out.status.code(), Some(1), "{}\n{}", digest(&stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("waiting for mirror snapshot"), "{}", digest(&stdout));
    let s = summary(dir.path());
    assert_eq!(s["scenarios"][0]["cause"], "system", "{s}");
}

/// The delay line between two namespaces: every datagram arrives, in order, when nothing says otherwise,
/// even with jitter (it never reorders); with loss, some are dropped and the rest stay in order; a
/// partition drops everything, and healing it lets traffic through again. Its counters add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // the serial guard is held for the whole test on purpose
async fn the_delay_line_keeps_order_and_drops_only_when_told() {
    use dr_drill::env::lab::wan::WanLink;
    use std::sync::atomic::Ordering;
    let _g = serial();
    let id = &dr_drill::env::lab::site::uuid()[..6];
    let (na, nb) = (format!("drd-{id}-wa"), format!("drd-{id}-wb"));
    let ip = |args: &[&str]| assert!(std::process::Command::new("ip").args(args).status().unwrap().success(), "ip {args:?}");
    for n in [&na, &nb] {
        ip(&["netns", "add", n]);
        ip(&["-n", n, "link", "set", "lo", "up"]);
    }
    let link = WanLink::open(("a", &na, "wan0"), ("b", &nb, "wan0")).unwrap();
    for (n, addr) in [(&na, "10.79.0.1/24"), (&nb, "10.79.0.2/24")] {
        ip(&["-n", n, "addr", "add", addr, "dev", "wan0"]);
        ip(&["-n", n, "link", "set", "wan0", "up"]);
    }
    // sends `count` numbered datagrams from a to b and returns the numbers b received, in arrival order
    let (na2, nb2) = (na.clone(), nb.clone());
    let exchange = move |count: u32, port: u16| {
        let (na, nb) = (na2.clone(), nb2.clone());
        let enter = |ns: &str| {
            let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
            assert_eq!(unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) }, 0);
        };
        let rx = std::thread::spawn(move || {
            enter(&nb);
            let s = std::net::UdpSocket::bind(("10.79.0.2", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
            let mut got = vec![];
            let mut buf = [0u8; 64];
            while let Ok(n) = s.recv(&mut buf) {
                got.push(u32::from_be_bytes(buf[..n.min(4)].try_into().unwrap()));
            }
            got
        });
        std::thread::sleep(Duration::from_millis(200));
        let tx = std::thread::spawn(move || {
            enter(&na);
            let s = std::net::UdpSocket::bind(("10.79.0.1", 0)).unwrap();
            for i in 0..count {
                s.send_to(&i.to_be_bytes(), ("10.79.0.2", port)).unwrap();
                if i % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        tx.join().unwrap();
        rx.join().unwrap()
    };
    let in_order = |v: &[u32]| v.windows(2).all(|w| w[0] < w[1]);
    let ab = link.direction("a", "b").unwrap().clone();
    // what the kernel sent while the far end was still down (router solicitations) is counted apart
    let overflow = ab.counters.overflow.load(Ordering::Relaxed);
    // jitter far larger than the spacing of the datagrams: still every one, in order, and late
    *ab.shape.lock().unwrap() = dr_drill::env::lab::wan::Shape { delay: Duration::from_millis(5), jitter: Duration::from_millis(20), ..Default::default() };
    let exchange1 = exchange.clone();
    let got = tokio::task::spawn_blocking(move || exchange1(2000, 7001)).await.unwrap();
    assert_eq!(got.len(), 2000, "datagrams lost without being told to");
    assert!(in_order(&got), "datagrams reordered");
    // 10% loss: some gone, the rest in order, the drops counted
    *ab.shape.lock().unwrap() = dr_drill::env::lab::wan::Shape { loss: 0.1, ..Default::default() };
    let before = ab.counters.dropped.load(Ordering::Relaxed);
    let exchange2 = exchange.clone();
    let got = tokio::task::spawn_blocking(move || exchange2(2000, 7002)).await.unwrap();
    let dropped = ab.counters.dropped.load(Ordering::Relaxed) - before;
    assert!((100..300).contains(&(2000 - got.len())), "{} of 2000 arrived", got.len());
    assert_eq!(got.len() as u64 + dropped, 2000, "every datagram either arrived or was dropped as told");
    assert!(in_order(&got));
    // a partition drops everything; healed, traffic flows again
    *ab.shape.lock().unwrap() = dr_drill::env::lab::wan::Shape { cut: true, ..Default::default() };
    let exchange3 = exchange.clone();
    assert!(tokio::task::spawn_blocking(move || exchange3(100, 7003)).await.unwrap().is_empty());
    *ab.shape.lock().unwrap() = Default::default();
    let got = tokio::task::spawn_blocking(move || exchange(100, 7004)).await.unwrap();
    assert_eq!(got.len(), 100);
    assert_eq!(link.ab.counters.overflow.load(Ordering::Relaxed), overflow, "nothing dropped for a full queue or a down end");

    // The fault proofs' own measurements over this real link, and their negative controls: a shape the
    // line was not given is refused (a delay line "told" 300 ms that shapes 30, a cut that lets a reset
    // through, a rate 8 times what passes).
    use dr_drill::env::lab::witness;
    use dr_drill::fault::{judge, Fault, Observed, Phase};
    use dr_drill::units::Dur;
    let far: std::net::SocketAddr = "10.79.0.2:3300".parse().unwrap(); // nothing listens: a reset is the answer
    let base = witness::median_rtt(&na, far, 5).await.unwrap().expect("a reset came back");
    ab.shape.lock().unwrap().delay = Duration::from_millis(30);
    let shaped = witness::median_rtt(&na, far, 5).await.unwrap().unwrap();
    let lat = |ms: u64| Fault::Latency { from: "a".into(), to: "b".into(), delay: Dur(Duration::from_millis(ms)), jitter: Dur(Duration::ZERO) };
    let seen = Observed { rtt: Some((base, shaped)), ..Default::default() };
    println!("round trip {base:?} -> {shaped:?}: {:?}", judge(&lat(30), Phase::InEffect, &seen));
    assert!(judge(&lat(30), Phase::InEffect, &seen).is_ok(), "{base:?} -> {shaped:?}");
    assert!(judge(&lat(300), Phase::InEffect, &seen).is_err(), "a delay the line was not given must not be shown in effect");
    *ab.shape.lock().unwrap() = Default::default();
    let back = witness::median_rtt(&na, far, 5).await.unwrap().unwrap();
    assert!(judge(&lat(30), Phase::Gone, &Observed { rtt: Some((shaped, back)), ..Default::default() }).is_ok(), "{shaped:?} -> {back:?}");
    let part = Fault::Partition { a: "a".into(), b: "b".into() };
    let look = |shape: dr_drill::env::lab::wan::Shape| {
        *ab.shape.lock().unwrap() = shape.clone();
        *link.ba.shape.lock().unwrap() = shape;
        let (na, nb) = (na.clone(), nb.clone());
        async move {
            let t = witness::silent_after(Duration::ZERO);
            let r1 = witness::reach(&na, far, t).await.unwrap();
            let r2 = witness::reach(&nb, "10.79.0.1:3300".parse().unwrap(), t).await.unwrap();
            Observed { reach: vec![("a".into(), "b".into(), r1), ("b".into(), "a".into(), r2)], ..Default::default() }
        }
    };
    let cut = look(dr_drill::env::lab::wan::Shape { cut: true, ..Default::default() }).await;
    assert!(judge(&part, Phase::InEffect, &cut).is_ok() && judge(&part, Phase::Gone, &cut).is_err(), "{cut:?}");
    let healed = look(Default::default()).await;
    assert!(judge(&part, Phase::Gone, &healed).is_ok() && judge(&part, Phase::InEffect, &healed).is_err(), "{healed:?}");
    ab.shape.lock().unwrap().rate_bps = Some(8_000_000);
    let paced = witness::throughput(&na, &nb, "10.79.0.2", 300_000).await.unwrap();
    *ab.shape.lock().unwrap() = Default::default();
    let free = witness::throughput(&na, &nb, "10.79.0.2", 300_000).await.unwrap();
    println!("throughput paced to 8 Mbit/s: {:.2} Mbit/s; unpaced: {:.1} Mbit/s", paced / 1e6, free / 1e6);
    let rate = |bps: u64| Fault::RateLimit { from: "a".into(), to: "b".into(), bps };
    let tp = |bps: f64| Observed { throughput_bps: Some(bps), ..Default::default() };
    assert!(judge(&rate(8_000_000), Phase::InEffect, &tp(paced)).is_ok(), "{paced}");
    assert!(judge(&rate(1_000_000), Phase::InEffect, &tp(paced)).is_err(), "8 Mbit/s passed where 1 was asked");
    assert!(judge(&rate(8_000_000), Phase::InEffect, &tp(free)).is_err(), "the unpaced line is not a paced one: {free}");
    drop(link);
    for n in [&na, &nb] {
        ip(&["netns", "del", n]);
    }
}

/// An application of 8 VMs relocated, then failed over after a power loss, as one (`--tags @fleet`):
/// every VM judged on its own evidence; the summary has each VM's verdict and the fleet's spread.
#[test]
#[ignore = "release qualification, about 3.5 minutes here: cargo test --test lab -- --ignored (CI runs the 3-VM fleet control and the simulated fleets)"]
fn a_fleet_of_eight_vms_moves_as_one() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("dr-drill").unwrap().args(["run", "--tags", "@fleet", "--report-dir"]).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{}", digest(&stdout));
    assert_eq!(out.status.code(), Some(0), "{}\n{}", digest(&stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l == "scenarios: 1 passed, 0 failed, 0 skipped"), "{}", digest(&stdout));
    let s = summary(dir.path());
    let sc = &s["scenarios"][0];
    let fleet = sc["fleet"].as_array().unwrap();
    assert_eq!(fleet.iter().map(|f| f["kind"].as_str().unwrap()).collect::<Vec<_>>(), ["relocate", "failover"], "{sc}");
    for f in fleet {
        assert_eq!((f["vms"].as_u64(), f["failed"].as_array().unwrap().len()), (Some(8), 0), "{f}");
        let per = f["perVm"].as_array().unwrap();
        assert!(per.len() == 8 && per.iter().all(|v| v["conclusion"] == "passed"), "{f}");
        let rto = &f["rtoMs"];
        assert!(rto["min"].as_f64() <= rto["median"].as_f64() && rto["median"].as_f64() <= rto["max"].as_f64(), "{f}");
        println!("fleet {}: RTO {} ms, loss window {} ms", f["kind"], f["rtoMs"], f["lossWindowMs"]);
    }
    // each VM's action judged on its own: 8 relocates, then 8 failovers, each naming its VM
    let actions = sc["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 16, "{sc}");
    let vms: std::collections::BTreeSet<&str> = actions.iter().map(|a| a["vm"].as_str().unwrap()).collect();
    assert_eq!(vms.len(), 8);
    assert!(actions[8..].iter().all(|a| a["lossWindowMs"].as_f64().unwrap() <= a["lossBoundMs"].as_f64().unwrap()), "{sc}");
}

/// Runs the Metro-DR drills selected by `tags` on the stretch lab (one lab for the run); exit 1 expected
/// (each selection holds negative controls). The summary's scenarios, split into negative and positive.
fn metro_run(tags: &str) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("dr-drill")
        .unwrap()
        .args(["run", "--env", "environments/lab-metro.yaml", "--tags", tags, "--report-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{}", digest(&stdout));
    // the negative controls fail for the system: exit 1
    assert_eq!(out.status.code(), Some(1), "{}\n{}", digest(&stdout), String::from_utf8_lossy(&out.stderr));
    (summary(dir.path()), stdout)
}

fn is_negative(x: &serde_json::Value) -> bool {
    x["tags"].as_array().unwrap().iter().any(|t| t == "negative" || t == "@negative")
}

fn find_in<'a>(sc: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    sc.iter().find(|x| x["scenario"].as_str().unwrap().contains(name)).unwrap_or_else(|| panic!("no scenario {name}"))
}

/// Every positive drill of a Metro-DR run passed (none skipped); returns how many there were.
fn positives_pass(sc: &[serde_json::Value]) -> usize {
    let pos: Vec<&serde_json::Value> = sc.iter().filter(|x| !is_negative(x)).collect();
    let failing: Vec<String> = pos.iter().filter(|x| x["status"] != "passed").map(|x| format!("{}: {} {}", x["scenario"], x["status"], x["reason"])).collect();
    assert!(failing.is_empty(), "every drill passes in stretch mode, none skipped: {failing:#?}");
    pos.len()
}

/// Metro-DR on the lab in Ceph stretch mode (one cluster over sites a and b and the arbiter c), the quick
/// subset (`@smoke`, what CI runs) and its negative controls in one run: a failover after a power loss loses
/// nothing and fences the lost site; the sites 2 ms apart are in spec and writes pay the round trip; site a
/// lost sends the cluster into degraded stretch mode and, back, it heals itself; a storage host lost changes
/// nothing; the sites 12 ms apart are flagged out of spec; a failover without fencing is a split brain.
/// (The layouts without stretch mode and with every replica on one site: `metro_misconfigurations_fail`.)
#[test]
fn metro_dr_loses_nothing_and_flags_sites_too_far_apart() {
    let _g = serial();
    let (s, _) = metro_run("@metro and @smoke and not @known-defect and not @slow");
    let sc = s["scenarios"].as_array().unwrap();
    assert_eq!(positives_pass(sc), 4, "{sc:#?}");
    // the round-trip matrix of the three failure domains, measured when the environment came up
    let matrix = s["environment"]["roundTrips"].as_array().unwrap();
    assert_eq!(matrix.len(), 6, "{matrix:?}");
    assert!(matrix.iter().any(|t| t["from"] == "c" && t["to"] == "a" && t["medianMs"].as_f64().unwrap() < 5.0), "{matrix:?}");
    let find = |name: &str| find_in(sc, name);
    let failover = find("failover after a power loss");
    assert_eq!(failover["recordsLost"], 0);
    assert!(failover["recordsAcked"].as_u64().unwrap() >= 500, "{failover}");
    assert!(failover["action"]["driver"]["fencedClients"].as_array().is_some_and(|f| !f.is_empty()), "the lost site was not fenced: {failover}");
    let near = find("2 ms apart");
    let rtt = near["roundTrips"][0]["medianMs"].as_f64().unwrap();
    assert!((4.0..10.0).contains(&rtt), "2 ms one way measured as a {rtt} ms round trip");
    assert!(near["writeLatencyP50Us"].as_u64().unwrap() > 4000, "synchronous writes pay the round trip: {near}");
    // stretch mode as evidence: degraded when site a was lost, recovering and healthy once it was back
    let stretch = find("degraded stretch mode, failover to b");
    let states: Vec<&str> = stretch["stretch"]["transitions"].as_array().unwrap().iter().map(|t| t["state"].as_str().unwrap()).collect();
    assert!(states.contains(&"degraded stretch") && states.last() == Some(&"healthy stretch"), "{states:?}");
    let rto: Vec<&str> = stretch["action"]["rto"].as_array().unwrap().iter().map(|m| m["segment"].as_str().unwrap()).collect();
    assert!(rto.contains(&"degraded stretch") && rto.contains(&"storage serves"), "{rto:?}");
    assert_eq!(find("storage host of site a lost")["recordsLost"], 0);

    // the negative controls in the same run: sites too far apart; failover without fencing (split brain);
    // the layout without stretch mode is another environment (skipped here, with the reason)
    let neg: Vec<&serde_json::Value> = sc.iter().filter(|x| is_negative(x)).collect();
    let failed: Vec<&&serde_json::Value> = neg.iter().filter(|x| x["status"] == "failed").collect();
    assert_eq!(failed.len(), 2, "{neg:#?}");
    assert!(failed.iter().all(|x| x["cause"] == "system"), "{failed:#?}");
    let far = find("12 ms apart");
    assert!(far["roundTrips"][0]["medianMs"].as_f64().unwrap() > 20.0);
    assert!(far["reason"].as_str().unwrap().contains("more than 10ms"), "{far}");
    assert!(find("without fencing")["reason"].as_str().unwrap().contains("split brain"), "{}", find("without fencing"));
}

/// Release qualification: Metro-DR on layouts that cannot keep its promise (deliberate misconfigurations,
/// each on a stretched lab of its own): without stretch mode, a failover during a partition between the
/// data sites cannot serve; with every replica on site a, nothing is on b. (The quick subset above runs
/// the misconfiguration it can in its own run: the sites too far apart.)
#[test]
#[ignore = "release qualification, about 4 minutes here (two more stretched labs): cargo test --test lab -- --ignored"]
fn metro_misconfigurations_fail() {
    let _g = serial();
    // negative control: Metro-DR without stretch mode, a partition between the data sites, a failover to b
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("dr-drill")
        .unwrap()
        .args(["run", "--env", "environments/lab-metro-no-stretch.yaml", "--report-dir"])
        .arg(dir.path())
        .arg("features/negative/metro-no-stretch.feature")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{}", digest(&stdout));
    assert_eq!(out.status.code(), Some(1), "{}", digest(&stdout));
    // site b's placement groups wait for site a's OSD (which, when site a wrote on alone, holds writes b never saw)
    assert!(stdout.contains("failed to serve without site a") && stdout.contains("waits for osd.0 on site a"), "{}", digest(&stdout));

    // negative control: every replica on site a (a misconfigured CRUSH rule)
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("dr-drill")
        .unwrap()
        .args(["run", "--env", "tests/fixtures/lab-metro-one-site.yaml", "--tags", "@negative", "--report-dir"])
        .arg(dir.path())
        .arg("tests/fixtures/features/metro-one-site.feature")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{}", digest(&stdout));
    assert_eq!(out.status.code(), Some(1), "{}", digest(&stdout));
    assert!(stdout.contains("has no replica on site b"), "{}", digest(&stdout));
}

/// Release qualification of Metro-DR on the lab (the drills not tagged `@smoke`): the whole cycle (site a
/// back, clean again, relocated back), the sites 5 ms apart, the arbiter lost, a freeze then a failover (the
/// old VM fenced), the storage fence alone, site a partitioned from b and the arbiter, the partition between
/// the data sites while the arbiter sees both (the side the tiebreaker kept, the elections and the stall
/// reported); and the negative control fenced only by the harness's isolation (a split brain).
#[test]
#[ignore = "release qualification, about 11 minutes here: cargo test --test lab -- --ignored (CI runs the @smoke subset)"]
fn metro_dr_qualification() {
    let _g = serial();
    let (s, _) = metro_run("@metro and not @smoke and not @known-defect and not @slow");
    let sc = s["scenarios"].as_array().unwrap();
    assert_eq!(positives_pass(sc), 7, "{sc:#?}");
    let find = |name: &str| find_in(sc, name);
    let far = find("5 ms apart");
    assert!(far["writeLatencyP50Us"].as_u64().unwrap() > 10_000, "synchronous writes pay the round trip: {far}");
    // a data site cut off (from its peer and the arbiter): the failover counts from the first cut
    let cut = find("partitioned from site b");
    assert_eq!(cut["recordsLost"], 0);
    assert!(cut["faults"][0]["fault"]["kind"] == "partition", "{cut}");
    // split brain refused: the frozen VM, thawed after the fence, got no write acknowledged
    let frozen = find("Freeze then failover");
    let v = frozen["verdicts"].as_array().unwrap().iter().find(|v| v["check"] == "no write of the old VM after the fence").unwrap();
    assert_eq!(v["verdict"]["conclusion"], "passed", "{frozen}");
    assert!(v["verdict"]["acked"].as_u64().unwrap() > 0 && v["verdict"].get("ackedAfterFence").is_none(), "{v}");
    // the whole cycle on Metro-DR: site a back (unfenced, clean again), the VM relocated back to it
    let cycle = find("clean again, relocate back");
    assert_eq!(cycle["actions"].as_array().unwrap().len(), 2, "{cycle}");
    let steps: Vec<&str> = cycle["repairs"][0]["steps"].as_array().unwrap().iter().map(|s| s["segment"].as_str().unwrap()).collect();
    assert!(["site back", "unfenced", "clean"].iter().all(|s| steps.contains(s)), "{steps:?}");
    // the storage fence judged on its own (the harness never cut the site off): it holds
    let alone = find("storage fence alone");
    let v = alone["verdicts"].as_array().unwrap().iter().find(|v| v["check"] == "no write of the old VM after the fence").unwrap();
    assert_eq!(v["verdict"]["conclusion"], "passed", "{alone}");
    // the partition between the data sites: nothing lost, and what happened reported
    let part = find("arbiter sees both, then healed");
    assert_eq!(part["recordsLost"], 0, "{part}");
    let p = &part["stretch"]["partitions"][0];
    assert!(p["stallMs"].as_f64().is_some() && p["electionsWon"].as_u64().is_some(), "{part}");
    assert!(part["stretch"]["elections"].as_array().is_some_and(|e| !e.is_empty()), "no election on the timeline: {part}");
    println!("partition: {}", p["summary"]);
    assert_eq!(find("arbiter lost")["recordsLost"], 0);
    // the negative control: the harness's isolation alone, undone before the judgement: no fence at all
    let neg: Vec<&serde_json::Value> = sc.iter().filter(|x| is_negative(x)).collect();
    assert_eq!(neg.iter().filter(|x| x["status"] == "failed").count(), 1, "{neg:#?}");
    let isolated = find("only by the harness's isolation");
    assert_eq!(isolated["cause"], "system", "{isolated}");
    assert!(isolated["reason"].as_str().unwrap().contains("split brain"), "{isolated}");
}
