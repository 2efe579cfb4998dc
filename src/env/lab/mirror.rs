//! RBD snapshot mirroring between the two sites: pool and peers, the rbd-mirror daemons, mirror snapshots,
//! the sync barrier, promote and demote, and the mirror-snapshot scheduler.

use super::site::{Site, SiteRef};
use super::LabError;
use crate::clock::Wt;
use crate::config::{EnvConfig, Scheduler};
use crate::events::{self, Event};
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Pool `rbd` on both sites, image-mode mirroring, peers bootstrapped both ways (rx-tx), an rbd-mirror daemon
/// per site, and Ceph's own schedule when the environment asks for it.
pub async fn setup(sites: &mut [Site], cfg: &EnvConfig) -> Result<(), LabError> {
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
    b.cli("rbd", &["mirror", "pool", "peer", "bootstrap", "import", "--site-name", &b.name.clone(), "--direction", "rx-tx", "rbd", &token_file.display().to_string()])
        .await?;
    a.start_rbd_mirror()?;
    b.start_rbd_mirror()?;
    if cfg.spec.replication.scheduler == Scheduler::Ceph {
        let every = format!("{}m", cfg.spec.replication.interval.0.as_secs() / 60);
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

pub async fn snaps(s: &SiteRef, image: &str) -> Result<Vec<SnapEntry>, LabError> {
    let out = s.cli("rbd", &["snap", "ls", "--all", "--format", "json", &format!("rbd/{image}")]).await?;
    parse_snaps(&out).map_err(|e| s.err(&format!("list snapshots of {image}"), e))
}

pub async fn newest_primary_snap(s: &SiteRef, image: &str) -> Result<Option<u64>, LabError> {
    Ok(snaps(s, image).await?.iter().filter(|x| x.is_primary()).map(|x| x.id).max())
}

/// Takes a mirror snapshot on the primary and returns its id.
pub async fn take_snapshot(s: &SiteRef, image: &str) -> Result<u64, LabError> {
    let out = s.cli("rbd", &["mirror", "image", "snapshot", &format!("rbd/{image}")]).await?;
    out.split_whitespace()
        .last()
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| s.err(&format!("take a mirror snapshot of {image}"), format!("unexpected output {out:?}")))
}

/// The sync barrier: waits until primary snapshot `id` is complete on `peer`. Returns how long it took.
pub async fn wait_synced(peer: &SiteRef, image: &str, id: u64, deadline: Duration) -> Result<Duration, LabError> {
    let t0 = Instant::now();
    loop {
        if let Ok(s) = snaps(peer, image).await {
            if completed_on_peer(&s).contains(&id) {
                return Ok(t0.elapsed());
            }
        }
        if t0.elapsed() > deadline {
            return Err(LabError::Timeout { site: peer.name.clone(), what: format!("mirror snapshot {id} of {image} to complete"), after: deadline });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One mirror snapshot as the witness saw it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SnapRecord {
    pub id: u64,
    pub site: String,
    /// When the snapshot was due (harness scheduler: its tick) or taken (Ceph's schedule: its timestamp,
    /// truncated to the second); never later than the truth.
    pub started: Wt,
    /// When the witness first saw it complete on the peer.
    pub completed: Option<Wt>,
    /// Taken before the scheduler started watching (its sync time was not measured).
    pub preexisting: bool,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SnapLog {
    pub snaps: Vec<SnapRecord>,
    pub errors: Vec<String>,
}

impl SnapLog {
    /// Longest start-to-complete time seen.
    pub fn max_sync(&self) -> Duration {
        self.snaps.iter().filter(|s| !s.preexisting).filter_map(|s| s.completed.map(|c| c.since(s.started))).max().unwrap_or_default()
    }
    pub fn start_of(&self, id: u64) -> Option<Wt> {
        self.snaps.iter().find(|s| s.id == id).map(|s| s.started)
    }
}

/// Parses Ceph's snapshot timestamp ("Wed Nov 25 20:10:00 2026", local time = UTC here) into Unix seconds.
pub fn parse_ceph_timestamp(ts: &str) -> Option<f64> {
    let w: Vec<&str> = ts.split_whitespace().collect();
    let [_, mon, day, hms, year] = w.as_slice() else { return None };
    let m = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|x| x == mon)? as i64 + 1;
    let (d, y): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let t: Vec<i64> = hms.split(':').filter_map(|x| x.parse().ok()).collect();
    if t.len() != 3 {
        return None;
    }
    // days from civil (Howard Hinnant)
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + t[0] * 3600 + t[1] * 60 + t[2]) as f64)
}

/// The per-image scheduler. With `scheduler: harness` it takes a mirror snapshot every interval on the
/// primary; with `scheduler: ceph` Ceph takes them and this task only records them (start from Ceph's
/// timestamp, truncated to the second, so never later than the truth). Either way it records when each
/// snapshot completes on the peer.
pub fn spawn_scheduler(cfg: &EnvConfig, vm: String, primary: SiteRef, peer: SiteRef, image: String, log: Arc<Mutex<SnapLog>>) -> tokio::task::JoinHandle<()> {
    let interval = cfg.spec.replication.interval.0;
    let kind = cfg.spec.replication.scheduler;
    tokio::spawn(async move {
        let mut next = tokio::time::Instant::now() + interval;
        let mut first_poll = true;
        loop {
            if kind == Scheduler::Harness && tokio::time::Instant::now() >= next {
                // A snapshot's start is the tick it was due at: a late tick counts toward its sync time
                // (the loss window bound grows, the records required to survive do not).
                let late = tokio::time::Instant::now().saturating_duration_since(next);
                let started = Wt(Wt::now().0.saturating_sub(late.as_nanos() as u64));
                next += interval;
                match take_snapshot(&primary, &image).await {
                    Ok(id) => {
                        events::publish_at(started, Event::MirrorSnapshot { vm: vm.clone(), id, site: primary.name.clone() });
                        log.lock().unwrap().snaps.push(SnapRecord { id, site: primary.name.clone(), started, completed: None, preexisting: false })
                    }
                    Err(e) => log.lock().unwrap().errors.push(e.to_string()),
                }
            }
            if kind == Scheduler::Ceph {
                if let Ok(list) = snaps(&primary, &image).await {
                    let mut g = log.lock().unwrap();
                    for s in list.iter().filter(|s| s.is_primary()) {
                        if g.snaps.iter().all(|r| r.id != s.id) {
                            let started = parse_ceph_timestamp(&s.timestamp).map(Wt::from_unix_secs).unwrap_or_else(Wt::now);
                            events::publish_at(started, Event::MirrorSnapshot { vm: vm.clone(), id: s.id, site: primary.name.clone() });
                            g.snaps.push(SnapRecord { id: s.id, site: primary.name.clone(), started, completed: None, preexisting: first_poll });
                        }
                    }
                    first_poll = false;
                }
            }
            let pending: Vec<u64> = log.lock().unwrap().snaps.iter().filter(|s| s.completed.is_none()).map(|s| s.id).collect();
            if !pending.is_empty() {
                if let Ok(list) = snaps(&peer, &image).await {
                    let done = completed_on_peer(&list);
                    let now = Wt::now();
                    for s in log.lock().unwrap().snaps.iter_mut().filter(|s| s.completed.is_none() && done.contains(&s.id)) {
                        events::publish_at(now, Event::MirrorSnapshotComplete { vm: vm.clone(), id: s.id });
                        s.completed = Some(now);
                    }
                }
            }
            let wait = if pending.is_empty() { Duration::from_millis(500) } else { Duration::from_millis(200) };
            let until = if kind == Scheduler::Harness { next.min(tokio::time::Instant::now() + wait) } else { tokio::time::Instant::now() + wait.max(Duration::from_secs(1)) };
            tokio::time::sleep_until(until).await;
        }
    })
}

/// Demotes the image on its primary; returns the demotion snapshot's id.
pub async fn demote(s: &SiteRef, image: &str) -> Result<u64, LabError> {
    s.cli("rbd", &["mirror", "image", "demote", &format!("rbd/{image}")]).await?;
    newest_primary_snap(s, image).await?.ok_or_else(|| s.err(&format!("find the demotion snapshot of {image}"), "no primary mirror snapshot after demote"))
}

/// Promotes the image. A non-forced promote is refused ("Read-only file system") until the demotion
/// snapshot has been copied: that refusal is retried (infrastructure, not data) until the deadline.
pub async fn promote(s: &SiteRef, image: &str, force: bool, deadline: Duration) -> Result<u32, LabError> {
    let spec = format!("rbd/{image}");
    let mut args = vec!["mirror", "image", "promote"];
    if force {
        args.push("--force");
    }
    args.push(&spec);
    let t0 = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match s.cli_within("rbd", &args, deadline).await {
            Ok(_) => return Ok(attempts),
            Err(LabError::Site { detail, .. }) if !force && detail.contains("Read-only file system") && t0.elapsed() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e),
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
    fn primary_and_peer_snapshots() {
        let p = parse_snaps(PRIMARY).unwrap();
        assert!(p.iter().all(|s| s.is_primary()));
        let q = parse_snaps(PEER).unwrap();
        assert!(q.iter().all(|s| !s.is_primary()));
        // snapshot 7 is on the peer but not complete: the barrier must not pass on it
        assert_eq!(completed_on_peer(&q), vec![4]);
        assert!(parse_snaps("not json").is_err());
    }

    #[test]
    fn max_sync_ignores_unmeasured_snapshots() {
        let r = |id, started, completed: Option<u64>, preexisting| SnapRecord { id, site: "a".into(), started: Wt::from_ms(started), completed: completed.map(Wt::from_ms), preexisting };
        let log = SnapLog { snaps: vec![r(1, 0, Some(9000), true), r(2, 10_000, Some(11_500), false), r(3, 15_000, None, false)], errors: vec![] };
        assert_eq!(log.max_sync(), Duration::from_millis(1500));
        assert_eq!(log.start_of(2), Some(Wt::from_ms(10_000)));
        assert_eq!(log.start_of(9), None);
    }

    #[test]
    fn ceph_timestamps() {
        assert_eq!(parse_ceph_timestamp("Thu Jan  1 00:00:10 1970"), Some(10.0));
        assert_eq!(parse_ceph_timestamp("Wed Nov 25 20:10:00 2026"), Some(1795637400.0));
        assert_eq!(parse_ceph_timestamp("garbage"), None);
    }
}
