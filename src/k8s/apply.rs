//! Manifests as plain JSON objects, applied server-side (field manager `dr-drill`), optionally as a dry
//! run: the kind environment's plan and the VM's resources go through here. Each object's kind is resolved
//! through the API server's discovery, so custom resources work once their CRD is established.

use super::K8sError;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{self, Scope};
use kube::Client;
use serde_json::Value;
use std::time::Duration;

/// Which object: apiVersion, kind, namespace (None: cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Obj {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl Obj {
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Obj {
        Obj { api_version: api_version.into(), kind: kind.into(), namespace: namespace.map(Into::into), name: name.into() }
    }

    /// The object a manifest describes. Pure. (Its error is always the small `Usage`.)
    #[allow(clippy::result_large_err)]
    pub fn of(v: &Value) -> Result<Obj, K8sError> {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        match (s("/apiVersion"), s("/kind"), s("/metadata/name")) {
            (Some(api_version), Some(kind), Some(name)) => Ok(Obj { api_version, kind, namespace: s("/metadata/namespace"), name }),
            _ => Err(K8sError::Usage(format!("a manifest without apiVersion, kind or metadata.name: {}", crate::k8s::apply::short(v)))),
        }
    }
    /// `namespace/name` or `name`.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
    fn gvk(&self) -> kube::api::GroupVersionKind {
        let (group, version) = self.api_version.split_once('/').unwrap_or(("", &self.api_version));
        kube::api::GroupVersionKind::gvk(group, version, &self.kind)
    }
}

/// The first 120 characters of a manifest, for errors.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(120).collect()
}

/// An API for the object's kind, resolved through discovery; kinds not served yet (a CRD just created) are
/// looked up again until `settle` has passed.
async fn api_for(client: &Client, o: &Obj, settle: Duration) -> Result<Api<DynamicObject>, K8sError> {
    let last = std::sync::Mutex::new(String::new());
    let check = || async {
        match discovery::pinned_kind(client, &o.gvk()).await {
            Ok((ar, caps)) => Ok(Some(match (caps.scope, &o.namespace) {
                (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
                (Scope::Namespaced, None) => return Err(K8sError::Usage(format!("{} {} is namespaced but the manifest names no namespace", o.kind, o.name))),
                (Scope::Cluster, _) => Api::all_with(client.clone(), &ar),
            })),
            Err(e) => {
                *last.lock().unwrap() = e.to_string();
                Ok(None)
            }
        }
    };
    crate::wait::until(format!("kind {} to be served", o.kind), settle, check, crate::wait::every(Duration::from_millis(500))).await.map_err(|e| match e {
        crate::wait::WaitError::Timeout { .. } => {
            K8sError::Usage(format!("failed to find kind {} ({}) on the API server: {}", o.kind, o.api_version, last.lock().unwrap()))
        }
        crate::wait::WaitError::Failed(e) => e,
    })
}

/// Applies every object in order (server-side apply, forced, field manager `dr-drill`); with `dry_run`
/// the API server validates and admits each one without storing it. Returns a line per object.
pub async fn apply_all(client: &Client, objects: &[Value], dry_run: bool, settle: Duration) -> Result<Vec<String>, K8sError> {
    let mut out = vec![];
    for v in objects {
        out.push(apply_one(client, "dr-drill", v, dry_run, settle).await?);
    }
    Ok(out)
}

/// Applies one object under its own field manager (fields it does not name stay with their owners).
pub async fn apply_as(client: &Client, manager: &str, v: &Value) -> Result<String, K8sError> {
    apply_one(client, manager, v, false, Duration::from_secs(10)).await
}

async fn apply_one(client: &Client, manager: &str, v: &Value, dry_run: bool, settle: Duration) -> Result<String, K8sError> {
    let o = Obj::of(v)?;
    let api = api_for(client, &o, settle).await?;
    let mut pp = PatchParams::apply(manager).force();
    pp.dry_run = dry_run;
    api.patch(&o.name, &pp, &Patch::Apply(v)).await.map_err(|source| K8sError::Api {
        what: "apply".into(),
        kind: o.kind.clone(),
        namespace: o.namespace.clone().unwrap_or_default(),
        name: o.name.clone(),
        source,
    })?;
    Ok(format!("{} {} applied{}", o.kind, o.key(), if dry_run { " (server dry run)" } else { "" }))
}

/// A failed read of `o`, naming it.
fn read_error(o: &Obj) -> impl FnOnce(kube::Error) -> K8sError + '_ {
    move |source| K8sError::Api { what: "read".into(), kind: o.kind.clone(), namespace: o.namespace.clone().unwrap_or_default(), name: o.name.clone(), source }
}

