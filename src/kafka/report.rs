//! The result of a produce run: the JSON contract of `plateau produce --json` and of
//! the agent's run reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::latency::LatencyMs;

/// A step kept up when its achieved rate reached this share of its target.
pub const KEPT_UP_RATIO: f64 = 0.95;

/// The first share of a step that is not measured: records of the step before are still
/// in flight, and the producers' queues and the brokers are settling to the new target.
/// Its rate is measured over the rest (by the generators and the consumers alike).
pub const SETTLE_SHARE: f64 = 0.2;

/// Whether `achieved` msg/s kept up with a `target` of msg/s.
pub fn kept_up(achieved: f64, target: f64) -> bool {
    achieved >= KEPT_UP_RATIO * target
}

/// Errors by kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Errors {
    /// All errors.
    pub total: u64,
    /// Count per kind (librdkafka's error name).
    pub by_kind: BTreeMap<String, u64>,
    /// The most recent error message.
    pub last_error: Option<String>,
}

impl Errors {
    /// Counts one error under librdkafka's name for it.
    pub fn record(&mut self, error: &rdkafka::error::KafkaError) {
        let kind = match error.rdkafka_error_code() {
            Some(code) => format!("{code:?}"),
            None => format!("{error:?}").split(['(', ' ']).next().unwrap_or("Unknown").to_string(),
        };
        self.total += 1;
        *self.by_kind.entry(kind).or_default() += 1;
        self.last_error = Some(error.to_string());
    }
}

/// One reporting interval, like kafka-producer-perf-test's periodic line.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ProduceInterval {
    /// Seconds since the run started, at the end of the interval.
    pub end_secs: f64,
    /// Target rate during the interval.
    pub target_rate: u64,
    /// Records handed to the producer.
    pub records_sent: u64,
    /// Records acknowledged by the broker.
    pub records_acked: u64,
    /// Acknowledged records per second.
    pub records_per_sec: f64,
    /// Acknowledged megabytes (10^6) per second.
    pub mb_per_sec: f64,
    /// Mean delivery latency.
    pub latency_avg_ms: f64,
    /// 99th percentile delivery latency.
    pub latency_p99_ms: f64,
    /// Largest delivery latency.
    pub latency_max_ms: f64,
    /// Errors in the interval.
    pub errors: u64,
    /// The producer's queueing (librdkafka's `int_latency`) in the statistics last seen
    /// at the interval's end, ms, p99, the worst broker's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_p99_ms: Option<f64>,
    /// Request round trips in the same statistics, ms, p99, the worst broker's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_p99_ms: Option<f64>,
}

/// One step of a ramp.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Step {
    /// Target rate, msg/s.
    pub target_rate: u64,
    /// Acknowledged rate over the step's measured part (after its settling share), msg/s.
    pub achieved_rate: f64,
    /// Acknowledged megabytes (10^6, payload) per second over the same part.
    #[serde(default)]
    pub mb_per_sec: f64,
    /// Median delivery latency in the step.
    #[serde(default)]
    pub p50_ms: f64,
    /// 95th percentile delivery latency in the step.
    #[serde(default)]
    pub p95_ms: f64,
    /// 99th percentile delivery latency in the step.
    pub p99_ms: f64,
    /// 99th percentile publish delay in the step.
    pub publish_delay_p99_ms: f64,
    /// Errors in the step.
    pub errors: u64,
    /// Whether the achieved rate kept up (≥ 95 % of the target).
    pub sustained: bool,
    /// Unix ms the step started.
    #[serde(default)]
    pub started_ms: u64,
    /// Unix ms its measured part started (after its settling share).
    #[serde(default)]
    pub measured_from_ms: u64,
    /// Unix ms it ended.
    #[serde(default)]
    pub ended_ms: u64,
}

/// A librdkafka latency window, microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct WindowUs {
    /// Mean.
    pub avg: i64,
    /// Median.
    pub p50: i64,
    /// 95th percentile.
    #[serde(default)]
    pub p95: i64,
    /// 99th percentile.
    pub p99: i64,
    /// Largest.
    pub max: i64,
}

impl From<&rdkafka::statistics::Window> for WindowUs {
    fn from(window: &rdkafka::statistics::Window) -> Self {
        WindowUs { avg: window.avg, p50: window.p50, p95: window.p95, p99: window.p99, max: window.max }
    }
}

