//! Ceph stretch mode as evidence: the flags `ceph osd dump` reports (healthy, degraded, recovering) and the
//! pools' min_size, sampled over a scenario; the monitors' elections read from their own logs; and what
//! they add up to when the data sites are partitioned: which site the tiebreaker kept, whether the
//! monitors fell into an election loop (Ceph tracker 66471: the tiebreaker, pushed by the losing side's
//! proposals, restarts the election right after each win), and how long the VM went without an
//! acknowledged write. Pure: the lab samples and reads the logs; this module only judges.

use crate::clock::Wt;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// Where a stretch cluster stands, as its OSD map says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StretchState {
    /// Both data sites in: every placement group needs both sites to peer, pools at min_size 2.
    Healthy,
    /// A data site missing: placement groups peer with one site, pools at min_size 1.
    Degraded,
    /// The missing site back, its replicas catching up (still peering with one site).
    Recovering,
    /// Stretch mode is not enabled.
    Off,
}

impl fmt::Display for StretchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StretchState::Healthy => "healthy stretch",
            StretchState::Degraded => "degraded stretch",
            StretchState::Recovering => "recovering",
            StretchState::Off => "stretch mode off",
        })
    }
}

/// The stretch flags and the pool's replica counts from one `ceph osd dump`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Flags {
    pub state: StretchState,
    pub size: Option<u64>,
    pub min_size: Option<u64>,
    pub epoch: u64,
}

/// The flags in `ceph osd dump --format json` (they sit under `stretch_mode`, not at the top), with the
/// replica counts of `pool`.
pub fn parse_osd_dump(json: &str, pool: &str) -> Result<Flags, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("unreadable osd dump: {e}"))?;
    let epoch = v["epoch"].as_u64().ok_or("osd dump without an epoch")?;
    let sm = &v["stretch_mode"];
    let on = |k: &str| sm[k].as_u64().map(|x| x != 0).or_else(|| sm[k].as_bool()).unwrap_or(false);
    let state = if !on("stretch_mode_enabled") {
        StretchState::Off
    } else if on("recovering_stretch_mode") {
        StretchState::Recovering
    } else if on("degraded_stretch_mode") {
        StretchState::Degraded
    } else {
        StretchState::Healthy
    };
    let p = v["pools"].as_array().into_iter().flatten().find(|p| p["pool_name"] == pool);
    Ok(Flags { state, size: p.and_then(|p| p["size"].as_u64()), min_size: p.and_then(|p| p["min_size"].as_u64()), epoch })
}

/// One sample of the flags: `None` when no monitor quorum answered (the monitors electing, or cut off).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub at: Wt,
    pub flags: Option<Flags>,
}

/// A change of state or min_size, in the order seen.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    #[serde(rename = "atMs", serialize_with = "ms")]
    pub at: Wt,
    pub state: StretchState,
    pub min_size: Option<u64>,
}

fn ms<S: serde::Serializer>(w: &Wt, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((w.ms() * 10.0).round() / 10.0)
}

/// The samples that answered, collapsed to their changes.
pub fn transitions(samples: &[Sample]) -> Vec<Transition> {
    let mut out: Vec<Transition> = vec![];
    for s in samples {
        let Some(f) = &s.flags else { continue };
        if out.last().is_some_and(|t| t.state == f.state && t.min_size == f.min_size) {
            continue;
        }
        out.push(Transition { at: s.at, state: f.state, min_size: f.min_size });
    }
    out
}

