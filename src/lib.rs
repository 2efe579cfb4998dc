//! dr-drill: disaster-recovery drills for virtual machines, judged by an acknowledged-write oracle.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod drill;
pub mod env;
pub mod error;
pub mod events;
pub mod fault;
pub mod k8s;
pub mod lint;
pub mod oracle;
pub mod ports;
pub mod procs;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod session;
pub mod timeline;
pub mod topology;
pub mod units;
pub mod wait;

#[path = "../steps/mod.rs"]
pub mod steps;
