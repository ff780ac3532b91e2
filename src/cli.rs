//! The command line: raw flags as clap parses them (`Cli`), then typed configurations
//! built from them (`AgentConfig`, `DiskConfig`, `SamplerConfig`), so that validation
//! happens in one place and the rest of the program never sees a raw string.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use serde::Serialize;

use crate::agent::{AgentConfig, read_token_file};
use crate::kafka::consume::ConsumeConfig;
use crate::kafka::consume::sink::SinkConfig;
use crate::kafka::{EventSpec, KeyMode, ProduceConfig, ProducerSettings, Ramp, RateSpec};
use crate::net::{NetCaps, NetTestConfig, Protocol, Target};
use crate::probe::disk::{DiskConfig, FsyncMode};
use crate::sampler::{SamplerConfig, WatchTarget};
use crate::units::{BitRate, ByteSize, Span};

/// The agent's default data port.
pub const DEFAULT_DATA_PORT: u16 = 7075;

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
    /// Run everything side by side and name the bottleneck; writes a findings report.
    Diagnose(Box<DiagnoseArgs>),
    /// Seed 002's scenarios: a diagnosis and a backlog catch-up for every cell of a grid
    /// of message sizes and partition counts; one report with seed 002's template.
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
    /// optionally seed 000's PostgreSQL sink.
    Consume(Box<ConsumeArgs>),
    /// Sample CPU, disks, NICs, memory and PSI, like iostat/vmstat.
    Sample(SampleArgs),
    /// Re-render findings.md and timeline.svg from a diagnosis's evidence.json (or a
    /// sweep's report from its sweep.json).
    Report(ReportArgs),
    /// Check the rule files and the signal catalog.
    Rules(RulesArgs),
    /// The capacity model (seed 003): load per resource and the ingress each allows.
    Model(ModelArgs),
    /// Seed 000's web console: start, stop, rate and ramp the generators, live charts.
    Controller(ControllerArgs),
    /// Print a Prometheus scrape configuration or a Grafana dashboard for the agents.
    Export(ExportArgs),
}

impl Command {
    /// The subcommand's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
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

/// `plateau diagnose`.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Plan file (TOML, see probes/*.toml).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// The plan's keys as flags, over the plan file's.
    #[command(flatten)]
    pub flags: PlanFlags,
    /// The agents' token and the rules.
    #[command(flatten)]
    pub run: RunFlags,
    /// Report directory (default: ./plateau-report-<unix seconds>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the verdict as JSON on stdout instead of the terminal summary.
    #[arg(long)]
    pub json: bool,
}

/// What a run that drives agents and judges needs besides its plan: diagnose's and
/// sweep's.
#[derive(Debug, Args)]
pub struct RunFlags {
    /// File holding the agents' bearer token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Rule directory.
    #[arg(long, default_value = "rules")]
    pub rules: PathBuf,
}

