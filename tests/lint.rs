//! `dr-drill lint`: every rule has a fixture that triggers it and one that does not; a realistic GitOps
//! tree gets findings at the right file and line; SARIF carries the schema's required fields.

use assert_cmd::Command;
use dr_drill::lint::{self, rules};
use serde_json::Value;
use std::path::PathBuf;

fn check(path: &str, opts: &rules::Options) -> Vec<lint::Finding> {
    let (objs, k) = lint::load_paths(&[PathBuf::from(path)]).unwrap();
    rules::check(&objs, k, opts)
}

fn opts() -> rules::Options {
    rules::Options { rpo: Some(std::time::Duration::from_secs(300)), ..Default::default() }
}

#[test]
fn every_rule_has_a_triggering_and_a_clean_fixture() {
    let offline: Vec<&str> = rules::RULES.iter().map(|r| r.0).filter(|id| !["DR060", "DR061"].contains(id)).collect();
    for id in offline {
        let base = format!("tests/fixtures/lint/{}", id.to_lowercase());
        let bad = check(&format!("{base}-bad.yaml"), &opts());
        assert!(!bad.is_empty() && bad.iter().all(|f| f.rule == id), "{id}: bad fixture gave {bad:#?}");
        let good = check(&format!("{base}-good.yaml"), &opts());
        assert!(good.is_empty(), "{id}: good fixture gave {good:#?}");
    }
}

#[test]
fn metro_rtt_rule() {
    let text = "apiVersion: ramendr.openshift.io/v1alpha1\nkind: DRPolicy\nmetadata:\n  name: metro\nspec:\n  drClusters: [east, west]\n";
    let objs = lint::parse_stream("p.yaml", text).unwrap();
    let mut o = rules::Options { dr: rules::DrKind::Metro, ..Default::default() };
    o.rtt = Some(std::time::Duration::from_millis(14));
    let f = rules::check(&objs, false, &o);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].rule, f[0].line), ("DR060", 5));
    o.rtt = Some(std::time::Duration::from_millis(8));
    assert!(rules::check(&objs, false, &o).is_empty());
}

/// Metro-DR on one Ceph cluster: stretch mode and 4 replicas, 2 per data zone, or an error at the line;
/// Regional-DR does not ask.
#[test]
fn metro_stretch_mode_rule() {
    let metro = rules::Options { dr: rules::DrKind::Metro, ..Default::default() };
    let bad = check("tests/fixtures/lint/dr061-bad.yaml", &metro);
    let got: Vec<(&str, usize)> = bad.iter().map(|f| (f.rule, f.line)).collect();
    assert_eq!(got, [("DR061", 7), ("DR061", 17)], "{bad:#?}");
    assert!(bad[0].message.contains("not a stretch cluster") && bad[1].message.contains("keeps 2 replicas"), "{bad:#?}");
    assert!(check("tests/fixtures/lint/dr061-good.yaml", &metro).is_empty());
    assert!(check("tests/fixtures/lint/dr061-bad.yaml", &opts()).is_empty(), "Regional-DR does not ask for stretch mode");
}

#[test]
fn gitops_tree_findings_point_at_file_and_line() {
    let f = check("tests/fixtures/gitops", &rules::Options { rpo: Some(std::time::Duration::from_secs(600)), ..Default::default() });
    let at: Vec<(String, usize, &str)> = f.iter().map(|x| (x.file.trim_start_matches("tests/fixtures/gitops/").to_string(), x.line, x.rule)).collect();
    let expect = [
        ("apps/legacy/all.yaml", 9, "DR020"),
        ("apps/legacy/all.yaml", 43, "DR040"),
        ("apps/shop/vm.yaml", 11, "DR010"),
        ("apps/shop/vm.yaml", 16, "DR030"),
        ("apps/shop/vm.yaml", 17, "DR031"),
        ("policies/drpolicy.yaml", 15, "DR050"),
    ];
    assert_eq!(at, expect.map(|(a, b, c)| (a.to_string(), b, c)));
    // the clean application yields nothing
    assert!(f.iter().all(|x| !x.file.contains("billing")));
}