/// A monitor's election event, from its own log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "event")]
pub enum ElectionEvent {
    /// It called an election.
    Called,
    /// It won one: it leads this quorum.
    Won { quorum: Vec<String> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Election {
    #[serde(rename = "atMs", serialize_with = "ms")]
    pub at: Wt,
    pub mon: String,
    #[serde(flatten)]
    pub event: ElectionEvent,
}

/// One line of a monitor's log, if it is an election event: (wall-clock Unix seconds, monitor, event).
/// The lines are the cluster-log entries a monitor writes to its own log:
/// `2026-11-30T01:02:03.456+0000 7f.. 0 log_channel(cluster) log [INF] : mon.a calling monitor election`,
/// `... : mon.a is new leader, mons a,a2,c in quorum (ranks 0,1,4)`.
pub fn parse_mon_log_line(line: &str) -> Option<(f64, String, ElectionEvent)> {
    let (stamp, rest) = line.split_once(' ')?;
    let msg = rest.split_once("] : ").map(|x| x.1)?;
    let (mon, what) = msg.strip_prefix("mon.")?.split_once(' ')?;
    let event = if what.starts_with("calling monitor election") {
        ElectionEvent::Called
    } else if let Some(q) = what.strip_prefix("is new leader, mons ") {
        let names = q.split_once(" in quorum")?.0;
        ElectionEvent::Won { quorum: names.split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect() }
    } else {
        return None;
    };
    // Ceph writes the zone as +0000
    let stamp = match stamp.len().checked_sub(5).map(|i| stamp.split_at(i)) {
        Some((t, z)) if (z.starts_with('+') || z.starts_with('-')) && !z.contains(':') => format!("{t}{}:{}", &z[..3], &z[3..]),
        _ => stamp.to_string(),
    };
    Some((crate::clock::parse_rfc3339(&stamp)?, mon.to_string(), event))
}

/// Every election event in a monitor's log at or after `since`, in time order.
pub fn elections_in(log: &str, since: Wt) -> Vec<Election> {
    let mut v: Vec<Election> = log
        .lines()
        .filter_map(parse_mon_log_line)
        .map(|(t, mon, event)| Election { at: Wt::from_unix_secs(t), mon, event })
        .filter(|e| e.at >= since)
        .collect();
    v.sort_by_key(|e| e.at);
    v
}

/// What a stretch cluster showed over a span: its flags as sampled, its monitors' elections, and which
/// data site each monitor stands in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence {
    pub samples: Vec<Sample>,
    pub elections: Vec<Election>,
    /// Monitor name -> its data site (the tiebreaker has none).
    pub mon_sites: std::collections::BTreeMap<String, String>,
}

impl Evidence {
    pub fn transitions(&self) -> Vec<Transition> {
        transitions(&self.samples)
    }

    /// The newest answered sample.
    pub fn latest(&self) -> Option<(Wt, &Flags)> {
        self.samples.iter().rev().find_map(|s| s.flags.as_ref().map(|f| (s.at, f)))
    }

    /// The data site whose monitors are in `quorum` (with the tiebreaker), if exactly one is.
    pub fn site_of_quorum(&self, quorum: &[String]) -> Option<String> {
        let mut sites: Vec<&String> = quorum.iter().filter_map(|m| self.mon_sites.get(m)).collect();
        sites.sort();
        sites.dedup();
        match sites[..] {
            [one] => Some(one.clone()),
            _ => None,
        }
    }

    /// What a data-site partition over [`from`, `to`] did to a VM on `vm_site` whose acknowledged writes
    /// came at `acks` (read at `now`).
    pub fn partition(&self, from: Wt, to: Wt, now: Wt, acks: &[Wt], vm_site: &str, budget: Option<Duration>) -> PartitionReport {
        let kept_quorum = last_quorum(&self.elections, from, to);
        let kept_site = kept_quorum.as_ref().and_then(|q| self.site_of_quorum(q));
        let elections_won = quorum_holds(&self.elections, from, to).len();
        let (stall, stall_from) = longest_stall(acks, from, to, now);
        // a loop that began in the partition can outlast it: the stall it caused is the window
        let until = to.max(Wt(stall_from.0 + stall.as_nanos() as u64));
        let degraded_after = self
            .samples
            .iter()
            .find(|s| s.at >= from && s.at <= to && s.flags.as_ref().is_some_and(|f| f.state == StretchState::Degraded))
            .map(|s| s.at.since(from));
        PartitionReport {
            kept_site,
            kept_quorum,
            elections_won,
            stall,
            budget,
            election_loop: election_loop(&self.elections, from, until),
            vm_site: vm_site.into(),
            degraded_after,
        }
    }

