//! plateau: why did my Kafka ingestion throughput stop growing?
//!
//! The data flow, one module per stage: `sampler` and `probe` measure, `agent` serves
//! both over HTTP on each host, `report` formats results, and `cli` turns flags into
//! typed configurations. See ARCHITECTURE.md for the map and its invariants.

pub mod agent;
pub mod allow;
pub mod cancel;
pub mod cli;
pub mod controller;
pub mod diagnose;
pub mod evidence;
pub mod http_serve;
pub mod kafka;
pub mod latency;
pub mod model;
pub mod net;
pub mod plateau;
pub mod probe;
pub mod report;
pub mod rules;
pub mod sampler;
pub mod signals;
pub mod sla;
pub mod units;
pub mod verdict;
