//! The findings report of a diagnosis: `findings.md` (with `timeline.svg`) and the
//! terminal summary. Both are rendered from a [`Diagnosis`] alone, so `plateau report
//! evidence.json` reproduces them exactly.

use std::collections::BTreeMap;
use std::fmt::Write;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

use crate::diagnose::Diagnosis;
use crate::rules::Bound;
use crate::rules::eval::RuleState;

mod pipeline;

fn ratio(value: f64) -> String {
    format!("{:.0} %", value * 100.0)
}

/// An agent as people name its host (`10.0.0.21`), not by its URL; `host:port` when
/// another agent of the diagnosis shares the host (agents on one machine).
fn agent_name(d: &Diagnosis, agent_url: &str) -> String {
    let host = |url: &str| crate::net::Target::Agent(url.to_string()).host();
    let plan = &d.plan;
    let agents = plan.generators.iter().chain(&plan.brokers).chain(&plan.consumers).chain(&d.network_agents);
    let shared = agents.filter(|url| url.as_str() != agent_url).any(|url| host(url) == host(agent_url));
    let name = host(agent_url);
    match agent_url.rsplit_once(':').map(|(_, port)| port.trim_end_matches('/')) {
        Some(port) if shared && port.chars().all(|c| c.is_ascii_digit()) => format!("{name}:{port}"),
        _ => name,
    }
}

/// A network test's received Mbit/s for a table, or that it failed.
fn received_mbit(cell: &crate::net::matrix::MatrixCell) -> String {
    cell.bits_per_second.map(|b| format!("{:.1}", b / 1e6)).unwrap_or_else(|| "failed".into())
}

fn plural(n: u32, one: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") }
}

fn secs(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}

/// The mean of a signal per instance within the judged window.
fn per_instance_avg<'a>(d: &'a Diagnosis, signal: &str) -> Vec<(&'a str, f64)> {
    d.evidence
        .series
        .iter()
        .filter(|s| s.signal == signal)
        .filter_map(|s| {
            let values = s.window(d.window_ms.0, d.window_ms.1);
            (!values.is_empty()).then(|| (s.instance.as_str(), values.iter().sum::<f64>() / values.len() as f64))
        })
        .collect()
}

/// Each host's NIC traffic in the judged window, MB/s in and out, and the busier direction
/// as a share of the link capacity measured to that host, when there is one.
fn nic_load(d: &Diagnosis) -> Vec<(String, f64, f64, Option<f64>)> {
    let rx = per_instance_avg(d, "nic_rx_bytes_per_sec");
    let tx = per_instance_avg(d, "nic_tx_bytes_per_sec");
    let link = per_instance_avg(d, "net_link_capacity_bits_per_sec");
    rx.iter()
        .map(|(instance, rx)| {
            let tx = tx.iter().find(|(i, _)| i == instance).map(|(_, v)| *v).unwrap_or(0.0);
            let share = link.iter().find(|(i, _)| i == instance).map(|(_, bits)| rx.max(tx) * 8.0 / bits);
            (instance.to_string(), rx / 1e6, tx / 1e6, share)
        })
        .collect()
}

fn nic_line(rx: f64, tx: f64, share: Option<f64>) -> String {
    format!(
        "in {rx:.2} MB/s, out {tx:.2} MB/s{}",
        share.map(|s| format!(" ({} of the measured link)", ratio(s))).unwrap_or_default()
    )
}

/// `findings.md`, a section after another.
pub fn markdown(d: &Diagnosis) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# plateau findings\n");
    verdict_section(&mut md, d);
    evidence_section(&mut md, d);
    pipeline::pipeline_section(&mut md, d);
    network_section(&mut md, d);
    disk_section(&mut md, d);
    cpu_section(&mut md, d);
    kafka_section(&mut md, d);
    model_section(&mut md, d);
    missing_section(&mut md, d);
    reproduce_section(&mut md, d);
    md
}

