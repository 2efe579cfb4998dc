//! The run's evidence as one self-contained HTML page (`index.html`): the environment and its promise, a
//! table of the scenarios, and per VM and DR action a chart drawn as inline SVG (acknowledged records over
//! time, faults shaded, replication rounds started and completed, the newest surviving record, the lost
//! range, the action's RTO segments as a bar), then the lost records and the reasons of any failure.
//! Campaigns (`--repeat`) and comparisons of two campaigns render here too.
//!
//! Pure: made from summary.json and the history files as plain JSON values, nothing read or fetched. The
//! page loads nothing: no external script, style, font, image or URL (it opens from an attachment); its one
//! inline script only counts the charts it drew (`data-charts-rendered` on `<body>`), for the test that
//! opens it in a browser.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Escapes text for HTML (element content and attribute values).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1100px}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}\
th{background:#f2f2f2}.passed{color:#17702f;font-weight:bold}.failed{color:#b00020;font-weight:bold}\
.inconclusive{color:#a15c00;font-weight:bold}.skipped{color:#666}section{margin-top:2em}\
svg.chart{border:1px solid #ddd;background:#fff;display:block;margin:.5em 0}.why{color:#b00020}\
code{background:#f5f5f5;padding:0 .2em}.small{font-size:90%;color:#555}";

/// A little inline script: how many charts have a drawn area (checked by the browser test).
const SELF_CHECK: &str = "<script>(function(){var n=0,c=document.querySelectorAll('svg.chart');\
for(var i=0;i<c.length;i++){var b=c[i].getBBox();if(b.width>0&&b.height>0&&c[i].querySelectorAll('*').length>3)n++;}\
document.body.setAttribute('data-charts-rendered',String(n));})();</script>";

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn ms_text(v: &Value) -> String {
    num(v).map(|ms| if ms >= 10_000.0 { format!("{:.1} s", ms / 1e3) } else { format!("{ms:.0} ms") }).unwrap_or_else(|| "-".into())
}

fn status_cell(status: &str) -> String {
    format!("<span class=\"{0}\">{0}</span>", esc(status))
}

/// When the action's VM served again, ms after the action started.
fn serving_ms(action: &Value) -> Option<f64> {
    action["rto"].as_array()?.iter().find(|m| m["segment"] == "serving").and_then(|m| m["afterMs"].as_f64())
}

/// One line per fault: its kind and what it names.
pub fn fault_label(f: &Value) -> String {
    let kind = f["kind"].as_str().unwrap_or("fault");
    let rest: Vec<String> = f
        .as_object()
        .map(|o| {
            o.iter().filter(|(k, _)| *k != "kind").map(|(k, v)| format!("{k} {}", v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))).collect()
        })
        .unwrap_or_default();
    if rest.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({})", rest.join(", "))
    }
}

/// The run's page.
pub fn render_run(summary: &Value, histories: &BTreeMap<String, Vec<Value>>) -> String {
    let scenarios = summary["scenarios"].as_array().cloned().unwrap_or_default();
    let env = &summary["environment"];
    let mut h = String::new();
    let title = format!(
        "dr-drill: {} passed, {} failed, {} skipped",
        summary["passed"].as_u64().unwrap_or(0),
        summary["failed"].as_u64().unwrap_or(0),
        summary["skipped"].as_u64().unwrap_or(0)
    );
    head(&mut h, &title);
    let _ = write!(
        h,
        "<h1>{}</h1><p class=small>environment <b>{}</b> ({}, backend {}), started {} (Unix), {:.0} s</p>",
        esc(&title),
        esc(env["name"].as_str().unwrap_or("?")),
        esc(env["file"].as_str().unwrap_or("")),
        esc(env["backend"].as_str().unwrap_or("?")),
        summary["startedUnix"].as_f64().map(|t| format!("{t:.0}")).unwrap_or_default(),
        summary["durationS"].as_f64().unwrap_or(0.0)
    );
    let _ = write!(h, "<h2>The promise</h2><p>{}</p><table>", esc(env["replication"].as_str().unwrap_or("")));
    for (k, label) in [("mode", "mode"), ("interval", "replication interval"), ("syncAllowance", "sync allowance"), ("scheduler", "snapshot scheduler")] {
        if let Some(v) = env[k].as_str() {
            let _ = write!(h, "<tr><th>{label}</th><td>{}</td></tr>", esc(v));
        }
    }
    for rt in env["roundTrips"].as_array().into_iter().flatten() {
        let _ = write!(
            h,
            "<tr><th>round trip {} &rarr; {}</th><td>median {:.2} ms, max {:.2} ms ({} samples)</td></tr>",
            esc(rt["from"].as_str().unwrap_or("?")),
            esc(rt["to"].as_str().unwrap_or("?")),
            rt["medianMs"].as_f64().unwrap_or(f64::NAN),
            rt["maxMs"].as_f64().unwrap_or(f64::NAN),
            rt["samples"]
        );
    }
    h.push_str("</table>");
    for e in summary["harnessErrors"].as_array().into_iter().flatten() {
        let _ = write!(h, "<p class=why>harness error: {}</p>", esc(e.as_str().unwrap_or("")));
    }
    // the table: every scenario that ran, the skipped ones summed up per reason
    h.push_str("<h2>Scenarios</h2><table><tr><th>scenario</th><th>status</th><th>time</th><th>loss window / bound</th><th>acked</th><th>lost</th><th>serving after</th><th>write p50 / p99</th><th>checks</th></tr>");
    let ran: Vec<(usize, &Value)> = scenarios.iter().enumerate().filter(|(_, s)| s["status"] != "skipped").collect();
    for (i, s) in &ran {
        let window = match (num(&s["lossWindowMs"]), num(&s["lossBoundMs"])) {
            (Some(w), Some(b)) => format!("{w:.0} / {b:.0} ms"),
            (Some(w), None) => format!("{w:.0} ms"),
            _ => "-".into(),
        };
        let lat = match (s["writeLatencyP50Us"].as_u64(), s["writeLatencyP99Us"].as_u64()) {
            (Some(a), Some(b)) => format!("{:.2} / {:.2} ms", a as f64 / 1e3, b as f64 / 1e3),
            _ => "-".into(),
        };
        let _ = write!(
            h,
            "<tr><td><a href=\"#s{i}\">{}</a></td><td>{}</td><td>{}</td><td>{window}</td><td>{}</td><td>{}</td><td>{}</td><td>{lat}</td><td>{}</td></tr>",
            esc(s["scenario"].as_str().unwrap_or("?")),
            status_cell(s["status"].as_str().unwrap_or("?")),
            s["durationS"].as_f64().map(|d| format!("{d:.1} s")).unwrap_or_else(|| "-".into()),
            s["recordsAcked"].as_u64().map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            s["recordsLost"].as_u64().map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            s["action"].as_object().and_then(|_| serving_ms(&s["action"])).map(|ms| format!("{:.1} s", ms / 1e3)).unwrap_or_else(|| "-".into()),
            esc(&checks(s))
        );
    }
    h.push_str("</table>");
    let mut by_reason: Vec<(String, usize)> = vec![];
    for s in scenarios.iter().filter(|s| s["status"] == "skipped") {
        let why = s["reason"].as_str().unwrap_or("").to_string();
        match by_reason.iter_mut().find(|(r, _)| *r == why) {
            Some((_, n)) => *n += 1,
            None => by_reason.push((why, 1)),
        }
    }
    for (why, n) in &by_reason {
        let _ = write!(h, "<p class=skipped>{n} scenario{} skipped: {}</p>", if *n == 1 { "" } else { "s" }, esc(why));
    }
    let mut charts = 0;
    for (i, s) in &ran {
        charts += scenario_section(&mut h, *i, s, histories);
    }
    let _ = write!(h, "<p class=small>{charts} charts. Time on every chart is seconds from the scenario's start on the witness clock.</p>");
    tail(&mut h);
    h
}

fn head(h: &mut String, title: &str) {
    let _ = write!(h, "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{}</title><style>{STYLE}</style></head><body>", esc(title));
}

fn tail(h: &mut String) {
    h.push_str(SELF_CHECK);
    h.push_str("</body></html>\n");
}

/// Stretch or role checks where present, in a few words.
fn checks(s: &Value) -> String {
    let mut out = vec![];
    if let Some(roles) = s["action"]["roles"].as_array().filter(|r| !r.is_empty()) {
        let r: Vec<String> = roles.iter().map(|r| format!("{} {}", r["site"].as_str().unwrap_or("?"), r["role"].as_str().unwrap_or("?"))).collect();
        out.push(format!("roles: {}", r.join(", ")));
    }
    if let Some(t) = s["stretch"]["transitions"].as_array().filter(|t| !t.is_empty()) {
        let states: Vec<&str> = t.iter().filter_map(|x| x["state"].as_str()).collect();
        out.push(format!("stretch: {}", states.join(" → ")));
    }
    if let Some(sk) = s["verdicts"].as_array().and_then(|v| v.iter().find_map(|c| c["verdict"]["skew"]["skewMs"].as_f64())) {
        out.push(format!("disk skew {:.2} s", sk / 1e3));
    }
    out.join("; ")
}

fn scenario_section(h: &mut String, i: usize, s: &Value, histories: &BTreeMap<String, Vec<Value>>) -> usize {
    let _ = write!(
        h,
        "<section id=\"s{i}\"><h2>{}: {}</h2><p class=small>{} line {}; tags {}</p>",
        esc(s["feature"].as_str().unwrap_or("")),
        esc(s["scenario"].as_str().unwrap_or("")),
        esc(s["file"].as_str().unwrap_or("")),
        s["line"],
        esc(&s["tags"].as_array().map(|t| t.iter().filter_map(|x| x.as_str()).map(|x| format!("@{x}")).collect::<Vec<_>>().join(" ")).unwrap_or_default())
    );
    let _ = write!(h, "<p>{}", status_cell(s["status"].as_str().unwrap_or("?")));
    if let Some(c) = s["cause"].as_str() {
        let _ = write!(h, " (cause: {})", esc(c));
    }
    if let Some(r) = s["reason"].as_str() {
        let _ = write!(h, ": <span class=why>{}</span>", esc(r));
    }
    h.push_str("</p>");
    let start = s["startedMs"].as_f64();
    let end = start.map(|t| t + s["durationS"].as_f64().unwrap_or(0.0) * 1e3);
    // every fault with what showed it in effect (before its receipt) and gone (after its recovery)
    let faults = s["faults"].as_array().cloned().unwrap_or_default();
    if !faults.is_empty() {
        h.push_str("<ul class=faults>");
        for f in &faults {
            let seen = |p: &Value| p["seen"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")).unwrap_or_default();
            let at = match (f["atMs"].as_f64(), start) {
                (Some(a), Some(t0)) => format!(" at +{:.1}s", (a - t0) / 1e3),
                _ => String::new(),
            };
            let _ = write!(h, "<li>{}{at}: in effect ({}) &mdash; ", esc(&fault_label(&f["fault"])), esc(&seen(&f["inEffect"])));
            match f["gone"].as_object() {
                Some(_) => {
                    let _ = write!(h, "gone ({})</li>", esc(&seen(&f["gone"])));
                }
                None => h.push_str("<span class=why>never shown gone</span></li>"),
            }
        }
        h.push_str("</ul>");
    }
    let actions = s["actions"].as_array().cloned().unwrap_or_default();
    let mut charts = 0;
    for (k, a) in actions.iter().enumerate() {
        let vm = a["vm"].as_str().unwrap_or("?");
        let _ = write!(
            h,
            "<h3>{} of {} {} &rarr; {}: {}</h3>",
            esc(a["kind"].as_str().unwrap_or("action")),
            esc(vm),
            esc(a["from"].as_str().unwrap_or("?")),
            esc(a["to"].as_str().unwrap_or("?")),
            status_cell(a["conclusion"].as_str().unwrap_or("?"))
        );
        let _ = write!(
            h,
            "<p class=small>{} records acknowledged, {} lost; loss window {} of bound {}; RTO: {}</p>",
            a["recordsAcked"],
            a["recordsLost"],
            ms_text(&a["lossWindowMs"]),
            ms_text(&a["lossBoundMs"]),
            esc(&a["rto"]
                .as_array()
                .map(|m| m
                    .iter()
                    .map(|x| format!("{} +{:.1}s", x["segment"].as_str().unwrap_or("?"), x["afterMs"].as_f64().unwrap_or(0.0) / 1e3))
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default())
        );
        if let (Some(t0), Some(end)) = (start, end) {
            // from the scenario's start (or the previous action's end) to this action's end
            let from = if k > 0 { action_end(&actions[k - 1]).unwrap_or(t0).max(t0) } else { t0 };
            let to = action_end(a).map(|e| (e + 2000.0).min(end.max(e))).unwrap_or(end);
            let events = histories.get(vm).map(|v| v.as_slice()).unwrap_or(&[]);
            h.push_str(&chart(vm, Some(a), events, t0, from, to));
            charts += 1;
        }
        if let Some(lost) = a["lost"].as_array().filter(|l| !l.is_empty()) {
            let r: Vec<String> = lost.iter().map(|r| format!("{}–{}", r[0], r[1])).collect();
            let _ = write!(h, "<p class=why>lost records: {}</p>", esc(&r.join(", ")));
        }
        for why in a["why"].as_array().into_iter().flatten() {
            let _ = write!(h, "<p class=why>{}</p>", esc(why.as_str().unwrap_or("")));
        }
    }
    // VMs the scenario started that no DR action moved: their writes and the faults
    for vm in s["vms"].as_array().into_iter().flatten().filter_map(|v| v.as_str()) {
        if actions.iter().any(|a| a["vm"] == vm) {
            continue;
        }
        if let (Some(t0), Some(end)) = (start, end) {
            let _ = write!(h, "<h3>{} (no DR action)</h3>", esc(vm));
            h.push_str(&chart(vm, None, histories.get(vm).map(|v| v.as_slice()).unwrap_or(&[]), t0, t0, end));
            charts += 1;
        }
    }
    for v in s["verdicts"].as_array().into_iter().flatten() {
        let c = v["verdict"]["conclusion"].as_str().unwrap_or("?");
        let _ = write!(h, "<p>check <i>{}</i>: {}", esc(v["check"].as_str().unwrap_or("")), status_cell(c));
        for why in v["verdict"]["why"].as_array().into_iter().flatten() {
            let _ = write!(h, " <span class=why>{}</span>", esc(why.as_str().unwrap_or("")));
        }
        h.push_str("</p>");
    }
    h.push_str("</section>");
    charts
}

fn action_end(a: &Value) -> Option<f64> {
    let start = a["startMs"].as_f64()?;
    let last = a["rto"].as_array()?.iter().filter_map(|m| m["afterMs"].as_f64()).fold(0.0, f64::max);
    Some(start + last)
}

/// Where a chart draws: time (witness ms) across, record sequence up.
struct Frame {
    t0: f64,
    x0: f64,
    x1: f64,
    y1: f64,
}

const W: f64 = 960.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const BAR_TOP: f64 = 8.0;
const PLOT_TOP: f64 = 40.0;
const PLOT_H: f64 = 200.0;
const SNAP_TOP: f64 = 252.0;
const H: f64 = 320.0;

impl Frame {
    fn x(&self, t: f64) -> f64 {
        let span = (self.x1 - self.x0).max(1.0);
        LEFT + ((t - self.x0) / span).clamp(0.0, 1.0) * (W - LEFT - RIGHT)
    }
    fn y(&self, seq: f64) -> f64 {
        PLOT_TOP + PLOT_H - (seq / self.y1.max(1.0)).clamp(0.0, 1.0) * PLOT_H
    }
}

fn in_lost(lost: &[(u64, u64)], seq: u64) -> bool {
    lost.iter().any(|&(a, b)| a <= seq && seq <= b)
}

/// One chart: the VM's acknowledged records from `from` to `to` (witness ms), faults shaded, replication
/// rounds below, and for an action its RTO bar, the newest surviving record and the lost records.
pub fn chart(vm: &str, action: Option<&Value>, events: &[Value], t0: f64, from: f64, to: f64) -> String {
    let t = |e: &Value| e["tMs"].as_f64().unwrap_or(f64::NAN);
    let within: Vec<&Value> = events.iter().filter(|e| (from..=to).contains(&t(e))).collect();
    let acks: Vec<(f64, u64, String)> =
        within.iter().filter(|e| e["event"] == "ack").map(|e| (t(e), e["seq"].as_u64().unwrap_or(0), e["boot"].as_str().unwrap_or("").to_string())).collect();
    let f = Frame { t0, x0: from, x1: to.max(from + 1.0), y1: acks.iter().map(|a| a.1).max().unwrap_or(1) as f64 * 1.05 };
    let kind = action.and_then(|a| a["kind"].as_str()).unwrap_or("none");
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=chart xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" data-vm=\"{}\" data-action=\"{}\" data-acks=\"{}\" role=img><title>{} {}: acknowledged records over time</title>",
        esc(vm),
        esc(kind),
        acks.len(),
        esc(vm),
        esc(kind)
    );
    // plot area and axes
    let _ = write!(s, "<rect x=\"{LEFT}\" y=\"{PLOT_TOP}\" width=\"{}\" height=\"{PLOT_H}\" fill=\"#fafafa\" stroke=\"#bbb\"/>", W - LEFT - RIGHT);
    for k in 0..=5 {
        let tt = f.x0 + (f.x1 - f.x0) * k as f64 / 5.0;
        let x = f.x(tt);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{:.1} s</text>",
            PLOT_TOP,
            PLOT_TOP + PLOT_H,
            H - 6.0,
            (tt - f.t0) / 1e3
        );
        let seq = f.y1 * k as f64 / 5.0;
        let y = f.y(seq);
        let _ = write!(s, "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{:.0}</text>", LEFT - 4.0, y + 4.0, seq);
    }
    let _ = write!(
        s,
        "<text x=\"12\" y=\"{}\" font-size=\"11\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">record (acknowledged)</text>",
        PLOT_TOP + PLOT_H / 2.0,
        PLOT_TOP + PLOT_H / 2.0
    );
    // faults as shaded windows, each until its recovery (or the chart's end)
    for (k, (i, e)) in within.iter().enumerate().filter(|(_, e)| e["event"] == "fault").enumerate() {
        let start = t(e);
        let undone = within[i + 1..].iter().find(|r| r["event"] == "recovered" && r["fault"] == e["fault"]);
        let end = undone.map(|r| t(r)).unwrap_or(f.x1);
        let (x0, x1) = (f.x(start), f.x(end));
        // what showed it in effect, and gone (a person hovering sees the proof)
        let lines = |v: &Value| v["proof"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")).unwrap_or_default();
        let mut title = format!("{}\nin effect: {}", fault_label(&e["fault"]), lines(e));
        if let Some(r) = undone {
            title.push_str(&format!("\ngone: {}", lines(r)));
        }
        let _ = write!(
            s,
            "<rect class=fault x=\"{x0:.1}\" y=\"{PLOT_TOP}\" width=\"{:.1}\" height=\"{}\" fill=\"#d33\" fill-opacity=\"0.13\"><title>{}</title></rect><text x=\"{:.1}\" y=\"{}\" font-size=\"10\" fill=\"#a00\">{}</text>",
            (x1 - x0).max(1.5),
            SNAP_TOP + 28.0 - PLOT_TOP,
            esc(&title),
            x0 + 2.0,
            PLOT_TOP + 12.0 + 12.0 * (k % 6) as f64,
            esc(&fault_label(&e["fault"]))
        );
    }
    // boots
    for e in within.iter().filter(|e| e["event"] == "probe-up") {
        let x = f.x(t(e));
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{PLOT_TOP}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#888\" stroke-dasharray=\"2,3\"><title>probe up (boot {})</title></line>",
            PLOT_TOP + PLOT_H,
            esc(e["boot"].as_str().unwrap_or(""))
        );
    }
    // acknowledged records, a line per writer boot (at most ~1500 points each)
    let mut boots: Vec<&str> = vec![];
    for a in &acks {
        if !boots.contains(&a.2.as_str()) {
            boots.push(&a.2);
        }
    }
    for (bi, boot) in boots.iter().enumerate() {
        let pts: Vec<&(f64, u64, String)> = acks.iter().filter(|a| a.2 == *boot).collect();
        let stride = pts.len().div_ceil(1500).max(1);
        let mut line = String::new();
        for (k, p) in pts.iter().enumerate() {
            if k % stride == 0 || k + 1 == pts.len() {
                let _ = write!(line, "{:.1},{:.1} ", f.x(p.0), f.y(p.1 as f64));
            }
        }
        let colour = ["#1f5fbf", "#6a3d9a", "#1b7837", "#b35806"][bi % 4];
        let _ = write!(
            s,
            "<polyline class=acks fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"><title>boot {}: {} acks</title></polyline>",
            line.trim_end(),
            esc(boot),
            pts.len()
        );
    }
    // replication rounds: started (upper row), completed (lower row), joined
    let mut started: BTreeMap<(String, u64), f64> = BTreeMap::new();
    for e in within.iter().filter(|e| e["event"] == "mirror-snapshot") {
        let key = (e["site"].as_str().unwrap_or("").to_string(), e["id"].as_u64().unwrap_or(0));
        let x = f.x(t(e));
        started.insert(key.clone(), t(e));
        let _ = write!(
            s,
            "<line class=snap x1=\"{x:.1}\" y1=\"{SNAP_TOP}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#555\"><title>snapshot {}/{} started</title></line>",
            SNAP_TOP + 10.0,
            esc(&key.0),
            key.1
        );
    }
    for e in within.iter().filter(|e| e["event"] == "mirror-snapshot-complete") {
        let key = (e["site"].as_str().unwrap_or("").to_string(), e["id"].as_u64().unwrap_or(0));
        let x = f.x(t(e));
        if let Some(st) = started.get(&key) {
            let _ = write!(
                s,
                "<line x1=\"{:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#2a7\" stroke-width=\"1\"/>",
                f.x(*st),
                SNAP_TOP + 10.0,
                SNAP_TOP + 14.0
            );
        }
        let _ = write!(
            s,
            "<line class=snap-done x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#2a7\" stroke-width=\"2\"><title>snapshot {}/{} complete on the peer</title></line>",
            SNAP_TOP + 14.0,
            SNAP_TOP + 24.0,
            esc(&key.0),
            key.1
        );
    }
    let _ = write!(s, "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">rounds</text>", LEFT - 4.0, SNAP_TOP + 16.0);
    if let Some(a) = action {
        let lost: Vec<(u64, u64)> = a["lost"].as_array().into_iter().flatten().filter_map(|r| Some((r[0].as_u64()?, r[1].as_u64()?))).collect();
        let astart = a["startMs"].as_f64().unwrap_or(f.x1);
        // the lost records: acknowledged before the action, not on the disk after it
        let lost_acks: Vec<&(f64, u64, String)> = acks.iter().filter(|p| p.0 <= astart && in_lost(&lost, p.1)).collect();
        if let (Some(first), Some(last)) = (lost_acks.first(), lost_acks.last()) {
            let (x0, x1) = (f.x(first.0), f.x(last.0));
            let (y0, y1) = (f.y(last.1 as f64), f.y(first.1 as f64));
            let n: u64 = lost.iter().map(|(a, b)| b - a + 1).sum();
            let _ = write!(
                s,
                "<rect class=lost x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#b00020\" fill-opacity=\"0.35\" stroke=\"#b00020\"><title>{n} acknowledged records lost</title></rect><text x=\"{x0:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#b00020\" text-anchor=\"end\">lost {n}</text>",
                (x1 - x0).max(3.0),
                (y1 - y0).max(3.0),
                y0 - 3.0
            );
        }
        // the newest surviving record
        if let Some(seq) = a["newestSurviving"].as_u64() {
            if let Some(p) = acks.iter().rfind(|p| p.1 == seq && p.0 <= astart) {
                let (x, y) = (f.x(p.0), f.y(p.1 as f64));
                let _ = write!(
                    s,
                    "<circle class=surviving cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"#17702f\"><title>newest surviving record {seq}</title></circle><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#17702f\">newest surviving #{seq}</text>",
                    x + 6.0,
                    y + 14.0
                );
            }
        }
        // the RTO segments as a bar
        let marks: Vec<(String, f64)> = a["rto"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| (m["segment"].as_str().unwrap_or("?").to_string(), astart + m["afterMs"].as_f64().unwrap_or(0.0)))
            .collect();
        let palette = ["#fdae61", "#fee08b", "#d9ef8b", "#a6d96a", "#66bd63", "#abdda4", "#e6f598", "#fdd49e"];
        for (k, (name, at)) in marks.iter().enumerate() {
            let x0 = f.x(*at);
            let x1 = marks.get(k + 1).map(|m| f.x(m.1)).unwrap_or(x0 + 3.0);
            let _ = write!(
                s,
                "<rect class=rto x=\"{x0:.1}\" y=\"{BAR_TOP}\" width=\"{:.1}\" height=\"16\" fill=\"{}\" stroke=\"#777\" stroke-width=\"0.5\"><title>{} at +{:.1} s</title></rect>",
                (x1 - x0).max(2.0),
                palette[k % palette.len()],
                esc(name),
                (at - astart) / 1e3
            );
            if x1 - x0 > 40.0 || k + 1 == marks.len() {
                let _ = write!(s, "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\">{}</text>", x0 + 2.0, BAR_TOP + 12.0, esc(name));
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// The nearest-rank percentile `q` (0..=1) of figures. Pure.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn pct_cell(v: &Value) -> String {
    match (v["p50"].as_f64(), v["p95"].as_f64(), v["max"].as_f64()) {
        (Some(a), Some(b), Some(c)) => format!("{a:.0} / {b:.0} / {c:.0}"),
        _ => "-".into(),
    }
}

/// A campaign's page: per scenario its pass rate and the percentiles of its loss window and RTO segments,
/// a strip of every run's loss window against the bound, and each failed run with its reason.
pub fn render_campaign(c: &Value) -> String {
    let mut h = String::new();
    let title = format!("dr-drill campaign: {} runs of {}", c["runs"], c["environment"]["name"].as_str().unwrap_or("?"));
    head(&mut h, &title);
    let _ = write!(
        h,
        "<h1>{}</h1><p>{}</p><p class=small>{}</p>",
        esc(&title),
        esc(c["environment"]["replication"].as_str().unwrap_or("")),
        esc(c["labPerRun"].as_str().unwrap_or(""))
    );
    campaign_table(&mut h, c, None);
    for sc in c["scenarios"].as_array().into_iter().flatten() {
        let _ = write!(h, "<section><h2>{}</h2>", esc(sc["scenario"].as_str().unwrap_or("")));
        h.push_str(&strip(sc));
        for f in sc["failures"].as_array().into_iter().flatten() {
            let _ = write!(h, "<p class=why>run {}: {}: {}</p>", f["run"], esc(f["status"].as_str().unwrap_or("")), esc(f["reason"].as_str().unwrap_or("")));
        }
        h.push_str("</section>");
    }
    tail(&mut h);
    h
}

fn campaign_table(h: &mut String, c: &Value, other: Option<&Value>) {
    h.push_str(
        "<table><tr><th>scenario</th><th>runs</th><th>pass rate</th><th>loss window p50 / p95 / max (ms)</th><th>RTO segments p50 / p95 / max (ms)</th>",
    );
    if other.is_some() {
        h.push_str("<th>before: pass rate</th><th>before: loss window</th><th>before: RTO segments</th>");
    }
    h.push_str("</tr>");
    for sc in c["scenarios"].as_array().into_iter().flatten() {
        let seg = |sc: &Value| {
            sc["rtoMs"]
                .as_array()
                .map(|o| o.iter().map(|v| format!("{}: {}", esc(v["segment"].as_str().unwrap_or("?")), pct_cell(v))).collect::<Vec<_>>().join("<br>"))
                .unwrap_or_default()
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(sc["scenario"].as_str().unwrap_or("")),
            sc["runs"],
            rate(sc),
            pct_cell(&sc["lossWindowMs"]),
            seg(sc)
        );
        if let Some(o) = other {
            let before = o["scenarios"].as_array().into_iter().flatten().find(|x| x["scenario"] == sc["scenario"]);
            match before {
                Some(b) => {
                    let _ = write!(h, "<td>{}</td><td>{}</td><td>{}</td>", rate(b), pct_cell(&b["lossWindowMs"]), seg(b));
                }
                None => h.push_str("<td colspan=3>not in the other campaign</td>"),
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
}

fn rate(sc: &Value) -> String {
    format!("{}/{} ({:.0}%)", sc["passed"], sc["runs"], sc["passRate"].as_f64().unwrap_or(0.0) * 100.0)
}

/// Every run's loss window as a dot, the bound as a dashed line.
fn strip(sc: &Value) -> String {
    let runs: Vec<(u64, Option<f64>, bool)> =
        sc["perRun"].as_array().into_iter().flatten().map(|r| (r["run"].as_u64().unwrap_or(0), r["lossWindowMs"].as_f64(), r["status"] == "passed")).collect();
    let bound = sc["lossBoundMs"].as_f64();
    let top = runs.iter().filter_map(|r| r.1).chain(bound).fold(1.0, f64::max) * 1.1;
    let (w, hh) = (600.0, 140.0);
    let n = runs.len().max(1) as f64;
    let mut s = format!(
        "<svg class=chart xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{hh}\" viewBox=\"0 0 {w} {hh}\" data-action=\"campaign\" role=img><title>loss window per run</title><rect x=\"50\" y=\"10\" width=\"{}\" height=\"100\" fill=\"#fafafa\" stroke=\"#bbb\"/>",
        w - 60.0
    );
    let y = |v: f64| 110.0 - v / top * 100.0;
    if let Some(b) = bound {
        let _ = write!(s, "<line x1=\"50\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#b00020\" stroke-dasharray=\"4,3\"/><text x=\"52\" y=\"{:.1}\" font-size=\"10\" fill=\"#b00020\">bound {b:.0} ms</text>", w - 10.0, y(b), y(b), y(b) - 3.0);
    }
    for (i, (run, lw, ok)) in runs.iter().enumerate() {
        let x = 50.0 + (i as f64 + 0.5) / n * (w - 60.0);
        if let Some(v) = lw {
            let _ = write!(
                s,
                "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{}\"><title>run {run}: {v:.0} ms</title></circle>",
                y(*v),
                if *ok { "#1f5fbf" } else { "#b00020" }
            );
        }
        let _ = write!(s, "<text x=\"{x:.1}\" y=\"126\" font-size=\"10\" text-anchor=\"middle\">{run}</text>");
    }
    let _ = write!(
        s,
        "<text x=\"4\" y=\"60\" font-size=\"10\">loss ms</text><text x=\"{}\" y=\"138\" font-size=\"10\" text-anchor=\"middle\">run</text></svg>",
        w / 2.0
    );
    s
}

/// Two campaigns side by side (a release against the previous one).
pub fn render_compare(now: &Value, before: &Value) -> String {
    let mut h = String::new();
    let title = "dr-drill: two campaigns compared";
    head(&mut h, title);
    let _ = write!(
        h,
        "<h1>{title}</h1><p>this: {} runs of {} ({})<br>before: {} runs of {} ({})</p>",
        now["runs"],
        esc(now["environment"]["name"].as_str().unwrap_or("?")),
        esc(now["dir"].as_str().unwrap_or("")),
        before["runs"],
        esc(before["environment"]["name"].as_str().unwrap_or("?")),
        esc(before["dir"].as_str().unwrap_or(""))
    );
    campaign_table(&mut h, now, Some(before));
    tail(&mut h);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn history() -> Vec<Value> {
        let mut h = vec![json!({"event": "probe-up", "vm": "vm0", "boot": "b1", "tMs": 1000.0})];
        for seq in 1..=100u64 {
            h.push(json!({"event": "ack", "vm": "vm0", "boot": "b1", "seq": seq, "latUs": 900, "tMs": 1000.0 + 20.0 * seq as f64}));
        }
        h.push(json!({"event": "mirror-snapshot", "vm": "vm0", "id": 7, "site": "a", "tMs": 2500.0}));
        h.push(json!({"event": "mirror-snapshot-complete", "vm": "vm0", "id": 7, "site": "a", "tMs": 2900.0}));
        h.push(json!({"event": "fault", "fault": {"kind": "powerLoss", "site": "a"}, "tMs": 3050.0}));
        h.push(json!({"event": "dr", "vm": "vm0", "action": "failover", "segment": "promoted", "tMs": 5000.0}));
        h.push(json!({"event": "recovered", "fault": {"kind": "powerLoss", "site": "a"}, "tMs": 9000.0}));
        h
    }

    fn summary(status: &str) -> Value {
        let action = json!({"kind": "failover", "vm": "vm0", "from": "a", "to": "b", "startMs": 3050.0, "conclusion": "passed",
                            "rto": [{"segment": "fault", "afterMs": 0.0}, {"segment": "promoted", "afterMs": 1950.0}, {"segment": "serving", "afterMs": 9000.0}],
                            "recordsAcked": 100, "recordsLost": 10, "newestSurviving": 90, "lost": [[91, 100]], "why": []});
        let verdicts = json!([{"check": "at most the interval is lost", "verdict": {"conclusion": "passed", "why": []}}]);
        let reason = if status == "passed" { Value::Null } else { json!("lost 10 records") };
        let ran = json!({"feature": "Failover", "scenario": "power loss", "status": status, "reason": reason,
                         "startedMs": 900.0, "durationS": 12.0, "vm": "vm0", "vms": ["vm0"], "tags": ["failover"], "line": 7,
                         "recordsAcked": 100, "recordsLost": 10, "lossWindowMs": 300.0, "lossBoundMs": 8020.0,
                         "action": {"rto": [{"segment": "fault", "afterMs": 0.0}, {"segment": "serving", "afterMs": 9000.0}]},
                         "actions": [action], "verdicts": verdicts});
        let env = json!({"name": "lab-regional", "file": "environments/lab-regional.yaml", "backend": "lab", "replication": "Regional-DR <script>", "interval": "5s", "roundTrips": []});
        let skipped = |n: &str| json!({"feature": "Metro", "scenario": n, "status": "skipped", "reason": "needs Metro-DR"});
        json!({"environment": env, "passed": 1, "failed": 0, "skipped": 2, "durationS": 60.0, "startedUnix": 1.0, "harnessErrors": [],
               "scenarios": [ran, skipped("m1"), skipped("m2")]})
    }

    /// The page stands alone: no URL is loaded from anywhere; the text is escaped; every part is drawn.
    #[test]
    fn a_run_page_is_self_contained_and_draws_every_part() {
        let hist = BTreeMap::from([("vm0".to_string(), history())]);
        let page = render_run(&summary("passed"), &hist);
        for banned in ["http:", "https:", "src=", "@import", "url(", "<link", "//fonts"] {
            // the SVG namespace is an identifier, never fetched
            let without_ns = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            assert!(!without_ns.contains(banned), "{banned} in the page");
        }
        assert!(page.contains("Regional-DR &lt;script&gt;"), "text is escaped");
        assert!(!page.contains("Regional-DR <script>"));
        assert_eq!(page.matches("<svg class=chart").count(), 1);
        for part in ["class=fault", "class=acks", "class=snap ", "class=snap-done", "class=lost", "class=surviving", "class=rto"] {
            assert!(page.contains(part), "{part} missing");
        }
        assert!(page.contains("lost records: 91–100"));
        assert!(page.contains("2 scenarios skipped: needs Metro-DR"), "skipped summed up once per reason");
        assert!(page.contains("powerLoss (site a)"));
        assert!(page.contains("300 / 8020 ms"));
    }

    /// The lost band sits over the lost records only: a chart whose action lost nothing has none.
    #[test]
    fn nothing_lost_draws_no_lost_band() {
        let mut s = summary("passed");
        s["scenarios"][0]["actions"][0]["lost"] = json!([]);
        s["scenarios"][0]["actions"][0]["newestSurviving"] = json!(100);
        let page = render_run(&s, &BTreeMap::from([("vm0".to_string(), history())]));
        assert!(!page.contains("class=lost"));
        assert!(page.contains("newest surviving #100"));
    }

    #[test]
    fn a_failed_scenario_shows_its_reason() {
        let page = render_run(&summary("failed"), &BTreeMap::new());
        assert!(page.contains("<span class=why>lost 10 records</span>"));
        assert!(page.contains("<span class=\"failed\">failed</span>"));
        // without its history the chart is still drawn (empty), never a broken page
        assert_eq!(page.matches("<svg class=chart").count(), 1);
    }

    /// A recorded lab run (a Regional-DR failover that lost its tail within the bound, recorded with its
    /// faults' proofs): one chart with every part, the lost range the summary names, the faults' windows
    /// and what showed each in effect and gone, the rounds; and its Jepsen history agrees with the summary
    /// on what survived.
    #[test]
    fn a_recorded_lab_failover_renders_whole() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report/lab-failover");
        let summary: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
        let events: Vec<Value> = std::fs::read_to_string(dir.join("history-vm0.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let page = render_run(&summary, &BTreeMap::from([("vm0".to_string(), events.clone())]));
        assert_eq!(page.matches("<svg class=chart").count(), 1);
        for part in ["class=fault", "class=acks", "class=snap ", "class=snap-done", "class=lost", "class=surviving", "class=rto"] {
            assert!(page.contains(part), "{part} missing");
        }
        let a = &summary["scenarios"][0]["actions"][0];
        let lost = &a["lost"][0];
        assert!(page.contains(&format!("lost records: {}–{}", lost[0], lost[1])), "the summary's lost range");
        assert!(page.contains(&format!("newest surviving #{}", a["newestSurviving"])));
        assert!(page.contains("powerLoss (site a)") && page.contains("isolate (site a)"));
        assert!(page.contains("in effect (no process left on site a; a connection from site b to site a&#39;s monitor: refused"), "the power loss's proof");
        assert!(page.contains("gone (4 process(es) run on site a"), "its recovery's proof");
        // the read after the failover holds the newest surviving record and none of the lost ones
        let edn = crate::jepsen::history(&events);
        let read = edn.lines().find(|l| l.contains(":type :ok, :f :read")).expect("a read");
        let newest = a["newestSurviving"].as_u64().unwrap();
        assert!(read.contains(&format!(" {newest}]")), "{}", &read[..200.min(read.len())]);
        assert!(!read.contains(&format!(" {}]", lost[0])), "a lost record in the read");
        assert!(edn.lines().any(|l| l.contains(":type :info, :f :add")), "the write in flight at the power loss");
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(10.0));
        assert_eq!(percentile(&v, 0.95), Some(19.0));
        assert_eq!(percentile(&v, 1.0), Some(20.0));
        assert_eq!(percentile(&[3.0], 0.95), Some(3.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
