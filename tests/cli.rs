//! Bad input: each case gets a one-line error naming the problem (file, line, field), exit code 2, and
//! nothing is started or destroyed. These need no lab.

use assert_cmd::Command;
use std::path::Path;

const GOOD: &str =
    "name: t\nbackend:\n  lab: {}\ndisposable: true\nsites:\n  - name: a\n  - name: b\nreplication:\n  regional:\n    interval: 5s\n    scheduler: harness\n";

fn drill() -> Command {
    Command::cargo_bin("dr-drill").unwrap()
}

fn netns() -> Vec<String> {
    let out = std::process::Command::new("ip").args(["netns", "list"]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    out.lines().filter_map(|l| l.split_whitespace().next()).filter(|n| n.starts_with("drd-")).map(String::from).collect()
}

/// Runs `dr-drill run` with an environment file holding `env` and returns (exit code, stderr).
fn run_with_env(env: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("env.yaml");
    std::fs::write(&p, env).unwrap();
    let before = netns();
    let out = drill().args(["run", "--env"]).arg(&p).arg("--report-dir").arg(dir.path().join("r")).args(extra).output().unwrap();
    assert_eq!(netns(), before, "bad input must not create namespaces");
    let err = String::from_utf8_lossy(&out.stderr).replace(&format!("{}", dir.path().display()), "TMP");
    (out.status.code().unwrap_or(-1), err)
}

fn error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "one error line expected in {stderr:?}");
    lines[0]
}