/// The keys of a diagnose plan (`diagnose::DiagnosePlan`) as flags. Each field is named
/// as the plan's key, so that the flags given become a TOML table merged over the plan
/// file's by `DiagnosePlan::resolve`; flags not given are left out.
#[derive(Debug, Args, Serialize)]
pub struct PlanFlags {
    /// Agent on a generator host (repeatable).
    #[arg(long = "generator")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generators: Vec<String>,
    /// Agent on a broker host (repeatable).
    #[arg(long = "broker")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<String>,
    /// Agent on a consumer host: runs the consumer group's members through the ramp and
    /// is sampled (repeatable).
    #[arg(long = "consumer")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<String>,
    /// Agent on a database host of the consumers' sink, sampled over the run (repeatable).
    #[arg(long = "database")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<String>,
    /// Consumer group members on each consumer agent [default: 1].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_members: Option<usize>,
    /// The consumers write every event to PostgreSQL: a libpq connection string.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// The sink's table [default: events].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink_table: Option<String>,
    /// Synchronous work per event on each consumer member, microseconds.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_us: Option<u64>,
    /// Seed 004's SLA: report the highest rate whose mean end-to-end latency stays under this.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_e2e_ms: Option<f64>,
    /// The same with the 99th percentile end-to-end latency.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_p99_ms: Option<f64>,
    /// Bootstrap servers.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<String>,
    /// Topic to produce to.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Create the topic with this many partitions when it does not exist.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    /// Replication factor (for creating the topic and for the capacity model).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<u32>,
    /// The rate search over all generators, START:MAX[:HOLD_S] msg/s: grow the target
    /// while the pipeline keeps up, then narrow down on the knee [default: 20000:200000:4].
    #[arg(long, conflicts_with = "ramp")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// A fixed ramp instead of the search, START:STEP:EVERY_S:MAX msg/s over all generators
    /// (seed 000's: 20000:20000:10:200000).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp: Option<String>,
    /// Simulated devices per generator.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<u64>,
    /// Pad events to this size.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
    /// Prometheus to query for the run's window.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<String>,
    /// Broker JMX endpoint, a jmx_exporter URL or `jolokia+URL` (repeatable).
    #[arg(long)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jmx: Vec<String>,
    /// librdkafka property for the produce run (repeatable), e.g. -X compression.type=zstd.
    #[arg(short = 'X', value_parser = crate::kafka::parse_property)]
    #[serde(skip)]
    pub property: Vec<(String, String)>,
    /// Skip the disk probes (they write to the brokers' disks).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skip_disk: bool,
    /// Skip the network matrix.
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skip_net: bool,
    /// Bytes each broker's disk probe appends.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_size: Option<ByteSize>,
    /// Directory each broker's disk probe writes in.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_path: Option<String>,
    /// Seconds per network test.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_time: Option<u32>,
    /// Parallel streams per TCP test of the network matrix [default: 4].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_parallel: Option<u32>,
}

impl DiagnoseArgs {
    /// The plan: the file's, with the flags applied over it, validated.
    pub fn plan(&self) -> anyhow::Result<crate::diagnose::DiagnosePlan> {
        crate::diagnose::DiagnosePlan::resolve(self.plan.as_deref(), self.flags.table()?)
    }
}

impl PlanFlags {
    /// The flags given, as plan keys (a TOML table to merge over the plan file's).
    pub fn table(&self) -> anyhow::Result<toml::Table> {
        let mut flags = toml::Table::try_from(self).context("flags as plan keys")?;
        if !self.property.is_empty() {
            let extra = self.property.iter().map(|(k, v)| toml::Value::from(vec![k.as_str(), v.as_str()]));
            let mut producer = toml::Table::new();
            producer.insert("extra".into(), toml::Value::Array(extra.collect()));
            flags.insert("producer".into(), toml::Value::Table(producer));
        }
        Ok(flags)
    }
}

/// `plateau sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Plan file (TOML): a diagnose plan with a `[sweep]` table (see probes/sweep-*.toml).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// The diagnose plan's keys as flags, over the plan file's; `--topic` is the prefix of
    /// the cells' topics.
    #[command(flatten)]
    pub flags: PlanFlags,
    /// The grid's keys as flags, over the plan file's `[sweep]`.
    #[command(flatten)]
    pub grid: SweepFlags,
    /// The agents' token and the rules.
    #[command(flatten)]
    pub run: RunFlags,
    /// Report directory (default: ./plateau-sweep-<unix seconds>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the cells as JSON on stdout instead of the comparison table.
    #[arg(long)]
    pub json: bool,
}

impl SweepArgs {
    /// The sweep: the file's plan and grid, with the flags over them, checked.
    pub fn plan(&self) -> anyhow::Result<crate::diagnose::sweep::SweepPlan> {
        let grid = toml::Table::try_from(&self.grid).context("flags as grid keys")?;
        crate::diagnose::sweep::SweepPlan::resolve(self.plan.as_deref(), self.flags.table()?, grid)
    }
}

