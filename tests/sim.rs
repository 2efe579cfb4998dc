//! The simulated environment (`backend: sim`): the bundled features, the drill engine, the oracle and the
//! reports run unchanged over every port in memory, on a simulated clock. What is proven here:
//! - the bundled drills pass on sim-regional and sim-metro, and the bundled negative controls fail;
//! - storage that lies on purpose is caught by the drills it concerns, naming what it saw (the table);
//! - seeded campaigns: random scenarios over the step vocabulary with random rates and intervals always
//!   pass on honest storage, and always fail with a lie switched on (`DR_DRILL_SIM_BATCHES` runs longer);
//! - a run replays from its seed.
//!
//! The debug binary is run as a user would (`dr-drill run --env environments/sim-*.yaml`).

#[path = "support/browser.rs"]
mod browser;
#[path = "support/schema.rs"]
mod schema;

use assert_cmd::Command;
use dr_drill::config::Misbehaviour;
use dr_drill::env::sim::campaign;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Run {
    code: i32,
    summary: Value,
    stdout: String,
    secs: f64,
}

impl Run {
    fn scenarios(&self) -> Vec<&Value> {
        self.summary["scenarios"].as_array().unwrap().iter().filter(|s| s["status"] != "skipped").collect()
    }
    fn status_of(&self, scenario: &str) -> (String, String) {
        let s = self
            .scenarios()
            .into_iter()
            .find(|s| s["scenario"].as_str().unwrap().starts_with(scenario))
            .unwrap_or_else(|| panic!("no scenario {scenario:?} ran:\n{}", self.stdout));
        (s["status"].as_str().unwrap().to_string(), s["reason"].as_str().unwrap_or("").to_string())
    }
}

