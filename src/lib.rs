//! dr-drill: disaster-recovery drills for virtual machines, judged by an acknowledged-write oracle.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dr;
pub mod env;
pub mod events;
pub mod fault;
pub mod lint;
pub mod oracle;
pub mod report;
pub mod runner;
pub mod units;

#[path = "../steps/mod.rs"]
pub mod steps;
