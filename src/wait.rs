//! One way to wait: a condition checked until it holds or a deadline passes. Every wait in the harness
//! goes through `until`; what is waited for is a pure function over what was observed (tested on its own),
//! and how the next observation comes (a poll interval, or a change notification) is the caller's `tick`.

use std::fmt;
use std::future::Future;
use std::time::Duration;

/// How long a wait may take, and where that figure comes from: the environment file's budget key
/// (`budgets.promote`), so that a wait that runs out says what would change it. A bare `Duration` is a
/// deadline the harness fixes itself (no key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub after: Duration,
    pub key: Option<&'static str>,
}

impl Deadline {
    /// A deadline from the environment file's budget `key`.
    pub fn budget(key: &'static str, after: Duration) -> Deadline {
        Deadline { after, key: Some(key) }
    }
}

impl From<Duration> for Deadline {
    fn from(after: Duration) -> Deadline {
        Deadline { after, key: None }
    }
}

/// ` (budget `budgets.promote` in the environment file)`, or nothing for the harness's own deadlines.
pub fn budget_note(key: &Option<&'static str>) -> String {
    key.map(|k| format!(" (the environment file's `{k}`)")).unwrap_or_default()
}

/// A wait that did not end well.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError<E> {
    /// The deadline passed before the condition held.
    #[error("timed out after {after:?} waiting for {what}{}", budget_note(.budget))]
    Timeout { what: String, after: Duration, budget: Option<&'static str> },
    /// Observing failed in a way that waiting longer cannot mend.
    #[error("{0}")]
    Failed(E),
}

/// Observes with `check` until it returns `Ok(Some(_))`; between two observations awaits `tick`. Returns
/// `Timeout` once `deadline` has passed (the last observation is made at or after it), `Failed` as soon as
/// `check` says the wait cannot succeed.
pub async fn until<T, E, C, CF, K, KF>(what: impl fmt::Display, deadline: impl Into<Deadline>, mut check: C, mut tick: K) -> Result<T, WaitError<E>>
where
    C: FnMut() -> CF,
    CF: Future<Output = Result<Option<T>, E>>,
    K: FnMut() -> KF,
    KF: Future<Output = ()>,
{
    let deadline = deadline.into();
    let end = tokio::time::Instant::now() + deadline.after;
    loop {
        if let Some(v) = check().await.map_err(WaitError::Failed)? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= end {
            return Err(WaitError::Timeout { what: what.to_string(), after: deadline.after, budget: deadline.key });
        }
        // never sleep past the deadline: one more observation is made right at it
        let _ = tokio::time::timeout_at(end, tick()).await;
    }
}

/// A tick that sleeps `every`.
pub fn every(d: Duration) -> impl FnMut() -> tokio::time::Sleep {
    move || tokio::time::sleep(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait bounded by an environment budget names its key when it runs out; the harness's own do not.
    #[tokio::test(start_paused = true)]
    async fn a_wait_that_runs_out_names_its_budget_key() {
        let never = || async { Ok::<Option<()>, String>(None) };
        let keyed = until("the promote", Deadline::budget("budgets.promote", Duration::from_secs(2)), never, every(Duration::from_millis(500))).await;
        assert_eq!(keyed.unwrap_err().to_string(), "timed out after 2s waiting for the promote (the environment file's `budgets.promote`)");
        let own = until("a socket", Duration::from_secs(1), never, every(Duration::from_millis(500))).await;
        assert_eq!(own.unwrap_err().to_string(), "timed out after 1s waiting for a socket");
    }
    use std::cell::Cell;

    #[tokio::test(start_paused = true)]
    async fn holds_after_some_observations() {
        let n = Cell::new(0);
        let r: Result<u32, WaitError<()>> = until(
            "three",
            Duration::from_secs(5),
            || {
                n.set(n.get() + 1);
                let v = n.get();
                async move { Ok((v >= 3).then_some(v)) }
            },
            every(Duration::from_millis(100)),
        )
        .await;
        assert_eq!(r, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_at_the_deadline_naming_what() {
        let t0 = tokio::time::Instant::now();
        let r: Result<(), WaitError<String>> =
            until("the peer to answer", Duration::from_secs(2), || async { Ok(None) }, every(Duration::from_millis(300))).await;
        assert_eq!(r.unwrap_err().to_string(), "timed out after 2s waiting for the peer to answer");
        let took = t0.elapsed();
        assert!(took >= Duration::from_secs(2) && took < Duration::from_millis(2100), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_observation_ends_the_wait_at_once() {
        let r: Result<(), WaitError<&str>> = until("x", Duration::from_secs(60), || async { Err("daemon exited") }, every(Duration::from_secs(1))).await;
        assert_eq!(r, Err(WaitError::Failed("daemon exited")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_tick_is_cut_at_the_deadline() {
        let t0 = tokio::time::Instant::now();
        let r: Result<(), WaitError<()>> = until("x", Duration::from_secs(1), || async { Ok(None) }, every(Duration::from_secs(3600))).await;
        assert!(r.is_err());
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
}
