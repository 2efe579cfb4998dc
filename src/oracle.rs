//! The oracle: judges a history of acknowledged writes against what a verify scan found on disk. Pure: no
//! I/O, no clock. In the manner of Jepsen, a record is *stable* if it was acknowledged and is on disk,
//! *lost* if it was acknowledged and is not, and *indeterminate* if it was never acknowledged (in flight at
//! the fault): an indeterminate record is never counted as lost, whether or not it survived.
//!
//! The Regional-DR bound is *declared* by the environment (interval + sync allowance + one write period),
//! never measured on the system under test: a slow snapshot fails the verdict ("replication lagged"), it
//! never widens the bound. A failover passes only with proof: a snapshot taken while the VM wrote is
//! complete on the survivor (the must-survive check runs against it) and acknowledged records survived.
//!
//! A verdict is `Passed`, `Failed` (the system under test fell short: exit 1) or `Inconclusive` (the
//! drill could not prove anything either way: it wrote for less than the environment's bound, or the
//! witness's evidence has a gap; exit 2, since the harness or the scenario, not the system, is at fault).
//! A failing bound is a `Verdict`, not an error: errors mean the harness broke.

use crate::clock::Wt;
use dr_probe::ScanReport;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// One acknowledgement, as the witness stamped it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    pub seq: u64,
    /// Witness time the ack arrived.
    pub at: Wt,
    /// Boot tag of the writer that acked it.
    pub boot: u64,
}

/// A replication checkpoint the survivor holds (Regional-DR: a mirror snapshot complete on the survivor).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// Which one, with its site (`a/12`: snapshot 12 of site a's image).
    pub name: String,
    /// Never later than the moment it was really taken: records acknowledged before it must survive.
    #[serde(rename = "startedNs")]
    pub started: Wt,
}

/// One replication round as the witness saw it: started (never earlier than asked, never later than the
/// storage's own time) and, if seen, completed on the peer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncSample {
    pub name: String,
    #[serde(rename = "startedNs")]
    pub started: Wt,
    #[serde(rename = "completedNs")]
    pub completed: Option<Wt>,
    /// Start to completion, ms (None: not seen complete).
    pub sync_ms: Option<f64>,
    /// Found complete on the survivor after the fault without the witness having timed it: it completed
    /// before the fault, how long it took is unknown, and it is not judged against the allowance.
    pub untimed: bool,
    /// How much later than planned the harness's own scheduler asked for it (a loaded host), ms. The
    /// system is never blamed for it: a verdict that only fails because of it is inconclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_ms: Option<f64>,
}

impl SyncSample {
    pub fn new(name: String, started: Wt, completed: Option<Wt>) -> SyncSample {
        let sync_ms = completed.map(|c| c.since(started).as_secs_f64() * 1e3);
        SyncSample { name, started, completed, sync_ms, untimed: false, late_ms: None }
    }
    fn late(&self) -> Duration {
        Duration::from_secs_f64(self.late_ms.unwrap_or(0.0).max(0.0) / 1e3)
    }
}

/// What a Regional-DR failover promises, all of it declared by the environment.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionalBound {
    pub interval: Duration,
    /// How long a snapshot may take to complete on the peer (declared; at most one interval).
    pub allowance: Duration,
    /// One write period of the probe (the newest surviving record may be one period older than the
    /// checkpoint's start).
    pub period: Duration,
    /// The newest checkpoint the survivor holds, if any.
    pub checkpoint: Option<Checkpoint>,
    /// Every replication round of this writer's primary up to the fault.
    pub syncs: Vec<SyncSample>,
    /// How long protection may take to complete its first round (the warm-up): one interval plus the
    /// allowance when the harness schedules the rounds, two intervals plus the allowance for a schedule the
    /// harness does not drive (Ceph's own fires a new image's first snapshot up to two intervals late).
    /// Before the first completed round nothing is judged as lag; a failover inside it proves nothing.
    pub warmup: Duration,
    /// What the storage said its forced promote rolled back to (Regional-DR on RBD: the snapshot the rbd
    /// tool's own log names), when it said so: evidence beside a loss below the checkpoint.
    pub rollback: Option<String>,
}

impl RegionalBound {
    /// interval + allowance + one write period.
    pub fn max_window(&self) -> Duration {
        regional_max_window(self.interval, self.allowance, self.period)
    }
}

/// The declared Regional-DR bound on the loss window: the snapshot after the survivor's newest one was due
/// one interval later and may take `allowance` to complete; the newest record it holds may be one write
/// period older than its start.
pub fn regional_max_window(interval: Duration, allowance: Duration, period: Duration) -> Duration {
    interval + allowance + period
}

/// What a DR action promises.
#[derive(Clone, Debug, PartialEq)]
pub enum Bound {
    /// Relocate (and Metro-DR failover): every acknowledged record survives; with `stop`, the STOP record
    /// of that sequence must survive too (a graceful shutdown completed and was replicated).
    NoLoss { stop: Option<u64> },
    /// Regional-DR failover.
    Window(RegionalBound),
}

