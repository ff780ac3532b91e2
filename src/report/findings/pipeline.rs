//! The findings' section on the stage past Kafka: every event counted, each consumer
//! agent's run, and the SLA's rate.

use std::fmt::Write;

use super::agent_name;
use crate::diagnose::Diagnosis;

/// The stage past Kafka: each consumer agent's run, and the SLA's rate.
pub(super) fn pipeline_section(md: &mut String, d: &Diagnosis) {
    if d.consume.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Pipeline past Kafka\n");
    // Every event counted: what the producers had acknowledged against what the group read.
    let acked: u64 = d.produce.iter().filter_map(|g| g.report.as_ref()).map(|r| r.records_acked).sum();
    let read: u64 = d.consume.iter().filter_map(|c| c.report.as_ref()).map(|r| r.validation.unique).sum();
    let _ = match acked.checked_sub(read) {
        Some(0) => writeln!(md, "- every one of the {acked} events the producers had acknowledged was read"),
        Some(unread) => writeln!(
            md,
            "- {read} of the {acked} events the producers had acknowledged were read: {unread} were not read before the consumers stopped, so the validation below cannot speak for them"
        ),
        None => {
            writeln!(md, "- {read} distinct events read, {acked} acknowledged by the producers (the topic held others)")
        }
    };
    for run in &d.consume {
        let Some(r) = &run.report else {
            let _ = writeln!(
                md,
                "- {}: no report ({})",
                agent_name(d, &run.agent),
                run.error.as_deref().unwrap_or("unknown")
            );
            continue;
        };
        let v = &r.validation;
        let m = &r.membership;
        let _ = writeln!(
            md,
            "- {}: {} members of group `{}` on {} partitions ({} idle, {} rebalances); {} records, {:.0} msg/s; end-to-end latency avg {:.1} ms, p50 {:.1}, p99 {:.1}, p99.9 {:.1}; lag {} (max {}); validation: {} lost, {} duplicated, {} out of order{}",
            agent_name(d, &run.agent),
            r.members,
            r.group,
            r.partitions,
            m.idle_members,
            m.rebalances,
            r.consumed,
            r.records_per_sec,
            r.e2e_ms.avg,
            r.e2e_ms.p50,
            r.e2e_ms.p99,
            r.e2e_ms.p999,
            serde_json::to_value(r.lag.status).ok().and_then(|s| s.as_str().map(str::to_string)).unwrap_or_default(),
            r.lag.max,
            v.lost,
            v.duplicated,
            v.out_of_order,
            r.sink
                .as_ref()
                .map(|sink| format!(
                    "; sink `{}`: {} rows, transactions p99 {:.1} ms{}",
                    sink.table,
                    sink.rows_inserted,
                    sink.insert_ms.p99,
                    if sink.failed_batches > 0 { format!(", {} failed", sink.failed_batches) } else { String::new() }
                ))
                .unwrap_or_default()
        );
    }
    let Some(sla) = &d.sla else { return };
    let bound = [
        sla.target.e2e_avg_ms.map(|ms| format!("mean end-to-end latency ≤ {ms:.0} ms")),
        sla.target.e2e_p99_ms.map(|ms| format!("p99 ≤ {ms:.0} ms")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" and ");
    let _ = writeln!(md, "\nSeed 004's ceiling, the highest rate within the SLA ({bound}):\n");
    let _ = writeln!(md, "- {}", sla_line(sla, d.plateau.plateau_msgs_per_sec));
    if let (Some((low, high)), Some(part)) = (&sla.parts, &sla.grew_on) {
        let _ = writeln!(
            md,
            "- the latency grew on {}: from the lowest step to the one that broke the SLA, the produce path (send → acknowledgement) {:.1} → {:.1} ms, the consumers (waiting in Kafka, fetching, handling) {:.1} → {:.1} ms, the sink's transactions {:.1} → {:.1} ms",
            part_name(part),
            low.produce_ms,
            high.produce_ms,
            low.consumers_ms,
            high.consumers_ms,
            low.sink_ms,
            high.sink_ms
        );
    }
}

/// What the SLA finding says in one line.
pub(super) fn sla_line(sla: &crate::sla::SlaFinding, plateau_msgs_per_sec: f64) -> String {
    let rate = match sla.max_rate_msgs_per_sec {
        Some(rate) => format!("{rate:.0} msg/s met it"),
        None => "not even the ramp's first step met it".to_string(),
    };
    let broken = match &sla.broken_at {
        // The step after the last that met the SLA: its latency broke it, or the pipeline
        // stopped keeping up first.
        Some(step) if step.sustained => format!(
            "; broken at a target of {:.0} msg/s (avg {:.1} ms, p99 {:.1} ms)",
            step.target_rate,
            step.e2e_avg_ms.unwrap_or(0.0),
            step.e2e_p99_ms.unwrap_or(0.0)
        ),
        Some(step) => format!(
            "; at a target of {:.0} msg/s the pipeline stopped keeping up before the latency broke it (avg {:.1} ms, p99 {:.1} ms)",
            step.target_rate,
            step.e2e_avg_ms.unwrap_or(0.0),
            step.e2e_p99_ms.unwrap_or(0.0)
        ),
        None => "; no step broke it".to_string(),
    };
    format!("{rate}{broken}; the throughput knee: {plateau_msgs_per_sec:.0} msg/s")
}

pub(super) fn part_name(part: &str) -> &'static str {
    match part {
        "produce" => "the produce path (network, brokers, replication)",
        "sink" => "the sink (its transactions)",
        _ => "the consumers (records waiting in Kafka to be fetched and handled)",
    }
}
