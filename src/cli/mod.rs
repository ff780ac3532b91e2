//! The command line: raw flags as clap parses them (`Cli`, `Command` and each family's
//! `*Args`), turned into typed configurations in the family's file (`host`: agent, disk,
//! sample; `net`; `kafka`: produce, consume; `diagnose`: diagnose, sweep, report;
//! `model`: model, rules; `controller`: controller, export), so that validation happens
//! here and the rest of the program never sees a raw string. Each family's `run_*`
//! functions run its commands; `main.rs` only dispatches to them.

use clap::{Parser, Subcommand};

pub mod controller;
pub mod diagnose;
pub mod host;
pub mod kafka;
pub mod model;
pub mod net;

pub use controller::{ControllerArgs, ExportArgs, ExportCommand};
pub use diagnose::{DiagnoseArgs, InitArgs, PlanFlags, ReportArgs, RunFlags, SweepArgs, SweepFlags};
pub use host::{AgentArgs, DEFAULT_DATA_PORT, DiskArgs, SampleArgs};
pub use kafka::{ConsumeArgs, ProduceArgs};
pub use model::{ModelArgs, RulesArgs, RulesCommand};
pub use net::{NetArgs, NetCommand, NetCommonArgs, NetMatrixArgs, NetTcpArgs, NetUdpArgs};

/// Why did my Kafka ingestion throughput stop growing? Measures the network, disks,
/// CPUs and a rate-controlled produce run side by side and names the bottleneck.
#[derive(Debug, Parser)]
#[command(name = "plateau", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a cluster's metadata, find and check its hosts' agents, write a plan to edit.
    Init(Box<InitArgs>),
    /// Run everything side by side and name the bottleneck; writes a findings report.
    Diagnose(Box<DiagnoseArgs>),
    /// A diagnosis and a backlog catch-up for every cell of a grid of message sizes and
    /// partition counts (acks, compression, producers); one report comparing the cells.
    Sweep(Box<SweepArgs>),
    /// Run the probe daemon on this host: sampler, /status, /metrics, /samples, probes.
    Agent(AgentArgs),
    /// TCP and UDP tests between hosts, iperf3-style, against agents or iperf3 servers.
    Net(NetArgs),
    /// Disk probe: sequential append with fsync, then random 4 KiB reads.
    Disk(DiskArgs),
    /// Rate-controlled Kafka produce run of telemetry events, fixed or ramped to the plateau.
    Produce(Box<ProduceArgs>),
    /// Consumer group past Kafka: consumed rate, end-to-end latency, lag, validation, and
    /// optionally a PostgreSQL sink.
    Consume(Box<ConsumeArgs>),
    /// Sample CPU, disks, NICs, memory and PSI, like iostat/vmstat.
    Sample(SampleArgs),
    /// Re-render findings.md and timeline.svg from a diagnosis's evidence.json (or a
    /// sweep's report from its sweep.json).
    Report(ReportArgs),
    /// Check the rule files and the signal catalog.
    Rules(RulesArgs),
    /// The capacity model: the load ingress puts on each resource and the ingress each allows.
    Model(ModelArgs),
    /// The web console: start, stop, rate and ramp the generators, live charts, Diagnose now.
    Controller(ControllerArgs),
    /// Print a Prometheus scrape configuration or a Grafana dashboard for the agents.
    Export(ExportArgs),
}

impl Command {
    /// The subcommand's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Init(_) => "init",
            Command::Diagnose(_) => "diagnose",
            Command::Sweep(_) => "sweep",
            Command::Agent(_) => "agent",
            Command::Net(_) => "net",
            Command::Disk(_) => "disk",
            Command::Produce(_) => "produce",
            Command::Consume(_) => "consume",
            Command::Sample(_) => "sample",
            Command::Report(_) => "report",
            Command::Rules(_) => "rules",
            Command::Model(_) => "model",
            Command::Controller(_) => "controller",
            Command::Export(_) => "export",
        }
    }
}

/// Input the user can fix — a flag, a file it names — said in one line (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    /// Turns any error about the input into a usage error, keeping its whole text.
    pub fn from_err(err: impl std::fmt::Display) -> anyhow::Error {
        UsageError(format!("{err:#}")).into()
    }
}

/// A diagnosis or sweep that wrote its report but had nothing to judge: the cluster, the
/// topic, every generator or the agents' token stood in the way (exit status 3).
#[derive(Debug, thiserror::Error)]
#[error("nothing to judge: {reason}; the report of what was found is in {}", out.display())]
pub struct NothingToJudge {
    /// What stood in the way.
    pub reason: String,
    /// The report directory.
    pub out: std::path::PathBuf,
}

/// The exit status for a command's error: 2 for input the user can fix (a flag, a plan,
/// a rule file), 3 for a diagnosis or sweep with nothing to judge (its report written), 1
/// for a failure while running.
pub fn exit_status(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<NothingToJudge>().is_some() {
        return 3;
    }
    use crate::kafka::consume::ConsumeError;
    use crate::net::NetError;
    use crate::probe::ProbeError;
    let usage_error = err.downcast_ref::<UsageError>().is_some()
        || err.downcast_ref::<ProbeError>().is_some_and(|e| matches!(e, ProbeError::InvalidInput(_)))
        || err.downcast_ref::<NetError>().is_some_and(|e| matches!(e, NetError::InvalidInput(_)))
        || err.downcast_ref::<crate::diagnose::PlanError>().is_some()
        || err.downcast_ref::<ConsumeError>().is_some_and(|e| matches!(e, ConsumeError::InvalidInput(_)));
    if usage_error { 2 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
