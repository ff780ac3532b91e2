//! Judgment: the knee of the generators' summed steps, the window the rules judge, the
//! capacity model from the measured capacities, and the verdict through `verdict::judge`
//! (the one function the controller's "Diagnose now" calls too).

use super::{ConsumerRun, DiskCell, GeneratorRun, Judgment};
use crate::evidence::Evidence;
use crate::model::{Capacities, Workload};
use crate::net::matrix::MatrixCell;
use crate::plateau::{self};
use crate::rules::RuleSet;

/// What judgment needs besides the evidence.
pub struct Facts<'a> {
    /// Every generator's run.
    pub produce: &'a [GeneratorRun],
    /// Every consumer agent's run.
    pub consume: &'a [ConsumerRun],
    /// Unix ms the ramp started and ended.
    pub ramp_ms: (u64, u64),
    /// Whether each step kept up as the load's stop rule judged it while it ran.
    pub decided: &'a [bool],
    /// TCP tests, and how many of the tested agents are generators (the rest are brokers).
    pub network: (&'a [MatrixCell], usize),
    /// Disk probes.
    pub disks: &'a [DiskCell],
    /// The topic's replication factor.
    pub replication_factor: Option<u32>,
    /// Live broker agents.
    pub brokers: usize,
    /// Failed preflight checks.
    pub failures: &'a [String],
    /// The ramp's highest target, msg/s over all generators: what the user wanted to reach.
    pub target_msgs_per_sec: f64,
    /// Seed 004's end-to-end latency SLA, when the plan gives one.
    pub sla: Option<crate::sla::SlaTarget>,
}

/// The tightest write limit on a broker host's watched container, MB/s (10^6 bytes), as
/// its agent last read it.
fn write_limit_mbps(evidence: &Evidence) -> Option<f64> {
    evidence
        .series
        .iter()
        .filter(|s| s.signal == "cgroup_io_write_limit_bytes_per_sec")
        .filter_map(|s| s.values.last())
        .map(|bytes| bytes / 1e6)
        .reduce(f64::min)
}

/// Judges a diagnosis's evidence.
pub fn judge(rules: &RuleSet, evidence: &Evidence, facts: &Facts<'_>) -> Judgment {
    let reports: Vec<_> = facts.produce.iter().filter_map(|p| p.report.as_ref()).collect();
    let mut ramp = plateau::combine_steps(&reports.iter().filter_map(|r| r.steps.clone()).collect::<Vec<_>>());
    let consume_reports: Vec<_> = facts.consume.iter().filter_map(|c| c.report.as_ref()).collect();
    let consumed: Vec<Vec<crate::kafka::consume::ConsumeInterval>> =
        consume_reports.iter().map(|r| r.intervals.clone()).collect();
    if !consumed.is_empty() {
        let per_step = plateau::consumed_steps(&consumed, &ramp);
        ramp = plateau::with_consumers(&ramp, &per_step);
    }
    let ramp = plateau::as_decided(ramp, facts.decided);
    let sla = facts.sla.filter(|_| !consumed.is_empty()).map(|target| {
        crate::sla::judge(&ramp, target, |step| crate::sla::step_parts(&reports, &consume_reports, step))
    });
    let found = plateau::find_plateau(&ramp);
    let window_ms = crate::verdict::judged_window(&ramp, &found, facts.ramp_ms);
    let bytes_per_record =
        reports.iter().filter(|r| r.records_per_sec > 0.0).map(|r| r.mb_per_sec * 1e6 / r.records_per_sec).next();
    let observed_ingress_mbps = bytes_per_record.map(|b| found.plateau_msgs_per_sec * b / 1e6);
    let (cells, generators) = facts.network;
    // The slowest link into a broker, at the capacity TCP measured over it.
    let link_mbps =
        cells.iter().filter(|c| c.to >= generators).filter_map(|c| c.bits_per_second).map(|b| b / 8e6).reduce(f64::min);
    let probed_disk_mbps = facts.disks.iter().filter_map(|d| d.write_mb_per_sec).reduce(f64::min);
    // A broker container's write limit below what its disk can do is the capacity.
    let write_limit_mbps = write_limit_mbps(evidence);
    let disk_is_write_limit = write_limit_mbps.is_some_and(|limit| probed_disk_mbps.is_none_or(|disk| limit < disk));
    let disk_mbps = if disk_is_write_limit { write_limit_mbps } else { probed_disk_mbps };
    let model = observed_ingress_mbps.filter(|_| link_mbps.is_some() || disk_mbps.is_some()).map(|ingress| {
        let workload =
            Workload::producers(ingress.max(0.001), facts.replication_factor.unwrap_or(1), facts.brokers.max(1) as u32);
        crate::model::predict(workload, Capacities { link_mbps, disk_mbps, disk_is_write_limit })
    });
    let check = crate::verdict::ModelCheck::of(model.as_ref(), observed_ingress_mbps);
    let crate::verdict::Judgment { verdict, model_agrees } =
        crate::verdict::judge(rules, evidence, window_ms, &found, &ramp, check, facts.failures);
    let lifts = match (&model, bytes_per_record, observed_ingress_mbps) {
        (Some(prediction), Some(bytes), Some(observed))
            if crate::verdict::model_explains(&verdict, prediction, observed) =>
        {
            crate::model::lifts(prediction, facts.target_msgs_per_sec * bytes / 1e6)
        }
        _ => Vec::new(),
    };
    Judgment { ramp, plateau: found, window_ms, verdict, model, observed_ingress_mbps, model_agrees, lifts, sla }
}
