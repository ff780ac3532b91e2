//! Active probes: measurements that generate load (disk appends and reads now; network
//! and Kafka produce runs later). Every probe implements [`Probe`] and returns a
//! [`ProbeOutput`]; probes never format output, the report module does.

pub mod disk;
pub mod net;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

/// A probe: configured up front, run once, cancellable from another thread.
pub trait Probe {
    /// Short name used in logs and errors (`disk`, `net-tcp`, ...).
    fn name(&self) -> &'static str;

    /// Runs the probe to completion, or until `cancel` is set.
    fn run(&self, cancel: &Cancel) -> Result<ProbeOutput, ProbeError>;
}

/// The result of any probe.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "probe", rename_all = "snake_case")]
pub enum ProbeOutput {
    /// The disk probe's result.
    Disk(Box<disk::DiskResult>),
    /// A network test's result (iperf3's JSON layout plus plateau's findings).
    Net(Box<crate::net::NetReport>),
}

/// Why a probe did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The request cannot be run as given; the message says what to change.
    #[error("{0}")]
    InvalidInput(String),
    /// The probe ran but failed; the message says why and what to check.
    #[error("{0}")]
    Failed(String),
    /// The probe was interrupted before it finished.
    #[error("probe interrupted before it finished")]
    Cancelled,
    /// The system refused an operation the probe needs.
    #[error("{context}: {source}")]
    Io {
        /// What the probe was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl ProbeError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProbeError {
        let context = context.into();
        move |source| ProbeError::Io { context, source }
    }
}

/// A flag that asks a running probe to stop early; cheap to clone and to check.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A fresh, unset flag.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks every holder of this flag to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether stopping was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once stopping was asked for, for use with `?` inside loops.
    pub fn check(&self) -> Result<(), ProbeError> {
        if self.is_cancelled() { Err(ProbeError::Cancelled) } else { Ok(()) }
    }
}

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
        }
    }
}

/// A histogram for latencies from 1 µs to 10 minutes at 3 significant digits.
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds are valid")
}