impl Bound {
    /// The promise in words.
    pub fn promise(&self) -> &'static str {
        match self {
            Bound::NoLoss { stop: Some(_) } => "its promise, no acknowledged write lost and the STOP record on disk",
            Bound::NoLoss { stop: None } => "its promise, no acknowledged write lost",
            Bound::Window(_) => "its promise, the loss window within the declared bound",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Conclusion {
    #[default]
    Passed,
    /// The system under test fell short (exit 1).
    Failed,
    /// Nothing could be proven either way (exit 2).
    Inconclusive,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub conclusion: Conclusion,
    pub passed: bool,
    pub acked: u64,
    pub stable: u64,
    /// Acknowledged records not on disk, as inclusive ranges.
    pub lost: Vec<(u64, u64)>,
    pub lost_count: u64,
    /// Records on disk that were never acknowledged (in flight at the fault).
    pub indeterminate: u64,
    /// Acknowledged records rewritten by a later writer boot (not judged).
    pub superseded: u64,
    pub holes: Vec<(u64, u64)>,
    pub corrupt: Vec<(u64, String)>,
    pub chain_breaks: Vec<u64>,
    pub stop_present: Option<bool>,
    /// Fault time minus the ack time of the newest surviving acknowledged record, in ms.
    pub loss_window_ms: Option<f64>,
    pub bound_ms: Option<f64>,
    pub newest_surviving: Option<u64>,
    /// The checkpoint the must-survive check ran against (None: it did not run, and the verdict says why).
    pub must_survive_checked_against: Option<String>,
    /// The replication warm-up: from the writer's first acknowledgement to the first round completed after
    /// it (measured), and how long it may take (declared). Not judged as lag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup_allowed_ms: Option<f64>,
    /// Replication rounds judged against the allowance, and the longest measured.
    pub syncs_judged: usize,
    pub longest_sync_ms: Option<f64>,
    /// Split brain: records the old writer had acknowledged after it was fenced, and records it wrote
    /// after the fence found on the survivor (both must be empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acked_after_fence: Vec<(u64, u64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub old_writer_on_survivor: Vec<(u64, u64)>,
    /// Split brain: the first write of the old writer refused after the fence (an I/O error), the proof
    /// that it tried and the fence held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_after_fence: Option<String>,
    /// A disk cloned from a golden image: its golden blocks as the VM's site read them back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub golden: Option<crate::golden::GoldenCheck>,
    /// The disks of a VM of several disks after a failover: how far apart in time what each kept is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skew: Option<DiskSkew>,
    /// Why it failed or is inconclusive (empty when passed).
    pub why: Vec<String>,
}

/// A clone's golden blocks, read back on the site that serves the VM, must be exactly what the golden
/// image held: the VM never wrote there, so anything else is data the storage lost or damaged.
pub fn judge_golden(check: crate::golden::GoldenCheck) -> Verdict {
    let mut v = Verdict::default();
    if !check.intact() {
        v.conclusion = Conclusion::Failed;
        v.passed = false;
        v.why.push(check.describe());
    } else {
        v.passed = true;
    }
    v.golden = Some(check);
    v
}

/// How far apart in time the disks of one VM are after a failover: for each disk, how long before the
/// fault its newest surviving record was acknowledged (its loss window); the skew is the greatest minus the
/// least. Crash-consistent across disks means the skew stays within what the snapshots of one round
/// spread over (plus a write period); disks snapshotted independently can be up to an interval apart.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskSkew {
    /// (disk, its newest surviving record, how long before the fault it was acknowledged in ms).
    pub disks: Vec<(String, Option<u64>, Option<f64>)>,
    pub skew_ms: Option<f64>,
    pub bound_ms: f64,
}

/// The disks of one VM after a failover, each judged already (`disks`: its name and its verdict), must
/// hold data from points in time at most `bound` apart. A disk that kept no acknowledged record cannot be
/// placed in time: the VM's disks are then as far apart as they can be, and the verdict fails naming it.
pub fn judge_skew(disks: &[(String, &Verdict)], bound: Duration) -> Verdict {
    let mut v = Verdict::default();
    let mut skew = DiskSkew { bound_ms: bound.as_secs_f64() * 1e3, ..Default::default() };
    for (disk, d) in disks {
        skew.disks.push((disk.clone(), d.newest_surviving, d.loss_window_ms));
    }
    let placed: Vec<(&str, f64)> = skew.disks.iter().filter_map(|(d, n, w)| n.and(*w).map(|w| (d.as_str(), w))).collect();
    let unplaced: Vec<&str> = skew.disks.iter().filter(|(_, n, w)| n.is_none() || w.is_none()).map(|(d, _, _)| d.as_str()).collect();
    if disks.len() < 2 {
        v.conclusion = Conclusion::Inconclusive;
        v.why.push(format!("{} disk judged: a skew needs the disks of a VM of several", disks.len()));
    } else if !unplaced.is_empty() {
        v.conclusion = Conclusion::Failed;
        v.why.push(format!("{} kept no acknowledged record: the VM's disks cannot be from one point in time", unplaced.join(", ")));
    } else {
        let newest = placed.iter().copied().fold(None::<(&str, f64)>, |a, x| if a.is_none_or(|a| x.1 < a.1) { Some(x) } else { a });
        let oldest = placed.iter().copied().fold(None::<(&str, f64)>, |a, x| if a.is_none_or(|a| x.1 > a.1) { Some(x) } else { a });
        if let (Some(n), Some(o)) = (newest, oldest) {
            let ms = o.1 - n.1;
            skew.skew_ms = Some(ms);
            if ms > skew.bound_ms {
                v.conclusion = Conclusion::Failed;
                v.why.push(format!(
                    "the VM's disks are {:.2} s apart after the failover (bound {:.2} s): {}'s newest surviving record was acknowledged {:.2} s before the fault, {}'s {:.2} s before",
                    ms / 1e3,
                    skew.bound_ms / 1e3,
                    n.0,
                    n.1 / 1e3,
                    o.0,
                    o.1 / 1e3
                ));
            }
        }
    }
    v.passed = v.conclusion == Conclusion::Passed;
    v.skew = Some(skew);
    v
}

/// The witness's record of the writers: every acknowledgement, the STOP records of graceful shutdowns
/// (expected on disk, never indeterminate), and lines from the probe the witness could not read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub acks: Vec<Ack>,
    /// (boot, sequence) of each graceful shutdown's STOP record.
    pub stops: Vec<(u64, u64)>,
    /// Lines from the probe that could not be parsed (an ack among them would be missing).
    pub garbled: usize,
    /// Durable write latency of every acknowledged record (pwrite + fdatasync), microseconds. Not judged.
    pub latencies_us: Vec<u32>,
    /// (boot, witness time, message) of each error a writer reported: a write the storage refused (a
    /// fenced client gets an I/O error) among them.
    pub errors: Vec<(u64, Wt, String)>,
    /// Writer boots outside this judgement: those before the previous DR action (judged by it) and those
    /// started after the action this history was frozen for. Their records on a scan are theirs, neither
    /// judged nor counted as unacknowledged.
    pub unjudged_boots: Vec<u64>,
}

fn ranges(seqs: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = vec![];
    for s in seqs {
        match v.last_mut() {
            Some(r) if r.1 + 1 == s => r.1 = s,
            _ => v.push((s, s)),
        }
    }
    v
}

