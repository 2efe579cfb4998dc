//! RBD snapshot mirroring between the two sites: pool and peers, the rbd-mirror daemons, mirror snapshots,
//! the sync barrier, promote and demote, the mirror-snapshot scheduler, and the DR driver over all of it.

use super::site::{Site, SiteRef};
use crate::clock::Wt;
use crate::config::{Budget, Budgets, EnvConfig, Regional, Scheduler};
use crate::error::{from_wait, Cause, EnvError};
use crate::events::{Bus, Event};
use crate::golden::GoldenLayout;
use crate::oracle::{Checkpoint, SyncSample};
use crate::ports::{DrDriver, DriverReport, Marker, Promise, Role, SiteRole, Volume};
use crate::timeline::Segment;
use crate::topology::Topology;
use crate::wait;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Pool `rbd` on both sites, image-mode mirroring, peers bootstrapped both ways (rx-tx), an rbd-mirror daemon
/// per site, and Ceph's own schedule when the environment asks for it.
pub async fn setup(sites: &mut [Site], cfg: &EnvConfig) -> Result<(), EnvError> {
    let Some(regional) = cfg.spec.regional() else { return Ok(()) };
    let (sa, sb) = sites.split_at_mut(1);
    let pool = |s: &Site| {
        let s = s.r.clone();
        async move {
            s.cli("ceph", &["osd", "pool", "create", "rbd", "8", "8"]).await?;
            s.cli("rbd", &["pool", "init", "rbd"]).await?;
            s.cli("rbd", &["mirror", "pool", "enable", "rbd", "image"]).await?;
            s.cli("ceph", &["auth", "get-or-create", &format!("client.rbd-mirror.{}", s.name), "mon", "profile rbd-mirror", "osd", "profile rbd"]).await
        }
    };
    let (ka, kb) = tokio::join!(pool(&sa[0]), pool(&sb[0]));
    for (s, k) in [(&sa[0], ka?), (&sb[0], kb?)] {
        std::fs::write(s.dir.join("rbd-mirror.keyring"), k).map_err(|e| s.err("write the rbd-mirror keyring", e.to_string()))?;
    }
    let (a, b) = (&mut sa[0], &mut sb[0]);
    let token = a.cli("rbd", &["mirror", "pool", "peer", "bootstrap", "create", "--site-name", &a.name.clone(), "rbd"]).await?;
    let token_file = b.dir.join("peer-token");
    std::fs::write(&token_file, token.trim()).map_err(|e| b.err("write the peer token", e.to_string()))?;
    b.cli(
        "rbd",
        &["mirror", "pool", "peer", "bootstrap", "import", "--site-name", &b.name.clone(), "--direction", "rx-tx", "rbd", &token_file.display().to_string()],
    )
    .await?;
    a.start_rbd_mirror()?;
    b.start_rbd_mirror()?;
    if regional.scheduler == Scheduler::Ceph {
        let every = format!("{}m", regional.interval.0.as_secs() / 60);
        for s in [&*a, &*b] {
            s.cli("rbd", &["mirror", "snapshot", "schedule", "add", "--pool", "rbd", &every]).await?;
        }
    }
    Ok(())
}

#[derive(Clone, Debug, Deserialize)]
pub struct SnapEntry {
    pub id: u64,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub namespace: SnapNamespace,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SnapNamespace {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub complete: bool,
    #[serde(default)]
    pub primary_snap_id: Option<u64>,
}

impl SnapEntry {
    pub fn is_mirror(&self) -> bool {
        self.namespace.kind == "mirror"
    }
    /// A snapshot the image's primary took (including the demotion snapshot).
    pub fn is_primary(&self) -> bool {
        self.is_mirror() && !self.namespace.state.contains("non-primary") && self.namespace.primary_snap_id.is_none()
    }
}

/// Parses `rbd snap ls --all --format json`. Pure.
pub fn parse_snaps(json: &str) -> Result<Vec<SnapEntry>, String> {
    serde_json::from_str(json).map_err(|e| format!("unreadable snapshot list: {e}"))
}

/// Primary snapshot ids that are complete on this (non-primary) site. Pure.
pub fn completed_on_peer(snaps: &[SnapEntry]) -> Vec<u64> {
    snaps.iter().filter(|s| s.is_mirror() && s.namespace.complete).filter_map(|s| s.namespace.primary_snap_id).collect()
}

pub async fn snaps(s: &SiteRef, image: &str) -> Result<Vec<SnapEntry>, EnvError> {
    snaps_within(s, image, s.cmd_deadline).await
}

/// The snapshot listing, given up after `deadline` (a peer that is down answers nothing).
pub async fn snaps_within(s: &SiteRef, image: &str, deadline: Duration) -> Result<Vec<SnapEntry>, EnvError> {
    let out = s.cli_within("rbd", &["snap", "ls", "--all", "--format", "json", &format!("rbd/{image}")], deadline).await?;
    parse_snaps(&out).map_err(|e| s.err(&format!("list snapshots of {image}"), e))
}

pub async fn newest_primary_snap(s: &SiteRef, image: &str) -> Result<Option<u64>, EnvError> {
    Ok(snaps(s, image).await?.iter().filter(|x| x.is_primary()).map(|x| x.id).max())
}

/// Is the image primary on this site, by the site's own view (`rbd info`: `mirroring.primary`)? Pure.
pub fn parse_primary(info_json: &str) -> Result<bool, String> {
    let v: serde_json::Value = serde_json::from_str(info_json).map_err(|e| format!("unreadable rbd info: {e}"))?;
    v["mirroring"]["primary"].as_bool().ok_or_else(|| format!("rbd info shows no mirroring.primary: {v}"))
}

/// The image's mirroring state on this site (`rbd mirror image status`: `up+replaying`, `up+stopped`,
/// `up+error`, ...). Pure.
pub fn parse_mirror_state(status_json: &str) -> Result<(String, String), String> {
    let v: serde_json::Value = serde_json::from_str(status_json).map_err(|e| format!("unreadable mirror image status: {e}"))?;
    let state = v["state"].as_str().ok_or_else(|| format!("mirror image status shows no state: {v}"))?;
    Ok((state.to_string(), v["description"].as_str().unwrap_or("").to_string()))
}

/// The site's own view of the image: primary or not.
pub async fn is_primary(s: &SiteRef, image: &str, deadline: Duration) -> Result<bool, EnvError> {
    let out = s.cli_within("rbd", &["info", "--format", "json", &format!("rbd/{image}")], deadline).await?;
    parse_primary(&out).map_err(|e| s.err(&format!("read the mirroring role of {image}"), e))
}

/// The image's mirroring state on this site, and its description.
pub async fn mirror_state(s: &SiteRef, image: &str, deadline: Duration) -> Result<(String, String), EnvError> {
    let out = s.cli_within("rbd", &["mirror", "image", "status", "--format", "json", &format!("rbd/{image}")], deadline).await?;
    parse_mirror_state(&out).map_err(|e| s.err(&format!("read the mirror status of {image}"), e))
}

/// Takes a mirror snapshot on the primary and returns its id.
pub async fn take_snapshot(s: &SiteRef, image: &str) -> Result<u64, EnvError> {
    let out = s.cli("rbd", &["mirror", "image", "snapshot", &format!("rbd/{image}")]).await?;
    out.split_whitespace()
        .last()
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| s.err(&format!("take a mirror snapshot of {image}"), format!("unexpected output {out:?}")))
}

/// The sync barrier's condition: primary snapshot `id` is complete in this (peer's) listing. Pure.
pub fn synced(id: u64) -> impl Fn(&[SnapEntry]) -> bool {
    move |list| completed_on_peer(list).contains(&id)
}

/// The sync barrier: waits until primary snapshot `id` is complete on `peer`. Returns how long it took.
/// Replication that does not arrive in time is the system's failure.
pub async fn wait_synced(peer: &SiteRef, image: &str, id: u64, deadline: impl Into<wait::Deadline>) -> Result<Duration, EnvError> {
    let t0 = Instant::now();
    let done = synced(id);
    let check = || async { Ok::<_, EnvError>(snaps(peer, image).await.ok().filter(|l| done(l)).map(|_| ())) };
    wait::until(format!("mirror snapshot {id} of {image} to complete"), deadline, check, wait::every(Duration::from_millis(100)))
        .await
        .map_err(|e| from_wait(&peer.name, Cause::System, e))?;
    Ok(t0.elapsed())
}

