//! The verdict's one home: the rules over the judged window, the capacity model's vote,
//! what was missing, and the thresholds these share. `plateau diagnose` and the
//! controller's "Diagnose now" both call [`judge`], so the same evidence gives the same
//! verdict wherever it is judged.

use crate::evidence::Evidence;
use crate::model::Prediction;
use crate::plateau::{Plateau, RampStep};
use crate::rules::eval::{RuleState, combine};
use crate::rules::{Bound, RuleOutcome, RuleSet, Verdict};

/// The capacity model agrees with an observed plateau within this relative distance.
pub const MODEL_TOLERANCE: f64 = 0.15;

/// The window the rules judge, within `span_ms` (the ramp's or the search's): from the
/// start of the step that ran before the knee to the end, or all of it when throughput
/// never stopped following the target.
pub fn judged_window(steps: &[RampStep], plateau: &Plateau, span_ms: (u64, u64)) -> (u64, u64) {
    match plateau.knee_step.and_then(|knee| steps.get(knee.saturating_sub(1))) {
        Some(before) => (before.started_ms.clamp(span_ms.0, span_ms.1), span_ms.1),
        None => span_ms,
    }
}

/// The capacity model's prediction and the plateau it is held against.
#[derive(Debug, Clone, Copy)]
pub struct ModelCheck<'a> {
    /// The model's prediction from the measured capacities.
    pub prediction: &'a Prediction,
    /// The observed plateau, MB/s of producer ingress.
    pub observed_ingress_mbps: f64,
}

