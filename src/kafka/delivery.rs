//! The producer's librdkafka context: the delivery callback measures latency, errors and
//! partitions; the statistics callback keeps each broker's windows (queue time, round
//! trip, throttle) and checks the brokers the cluster advertises.
//!
//! Each record's delivery opaque carries its send time and device (no allocation per
//! record): the send time in microseconds since the run started in the high 36 bits,
//! the device index in the low 28 (`opaque`).

use std::sync::Mutex;
use std::time::Instant;

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;

use super::brokers::BrokerCheck;
use super::report::{BrokerStats, Errors, ProduceInterval, worst_p99_ms};

/// Bits of the delivery opaque that hold the device index.
const DEVICE_BITS: u32 = 28;
/// The most devices a run can tell apart in its delivery reports.
pub const MAX_DEVICES: u64 = 1 << DEVICE_BITS;

/// A record's delivery opaque: its send time (µs since the run started) and its device.
pub(super) fn opaque(sent_us: u64, device: u64) -> usize {
    ((sent_us << DEVICE_BITS) | (device & (MAX_DEVICES - 1))) as usize
}

/// Delivery-side measurements, updated from librdkafka's callback thread.
#[derive(Debug)]
pub(super) struct Deliveries {
    pub(super) acked: u64,
    pub(super) acked_bytes: u64,
    pub(super) errors: Errors,
    pub(super) latency_run: hdrhistogram::Histogram<u64>,
    pub(super) latency_interval: hdrhistogram::Histogram<u64>,
    pub(super) latency_step: hdrhistogram::Histogram<u64>,
    pub(super) partition_counts: Vec<u64>,
    /// Acknowledged events per device (only with validation).
    pub(super) acked_per_device: Vec<u32>,
}

impl Deliveries {
    /// Records acknowledged so far, and their payload bytes.
    pub(super) fn counts(&self) -> (u64, u64) {
        (self.acked, self.acked_bytes)
    }
}

pub(super) struct Context {
    pub(super) start: Instant,
    pub(super) deliveries: Mutex<Deliveries>,
    pub(super) statistics: Mutex<Option<Statistics>>,
    pub(super) last_client_error: Mutex<Option<String>>,
    pub(super) brokers: BrokerCheck,
}

impl Context {
    /// A context for a run that started at `start`, counting the acknowledged events of
    /// `devices_to_count` devices (for validation; 0 counts none).
    pub(super) fn new(start: Instant, devices_to_count: usize, brokers: BrokerCheck) -> Context {
        let histogram = crate::latency::latency_histogram;
        Context {
            start,
            deliveries: Mutex::new(Deliveries {
                acked: 0,
                acked_bytes: 0,
                errors: Errors::default(),
                latency_run: histogram(),
                latency_interval: histogram(),
                latency_step: histogram(),
                partition_counts: Vec::new(),
                acked_per_device: vec![0; devices_to_count],
            }),
            statistics: Mutex::new(None),
            last_client_error: Mutex::new(None),
            brokers,
        }
    }

