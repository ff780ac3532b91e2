//! `plateau diagnose`: preflight, the network matrix and disk probes, the Kafka ramp on
//! every generator at once with every agent sampling, plateau detection, evidence from
//! agents, Prometheus, JMX and plateau's own measurements, the rules, the capacity model,
//! and the findings — all in one [`Diagnosis`], saved as `evidence.json`.
//!
//! Nothing here aborts on a failed part: an unreachable agent, Prometheus or broker is
//! recorded in the preflight and in what was missing, and the run goes on with the rest.
//! Ctrl-C stops the ramp and still produces a report from what was measured.

mod judgment;
mod plan;
mod preflight;
mod probes;
mod ramp;
mod search;
pub mod sweep;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use plan::{DEFAULT_RAMP, DEFAULT_SEARCH, DiagnosePlan, Load, PlanError};
pub use search::{RateSearch, SearchSpec};

use crate::agent::client::AgentClient;
use crate::cancel::Cancel;
use crate::evidence::gather::Sources;
use crate::evidence::{Evidence, measured};
use crate::kafka::ProduceReport;
use crate::model::Prediction;
use crate::net::matrix::MatrixCell;
use crate::plateau::{Plateau, RampStep};
use crate::rules::{RuleSet, Verdict};

/// The version of `evidence.json`'s layout.
pub const EVIDENCE_VERSION: u32 = 1;

/// One preflight check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

impl Check {
    /// A failed check as a line of the verdict's missing list.
    pub fn failure(&self) -> Option<String> {
        (!self.ok).then(|| format!("{}: {}", self.what, self.detail))
    }
}

/// The disk probe on one broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskCell {
    /// The broker's agent.
    pub agent: String,
    /// Append throughput, MB/s.
    pub write_mb_per_sec: Option<f64>,
    /// fsync p99, ms.
    pub fsync_p99_ms: Option<f64>,
    /// Random 4 KiB reads per second.
    pub read_iops: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One generator's produce run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorRun {
    /// The generator's agent.
    pub agent: String,
    /// Its report.
    pub report: Option<ProduceReport>,
    /// Why it has none.
    pub error: Option<String>,
}

/// One consumer agent's consume run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerRun {
    /// The consumer's agent.
    pub agent: String,
    /// Its report.
    pub report: Option<crate::kafka::consume::ConsumeReport>,
    /// Why it has none.
    pub error: Option<String>,
}

/// Everything a diagnosis found: the content of `evidence.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Layout version.
    pub version: u32,
    /// The command that reproduces it.
    pub command: String,
    /// The plan.
    pub plan: DiagnosePlan,
    /// Unix ms the diagnosis started.
    pub started_ms: u64,
    /// Unix ms the ramp started.
    pub ramp_started_ms: u64,
    /// Unix ms it ended.
    pub ended_ms: u64,
    /// Preflight.
    pub preflight: Vec<Check>,
    /// Network tests (indices into generators then brokers).
    pub network: Vec<MatrixCell>,
    /// UDP tests into each broker, offered above the TCP capacity measured towards it.
    #[serde(default)]
    pub network_udp: Vec<MatrixCell>,
    /// The agents of the network tests, in index order.
    pub network_agents: Vec<String>,
    /// Seconds the network phase took (its tests run in parallel rounds).
    #[serde(default)]
    pub network_secs: Option<f64>,
    /// Disk probes.
    pub disks: Vec<DiskCell>,
    /// Produce runs.
    pub produce: Vec<GeneratorRun>,
    /// Consume runs (with consumer agents).
    #[serde(default)]
    pub consume: Vec<ConsumerRun>,
    /// The ramp over all generators.
    pub ramp: Vec<RampStep>,
    /// The plateau.
    pub plateau: Plateau,
    /// The window the rules judged, Unix ms.
    pub window_ms: (u64, u64),
    /// All evidence.
    pub evidence: Evidence,
    /// The rules' verdict.
    pub verdict: Verdict,
    /// The capacity model, when capacities were measured.
    pub model: Option<Prediction>,
    /// The observed plateau in MB/s of producer ingress.
    pub observed_ingress_mbps: Option<f64>,
    /// Whether the model's ceiling matched the observed plateau within ±15 %.
    pub model_agrees: Option<bool>,
    /// For a network or disk verdict the model explains: what would lift the ceiling to
    /// the ramp's highest target (more capacity, one replica fewer, one broker more).
    #[serde(default)]
    pub lifts: Vec<crate::model::Lift>,
    /// With consumers and an SLA (seed 004): the highest rate whose end-to-end latency met
    /// it, and where the latency grew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<crate::sla::SlaFinding>,
    /// Whether the run was interrupted.
    pub interrupted: bool,
}