/// One mirror snapshot as the witness saw it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SnapRecord {
    pub id: u64,
    /// The primary site that took it: ids of the two clusters advance together, so a snapshot is known by
    /// (site, id) only.
    pub site: String,
    /// Never earlier than when the harness asked for it (harness scheduler) and never later than Ceph's own
    /// timestamp (Ceph's schedule: that timestamp, truncated to the second).
    pub started: Wt,
    /// When the witness first saw it complete on the peer (the start of the listing that showed it).
    pub completed: Option<Wt>,
    /// Taken before the scheduler started watching (its sync time was not measured).
    pub preexisting: bool,
    /// Found complete on the survivor after the fault, its completion not timed by the witness.
    #[serde(default)]
    pub untimed: bool,
    /// Harness scheduler: how much later than planned it asked for this snapshot (a loaded host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<Duration>,
}

impl SnapRecord {
    pub fn name(&self) -> String {
        format!("{}/{}", self.site, self.id)
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SnapLog {
    pub snaps: Vec<SnapRecord>,
    /// (site, when) of a snapshot command still running: a snapshot Ceph made for it that the witness
    /// never heard of (the command was cut off) started no earlier than that.
    pub asking: Option<(String, Wt)>,
    /// Snapshot commands and listings that failed (reported with the verdict).
    pub errors: Vec<String>,
}

impl SnapLog {
    pub fn get(&self, site: &str, id: u64) -> Option<&SnapRecord> {
        self.snaps.iter().find(|s| s.site == site && s.id == id)
    }

    pub fn record(&mut self, r: SnapRecord) -> bool {
        if self.get(&r.site, r.id).is_some() {
            return false;
        }
        self.snaps.push(r);
        true
    }

    /// Marks the snapshots of `site` whose ids `done` lists as complete at `at`; returns the ids newly marked.
    pub fn complete(&mut self, site: &str, done: &[u64], at: Wt) -> Vec<u64> {
        let mut v = vec![];
        for s in self.snaps.iter_mut().filter(|s| s.site == site && s.completed.is_none() && done.contains(&s.id)) {
            s.completed = Some(at);
            v.push(s.id);
        }
        v
    }

    /// The checkpoint the survivor holds when snapshot `id` of `site` is the newest complete there: its start
    /// as logged, or, if the witness never logged it (a snapshot command that failed after Ceph made it),
    /// the start of the newest logged snapshot of that site before it, which is earlier than the truth and
    /// so only weakens what must survive; the name says so.
    pub fn checkpoint(&self, site: &str, id: u64) -> Option<Checkpoint> {
        if let Some(r) = self.get(site, id) {
            return Some(Checkpoint { name: r.name(), started: r.started });
        }
        // Only with a baseline (the snapshots the site had when the scheduler started, e.g. the promotion
        // snapshot) is "newer than everything logged" the same as "made for the command still running".
        let baseline = self.snaps.iter().any(|s| s.site == site && s.preexisting);
        let newest_logged = self.snaps.iter().filter(|s| s.site == site).map(|s| s.id).max().unwrap_or(0);
        if let Some((_, asked)) = self.asking.as_ref().filter(|(s, _)| s == site && id > newest_logged && baseline) {
            // newer than everything logged: made for the command that was still running
            return Some(Checkpoint { name: format!("{site}/{id} (its snapshot command was cut off; start = when it was asked)"), started: *asked });
        }
        let older = self.snaps.iter().filter(|s| s.site == site && s.id < id).max_by_key(|s| s.id)?;
        Some(Checkpoint { name: format!("{site}/{id} (not logged; start of {} used)", older.name()), started: older.started })
    }

    /// How many snapshots the witness saw complete, and the scheduler's errors (a driver's facts).
    pub fn summary(&self) -> (usize, Vec<String>) {
        (self.snaps.iter().filter(|s| s.completed.is_some()).count(), self.errors.clone())
    }

    /// The first snapshot of `site` taken at or after `since` that the witness saw complete on the peer.
    pub fn replicated_since(&self, site: &str, since: Wt) -> Option<&SnapRecord> {
        self.snaps.iter().filter(|s| s.site == site && !s.preexisting && s.started >= since && s.completed.is_some()).min_by_key(|s| s.id)
    }

    /// Snapshots of `site` that `done` lists as complete but the witness had not seen complete (it stopped
    /// watching at the fault): complete, untimed.
    pub fn complete_untimed(&mut self, site: &str, done: &[u64]) {
        for s in self.snaps.iter_mut().filter(|s| s.site == site && s.completed.is_none() && done.contains(&s.id)) {
            s.untimed = true;
        }
    }

    /// The replication rounds of `site` since `since` (when it last became primary) measured by the
    /// witness, for the oracle to judge.
    pub fn syncs(&self, site: &str, since: Wt) -> Vec<SyncSample> {
        self.snaps
            .iter()
            .filter(|s| s.site == site && !s.preexisting && s.started >= since)
            .map(|s| SyncSample { untimed: s.untimed, late_ms: s.late.map(|l| l.as_secs_f64() * 1e3), ..SyncSample::new(s.name(), s.started, s.completed) })
            .collect()
    }
}

/// Parses Ceph's snapshot timestamp ("Wed Nov 25 20:10:00 2026") into Unix seconds. The rbd CLI prints
/// local time: every Ceph tool the lab runs gets `TZ=UTC` (see `Site::tool`), so this reads UTC.
pub fn parse_ceph_timestamp(ts: &str) -> Option<f64> {
    let w: Vec<&str> = ts.split_whitespace().collect();
    let [_, mon, day, hms, year] = w.as_slice() else { return None };
    let m = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|x| x == mon)? as i64 + 1;
    let (d, y): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let t: Vec<i64> = hms.split(':').filter_map(|x| x.parse().ok()).collect();
    if t.len() != 3 {
        return None;
    }
    Some(crate::clock::unix_from_civil(y, m, d, t[0], t[1], t[2] as f64))
}

/// The next round of a harness schedule after `now` (within one interval): rounds fall on multiples of the
/// interval from one origin shared by every image of the run, as Ceph's own schedule aligns every image
/// with the same interval on the clock, so an application's images are snapshotted in the same round.
pub fn next_round(now: tokio::time::Instant, interval: Duration) -> tokio::time::Instant {
    static ORIGIN: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(|| now);
    aligned(origin, now, interval)
}

/// The first instant at or after `t` that is `origin` plus a whole number of `interval`s. Pure.
pub fn aligned(origin: tokio::time::Instant, t: tokio::time::Instant, interval: Duration) -> tokio::time::Instant {
    if interval.is_zero() || t <= origin {
        return origin.max(t);
    }
    let since = t - origin;
    let n = since.as_nanos().div_ceil(interval.as_nanos());
    origin + Duration::from_nanos((n * interval.as_nanos()) as u64)
}

/// What a scheduler keeps track of: the image, the log of its snapshots, and how far after the run's
/// shared rounds its own fall (zero: in the same round as every other image).
pub struct Rounds {
    pub image: String,
    pub log: Arc<Mutex<SnapLog>>,
    pub phase: Duration,
}

/// The per-image scheduler. With `scheduler: harness` it takes a mirror snapshot every interval on the
/// primary, its start being the moment it asked; with `scheduler: ceph` Ceph takes them and this task only
/// records them (start from Ceph's timestamp, truncated to the second, so never later than the truth).
/// Either way it records when each snapshot of this primary completes on the peer.
pub fn spawn_scheduler(regional: &Regional, bus: Bus, vm: String, primary: SiteRef, peer: SiteRef, rounds: Rounds) -> tokio::task::JoinHandle<()> {
    let Rounds { image, log, phase } = rounds;
    let interval = regional.interval.0;
    let kind = regional.scheduler;
    let completions = bus.clone();
    // A snapshot not logged before is logged and published.
    let record = move |log: &Mutex<SnapLog>, vm: &str, r: SnapRecord| {
        let (id, started, site) = (r.id, r.started, r.site.clone());
        if log.lock().unwrap().record(r) {
            bus.publish_at(started, Event::MirrorSnapshot { vm: vm.to_string(), id, site });
        }
    };
    tokio::spawn(async move {
        let mut next = next_round(tokio::time::Instant::now(), interval) + phase;
        // The baseline: snapshots the primary already has (its first snapshot, a promotion snapshot), with
        // Ceph's own time as their start, never later than the truth; their syncs are not judged.
        let mut first_poll = true;
        if let Ok(list) = snaps(&primary, &image).await {
            for s in list.iter().filter(|s| s.is_primary()) {
                let started = parse_ceph_timestamp(&s.timestamp).map(Wt::from_unix_secs).unwrap_or_default();
                record(&log, &vm, SnapRecord { id: s.id, site: primary.name.clone(), started, completed: None, preexisting: true, untimed: false, late: None });
            }
            first_poll = false;
        }
        loop {
            let rec =
                |id, started, preexisting, late| SnapRecord { id, site: primary.name.clone(), started, completed: None, preexisting, untimed: false, late };
            if kind == Scheduler::Harness && tokio::time::Instant::now() >= next {
                // how late the harness asks (a loaded host): reported, never blamed on the system
                let late = Some(tokio::time::Instant::now().saturating_duration_since(next));
                next += interval;
                let asked = Wt::now();
                log.lock().unwrap().asking = Some((primary.name.clone(), asked));
                match take_snapshot(&primary, &image).await {
                    Ok(id) => {
                        record(&log, &vm, rec(id, asked, false, late));
                    }
                    Err(e) => {
                        // The command may have failed after Ceph made the snapshot: adopt every primary
                        // snapshot newer than all logged ones, with the moment we asked as its start.
                        log.lock().unwrap().errors.push(e.to_string());
                        if let Ok(list) = snaps(&primary, &image).await {
                            let newest = log.lock().unwrap().snaps.iter().filter(|s| s.site == primary.name).map(|s| s.id).max().unwrap_or(0);
                            for s in list.iter().filter(|s| s.is_primary() && s.id > newest) {
                                record(&log, &vm, rec(s.id, asked, false, late));
                            }
                        }
                    }
                }
                log.lock().unwrap().asking = None;
            }
            if kind == Scheduler::Ceph {
                if let Ok(list) = snaps(&primary, &image).await {
                    for s in list.iter().filter(|s| s.is_primary()) {
                        let started = parse_ceph_timestamp(&s.timestamp).map(Wt::from_unix_secs).unwrap_or_else(Wt::now);
                        record(&log, &vm, rec(s.id, started, first_poll, None));
                    }
                    first_poll = false;
                }
            }
            let pending = log.lock().unwrap().snaps.iter().any(|s| s.site == primary.name && s.completed.is_none());
            if pending {
                let polled = Wt::now();
                // a peer that is down (or being repaired) must not hold up the primary's own rounds for long
                match snaps_within(&peer, &image, Duration::from_secs(10)).await {
                    Ok(list) => {
                        let done = completed_on_peer(&list);
                        let newly = log.lock().unwrap().complete(&primary.name, &done, polled);
                        for id in newly {
                            completions.publish_at(polled, Event::MirrorSnapshotComplete { vm: vm.clone(), id, site: primary.name.clone() });
                        }
                    }
                    Err(e) => log.lock().unwrap().errors.push(e.to_string()),
                }
            }
            let wait = if pending { Duration::from_millis(200) } else { Duration::from_millis(500) };
            let until = if kind == Scheduler::Harness {
                next.min(tokio::time::Instant::now() + wait)
            } else {
                tokio::time::Instant::now() + wait.max(Duration::from_secs(1))
            };
            tokio::time::sleep_until(until).await;
        }
    })
}

/// Demotes the image on its primary; returns the demotion snapshot's id.
pub async fn demote(s: &SiteRef, image: &str) -> Result<u64, EnvError> {
    s.cli("rbd", &["mirror", "image", "demote", &format!("rbd/{image}")]).await?;
    newest_primary_snap(s, image).await?.ok_or_else(|| s.err(&format!("find the demotion snapshot of {image}"), "no primary mirror snapshot after demote"))
}

/// Promotes the image. A non-forced promote is refused ("Read-only file system") until the demotion
/// snapshot has been copied: that refusal is retried (infrastructure, not data) until the deadline.
pub async fn promote(s: &SiteRef, image: &str, force: bool, deadline: impl Into<wait::Deadline>) -> Result<u32, EnvError> {
    promote_logged(s, image, force, deadline, None).await
}

/// As [`promote`], the rbd tool logging at debug_rbd 20 to `log` (what a forced promote rolls back to).
pub async fn promote_logged(
    s: &SiteRef,
    image: &str,
    force: bool,
    deadline: impl Into<wait::Deadline>,
    log: Option<&std::path::Path>,
) -> Result<u32, EnvError> {
    let deadline: wait::Deadline = deadline.into();
    let spec = format!("rbd/{image}");
    let log_arg = log.map(|p| format!("--log-file={}", p.display()));
    let mut args = vec!["mirror", "image", "promote"];
    if force {
        args.push("--force");
    }
    if let Some(l) = &log_arg {
        args.extend([l.as_str(), "--debug-rbd=20", "--log-to-stderr=false"]);
    }
    args.push(&spec);
    let attempts = std::sync::atomic::AtomicU32::new(0);
    // Retried, with this reason: a non-forced promote is refused until the demotion snapshot is copied
    // (infrastructure catching up, not data). Any other refusal ends the wait at once.
    let check = || async {
        let n = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        match s.cli_within("rbd", &args, deadline.after).await {
            Ok(_) => Ok(Some(n)),
            Err(EnvError::Site { detail, .. }) if !force && detail.contains("Read-only file system") => Ok(None),
            Err(e) => Err(e),
        }
    };
    wait::until(format!("{image} to be promoted"), deadline, check, wait::every(Duration::from_millis(250)))
        .await
        .map_err(|e| from_wait(&s.name, Cause::System, e))
}

/// A site's role for an image from its own `rbd info` (Unknown when it did not answer).
fn role_from(site: String, r: Result<bool, EnvError>) -> SiteRole {
    match r {
        Ok(true) => SiteRole { site, role: Role::Primary, detail: "rbd info: mirroring primary".into() },
        Ok(false) => SiteRole { site, role: Role::Secondary, detail: "rbd info: mirroring non-primary".into() },
        Err(e) => SiteRole { site, role: Role::Unknown, detail: e.to_string() },
    }
}

/// Ceph's `PromoteRequest` logs (debug_rbd 20) the local snapshot a forced promote rolls back to:
/// `rollback_snap_id=N`, CEPH_NOSNAP (2^64 - 2) when it rolls back nothing. Pure.
pub fn parse_rollback(log: &str) -> Option<u64> {
    const NOSNAP: u64 = u64::MAX - 1;
    log.lines()
        .filter_map(|l| l.split("rollback_snap_id=").nth(1))
        .filter_map(|t| t.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok())
        .find(|id| *id != NOSNAP)
}

/// The steps of a forced promote, from the rbd tool's own log (debug_rbd 20), with their times (unix
/// seconds): where its time goes. The orphan snapshot written (rbd-mirror is told to stop); rbd-mirror's
/// watch gone (the promote polls for it every five seconds while rbd-mirror's replayer shuts down); the
/// rollback done, if there was one. Pure.
pub fn promote_steps(log: &str) -> Vec<(Segment, f64)> {
    let at = |l: &str| -> Option<f64> {
        // 2026-11-30T05:14:09.251+0000
        let ts = l.split_whitespace().next()?;
        let (date, time) = ts.split_once('T')?;
        let d: Vec<i64> = date.split('-').filter_map(|x| x.parse().ok()).collect();
        let time = time.split(['+', 'Z']).next()?;
        let t: Vec<&str> = time.split(':').collect();
        let [h, m, s] = t.as_slice() else { return None };
        let [y, mo, dd] = d.as_slice() else { return None };
        Some(crate::clock::unix_from_civil(*y, *mo, *dd, h.parse().ok()?, m.parse().ok()?, s.parse().ok()?))
    };
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("snapshot::PromoteRequest:")).collect();
    let mut out = vec![];
    if let Some(t) = lines.iter().find(|l| l.contains(" handle_create_orphan_snapshot: r=0")).and_then(|l| at(l)) {
        out.push((Segment::OrphanSnapshot, t));
    }
    // the watchers listed last before the lock is taken: rbd-mirror was gone by then
    if let Some(i) = lines.iter().position(|l| l.contains(" acquire_exclusive_lock:") || l.contains(" rollback:") || l.contains(" create_promote_snapshot:")) {
        if let Some(t) = lines[..i].iter().rev().find(|l| l.contains(" handle_list_watchers: r=0")).and_then(|l| at(l)) {
            out.push((Segment::ReplayerReleased, t));
        }
    }
    if let Some(t) = lines.iter().find(|l| l.contains(" handle_rollback: r=0")).and_then(|l| at(l)) {
        out.push((Segment::RolledBack, t));
    }
    out
}