fn fmt_ranges(r: &[(u64, u64)]) -> String {
    let parts: Vec<String> = r.iter().take(8).map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    let more = if r.len() > 8 { format!(" and {} more ranges", r.len() - 8) } else { String::new() };
    format!("{}{more}", parts.join(", "))
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Judges the history against `scan`. `fault_at` is when the primary was lost (failover).
pub fn judge(h: &History, scan: &ScanReport, fault_at: Option<Wt>, bound: &Bound) -> Verdict {
    // The owner of a sequence is the latest boot that acknowledged it: a writer resumed after a failover
    // legitimately rewrites sequences its predecessor lost. (Callers pass only the boots a DR action is
    // judged on, so a writer started after the action cannot own what was lost in it.)
    let mut owner: BTreeMap<u64, Ack> = BTreeMap::new();
    let mut superseded = 0;
    let mut by_time: Vec<&Ack> = h.acks.iter().collect();
    by_time.sort_by_key(|a| a.at);
    for a in by_time {
        if owner.insert(a.seq, *a).is_some() {
            superseded += 1;
        }
    }
    let mut v = Verdict { acked: owner.len() as u64, superseded, ..Default::default() };
    let mut lost = vec![];
    let mut newest: Option<Ack> = None;
    for a in owner.values() {
        if scan.boot_of(a.seq) == Some(a.boot) {
            v.stable += 1;
            if newest.is_none_or(|n| a.at > n.at) {
                newest = Some(*a);
            }
        } else {
            lost.push(a.seq);
        }
    }
    v.lost_count = lost.len() as u64;
    v.lost = ranges(lost);
    // Indeterminate: on disk, never acknowledged, not a STOP record. The probe has at most one write in
    // flight, so more than one per writer boot means acknowledgements went missing on the way to the witness.
    let acked: HashSet<(u64, u64)> = h.acks.iter().map(|a| (a.boot, a.seq)).collect();
    let mut per_boot: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for &(a, b, boot) in scan.ranges.iter().filter(|r| !h.unjudged_boots.contains(&r.2)) {
        for s in a..=b {
            if !acked.contains(&(boot, s)) && !h.stops.contains(&(boot, s)) && scan.stop != Some(s) {
                per_boot.entry(boot).or_default().push(s);
            }
        }
    }
    v.indeterminate = per_boot.values().map(|s| s.len() as u64).sum();
    v.holes = scan.holes();
    v.corrupt = scan.corrupt.iter().map(|(b, c)| (*b, c.as_str().to_string())).collect();
    v.chain_breaks = scan.chain_breaks.clone();
    v.newest_surviving = newest.map(|n| n.seq);

    // The writer at the fault, and since when it wrote.
    let writer = h.acks.iter().filter(|a| fault_at.is_none_or(|f| a.at <= f)).max_by_key(|a| a.at).map(|a| a.boot);
    let writing_since = writer.and_then(|w| h.acks.iter().filter(|a| a.boot == w).map(|a| a.at).min());
    if let Some(f) = fault_at {
        // From the newest surviving record (with nothing surviving, the writer's first acknowledgement) to
        // the fault, or to the newest lost record if that was acknowledged later: what was lost is inside
        // the window whatever the fault's recorded time, so the window is never 0 when records acknowledged
        // after the newest survivor are gone.
        let newest_lost = owner.values().filter(|a| scan.boot_of(a.seq) != Some(a.boot)).map(|a| a.at).max();
        let end = newest_lost.map_or(f, |l| l.max(f));
        let reference = newest.map(|n| n.at).or(writing_since);
        v.loss_window_ms = reference.map(|r| end.since(r).as_secs_f64() * 1e3);
    }

    let mut failed = vec![];
    let mut unproven = vec![];
    if !v.corrupt.is_empty() {
        let c: Vec<String> = v.corrupt.iter().take(8).map(|(b, r)| format!("block {b} ({r})")).collect();
        failed.push(format!("corrupt records on disk: {}", c.join(", ")));
    }
    if !v.holes.is_empty() {
        failed.push(format!("holes below the newest record: {}", fmt_ranges(&v.holes)));
    }
    if !v.chain_breaks.is_empty() {
        failed.push(format!("records out of chain: {}", fmt_ranges(&ranges(v.chain_breaks.iter().copied()))));
    }
    for (boot, seqs) in per_boot.iter().filter(|(_, s)| s.len() > 1) {
        unproven.push(format!(
            "{} records of writer boot {boot:016x} are on disk but were never acknowledged ({}); at most one write is in flight, so acknowledgements were lost on the way to the witness",
            seqs.len(),
            fmt_ranges(&ranges(seqs.iter().copied()))
        ));
    }
    if h.garbled > 0 {
        unproven.push(format!("{} lines from the probe could not be read: an acknowledgement among them would be missing from the evidence", h.garbled));
    }
    match bound {
        Bound::NoLoss { stop } => {
            if v.lost_count > 0 {
                failed.push(format!("{} acknowledged records lost: {}", v.lost_count, fmt_ranges(&v.lost)));
            }
            if let Some(s) = stop {
                let present = scan.stop == Some(*s);
                v.stop_present = Some(present);
                if !present {
                    failed.push(format!("the STOP record {s} of the graceful shutdown is not on disk (found {:?})", scan.stop));
                }
            }
        }
        Bound::Window(b) => judge_window(&mut v, scan, fault_at, b, &owner, newest, writing_since, &mut failed, &mut unproven),
    }
    if v.acked == 0 {
        unproven.push("no write was acknowledged: there is nothing to judge".into());
    }
    v.conclusion = if !failed.is_empty() {
        Conclusion::Failed
    } else if !unproven.is_empty() {
        Conclusion::Inconclusive
    } else {
        Conclusion::Passed
    };
    v.passed = v.conclusion == Conclusion::Passed;
    failed.extend(unproven);
    v.why = failed;
    v
}

#[allow(clippy::too_many_arguments)]
fn judge_window(
    v: &mut Verdict,
    scan: &ScanReport,
    fault_at: Option<Wt>,
    b: &RegionalBound,
    owner: &BTreeMap<u64, Ack>,
    newest: Option<Ack>,
    writing_since: Option<Wt>,
    failed: &mut Vec<String>,
    unproven: &mut Vec<String>,
) {
    let max_window = b.max_window();
    v.bound_ms = Some(max_window.as_secs_f64() * 1e3);
    let Some(fault) = fault_at else {
        unproven.push("no fault time was recorded: the loss window cannot be judged".into());
        return;
    };
    v.warmup_allowed_ms = Some(b.warmup.as_secs_f64() * 1e3);
    v.warmup_ms =
        writing_since.and_then(|w| b.syncs.iter().filter_map(|s| s.completed).filter(|c| *c >= w && *c <= fault).min().map(|c| c.since(w).as_secs_f64() * 1e3));
    // Replication is judged against its declared allowance; a slow round never widens the bound.
    v.syncs_judged = b.syncs.len();
    v.longest_sync_ms = b.syncs.iter().filter_map(|s| s.sync_ms).reduce(f64::max);
    // A primary's first round is its protection's warm-up (the peer's replayer starts the other way after
    // a role change): it may take the warm-up; every later round the allowance.
    let first = b.syncs.iter().filter(|s| !s.untimed).map(|s| s.started).min();
    for s in b.syncs.iter().filter(|s| !s.untimed) {
        match s.completed {
            Some(c) if Some(s.started) == first && c.since(s.started) > b.warmup.max(b.allowance) => failed.push(format!(
                "replication lagged: snapshot {} took {}, more than the warm-up its primary's first round may take ({})",
                s.name,
                secs(c.since(s.started)),
                secs(b.warmup.max(b.allowance))
            )),
            Some(c) if Some(s.started) != first && c.since(s.started) > b.allowance => {
                failed.push(format!("replication lagged: snapshot {} took {}, allowance {}", s.name, secs(c.since(s.started)), secs(b.allowance)))
            }
            None if s.started < fault && fault.since(s.started) > b.allowance => failed.push(format!(
                "replication lagged: snapshot {} was not complete on the peer {} after it started, at the fault (allowance {})",
                s.name,
                secs(fault.since(s.started)),
                secs(b.allowance)
            )),
            _ => {}
        }
    }
    // Rounds that never happened are lag too: between consecutive completed rounds (and from the newest to
    // the fault) at most one interval plus the allowance may pass. A stall that catches up before the fault
    // does not pass. Before the first completed round is the warm-up, not judged here.
    let limit = b.interval + b.allowance;
    for g in round_gaps(&b.syncs, fault) {
        let gap = g.to.since(g.from);
        if gap <= limit {
            continue;
        }
        let what = format!(
            "replication lagged: no replication round completed for {} (after {}, until {}), more than one interval plus the allowance ({})",
            secs(gap),
            g.after,
            g.until,
            secs(limit)
        );
        if gap.saturating_sub(g.late) <= limit {
            unproven.push(format!(
                "{what}; but the harness asked for {} {} later than planned (a loaded host), so the lag is not the system's",
                g.until,
                secs(g.late)
            ));
        } else {
            failed.push(what);
        }
    }
    // No pass without proof: a checkpoint taken while the VM wrote is on the survivor, and acknowledged
    // records survived.
    let taken_while_writing = b.checkpoint.as_ref().filter(|c| writing_since.is_some_and(|w| c.started > w));
    let proof = match (taken_while_writing, &b.checkpoint) {
        (Some(c), _) => {
            // the checkpoint holds at least the writer's first record: this is a real check, never vacuous
            let must: Vec<u64> = owner.values().filter(|a| a.at < c.started && scan.boot_of(a.seq) != Some(a.boot)).map(|a| a.seq).collect();
            if !must.is_empty() {
                // the storage reported the checkpoint complete on the survivor, and its data is not there: the
                // promote took the survivor below it (the class of Ceph tracker 53537), or the report lied
                let ceph = b.rollback.as_ref().map(|r| format!(" (its forced promote rolled back to {r})")).unwrap_or_default();
                failed.push(format!(
                    "the survivor was rolled back below snapshot {}, which it had reported complete{ceph}: {} records acknowledged before {} started are lost: {}",
                    c.name,
                    must.len(),
                    c.name,
                    fmt_ranges(&ranges(must))
                ));
            }
            if newest.is_none() {
                failed.push("no acknowledged record survived".into());
            }
            v.must_survive_checked_against = Some(c.name.clone());
            Ok(())
        }
        (None, Some(c)) => Err(format!("the newest snapshot complete on the survivor ({}) was taken before the VM wrote its first record", c.name)),
        (None, None) => Err("no snapshot is complete on the survivor".to_string()),
    };
    let wrote = writing_since.map(|w| fault.since(w)).unwrap_or_default();
    if let Err(why) = proof {
        let needed = b.warmup.max(b.interval + b.allowance);
        if wrote < needed {
            unproven.push(format!(
                "inconclusive: {why}, and the VM wrote for only {} before the fault, inside the replication warm-up ({}: the first round may complete that late): no replicated snapshot could be expected; let the VM write for longer",
                secs(wrote),
                secs(needed)
            ));
        } else {
            failed.push(format!("{why}: nothing the VM wrote in {} is proven replicated", secs(wrote)));
        }
    }
    // with nothing surviving the window counts from the writer's first acknowledgement: still the promise
    if let Some(w) = v.loss_window_ms {
        let bound_ms = max_window.as_secs_f64() * 1e3;
        if w > bound_ms {
            let what = format!(
                "loss window {:.0} ms exceeds the bound {:.0} ms (interval {} + sync allowance {} + one write period; {} acknowledged records lost)",
                w,
                bound_ms,
                secs(b.interval),
                secs(b.allowance),
                v.lost_count
            );
            // the harness's own lateness in asking for rounds is never blamed on the system
            let late = b.syncs.iter().map(SyncSample::late).max().unwrap_or_default();
            if w - late.as_secs_f64() * 1e3 <= bound_ms {
                unproven.push(format!(
                    "{what}; but the harness asked for a round {} later than planned (a loaded host), so the excess is not the system's",
                    secs(late)
                ));
            } else {
                failed.push(what);
            }
        }
    }
}

/// A stretch of time without a completed replication round: from the completion of one round (or the
/// earliest it can have completed) to the next completion, or to the fault.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundGap {
    pub after: String,
    pub until: String,
    pub from: Wt,
    pub to: Wt,
    /// How late the harness asked for the round that ends the gap.
    pub late: Duration,
}

