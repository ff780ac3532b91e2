//! One member of the consumer group: its librdkafka context (rebalances, statistics), the
//! batch it polls, handles and writes, and what it adds to the run's totals.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use serde::Deserialize;

use super::ledger::{Ledger, device_index};
use super::sink::{self, Row, Sink};
use super::{ConsumeConfig, POLL_WAIT, SinkReport, unix_ms};
use crate::kafka::brokers::BrokerCheck;
use crate::kafka::report::Errors;

/// One event as the consumer reads it: seed 000's fields, metrics kept verbatim.
#[derive(Deserialize)]
pub(super) struct WireEvent {
    pub(super) event_id: uuid::Uuid,
    pub(super) device_id: String,
    pub(super) timestamp: String,
    pub(super) seq: u64,
    pub(super) metrics: Box<serde_json::value::RawValue>,
    pub(super) status: String,
}

/// What every member adds to, once per batch.
#[derive(Debug)]
pub(super) struct Totals {
    pub(super) ledger: Ledger,
    pub(super) bytes: u64,
    pub(super) e2e_run: hdrhistogram::Histogram<u64>,
    pub(super) e2e_interval: hdrhistogram::Histogram<u64>,
    pub(super) record_run: hdrhistogram::Histogram<u64>,
    pub(super) insert_run: hdrhistogram::Histogram<u64>,
    pub(super) insert_interval: hdrhistogram::Histogram<u64>,
    pub(super) sink: Option<SinkReport>,
    pub(super) errors: Errors,
    pub(super) members: Vec<MemberTime>,
    /// Records to read before the run counts as drained (`until_drained`).
    pub(super) backlog: Option<u64>,
    /// When the backlog was read, with the records and bytes read by then.
    pub(super) drained: Option<(Instant, u64, u64)>,
}

/// A member's view of its group membership, kept by the rebalance callbacks.
#[derive(Debug, Default)]
pub(super) struct MemberState {
    pub(super) subscribed: Option<Instant>,
    pub(super) first_assignment_ms: Option<f64>,
    pub(super) revocations: u64,
    pub(super) revoked_at: Option<Instant>,
    pub(super) rebalance_max_ms: f64,
    /// Partitions held when the run was told to stop: the members leave one by one
    /// after that, and the rebalances their leaving causes are not the run's.
    pub(super) assigned: usize,
}

pub(super) struct MemberContext {
    pub(super) state: Mutex<MemberState>,
    pub(super) statistics: Mutex<Option<Statistics>>,
    pub(super) stopping: Arc<AtomicBool>,
    pub(super) brokers: Arc<BrokerCheck>,
}

impl ClientContext for MemberContext {
    fn stats(&self, statistics: Statistics) {
        // A broker the cluster starts advertising mid-run appears here first.
        for broker in statistics.brokers.values() {
            if let Ok((host, port)) = crate::allow::split_host_port(&broker.nodename) {
                let _ = self.brokers.check(host, port);
            }
        }
        *self.statistics.lock().unwrap_or_else(|p| p.into_inner()) = Some(statistics);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::debug!("librdkafka consumer: {error}: {reason}");
    }
}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance
            && !self.stopping.load(Ordering::Relaxed)
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.revocations += 1;
            state.revoked_at = Some(Instant::now());
            // An eager revoke lists everything held, a cooperative one what is taken away.
            state.assigned = state.assigned.saturating_sub(partitions.count());
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance
            && !self.stopping.load(Ordering::Relaxed)
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.assigned += partitions.count();
            let now = Instant::now();
            if state.first_assignment_ms.is_none() {
                state.first_assignment_ms = state.subscribed.map(|at| (now - at).as_secs_f64() * 1000.0);
            }
            if let Some(revoked) = state.revoked_at.take() {
                state.rebalance_max_ms = state.rebalance_max_ms.max((now - revoked).as_secs_f64() * 1000.0);
            }
        }
    }
}

/// A member's membership at the end of the run.
#[derive(Debug, Default)]
pub(super) struct MemberEnd {
    pub(super) state: MemberState,
    pub(super) statistics: Option<Statistics>,
}

/// Adds to member `index`'s time.
pub(super) fn member_time(totals: &Mutex<Totals>, index: usize, add: impl FnOnce(&mut MemberTime)) {
    add(&mut totals.lock().unwrap_or_else(|p| p.into_inner()).members[index]);
}

/// Where one member's time went (cumulative): waiting for records, handling them (parsing,
/// the synchronous work per event), and writing them to the sink.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct MemberTime {
    pub(super) records: u64,
    pub(super) waiting: Duration,
    pub(super) handling: Duration,
    pub(super) sink: Duration,
}

