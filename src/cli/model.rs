//! `plateau model` and `plateau rules`: the capacity model and the rule files on their own.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};

use super::UsageError;
use crate::report::terminal;

/// `plateau model`. All rates are MB/s (10^6 bytes a second).
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
            return Err(
                UsageError("rates must be non-negative numbers of MB/s, and --ingress-mbps above 0".into()).into()
            );
        }
        if self.rf == 0 || self.brokers == 0 || self.rf > self.brokers {
            return Err(UsageError(format!(
                "--rf {} needs at least that many --brokers (got {}), and both above 0",
                self.rf, self.brokers
            ))
            .into());
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
        Ok((workload, crate::model::Capacities { link_mbps, disk_mbps: self.disk_mbps, ..Default::default() }))
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
        /// Directory with signals.toml and the rule files [default: the built-in rules].
        dir: Option<PathBuf>,
    },
    /// Write the built-in rules (signals.toml and the rule files) into DIR for editing;
    /// `--rules DIR` then uses them.
    Write {
        /// An empty or new directory.
        dir: PathBuf,
    },
    /// Time the engine on synthetic evidence (the benchmark).
    #[command(hide = true)]
    Bench {
        /// Directory with signals.toml and the rule files [default: the built-in rules].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Series in the evidence.
        #[arg(long, default_value_t = 10_000)]
        series: usize,
        /// Points per series.
        #[arg(long, default_value_t = 3_600)]
        points: usize,
    },
}

/// Checks the rule files (exit 2 on any error), writes the built-in ones out, or times the
/// engine.
pub fn run_rules(args: RulesArgs) -> ExitCode {
    match args.command {
        RulesCommand::Write { dir } => match crate::rules::RuleSet::write_built_in(&dir) {
            Ok(paths) => {
                print!("{}", terminal::rules_written(&paths));
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::from(2)
            }
        },
        RulesCommand::Check { dir } => match loaded(dir.as_deref()) {
            Ok((set, place)) => {
                print!("{}", terminal::rules_checked(&place, set.catalog.len(), set.rules.len()));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        RulesCommand::Bench { dir, series, points } => match loaded(dir.as_deref()) {
            Ok((set, _)) => {
                let evidence = crate::rules::bench::synthetic_evidence(&set, series, points);
                let started = Instant::now();
                let verdict = crate::rules::evaluate(&set, &evidence, (0, u64::MAX), true);
                let took = started.elapsed();
                print!("{}", terminal::rules_bench(set.rules.len(), evidence.series.len(), points, took, &verdict));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    }
}

/// The rules in `dir` (the built-in ones without it) and where they came from, or every
/// error printed as FILE:LINE:COLUMN: MESSAGE and exit status 2.
fn loaded(dir: Option<&std::path::Path>) -> Result<(crate::rules::RuleSet, String), ExitCode> {
    let place = dir.map_or_else(|| "built-in rules".to_string(), |dir| dir.display().to_string());
    crate::rules::RuleSet::load(dir).map(|set| (set, place.clone())).map_err(|errors| {
        for error in &errors {
            eprintln!("{error}");
        }
        eprintln!("{} error(s) in {place}", errors.len());
        ExitCode::from(2)
    })
}

/// Prints the capacity model for the given workload and capacities.
pub fn run_model(args: ModelArgs) -> anyhow::Result<()> {
    let (workload, capacities) = args.inputs()?;
    let prediction = crate::model::predict(workload, capacities);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&prediction)?);
    } else if args.sankey {
        print!("{}", crate::model::sankey(&prediction));
    } else {
        print!("{}", terminal::model_table(&prediction));
    }
    Ok(())
}