/// A snapshot list in a line each (`12 non-primary of 216 complete`), for the evidence. Pure.
pub fn describe_snaps(snaps: &[SnapEntry]) -> Vec<String> {
    snaps
        .iter()
        .filter(|s| s.is_mirror())
        .map(|s| {
            let of = s.namespace.primary_snap_id.map(|p| format!(" of {p}")).unwrap_or_default();
            format!("{} {}{of}{}", s.id, s.namespace.state, if s.namespace.complete { " complete" } else { " incomplete" })
        })
        .collect()
}

/// What the survivor's forced promote rolled back to, named from its snapshot list before the promote
/// (`b/215`: the copy of snapshot 215 of site b's image). Pure.
pub fn rollback_name(local: u64, before: &[SnapEntry], from: &str) -> String {
    match before.iter().find(|s| s.id == local) {
        Some(s) => match s.namespace.primary_snap_id {
            Some(p) => format!("{from}/{p} (local snapshot {local}, {})", if s.namespace.complete { "complete" } else { "incomplete" }),
            None => format!("local snapshot {local} ({})", s.namespace.state),
        },
        None => format!("local snapshot {local}, which was not in the survivor's list before the promote"),
    }
}

/// One protected VM disk: its image, where it is primary (and since when), its snapshots as the witness
/// saw them, and the scheduler taking or watching them.
struct Protected {
    image: String,
    primary: String,
    since: Wt,
    snaps: Arc<Mutex<SnapLog>>,
    scheduler: Option<tokio::task::JoinHandle<()>>,
    /// Left out of mirroring (a negative control): no snapshot is taken of it any more.
    unmirrored: bool,
    /// Its rounds this far after the run's shared rounds (disks snapshotted independently).
    phase: Duration,
}

