//! "Diagnose now": the rules over the last window of what the console has been driving.
//! The generators' summed target and achieved rate (as polled) make the steps, the agents'
//! samples (and Prometheus, when given) the evidence; the report is a regular diagnosis
//! directory (`evidence.json`, `findings.md`, `timeline.svg`).

use std::path::PathBuf;

use serde::Serialize;

use super::ControllerConfig;
use crate::diagnose::{DiagnosePlan, Diagnosis, Judgment};
use crate::evidence::gather::Sources;
use crate::plateau::{self, RampStep};
use crate::report::summary::VerdictSummary;
use crate::rules::RuleSet;

/// What the page shows of a diagnosis: the verdict in brief and where its report is.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DiagnoseSummary {
    /// Report id (its directory name).
    pub id: String,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: VerdictSummary,
    /// Where the findings are served.
    pub findings_url: String,
}

/// The window to judge: the generators' summed rates, one `(Unix ms, target, achieved)` a
/// second, cut into steps of `step_s` seconds (the ramp's, or 10 s at a fixed rate).
#[derive(Debug, Clone)]
pub struct Window {
    /// Summed rates, oldest first.
    pub totals: Vec<(u64, f64, f64)>,
    /// Seconds per step.
    pub step_s: u64,
    /// The ramp as `START:STEP:EVERY_S:MAX` when one ran, for the report.
    pub ramp: Option<String>,
    /// Start and end, Unix ms.
    pub span_ms: (u64, u64),
}

/// Cuts the summed rates into steps; seconds without a target are left out, and so is a
/// step's first second when it has three or more (the polled rate still shows the step
/// before).
pub fn steps(window: &Window) -> Vec<RampStep> {
    let mut slots: Vec<(u64, Vec<(f64, f64)>)> = Vec::new();
    for &(ts, target, achieved) in window.totals.iter().filter(|t| t.1 > 0.0) {
        let slot = (ts.saturating_sub(window.span_ms.0)) / 1000 / window.step_s.max(1);
        match slots.last_mut() {
            Some(last) if last.0 == slot => last.1.push((target, achieved)),
            _ => slots.push((slot, vec![(target, achieved)])),
        }
    }
    let step_ms = window.step_s.max(1) * 1000;
    slots
        .into_iter()
        .map(|(slot, seconds)| {
            let skipped = u64::from(seconds.len() >= 3);
            let settled = &seconds[skipped as usize..];
            let n = settled.len() as f64;
            let target = settled.iter().map(|s| s.0).sum::<f64>() / n;
            let achieved = settled.iter().map(|s| s.1).sum::<f64>() / n;
            RampStep {
                target_rate: target,
                achieved_rate: achieved,
                sustained: crate::kafka::report::kept_up(achieved, target),
                started_ms: window.span_ms.0 + slot * step_ms,
                measured_from_ms: window.span_ms.0 + slot * step_ms + skipped * 1000,
                ended_ms: (window.span_ms.0 + (slot + 1) * step_ms).min(window.span_ms.1),
                ..RampStep::default()
            }
        })
        .collect()
}

/// The console's judgment of `steps` (the polled totals over `span_ms`) over `evidence`:
/// the knee, the judged window and the verdict, through the same `verdict::judge` as
/// diagnose. No probes run here, so there are no measured capacities and the capacity
/// model does not vote.
pub fn judge(
    rules: &RuleSet,
    evidence: &crate::evidence::Evidence,
    steps: &[RampStep],
    span_ms: (u64, u64),
) -> (crate::plateau::Plateau, (u64, u64), crate::rules::Verdict) {
    let found = plateau::find_plateau(steps);
    let judged = crate::verdict::judged_window(steps, &found, span_ms);
    let verdict = crate::verdict::judge(rules, evidence, judged, &found, steps, None, &[]).verdict;
    (found, judged, verdict)
}

/// Runs the rules over `window` and writes the report under the controller's reports
/// directory. Blocking: it asks agents (and Prometheus) for their samples.
pub fn run(config: &ControllerConfig, rules: &RuleSet, window: &Window) -> anyhow::Result<(Diagnosis, PathBuf)> {
    let steps = steps(window);
    anyhow::ensure!(
        !steps.is_empty(),
        "nothing was producing in the last {} s: start the generators (or a ramp) first",
        (window.span_ms.1 - window.span_ms.0) / 1000
    );
    let (start_ms, end_ms) = window.span_ms;
    let sources = Sources {
        token: config.agent_token.as_deref(),
        hosts: &config.brokers,
        generators: &config.generators,
        consumers: &config.consumers,
        databases: &[],
        prometheus: config.prometheus.as_deref(),
        jmx: None,
    };
    let evidence = crate::evidence::gather::gather(&rules.catalog, sources, start_ms, start_ms, end_ms);
    let (found, judged, verdict) = judge(rules, &evidence, &steps, window.span_ms);
    let per_generator = (steps[0].target_rate / config.generators.len().max(1) as f64).round().max(1.0) as u64;
    let ramp = window.ramp.clone().unwrap_or_else(|| format!("{per_generator}:0:{}:{per_generator}", window.step_s));
    let mut plan = DiagnosePlan::new(config.bootstrap.clone(), config.topic.clone());
    plan.ramp = Some(ramp);
    plan.generators = config.generators.clone();
    plan.brokers = config.brokers.clone();
    plan.prometheus = config.prometheus.clone();
    plan.skip_disk = true;
    plan.skip_net = true;
    let command = format!(
        "plateau controller (Diagnose now over the {} s before {})",
        (end_ms - start_ms) / 1000,
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(end_ms))
    );
    // No probes ran: no capacity, so the model does not vote.
    let judgment = Judgment {
        ramp: steps,
        plateau: found,
        window_ms: judged,
        verdict,
        model: None,
        observed_ingress_mbps: None,
        model_agrees: None,
        lifts: Vec::new(),
        sla: None,
    };
    let diagnosis = Diagnosis::new(command, plan, (start_ms, start_ms, end_ms), evidence, judgment);
    let dir = config.reports.join(format!("diagnosis-{}", end_ms));
    crate::report::findings::write_all(&diagnosis, &dir)?;
    Ok((diagnosis, dir))
}

/// The page's view of a diagnosis written to `dir`.
pub fn summary(diagnosis: &Diagnosis, dir: &std::path::Path) -> DiagnoseSummary {
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    DiagnoseSummary { findings_url: format!("/reports/{id}/findings.md"), id, verdict: VerdictSummary::of(diagnosis) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_become_steps_and_idle_seconds_are_left_out() {
        // 0–9 s idle, 10–19 s at 20k (kept up), 20–29 s at 40k (30k achieved).
        let mut totals = Vec::new();
        for s in 0..30u64 {
            let (target, achieved) = match s {
                0..10 => (0.0, 0.0),
                10..20 => (20_000.0, 19_800.0),
                _ => (40_000.0, 30_000.0),
            };
            totals.push((1_000_000 + s * 1000, target, achieved));
        }
        // The first second of a step still shows the rate before it.
        totals[20].2 = 19_800.0;
        let window = Window { totals, step_s: 10, ramp: None, span_ms: (1_000_000, 1_030_000) };
        let steps = steps(&window);
        assert_eq!(steps.len(), 2);
        assert!(steps[0].sustained);
        assert_eq!(steps[1].achieved_rate, 30_000.0);
        assert!(!steps[1].sustained);
    }
}