    /// For the summary: the transitions and the elections, times from `t0`.
    pub fn to_json(&self, t0: Wt) -> serde_json::Value {
        let rel = |w: Wt| (w.since(t0).as_secs_f64() * 1e4).round() / 10.0;
        serde_json::json!({
            "transitions": self.transitions().iter().map(|t| serde_json::json!({"atMs": rel(t.at), "state": t.state.to_string(), "minSize": t.min_size})).collect::<Vec<_>>(),
            "elections": self.elections.iter().map(|e| match &e.event {
                ElectionEvent::Called => serde_json::json!({"atMs": rel(e.at), "mon": e.mon, "event": "called"}),
                ElectionEvent::Won { quorum } => serde_json::json!({"atMs": rel(e.at), "mon": e.mon, "event": "won", "quorum": quorum}),
            }).collect::<Vec<_>>(),
            "unanswered": self.samples.iter().filter(|s| s.flags.is_none()).count(),
        })
    }
}

/// Monitors that won elections over and over without keeping their quorum.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ElectionLoop {
    /// Elections won in the loop.
    pub elections: usize,
    #[serde(rename = "spanMs", serialize_with = "dur_ms")]
    pub span: Duration,
    /// The longest any of the loop's quorums held.
    #[serde(rename = "longestQuorumMs", serialize_with = "dur_ms")]
    pub longest_quorum: Duration,
    #[serde(rename = "fromMs", serialize_with = "ms")]
    pub from: Wt,
}

fn dur_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e4).round() / 10.0)
}

fn opt_dur_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => dur_ms(d, s),
        None => s.serialize_none(),
    }
}

impl fmt::Display for ElectionLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "monitor election loop: {} elections in {:.0} s, no quorum held longer than {:.1} s",
            self.elections,
            self.span.as_secs_f64(),
            self.longest_quorum.as_secs_f64()
        )
    }
}

/// A quorum that holds shorter than this was not kept (in the loop Ceph 16.2.15 shows, each lasts ~1 s
/// and a new election follows ~6 s later).
pub const SHORT_QUORUM: Duration = Duration::from_secs(10);
/// So many short-lived quorums in a row make a loop (a cut's first minute can bring two or three
/// elections that then settle).
pub const LOOP_ELECTIONS: usize = 4;

/// How long each won quorum held within [`from`, `to`]: until a member of it called an election, another
/// monitor won one, or `to`. Elections called by monitors outside the quorum (the cut-off side keeps
/// calling them) do not end it.
pub fn quorum_holds(elections: &[Election], from: Wt, to: Wt) -> Vec<(Wt, Duration, Vec<String>)> {
    let inside: Vec<&Election> = elections.iter().filter(|e| e.at >= from && e.at <= to).collect();
    let mut out = vec![];
    for (i, e) in inside.iter().enumerate() {
        let ElectionEvent::Won { quorum } = &e.event else { continue };
        let end = inside[i + 1..]
            .iter()
            .find(|n| match &n.event {
                ElectionEvent::Called => quorum.contains(&n.mon),
                // two leaders of the same instant (both sides won against the tiebreaker): each ends the other
                ElectionEvent::Won { .. } => n.mon != e.mon || n.at > e.at,
            })
            .map(|n| n.at)
            .unwrap_or(to);
        out.push((e.at, end.since(e.at), quorum.clone()));
    }
    out
}

