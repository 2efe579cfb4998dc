//! The replication rounds a cluster's own objects report (a VolumeReplication's `lastSyncTime`, a
//! VolumeReplicationGroup's `lastGroupSyncTime`), read every second from the current primary while the VM
//! runs: what proves replication before a fault and gives a failover its checkpoint.

use crate::clock::Wt;
use crate::error::{from_wait, Cause, EnvError};
use crate::oracle::{Checkpoint, SyncSample};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Rounds {
    seen: Arc<Mutex<Vec<SyncSample>>>,
    poller: Option<tokio::task::JoinHandle<()>>,
    /// The primary cluster's clock against the witness's (seconds, bounds), measured when watching began.
    offset: Arc<Mutex<Option<(f64, f64)>>>,
}

impl Rounds {
    /// Reads with `read` every second from the primary cluster `client` (a new primary: call again),
    /// keeping each round newer than the last: its times, which are the cluster's, moved onto the witness
    /// clock by the measured offset ([`on_witness_clock`]), and its completion timed by the witness
    /// ([`witnessed`]).
    pub fn watch<F, Fut>(&mut self, client: kube::Client, read: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Option<SyncSample>> + Send,
    {
        let (seen, offset) = (self.seen.clone(), self.offset.clone());
        let h = tokio::spawn(async move {
            let measured = crate::k8s::clock_offset(&client).await;
            *offset.lock().unwrap() = measured;
            let mut first = true;
            loop {
                let asked = Wt::now();
                if let Ok(r) = tokio::time::timeout(Duration::from_secs(15), read()).await {
                    if let Some(s) = r {
                        let s = on_witness_clock(s, measured);
                        let mut g = seen.lock().unwrap();
                        if g.last().is_none_or(|l| l.started < s.started) {
                            g.push(witnessed(s, asked, first));
                        }
                    }
                    // after the first answer, every new round completed while the witness watched
                    first = false;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        if let Some(old) = self.poller.replace(h) {
            old.abort();
        }
    }

    /// Stops reading (the primary is lost, or the scenario ends); what was seen stays.
    pub fn stop(&mut self) {
        if let Some(p) = self.poller.take() {
            p.abort();
        }
    }

    pub fn watching(&self) -> bool {
        self.poller.is_some()
    }

    /// The primary cluster's clock against the witness's: seconds, (lower, upper) bound.
    pub fn offset(&self) -> Option<(f64, f64)> {
        *self.offset.lock().unwrap()
    }

    /// Every round seen so far.
    pub fn seen(&self) -> Vec<SyncSample> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until a round taken at or after `since` is reported complete; the primary (`site`) not
    /// replicating within `deadline` is the system's failure.
    pub async fn wait_since(&self, since: Wt, deadline: impl Into<crate::wait::Deadline>, site: &str) -> Result<String, EnvError> {
        let seen = self.seen.clone();
        let check =
            || std::future::ready(Ok::<_, EnvError>(seen.lock().unwrap().iter().find(|s| s.started >= since && s.completed.is_some()).map(|s| s.name.clone())));
        crate::wait::until("a replication round taken since the VM wrote", deadline, check, crate::wait::every(Duration::from_millis(500)))
            .await
            .map_err(|e| from_wait(site, Cause::System, e))
    }
}

impl Drop for Rounds {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A round reported in the cluster's clock, on the witness's. Where the measured offset (cluster minus
/// witness, as bounds) shows a skew (its bounds exclude zero), its times are moved back by the upper bound,
/// so they are never later than the truth whichever way the clocks are apart. Clocks that agree within the
/// `Date` header's one-second resolution, or an offset not measured, leave the times as the cluster wrote
/// them (whole seconds, truncated: never later than the truth on an agreeing clock). Pure.
pub fn on_witness_clock(mut s: SyncSample, offset: Option<(f64, f64)>) -> SyncSample {
    let Some((_, hi)) = offset.filter(|(lo, hi)| *lo > 0.0 || *hi < 0.0) else { return s };
    let shift = move |t: Wt| Wt::from_unix_secs(t.unix_secs() - hi);
    (s.started, s.completed) = (shift(s.started), s.completed.map(shift));
    s
}

/// A round as the witness times it: complete no later than the start of the first read that showed it
/// (`read_at`), and never later than the system claims (its start + its reported duration, where it reports
/// one). A cluster that reports no duration is timed by the witness alone. The round the first read finds
/// completed before the witness watched, untimed: its duration is unknown and is not judged. Pure.
pub fn witnessed(mut s: SyncSample, read_at: Wt, first: bool) -> SyncSample {
    let seen = read_at.max(s.started);
    let claimed = s.completed;
    let completed = claimed.map_or(seen, |c| c.min(seen));
    s.untimed = first && claimed.is_none();
    s.completed = Some(completed);
    s.sync_ms = (!s.untimed).then(|| completed.since(s.started).as_secs_f64() * 1e3);
    s
}

/// The newest round among `seen` reported complete by `fault_at`. Pure.
pub fn checkpoint_before(seen: &[SyncSample], fault_at: Wt) -> Option<Checkpoint> {
    seen.iter().rev().find(|s| s.completed.is_some_and(|c| c <= fault_at)).map(|s| Checkpoint { name: s.name.clone(), started: s.started })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_clock_ahead_is_moved_back_never_later_than_the_truth() {
        crate::clock::start();
        let s = SyncSample::new("r".into(), Wt::from_ms(10_000), Some(Wt::from_ms(11_000)));
        // the cluster is 4-5 s ahead: its times move back by 5 s
        let w = on_witness_clock(s.clone(), Some((4.0, 5.0)));
        assert!((w.started.ms() - 5000.0).abs() < 1.0 && (w.completed.unwrap().ms() - 6000.0).abs() < 1.0, "{w:?}");
        // behind by 3-2 s: forward by 2 s at most, never more
        let w = on_witness_clock(s.clone(), Some((-3.0, -2.0)));
        assert!((w.started.ms() - 12_000.0).abs() < 1.0, "{w:?}");
        assert_eq!(on_witness_clock(s.clone(), None), s);
        // clocks agreeing within the header's resolution: taken as they are
        assert_eq!(on_witness_clock(s.clone(), Some((-0.01, 0.99))), s);
    }

    #[test]
    fn rounds_are_timed_on_the_witness_clock_never_later_than_claimed() {
        let s = |took: Option<u64>| SyncSample::new("r".into(), Wt::from_ms(1000), took.map(|t| Wt::from_ms(1000 + t)));
        // no duration reported: the witness's read times it
        let w = witnessed(s(None), Wt::from_ms(4000), false);
        assert_eq!((w.completed, w.sync_ms, w.untimed), (Some(Wt::from_ms(4000)), Some(3000.0), false));
        // a claim earlier than the read holds; a claim later than the read is cut to the read
        assert_eq!(witnessed(s(Some(500)), Wt::from_ms(4000), false).completed, Some(Wt::from_ms(1500)));
        assert_eq!(witnessed(s(Some(9000)), Wt::from_ms(4000), false).completed, Some(Wt::from_ms(4000)));
        // found by the first read, without a duration: complete, untimed
        let w = witnessed(s(None), Wt::from_ms(60_000), true);
        assert!(w.untimed && w.sync_ms.is_none() && w.completed == Some(Wt::from_ms(60_000)));
    }
}
