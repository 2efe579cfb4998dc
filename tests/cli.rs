//! Bad input: each case gets a one-line error naming the problem (file, line, field), exit code 2, and
//! nothing is started or destroyed. These need no lab.

use assert_cmd::Command;
use std::path::Path;

const GOOD: &str = "name: t\nbackend:\n  lab: {}\ndisposable: true\nsites:\n  - name: a\n  - name: b\nreplication:\n  regional:\n    interval: 5s\n    scheduler: harness\n";

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
