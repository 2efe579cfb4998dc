//! Faults as plain data. Injecting one returns a receipt; the scenario's after hook hands every receipt
//! back for recovery, which is idempotent (recovering what is already recovered does nothing).

use crate::clock::Wt;
use crate::units::Dur;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Fault {
    /// Every process of the site dies at once (SIGKILL): its Ceph daemons and its VMs.
    PowerLoss { site: String },
    /// One storage host of the site loses power: its second OSD host's daemons die (SIGKILL); the site's
    /// other host, its monitors and its VMs keep running.
    HostLoss { site: String },
    /// Every process of the site is stopped where it stands (SIGSTOP), keeping its state; recovered by
    /// thawing it (SIGCONT).
    Freeze { site: String },
    /// The site's rbd-mirror daemon is killed: nothing more is replicated to that site.
    StopReplication { site: String },
    /// The site's rbd-mirror daemon is frozen (SIGSTOP): replication to the site stalls, then catches up
    /// when it is thawed (SIGCONT). Replication slowed, not stopped.
    PauseReplication { site: String },
    /// The site's link to the other site goes down.
    Isolate { site: String },
    /// Packets from one site to the other take `delay` longer, plus up to `jitter` (one way).
    Latency { from: String, to: String, delay: Dur, jitter: Dur },
    /// A share of the packets from one site to the other is lost, in thousandths.
    Loss { from: String, to: String, permille: u32 },
    /// Packets from one site to the other are paced to `bps` bits per second.
    RateLimit { from: String, to: String, bps: u64 },
    /// Nothing passes between the two sites, either way.
    Partition { a: String, b: String },
}

impl Fault {
    /// The same fault, whichever way a symmetric one is named (`a and b` partitioned is `b and a`).
    pub fn same_as(&self, other: &Fault) -> bool {
        match (self, other) {
            (Fault::Partition { a, b }, Fault::Partition { a: c, b: d }) => (a == c && b == d) || (a == d && b == c),
            _ => self == other,
        }
    }

    /// Does this fault take `site` out of service (its primary lost): its power lost, frozen, cut off, or
    /// partitioned from a peer?
    pub fn takes(&self, site: &str) -> bool {
        match self {
            Fault::PowerLoss { site: s } | Fault::Freeze { site: s } | Fault::Isolate { site: s } => s == site,
            Fault::Partition { a, b } => a == site || b == site,
            _ => false,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::PowerLoss { site } => write!(f, "cut the power of site {site}"),
            Fault::HostLoss { site } => write!(f, "cut the power of a storage host of site {site}"),
            Fault::Freeze { site } => write!(f, "freeze site {site}"),
            Fault::StopReplication { site } => write!(f, "stop replication to site {site}"),
            Fault::PauseReplication { site } => write!(f, "pause replication to site {site}"),
            Fault::Isolate { site } => write!(f, "isolate site {site}"),
            Fault::Latency { from, to, delay, jitter } => write!(f, "delay packets from site {from} to site {to} by {delay} (jitter {jitter})"),
            Fault::Loss { from, to, permille } => write!(f, "lose {:.1}% of the packets from site {from} to site {to}", *permille as f64 / 10.0),
            Fault::RateLimit { from, to, bps } => write!(f, "limit the link from site {from} to site {to} to {:.1} Mbit/s", *bps as f64 / 1e6),
            Fault::Partition { a, b } => write!(f, "partition sites {a} and {b}"),
        }
    }
}

/// Proof that a fault was injected, and when (witness clock): what was seen, from outside the faulted
/// site, that shows it in effect.
#[derive(Clone, Debug, Serialize)]
pub struct Receipt {
    pub fault: Fault,
    pub at: Wt,
    pub proof: Proof,
}

impl Proof {
    /// What was seen, looking since `t0` (witness clock).
    pub fn seen_since(seen: Vec<String>, t0: Wt) -> Proof {
        Proof { seen, took_ms: (Wt::now().since(t0).as_secs_f64() * 1e4).round() / 10.0 }
    }
}

/// A fault undone: its receipt (by index in the scenario's), when, and what showed it gone.
#[derive(Clone, Debug)]
pub struct Undone {
    pub receipt: usize,
    pub at: Wt,
    pub proof: Proof,
}

/// What was seen that shows a fault in effect (or gone): one line per check, and how long looking took.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proof {
    pub seen: Vec<String>,
    pub took_ms: f64,
}