/// The keys of a sweep's grid (`diagnose::sweep::SweepGrid`) as flags.
#[derive(Debug, Args, Serialize)]
pub struct SweepFlags {
    /// Event sizes of the cells, bytes, comma-separated [default: 1000,10000,100000].
    #[arg(long = "sizes", value_delimiter = ',')]
    #[serde(rename = "sizes", skip_serializing_if = "Vec::is_empty")]
    pub sizes: Vec<u64>,
    /// Partition counts of the cells' topics, comma-separated [default: 1,3,6,12].
    #[arg(long = "partition-counts", value_delimiter = ',')]
    #[serde(rename = "partitions", skip_serializing_if = "Vec::is_empty")]
    pub partition_counts: Vec<u32>,
    /// acks settings to sweep, comma-separated [default: the plan's].
    #[arg(long = "sweep-acks", value_delimiter = ',')]
    #[serde(rename = "acks", skip_serializing_if = "Vec::is_empty")]
    pub acks: Vec<String>,
    /// Compression codecs to sweep, comma-separated [default: the plan's].
    #[arg(long = "sweep-compression", value_delimiter = ',')]
    #[serde(rename = "compression", skip_serializing_if = "Vec::is_empty")]
    pub compression: Vec<String>,
    /// Generator counts to sweep (the plan's first N), comma-separated [default: all].
    #[arg(long = "producer-counts", value_delimiter = ',')]
    #[serde(rename = "producers", skip_serializing_if = "Vec::is_empty")]
    pub producers: Vec<usize>,
    /// Seconds of each cell's sustained rate produced as its catch-up backlog (0: none)
    /// [default: 10].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_up_secs: Option<u32>,
    /// The longest a catch-up read may take, seconds [default: 120].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_up_limit_secs: Option<u32>,
    /// Keep the cells' topics (deleted once measured by default).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_topics: bool,
}

/// `plateau report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The evidence.json a diagnosis wrote, or the sweep.json a sweep wrote.
    pub evidence: PathBuf,
    /// Directory to write findings.md and timeline.svg to (default: beside evidence.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Judge a diagnosis's saved evidence again with the rule files in this directory (a
    /// rule edited or added since) and write the new verdict beside the rendered report
    /// (evidence.json in --out, which must then differ from the evidence's directory).
    #[arg(long)]
    pub rules: Option<PathBuf>,
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
    /// Workload to follow: a pid, a process name, or a cgroup path [default: the agent's own
    /// cgroup, when it runs in one (a container, a pod, a systemd service)].
    #[arg(long)]
    pub watch: Option<WatchTarget>,
    /// Sampling interval.
    #[arg(long, default_value = "1s")]
    pub interval: Span,
    /// Largest disk probe a request may ask for.
    #[arg(long, default_value = "16G")]
    pub max_disk_size: ByteSize,
    /// The broker's log directory on this host: diagnose's disk probe writes there.
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// Port for network test traffic, TCP and UDP (0 picks a free one). Not 7071 (where
    /// the JMX exporter often listens on brokers) nor 5201 (iperf3's).
    #[arg(long, default_value_t = DEFAULT_DATA_PORT)]
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
            // An agent in a container (a cgroup of its own: a pod, a systemd service, the
            // testbed's hosts) watches that container unless told to watch something else.
            sampler: sampler_config(
                self.interval,
                self.watch.or_else(|| crate::sampler::raw::own_cgroup().map(WatchTarget::Cgroup)),
            )?,
            max_disk_size: self.max_disk_size,
            data_port: self.data_port,
            net_caps: NetCaps {
                max_time_secs: self.max_net_time,
                max_rate_bits_per_sec: self.max_net_rate.0,
                ..NetCaps::default()
            },
            log_dir: self.log_dir,
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

/// `plateau model`. All rates are MB/s, as seed 003 counts them.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Producer ingress, MB/s.
    #[arg(long)]
    pub ingress_mbps: f64,
    /// Replication factor.
    #[arg(long, default_value_t = 3)]
    pub rf: u32,
    /// Brokers.
    #[arg(long, default_value_t = 3)]
    pub brokers: u32,
    /// Real-time consumers, MB/s.
    #[arg(long, default_value_t = 0.0)]
    pub realtime_mbps: f64,
    /// Delayed consumers, MB/s.
    #[arg(long, default_value_t = 0.0)]
    pub delayed_mbps: f64,
    /// Remote (tiered storage) consumers, MB/s.
    #[arg(long, default_value_t = 0.0)]
    pub remote_mbps: f64,
    /// Tiered storage for all topics.
    #[arg(long)]
    pub tiered: bool,
    /// Network link per broker, MB/s each way (a 1 Gbit/s link is 125).
    #[arg(long, conflicts_with = "link_mbit")]
    pub link_mbps: Option<f64>,
    /// Network link per broker in Mbit/s, as iperf3 reports it.
    #[arg(long)]
    pub link_mbit: Option<f64>,
    /// Storage throughput per broker, MB/s.
    #[arg(long)]
    pub disk_mbps: Option<f64>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print SankeyMATIC text.
    #[arg(long)]
    pub sankey: bool,
}