    pub(super) fn deliveries(&self) -> std::sync::MutexGuard<'_, Deliveries> {
        self.deliveries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ClientContext for Context {
    fn stats(&self, mut statistics: Statistics) {
        // A broker the cluster starts advertising mid-run appears here first.
        for broker in statistics.brokers.values() {
            if let Ok((host, port)) = crate::allow::split_host_port(&broker.nodename) {
                let _ = self.brokers.check(host, port);
            }
        }
        let mut stored = self.statistics.lock().unwrap_or_else(|p| p.into_inner());
        // A broker's window without samples (no request since the last statistics, as
        // when the producers stop) keeps the last one that had some.
        if let Some(before) = stored.as_ref() {
            for (name, broker) in &mut statistics.brokers {
                if let Some(was) = before.brokers.get(name) {
                    keep_sampled(&mut broker.int_latency, &was.int_latency);
                    keep_sampled(&mut broker.outbuf_latency, &was.outbuf_latency);
                    // The throttle window goes with the round trips it was answered on.
                    if sampled_window(&broker.rtt).is_none() && sampled_window(&was.rtt).is_some() {
                        broker.throttle.clone_from(&was.throttle);
                    }
                    keep_sampled(&mut broker.rtt, &was.rtt);
                }
            }
        }
        *stored = Some(statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!("librdkafka: {error}: {reason}");
        // The first error says why (e.g. "Connect to ... failed: Connection refused");
        // later ones only repeat that brokers are down.
        self.last_client_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| reason.to_string());
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel::*;
        match level {
            Emerg | Alert | Critical => tracing::warn!("librdkafka {facility}: {message}"),
            _ => tracing::debug!("librdkafka {facility}: {message}"),
        }
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let sent_us = (opaque as u64) >> DEVICE_BITS;
        let device = (opaque as u64 & (MAX_DEVICES - 1)) as usize;
        let now_us = self.start.elapsed().as_micros() as u64;
        let mut deliveries = self.deliveries();
        match result {
            Ok(message) => {
                let latency = now_us.saturating_sub(sent_us).max(1);
                deliveries.acked += 1;
                deliveries.acked_bytes += message.payload_len() as u64;
                deliveries.latency_run.saturating_record(latency);
                deliveries.latency_interval.saturating_record(latency);
                deliveries.latency_step.saturating_record(latency);
                let partition = message.partition().max(0) as usize;
                if deliveries.partition_counts.len() <= partition {
                    deliveries.partition_counts.resize(partition + 1, 0);
                }
                deliveries.partition_counts[partition] += 1;
                if let Some(count) = deliveries.acked_per_device.get_mut(device) {
                    *count += 1;
                }
            }
            Err((error, _)) => deliveries.errors.record(error),
        }
    }
}

/// Keeps `before` where `now` has no samples.
fn keep_sampled(now: &mut Option<rdkafka::statistics::Window>, before: &Option<rdkafka::statistics::Window>) {
    if sampled_window(now).is_none() && sampled_window(before).is_some() {
        now.clone_from(before);
    }
}

/// A window that had samples. One that never had any is all zeros: no figure, not a
/// round trip of 0 ms.
fn sampled_window(window: &Option<rdkafka::statistics::Window>) -> Option<&rdkafka::statistics::Window> {
    window.as_ref().filter(|w| w.cnt > 0)
}

/// The broker's throttle window, ms. librdkafka adds a response's throttle time to it only
/// when it is above zero (`rd_kafka_op_throttle_time`), so an empty window beside answered
/// requests is no throttling at all: zero, not a missing figure. Without answered requests
/// there is nothing to say.
fn throttle_of(broker: &rdkafka::statistics::Broker) -> Option<crate::kafka::report::WindowUs> {
    match (sampled_window(&broker.throttle), sampled_window(&broker.rtt)) {
        (Some(throttle), _) => Some(throttle.into()),
        (None, Some(_)) => Some(crate::kafka::report::WindowUs::default()),
        (None, None) => None,
    }
}

/// A reporting interval's view of the last statistics: the producer's queueing and round
/// trips, ms, p99, the worst broker's each (the interval's other fields left empty).
pub(super) fn interval_windows(context: &Context) -> ProduceInterval {
    let brokers = broker_stats(context);
    ProduceInterval {
        queue_p99_ms: worst_p99_ms(&brokers, |b| b.int_latency_us),
        rtt_p99_ms: worst_p99_ms(&brokers, |b| b.rtt_us),
        ..ProduceInterval::default()
    }
}

/// Each broker's windows as the last statistics had them, sorted by name.
pub(super) fn broker_stats(context: &Context) -> Vec<BrokerStats> {
    let statistics = context.statistics.lock().unwrap_or_else(|p| p.into_inner());
    let Some(statistics) = statistics.as_ref() else { return Vec::new() };
    let sampled = |w: &Option<rdkafka::statistics::Window>| sampled_window(w).map(Into::into);
    let mut brokers: Vec<BrokerStats> = statistics
        .brokers
        .values()
        .filter(|b| b.nodeid >= 0)
        .map(|b| BrokerStats {
            name: b.name.clone(),
            int_latency_us: sampled(&b.int_latency),
            outbuf_latency_us: sampled(&b.outbuf_latency),
            rtt_us: sampled(&b.rtt),
            throttle_ms: throttle_of(b),
            txretries: b.txretries,
            req_timeouts: b.req_timeouts,
            txbytes: b.txbytes,
        })
        .collect();
    brokers.sort_by(|a, b| a.name.cmp(&b.name));
    brokers
}

#[cfg(test)]
mod tests {
    use super::{keep_sampled, throttle_of};
    use rdkafka::statistics::{Broker, Window};

    #[test]
    fn a_window_without_samples_keeps_the_last_one_that_had_some() {
        let sampled = Some(Window { cnt: 40, p99: 9_000, ..Window::default() });
        let empty = Some(Window::default());
        let mut now = empty.clone();
        keep_sampled(&mut now, &sampled);
        assert_eq!(now.as_ref().map(|w| (w.cnt, w.p99)), Some((40, 9_000)));
        let mut fresh = Some(Window { cnt: 3, p99: 1_000, ..Window::default() });
        keep_sampled(&mut fresh, &sampled);
        assert_eq!(fresh.as_ref().map(|w| w.p99), Some(1_000), "a window with samples is this interval's");
        let mut none = None;
        keep_sampled(&mut none, &empty);
        assert!(none.is_none());
    }

    #[test]
    fn an_empty_throttle_window_beside_answered_requests_is_no_throttling() {
        let answered = Some(Window { cnt: 12, p99: 4_000, ..Window::default() });
        let broker = |rtt: Option<Window>, throttle: Option<Window>| Broker { rtt, throttle, ..Broker::default() };
        let unthrottled = throttle_of(&broker(answered.clone(), Some(Window::default())));
        assert_eq!(unthrottled.map(|w| w.max), Some(0));
        let throttled = throttle_of(&broker(answered, Some(Window { cnt: 3, max: 250, ..Window::default() })));
        assert_eq!(throttled.map(|w| w.max), Some(250));
        assert_eq!(throttle_of(&broker(Some(Window::default()), Some(Window::default()))), None, "nothing answered");
    }
}
