//! A run's folder as evidence: `index.html` and one `history-<vm>.edn` per VM, made from `summary.json` and
//! the `history-<vm>.jsonl` files (at the end of every run, and again by `dr-drill report DIR`); campaigns'
//! `campaign.json` and their page. The thin I/O around the pure renderers (`html`, `jepsen`, `campaign`).

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: not JSON: {msg}")]
    Parse { path: PathBuf, line: usize, msg: String },
    #[error("{0}: neither a run's folder (summary.json) nor a campaign's (campaign.json)")]
    NotARun(PathBuf),
}

fn read(path: &Path) -> Result<String, EvidenceError> {
    std::fs::read_to_string(path).map_err(|source| EvidenceError::Io { path: path.into(), source })
}

fn write(path: &Path, text: &str) -> Result<(), EvidenceError> {
    std::fs::write(path, text).map_err(|source| EvidenceError::Io { path: path.into(), source })
}

fn json(path: &Path) -> Result<Value, EvidenceError> {
    let text = read(path)?;
    serde_json::from_str(&text).map_err(|e| EvidenceError::Parse { path: path.into(), line: e.line(), msg: e.to_string() })
}

/// A run's summary and its VMs' histories (by VM name).
pub fn read_run(dir: &Path) -> Result<(Value, BTreeMap<String, Vec<Value>>), EvidenceError> {
    let summary = json(&dir.join("summary.json"))?;
    let mut histories = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|source| EvidenceError::Io { path: dir.into(), source })?;
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    for p in files {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(vm) = name.strip_prefix("history-").and_then(|n| n.strip_suffix(".jsonl")) else { continue };
        let mut events = vec![];
        for (i, line) in read(&p)?.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            events.push(serde_json::from_str(line).map_err(|e| EvidenceError::Parse { path: p.clone(), line: i + 1, msg: e.to_string() })?);
        }
        histories.insert(vm.to_string(), events);
    }
    Ok((summary, histories))
}

/// Writes `index.html` and the EDN histories of the run in `dir`; returns the page.
pub fn write_run_pages(dir: &Path) -> Result<PathBuf, EvidenceError> {
    let (summary, histories) = read_run(dir)?;
    for (vm, events) in &histories {
        write(&dir.join(format!("history-{vm}.edn")), &crate::jepsen::history(events))?;
    }
    let page = dir.join("index.html");
    write(&page, &crate::html::render_run(&summary, &histories))?;
    Ok(page)
}

/// Writes `campaign.json` and the campaign's `index.html` in `dir` from its runs' folders (`run-1`, ...).
pub fn write_campaign(dir: &Path, runs: &[(usize, PathBuf)], fresh: &str) -> Result<(Value, PathBuf), EvidenceError> {
    let mut summaries = vec![];
    for (k, d) in runs {
        summaries.push((*k, json(&d.join("summary.json"))?));
    }
    let mut c = crate::campaign::campaign(&summaries, fresh);
    c["dir"] = Value::String(dir.display().to_string());
    write(&dir.join("campaign.json"), &serde_json::to_string_pretty(&c).unwrap_or_default())?;
    let page = dir.join("index.html");
    write(&page, &crate::html::render_campaign(&c))?;
    Ok((c, page))
}

/// `dr-drill report DIR`: rebuilds a run's (or a campaign's) page from its files.
pub fn rebuild(dir: &Path) -> Result<PathBuf, EvidenceError> {
    if dir.join("summary.json").is_file() {
        return write_run_pages(dir);
    }
    if dir.join("campaign.json").is_file() {
        // the figures again from the runs' own summaries, where they are still there
        let c = json(&dir.join("campaign.json"))?;
        let runs: Vec<(usize, PathBuf)> = (1..=c["runs"].as_u64().unwrap_or(0) as usize).map(|k| (k, dir.join(format!("run-{k}")))).collect();
        if !runs.is_empty() && runs.iter().all(|(_, d)| d.join("summary.json").is_file()) {
            for (_, d) in &runs {
                write_run_pages(d)?;
            }
            return Ok(write_campaign(dir, &runs, c["labPerRun"].as_str().unwrap_or(""))?.1);
        }
        let page = dir.join("index.html");
        write(&page, &crate::html::render_campaign(&c))?;
        return Ok(page);
    }
    Err(EvidenceError::NotARun(dir.into()))
}

/// `dr-drill report --compare NEW OLD`: two campaigns side by side, written to `NEW/compare.html`.
pub fn compare(now: &Path, before: &Path) -> Result<PathBuf, EvidenceError> {
    let load = |d: &Path| {
        let p = d.join("campaign.json");
        if p.is_file() {
            json(&p)
        } else if d.join("summary.json").is_file() {
            // a single run compares as a campaign of one
            let mut c = crate::campaign::campaign(&[(1, json(&d.join("summary.json"))?)], "one run");
            c["dir"] = Value::String(d.display().to_string());
            Ok(c)
        } else {
            Err(EvidenceError::NotARun(d.into()))
        }
    };
    let (a, b) = (load(now)?, load(before)?);
    let page = now.join("compare.html");
    write(&page, &crate::html::render_compare(&a, &b))?;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_history_line_is_named_by_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("summary.json"), "{\"scenarios\": []}").unwrap();
        std::fs::write(d.path().join("history-vm0.jsonl"), "{\"event\": \"ack\"}\n{broken\n").unwrap();
        let e = read_run(d.path()).unwrap_err().to_string();
        assert!(e.contains("history-vm0.jsonl:2: not JSON"), "{e}");
        assert!(matches!(rebuild(&d.path().join("nothing")), Err(EvidenceError::NotARun(_))));
    }
}