/// The verdict, the plateau, the advice and what would lift the ceiling.
fn verdict_section(md: &mut String, d: &Diagnosis) {
    let v = &d.verdict;
    let _ = writeln!(md, "## Verdict\n");
    let _ = writeln!(
        md,
        "**{}**-bound{}{}, confidence {:.2}{}.\n",
        v.bound,
        v.cause.as_deref().map(|c| format!(" — cause: **{c}**")).unwrap_or_default(),
        v.explained
            .iter()
            .map(|(bound, cause)| format!(", which explains the {bound} evidence ({cause})"))
            .collect::<String>(),
        v.confidence,
        v.runner_up
            .map(|r| format!(
                " (runner-up: {r}{})",
                v.runner_up_cause.as_deref().map(|c| format!(": {c}")).unwrap_or_default()
            ))
            .unwrap_or_default()
    );
    if d.plateau.found {
        let _ = writeln!(
            md,
            "Throughput stopped following the target at about **{:.0} msg/s**{}{}.",
            d.plateau.plateau_msgs_per_sec,
            d.observed_ingress_mbps.map(|m| format!(" ({m:.2} MB/s of producer ingress)")).unwrap_or_default(),
            if d.plateau.sustained_msgs_per_sec > 0.0 {
                format!("; the highest rate of a step that kept up: {:.0} msg/s", d.plateau.sustained_msgs_per_sec)
            } else {
                String::new()
            }
        );
    } else if v.bound == Bound::Unknown {
        let _ = writeln!(
            md,
            "No load reached the cluster, so there is no plateau and no headroom to report; see What was missing."
        );
    } else {
        let top = d.ramp.iter().map(|s| s.target_rate).fold(0.0, f64::max);
        let _ = writeln!(
            md,
            "No plateau: achieved throughput followed the target up to {top:.0} msg/s, the highest target (the headroom is above that)."
        );
    }
    if d.interrupted {
        let _ = writeln!(md, "\nThe run was interrupted; this report covers what was measured until then.");
    }
    for advice in &v.advice {
        let _ = writeln!(md, "\n- {advice}");
    }
    if !d.lifts.is_empty() {
        let _ = writeln!(md, "\nWhat would lift the ceiling towards the ramp's top, by the capacity model:\n");
        for lift in &d.lifts {
            let _ = writeln!(md, "- {}: about {:.1} MB/s of producer ingress", lift.change, lift.ceiling_mbps);
        }
    }
}

/// The rules that fired, the timeline and the load's steps.
fn evidence_section(md: &mut String, d: &Diagnosis) {
    let v = &d.verdict;
    let _ = writeln!(md, "\n## Evidence\n");
    let _ = writeln!(md, "| rule | bound | evidence |\n| --- | --- | --- |");
    for line in &v.evidence {
        let _ = writeln!(md, "| `{}` | {} | {} |", line.rule, line.bound, line.text.replace('|', "\\|"));
    }
    if v.evidence.is_empty() {
        let _ = writeln!(md, "| — | — | no rule fired |");
    }
    let _ = writeln!(md, "\n![target vs achieved and utilization](timeline.svg)\n");
    let _ = writeln!(md, "{}\n", load_line(d));
    if d.consume.is_empty() {
        let _ = writeln!(md, "| step | target msg/s | achieved msg/s | kept up |\n| ---: | ---: | ---: | --- |");
    } else {
        let _ = writeln!(
            md,
            "| step | target msg/s | achieved msg/s | consumed msg/s | e2e avg ms | e2e p99 ms | kept up |\n| ---: | ---: | ---: | ---: | ---: | ---: | --- |"
        );
    }
    let optional = |value: Option<f64>, digits: usize| value.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    for (i, step) in d.ramp.iter().enumerate() {
        let consumers = if d.consume.is_empty() {
            String::new()
        } else {
            format!(
                " {} | {} | {} |",
                optional(step.consumed_rate, 0),
                optional(step.e2e_avg_ms, 1),
                optional(step.e2e_p99_ms, 1)
            )
        };
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} |{consumers} {} |",
            i + 1,
            step.target_rate,
            step.achieved_rate,
            if step.sustained { "yes" } else { "no" }
        );
    }
}