/// The gaps between consecutive completed rounds, and from the newest to the fault. An untimed round (found
/// complete without the witness timing it) completed somewhere between its start and when it was seen
/// complete (the fault, if only after it): the gap before it ends at its start, the gap after it starts at
/// the latest point (so neither is made longer than it can have been). Pure.
pub fn round_gaps(syncs: &[SyncSample], fault: Wt) -> Vec<RoundGap> {
    let mut done: Vec<(Wt, Wt, &SyncSample)> = syncs
        .iter()
        .filter_map(|s| match (s.completed, s.untimed) {
            // untimed: complete somewhere between its start and when it was seen complete (or the fault)
            (c, true) if s.started <= fault => Some((s.started, c.unwrap_or(fault).min(fault), s)),
            (Some(c), false) if c <= fault => Some((c, c, s)),
            _ => None,
        })
        .collect();
    done.sort_by_key(|d| (d.0, d.1));
    let mut v = vec![];
    for w in done.windows(2) {
        let (prev, next) = (&w[0], &w[1]);
        v.push(RoundGap { after: prev.2.name.clone(), until: next.2.name.clone(), from: prev.1, to: next.0.max(prev.1), late: next.2.late() });
    }
    if let Some(last) = done.last() {
        v.push(RoundGap { after: last.2.name.clone(), until: "the fault".into(), from: last.1, to: fault.max(last.1), late: Duration::ZERO });
    }
    v
}

/// Split brain. `old` is the writer boot left running on the lost site (frozen, then thawed); from
/// `fence_at` on it must not write: none of its writes may be acknowledged after the fence, and nothing it
/// wrote after the fence may be on the survivor's disk (`scan`, read after the old writer had its chance).
/// The probe has at most one write in flight: the one after its last acknowledged record before the fence
/// may have reached storage before the fence, so its late ack is indeterminate, not a violation.
/// No pass without proof: the old writer must have written before the fence, and must still have been
/// running when judged or have reported a write refused after the fence (an I/O error: the storage fence
/// held); the survivor must hold the new writer's records.
pub fn judge_split_brain(h: &History, old: u64, fence_at: Wt, scan: &ScanReport, old_still_running: bool) -> Verdict {
    let mine: Vec<&Ack> = h.acks.iter().filter(|a| a.boot == old).collect();
    let last = mine.iter().filter(|a| a.at <= fence_at).map(|a| a.seq).max();
    let mut v = Verdict { acked: mine.len() as u64, ..Default::default() };
    let Some(last) = last else {
        v.conclusion = Conclusion::Inconclusive;
        v.why.push("the old writer acknowledged nothing before the fence: there is no old writer to judge".into());
        return v;
    };
    let in_flight = last + 1;
    let mut after: Vec<u64> = mine.iter().filter(|a| a.at > fence_at && a.seq != in_flight).map(|a| a.seq).collect();
    after.sort_unstable();
    after.dedup();
    v.indeterminate = mine.iter().any(|a| a.at > fence_at && a.seq == in_flight) as u64;
    v.acked_after_fence = ranges(after);
    v.old_writer_on_survivor = ranges(scan.ranges.iter().filter(|r| r.2 == old && r.1 > in_flight).flat_map(|r| r.0.max(in_flight + 1)..=r.1));
    v.corrupt = scan.corrupt.iter().map(|(b, c)| (*b, c.as_str().to_string())).collect();
    v.chain_breaks = scan.chain_breaks.clone();
    let mut failed = vec![];
    // the write in flight at the fence, acknowledged after it, was durable before the fence (nothing could
    // acknowledge it after): the survivor must hold it, written by the old writer
    if v.indeterminate == 1 && scan.boot_of(in_flight) != Some(old) {
        v.lost = vec![(in_flight, in_flight)];
        v.lost_count = 1;
        failed.push(format!(
            "record {in_flight} of the old writer, in flight at the fence and acknowledged after it, is not on the survivor: lost, or written after the fence"
        ));
    }
    if !v.acked_after_fence.is_empty() {
        failed.push(format!("split brain: the old writer's writes were acknowledged after the fence: {}", show(&v.acked_after_fence)));
    }
    if !v.old_writer_on_survivor.is_empty() {
        failed.push(format!("split brain: the survivor holds records the old writer wrote after the fence: {}", show(&v.old_writer_on_survivor)));
    }
    if !v.corrupt.is_empty() || !v.chain_breaks.is_empty() {
        failed.push(format!("the survivor's disk is damaged: {} corrupt blocks, chain breaks at {:?}", v.corrupt.len(), v.chain_breaks));
    }
    if !failed.is_empty() {
        v.conclusion = Conclusion::Failed;
        v.why = failed;
        return v;
    }
    if !scan.ranges.iter().any(|r| r.2 != old && r.1 > last) {
        v.why.push("the survivor holds nothing the new writer wrote: nothing shows it served".into());
    }
    v.refused_after_fence = h
        .errors
        .iter()
        .filter(|(b, at, _)| *b == old && *at > fence_at)
        .min_by_key(|e| e.1)
        .map(|e| format!("+{:.1}s after the fence: {}", e.1.since(fence_at).as_secs_f64(), e.2));
    if !old_still_running && v.refused_after_fence.is_none() {
        v.why.push("the old writer was gone when judged and reported no refused write: nothing shows it tried to write after the fence".into());
    }
    v.conclusion = if v.why.is_empty() { Conclusion::Passed } else { Conclusion::Inconclusive };
    v.passed = v.conclusion == Conclusion::Passed;
    v
}

