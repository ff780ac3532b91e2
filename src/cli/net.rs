//! `plateau net`: TCP and UDP tests and the matrix between agents, iperf3-style.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::UsageError;
use crate::agent::read_token_file;
use crate::cancel::Cancel;
use crate::net::{self, NetCaps, NetTestConfig, Protocol, Target};
use crate::report::terminal;
use crate::units::{BitRate, ByteSize, Span};

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

/// Runs one network test, or the matrix between agents.
pub fn run_net(args: NetArgs) -> anyhow::Result<()> {
    match args.command {
        NetCommand::Tcp(args) => run_net_test(&args.common, args.common.config(Protocol::Tcp, None)?),
        NetCommand::Udp(args) => run_net_test(&args.common, args.common.config(Protocol::Udp, Some(args.rate))?),
        NetCommand::Matrix(args) => run_net_matrix(args),
    }
}

fn run_net_test(args: &NetCommonArgs, config: net::NetTestConfig) -> anyhow::Result<()> {
    let token = args.token()?;
    if token.is_none() && (matches!(args.target, net::Target::Agent(_)) || args.from.is_some()) {
        return Err(UsageError("talking to an agent needs its token: pass --token-file FILE".into()).into());
    }
    let endpoint = crate::agent::remote::endpoint_for(&args.target, &config, token.as_deref())?;
    let report = match &args.from {
        Some(from) => crate::agent::remote::run_from(from, &endpoint, &config, token.as_deref())?,
        None => {
            // The header waits for the first interval, so that a failed connection
            // prints only its error.
            let mut header = (!args.json).then(|| terminal::net_header(&args.target.to_string(), config.protocol));
            net::client::run_test(&endpoint, &config, &Cancel::new(), &mut |interval| {
                if args.json {
                    return;
                }
                if let Some(header) = header.take() {
                    println!("{header}");
                }
                print!("{}", terminal::net_interval(interval));
            })?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    if let Some(from) = &args.from {
        println!("{}", terminal::net_header(&format!("{} from {from}", args.target), config.protocol));
        for interval in &report.intervals {
            print!("{}", terminal::net_interval(interval));
        }
    }
    print!("{}", terminal::net_summary(&report));
    Ok(())
}

fn run_net_matrix(args: NetMatrixArgs) -> anyhow::Result<()> {
    if args.agents.len() < 2 {
        return Err(UsageError("--agents needs at least two agent URLs".into()).into());
    }
    let token = args.token_file.as_deref().map(crate::agent::read_token_file).transpose()?;
    let config = net::NetTestConfig { time_secs: args.time, parallel: args.parallel, ..net::NetTestConfig::tcp() };
    config.validate(&net::NetCaps::default())?;
    let report = crate::agent::remote::run_matrix(&args.agents, &config, args.sequential, token.as_deref());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", terminal::matrix_table(&report));
    }
    Ok(())
}
