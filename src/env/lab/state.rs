//! A lab that outlives the command that made it: `env up` writes its state file, `env status` reads it,
//! `env down` removes exactly what it lists.

use super::{runs_dir, LabSites};
use crate::config::{EnvConfig, LabSpec};
use crate::error::EnvError;
use crate::events::Bus;
use crate::procs;
use crate::topology::Topology;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// What `env up` leaves on disk so that `env status` and `env down` find the lab again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabState {
    pub env: String,
    pub id: String,
    pub root: PathBuf,
    pub owner_pid: u32,
    pub netns: Vec<String>,
    /// (site, daemon, pid)
    pub daemons: Vec<(String, String, i32)>,
    pub replication: String,
}

fn state_file(cfg: &EnvConfig) -> PathBuf {
    runs_dir().join(format!("{}.state.json", cfg.spec.name))
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> EnvError {
    move |source| EnvError::Io { what, source }
}

fn read_state(cfg: &EnvConfig) -> Result<Option<LabState>, EnvError> {
    let p = state_file(cfg);
    if !p.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).map_err(io(format!("read {}", p.display())))?;
    serde_json::from_str(&text).map(Some).map_err(|e| EnvError::Usage(format!("failed to parse {}: {e}", p.display())))
}

fn daemon_comm(name: &str) -> &'static str {
    match name {
        "rbd-mirror" => "rbd-mirror",
        n if n.starts_with("mon") => "ceph-mon",
        n if n.starts_with("mgr") => "ceph-mgr",
        n if n.starts_with("osd") => "ceph-osd",
        _ => "qemu-system-x86_64",
    }
}

pub async fn up(cfg: &EnvConfig, spec: &LabSpec) -> Result<Vec<String>, EnvError> {
    if let Some(s) = read_state(cfg)? {
        if s.daemons.iter().any(|(_, d, pid)| procs::pid_is(*pid, daemon_comm(d))) {
            return Ok(vec![format!("environment {} is already up (lab {} in {})", cfg.spec.name, s.id, s.root.display())]);
        }
    }
    procs::set_detached(true);
    let parts = super::up(cfg, spec, &Topology::of(cfg), Bus::new()).await?;
    let lab: &LabSites = &parts.sites;
    let state = lab.state(cfg.replication_summary());
    std::fs::create_dir_all(runs_dir()).map_err(io(format!("create {}", runs_dir().display())))?;
    let text = serde_json::to_string_pretty(&state).map_err(|e| EnvError::Usage(e.to_string()))?;
    std::fs::write(state_file(cfg), text).map_err(io(format!("write {}", state_file(cfg).display())))?;
    // The lab now outlives this command on purpose; `env down` removes it.
    procs::forget_all();
    let mut out = vec![
        format!("environment {} up in {:.1}s: lab {} in {}", cfg.spec.name, lab.up_time.as_secs_f64(), lab.id, lab.root.display()),
        format!("replication: {}", cfg.replication_summary()),
    ];
    for s in &lab.sites {
        out.push(format!(
            "site {}: namespace {}, address {}, daemons {}",
            s.name,
            s.ns,
            s.ip,
            s.daemons.iter().map(|d| format!("{}({})", d.name, d.pid)).collect::<Vec<_>>().join(" ")
        ));
    }
    out.push(format!("tear down with: dr-drill env down --env {}", cfg.path.display()));
    Ok(out)
}

pub async fn down(cfg: &EnvConfig) -> Result<Vec<String>, EnvError> {
    let Some(s) = read_state(cfg)? else {
        return Ok(vec![format!("environment {} is not up: nothing to do", cfg.spec.name)]);
    };
    let mut out = vec![];
    let mut stopped = vec![];
    for (site, d, pid) in &s.daemons {
        if procs::pid_is(*pid, daemon_comm(d)) {
            // SAFETY: kill(2) on a daemon `env up` started, checked by its command name.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
            out.push(format!("stopped {d} of site {site} (pid {pid})"));
            stopped.push((*pid, d.clone()));
        }
    }
    for ns in &s.netns {
        for pid in procs::netns_pids(ns) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = tokio::process::Command::new("ip").args(["netns", "del", ns]).status().await;
        out.push(format!("deleted namespace {ns}"));
    }
    // `env down` returns once every process it stopped is gone (reaped by init: they are not ours), so
    // that their files are released before the directory goes
    let gone = || async { Ok::<_, EnvError>(stopped.iter().all(|(pid, d)| !procs::pid_is(*pid, daemon_comm(d))).then_some(())) };
    crate::wait::until(
        "the stopped daemons to be gone",
        cfg.spec.budgets.deadline(crate::config::Budget::Command),
        gone,
        crate::wait::every(Duration::from_millis(100)),
    )
    .await
    .map_err(|e| crate::error::from_wait("all", crate::error::Cause::Harness, e))?;
    let _ = std::fs::remove_dir_all(&s.root);
    let _ = std::fs::remove_dir_all(procs::claims_dir().join(&s.id));
    std::fs::remove_file(state_file(cfg)).map_err(io(format!("remove {}", state_file(cfg).display())))?;
    out.push(format!("environment {} is down", cfg.spec.name));
    Ok(out)
}

pub async fn status(cfg: &EnvConfig) -> Result<Vec<String>, EnvError> {
    let mut out = vec![
        format!("environment {} ({}), backend {}", cfg.spec.name, cfg.path.display(), cfg.spec.backend_name()),
        format!("replication: {}", cfg.replication_summary()),
    ];
    let Some(s) = read_state(cfg)? else {
        out.push("state: down".into());
        return Ok(out);
    };
    out.push(format!("state: up (lab {} in {})", s.id, s.root.display()));
    for (i, name) in cfg.site_names().iter().enumerate() {
        let daemons: Vec<String> = s
            .daemons
            .iter()
            .filter(|d| &d.0 == name)
            .map(|(_, d, pid)| format!("{d}({pid}, {})", if procs::pid_is(*pid, daemon_comm(d)) { "running" } else { "gone" }))
            .collect();
        let site = super::site::SiteRef {
            name: name.clone(),
            ns: s.netns[i].clone(),
            ip: String::new(),
            dir: s.root.join(name),
            cmd_deadline: Duration::from_secs(5),
        };
        let health =
            site.cli_within("ceph", &["health"], Duration::from_secs(5)).await.map(|h| h.trim().to_string()).unwrap_or_else(|e| format!("unreachable ({e})"));
        let mirror = site
            .cli_within("rbd", &["mirror", "pool", "status", "rbd"], Duration::from_secs(5))
            .await
            .map(|m| m.lines().map(str::trim).collect::<Vec<_>>().join("; "))
            .unwrap_or_else(|e| format!("unknown ({e})"));
        out.push(format!("site {name}: {health}; daemons {}; mirroring: {mirror}", daemons.join(" ")));
    }
    Ok(out)
}