fn show(r: &[(u64, u64)]) -> String {
    let n: u64 = r.iter().map(|(a, b)| b - a + 1).sum();
    let list = r.iter().take(5).map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect::<Vec<_>>().join(", ");
    format!("{n} records ({list}{})", if r.len() > 5 { ", ..." } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dr_probe::Corruption;
    use proptest::prelude::*;

    fn kept(newest: Option<u64>, window_ms: Option<f64>) -> Verdict {
        Verdict { newest_surviving: newest, loss_window_ms: window_ms, passed: true, ..Default::default() }
    }

    #[test]
    fn disks_snapshotted_together_are_close_and_independent_ones_are_not() {
        let (a, b, c) = (kept(Some(410), Some(1210.0)), kept(Some(399), Some(1390.0)), kept(Some(402), Some(1330.0)));
        let together = judge_skew(&[("vm0-disk1".into(), &a), ("vm0-disk2".into(), &b), ("vm0-disk3".into(), &c)], Duration::from_secs(1));
        assert_eq!(together.conclusion, Conclusion::Passed, "{:?}", together.why);
        assert!((together.skew.as_ref().unwrap().skew_ms.unwrap() - 180.0).abs() < 1e-6);
        // a third of an interval apart each (5 s interval, 3 disks): 3.3 s between the first and the last
        let c = kept(Some(250), Some(4540.0));
        let apart = judge_skew(&[("vm0-disk1".into(), &a), ("vm0-disk2".into(), &b), ("vm0-disk3".into(), &c)], Duration::from_secs(1));
        assert_eq!(apart.conclusion, Conclusion::Failed);
        assert!(apart.why[0].starts_with("the VM's disks are 3.33 s apart after the failover (bound 1.00 s): vm0-disk1's"), "{:?}", apart.why);
        assert!(apart.why[0].contains("vm0-disk3's 4.54 s before"), "{:?}", apart.why);
    }

    #[test]
    fn a_disk_that_kept_nothing_fails_the_skew_and_one_disk_proves_nothing() {
        let (a, none) = (kept(Some(410), Some(1210.0)), kept(None, None));
        let v = judge_skew(&[("vm0-disk1".into(), &a), ("vm0-disk2".into(), &none)], Duration::from_secs(1));
        assert_eq!(v.conclusion, Conclusion::Failed);
        assert!(v.why[0].starts_with("vm0-disk2 kept no acknowledged record"), "{:?}", v.why);
        let one = judge_skew(&[("vm0-disk1".into(), &a)], Duration::from_secs(1));
        assert_eq!(one.conclusion, Conclusion::Inconclusive);
    }

    const B1: u64 = 0xb1;
    const B2: u64 = 0xb2;
    const S: Duration = Duration::from_secs(1);

    /// Acks 1..=n at 20 ms intervals starting at t=1000 ms.
    fn acks(n: u64, boot: u64) -> Vec<Ack> {
        (1..=n).map(|s| Ack { seq: s, at: Wt::from_ms(1000 + 20 * s), boot }).collect()
    }

    fn hist(acks: Vec<Ack>) -> History {
        History { acks, ..Default::default() }
    }

    fn scan(ranges: &[(u64, u64, u64)]) -> ScanReport {
        let mut r = ScanReport { ranges: ranges.to_vec(), ..Default::default() };
        r.highest_contiguous = if ranges.first().is_some_and(|x| x.0 == 1) { ranges[0].1 } else { 0 };
        r
    }

    const NOLOSS: Bound = Bound::NoLoss { stop: None };

    /// A 5 s interval, 1 s allowance, 20 ms period; checkpoint `ck` started at `ck_ms`, synced in 1 s.
    fn regional(ck_ms: Option<u64>) -> RegionalBound {
        RegionalBound {
            interval: 5 * S,
            allowance: S,
            warmup: 6 * S,
            period: Duration::from_millis(20),
            checkpoint: ck_ms.map(|ms| Checkpoint { name: "a/7".into(), started: Wt::from_ms(ms) }),
            syncs: ck_ms.map(|ms| SyncSample::new("a/7".into(), Wt::from_ms(ms), Some(Wt::from_ms(ms + 1000)))).into_iter().collect(),
            rollback: None,
        }
    }

    fn window(ck_ms: Option<u64>) -> Bound {
        Bound::Window(regional(ck_ms))
    }

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            acks: Vec<Ack>,
            scan: ScanReport,
            fault: Option<Wt>,
            bound: Bound,
            conclusion: Conclusion,
            lost: u64,
            indeterminate: u64,
        }
        use Conclusion::*;
        // 100 records acked 1020..3000 ms; checkpoint at 2500 ms (seqs 1..74 acked before it).
        let cases = vec![
            Case {
                name: "all there",
                acks: acks(100, B1),
                scan: scan(&[(1, 100, B1)]),
                fault: None,
                bound: NOLOSS,
                conclusion: Passed,
                lost: 0,
                indeterminate: 0,
            },
            Case {
                name: "one in flight survived",
                acks: acks(100, B1),
                scan: scan(&[(1, 101, B1)]),
                fault: None,
                bound: NOLOSS,
                conclusion: Passed,
                lost: 0,
                indeterminate: 1,
            },
            Case {
                name: "two unacked: evidence gap",
                acks: acks(100, B1),
                scan: scan(&[(1, 102, B1)]),
                fault: None,
                bound: NOLOSS,
                conclusion: Inconclusive,
                lost: 0,
                indeterminate: 2,
            },
            Case {
                name: "tail lost",
                acks: acks(100, B1),
                scan: scan(&[(1, 90, B1)]),
                fault: None,
                bound: NOLOSS,
                conclusion: Failed,
                lost: 10,
                indeterminate: 0,
            },
            Case {
                name: "hole",
                acks: acks(100, B1),
                scan: scan(&[(1, 40, B1), (42, 100, B1)]),
                fault: None,
                bound: NOLOSS,
                conclusion: Failed,
                lost: 1,
                indeterminate: 0,
            },
            Case {
                name: "stale boot under the same seqs",
                acks: acks(100, B1),
                scan: scan(&[(1, 100, B2)]),
                fault: None,
                bound: NOLOSS,
                conclusion: Failed,
                lost: 100,
                indeterminate: 100,
            },
            Case {
                name: "nothing acked",
                acks: vec![],
                scan: scan(&[(1, 1, B1)]),
                fault: None,
                bound: NOLOSS,
                conclusion: Inconclusive,
                lost: 0,
                indeterminate: 1,
            },
            // fault at 3100 ms; newest surviving ack is seq 90 at 2800 ms: window 300 ms, bound 6020 ms
            Case {
                name: "window within",
                acks: acks(100, B1),
                scan: scan(&[(1, 90, B1)]),
                fault: Some(Wt::from_ms(3100)),
                bound: window(Some(2500)),
                conclusion: Passed,
                lost: 10,
                indeterminate: 0,
            },
            Case {
                name: "window exceeded",
                acks: acks(100, B1),
                scan: scan(&[(1, 90, B1)]),
                fault: Some(Wt::from_ms(9200)),
                bound: window(Some(2500)),
                conclusion: Failed,
                lost: 10,
                indeterminate: 0,
            },
            Case {
                name: "window but a hole",
                acks: acks(100, B1),
                scan: scan(&[(1, 50, B1), (52, 90, B1)]),
                fault: Some(Wt::from_ms(3100)),
                bound: window(Some(2500)),
                conclusion: Failed,
                lost: 11,
                indeterminate: 0,
            },
            // a blank survivor never passes: after long writing it fails, after a short one it proves nothing
            Case {
                name: "blank disk, wrote 8 s",
                acks: acks(100, B1),
                scan: scan(&[]),
                fault: Some(Wt::from_ms(9020)),
                bound: window(None),
                conclusion: Failed,
                lost: 100,
                indeterminate: 0,
            },
            Case {
                name: "blank disk, wrote 2 s",
                acks: acks(100, B1),
                scan: scan(&[]),
                fault: Some(Wt::from_ms(3100)),
                bound: window(None),
                conclusion: Inconclusive,
                lost: 100,
                indeterminate: 0,
            },
            Case {
                name: "checkpoint but nothing survived",
                acks: acks(100, B1),
                scan: scan(&[]),
                fault: Some(Wt::from_ms(3100)),
                bound: window(Some(2500)),
                conclusion: Failed,
                lost: 100,
                indeterminate: 0,
            },
            Case {
                name: "checkpoint older than the writer",
                acks: acks(100, B1),
                scan: scan(&[(1, 90, B1)]),
                fault: Some(Wt::from_ms(3100)),
                bound: window(Some(500)),
                conclusion: Inconclusive,
                lost: 10,
                indeterminate: 0,
            },
        ];
        for c in cases {
            let v = judge(&hist(c.acks), &c.scan, c.fault, &c.bound);
            assert_eq!(v.conclusion, c.conclusion, "{}: {:?}", c.name, v.why);
            assert_eq!(v.passed, c.conclusion == Passed, "{}", c.name);
            assert_eq!(v.lost_count, c.lost, "{}", c.name);
            assert_eq!(v.indeterminate, c.indeterminate, "{}", c.name);
            assert_eq!(v.why.is_empty(), v.passed, "{}", c.name);
        }
    }

    #[test]
    fn loss_window_is_fault_minus_newest_surviving_ack() {
        let v = judge(&hist(acks(100, B1)), &scan(&[(1, 90, B1)]), Some(Wt::from_ms(3100)), &NOLOSS);
        assert_eq!(v.newest_surviving, Some(90));
        assert_eq!(v.loss_window_ms, Some(300.0));
        assert_eq!(v.lost, vec![(91, 100)]);
    }

    #[test]
    fn bound_is_declared_and_a_slow_sync_fails_instead_of_widening_it() {
        // One snapshot took 14.2 s: the old bound (interval + longest sync) would have been 19.2 s and
        // excused a 12 s window. Now the bound stays 6.02 s and the lag itself fails the verdict.
        let mut b = regional(Some(2500));
        b.syncs.insert(0, SyncSample::new("a/5".into(), Wt::from_ms(100), Some(Wt::from_ms(14_300))));
        let v = judge(&hist(acks(100, B1)), &scan(&[(1, 90, B1)]), Some(Wt::from_ms(3100)), &Bound::Window(b.clone()));
        assert_eq!(v.bound_ms, Some(6020.0));
        assert_eq!(v.conclusion, Conclusion::Failed);
        assert!(
            v.why.iter().any(|w| w == "replication lagged: snapshot a/5 took 14.2 s, more than the warm-up its primary's first round may take (6.0 s)"),
            "{:?}",
            v.why
        );
        assert_eq!(v.longest_sync_ms, Some(14_200.0));
        assert_eq!(v.syncs_judged, 2);
        // the first round may take the warm-up, a later one only the allowance
        let mut slow_first = regional(Some(2500));
        slow_first.syncs.insert(0, SyncSample::new("a/5".into(), Wt::from_ms(100), Some(Wt::from_ms(3100))));
        assert!(judge(&hist(acks(100, B1)), &scan(&[(1, 90, B1)]), Some(Wt::from_ms(3100)), &Bound::Window(slow_first)).passed);
        let mut slow_later = regional(Some(2500));
        slow_later.syncs[0].completed = Some(Wt::from_ms(4600));
        slow_later.syncs.insert(0, SyncSample::new("a/5".into(), Wt::from_ms(100), Some(Wt::from_ms(600))));
        let v = judge(&hist(acks(100, B1)), &scan(&[(1, 90, B1)]), Some(Wt::from_ms(4700)), &Bound::Window(slow_later));
        assert!(v.why.iter().any(|w| w == "replication lagged: snapshot a/7 took 2.1 s, allowance 1.0 s"), "{:?}", v.why);
        // a snapshot still in flight at the fault, older than the allowance, is lag too
        let mut b2 = regional(Some(2500));
        b2.syncs.push(SyncSample::new("a/8".into(), Wt::from_ms(1200), None));
        let v = judge(&hist(acks(100, B1)), &scan(&[(1, 90, B1)]), Some(Wt::from_ms(3100)), &Bound::Window(b2));
        assert!(v.why.iter().any(|w| w.contains("snapshot a/8 was not complete on the peer 1.9 s after it started")), "{:?}", v.why);
        // one found complete on the survivor after the fault, untimed, is not judged
        let mut b4 = regional(Some(2500));
        b4.syncs.push(SyncSample { untimed: true, ..SyncSample::new("a/8".into(), Wt::from_ms(1200), None) });
        assert!(judge(&hist(acks(100, B1)), &scan(&[(1, 90, B1)]), Some(Wt::from_ms(3100)), &Bound::Window(b4)).passed);
        // one in flight for less than the allowance is fine
        let mut b3 = regional(Some(2500));
        b3.syncs.push(SyncSample::new("a/8".into(), Wt::from_ms(2900), None));
        assert!(judge(&hist(acks(100, B1)), &scan(&[(1, 90, B1)]), Some(Wt::from_ms(3100)), &Bound::Window(b3)).passed);
        assert_eq!(regional_max_window(5 * S, S, Duration::from_millis(20)), Duration::from_millis(6020));
    }

    #[test]
    fn must_survive_runs_against_the_checkpoint_and_says_so() {
        // Window generous, but record 50 (acked at 2000 ms) was acked before the checkpoint started
        // (2500 ms) and is missing: that must fail even though the window is small.
        let v = judge(&hist(acks(60, B1)), &scan(&[(1, 49, B1)]), Some(Wt::from_ms(2300)), &window(Some(2500)));
        assert_eq!(v.conclusion, Conclusion::Failed);
        assert!(
            v.why.iter().any(|w| w.contains(
                "the survivor was rolled back below snapshot a/7, which it had reported complete: 11 records acknowledged before a/7 started are lost: 50-60"
            )),
            "{:?}",
            v.why
        );
        assert_eq!(v.must_survive_checked_against.as_deref(), Some("a/7"));
        // without a checkpoint the check cannot run, and the verdict cannot pass
        let v = judge(&hist(acks(400, B1)), &scan(&[(1, 390, B1)]), Some(Wt::from_ms(9200)), &window(None));
        assert_eq!(v.must_survive_checked_against, None);
        assert!(!v.passed && v.why.iter().any(|w| w.contains("no snapshot is complete on the survivor")), "{:?}", v.why);
    }

    #[test]
    fn a_resumed_writer_cannot_hide_its_predecessors_loss() {
        // Boot 1 acked 1..=100 and lost 61..=100 in a failover at 3100 ms; boot 2 resumed at 61 and
        // acked 61..=120 after the fault. Judged with boot 2's acks the window saturates to zero; the
        // failover is judged on the writers up to the fault.
        let mut both = acks(100, B1);
        both.extend((61..=120).map(|s| Ack { seq: s, at: Wt::from_ms(20_000 + s), boot: B2 }));
        let disk = scan(&[(1, 60, B1), (61, 120, B2)]);
        let fault = Some(Wt::from_ms(9200));
        let hidden = judge(&hist(both), &disk, fault, &window(Some(1100)));
        assert_eq!(hidden.loss_window_ms, Some(0.0), "what mixing the boots would have hidden");
        let judged = judge(&hist(acks(100, B1)), &disk, fault, &window(Some(1100)));
        assert_eq!(judged.lost, vec![(61, 100)]);
        assert_eq!(judged.loss_window_ms, Some(9200.0 - 2200.0));
        assert_eq!(judged.conclusion, Conclusion::Failed, "{:?}", judged.why);
    }

    #[test]
    fn the_loss_window_is_never_zero_when_records_after_the_newest_survivor_are_lost() {
        // the recorded fault (a partition healed long before) is older than everything the writer acked:
        // records 61..=100 were acked after the newest survivor (60) and lost; the window reaches them
        let v = judge(&hist(acks(100, B1)), &scan(&[(1, 60, B1)]), Some(Wt::from_ms(500)), &NOLOSS);
        assert_eq!(v.loss_window_ms, Some(40.0 * 20.0), "{v:?}");
        let v = judge(&hist(acks(100, B1)), &scan(&[(1, 60, B1)]), Some(Wt::from_ms(500)), &window(Some(1500)));
        assert!(v.loss_window_ms.unwrap() > 0.0 && v.lost_count == 40);
        // nothing lost: the window is what it is (a fault after the last ack)
        let v = judge(&hist(acks(100, B1)), &scan(&[(1, 100, B1)]), Some(Wt::from_ms(3100)), &NOLOSS);
        assert_eq!(v.loss_window_ms, Some(100.0));
    }

    #[test]
    fn records_of_writers_after_the_action_are_theirs_and_cannot_hide_its_loss() {
        // a relocate froze boot 1's history (1..=100 acked, STOP 101); a later writer (boot 2) resumed at 61
        // after the loss and wrote 61..=160; a damage step re-scans the disk later
        let mut later = scan(&[(1, 60, B1), (61, 160, B2)]);
        later.corrupt.push((50, Corruption::BadPayload));
        let mut h = History { acks: acks(100, B1), stops: vec![(B1, 101)], ..Default::default() };
        h.unjudged_boots = vec![B2];
        let v = judge(&h, &later, None, &Bound::NoLoss { stop: Some(101) });
        assert_eq!(v.conclusion, Conclusion::Failed, "{:?}", v.why);
        assert_eq!((v.lost, v.indeterminate), (vec![(61, 100)], 0), "the later writer's records are not unacknowledged ones");
        assert!(v.why.iter().any(|w| w.contains("40 acknowledged records lost")) && v.why.iter().any(|w| w.contains("block 50")), "{:?}", v.why);
        assert_eq!(v.stop_present, Some(false));
    }

    /// 5 s interval, 1 s allowance: rounds complete every 5 s (1..=4), then none for 13 s, then one more.
    fn stalled(last_completed_ms: u64, late_ms: Option<f64>) -> RegionalBound {
        let mut b = regional(None);
        b.syncs = (0..4u64).map(|i| SyncSample::new(format!("a/{i}"), Wt::from_ms(1000 + 5000 * i), Some(Wt::from_ms(1500 + 5000 * i)))).collect();
        b.syncs.push(SyncSample { late_ms, ..SyncSample::new("a/9".into(), Wt::from_ms(last_completed_ms - 500), Some(Wt::from_ms(last_completed_ms))) });
        b.checkpoint = Some(Checkpoint { name: "a/9".into(), started: Wt::from_ms(last_completed_ms - 500) });
        b
    }

    #[test]
    fn rounds_that_never_happened_are_lag_even_when_replication_catches_up() {
        // a/3 completed at 16.5 s; nothing until a/9 at 29.5 s (13 s > 6 s); the fault at 30 s, records up
        // to 29.4 s survive: the window is tiny, the stall fails the drill all the same
        let n = 1420; // acks up to 29.4 s
        let v = judge(&hist(acks(n, B1)), &scan(&[(1, n, B1)]), Some(Wt::from_ms(30_000)), &Bound::Window(stalled(29_500, None)));
        assert_eq!(v.conclusion, Conclusion::Failed, "{:?}", v.why);
        assert!(v.why.iter().any(|w| w.contains("no replication round completed for 13.0 s (after a/3, until a/9)")), "{:?}", v.why);
        // the harness asked for a/9 8 s late (a loaded host): not the system's failure, inconclusive
        let v = judge(&hist(acks(n, B1)), &scan(&[(1, n, B1)]), Some(Wt::from_ms(30_000)), &Bound::Window(stalled(29_500, Some(8000.0))));
        assert_eq!(v.conclusion, Conclusion::Inconclusive, "{:?}", v.why);
        assert!(v.why.iter().any(|w| w.contains("later than planned")), "{:?}", v.why);
        // honest rounds every 5 s: no gap judged
        let gaps = round_gaps(&regional(Some(2500)).syncs, Wt::from_ms(4000));
        assert_eq!(gaps.len(), 1);
        // an untimed round (found after the fault) splits the last gap at its start
        let mut b = stalled(16_000, None);
        b.syncs.pop();
        b.syncs.push(SyncSample { untimed: true, ..SyncSample::new("a/5".into(), Wt::from_ms(21_000), None) });
        let g = round_gaps(&b.syncs, Wt::from_ms(24_000));
        assert_eq!((g[3].from, g[3].to, g[4].from, g[4].to), (Wt::from_ms(16_500), Wt::from_ms(21_000), Wt::from_ms(24_000), Wt::from_ms(24_000)));
    }

    #[test]
    fn a_failover_inside_the_warm_up_proves_nothing_and_is_not_blamed() {
        // Ceph's own schedule (1 m interval, 1 m allowance): the first round may take up to 3 m; the VM
        // wrote 100 s and no snapshot is complete yet: inconclusive, not failed
        let mut b = regional(None);
        (b.interval, b.allowance, b.warmup) = (60 * S, 60 * S, 180 * S);
        b.syncs.clear();
        let v = judge(&hist(acks(5000, B1)), &scan(&[]), Some(Wt::from_ms(102_000)), &Bound::Window(b.clone()));
        assert_eq!(v.conclusion, Conclusion::Inconclusive, "{:?}", v.why);
        assert!(v.why.iter().any(|w| w.contains("inside the replication warm-up (180.0 s")), "{:?}", v.why);
        // past the warm-up with nothing replicated: the system's failure, and the window over the bound said
        let v = judge(&hist(acks(10_000, B1)), &scan(&[]), Some(Wt::from_ms(202_000)), &Bound::Window(b));
        assert_eq!(v.conclusion, Conclusion::Failed, "{:?}", v.why);
        assert!(v.why.iter().any(|w| w.starts_with("loss window 200980 ms exceeds the bound 120020 ms")), "{:?}", v.why);
    }

    #[test]
    fn unreadable_probe_lines_make_the_evidence_inconclusive() {
        let h = History { acks: acks(100, B1), garbled: 1, ..Default::default() };
        let v = judge(&h, &scan(&[(1, 100, B1)]), None, &NOLOSS);
        assert_eq!(v.conclusion, Conclusion::Inconclusive, "{:?}", v.why);
        // but a real loss stays a failure whatever the evidence gap
        let v = judge(&h, &scan(&[(1, 90, B1)]), None, &NOLOSS);
        assert_eq!(v.conclusion, Conclusion::Failed);
    }

    #[test]
    fn stop_records_of_every_boot_are_expected_not_indeterminate() {
        // boot 1: 1..=100 then STOP 101 (relocated); boot 2: 102..=150 then STOP 151
        let mut a = acks(100, B1);
        a.extend((102..=150).map(|s| Ack { seq: s, at: Wt::from_ms(10_000 + s), boot: B2 }));
        let mut s = scan(&[(1, 101, B1), (102, 151, B2)]);
        s.stop = Some(151);
        let h = History { acks: a, stops: vec![(B1, 101), (B2, 151)], ..Default::default() };
        let v = judge(&h, &s, None, &Bound::NoLoss { stop: Some(151) });
        assert_eq!((v.indeterminate, v.conclusion), (0, Conclusion::Passed), "{:?}", v.why);
    }

    #[test]
    fn stop_record_must_survive() {
        let mut s = scan(&[(1, 101, B1)]);
        let h = History { acks: acks(100, B1), stops: vec![(B1, 101)], ..Default::default() };
        let v = judge(&h, &s, None, &Bound::NoLoss { stop: Some(101) });
        assert!(!v.passed && v.stop_present == Some(false));
        s.stop = Some(101);
        let v = judge(&h, &s, None, &Bound::NoLoss { stop: Some(101) });
        assert!(v.passed, "{:?}", v.why);
    }

    #[test]
    fn corruption_and_chain_breaks_always_fail() {
        let mut s = scan(&[(1, 100, B1)]);
        s.corrupt.push((101, Corruption::BadPayload));
        let v = judge(&hist(acks(100, B1)), &s, None, &NOLOSS);
        assert!(!v.passed && v.why[0].contains("block 101 (bad-payload-checksum)"), "{:?}", v.why);
        let mut s = scan(&[(1, 100, B1)]);
        s.chain_breaks.push(7);
        assert_eq!(judge(&hist(acks(100, B1)), &s, None, &NOLOSS).conclusion, Conclusion::Failed);
    }

    #[test]
    fn resumed_writer_supersedes_lost_tail() {
        // Boot 1 acked 1..100 and lost 81..100 in a failover; boot 2 resumed at 81 and wrote 81..120.
        let mut a = acks(100, B1);
        a.extend((81..=120).map(|s| Ack { seq: s, at: Wt::from_ms(10_000 + s), boot: B2 }));
        let v = judge(&hist(a), &scan(&[(1, 80, B1), (81, 120, B2)]), None, &NOLOSS);
        assert!(v.passed, "{:?}", v.why);
        assert_eq!((v.acked, v.superseded), (120, 20));
    }

    proptest! {
        /// Whatever is deleted from a complete disk, a no-loss verdict never passes when an acknowledged
        /// record is gone, and the count of lost records is exact.
        #[test]
        fn never_no_loss_when_data_lost(n in 1u64..400, cut in 0u64..400, gaps in proptest::collection::btree_set(1u64..400, 0..5)) {
            let cut = cut.min(n + 1);
            let present: Vec<u64> = (1..=cut).filter(|s| !gaps.contains(s)).collect();
            let mut rs: Vec<(u64, u64, u64)> = vec![];
            for s in present.iter().copied() {
                match rs.last_mut() { Some(r) if r.1 + 1 == s => r.1 = s, _ => rs.push((s, s, B1)) }
            }
            let v = judge(&hist(acks(n, B1)), &scan(&rs), None, &NOLOSS);
            let truly_lost = (1..=n).filter(|s| !present.contains(s)).count() as u64;
            prop_assert_eq!(v.lost_count, truly_lost);
            if truly_lost > 0 { prop_assert!(!v.passed); prop_assert_eq!(v.conclusion, Conclusion::Failed); }
        }

        /// A Regional-DR verdict never passes when a record acknowledged before the checkpoint is gone, nor
        /// when the window exceeds the declared bound, whatever the syncs measured.
        #[test]
        fn window_never_passes_beyond_the_declared_bound(n in 50u64..300, keep in 0u64..300, ck in 0u64..300, fault_extra in 0u64..12_000, slow in 0u64..30_000) {
            let keep = keep.min(n);
            let fault = Wt::from_ms(1000 + 20 * n + fault_extra);
            let mut b = regional(Some(1000 + 20 * ck.min(n) + 10));
            // a/3 is a later round (a/1 the primary's first, which may take the warm-up)
            b.syncs.insert(0, SyncSample::new("a/1".into(), Wt::from_ms(500), Some(Wt::from_ms(600))));
            b.syncs.push(SyncSample::new("a/3".into(), Wt::from_ms(1000), Some(Wt::from_ms(1000 + slow))));
            let rs: Vec<(u64, u64, u64)> = if keep > 0 { vec![(1, keep, B1)] } else { vec![] };
            let v = judge(&hist(acks(n, B1)), &scan(&rs), Some(fault), &Bound::Window(b.clone()));
            prop_assert_eq!(v.bound_ms, Some(b.max_window().as_secs_f64() * 1e3));
            if v.passed {
                prop_assert!(v.loss_window_ms.unwrap() <= v.bound_ms.unwrap());
                prop_assert!(keep >= ck.min(n));
                prop_assert!(slow <= 1000);
                prop_assert!(v.must_survive_checked_against.is_some());
            }
        }

        /// The loss window equals fault time minus the ack time of the newest surviving record.
        #[test]
        fn window_is_exact(n in 2u64..300, keep in 1u64..300, extra_ms in 0u64..5000) {
            let keep = keep.min(n);
            let fault = Wt::from_ms(1000 + 20 * n + extra_ms);
            let v = judge(&hist(acks(n, B1)), &scan(&[(1, keep, B1)]), Some(fault), &NOLOSS);
            let expect = (20 * (n - keep) + extra_ms) as f64;
            prop_assert!((v.loss_window_ms.unwrap() - expect).abs() < 1e-6);
        }
    }

    /// Old writer B1 acked 1..=100 (t 1020..3000 ms), fenced at 3500 ms; new writer B2 on the survivor.
    fn split(after: &[u64], survivor: &[(u64, u64, u64)], running: bool) -> Verdict {
        let mut a = acks(100, B1);
        a.extend(after.iter().map(|&s| Ack { seq: s, at: Wt::from_ms(20_000 + s), boot: B1 }));
        judge_split_brain(&hist(a), B1, Wt::from_ms(3500), &scan(survivor), running)
    }

    #[test]
    fn split_brain_refused_passes_only_with_proof() {
        let ok = split(&[], &[(1, 100, B1), (101, 400, B2)], true);
        assert_eq!(ok.conclusion, Conclusion::Passed, "{:?}", ok.why);
        // the one write in flight at the freeze, acknowledged after the thaw: indeterminate, not a violation
        let inflight = split(&[101], &[(1, 101, B1), (102, 400, B2)], true);
        assert_eq!(inflight.conclusion, Conclusion::Passed, "{:?}", inflight.why);
        assert_eq!(inflight.indeterminate, 1);
        // ... but only if the survivor holds it, from the old writer
        let missing = split(&[101], &[(1, 100, B1), (101, 400, B2)], true);
        assert_eq!(missing.conclusion, Conclusion::Failed);
        assert_eq!(missing.lost, [(101, 101)]);
        // no proof: the old writer died, or the new one never wrote
        assert_eq!(split(&[], &[(1, 100, B1), (101, 400, B2)], false).conclusion, Conclusion::Inconclusive);
        assert_eq!(split(&[], &[(1, 100, B1)], true).conclusion, Conclusion::Inconclusive);
        let none = judge_split_brain(&hist(acks(5, B2)), B1, Wt::from_ms(3500), &scan(&[(1, 5, B2)]), true);
        assert_eq!(none.conclusion, Conclusion::Inconclusive);
    }

    #[test]
    fn a_write_refused_after_the_fence_is_proof_the_fence_held() {
        // the storage fence made the old writer's next write fail with an I/O error: it died, but tried
        let mut h = hist(acks(100, B1));
        h.errors.push((B1, Wt::from_ms(21_000), "failed to write record 101: Input/output error".into()));
        let v = judge_split_brain(&h, B1, Wt::from_ms(3500), &scan(&[(1, 100, B1), (101, 400, B2)]), false);
        assert_eq!(v.conclusion, Conclusion::Passed, "{:?}", v.why);
        assert!(v.refused_after_fence.as_deref().unwrap().contains("+17.5s after the fence: failed to write record 101"), "{v:?}");
        // an error before the fence proves nothing about the fence
        let mut early = hist(acks(100, B1));
        early.errors.push((B1, Wt::from_ms(3000), "failed to write record 101: Input/output error".into()));
        assert_eq!(judge_split_brain(&early, B1, Wt::from_ms(3500), &scan(&[(1, 100, B1), (101, 400, B2)]), false).conclusion, Conclusion::Inconclusive);
        // and a refused write does not excuse writes that were acknowledged after the fence
        let mut both = hist(acks(100, B1));
        both.acks.extend([102, 103].map(|s| Ack { seq: s, at: Wt::from_ms(20_000 + s), boot: B1 }));
        both.errors.push((B1, Wt::from_ms(21_000), "I/O error".into()));
        assert_eq!(judge_split_brain(&both, B1, Wt::from_ms(3500), &scan(&[(1, 100, B1), (101, 400, B2)]), false).conclusion, Conclusion::Failed);
    }

    #[test]
    fn writes_of_the_old_writer_after_the_fence_fail_the_drill() {
        let acked = split(&[101, 102, 103], &[(1, 100, B1), (101, 400, B2)], true);
        assert_eq!(acked.conclusion, Conclusion::Failed);
        assert_eq!(acked.acked_after_fence, [(102, 103)]);
        assert!(acked.why.iter().any(|w| w.contains("acknowledged after the fence: 2 records (102-103)")), "{:?}", acked.why);
        // not acknowledged, but on the survivor's disk all the same (over the new writer's records)
        let landed = split(&[], &[(1, 100, B1), (101, 150, B2), (151, 160, B1), (161, 400, B2)], false);
        assert_eq!(landed.conclusion, Conclusion::Failed);
        assert_eq!(landed.old_writer_on_survivor, [(151, 160)]);
        // it still fails when the old writer is gone: a violation needs no proof of an attempt
        let mut broken = scan(&[(1, 100, B1), (101, 400, B2)]);
        broken.chain_breaks = vec![151];
        assert_eq!(judge_split_brain(&hist(acks(100, B1)), B1, Wt::from_ms(3500), &broken, true).conclusion, Conclusion::Failed);
    }
}