/// Which way a fault is being shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before its receipt: the fault is in effect.
    InEffect,
    /// After its recovery: the fault is gone.
    Gone,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::InEffect => "in effect",
            Phase::Gone => "gone",
        })
    }
}

/// A connection attempt across a link, as its sender saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reach {
    /// The far end accepted it (a handshake completed).
    Answered(Duration),
    /// The far end's kernel refused it (a reset came back: the link carried it both ways).
    Refused(Duration),
    /// Nothing came back before the attempt gave up.
    Silent(Duration),
}

impl Reach {
    /// Did anything come back across the link?
    pub fn crossed(&self) -> bool {
        !matches!(self, Reach::Silent(_))
    }
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reach::Answered(d) => write!(f, "answered in {:.1} ms", d.as_secs_f64() * 1e3),
            Reach::Refused(d) => write!(f, "refused in {:.1} ms (a reset came back)", d.as_secs_f64() * 1e3),
            Reach::Silent(d) => write!(f, "no answer in {:.1} s", d.as_secs_f64()),
        }
    }
}

/// A process as `/proc` shows it: its id, its name and its state letter (R, S, D, T, t, Z, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct ProcSeen {
    pub pid: i32,
    pub name: String,
    pub state: char,
}

impl ProcSeen {
    fn stopped(&self) -> bool {
        matches!(self.state, 'T' | 't')
    }
    fn gone(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// What a link's delay line says of one direction: its shape as set and its counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineSeen {
    pub loss_permille: u32,
    pub rate_bps: Option<u64>,
    pub forwarded: u64,
    pub dropped: u64,
}

/// What was observed of the sites, from outside the faulted one, to judge a fault in effect or gone.
/// Each field is filled only where the fault needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Every process of the faulted site (its network namespace, its containers).
    pub processes: Option<Vec<ProcSeen>>,
    /// The one daemon the fault concerns: (its name, its process if there is one).
    pub daemon: Option<(String, Option<ProcSeen>)>,
    /// Connection attempts across the links the fault concerns: (from site, to site, what came back).
    pub reach: Vec<(String, String, Reach)>,
    /// The median round trip from -> to just before the change and just after it.
    pub rtt: Option<(Duration, Duration)>,
    /// Throughput measured from -> to, bits per second.
    pub throughput_bps: Option<f64>,
    /// The delay line's own account of the direction.
    pub line: Option<LineSeen>,
    /// Pairs of sites (from, to) still cut by another fault in force (a partition outliving the isolation
    /// undone first): no answer is expected across them yet.
    pub also_cut: Vec<(String, String)>,
}

/// How far a measured added delay may fall short of what was asked: a fifth of it, at least 1 ms.
pub fn delay_short_tolerance(asked: Duration) -> Duration {
    (asked / 5).max(Duration::from_millis(1))
}

/// How far it may exceed what was asked (plus its jitter): half of it, at least 20 ms (a loaded machine's
/// scheduling).
pub fn delay_over_tolerance(asked: Duration) -> Duration {
    (asked / 2).max(Duration::from_millis(20))
}

