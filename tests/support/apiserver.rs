//! A real Kubernetes API server for tests: Debian's etcd and a kube-apiserver 1.20 built from Debian's source
//! (scripts/build-kube-apiserver.sh, run by scripts/setup.sh). Each instance has its own ports and
//! directory; both processes are children with a parent-death signal and are killed on drop.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where scripts/setup.sh put the API server (`DR_DRILL_ASSETS`, default /opt/dr-drill).
pub fn apiserver_bin() -> PathBuf {
    PathBuf::from(std::env::var("DR_DRILL_ASSETS").unwrap_or_else(|_| "/opt/dr-drill".into())).join("k8s/kube-apiserver")
}

pub struct ApiServer {
    children: Vec<Child>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub context: String,
    /// https://127.0.0.1:port, its CA, and the admin token.
    pub port: u16,
    pub ca: PathBuf,
    pub token: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn(cmd: &mut Command, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    // SAFETY: prctl in the child before exec; the child dies with the test process.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out).spawn().unwrap_or_else(|e| panic!("failed to start {cmd:?}: {e}"))
}

fn wait_until(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl ApiServer {
    pub fn start() -> ApiServer {
        let bin = apiserver_bin();
        assert!(bin.exists(), "{} is missing: run scripts/setup.sh (it builds the API server the Kubernetes tests need)", bin.display());
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (etcd_port, peer_port, port) = (free_port(), free_port(), free_port());
        let mut children = vec![];
        children.push(spawn(
            Command::new("etcd").args([
                "--data-dir",
                &d.join("etcd").display().to_string(),
                "--listen-client-urls",
                &format!("http://127.0.0.1:{etcd_port}"),
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{etcd_port}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer_port}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer_port}"),
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer_port}"),
            ]),
            &d.join("etcd.log"),
        ));
        let sa = d.join("sa.key");
        let st = Command::new("openssl").args(["genrsa", "-out"]).arg(&sa).arg("2048").stderr(Stdio::null()).status().unwrap();
        assert!(st.success(), "openssl genrsa failed");
        let token = "dr-drill-test-token";
        std::fs::write(d.join("tokens.csv"), format!("{token},admin,1,system:masters\n")).unwrap();
        let certs = d.join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        let mut api =
            ApiServer { children, dir, kubeconfig: PathBuf::new(), context: "test".into(), port, ca: certs.join("apiserver.crt"), token: token.into() };
        let d = api.dir.path().to_path_buf();
        api.children.push(spawn(
            Command::new(&bin).args([
                &format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                &format!("--secure-port={port}"),
                "--endpoint-reconciler-type=none",
                &format!("--cert-dir={}", certs.display()),
                "--service-account-issuer=https://dr-drill.test",
                &format!("--service-account-signing-key-file={}", sa.display()),
                &format!("--service-account-key-file={}", sa.display()),
                "--service-cluster-ip-range=10.96.0.0/16",
                "--authorization-mode=AlwaysAllow",
                "--disable-admission-plugins=ServiceAccount",
                &format!("--token-auth-file={}", d.join("tokens.csv").display()),
                // aggregated APIs (a virt-api double) are reached at their Endpoints' address
                "--enable-aggregator-routing=true",
            ]),
            &d.join("apiserver.log"),
        ));
        let crt = certs.join("apiserver.crt");
        wait_until("kube-apiserver to write its certificate", Duration::from_secs(60), || {
            crt.exists() && std::fs::metadata(&crt).map(|m| m.len() > 0).unwrap_or(false)
        });
        let kubeconfig = d.join("kubeconfig");
        let mut f = std::fs::File::create(&kubeconfig).unwrap();
        write!(
            f,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context: {{cluster: test, user: admin}}\ncurrent-context: test\n",
            crt.display()
        )
        .unwrap();
        api.kubeconfig = kubeconfig;
        let healthz = format!("https://127.0.0.1:{port}/healthz");
        wait_until("kube-apiserver /healthz", Duration::from_secs(90), || {
            Command::new("curl")
                .args(["-sfk", "-H", &format!("Authorization: Bearer {token}"), &healthz])
                .output()
                .map(|o| o.status.success() && o.stdout == b"ok")
                .unwrap_or(false)
        });
        api
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions { context: Some(self.context.clone()), ..Default::default() })
            .await
            .unwrap();
        kube::Client::try_from(cfg).unwrap()
    }

    /// Applies every document of a YAML file (server-side apply), then waits for CRDs to be established.
    pub async fn apply_file(&self, client: &kube::Client, path: &Path) {
        let text = std::fs::read_to_string(path).unwrap();
        for doc in text.split("\n---").filter(|d| d.contains("kind:")) {
            let v: serde_json::Value = serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            apply(client, v).await;
        }
        let crds: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = kube::Api::all(client.clone());
        for crd in crds.list(&Default::default()).await.unwrap() {
            let name = crd.metadata.name.clone().unwrap();
            let cond = kube::runtime::conditions::is_crd_established();
            tokio::time::timeout(Duration::from_secs(20), kube::runtime::wait::await_condition(crds.clone(), &name, cond))
                .await
                .expect("CRD established")
                .unwrap();
        }
    }
}

/// Creates one object given as JSON, or merges it into the existing one (1.20's server-side apply trips
/// over core objects such as Service ports without a protocol).
pub async fn apply(client: &kube::Client, v: serde_json::Value) {
    let obj: kube::api::DynamicObject = serde_json::from_value(v.clone()).unwrap();
    let tm = obj.types.clone().unwrap();
    let (group, version) = tm.api_version.split_once('/').unwrap_or(("", tm.api_version.as_str()));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, &tm.kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk).await.unwrap_or_else(|e| panic!("no API for {gvk:?}: {e}"));
    let name = obj.metadata.name.clone().unwrap();
    let api: kube::Api<kube::api::DynamicObject> = match (caps.scope, obj.metadata.namespace.as_deref()) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => kube::Api::namespaced_with(client.clone(), ns, &ar),
        _ => kube::Api::all_with(client.clone(), &ar),
    };
    match api.create(&Default::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            api.patch(&name, &Default::default(), &kube::api::Patch::Merge(&v)).await.unwrap_or_else(|e| panic!("patch {} {name}: {e}", tm.kind));
        }
        Err(e) => panic!("create {} {name}: {e}", tm.kind),
    }
}

impl ApiServer {
    /// PIDs of etcd and kube-apiserver (a "power loss" of this cluster kills them).
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|c| c.id()).collect()
    }
}

/// One kubeconfig with a context per API server, named as given.
pub fn kubeconfig_of(path: &Path, servers: &[(&str, &ApiServer)]) {
    let mut s = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    for (n, a) in servers {
        s.push_str(&format!("- name: {n}\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\n", a.port, a.ca.display()));
    }
    s.push_str("users:\n");
    for (n, a) in servers {
        s.push_str(&format!("- name: {n}\n  user:\n    token: {}\n", a.token));
    }
    s.push_str("contexts:\n");
    for (n, _) in servers {
        s.push_str(&format!("- name: {n}\n  context: {{cluster: {n}, user: {n}}}\n"));
    }
    s.push_str(&format!("current-context: {}\n", servers[0].0));
    std::fs::write(path, s).unwrap();
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
