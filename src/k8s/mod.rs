//! Kubernetes: the custom resources dr-drill drives (small hand-written subsets: no maintained crate fits
//! kube 5) and the DR requests made through them. Pure conditions over those resources (`fn(Option<&K>) ->
//! bool`, tested on inline YAML) are kept apart from the thin I/O that patches and waits, and every wait has
//! a deadline. Tested against a real kube-apiserver (scripts/build-kube-apiserver.sh), never a mock client.

pub mod apply;
pub mod console;
pub mod gather;
pub mod kubevirt;
pub mod ramen;
pub mod volrep;

use crate::error::{Cause, Caused};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// The API server refused or failed a request.
    #[error("failed to {what} {kind} {namespace}/{name}: {source}")]
    Api { what: String, kind: String, namespace: String, name: String, source: kube::Error },
    /// The object never reached the state waited for: the DR orchestration did not do its part.
    #[error("timed out after {after:?} waiting for {kind} {namespace}/{name} to {what} (last seen: {last}){}", crate::wait::budget_note(.budget))]
    Timeout { kind: String, namespace: String, name: String, what: String, after: Duration, last: String, budget: Option<&'static str> },
    /// The object is not what the request needs (missing, wrong cluster, wrong input).
    #[error("{0}")]
    Usage(String),
}

impl Caused for K8sError {
    fn cause(&self) -> Cause {
        match self {
            // the orchestration under test not converging is the system's failure
            K8sError::Timeout { .. } => Cause::System,
            // a refused request or a request that does not fit is the harness's (or its input's)
            K8sError::Api { .. } | K8sError::Usage(_) => Cause::Harness,
        }
    }
}

/// How far a cluster's clock is from the witness's, as bounds (seconds, cluster minus witness): the API
/// server's `Date` header (whole seconds) read at some moment between sending the request and receiving
/// the answer. None when the server sent no readable date.
pub async fn clock_offset(client: &kube::Client) -> Option<(f64, f64)> {
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let req = http::Request::get("/version").body(Vec::<u8>::new()).ok()?;
    let before = now();
    let resp = client.send(req.map(kube::client::Body::from)).await.ok()?;
    let after = now();
    let date = crate::clock::unix_from_http_date(resp.headers().get(http::header::DATE)?.to_str().ok()?)?;
    // the server's clock read [date, date + 1) at a moment in [before, after]
    Some((date - after, date + 1.0 - before))
}

/// Kubernetes errors met by a port keep their cause.
impl From<K8sError> for crate::error::EnvError {
    fn from(e: K8sError) -> crate::error::EnvError {
        crate::error::EnvError::Earlier { cause: e.cause(), msg: e.to_string() }
    }
}

/// Waits until `cond` holds on object `name` (watching it through kube-runtime's `await_condition`), for at
/// most `deadline`. The timeout names the object, what was awaited and, through `describe`, what it last
/// showed; a vanished object or a broken watch is an error of its own.
pub async fn wait_for<K>(
    api: &kube::Api<K>,
    ns: &str,
    name: &str,
    what: &str,
    deadline: impl Into<crate::wait::Deadline>,
    cond: impl Fn(Option<&K>) -> bool + Send + 'static,
    describe: fn(Option<&K>) -> String,
) -> Result<K, K8sError>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let crate::wait::Deadline { after: deadline, key: budget } = deadline.into();
    let kind = K::kind(&());
    let watched = kube::runtime::wait::await_condition(api.clone(), name, move |o: Option<&K>| cond(o));
    match tokio::time::timeout(deadline, watched).await {
        Ok(Ok(Some(o))) => Ok(o),
        Ok(Ok(None)) => Err(K8sError::Usage(format!("{kind} {ns}/{name} is gone while waiting for it to {what}"))),
        Ok(Err(e)) => Err(K8sError::Usage(format!("failed to watch {kind} {ns}/{name}: {e}"))),
        Err(_) => {
            let last = api.get_opt(name).await.ok().flatten();
            Err(K8sError::Timeout {
                kind: kind.to_string(),
                namespace: ns.into(),
                name: name.into(),
                what: what.into(),
                after: deadline,
                last: describe(last.as_ref()),
                budget,
            })
        }
    }
}

/// A condition of `metav1.Condition` shape, as Ramen and csi-addons write them.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

/// Is condition `type_` True and about generation `generation` (or later)? A condition written for an older
/// generation says nothing about the request just made.
pub fn condition_true(conditions: &[Condition], type_: &str, generation: Option<i64>) -> bool {
    conditions.iter().any(|c| c.type_ == type_ && c.status == "True" && c.observed_generation.unwrap_or(0) >= generation.unwrap_or(0))
}

/// A DNS-1123 label (namespaces, most object names). Pure.
pub use crate::text::dns_label;

#[cfg(test)]
mod tests {
    use super::*;

    /// A Kubernetes wait that runs out says what it waited for, what it last saw and the budget key that
    /// would change it (none for a deadline the harness fixes itself).
    #[test]
    fn a_timeout_names_the_object_its_last_state_and_the_budget_key() {
        let t = |budget| K8sError::Timeout {
            kind: "DRPlacementControl".into(),
            namespace: "apps".into(),
            name: "vm0".into(),
            what: "be FailedOver on b".into(),
            after: Duration::from_secs(90),
            last: "phase FailingOver".into(),
            budget,
        };
        assert_eq!(
            t(Some("budgets.promote")).to_string(),
            "timed out after 90s waiting for DRPlacementControl apps/vm0 to be FailedOver on b (last seen: phase FailingOver) (the environment file's `budgets.promote`)"
        );
        assert!(!t(None).to_string().contains("budgets"));
        assert_eq!(t(None).cause(), Cause::System);
    }
}
