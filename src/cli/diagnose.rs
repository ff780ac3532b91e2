//! `plateau diagnose`, `plateau sweep` and `plateau report`: the runs that drive agents and
//! judge, and the re-rendering (or re-judging) of what they saved.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::cancel::Cancel;
use crate::units::ByteSize;

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
    /// Rule directory (signals.toml and the rule files) [default: the rules built into
    /// plateau; `plateau rules write DIR` writes them out for editing].
    #[arg(long)]
    pub rules: Option<PathBuf>,
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
    /// An end-to-end latency SLA: report the highest rate whose mean latency stays under this.
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
    /// (e.g. 20000:20000:10:200000).
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

/// `plateau init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Bootstrap servers of the cluster.
    #[arg(long)]
    pub bootstrap: String,
    /// The topic the diagnosis will produce to (created by diagnose if it does not exist).
    #[arg(long, default_value = "telemetry")]
    pub topic: String,
    /// An agent on any host (repeatable): matched to the cluster's brokers by address;
    /// one on no broker's host is a generator.
    #[arg(long = "agent")]
    pub agents: Vec<String>,
    /// An agent on a producer host (repeatable).
    #[arg(long = "generator")]
    pub generators: Vec<String>,
    /// An agent on a consumer host (repeatable).
    #[arg(long = "consumer")]
    pub consumers: Vec<String>,
    /// An agent on the sink's database host (repeatable).
    #[arg(long = "database")]
    pub databases: Vec<String>,
    /// The port the agents listen on at the brokers' addresses.
    #[arg(long, default_value_t = 7070)]
    pub agent_port: u16,
    /// The Prometheus that scrapes the cluster.
    #[arg(long)]
    pub prometheus: Option<String>,
    /// librdkafka property to read the cluster with (repeatable), e.g. -X
    /// security.protocol=SASL_SSL. Secrets are used, never written to the plan.
    #[arg(short = 'X', value_parser = crate::kafka::parse_property)]
    pub property: Vec<(String, String)>,
    /// File holding the agents' bearer token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Where to write the plan.
    #[arg(long, default_value = "plateau-plan.toml")]
    pub out: PathBuf,
    /// Replace the file at --out if there is one.
    #[arg(long)]
    pub force: bool,
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

/// The rules and the agents' token a diagnosis or a sweep needs, or what to fix (exit 2).
fn rules_and_token(run: &crate::cli::RunFlags, command: &str) -> anyhow::Result<(crate::rules::RuleSet, String)> {
    let rule_set = load_rules(run.rules.as_deref())?;
    Ok((rule_set, agents_token(run.token_file.as_deref(), command)?))
}

/// The agents' token from `--token-file`, or what to fix (exit 2): a command that talks to
/// agents needs it.
fn agents_token(file: Option<&std::path::Path>, command: &str) -> anyhow::Result<String> {
    use crate::diagnose::PlanError;
    Ok(file
        .map(crate::agent::read_token_file)
        .transpose()
        .map_err(|err| PlanError(format!("{err:#}")))?
        .ok_or_else(|| PlanError(format!("{command} talks to agents and needs their token: pass --token-file FILE")))?)
}

/// The rule files in `dir` (the built-in ones without it), or every error in them with
/// its file, line and column (exit 2).
pub(crate) fn load_rules(dir: Option<&std::path::Path>) -> anyhow::Result<crate::rules::RuleSet> {
    crate::rules::RuleSet::load(dir).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let place = dir.map_or_else(|| "the built-in rules".to_string(), |dir| dir.display().to_string());
        crate::diagnose::PlanError(format!("{} error(s) in {place}:\n{}", errors.len(), lines.join("\n"))).into()
    })
}

/// The command line as typed, quoted where it has spaces, for reports and plans: secrets
/// (`-X sasl.password=…`, a password in `--sink`) are shown as `***`.
fn command_line() -> String {
    redacted(std::env::args()).join(" ")
}