fn drill(env: &Path, paths: &[PathBuf], extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let out =
        Command::cargo_bin("dr-drill").unwrap().args(["run", "--env"]).arg(env).arg("--report-dir").arg(dir.path()).args(extra).args(paths).output().unwrap();
    let secs = t.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let summary: Value = std::fs::read_to_string(dir.path().join("summary.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| panic!("no summary.json:\n{stdout}"));
    schema::check_run_folder(dir.path());
    Run { code: out.status.code().unwrap_or(-1), summary, stdout, secs }
}

fn env(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("environments").join(name)
}

fn feature(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("features").join(name)
}

/// An environment file: `base` with `misbehave: [lie]` and/or another seed.
fn env_with(dir: &Path, base: &str, lie: Option<Misbehaviour>, seed: Option<u64>) -> PathBuf {
    let mut text = std::fs::read_to_string(env(base)).unwrap();
    if let Some(seed) = seed {
        text = text.replace("    seed: 1\n", &format!("    seed: {seed}\n"));
    }
    if let Some(l) = lie {
        let name = serde_json::to_value(l).unwrap();
        text = text.replace("  sim:\n", &format!("  sim:\n    misbehave: [{}]\n", name.as_str().unwrap()));
    }
    let p = dir.join(format!("{base}-{lie:?}-{seed:?}.yaml"));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_bundled_drills_pass_on_sim_and_each_runs_in_well_under_a_second() {
    for (e, least) in [("sim-regional.yaml", 4), ("sim-metro.yaml", 9)] {
        let r = drill(&env(e), &[], &[]);
        assert_eq!(r.code, 0, "{e}:\n{}", r.stdout);
        let ran = r.scenarios();
        assert!(ran.len() >= least && ran.iter().all(|s| s["status"] == "passed"), "{e}:\n{}", r.stdout);
        let simulated: f64 = ran.iter().map(|s| s["durationS"].as_f64().unwrap_or(0.0)).sum::<f64>();
        println!(
            "{e}: {} drills passed in {:.2} s of real time ({:.0} s simulated; {:.3} s per drill)",
            ran.len(),
            r.secs,
            simulated,
            r.secs / ran.len() as f64
        );
        assert!(r.secs / (ran.len() as f64) < 1.0, "a simulated drill takes {:.2} s", r.secs / ran.len() as f64);
        println!("{e}: {} faults, each shown in effect and gone", faults_proven(&r));
    }
}

/// Every fault of every bundled drill carries what showed it in effect and, once undone, gone.
fn faults_proven(r: &Run) -> usize {
    let mut n = 0;
    for s in r.scenarios() {
        for f in s["faults"].as_array().unwrap() {
            assert!(!f["inEffect"]["seen"].as_array().unwrap().is_empty(), "{}: {f}", s["scenario"]);
            assert!(f["gone"]["seen"].as_array().is_some_and(|v| !v.is_empty()), "{}: never shown gone: {f}", s["scenario"]);
            n += 1;
        }
    }
    n
}

/// The negative control of the fault proofs: a fault surface that reports every fault caused and changes
/// nothing (`misbehave: [faultNotApplied]`). Every drill that injects a fault stops there as the
/// harness's error (exit 2), naming the fault and what was seen instead; none passes, none is judged a DR
/// failure.
#[test]
fn a_fault_that_does_not_land_stops_the_drill_as_the_harness_error() {
    let dir = tempfile::tempdir().unwrap();
    let honest = drill(&env("sim-regional.yaml"), &[feature("failover.feature"), feature("network.feature")], &[]);
    assert_eq!(honest.code, 0, "{}", honest.stdout);
    assert!(faults_proven(&honest) >= 4, "{}", honest.stdout);
    let r = drill(
        &env_with(dir.path(), "sim-regional.yaml", Some(Misbehaviour::FaultNotApplied), None),
        &[feature("failover.feature"), feature("network.feature")],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    let ran = r.scenarios();
    assert_eq!(ran.len(), honest.scenarios().len(), "{}", r.stdout);
    for s in &ran {
        let reason = s["reason"].as_str().unwrap_or("");
        assert_eq!(s["cause"], "harness", "{}: {reason}", s["scenario"]);
        assert!(reason.contains("was not shown in effect"), "{}: {reason}", s["scenario"]);
    }
    let power = ran
        .iter()
        .find(|s| s["scenario"].as_str().unwrap().contains("failover") && s["reason"].as_str().unwrap().contains("cut the power"))
        .map(|s| s["reason"].clone());
    assert!(power.as_ref().is_some_and(|r| r.as_str().unwrap().contains("still alive")), "{power:?}\n{}", r.stdout);
}

#[test]
fn the_bundled_negative_controls_fail_on_sim_for_the_system() {
    for (e, least) in [("sim-regional.yaml", 7), ("sim-metro.yaml", 3)] {
        let r = drill(&env(e), &[feature("negative")], &["--tags", "@negative"]);
        assert_eq!(r.code, 1, "{e}:\n{}", r.stdout);
        let ran = r.scenarios();
        assert!(ran.len() >= least, "{e}: {} ran\n{}", ran.len(), r.stdout);
        for s in ran {
            assert_eq!((s["status"].as_str(), s["cause"].as_str()), (Some("failed"), Some("system")), "{e}: {}", s["scenario"]);
        }
    }
}

/// An application of 8 VMs moves as one on the simulation (`--tags @fleet`), and a VM left out of
/// mirroring fails that VM only, named.
#[test]
fn a_fleet_moves_as_one_and_the_vm_left_out_is_named() {
    let r = drill(&env("sim-regional.yaml"), &[], &["--tags", "@fleet"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let sc = r.scenarios();
    assert_eq!(sc.len(), 1, "{}", r.stdout);
    let fleet = sc[0]["fleet"].as_array().unwrap();
    assert!(
        fleet.len() == 2 && fleet.iter().all(|f| f["vms"] == 8 && f["perVm"].as_array().unwrap().iter().all(|v| v["conclusion"] == "passed")),
        "{}",
        r.stdout
    );
    let r = drill(&env("sim-regional.yaml"), &[feature("negative/fleet-unmirrored.feature")], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let (status, reason) = r.status_of("Failover of 3 VMs");
    let f = &r.scenarios()[0]["fleet"][0];
    let failed: Vec<&str> = f["failed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!((status.as_str(), failed.len()), ("failed", 1), "{}", r.stdout);
    assert!(reason.contains(&format!("VM {}", failed[0])), "{reason}");
    assert_eq!(f["perVm"].as_array().unwrap().iter().filter(|v| v["conclusion"] == "passed").count(), 2, "{f}");
}

/// A VM of 3 disks (one guest, a writer and a mirrored image per disk) relocated and failed over as one VM:
/// its disks snapshotted in the same round hold data from within 2 s of each other (well within: the
/// simulation snapshots them at one instant); snapshotted each
/// on its own (half an interval apart) the skew verdict fails, naming the disks and how far apart.
#[test]
fn a_vm_of_several_disks_keeps_them_together_and_names_them_apart() {
    let r = drill(&env("sim-regional.yaml"), &[feature("multidisk.feature")], &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let kinds: Vec<(&str, &str, u64)> = r
        .scenarios()
        .iter()
        .flat_map(|sc| {
            sc["fleet"].as_array().unwrap().iter().map(|f| (f["kind"].as_str().unwrap(), f["disksOf"].as_str().unwrap(), f["vms"].as_u64().unwrap()))
        })
        .collect();
    assert_eq!(kinds, [("failover", "vm0", 3), ("relocate", "vm1", 3)], "{}", r.stdout);
    let sc = r.scenarios()[0];
    let skew = |sc: &Value| {
        sc["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["check"].as_str().unwrap().starts_with("the disks of VM vm0"))
            .map(|v| v["verdict"]["skew"].clone())
            .unwrap()
    };
    let together = skew(sc);
    assert_eq!(together["disks"].as_array().unwrap().len(), 3, "{together}");
    assert!(together["skewMs"].as_f64().unwrap() < 1000.0, "{together}");
    let r = drill(&env("sim-regional.yaml"), &[feature("negative/multidisk-independent.feature")], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let (status, reason) = r.status_of("A VM with 2 disks snapshotted each on its own");
    assert_eq!(status, "failed", "{}", r.stdout);
    assert!(reason.contains("apart after the failover (bound 2.00 s): vm0-disk"), "{reason}");
    // two disks' rounds half an interval (5 s) apart: about 2.5 s
    let apart = skew(r.scenarios()[0]);
    assert!(apart["skewMs"].as_f64().unwrap() > 2000.0, "{apart}");
}

/// Misbehaviour x drill -> expected verdict, with what the failure must name. A lie a drill cannot see
/// (a forced promote's rollback in a relocate that never forces) leaves it passing: the lie is targeted.
#[test]
fn storage_that_lies_is_caught_by_the_drills_it_concerns() {
    use Misbehaviour::*;
    let dir = tempfile::tempdir().unwrap();
    let relocate = "Relocate a writing VM from site a to site b";
    let failover = "Regional-DR failover after a power loss on site a";
    let failback = "Regional-DR: fail over to b, site a comes back";
    let golden = "A VM cloned from a golden image is relocated";
    // (lie, environment, features, scenario, expected status, what the failure names)
    type Row<'a> = (Misbehaviour, &'a str, &'a [&'a str], &'a str, &'a str, &'a str);
    let table: &[Row] = &[
        (AckUnpersisted, "sim-regional.yaml", &["relocate.feature"], relocate, "failed", "acknowledged records lost"),
        (AckUnpersisted, "sim-metro.yaml", &["metro.feature"], "Metro-DR failover after a power loss", "failed", "acknowledged records lost"),
        (SnapshotCompleteEarly, "sim-regional.yaml", &["failover.feature"], failover, "failed", "which it had reported complete"),
        (SnapshotCompleteEarly, "sim-regional.yaml", &["relocate.feature"], relocate, "failed", "the STOP record"),
        (PromoteRollsBack, "sim-regional.yaml", &["failover.feature"], failover, "failed", "which it had reported complete"),
        (PromoteRollsBack, "sim-regional.yaml", &["relocate.feature"], relocate, "passed", ""),
        (CloneLosesParent, "sim-regional.yaml", &["failover.feature"], failover, "failed", "lost: 1-32"),
        (CloneLosesParent, "sim-regional.yaml", &["relocate.feature"], relocate, "failed", "lost: 1-32"),
        (CloneLosesParent, "sim-regional.yaml", &["golden.feature"], golden, "failed", "golden blocks of vm0 damaged on site b (blocks 16384..16639 zeros): the clone's data from its parent is missing there (the class of Ceph tracker 61891)"),
        (StatusAhead, "sim-regional.yaml", &["failover.feature"], failover, "failed", "which it had reported complete"),
        (StatusAhead, "sim-regional.yaml", &["relocate.feature"], relocate, "failed", "acknowledged records lost"),
        (TwoPrimaries, "sim-regional.yaml", &["failback.feature"], failback, "failed", "split brain: sites a and b are all primary"),
        (TwoPrimaries, "sim-regional.yaml", &["failover.feature"], failover, "passed", ""),
        (FencedClientWrites, "sim-metro.yaml", &["metro.feature"], "Failover with the storage fence alone", "failed", "acknowledged after the fence"),
        (FencedClientWrites, "sim-metro.yaml", &["metro.feature"], "Freeze then failover", "failed", "acknowledged after the fence"),
        (FencedClientWrites, "sim-metro.yaml", &["metro.feature"], "Metro-DR failover after a power loss", "passed", ""),
        (FaultNotApplied, "sim-regional.yaml", &["failover.feature"], failover, "failed", "\"cut the power of site a\" was not shown in effect"),
    ];
    let mut lies_seen = std::collections::BTreeSet::new();
    for (lie, e, files, scenario, want, names) in table {
        let r = drill(&env_with(dir.path(), e, Some(*lie), None), &files.iter().map(|f| feature(f)).collect::<Vec<_>>(), &[]);
        let (status, reason) = r.status_of(scenario);
        println!("{lie:?} x {scenario}: {status} {}", reason.chars().take(160).collect::<String>());
        assert_eq!(status, *want, "{lie:?} x {scenario}: {reason}\n{}", r.stdout);
        assert!(reason.contains(names), "{lie:?} x {scenario}: the failure must name {names:?}: {reason}");
        if *want == "failed" {
            lies_seen.insert(*lie);
        }
        // and the same drill on honest storage passes
        let honest = drill(&env(e), &files.iter().map(|f| feature(f)).collect::<Vec<_>>(), &[]);
        assert_eq!(honest.status_of(scenario).0, "passed", "honest storage, {scenario}:\n{}", honest.stdout);
    }
    assert_eq!(lies_seen.len(), Misbehaviour::ALL.len(), "every lie is caught by at least one drill");
}

fn batches() -> u64 {
    std::env::var("DR_DRILL_SIM_BATCHES").ok().and_then(|v| v.parse().ok()).unwrap_or(6)
}

fn run_batch(dir: &Path, b: &campaign::Batch) -> Run {
    let (e, f) = (dir.join(format!("env-{}-{}-{:?}.yaml", b.seed, b.metro, b.lie)), dir.join(format!("c-{}-{}-{:?}.feature", b.seed, b.metro, b.lie)));
    std::fs::write(&e, &b.env_yaml).unwrap();
    std::fs::write(&f, &b.feature).unwrap();
    drill(&e, &[f], &[])
}

/// Honest storage always passes within its declared bound, whatever the schedule, rate and interval.
#[test]
fn seeded_campaign_on_honest_storage_always_passes() {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let mut n = 0;
    for seed in 0..batches() {
        for metro in [false, true] {
            let b = campaign::batch(1000 + seed, metro, None, 25);
            let r = run_batch(dir.path(), &b);
            let failed: Vec<String> = r.scenarios().iter().filter(|s| s["status"] != "passed").map(|s| format!("{}: {}", s["scenario"], s["reason"])).collect();
            assert!(
                r.code == 0 && failed.is_empty() && r.scenarios().len() == b.scenarios,
                "seed {} ({}) disagrees: honest storage failed:\n{}\n{}\n{}",
                b.seed,
                if metro { "metro" } else { "regional" },
                failed.join("\n"),
                b.env_yaml,
                b.feature
            );
            n += b.scenarios;
        }
    }
    println!("seeded campaign, honest storage: {n} random scenarios passed in {:.1} s", t.elapsed().as_secs_f64());
}

/// With one lie switched on, every scenario drawn from what the lie concerns fails, for the system.
#[test]
fn seeded_campaign_catches_every_lie() {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let mut n = 0;
    for metro in [false, true] {
        for lie in campaign::lies(metro) {
            for seed in 0..batches().div_ceil(3) {
                let b = campaign::batch(2000 + seed, metro, Some(lie), 10);
                let r = run_batch(dir.path(), &b);
                assert_eq!(r.code, 1, "seed {}: {lie:?}:\n{}", b.seed, r.stdout);
                for s in r.scenarios() {
                    assert_eq!(
                        (s["status"].as_str(), s["cause"].as_str()),
                        (Some("failed"), Some("system")),
                        "seed {} disagrees: {lie:?} not caught in {}\n{}\n{}",
                        b.seed,
                        s["scenario"],
                        b.env_yaml,
                        b.feature
                    );
                }
                n += b.scenarios;
                println!("  {lie:?}, seed {}: {} scenarios caught, {:.1} s", b.seed, b.scenarios, r.secs);
            }
        }
    }
    println!("seeded campaign, lying storage: {n} random scenarios, every lie caught, in {:.1} s", t.elapsed().as_secs_f64());
}

/// A run replays from its seed: the same figures again; another seed draws other sync and boot times.
#[test]
fn a_simulated_run_replays_from_its_seed() {
    let figures = |r: &Run| -> Vec<String> {
        r.scenarios().iter().map(|s| format!("{} {} {} {}", s["recordsAcked"], s["recordsLost"], s["lossWindowMs"], s["actions"])).collect()
    };
    let f = [feature("failover.feature"), feature("failback.feature")];
    let (x, y) = (drill(&env("sim-regional.yaml"), &f, &["--seed", "42"]), drill(&env("sim-regional.yaml"), &f, &["--seed", "42"]));
    assert_eq!(figures(&x), figures(&y), "{}\n{}", x.stdout, y.stdout);
    let z = drill(&env("sim-regional.yaml"), &f, &["--seed", "43"]);
    assert_ne!(figures(&x), figures(&z));
    // a failed simulated run says how to replay it
    let dir = tempfile::tempdir().unwrap();
    let lying = drill(&env_with(dir.path(), "sim-regional.yaml", Some(Misbehaviour::PromoteRollsBack), None), &[feature("failover.feature")], &["--seed", "7"]);
    assert_eq!(lying.code, 1);
    assert!(lying.stdout.contains("seed 7: replay it with `dr-drill run --env"), "{}", lying.stdout);
}

/// `dr-drill bench` on a simulated environment prints its figures (drills in real time, the campaign's
/// rate, peak memory); the targets are read from them, not asserted on the clock here.
#[test]
fn bench_prints_the_simulated_figures() {
    let out = Command::cargo_bin("dr-drill").unwrap().args(["bench", "--env"]).arg(env("sim-metro.yaml")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for want in
        ["bench: round 1: the default drills (", "bench: seeded campaign, honest storage: 100 random scenarios passed", "bench: peak RSS of this process"]
    {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
}

/// A real run's report opens in a browser (headless Chromium, no network): every chart drew, the page
/// asked for nothing outside itself, and the screenshot is kept with the run (here under
/// target/evidence/sim-report). The control: the same page with one remote image must be caught.
/// `dr-drill report DIR` rebuilds the same page from the run's files.
#[test]
fn the_report_opens_in_a_browser_and_loads_nothing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/evidence/sim-report");
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::cargo_bin("dr-drill")
        .unwrap()
        .args(["run", "--env"])
        .arg(env("sim-regional.yaml"))
        .arg("--report-dir")
        .arg(&dir)
        .arg(feature("failover.feature"))
        .arg(feature("negative/slow-replication.feature"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    schema::check_run_folder(&dir);
    let page = dir.join("index.html");
    let text = std::fs::read_to_string(&page).unwrap();
    let charts = text.matches("<svg class=chart").count();
    assert!(charts >= 2, "{charts} charts");
    let opened = browser::open(&page, &dir.join("screenshot.png"));
    assert_eq!(opened.charts_rendered, Some(charts), "every chart drew in the browser");
    assert!(opened.page_requests.is_empty(), "the page asked for {:?}", opened.page_requests);
    let png = std::fs::metadata(&opened.screenshot).unwrap().len();
    assert!(png > 20_000, "screenshot {} is {png} bytes", opened.screenshot.display());
    println!("report {}: {charts} charts drew, no request; screenshot {} ({png} bytes)", page.display(), opened.screenshot.display());
    // the control: a page that loads one image from elsewhere is caught
    let control = dir.join("control.html");
    std::fs::write(&control, text.replace("</body>", "<img src=\"http://10.255.255.1/x.png\"></body>")).unwrap();
    let caught = browser::open(&control, &dir.join("control.png"));
    assert_eq!(caught.page_requests, ["http://10.255.255.1/x.png"], "the control's request was not seen");
    std::fs::remove_file(&control).unwrap();
    std::fs::remove_file(dir.join("control.png")).unwrap();
    // rebuilt from the run's files, the page is the same
    std::fs::remove_file(&page).unwrap();
    Command::cargo_bin("dr-drill").unwrap().arg("report").arg(&dir).assert().success();
    assert_eq!(std::fs::read_to_string(&page).unwrap(), text);
    // and a folder that is not a run's is refused, named, exit 2
    let e = Command::cargo_bin("dr-drill").unwrap().args(["report", "/nonexistent/run"]).output().unwrap();
    assert_eq!(e.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&e.stderr).contains("/nonexistent/run"), "{}", String::from_utf8_lossy(&e.stderr));
}

/// A campaign on the simulation: `--repeat 3` runs the failover three times, each in its folder, and sums
/// them up per scenario (pass rate, percentiles); `report --compare` puts two campaigns side by side.
#[test]
fn a_campaign_sums_up_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = |d: &Path, seed: &str| {
        let out = Command::cargo_bin("dr-drill")
            .unwrap()
            .args(["run", "--repeat", "3", "--seed", seed, "--env"])
            .arg(env("sim-regional.yaml"))
            .arg("--report-dir")
            .arg(d)
            .arg(feature("failover.feature"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        stdout
    };
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let stdout = campaign(&a, "7");
    campaign(&b, "8");
    for k in 1..=3 {
        schema::check_run_folder(&a.join(format!("run-{k}")));
    }
    let c: Value = serde_json::from_str(&std::fs::read_to_string(a.join("campaign.json")).unwrap()).unwrap();
    assert_eq!(c["runs"], 3);
    let sc = &c["scenarios"][0];
    assert_eq!((sc["runs"].as_u64(), sc["passed"].as_u64(), sc["passRate"].as_f64()), (Some(3), Some(3), Some(1.0)), "{sc}");
    assert_eq!(sc["lossWindowMs"]["n"], 3);
    assert!(sc["lossWindowMs"]["p50"].as_f64().unwrap() <= sc["lossWindowMs"]["max"].as_f64().unwrap());
    assert!(sc["rtoMs"].as_array().unwrap().iter().any(|x| x["segment"] == "serving" && x["p95"].is_number()), "{sc}");
    assert!(stdout.contains("3/3 passed; loss window p50/p95/max"), "{stdout}");
    assert!(std::fs::read_to_string(a.join("index.html")).unwrap().contains("3/3 (100%)"));
    let out = Command::cargo_bin("dr-drill").unwrap().args(["report", "--compare"]).arg(&a).arg(&b).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cmp = std::fs::read_to_string(a.join("compare.html")).unwrap();
    assert_eq!(cmp.matches("3/3 (100%)").count(), 2, "both campaigns side by side");
}