impl ModelArgs {
    /// The workload and capacities, validated.
    pub fn inputs(&self) -> anyhow::Result<(crate::model::Workload, crate::model::Capacities)> {
        let rates = [self.ingress_mbps, self.realtime_mbps, self.delayed_mbps, self.remote_mbps];
        if rates.iter().any(|r| !r.is_finite() || *r < 0.0) || self.ingress_mbps <= 0.0 {
            anyhow::bail!("rates must be non-negative numbers of MB/s, and --ingress-mbps above 0");
        }
        if self.rf == 0 || self.brokers == 0 || self.rf > self.brokers {
            anyhow::bail!(
                "--rf {} needs at least that many --brokers (got {}), and both above 0",
                self.rf,
                self.brokers
            );
        }
        let workload = crate::model::Workload {
            ingress_mbps: self.ingress_mbps,
            replication_factor: self.rf,
            brokers: self.brokers,
            realtime_mbps: self.realtime_mbps,
            delayed_mbps: self.delayed_mbps,
            remote_mbps: self.remote_mbps,
            tiered: self.tiered,
        };
        let link_mbps = self.link_mbps.or(self.link_mbit.map(|mbit| mbit / 8.0));
        Ok((workload, crate::model::Capacities { link_mbps, disk_mbps: self.disk_mbps }))
    }
}

/// `plateau rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// What to do with the rules.
    #[command(subcommand)]
    pub command: RulesCommand,
}

/// The rules subcommands.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load and type-check every rule file and the signal catalog; errors as
    /// FILE:LINE:COLUMN: MESSAGE, exit status 2 on any.
    Check {
        /// Directory with signals.toml and the rule files.
        #[arg(default_value = "rules")]
        dir: PathBuf,
    },
    /// Time the engine on synthetic evidence (the benchmark).
    #[command(hide = true)]
    Bench {
        /// Directory with signals.toml and the rule files.
        #[arg(long, default_value = "rules")]
        dir: PathBuf,
        /// Series in the evidence.
        #[arg(long, default_value_t = 10_000)]
        series: usize,
        /// Points per series.
        #[arg(long, default_value_t = 3_600)]
        points: usize,
    },
}

/// `plateau produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Bootstrap servers, HOST:PORT[,HOST:PORT...].
    #[arg(long)]
    pub bootstrap: String,
    /// Topic to produce to (it must exist).
    #[arg(long)]
    pub topic: String,
    /// Fixed target rate, messages per second over all workers.
    #[arg(long, conflicts_with = "ramp", required_unless_present_any = ["ramp", "print_events"], allow_negative_numbers = true, value_parser = parse_msg_rate)]
    pub rate: Option<u64>,
    /// Ramp START:STEP:EVERY_S:MAX (msg/s), stopping at the plateau.
    #[arg(long)]
    pub ramp: Option<Ramp>,
    /// Seconds of a fixed-rate run.
    #[arg(long, default_value = "10")]
    pub time: Span,
    /// Simulated devices.
    #[arg(long, default_value_t = 10_000)]
    pub devices: u64,
    /// Device id prefix.
    #[arg(long, default_value = "sensor-")]
    pub device_prefix: String,
    /// Minimum digits of device ids.
    #[arg(long, default_value_t = 4)]
    pub device_width: usize,
    /// The first device's number (give generators of one run distinct devices).
    #[arg(long, default_value_t = 0)]
    pub first_device: u64,
    /// Pad every event to this many bytes.
    #[arg(long, default_value = "0")]
    pub size: ByteSize,
    /// Record keys.
    #[arg(long, value_enum, default_value_t = KeyMode::Device)]
    pub key: KeyMode,
    /// Producing threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// acks: all, 1 or 0.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// compression.type: lz4, zstd, gzip, snappy or none.
    #[arg(long, default_value = "lz4")]
    pub compression: String,
    /// linger.ms.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u32,
    /// batch.num.messages.
    #[arg(long, default_value_t = 10_000)]
    pub batch_messages: u32,
    /// Any librdkafka property, NAME=VALUE (security.protocol, sasl.*, ssl.*, ...).
    #[arg(short = 'X', value_parser = crate::kafka::parse_property)]
    pub property: Vec<(String, String)>,
    /// Read the topic back and count lost, duplicated and reordered events.
    #[arg(long)]
    pub validate: bool,
    /// With --ramp: also report the highest rate whose delivery p99 stays under this.
    #[arg(long)]
    pub sla_p99_ms: Option<f64>,
    /// Seconds between progress lines.
    #[arg(long, default_value = "5")]
    pub interval: Span,
    /// Temperature range LOW:HIGH.
    #[arg(long, default_value = "10:35", value_parser = parse_range)]
    pub temperature: (f64, f64),
    /// Humidity range LOW:HIGH.
    #[arg(long, default_value = "25:80", value_parser = parse_range)]
    pub humidity: (f64, f64),
    /// Pressure range LOW:HIGH.
    #[arg(long, default_value = "986:1050", value_parser = parse_range)]
    pub pressure: (f64, f64),
    /// Probability of status OK.
    #[arg(long, default_value_t = 0.99)]
    pub status_ok: f64,
    /// Probability of status WARN (ERROR gets the rest).
    #[arg(long, default_value_t = 0.0067)]
    pub status_warn: f64,
    /// Print one JSON object instead of progress lines and a table.
    #[arg(long)]
    pub json: bool,
    /// Only generate events, as fast as possible for --time on --workers threads, and
    /// report how many per second (is the generator host fast enough?).
    #[arg(long)]
    pub dry_run: bool,
    /// Only print N generated events, one JSON document per line, and exit: real events
    /// for other tools (e.g. a --payload-file for Kafka's ProducerPerformance).
    #[arg(long, value_name = "N", conflicts_with = "dry_run")]
    pub print_events: Option<u64>,
    /// Run on this agent (http://HOST:PORT) instead of here.
    #[arg(long)]
    pub on: Option<String>,
    /// File with the agent's bearer token (with --on).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

