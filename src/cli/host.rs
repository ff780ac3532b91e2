//! `plateau agent`, `plateau disk` and `plateau sample`: the host's own instruments — the
//! probe daemon, the disk probe and the sampler.

use std::io::Write;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use ipnet::IpNet;

use super::UsageError;
use crate::agent::{AgentConfig, read_token_file};
use crate::cancel::Cancel;
use crate::net::NetCaps;
use crate::probe::ProbeOutput;
use crate::probe::disk::{DiskConfig, DiskProbe, FsyncMode};
use crate::report::terminal;
use crate::sampler::{Sampler, SamplerConfig, WatchTarget, run_paced};
use crate::units::{BitRate, ByteSize, Span};

/// The agent's default data port.
pub const DEFAULT_DATA_PORT: u16 = 7075;

/// `plateau agent`. Every flag may also come from the environment (`PLATEAU_LISTEN`,
/// `PLATEAU_ALLOW`, …: the packaged service reads `/etc/plateau/agent.env`); a flag wins.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Address to listen on for the HTTP API (port 0 picks a free port).
    #[arg(long, env = "PLATEAU_LISTEN", default_value = "0.0.0.0:7070")]
    pub listen: SocketAddr,
    /// File holding the bearer token that every POST must carry.
    #[arg(long, env = "PLATEAU_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Accept POSTs without a token; allowed only on a loopback address.
    #[arg(long)]
    pub no_auth: bool,
    /// Networks probe traffic may be sent to (CIDRs, comma-separated).
    #[arg(long, env = "PLATEAU_ALLOW", value_delimiter = ',', default_value = "127.0.0.0/8")]
    pub allow: Vec<IpNet>,
    /// Workload to follow: a pid, a process name, a cgroup path, `broker` (the Kafka broker
    /// on this host: the JVM running kafka.Kafka, else the process listening on port 9092;
    /// its cgroup, a systemd unit, a container or a pod, when it has one) or `host`
    /// (nothing but the host) [default: broker; the host alone when there is none].
    #[arg(long, env = "PLATEAU_WATCH")]
    pub watch: Option<WatchTarget>,
    /// Sampling interval.
    #[arg(long, env = "PLATEAU_INTERVAL", default_value = "1s")]
    pub interval: Span,
    /// Largest disk probe a request may ask for.
    #[arg(long, env = "PLATEAU_MAX_DISK_SIZE", default_value = "16G")]
    pub max_disk_size: ByteSize,
    /// The broker's log directory on this host: diagnose's disk probe writes there.
    #[arg(long, env = "PLATEAU_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
    /// Port for network test traffic, TCP and UDP (0 picks a free one). Not 7071 (where
    /// the JMX exporter often listens on brokers) nor 5201 (iperf3's).
    #[arg(long, env = "PLATEAU_DATA_PORT", default_value_t = DEFAULT_DATA_PORT)]
    pub data_port: u16,
    /// Longest network test this agent serves or runs, in seconds.
    #[arg(long, env = "PLATEAU_MAX_NET_TIME", default_value_t = NetCaps::default().max_time_secs)]
    pub max_net_time: u32,
    /// Highest UDP rate per stream this agent serves or sends.
    #[arg(long, env = "PLATEAU_MAX_NET_RATE", default_value = "100G")]
    pub max_net_rate: BitRate,
}

impl AgentArgs {
    /// Validates the flags into a configuration.
    pub fn into_config(self) -> anyhow::Result<AgentConfig> {
        let token = self.token_file.as_deref().map(read_token_file).transpose().map_err(UsageError::from_err)?;
        AgentConfig::check_auth(self.listen, token.as_deref(), self.no_auth).map_err(UsageError::from_err)?;
        Ok(AgentConfig {
            listen: self.listen,
            token,
            allow: self.allow,
            // Never the agent's own cgroup (its systemd unit would be read as the host):
            // the host's broker where it runs, else the host alone.
            sampler: sampler_config(self.interval, Some(self.watch.unwrap_or(WatchTarget::Broker)))?,
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
        return Err(UsageError(format!("--interval {interval} is out of range; use 100ms to 1h")).into());
    }
    Ok(SamplerConfig { interval: interval.0, watch, ..SamplerConfig::default() })
}

/// Serves the probe daemon until SIGTERM.
pub fn run_agent(args: AgentArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    // One thread for the API is plenty: the sampler and the probes have their own.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| {
            format!("could not listen on {}; pick another address or port with --listen", config.listen)
        })?;
        crate::agent::serve(config, listener).await
    });
    // Dropping a runtime waits for every blocking task; a probe that ignores its cancel
    // flag must not keep the agent alive after SIGTERM.
    runtime.shutdown_timeout(std::time::Duration::from_millis(300));
    served
}

/// Runs the disk probe once and prints its result.
pub fn run_disk(args: DiskArgs) -> anyhow::Result<()> {
    let probe = DiskProbe::new(args.config(), DiskProbe::MAX_SIZE)?;
    let result = probe.measure(&Cancel::new())?;
    if args.json {
        println!("{}", serde_json::to_string(&ProbeOutput::Disk(Box::new(result)))?);
    } else {
        print!("{}", terminal::disk_table(&result));
    }
    Ok(())
}

/// Prints host samples for the given duration.
pub fn run_sample(args: SampleArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let mut sampler = Sampler::new(&config);
    let started = Instant::now();
    let (_keep_open, stop) = std::sync::mpsc::channel();
    let mut failure = None;
    run_paced(config.interval, &stop, || {
        let (sample, problems) = sampler.step();
        for problem in problems {
            tracing::warn!("{problem}");
        }
        if let Some(sample) = sample {
            let text = if args.json {
                serde_json::to_string(&sample).map(|line| line + "\n").map_err(anyhow::Error::from)
            } else {
                Ok(terminal::sample_tables(&sample))
            };
            let mut stdout = std::io::stdout().lock();
            if let Err(err) =
                text.and_then(|text| Ok(stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush())?))
            {
                failure = Some(err);
                return ControlFlow::Break(());
            }
        }
        if started.elapsed() + config.interval / 2 >= args.duration.0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

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
