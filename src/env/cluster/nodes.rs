//! Faults on kind clusters: every node of a site is a Docker container labelled
//! `io.x-k8s.kind.cluster=<cluster>`. Power loss kills them all (SIGKILL), a freeze pauses them (the cgroup
//! freezer), isolation disconnects them from the clusters' Docker network. Each fault is checked from the
//! engine (`docker inspect`) before its receipt is given; recovery is idempotent (a node already running,
//! unpaused or connected is already recovered). Thin I/O over the docker CLI; what the engine reports is
//! read by pure functions.

use crate::clock::Wt;
use crate::error::{Cause, EnvError};
use crate::events::{Bus, Event};
use crate::fault::{Fault, Proof, Receipt};
use crate::ports::Faults;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;

pub const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";

/// A node container as the engine reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeState {
    pub name: String,
    pub running: bool,
    pub paused: bool,
    pub networks: Vec<String>,
    /// (network, IPv4 address) of each network it is on.
    pub addresses: Vec<(String, String)>,
}

/// Reads `docker inspect` output (a JSON array of containers). Pure.
pub fn parse_inspect(json: &str) -> Result<Vec<NodeState>, String> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("unreadable docker inspect output: {e}"))?;
    let arr = v.as_array().ok_or("docker inspect did not print an array")?;
    Ok(arr
        .iter()
        .map(|c| NodeState {
            name: c["Name"].as_str().unwrap_or_default().trim_start_matches('/').to_string(),
            running: c["State"]["Running"].as_bool().unwrap_or(false),
            paused: c["State"]["Paused"].as_bool().unwrap_or(false),
            networks: c["NetworkSettings"]["Networks"].as_object().map(|n| n.keys().cloned().collect()).unwrap_or_default(),
            addresses: c["NetworkSettings"]["Networks"]
                .as_object()
                .map(|n| n.iter().filter_map(|(k, v)| v["IPAddress"].as_str().filter(|a| !a.is_empty()).map(|a| (k.clone(), a.to_string()))).collect())
                .unwrap_or_default(),
        })
        .collect())
}

/// A node as the engine reported it, for a fault's proof. Pure.
pub fn describe(n: &NodeState) -> String {
    format!(
        "node {} (docker inspect): {}, {}, networks {}",
        n.name,
        if n.running { "running" } else { "not running" },
        if n.paused { "paused" } else { "not paused" },
        if n.networks.is_empty() { "none".to_string() } else { n.networks.join(", ") }
    )
}

/// Has `fault` landed on every node (`network`: the clusters' network)? Pure.
pub fn landed(fault: &Fault, nodes: &[NodeState], network: &str) -> bool {
    !nodes.is_empty()
        && nodes.iter().all(|n| match fault {
            Fault::PowerLoss { .. } => !n.running,
            Fault::Freeze { .. } => n.paused,
            Fault::Isolate { .. } => !n.networks.iter().any(|x| x == network),
            _ => false,
        })
}

/// Is every node back from `fault`? Pure.
pub fn recovered(fault: &Fault, nodes: &[NodeState], network: &str) -> bool {
    nodes.iter().all(|n| match fault {
        Fault::PowerLoss { .. } => n.running,
        Fault::Freeze { .. } => !n.paused,
        Fault::Isolate { .. } => n.networks.iter().any(|x| x == network),
        _ => true,
    })
}

/// The node containers of each site's kind cluster as the fault surface.
pub struct DockerNodes {
    /// site -> kind cluster name.
    clusters: BTreeMap<String, String>,
    /// The Docker network the clusters' nodes share (kind's is `kind`).
    network: String,
    env: String,
    disposable: bool,
    bus: Bus,
    deadline: Duration,
}

impl DockerNodes {
    pub fn new(env: &str, disposable: bool, clusters: BTreeMap<String, String>, network: &str, bus: Bus) -> DockerNodes {
        DockerNodes { clusters, network: network.into(), env: env.into(), disposable, bus, deadline: Duration::from_secs(30) }
    }

