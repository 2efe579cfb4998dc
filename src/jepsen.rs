//! A VM's history in Jepsen's format (`history-<vm>.edn`): one operation map per line, as Jepsen's
//! `history.edn` holds them, checkable offline with Jepsen's set checker (`jepsen.checker/set-full`).
//!
//! - Each writer boot is a process (0, 1, ... in the order they first acknowledged). Every acknowledged
//!   record is an `:add` of `[boot seq]` (a resumed writer rewrites the sequence numbers it lost, so the
//!   boot makes each value unique): `:invoke` when the write began (the ack minus the guest's measured
//!   pwrite + fdatasync latency, never before the process's previous completion) and `:ok` when its ack
//!   reached the witness.
//! - A boot that ended without its STOP record (killed with its site, or halted) may have had one record in
//!   flight: an `:add` of its next record that completes `:info` (indeterminate: may or may not be on disk,
//!   never counted as lost).
//! - Each verify scan (the disk as a new boot found it, after a DR action) is a `:read` by its own process
//!   whose value is the set of `[boot seq]` on the disk.
//! - Faults are `:nemesis` operations: `:info :start` when the fault was in effect, `:info :stop` when it
//!   was undone, the fault as a map.
//!
//! `:time` is nanoseconds on the witness clock (from the harness's start), `:index` the line's order.
//! Pure: from the history file's events as JSON values.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A string as an EDN string literal.
fn edn_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// camelCase to an EDN keyword (`powerLoss` -> `:power-loss`).
fn keyword(s: &str) -> String {
    let mut o = String::from(":");
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            o.push('-');
            o.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() || c == '-' {
            o.push(c);
        } else {
            o.push('-');
        }
    }
    o
}

