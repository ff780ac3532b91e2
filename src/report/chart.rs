//! `timeline.svg`: the ramp's target against what was achieved, and above it on the same
//! clock the utilizations that explain the gap (CPU, disks, the generators' CPU).

use plotters::prelude::*;

use crate::diagnose::Diagnosis;

/// The signals drawn in the utilization panel, all ratios in 0..1.
const UTILIZATIONS: &[&str] = &["host_cpu_busy", "disk_util", "generator_cpu_busy"];

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
        rates.configure_mesh().x_desc("seconds into the ramp").draw().map_err(|e| e.to_string())?;
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
            .caption("utilization", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end_s, 0.0..1.05)
            .map_err(|e| e.to_string())?;
        utilization
            .configure_mesh()
            .x_desc("seconds into the ramp")
            .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
            .draw()
            .map_err(|e| e.to_string())?;
        let mut drawn = 0;
        for series in d.evidence.series.iter().filter(|s| UTILIZATIONS.contains(&s.signal.as_str())) {
            let points: Vec<(f64, f64)> = series
                .timestamps
                .iter()
                .zip(&series.values)
                .filter(|(ts, _)| **ts >= d.ramp_started_ms)
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
                .label(format!("{} {}", series.signal, series.instance))
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
