//! Seed 004's ceiling: not the highest throughput, but the highest rate whose end-to-end
//! latency met an SLA (there: one second on average, producer timestamp to consumer),
//! and where the latency grew on the way to breaking it — the produce path (network,
//! brokers, replication: send to acknowledgement), the consumers (records waiting in
//! Kafka to be fetched and handled), or the sink (its transactions).

use serde::{Deserialize, Serialize};

use crate::kafka::ProduceReport;
use crate::kafka::consume::ConsumeReport;
use crate::plateau::RampStep;

/// The SLA: a bound on the mean and/or the 99th percentile end-to-end latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SlaTarget {
    /// Mean end-to-end latency, ms (seed 004's).
    pub e2e_avg_ms: Option<f64>,
    /// 99th percentile end-to-end latency, ms.
    pub e2e_p99_ms: Option<f64>,
}

impl SlaTarget {
    /// Whether a step's latency met the SLA (a step without consumers' figures did not).
    pub fn met_by(&self, step: &RampStep) -> bool {
        let within = |bound: Option<f64>, value: Option<f64>| match (bound, value) {
            (None, _) => true,
            (Some(bound), Some(value)) => value <= bound,
            (Some(_), None) => false,
        };
        within(self.e2e_avg_ms, step.e2e_avg_ms) && within(self.e2e_p99_ms, step.e2e_p99_ms)
    }
}

/// Where a record's end-to-end time went over one step, means in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyParts {
    /// Send to acknowledgement (the produce path).
    pub produce_ms: f64,
    /// Acknowledgement to handled: waiting in Kafka for the consumers, fetching, handling.
    pub consumers_ms: f64,
    /// The sink's transaction each record waited for.
    pub sink_ms: f64,
}

/// What the SLA judgment found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlaFinding {
    /// The SLA.
    pub target: SlaTarget,
    /// The highest pipeline rate of a step that kept up and met the SLA, msg/s (none: not
    /// even the first step met it).
    pub max_rate_msgs_per_sec: Option<f64>,
    /// The first step, after the last that met it, that broke the SLA (none: none did).
    pub broken_at: Option<RampStep>,
    /// The latency's parts at the lowest step and at the step that broke the SLA.
    pub parts: Option<(LatencyParts, LatencyParts)>,
    /// The part that grew most between them: `produce`, `consumers` or `sink`.
    pub grew_on: Option<String>,
}

/// Judges `steps` (the pipeline's, with consumers' latency; a ramp's or a search's, taken
/// in the order of their targets) against `target`; `parts` gives a step's latency parts.
pub fn judge(steps: &[RampStep], target: SlaTarget, parts: impl Fn(&RampStep) -> Option<LatencyParts>) -> SlaFinding {
    let steps: Vec<RampStep> = crate::plateau::by_target(steps).into_iter().map(|k| steps[k]).collect();
    let met: Vec<bool> = steps.iter().map(|step| step.sustained && target.met_by(step)).collect();
    let max_rate_msgs_per_sec =
        steps.iter().zip(&met).filter(|(_, met)| **met).map(|(step, _)| step.pipeline_rate()).reduce(f64::max);
    let last_met = met.iter().rposition(|&m| m);
    let broken = match last_met {
        Some(k) => (k + 1 < steps.len()).then_some(k + 1),
        None => (!steps.is_empty()).then_some(0),
    };
    let parts = broken.and_then(|k| Some((parts(&steps[0])?, parts(&steps[k])?)));
    let grew_on = parts.map(|(low, high)| {
        let growth = [
            ("produce", high.produce_ms - low.produce_ms),
            ("consumers", high.consumers_ms - low.consumers_ms),
            ("sink", high.sink_ms - low.sink_ms),
        ];
        let (part, _) = growth.iter().fold(growth[0], |best, &next| if next.1 > best.1 { next } else { best });
        part.to_string()
    });
    SlaFinding { target, max_rate_msgs_per_sec, broken_at: broken.map(|k| steps[k]), parts, grew_on }
}

