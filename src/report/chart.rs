//! `timeline.svg`: the ramp's target against what was achieved (and, with consumers, what
//! they took), below it on the same clock the utilizations that explain the gap (CPU,
//! disks, links, the generators', consumers' and database's CPU), and with consumers the
//! pipeline's end-to-end latency and lag.

use plotters::prelude::*;

use crate::diagnose::Diagnosis;

/// The broker hosts' ratios drawn in the utilization panel, with their legend names.
const UTILIZATIONS: &[(&str, &str)] = &[("host_cpu_busy", "CPU"), ("disk_util", "disk")];

/// Each resource the rules judge, as a share of its capacity: one line per resource, the
/// busiest broker host's each second (CPU and disk busy shares as sampled; the link as the
/// busier direction of the NIC over the capacity measured towards that host), and the
/// generators' CPU. Points are `(Unix ms, share)`.
fn utilization_lines(d: &Diagnosis) -> Vec<(String, Vec<(u64, f64)>)> {
    let series = &d.evidence.series;
    let brokers: Vec<String> = d.plan.brokers.iter().map(|url| crate::net::Target::Agent(url.clone()).host()).collect();
    let n = brokers.len();
    let brokers = &brokers;
    let of_brokers =
        |signal: &'static str| series.iter().filter(move |s| s.signal == signal && brokers.contains(&s.instance));
    // The busiest host each second.
    let busiest = |lines: Vec<Vec<(u64, f64)>>| -> Vec<(u64, f64)> {
        let mut by_second: std::collections::BTreeMap<u64, f64> = Default::default();
        for (ts, v) in lines.into_iter().flatten() {
            let slot = by_second.entry(ts / 1000 * 1000).or_insert(v);
            *slot = slot.max(v);
        }
        by_second.into_iter().collect()
    };
    let points = |s: &crate::evidence::Series| -> Vec<(u64, f64)> {
        s.timestamps.iter().copied().zip(s.values.iter().copied()).collect()
    };
    let mut lines = Vec::new();
    for (signal, name) in UTILIZATIONS {
        let line = busiest(of_brokers(signal).map(points).collect());
        if !line.is_empty() {
            lines.push((format!("{name}, busiest of {n} broker hosts"), line));
        }
    }
    let mut links = Vec::new();
    let mut capacities = Vec::new();
    for link in of_brokers("net_link_capacity_bits_per_sec") {
        let Some(&bits) = link.values.last().filter(|b| **b > 0.0) else { continue };
        let find = |signal: &str| series.iter().find(|s| s.signal == signal && s.instance == link.instance);
        let (Some(rx), tx) = (find("nic_rx_bytes_per_sec"), find("nic_tx_bytes_per_sec")) else { continue };
        let tx_at = |ts: u64| tx.and_then(|tx| tx.timestamps.iter().position(|t| *t == ts).map(|i| tx.values[i]));
        capacities.push(bits);
        links.push(
            rx.timestamps
                .iter()
                .zip(&rx.values)
                .map(|(ts, rx_bytes)| (*ts, rx_bytes.max(tx_at(*ts).unwrap_or(0.0)) * 8.0 / bits))
                .collect(),
        );
    }
    if !links.is_empty() {
        let slowest = capacities.iter().copied().fold(f64::INFINITY, f64::min);
        lines.push((format!("link, fullest of {n} (measured ≥ {:.0} Mbit/s)", slowest / 1e6), busiest(links)));
    }
    for (signal, name) in [
        ("generator_cpu_busy", "generators' CPU, busiest"),
        ("consumer_cpu_busy", "consumers' CPU, busiest"),
        ("sink_cpu_busy", "database's CPU"),
    ] {
        if let Some(found) = series.iter().find(|s| s.signal == signal) {
            lines.push((name.to_string(), points(found)));
        }
    }
    lines
}

/// The pipeline past Kafka in milliseconds: mean and p99 end-to-end latency, and the
/// group's lag as time behind (records behind over the rate they were produced at).
fn pipeline_lines(d: &Diagnosis) -> Vec<(String, Vec<(u64, f64)>)> {
    let find = |signal: &str| d.evidence.series.iter().find(|s| s.signal == signal);
    let points = |s: &crate::evidence::Series| -> Vec<(u64, f64)> {
        s.timestamps.iter().copied().zip(s.values.iter().copied()).collect()
    };
    let mut lines = Vec::new();
    for (signal, name) in [("consumer_e2e_avg_ms", "end-to-end, mean"), ("consumer_e2e_p99_ms", "end-to-end, p99")] {
        if let Some(found) = find(signal) {
            lines.push((name.to_string(), points(found)));
        }
    }
    if let (Some(lag), Some(produced)) = (find("consumer_lag"), find("producer_achieved_rate")) {
        let rate_at = |ts: u64| {
            let i = produced.timestamps.partition_point(|t| *t <= ts);
            (i > 0).then(|| produced.values[i - 1]).filter(|rate| *rate > 0.0)
        };
        let behind: Vec<(u64, f64)> =
            points(lag).into_iter().filter_map(|(ts, records)| Some((ts, records / rate_at(ts)? * 1000.0))).collect();
        if !behind.is_empty() {
            lines.push(("lag, as time behind the producers".to_string(), behind));
        }
    }
    lines
}

