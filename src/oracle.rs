//! The oracle: judges a history of acknowledged writes against what a verify scan found on disk. Pure: no
//! I/O, no clock. In the manner of Jepsen, a record is *stable* if it was acknowledged and is on disk,
//! *lost* if it was acknowledged and is not, and *indeterminate* if it was never acknowledged (in flight at
//! the fault): an indeterminate record is never counted as lost, whether or not it survived.
//!
//! A failing bound is a `Verdict` with `passed: false`, not an error: errors mean the harness broke.

use crate::clock::Wt;
use dr_probe::ScanReport;
use serde::Serialize;
use std::collections::BTreeMap;
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

/// What a DR action promises.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    /// Relocate (and Metro-DR failover): every acknowledged record survives; with `stop`, the STOP record
    /// of that sequence must survive too (a graceful shutdown completed and was replicated).
    NoLoss { stop: Option<u64> },
    /// Regional-DR failover: every record acknowledged before `keep_before` (the start of the last mirror
    /// snapshot complete on the survivor) survives, and the loss window is at most `max_window`.
    Window { max_window: Duration, keep_before: Option<Wt> },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Verdict {
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
    /// Why it failed (empty when passed).
    pub why: Vec<String>,
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

/// Judges `acks` (every acknowledgement of every writer boot so far, in any order) against `scan`.
pub fn judge(acks: &[Ack], scan: &ScanReport, fault_at: Option<Wt>, bound: Bound) -> Verdict {
    // The owner of a sequence is the latest boot that acknowledged it: a writer resumed after a failover
    // legitimately rewrites sequences its predecessor lost.
    let mut owner: BTreeMap<u64, Ack> = BTreeMap::new();
    let mut superseded = 0;
    let mut by_time: Vec<&Ack> = acks.iter().collect();
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
    // the STOP record is expected, not in flight: it is not indeterminate
    v.indeterminate = scan.ranges.iter().flat_map(|r| r.0..=r.1).filter(|s| !owner.contains_key(s) && scan.stop != Some(*s)).count() as u64;
    v.holes = scan.holes();
    v.corrupt = scan.corrupt.iter().map(|(b, c)| (*b, c.as_str().to_string())).collect();
    v.chain_breaks = scan.chain_breaks.clone();
    v.newest_surviving = newest.map(|n| n.seq);

    if let Some(f) = fault_at {
        // With nothing surviving, the window reaches back to the first acknowledgement.
        let reference = newest.map(|n| n.at).or_else(|| owner.values().map(|a| a.at).min());
        v.loss_window_ms = reference.map(|r| f.since(r).as_secs_f64() * 1e3);
    }

    let mut why = vec![];
    if !v.corrupt.is_empty() {
        let c: Vec<String> = v.corrupt.iter().take(8).map(|(b, r)| format!("block {b} ({r})")).collect();
        why.push(format!("corrupt records on disk: {}", c.join(", ")));
    }
    if !v.holes.is_empty() {
        why.push(format!("holes below the newest record: {}", fmt_ranges(&v.holes)));
    }
    if !v.chain_breaks.is_empty() {
        why.push(format!("records out of chain: {}", fmt_ranges(&ranges(v.chain_breaks.iter().copied()))));
    }
    match bound {
        Bound::NoLoss { stop } => {
            if v.lost_count > 0 {
                why.push(format!("{} acknowledged records lost: {}", v.lost_count, fmt_ranges(&v.lost)));
            }
            if let Some(s) = stop {
                let present = scan.stop == Some(s);
                v.stop_present = Some(present);
                if !present {
                    why.push(format!("the STOP record {s} of the graceful shutdown is not on disk (found {:?})", scan.stop));
                }
            }
        }
        Bound::Window { max_window, keep_before } => {
            v.bound_ms = Some(max_window.as_secs_f64() * 1e3);
            if let Some(k) = keep_before {
                let must: Vec<u64> = owner.values().filter(|a| a.at < k && scan.boot_of(a.seq) != Some(a.boot)).map(|a| a.seq).collect();
                if !must.is_empty() {
                    why.push(format!(
                        "{} records acknowledged before the last replicated snapshot started are lost: {}",
                        must.len(),
                        fmt_ranges(&ranges(must))
                    ));
                }
            }
            match v.loss_window_ms {
                Some(w) if w > max_window.as_secs_f64() * 1e3 => why.push(format!(
                    "loss window {:.0} ms exceeds the bound {:.0} ms ({} acknowledged records lost)",
                    w,
                    max_window.as_secs_f64() * 1e3,
                    v.lost_count
                )),
                None if fault_at.is_none() => why.push("no fault time was recorded: the loss window cannot be judged".into()),
                _ => {}
            }
        }
    }
    if v.acked == 0 {
        why.push("no write was acknowledged: there is nothing to judge".into());
    }
    v.passed = why.is_empty();
    v.why = why;
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use dr_probe::Corruption;
    use proptest::prelude::*;

    const B1: u64 = 0xb1;
    const B2: u64 = 0xb2;

    /// Acks 1..=n at 20 ms intervals starting at t=1000 ms.
    fn acks(n: u64, boot: u64) -> Vec<Ack> {
        (1..=n).map(|s| Ack { seq: s, at: Wt::from_ms(1000 + 20 * s), boot }).collect()
    }

    fn scan(ranges: &[(u64, u64, u64)]) -> ScanReport {
        let mut r = ScanReport { ranges: ranges.to_vec(), ..Default::default() };
        r.highest_contiguous = if ranges.first().is_some_and(|x| x.0 == 1) { ranges[0].1 } else { 0 };
        r
    }

    const NOLOSS: Bound = Bound::NoLoss { stop: None };

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            acks: Vec<Ack>,
            scan: ScanReport,
            fault: Option<Wt>,
            bound: Bound,
            passed: bool,
            lost: u64,
            indeterminate: u64,
        }
        let w = |ms: u64| Bound::Window { max_window: Duration::from_millis(ms), keep_before: None };
        let cases = vec![
            Case { name: "all there", acks: acks(100, B1), scan: scan(&[(1, 100, B1)]), fault: None, bound: NOLOSS, passed: true, lost: 0, indeterminate: 0 },
            Case { name: "one in flight survived", acks: acks(100, B1), scan: scan(&[(1, 101, B1)]), fault: None, bound: NOLOSS, passed: true, lost: 0, indeterminate: 1 },
            Case { name: "tail lost", acks: acks(100, B1), scan: scan(&[(1, 90, B1)]), fault: None, bound: NOLOSS, passed: false, lost: 10, indeterminate: 0 },
            Case { name: "hole", acks: acks(100, B1), scan: scan(&[(1, 40, B1), (42, 100, B1)]), fault: None, bound: NOLOSS, passed: false, lost: 1, indeterminate: 0 },
            Case { name: "stale boot under the same seqs", acks: acks(100, B1), scan: scan(&[(1, 100, B2)]), fault: None, bound: NOLOSS, passed: false, lost: 100, indeterminate: 0 },
            Case { name: "empty disk", acks: acks(10, B1), scan: scan(&[]), fault: Some(Wt::from_ms(2000)), bound: w(100_000), passed: true, lost: 10, indeterminate: 0 },
            Case { name: "nothing acked", acks: vec![], scan: scan(&[(1, 3, B1)]), fault: None, bound: NOLOSS, passed: false, lost: 0, indeterminate: 3 },
            // fault at 3100 ms; newest surviving ack is seq 90 at 2800 ms: window 300 ms
            Case { name: "window within", acks: acks(100, B1), scan: scan(&[(1, 90, B1)]), fault: Some(Wt::from_ms(3100)), bound: w(300), passed: true, lost: 10, indeterminate: 0 },
            Case { name: "window exceeded", acks: acks(100, B1), scan: scan(&[(1, 90, B1)]), fault: Some(Wt::from_ms(3100)), bound: w(299), passed: false, lost: 10, indeterminate: 0 },
            Case { name: "window but a hole", acks: acks(100, B1), scan: scan(&[(1, 50, B1), (52, 90, B1)]), fault: Some(Wt::from_ms(3100)), bound: w(10_000), passed: false, lost: 11, indeterminate: 0 },
        ];
        for c in cases {
            let v = judge(&c.acks, &c.scan, c.fault, c.bound);
            assert_eq!(v.passed, c.passed, "{}: {:?}", c.name, v.why);
            assert_eq!(v.lost_count, c.lost, "{}", c.name);
            assert_eq!(v.indeterminate, c.indeterminate, "{}", c.name);
        }
    }

    #[test]
    fn loss_window_is_fault_minus_newest_surviving_ack() {
        let v = judge(&acks(100, B1), &scan(&[(1, 90, B1)]), Some(Wt::from_ms(3100)), NOLOSS);
        assert_eq!(v.newest_surviving, Some(90));
        assert_eq!(v.loss_window_ms, Some(300.0));
        assert_eq!(v.lost, vec![(91, 100)]);
    }

    #[test]
    fn keep_before_catches_loss_inside_the_window() {
        // Window bound generous, but record 50 (acked at 2000 ms) was acked before the last replicated
        // snapshot started (2500 ms) and is missing: that must fail even though the window is small.
        let b = Bound::Window { max_window: Duration::from_secs(100), keep_before: Some(Wt::from_ms(2500)) };
        let v = judge(&acks(60, B1), &scan(&[(1, 49, B1)]), Some(Wt::from_ms(2300)), b);
        assert!(!v.passed);
        assert!(v.why.iter().any(|w| w.contains("before the last replicated snapshot")), "{:?}", v.why);
    }

    #[test]
    fn stop_record_must_survive() {
        let mut s = scan(&[(1, 101, B1)]);
        let v = judge(&acks(100, B1), &s, None, Bound::NoLoss { stop: Some(101) });
        assert!(!v.passed && v.stop_present == Some(false));
        s.stop = Some(101);
        let v = judge(&acks(100, B1), &s, None, Bound::NoLoss { stop: Some(101) });
        assert!(v.passed, "{:?}", v.why);
    }

    #[test]
    fn corruption_and_chain_breaks_always_fail() {
        let mut s = scan(&[(1, 100, B1)]);
        s.corrupt.push((101, Corruption::BadPayload));
        let v = judge(&acks(100, B1), &s, None, NOLOSS);
        assert!(!v.passed && v.why[0].contains("block 101 (bad-payload-checksum)"), "{:?}", v.why);
        let mut s = scan(&[(1, 100, B1)]);
        s.chain_breaks.push(7);
        assert!(!judge(&acks(100, B1), &s, None, NOLOSS).passed);
    }

    #[test]
    fn resumed_writer_supersedes_lost_tail() {
        // Boot 1 acked 1..100 and lost 81..100 in a failover; boot 2 resumed at 81 and wrote 81..120.
        let mut a = acks(100, B1);
        a.extend((81..=120).map(|s| Ack { seq: s, at: Wt::from_ms(10_000 + s), boot: B2 }));
        let v = judge(&a, &scan(&[(1, 80, B1), (81, 120, B2)]), None, NOLOSS);
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
            let v = judge(&acks(n, B1), &scan(&rs), None, NOLOSS);
            let truly_lost = (1..=n).filter(|s| !present.contains(s)).count() as u64;
            prop_assert_eq!(v.lost_count, truly_lost);
            if truly_lost > 0 { prop_assert!(!v.passed); }
        }

        /// The loss window equals fault time minus the ack time of the newest surviving record.
        #[test]
        fn window_is_exact(n in 2u64..300, keep in 1u64..300, extra_ms in 0u64..5000) {
            let keep = keep.min(n);
            let fault = Wt::from_ms(1000 + 20 * n + extra_ms);
            let v = judge(&acks(n, B1), &scan(&[(1, keep, B1)]), Some(fault), NOLOSS);
            let expect = (20 * (n - keep) + extra_ms) as f64;
            prop_assert!((v.loss_window_ms.unwrap() - expect).abs() < 1e-6);
        }
    }
}