/// The arguments with their secrets replaced, each quoted where it has spaces.
fn redacted(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut after_sink = false;
    args.into_iter()
        .map(|arg| {
            let (flag, rest) = match arg.strip_prefix("-X") {
                Some(rest) => ("-X", rest),
                None => ("", arg.as_str()),
            };
            let arg = match (rest.split_once('='), arg.strip_prefix("--sink=")) {
                (Some((name, _)), _) if crate::kafka::properties::is_secret(name) => format!("{flag}{name}=***"),
                (_, Some(sink)) => format!("--sink={}", crate::kafka::consume::sink::redact(sink)),
                _ if after_sink => crate::kafka::consume::sink::redact(&arg),
                _ => arg.clone(),
            };
            after_sink = arg == "--sink";
            if arg.contains(' ') { format!("'{arg}'") } else { arg }
        })
        .collect()
}

/// A Cancel that Ctrl-C sets.
fn cancel_on_ctrl_c() -> Cancel {
    let cancel = Cancel::new();
    let interrupted = cancel.clone();
    let _ = ctrlc::set_handler(move || interrupted.cancel());
    cancel
}

/// Runs a diagnosis and writes its report.
pub fn run_diagnose(args: DiagnoseArgs) -> anyhow::Result<()> {
    let plan = args.plan()?;
    let (rules, token) = rules_and_token(&args.run, "diagnose")?;
    let token = Some(token);
    let out = args.out.clone().unwrap_or_else(crate::diagnose::default_out_dir);
    let cancel = cancel_on_ctrl_c();
    let command = command_line();
    let progress = crate::report::progress::TerminalProgress::default();
    let silent = crate::diagnose::Silent;
    let progress: &dyn crate::diagnose::Progress = if args.json { &silent } else { &progress };
    let diagnosis = crate::diagnose::run(&plan, &rules, token.as_deref(), &command, &cancel, progress)?;
    crate::report::findings::write_all(&diagnosis, &out)?;
    if args.json {
        let summary = crate::report::summary::DiagnoseJson::of(&diagnosis, &out);
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", crate::report::findings::terminal(&diagnosis, &out));
    }
    match diagnosis.failure() {
        Some(reason) => Err(super::NothingToJudge { reason, out }.into()),
        None => Ok(()),
    }
}

/// Reads the cluster, checks its agents and writes a plan. The plan is written even when a
/// check fails (its header lists what to fix); the exit status is then 1.
pub fn run_init(args: InitArgs) -> anyhow::Result<()> {
    let token = agents_token(args.token_file.as_deref(), "init")?;
    if args.out.exists() && !args.force {
        return Err(super::UsageError(format!(
            "{} exists: pass --force to replace it, or --out another file",
            args.out.display()
        ))
        .into());
    }
    let request = crate::diagnose::init::InitRequest {
        bootstrap: args.bootstrap,
        properties: args.property,
        topic: args.topic,
        agent_port: args.agent_port,
        agents: args.agents,
        generators: args.generators,
        consumers: args.consumers,
        databases: args.databases,
        prometheus: args.prometheus,
        command: command_line(),
    };
    let started = std::time::Instant::now();
    let progress = crate::report::progress::TerminalProgress::default();
    let agents = crate::diagnose::Agents { token: Some(&token) };
    let found = crate::diagnose::init::discover(&request, &agents, &progress).map_err(anyhow::Error::msg)?;
    let text = crate::diagnose::init::plan_text(&request, &found);
    std::fs::write(&args.out, text).with_context(|| format!("writing the plan to {}", args.out.display()))?;
    let with_agents = found.brokers.iter().filter(|b| b.agent.is_some()).count();
    println!(
        "wrote {} in {:.1} s: {} broker(s), {with_agents} with an agent; {} generator(s)",
        args.out.display(),
        started.elapsed().as_secs_f64(),
        found.brokers.len(),
        found.generators.len()
    );
    match found.failures().len() {
        0 => {
            println!("next: plateau diagnose --plan {} --token-file TOKEN_FILE", args.out.display());
            Ok(())
        }
        n => anyhow::bail!(
            "{n} check(s) failed (above, and at the top of {}): fix them and run init again",
            args.out.display()
        ),
    }
}