#[test]
fn kustomize_output_on_stdin_is_a_discovered_app() {
    let out = Command::cargo_bin("dr-drill")
        .unwrap()
        .args(["lint", "--format", "json", "-"])
        .pipe_stdin("tests/fixtures/discovered-kustomize-output.yaml")
        .unwrap()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = v["findings"].as_array().unwrap();
    assert_eq!(f[0]["rule"], "DR001");
    assert_eq!(f[0]["file"], "<stdin>");
    assert_eq!(f[0]["line"], 13);
    assert_eq!(f[0]["object"], "Secret crm/crm-userdata");
}

#[test]
fn sarif_has_the_required_fields() {
    let out = Command::cargo_bin("dr-drill").unwrap().args(["lint", "--format", "sarif", "tests/fixtures/gitops"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let runs = s["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert!(driver["name"].is_string());
    let rule_ids: Vec<&str> = driver["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    let results = runs[0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        assert!(r["message"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        let id = r["ruleId"].as_str().unwrap();
        assert_eq!(rule_ids[r["ruleIndex"].as_u64().unwrap() as usize], id);
        assert!(["none", "note", "warning", "error"].contains(&r["level"].as_str().unwrap()));
        let loc = &r["locations"][0]["physicalLocation"];
        assert!(loc["artifactLocation"]["uri"].as_str().unwrap().ends_with(".yaml"));
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn exit_codes_and_formats() {
    let lint = |args: &[&str]| Command::cargo_bin("dr-drill").unwrap().arg("lint").args(args).output().unwrap();
    assert_eq!(lint(&["tests/fixtures/gitops/apps/billing"]).status.code(), Some(0));
    // warnings only: clean at the default --fail-on error, failing at --fail-on warning
    assert_eq!(lint(&["tests/fixtures/lint/dr030-bad.yaml"]).status.code(), Some(0));
    assert_eq!(lint(&["--fail-on", "warning", "tests/fixtures/lint/dr030-bad.yaml"]).status.code(), Some(1));
    let j = lint(&["--format", "junit", "tests/fixtures/gitops"]);
    let x = String::from_utf8_lossy(&j.stdout);
    assert!(x.contains("<testsuite name=\"dr-drill lint\"") && x.contains("failures=\"5\""), "{x}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "kind: ConfigMap\nmetadata:\n  name: [x\n").unwrap();
    let out = lint(&[bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:3:") || err.contains("bad.yaml:4:"), "{err}");
    assert_eq!(lint(&["no/such/dir"]).status.code(), Some(2));
}

#[test]
fn floating_tags() {
    for (img, floating) in [
        ("quay.io/x/y", true),
        ("quay.io/x/y:latest", true),
        ("docker://quay.io/x/y:9.4", false),
        ("localhost:5000/y", true),
        ("localhost:5000/y:1", false),
        ("quay.io/x/y@sha256:abc", false),
    ] {
        assert_eq!(rules::floating(img), floating, "{img}");
    }
}

#[test]
fn wrong_kubeconfig_is_named_with_exit_2() {
    let out = Command::cargo_bin("dr-drill")
        .unwrap()
        .args(["lint", "--context", "east", "--namespace", "shop", "--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("context east") && err.contains("/nonexistent/kubeconfig"), "{err}");
}

/// The application label is found whatever its key: Kubernetes' recommended `part-of`, or the user's own;
/// resources missing it and VMIs carrying it are reported with that key.
#[test]
fn the_application_label_is_found_whatever_its_key() {
    for clean in ["tests/fixtures/lint/labels/part-of-good.yaml", "tests/fixtures/lint/labels/custom-key-good.yaml"] {
        let f = check(clean, &opts());
        assert!(f.is_empty(), "{clean}: {f:#?}");
    }
    let f = check("tests/fixtures/lint/labels/part-of-bad.yaml", &opts());
    let got: Vec<(&str, &str)> = f.iter().map(|x| (x.rule, x.object.as_str())).collect();
    assert_eq!(got, [("DR001", "PersistentVolumeClaim shop/web-root"), ("DR002", "VirtualMachineInstance shop/web")], "{f:#?}");
    assert!(f[0].message.contains("`app.kubernetes.io/part-of: shop`"), "{}", f[0].message);
    // an explicit key is taken as given: the part-of application has no `app` label at all
    let f = check("tests/fixtures/lint/labels/part-of-good.yaml", &rules::Options { app_label: Some("app".into()), ..opts() });
    assert_eq!(f.iter().map(|x| x.rule).collect::<Vec<_>>(), ["DR001"], "{f:#?}");
}