#[test]
fn malformed_yaml() {
    let (code, err) = run_with_env("name: [unclosed\nbackend: lab\n", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(error_line(&err).starts_with("error: TMP/env.yaml:"), "{err}");
}

#[test]
fn unknown_key() {
    let (code, err) = run_with_env(&format!("{GOOD}flavour: vanilla\n"), &[]);
    assert_eq!(code, 2, "{err}");
    let l = error_line(&err);
    assert!(l.contains("env.yaml:12:") && l.contains("flavour"), "{l}");
}

#[test]
fn bad_duration() {
    let (code, err) = run_with_env(&GOOD.replace("interval: 5s", "interval: fortnight"), &[]);
    assert_eq!(code, 2, "{err}");
    let l = error_line(&err);
    assert!(l.contains("env.yaml:10:") && l.contains("fortnight"), "{l}");
}

#[test]
fn interval_below_ceph_minimum() {
    let (code, err) = run_with_env(&GOOD.replace("harness", "ceph"), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(error_line(&err).contains("interval"), "{err}");
}

#[test]
fn missing_environment_file() {
    let out = drill().args(["run", "--env", "no/such/env.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/env.yaml"));
}

#[test]
fn unknown_step_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pig.feature");
    std::fs::write(&f, "Feature: pigs\n  Scenario: flying\n    Given a Regional-DR lab with sites a and b\n    When a pig flies over site a\n").unwrap();
    let out = drill().args(["run", "--report-dir"]).arg(dir.path().join("r")).arg(&f).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(error_line(&err).contains("pig.feature:4: unknown step: When a pig flies over site a"), "{err}");
}

#[test]
fn missing_tool_is_named() {
    // A PATH with `ip` but no Ceph: the run must stop before touching anything.
    let dir = tempfile::tempdir().unwrap();
    let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].into_iter().find(|p| Path::new(p).exists()).expect("iproute2");
    std::os::unix::fs::symlink(ip, dir.path().join("ip")).unwrap();
    let before = netns();
    let out = drill().env("PATH", dir.path()).args(["run", "--report-dir"]).arg(dir.path().join("r")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(error_line(&err).contains("missing tool: ceph"), "{err}");
    assert_eq!(netns(), before);
}

#[test]
fn destructive_steps_refused_when_not_disposable() {
    let (code, err) = run_with_env(&GOOD.replace("disposable: true", "disposable: false"), &["features/failover.feature"]);
    assert_eq!(code, 2, "{err}");
    let l = error_line(&err);
    assert!(l.contains("failover.feature:") && l.contains("loses power") && l.contains("not marked disposable"), "{l}");
}

#[test]
fn bad_tag_expression() {
    let (code, err) = run_with_env(GOOD, &["--tags", "@a and and"]);
    assert_eq!(code, 2, "{err}");
    assert!(error_line(&err).contains("tag expression"), "{err}");
}

#[test]
fn bundled_environment_parses_and_help_works() {
    drill().arg("--help").assert().success();
    for f in std::fs::read_dir("environments").unwrap() {
        let p = f.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        dr_drill::config::from_yaml(&p, &text).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn every_bundled_step_has_a_definition() {
    let files = dr_drill::runner::feature_files(&["features".into()]).unwrap();
    assert!(files.len() >= 4);
    dr_drill::runner::load_features(&files).unwrap();
}

/// An environment file of `backend` (kind or existing) with `extra` lines under it, written to `dir`.
fn cluster_env(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("env.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn kind_env(work: &Path) -> String {
    std::fs::read_to_string("environments/kind-regional.yaml").unwrap().replace("workDir: /var/lib/dr-drill/kind", &format!("workDir: {}", work.display()))
}

/// `env up --dry-run` prints the whole plan with the pinned versions and touches nothing (not even its
/// working directory).
#[test]
fn kind_dry_run_prints_the_plan_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let env = cluster_env(dir.path(), &kind_env(&work));
    let out = drill().args(["env", "up", "--dry-run", "--env"]).arg(&env).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for want in [
        "kindest/node:v1.31.0",
        "sha256:53df588e",
        "kubevirt-operator.yaml",
        "rook/v1.15.5",
        "csi-addons",
        "losetup /dev/loop20",
        "useAllDevices: false",
        "kind: VolumeReplicationClass",
        "rbd-peer-kind-regional-a",
    ] {
        assert!(text.contains(want), "{want} missing from the plan:\n{text}");
    }
    assert!(!work.exists(), "the dry run made {}", work.display());
}

/// `env up` on kind without kind on the PATH: exit 2 naming the tool, nothing made.
#[test]
fn kind_up_without_kind_names_the_tool_and_makes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let env = cluster_env(dir.path(), &kind_env(&work));
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let out = drill().env("PATH", &bin).args(["env", "up", "--env"]).arg(&env).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(error_line(&err).contains("missing tool: kind"), "{err}");
    assert!(!work.exists());
}

#[test]
fn kind_env_file_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let base = kind_env(&dir.path().join("w"));
    for (from, to, want) in [
        ("      b: /dev/loop21", "      b: /dev/sdb", "env.yaml:19: osdDevices: /dev/sdb is not a loop device"),
        ("      b: /dev/loop21\n", "", "osdDevices: must name exactly the sites (a, b), found a"),
        ("    scheduler: ceph", "    scheduler: harness", "scheduler: the kind clusters replicate on Ceph's own snapshot schedule"),
    ] {
        let env = cluster_env(dir.path(), &base.replace(from, to));
        let out = drill().args(["env", "up", "--dry-run", "--env"]).arg(&env).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(error_line(&err).contains(want), "{want} not in {err}");
    }
}

/// Existing clusters: destructive steps run only when the file says disposable AND the command line
/// confirms with the environment's name; a wrong name or a context missing from the kubeconfig is an
/// input error. All exit 2 before anything is touched.
#[test]
fn existing_clusters_refuse_destructive_steps_unless_disposable_and_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: x}\ncontexts:\n- name: east-admin\n  context: {cluster: c, user: u}\n- name: west-admin\n  context: {cluster: c, user: u}\ncurrent-context: east-admin\n").unwrap();
    // the example's sites renamed to the bundled features' a and b
    let base = std::fs::read_to_string("environments/existing-example.yaml")
        .unwrap()
        .replace("    # kubeconfig: /path/to/kubeconfig", &format!("    kubeconfig: {}", kubeconfig.display()))
        .replace("- name: east", "- name: a")
        .replace("- name: west", "- name: b")
        .replace("      east: ", "      a: ")
        .replace("      west: ", "      b: ");
    let run = |text: &str, extra: &[&str]| {
        let env = cluster_env(dir.path(), text);
        let out = drill()
            .args(["run", "--env"])
            .arg(&env)
            .arg("--report-dir")
            .arg(dir.path().join("r"))
            .args(extra)
            .arg("features/failover.feature")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&base, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(error_line(&err).contains("not marked disposable"), "{err}");
    let disposable = base.replace("disposable: false", "disposable: true");
    let (code, err) = run(&disposable, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(error_line(&err).contains("must confirm it too (--confirm existing-example)"), "{err}");
    let (code, err) = run(&disposable, &["--confirm", "other-env"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(error_line(&err).contains("--confirm other-env does not name this environment"), "{err}");
    // confirmed: the gate opens, and the next check (the hub's context is not in this kubeconfig) stops it
    let (code, err) = run(&disposable, &["--confirm", "existing-example"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(error_line(&err).contains("hub.context: context \"hub-admin\" is not in kubeconfig"), "{err}");
    assert!(!dir.path().join("r").exists(), "reports made before the checks passed");
    // every context present, no hub: the drill starts, and the first cluster that does not answer ends it
    // as the harness's failure (2), naming the site and its context
    // the hub's block taken out, a VolumeReplicationClass instead
    let mut no_hub = String::new();
    let mut in_hub = false;
    for l in disposable.lines() {
        if l == "    hub:" {
            in_hub = true;
            no_hub.push_str("    volumeReplicationClass: rbd-volumereplicationclass\n");
            continue;
        }
        if in_hub && (l.starts_with("      ") || l.trim().is_empty()) {
            continue;
        }
        in_hub = false;
        no_hub.push_str(l);
        no_hub.push('\n');
    }
    assert_ne!(no_hub, disposable);
    let (code, err) = run(&no_hub, &["--confirm", "existing-example"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("site a: context east-admin does not answer"), "{err}");
}

/// A run where every selected scenario is skipped proved nothing: exit 2 with the reasons, nothing
/// started; `--allow-skipped` accepts it (exit 0). Here: the Metro-DR features against the Regional-DR
/// default environment.
#[test]
fn a_run_that_ran_nothing_is_not_green() {
    let dir = tempfile::tempdir().unwrap();
    let before = netns();
    let out = drill().args(["run", "features/metro.feature", "--report-dir"]).arg(dir.path().join("r")).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("no scenario ran: all 11 selected were skipped") && stderr.contains("needs Metro-DR"), "{stderr}");
    assert!(stdout.lines().any(|l| l == "scenarios: 0 passed, 0 failed, 11 skipped"), "{stdout}");
    let out = drill().args(["run", "features/metro.feature", "--allow-skipped", "--report-dir"]).arg(dir.path().join("r2")).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(netns(), before, "a run of skipped scenarios starts nothing");
}
