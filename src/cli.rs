//! The command line: raw flags as clap parses them (`Cli`), then typed configurations
//! built from them (`AgentConfig`, `DiskConfig`, `SamplerConfig`), so that validation
//! happens in one place and the rest of the program never sees a raw string.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

use crate::agent::{AgentConfig, read_token_file};
use crate::probe::disk::{DiskConfig, FsyncMode};
use crate::sampler::{SamplerConfig, WatchTarget};
use crate::units::{ByteSize, Span};

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
    /// Run everything side by side and name the bottleneck (not available yet).
    Diagnose(NotYet),
    /// Run the probe daemon on this host: sampler, /status, /metrics, /samples, probes.
    Agent(AgentArgs),
    /// TCP and UDP throughput between hosts, iperf3-style (not available yet).
    Net(NotYet),
    /// Disk probe: sequential append with fsync, then random 4 KiB reads.
    Disk(DiskArgs),
    /// Rate-controlled Kafka produce run (not available yet).
    Produce(NotYet),
    /// Sample CPU, disks, NICs, memory and PSI, like iostat/vmstat.
    Sample(SampleArgs),
    /// Re-render a report from evidence.json (not available yet).
    Report(NotYet),
    /// Validate rule files (not available yet).
    Rules(NotYet),
    /// The capacity model: predicted load and ceilings per resource (not available yet).
    Model(NotYet),
}

impl Command {
    /// The subcommand's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Diagnose(_) => "diagnose",
            Command::Agent(_) => "agent",
            Command::Net(_) => "net",
            Command::Disk(_) => "disk",
            Command::Produce(_) => "produce",
            Command::Sample(_) => "sample",
            Command::Report(_) => "report",
            Command::Rules(_) => "rules",
            Command::Model(_) => "model",
        }
    }
}

/// Arguments of a subcommand that is not built yet; accepted so the message is clear.
#[derive(Debug, Args)]
pub struct NotYet {
    /// Ignored.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
}

/// `plateau agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Address to listen on for the HTTP API (port 0 picks a free port).
    #[arg(long, default_value = "0.0.0.0:7070")]
    pub listen: SocketAddr,
    /// File holding the bearer token that every POST must carry.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Accept POSTs without a token; allowed only on a loopback address.
    #[arg(long)]
    pub no_auth: bool,
    /// Networks probe traffic may be sent to (CIDRs, comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.0/8")]
    pub allow: Vec<IpNet>,
    /// Workload to follow: a pid, a process name, or a cgroup path.
    #[arg(long)]
    pub watch: Option<WatchTarget>,
    /// Sampling interval.
    #[arg(long, default_value = "1s")]
    pub interval: Span,
    /// Largest disk probe a request may ask for.
    #[arg(long, default_value = "16G")]
    pub max_disk_size: ByteSize,
}

impl AgentArgs {
    /// Validates the flags into a configuration.
    pub fn into_config(self) -> anyhow::Result<AgentConfig> {
        let token = self
            .token_file
            .as_deref()
            .map(read_token_file)
            .transpose()?;
        AgentConfig::check_auth(self.listen, token.as_deref(), self.no_auth)?;
        Ok(AgentConfig {
            listen: self.listen,
            token,
            allow: self.allow,
            sampler: sampler_config(self.interval, self.watch)?,
            max_disk_size: self.max_disk_size,
        })
    }
}

/// `plateau disk`.
#[derive(Debug, Args)]
pub struct DiskArgs {
    /// Directory to write the probe file in (on the disk to measure).
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// Bytes to append.
    #[arg(long, default_value = "256M")]
    pub size: ByteSize,
    /// Bytes per write.
    #[arg(long, default_value = "1M")]
    pub block: ByteSize,
    /// When to flush: after every block, once at the end, or never.
    #[arg(long, value_enum, default_value_t = FsyncMode::Every)]
    pub fsync: FsyncMode,
    /// Bypass the page cache (O_DIRECT).
    #[arg(long)]
    pub direct: bool,
    /// Random 4 KiB reads after the append (the read phase also stops after 10 s).
    #[arg(long, default_value_t = 10_000)]
    pub reads: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl DiskArgs {
    /// The probe configuration.
    pub fn config(&self) -> DiskConfig {
        DiskConfig {
            path: self.path.clone(),
            size: self.size,
            block: self.block,
            fsync: self.fsync,
            direct: self.direct,
            reads: self.reads,
        }
    }
}

/// `plateau sample`.
#[derive(Debug, Args)]
pub struct SampleArgs {
    /// Time between samples.
    #[arg(long, default_value = "1s")]
    pub interval: Span,
    /// How long to sample.
    #[arg(long, default_value = "10s")]
    pub duration: Span,
    /// Workload to follow: a pid, a process name, or a cgroup path.
    #[arg(long)]
    pub watch: Option<WatchTarget>,
    /// Print one JSON object per interval instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl SampleArgs {
    /// The sampler configuration.
    pub fn config(&self) -> anyhow::Result<SamplerConfig> {
        sampler_config(self.interval, self.watch.clone())
    }
}

fn sampler_config(interval: Span, watch: Option<WatchTarget>) -> anyhow::Result<SamplerConfig> {
    if interval.0 < std::time::Duration::from_millis(100)
        || interval.0 > std::time::Duration::from_secs(3600)
    {
        anyhow::bail!("--interval {interval} is out of range; use 100ms to 1h");
    }
    Ok(SamplerConfig {
        interval: interval.0,
        watch,
        ..SamplerConfig::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn disk_flags_become_a_config() {
        let cli = Cli::try_parse_from([
            "plateau", "disk", "--path", "/data", "--size", "64M", "--fsync", "end",
        ])
        .unwrap();
        let Command::Disk(args) = cli.command else {
            panic!("parsed as another command")
        };
        let config = args.config();
        assert_eq!(config.size, ByteSize(64 << 20));
        assert_eq!(config.fsync, FsyncMode::End);
        assert_eq!(config.block, ByteSize(1 << 20));
    }

    #[test]
    fn an_absurd_interval_is_refused() {
        let err = sampler_config("1ms".parse().unwrap(), None).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
}