fn parse_msg_rate(text: &str) -> Result<u64, String> {
    match text.trim().parse::<i64>() {
        Ok(rate) if rate > 0 => Ok(rate as u64),
        _ => Err(format!("'{text}' is not a rate; give a positive number of messages per second")),
    }
}

fn parse_range(text: &str) -> Result<(f64, f64), String> {
    let (low, high) = text.split_once(':').ok_or_else(|| format!("'{text}' is not LOW:HIGH"))?;
    let number = |s: &str| s.trim().parse::<f64>().map_err(|_| format!("'{text}' is not LOW:HIGH"));
    Ok((number(low)?, number(high)?))
}

impl ProduceArgs {
    /// The run configuration.
    pub fn config(&self) -> ProduceConfig {
        let rate = match (self.rate, self.ramp) {
            (_, Some(ramp)) => RateSpec::Ramp(ramp),
            (Some(rate), None) => RateSpec::Fixed(rate),
            (None, None) => RateSpec::Fixed(0),
        };
        ProduceConfig {
            bootstrap: self.bootstrap.clone(),
            topic: self.topic.clone(),
            rate,
            time: self.time.0,
            events: EventSpec {
                devices: self.devices,
                device_prefix: self.device_prefix.clone(),
                device_width: self.device_width,
                temperature: self.temperature,
                humidity: self.humidity,
                pressure: self.pressure,
                status_ok: self.status_ok,
                status_warn: self.status_warn,
                size: self.size.bytes() as usize,
                first_device: self.first_device,
            },
            key: self.key,
            workers: self.workers,
            producer: ProducerSettings {
                acks: self.acks.clone(),
                compression: self.compression.clone(),
                linger_ms: self.linger_ms,
                batch_messages: self.batch_messages,
                extra: self.property.clone(),
            },
            validate: self.validate,
            sla_p99_ms: self.sla_p99_ms,
            interval: self.interval.0,
            stop_after_missed_steps: 2,
        }
    }
}