/// A measured rate may exceed the asked one by this factor (the pacer's burst, timer granularity).
pub const RATE_TOLERANCE: f64 = 1.25;

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Does what was observed show `fault` in effect (or gone)? The lines that show it, or why it is not shown.
/// Pure: the backends observe, this judges; a fault not shown is a harness error, never a pass.
pub fn judge(fault: &Fault, phase: Phase, seen: &Observed) -> Result<Vec<String>, String> {
    let mut lines = vec![];
    let reach_lines = |lines: &mut Vec<String>, want_crossed: bool| -> Result<(), String> {
        if seen.reach.is_empty() {
            return Err("no connection across the link was tried".into());
        }
        for (from, to, r) in &seen.reach {
            let line = format!("a connection from site {from} to site {to}: {r}");
            if want_crossed && !r.crossed() && seen.also_cut.iter().any(|(f, t)| f == from && t == to) {
                lines.push(format!("{line} (still cut by another fault in force)"));
                continue;
            }
            if r.crossed() != want_crossed {
                return Err(line);
            }
            lines.push(line);
        }
        if want_crossed && !seen.reach.iter().any(|(_, _, r)| r.crossed()) && !seen.also_cut.is_empty() {
            lines.push("every link tried is cut by another fault still in force: this fault's own cut is lifted".into());
        }
        Ok(())
    };
    let procs = || seen.processes.as_ref().ok_or_else(|| "the site's processes were not looked at".to_string());
    let daemon = || seen.daemon.as_ref().ok_or_else(|| "the daemon was not looked at".to_string());
    match (fault, phase) {
        (Fault::PowerLoss { site }, Phase::InEffect) => {
            let left: Vec<&ProcSeen> = procs()?.iter().filter(|p| !p.gone()).collect();
            if let Some(p) = left.first() {
                return Err(format!("{} process(es) of site {site} still alive, e.g. {} (pid {}, state {})", left.len(), p.name, p.pid, p.state));
            }
            lines.push(format!("no process left on site {site}"));
            // a reset from the site's kernel is no answer from its monitor (the lab's network stack outlives
            // its processes); only a completed handshake would be one
            if seen.reach.is_empty() {
                return Err(format!("no connection to site {site}'s monitor was tried"));
            }
            for (f, t, r) in &seen.reach {
                let line = format!("a connection from site {f} to site {t}'s monitor: {r}");
                if matches!(r, Reach::Answered(_)) {
                    return Err(line);
                }
                lines.push(line);
            }
        }
        (Fault::PowerLoss { site }, Phase::Gone) => {
            if procs()?.iter().all(|p| p.gone()) {
                return Err(format!("no process runs on site {site}"));
            }
            if !seen.reach.iter().any(|(_, _, r)| matches!(r, Reach::Answered(_))) {
                return Err(format!("site {site}'s monitor does not answer: {}", seen.reach.iter().map(|r| r.2.to_string()).collect::<Vec<_>>().join("; ")));
            }
            lines.push(format!("{} process(es) run on site {site}", procs()?.iter().filter(|p| !p.gone()).count()));
            lines.extend(seen.reach.iter().map(|(f, t, r)| format!("a connection from site {f} to site {t}'s monitor: {r}")));
        }
        (Fault::Freeze { site }, phase) => {
            let all = procs()?;
            let live: Vec<&ProcSeen> = all.iter().filter(|p| !p.gone()).collect();
            match phase {
                Phase::InEffect => {
                    if live.is_empty() {
                        return Err(format!("site {site} has no process to freeze"));
                    }
                    if let Some(p) = live.iter().find(|p| !p.stopped()) {
                        return Err(format!("{} (pid {}) of site {site} is in state {}, not stopped", p.name, p.pid, p.state));
                    }
                    lines.push(format!("all {} processes of site {site} stopped (state T)", live.len()));
                }
                Phase::Gone => {
                    if let Some(p) = live.iter().find(|p| p.stopped()) {
                        return Err(format!("{} (pid {}) of site {site} is still stopped", p.name, p.pid));
                    }
                    lines.push(format!("none of the {} processes of site {site} is stopped", live.len()));
                }
            }
        }
        (Fault::HostLoss { .. } | Fault::StopReplication { .. }, Phase::InEffect) => {
            let (name, p) = daemon()?;
            match p {
                Some(p) if !p.gone() => return Err(format!("{name} (pid {}) is still alive, state {}", p.pid, p.state)),
                _ => lines.push(format!("{name}: no process")),
            }
        }
        (Fault::HostLoss { site } | Fault::StopReplication { site }, Phase::Gone) => {
            let (name, p) = daemon()?;
            match p {
                Some(p) if !p.gone() && !p.stopped() => lines.push(format!("{name} runs again (pid {}, state {})", p.pid, p.state)),
                // a site without power gets its daemons back with its power
                _ if seen.processes.as_ref().is_some_and(|v| v.iter().all(|p| p.gone())) => {
                    lines.push(format!("site {site} is powered off: {name} comes back with its power"))
                }
                Some(p) => return Err(format!("{name} (pid {}) is in state {}", p.pid, p.state)),
                None => return Err(format!("{name} does not run")),
            }
        }
        (Fault::PauseReplication { .. }, phase) => {
            let (name, p) = daemon()?;
            match (phase, p) {
                (Phase::InEffect, Some(p)) if p.stopped() => lines.push(format!("{name} (pid {}) stopped (state {})", p.pid, p.state)),
                (Phase::InEffect, Some(p)) => return Err(format!("{name} (pid {}) is in state {}, not stopped", p.pid, p.state)),
                (Phase::InEffect, None) => return Err(format!("{name}: no process to pause")),
                (Phase::Gone, Some(p)) if p.stopped() => return Err(format!("{name} (pid {}) is still stopped", p.pid)),
                (Phase::Gone, Some(p)) => lines.push(format!("{name} (pid {}) runs (state {})", p.pid, p.state)),
                (Phase::Gone, None) => lines.push(format!("{name}: no process (nothing left paused)")),
            }
        }
        (Fault::Isolate { .. } | Fault::Partition { .. }, Phase::InEffect) => reach_lines(&mut lines, false)?,
        (Fault::Isolate { .. } | Fault::Partition { .. }, Phase::Gone) => reach_lines(&mut lines, true)?,
        (Fault::Latency { from, to, delay, jitter }, phase) => {
            let (before, after) = seen.rtt.ok_or_else(|| format!("the round trip from site {from} to site {to} could not be measured"))?;
            let (delay, jitter) = (delay.0, jitter.0);
            let short = delay_short_tolerance(delay);
            let (change, verb) = match phase {
                Phase::InEffect => (after.saturating_sub(before), "rose"),
                Phase::Gone => (before.saturating_sub(after), "fell"),
            };
            let line = format!(
                "the round trip from site {from} to site {to} {verb} from {} to {} (by {}; asked {} one way{})",
                ms(before),
                ms(after),
                ms(change),
                ms(delay),
                if jitter.is_zero() { String::new() } else { format!(" + up to {} jitter", ms(jitter)) }
            );
            if change + short < delay {
                return Err(format!("{line}: short of it by more than {}", ms(short)));
            }
            let over = delay_over_tolerance(delay);
            if phase == Phase::InEffect && change > delay + jitter + over {
                return Err(format!("{line}: more than {} over it", ms(over)));
            }
            lines.push(line);
        }
        (Fault::RateLimit { from, to, bps }, phase) => {
            let asked = *bps as f64;
            let line = seen.line.as_ref();
            match (phase, seen.throughput_bps) {
                (Phase::InEffect, Some(got)) if got <= asked * RATE_TOLERANCE => {
                    lines.push(format!("from site {from} to site {to}: {:.2} Mbit/s measured, asked {:.2}", got / 1e6, asked / 1e6))
                }
                (Phase::InEffect, Some(got)) => {
                    return Err(format!(
                        "from site {from} to site {to}: {:.2} Mbit/s measured, more than {RATE_TOLERANCE} x the asked {:.2}",
                        got / 1e6,
                        asked / 1e6
                    ))
                }
                (Phase::InEffect, None) => return Err(format!("the throughput from site {from} to site {to} could not be measured")),
                (Phase::Gone, got) => match line {
                    Some(l) if l.rate_bps.is_none() => lines.push(format!(
                        "the delay line from site {from} to site {to} paces no more{}",
                        got.map(|g| format!(" ({:.2} Mbit/s measured)", g / 1e6)).unwrap_or_default()
                    )),
                    _ if got.is_some_and(|g| g > asked * RATE_TOLERANCE) => {
                        lines.push(format!("from site {from} to site {to}: {:.2} Mbit/s measured", got.unwrap_or(0.0) / 1e6))
                    }
                    _ => return Err(format!("the link from site {from} to site {to} is still paced")),
                },
            }
        }
        (Fault::Loss { from, to, permille }, phase) => {
            let l = seen.line.as_ref().ok_or_else(|| format!("the delay line from site {from} to site {to} was not asked"))?;
            let want = match phase {
                Phase::InEffect => *permille.min(&1000),
                Phase::Gone => 0,
            };
            if l.loss_permille != want {
                return Err(format!("the delay line from site {from} to site {to} drops {}‰ of packets, not {want}‰", l.loss_permille));
            }
            lines.push(format!(
                "the delay line from site {from} to site {to} drops {}‰ of packets ({} forwarded, {} dropped so far)",
                l.loss_permille, l.forwarded, l.dropped
            ));
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, state: char) -> ProcSeen {
        ProcSeen { pid, name: format!("p{pid}"), state }
    }
    fn reach(r: Reach) -> Vec<(String, String, Reach)> {
        vec![("b".into(), "a".into(), r)]
    }
    const MS: Duration = Duration::from_millis(1);

    /// Every rule shown both ways: what proves a fault in effect (or gone), and its negative control, what
    /// must be refused.
    #[test]
    fn a_fault_is_shown_in_effect_and_gone_only_by_what_proves_it() {
        let power = Fault::PowerLoss { site: "a".into() };
        let off = Observed { processes: Some(vec![p(9, 'Z')]), reach: reach(Reach::Refused(MS)), ..Default::default() };
        assert!(judge(&power, Phase::InEffect, &off).is_ok(), "a zombie is gone; a kernel's reset is no monitor");
        let alive = Observed { processes: Some(vec![p(9, 'S')]), ..off.clone() };
        assert!(judge(&power, Phase::InEffect, &alive).unwrap_err().contains("still alive"));
        let answered = Observed { reach: reach(Reach::Answered(MS)), ..off.clone() };
        assert!(judge(&power, Phase::InEffect, &answered).is_err(), "its monitor answered");
        assert!(judge(&power, Phase::InEffect, &Observed { reach: vec![], ..off.clone() }).is_err(), "nobody tried");
        let back = Observed { processes: Some(vec![p(9, 'S')]), reach: reach(Reach::Answered(MS)), ..Default::default() };
        assert!(judge(&power, Phase::Gone, &back).is_ok());
        assert!(judge(&power, Phase::Gone, &off).is_err(), "still off");
        assert!(judge(&power, Phase::Gone, &Observed { reach: reach(Reach::Silent(MS)), ..back.clone() }).is_err(), "its monitor silent");

        let freeze = Fault::Freeze { site: "a".into() };
        let frozen = Observed { processes: Some(vec![p(1, 'T'), p(2, 't'), p(3, 'Z')]), ..Default::default() };
        assert!(judge(&freeze, Phase::InEffect, &frozen).is_ok());
        assert!(judge(&freeze, Phase::Gone, &frozen).is_err());
        let one_running = Observed { processes: Some(vec![p(1, 'T'), p(2, 'R')]), ..Default::default() };
        assert!(judge(&freeze, Phase::InEffect, &one_running).unwrap_err().contains("p2"));
        assert!(judge(&freeze, Phase::InEffect, &Observed { processes: Some(vec![]), ..Default::default() }).is_err(), "nothing to freeze");
        assert!(judge(&freeze, Phase::Gone, &Observed { processes: Some(vec![p(1, 'S'), p(2, 'D')]), ..Default::default() }).is_ok());

        let stop = Fault::StopReplication { site: "b".into() };
        let pause = Fault::PauseReplication { site: "b".into() };
        let d = |s: Option<char>| Observed {
            daemon: Some(("rbd-mirror of site b".into(), s.map(|c| p(5, c)))),
            processes: Some(vec![p(1, 'S')]),
            ..Default::default()
        };
        assert!(judge(&stop, Phase::InEffect, &d(None)).is_ok() && judge(&stop, Phase::InEffect, &d(Some('Z'))).is_ok());
        assert!(judge(&stop, Phase::InEffect, &d(Some('S'))).is_err());
        assert!(judge(&stop, Phase::Gone, &d(Some('S'))).is_ok() && judge(&stop, Phase::Gone, &d(None)).is_err());
        let powered_off = Observed { processes: Some(vec![]), ..d(None) };
        assert!(judge(&stop, Phase::Gone, &powered_off).unwrap()[0].contains("powered off"));
        assert!(judge(&pause, Phase::InEffect, &d(Some('T'))).is_ok() && judge(&pause, Phase::InEffect, &d(Some('S'))).is_err());
        assert!(judge(&pause, Phase::Gone, &d(Some('S'))).is_ok() && judge(&pause, Phase::Gone, &d(Some('T'))).is_err());
        assert!(judge(&Fault::HostLoss { site: "a".into() }, Phase::InEffect, &d(Some('R'))).is_err());

        for cut in [Fault::Isolate { site: "a".into() }, Fault::Partition { a: "a".into(), b: "b".into() }] {
            let both = |r1: Reach, r2: Reach| Observed { reach: vec![("a".into(), "b".into(), r1), ("b".into(), "a".into(), r2)], ..Default::default() };
            let silent = Reach::Silent(Duration::from_millis(1200));
            assert!(judge(&cut, Phase::InEffect, &both(silent, silent)).is_ok());
            assert!(judge(&cut, Phase::InEffect, &both(silent, Reach::Refused(MS))).is_err(), "a reset crossed the cut");
            assert!(judge(&cut, Phase::Gone, &both(Reach::Answered(MS), Reach::Refused(MS))).is_ok());
            assert!(judge(&cut, Phase::Gone, &both(Reach::Answered(MS), silent)).is_err(), "one way still cut");
            assert!(judge(&cut, Phase::InEffect, &Observed::default()).is_err(), "nobody tried");
        }
    }

    #[test]
    fn a_latency_is_shown_by_the_round_trip_it_adds_within_its_tolerance() {
        let lat = |ms: u64, jitter: u64| Fault::Latency { from: "a".into(), to: "b".into(), delay: Dur(MS * ms as u32), jitter: Dur(MS * jitter as u32) };
        let rtt = |before: f64, after: f64| Observed {
            rtt: Some((Duration::from_secs_f64(before / 1e3), Duration::from_secs_f64(after / 1e3))),
            ..Default::default()
        };
        assert!(judge(&lat(50, 0), Phase::InEffect, &rtt(0.4, 50.9)).is_ok());
        assert!(judge(&lat(50, 0), Phase::InEffect, &rtt(0.4, 41.0)).is_ok(), "within a fifth short");
        assert!(judge(&lat(50, 0), Phase::InEffect, &rtt(0.4, 39.0)).unwrap_err().contains("short"), "the delay line shaped less than asked");
        assert!(judge(&lat(500, 0), Phase::InEffect, &rtt(0.4, 50.9)).is_err(), "asked 500 ms, 50 measured");
        assert!(judge(&lat(50, 0), Phase::InEffect, &rtt(0.4, 90.0)).unwrap_err().contains("over"));
        assert!(judge(&lat(50, 30), Phase::InEffect, &rtt(0.4, 90.0)).is_ok(), "the jitter is allowed");
        assert!(judge(&lat(5, 0), Phase::InEffect, &rtt(0.3, 4.4)).is_ok(), "1 ms short of 5 is within");
        assert!(judge(&lat(5, 0), Phase::InEffect, &rtt(0.3, 0.5)).is_err(), "nothing added");
        assert!(judge(&lat(50, 0), Phase::Gone, &rtt(50.9, 0.4)).is_ok());
        assert!(judge(&lat(50, 0), Phase::Gone, &rtt(50.9, 49.0)).is_err(), "still delayed");
        assert!(judge(&lat(50, 0), Phase::InEffect, &Observed::default()).is_err(), "not measured");
    }

    #[test]
    fn a_rate_is_shown_by_what_passes_and_a_loss_by_the_line_that_drops() {
        let rate = Fault::RateLimit { from: "a".into(), to: "b".into(), bps: 10_000_000 };
        let tp = |bps: f64, line: Option<u64>| Observed {
            throughput_bps: Some(bps),
            line: Some(LineSeen { rate_bps: line, ..Default::default() }),
            ..Default::default()
        };
        assert!(judge(&rate, Phase::InEffect, &tp(9.6e6, Some(10_000_000))).is_ok());
        assert!(judge(&rate, Phase::InEffect, &tp(80e6, Some(10_000_000))).is_err(), "8 times the rate passed");
        assert!(judge(&rate, Phase::Gone, &tp(300e6, None)).is_ok());
        assert!(judge(&rate, Phase::Gone, &tp(9.6e6, Some(10_000_000))).is_err(), "still paced");
        let loss = Fault::Loss { from: "a".into(), to: "b".into(), permille: 10 };
        let line =
            |permille: u32| Observed { line: Some(LineSeen { loss_permille: permille, forwarded: 100, dropped: 1, rate_bps: None }), ..Default::default() };
        assert!(judge(&loss, Phase::InEffect, &line(10)).is_ok());
        assert!(judge(&loss, Phase::InEffect, &line(0)).is_err(), "the line drops nothing");
        assert!(judge(&loss, Phase::Gone, &line(0)).is_ok() && judge(&loss, Phase::Gone, &line(10)).is_err());
    }

    #[test]
    fn partitions_are_the_same_either_way_and_outages_take_their_site() {
        let ab = Fault::Partition { a: "a".into(), b: "b".into() };
        assert!(ab.same_as(&Fault::Partition { a: "b".into(), b: "a".into() }));
        assert!(!ab.same_as(&Fault::Partition { a: "a".into(), b: "c".into() }));
        assert!(ab.takes("a") && ab.takes("b") && !ab.takes("c"));
        assert!(Fault::PowerLoss { site: "a".into() }.takes("a"));
        assert!(!Fault::StopReplication { site: "a".into() }.takes("a"));
    }
}
