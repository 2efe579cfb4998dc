//! Step definitions: one module per domain concept. A step translates one sentence into one library call
//! on the scenario the World holds (`scenario::Scenario`); the environment is shared by the run (see `session`).

pub mod actions;
pub mod faults;
pub mod fleet;
pub mod network;
pub mod params;
pub mod readiness;
pub mod recovery;
pub mod sites;
pub mod stretch;
pub mod timing;
pub mod verdicts;
pub mod workload;
pub mod world;

pub use world::DrWorld;
