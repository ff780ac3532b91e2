//! `timeline.svg`: the ramp's target against what was achieved, and above it on the same
//! clock the utilizations that explain the gap (CPU, disks, the generators' CPU).

use plotters::prelude::*;

use crate::diagnose::Diagnosis;

/// The ratios drawn in the utilization panel as they are, with their legend names.
const UTILIZATIONS: &[(&str, &str)] =
    &[("host_cpu_busy", "CPU"), ("disk_util", "disk"), ("generator_cpu_busy", "generators' CPU")];

/// Each resource the rules judge as a share of its capacity, as `(legend, points)` with
/// points `(Unix ms, share)`: CPU and disk busy shares as sampled, and each host's NIC
/// traffic (the busier direction) over the link capacity measured towards it.
fn utilization_lines(d: &Diagnosis) -> Vec<(String, Vec<(u64, f64)>)> {
    let series = &d.evidence.series;
    let mut lines = Vec::new();
    for (signal, name) in UTILIZATIONS {
        for s in series.iter().filter(|s| s.signal == *signal) {
            let legend = if s.instance == "cluster" { name.to_string() } else { format!("{name} {}", s.instance) };
            lines.push((legend, s.timestamps.iter().copied().zip(s.values.iter().copied()).collect()));
        }
    }
    for link in series.iter().filter(|s| s.signal == "net_link_capacity_bits_per_sec") {
        let Some(&bits) = link.values.last().filter(|b| **b > 0.0) else { continue };
        let of = |signal: &str| series.iter().find(|s| s.signal == signal && s.instance == link.instance);
        let (Some(rx), tx) = (of("nic_rx_bytes_per_sec"), of("nic_tx_bytes_per_sec")) else { continue };
        let points = rx
            .timestamps
            .iter()
            .zip(&rx.values)
            .map(|(ts, rx_bytes)| {
                let tx_bytes =
                    tx.and_then(|tx| tx.timestamps.iter().position(|t| t == ts).map(|i| tx.values[i])).unwrap_or(0.0);
                (*ts, rx_bytes.max(tx_bytes) * 8.0 / bits)
            })
            .collect();
        lines.push((format!("link {} (of {:.0} Mbit/s measured)", link.instance, bits / 1e6), points));
    }
    lines
}

/// Renders the timeline as an SVG document.
pub fn timeline_svg(d: &Diagnosis) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 640)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (top, bottom) = root.split_vertically(320);
        let every_s = d.plan.ramp.parse::<crate::kafka::Ramp>().map(|r| r.every.as_secs_f64()).unwrap_or(1.0);
        let steps = d.ramp.len().max(1) as f64;
        let end_s = (steps * every_s).max((d.ended_ms.saturating_sub(d.ramp_started_ms)) as f64 / 1000.0).max(1.0);
        let top_rate = d.ramp.iter().map(|s| s.target_rate.max(s.achieved_rate)).fold(1.0, f64::max) * 1.1;

        let mut rates = ChartBuilder::on(&top)
            .caption("target vs achieved (msg/s)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end_s, 0.0..top_rate)
            .map_err(|e| e.to_string())?;
        rates
            .configure_mesh()
            .x_desc("seconds into the ramp")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(|e| e.to_string())?;
        // Each step is a flat segment over its interval.
        let stairs = |pick: fn(&crate::plateau::RampStep) -> f64| {
            d.ramp
                .iter()
                .enumerate()
                .flat_map(move |(i, step)| [(i as f64 * every_s, pick(step)), ((i + 1) as f64 * every_s, pick(step))])
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
        if d.plateau.found {
            let level = d.plateau.plateau_msgs_per_sec;
            rates
                .draw_series(LineSeries::new([(0.0, level), (end_s, level)], BLACK.mix(0.4)))
                .map_err(|e| e.to_string())?
                .label(format!("plateau {level:.0} msg/s"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
        }
        rates
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;

        let mut utilization = ChartBuilder::on(&bottom)
            .caption("utilization: each resource judged, as a share of its capacity", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end_s, 0.0..1.05)
            .map_err(|e| e.to_string())?;
        utilization
            .configure_mesh()
            .x_desc("seconds into the ramp")
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
            utilization
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