impl<'a> ModelCheck<'a> {
    /// The check, where there is both a prediction and an observed plateau.
    pub fn of(prediction: Option<&'a Prediction>, observed_ingress_mbps: Option<f64>) -> Option<ModelCheck<'a>> {
        prediction
            .zip(observed_ingress_mbps)
            .map(|(prediction, observed_ingress_mbps)| ModelCheck { prediction, observed_ingress_mbps })
    }
}

/// What [`judge`] decided.
#[derive(Debug, Clone)]
pub struct Judgment {
    /// The verdict.
    pub verdict: Verdict,
    /// Whether the model's ceiling matched the observed plateau within [`MODEL_TOLERANCE`]
    /// (`None` without a model or without a plateau).
    pub model_agrees: Option<bool>,
}

/// Judges `evidence` over `window_ms`: the rules, then the capacity model as one more
/// fired rule when it predicted the plateau, then what was missing (the evidence's
/// unavailable sources and the `failed_checks`). A ramp that delivered nothing is
/// `unknown`, never `none`. No I/O; cannot fail.
pub fn judge(
    rules: &RuleSet,
    evidence: &Evidence,
    window_ms: (u64, u64),
    plateau: &Plateau,
    ramp: &[RampStep],
    model: Option<ModelCheck<'_>>,
    failed_checks: &[String],
) -> Judgment {
    let mut verdict = crate::rules::evaluate(rules, evidence, window_ms, plateau.found);
    let model_agrees = model.filter(|_| plateau.found).and_then(|check| {
        check
            .prediction
            .predicted_max_ingress_mbps
            .map(|p| (check.observed_ingress_mbps / p - 1.0).abs() <= MODEL_TOLERANCE)
    });
    // A model that predicted the plateau joins the vote as one more fired rule; one whose
    // ceiling lies above the plateau but within NEXT_LIMIT of it names the next limit.
    if let (Some(agrees), Some(check)) = (model_agrees, model)
        && let (Some(binding), Some(predicted)) =
            (check.prediction.binding.as_deref(), check.prediction.predicted_max_ingress_mbps)
    {
        let observed = check.observed_ingress_mbps;
        let another_leads = ![Bound::None, Bound::Unknown, model_bound(binding)].contains(&verdict.bound);
        let outcome = if agrees {
            Some(model_outcome(binding, predicted, observed))
        } else if another_leads && predicted > observed && predicted <= NEXT_LIMIT * observed {
            Some(next_limit_outcome(binding, predicted, observed))
        } else {
            None
        };
        if let Some(outcome) = outcome {
            let mut outcomes = std::mem::take(&mut verdict.rules);
            outcomes.push(outcome);
            verdict = combine(outcomes, plateau.found);
        }
    }
    // "No plateau" is a finding only when load was delivered: a ramp that delivered
    // nothing (an unreachable cluster, a missing topic, generators that all failed) shows
    // no headroom at all, and the verdict must say it cannot tell.
    if !plateau.found && !ramp.iter().any(|step| step.achieved_rate > 0.0) {
        verdict.bound = Bound::Unknown;
        verdict.cause = None;
        verdict.confidence = 0.0;
        verdict.missing.insert(
            0,
            "no record was delivered during the ramp, so nothing was measured against the cluster (see the produce errors and the preflight below)".into(),
        );
    }
    verdict.missing.extend(evidence.unavailable.iter().cloned());
    verdict.missing.extend(failed_checks.iter().cloned());
    Judgment { verdict, model_agrees }
}

/// Whether the capacity model speaks to `verdict`: the verdict's bound is the model's
/// binding resource (network for the NICs, disk) and the plateau came at half the model's
/// ceiling or more (a model far above the plateau explains nothing about it).
pub fn model_explains(verdict: &Verdict, prediction: &Prediction, observed_ingress_mbps: f64) -> bool {
    prediction.binding.as_deref().is_some_and(|binding| verdict.bound == model_bound(binding))
        && prediction.predicted_max_ingress_mbps.is_some_and(|ceiling| observed_ingress_mbps >= 0.5 * ceiling)
}

/// The bound of the capacity model's binding resource: `disk`, or the NICs' network.
fn model_bound(binding: &str) -> Bound {
    if binding == "disk" { Bound::Disk } else { Bound::Network }
}

/// A capacity-model ceiling this close above the plateau (a multiple of it) is the next
/// limit: what binds once the verdict's limit is lifted.
pub const NEXT_LIMIT: f64 = 2.0;

/// The capacity model's ceiling above the plateau, as a rule that fired with half the
/// smallest rule weight: the next limit — the runner-up when nothing else points anywhere
/// but the verdict, never enough to overturn a rule.
fn next_limit_outcome(binding: &str, predicted_mbps: f64, observed_mbps: f64) -> RuleOutcome {
    let disk = binding == "disk";
    model_rule(
        "model.next_limit",
        binding,
        0.5,
        format!("the capacity model's ceiling above the plateau, within {NEXT_LIMIT}× of it"),
        format!(
            "the capacity model puts the {} ceiling at {predicted_mbps:.2} MB/s of ingress, {:.1}× the plateau's {observed_mbps:.2} MB/s: the next limit",
            if disk { "disks'" } else { "links'" },
            predicted_mbps / observed_mbps
        ),
        format!(
            "Past this limit, the measured {} capacity is the next one, at {predicted_mbps:.1} MB/s of producer ingress.",
            if disk { "disk" } else { "link" }
        ),
    )
}

/// A fired rule of the capacity model's, for the resource `binding` names.
fn model_rule(id: &str, binding: &str, weight: f64, when: String, evidence: String, advice: String) -> RuleOutcome {
    let bound = model_bound(binding);
    RuleOutcome {
        id: id.into(),
        bound,
        cause: if bound == Bound::Disk { "capacity (disk)".into() } else { "capacity (links)".into() },
        weight,
        when,
        state: RuleState::Fired { instances: vec!["cluster".into()], evidence: vec![evidence] },
        advice,
        anchor: "seed 003's capacity model".into(),
        explains: None,
    }
}

/// The capacity model's vote, as a rule that fired.
fn model_outcome(binding: &str, predicted_mbps: f64, observed_mbps: f64) -> RuleOutcome {
    model_rule(
        "model.capacity",
        binding,
        2.0,
        format!("observed plateau within ±{:.0} % of the capacity model's ceiling", MODEL_TOLERANCE * 100.0),
        format!(
            "the capacity model puts the ceiling at {predicted_mbps:.2} MB/s of ingress ({binding} binds); the plateau came at {observed_mbps:.2} MB/s ({:+.0} %)",
            (observed_mbps / predicted_mbps - 1.0) * 100.0
        ),
        format!(
            "Producer ingress times the replication factor meets the measured {binding} capacity: add brokers, faster {}, or fewer bytes per event.",
            if binding == "disk" { "disks" } else { "links" }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired(id: &str, bound: Bound, weight: f64) -> RuleOutcome {
        RuleOutcome {
            id: id.into(),
            bound,
            cause: id.into(),
            weight,
            when: String::new(),
            state: RuleState::Fired { instances: vec!["cluster".into()], evidence: vec![format!("{id} fired")] },
            advice: format!("{id} advice"),
            anchor: String::new(),
            explains: None,
        }
    }

    fn on_hosts(mut outcome: RuleOutcome, hosts: &[&str]) -> RuleOutcome {
        outcome.state = RuleState::Fired {
            instances: hosts.iter().map(|h| h.to_string()).collect(),
            evidence: vec![format!("{} fired", outcome.id)],
        };
        outcome
    }

    #[test]
    fn a_cause_that_explains_the_leading_bound_on_its_hosts_is_the_verdict() {
        let explaining = RuleOutcome { explains: Some(Bound::Cpu), ..fired("kafka.hot_leader", Bound::Kafka, 3.0) };
        let outcomes = |hot_leader_hosts: &[&str]| {
            vec![
                on_hosts(fired("cpu.container_throttled", Bound::Cpu, 3.0), &["b1"]),
                on_hosts(fired("cpu.saturated", Bound::Cpu, 3.0), &["b1"]),
                on_hosts(explaining.clone(), hot_leader_hosts),
                fired("network.retransmits", Bound::Network, 1.0),
            ]
        };
        // The hot leader is the host whose CPU ran out: the keys are the cause, the CPU
        // their symptom, and the runner-up the next independent limit.
        let verdict = combine(outcomes(&["b1"]), true);
        assert_eq!((verdict.bound, verdict.runner_up), (Bound::Kafka, Some(Bound::Network)));
        assert_eq!(verdict.cause.as_deref(), Some("kafka.hot_leader"));
        assert_eq!(verdict.explained, [(Bound::Cpu, "cpu.container_throttled".to_string())]);
        assert!((verdict.confidence - 9.0 / 10.0).abs() < 1e-9, "{}", verdict.confidence);
        // A CPU that ran out elsewhere too is not explained by one hot leader.
        let verdict = combine(
            {
                let mut o = outcomes(&["b1"]);
                o[1] = on_hosts(fired("cpu.saturated", Bound::Cpu, 3.0), &["b1", "b2"]);
                o
            },
            true,
        );
        assert_eq!((verdict.bound, verdict.runner_up), (Bound::Cpu, Some(Bound::Kafka)));
        assert!(verdict.explained.is_empty());
    }

    #[test]
    fn symptoms_the_verdict_explains_are_not_the_runner_up() {
        // Full links carrying the followers' copies; the leaders wait on those followers.
        let links = RuleOutcome {
            explains: Some(Bound::Kafka),
            ..on_hosts(fired("network.replication_at_capacity", Bound::Network, 3.0), &["b1", "b2", "b3"])
        };
        let waiting = on_hosts(fired("kafka.waiting_on_followers", Bound::Kafka, 2.0), &["b1", "b2"]);
        let generators = fired("client.generators_half_busy", Bound::Client, 1.0);
        let verdict = combine(vec![links.clone(), waiting.clone(), generators], true);
        assert_eq!((verdict.bound, verdict.runner_up), (Bound::Network, Some(Bound::Client)));
        assert_eq!(verdict.explained, [(Bound::Kafka, "kafka.waiting_on_followers".to_string())]);
        // Two rules, the links' and the symptom they explain: 3/4 of the weight, corroborated.
        assert!((verdict.confidence - 0.8 * 3.0 / 4.0).abs() < 1e-9, "{}", verdict.confidence);
        // The generators bind; links past half full on the brokers whose followers are
        // waited on: the links, not Kafka, are the next limit.
        let half_full = RuleOutcome {
            explains: Some(Bound::Kafka),
            ..on_hosts(fired("network.link_half_full", Bound::Network, 1.0), &["b1", "b2", "b3"])
        };
        let verdict =
            combine(vec![fired("client.generator_cpu", Bound::Client, 5.0), waiting.clone(), half_full], true);
        assert_eq!((verdict.bound, verdict.runner_up), (Bound::Client, Some(Bound::Network)));
        // One follower's link full, leaders elsewhere waiting: Kafka's evidence stands.
        let one_link = on_hosts(links, &["b3"]);
        let verdict = combine(vec![one_link, waiting], true);
        assert_eq!((verdict.bound, verdict.runner_up), (Bound::Network, Some(Bound::Kafka)));
    }

    #[test]
    fn two_faults_give_the_heavier_as_verdict_and_the_other_as_runner_up() {
        let verdict = combine(
            vec![
                fired("network.a", Bound::Network, 2.0),
                fired("network.b", Bound::Network, 1.0),
                fired("cpu.a", Bound::Cpu, 1.0),
            ],
            true,
        );
        assert_eq!((verdict.bound, verdict.runner_up), (Bound::Network, Some(Bound::Cpu)));
        // Each names its cause: the heaviest fired rule's.
        assert_eq!((verdict.cause.as_deref(), verdict.runner_up_cause.as_deref()), (Some("network.a"), Some("cpu.a")));
        assert!((verdict.confidence - 0.8 * 0.75).abs() < 1e-9, "{}", verdict.confidence);
        // The runner-up's evidence is kept, after the verdict's; only the verdict's advice is.
        assert_eq!(verdict.evidence.last().map(|e| e.bound), Some(Bound::Cpu));
        assert_eq!(verdict.advice, vec!["network.a advice", "network.b advice"]);
    }

    #[test]
    fn the_capacity_model_above_the_plateau_names_the_next_limit() {
        let rules =
            crate::rules::RuleSet::load_dir(&std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules"))
                .unwrap();
        // Generators flat out: the client binds.
        let mut busy = crate::evidence::Series::new("generator_cpu_busy", "cluster", "ratio");
        (1..=10).for_each(|i| busy.push(i * 1000, 0.97));
        let evidence = Evidence { series: vec![busy], unavailable: Vec::new() };
        let plateau =
            Plateau { found: true, plateau_msgs_per_sec: 200.0, knee_step: Some(2), steps: 3, ..Plateau::default() };
        let ramp = [RampStep { target_rate: 200.0, achieved_rate: 200.0, ..Default::default() }];
        let judge_at = |link_mbps: f64| {
            let workload = crate::model::Workload::producers(6.0, 3, 3);
            let capacities = crate::model::Capacities { link_mbps: Some(link_mbps), ..Default::default() };
            let prediction = crate::model::predict(workload, capacities);
            let check = ModelCheck { prediction: &prediction, observed_ingress_mbps: 6.0 };
            judge(&rules, &evidence, (0, 20_000), &plateau, &ramp, Some(check), &[]).verdict
        };
        // Links that would cap ingress at 9 MB/s, 1.5 times the plateau: the next limit.
        let verdict = judge_at(9.0);
        assert_eq!((verdict.bound, verdict.runner_up), (Bound::Client, Some(Bound::Network)));
        assert_eq!(verdict.runner_up_cause.as_deref(), Some("capacity (links)"));
        // Links far above it are not.
        let verdict = judge_at(30.0);
        assert_eq!((verdict.bound, verdict.runner_up), (Bound::Client, None));
    }

    #[test]
    fn the_model_speaks_to_a_verdict_on_its_own_resource_near_its_ceiling() {
        let prediction = crate::model::predict(
            crate::model::Workload::producers(12.0, 3, 3),
            crate::model::Capacities { link_mbps: Some(12.5), disk_mbps: Some(500.0), ..Default::default() },
        );
        let verdict = |bound: Bound| Verdict { bound, ..combine(Vec::new(), true) };
        assert!(model_explains(&verdict(Bound::Network), &prediction, 12.0));
        assert!(!model_explains(&verdict(Bound::Disk), &prediction, 12.0));
        assert!(!model_explains(&verdict(Bound::Network), &prediction, 5.0));
    }

    #[test]
    fn the_window_starts_a_step_before_the_knee() {
        let steps: Vec<RampStep> =
            (0..5).map(|k| RampStep { started_ms: 1_000 + k * 10_000, ..RampStep::default() }).collect();
        let knee =
            Plateau { found: true, plateau_msgs_per_sec: 100.0, knee_step: Some(3), steps: 5, ..Plateau::default() };
        assert_eq!(judged_window(&steps, &knee, (1_000, 60_000)), (21_000, 60_000));
        let none =
            Plateau { found: false, plateau_msgs_per_sec: 100.0, knee_step: None, steps: 5, ..Plateau::default() };
        assert_eq!(judged_window(&steps, &none, (1_000, 60_000)), (1_000, 60_000));
    }
}
