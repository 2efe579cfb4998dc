//! dr-drill: disaster-recovery drills for virtual machines, judged by an acknowledged-write oracle.

pub mod campaign;
pub mod capability;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod drill;
pub mod env;
pub mod error;
pub mod events;
pub mod evidence;
pub mod fault;
#[doc(hidden)]
pub mod fuzz;
pub mod golden;
pub mod html;
pub mod jepsen;
pub mod k8s;
pub mod lint;
pub mod oracle;
pub mod outcome;
pub mod ports;
pub mod procs;
pub mod progress;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod session;
pub mod stretch;
pub mod text;
pub mod timeline;
pub mod topology;
pub mod units;
pub mod wait;

#[path = "../steps/mod.rs"]
pub mod steps;

/// The core is pure and layered: each core module imports only core modules below it, never the drill
/// engine, the environments, the steps or the commands above them.
#[cfg(test)]
mod layering {
    const CORE: &[(&str, u8)] = &[
        ("units", 0),
        ("clock", 0),
        ("wait", 0),
        ("text", 0),
        ("error", 1),
        ("fault", 1),
        ("golden", 0),
        ("html", 1),
        ("jepsen", 0),
        ("campaign", 2),
        ("timeline", 1),
        ("oracle", 1),
        ("stretch", 1),
        ("config", 2),
        ("outcome", 2),
        ("topology", 3),
        ("report", 4),
    ];

    #[test]
    fn core_modules_import_nothing_above_them() {
        let re = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
        let level = |m: &str| CORE.iter().find(|(n, _)| *n == m).map(|(_, l)| *l);
        for (m, l) in CORE {
            let src = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(format!("{m}.rs"))).unwrap();
            for c in re.captures_iter(&src) {
                let used = &c[1];
                match level(used) {
                    Some(u) if u < *l => {}
                    _ => panic!("core module {m} (level {l}) imports crate::{used}, which is not a core module below it"),
                }
            }
        }
    }
}
