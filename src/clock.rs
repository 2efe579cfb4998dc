//! The witness clock: the harness, outside both sites, stamps every ack, fault and snapshot with it.
//! Monotonic nanoseconds since the harness started, with the wall time of that start for reports. It reads
//! tokio's clock: the real one, except on a runtime started paused (the simulated environment), where time
//! is simulated and advances only when every task waits.

use serde::Serialize;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

static EPOCH: OnceLock<(Instant, SystemTime)> = OnceLock::new();

fn epoch() -> &'static (Instant, SystemTime) {
    EPOCH.get_or_init(|| (Instant::now(), SystemTime::now()))
}

/// A point on the witness clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
pub struct Wt(pub u64);

impl Wt {
    pub fn now() -> Wt {
        Wt(epoch().0.elapsed().as_nanos() as u64)
    }
    pub fn from_ms(ms: u64) -> Wt {
        Wt(ms * 1_000_000)
    }
    pub fn ms(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// `self - earlier`, saturating at zero.
    pub fn since(self, earlier: Wt) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
    /// Witness time of a wall-clock instant (Unix seconds), as read from the same host's clock (a Ceph
    /// snapshot's timestamp, a daemon's log line): placed by how long ago it was on the wall clock read now,
    /// so a wall clock stepped since the harness started (an NTP step, a paused virtual machine set right)
    /// does not move it.
    pub fn from_unix_secs(secs: f64) -> Wt {
        Wt::from_wall(secs, Wt::now(), unix_now())
    }
    /// `secs` (a wall-clock instant) on the witness clock, given the witness time `now` and the wall clock
    /// `wall_now` read together: `now` minus how long ago `secs` was; zero before the harness started. Pure.
    pub fn from_wall(secs: f64, now: Wt, wall_now: f64) -> Wt {
        Wt((now.0 as f64 + (secs - wall_now) * 1e9).max(0.0) as u64)
    }
    /// Wall-clock time (RFC 3339-ish, UTC seconds since epoch) of this point, for reports.
    pub fn unix_secs(self) -> f64 {
        epoch().1.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() + self.0 as f64 / 1e9
    }
}

/// The wall clock now, Unix seconds.
fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// Starts the clock (call once, early in main).
pub fn start() {
    let _ = epoch();
}

/// Unix seconds of a UTC civil date and time (days from civil, Howard Hinnant's algorithm). Pure.
pub fn unix_from_civil(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: f64) -> f64 {
    let (yy, mo) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mo + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    (days * 86400 + hh * 3600 + mm * 60) as f64 + ss
}

/// Unix seconds of an HTTP date (RFC 7231's IMF-fixdate, `Sun, 29 Nov 2026 19:05:00 GMT`). Pure.
pub fn unix_from_http_date(s: &str) -> Option<f64> {
    let w: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, hms, "GMT"] = w.as_slice() else { return None };
    let m = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|x| x == mon)? as i64 + 1;
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [hh, mm, ss] = t.as_slice() else { return None };
    Some(unix_from_civil(year.parse().ok()?, m, day.parse().ok()?, *hh, *mm, *ss as f64))
}

/// Unix seconds of an RFC 3339 time as Kubernetes writes it (`2026-11-29T05:00:00Z`, fractions and
/// numeric offsets too). Pure.
pub fn parse_rfc3339(t: &str) -> Option<f64> {
    let (date, rest) = t.split_once(['T', 't', ' '])?;
    let d: Vec<i64> = date.split('-').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [y, m, day] = d[..] else { return None };
    let (time, offset) = if let Some(x) = rest.strip_suffix(['Z', 'z']) {
        (x, 0.0)
    } else {
        let i = rest.rfind(['+', '-'])?;
        let (hh, mm) = rest[i + 1..].split_once(':')?;
        let sign = if &rest[i..i + 1] == "-" { -1.0 } else { 1.0 };
        (&rest[..i], sign * (hh.parse::<f64>().ok()? * 3600.0 + mm.parse::<f64>().ok()? * 60.0))
    };
    let mut p = time.splitn(3, ':');
    let (hh, mm, ss): (i64, i64, f64) = (p.next()?.parse().ok()?, p.next()?.parse().ok()?, p.next()?.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || !(0.0..61.0).contains(&ss) {
        return None;
    }
    Some(unix_from_civil(y, m, day, hh, mm, ss) - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(unix_from_http_date("Sun, 29 Nov 2026 19:05:00 GMT"), Some(unix_from_civil(2026, 11, 29, 19, 5, 0.0)));
        assert_eq!(unix_from_http_date("Sun, 29 Nov 2026 19:05:00 CET"), None);
        assert_eq!(unix_from_http_date("yesterday"), None);
    }

    #[test]
    fn a_wall_time_keeps_its_place_when_the_wall_clock_is_stepped() {
        // The harness started at wall time 1000; 100 s later by its own clock the wall clock reads 1119
        // (stepped 19 s ahead meanwhile): a log line stamped 1118 was written 1 s ago, not 18 s from now.
        let now = Wt(100_000_000_000);
        assert_eq!(Wt::from_wall(1118.0, now, 1119.0), Wt(99_000_000_000));
        assert_eq!(Wt::from_wall(1119.5, now, 1119.0), Wt(100_500_000_000), "a moment ahead of the read");
        assert_eq!(Wt::from_wall(900.0, now, 1119.0), Wt(0), "before the harness started");
        // read from the host's own clocks: a wall time just ahead lands just ahead of the witness clock
        let ahead = Wt::from_unix_secs(unix_now() + 0.5);
        let d = ahead.since(Wt::now());
        assert!(d > Duration::from_millis(250) && d <= Duration::from_millis(500), "{d:?} (a loaded host may stall between the reads)");
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2026-11-29T05:00:00Z"), Some(1_795_928_400.0));
        assert_eq!(parse_rfc3339("2026-11-29T05:00:00.25Z"), Some(1_795_928_400.25));
        assert_eq!(parse_rfc3339("2026-11-29T06:00:00+01:00"), Some(1_795_928_400.0));
        assert_eq!(parse_rfc3339("2026-11-28T21:00:00-08:00"), Some(1_795_928_400.0));
        for bad in ["", "2026-11-29", "2026-13-01T00:00:00Z", "2026-11-29T25:00:00Z", "yesterday"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
