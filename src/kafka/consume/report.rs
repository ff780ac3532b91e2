//! What a consume run reports: its intervals, validation, sink, membership, lag and
//! catch-up, and the report assembled at the run's end.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::ConsumeConfig;
use super::lag::LagReport;
use super::member::{MemberEnd, Totals};
use crate::kafka::report::{Errors, WindowUs};
use crate::latency::LatencyMs;

/// One reporting interval.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ConsumeInterval {
    /// Unix ms at the end of the interval.
    pub at_ms: u64,
    /// Seconds since the run started, at the end of the interval.
    pub end_secs: f64,
    /// Records handled in the interval.
    pub records: u64,
    /// Records handled per second.
    pub records_per_sec: f64,
    /// Megabytes (10^6) handled per second.
    pub mb_per_sec: f64,
    /// Mean end-to-end latency (event timestamp to handled).
    pub e2e_avg_ms: f64,
    /// Its 99th percentile.
    pub e2e_p99_ms: f64,
    /// The group's lag at the end of the interval, records (none when it could not be read).
    pub lag: Option<u64>,
    /// The sink's 99th percentile transaction time in the interval.
    pub insert_p99_ms: Option<f64>,
    /// The sink's mean transaction time in the interval (each record waits for its batch's).
    #[serde(default)]
    pub insert_avg_ms: Option<f64>,
    /// Members that handled records: the mean share of their time handling them or
    /// writing them to the sink (1.0: they never waited for records, so more records
    /// were there than they could take).
    #[serde(default)]
    pub members_busy_ratio: Option<f64>,
    /// Of that, the share handling them (parsing, the synchronous work per event).
    #[serde(default)]
    pub handling_busy_ratio: Option<f64>,
    /// Of that, the share in the sink's transactions.
    #[serde(default)]
    pub sink_busy_ratio: Option<f64>,
}

/// What the per-device validation found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ConsumeValidation {
    /// Whether every device was read from its first event (a fresh group); otherwise
    /// gaps are counted only above each device's first event read.
    pub from_first_event: bool,
    /// Distinct events read.
    pub unique: u64,
    /// Devices seen.
    pub devices: usize,
    /// Events missing below each device's highest sequence number.
    pub lost: u64,
    /// Events read more than once.
    pub duplicated: u64,
    /// Events read after a later event of the same device.
    pub out_of_order: u64,
    /// Records that are not plateau's events.
    pub foreign: u64,
}

/// What the sink did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SinkReport {
    /// The table written.
    pub table: String,
    /// Transactions committed.
    pub batches: u64,
    /// Rows inserted.
    pub rows_inserted: u64,
    /// Rows already in the table (an event read again, or produced twice).
    pub rows_already_stored: u64,
    /// Each batch's transaction time.
    pub insert_ms: LatencyMs,
    /// Batches that failed (their events are not in the table).
    pub failed_batches: u64,
    /// The most recent failure.
    pub last_error: Option<String>,
}

/// How the group's membership went.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Membership {
    /// Rebalances after the first assignment (the most any member saw).
    pub rebalances: u64,
    /// The slowest member's time from subscribing to its first assignment.
    pub join_ms: f64,
    /// The longest a member went without partitions in a rebalance.
    pub rebalance_max_ms: f64,
    /// Partitions assigned to each member at the end.
    pub assigned: Vec<usize>,
    /// Members without a partition at the end (more members than partitions).
    pub idle_members: usize,
}

/// The whole result of a consume run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ConsumeReport {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// The topic.
    pub topic: String,
    /// The consumer group.
    pub group: String,
    /// Members started.
    pub members: usize,
    /// Partitions of the topic.
    pub partitions: usize,
    /// Unix ms the run started.
    pub started_at_ms: u64,
    /// Length of the run.
    pub duration_secs: f64,
    /// Records handled.
    pub consumed: u64,
    /// Payload bytes handled.
    pub bytes: u64,
    /// Records handled per second over the run.
    pub records_per_sec: f64,
    /// Megabytes (10^6) per second over the run.
    pub mb_per_sec: f64,
    /// End-to-end latency from the event's own timestamp to the batch handled.
    pub e2e_ms: LatencyMs,
    /// End-to-end latency from the record's produce time (its Kafka timestamp).
    pub e2e_record_ms: LatencyMs,
    /// librdkafka's fetch round trip on the slowest broker (includes the broker's fetch wait).
    pub fetch_rtt_us: Option<WindowUs>,
    /// Per-device validation.
    pub validation: ConsumeValidation,
    /// The sink, when there was one.
    pub sink: Option<SinkReport>,
    /// Rebalances and assignments.
    pub membership: Membership,
    /// The group's lag.
    pub lag: LagReport,
    /// Reporting intervals.
    pub intervals: Vec<ConsumeInterval>,
    /// Consumer errors.
    pub errors: Errors,
    /// The drain of a catch-up run (`until_drained`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUp>,
    /// Why the run ended early, if it did (the report covers what was measured).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stopped_early: Option<String>,
}

