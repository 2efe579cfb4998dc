//! Carrying out the kind plan (`env up`) and undoing it (`env down`). Every thing made is recorded in the
//! state file as soon as it exists, so `down` (and a failed `up`, which undoes itself) removes exactly what
//! was made and nothing else: clusters by name, loop devices by the exact name given, files by path.

use super::kind::{self, HostFacts, Plan, Step, PROBE_IMAGE, ROOK_NS};
use crate::config::{EnvConfig, KindSpec};
use crate::error::{Cause, EnvError};
use crate::k8s::apply::{self, Obj};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One thing `env up` made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "made", rename_all = "camelCase")]
pub enum Made {
    File { path: PathBuf },
    Loop { device: PathBuf },
    Cluster { name: String },
    Image { tag: String },
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub made: Vec<Made>,
    /// sha256 of every upstream manifest fetched, by URL: pins without a published digest are held to the
    /// first one seen.
    pub pinned: BTreeMap<String, String>,
}

fn state_path(spec: &KindSpec, env: &str) -> PathBuf {
    spec.work_dir.join(format!("{env}.state.json"))
}

fn lock_path(spec: &KindSpec) -> PathBuf {
    spec.work_dir.join("pinned.lock")
}

fn load_state(spec: &KindSpec, env: &str) -> State {
    std::fs::read_to_string(state_path(spec, env)).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn save_state(spec: &KindSpec, env: &str, st: &State) -> Result<(), EnvError> {
    std::fs::create_dir_all(&spec.work_dir).map_err(|source| EnvError::Io { what: format!("create {}", spec.work_dir.display()), source })?;
    let p = state_path(spec, env);
    std::fs::write(&p, serde_json::to_string_pretty(st).expect("state serializes"))
        .map_err(|source| EnvError::Io { what: format!("write {}", p.display()), source })
}

/// Has `env up` made this environment (and not `env down` removed it)?
pub fn is_up(cfg: &EnvConfig, spec: &KindSpec) -> bool {
    !load_state(spec, &cfg.spec.name).made.is_empty()
}

/// The tools `env up` runs, with what each is for.
pub const TOOLS: &[(&str, &str)] = &[
    ("kind", "creates the clusters (https://kind.sigs.k8s.io, pinned v0.24.0)"),
    ("docker", "runs kind's node containers and builds the probe image"),
    ("losetup", "attaches the OSD loop devices (util-linux)"),
    ("curl", "fetches the pinned upstream manifests"),
    ("truncate", "makes the sparse OSD files (coreutils)"),
];

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Everything `env up` needs, checked before anything is made: the tools, the loop devices free, the
/// clusters not there yet, the lab's guest assets (kernel, modules, probe) for the probe image.
pub fn preflight(cfg: &EnvConfig, spec: &KindSpec) -> Result<(), EnvError> {
    for (tool, hint) in TOOLS {
        if !on_path(tool) {
            return Err(EnvError::MissingTool { tool: (*tool).into(), hint: format!("{hint}; needed by {}", cfg.path.display()) });
        }
    }
    let v = std::process::Command::new("kind").arg("version").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    if !v.split_whitespace().any(|w| w == kind::KIND_VERSION) {
        return Err(EnvError::MissingTool {
            tool: format!("kind {}", kind::KIND_VERSION),
            hint: format!("found `{}`; the pinned node image is built for kind {}", v.trim(), kind::KIND_VERSION),
        });
    }
    for (site, dev) in &spec.osd_devices {
        let busy = std::process::Command::new("losetup").arg(dev).output().map(|o| o.status.success()).unwrap_or(false);
        if busy {
            return Err(EnvError::Usage(format!(
                "{}: osdDevices.{site}: {} is already in use (losetup shows it attached); name a free loop device",
                cfg.path.display(),
                dev.display()
            )));
        }
    }
    crate::env::lab::Assets::locate().map(|_| ())
}

async fn run(argv: &[String], deadline: Duration) -> Result<String, EnvError> {
    let mut c = tokio::process::Command::new(&argv[0]);
    c.args(&argv[1..]).kill_on_drop(true);
    let out = tokio::time::timeout(deadline, c.output())
        .await
        .map_err(|_| EnvError::Site {
            site: "host".into(),
            what: format!("run `{}`", argv.join(" ")),
            detail: format!("no answer within {deadline:?}"),
            cause: Cause::Harness,
        })?
        .map_err(|source| EnvError::Io { what: format!("run `{}`", argv.join(" ")), source })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(EnvError::Site {
            site: "host".into(),
            what: format!("run `{}`", argv.join(" ")),
            detail: err.trim().lines().last().unwrap_or("failed").to_string(),
            cause: Cause::Harness,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A client for kind's context of `cluster` (kind writes it into the default kubeconfig).
pub async fn client_for(context: &str, kubeconfig: Option<&Path>) -> Result<kube::Client, EnvError> {
    let kc = match kubeconfig {
        Some(p) => kube::config::Kubeconfig::read_from(p).map_err(|e| EnvError::Usage(format!("failed to read kubeconfig {}: {e}", p.display())))?,
        None => kube::config::Kubeconfig::read().map_err(|e| EnvError::Usage(format!("failed to read the kubeconfig ($KUBECONFIG or ~/.kube/config): {e}")))?,
    };
    if !kc.contexts.iter().any(|c| c.name == context) {
        let known: Vec<&str> = kc.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(EnvError::Usage(format!("kubeconfig context {context:?} not found (contexts: {})", known.join(", "))));
    }
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions { context: Some(context.into()), ..Default::default() })
        .await
        .map_err(|e| EnvError::Usage(format!("failed to load kubeconfig context {context}: {e}")))?;
    kube::Client::try_from(cfg).map_err(|e| EnvError::Usage(format!("failed to make a client for context {context}: {e}")))
}

/// Builds the probe's kernel-boot image (FROM scratch: /boot/vmlinuz and /boot/initramfs.img) from the
/// lab's guest assets.
pub async fn build_probe_image(tag: &str) -> Result<(), EnvError> {
    let a = crate::env::lab::Assets::locate()?;
    let ctx = tempfile::tempdir().map_err(|source| EnvError::Io { what: "make the probe image's build context".into(), source })?;
    let img = crate::env::lab::initramfs::build(&a.probe, &a.modules, a.busybox.as_deref())
        .map_err(|source| EnvError::Io { what: "build the probe's initramfs".into(), source })?;
    let w = |name: &str, data: &[u8]| {
        std::fs::write(ctx.path().join(name), data).map_err(|source| EnvError::Io { what: format!("write {name} into the probe image's context"), source })
    };
    w("initramfs.img", &img)?;
    w("vmlinuz", &std::fs::read(&a.kernel).map_err(|source| EnvError::Io { what: format!("read {}", a.kernel.display()), source })?)?;
    w("Dockerfile", b"FROM scratch\nCOPY vmlinuz initramfs.img /boot/\n")?;
    run(&["docker".into(), "build".into(), "--quiet".into(), "-t".into(), tag.into(), ctx.path().display().to_string()], Duration::from_secs(300)).await?;
    Ok(())
}

/// `dr-drill env image`: the probe's image under the environment's tag, pushed on request.
pub async fn probe_image(cfg: &EnvConfig, push: bool) -> Result<Vec<String>, EnvError> {
    let tag = match &cfg.spec.backend {
        crate::config::Backend::Kind(_) => PROBE_IMAGE.to_string(),
        crate::config::Backend::Existing(x) => x.probe_image.clone(),
        crate::config::Backend::Lab(_) | crate::config::Backend::Sim(_) => {
            return Err(EnvError::Usage(format!(
                "{}: the lab boots the probe from its initramfs directly and the simulation runs none; the image is for kind and existing clusters",
                cfg.path.display()
            )))
        }
    };
    if !on_path("docker") {
        return Err(EnvError::MissingTool { tool: "docker".into(), hint: "builds the probe's image".into() });
    }
    build_probe_image(&tag).await?;
    let mut out = vec![format!("built {tag} (FROM scratch: /boot/vmlinuz, /boot/initramfs.img)")];
    if push {
        run(&["docker".into(), "push".into(), tag.clone()], Duration::from_secs(600)).await?;
        out.push(format!("pushed {tag}"));
    }
    Ok(out)
}

async fn exchange_peer(from: &kube::Client, to: &kube::Client, from_name: &str, pool: &str) -> Result<String, EnvError> {
    let pool_obj = Obj::new("ceph.rook.io/v1", "CephBlockPool", Some(ROOK_NS), pool);
    let p = apply::get(from, &pool_obj).await?.ok_or_else(|| EnvError::Usage(format!("CephBlockPool {ROOK_NS}/{pool} is missing on {from_name}")))?;
    let secret_name = p
        .pointer("/status/info/rbdMirrorBootstrapPeerSecretName")
        .and_then(|v| v.as_str())
        .ok_or_else(|| EnvError::Usage(format!("CephBlockPool {ROOK_NS}/{pool} on {from_name} names no bootstrap peer secret yet")))?;
    let sec = Obj::new("v1", "Secret", Some(ROOK_NS), secret_name);
    let s = apply::get(from, &sec).await?.ok_or_else(|| EnvError::Usage(format!("Secret {ROOK_NS}/{secret_name} is missing on {from_name}")))?;
    let peer = format!("rbd-peer-{from_name}");
    let copy = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": peer, "namespace": ROOK_NS },
        "data": { "token": s["data"]["token"], "pool": s["data"]["pool"] }
    });
    let peers = serde_json::json!({
        "apiVersion": "ceph.rook.io/v1", "kind": "CephBlockPool",
        "metadata": { "name": pool, "namespace": ROOK_NS },
        "spec": { "mirroring": { "peers": { "secretNames": [peer] } } }
    });
    apply::apply_all(to, &[copy], false, Duration::from_secs(10)).await?;
    // its own field manager: the pool's other fields stay owned by the plan's apply
    apply::apply_as(to, "dr-drill-peers", &peers).await?;
    Ok(peer)
}

/// `env up` on kind: the plan, step by step; a failure undoes what was made.
pub async fn up(cfg: &EnvConfig, spec: &KindSpec) -> Result<Vec<String>, EnvError> {
    preflight(cfg, spec)?;
    let plan = kind::plan(cfg, spec, &HostFacts::probe(spec));
    let mut st = load_state(spec, &cfg.spec.name);
    if !st.made.is_empty() {
        return Err(EnvError::Usage(format!(
            "environment {} is already up (state in {}); `dr-drill env down --env {}` first",
            cfg.spec.name,
            state_path(spec, &cfg.spec.name).display(),
            cfg.path.display()
        )));
    }
    if let Ok(t) = std::fs::read_to_string(lock_path(spec)) {
        st.pinned = serde_json::from_str(&t).unwrap_or_default();
    }
    let mut lines = vec![];
    match carry_out(cfg, spec, &plan, &mut st, &mut lines).await {
        Ok(()) => {
            lines.push(format!(
                "environment {} is up: {}",
                cfg.spec.name,
                plan.clusters.iter().map(|(s, c)| format!("site {s} = context {}", kind::context_of(c))).collect::<Vec<_>>().join(", ")
            ));
            Ok(lines)
        }
        Err(e) => {
            for l in undo(&st).await {
                eprintln!("cleanup: {l}");
            }
            let _ = std::fs::remove_file(state_path(spec, &cfg.spec.name));
            Err(EnvError::BringUp { env: cfg.spec.name.clone(), source: Box::new(e) })
        }
    }
}

async fn carry_out(cfg: &EnvConfig, spec: &KindSpec, plan: &Plan, st: &mut State, lines: &mut Vec<String>) -> Result<(), EnvError> {
    let name = &cfg.spec.name;
    let mut clients: BTreeMap<String, kube::Client> = BTreeMap::new();
    build_probe_image(PROBE_IMAGE).await?;
    st.made.push(Made::Image { tag: PROBE_IMAGE.into() });
    save_state(spec, name, st)?;
    for (i, step) in plan.steps.iter().enumerate() {
        lines.push(format!("{:>3}. [{}] {}", i + 1, step.place(), summary(step)));
        match step {
            Step::Run { argv, .. } => {
                let made = match argv[0].as_str() {
                    "losetup" => Some(Made::Loop { device: argv[1].clone().into() }),
                    "truncate" => Some(Made::File { path: argv[3].clone().into() }),
                    "kind" if argv[1] == "create" => Some(Made::Cluster { name: argv[4].clone() }),
                    _ => None,
                };
                // recorded before it runs: a half-made cluster is still removed
                if let Some(m) = made {
                    st.made.push(m);
                    save_state(spec, name, st)?;
                }
                run(argv, kind::budget(plan)).await?;
            }
            Step::Write { path, content, .. } => {
                std::fs::write(path, content).map_err(|source| EnvError::Io { what: format!("write {}", path.display()), source })?;
                st.made.push(Made::File { path: path.clone() });
                save_state(spec, name, st)?;
            }
            Step::ApplyUrl { cluster, pin } => {
                let text = run(&["curl".into(), "-fsSL".into(), "--max-time".into(), "120".into(), pin.artifact.into()], Duration::from_secs(130)).await?;
                let digest = format!("sha256:{:x}", sha2::Sha256::digest(text.as_bytes()));
                let want = pin.digest.map(str::to_string).or_else(|| st.pinned.get(pin.artifact).cloned());
                if let Some(w) = want {
                    if w != digest {
                        return Err(EnvError::Usage(format!(
                            "{} {}: fetched {} has digest {digest}, pinned {w}; refusing to apply it",
                            pin.component, pin.version, pin.artifact
                        )));
                    }
                }
                st.pinned.insert(pin.artifact.into(), digest);
                let _ = std::fs::write(lock_path(spec), serde_json::to_string_pretty(&st.pinned).expect("lock serializes"));
                let objects = apply::parse_manifests(&text, pin.artifact)?;
                let c = client(&mut clients, cluster).await?;
                apply::apply_all(&c, &objects, false, Duration::from_secs(120)).await?;
            }
            Step::Apply { cluster, objects, .. } => {
                let c = client(&mut clients, cluster).await?;
                apply::apply_all(&c, objects, false, Duration::from_secs(120)).await?;
            }
            Step::Wait { cluster, obj, ready, deadline_s } => {
                let c = client(&mut clients, cluster).await?;
                apply::wait_ready(&c, obj, &ready.describe(), Duration::from_secs(*deadline_s), |o| ready.holds(o)).await?;
            }
            Step::ExchangePeer { from, to, pool } => {
                let f = client(&mut clients, from).await?;
                let t = client(&mut clients, to).await?;
                exchange_peer(&f, &t, from, pool).await?;
            }
        }
    }
    Ok(())
}

async fn client(clients: &mut BTreeMap<String, kube::Client>, cluster: &str) -> Result<kube::Client, EnvError> {
    if let Some(c) = clients.get(cluster) {
        return Ok(c.clone());
    }
    let c = client_for(&kind::context_of(cluster), None).await?;
    clients.insert(cluster.into(), c.clone());
    Ok(c)
}

fn summary(step: &Step) -> String {
    match step {
        Step::Run { argv, .. } => argv.join(" "),
        Step::Write { path, .. } => format!("write {}", path.display()),
        Step::ApplyUrl { pin, .. } => format!("apply {} {}", pin.component, pin.version),
        Step::Apply { why, .. } => format!("apply: {why}"),
        Step::Wait { obj, ready, .. } => format!("wait for {} {} ({})", obj.kind, obj.key(), ready.describe()),
        Step::ExchangePeer { from, pool, .. } => format!("import {from}'s peer token for pool {pool}"),
    }
}

/// Removes what the state says was made, newest first; says what. Missing things are already removed.
async fn undo(st: &State) -> Vec<String> {
    let mut out = vec![];
    for m in st.made.iter().rev() {
        let (argv, what): (Vec<String>, String) = match m {
            Made::Cluster { name } => (vec!["kind".into(), "delete".into(), "cluster".into(), "--name".into(), name.clone()], format!("kind cluster {name}")),
            Made::Loop { device } => (vec!["losetup".into(), "-d".into(), device.display().to_string()], format!("loop device {}", device.display())),
            Made::Image { tag } => (vec!["docker".into(), "rmi".into(), tag.clone()], format!("image {tag}")),
            Made::File { path } => {
                match std::fs::remove_file(path) {
                    Ok(()) => out.push(format!("removed {}", path.display())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => out.push(format!("failed to remove {}: {e}", path.display())),
                }
                continue;
            }
        };
        match run(&argv, Duration::from_secs(300)).await {
            Ok(_) => out.push(format!("removed {what}")),
            Err(e) => out.push(format!("{what}: {e} (already gone?)")),
        }
    }
    out
}

/// `env down` on kind: exactly what `env up` recorded.
pub async fn down(cfg: &EnvConfig, spec: &KindSpec) -> Result<Vec<String>, EnvError> {
    let st = load_state(spec, &cfg.spec.name);
    if st.made.is_empty() {
        return Ok(vec![format!("environment {} is not up (no state in {})", cfg.spec.name, state_path(spec, &cfg.spec.name).display())]);
    }
    let out = undo(&st).await;
    let _ = std::fs::remove_file(state_path(spec, &cfg.spec.name));
    Ok(out)
}

/// `env status` on kind: what was made, and each cluster's API server answering or not.
pub async fn status(cfg: &EnvConfig, spec: &KindSpec) -> Result<Vec<String>, EnvError> {
    let st = load_state(spec, &cfg.spec.name);
    if st.made.is_empty() {
        return Ok(vec![format!("environment {} is down", cfg.spec.name), format!("replication: {}", cfg.replication_summary())]);
    }
    let mut out = vec![format!("environment {} is up ({} things made, state in {})", cfg.spec.name, st.made.len(), state_path(spec, &cfg.spec.name).display())];
    for (site, cluster) in kind::cluster_names(cfg) {
        let ctx = kind::context_of(&cluster);
        let line = match client_for(&ctx, None).await {
            Ok(c) => match c.apiserver_version().await {
                Ok(v) => format!("site {site}: {ctx} answers (Kubernetes {}.{})", v.major, v.minor),
                Err(e) => format!("site {site}: {ctx} does not answer: {e}"),
            },
            Err(e) => format!("site {site}: {e}"),
        };
        out.push(line);
    }
    out.push(format!("replication: {}", cfg.replication_summary()));
    Ok(out)
}
