//! A sweep's report: `sweep.md` (a comparison table, then one block per cell in seed
//! 002's reporting template), `sweep.csv` for spreadsheets, and two charts —
//! `by-size.svg` and `by-partitions.svg`, throughput and p99 delivery latency against
//! message size and against partition count. All are functions of `sweep.json` alone, so
//! `plateau report sweep.json` reproduces them.

mod chart;

use self::chart::{Axis, chart_svg};

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::diagnose::sweep::{Cell, Sweep};

/// Writes `sweep.json` first (a failure later loses no measurement), then the rest.
pub fn write_all(sweep: &Sweep, out_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let json = out_dir.join("sweep.json");
    std::fs::write(&json, serde_json::to_vec_pretty(sweep)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    write_rendered(sweep, out_dir)
}

/// Writes `sweep.md`, `sweep.csv` and the charts.
pub fn write_rendered(sweep: &Sweep, out_dir: &Path) -> anyhow::Result<()> {
    let write = |name: &str, text: String| {
        let path = out_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write("sweep.md", markdown(sweep))?;
    write("sweep.csv", csv(sweep))?;
    for axis in [Axis::Size, Axis::Partitions] {
        let svg = chart_svg(sweep, axis).map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", axis.file()))?;
        write(axis.file(), svg)?;
    }
    Ok(())
}

/// Reads a `sweep.json`, checking its layout version.
pub fn read_sweep(path: &Path) -> anyhow::Result<Sweep> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == crate::diagnose::sweep::SWEEP_VERSION as u64 => {}
        Some(v) => anyhow::bail!(
            "{} has layout version {v}; this plateau reads version {}",
            path.display(),
            crate::diagnose::sweep::SWEEP_VERSION
        ),
        None => anyhow::bail!("{} is not a plateau sweep.json (no version)", path.display()),
    }
    serde_json::from_value(value).with_context(|| format!("{} does not match the sweep.json layout", path.display()))
}

/// Whether a JSON file is a sweep's (it has cells) rather than a diagnosis's evidence.
pub fn is_sweep(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|value| value.get("cells").is_some() && value.get("planned_cells").is_some())
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".into())
}

fn verdict_text(cell: &Cell) -> String {
    match (&cell.failed, &cell.verdict) {
        (Some(why), _) => format!("failed: {why}"),
        (None, Some(v)) => {
            let bound = match &v.cause {
                Some(cause) => format!("{}: {cause}", v.bound),
                None => v.bound.clone(),
            };
            match &v.runner_up {
                Some(next) => format!("{bound} ({:.2}; then {next})", v.confidence),
                None => format!("{bound} ({:.2})", v.confidence),
            }
        }
        (None, None) => "-".into(),
    }
}

fn catch_up_text(cell: &Cell) -> String {
    match &cell.catch_up {
        None => "not run".into(),
        Some(c) => match (c.drained_secs, &c.error) {
            (Some(secs), None) => format!(
                "{} records drained in {secs:.1} s: {:.0} msg/s, {:.2} MB/s (group joined in {:.0} ms)",
                c.backlog_records, c.records_per_sec, c.mb_per_sec, c.join_ms
            ),
            (_, Some(error)) => error.clone(),
            (None, None) => format!("{} records, not drained", c.backlog_records),
        },
    }
}

/// A health figure as a reader says it.
fn health_text(cell: &Cell) -> String {
    if cell.broker_health.is_empty() {
        return "no broker metrics (no Prometheus or JMX in the plan)".into();
    }
    let parts: Vec<String> = cell
        .broker_health
        .iter()
        .map(|h| match h.signal.as_str() {
            "kafka_under_replicated_partitions" => format!("under-replicated partitions ≤ {:.0}", h.worst),
            "kafka_isr_shrinks_per_sec" => format!("ISR shrinks ≤ {:.2}/s", h.worst),
            "kafka_request_handler_idle" => format!("request handlers idle ≥ {:.0} %", h.worst * 100.0),
            "kafka_network_processor_idle" => format!("network threads idle ≥ {:.0} %", h.worst * 100.0),
            "kafka_produce_total_time_p99_ms" => format!("produce request p99 ≤ {:.0} ms", h.worst),
            "kafka_fetch_consumer_total_time_p99_ms" => format!("consumer fetch p99 ≤ {:.0} ms", h.worst),
            other => format!("{other} {:.2} {}", h.worst, h.unit),
        })
        .collect();
    parts.join("; ")
}

