//! What a diagnosis found — the content of `evidence.json` (`Diagnosis`) and its parts:
//! the preflight's checks, the disk probes, each generator's and consumer's run, and the
//! judgment (`Judgment`) that `judgment::judge` (or the controller) reaches.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::DiagnosePlan;
use crate::evidence::Evidence;
use crate::kafka::ProduceReport;
use crate::model::{Lift, Prediction};
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
    /// What each agent's CPU and I/O figures follow beside its host's (by agent URL):
    /// `cgroup:/system.slice/kafka.service (the JVM running kafka.Kafka …)`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub watching: BTreeMap<String, String>,
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
    /// A diagnosis of `plan` from `command` over `span_ms` (its start, its load's start,
    /// its end, Unix ms): the evidence and its judgment, with no probe, preflight or
    /// produce run of its own yet (the controller's "Diagnose now" has none; diagnose
    /// adds its own over this).
    pub fn new(
        command: String,
        plan: DiagnosePlan,
        span_ms: (u64, u64, u64),
        evidence: Evidence,
        judgment: Judgment,
    ) -> Diagnosis {
        let Judgment { ramp, plateau, window_ms, verdict, model, observed_ingress_mbps, model_agrees, lifts, sla } =
            judgment;
        Diagnosis {
            version: EVIDENCE_VERSION,
            command,
            plan,
            started_ms: span_ms.0,
            ramp_started_ms: span_ms.1,
            ended_ms: span_ms.2,
            preflight: Vec::new(),
            watching: BTreeMap::new(),
            network: Vec::new(),
            network_udp: Vec::new(),
            network_agents: Vec::new(),
            network_secs: None,
            disks: Vec::new(),
            produce: Vec::new(),
            consume: Vec::new(),
            ramp,
            plateau,
            window_ms,
            evidence,
            verdict,
            model,
            observed_ingress_mbps,
            model_agrees,
            lifts,
            sla,
            interrupted: false,
        }
    }

    /// Why this diagnosis had nothing to judge, if it had not: the cluster or the topic
    /// could not be reached, no generator agent answered with the token, or no record was
    /// delivered. (A run cut short by Ctrl-C is the user's choice, not a failure.)
    pub fn failure(&self) -> Option<String> {
        let failed = |prefix: &str| self.preflight.iter().find(|c| !c.ok && c.what.starts_with(prefix));
        if let Some(check) = failed("cluster ").or_else(|| failed("topic ")) {
            return check.failure();
        }
        let generators: Vec<&Check> = self.preflight.iter().filter(|c| c.what.starts_with("generator agent")).collect();
        if !generators.is_empty() && generators.iter().all(|c| !c.ok) {
            return Some(format!("no generator agent can be used ({})", generators[0].failure().unwrap_or_default()));
        }
        let delivered: u64 = self.produce.iter().filter_map(|p| p.report.as_ref()).map(|r| r.records_acked).sum();
        if delivered == 0 && !self.interrupted {
            let why = self.produce.iter().find_map(|p| p.error.clone().map(|e| format!("{}: {e}", p.agent)));
            return Some(format!(
                "no generator delivered a record{}",
                why.map(|why| format!(" ({why})")).unwrap_or_default()
            ));
        }
        None
    }

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

/// What judgment decided: the knee, the window the rules judged, the verdict and the
/// capacity model's vote.
#[derive(Debug, Clone)]
pub struct Judgment {
    /// The ramp summed over the generators.
    pub ramp: Vec<RampStep>,
    /// Its knee.
    pub plateau: Plateau,
    /// The window the rules judged.
    pub window_ms: (u64, u64),
    /// The verdict.
    pub verdict: Verdict,
    /// The capacity model, when a capacity was measured.
    pub model: Option<Prediction>,
    /// The plateau in MB/s of producer ingress.
    pub observed_ingress_mbps: Option<f64>,
    /// Whether the model agreed with it.
    pub model_agrees: Option<bool>,
    /// For a network or disk verdict the model explains: what would lift the ceiling to the
    /// ramp's highest target.
    pub lifts: Vec<Lift>,
    /// The highest rate within the SLA and where the latency grew, with an SLA.
    pub sla: Option<crate::sla::SlaFinding>,
}