/// The busy shares of the members that handled records between two readings: the mean
/// over those members of their time handling and in the sink, as shares of `elapsed`.
pub(super) fn busy_shares(before: &[MemberTime], after: &[MemberTime], elapsed: Duration) -> Option<(f64, f64, f64)> {
    let seconds = elapsed.as_secs_f64().max(1e-3);
    let active: Vec<(f64, f64)> = before
        .iter()
        .zip(after)
        .filter(|(b, a)| a.records > b.records)
        .map(|(b, a)| {
            let share = |d: Duration| (d.as_secs_f64() / seconds).min(1.0);
            (share(a.handling - b.handling), share(a.sink - b.sink))
        })
        .collect();
    if active.is_empty() {
        return None;
    }
    let n = active.len() as f64;
    let handling = active.iter().map(|(h, _)| h).sum::<f64>() / n;
    let sink = active.iter().map(|(_, s)| s).sum::<f64>() / n;
    Some(((handling + sink).min(1.0), handling, sink))
}

/// One handled record, measured.
pub(super) struct Handled {
    pub(super) device: Option<u64>,
    pub(super) seq: u64,
    pub(super) event_ms: Option<u64>,
    pub(super) record_ms: Option<u64>,
}

/// One member's batch, reused from poll to poll: the records handled, the sink's rows,
/// the offsets to store and the errors polled.
pub(super) struct Batch {
    pub(super) handled: Vec<Handled>,
    pub(super) rows: Vec<Row>,
    pub(super) offsets: BTreeMap<i32, i64>,
    pub(super) errors: Vec<rdkafka::error::KafkaError>,
    pub(super) bytes: u64,
    /// When the poll started, and when its first record (or error) came.
    pub(super) polled: Instant,
    pub(super) first_record: Option<Instant>,
    /// Whether the records become rows for a sink.
    with_rows: bool,
}

impl Batch {
    fn new(max_batch: usize, with_rows: bool) -> Batch {
        Batch {
            handled: Vec::with_capacity(max_batch),
            rows: Vec::with_capacity(if with_rows { max_batch } else { 0 }),
            offsets: BTreeMap::new(),
            errors: Vec::new(),
            bytes: 0,
            polled: Instant::now(),
            first_record: None,
            with_rows,
        }
    }

    /// Polls up to `config.max_batch` records: waits for the first, then takes what is
    /// already fetched.
    fn poll(&mut self, consumer: &BaseConsumer<MemberContext>, config: &ConsumeConfig) {
        self.handled.clear();
        self.rows.clear();
        self.offsets.clear();
        self.bytes = 0;
        self.polled = Instant::now();
        self.first_record = None;
        let mut wait = POLL_WAIT;
        while self.handled.len() < config.max_batch {
            let Some(result) = consumer.poll(wait) else { break };
            wait = Duration::ZERO;
            self.first_record.get_or_insert_with(Instant::now);
            let message = match result {
                Ok(message) => message,
                Err(err) => {
                    self.errors.push(err);
                    continue;
                }
            };
            self.offsets.insert(message.partition(), message.offset());
            let payload = message.payload().unwrap_or_default();
            self.bytes += payload.len() as u64;
            let record_ms = message.timestamp().to_millis().map(|ms| ms.max(0) as u64);
            match serde_json::from_slice::<WireEvent>(payload) {
                Ok(event) => {
                    self.handled.push(Handled {
                        device: device_index(&event.device_id, &config.device_prefix),
                        seq: event.seq,
                        event_ms: humantime::parse_rfc3339(&event.timestamp).ok().map(unix_ms),
                        record_ms,
                    });
                    if self.with_rows {
                        self.rows.push(Row {
                            event_id: event.event_id,
                            device_id: event.device_id,
                            timestamp: event.timestamp,
                            seq: event.seq,
                            metrics: event.metrics.get().to_string(),
                            status: event.status,
                        });
                    }
                }
                Err(_) => self.handled.push(Handled { device: None, seq: 0, event_ms: None, record_ms }),
            }
        }
    }
}

/// Where a handled batch's time went: from the poll to its first record, handling, and
/// the sink.
pub(super) struct BatchTimes {
    pub(super) polled: Instant,
    pub(super) handling_from: Instant,
    pub(super) sink_from: Instant,
    pub(super) sink_to: Instant,
}