/// Renders the timeline as an SVG document.
pub fn timeline_svg(d: &Diagnosis) -> Result<String, String> {
    let mut svg = String::new();
    {
        let pipeline = pipeline_lines(d);
        let height = if pipeline.is_empty() { 640 } else { 960 };
        let root = SVGBackend::with_string(&mut svg, (960, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (top, rest) = root.split_vertically(320);
        let (bottom, latency) = rest.split_vertically(320);
        let since_start = |ms: u64| ms.saturating_sub(d.ramp_started_ms) as f64 / 1000.0;
        let last_step_s = d.ramp.iter().map(|s| since_start(s.ended_ms)).fold(0.0, f64::max);
        let end_s = last_step_s.max(since_start(d.ended_ms)).max(1.0);

        draw_rates(&top, d, end_s)?;
        draw_utilization(&bottom, d, end_s)?;
        if !pipeline.is_empty() {
            draw_pipeline(&latency, d, end_s, pipeline)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The rates panel: target, achieved and consumed as stairs, and the plateau's level.
fn draw_rates(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    d: &Diagnosis,
    end_s: f64,
) -> Result<(), String> {
    let since_start = |ms: u64| ms.saturating_sub(d.ramp_started_ms) as f64 / 1000.0;
    let top_rate = d.ramp.iter().map(|s| s.target_rate.max(s.achieved_rate)).fold(1.0, f64::max) * 1.1;
    let mut rates = ChartBuilder::on(area)
        .caption("target vs achieved (msg/s)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end_s, 0.0..top_rate)
        .map_err(|e| e.to_string())?;
    rates
        .configure_mesh()
        .x_desc("seconds into the load")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(|e| e.to_string())?;
    // Each step is a flat segment over its interval (a search's steps jump).
    let stairs = |pick: fn(&crate::plateau::RampStep) -> f64| {
        d.ramp
            .iter()
            .flat_map(move |step| {
                [(since_start(step.started_ms), pick(step)), (since_start(step.ended_ms), pick(step))]
            })
            .collect::<Vec<_>>()
    };
    rates
        .draw_series(LineSeries::new(stairs(|s| s.target_rate), BLUE.stroke_width(2)))
        .map_err(|e| e.to_string())?
        .label("target")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    rates
        .draw_series(LineSeries::new(stairs(|s| s.achieved_rate), RED.stroke_width(2)))
        .map_err(|e| e.to_string())?
        .label("achieved")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    if d.ramp.iter().any(|s| s.consumed_rate.is_some()) {
        rates
            .draw_series(LineSeries::new(
                stairs(|s| s.consumed_rate.unwrap_or(f64::NAN)).into_iter().filter(|(_, v)| v.is_finite()),
                GREEN.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label("consumed")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREEN));
    }
    if d.plateau.found {
        let level = d.plateau.plateau_msgs_per_sec;
        rates
            .draw_series(LineSeries::new([(0.0, level), (end_s, level)], BLACK.mix(0.4)))
            .map_err(|e| e.to_string())?
            .label(format!("plateau {level:.0} msg/s"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
    }
    draw_legend(&mut rates, SeriesLabelPosition::MiddleRight)
}

/// The utilization panel: each resource judged, as a share of its capacity.
fn draw_utilization(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    d: &Diagnosis,
    end_s: f64,
) -> Result<(), String> {
    let mut utilization = ChartBuilder::on(area)
        .caption("utilization: each resource judged, as a share of its capacity", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end_s, 0.0..1.05)
        .map_err(|e| e.to_string())?;
    utilization
        .configure_mesh()
        .x_desc("seconds into the load")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
        .draw()
        .map_err(|e| e.to_string())?;
    let mut drawn = 0;
    for (legend, line) in utilization_lines(d) {
        let points: Vec<(f64, f64)> = line
            .into_iter()
            .filter(|(ts, _)| *ts >= d.ramp_started_ms)
            .map(|(ts, v)| ((ts - d.ramp_started_ms) as f64 / 1000.0, v.clamp(0.0, 1.05)))
            .filter(|(t, _)| *t <= end_s)
            .collect();
        if points.is_empty() {
            continue;
        }
        let color = Palette99::pick(drawn).to_rgba();
        drawn += 1;
        utilization
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(legend)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
    }
    if drawn > 0 {
        draw_legend(&mut utilization, SeriesLabelPosition::MiddleRight)?;
    }
    Ok(())
}

/// The pipeline panel: end-to-end latency and lag, in ms, on the ramp's clock.
fn draw_pipeline(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    d: &Diagnosis,
    end_s: f64,
    lines: Vec<(String, Vec<(u64, f64)>)>,
) -> Result<(), String> {
    let on_clock: Vec<(String, Vec<(f64, f64)>)> = lines
        .into_iter()
        .map(|(legend, line)| {
            let points = line
                .into_iter()
                .filter(|(ts, _)| *ts >= d.ramp_started_ms)
                .map(|(ts, v)| ((ts - d.ramp_started_ms) as f64 / 1000.0, v))
                .filter(|(t, _)| *t <= end_s)
                .collect();
            (legend, points)
        })
        .collect();
    let top = on_clock.iter().flat_map(|(_, l)| l.iter().map(|(_, v)| *v)).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption("pipeline: end-to-end latency and lag (ms)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end_s, 0.0..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds into the ramp")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (legend, points)) in on_clock.into_iter().enumerate() {
        let color = Palette99::pick(i + 5).to_rgba();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(legend)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// A chart's legend at `position`, on a translucent white box with a black border: every
/// chart plateau draws has this one.
pub(super) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}
