//! The run's event stream. Everything the witness observes (boots, acks, scans, mirror snapshots, faults,
//! DR segments) is published here as it happens, stamped with the witness clock; reporters subscribe.
//! Today's subscriber is the per-VM history writer; evidence reports subscribe the same way. The stream
//! belongs to the run (`Bus`), handed to the environment when it comes up.

use crate::clock::Wt;
use crate::fault::Fault;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    BootRequested {
        vm: String,
        site: String,
        mode: String,
    },
    ProbeUp {
        vm: String,
        boot: String,
    },
    Ack {
        vm: String,
        boot: String,
        seq: u64,
        #[serde(rename = "guestWallNs")]
        guest_wall_ns: u64,
        #[serde(rename = "latUs")]
        lat_us: u64,
    },
    Scan {
        vm: String,
        #[serde(rename = "highestContiguous")]
        highest_contiguous: u64,
        ranges: usize,
        /// The records found on the disk: inclusive ranges, each with the tag of the writer boot that wrote
        /// it (16 hex digits, the start of its boot id): the reads of a Jepsen history.
        surviving: Vec<(u64, u64, String)>,
        corrupt: usize,
        stop: Option<u64>,
    },
    StopRecord {
        vm: String,
        seq: u64,
    },
    ProbeGone {
        vm: String,
    },
    MirrorSnapshot {
        vm: String,
        id: u64,
        site: String,
    },
    MirrorSnapshotComplete {
        vm: String,
        id: u64,
        site: String,
    },
    /// A fault in effect, with what showed it.
    Fault {
        fault: Fault,
        proof: Vec<String>,
    },
    /// A fault undone, with what showed it gone.
    Recovered {
        fault: Fault,
        proof: Vec<String>,
    },
    Dr {
        vm: String,
        action: String,
        segment: String,
    },
    /// The VM's part in the scenario is over (its history is complete).
    VmDone {
        vm: String,
    },
    /// A line for the person watching (what a step measured or did): the console reporter prints it;
    /// histories leave it out.
    Note {
        text: String,
    },
}

impl Event {
    pub fn vm(&self) -> Option<&str> {
        match self {
            Event::BootRequested { vm, .. }
            | Event::ProbeUp { vm, .. }
            | Event::Ack { vm, .. }
            | Event::Scan { vm, .. }
            | Event::StopRecord { vm, .. }
            | Event::ProbeGone { vm }
            | Event::MirrorSnapshot { vm, .. }
            | Event::MirrorSnapshotComplete { vm, .. }
            | Event::Dr { vm, .. }
            | Event::VmDone { vm } => Some(vm),
            Event::Fault { .. } | Event::Recovered { .. } | Event::Note { .. } => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Stamped {
    pub t_ms: f64,
    pub event: Event,
}

impl Stamped {
    /// One JSON object: the event's fields plus `tMs`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.event).unwrap_or_default();
        v["tMs"] = serde_json::json!(self.t_ms);
        v
    }
}

/// The run's event stream: cheap to clone into every task that observes something. Each run makes its
/// own; nothing is global.
/// A reporter that sees each event as it is published, on the publisher's thread (the console: its lines
/// keep their place among the step lines).
pub type Observer = Arc<dyn Fn(&Stamped) + Send + Sync>;

#[derive(Clone, Default)]
pub struct Bus {
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<Arc<Stamped>>>>>,
    observers: Arc<Mutex<Vec<Observer>>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bus")
    }
}

impl Bus {
    pub fn new() -> Bus {
        Bus::default()
    }

    /// Publishes an event stamped now. Without subscribers it costs a lock and nothing else.
    pub fn publish(&self, event: Event) {
        self.publish_at(Wt::now(), event)
    }

    /// Publishes an event that happened at `t` (witness clock).
    pub fn publish_at(&self, t: Wt, event: Event) {
        let observers: Vec<Observer> = self.observers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        if subs.is_empty() && observers.is_empty() {
            return;
        }
        let ev = Arc::new(Stamped { t_ms: (t.ms() * 1000.0).round() / 1000.0, event });
        subs.retain(|s| s.send(ev.clone()).is_ok());
        drop(subs);
        for o in &observers {
            o(&ev);
        }
    }

