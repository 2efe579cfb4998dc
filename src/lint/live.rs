//! Live lint: the same rules over what a cluster holds in one namespace (kube). Thin I/O: list the kinds
//! the rules read, turn them into `Object`s, hand them to the pure rules. A kind whose API is not installed
//! (404) is left out; any other API error is an error.

use super::{LintError, Object, Source};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use std::time::{Duration, Instant};

/// (group, version, kind, namespaced) of what the rules read.
pub const KINDS: &[(&str, &str, &str, bool)] = &[
    ("kubevirt.io", "v1", "VirtualMachine", true),
    ("kubevirt.io", "v1", "VirtualMachineInstance", true),
    ("cdi.kubevirt.io", "v1beta1", "DataVolume", true),
    ("", "v1", "PersistentVolumeClaim", true),
    ("", "v1", "Service", true),
    ("", "v1", "Secret", true),
    ("", "v1", "ConfigMap", true),
    ("", "v1", "Pod", true),
    ("route.openshift.io", "v1", "Route", true),
    ("ramendr.openshift.io", "v1alpha1", "DRPolicy", false),
    // the storage under the application, wherever Rook runs (cluster-wide)
    ("storage.k8s.io", "v1", "StorageClass", false),
    ("ceph.rook.io", "v1", "CephCluster", false),
    ("ceph.rook.io", "v1", "CephBlockPool", false),
];

fn err(ctx: &str, msg: String) -> LintError {
    LintError::Live { context: ctx.to_string(), msg }
}

/// A client for a kubeconfig context; a wrong kubeconfig or an unknown context is named.
pub async fn client(context: &str, kubeconfig: Option<&std::path::Path>) -> Result<Client, LintError> {
    let opts = kube::config::KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
    let cfg = match kubeconfig {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p).map_err(|e| err(context, format!("failed to read kubeconfig {}: {e}", p.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &opts).await
        }
        None => kube::Config::from_kubeconfig(&opts).await,
    }
    .map_err(|e| err(context, format!("failed to load the kubeconfig context: {e}")))?;
    Client::try_from(cfg).map_err(|e| err(context, format!("failed to create a client: {e}")))
}

/// Lists every kind the rules read in `namespace` (cluster-scoped ones cluster-wide), in `KINDS` order.
pub async fn fetch(client: Client, context: &str, namespace: &str) -> Result<Vec<Object>, LintError> {
    let mut out = vec![];
    for (group, version, kind, namespaced) in KINDS {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let api: Api<DynamicObject> = if *namespaced { Api::namespaced_with(client.clone(), namespace, &ar) } else { Api::all_with(client.clone(), &ar) };
        let list = match api.list(&ListParams::default()).await {
            Ok(l) => l,
            // an API group that is not installed answers a bare "404 page not found", not a NotFound Status
            Err(kube::Error::Api(s)) if s.is_not_found() || s.code == 404 => continue,
            Err(e) => return Err(err(context, format!("failed to list {kind} in {namespace}: {e}"))),
        };
        for item in list.items {
            let mut v = serde_json::to_value(&item).map_err(|e| err(context, e.to_string()))?;
            v["kind"] = serde_json::json!(kind);
            let src = Source { file: format!("{context}/{namespace}"), line: 1 };
            out.extend(Object::from_value(v, src, None));
        }
    }
    Ok(out)
}

/// Median round trip of `GET /version` to a cluster's API server, over `n` calls.
pub async fn apiserver_rtt(client: &Client, n: usize) -> Result<Duration, kube::Error> {
    let mut v = vec![];
    for _ in 0..n.max(1) {
        let t = Instant::now();
        client.apiserver_version().await?;
        v.push(t.elapsed());
    }
    v.sort();
    Ok(v[v.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;

    fn list(kind: &str, items: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {}, "items": items})).unwrap()
    }

    /// kube's mock pattern: the fake API server answers the expected calls in order.
    #[tokio::test]
    async fn lists_each_kind_and_skips_missing_apis() {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            for (group, version, kind, namespaced) in KINDS {
                let (req, send) = handle.next_request().await.expect("a request per kind");
                let k = kind.to_lowercase();
                let plural = match k.strip_suffix('y') {
                    Some(stem) => format!("{stem}ies"),
                    None if k.ends_with('s') => format!("{k}es"),
                    None => format!("{k}s"),
                };
                let base = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
                let path = if *namespaced { format!("{base}/namespaces/shop/{plural}") } else { format!("{base}/{plural}") };
                assert_eq!(req.method(), http::Method::GET);
                assert_eq!(req.uri().path(), path);
                let resp = match *kind {
                    "VirtualMachine" => Response::builder().body(Body::from(list(kind, serde_json::json!([{
                        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "shop"}},
                        "spec": {"template": {"spec": {"volumes": [{"name": "root", "persistentVolumeClaim": {"claimName": "web-root"}}]}}}
                    }])))),
                    "PersistentVolumeClaim" => Response::builder().body(Body::from(list(kind, serde_json::json!([{
                        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": "web-root", "namespace": "shop"},
                        "spec": {"dataSource": {"kind": "PersistentVolumeClaim", "name": "golden"}}
                    }])))),
                    // OpenShift's Route API is not installed on this cluster
                    "Route" => Response::builder().status(404).body(Body::from(
                        serde_json::to_vec(&serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404})).unwrap(),
                    )),
                    _ => Response::builder().body(Body::from(list(kind, serde_json::json!([])))),
                };
                send.send_response(resp.unwrap());
            }
        });
        let client = Client::new(svc, "shop");
        let objects = fetch(client, "east", "shop").await.unwrap();
        server.await.unwrap();
        assert_eq!(objects.iter().map(|o| o.id()).collect::<Vec<_>>(), ["VirtualMachine shop/web", "PersistentVolumeClaim shop/web-root"]);
        let findings = crate::lint::rules::check(&objects, false, &Default::default());
        let rules: Vec<&str> = findings.iter().map(|f| f.rule).collect();
        assert_eq!(rules, ["DR001", "DR020"], "{findings:#?}");
        assert_eq!(findings[0].file, "east/shop");
    }

    #[tokio::test]
    async fn forbidden_is_an_error_naming_the_kind() {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        tokio::spawn(async move {
            let (_, send) = handle.next_request().await.unwrap();
            let body = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "virtualmachines is forbidden", "reason": "Forbidden", "code": 403});
            send.send_response(Response::builder().status(403).body(Body::from(serde_json::to_vec(&body).unwrap())).unwrap());
        });
        let e = fetch(Client::new(svc, "shop"), "east", "shop").await.unwrap_err().to_string();
        assert!(e.contains("context east") && e.contains("failed to list VirtualMachine in shop"), "{e}");
    }

    #[tokio::test]
    async fn unknown_context_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let kc = dir.path().join("config");
        std::fs::write(&kc, "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n").unwrap();
        let Err(e) = client("nowhere", Some(&kc)).await else { panic!("an unknown context must be refused") };
        let e = e.to_string();
        assert!(e.contains("context nowhere"), "{e}");
    }
}