/// Runs a sweep's grid, writing each cell's report as it ends.
pub fn run_sweep(args: SweepArgs) -> anyhow::Result<()> {
    let plan = args.plan()?;
    let (rules, token) = rules_and_token(&args.run, "sweep")?;
    let out = args.out.clone().unwrap_or_else(|| {
        std::path::PathBuf::from(format!("plateau-sweep-{}", crate::sampler::raw::unix_ms_now() / 1000))
    });
    let cancel = cancel_on_ctrl_c();
    let command = command_line();
    let progress = crate::report::progress::TerminalProgress::default();
    let silent = crate::diagnose::Silent;
    let progress: &dyn crate::diagnose::Progress = if args.json { &silent } else { &progress };
    // Each cell's diagnosis and the sweep so far are written before the next cell starts.
    let mut save = |sweep: &crate::diagnose::sweep::Sweep, diagnosis: Option<&crate::diagnose::Diagnosis>| {
        if let (Some(diagnosis), Some(dir)) = (diagnosis, sweep.cells.last().and_then(|c| c.report.as_ref())) {
            crate::report::findings::write_all(diagnosis, &out.join(dir))?;
        }
        crate::report::sweep::write_all(sweep, &out)?;
        if !args.json {
            eprintln!("   {}", crate::report::sweep::cell_line(sweep.cells.last().expect("a cell was run")));
        }
        Ok(())
    };
    let sweep = crate::diagnose::sweep::run(&plan, &rules, Some(&token), &command, &cancel, progress, &mut save)?;
    // Nothing produced in any cell: the cluster, the generators or the token stood in the way.
    let failure = (!sweep.interrupted && sweep.cells.iter().all(|cell| cell.produce.is_none())).then(|| {
        let why = sweep.cells.iter().find_map(|cell| cell.failed.clone());
        format!("no cell delivered a record{}", why.map(|why| format!(" ({why})")).unwrap_or_default())
    });
    if args.json {
        let output = serde_json::json!({ "cells": sweep.cells, "error": failure, "out": out });
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        print!("{}", crate::report::sweep::terminal(&sweep, &out));
    }
    match failure {
        Some(reason) => Err(super::NothingToJudge { reason, out }.into()),
        None => Ok(()),
    }
}

/// Renders (or, with --rules, judges again) a saved diagnosis or sweep.
pub fn run_report(args: ReportArgs) -> anyhow::Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.evidence.parent().map(std::path::Path::to_path_buf).unwrap_or_default());
    if crate::report::sweep::is_sweep(&args.evidence) {
        let sweep = crate::report::sweep::read_sweep(&args.evidence)?;
        std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
        crate::report::sweep::write_rendered(&sweep, &out)?;
        print!("{}", crate::report::sweep::terminal(&sweep, &out));
        return Ok(());
    }
    let diagnosis = crate::report::findings::read_evidence(&args.evidence)?;
    if let Some(dir) = &args.rules {
        // Judged again, it is a new diagnosis of the same measurements: written whole
        // elsewhere, so the saved verdict stays beside the evidence it was given on.
        let beside = args.evidence.parent().unwrap_or(std::path::Path::new(""));
        if args.out.as_deref().is_none_or(|o| same_dir(o, beside)) {
            return Err(crate::diagnose::PlanError(
                "report --rules writes a new evidence.json: pass --out DIR, a directory other than the saved one's"
                    .into(),
            )
            .into());
        }
        let judged = diagnosis.judged_again(&load_rules(Some(dir))?);
        crate::report::findings::write_all(&judged, &out)?;
        print!("{}", crate::report::findings::terminal(&judged, &out));
        return Ok(());
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    crate::report::findings::write_rendered(&diagnosis, &out)?;
    print!("{}", crate::report::findings::terminal(&diagnosis, &out));
    Ok(())
}

/// Whether two paths name the same directory (either may not exist yet).
fn same_dir(a: &std::path::Path, b: &std::path::Path) -> bool {
    let canonical = |p: &std::path::Path| {
        let p = if p.as_os_str().is_empty() { std::path::Path::new(".") } else { p };
        std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
    };
    canonical(a) == canonical(b)
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn secrets_typed_on_the_command_line_stay_out_of_what_is_written() {
        let args = [
            "plateau",
            "diagnose",
            "-X",
            "sasl.password=hunter2",
            "-Xssl.key.pem=KEY",
            "-X",
            "sasl.username=alice",
            "--sink",
            "postgres://u:pw@db:5432/x",
            "--sink=host=db password=pw2",
            "--topic",
            "a b",
        ];
        let line = redacted(args.iter().map(|a| a.to_string())).join(" ");
        assert_eq!(
            line,
            "plateau diagnose -X sasl.password=*** -Xssl.key.pem=*** -X sasl.username=alice --sink postgres://u:***@db:5432/x '--sink=host=db password=***' --topic 'a b'"
        );
    }
}