    /// A line for the person watching the run (see [`Event::Note`]).
    pub fn note(&self, text: impl Into<String>) {
        self.publish(Event::Note { text: text.into() })
    }

    /// Adds a reporter that sees every event as it is published.
    pub fn observe(&self, o: Observer) {
        self.observers.lock().unwrap_or_else(|e| e.into_inner()).push(o);
    }

    /// A new subscription: every event published from now on, in publication order, none dropped.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Arc<Stamped>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        rx
    }

    /// Ends every subscription (subscribers see the end of the stream).
    pub fn close(&self) {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Writes `history-<vm>.jsonl` per VM as events arrive. Fault events go to every VM still in play.
pub struct HistoryWriter {
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    bus: Bus,
}

pub fn history_path(dir: &Path, vm: &str) -> PathBuf {
    dir.join(format!("history-{vm}.jsonl"))
}

impl HistoryWriter {
    pub fn start(bus: &Bus, dir: &Path) -> HistoryWriter {
        let mut rx = bus.subscribe();
        let dir = dir.to_path_buf();
        let task = tokio::spawn(async move {
            // Files stay open to the end: a VM's late events (its probe noticed going away after the
            // scenario ended) still belong to its history. Faults go to the VMs still in play.
            let mut files: BTreeMap<String, std::io::BufWriter<std::fs::File>> = BTreeMap::new();
            let mut in_play: BTreeSet<String> = BTreeSet::new();
            while let Some(ev) = rx.recv().await {
                if matches!(ev.event, Event::Note { .. }) {
                    continue;
                }
                let line = ev.to_json().to_string();
                match ev.event.vm() {
                    Some(vm) => {
                        if !files.contains_key(vm) {
                            let f = std::fs::File::create(history_path(&dir, vm))?;
                            files.insert(vm.to_string(), std::io::BufWriter::new(f));
                            in_play.insert(vm.to_string());
                        }
                        let f = files.get_mut(vm).expect("inserted");
                        writeln!(f, "{line}")?;
                        if matches!(ev.event, Event::VmDone { .. }) {
                            f.flush()?;
                            in_play.remove(vm);
                        }
                    }
                    None => {
                        for vm in &in_play {
                            writeln!(files.get_mut(vm).expect("open"), "{line}")?;
                        }
                    }
                }
            }
            for f in files.values_mut() {
                f.flush()?;
            }
            Ok(())
        });
        HistoryWriter { task, bus: bus.clone() }
    }

    /// Ends the run's stream and flushes what is open.
    pub async fn finish(self) -> std::io::Result<()> {
        self.bus.close();
        self.task.await.map_err(std::io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn history_per_vm_with_faults_to_every_vm_in_play() {
        let dir = tempfile::tempdir().unwrap();
        let bus = Bus::new();
        let publish = |e| bus.publish(e);
        let w = HistoryWriter::start(&bus, dir.path());
        publish(Event::ProbeUp { vm: "vm0".into(), boot: "b0".into() });
        publish(Event::Ack { vm: "vm0".into(), boot: "b0".into(), seq: 1, guest_wall_ns: 7, lat_us: 1500 });
        publish(Event::ProbeUp { vm: "vm1".into(), boot: "b1".into() });
        publish(Event::VmDone { vm: "vm1".into() });
        publish(Event::Fault { fault: Fault::PowerLoss { site: "a".into() }, proof: vec![] });
        // a late event of a finished VM is appended, never starts its file over
        publish(Event::ProbeGone { vm: "vm1".into() });
        w.finish().await.unwrap();
        let read = |vm| std::fs::read_to_string(history_path(dir.path(), vm)).unwrap();
        let h0: Vec<serde_json::Value> = read("vm0").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(h0.len(), 3);
        assert_eq!(h0[1]["event"], "ack");
        assert_eq!(h0[1]["seq"], 1);
        assert_eq!(h0[2]["event"], "fault");
        assert_eq!(h0[2]["fault"]["kind"], "powerLoss");
        assert!(h0[0]["tMs"].is_number());
        // vm1 was done before the fault: its history does not get it, but keeps its late event
        let h1: Vec<serde_json::Value> = read("vm1").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(h1.iter().map(|e| e["event"].as_str().unwrap()).collect::<Vec<_>>(), ["probe-up", "vm-done", "probe-gone"]);
    }
}