    fn cluster(&self, site: &str) -> Result<&str, EnvError> {
        self.clusters.get(site).map(String::as_str).ok_or_else(|| {
            EnvError::Usage(format!(
                "unknown site {site:?}: environment {} has sites {}",
                self.env,
                self.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    async fn docker(&self, site: &str, args: &[&str]) -> Result<crate::procs::Output, EnvError> {
        let mut c = tokio::process::Command::new("docker");
        c.args(args);
        let what = format!("docker {}", args.first().copied().unwrap_or(""));
        // a docker CLI that cannot start, or an engine that does not answer in time, is the harness's
        let out = crate::procs::run(c, self.deadline, &what).await.map_err(|e| EnvError::Site {
            site: site.into(),
            what: what.clone(),
            detail: e,
            cause: Cause::Harness,
        })?;
        if !out.ok {
            return Err(EnvError::Site {
                site: site.into(),
                what: format!("run `docker {}`", args.join(" ")),
                detail: out.stderr.trim().to_string(),
                cause: Cause::Harness,
            });
        }
        Ok(out)
    }

    /// The site's node containers (all of them, running or not), as the engine reports them.
    pub async fn nodes(&self, site: &str) -> Result<Vec<NodeState>, EnvError> {
        let filter = format!("label={CLUSTER_LABEL}={}", self.cluster(site)?);
        let ids = self.docker(site, &["ps", "-aq", "--filter", &filter]).await?.stdout;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            return Err(EnvError::Site {
                site: site.into(),
                what: format!("find the nodes of kind cluster {}", self.cluster(site)?),
                detail: format!("no container labelled {filter}"),
                cause: Cause::Harness,
            });
        }
        let mut args = vec!["inspect"];
        args.extend(ids);
        let out = self.docker(site, &args).await?;
        parse_inspect(&out.stdout).map_err(|e| EnvError::Site { site: site.into(), what: "read the nodes' state".into(), detail: e, cause: Cause::Harness })
    }

    /// Runs a command inside a node container (its outcome is the caller's to judge).
    async fn exec(&self, site: &str, node: &str, cmd: &[&str]) -> Result<crate::procs::Output, EnvError> {
        let mut c = tokio::process::Command::new("docker");
        c.arg("exec").arg(node).args(cmd);
        crate::procs::run(c, self.deadline, &format!("docker exec {node} {}", cmd.join(" "))).await.map_err(|e| EnvError::Site {
            site: site.into(),
            what: format!("run `{}` on node {node}", cmd.join(" ")),
            detail: e,
            cause: Cause::Harness,
        })
    }

    /// A link fault with `tc netem` inside the sending site's node containers, scoped to the peer site's
    /// node addresses (traffic inside a cluster is not shaped); confirmed from `tc qdisc show`. A kernel
    /// without netem refuses it: the fault is reported as not injected, never faked.
    async fn shape(&mut self, fault: &Fault, from: &str, to: &str, netem: &[String]) -> Result<Receipt, EnvError> {
        let t0 = Wt::now();
        let mut seen = vec![];
        let peers: Vec<String> =
            self.nodes(to).await?.into_iter().flat_map(|n| n.addresses.into_iter().filter(|(net, _)| *net == self.network).map(|(_, a)| a)).collect();
        if peers.is_empty() {
            return Err(EnvError::Site {
                site: to.into(),
                what: format!("find the addresses of site {to}'s nodes on network {}", self.network),
                detail: "none".into(),
                cause: Cause::Harness,
            });
        }
        for n in self.nodes(from).await? {
            for cmd in shape_commands("eth0", &peers, netem) {
                let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
                let out = self.exec(from, &n.name, &args).await?;
                if !out.ok {
                    // docker exec reports a command it cannot start on stdout
                    let said = format!("{} {}", out.stderr.trim(), out.stdout.trim()).trim().to_string();
                    let hint = if said.contains("unknown") || said.contains("not found") || said.contains("No such file") {
                        " (this kernel or node image has no tc netem: the fault cannot be injected here)"
                    } else {
                        ""
                    };
                    // what was set up on this node so far is undone
                    let _ = self.exec(from, &n.name, &["tc", "qdisc", "del", "dev", "eth0", "root"]).await;
                    return Err(EnvError::Site {
                        site: from.into(),
                        what: format!("{fault} on node {}", n.name),
                        detail: format!("{said}{hint}"),
                        cause: Cause::Harness,
                    });
                }
            }
            let shown = self.exec(from, &n.name, &["tc", "qdisc", "show", "dev", "eth0"]).await?;
            let Some(netem_line) = shown.stdout.lines().find(|l| l.contains("netem")) else {
                return Err(EnvError::FaultUnproven {
                    fault: fault.to_string(),
                    phase: "in effect".into(),
                    why: format!("tc on node {} shows no netem: {}", n.name, shown.stdout.trim()),
                });
            };
            seen.push(format!("node {} (tc qdisc show dev eth0): {}", n.name, netem_line.trim()));
        }
        // in effect once every node shows it
        let at = Wt::now();
        let proof = Proof::seen_since(seen, t0);
        self.bus.publish_at(at, Event::Fault { fault: fault.clone(), proof: proof.seen.clone() });
        Ok(Receipt { fault: fault.clone(), at, proof })
    }

    /// Waits until `done` holds on the site's nodes as the engine reports them; what the engine reported
    /// (a line per node) is the proof.
    async fn confirm(&self, site: &str, what: &str, done: impl Fn(&[NodeState]) -> bool) -> Result<Proof, EnvError> {
        let t0 = Wt::now();
        let check = || async {
            let nodes = self.nodes(site).await?;
            Ok::<_, EnvError>(done(&nodes).then(|| nodes.iter().map(describe).collect::<Vec<String>>()))
        };
        let seen = crate::wait::until(format!("{what} on every node of site {site}"), self.deadline, check, crate::wait::every(Duration::from_millis(200)))
            .await
            .map_err(|e| match e {
                crate::wait::WaitError::Timeout { after, .. } => EnvError::FaultUnproven {
                    fault: what.to_string(),
                    phase: "on every node".into(),
                    why: format!("docker inspect did not show it within {after:?}"),
                },
                e => crate::error::from_wait(site, Cause::Harness, e),
            })?;
        Ok(Proof::seen_since(seen, t0))
    }
}

/// netem's arguments for a link fault (None: not a link fault). Pure.
pub fn netem_args(f: &Fault) -> Option<Vec<String>> {
    let ms = |d: &crate::units::Dur| format!("{}us", d.0.as_micros());
    match f {
        Fault::Latency { delay, jitter, .. } if jitter.0.is_zero() => Some(vec!["delay".into(), ms(delay)]),
        Fault::Latency { delay, jitter, .. } => Some(vec!["delay".into(), ms(delay), ms(jitter), "distribution".into(), "normal".into()]),
        Fault::Loss { permille, .. } => Some(vec!["loss".into(), format!("{}.{}%", permille / 10, permille % 10)]),
        Fault::RateLimit { bps, .. } => Some(vec!["rate".into(), format!("{bps}bit")]),
        _ => None,
    }
}

/// The `tc` commands that shape what a node sends to `peers` (and nothing else): a prio qdisc whose fourth
/// band, reached only through filters on the peers' addresses, holds netem. Pure.
pub fn shape_commands(dev: &str, peers: &[String], netem: &[String]) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let mut cmds = vec![s(&["tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "prio", "bands", "4"])];
    let mut q = s(&["tc", "qdisc", "replace", "dev", dev, "parent", "1:4", "handle", "40:", "netem"]);
    q.extend(netem.iter().cloned());
    cmds.push(q);
    for p in peers {
        cmds.push(s(&[
            "tc",
            "filter",
            "replace",
            "dev",
            dev,
            "parent",
            "1:",
            "protocol",
            "ip",
            "prio",
            "1",
            "u32",
            "match",
            "ip",
            "dst",
            &format!("{p}/32"),
            "flowid",
            "1:4",
        ]));
    }
    cmds
}

/// Is a `tc qdisc del` error one that means "nothing to delete" (already recovered)? Pure.
pub fn already_unshaped(stderr: &str) -> bool {
    stderr.contains("Cannot delete qdisc with handle of zero") || stderr.contains("No such file or directory") || stderr.contains("Cannot find specified qdisc")
}

fn link_of(f: &Fault) -> Option<(&str, &str)> {
    match f {
        Fault::Latency { from, to, .. } | Fault::Loss { from, to, .. } | Fault::RateLimit { from, to, .. } => Some((from, to)),
        _ => None,
    }
}

fn site_of(f: &Fault) -> Option<&str> {
    match f {
        Fault::PowerLoss { site } | Fault::Freeze { site } | Fault::Isolate { site } => Some(site),
        _ => None,
    }
}

#[async_trait]
impl Faults for DockerNodes {
    async fn inject(&mut self, fault: Fault) -> Result<Receipt, EnvError> {
        if !self.disposable {
            return Err(EnvError::NotDisposable { what: fault.to_string(), env: self.env.clone() });
        }
        if let (Some((from, to)), Some(args)) = (link_of(&fault), netem_args(&fault)) {
            return self.shape(&fault, from, to, &args).await;
        }
        let site = site_of(&fault)
            .ok_or_else(|| {
                EnvError::Usage(format!(
                    "\"{fault}\" is not available on kind nodes (power loss, freeze, isolation, and latency, loss and rate through netem are)"
                ))
            })?
            .to_string();
        let names: Vec<String> = self.nodes(&site).await?.into_iter().map(|n| n.name).collect();
        for n in &names {
            match &fault {
                Fault::PowerLoss { .. } => self.docker(&site, &["kill", "--signal", "KILL", n]).await?,
                Fault::Freeze { .. } => self.docker(&site, &["pause", n]).await?,
                _ => self.docker(&site, &["network", "disconnect", &self.network, n]).await?,
            };
        }
        let network = self.network.clone();
        let proof = match self.confirm(&site, &fault.to_string(), |n| landed(&fault, n, &network)).await {
            Ok(p) => p,
            Err(e) => {
                // no receipt will be handed back: whatever part of it did land is undone here
                let _ = self.recover(&Receipt { fault: fault.clone(), at: Wt::now(), proof: Proof::default() }).await;
                return Err(e);
            }
        };
        // the fault counts from when the engine confirms it on every node of the site
        let at = Wt::now();
        self.bus.publish_at(at, Event::Fault { fault: fault.clone(), proof: proof.seen.clone() });
        Ok(Receipt { fault, at, proof })
    }

    async fn recover(&mut self, r: &Receipt) -> Result<Proof, EnvError> {
        if let Some((from, _)) = link_of(&r.fault) {
            let from = from.to_string();
            let t0 = Wt::now();
            let mut seen = vec![];
            for n in self.nodes(&from).await? {
                let out = self.exec(&from, &n.name, &["tc", "qdisc", "del", "dev", "eth0", "root"]).await?;
                let said = format!("{} {}", out.stderr.trim(), out.stdout.trim());
                if !out.ok && !already_unshaped(&said) {
                    return Err(EnvError::Site {
                        site: from.clone(),
                        what: format!("undo \"{}\" on node {}", r.fault, n.name),
                        detail: said.trim().to_string(),
                        cause: Cause::Harness,
                    });
                }
                let shown = self.exec(&from, &n.name, &["tc", "qdisc", "show", "dev", "eth0"]).await?;
                if shown.stdout.contains("netem") {
                    return Err(EnvError::FaultUnproven {
                        fault: r.fault.to_string(),
                        phase: "gone".into(),
                        why: format!("tc on node {} still shows netem", n.name),
                    });
                }
                seen.push(format!("node {} (tc qdisc show dev eth0): no netem", n.name));
            }
            let proof = Proof::seen_since(seen, t0);
            self.bus.publish(Event::Recovered { fault: r.fault.clone(), proof: proof.seen.clone() });
            return Ok(proof);
        }
        let Some(site) = site_of(&r.fault) else { return Ok(Proof::default()) };
        let network = self.network.clone();
        for n in self.nodes(site).await? {
            // only what is still faulted is undone: recovering twice does nothing
            match &r.fault {
                Fault::PowerLoss { .. } if !n.running => self.docker(site, &["start", &n.name]).await?,
                Fault::Freeze { .. } if n.paused => self.docker(site, &["unpause", &n.name]).await?,
                Fault::Isolate { .. } if !n.networks.contains(&network) => self.docker(site, &["network", "connect", &network, &n.name]).await?,
                _ => continue,
            };
        }
        let proof = self.confirm(site, &format!("recovery from \"{}\"", r.fault), |n| recovered(&r.fault, n, &network)).await?;
        self.bus.publish(Event::Recovered { fault: r.fault.clone(), proof: proof.seen.clone() });
        Ok(proof)
    }
}

#[async_trait]
impl crate::ports::Infrastructure for DockerNodes {
    fn describe(&self) -> String {
        format!("kind clusters: {}", self.clusters.iter().map(|(s, c)| format!("site {s} = {c}")).collect::<Vec<_>>().join(", "))
    }
    fn kept_at(&self) -> String {
        "the kind clusters stay up until `dr-drill env down`".into()
    }
    fn rss_bytes(&self) -> u64 {
        0
    }
    async fn round_trips(&mut self, _from: &str, _to: &str, _samples: u32) -> Result<Vec<Duration>, EnvError> {
        Err(EnvError::Usage("round trips between kind clusters are not measured (their nodes share this machine's bridge)".into()))
    }
    /// The clusters belong to `env up`/`env down`, not to a run.
    async fn down(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSPECT: &str = r#"[
      {"Name": "/east-control-plane", "State": {"Running": true, "Paused": true}, "NetworkSettings": {"Networks": {"kind": {}}}},
      {"Name": "/east-worker", "State": {"Running": false, "Paused": false}, "NetworkSettings": {"Networks": {}}}
    ]"#;

    #[test]
    fn the_engine_says_what_landed() {
        let n = parse_inspect(INSPECT).unwrap();
        assert_eq!(n[0], NodeState { name: "east-control-plane".into(), running: true, paused: true, networks: vec!["kind".into()], addresses: vec![] });
        let site = || "a".to_string();
        // one node paused, the other not: a freeze has not landed on the site
        assert!(!landed(&Fault::Freeze { site: site() }, &n, "kind"));
        assert!(landed(&Fault::Freeze { site: site() }, &n[..1], "kind"));
        assert!(landed(&Fault::PowerLoss { site: site() }, &n[1..], "kind"));
        assert!(landed(&Fault::Isolate { site: site() }, &n[1..], "kind"));
        assert!(!landed(&Fault::Isolate { site: site() }, &n, "kind"));
        assert!(!landed(&Fault::Freeze { site: site() }, &[], "kind"), "no node: nothing landed");
        assert!(recovered(&Fault::Isolate { site: site() }, &n[..1], "kind"));
        assert!(!recovered(&Fault::PowerLoss { site: site() }, &n, "kind"));
        assert!(parse_inspect("{}").is_err());
    }

    #[test]
    fn link_faults_shape_only_what_goes_to_the_peer() {
        use crate::units::Dur;
        let d = |ms: u64| Dur(Duration::from_millis(ms));
        let f = Fault::Latency { from: "a".into(), to: "b".into(), delay: d(5), jitter: d(1) };
        let args = netem_args(&f).unwrap();
        assert_eq!(args, ["delay", "5000us", "1000us", "distribution", "normal"]);
        assert_eq!(netem_args(&Fault::Loss { from: "a".into(), to: "b".into(), permille: 15 }).unwrap(), ["loss", "1.5%"]);
        assert_eq!(netem_args(&Fault::RateLimit { from: "a".into(), to: "b".into(), bps: 10_000_000 }).unwrap(), ["rate", "10000000bit"]);
        assert!(netem_args(&Fault::PowerLoss { site: "a".into() }).is_none());
        let cmds = shape_commands("eth0", &["172.18.0.3".into(), "172.18.0.4".into()], &args);
        assert_eq!(cmds[0].join(" "), "tc qdisc replace dev eth0 root handle 1: prio bands 4");
        assert_eq!(cmds[1].join(" "), "tc qdisc replace dev eth0 parent 1:4 handle 40: netem delay 5000us 1000us distribution normal");
        assert_eq!(cmds[2].join(" "), "tc filter replace dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 172.18.0.3/32 flowid 1:4");
        assert_eq!(cmds.len(), 4);
        assert!(already_unshaped("Error: Cannot delete qdisc with handle of zero."));
        assert!(!already_unshaped("Error: Operation not permitted"));
        let n =
            parse_inspect(r#"[{"Name": "/x", "State": {"Running": true}, "NetworkSettings": {"Networks": {"kind": {"IPAddress": "172.18.0.3"}}}}]"#).unwrap();
        assert_eq!(n[0].addresses, [("kind".to_string(), "172.18.0.3".to_string())]);
    }
}