/// A JSON value as EDN (objects become maps with keyword keys).
fn edn(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => edn_str(s),
        Value::Array(a) => format!("[{}]", a.iter().map(edn).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            format!(
                "{{{}}}",
                o.iter()
                    .map(|(k, v)| format!("{} {}", keyword(k), if k == "kind" { v.as_str().map(keyword).unwrap_or_else(|| edn(v)) } else { edn(v) }))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

/// The 16-hex-digit tag of a boot id (how the disk names the writer of a record).
fn tag(boot: &str) -> String {
    boot.get(..16).unwrap_or(boot).to_string()
}

struct Op {
    time_ns: u64,
    kind: &'static str,
    f: &'static str,
    process: String,
    value: String,
}

/// The EDN history of one VM from its history file's events (in file order).
pub fn history(events: &[Value]) -> String {
    let ns = |e: &Value| (e["tMs"].as_f64().unwrap_or(0.0) * 1e6).round().max(0.0) as u64;
    let mut process: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_done: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_seq: BTreeMap<String, u64> = BTreeMap::new();
    let mut stopped: BTreeMap<String, bool> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut ops: Vec<Op> = vec![];
    let mut readers = 0usize;
    // a boot that ends without its STOP record may have had its next record in flight
    let in_flight = |boot: &str, at: u64, process: &BTreeMap<String, usize>, last_seq: &BTreeMap<String, u64>, ops: &mut Vec<Op>| {
        if let (Some(p), Some(seq)) = (process.get(boot), last_seq.get(boot)) {
            let value = format!("[{} {}]", edn_str(&tag(boot)), seq + 1);
            ops.push(Op { time_ns: at, kind: ":invoke", f: ":add", process: p.to_string(), value: value.clone() });
            ops.push(Op { time_ns: at, kind: ":info", f: ":add", process: p.to_string(), value });
        }
    };
    for e in events {
        let t = ns(e);
        match e["event"].as_str().unwrap_or("") {
            "ack" => {
                let boot = e["boot"].as_str().unwrap_or("").to_string();
                let n = process.len();
                let p = *process.entry(boot.clone()).or_insert(n);
                let seq = e["seq"].as_u64().unwrap_or(0);
                let lat = e["latUs"].as_u64().unwrap_or(0) * 1000;
                let began = t.saturating_sub(lat).max(last_done.get(&boot).copied().unwrap_or(0));
                let value = format!("[{} {seq}]", edn_str(&tag(&boot)));
                ops.push(Op { time_ns: began, kind: ":invoke", f: ":add", process: p.to_string(), value: value.clone() });
                ops.push(Op { time_ns: t, kind: ":ok", f: ":add", process: p.to_string(), value });
                last_done.insert(boot.clone(), t);
                last_seq.insert(boot.clone(), seq);
                current = Some(boot);
            }
            "stop-record" => {
                // the graceful shutdown's STOP record: written durably and acknowledged
                if let Some(boot) = current.clone() {
                    let seq = e["seq"].as_u64().unwrap_or(0);
                    let p = process[&boot];
                    let value = format!("[{} {seq}]", edn_str(&tag(&boot)));
                    let began = last_done.get(&boot).copied().unwrap_or(t).min(t);
                    ops.push(Op { time_ns: began, kind: ":invoke", f: ":add", process: p.to_string(), value: value.clone() });
                    ops.push(Op { time_ns: t, kind: ":ok", f: ":add", process: p.to_string(), value });
                    stopped.insert(boot, true);
                }
            }
            "probe-up" | "probe-gone" | "fault" => {
                // the writer so far is over (a new boot, its probe gone, its site lost): in flight unless stopped
                let ends = e["event"] != "fault" || e["fault"]["kind"].as_str().is_some_and(|k| k == "powerLoss" || k == "nodePowerLoss");
                if ends {
                    if let Some(boot) = current.take() {
                        if !stopped.get(&boot).copied().unwrap_or(false) {
                            in_flight(&boot, t, &process, &last_seq, &mut ops);
                        }
                    }
                }
                if e["event"] == "fault" {
                    ops.push(Op { time_ns: t, kind: ":info", f: ":start", process: ":nemesis".into(), value: edn(&e["fault"]) });
                }
            }
            "recovered" => ops.push(Op { time_ns: t, kind: ":info", f: ":stop", process: ":nemesis".into(), value: edn(&e["fault"]) }),
            "scan" => {
                let mut elems = vec![];
                for r in e["surviving"].as_array().into_iter().flatten() {
                    let (Some(a), Some(b)) = (r[0].as_u64(), r[1].as_u64()) else { continue };
                    let boot = edn_str(r[2].as_str().unwrap_or(""));
                    for seq in a..=b {
                        elems.push(format!("[{boot} {seq}]"));
                    }
                }
                let p = (1000 + readers).to_string();
                readers += 1;
                ops.push(Op { time_ns: t, kind: ":invoke", f: ":read", process: p.clone(), value: "nil".into() });
                ops.push(Op { time_ns: t, kind: ":ok", f: ":read", process: p, value: format!("#{{{}}}", elems.join(" ")) });
            }
            _ => {}
        }
    }
    // stable by time: an invoke back-dated by its latency sits before the completions that came meanwhile
    ops.sort_by_key(|o| o.time_ns);
    let mut out = String::new();
    for (i, o) in ops.iter().enumerate() {
        let _ = writeln!(out, "{{:index {i}, :type {}, :f {}, :process {}, :time {}, :value {}}}", o.kind, o.f, o.process, o.time_ns, o.value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: Value) -> Value {
        v
    }

    /// Acks become invoke/ok pairs, a crash leaves one :info write, faults are nemesis ops, a scan is a read
    /// of the records by their writer; the lines are ordered by time and indexed.
    #[test]
    fn a_failover_history_in_jepsen_terms() {
        let b1 = "00000000000000b1ffff";
        let events = vec![
            ev(json!({"event": "probe-up", "boot": b1, "tMs": 1.0})),
            ev(json!({"event": "ack", "boot": b1, "seq": 1, "latUs": 500, "tMs": 10.0})),
            ev(json!({"event": "ack", "boot": b1, "seq": 2, "latUs": 500, "tMs": 30.0})),
            ev(json!({"event": "fault", "fault": {"kind": "powerLoss", "site": "a"}, "tMs": 40.0})),
            ev(json!({"event": "scan", "surviving": [[1, 1, "00000000000000b1"]], "tMs": 90.0})),
            ev(json!({"event": "recovered", "fault": {"kind": "powerLoss", "site": "a"}, "tMs": 100.0})),
        ];
        let h = history(&events);
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines.len(), 10, "{h}");
        assert_eq!(lines[0], "{:index 0, :type :invoke, :f :add, :process 0, :time 9500000, :value [\"00000000000000b1\" 1]}");
        assert_eq!(lines[1], "{:index 1, :type :ok, :f :add, :process 0, :time 10000000, :value [\"00000000000000b1\" 1]}");
        // the third write was in flight at the power loss: indeterminate
        assert!(lines.iter().any(|l| l.contains(":type :info, :f :add, :process 0, :time 40000000, :value [\"00000000000000b1\" 3]")), "{h}");
        assert!(lines.iter().any(|l| l.contains(":type :info, :f :start, :process :nemesis, :time 40000000, :value {:kind :power-loss, :site \"a\"}")), "{h}");
        assert!(lines.iter().any(|l| l.contains(":type :ok, :f :read, :process 1000, :time 90000000, :value #{[\"00000000000000b1\" 1]}")), "{h}");
        assert!(lines.last().unwrap().contains(":f :stop"));
        for (i, l) in lines.iter().enumerate() {
            assert!(l.starts_with(&format!("{{:index {i}, ")), "{l}");
        }
    }

    /// A graceful stop leaves its STOP record as an ok write and nothing in flight.
    #[test]
    fn a_graceful_stop_leaves_nothing_in_flight() {
        let b = "00000000000000c2";
        let events = vec![
            json!({"event": "ack", "boot": b, "seq": 1, "latUs": 100, "tMs": 10.0}),
            json!({"event": "stop-record", "seq": 2, "tMs": 20.0}),
            json!({"event": "probe-gone", "tMs": 25.0}),
        ];
        let h = history(&events);
        assert!(!h.contains(":type :info"), "{h}");
        assert!(h.contains(":type :ok, :f :add, :process 0, :time 20000000, :value [\"00000000000000c2\" 2]"), "{h}");
    }

    #[test]
    fn keywords_and_strings() {
        assert_eq!(keyword("powerLoss"), ":power-loss");
        assert_eq!(edn_str("a\"b\\"), "\"a\\\"b\\\\\"");
        assert_eq!(edn(&json!({"kind": "partition", "a": "x", "n": 2})), "{:a \"x\", :kind :partition, :n 2}");
    }
}
