//! Evidence: named time series with units, from every collector, on one clock (Unix ms).
//! The rule engine judges a window of it; the report shows it.
//!
//! `gather` collects a run's evidence from all of them; `agent` turns the agents' samples
//! into series, `prometheus` runs the catalog's PromQL
//! over the run window, `jmx` reads jmx_exporter endpoints and Jolokia.

pub mod agent;
pub mod gather;
pub mod jmx;
pub mod measured;
pub mod prometheus;

use serde::{Deserialize, Serialize};

/// One signal of one instance over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The catalog's signal name.
    pub signal: String,
    /// The host (or `cluster`) the values belong to.
    pub instance: String,
    /// The signal's unit.
    pub unit: String,
    /// Unix ms of each point, increasing.
    pub timestamps: Vec<u64>,
    /// The values; NaN and infinities are never stored.
    pub values: Vec<f64>,
}

impl Series {
    /// An empty series.
    pub fn new(signal: &str, instance: &str, unit: &str) -> Series {
        Series {
            signal: signal.to_string(),
            instance: instance.to_string(),
            unit: unit.to_string(),
            ..Series::default()
        }
    }

    /// Appends a point; non-finite values and points out of time order are dropped.
    pub fn push(&mut self, ts_ms: u64, value: f64) {
        if value.is_finite() && self.timestamps.last().is_none_or(|last| ts_ms > *last) {
            self.timestamps.push(ts_ms);
            self.values.push(value);
        }
    }

    /// The values within `[start_ms, end_ms]`.
    pub fn window(&self, start_ms: u64, end_ms: u64) -> &[f64] {
        let from = self.timestamps.partition_point(|ts| *ts < start_ms);
        let to = self.timestamps.partition_point(|ts| *ts <= end_ms);
        &self.values[from..to.max(from)]
    }
}

/// Everything measured or collected for one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// All series.
    pub series: Vec<Series>,
    /// Sources that could not be read, with why (an unreachable Prometheus, a dead agent).
    pub unavailable: Vec<String>,
}

impl Evidence {
    /// Adds `other`'s series of a signal and instance this evidence has none of yet: the
    /// first source gathered keeps a quantity (the agents' samples before Prometheus before
    /// JMX, the catalog's order), so that each appears once in the rules and the report.
    pub fn extend_missing(&mut self, other: Evidence) {
        for series in other.series {
            if self.find(&series.signal, &series.instance).is_none() {
                self.series.push(series);
            }
        }
        self.unavailable.extend(other.unavailable);
    }

    /// The series of `signal` for `instance`.
    pub fn find(&self, signal: &str, instance: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.signal == signal && s.instance == instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantity_comes_from_the_first_source_that_has_it() {
        let one = |signal: &str, instance: &str, value: f64| {
            let mut s = Series::new(signal, instance, "ratio");
            s.push(1_000, value);
            s
        };
        let mut evidence = Evidence { series: vec![one("host_cpu_busy", "b1", 0.5)], unavailable: vec![] };
        evidence.extend_missing(Evidence {
            series: vec![one("host_cpu_busy", "b1", 0.9), one("host_cpu_busy", "b2", 0.7)],
            unavailable: vec!["jmx b3: refused".into()],
        });
        assert_eq!(evidence.series.len(), 2);
        assert_eq!(evidence.find("host_cpu_busy", "b1").unwrap().values, vec![0.5]);
        assert_eq!(evidence.find("host_cpu_busy", "b2").unwrap().values, vec![0.7]);
        assert_eq!(evidence.unavailable, vec!["jmx b3: refused"]);
    }

    #[test]
    fn windows_are_inclusive_and_bad_points_are_dropped() {
        let mut series = Series::new("s", "h", "ratio");
        for (ts, v) in [(1000, 0.1), (2000, f64::NAN), (2000, 0.2), (1500, 0.9), (3000, 0.3), (4000, 0.4)] {
            series.push(ts, v);
        }
        assert_eq!(series.values, [0.1, 0.2, 0.3, 0.4]);
        assert_eq!(series.window(2000, 3000), [0.2, 0.3]);
        assert!(series.window(5000, 6000).is_empty());
        assert!(series.window(3000, 2000).is_empty());
    }
}
