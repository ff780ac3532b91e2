//! `plateau controller` and `plateau export`: the web console and the configuration it
//! hands to Prometheus and Grafana.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::UsageError;
use crate::agent::read_token_file;
use crate::controller::{ControllerConfig, export};
use crate::units::Span;

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
    /// Rule directory [default: the rules built into plateau].
    #[arg(long)]
    pub rules: Option<PathBuf>,
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
        interval: Span,
    },
    /// A Grafana dashboard (JSON) over the agents' metrics.
    GrafanaDashboard,
}

impl ControllerArgs {
    /// The console's configuration, with the token files read.
    pub fn into_config(self) -> anyhow::Result<ControllerConfig> {
        let read =
            |path: &Option<PathBuf>| path.as_deref().map(read_token_file).transpose().map_err(UsageError::from_err);
        Ok(ControllerConfig {
            agent_token: read(&self.token_file)?,
            access_token: read(&self.access_token_file)?,
            listen: self.listen,
            generators: self.agents,
            brokers: self.brokers,
            consumers: self.consumers,
            prometheus: self.prometheus,
            bootstrap: self.bootstrap,
            topic: self.topic,
            reports: self.reports,
            rules: super::diagnose::load_rules(self.rules.as_deref())?,
        })
    }
}

/// Serves the console until Ctrl-C or SIGTERM.
pub fn run_controller(args: ControllerArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(crate::controller::serve(config, async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }))
}

/// Prints what was asked for.
pub fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    match args.what {
        ExportCommand::PrometheusConfig { agents, brokers, interval } => {
            print!("{}", export::prometheus_config(&agents, &brokers, interval.0).map_err(UsageError)?);
        }
        ExportCommand::GrafanaDashboard => print!("{}", export::GRAFANA_DASHBOARD),
    }
    Ok(())
}