/// The Regional-DR driver on RBD snapshot mirroring: a mirrored image per VM; relocate = demote, sync
/// barrier on the demotion snapshot, promote; failover = forced promote of what the survivor holds, with
/// the newest snapshot complete there as the checkpoint and the declared bound as the promise.
pub struct RbdMirrorDriver {
    regional: Regional,
    /// Size of each VM's image, MiB.
    disk_mib: u64,
    budgets: Budgets,
    topology: Topology,
    sites: BTreeMap<String, SiteRef>,
    bus: Bus,
    vms: BTreeMap<String, Protected>,
    /// The lab's golden image once made: where its pattern sits, and the site it is primary on.
    golden: Option<(GoldenLayout, String)>,
}

/// The golden image VM disks are cloned from (one per lab, made on first use).
const GOLDEN_IMAGE: &str = "golden";
/// Its pattern: two RBD objects (4 MiB each) right after the guest's disk, never written by a guest, so
/// every site reads them through the clone's parent.
const GOLDEN_BYTES: u64 = 8 << 20;

/// The golden span of `spec` (an image or a snapshot) as `s` reads it: the image exported to a file beside
/// the site's state, the span read, the file removed.
async fn export_span(s: &SiteRef, spec: &str, layout: GoldenLayout) -> Result<Vec<u8>, EnvError> {
    let file = s.dir.join(format!("export-{}.img", spec.replace(['/', '@'], "-")));
    let _ = std::fs::remove_file(&file);
    let exported = s.cli("rbd", &["export", "--no-progress", &format!("rbd/{spec}"), &file.display().to_string()]).await;
    let read = exported.and_then(|_| {
        use std::io::{Read, Seek, SeekFrom};
        let (off, len) = layout.span();
        let mut f = std::fs::File::open(&file).map_err(|source| EnvError::Io { what: format!("open the export of {spec}"), source })?;
        f.seek(SeekFrom::Start(off)).map_err(|source| EnvError::Io { what: format!("read the export of {spec}"), source })?;
        let mut out = Vec::with_capacity(len as usize);
        f.take(len).read_to_end(&mut out).map_err(|source| EnvError::Io { what: format!("read the export of {spec}"), source })?;
        Ok(out)
    });
    let _ = std::fs::remove_file(&file);
    read
}

impl RbdMirrorDriver {
    pub fn new(cfg: &EnvConfig, topology: Topology, sites: BTreeMap<String, SiteRef>, bus: Bus) -> RbdMirrorDriver {
        let regional = cfg.spec.regional().cloned().expect("the RBD mirror driver serves Regional-DR environments");
        let lab = cfg.spec.lab().expect("the RBD mirror driver serves the lab");
        RbdMirrorDriver {
            regional,
            disk_mib: lab.disk_size.0 >> 20,
            budgets: cfg.spec.budgets.clone(),
            topology,
            sites,
            bus,
            vms: BTreeMap::new(),
            golden: None,
        }
    }

    pub fn site(&self, name: &str) -> Result<&SiteRef, EnvError> {
        self.topology.site(name)?;
        self.sites.get(name).ok_or_else(|| EnvError::Usage(format!("site {name} has no storage in this lab")))
    }

    fn vm(&mut self, vm: &str) -> Result<&mut Protected, EnvError> {
        self.vms.get_mut(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))
    }

    /// The image of `vm` (for the lab's own benchmarks).
    pub fn image(&self, vm: &str) -> Result<String, EnvError> {
        self.vms.get(vm).map(|p| p.image.clone()).ok_or_else(|| EnvError::Usage(format!("no VM named {vm}")))
    }

    /// Starts the scheduler of `vm` on its primary (if it is not running already).
    fn start_scheduler(&mut self, vm: &str) -> Result<(), EnvError> {
        let p = self.vms.get(vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm}")))?;
        if p.unmirrored || p.scheduler.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        let (primary, peer) = (self.site(&p.primary)?.clone(), self.site(&self.topology.peer_of(&p.primary)?)?.clone());
        let rounds = Rounds { image: p.image.clone(), log: p.snaps.clone(), phase: p.phase };
        let h = spawn_scheduler(&self.regional, self.bus.clone(), vm.to_string(), primary, peer, rounds);
        self.vm(vm)?.scheduler = Some(h);
        Ok(())
    }

    /// Stops the scheduler of `vm` (its primary is about to change, or the scenario ends).
    pub fn stop_scheduler(&mut self, vm: &str) -> Result<(), EnvError> {
        if let Some(h) = self.vm(vm)?.scheduler.take() {
            h.abort();
        }
        Ok(())
    }

    /// `to` can take the VM over in a planned move: its storage answers, its image is non-primary and its
    /// mirroring is in no error (a stale copy that was never resynced reports a split brain there). Waited
    /// for within the `resync` budget (a failback right after a repair); what it is missing is the error.
    /// Whether the last sync arrives is the barrier's to judge.
    async fn ready(&self, to: &SiteRef, image: &str) -> Result<(), EnvError> {
        let last = Mutex::new(String::new());
        let check = || async {
            let seen = match (is_primary(to, image, Duration::from_secs(10)).await, mirror_state(to, image, Duration::from_secs(10)).await) {
                (Ok(true), _) => "its image is still primary (it came back without being demoted: split brain)".to_string(),
                (Ok(false), Ok((st, d))) if st.contains("error") || d.contains("split-brain") => {
                    format!("its mirroring is in error: {st} ({d}): resync it from the primary")
                }
                (Ok(false), Ok(_)) => return Ok::<_, EnvError>(Some(())),
                (Err(e), _) | (_, Err(e)) => format!("its storage does not answer: {e}"),
            };
            *last.lock().unwrap() = seen;
            Ok(None)
        };
        wait::until(
            format!("site {} to be ready to take over {image}", to.name),
            self.budgets.deadline(Budget::Resync),
            check,
            wait::every(Duration::from_millis(500)),
        )
        .await
        .map_err(|e| match e {
            wait::WaitError::Timeout { after, .. } => EnvError::Site {
                site: to.name.clone(),
                what: format!("take VM {image} over"),
                detail: format!("site {} is not ready after {after:?} (the environment file's `{}`): {}", to.name, Budget::Resync.key(), last.lock().unwrap()),
                cause: Cause::System,
            },
            wait::WaitError::Failed(e) => e,
        })
    }

    /// `vm`'s image promoted on `to` (a failover): the checkpoint it holds, the rounds since it was
    /// protected, the declared bound as its promise.
    #[allow(clippy::too_many_arguments)]
    fn promoted(
        &mut self,
        vm: &str,
        to: &str,
        from: &str,
        since: Wt,
        log: &Mutex<SnapLog>,
        newest: Option<u64>,
        attempts: u32,
        rollback: Option<String>,
    ) -> Result<DriverReport, EnvError> {
        let (checkpoint, syncs) = {
            let g = log.lock().unwrap();
            (newest.and_then(|id| g.checkpoint(from, id)), g.syncs(from, since))
        };
        let promise = Promise::Window {
            interval: self.regional.interval.0,
            allowance: self.regional.allowance(),
            warmup: self.regional.warmup(),
            checkpoint,
            syncs,
            rollback,
        };
        let p = self.vm(vm)?;
        p.primary = to.to_string();
        p.since = Wt::now();
        Ok(DriverReport { promise, details: self.details(vm, None, attempts) })
    }

    /// The lab's golden image, made on first use on `site` as a CDI golden image is: its pattern imported,
    /// snapshot `base` taken and protected, mirroring enabled, the snapshot's round complete on the peer,
    /// and the pattern read back intact from `base` on both sites before anything is cloned from it.
    async fn golden(&mut self, site: &str) -> Result<GoldenLayout, EnvError> {
        if let Some((layout, on)) = &self.golden {
            if on != site {
                return Err(EnvError::Usage(format!("the lab's golden image is primary on site {on}: clone VMs from it on site {on}")));
            }
            return Ok(*layout);
        }
        let layout = GoldenLayout::after(self.disk_mib << 20, GOLDEN_BYTES);
        let (s, peer) = (self.site(site)?.clone(), self.site(&self.topology.peer_of(site)?)?.clone());
        let file = s.dir.join("golden.img");
        std::fs::write(&file, layout.image()).map_err(|source| EnvError::Io { what: "write the golden image's pattern".into(), source })?;
        let imported = s.cli("rbd", &["import", "--no-progress", &file.display().to_string(), &format!("rbd/{GOLDEN_IMAGE}")]).await;
        let _ = std::fs::remove_file(&file);
        imported?;
        let base = format!("rbd/{GOLDEN_IMAGE}@base");
        s.cli("rbd", &["snap", "create", &base]).await?;
        s.cli("rbd", &["snap", "protect", &base]).await?;
        s.cli("rbd", &["mirror", "image", "enable", &format!("rbd/{GOLDEN_IMAGE}"), "snapshot"]).await?;
        if let Some(id) = newest_primary_snap(&s, GOLDEN_IMAGE).await? {
            wait_synced(&peer, GOLDEN_IMAGE, id, self.budgets.deadline(Budget::SyncBarrier)).await?;
        }
        for at in [&s, &peer] {
            let read = export_span(at, &format!("{GOLDEN_IMAGE}@base"), layout).await?;
            let check = crate::golden::judge(layout, &at.name, &format!("{GOLDEN_IMAGE}@base"), &read);
            if !check.intact() {
                return Err(at.err("make the golden image", check.describe()));
            }
        }
        self.bus.note(format!(
            "golden image: {} blocks of pattern at {}..{}, snapshot base mirrored and read back intact on sites {} and {}",
            layout.blocks,
            layout.first,
            layout.first + layout.blocks - 1,
            s.name,
            peer.name
        ));
        self.golden = Some((layout, site.to_string()));
        Ok(layout)
    }

    /// `vm`'s image (created on `site`, named as the VM) mirrored: returns once its first snapshot is on the
    /// peer, with the mirror-snapshot scheduler running.
    async fn protect(&mut self, vm: &str, site: &str) -> Result<Volume, EnvError> {
        let image = vm;
        let (s, peer) = (self.site(site)?.clone(), self.site(&self.topology.peer_of(site)?)?.clone());
        s.cli("rbd", &["mirror", "image", "enable", &format!("rbd/{image}"), "snapshot"]).await?;
        if let Some(id) = newest_primary_snap(&s, image).await? {
            wait_synced(&peer, image, id, self.budgets.deadline(Budget::SyncBarrier)).await?;
        }
        let p = Protected {
            image: image.to_string(),
            primary: site.to_string(),
            since: Wt::now(),
            snaps: Arc::default(),
            scheduler: None,
            unmirrored: false,
            phase: Duration::ZERO,
        };
        self.vms.insert(vm.to_string(), p);
        self.start_scheduler(vm)?;
        Ok(Volume { name: image.to_string() })
    }

    fn details(&self, vm: &str, sync: Option<Duration>, attempts: u32) -> serde_json::Value {
        let (completed, errors) = self.vms.get(vm).map(|p| p.snaps.lock().unwrap().summary()).unwrap_or_default();
        json!({
            "syncBarrierMs": sync.map(|d| d.as_secs_f64() * 1e3),
            "promoteAttempts": attempts,
            "mirrorSnapshotsCompleted": completed,
            "schedulerErrors": errors,
        })
    }
}

