//! inferload: an open-loop load tester for Open Inference Protocol (KServe V2) services.
//!
//! The binary in `main.rs` only parses the command line and maps outcomes to exit codes; every
//! part of a run lives in the modules below, in the order a run uses them.

pub mod cli;
pub mod commands;
pub mod engine;
pub mod gate;
pub mod metrics;
pub mod protocol;
pub mod redact;
pub mod regress;
pub mod report;
pub mod scenario;
pub mod schedule;
pub mod serve;
pub mod stats;
pub mod sweep;
pub mod timer;
pub mod transport;
