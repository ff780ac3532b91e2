//! Latency percentiles as every probe and run reports them, and the histogram they come from.

use serde::Serialize;

/// Latency percentiles in milliseconds, as every probe reports them.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct LatencyMs {
    /// Number of measurements.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean (seed 004's latency SLA is on the average).
    #[serde(default)]
    pub avg: f64,
}

impl LatencyMs {
    /// Summarizes a histogram recorded in microseconds.
    pub fn from_micros(histogram: &hdrhistogram::Histogram<u64>) -> LatencyMs {
        if histogram.is_empty() {
            return LatencyMs::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencyMs {
            count: histogram.len(),
            p50: ms(histogram.value_at_quantile(0.50)),
            p95: ms(histogram.value_at_quantile(0.95)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            avg: histogram.mean() / 1000.0,
        }
    }
}

/// A histogram for latencies from 1 µs to 10 minutes at 3 significant digits.
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds are valid")
}
