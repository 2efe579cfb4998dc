//! Step definitions: one module per domain concept. A step translates one sentence into one library call
//! and keeps per-scenario state in the World; the lab itself is shared by the run (see `runner`).

pub mod actions;
pub mod faults;
pub mod params;
pub mod readiness;
pub mod sites;
pub mod timing;
pub mod verdicts;
pub mod workload;
pub mod world;

pub use world::DrWorld;
