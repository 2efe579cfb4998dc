//! A double of KubeVirt's virt-api and virt-handler for one test cluster, reached the way the real one is:
//! registered as the aggregated API `v1.subresources.kubevirt.io` of a real kube-apiserver, which proxies
//! `start`, `stop` and the serial `console` (a websocket, `plain.kubevirt.io`) to it over TLS. It listens
//! inside a network namespace of its own (the aggregator refuses loopback endpoints; named `drt-*`, which
//! the lab never reaps). A VM's `start` runs the real probe (host mode) on a file standing for the VM's
//! PVC, with the arguments the VM's kernel arguments carry, and publishes a VMI as KubeVirt does; the
//! console carries the probe's stdin/stdout. Everything (processes, namespace, link) goes on drop.

use futures::{SinkExt, StreamExt};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::protocol::{Message, Role};

/// One running probe: its console ends (taken by the first console connection).
struct Running {
    pid: i32,
    stdin: Option<tokio::process::ChildStdin>,
    stdout: Option<tokio::process::ChildStdout>,
}

pub struct VirtApi {
    netns: String,
    link: String,
    pub disks: PathBuf,
    /// The running probes' PIDs, one per line (what a power loss of this cluster kills).
    pub pids: PathBuf,
    _dir: tempfile::TempDir,
    vms: Arc<Mutex<HashMap<String, Running>>>,
    /// start requests seen (VM names), in order
    pub starts: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

fn sh(args: &[&str]) {
    let o = std::process::Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn vmi_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachineInstance")))
}

fn vm_api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&GroupVersionKind::gvk("kubevirt.io", "v1", "VirtualMachine")))
}

