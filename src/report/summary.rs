//! A diagnosis's verdict in brief, for machines: `plateau diagnose --json` prints it and
//! the controller's page shows it; both build it here from the `Diagnosis`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::diagnose::Diagnosis;

/// The verdict in brief.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerdictSummary {
    /// The bound.
    pub bound: String,
    /// Which cause of the bound (`link`, `replication traffic`, `quota`, `key skew`).
    pub cause: Option<String>,
    /// Confidence, 0–1.
    pub confidence: f64,
    /// The runner-up, if any.
    pub runner_up: Option<String>,
    /// The runner-up's cause.
    pub runner_up_cause: Option<String>,
    /// Bounds whose evidence the verdict's cause explains (its symptoms), as `bound: cause`.
    pub explained: Vec<String>,
    /// Each bound's score.
    pub scores: BTreeMap<String, f64>,
    /// Whether throughput stopped following the target.
    pub plateau_found: bool,
    /// The highest summed rate reached, msg/s: the plateau's level.
    pub plateau_msgs_per_sec: f64,
    /// The highest summed rate of a step that kept up, msg/s (the maximum sustainable rate).
    pub sustained_msgs_per_sec: f64,
    /// Evidence lines.
    pub evidence: Vec<String>,
    /// What was missing.
    pub missing: Vec<String>,
    /// Whether the capacity model matched the plateau (`None` without a model).
    pub model_agrees: Option<bool>,
    /// Whether the run was cut short.
    pub interrupted: bool,
    /// With consumers and an SLA: the highest rate whose end-to-end latency met it, msg/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_max_rate_msgs_per_sec: Option<f64>,
    /// With an SLA broken: the part the latency grew on (`produce`, `consumers`, `sink`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_latency_grew_on: Option<String>,
}

/// One preflight check, as `--json` gives it.
#[derive(Debug, Clone, Serialize)]
pub struct PreflightCheck {
    /// What was checked (`generator agent http://…`, `topic t`, `prometheus …`).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found, or why it failed.
    pub reason: String,
}

/// What `plateau diagnose --json` prints: the verdict in brief, every preflight check,
/// why the diagnosis had nothing to judge (`error`, null when it had), and the report.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnoseJson {
    /// The verdict.
    pub verdict: VerdictSummary,
    /// The preflight's checks, in order.
    pub preflight: Vec<PreflightCheck>,
    /// Why there was nothing to judge (`Diagnosis::failure`).
    pub error: Option<String>,
    /// The report directory.
    pub out: std::path::PathBuf,
}

impl DiagnoseJson {
    /// The output for `diagnosis`, written to `out`.
    pub fn of(diagnosis: &Diagnosis, out: &std::path::Path) -> DiagnoseJson {
        DiagnoseJson {
            verdict: VerdictSummary::of(diagnosis),
            preflight: diagnosis
                .preflight
                .iter()
                .map(|check| PreflightCheck { name: check.what.clone(), ok: check.ok, reason: check.detail.clone() })
                .collect(),
            error: diagnosis.failure(),
            out: out.to_path_buf(),
        }
    }
}

impl VerdictSummary {
    /// The summary of `diagnosis`.
    pub fn of(diagnosis: &Diagnosis) -> VerdictSummary {
        let v = &diagnosis.verdict;
        VerdictSummary {
            bound: v.bound.to_string(),
            cause: v.cause.clone(),
            confidence: v.confidence,
            runner_up: v.runner_up.map(|b| b.to_string()),
            runner_up_cause: v.runner_up_cause.clone(),
            explained: v.explained.iter().map(|(bound, cause)| format!("{bound}: {cause}")).collect(),
            scores: v.scores.iter().map(|(bound, score)| (bound.to_string(), *score)).collect(),
            plateau_found: diagnosis.plateau.found,
            plateau_msgs_per_sec: diagnosis.plateau.plateau_msgs_per_sec,
            sustained_msgs_per_sec: diagnosis.plateau.sustained_msgs_per_sec,
            evidence: v.evidence.iter().map(|e| e.text.clone()).collect(),
            missing: v.missing.clone(),
            model_agrees: diagnosis.model_agrees,
            interrupted: diagnosis.interrupted,
            sla_max_rate_msgs_per_sec: diagnosis.sla.as_ref().and_then(|sla| sla.max_rate_msgs_per_sec),
            sla_latency_grew_on: diagnosis.sla.as_ref().and_then(|sla| sla.grew_on.clone()),
        }
    }
}
