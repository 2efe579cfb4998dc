//! Processes and namespaces the harness made, and the one place that undoes them.
//!
//! Every daemon, QEMU and command is a direct child of the harness (started through `ip netns exec`, which
//! execs, so the PID we hold is the daemon's) with `PR_SET_PDEATHSIG=SIGKILL`, so a harness that dies
//! takes its children with it. The registry below is what the Ctrl-C/SIGTERM handler and the panic hook
//! tear down: processes by PID, then network namespaces, then run directories (unless kept on purpose).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

#[derive(Default)]
struct Registry {
    pids: BTreeSet<i32>,
    netns: BTreeSet<String>,
    dirs: BTreeSet<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { pids: BTreeSet::new(), netns: BTreeSet::new(), dirs: BTreeSet::new() });

fn reg() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn track_pid(pid: i32) {
    reg().pids.insert(pid);
}
pub fn untrack_pid(pid: i32) {
    reg().pids.remove(&pid);
}
pub fn track_netns(name: &str) {
    reg().netns.insert(name.to_string());
}
pub fn untrack_netns(name: &str) {
    reg().netns.remove(name);
}
pub fn track_dir(p: &Path) {
    reg().dirs.insert(p.to_path_buf());
}
pub fn untrack_dir(p: &Path) {
    reg().dirs.remove(p);
}
static DETACHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `env up`: daemons outlive this process (no parent-death signal, not killed when their handle drops);
/// `env down` finds them again through the lab's state file.
pub fn set_detached(d: bool) {
    DETACHED.store(d, std::sync::atomic::Ordering::SeqCst);
}
pub fn detached() -> bool {
    DETACHED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Stops tracking everything: what the harness made is kept on purpose (`env up` hands the lab to its
/// state file; `--keep` leaves it where it is), so no cleanup, emergency or not, removes it.
pub fn forget_all() {
    let mut r = reg();
    r.pids.clear();
    r.netns.clear();
    r.dirs.clear();
}

/// Kills by PID every process the harness started and still tracks, deletes its namespaces and run
/// directories. Synchronous and idempotent: safe from a signal handler task or the panic hook.
pub fn emergency_cleanup() -> Vec<String> {
    let mut r = reg();
    let mut done = vec![];
    for pid in std::mem::take(&mut r.pids) {
        // SAFETY: kill(2) on a PID we started.
        if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
            done.push(format!("killed pid {pid}"));
        }
    }
    for ns in std::mem::take(&mut r.netns) {
        for pid in netns_pids(&ns) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = std::process::Command::new("ip").args(["netns", "del", &ns]).stderr(Stdio::null()).status();
        done.push(format!("deleted netns {ns}"));
    }
    for d in std::mem::take(&mut r.dirs) {
        if std::fs::remove_dir_all(&d).is_ok() {
            done.push(format!("removed {}", d.display()));
        }
    }
    done
}

/// PIDs of the processes inside a namespace we made (`ip netns pids`).
pub fn netns_pids(ns: &str) -> Vec<i32> {
    std::process::Command::new("ip")
        .args(["netns", "pids", ns])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

/// A command prepared to run inside a site's namespace as a direct child of the harness.
pub fn in_netns(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c.stdin(Stdio::null());
    if !detached() {
        c.kill_on_drop(true);
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    c
}

/// A long-running child (daemon or QEMU) that the harness waits on.
pub struct Daemon {
    pub name: String,
    pub child: Child,
    pub pid: i32,
    pub log: PathBuf,
}

impl Daemon {
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> std::io::Result<Daemon> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        cmd.stdout(f.try_clone()?).stderr(f);
        let child = cmd.spawn()?;
        let pid = child.id().map(|p| p as i32).unwrap_or(-1);
        // Tracked even when detached: an `env up` interrupted half-way must not leave daemons behind.
        track_pid(pid);
        Ok(Daemon { name: name.to_string(), child, pid, log: log.to_path_buf() })
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `sig` to the daemon (SIGSTOP / SIGCONT: freeze and thaw). Only to a child still running.
    pub fn signal(&mut self, sig: i32) {
        if self.alive() {
            unsafe { libc::kill(self.pid, sig) };
        }
    }

    /// SIGKILL now (power loss); reaps the child.
    pub async fn kill(&mut self) {
        if self.alive() {
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        let _ = self.child.wait().await;
        untrack_pid(self.pid);
    }

    /// SIGTERM, then SIGKILL after `grace` (ceph-osd may ignore SIGTERM for seconds).
    pub async fn stop(&mut self, grace: Duration) {
        if self.alive() {
            unsafe { libc::kill(self.pid, libc::SIGTERM) };
            if tokio::time::timeout(grace, self.child.wait()).await.is_err() {
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
            }
        }
        let _ = self.child.wait().await;
        untrack_pid(self.pid);
    }

    /// Waits for the process to exit by itself, up to a deadline. Returns false on timeout.
    pub async fn wait_exit(&mut self, deadline: Duration) -> bool {
        let ok = tokio::time::timeout(deadline, self.child.wait()).await.is_ok();
        if ok {
            untrack_pid(self.pid);
        }
        ok
    }

    /// The last lines of the daemon's log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log, n)
    }
}

pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Output of a finished command.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub ok: bool,
}

/// Runs a command to completion with a deadline (a command against a dead site otherwise hangs ~300 s).
/// On timeout the child is killed (kill_on_drop) and `Err` names what timed out.
pub async fn run(mut cmd: Command, deadline: Duration, what: &str) -> Result<Output, String> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| format!("failed to start {what}: {e}"))?;
    let pid = child.id().map(|p| p as i32).unwrap_or(-1);
    track_pid(pid);
    let t0 = Instant::now();
    let res = tokio::time::timeout(deadline, child.wait_with_output()).await;
    untrack_pid(pid);
    tracing::debug!(ms = t0.elapsed().as_millis() as u64, ok = matches!(&res, Ok(Ok(o)) if o.status.success()), "{what}");
    match res {
        Err(_) => Err(format!("{what} did not finish within {:.0?}", t0.elapsed())),
        Ok(Err(e)) => Err(format!("failed to run {what}: {e}")),
        Ok(Ok(o)) => Ok(Output {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            ok: o.status.success(),
        }),
    }
}