/// `sweep.md`.
pub fn markdown(sweep: &Sweep) -> String {
    let mut md = String::new();
    let plan = &sweep.plan.plan;
    let grid = &sweep.plan.grid;
    let _ = writeln!(md, "# plateau sweep\n");
    let _ = writeln!(
        md,
        "{} of {} cells{}, on `{}` ({} generator(s), {} consumer agent(s)); {} s in all.\n",
        sweep.cells.len(),
        sweep.planned_cells,
        if sweep.interrupted { " (interrupted: Ctrl-C)" } else { "" },
        plan.bootstrap,
        plan.generators.len(),
        plan.consumers.len(),
        sweep.ended_ms.saturating_sub(sweep.started_ms) / 1000
    );
    let load = match &plan.ramp {
        Some(ramp) => format!("the ramp `{ramp}`"),
        None => format!("the rate search `{}`", plan.search),
    };
    let _ = writeln!(
        md,
        "Each cell: {load} on a topic of its own (RF {}), {}; then a catch-up: {} s of its sustained rate \
         produced as a backlog and read by a fresh consumer group from the backlog's first record.\n",
        plan.replication_factor.map_or("of the cluster".to_string(), |rf| rf.to_string()),
        if plan.consumers.is_empty() {
            "no consumers reading along".to_string()
        } else {
            format!("a consumer group of {} member(s) per consumer agent reading along", plan.consumer_members)
        },
        grid.catch_up_secs
    );
    let _ = writeln!(md, "Reproduce: `{}`\n", sweep.command);

    comparison_section(&mut md, sweep);
    cells_section(&mut md, sweep);
    md
}

