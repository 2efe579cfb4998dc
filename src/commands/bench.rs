//! `dr-drill bench`: the lab's figures against its speed targets (lab-only: it measures the lab's own
//! pieces), and with `--drills` the default run and a failover scenario against theirs.

use super::{default_features, run_id, Exit, DEFAULT_TAGS};
use crate::config::EnvConfig;
use crate::env::lab::{self, mirror, vm::Mode, LabParts};
use crate::events::Bus;
use crate::ports::{DrDriver, Infrastructure, Workload};
use crate::runner::{self, RunOptions};
use crate::timeline::ActionKind;
use crate::topology::Topology;
use crate::wait;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub async fn bench(cfg: &EnvConfig, rounds: u32, drills: bool) -> anyhow::Result<Exit> {
    if matches!(cfg.spec.backend, crate::config::Backend::Sim(_)) {
        sim_figures(cfg, rounds).await?;
        return Ok(Exit::Passed);
    }
    lab_figures(cfg, rounds).await?;
    if drills {
        drill_figures(cfg).await?;
    }
    Ok(Exit::Passed)
}

/// Lab figures against the targets: bring-up (<= 30 s), boot to first ack (< 10 s), sync-barrier latency
/// for a small delta, peak RSS of the whole lab.
async fn lab_figures(cfg: &EnvConfig, rounds: u32) -> anyhow::Result<()> {
    let Some(spec) = cfg.spec.lab() else {
        anyhow::bail!("{}: bench measures the lab; this environment's backend is {}", cfg.path.display(), cfg.spec.backend_name());
    };
    lab::Assets::locate()?;
    let topology = Topology::of(cfg);
    let mut ups = vec![];
    for round in 1..=rounds.max(1) {
        let t0 = Instant::now();
        let mut parts = lab::up(cfg, spec, &topology, Bus::new()).await?;
        let up = t0.elapsed();
        let healthy = wait_healthy_and_mirroring(&parts, Duration::from_secs(120)).await;
        let healthy = match healthy {
            Ok(h) => h,
            Err(e) => {
                parts.sites.down().await;
                return Err(e);
            }
        };
        println!(
            "bench: round {round}: lab up (both OSDs serving, mirroring configured, rbd-mirror running) in {:.1}s; both sites HEALTH_OK with rbd-mirror daemon health OK at {:.1}s (target <= 30s)",
            up.as_secs_f64(),
            (up + healthy).as_secs_f64()
        );
        ups.push((up + healthy).as_secs_f64());
        if round < rounds.max(1) {
            parts.sites.down().await;
            continue;
        }
        let res = bench_vm(&mut parts, cfg).await;
        let rss = parts.sites.rss_bytes() + parts.workload.rss_bytes();
        parts.workload.shutdown().await;
        if let Ok(d) = parts.driver.mirror() {
            d.shutdown().await;
        }
        parts.sites.down().await;
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
async fn drill_figures(cfg: &EnvConfig) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let report_dir = PathBuf::from("reports").join(format!("bench-{}", run_id()));
    let res = runner::run(RunOptions {
        cfg: cfg.clone(),
        paths: default_features()?,
        tags: Some(DEFAULT_TAGS.into()),
        report_dir,
        keep: false,
        confirmed: false,
        allow_skipped: false,
        quiet: false,
    })
    .await?;
    let total = t0.elapsed().as_secs_f64();
    print!("{}", crate::report::figures(&res.scenarios));
    println!(
        "bench: default run {total:.1}s for {} scenarios ({} passed, {} failed, {} skipped) (target <= 600s)",
        res.scenarios.len(),
        res.passed,
        res.failed,
        res.skipped
    );
    let target = cfg.spec.interval().as_secs_f64() + 60.0;
    for s in res.scenarios.iter().filter(|s| s.action.as_ref().is_some_and(|a| a["kind"] == serde_json::json!(ActionKind::Failover))) {
        println!("bench: failover scenario \"{}\" {:.1}s (target <= interval + 60s = {target:.0}s)", s.scenario, s.duration_s.unwrap_or(f64::NAN));
    }
    anyhow::ensure!(res.exit_code() == 0, "the drills did not all pass: {:?}", res.harness_errors);
    Ok(())
}

/// The simulated environment's figures: the default drills (`rounds` runs) and a seeded campaign of random
/// scenarios on honest storage, in real time (the drills' own time is simulated), and the process's peak
/// memory. Targets: a drill in well under a second; a few hundred campaign scenarios within a minute.
async fn sim_figures(cfg: &EnvConfig, rounds: u32) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let quiet = |cfg: &EnvConfig, paths: Vec<PathBuf>, tags: Option<String>, report_dir: PathBuf| RunOptions {
        cfg: cfg.clone(),
        paths,
        tags,
        report_dir,
        keep: false,
        confirmed: false,
        allow_skipped: false,
        quiet: true,
    };
    for round in 1..=rounds.max(1) {
        let t0 = Instant::now();
        let res = runner::run(quiet(cfg, default_features()?, Some(DEFAULT_TAGS.into()), dir.path().join(format!("drills-{round}")))).await?;
        let real = t0.elapsed().as_secs_f64();
        let simulated: f64 = res.scenarios.iter().filter_map(|s| s.duration_s).sum();
        anyhow::ensure!(res.exit_code() == 0, "the drills did not all pass on {}", cfg.spec.name);
        println!(
            "bench: round {round}: the default drills ({} passed) in {real:.2} s of real time for {simulated:.0} s simulated: {:.3} s a drill (target < 1 s), {:.0}x real time",
            res.passed,
            real / res.passed.max(1) as f64,
            simulated / real.max(1e-9)
        );
    }
    let metro = cfg.spec.metro().is_some();
    let (t0, mut n) = (Instant::now(), 0);
    for seed in 0..4 {
        let b = crate::env::sim::campaign::batch(1000 + seed, metro, None, 25);
        let (e, f) = (dir.path().join(format!("campaign-{seed}.yaml")), dir.path().join(format!("campaign-{seed}.feature")));
        std::fs::write(&e, &b.env_yaml)?;
        std::fs::write(&f, &b.feature)?;
        let res = runner::run(quiet(&crate::config::load(&e)?, vec![f], None, dir.path().join(format!("campaign-{seed}")))).await?;
        anyhow::ensure!(res.exit_code() == 0 && res.passed == b.scenarios, "campaign seed {} disagrees: honest storage failed (replay: tests/sim.rs)", b.seed);
        n += b.scenarios;
    }
    let real = t0.elapsed().as_secs_f64();
    println!(
        "bench: seeded campaign, honest storage: {n} random scenarios passed in {real:.2} s ({:.0} scenarios/s; target: a few hundred within a minute)",
        n as f64 / real
    );
    println!("bench: peak RSS of this process: {} MiB", crate::procs::hwm(std::process::id() as i32) >> 20);
    Ok(())
}