/// One member: poll a batch, handle it, write it, store its offsets; until stopped.
pub(super) fn member(
    index: usize,
    consumer: BaseConsumer<MemberContext>,
    mut sink: Option<Sink>,
    config: &ConsumeConfig,
    totals: &Mutex<Totals>,
    stopping: &AtomicBool,
) -> MemberEnd {
    consumer.context().state.lock().unwrap_or_else(|p| p.into_inner()).subscribed = Some(Instant::now());
    if let Err(err) = consumer.subscribe(&[&config.topic]) {
        totals.lock().unwrap_or_else(|p| p.into_inner()).errors.record(&err);
        return MemberEnd::default();
    }
    let mut batch = Batch::new(config.max_batch, sink.is_some());
    while !stopping.load(Ordering::Relaxed) {
        batch.poll(&consumer, config);
        let handling_from = batch.first_record.unwrap_or_else(Instant::now);
        if batch.handled.is_empty() && batch.errors.is_empty() {
            member_time(totals, index, |time| time.waiting += handling_from - batch.polled);
            continue;
        }
        if config.process_us > 0 && !batch.handled.is_empty() {
            // Work done on the polling thread itself, as seed 004's synchronous event bus
            // did: the member polls again only after it.
            std::thread::sleep(Duration::from_micros(config.process_us * batch.handled.len() as u64));
        }
        let sink_from = Instant::now();
        let written = match (&mut sink, batch.rows.is_empty()) {
            (Some(sink), false) => Some(sink.write(&batch.rows)),
            _ => None,
        };
        let sink_to = Instant::now();
        if !matches!(written, Some(Err(_))) {
            for (&partition, &offset) in &batch.offsets {
                // A partition revoked mid-batch refuses the store; its new owner reads
                // the batch again, and the sink does not store it twice.
                let _ = consumer.store_offset(&config.topic, partition, offset);
            }
        }
        let times = BatchTimes { polled: batch.polled, handling_from, sink_from, sink_to };
        account(&mut totals.lock().unwrap_or_else(|p| p.into_inner()), index, &mut batch, &times, written);
    }
    // Commit what was handled before leaving the group, so that lag read after the run
    // is the truth and a next run with the same group starts after it.
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
    let context = consumer.context();
    MemberEnd {
        state: std::mem::take(&mut *context.state.lock().unwrap_or_else(|p| p.into_inner())),
        statistics: context.statistics.lock().unwrap_or_else(|p| p.into_inner()).take(),
    }
}

/// Adds a handled batch to the run's totals: counts, the member's time, latencies, the
/// ledger, errors, the drain, and the sink's result.
pub(super) fn account(
    totals: &mut Totals,
    index: usize,
    batch: &mut Batch,
    times: &BatchTimes,
    written: Option<Result<sink::Written, String>>,
) {
    let now_ms = crate::sampler::raw::unix_ms_now();
    totals.bytes += batch.bytes;
    let time = &mut totals.members[index];
    time.records += batch.handled.len() as u64;
    time.waiting += times.handling_from - times.polled;
    time.handling += times.sink_from - times.handling_from;
    time.sink += times.sink_to - times.sink_from;
    for record in &batch.handled {
        totals.ledger.record(record.device, record.seq);
        if let Some(sent) = record.event_ms {
            let us = now_ms.saturating_sub(sent).max(1) * 1000;
            totals.e2e_run.saturating_record(us);
            totals.e2e_interval.saturating_record(us);
        }
        if let Some(sent) = record.record_ms {
            totals.record_run.saturating_record(now_ms.saturating_sub(sent).max(1) * 1000);
        }
    }
    for err in batch.errors.drain(..) {
        totals.errors.record(&err);
    }
    if totals.drained.is_none() && totals.backlog.is_some_and(|backlog| totals.ledger.consumed >= backlog) {
        totals.drained = Some((Instant::now(), totals.ledger.consumed, totals.bytes));
    }
    match written {
        Some(Ok(written)) => {
            let us = written.took.as_micros() as u64;
            totals.insert_run.saturating_record(us.max(1));
            totals.insert_interval.saturating_record(us.max(1));
            if let Some(report) = totals.sink.as_mut() {
                report.batches += 1;
                report.rows_inserted += written.inserted;
                report.rows_already_stored += written.already_stored;
            }
        }
        Some(Err(err)) => {
            if let Some(report) = totals.sink.as_mut() {
                report.failed_batches += 1;
                report.last_error = Some(err);
            }
        }
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(records: u64, handling_ms: u64, sink_ms: u64) -> MemberTime {
        MemberTime {
            records,
            waiting: Duration::ZERO,
            handling: Duration::from_millis(handling_ms),
            sink: Duration::from_millis(sink_ms),
        }
    }

    #[test]
    fn busy_shares_are_of_the_members_that_had_records() {
        let before = [time(0, 0, 0), time(0, 0, 0), time(0, 0, 0)];
        // Two members handled records over a second (one busy 90 %, one 70 %, mostly in
        // the sink); the third had no partition and only waited.
        let after = [time(500, 100, 800), time(400, 100, 600), time(0, 0, 0)];
        let (busy, handling, sink) = busy_shares(&before, &after, Duration::from_secs(1)).unwrap();
        assert!((busy - 0.8).abs() < 1e-9, "{busy}");
        assert!((handling - 0.1).abs() < 1e-9 && (sink - 0.7).abs() < 1e-9);
        assert_eq!(busy_shares(&before, &before, Duration::from_secs(1)), None);
    }
}
