//! plateau's integration tests, in one binary: parsers on fixture text, the agent as a
//! real process on loopback (scraped by a real Prometheus), and root-only tests with
//! real cgroups, gated by `PLATEAU_ROOT_TESTS=1` (set by `.ci/run`).

mod agent;
mod architecture;
mod consume;
mod controller;
mod diagnose;
mod docs;
mod fixtures;
mod hostile;
mod init;
mod kafka;
mod model;
mod net;
mod netns;
mod produce;
mod root;
mod rules;
mod support;
mod sweep;
