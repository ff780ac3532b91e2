//! The sweep's two charts: throughput and p99 delivery latency against message size and
//! against partition count.

use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;

use crate::diagnose::sweep::Sweep;

type Lines = std::collections::BTreeMap<String, Vec<(f64, f64, f64)>>;

/// Draws a panel's mesh (`x_desc` under it, the y labels with `y_decimals`) and each line's
/// points — `(x, throughput, p99)` — on it: throughput (panel 0) or p99 latency, with a
/// legend.
fn draw_lines<'a, X>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    lines: &Lines,
    panel: usize,
    x_desc: &str,
    y_decimals: usize,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.y_decimals$}"))
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, (name, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let series: Vec<(f64, f64)> = points.iter().map(|p| (p.0, if panel == 0 { p.1 } else { p.2 })).collect();
        chart
            .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        chart.draw_series(series.into_iter().map(|p| Circle::new(p, 3, color.filled()))).map_err(|e| e.to_string())?;
    }
    crate::report::chart::draw_legend(chart, SeriesLabelPosition::UpperLeft)
}

/// What a chart puts on its x axis; the other dimension gives one line each.
#[derive(Debug, Clone, Copy)]
pub(super) enum Axis {
    Size,
    Partitions,
}

impl Axis {
    pub(super) fn file(self) -> &'static str {
        match self {
            Axis::Size => "by-size.svg",
            Axis::Partitions => "by-partitions.svg",
        }
    }
}

/// Two panels over one x axis (size, on a log scale, or partitions): produce throughput
/// (MB/s against size, msg/s against partitions) and p99 delivery latency, one line per
/// value of the other dimension. Cells with the same size and partitions but other acks,
/// compression or producers draw lines of their own.
pub(super) fn chart_svg(sweep: &Sweep, axis: Axis) -> Result<String, String> {
    let mut lines = Lines::new();
    for cell in &sweep.cells {
        let Some(p) = &cell.produce else { continue };
        let s = &cell.spec;
        let rest = format!("acks {}, {}, {}g", s.acks, s.compression, s.producers);
        let (name, x, throughput) = match axis {
            Axis::Size => (format!("{:>5} partitions, {rest}", s.partitions), s.size as f64, p.mb_per_sec),
            Axis::Partitions => (format!("{:>7} B, {rest}", s.size), s.partitions as f64, p.msgs_per_sec),
        };
        lines.entry(name).or_default().push((x, throughput, p.latency_p99_ms));
    }
    for points in lines.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let all = || lines.values().flatten();
    let x_max = all().map(|p| p.0).fold(1.0, f64::max);
    let x_min = all().map(|p| p.0).fold(x_max, f64::min);
    let y_max = all().map(|p| p.1).fold(0.0, f64::max).max(1e-3) * 1.15;
    let lat_max = all().map(|p| p.2).fold(0.0, f64::max).max(1e-3) * 1.15;
    let (x_desc, y_desc) = match axis {
        Axis::Size => ("message size, bytes (log scale)", "produce MB/s"),
        Axis::Partitions => ("partitions", "produce msg/s"),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 720)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (top, bottom) = root.split_vertically(360);
        for (panel, area, top_y) in [(0, &top, y_max), (1, &bottom, lat_max)] {
            let caption = if panel == 0 {
                format!("{y_desc} at the highest step that kept up")
            } else {
                "p99 delivery latency at that step, ms".to_string()
            };
            let builder = |area| {
                let mut builder = ChartBuilder::on(area);
                builder.caption(&caption, ("sans-serif", 18)).margin(10).x_label_area_size(35).y_label_area_size(70);
                builder
            };
            match axis {
                Axis::Size => {
                    let mut chart = builder(area)
                        .build_cartesian_2d((x_min * 0.8..x_max * 1.25).log_scale(), 0.0..top_y)
                        .map_err(|e| e.to_string())?;
                    draw_lines(&mut chart, &lines, panel, x_desc, 1)?;
                }
                Axis::Partitions => {
                    let mut chart =
                        builder(area).build_cartesian_2d(0.0..x_max * 1.1, 0.0..top_y).map_err(|e| e.to_string())?;
                    draw_lines(&mut chart, &lines, panel, x_desc, 0)?;
                }
            }
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