/// `plateau consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Bootstrap servers, HOST:PORT[,HOST:PORT...].
    #[arg(long)]
    pub bootstrap: String,
    /// Topic to consume (it must exist).
    #[arg(long)]
    pub topic: String,
    /// Consumer group; a fresh one, starting at the topic's end, when absent. An existing
    /// group continues from its committed offsets.
    #[arg(long)]
    pub group: Option<String>,
    /// Members of the group (threads, each with its own connection).
    #[arg(long, default_value_t = 1)]
    pub members: usize,
    /// How long to consume (until Ctrl-C when absent).
    #[arg(long)]
    pub time: Option<Span>,
    /// Device id prefix of the events, for per-device validation.
    #[arg(long, default_value = "sensor-")]
    pub device_prefix: String,
    /// Write every event to PostgreSQL: a libpq connection string
    /// (postgres://USER:PASSWORD@HOST:PORT/DB).
    #[arg(long)]
    pub sink: Option<String>,
    /// The sink's table (created when missing, seed 000's columns).
    #[arg(long, default_value = "events")]
    pub sink_table: String,
    /// Most records handled as one batch (max.poll.records).
    #[arg(long, default_value_t = 500)]
    pub max_batch: usize,
    /// Synchronous work per event on the polling thread, microseconds.
    #[arg(long, default_value_t = 0)]
    pub process_us: u64,
    /// Any librdkafka property, NAME=VALUE (security.protocol, sasl.*, ssl.*, ...).
    #[arg(short = 'X', value_parser = crate::kafka::parse_property)]
    pub property: Vec<(String, String)>,
    /// Seconds between progress lines.
    #[arg(long, default_value = "5")]
    pub interval: Span,
    /// Where a fresh group starts: latest (the topic's end), earliest (its first offset:
    /// a catch-up run), or the first record at an RFC 3339 time or Unix milliseconds.
    #[arg(long, default_value = "latest")]
    pub from: crate::kafka::consume::StartAt,
    /// Stop once the backlog the topic held at the start is read, and say how long it took
    /// (with --from earliest: a backlog catch-up).
    #[arg(long)]
    pub until_drained: bool,
    /// Print one JSON object instead of progress lines and a table.
    #[arg(long)]
    pub json: bool,
}

impl ConsumeArgs {
    /// The run configuration.
    pub fn config(&self) -> ConsumeConfig {
        ConsumeConfig {
            bootstrap: self.bootstrap.clone(),
            topic: self.topic.clone(),
            group: self.group.clone(),
            members: self.members,
            time_secs: self.time.map(|span| span.0),
            device_prefix: self.device_prefix.clone(),
            sink: self.sink.as_ref().map(|url| SinkConfig {
                url: url.clone(),
                table: self.sink_table.clone(),
                addresses: Vec::new(),
            }),
            max_batch: self.max_batch,
            process_us: self.process_us,
            interval: self.interval.0,
            extra: self.property.clone(),
            start_at: self.from,
            until_drained: self.until_drained,
        }
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

/// `plateau controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Generator agents, comma-separated (`http://HOST:7070`).
    #[arg(long, value_delimiter = ',', required = true)]
    pub agents: Vec<String>,
    /// Agents on broker hosts, watched for CPU, disk and NIC (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub brokers: Vec<String>,
    /// Agents on consumer hosts: their consume runs' rate, lag and end-to-end latency
    /// (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub consumers: Vec<String>,
    /// Address to serve the console on; anything but loopback needs --access-token-file.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// File holding the agents' bearer token (the browser never sees it).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// File holding the token people log in to the console with.
    #[arg(long)]
    pub access_token_file: Option<PathBuf>,
    /// Prometheus to read the cluster's throughput from as well (`http://HOST:9090`).
    #[arg(long)]
    pub prometheus: Option<String>,
    /// The form's starting `bootstrap.servers`.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// The form's starting topic.
    #[arg(long, default_value = "iot-load")]
    pub topic: String,
    /// Directory the "Diagnose now" reports are written under.
    #[arg(long, default_value = "plateau-controller-reports")]
    pub reports: PathBuf,
    /// Directory of rule files.
    #[arg(long, default_value = "rules")]
    pub rules: PathBuf,
}

/// `plateau export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to print.
    #[command(subcommand)]
    pub what: ExportCommand,
}

/// What `plateau export` prints.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// A Prometheus scrape configuration for the agents' /metrics.
    PrometheusConfig {
        /// Generator agents (comma-separated URLs).
        #[arg(long, value_delimiter = ',', required = true)]
        agents: Vec<String>,
        /// Agents on broker hosts (comma-separated URLs).
        #[arg(long, value_delimiter = ',')]
        brokers: Vec<String>,
        /// Scrape interval.
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// A Grafana dashboard (JSON) over the agents' metrics.
    GrafanaDashboard,
}
