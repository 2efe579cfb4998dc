//! What the drill is doing and waiting for, for the person watching: the phase (the lab coming up, a VM
//! booting, records written, a DR action's segment), how long it has lasted, and what comes next with its
//! budget from the environment file (the key that would change it). A reporter on the run's event stream:
//! on a terminal one live line (indicatif), otherwise a plain line per phase (CI logs stay readable).
//!
//! The state is pure (`Progress::apply`, `Progress::line`); the reporter only draws it.

use crate::config::{Budget, Budgets};
use crate::events::{Bus, Event, Stamped};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a DR action waits for after `segment`, and the environment file's budget that bounds it. Pure.
pub fn next_after(action: &str, segment: &str) -> Option<(&'static str, Budget)> {
    Some(match (action, segment) {
        ("relocate", "requested") => ("the VM's graceful stop", Budget::GracefulStop),
        ("relocate", "vm stopped") => ("the demotion", Budget::Promote),
        ("relocate", "demoted") => ("the sync barrier (the demotion snapshot on the peer)", Budget::SyncBarrier),
        ("relocate", "synced") => ("the promote", Budget::Promote),
        ("failover", "fault" | "failover requested" | "fenced" | "storage fenced") => ("the forced promote", Budget::Promote),
        (_, "promoted" | "storage serves") => ("the VM to boot on the new primary", Budget::Boot),
        (_, "vm booted") => ("crash recovery (the scan of the disk)", Budget::Boot),
        (_, "recovered") => ("the first new acknowledged write", Budget::Boot),
        ("repair", "site back" | "resync requested" | "unfenced") => ("the resync (the returned site's copy clean again)", Budget::Resync),
        _ => return None,
    })
}

/// The watcher's view of the run.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// What is going on (one phrase).
    pub phase: String,
    /// When it began, ms on the witness clock.
    pub since_ms: f64,
    /// What comes next, and the budget bounding it (its key and length).
    pub waiting: Option<(String, crate::wait::Deadline)>,
    /// Records acknowledged per VM (its current writer).
    pub acked: BTreeMap<String, u64>,
}

impl Progress {
    /// Takes one event in; true when the phase changed (a plain reporter prints a line then).
    pub fn apply(&mut self, s: &Stamped, budgets: &Budgets) -> bool {
        let mut phase = |p: String, waiting: Option<(&str, Budget)>| {
            self.phase = p;
            self.since_ms = s.t_ms;
            self.waiting = waiting.map(|(what, b)| (what.to_string(), budgets.deadline(b)));
            true
        };
        match &s.event {
            Event::BootRequested { vm, site, mode } => {
                phase(format!("VM {vm} booting on site {site} ({mode})"), Some(("its probe to say hello", Budget::Boot)))
            }
            Event::ProbeUp { vm, .. } => {
                self.acked.insert(vm.clone(), 0);
                phase(format!("VM {vm} up, writing"), None)
            }
            Event::Ack { vm, seq, .. } => {
                self.acked.insert(vm.clone(), *seq);
                false
            }
            Event::Dr { vm, action, segment } => phase(format!("{action} of {vm}: {segment}"), next_after(action, segment)),
            Event::Fault { fault, .. } => phase(format!("fault in effect: {fault}"), None),
            Event::Recovered { fault, .. } => phase(format!("recovered: {fault}"), None),
            Event::Note { text } if text.starts_with("bringing up") => phase(text.trim_end_matches(" ...").to_string(), Some(("the environment", Budget::Up))),
            _ => false,
        }
    }

    /// One line: `[12.3s] failover of vm0: promoted; waiting for the VM to boot ... (budget boot 60s) · vm0 1234 acked`.
    pub fn line(&self, now_ms: f64) -> String {
        format!("[{:.1}s] {}", ((now_ms - self.since_ms) / 1e3).max(0.0), self.describe())
    }