#[async_trait]
impl DrDriver for RbdMirrorDriver {
    /// A mirrored image primary on `site`; returns once its first snapshot is on the peer, with the
    /// mirror-snapshot scheduler running.
    async fn provision(&mut self, vm: &str, site: &str) -> Result<Volume, EnvError> {
        self.site(site)?.cli("rbd", &["create", &format!("rbd/{vm}"), "--size", &format!("{}M", self.disk_mib)]).await?;
        self.protect(vm, site).await
    }

    /// A clone of the golden image's snapshot `base` (a CDI clone), mirrored as any VM disk: Ceph needs the
    /// parent mirrored, and its snapshot on the peer, before the peer can hold the clone.
    async fn provision_clone(&mut self, vm: &str, site: &str) -> Option<Result<(Volume, GoldenLayout), EnvError>> {
        let r = async {
            let layout = self.golden(site).await?;
            self.site(site)?.cli("rbd", &["clone", &format!("rbd/{GOLDEN_IMAGE}@base"), &format!("rbd/{vm}")]).await?;
            Ok((self.protect(vm, site).await?, layout))
        }
        .await;
        Some(r)
    }

    async fn read_golden(&mut self, vm: &str, site: &str) -> Option<Result<Vec<u8>, EnvError>> {
        let r = async {
            let (layout, _) = self.golden.clone().ok_or_else(|| EnvError::Usage(format!("VM {vm} was not cloned from the golden image")))?;
            let image = self.image(vm)?;
            export_span(self.site(site)?, &image, layout).await
        }
        .await;
        Some(r)
    }

    fn volume(&self, vm: &str) -> Result<Volume, EnvError> {
        self.image(vm).map(|name| Volume { name })
    }

