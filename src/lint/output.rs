//! Lint output formats: human, JSON, SARIF 2.1.0 (code-scanning UIs), JUnit.

use super::rules::RULES;
use super::{Finding, Severity};
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Sarif,
    Junit,
}

pub fn render(format: Format, findings: &[Finding], objects: usize) -> String {
    match format {
        Format::Human => human(findings, objects),
        Format::Json => serde_json::to_string_pretty(&json!({"objectsChecked": objects, "findings": findings})).unwrap(),
        Format::Sarif => serde_json::to_string_pretty(&sarif(findings)).unwrap(),
        Format::Junit => junit(findings, objects),
    }
}

fn human(findings: &[Finding], objects: usize) -> String {
    let mut s = String::new();
    for f in findings {
        s.push_str(&format!("{}:{}: {} [{} {}] {}\n    fix: {}\n", f.file, f.line, f.severity.as_str(), f.rule, f.name, f.message, f.fix));
    }
    let count = |sev| findings.iter().filter(|f| f.severity == sev).count();
    s.push_str(&format!(
        "{} objects checked: {} errors, {} warnings, {} notes\n",
        objects,
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    ));
    s
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

pub fn sarif(findings: &[Finding]) -> serde_json::Value {
    let rules: Vec<_> = RULES
        .iter()
        .map(|(id, name, sev, text)| {
            json!({
                "id": id, "name": name,
                "shortDescription": {"text": text},
                "fullDescription": {"text": text},
                "help": {"text": text},
                "defaultConfiguration": {"level": level(*sev)},
            })
        })
        .collect();
    let results: Vec<_> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.0 == f.rule).unwrap_or(0),
                "level": level(f.severity),
                "message": {"text": format!("{} Fix: {}", f.message, f.fix)},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": f.file.trim_start_matches("./")},
                    "region": {"startLine": f.line.max(1)},
                }}],
                "properties": {"object": f.object},
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "dr-drill lint", "version": env!("CARGO_PKG_VERSION"), "informationUri": "https://github.com/", "rules": rules}},
            "results": results,
        }],
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One test case per rule; a rule with findings fails, listing them.
fn junit(findings: &[Finding], objects: usize) -> String {
    let failures = RULES.iter().filter(|r| findings.iter().any(|f| f.rule == r.0)).count();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"dr-drill lint\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">\n    <properties><property name=\"objectsChecked\" value=\"{objects}\"/></properties>\n",
        RULES.len()
    );
    for (id, name, _, text) in RULES {
        let mine: Vec<&Finding> = findings.iter().filter(|f| f.rule == *id).collect();
        s.push_str(&format!("    <testcase classname=\"dr-drill.lint\" name=\"{id} {name}\">"));
        if !mine.is_empty() {
            let body: Vec<String> = mine.iter().map(|f| format!("{}:{}: {} ({})", f.file, f.line, f.message, f.fix)).collect();
            s.push_str(&format!("\n      <failure message=\"{} finding(s): {}\">{}</failure>\n    ", mine.len(), esc(text), esc(&body.join("\n"))));
        }
        s.push_str("</testcase>\n");
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