/// The longest run of at least `LOOP_ELECTIONS` consecutive won quorums each shorter than `SHORT_QUORUM`
/// within [`from`, `to`]: the loop, if there was one.
pub fn election_loop(elections: &[Election], from: Wt, to: Wt) -> Option<ElectionLoop> {
    let holds = quorum_holds(elections, from, to);
    let mut best: Option<ElectionLoop> = None;
    let mut i = 0;
    while i < holds.len() {
        let mut j = i;
        while j < holds.len() && holds[j].1 < SHORT_QUORUM {
            j += 1;
        }
        if j - i >= LOOP_ELECTIONS {
            let (start, end) = (holds[i].0, Wt(holds[j - 1].0 .0 + holds[j - 1].1.as_nanos() as u64));
            let lp = ElectionLoop {
                elections: j - i,
                span: end.since(start),
                longest_quorum: holds[i..j].iter().map(|h| h.1).max().unwrap_or_default(),
                from: start,
            };
            if best.as_ref().is_none_or(|b| lp.elections > b.elections) {
                best = Some(lp);
            }
        }
        i = j.max(i + 1);
    }
    best
}

/// The quorum standing at `to`: the last one won within [`from`, `to`].
pub fn last_quorum(elections: &[Election], from: Wt, to: Wt) -> Option<Vec<String>> {
    quorum_holds(elections, from, to).into_iter().last().map(|h| h.2)
}

/// The longest time without an acknowledged write that overlaps [`from`, `to`]: from the last ack at or
/// before `from` (or `from`) to the next ack, the last gap ending at the first ack after `to`, or at `now`
/// if none came. Returns the stall and when it began. `acks` in time order.
pub fn longest_stall(acks: &[Wt], from: Wt, to: Wt, now: Wt) -> (Duration, Wt) {
    let mut prev = acks.iter().rev().find(|a| **a <= from).copied().unwrap_or(from);
    let mut worst = (Duration::ZERO, prev);
    for a in acks.iter().filter(|a| **a > from) {
        let gap = a.since(prev);
        if gap > worst.0 {
            worst = (gap, prev);
        }
        prev = *a;
        if *a > to {
            return worst;
        }
    }
    let gap = now.since(prev);
    if gap > worst.0 {
        worst = (gap, prev);
    }
    worst
}

/// What a data-site partition did, judged against a stall budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionReport {
    /// The data site whose monitors formed the quorum standing when the partition healed (with the
    /// tiebreaker), if one did.
    pub kept_site: Option<String>,
    pub kept_quorum: Option<Vec<String>>,
    /// Elections won while the partition lasted.
    pub elections_won: usize,
    #[serde(rename = "stallMs", serialize_with = "dur_ms")]
    pub stall: Duration,
    #[serde(rename = "budgetMs", serialize_with = "opt_dur_ms")]
    pub budget: Option<Duration>,
    pub election_loop: Option<ElectionLoop>,
    pub vm_site: String,
    /// How long after the cut the cluster was first seen in degraded stretch mode (the other site's OSDs
    /// marked down), if it was while the partition lasted.
    #[serde(rename = "degradedAfterMs", serialize_with = "opt_dur_ms")]
    pub degraded_after: Option<Duration>,
}

impl PartitionReport {
    /// One line on what happened.
    pub fn line(&self) -> String {
        let kept = match (&self.kept_site, &self.kept_quorum) {
            (Some(s), Some(q)) => format!("the tiebreaker kept site {s} (quorum {})", q.join(",")),
            _ => "no quorum stood at the end".to_string(),
        };
        let degraded = match self.degraded_after {
            Some(d) => format!("degraded stretch mode {:.1} s after the cut", d.as_secs_f64()),
            None => "never degraded while cut".to_string(),
        };
        format!(
            "{kept}; {} elections won; {degraded}; the VM on site {} went {:.1} s without an acknowledged write",
            self.elections_won,
            self.vm_site,
            self.stall.as_secs_f64()
        )
    }

