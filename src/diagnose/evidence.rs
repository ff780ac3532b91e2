//! The evidence phase: every agent's samples, Prometheus and JMX over the run
//! (`evidence::gather`), with plateau's own measurements added as series — the probes'
//! capacities, the produce and consume runs' figures, the topic's replication factor and
//! the cluster's size — and what could not be had named.

use super::{Capacities, Run, preflight::Preflight, ramp::Ramped};
use crate::evidence::gather::Sources;
use crate::evidence::{Evidence, measured};
use crate::kafka::ProduceReport;
use crate::kafka::consume::ConsumeReport;

/// The evidence of a diagnosis whose load has run.
pub(super) fn gather(run: &Run<'_>, live: &Preflight, ramped: &mut Ramped, capacities: &Capacities) -> Evidence {
    let catalog = &run.rules.catalog;
    let sources = Sources {
        token: run.agents.token,
        hosts: &live.brokers,
        generators: &live.generators,
        consumers: &live.consumers,
        databases: &live.databases,
        prometheus: run.plan.prometheus.as_deref(),
        jmx: ramped.jmx.take(),
    };
    let mut evidence =
        crate::evidence::gather::gather(catalog, sources, run.started_ms, ramped.started_ms, ramped.ended_ms);
    // Capacities measured before the ramp hold for the whole run: stamped at its end,
    // inside the window the rules judge.
    let probed = capacities.network.series.iter().chain(&capacities.disk_series);
    evidence.series.extend(measured::best_at(probed, ramped.ended_ms));
    let reports: Vec<&ProduceReport> = ramped.produce.iter().filter_map(|p| p.report.as_ref()).collect();
    evidence.series.extend(measured::from_produce_runs(
        catalog,
        &reports,
        (ramped.started_ms, ramped.ended_ms),
        run.plan.producer.max_in_flight(),
    ));
    if let Some(rf) = live.replication_factor.or(run.plan.replication_factor) {
        evidence.series.extend(measured::constant(catalog, "topic_replication_factor", rf as f64, ramped.ended_ms));
    }
    if let Some(brokers) = live.cluster_brokers {
        evidence.series.extend(measured::constant(catalog, "cluster_brokers", brokers as f64, ramped.ended_ms));
    }
    let consumed: Vec<&ConsumeReport> = ramped.consume.iter().filter_map(|c| c.report.as_ref()).collect();
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
    evidence
}