impl VirtApi {
    /// Starts the double and registers it with the API server `client` talks to; returns once the
    /// aggregator reports the API available. `probe` is the dr-probe binary.
    pub async fn start(client: kube::Client, probe: PathBuf) -> VirtApi {
        // unique within this process (tests run in parallel) and across processes (the PID)
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 63;
        let pid = std::process::id();
        let (netns, link) = (format!("drt-virtapi-{pid}-{n}"), format!("drtva{}x{n}", pid % 100000));
        let (host, addr) = (format!("10.252.{}.{}", pid % 250, 4 * n + 1), format!("10.252.{}.{}", pid % 250, 4 * n + 2));
        sh(&["ip", "netns", "add", &netns]);
        sh(&["ip", "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &netns]);
        sh(&["ip", "addr", "add", &format!("{host}/30"), "dev", &link]);
        sh(&["ip", "link", "set", &link, "up"]);
        sh(&["ip", "-n", &netns, "addr", "add", &format!("{addr}/30"), "dev", "eth0"]);
        sh(&["ip", "-n", &netns, "link", "set", "eth0", "up"]);
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        sh(&[
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=virt-api",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            crt.to_str().unwrap(),
            "-addext",
            &format!("subjectAltName=IP:{addr}"),
        ]);
        // the listening socket is made inside the namespace: a thread joins it, binds, and leaves
        let ns_path = format!("/run/netns/{netns}");
        let bind = addr.clone();
        let std_listener = std::thread::spawn(move || {
            let f = std::fs::File::open(&ns_path).unwrap();
            // SAFETY: setns on this thread only; the thread ends right after binding.
            assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
            let l = std::net::TcpListener::bind((bind.as_str(), 8443)).unwrap();
            l.set_nonblocking(true).unwrap();
            l
        })
        .join()
        .unwrap();
        let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
        use rustls_pki_types::pem::PemObject;
        let certs = vec![rustls_pki_types::CertificateDer::from_pem_file(&crt).unwrap()];
        let pkey = rustls_pki_types::PrivateKeyDer::from_pem_file(&key).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let tls = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, pkey)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let disks = dir.path().join("disks");
        std::fs::create_dir_all(&disks).unwrap();
        let vms: Arc<Mutex<HashMap<String, Running>>> = Arc::default();
        let starts: Arc<Mutex<Vec<String>>> = Arc::default();
        let st = State { client: client.clone(), probe, disks: disks.clone(), vms: vms.clone(), starts: starts.clone(), pids: dir.path().join("pids") };
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, st) = (acceptor.clone(), st.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls, st).await;
                    }
                });
            }
        });
        // registration: a Service whose Endpoints are the double's address, and the APIService
        crate::support::apply(&client, json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "virt-api", "namespace": "default"}, "spec": {"ports": [{"port": 443, "targetPort": 8443, "protocol": "TCP"}]}})).await;
        crate::support::apply(&client, json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "virt-api", "namespace": "default"}, "subsets": [{"addresses": [{"ip": addr}], "ports": [{"port": 8443, "protocol": "TCP"}]}]})).await;
        crate::support::apply(&client, json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1.subresources.kubevirt.io"},
            "spec": {"group": "subresources.kubevirt.io", "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15, "insecureSkipTLSVerify": true, "service": {"namespace": "default", "name": "virt-api", "port": 443}}})).await;
        let apis: Api<DynamicObject> =
            Api::all_with(client.clone(), &ApiResource::from_gvk(&GroupVersionKind::gvk("apiregistration.k8s.io", "v1", "APIService")));
        let t0 = std::time::Instant::now();
        loop {
            let a = apis.get("v1.subresources.kubevirt.io").await.unwrap();
            let ok = a.data["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "Available" && c["status"] == "True"));
            if ok {
                break;
            }
            assert!(t0.elapsed() < std::time::Duration::from_secs(60), "the aggregated API never became available: {}", a.data["status"]);
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        // available is not yet routed: wait until the API server proxies the group to the double
        loop {
            let req = http::Request::get("/apis/subresources.kubevirt.io/v1").body(vec![]).unwrap();
            if client.request_text(req).await.is_ok_and(|t| t.contains("virtualmachineinstances/console")) {
                break;
            }
            assert!(t0.elapsed() < std::time::Duration::from_secs(60), "the API server never routed subresources.kubevirt.io to the double");
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        VirtApi { netns, link, disks, pids: dir.path().join("pids"), _dir: dir, vms, starts, task }
    }

    /// A zeroed file standing for the PVC `name`.
    pub fn disk(&self, name: &str, bytes: u64) {
        let f = std::fs::File::create(self.disks.join(format!("{name}.img"))).unwrap();
        f.set_len(bytes).unwrap();
    }
}

impl Drop for VirtApi {
    fn drop(&mut self) {
        self.task.abort();
        for (_, r) in self.vms.lock().unwrap().drain() {
            // SAFETY: a probe this double started.
            unsafe { libc::kill(r.pid, libc::SIGKILL) };
        }
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.netns]).output();
        let _ = std::process::Command::new("ip").args(["link", "del", &self.link]).output();
    }
}

#[derive(Clone)]
struct State {
    client: kube::Client,
    probe: PathBuf,
    disks: PathBuf,
    vms: Arc<Mutex<HashMap<String, Running>>>,
    starts: Arc<Mutex<Vec<String>>>,
    pids: PathBuf,
}

impl State {
    fn write_pids(&self) {
        let pids: Vec<String> = self.vms.lock().unwrap().values().map(|r| r.pid.to_string()).collect();
        let _ = std::fs::write(&self.pids, pids.join("\n") + "\n");
    }
}

impl VirtApi {
    /// Looks up the PID of the probe running VM `ns/name`, if one runs.
    pub fn pid_lookup(&self) -> crate::storage::PidOf {
        let vms = self.vms.clone();
        Arc::new(move |key: &str| vms.lock().unwrap().get(key).map(|r| r.pid))
    }
}

async fn respond(io: &mut (impl tokio::io::AsyncWrite + Unpin), code: u16, body: &str) {
    let reason = if code == 200 { "OK" } else { "Error" };
    let _ = io
        .write_all(
            format!("HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                .as_bytes(),
        )
        .await;
    let _ = io.flush().await;
}

/// The probe's arguments from the VM's kernel arguments (`drprobe.K=V`), for its host mode.
fn probe_args(kernel_args: &str, device: &str) -> Vec<String> {
    let kv: HashMap<&str, &str> = kernel_args.split_whitespace().filter_map(|a| a.strip_prefix("drprobe.")).filter_map(|a| a.split_once('=')).collect();
    let mut args = vec![kv.get("mode").copied().unwrap_or("write").to_string(), "--device".into(), device.into()];
    for k in ["rate", "limit", "seq", "wait"] {
        if let Some(v) = kv.get(k) {
            args.extend([format!("--{k}"), v.to_string()]);
        }
    }
    args
}

async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static>(io: S, st: State) {
    let mut io = BufReader::new(io);
    let mut head = vec![];
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_string());
    }
    let first: Vec<&str> = head[0].split_whitespace().collect();
    let (method, path) = (first[0].to_string(), first[1].to_string());
    let header = |name: &str| head.iter().find_map(|h| h.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string()));
    let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = io.read_exact(&mut body).await;
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // apis/subresources.kubevirt.io/v1/namespaces/{ns}/{resource}/{name}/{action}
    if parts.len() == 8 && parts[3] == "namespaces" {
        let (ns, resource, name, action) = (parts[4].to_string(), parts[5], parts[6].to_string(), parts[7]);
        match (method.as_str(), resource, action) {
            ("PUT", "virtualmachines", "start") => {
                st.starts.lock().unwrap().push(name.clone());
                let vm = vm_api(&st.client, &ns).get(&name).await.unwrap();
                let spec = &vm.data["spec"]["template"];
                let kargs = spec["spec"]["domain"]["firmware"]["kernelBoot"]["kernelArgs"].as_str().unwrap_or("").to_string();
                let disk = spec["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"].as_str().unwrap().to_string();
                let device = st.disks.join(format!("{disk}.img"));
                let mut child = tokio::process::Command::new(&st.probe)
                    .args(probe_args(&kargs, device.to_str().unwrap()))
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(false)
                    .spawn()
                    .unwrap();
                let pid = child.id().unwrap() as i32;
                let run = Running { pid, stdin: child.stdin.take(), stdout: child.stdout.take() };
                st.vms.lock().unwrap().insert(format!("{ns}/{name}"), run);
                st.write_pids();
                let vmis = vmi_api(&st.client, &ns);
                let _ = vmis.delete(&name, &Default::default()).await;
                let vmi: DynamicObject = serde_json::from_value(json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                    "metadata": {"name": name, "namespace": ns, "labels": spec["metadata"]["labels"]}, "spec": spec["spec"]}))
                .unwrap();
                vmis.create(&PostParams::default(), &vmi).await.unwrap();
                vmis.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Running"}}))).await.unwrap();
                // the VMI ends when the guest does
                let (client, vms, key, st2) = (st.client.clone(), st.vms.clone(), format!("{ns}/{name}"), st.clone());
                tokio::spawn(async move {
                    let _ = child.wait().await;
                    let vmis = vmi_api(&client, &ns);
                    let _ = vmis.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Succeeded"}}))).await;
                    {
                        let mut g = vms.lock().unwrap();
                        if g.get(&key).is_some_and(|r| r.pid == pid) {
                            g.remove(&key);
                        }
                    }
                    st2.write_pids();
                });
                respond(&mut io, 200, "{}").await;
            }
            ("PUT", "virtualmachines", "stop") => {
                let grace0 = String::from_utf8_lossy(&body).contains("\"gracePeriod\":0");
                if let Some(r) = st.vms.lock().unwrap().get(&format!("{ns}/{name}")) {
                    // SAFETY: a probe this double started.
                    unsafe { libc::kill(r.pid, if grace0 { libc::SIGKILL } else { libc::SIGTERM }) };
                }
                respond(&mut io, 200, "{}").await;
            }
            ("GET", "virtualmachineinstances", "console") => {
                let offered = header("sec-websocket-protocol").unwrap_or_default();
                if !offered.split(',').any(|p| p.trim() == "plain.kubevirt.io") {
                    return respond(&mut io, 400, r#"{"message":"the console speaks plain.kubevirt.io only"}"#).await;
                }
                let taken = st.vms.lock().unwrap().get_mut(&format!("{ns}/{name}")).map(|r| (r.stdin.take(), r.stdout.take()));
                let Some((Some(mut stdin), Some(stdout))) = taken else {
                    return respond(&mut io, 400, r#"{"message":"VMI is not running or its console is taken"}"#).await;
                };
                let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(header("sec-websocket-key").unwrap_or_default().as_bytes());
                let _ = io.write_all(format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: plain.kubevirt.io\r\n\r\n").as_bytes()).await;
                let _ = io.flush().await;
                let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
                let (mut sink, mut stream) = ws.split();
                let out = tokio::spawn(async move {
                    let mut stdout = stdout;
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match stdout.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            // split frames anywhere: the client must not assume a frame is a line
                            Ok(n) => {
                                let cut = n / 2;
                                for part in [&buf[..cut], &buf[cut..n]] {
                                    if !part.is_empty() && sink.send(Message::Binary(part.to_vec().into())).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    }
                    let _ = sink.close().await;
                });
                while let Some(Ok(m)) = stream.next().await {
                    if let Message::Binary(b) = m {
                        if stdin.write_all(&b).await.is_err() {
                            break;
                        }
                        let _ = stdin.flush().await;
                    }
                }
                let _ = out.await;
            }
            _ => respond(&mut io, 404, r#"{"message":"not found"}"#).await,
        }
        return;
    }
    // discovery of the group version (the aggregator's availability check reads it)
    respond(&mut io, 200, r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"subresources.kubevirt.io/v1","resources":[{"name":"virtualmachineinstances/console","singularName":"","namespaced":true,"kind":"VirtualMachineInstance","verbs":["get"]},{"name":"virtualmachines/start","singularName":"","namespaced":true,"kind":"VirtualMachine","verbs":["update"]},{"name":"virtualmachines/stop","singularName":"","namespaced":true,"kind":"VirtualMachine","verbs":["update"]}]}"#).await;
}