    /// Passed, or why not: an election loop is named first when it overlapped the stall, then the VM's
    /// site lost to the other, then the stall alone.
    pub fn judge(&self) -> Result<String, String> {
        let Some(budget) = self.budget else { return Ok(self.line()) };
        if self.stall <= budget {
            return Ok(format!("{}: within {:.0} s", self.line(), budget.as_secs_f64()));
        }
        let over = format!("the VM on site {} wrote nothing for {:.1} s, more than {:.0} s", self.vm_site, self.stall.as_secs_f64(), budget.as_secs_f64());
        if let Some(lp) = &self.election_loop {
            return Err(format!("{lp} (Ceph tracker 66471, fixed upstream by PR 57906 after 16.2.15): {over}"));
        }
        match &self.kept_site {
            Some(k) if *k != self.vm_site => Err(format!(
                "the tiebreaker kept site {k} (quorum {}): {over}, its site's replicas out until the partition healed",
                self.kept_quorum.clone().unwrap_or_default().join(",")
            )),
            None => Err(format!("no monitor quorum stood during the partition: {over}")),
            _ => Err(match self.degraded_after {
                Some(d) => format!("{over}; the other site's OSDs were marked down (degraded stretch mode) only {:.1} s after the cut", d.as_secs_f64()),
                None => format!("{over}; the cluster never went to degraded stretch mode while cut"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_from_the_osd_dump() {
        let dump = |deg: u8, rec: u8, min: u8| {
            format!(
                r#"{{"epoch":42,"stretch_mode":{{"stretch_mode_enabled":true,"stretch_bucket_count":2,"degraded_stretch_mode":{deg},"recovering_stretch_mode":{rec},"stretch_mode_bucket":8}},
                "pools":[{{"pool_name":"device_health_metrics","size":4,"min_size":2}},{{"pool_name":"rbd","size":4,"min_size":{min}}}]}}"#
            )
        };
        let f = parse_osd_dump(&dump(0, 0, 2), "rbd").unwrap();
        assert_eq!(f, Flags { state: StretchState::Healthy, size: Some(4), min_size: Some(2), epoch: 42 });
        assert_eq!(parse_osd_dump(&dump(1, 0, 1), "rbd").unwrap().state, StretchState::Degraded);
        // the site back: degraded is still set while recovering
        assert_eq!(parse_osd_dump(&dump(1, 1, 1), "rbd").unwrap().state, StretchState::Recovering);
        let off = r#"{"epoch":7,"stretch_mode":{"stretch_mode_enabled":false,"degraded_stretch_mode":0},"pools":[{"pool_name":"rbd","size":2,"min_size":1}]}"#;
        assert_eq!(parse_osd_dump(off, "rbd").unwrap(), Flags { state: StretchState::Off, size: Some(2), min_size: Some(1), epoch: 7 });
        assert!(parse_osd_dump("{}", "rbd").is_err() && parse_osd_dump("not json", "rbd").is_err());
        let s = |ms: u64, state: Option<(StretchState, u64)>| Sample {
            at: Wt::from_ms(ms),
            flags: state.map(|(state, m)| Flags { state, size: Some(4), min_size: Some(m), epoch: ms }),
        };
        let t = transitions(&[
            s(0, Some((StretchState::Healthy, 2))),
            s(1000, None),
            s(2000, Some((StretchState::Healthy, 2))),
            s(3000, Some((StretchState::Degraded, 1))),
            s(4000, Some((StretchState::Recovering, 1))),
            s(5000, Some((StretchState::Healthy, 2))),
        ]);
        let states: Vec<(u64, StretchState)> = t.iter().map(|t| (t.at.0 / 1_000_000, t.state)).collect();
        assert_eq!(states, [(0, StretchState::Healthy), (3000, StretchState::Degraded), (4000, StretchState::Recovering), (5000, StretchState::Healthy)]);
    }

    #[test]
    fn election_lines_from_a_monitors_log() {
        let called = "2026-11-30T01:02:03.456+0000 7f3a0c1f5700  0 log_channel(cluster) log [INF] : mon.a2 calling monitor election";
        let won = "2026-11-30T01:02:08.456+0000 7f3a0c1f5700  0 log_channel(cluster) log [INF] : mon.a is new leader, mons a,a2,c in quorum (ranks 0,1,4)";
        let (t, mon, e) = parse_mon_log_line(called).unwrap();
        assert_eq!((mon.as_str(), e), ("a2", ElectionEvent::Called));
        assert_eq!(t, crate::clock::unix_from_civil(2026, 11, 30, 1, 2, 3.456));
        let (t2, mon, e) = parse_mon_log_line(won).unwrap();
        assert_eq!((mon.as_str(), e), ("a", ElectionEvent::Won { quorum: vec!["a".into(), "a2".into(), "c".into()] }));
        assert!((t2 - t - 5.0).abs() < 1e-6);
        assert_eq!(parse_mon_log_line("2026-11-30T01:02:03.456+0000 7f 1 mon.a@0(leader) e3 handle_command mon_command"), None);
        assert_eq!(parse_mon_log_line(""), None);
        assert_eq!(parse_mon_log_line("garbage ] : mon.a calling monitor election"), None, "no timestamp, no event");
    }

    fn won(ms: u64, mon: &str, q: &str) -> Election {
        Election { at: Wt::from_ms(ms), mon: mon.into(), event: ElectionEvent::Won { quorum: q.split(',').map(String::from).collect() } }
    }
    fn called(ms: u64, mon: &str) -> Election {
        Election { at: Wt::from_ms(ms), mon: mon.into(), event: ElectionEvent::Called }
    }

    #[test]
    fn a_loop_is_many_short_quorums_in_a_row() {
        // run 1 of the lab notes: three quick re-elections, then a steady quorum: no loop
        let settled = vec![
            called(9_900, "c"),
            won(14_900, "a", "a,a2,c"),
            called(16_000, "c"),
            called(16_500, "b"), // the cut-off side calls elections all along: they end nothing
            won(21_000, "a", "a,a2,c"),
            called(22_000, "a2"),
            won(27_000, "a", "a,a2,c"),
            called(31_000, "b"),
        ];
        assert_eq!(election_loop(&settled, Wt::from_ms(0), Wt::from_ms(76_000)), None);
        let holds = quorum_holds(&settled, Wt::from_ms(0), Wt::from_ms(76_000));
        assert_eq!(holds.iter().map(|h| h.1.as_millis() as u64).collect::<Vec<_>>(), [1100, 1000, 49_000]);
        assert_eq!(last_quorum(&settled, Wt::from_ms(0), Wt::from_ms(76_000)).unwrap(), ["a", "a2", "c"]);
        // run 3: b1 re-won every ~6 s, each quorum held ~1 s, for the whole cut
        let mut storm = vec![won(15_000, "a", "a,a2,c"), won(15_000, "b", "b,b2,c")];
        for k in 0..20u64 {
            storm.push(called(16_000 + k * 6000, "c"));
            storm.push(won(21_000 + k * 6000, "b", "b,b2,c"));
        }
        let lp = election_loop(&storm, Wt::from_ms(0), Wt::from_ms(176_000)).unwrap();
        assert!(lp.elections >= 20, "{lp:?}");
        assert!(lp.longest_quorum <= Duration::from_millis(1000), "{lp:?}");
        assert!(lp.to_string().starts_with("monitor election loop: "), "{lp}");
        // the same storm ending: the loop is still found, the last quorum is b's
        assert_eq!(last_quorum(&storm, Wt::from_ms(0), Wt::from_ms(176_000)).unwrap(), ["b", "b2", "c"]);
    }

    /// Run 5 of the campaign here: the loop began 61 s into the partition and outlasted the heal; the VM
    /// wrote nothing from the cut until the loop ended. The loop is named though most of it came after.
    #[test]
    fn a_loop_outlasting_the_partition_is_found_in_the_stall() {
        let mut elections = vec![won(67_100, "a", "a,a2,c")];
        for k in 0..10u64 {
            elections.push(called(114_000 + k * 6000, "c"));
            elections.push(won(119_100 + k * 6000, "a", "a,a2,c"));
        }
        let mon_sites = [("a", "a"), ("a2", "a"), ("b", "b"), ("b2", "b")].into_iter().map(|(m, s)| (m.to_string(), s.to_string())).collect();
        let ev = Evidence { samples: vec![], elections, mon_sites };
        let acks: Vec<Wt> = [52_000, 168_500, 168_600].into_iter().map(Wt::from_ms).collect();
        let rep = ev.partition(Wt::from_ms(52_200), Wt::from_ms(127_200), Wt::from_ms(175_000), &acks, "a", Some(Duration::from_secs(60)));
        assert_eq!(rep.kept_site.as_deref(), Some("a"));
        let lp = rep.election_loop.clone().expect("the loop is found");
        assert!(lp.elections >= 8, "{lp:?}");
        assert!(rep.judge().unwrap_err().starts_with("monitor election loop"), "{:?}", rep.judge());
    }

    #[test]
    fn the_stall_is_the_longest_gap_overlapping_the_partition() {
        let acks: Vec<Wt> = [0, 100, 200, 1_000, 27_000, 27_100, 80_000].into_iter().map(Wt::from_ms).collect();
        // cut at 500 ms, healed at 76 s: the gap 1.0 -> 27.0 s and 27.1 -> 80 s (ended after the heal) count
        let (stall, from) = longest_stall(&acks, Wt::from_ms(500), Wt::from_ms(76_000), Wt::from_ms(90_000));
        assert_eq!((stall, from), (Duration::from_millis(52_900), Wt::from_ms(27_100)));
        // nothing after the cut until now: the stall runs to now
        let (stall, _) = longest_stall(&acks[..4], Wt::from_ms(500), Wt::from_ms(76_000), Wt::from_ms(90_000));
        assert_eq!(stall, Duration::from_millis(89_000));
        // no ack at all
        assert_eq!(longest_stall(&[], Wt::from_ms(500), Wt::from_ms(600), Wt::from_ms(700)).0, Duration::from_millis(200));
    }

    #[test]
    fn a_stall_over_budget_names_its_cause() {
        let r = |stall_s: u64, kept: Option<&str>, lp: Option<ElectionLoop>| PartitionReport {
            kept_site: kept.map(String::from),
            kept_quorum: kept.map(|k| vec![k.to_string(), format!("{k}2"), "c".into()]),
            elections_won: 9,
            stall: Duration::from_secs(stall_s),
            budget: Some(Duration::from_secs(60)),
            election_loop: lp,
            vm_site: "a".into(),
            degraded_after: Some(Duration::from_secs(50)),
        };
        assert!(r(25, Some("a"), None).judge().unwrap().contains("the tiebreaker kept site a (quorum a,a2,c)"));
        let lp = ElectionLoop { elections: 27, span: Duration::from_secs(161), longest_quorum: Duration::from_millis(1200), from: Wt::from_ms(15_000) };
        let e = r(176, Some("b"), Some(lp)).judge().unwrap_err();
        assert!(e.starts_with("monitor election loop: 27 elections in 161 s, no quorum held longer than 1.2 s"), "{e}");
        assert!(e.contains("wrote nothing for 176.0 s, more than 60 s"), "{e}");
        let e = r(75, Some("b"), None).judge().unwrap_err();
        assert!(e.starts_with("the tiebreaker kept site b (quorum b,b2,c)"), "{e}");
        let e = r(75, Some("a"), None).judge().unwrap_err();
        assert!(e.starts_with("the VM on site a wrote nothing for 75.0 s") && e.ends_with("only 50.0 s after the cut"), "{e}");
        assert!(r(75, None, None).judge().unwrap_err().starts_with("no monitor quorum stood"));
    }
}