/// The object as the API server has it (None: not there).
pub async fn get(client: &Client, o: &Obj) -> Result<Option<Value>, K8sError> {
    let api = api_for(client, o, Duration::ZERO).await?;
    let got = api.get_opt(&o.name).await.map_err(read_error(o))?;
    Ok(got.map(|d| serde_json::to_value(d).unwrap_or(Value::Null)))
}

/// Deletes the object; one that is not there is already deleted.
pub async fn delete(client: &Client, o: &Obj) -> Result<(), K8sError> {
    let api = api_for(client, o, Duration::ZERO).await?;
    match api.delete(&o.name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => {
            Err(K8sError::Api { what: "delete".into(), kind: o.kind.clone(), namespace: o.namespace.clone().unwrap_or_default(), name: o.name.clone(), source })
        }
    }
}

/// Polls `o` until `ready` holds, for at most `deadline`; the timeout names the object and what it showed.
pub async fn wait_ready(
    client: &Client,
    o: &Obj,
    what: &str,
    deadline: impl Into<crate::wait::Deadline>,
    ready: impl Fn(Option<&Value>) -> bool,
) -> Result<Value, K8sError> {
    let deadline = deadline.into();
    let last = std::sync::Mutex::new(None::<Value>);
    // resolved once the kind is served (a kind not served yet reads as "not there")
    let api = tokio::sync::Mutex::new(None::<Api<DynamicObject>>);
    let check = || async {
        let mut a = api.lock().await;
        if a.is_none() {
            *a = api_for(client, o, Duration::ZERO).await.ok();
        }
        if let Some(a) = a.as_ref() {
            let got = a.get_opt(&o.name).await.map_err(read_error(o))?;
            *last.lock().unwrap() = got.map(|d| serde_json::to_value(d).unwrap_or(Value::Null));
        }
        let seen = last.lock().unwrap().clone();
        Ok::<_, K8sError>(ready(seen.as_ref()).then(|| seen.unwrap_or(Value::Null)))
    };
    crate::wait::until(what, deadline, check, crate::wait::every(Duration::from_millis(500))).await.map_err(|e| match e {
        crate::wait::WaitError::Timeout { after, budget, .. } => {
            let seen = last
                .lock()
                .unwrap()
                .as_ref()
                .map(|v| v.get("status").map(|s| s.to_string()).unwrap_or_else(|| "no status".into()))
                .unwrap_or_else(|| "not found".into());
            K8sError::Timeout {
                kind: o.kind.clone(),
                namespace: o.namespace.clone().unwrap_or_default(),
                name: o.name.clone(),
                what: what.into(),
                after,
                last: seen.chars().take(300).collect(),
                budget,
            }
        }
        crate::wait::WaitError::Failed(e) => e,
    })
}

/// Multi-document YAML (an upstream manifest) as JSON objects; empty documents and `List` wrappers are
/// flattened (the lint's reader). Pure. (Its error is always the small `Usage`.)
#[allow(clippy::result_large_err)]
pub fn parse_manifests(text: &str, source: &str) -> Result<Vec<Value>, K8sError> {
    let objs = crate::lint::parse_stream(source, text).map_err(|e| K8sError::Usage(e.to_string()))?;
    Ok(objs.into_iter().map(|o| o.value).collect())
}