    /// The phase, what it waits for with its budget, and the records acknowledged so far.
    pub fn describe(&self) -> String {
        let mut l = self.phase.clone();
        if let Some((what, d)) = &self.waiting {
            let key = d.key.unwrap_or_default().trim_start_matches("budgets.");
            l.push_str(&format!("; waiting for {what} (budget {key} {})", crate::units::Dur(d.after)));
        }
        if !self.acked.is_empty() {
            let acked: Vec<String> = self.acked.iter().take(4).map(|(vm, n)| format!("{vm} {n} acked")).collect();
            l.push_str(&format!(" · {}", acked.join(", ")));
            if self.acked.len() > 4 {
                l.push_str(&format!(" (+{} VMs)", self.acked.len() - 4));
            }
        }
        l
    }
}

/// The console reporter: the run's notes, indented under the step lines, and the progress: a live line on
/// a terminal, a plain line per phase otherwise.
pub fn console(bus: &Bus, budgets: Budgets) {
    use std::io::IsTerminal as _;
    let state = Arc::new(Mutex::new(Progress::default()));
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()));
        bar.enable_steady_tick(Duration::from_millis(500));
        let (st, b2) = (state.clone(), bar.clone());
        bus.observe(Arc::new(move |s: &Stamped| {
            if let Event::Note { text } = &s.event {
                b2.println(format!("      {text}"));
            }
            let mut p = st.lock().unwrap_or_else(|e| e.into_inner());
            p.apply(s, &budgets);
            b2.set_message(p.line(s.t_ms));
        }));
        // the elapsed time moves between events too
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                // the run is over once its event stream (holding the observer) is gone
                if Arc::strong_count(&st) <= 1 {
                    bar.finish_and_clear();
                    break;
                }
                let line = st.lock().unwrap_or_else(|e| e.into_inner()).line(crate::clock::Wt::now().ms());
                bar.set_message(line);
            }
        });
    } else {
        bus.observe(Arc::new(move |s: &Stamped| {
            if let Event::Note { text } = &s.event {
                println!("      {text}");
            }
            let mut p = state.lock().unwrap_or_else(|e| e.into_inner());
            let before = (p.since_ms, !p.phase.is_empty());
            if p.apply(s, &budgets) && matches!(s.event, Event::Dr { .. } | Event::BootRequested { .. }) {
                // how long the phase before took, then what comes now
                let took = if before.1 { format!(" (+{:.1}s)", (s.t_ms - before.0) / 1e3) } else { String::new() };
                println!("      progress{took}: {}", p.describe());
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::Fault;

    fn at(t_ms: f64, event: Event) -> Stamped {
        Stamped { t_ms, event }
    }

    #[test]
    fn the_phase_what_comes_next_and_its_budget() {
        let b = Budgets::default();
        let mut p = Progress::default();
        assert!(p.apply(&at(0.0, Event::BootRequested { vm: "vm0".into(), site: "a".into(), mode: "write".into() }), &b));
        assert!(p.line(1500.0).starts_with("[1.5s] VM vm0 booting on site a (write); waiting for its probe to say hello (budget boot "), "{}", p.line(1500.0));
        p.apply(&at(2000.0, Event::ProbeUp { vm: "vm0".into(), boot: "b".into() }), &b);
        assert!(!p.apply(&at(2100.0, Event::Ack { vm: "vm0".into(), boot: "b".into(), seq: 41, guest_wall_ns: 0, lat_us: 0 }), &b));
        assert!(p.apply(&at(9000.0, Event::Fault { fault: Fault::PowerLoss { site: "a".into() }, proof: vec![] }), &b));
        p.apply(&at(9100.0, Event::Dr { vm: "vm0".into(), action: "failover".into(), segment: "fenced".into() }), &b);
        let l = p.line(12_100.0);
        assert!(l.starts_with("[3.0s] failover of vm0: fenced; waiting for the forced promote (budget promote "), "{l}");
        assert!(l.ends_with(" · vm0 41 acked"), "{l}");
        p.apply(&at(13_000.0, Event::Dr { vm: "vm0".into(), action: "relocate".into(), segment: "demoted".into() }), &b);
        assert!(p.line(13_000.0).contains("the sync barrier (the demotion snapshot on the peer) (budget syncBarrier "), "{}", p.line(13_000.0));
        assert_eq!(next_after("failover", "serving"), None);
    }
}