/// The network tests and each host's NIC traffic.
fn network_section(md: &mut String, d: &Diagnosis) {
    let _ = writeln!(md, "\n## Network\n");
    if d.network.is_empty() {
        let _ = writeln!(md, "No network tests ran.");
    } else {
        let name = |i: usize| d.network_agents.get(i).map(|url| agent_name(d, url)).unwrap_or_else(|| format!("#{i}"));
        if let Some(secs) = d.network_secs {
            let _ = writeln!(
                md,
                "{} TCP and {} UDP tests in parallel rounds of disjoint pairs, {secs:.0} s in all.\n",
                d.network.len(),
                d.network_udp.len()
            );
        }
        let _ =
            writeln!(md, "| from | to | TCP Mbit/s | retransmits | limited by |\n| --- | --- | ---: | ---: | --- |");
        for cell in &d.network {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                name(cell.from),
                name(cell.to),
                received_mbit(cell),
                cell.retransmits.map(|r| r.to_string()).unwrap_or_default(),
                cell.limited_by.map(|l| format!("{l:?}").to_lowercase()).or(cell.error.clone()).unwrap_or_default()
            );
        }
        if !d.network_udp.is_empty() {
            let _ = writeln!(
                md,
                "\nUDP into each broker, offered above the TCP capacity measured towards it: a link that caps at its rate drops the excess (seed 000 saw ~65 % lost at high rates).\n"
            );
            let _ = writeln!(
                md,
                "| from | to | offered Mbit/s | received Mbit/s | lost |\n| --- | --- | ---: | ---: | ---: |"
            );
            for cell in &d.network_udp {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    name(cell.from),
                    name(cell.to),
                    cell.offered_bits_per_second.map(|b| format!("{:.1}", b / 1e6)).unwrap_or_default(),
                    received_mbit(cell),
                    cell.loss_percent.map(|l| format!("{l:.1} %")).or(cell.error.clone()).unwrap_or_default()
                );
            }
        }
    }

    for (instance, rx, tx, share) in nic_load(d) {
        let _ = writeln!(md, "\n{instance}: NIC traffic {} in the judged window.", nic_line(rx, tx, share));
    }
}

/// The disk probes and the disks' utilization.
fn disk_section(md: &mut String, d: &Diagnosis) {
    let _ = writeln!(md, "\n## Disk\n");
    if d.disks.is_empty() {
        let _ = writeln!(md, "No disk probes ran.");
    } else {
        let _ =
            writeln!(md, "| broker | append MB/s | fsync p99 ms | random read IOPS |\n| --- | ---: | ---: | ---: |");
        for disk in &d.disks {
            let cell =
                |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| disk.error.clone().unwrap_or_default());
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                agent_name(d, &disk.agent),
                cell(disk.write_mb_per_sec),
                cell(disk.fsync_p99_ms),
                cell(disk.read_iops)
            );
        }
    }
    for (signal, title) in [("disk_util", "busiest disk utilization")] {
        for (instance, value) in per_instance_avg(d, signal) {
            let _ = writeln!(md, "\n{instance}: {title} {} in the judged window.", ratio(value));
        }
    }
}

/// Each host's CPU, and the generators'.
fn cpu_section(md: &mut String, d: &Diagnosis) {
    let _ = writeln!(md, "\n## CPU\n");
    let cpu = per_instance_avg(d, "host_cpu_busy");
    let generators = per_instance_avg(d, "generator_cpu_busy");
    if cpu.is_empty() && generators.is_empty() {
        let _ = writeln!(md, "No CPU data.");
    }
    let machine: BTreeMap<&str, f64> = per_instance_avg(d, "machine_cpu_busy").into_iter().collect();
    let quota: BTreeMap<&str, f64> = per_instance_avg(d, "host_cpu_quota_cores").into_iter().collect();
    for (instance, value) in cpu {
        let busy = ratio(value);
        let _ = match (quota.get(instance), machine.get(instance)) {
            (Some(cores), Some(machine)) => writeln!(
                md,
                "- {instance}: a container — CPU busy {busy} of its {cores:.2}-core quota on average in the judged window (the whole machine, its neighbours included: {})",
                ratio(*machine)
            ),
            (None, Some(machine)) => writeln!(
                md,
                "- {instance}: a container without a CPU quota — it used {busy} of the machine's cores on average in the judged window (the whole machine, its neighbours included: {})",
                ratio(*machine)
            ),
            _ => writeln!(md, "- {instance}: CPU busy {busy} on average in the judged window"),
        };
    }
    for (_, value) in generators {
        let _ = writeln!(md, "- generators: busiest at {} CPU on average", ratio(value));
    }
    if !d.watching.is_empty() {
        let _ = writeln!(md, "\nWhat each agent read beside its host's CPU:\n");
        for (url, reads) in &d.watching {
            let _ = writeln!(md, "- {}: {reads}", agent_name(d, url));
        }
    }
}

