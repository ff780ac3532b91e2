//! Everything that formats results for people: terminal tables now, the markdown
//! findings report later. Probes and the sampler never format output themselves.

pub mod chart;
pub mod findings;
pub mod terminal;