/// How a catch-up run read its backlog.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CatchUp {
    /// Records between the group's start offsets and the topic's end offsets when the run
    /// started.
    pub backlog_records: u64,
    /// Seconds from the run's start (the group's join included) until the last record of
    /// the backlog was handled; none when the run ended first.
    pub drained_secs: Option<f64>,
    /// Records read by then (or by the run's end), and their payload bytes.
    pub records: u64,
    /// Payload bytes of those records.
    pub bytes: u64,
    /// Records per second over the drain (or the run, when it did not drain).
    pub records_per_sec: f64,
    /// Megabytes (10^6) per second over the same time.
    pub mb_per_sec: f64,
}

/// How a run went, besides its totals: what `report` needs from the run driver.
pub(super) struct RunEnd {
    pub group: String,
    pub partitions: usize,
    pub started: Instant,
    pub started_at_ms: u64,
    pub duration: f64,
    pub intervals: Vec<ConsumeInterval>,
    pub stopped_early: Option<String>,
}

/// The run's report from its totals, its members' ends and the group's lag.
pub(super) fn report(
    config: &ConsumeConfig,
    run: RunEnd,
    from_first_event: bool,
    mut totals: Totals,
    ends: Vec<MemberEnd>,
    lag: LagReport,
) -> ConsumeReport {
    let RunEnd { group, partitions, started, started_at_ms, duration, intervals, stopped_early } = run;
    let ledger = &totals.ledger;
    if let Some(sink) = totals.sink.as_mut() {
        sink.insert_ms = LatencyMs::from_micros(&totals.insert_run);
    }
    let fetch_rtt_us = ends
        .iter()
        .filter_map(|end| end.statistics.as_ref())
        .flat_map(|statistics| statistics.brokers.values())
        .filter(|broker| broker.nodeid >= 0)
        .filter_map(|broker| broker.rtt.as_ref().filter(|rtt| rtt.cnt > 0))
        .max_by_key(|rtt| rtt.p99)
        .map(WindowUs::from);
    let assigned: Vec<usize> = ends.iter().map(|end| end.state.assigned).collect();
    let membership = Membership {
        rebalances: ends.iter().map(|end| end.state.revocations).max().unwrap_or(0),
        join_ms: ends.iter().filter_map(|end| end.state.first_assignment_ms).fold(0.0, f64::max),
        rebalance_max_ms: ends.iter().map(|end| end.state.rebalance_max_ms).fold(0.0, f64::max),
        idle_members: assigned.iter().filter(|&&count| count == 0).count(),
        assigned,
    };
    let catch_up = totals.backlog.map(|backlog_records| {
        let (secs, records, bytes) = match totals.drained {
            Some((at, records, bytes)) => (Some(at.saturating_duration_since(started).as_secs_f64()), records, bytes),
            None => (None, ledger.consumed, totals.bytes),
        };
        let over = Duration::from_secs_f64(secs.unwrap_or(duration).max(1e-3));
        CatchUp {
            backlog_records,
            drained_secs: secs,
            records,
            bytes,
            records_per_sec: records as f64 / over.as_secs_f64(),
            mb_per_sec: crate::units::mb_per_sec(bytes, over),
        }
    });
    ConsumeReport {
        bootstrap: config.bootstrap.clone(),
        topic: config.topic.clone(),
        group,
        members: config.members,
        partitions,
        started_at_ms,
        duration_secs: duration,
        consumed: ledger.consumed,
        bytes: totals.bytes,
        records_per_sec: ledger.consumed as f64 / duration.max(1e-3),
        mb_per_sec: crate::units::mb_per_sec(totals.bytes, Duration::from_secs_f64(duration)),
        e2e_ms: LatencyMs::from_micros(&totals.e2e_run),
        e2e_record_ms: LatencyMs::from_micros(&totals.record_run),
        fetch_rtt_us,
        validation: ConsumeValidation {
            from_first_event,
            unique: ledger.unique(),
            devices: ledger.devices(),
            lost: ledger.gaps(),
            duplicated: ledger.duplicated,
            out_of_order: ledger.out_of_order,
            foreign: ledger.foreign,
        },
        sink: totals.sink.clone(),
        membership,
        lag,
        intervals,
        errors: totals.errors.clone(),
        catch_up,
        stopped_early,
    }
}