impl Diagnosis {
    /// The saved evidence judged again by `rules` (a rule edited or added since): a new
    /// verdict and model vote over the saved window, knee and model; the measurements stay.
    pub fn judged_again(mut self, rules: &RuleSet) -> Diagnosis {
        let failures: Vec<String> = self.preflight.iter().filter_map(Check::failure).collect();
        let model = crate::verdict::ModelCheck::of(self.model.as_ref(), self.observed_ingress_mbps);
        let judged =
            crate::verdict::judge(rules, &self.evidence, self.window_ms, &self.plateau, &self.ramp, model, &failures);
        self.verdict = judged.verdict;
        self.model_agrees = judged.model_agrees;
        self
    }
}

/// Progress reporting for the terminal.
pub trait Progress {
    /// A phase started.
    fn phase(&self, name: &str);
    /// A line of news within a phase.
    fn note(&self, line: &str);
    /// Ramp progress: seconds done of seconds planned, and the current rates.
    fn ramp(&self, done: u64, total: u64, message: &str);
}

/// Progress that says nothing (for `--json` and tests).
pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _: &str) {}
    fn note(&self, _: &str) {}
    fn ramp(&self, _: u64, _: u64, _: &str) {}
}

fn now_ms() -> u64 {
    crate::sampler::raw::unix_ms_now()
}

/// The agents' clients, all with the same token.
pub struct Agents<'a> {
    /// The agents' bearer token.
    pub token: Option<&'a str>,
}

impl Agents<'_> {
    /// A client for the agent at `url` whose requests give up after `timeout`.
    pub fn client(&self, url: &str, timeout: Duration) -> AgentClient {
        AgentClient::new(url, self.token.map(str::to_string), timeout)
    }
}