    fn primary(&self, vm: &str) -> Result<String, EnvError> {
        self.vms.get(vm).map(|p| p.primary.clone()).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))
    }

    async fn relocate(&mut self, vm: &str, to: &str, barrier: bool, m: &mut Marker) -> Result<DriverReport, EnvError> {
        self.relocate_all(&[vm], to, barrier, std::slice::from_mut(m)).await.pop().expect("one result per VM")
    }

    /// Each phase side by side over the images (as Ramen sets an application's VolumeReplications
    /// secondary, waits, then primary): the peer ready, every image demoted, every demotion snapshot
    /// synced (the barrier), every image promoted. Each VM's marks are its own; one VM failing stops only
    /// its part.
    async fn relocate_all(&mut self, vms: &[&str], to: &str, barrier: bool, ms: &mut [Marker]) -> Vec<Result<DriverReport, EnvError>> {
        let new = match self.site(to) {
            Ok(s) => s.clone(),
            Err(e) => return vms.iter().map(|_| Err(e.again())).collect(),
        };
        let mut legs: Vec<Result<(String, SiteRef), EnvError>> = vms
            .iter()
            .map(|vm| {
                let p = self.vms.get(*vm).ok_or_else(|| EnvError::Usage(format!("no VM named {vm} in this scenario")))?;
                Ok((p.image.clone(), self.site(&p.primary)?.clone()))
            })
            .collect();
        /// Runs `f` side by side over the legs still in the action; a failure ends its leg.
        async fn phase<T, F, Fut>(legs: &mut [Result<(String, SiteRef), EnvError>], f: F) -> Vec<Option<(T, Wt)>>
        where
            F: Fn(usize, String, SiteRef) -> Fut,
            Fut: std::future::Future<Output = Result<T, EnvError>>,
        {
            let runs = legs.iter().enumerate().map(|(i, l)| {
                let go = l.as_ref().ok().map(|(image, old)| f(i, image.clone(), old.clone()));
                async move {
                    match go {
                        Some(fut) => Some(fut.await.map(|v| (v, Wt::now()))),
                        None => None,
                    }
                }
            });
            let done = futures::future::join_all(runs).await;
            legs.iter_mut()
                .zip(done)
                .map(|(l, r)| match r {
                    Some(Ok(v)) => Some(v),
                    Some(Err(e)) => {
                        *l = Err(e);
                        None
                    }
                    None => None,
                })
                .collect()
        }
        if barrier {
            // a planned move needs a peer that can take over: up, non-primary, replaying (a failback waits for
            // the resync to finish, within budget); it fails saying what the site is missing
            let me = &*self;
            phase(&mut legs, |_, image, _| {
                let new = new.clone();
                async move { me.ready(&new, &image).await }
            })
            .await;
        }
        for (vm, l) in vms.iter().zip(legs.iter_mut()) {
            if l.is_ok() {
                if let Err(e) = self.stop_scheduler(vm) {
                    *l = Err(e);
                }
            }
        }
        let demoted = phase(&mut legs, |_, image, old| async move { demote(&old, &image).await }).await;
        for (m, d) in ms.iter_mut().zip(&demoted) {
            if let Some((_, at)) = d {
                m.mark_at(Segment::Demoted, *at);
            }
        }
        let (barrier_budget, promote_budget) = (self.budgets.deadline(Budget::SyncBarrier), self.budgets.deadline(Budget::Promote));
        let mut syncs: Vec<Option<Duration>> = vec![None; vms.len()];
        if barrier {
            let ids: Vec<Option<u64>> = demoted.iter().map(|d| d.as_ref().map(|(id, _)| *id)).collect();
            let ids = &ids;
            let new = &new;
            let synced = phase(&mut legs, |i, image, _| async move {
                let id = ids[i].ok_or_else(|| EnvError::Usage(format!("{image} has no demotion snapshot")))?;
                wait_synced(new, &image, id, barrier_budget).await
            })
            .await;
            for ((m, s), out) in ms.iter_mut().zip(synced).zip(syncs.iter_mut()) {
                if let Some((d, at)) = s {
                    m.mark_at(Segment::Synced, at);
                    *out = Some(d);
                }
            }
        }
        let new_ref = &new;
        let promoted = phase(&mut legs, |_, image, _| async move { promote(new_ref, &image, !barrier, promote_budget).await }).await;
        let mut out = vec![];
        for ((((vm, m), l), p), sync) in vms.iter().zip(ms.iter_mut()).zip(legs).zip(promoted).zip(syncs) {
            out.push(match (l, p) {
                (Err(e), _) => Err(e),
                (Ok(_), Some((attempts, at))) => {
                    m.mark_at(Segment::Promoted, at);
                    match self.vm(vm) {
                        Ok(p) => {
                            p.primary = to.to_string();
                            p.since = Wt::now();
                            Ok(DriverReport { promise: Promise::NoLoss, details: self.details(vm, sync, attempts) })
                        }
                        Err(e) => Err(e),
                    }
                }
                (Ok(_), None) => Err(EnvError::Usage(format!("VM {vm}: its image was not promoted"))),
            });
        }
        out
    }

    async fn roles_all(&mut self, vms: &[&str]) -> Vec<Result<Vec<SiteRole>, EnvError>> {
        let images: Vec<Result<String, EnvError>> = vms.iter().map(|vm| self.image(vm)).collect();
        let sites: Vec<SiteRef> = self.sites.values().cloned().collect();
        let asks = images.into_iter().map(|image| {
            let sites = &sites;
            async move {
                let image = image?;
                let per_site = sites.iter().map(|s| {
                    let image = &image;
                    async move { (s.name.clone(), is_primary(s, image, Duration::from_secs(5)).await) }
                });
                Ok(futures::future::join_all(per_site).await.into_iter().map(|(site, r)| role_from(site, r)).collect())
            }
        });
        futures::future::join_all(asks).await
    }

    async fn failover(&mut self, vm: &str, to: &str, fault_at: Wt, fence: bool, m: &mut Marker) -> Result<DriverReport, EnvError> {
        self.failover_all(&[vm], to, fault_at, fence, std::slice::from_mut(m)).await.pop().expect("one result per VM")
    }

    /// Every image's forced promote runs side by side (as Ramen sets an application's VolumeReplications
    /// primary at once); each VM's evidence and promise are its own.
    async fn failover_all(&mut self, vms: &[&str], to: &str, _fault_at: Wt, _fence: bool, ms: &mut [Marker]) -> Vec<Result<DriverReport, EnvError>> {
        let survivor = match self.site(to) {
            Ok(s) => s.clone(),
            Err(e) => return vms.iter().map(|_| Err(e.again())).collect(),
        };
        // No storage fencing here: the drill's isolation of the lost site is the fence.
        // What the survivor holds: the newest mirror snapshot of the old primary complete there.
        let mut prepared = vec![];
        for vm in vms {
            let p = async {
                self.stop_scheduler(vm)?;
                let (image, from, since, log) = {
                    let p = self.vm(vm)?;
                    (p.image.clone(), p.primary.clone(), p.since, p.snaps.clone())
                };
                let held = snaps(&survivor, &image).await.map_err(|e| match e {
                    EnvError::Site { site, detail, .. } if detail.contains("No such file or directory") => EnvError::Site {
                        site,
                        what: format!("fail VM {vm} over"),
                        detail: format!("the site holds no copy of its disk (image {image} is not mirrored there): {detail}"),
                        cause: Cause::System,
                    },
                    e => e,
                })?;
                let done = completed_on_peer(&held);
                log.lock().unwrap().complete_untimed(&from, &done);
                Ok::<_, EnvError>((image, from, since, log, done.iter().copied().max(), held))
            }
            .await;
            prepared.push(p);
        }
        let budget = self.budgets.deadline(Budget::Promote);
        let promotes = prepared.iter().map(|p| {
            let survivor = &survivor;
            async move {
                match p {
                    Ok((image, ..)) => {
                        let log = survivor.dir.join("log").join(format!("promote-{image}-{}.log", Wt::now().unix_secs() as u64));
                        let r = promote_logged(survivor, image, true, budget, Some(&log)).await;
                        let at = Wt::now();
                        let text = std::fs::read_to_string(&log).unwrap_or_default();
                        let rollback = (parse_rollback(&text), promote_steps(&text));
                        // the evidence after the promote: the survivor's snapshots, and its mirroring status
                        let after =
                            snaps_within(survivor, image, Duration::from_secs(10)).await.map(|l| describe_snaps(&l)).unwrap_or_else(|e| vec![e.to_string()]);
                        let status =
                            mirror_state(survivor, image, Duration::from_secs(10)).await.map(|(st, d)| format!("{st}: {d}")).unwrap_or_else(|e| e.to_string());
                        Some((r, at, rollback, after, status))
                    }
                    Err(_) => None,
                }
            }
        });
        let promoted = futures::future::join_all(promotes).await;
        let mut out = vec![];
        for ((vm, m), (p, r)) in vms.iter().zip(ms.iter_mut()).zip(prepared.into_iter().zip(promoted)) {
            out.push(match (p, r) {
                (Ok((_, from, since, log, newest, held)), Some((Ok(attempts), at, rollback, after, status))) => {
                    // where the promote's time went, as its own segments (Ceph's, not the harness's)
                    let (rollback, steps) = rollback;
                    for (seg, t) in &steps {
                        m.mark_at(*seg, Wt::from_unix_secs(*t));
                    }
                    m.mark_at(Segment::Promoted, at);
                    let rollback = rollback.map(|id| rollback_name(id, &held, &from));
                    let evidence = json!({
                        "survivorSnapshotsBefore": describe_snaps(&held),
                        "survivorSnapshotsAfter": after,
                        "survivorStatusAfter": status,
                        "rolledBackTo": rollback,
                    });
                    self.promoted(vm, to, &from, since, &log, newest, attempts, rollback).map(|mut r| {
                        r.details["promote"] = evidence;
                        r
                    })
                }
                (Err(e), _) | (_, Some((Err(e), ..))) => Err(e),
                (Ok(_), None) => unreachable!("a prepared image is promoted"),
            });
        }
        out
    }

    /// An image never enabled for mirroring: the peer never holds a copy, no snapshot is taken. (Disabling
    /// mirroring of one image while its application runs holds up rbd-mirror's rounds of the others on the
    /// peer for several seconds here: the control leaves it out from the start, as a DRPC's selector would.)
    async fn provision_unmirrored(&mut self, vm: &str, site: &str) -> Option<Result<Volume, EnvError>> {
        let r = async {
            let image = vm.to_string();
            self.site(site)?.cli("rbd", &["create", &format!("rbd/{image}"), "--size", &format!("{}M", self.disk_mib)]).await?;
            let p = Protected {
                image: image.clone(),
                primary: site.to_string(),
                since: Wt::now(),
                snaps: Arc::default(),
                scheduler: None,
                unmirrored: true,
                phase: Duration::ZERO,
            };
            self.vms.insert(vm.to_string(), p);
            Ok(Volume { name: image })
        }
        .await;
        Some(r)
    }

    /// Each site's role, asked of the site itself (`rbd info`); a site that does not answer within a few
    /// seconds (down, frozen) is Unknown.
    async fn roles(&mut self, vm: &str) -> Result<Vec<SiteRole>, EnvError> {
        let image = self.image(vm)?;
        let sites: Vec<SiteRef> = self.sites.values().cloned().collect();
        let asks = sites.iter().map(|s| async { (s.name.clone(), is_primary(s, &image, Duration::from_secs(5)).await) });
        Ok(futures::future::join_all(asks).await.into_iter().map(|(site, r)| role_from(site, r)).collect())
    }

    /// The returned site's stale copy demoted (if it is still primary: a forced promote elsewhere left it
    /// so) and, with `resync`, resynced from the primary: awaited until the site reports the image replaying
    /// and a mirror snapshot the primary took after the resync began is complete there (budget `resync`).
    /// Protection resumes from then: later rounds are judged from there.
    async fn repair(&mut self, vm: &str, site: &str, resync: bool, m: &mut Marker) -> Result<serde_json::Value, EnvError> {
        let (image, primary, log) = {
            let p = self.vm(vm)?;
            (p.image.clone(), p.primary.clone(), p.snaps.clone())
        };
        if primary == site {
            return Ok(json!({ "note": format!("site {site} is VM {vm}'s primary: nothing to repair") }));
        }
        let s = self.site(site)?.clone();
        let budget = self.budgets.resync.0;
        let t0 = Wt::now();
        let was_primary = is_primary(&s, &image, self.budgets.command.0).await?;
        if was_primary {
            demote(&s, &image).await?;
            m.mark(Segment::Demoted);
        }
        if !resync {
            return Ok(json!({ "wasPrimary": was_primary, "resync": false }));
        }
        let since = Wt::now();
        s.cli("rbd", &["mirror", "image", "resync", &format!("rbd/{image}")]).await?;
        m.mark(Segment::ResyncRequested);
        self.start_scheduler(vm)?;
        let last = Mutex::new(String::new());
        // when each half of the proof was first seen: the site reporting it replays, the snapshot complete
        let (replaying_at, snapshot_at) = (Mutex::new(None::<Wt>), Mutex::new(None::<Wt>));
        let check = || async {
            let state = mirror_state(&s, &image, Duration::from_secs(10)).await;
            let replicated = log.lock().unwrap().replicated_since(&primary, since).map(|r| r.name());
            let replaying = state.as_ref().is_ok_and(|(st, _)| st == "up+replaying");
            if replaying {
                replaying_at.lock().unwrap().get_or_insert_with(Wt::now);
            }
            if replicated.is_some() {
                snapshot_at.lock().unwrap().get_or_insert_with(Wt::now);
            }
            *last.lock().unwrap() = format!(
                "{} ({})",
                state.as_ref().map(|(st, d)| format!("{st}: {d}")).unwrap_or_else(|e| e.to_string()),
                replicated.as_deref().unwrap_or("no snapshot since the resync complete there")
            );
            Ok::<_, EnvError>(replicated.filter(|_| replaying))
        };
        let what = format!("site {site} to replay VM {vm}'s image again after the resync");
        let snap = wait::until(what, budget, check, wait::every(Duration::from_millis(500))).await.map_err(|e| match e {
            wait::WaitError::Timeout { what, after, .. } => EnvError::Timeout {
                site: site.into(),
                what: format!("{what} (last seen: {})", last.lock().unwrap()),
                after,
                cause: Cause::System,
                budget: Some(Budget::Resync.key()),
            },
            wait::WaitError::Failed(e) => e,
        })?;
        m.mark(Segment::Resynced);
        // protection resumes once the resync is done: the rounds of the time the peer was away, and those
        // the resync skipped over (it copies from the newest snapshot), are not its promise
        self.vm(vm)?.since = Wt::now();
        let after = |t: &Mutex<Option<Wt>>| t.lock().unwrap().map(|t| t.since(since).as_secs_f64() * 1e3);
        Ok(json!({
            "wasPrimary": was_primary, "resync": true, "resyncedWith": snap,
            "resyncMs": Wt::now().since(since).as_secs_f64() * 1e3,
            "replayingSeenMs": after(&replaying_at), "snapshotCompleteMs": after(&snapshot_at),
            "repairMs": Wt::now().since(t0).as_secs_f64() * 1e3,
        }))
    }

    /// Waits for a mirror snapshot taken at or after `since` to complete on `to`. The deadline is three
    /// intervals plus the sync allowance: Ceph's own schedule can fire its first snapshot up to two intervals
    /// after the schedule is added (its module reloads schedules on its own period).
    async fn replicated(&mut self, vm: &str, to: &str, since: Wt) -> Result<String, EnvError> {
        let (primary, log) = {
            let p = self.vm(vm)?;
            (p.primary.clone(), p.snaps.clone())
        };
        if self.topology.peer_of(&primary)? != to {
            return Err(EnvError::Usage(format!("site {to} is not where {vm} replicates to: its primary is {primary}")));
        }
        self.start_scheduler(vm)?;
        let deadline = self.regional.interval.0 * 3 + self.regional.allowance();
        let check = || {
            let found = log.lock().unwrap().replicated_since(&primary, since).map(|r| format!("mirror snapshot {} complete on {to}", r.name()));
            async move { Ok::<_, EnvError>(found) }
        };
        let what = format!("a mirror snapshot of {vm} taken after +{:.1}s to complete on {to}", since.ms() / 1e3);
        wait::until(what, deadline, check, wait::every(Duration::from_millis(200))).await.map_err(|e| from_wait(to, Cause::System, e))
    }

    async fn serving(&mut self, vm: &str) -> Result<(), EnvError> {
        self.start_scheduler(vm)
    }

    /// The scheduler (running since the image was protected) restarts on its new phase.
    fn stagger(&mut self, vm: &str, phase: Duration) -> bool {
        let harness = self.regional.scheduler == Scheduler::Harness;
        match self.vms.get_mut(vm) {
            Some(p) if harness => p.phase = phase,
            _ => return false,
        }
        self.stop_scheduler(vm).is_ok() && self.start_scheduler(vm).is_ok()
    }

    async fn release(&mut self, vm: &str) {
        let _ = self.stop_scheduler(vm);
    }

    async fn shutdown(&mut self) {
        for p in self.vms.values_mut() {
            if let Some(h) = p.scheduler.take() {
                h.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: &str = r#"[{"id":4,"name":".mirror.primary.x.4","size":67108864,"protected":"false","timestamp":"Wed Nov 25 20:10:00 2026","namespace":{"type":"mirror","state":"primary","mirror_peer_uuids":["p"],"complete":true}},
        {"id":7,"name":".mirror.primary.x.7","size":67108864,"protected":"false","timestamp":"Wed Nov 25 20:10:05 2026","namespace":{"type":"mirror","state":"demoted","mirror_peer_uuids":["p"],"complete":true}}]"#;
    const PEER: &str = r#"[{"id":3,"name":".mirror.non_primary.x.3","size":67108864,"protected":"false","timestamp":"Wed Nov 25 20:10:01 2026","namespace":{"type":"mirror","state":"non-primary","primary_mirror_uuid":"m","primary_snap_id":4,"complete":true,"last_copied_object_number":16}},
        {"id":5,"name":".mirror.non_primary.x.5","size":67108864,"protected":"false","timestamp":"Wed Nov 25 20:10:06 2026","namespace":{"type":"mirror","state":"non-primary","primary_mirror_uuid":"m","primary_snap_id":7,"complete":false,"last_copied_object_number":3}},
        {"id":6,"name":"user","size":1,"protected":"false","timestamp":"Wed Nov 25 20:10:06 2026","namespace":{"type":"user"}}]"#;

    #[test]
    fn roles_and_mirror_state_from_the_sites_own_view() {
        let info = r#"{"name":"vm0","size":67108864,"mirroring":{"mode":"snapshot","state":"enabled","global_id":"9f1c","primary":true}}"#;
        assert_eq!(parse_primary(info), Ok(true));
        assert_eq!(parse_primary(&info.replace("true}", "false}")), Ok(false));
        assert!(parse_primary(r#"{"name":"vm0"}"#).unwrap_err().contains("no mirroring.primary"));
        let st = r#"{"name":"vm0","global_id":"9f1c","state":"up+replaying","description":"replaying, {\"bytes_per_second\":0.0}","last_update":"2026-11-29 19:00:00"}"#;
        assert_eq!(parse_mirror_state(st).unwrap().0, "up+replaying");
        assert!(parse_mirror_state("not json").is_err());
    }

    #[test]
    fn primary_and_peer_snapshots() {
        let p = parse_snaps(PRIMARY).unwrap();
        assert!(p.iter().all(|s| s.is_primary()));
        let q = parse_snaps(PEER).unwrap();
        assert!(q.iter().all(|s| !s.is_primary()));
        // snapshot 7 is on the peer but not complete: the barrier must not pass on it
        assert_eq!(completed_on_peer(&q), vec![4]);
        assert!(parse_snaps("not json").is_err());
    }

    fn rec(site: &str, id: u64, started: u64, completed: Option<u64>, preexisting: bool) -> SnapRecord {
        SnapRecord { id, site: site.into(), started: Wt::from_ms(started), completed: completed.map(Wt::from_ms), preexisting, untimed: false, late: None }
    }

    #[test]
    fn syncs_leave_out_unmeasured_snapshots_and_other_sites() {
        let log = SnapLog {
            snaps: vec![
                rec("a", 1, 0, Some(9000), true),
                rec("a", 2, 10_000, Some(11_500), false),
                rec("a", 3, 15_000, None, false),
                rec("b", 4, 20_000, Some(21_000), false),
            ],
            ..Default::default()
        };
        let s = log.syncs("a", Wt::from_ms(0));
        assert_eq!(s.iter().map(|x| (x.name.as_str(), x.sync_ms)).collect::<Vec<_>>(), [("a/2", Some(1500.0)), ("a/3", None)]);
        assert_eq!(log.syncs("b", Wt::from_ms(0)).len(), 1);
        assert_eq!(log.syncs("a", Wt::from_ms(12_000)).len(), 1, "only since the site became primary");
    }

    #[test]
    fn replicated_since_needs_a_snapshot_taken_after_and_complete_on_the_peer() {
        let log = SnapLog {
            snaps: vec![
                rec("a", 1, 0, Some(900), true),
                rec("a", 2, 4_000, Some(5_000), false),
                rec("a", 3, 10_000, None, false),
                rec("b", 4, 12_000, Some(13_000), false),
            ],
            ..Default::default()
        };
        assert_eq!(log.replicated_since("a", Wt::from_ms(3_000)).map(|r| r.name()), Some("a/2".into()));
        assert_eq!(log.replicated_since("a", Wt::from_ms(4_001)).map(|r| r.name()), None, "taken before: not proof of later writes");
        assert_eq!(log.replicated_since("a", Wt::from_ms(0)).map(|r| r.name()), Some("a/2".into()), "the baseline proves nothing the VM wrote");
        assert_eq!(log.replicated_since("b", Wt::from_ms(11_000)).map(|r| r.name()), Some("b/4".into()));
    }

    #[test]
    fn snapshots_are_known_by_site_and_id() {
        // After a relocate a -> b, both clusters have a snapshot 5. A completion seen on a (the peer of
        // b) for primary snapshot 5 belongs to b/5, never to a/5.
        let mut log = SnapLog { snaps: vec![rec("a", 5, 1_000, None, false), rec("b", 5, 30_000, None, false)], ..Default::default() };
        assert_eq!(log.complete("b", &[5], Wt::from_ms(31_000)), vec![5]);
        assert_eq!(log.get("a", 5).unwrap().completed, None);
        assert_eq!(log.get("b", 5).unwrap().completed, Some(Wt::from_ms(31_000)));
        assert_eq!(log.checkpoint("b", 5).unwrap().started, Wt::from_ms(30_000));
        assert!(!log.record(rec("b", 5, 99, None, false)), "a snapshot is logged once");
    }

    #[test]
    fn a_checkpoint_missing_from_the_log_falls_back_to_an_earlier_start_and_says_so() {
        let mut log = SnapLog {
            snaps: vec![rec("a", 3, 1_000, Some(2_000), true), rec("a", 4, 6_000, Some(7_000), false), rec("b", 9, 8_000, None, false)],
            ..Default::default()
        };
        let c = log.checkpoint("a", 6).unwrap();
        assert_eq!(c.started, Wt::from_ms(6_000));
        assert_eq!(c.name, "a/6 (not logged; start of a/4 used)");
        assert_eq!(log.checkpoint("a", 2), None);
        // a command still running when the witness stopped watching (cut off at the fault): the snapshot
        // Ceph made for it, newer than everything logged, started no earlier than when it was asked
        log.asking = Some(("a".into(), Wt::from_ms(11_000)));
        let c = log.checkpoint("a", 6).unwrap();
        assert_eq!((c.started, c.name.as_str()), (Wt::from_ms(11_000), "a/6 (its snapshot command was cut off; start = when it was asked)"));
        log.asking = Some(("b".into(), Wt::from_ms(11_000)));
        assert_eq!(log.checkpoint("a", 6).unwrap().started, Wt::from_ms(6_000), "another site's command says nothing of a");
        // without a baseline, an unlogged snapshot may be older than the command: the weaker start stays
        log.snaps[0].preexisting = false;
        log.asking = Some(("a".into(), Wt::from_ms(11_000)));
        assert_eq!(log.checkpoint("a", 6).unwrap().started, Wt::from_ms(6_000));
    }

    /// A forced promote's log as Ceph 16.2.15 wrote it here (trimmed): the orphan snapshot took 5 s (a
    /// notify to rbd-mirror timing out), rbd-mirror let go 20 s later, no rollback.
    #[test]
    fn a_forced_promote_log_says_where_its_time_went() {
        let log =
            "2026-11-30T05:14:04.283+0000 7fc9 15 librbd::mirror::snapshot::PromoteRequest: 0x7f send: requires_orphan=1, rollback_snap_id=18446744073709551614
2026-11-30T05:14:04.283+0000 7fc9 15 librbd::mirror::snapshot::PromoteRequest: 0x7f create_orphan_snapshot: 
2026-11-30T05:14:09.251+0000 7fc9 15 librbd::mirror::snapshot::PromoteRequest: 0x7f handle_create_orphan_snapshot: r=0
2026-11-30T05:14:09.251+0000 7fc9 15 librbd::mirror::snapshot::PromoteRequest: 0x7f handle_list_watchers: r=0
2026-11-30T05:14:24.263+0000 7fc9 15 librbd::mirror::snapshot::PromoteRequest: 0x7f wait_update_notify: 
2026-11-30T05:14:29.267+0000 7fc9 15 librbd::mirror::snapshot::PromoteRequest: 0x7f handle_list_watchers: r=0
2026-11-30T05:14:29.267+0000 7fc9 15 librbd::mirror::snapshot::PromoteRequest: 0x7f acquire_exclusive_lock: 
2026-11-30T05:14:32.711+0000 7fc9 15 librbd::mirror::snapshot::PromoteRequest: 0x7f finish: r=0";
        let steps = promote_steps(log);
        let base = crate::clock::unix_from_civil(2026, 11, 30, 5, 14, 0.0);
        let rel: Vec<(Segment, i64)> = steps.iter().map(|(s, t)| (*s, ((t - base) * 1000.0).round() as i64)).collect();
        assert_eq!(rel, [(Segment::OrphanSnapshot, 9251), (Segment::ReplayerReleased, 29267)]);
        assert_eq!(parse_rollback(log), None);
    }

    #[test]
    fn rounds_fall_on_the_shared_origin() {
        let o = tokio::time::Instant::now();
        let i = Duration::from_secs(5);
        assert_eq!(aligned(o, o + Duration::from_millis(1), i), o + i);
        assert_eq!(aligned(o, o + i, i), o + i);
        assert_eq!(aligned(o, o + Duration::from_millis(12_300), i), o + Duration::from_secs(15));
        assert_eq!(aligned(o, o, i), o);
    }

    /// Lines as Ceph 16's librbd writes them at debug_rbd 20 during `rbd mirror image promote --force`.
    #[test]
    fn the_snapshot_a_forced_promote_rolls_back_to_is_read_from_the_rbd_log() {
        let log = "2026-11-30T05:01:02.1+0000 7f librbd::mirror::snapshot::util:  can_create_primary_snapshot: previous snapshot snap_id=5 [mirror state=non-primary, complete=0]
2026-11-30T05:01:02.1+0000 7f librbd::mirror::snapshot::util:  can_create_primary_snapshot: needs rollback
2026-11-30T05:01:02.1+0000 7f librbd::mirror::snapshot::util:  can_create_primary_snapshot: rollback_snap_id=3
2026-11-30T05:01:02.1+0000 7f librbd::mirror::snapshot::PromoteRequest: 0x5 send: requires_orphan=1, rollback_snap_id=3\n";
        assert_eq!(parse_rollback(log), Some(3));
        // nothing to roll back: CEPH_NOSNAP
        assert_eq!(parse_rollback("PromoteRequest: 0x5 send: requires_orphan=1, rollback_snap_id=18446744073709551614"), None);
        assert_eq!(parse_rollback(""), None);
        let before = parse_snaps(PEER).unwrap();
        assert_eq!(rollback_name(3, &before, "b"), "b/4 (local snapshot 3, complete)");
        assert_eq!(rollback_name(99, &before, "b"), "local snapshot 99, which was not in the survivor's list before the promote");
        assert_eq!(describe_snaps(&before), ["3 non-primary of 4 complete", "5 non-primary of 7 incomplete"]);
    }

    #[test]
    fn ceph_timestamps() {
        assert_eq!(parse_ceph_timestamp("Thu Jan  1 00:00:10 1970"), Some(10.0));
        assert_eq!(parse_ceph_timestamp("Wed Nov 25 20:10:00 2026"), Some(1795637400.0));
        assert_eq!(parse_ceph_timestamp("garbage"), None);
    }

    #[test]
    fn ceph_tools_run_in_utc() {
        // The rbd CLI prints snapshot times in local time: the lab pins every Ceph tool to UTC, whatever
        // the harness's own zone, so `parse_ceph_timestamp` reads them right.
        let s = super::super::site::Site::new("a", "drd-test-a", "10.77.0.1", std::path::PathBuf::from("/nonexistent"), Duration::from_secs(1));
        let c = s.tool("rbd");
        assert!(c.as_std().get_envs().any(|(k, v)| k == "TZ" && v == Some(std::ffi::OsStr::new("UTC"))));
    }
}