/// librdkafka's view of one broker: where the time of a produce request goes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct BrokerStats {
    /// `host:port/id`.
    pub name: String,
    /// Time messages waited in the client before a request (queueing in the producer).
    pub int_latency_us: Option<WindowUs>,
    /// Time requests waited in the output buffer (the client's network side).
    pub outbuf_latency_us: Option<WindowUs>,
    /// Request round-trip time (network plus broker).
    pub rtt_us: Option<WindowUs>,
    /// Broker throttling, milliseconds.
    pub throttle_ms: Option<WindowUs>,
    /// Requests retried.
    pub txretries: u64,
    /// Requests that timed out.
    pub req_timeouts: u64,
    /// Bytes sent to this broker.
    pub txbytes: u64,
}

/// The worst broker's p99 of one of librdkafka's windows, ms; `None` without a sampled one.
pub fn worst_p99_ms(brokers: &[BrokerStats], window: fn(&BrokerStats) -> Option<WindowUs>) -> Option<f64> {
    brokers.iter().filter_map(window).map(|w| w.p99 as f64 / 1000.0).reduce(f64::max)
}

/// Per-partition distribution.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Partitions {
    /// Acknowledged records per partition, by partition number.
    pub counts: Vec<u64>,
    /// Largest count over the mean count (1.0 is perfectly even).
    pub skew: f64,
    /// Partitions that received records.
    pub used: usize,
    /// Partitions of the topic.
    pub total: usize,
    /// With device keys: the number of distinct keys.
    pub key_cardinality: Option<u64>,
    /// With device keys: partitions expected to be used, P·(1−(1−1/P)^K).
    pub expected_used: Option<f64>,
}

/// What the validating consumer found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Validation {
    /// Events read back.
    pub consumed: u64,
    /// Events acknowledged to the producer but never read back.
    pub lost: u64,
    /// Events read more than once.
    pub duplicated: u64,
    /// Events of a device read after a later one of the same device.
    pub out_of_order: u64,
    /// Event timestamp to consumption.
    pub e2e_latency_ms: LatencyMs,
    /// Whether the consumer caught up with everything acknowledged before its deadline.
    pub complete: bool,
}

/// The whole result of a produce run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ProduceReport {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// The topic.
    pub topic: String,
    /// Unix ms the run started (its first step's start).
    #[serde(default)]
    pub started_at_ms: u64,
    /// Records handed to the producer.
    pub records_sent: u64,
    /// Records acknowledged by the broker.
    pub records_acked: u64,
    /// Acknowledged records per second over the run.
    pub records_per_sec: f64,
    /// Acknowledged megabytes (10^6) per second over the run.
    pub mb_per_sec: f64,
    /// Seconds the run lasted.
    pub duration_secs: f64,
    /// The fixed target rate, msg/s.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_rate: Option<u64>,
    /// The ramp's steps.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub steps: Option<Vec<Step>>,
    /// The highest rate a ramp step sustained, msg/s.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_sustained_rate: Option<f64>,
    /// The highest ramp target whose p99 met `--sla-p99-ms`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_rate_within_sla: Option<u64>,
    /// Send to delivery report.
    pub latency_ms: LatencyMs,
    /// Intended to actual send time.
    pub publish_delay_ms: LatencyMs,
    /// Errors.
    pub errors: Errors,
    /// Distribution over partitions.
    pub partitions: Partitions,
    /// Periodic lines.
    pub intervals: Vec<ProduceInterval>,
    /// librdkafka's latest per-broker statistics.
    pub brokers: Vec<BrokerStats>,
    /// With `--validate`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub validation: Option<Validation>,
    /// Why the run ended early, if it did (the report covers what was measured).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stopped_early: Option<String>,
}

/// Partitions expected to receive at least one of `keys` distinct keys hashed onto
/// `partitions` partitions: P·(1−(1−1/P)^K) (seed 004's "parking problem").
pub fn expected_used_partitions(partitions: usize, keys: u64) -> f64 {
    if partitions == 0 {
        return 0.0;
    }
    let p = partitions as f64;
    p * (1.0 - (1.0 - 1.0 / p).powf(keys as f64))
}

/// The largest count over the mean count of all partitions (1.0 when none received any).
pub fn skew(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if counts.is_empty() || total == 0 {
        return 1.0;
    }
    let mean = total as f64 / counts.len() as f64;
    *counts.iter().max().unwrap() as f64 / mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_hundred_keys_park_in_about_190_of_300_partitions() {
        let used = expected_used_partitions(300, 300);
        assert!((189.0..191.0).contains(&used), "{used}");
        assert!((expected_used_partitions(12, 10_000) - 12.0).abs() < 1e-9);
        assert_eq!(expected_used_partitions(0, 5), 0.0);
        assert!((expected_used_partitions(4, 1) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn skew_is_max_over_mean() {
        assert_eq!(skew(&[10, 10, 10, 10]), 1.0);
        assert_eq!(skew(&[40, 0, 0, 0]), 4.0);
        assert_eq!(skew(&[]), 1.0);
    }
}
