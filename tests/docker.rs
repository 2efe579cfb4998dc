//! The kind fault injector against real containers: node containers from an image built here (FROM
//! scratch, a static busybox), labelled like kind's nodes, on their own network. Power loss, freeze and
//! isolation of one site land on every node of that site only (checked from the engine), recovery is
//! idempotent, a non-disposable environment refuses, and nothing is left behind.

use dr_drill::env::cluster::nodes::{DockerNodes, CLUSTER_LABEL};
use dr_drill::events::Bus;
use dr_drill::fault::Fault;
use dr_drill::ports::Faults;
use std::collections::BTreeMap;
use std::process::Command;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker CLI");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn state(name: &str) -> (String, bool) {
    let s = docker(&["inspect", "-f", "{{.State.Status}}|{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", name]);
    let (status, nets) = s.split_once('|').unwrap();
    (status.to_string(), nets.contains("drd-test-"))
}

/// The node containers are made with testcontainers (the image built here FROM scratch, a static busybox;
/// the network created for them): dropped, or the test run interrupted (its watchdog catches SIGINT,
/// SIGTERM and SIGQUIT), they are removed; the image goes with the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_node_faults_land_on_one_site_and_recover() {
    use testcontainers::runners::{AsyncBuilder, AsyncRunner};
    use testcontainers::{GenericBuildableImage, ImageExt};
    let tag = std::process::id().to_string();
    struct Image(String);
    impl Drop for Image {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
        }
    }
    let _image_gone = Image(format!("drd-node-test:{tag}"));
    assert!(std::path::Path::new("/bin/busybox").is_file(), "busybox-static (scripts/setup.sh installs it)");
    let image = GenericBuildableImage::new("drd-node-test", &tag)
        .with_dockerfile_string("FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\", \"sleep\", \"3600\"]\n")
        .with_file("/bin/busybox", "./busybox")
        .build_image()
        .await
        .expect("build the node image");
    let net = format!("drd-test-{tag}");
    let mut made = vec![];
    let mut node = async |cluster: &str, role: &str| {
        let name = format!("drd-{tag}-{cluster}-{role}");
        let c = image
            .clone()
            .with_container_name(&name)
            .with_network(&net)
            .with_label(CLUSTER_LABEL, format!("drd-{tag}-{cluster}"))
            .with_label("io.x-k8s.kind.role", role)
            .with_label("drd-test", &tag)
            .start()
            .await
            .expect("start a node container");
        made.push(c);
        name
    };
    let east = [node("east", "control-plane").await, node("east", "worker").await];
    let west = node("west", "control-plane").await;
    let clusters = BTreeMap::from([("a".to_string(), format!("drd-{tag}-east")), ("b".to_string(), format!("drd-{tag}-west"))]);

    let mut refused = DockerNodes::new("kind-test", false, clusters.clone(), &net, Bus::new());
    assert!(refused.inject(Fault::Freeze { site: "a".into() }).await.unwrap_err().to_string().contains("not marked disposable"));
    assert_eq!(state(&east[0]).0, "running", "a refused fault touches nothing");

    let mut f = DockerNodes::new("kind-test", true, clusters, &net, Bus::new());
    let frozen = f.inject(Fault::Freeze { site: "a".into() }).await.unwrap();
    assert!(east.iter().all(|n| state(n).0 == "paused"));
    assert_eq!(state(&west).0, "running", "only site a's nodes");
    // shown in effect from the engine, each node of the site named, and shown gone
    assert!(frozen.proof.seen.len() == 2 && frozen.proof.seen.iter().all(|l| l.contains(", paused")), "{:?}", frozen.proof);
    let gone = f.recover(&frozen).await.unwrap();
    assert!(gone.seen.iter().all(|l| l.contains("not paused")), "{gone:?}");
    f.recover(&frozen).await.unwrap();
    assert!(east.iter().all(|n| state(n).0 == "running"));

    let cut = f.inject(Fault::Isolate { site: "a".into() }).await.unwrap();
    assert!(east.iter().all(|n| !state(n).1), "disconnected from the clusters' network");
    assert!(state(&west).1);
    f.recover(&cut).await.unwrap();
    f.recover(&cut).await.unwrap();
    assert!(east.iter().all(|n| state(n).1));

    let dead = f.inject(Fault::PowerLoss { site: "a".into() }).await.unwrap();
    assert!(east.iter().all(|n| state(n).0 == "exited"));
    assert_eq!(state(&west).0, "running");
    f.recover(&dead).await.unwrap();
    f.recover(&dead).await.unwrap();
    assert!(east.iter().all(|n| state(n).0 == "running"));

    // latency goes through tc netem inside the nodes: these nodes (and this kernel) have none, so the fault
    // is refused with the reason, not faked
    let e = f
        .inject(Fault::Latency { from: "a".into(), to: "b".into(), delay: "10ms".parse().unwrap(), jitter: "0s".parse().unwrap() })
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("tc") && e.contains("netem"), "{e}");
    assert!(east.iter().all(|n| state(n).0 == "running"));
    assert!(f.inject(Fault::Freeze { site: "c".into() }).await.unwrap_err().to_string().contains("unknown site"));

    drop(made);
    // testcontainers removes what it made as it is dropped (the network once its last container is gone)
    let t0 = std::time::Instant::now();
    while !docker(&["ps", "-aq", "--filter", &format!("label=drd-test={tag}")]).is_empty()
        || docker(&["network", "ls", "--format", "{{.Name}}"]).lines().any(|n| n == net)
    {
        assert!(t0.elapsed() < std::time::Duration::from_secs(30), "containers or network left behind");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The probe's kernel-boot image for KubeVirt (kind loads it into its nodes; existing clusters pull it from
/// the registry their environment file names): `dr-drill env image` builds it here FROM scratch from the
/// lab's guest kernel and the probe's initramfs, under the environment's `probeImage` tag, holding exactly
/// /boot/vmlinuz and /boot/initramfs.img; removed afterwards. The lab has no use for it: exit 2.
#[test]
fn the_probe_kernel_image_builds_from_scratch() {
    let tag = format!("localhost/dr-drill-test/probe-kernel:{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("existing.yaml");
    let text = std::fs::read_to_string("environments/existing-example.yaml").unwrap().replace("registry.example.com/dr-drill/probe-kernel:v1", &tag);
    std::fs::write(&env, text).unwrap();
    let out = assert_cmd::Command::cargo_bin("dr-drill").unwrap().args(["env", "image", "--env"]).arg(&env).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("built {tag}")));
    let lab = assert_cmd::Command::cargo_bin("dr-drill").unwrap().args(["env", "image", "--env", "environments/lab-regional.yaml"]).output().unwrap();
    assert_eq!(lab.status.code(), Some(2));
    let docker = |args: &[&str]| {
        let o = std::process::Command::new("docker").args(args).output().unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stdout).trim().to_string(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (ok, id, err) = docker(&["create", &tag, "/none"]);
    assert!(ok, "{err}");
    let export = std::process::Command::new("sh").args(["-c", &format!("docker export {id} | tar -t")]).output().unwrap();
    let mut files: Vec<String> =
        String::from_utf8_lossy(&export.stdout).lines().filter(|l| l.starts_with("boot/") && !l.ends_with('/')).map(String::from).collect();
    files.sort();
    let (size_ok, size, _) = docker(&["image", "inspect", "--format", "{{.Size}}", &tag]);
    assert!(docker(&["rm", &id]).0);
    assert!(docker(&["rmi", &tag]).0);
    assert_eq!(files, ["boot/initramfs.img", "boot/vmlinuz"]);
    let size: u64 = size.parse().unwrap_or(0);
    assert!(size_ok && size > 1 << 20, "image size {size}");
    println!("probe kernel image: {:.1} MiB", size as f64 / 1048576.0);
    assert!(!docker(&["image", "inspect", &tag]).0, "image left behind");
}
