//! The console's live charts, drawn as SVG with plotters from the polled history: target
//! vs achieved msg/s per generator and in total (and the cluster's rate from Prometheus),
//! delivery p99 per generator, and the broker hosts' CPU, disk and NIC utilization.

use plotters::prelude::*;

use super::history::{History, Role};

/// The charts' time window, seconds back from now.
const WINDOW_S: f64 = 600.0;
/// Drawn at the size the page shows them (three to a row on a 1400-pixel screen, `.chart
/// img` at most 460 px wide), so that their text is not scaled down.
const SIZE: (u32, u32) = (460, 260);
/// Text sizes in pixels: at least 13 for anything a person reads.
const CAPTION_PX: u32 = 17;
const LABEL_PX: u32 = 13;

/// Which chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// Target vs achieved msg/s.
    Throughput,
    /// Delivery p99.
    Latency,
    /// Broker hosts' utilization.
    Hosts,
}

impl Chart {
    /// The chart named `name` in a URL (`throughput.svg`).
    pub fn from_name(name: &str) -> Option<Chart> {
        match name.trim_end_matches(".svg") {
            "throughput" => Some(Chart::Throughput),
            "latency" => Some(Chart::Latency),
            "hosts" => Some(Chart::Hosts),
            _ => None,
        }
    }
}

/// Picks one utilization out of a point.
type Pick = fn(&super::history::Point) -> Option<f64>;