/// A step's latency parts from the generators' and consumers' reports, over the part of
/// the step `plateau::consumed_steps` measures (after its settling share).
pub fn step_parts(produce: &[&ProduceReport], consume: &[&ConsumeReport], step: &RampStep) -> Option<LatencyParts> {
    let (from, to) = (step.measured_from_ms, step.ended_ms);
    let weighted = |pairs: &mut dyn Iterator<Item = (f64, u64)>| {
        let (sum, n) = pairs.fold((0.0, 0u64), |(sum, n), (value, weight)| (sum + value * weight as f64, n + weight));
        (n > 0).then(|| sum / n as f64)
    };
    let produce_ms = weighted(&mut produce.iter().flat_map(|report| {
        report
            .intervals
            .iter()
            .filter(move |i| (from..=to).contains(&(report.started_at_ms + (i.end_secs * 1000.0) as u64)))
            .map(|i| (i.latency_avg_ms, i.records_acked))
    }))?;
    let in_step = || consume.iter().flat_map(|r| &r.intervals).filter(|i| i.at_ms > from && i.at_ms <= to);
    let e2e_ms = weighted(&mut in_step().map(|i| (i.e2e_avg_ms, i.records)))?;
    let sink_ms = weighted(&mut in_step().filter_map(|i| Some((i.insert_avg_ms?, i.records)))).unwrap_or(0.0);
    Some(LatencyParts { produce_ms, consumers_ms: (e2e_ms - produce_ms - sink_ms).max(0.0), sink_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(target: f64, consumed: f64, e2e_avg_ms: f64) -> RampStep {
        RampStep {
            target_rate: target,
            achieved_rate: target,
            sustained: consumed >= 0.95 * target,
            consumed_rate: Some(consumed),
            e2e_avg_ms: Some(e2e_avg_ms),
            e2e_p99_ms: Some(3.0 * e2e_avg_ms),
            ..RampStep::default()
        }
    }

    #[test]
    fn the_sla_rate_is_below_the_throughput_knee_and_the_growth_is_named() {
        // Throughput keeps up to 3000 msg/s, but the mean latency passes 1 s at 2000 (the
        // steps as a search ran them: the order of their targets is what counts).
        let steps = [step(2000.0, 2000.0, 1400.0), step(1000.0, 1000.0, 120.0), step(3000.0, 2990.0, 2500.0)];
        let parts = |s: &RampStep| {
            let k = (s.target_rate / 1000.0) as usize - 1;
            Some(LatencyParts { produce_ms: 20.0 + k as f64, consumers_ms: [90.0, 1370.0, 2470.0][k], sink_ms: 10.0 })
        };
        let finding = judge(&steps, SlaTarget { e2e_avg_ms: Some(1000.0), e2e_p99_ms: None }, parts);
        assert_eq!(finding.max_rate_msgs_per_sec, Some(1000.0));
        assert_eq!(finding.broken_at.map(|s| s.target_rate), Some(2000.0));
        assert_eq!(finding.grew_on.as_deref(), Some("consumers"));
        // A p99 bound is judged on the p99.
        let p99 = judge(&steps, SlaTarget { e2e_avg_ms: None, e2e_p99_ms: Some(500.0) }, parts);
        assert_eq!(p99.max_rate_msgs_per_sec, Some(1000.0));
    }

    #[test]
    fn an_sla_met_throughout_names_no_break_and_one_never_met_says_so() {
        let steps = [step(1000.0, 1000.0, 50.0), step(2000.0, 2000.0, 60.0)];
        let finding = judge(&steps, SlaTarget { e2e_avg_ms: Some(1000.0), e2e_p99_ms: None }, |_| None);
        assert_eq!((finding.max_rate_msgs_per_sec, finding.broken_at), (Some(2000.0), None));
        let never = judge(&steps, SlaTarget { e2e_avg_ms: Some(10.0), e2e_p99_ms: None }, |_| None);
        assert_eq!(never.max_rate_msgs_per_sec, None);
        assert_eq!(never.broken_at.map(|s| s.target_rate), Some(1000.0));
    }
}