/// Each generator's produce run.
fn kafka_section(md: &mut String, d: &Diagnosis) {
    let _ = writeln!(md, "\n## Kafka\n");
    for run in &d.produce {
        match &run.report {
            Some(r) => {
                let _ = writeln!(
                    md,
                    "- {}: {} records acknowledged of {} sent, {:.0} msg/s, {:.2} MB/s; delivery latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; publish delay p99 {:.1} ms; {} errors; {} of {} partitions used (skew {:.2}){}",
                    agent_name(d, &run.agent),
                    r.records_acked,
                    r.records_sent,
                    r.records_per_sec,
                    r.mb_per_sec,
                    r.latency_ms.p50,
                    r.latency_ms.p99,
                    r.latency_ms.max,
                    r.publish_delay_ms.p99,
                    r.errors.total,
                    r.partitions.used,
                    r.partitions.total,
                    r.partitions.skew,
                    r.validation
                        .as_ref()
                        .map(|v| format!(
                            "; validation: {} lost, {} duplicated, {} out of order",
                            v.lost, v.duplicated, v.out_of_order
                        ))
                        .unwrap_or_default()
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "- {}: no report ({})",
                    agent_name(d, &run.agent),
                    run.error.as_deref().unwrap_or("unknown")
                );
            }
        }
    }
}

/// The capacity model against the observed plateau.
fn model_section(md: &mut String, d: &Diagnosis) {
    let _ = writeln!(md, "\n## Capacity model\n");
    match &d.model {
        Some(model) => {
            let _ = writeln!(
                md,
                "Measured capacities: link {} MB/s per broker, disk {} MB/s{}. Predicted ceiling: **{}** at {:.2} MB/s of producer ingress; observed plateau {:.2} MB/s{}.\n",
                model.capacities.link_mbps.map(|v| format!("{v:.2}")).unwrap_or_else(|| "?".into()),
                model.capacities.disk_mbps.map(|v| format!("{v:.1}")).unwrap_or_else(|| "?".into()),
                if model.capacities.disk_is_write_limit {
                    " (the brokers' containers' write limit, below what the disk probe measured)"
                } else {
                    ""
                },
                model.binding.as_deref().unwrap_or("-"),
                model.predicted_max_ingress_mbps.unwrap_or(0.0),
                d.observed_ingress_mbps.unwrap_or(0.0),
                match d.model_agrees {
                    Some(true) => " — they agree within 15 %",
                    Some(false) => " — they do not agree within 15 %",
                    None => "",
                }
            );
            let w = &model.workload;
            let _ = writeln!(
                md,
                "The model used replication factor {} ({}), {}, and a consumer fan-out of {:.0} ({}): each MB/s of ingress reaches a broker once from the producers and {} more times as replication between brokers, and is written to disk by {}.\n",
                w.replication_factor,
                if d.plan.replication_factor.is_some_and(|rf| rf != w.replication_factor) {
                    "the topic's, as the cluster reported it; the plan's was not used"
                } else {
                    "the topic's"
                },
                plural(w.brokers, "broker"),
                model.fan_out,
                if model.fan_out == 0.0 { "no consumers were measured" } else { "consumers measured" },
                w.replication_factor.saturating_sub(1),
                plural(w.replication_factor, "broker")
            );
            let _ = writeln!(md, "```\n{}```", crate::model::sankey(model));
        }
        None => {
            let _ = writeln!(md, "Not enough measured capacity (network and disk probes) to model.");
        }
    }
}

