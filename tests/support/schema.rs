//! Every summary.json a test produces is checked against the schema in the repository
//! (`schema/summary.schema.json`) and for camelCase keys throughout.

use serde_json::Value;

/// Panics naming every place where `summary` breaks the schema, or a key that is not camelCase.
pub fn check_summary(summary: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/summary.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let errors: Vec<String> = validator.iter_errors(summary).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "summary.json breaks {}:\n{}", path.display(), errors.join("\n"));
    let mut bad = vec![];
    camel(summary, "", &mut bad);
    assert!(bad.is_empty(), "keys that are not camelCase: {bad:?}");
}

fn camel(v: &Value, at: &str, bad: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let ok = k.chars().next().is_some_and(|c| c.is_ascii_lowercase()) && k.chars().all(|c| c.is_ascii_alphanumeric());
                if !ok {
                    bad.push(format!("{at}.{k}"));
                }
                camel(x, &format!("{at}.{k}"), bad);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| camel(x, &format!("{at}[]"), bad)),
        _ => {}
    }
}

/// A run's folder holds its evidence: summary.json (schema-checked), index.html standing alone with a
/// chart per DR action, a Jepsen history per VM history, and a gather for every failed scenario.
pub fn check_run_folder(dir: &std::path::Path) {
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    check_summary(&summary);
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap_or_else(|e| panic!("{}: {e}", dir.join("index.html").display()));
    let outside = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for banned in ["http:", "https:", " src=", "<link", "url("] {
        assert!(!outside.contains(banned), "index.html loads something ({banned})");
    }
    let scenarios = summary["scenarios"].as_array().unwrap();
    let actions: usize = scenarios.iter().map(|s| s["actions"].as_array().map_or(0, |a| a.len())).sum();
    assert!(page.matches("<svg class=chart").count() >= actions, "a chart per DR action ({actions})");
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(vm) = name.strip_prefix("history-").and_then(|n| n.strip_suffix(".jsonl")) {
            let edn = dir.join(format!("history-{vm}.edn"));
            let text = std::fs::read_to_string(&edn).unwrap_or_else(|e| panic!("{}: {e}", edn.display()));
            assert!(text.lines().all(|l| l.starts_with("{:index ")), "{}", edn.display());
        }
    }
    for s in scenarios.iter().filter(|s| s["status"] == "failed") {
        let g = s["gather"].as_str().unwrap_or_else(|| panic!("failed scenario {} has no gather", s["scenario"]));
        let g = std::path::Path::new(g);
        for f in ["gather.txt", "environment.yaml"] {
            assert!(g.join(f).is_file(), "{} lacks {f}", g.display());
        }
    }
}