/// Both sites' `ceph health` is HEALTH_OK and `rbd mirror pool status` reports daemon health OK. Pure.
fn healthy_and_mirroring(health: &str, mirror: &str) -> bool {
    health.trim() == "HEALTH_OK" && mirror.contains("daemon health: OK")
}

async fn wait_healthy_and_mirroring(parts: &LabParts, deadline: Duration) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let check = || async {
        let mut ok = true;
        for s in &parts.sites.sites {
            let h = s.cli_within("ceph", &["health"], Duration::from_secs(5)).await.unwrap_or_default();
            let m = s.cli_within("rbd", &["mirror", "pool", "status", "rbd"], Duration::from_secs(5)).await.unwrap_or_default();
            ok &= healthy_and_mirroring(&h, &m);
        }
        Ok::<_, anyhow::Error>(ok.then_some(()))
    };
    wait::until("both sites healthy and mirroring", deadline, check, wait::every(Duration::from_millis(500))).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(t0.elapsed())
}

async fn bench_vm(parts: &mut LabParts, cfg: &EnvConfig) -> anyhow::Result<()> {
    let spec = cfg.spec.lab().expect("bench runs on the lab");
    let rate = cfg.spec.vm.write_rate;
    let t = Instant::now();
    let site = Topology::of(cfg).sites().next().expect("a lab has sites").to_string();
    let peer = Topology::of(cfg).peer_of(&site)?;
    let driver = parts.driver.mirror()?;
    let volume = driver.provision("bench", &site).await?;
    println!("bench: new mirrored image replicated to the peer (first snapshot complete) in {:.1}s", t.elapsed().as_secs_f64());
    driver.stop_scheduler("bench")?;
    parts.workload.start_stopped("bench", rate);
    let t0 = Instant::now();
    parts.workload.boot("bench", &site, &volume, Mode::Write, spec.disk_records() + 1).await?;
    let p = parts.workload.running("bench")?;
    p.wait_for("the first ack", Duration::from_secs(60), |g| g.acks.first().map(|_| ())).await?;
    println!("bench: VM boot to first acknowledged record: {:.2}s (target < 10s)", t0.elapsed().as_secs_f64());
    p.wait_for("200 acks", Duration::from_secs(60), |g| (g.acks.len() >= 200).then_some(())).await?;
    let log = p.snapshot();
    let gaps: Vec<f64> = log.acks.windows(2).map(|w| w[1].1.since(w[0].1).as_secs_f64() * 1e3).collect();
    let max_gap = gaps.iter().cloned().fold(0.0, f64::max);
    let measured = (log.acks.len() - 1) as f64 / log.acks.last().expect("200 acks").1.since(log.acks[0].1).as_secs_f64();
    println!("bench: probe write rate {measured:.1}/s (configured {rate}), max gap between acks {max_gap:.0} ms");
    // How late the witness can learn of a durable record: the port's round trip bounds the one-way delay
    // from the probe's ack to the witness's stamp, i.e. the error of every loss-window figure.
    let mut rtt = vec![];
    for n in 0..50 {
        rtt.push(p.ping(n).await?.as_secs_f64() * 1e3);
    }
    rtt.sort_by(|a, b| a.total_cmp(b));
    let period = 1e3 / rate as f64;
    println!(
        "bench: probe port round trip (ping -> PONG) over 50 pings while writing: median {:.2} ms, max {:.2} ms; one write period is {period:.0} ms",
        rtt[25], rtt[49]
    );
    let driver = parts.driver.mirror()?;
    let (primary, peer) = (driver.site(&site)?.clone(), driver.site(&peer)?.clone());
    let mut lat = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        let id = mirror::take_snapshot(&primary, &volume.name).await?;
        mirror::wait_synced(&peer, &volume.name, id, Duration::from_secs(60)).await?;
        lat.push(t.elapsed().as_secs_f64());
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "bench: sync barrier for a small delta (mirror snapshot taken -> complete on the peer), 5 runs: min {:.2}s, median {:.2}s, max {:.2}s",
        lat[0], lat[2], lat[4]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn healthy_means_health_ok_and_the_mirror_daemon_ok() {
        assert!(super::healthy_and_mirroring("HEALTH_OK\n", "health: OK\ndaemon health: OK\nimage health: OK"));
        assert!(!super::healthy_and_mirroring("HEALTH_WARN 1 pool", "daemon health: OK"));
        assert!(!super::healthy_and_mirroring("HEALTH_OK", "daemon health: UNKNOWN"));
    }
}
