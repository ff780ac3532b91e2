//! The command line: raw flags as clap parses them (`Cli`), then typed configurations
//! built from them (`AgentConfig`, `DiskConfig`, `SamplerConfig`), so that validation
//! happens in one place and the rest of the program never sees a raw string.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

use crate::agent::{AgentConfig, read_token_file};
use crate::net::{NetCaps, NetTestConfig, Protocol, Target};
use crate::probe::disk::{DiskConfig, FsyncMode};
use crate::sampler::{SamplerConfig, WatchTarget};
use crate::units::{BitRate, ByteSize, Span};

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
    /// TCP and UDP tests between hosts, iperf3-style, against agents or iperf3 servers.
    Net(NetArgs),
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
    /// Port for network test traffic, TCP and UDP (0 picks a free one).
    #[arg(long, default_value_t = 7071)]
    pub data_port: u16,
    /// Longest network test this agent serves or runs, in seconds.
    #[arg(long, default_value_t = NetCaps::default().max_time_secs)]
    pub max_net_time: u32,
    /// Highest UDP rate per stream this agent serves or sends.
    #[arg(long, default_value = "100G")]
    pub max_net_rate: BitRate,
}

impl AgentArgs {
    /// Validates the flags into a configuration.
    pub fn into_config(self) -> anyhow::Result<AgentConfig> {
        let token = self.token_file.as_deref().map(read_token_file).transpose()?;
        AgentConfig::check_auth(self.listen, token.as_deref(), self.no_auth)?;
        Ok(AgentConfig {
            listen: self.listen,
            token,
            allow: self.allow,
            sampler: sampler_config(self.interval, self.watch)?,
            max_disk_size: self.max_disk_size,
            data_port: self.data_port,
            net_caps: NetCaps {
                max_time_secs: self.max_net_time,
                max_rate_bits_per_sec: self.max_net_rate.0,
                ..NetCaps::default()
            },
        })
    }
}

/// `plateau net`.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// Which test.
    #[command(subcommand)]
    pub command: NetCommand,
}

/// The network tests.
#[derive(Debug, Subcommand)]
pub enum NetCommand {
    /// TCP throughput to TARGET, with retransmits, RTT and cwnd.
    Tcp(NetTcpArgs),
    /// UDP at a fixed offered rate to TARGET: loss, jitter, reordering.
    Udp(NetUdpArgs),
    /// TCP between every ordered pair of agents, in rounds of disjoint pairs.
    Matrix(NetMatrixArgs),
}

/// Flags every single network test takes.
#[derive(Debug, Args)]
pub struct NetCommonArgs {
    /// An agent's URL (http://HOST:PORT) or iperf3://HOST[:PORT] for a stock iperf3 server.
    pub target: Target,
    /// Seconds to measure.
    #[arg(long, short = 't', default_value_t = 10)]
    pub time: u32,
    /// Streams per direction.
    #[arg(long, short = 'P', default_value_t = 1)]
    pub parallel: u32,
    /// The target sends, this end receives.
    #[arg(long, short = 'R', conflicts_with = "bidir")]
    pub reverse: bool,
    /// Both directions at once.
    #[arg(long)]
    pub bidir: bool,
    /// Seconds at the start left out of the totals.
    #[arg(long, short = 'O', default_value_t = 0)]
    pub omit: u32,
    /// Bytes per write (TCP, default 128K) or datagram payload (UDP, default 1460).
    #[arg(long, short = 'l')]
    pub len: Option<ByteSize>,
    /// Seconds between interval reports.
    #[arg(long, short = 'i', default_value = "1")]
    pub interval: Span,
    /// Print one JSON object in iperf3's -J layout (plus a `plateau` object).
    #[arg(long, short = 'J')]
    pub json: bool,
    /// Run the test from this agent (http://HOST:PORT) instead of from here.
    #[arg(long)]
    pub from: Option<String>,
    /// File with the agents' bearer token (needed when TARGET or --from is an agent).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// `plateau net tcp`.
#[derive(Debug, Args)]
pub struct NetTcpArgs {
    /// The shared flags.
    #[command(flatten)]
    pub common: NetCommonArgs,
}

/// `plateau net udp`.
#[derive(Debug, Args)]
pub struct NetUdpArgs {
    /// The shared flags.
    #[command(flatten)]
    pub common: NetCommonArgs,
    /// Offered rate per stream in bits/s (K, M, G suffixes, as iperf3's -b).
    #[arg(long, short = 'b')]
    pub rate: BitRate,
}

impl NetCommonArgs {
    /// The test configuration for `protocol` (and `rate` for UDP), validated.
    pub fn config(&self, protocol: Protocol, rate: Option<BitRate>) -> anyhow::Result<NetTestConfig> {
        let base = match protocol {
            Protocol::Tcp => NetTestConfig::tcp(),
            Protocol::Udp => NetTestConfig::udp(rate.map(|r| r.0).unwrap_or(0)),
        };
        let config = NetTestConfig {
            time_secs: self.time,
            parallel: self.parallel,
            reverse: self.reverse,
            bidir: self.bidir,
            omit_secs: self.omit,
            len: self.len.map(|l| l.bytes().min(u32::MAX as u64) as u32).unwrap_or(base.len),
            interval: self.interval.0,
            ..base
        };
        config.validate(&NetCaps::default())?;
        Ok(config)
    }

    /// The token from `--token-file`, if given.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        self.token_file.as_deref().map(read_token_file).transpose()
    }
}

/// `plateau net matrix`.
#[derive(Debug, Args)]
pub struct NetMatrixArgs {
    /// The agents' URLs, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub agents: Vec<String>,
    /// Seconds per test.
    #[arg(long, short = 't', default_value_t = 5)]
    pub time: u32,
    /// Streams per test.
    #[arg(long, short = 'P', default_value_t = 1)]
    pub parallel: u32,
    /// One test at a time instead of rounds of disjoint pairs.
    #[arg(long)]
    pub sequential: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// File with the agents' bearer token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
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
    if interval.0 < std::time::Duration::from_millis(100) || interval.0 > std::time::Duration::from_secs(3600) {
        anyhow::bail!("--interval {interval} is out of range; use 100ms to 1h");
    }
    Ok(SamplerConfig { interval: interval.0, watch, ..SamplerConfig::default() })
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
        let cli =
            Cli::try_parse_from(["plateau", "disk", "--path", "/data", "--size", "64M", "--fsync", "end"]).unwrap();
        let Command::Disk(args) = cli.command else { panic!("parsed as another command") };
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