/// Runs a diagnosis. Fails only on a plan that cannot run at all; everything else that
/// goes wrong is in the result.
pub fn run(
    plan: &DiagnosePlan,
    rules: &RuleSet,
    token: Option<&str>,
    command: &str,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> anyhow::Result<Diagnosis> {
    let load = plan.validate()?;
    let started_ms = now_ms();
    let agents = Agents { token };

    progress.phase("preflight");
    let live = preflight::run(plan, &agents, progress);
    let capacities = measure(plan, &live, &agents, &rules.catalog, cancel, progress);
    Ok(load_and_judge(plan, &load, rules, &agents, command, started_ms, live, capacities, cancel, progress))
}

/// What the probes measured before the load: the network matrix and the disks.
#[derive(Debug, Clone, Default)]
struct Capacities {
    network: probes::Network,
    disks: Vec<DiskCell>,
    disk_series: Vec<crate::evidence::Series>,
}

/// The network and disk phases, unless the plan skips them.
fn measure(
    plan: &DiagnosePlan,
    live: &preflight::Preflight,
    agents: &Agents<'_>,
    catalog: &crate::signals::SignalCatalog,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Capacities {
    let mut measured = Capacities::default();
    if !plan.skip_net && !live.brokers.is_empty() && !cancel.is_cancelled() {
        progress.phase("network");
        measured.network = probes::network(plan, &live.generators, &live.brokers, agents, catalog, cancel, progress);
    }
    if !plan.skip_disk && !cancel.is_cancelled() {
        progress.phase("disks");
        (measured.disks, measured.disk_series) = probes::disks(plan, &live.brokers, agents, catalog, cancel, progress);
    }
    measured
}

/// The load (search or ramp) with every agent sampling, the evidence, and the judgment:
/// the rest of a diagnosis once the preflight and the probes are done.
#[allow(clippy::too_many_arguments)]
fn load_and_judge(
    plan: &DiagnosePlan,
    load: &Load,
    rules: &RuleSet,
    agents: &Agents<'_>,
    command: &str,
    started_ms: u64,
    live: preflight::Preflight,
    capacities: Capacities,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Diagnosis {
    let Capacities { network, disks, disk_series } = capacities;
    let catalog = &rules.catalog;
    let token = agents.token;
    progress.phase("ramp");
    let ramped = ramp::run(
        plan,
        load,
        &live.generators,
        &live.consumers,
        live.partitions.is_some(),
        agents,
        catalog,
        cancel,
        progress,
    );

    progress.phase("evidence");
    let sources = Sources {
        token,
        hosts: &live.brokers,
        generators: &live.generators,
        consumers: &live.consumers,
        databases: &live.databases,
        prometheus: plan.prometheus.as_deref(),
        jmx: ramped.jmx,
    };
    let mut evidence =
        crate::evidence::gather::gather(catalog, sources, started_ms, ramped.started_ms, ramped.ended_ms);
    // Capacities measured before the ramp hold for the whole run: stamped at its end,
    // inside the window the rules judge.
    evidence.series.extend(measured::best_at(network.series.iter().chain(&disk_series), ramped.ended_ms));
    let reports: Vec<&ProduceReport> = ramped.produce.iter().filter_map(|p| p.report.as_ref()).collect();
    evidence.series.extend(measured::from_produce_runs(
        catalog,
        &reports,
        (ramped.started_ms, ramped.ended_ms),
        plan.producer.max_in_flight(),
    ));
    if let Some(rf) = live.replication_factor.or(plan.replication_factor) {
        evidence.series.extend(measured::constant(catalog, "topic_replication_factor", rf as f64, ramped.ended_ms));
    }
    if let Some(brokers) = live.cluster_brokers {
        evidence.series.extend(measured::constant(catalog, "cluster_brokers", brokers as f64, ramped.ended_ms));
    }
    let consumed: Vec<&crate::kafka::consume::ConsumeReport> =
        ramped.consume.iter().filter_map(|c| c.report.as_ref()).collect();
    // The consumers read on while the generators stop: what they did after the last
    // record was produced (catching up) is not the ramp's.
    let produced_until_ms = reports
        .iter()
        .filter_map(|r| Some(r.started_at_ms + (r.intervals.last()?.end_secs * 1000.0) as u64))
        .max()
        .unwrap_or(ramped.ended_ms)
        .min(ramped.ended_ms);
    evidence.series.extend(measured::from_consume_runs(catalog, &consumed, produced_until_ms));
    for run in &ramped.produce {
        if let Some(err) = &run.error {
            evidence.unavailable.push(format!("produce run on {}: {err}", run.agent));
        }
    }
    for run in &ramped.consume {
        if let Some(err) = &run.error {
            evidence.unavailable.push(format!("consume run on {}: {err}", run.agent));
        }
    }

    progress.phase("verdict");
    let facts = judgment::Facts {
        produce: &ramped.produce,
        consume: &ramped.consume,
        ramp_ms: (ramped.started_ms, ramped.ended_ms),
        network: (&network.tcp, live.generators.len()),
        disks: &disks,
        replication_factor: live.replication_factor.or(plan.replication_factor),
        brokers: live.brokers.len(),
        failures: &live.failures(),
        target_msgs_per_sec: load.max() as f64,
        sla: (plan.sla_e2e_ms.is_some() || plan.sla_p99_ms.is_some())
            .then_some(crate::sla::SlaTarget { e2e_avg_ms: plan.sla_e2e_ms, e2e_p99_ms: plan.sla_p99_ms }),
    };
    let judged = judgment::judge(rules, &evidence, &facts);

    Diagnosis {
        version: EVIDENCE_VERSION,
        command: command.to_string(),
        plan: plan.clone(),
        started_ms,
        ramp_started_ms: ramped.started_ms,
        ended_ms: ramped.ended_ms,
        preflight: live.checks,
        network: network.tcp,
        network_udp: network.udp,
        network_agents: network.agents,
        network_secs: (network.rounds > 0).then_some(network.elapsed_secs),
        disks,
        produce: ramped.produce,
        consume: ramped.consume,
        ramp: judged.ramp,
        plateau: judged.plateau,
        window_ms: judged.window_ms,
        evidence,
        verdict: judged.verdict,
        model: judged.model,
        observed_ingress_mbps: judged.observed_ingress_mbps,
        model_agrees: judged.model_agrees,
        lifts: judged.lifts,
        sla: judged.sla,
        interrupted: ramped.interrupted,
    }
}

/// Where a diagnosis writes its report by default: `./plateau-report-<unix seconds>`.
pub fn default_out_dir() -> PathBuf {
    PathBuf::from(format!("plateau-report-{}", now_ms() / 1000))
}
