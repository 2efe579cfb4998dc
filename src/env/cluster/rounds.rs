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
}

impl Rounds {
    /// Reads with `read` every second (a new primary: call again), keeping each round newer than the last.
    pub fn watch<F, Fut>(&mut self, read: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Option<SyncSample>> + Send,
    {
        let seen = self.seen.clone();
        let h = tokio::spawn(async move {
            loop {
                if let Ok(Some(s)) = tokio::time::timeout(Duration::from_secs(15), read()).await {
                    let mut g = seen.lock().unwrap();
                    if g.last().is_none_or(|l| l.started < s.started) {
                        g.push(s);
                    }
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

    /// Every round seen so far.
    pub fn seen(&self) -> Vec<SyncSample> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until a round taken at or after `since` is reported complete; the primary (`site`) not
    /// replicating within `deadline` is the system's failure.
    pub async fn wait_since(&self, since: Wt, deadline: Duration, site: &str) -> Result<String, EnvError> {
        let seen = self.seen.clone();
        let check = || std::future::ready(Ok::<_, EnvError>(seen.lock().unwrap().iter().find(|s| s.started >= since && s.completed.is_some()).map(|s| s.name.clone())));
        crate::wait::until("a replication round taken since the VM wrote", deadline, check, crate::wait::every(Duration::from_millis(500))).await.map_err(|e| from_wait(site, Cause::System, e))
    }
}

impl Drop for Rounds {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The newest round among `seen` reported complete by `fault_at`. Pure.
pub fn checkpoint_before(seen: &[SyncSample], fault_at: Wt) -> Option<Checkpoint> {
    seen.iter().rev().find(|s| s.completed.is_some_and(|c| c <= fault_at)).map(|s| Checkpoint { name: s.name.clone(), started: s.started })
}