/// What was missing, and the rules it left unknown.
fn missing_section(md: &mut String, d: &Diagnosis) {
    let v = &d.verdict;
    let _ = writeln!(md, "\n## What was missing\n");
    if v.missing.is_empty() {
        let _ = writeln!(md, "Nothing: every rule could be evaluated.");
    }
    for missing in &v.missing {
        let _ = writeln!(md, "- {missing}");
    }
    let unknown: Vec<&str> =
        v.rules.iter().filter(|r| matches!(r.state, RuleState::Unknown { .. })).map(|r| r.id.as_str()).collect();
    if !unknown.is_empty() {
        let _ = writeln!(md, "\nRules that could not be evaluated: {}.", unknown.join(", "));
    }
}

/// The command and the run's times.
fn reproduce_section(md: &mut String, d: &Diagnosis) {
    let _ = writeln!(md, "\n## How to reproduce\n");
    let _ = writeln!(md, "```\n{}\n```\n", d.command);
    let _ = writeln!(
        md,
        "Run from {} to {}; the rules judged {} to {}.",
        secs(d.started_ms),
        secs(d.ended_ms),
        secs(d.window_ms.0),
        secs(d.window_ms.1)
    );
}

/// The terminal summary.
pub fn terminal(d: &Diagnosis, out_dir: &std::path::Path) -> String {
    let v = &d.verdict;
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec!["plateau", "finding"]);
    if table.width().is_none() {
        table.set_width(120);
    }
    let with_cause = |bound: crate::rules::Bound, cause: &Option<String>| match cause {
        Some(cause) => format!("{bound}: {cause}"),
        None => bound.to_string(),
    };
    table.add_row(vec![
        "verdict".to_string(),
        format!("{} (confidence {:.2})", with_cause(v.bound, &v.cause), v.confidence),
    ]);
    if let Some(runner_up) = v.runner_up {
        table.add_row(vec!["runner-up".to_string(), with_cause(runner_up, &v.runner_up_cause)]);
    }
    table.add_row(vec![
        "plateau".to_string(),
        if d.plateau.found {
            format!("{:.0} msg/s", d.plateau.plateau_msgs_per_sec)
        } else {
            "none up to the highest target".into()
        },
    ]);
    for line in v.evidence.iter().take(5) {
        table.add_row(vec![format!("evidence ({})", line.bound), line.text.clone()]);
    }
    let containers: Vec<&str> = per_instance_avg(d, "machine_cpu_busy").into_iter().map(|(i, _)| i).collect();
    for (instance, value) in per_instance_avg(d, "host_cpu_busy") {
        let of = if containers.contains(&instance) { " (its container's)" } else { "" };
        table.add_row(vec![format!("cpu {instance}"), format!("{}{of}", ratio(value))]);
    }
    for (instance, value) in per_instance_avg(d, "disk_util") {
        table.add_row(vec![format!("disk {instance}"), ratio(value)]);
    }
    for (instance, rx, tx, share) in nic_load(d) {
        table.add_row(vec![format!("network {instance}"), nic_line(rx, tx, share)]);
    }
    for advice in &v.advice {
        table.add_row(vec!["advice".to_string(), advice.clone()]);
    }
    for lift in &d.lifts {
        table.add_row(vec!["would lift".to_string(), format!("{}: ~{:.1} MB/s", lift.change, lift.ceiling_mbps)]);
    }
    for run in &d.consume {
        let line = match &run.report {
            Some(r) => format!(
                "{:.0} msg/s, end-to-end avg {:.0} ms, p99 {:.0} ms, lag max {}, {} lost, {} duplicated",
                r.records_per_sec, r.e2e_ms.avg, r.e2e_ms.p99, r.lag.max, r.validation.lost, r.validation.duplicated
            ),
            None => format!("no report ({})", run.error.as_deref().unwrap_or("unknown")),
        };
        table.add_row(vec![format!("consumers {}", agent_name(d, &run.agent)), line]);
    }
    if let Some(sla) = &d.sla {
        let grew = sla
            .grew_on
            .as_deref()
            .map(|part| format!("; latency grew on {}", pipeline::part_name(part)))
            .unwrap_or_default();
        table.add_row(vec![
            "within the SLA".to_string(),
            format!("{}{grew}", pipeline::sla_line(sla, d.plateau.plateau_msgs_per_sec)),
        ]);
    }
    if !v.missing.is_empty() {
        table.add_row(vec!["missing".to_string(), format!("{} inputs (see findings.md)", v.missing.len())]);
    }
    format!("{table}\nfindings: {}\n", out_dir.join("findings.md").display())
}