/// One line: its label, colour index, dashed or not, and (seconds before now, value) points.
struct Line {
    label: String,
    colour: usize,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// How a chart names an agent: its host name, or its URL's host:port when several agents
/// share a host name (several agents on one machine).
fn name(card: &super::history::AgentCard, history: &History) -> String {
    if history.cards.values().filter(|c| c.host == card.host).count() > 1 {
        card.url.trim_start_matches("http://").trim_start_matches("https://").to_string()
    } else {
        card.host.clone()
    }
}

/// Renders `chart` over the history as it stands at `now_ms`.
pub fn render(chart: Chart, history: &History, now_ms: u64) -> Result<String, String> {
    let since = now_ms.saturating_sub((WINDOW_S * 1000.0) as u64);
    let x = |ts: u64| (ts as f64 - now_ms as f64) / 1000.0;
    let generators = || history.cards.values().filter(|c| c.role == Role::Generator).enumerate();
    let mut lines = Vec::new();
    let (caption, y_desc, percent) = match chart {
        Chart::Throughput => {
            for (i, card) in generators() {
                let points = &history.points[&card.url];
                let recent = || points.iter().filter(|p| p.ts_ms >= since);
                lines.push(Line {
                    label: format!("{} achieved", name(card, history)),
                    colour: i + 2,
                    dashed: false,
                    points: recent().map(|p| (x(p.ts_ms), p.achieved)).collect(),
                });
                lines.push(Line {
                    label: format!("{} target", name(card, history)),
                    colour: i + 2,
                    dashed: true,
                    points: recent().map(|p| (x(p.ts_ms), p.target)).collect(),
                });
            }
            let totals = history.totals(since);
            lines.push(Line {
                label: "total achieved".into(),
                colour: 0,
                dashed: false,
                points: totals.iter().map(|&(ts, _, achieved)| (x(ts), achieved)).collect(),
            });
            lines.push(Line {
                label: "total target".into(),
                colour: 0,
                dashed: true,
                points: totals.iter().map(|&(ts, target, _)| (x(ts), target)).collect(),
            });
            if !history.prometheus.is_empty() {
                lines.push(Line {
                    label: "cluster (Prometheus)".into(),
                    colour: 1,
                    dashed: false,
                    points: history
                        .prometheus
                        .iter()
                        .filter(|(ts, _)| *ts >= since)
                        .map(|&(ts, v)| (x(ts), v))
                        .collect(),
                });
            }
            ("target vs achieved", "msg/s", false)
        }
        Chart::Latency => {
            for (i, card) in generators() {
                lines.push(Line {
                    label: format!("{} p99", name(card, history)),
                    colour: i + 2,
                    dashed: false,
                    points: history.points[&card.url]
                        .iter()
                        .filter(|p| p.ts_ms >= since)
                        .filter_map(|p| Some((x(p.ts_ms), p.p99_ms?)))
                        .collect(),
                });
            }
            ("delivery latency p99", "ms", false)
        }
        Chart::Hosts => {
            let brokers = history.cards.values().filter(|c| c.role == Role::Broker).enumerate();
            for (i, card) in brokers {
                let points = &history.points[&card.url];
                let metrics: [(&str, Pick, bool); 3] =
                    [("CPU", |p| p.cpu, false), ("disk", |p| p.disk, true), ("NIC", |p| p.nic, false)];
                for (j, (metric, pick, dashed)) in metrics.into_iter().enumerate() {
                    lines.push(Line {
                        label: format!("{} {metric}", name(card, history)),
                        colour: i * 3 + j,
                        dashed,
                        points: points
                            .iter()
                            .filter(|p| p.ts_ms >= since)
                            .filter_map(|p| Some((x(p.ts_ms), pick(p)? * 100.0)))
                            .collect(),
                    });
                }
            }
            ("broker hosts: CPU, busiest disk, busiest NIC", "% busy", true)
        }
    };
    draw(caption, y_desc, percent, &lines)
}

fn draw(caption: &str, y_desc: &str, percent: bool, lines: &[Line]) -> Result<String, String> {
    let oldest = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).fold(0.0, f64::min).max(-WINDOW_S);
    let x_range = oldest.min(-60.0)..0.0;
    let top = if percent {
        100.0
    } else {
        lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).fold(0.0, f64::max).max(1.0) * 1.15
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", CAPTION_PX))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x_range, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("seconds ago")
            .y_desc(y_desc)
            .label_style(("sans-serif", LABEL_PX))
            .axis_desc_style(("sans-serif", LABEL_PX))
            .x_labels(6)
            .y_labels(5)
            .x_label_formatter(&|x| format!("{:.0}", -x))
            .y_label_formatter(&|y| if *y >= 10_000.0 { format!("{:.0}k", y / 1000.0) } else { format!("{y:.0}") })
            .draw()
            .map_err(|e| e.to_string())?;
        for line in lines.iter().filter(|l| !l.points.is_empty()) {
            let colour = Palette99::pick(line.colour).to_rgba();
            let style = colour.stroke_width(if line.dashed { 1 } else { 2 });
            let series = if line.dashed {
                chart.draw_series(DashedLineSeries::new(line.points.iter().copied(), 4, 3, style))
            } else {
                chart.draw_series(LineSeries::new(line.points.iter().copied(), style))
            };
            series
                .map_err(|e| e.to_string())?
                .label(line.label.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2)));
        }
        if lines.iter().any(|l| !l.points.is_empty()) {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", LABEL_PX))
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chart_renders_with_and_without_data() {
        let generators = vec!["http://10.0.0.11:7070".to_string()];
        let brokers = vec!["http://10.0.0.21:7070".to_string()];
        let mut history = History::new(&generators, &brokers, &[]);
        for chart in [Chart::Throughput, Chart::Latency, Chart::Hosts] {
            let svg = render(chart, &history, 100_000).unwrap();
            assert!(svg.starts_with("<svg"), "{chart:?}");
        }
        history.points.get_mut(&generators[0]).unwrap().push_back(super::super::history::Point {
            ts_ms: 99_000,
            target: 20_000.0,
            achieved: 19_000.0,
            p99_ms: Some(12.0),
            ..Default::default()
        });
        let svg = render(Chart::Throughput, &history, 100_000).unwrap();
        assert!(svg.contains("total achieved") && svg.contains("10.0.0.11 target"), "{svg}");
        assert_eq!(Chart::from_name("hosts.svg"), Some(Chart::Hosts));
        assert_eq!(Chart::from_name("cpu.svg"), None);
    }
}