/// Where each lab claims its id for the life of the process that made it (`<id>/owner`: that process's
/// PID and start time; `<id>/root`: its run directory), so that another run, started at the same time,
/// never takes it for what a killed harness left.
pub fn claims_dir() -> PathBuf {
    PathBuf::from(std::env::var("DR_DRILL_CLAIMS_DIR").unwrap_or_else(|_| "/run/dr-drill/labs".into()))
}

/// A process's start time (clock ticks since boot, `/proc/<pid>/stat` field 22): with its PID, who it is.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.get(stat.rfind(')')? + 1..)?.split_whitespace().nth(19)?.parse().ok()
}

/// Claims lab `id` (its run directory `root`) for this process, before any namespace of it exists. The
/// claim is tracked like a run directory: removed with the lab, kept with it.
pub fn claim(id: &str, root: &Path) -> std::io::Result<()> {
    let d = claims_dir().join(id);
    std::fs::create_dir_all(&d)?;
    let me = std::process::id() as i32;
    std::fs::write(d.join("owner"), format!("{me} {}\n", start_time(me).unwrap_or(0)))?;
    std::fs::write(d.join("root"), root.as_os_str().as_encoded_bytes())?;
    track_dir(&d);
    Ok(())
}

/// Is lab `id` claimed by a process that is still alive (the same process: PID and start time)?
fn claimed_by_live(id: &str) -> bool {
    let Ok(owner) = std::fs::read_to_string(claims_dir().join(id).join("owner")) else { return false };
    let mut w = owner.split_whitespace().map(|x| x.parse::<u64>().ok());
    match (w.next().flatten(), w.next().flatten()) {
        (Some(pid), Some(start)) => start_time(pid as i32) == Some(start),
        _ => false,
    }
}

/// The lab id of namespace `drd-<id>-<site>`.
fn lab_id(ns: &str) -> Option<&str> {
    ns.strip_prefix("drd-")?.split('-').next()
}

/// Removes what earlier labs left when their harness was killed outright (its daemons died with it
/// through the parent-death signal): namespaces (`drd-*`) that hold no process and whose lab no live
/// process claims, then the run directories and claims of those labs. A lab kept by `env up` or `--keep`
/// still has its daemons and is left alone; so is a lab another run is making right now (it claimed it).
pub fn reap_stale_netns() -> Vec<String> {
    let out = std::process::Command::new("ip").args(["netns", "list"]).output();
    let Ok(out) = out else { return vec![] };
    let mut gone = vec![];
    let mut busy = BTreeSet::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(ns) = l.split_whitespace().next() else { continue };
        let Some(id) = lab_id(ns) else { continue };
        if reg().netns.contains(ns) || claimed_by_live(id) || !netns_pids(ns).is_empty() {
            busy.insert(id.to_string());
            continue;
        }
        let _ = std::process::Command::new("ip").args(["netns", "del", ns]).status();
        gone.push(format!("namespace {ns}"));
    }
    // the claims of labs whose owner is gone and whose namespaces are all gone: their run directory too
    for e in std::fs::read_dir(claims_dir()).into_iter().flatten().flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        if busy.contains(&id) || claimed_by_live(&id) || reg().dirs.contains(&e.path()) {
            continue;
        }
        if let Ok(root) = std::fs::read_to_string(e.path().join("root")) {
            let root = PathBuf::from(root.trim());
            if root.is_dir() && std::fs::remove_dir_all(&root).is_ok() {
                gone.push(format!("run directory {}", root.display()));
            }
        }
        let _ = std::fs::remove_dir_all(e.path());
    }
    gone
}

/// True if `pid` is alive and its command name is `comm` (guards against a recycled PID).
pub fn pid_is(pid: i32, comm: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| comm.starts_with(c.trim())).unwrap_or(false)
}

/// VmHWM (peak RSS) of a process, in bytes (0 if it is gone).
pub fn hwm(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