/// Writes `evidence.json`, `findings.md` and `timeline.svg` into `out_dir`. The evidence
/// is written first, so a failure later loses no measurement.
pub fn write_all(d: &Diagnosis, out_dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create report directory {}", out_dir.display()))?;
    let evidence = out_dir.join("evidence.json");
    std::fs::write(&evidence, serde_json::to_vec_pretty(d)?)
        .with_context(|| format!("cannot write {}", evidence.display()))?;
    write_rendered(d, out_dir)
}

/// Writes `findings.md` and `timeline.svg` (what `plateau report` re-renders).
pub fn write_rendered(d: &Diagnosis, out_dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let findings = out_dir.join("findings.md");
    std::fs::write(&findings, markdown(d)).with_context(|| format!("cannot write {}", findings.display()))?;
    let svg = crate::report::chart::timeline_svg(d).map_err(|e| anyhow::anyhow!("cannot draw the timeline: {e}"))?;
    let chart = out_dir.join("timeline.svg");
    std::fs::write(&chart, svg).with_context(|| format!("cannot write {}", chart.display()))?;
    Ok(())
}

/// How the load ran: seed 000's kind of ramp, or the rate search and the bracket it closed.
fn load_line(d: &Diagnosis) -> String {
    let steps = d.ramp.len();
    match &d.plan.ramp {
        Some(ramp) => format!("The load: the ramp `{ramp}` (START:STEP:EVERY_S:MAX), {steps} steps."),
        None => {
            let bracket = match crate::plateau::search_bracket(&d.ramp) {
                Some((kept, missed)) if d.plateau.found => {
                    format!("; the knee lies between the targets {kept:.0} (kept up) and {missed:.0} msg/s (did not)")
                }
                _ => String::new(),
            };
            format!("The load: the rate search `{}` (START:MAX:HOLD_S), {steps} steps{bracket}.", d.plan.search)
        }
    }
}

/// Reads an `evidence.json`, checking its layout version.
pub fn read_evidence(path: &std::path::Path) -> anyhow::Result<Diagnosis> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let version: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    match version.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == crate::diagnose::EVIDENCE_VERSION as u64 => {}
        Some(v) => anyhow::bail!(
            "{} has layout version {v}; this plateau reads version {}",
            path.display(),
            crate::diagnose::EVIDENCE_VERSION
        ),
        None => anyhow::bail!("{} is not a plateau evidence.json (no version)", path.display()),
    }
    let mut diagnosis: Diagnosis = serde_json::from_value(version)
        .with_context(|| format!("{} does not match the evidence.json layout", path.display()))?;
    // Steps saved before they carried their times ran on the ramp's schedule.
    if let Some(ramp) = diagnosis.plan.ramp.as_ref().and_then(|r| r.parse::<crate::kafka::Ramp>().ok())
        && diagnosis.ramp.iter().all(|step| step.ended_ms == 0)
    {
        let every = ramp.every.as_millis() as u64;
        for (k, step) in diagnosis.ramp.iter_mut().enumerate() {
            step.started_ms = diagnosis.ramp_started_ms + k as u64 * every;
            step.measured_from_ms = step.started_ms + (every as f64 * crate::kafka::report::SETTLE_SHARE) as u64;
            step.ended_ms = step.started_ms + every;
        }
    }
    Ok(diagnosis)
}
