//! Everything that formats results for people (and the brief summary for machines):
//! terminal tables, the diagnose progress lines, the markdown findings report and its
//! timeline. Probes, the sampler, evidence and the rules never format output themselves.

pub mod chart;
pub mod findings;
pub mod progress;
pub mod summary;
pub mod sweep;
pub mod terminal;
