//! The witness clock: the harness, outside both sites, stamps every ack, fault and snapshot with it.
//! Monotonic nanoseconds since the harness started, with the wall time of that start for reports.

use serde::Serialize;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// Witness time of a wall-clock instant (Unix seconds), as read from the same host's clock.
    pub fn from_unix_secs(secs: f64) -> Wt {
        let start = epoch().1.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        Wt(((secs - start).max(0.0) * 1e9) as u64)
    }
    /// Wall-clock time (RFC 3339-ish, UTC seconds since epoch) of this point, for reports.
    pub fn unix_secs(self) -> f64 {
        epoch().1.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() + self.0 as f64 / 1e9
    }
}

/// Starts the clock (call once, early in main).
pub fn start() {
    let _ = epoch();
}