/// One row a cell, the charts and what the grid says.
fn comparison_section(md: &mut String, sweep: &Sweep) {
    let _ = writeln!(md, "## Comparison\n");
    let _ = writeln!(
        md,
        "| cell | size | partitions | acks | compression | producers | produce msg/s | produce MB/s | produce p95/p99 ms | consume msg/s | consume MB/s | catch-up msg/s | catch-up MB/s | drain s | verdict |"
    );
    let _ = writeln!(
        md,
        "| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for cell in &sweep.cells {
        let p = cell.produce.as_ref();
        let c = cell.consume.as_ref();
        let k = cell.catch_up.as_ref().filter(|k| k.error.is_none());
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell.spec.name(),
            cell.spec.size,
            cell.spec.partitions,
            cell.spec.acks,
            cell.spec.compression,
            cell.spec.producers,
            or_dash(p.map(|p| format!("{:.0}", p.msgs_per_sec))),
            or_dash(p.map(|p| format!("{:.2}", p.mb_per_sec))),
            or_dash(p.map(|p| format!("{:.1} / {:.1}", p.latency_p95_ms, p.latency_p99_ms))),
            or_dash(c.map(|c| format!("{:.0}", c.msgs_per_sec))),
            or_dash(c.map(|c| format!("{:.2}", c.mb_per_sec))),
            or_dash(k.map(|k| format!("{:.0}", k.records_per_sec))),
            or_dash(k.map(|k| format!("{:.2}", k.mb_per_sec))),
            or_dash(k.and_then(|k| k.drained_secs).map(|s| format!("{s:.1}"))),
            verdict_text(cell)
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(md, "![throughput and p99 against message size](by-size.svg)\n");
    let _ = writeln!(md, "![throughput and p99 against partitions](by-partitions.svg)\n");
    for line in observations(sweep) {
        let _ = writeln!(md, "- {line}");
    }
    let _ = writeln!(md);
}

/// Each cell in seed 002's template.
fn cells_section(md: &mut String, sweep: &Sweep) {
    let _ = writeln!(md, "## Cells\n");
    for cell in &sweep.cells {
        let _ = writeln!(md, "### {}\n", cell.spec.name());
        let p = cell.produce.as_ref();
        let c = cell.consume.as_ref();
        let rf = cell.replication_factor.map_or_else(|| "?".to_string(), |rf| rf.to_string());
        let _ = writeln!(md, "- Scenario: produce to the knee with consumers reading along, then a backlog catch-up");
        let _ = writeln!(md, "- Topic/Partitions: `{}` / {} (RF {rf})", cell.topic, cell.spec.partitions);
        let _ = writeln!(md, "- Message Size: {} bytes", cell.spec.size);
        let _ = writeln!(
            md,
            "- Producer Acks: {} (compression {}, {} producer(s))",
            cell.spec.acks, cell.spec.compression, cell.spec.producers
        );
        let _ = writeln!(
            md,
            "- Produce Throughput: {}",
            or_dash(p.map(|p| format!(
                "{:.0} msg/s, {:.2} MB/s (the highest step that kept up; {}, best step {:.0} msg/s, {} steps)",
                p.msgs_per_sec,
                p.mb_per_sec,
                if p.knee_found { "knee found" } else { "no knee below the load's top" },
                p.plateau_msgs_per_sec,
                p.steps
            )))
        );
        let _ = writeln!(
            md,
            "- Consume Throughput: {}; catch-up: {}",
            or_dash(c.map(|c| format!("{:.0} msg/s, {:.2} MB/s reading along", c.msgs_per_sec, c.mb_per_sec))),
            catch_up_text(cell)
        );
        let fetch = cell.catch_up.as_ref().and_then(|k| Some((k.fetch_p95_ms?, k.fetch_p99_ms?)));
        let _ = writeln!(
            md,
            "- Latency p95/p99: produce (acknowledged) {}; fetch (catch-up round trip) {}; end-to-end {}",
            or_dash(p.map(|p| format!("{:.1} / {:.1} ms", p.latency_p95_ms, p.latency_p99_ms))),
            or_dash(fetch.map(|(p95, p99)| format!("{p95:.1} / {p99:.1} ms"))),
            or_dash(c.and_then(|c| Some(format!("avg {:.0}, p99 {:.0} ms", c.e2e_avg_ms?, c.e2e_p99_ms?))))
        );
        let _ = writeln!(
            md,
            "- Errors: produce {}, consume {}{}",
            p.map_or(0, |p| p.errors),
            c.map_or(0, |c| c.errors),
            cell.catch_up
                .as_ref()
                .filter(|k| k.lost + k.duplicated > 0)
                .map(|k| format!("; catch-up read {} lost, {} duplicated", k.lost, k.duplicated))
                .unwrap_or_default()
        );
        let _ = writeln!(md, "- Broker Health: {}", health_text(cell));
        let _ = writeln!(md, "- Verdict: {}", verdict_text(cell));
        if let Some(evidence) = cell.verdict.as_ref().and_then(|v| v.evidence.as_ref()) {
            let _ = writeln!(md, "  - {evidence}");
        }
        let mut notes = cell.notes.clone();
        if let Some(report) = &cell.report {
            notes.push(format!("the cell's diagnosis: [{report}/findings.md]({report}/findings.md)"));
        }
        let _ = writeln!(md, "- Notes: {}\n", if notes.is_empty() { "-".into() } else { notes.join("; ") });
    }
}

/// What the grid says, in sentences: where MB/s stops growing with size, and whether
/// partitions help.
fn observations(sweep: &Sweep) -> Vec<String> {
    let mut lines = Vec::new();
    let measured: Vec<&Cell> = sweep.cells.iter().filter(|c| c.produce.is_some()).collect();
    let mut partitions: Vec<u32> = measured.iter().map(|c| c.spec.partitions).collect();
    partitions.sort_unstable();
    partitions.dedup();
    for p in &partitions {
        let mut by_size: Vec<(u64, f64)> = measured
            .iter()
            .filter(|c| c.spec.partitions == *p)
            .map(|c| (c.spec.size, c.produce.as_ref().map_or(0.0, |f| f.mb_per_sec)))
            .collect();
        by_size.sort_by_key(|(size, _)| *size);
        if by_size.len() < 2 {
            continue;
        }
        // MB/s stops growing with size where a size brings less than 10 % more than the last.
        let flat = by_size.windows(2).find(|pair| pair[1].1 < pair[0].1 * 1.1).map(|pair| pair[0].0);
        let series: Vec<String> = by_size.iter().map(|(size, mb)| format!("{size} B {mb:.2}")).collect();
        lines.push(match flat {
            Some(size) => {
                format!("{p} partition(s): produce MB/s by size {}; it stops growing after {size} B", series.join(", "))
            }
            None => format!("{p} partition(s): produce MB/s by size {}; it grows with every size", series.join(", ")),
        });
    }
    let mut sizes: Vec<u64> = measured.iter().map(|c| c.spec.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    for size in sizes {
        let mut by_partitions: Vec<(u32, f64)> = measured
            .iter()
            .filter(|c| c.spec.size == size)
            .map(|c| (c.spec.partitions, c.produce.as_ref().map_or(0.0, |f| f.msgs_per_sec)))
            .collect();
        by_partitions.sort_by_key(|(p, _)| *p);
        let (Some(first), Some(best)) =
            (by_partitions.first(), by_partitions.iter().max_by(|a, b| a.1.total_cmp(&b.1)))
        else {
            continue;
        };
        if by_partitions.len() < 2 || first.1 <= 0.0 {
            continue;
        }
        let gain = best.1 / first.1;
        lines.push(if gain >= 1.1 {
            format!(
                "{size} B: {} partitions give the most, {:.0} msg/s, {gain:.2}× the {} partition(s)' {:.0}",
                best.0, best.1, first.0, first.1
            )
        } else {
            format!(
                "{size} B: more partitions do not help ({} partition(s) {:.0} msg/s; the best, {}, {:.0})",
                first.0, first.1, best.0, best.1
            )
        });
    }
    // On a VM the neighbours move a cell's figures: say which cells the hypervisor's steal
    // weighed on, before anyone compares them.
    let steal = |named: Option<&str>| named == Some("cpu: steal");
    let stolen: Vec<String> = measured
        .iter()
        .filter(|c| {
            c.verdict.as_ref().is_some_and(|v| {
                (v.bound == "cpu" && v.cause.as_deref() == Some("steal")) || steal(v.runner_up.as_deref())
            })
        })
        .map(|c| c.spec.name())
        .collect();
    if !stolen.is_empty() {
        lines.push(format!(
            "the hypervisor took CPU time (cpu: steal, as verdict or runner-up) in {} of {} cells — {}: their figures \
             measure the VM's neighbours as much as Kafka; re-run them before comparing",
            stolen.len(),
            measured.len(),
            stolen.join(", ")
        ));
    }
    lines
}

/// `sweep.csv`: one row per cell, the template's figures as columns.
pub fn csv(sweep: &Sweep) -> String {
    let mut out = String::from(
        "cell,size_bytes,partitions,replication_factor,acks,compression,producers,produce_msgs_per_sec,produce_mb_per_sec,\
         produce_p95_ms,produce_p99_ms,knee_found,consume_msgs_per_sec,consume_mb_per_sec,e2e_avg_ms,e2e_p99_ms,\
         catch_up_backlog_records,catch_up_drained_secs,catch_up_msgs_per_sec,catch_up_mb_per_sec,fetch_p95_ms,fetch_p99_ms,\
         produce_errors,consume_errors,verdict,cause,confidence,runner_up,failed\n",
    );
    let num = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
    let text = |v: Option<&str>| match v {
        Some(v) => format!("\"{}\"", v.replace('"', "\"\"")),
        None => String::new(),
    };
    for cell in &sweep.cells {
        let p = cell.produce.as_ref();
        let c = cell.consume.as_ref();
        let k = cell.catch_up.as_ref().filter(|k| k.error.is_none());
        let v = cell.verdict.as_ref();
        let fields = [
            cell.spec.name(),
            cell.spec.size.to_string(),
            cell.spec.partitions.to_string(),
            cell.replication_factor.map(|rf| rf.to_string()).unwrap_or_default(),
            text(Some(&cell.spec.acks)),
            text(Some(&cell.spec.compression)),
            cell.spec.producers.to_string(),
            num(p.map(|p| p.msgs_per_sec)),
            num(p.map(|p| p.mb_per_sec)),
            num(p.map(|p| p.latency_p95_ms)),
            num(p.map(|p| p.latency_p99_ms)),
            p.map(|p| p.knee_found.to_string()).unwrap_or_default(),
            num(c.map(|c| c.msgs_per_sec)),
            num(c.map(|c| c.mb_per_sec)),
            num(c.and_then(|c| c.e2e_avg_ms)),
            num(c.and_then(|c| c.e2e_p99_ms)),
            k.map(|k| k.backlog_records.to_string()).unwrap_or_default(),
            num(k.and_then(|k| k.drained_secs)),
            num(k.map(|k| k.records_per_sec)),
            num(k.map(|k| k.mb_per_sec)),
            num(k.and_then(|k| k.fetch_p95_ms)),
            num(k.and_then(|k| k.fetch_p99_ms)),
            p.map(|p| p.errors.to_string()).unwrap_or_default(),
            c.map(|c| c.errors.to_string()).unwrap_or_default(),
            text(v.map(|v| v.bound.as_str())),
            text(v.and_then(|v| v.cause.as_deref())),
            num(v.map(|v| v.confidence)),
            text(v.and_then(|v| v.runner_up.as_deref())),
            text(cell.failed.as_deref()),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// One line for a cell just finished (diagnose's progress goes on between cells).
pub fn cell_line(cell: &Cell) -> String {
    let produce = cell.produce.as_ref().map_or_else(
        || "no sustainable rate".to_string(),
        |p| format!("{:.0} msg/s, {:.2} MB/s, p99 {:.1} ms", p.msgs_per_sec, p.mb_per_sec, p.latency_p99_ms),
    );
    format!("{}: {produce}; catch-up {}; {}", cell.spec.name(), catch_up_text(cell), verdict_text(cell))
}

/// The terminal summary: the comparison table, what it says, and where the report is.
pub fn terminal(sweep: &Sweep, out_dir: &Path) -> String {
    use comfy_table::Table;
    use comfy_table::presets::UTF8_FULL_CONDENSED;
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header(vec![
        "cell",
        "produce msg/s",
        "MB/s",
        "p95/p99 ms",
        "consume msg/s",
        "catch-up msg/s",
        "drain s",
        "verdict",
    ]);
    for cell in &sweep.cells {
        let p = cell.produce.as_ref();
        let k = cell.catch_up.as_ref().filter(|k| k.error.is_none());
        table.add_row(vec![
            cell.spec.name(),
            or_dash(p.map(|p| format!("{:.0}", p.msgs_per_sec))),
            or_dash(p.map(|p| format!("{:.2}", p.mb_per_sec))),
            or_dash(p.map(|p| format!("{:.1} / {:.1}", p.latency_p95_ms, p.latency_p99_ms))),
            or_dash(cell.consume.as_ref().map(|c| format!("{:.0}", c.msgs_per_sec))),
            or_dash(k.map(|k| format!("{:.0}", k.records_per_sec))),
            or_dash(k.and_then(|k| k.drained_secs).map(|s| format!("{s:.1}"))),
            verdict_text(cell),
        ]);
    }
    let mut text = format!(
        "plateau sweep: {} of {} cells{}\n{table}\n",
        sweep.cells.len(),
        sweep.planned_cells,
        if sweep.interrupted { " (interrupted)" } else { "" }
    );
    for line in observations(sweep) {
        text.push_str(&format!("  {line}\n"));
    }
    text.push_str(&format!(
        "report: {} (sweep.md, sweep.csv, by-size.svg, by-partitions.svg, cells/*/findings.md)\n",
        out_dir.display()
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::DiagnosePlan;
    use crate::diagnose::sweep::{CellSpec, CellVerdict, ProduceFigures, SweepGrid, SweepPlan};

    fn cell(size: u64, partitions: u32, msgs_per_sec: f64) -> Cell {
        let spec = CellSpec { size, partitions, acks: "all".into(), compression: "none".into(), producers: 1 };
        Cell {
            topic: format!("bench-{}", spec.name()),
            spec,
            replication_factor: Some(3),
            started_ms: 0,
            ended_ms: 1000,
            report: None,
            produce: Some(ProduceFigures {
                msgs_per_sec,
                mb_per_sec: msgs_per_sec * size as f64 / 1e6,
                latency_p95_ms: 4.0,
                latency_p99_ms: 9.0,
                knee_found: true,
                plateau_msgs_per_sec: msgs_per_sec * 1.1,
                steps: 5,
                errors: 0,
            }),
            consume: None,
            catch_up: None,
            broker_health: Vec::new(),
            verdict: Some(CellVerdict {
                bound: "cpu".into(),
                cause: Some("broker, \"quoted\"".into()),
                confidence: 0.8,
                runner_up: None,
                evidence: None,
            }),
            notes: Vec::new(),
            failed: None,
        }
    }

    fn sweep(cells: Vec<Cell>) -> Sweep {
        Sweep {
            version: crate::diagnose::sweep::SWEEP_VERSION,
            command: "plateau sweep".into(),
            plan: SweepPlan { plan: DiagnosePlan::new("b:9092".into(), "bench".into()), grid: SweepGrid::default() },
            started_ms: 0,
            ended_ms: 60_000,
            planned_cells: cells.len(),
            cells,
            interrupted: false,
        }
    }

    #[test]
    fn the_observations_say_where_mb_per_sec_stops_growing_and_whether_partitions_help() {
        // 1 KB → 10 KB grows MB/s tenfold; 10 KB → 100 KB brings 5 % more: flat after 10 KB.
        let s = sweep(vec![
            cell(1_000, 1, 10_000.0),
            cell(10_000, 1, 5_000.0),
            cell(100_000, 1, 525.0),
            cell(1_000, 3, 10_500.0),
        ]);
        let lines = observations(&s);
        assert!(
            lines.iter().any(|l| l.starts_with("1 partition(s)") && l.ends_with("it stops growing after 10000 B")),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.starts_with("1000 B: more partitions do not help")), "{lines:?}");
        let more = sweep(vec![cell(1_000, 1, 10_000.0), cell(1_000, 6, 25_000.0)]);
        assert!(observations(&more).iter().any(|l| l.contains("6 partitions give the most, 25000 msg/s, 2.50×")));
        assert!(!observations(&more).iter().any(|l| l.contains("steal")));
        // Cells the hypervisor's steal weighed on are named.
        let mut stolen = cell(1_000, 3, 900.0);
        stolen.verdict =
            Some(CellVerdict { bound: "cpu".into(), cause: Some("steal".into()), ..stolen.verdict.unwrap() });
        let mut runner_up = cell(10_000, 3, 400.0);
        runner_up.verdict.as_mut().unwrap().runner_up = Some("cpu: steal".into());
        let noisy = observations(&sweep(vec![cell(1_000, 1, 2_800.0), stolen, runner_up]));
        assert!(
            noisy.iter().any(|l| l.starts_with("the hypervisor took CPU time")
                && l.contains("in 2 of 3 cells — 1000b-3p-acksall-none-1g, 10000b-3p-acksall-none-1g:")),
            "{noisy:?}"
        );
    }

    #[test]
    fn the_csv_has_one_row_per_cell_with_every_column_and_quotes_text() {
        let mut failed = cell(1_000, 3, 0.0);
        failed.produce = None;
        failed.verdict = None;
        failed.failed = Some("generator agent http://g:7070: cannot reach it".into());
        let text = csv(&sweep(vec![cell(1_000, 1, 10_000.0), failed]));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let columns = lines[0].split(',').count();
        assert!(lines[1].contains("\"broker, \"\"quoted\"\"\""), "{}", lines[1]);
        // Quoted commas aside, every row has the header's columns.
        let fields = |line: &str| {
            let mut count = 1;
            let mut quoted = false;
            for ch in line.chars() {
                match ch {
                    '"' => quoted = !quoted,
                    ',' if !quoted => count += 1,
                    _ => {}
                }
            }
            count
        };
        assert!(lines.iter().all(|l| fields(l) == columns), "{text}");
        assert!(lines[1].starts_with("1000b-1p-acksall-none-1g,1000,1,3,"), "{}", lines[1]);
        assert!(lines[2].ends_with("\"generator agent http://g:7070: cannot reach it\""), "{}", lines[2]);
        let md = markdown(&sweep(vec![cell(1_000, 1, 10_000.0)]));
        assert!(md.contains("- Produce Throughput: 10000 msg/s, 10.00 MB/s"), "{md}");
        assert!(
            chart_svg(&sweep(vec![cell(1_000, 1, 10_000.0), cell(10_000, 1, 5_000.0)]), Axis::Size)
                .unwrap()
                .contains("<circle")
        );
    }
}
