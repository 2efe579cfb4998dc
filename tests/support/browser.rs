//! Opens a report in headless Chromium (Debian's package, installed by `scripts/setup.sh --tests`), in a
//! network namespace of its own with no interface up: nothing it tries can leave the machine. Chromium's
//! NetLog tells the page's own requests (their network isolation key is the page's `file://` site) from
//! the browser's background ones; the page's inline self-check counts the charts that drew.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Opened {
    /// Charts with a drawn area, as the page counted them in the browser (`data-charts-rendered`).
    pub charts_rendered: Option<usize>,
    /// Every request the page itself made (URLs).
    pub page_requests: Vec<String>,
    pub screenshot: PathBuf,
}

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("Chromium is not installed: run scripts/setup.sh --tests (Debian's chromium opens the report headless)"))
}

/// Runs headless Chromium once on `url` with `args` (a fresh profile each time); its stdout.
fn headless(profile: &Path, args: &[String], url: &str) -> String {
    let mut c = Command::new("timeout");
    c.arg("120").arg("unshare").arg("-n").arg(chromium());
    c.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-default-apps",
        "--no-default-browser-check",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display())).args(args).arg(url);
    let out = c.output().unwrap();
    assert!(out.status.success(), "chromium {args:?} {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Opens `page`, keeps its screenshot at `screenshot`.
pub fn open(page: &Path, screenshot: &Path) -> Opened {
    let work = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let netlog = work.path().join("netlog.json");
    let dom =
        headless(&work.path().join("p1"), &[format!("--log-net-log={}", netlog.display()), "--net-log-capture-mode=Default".into(), "--dump-dom".into()], &url);
    let charts_rendered = dom.split("data-charts-rendered=\"").nth(1).and_then(|r| r.split('"').next()).and_then(|n| n.parse().ok());
    let log: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&netlog).unwrap()).unwrap();
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64().unwrap();
    let page_requests = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
        .filter(|e| e["params"]["network_isolation_key"].as_str().is_some_and(|k| k.starts_with("file://")))
        .filter_map(|e| e["params"]["url"].as_str().map(String::from))
        .collect();
    headless(&work.path().join("p2"), &[format!("--screenshot={}", screenshot.display()), "--window-size=1200,2400".into(), "--hide-scrollbars".into()], &url);
    Opened { charts_rendered, page_requests, screenshot: screenshot.to_path_buf() }
}
