//! Delivery validation (`--validate`): a consumer reads the topic back while the run
//! produces and counts, per device, events lost (acknowledged but never read),
//! duplicated and out of order, and the end-to-end latency from event timestamp to
//! consumption.
//!
//! The consumer starts at each partition's end offset as the run begins, so older data
//! in the topic (earlier runs reuse the same device ids and sequence numbers) is never
//! mistaken for duplicates.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use super::consume::ledger::{Ledger, device_index};
use super::event::{EventIdentity, EventSpec};
use super::report::Validation;
use super::{ProduceConfig, ProduceError};
use crate::latency::LatencyMs;

/// How long the consumer may take to catch up after the run ends.
const CATCH_UP: Duration = Duration::from_secs(30);

/// The ledger and the end-to-end latencies of what was read.
#[derive(Debug)]
struct Tally {
    ledger: Ledger,
    e2e: hdrhistogram::Histogram<u64>,
}

/// A validating consumer running beside the produce run.
pub struct Validator {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    consumer: Arc<BaseConsumer>,
    topic: String,
    partitions: usize,
    thread: std::thread::JoinHandle<()>,
}

impl Validator {
    /// Starts consuming `config.topic` from its current end.
    pub fn start(config: &ProduceConfig, partitions: usize) -> Result<Validator, ProduceError> {
        let mut client = rdkafka::config::ClientConfig::new();
        client
            .set("bootstrap.servers", &config.bootstrap)
            .set("group.id", format!("plateau-validate-{}", uuid::Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("client.id", "plateau-validate")
            // Fetch as soon as anything arrives, so that end-to-end latency is the
            // pipeline's and not the fetch wait's.
            .set("fetch.wait.max.ms", "10")
            .set("fetch.min.bytes", "1");
        // Security and other client properties apply to the consumer too.
        for (name, value) in &config.producer.extra {
            client.set(name, value);
        }
        let consumer: BaseConsumer = client.create().map_err(|err| ProduceError::Config(err.to_string()))?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions as i32 {
            let (_, high) =
                consumer.fetch_watermarks(&config.topic, partition, Duration::from_secs(10)).map_err(|err| {
                    ProduceError::Unreachable {
                        bootstrap: config.bootstrap.clone(),
                        reason: format!("reading partition offsets: {err}"),
                    }
                })?;
            assignment
                .add_partition_offset(&config.topic, partition, Offset::Offset(high))
                .map_err(|err| ProduceError::Config(err.to_string()))?;
        }
        consumer.assign(&assignment).map_err(|err| ProduceError::Config(err.to_string()))?;
        let consumer = Arc::new(consumer);
        let tally = Arc::new(Mutex::new(Tally { ledger: Ledger::default(), e2e: crate::latency::latency_histogram() }));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_consumer, thread_tally, thread_stop) =
            (Arc::clone(&consumer), Arc::clone(&tally), Arc::clone(&stop));
        let prefix = config.events.device_prefix.clone();
        let first_device = config.events.first_device;
        let thread = std::thread::Builder::new()
            .name("validate".into())
            .spawn(move || consume(&thread_consumer, &thread_tally, &thread_stop, &prefix, first_device))
            .expect("spawning the validating consumer");
        Ok(Validator { stop, tally, consumer, topic: config.topic.clone(), partitions, thread })
    }

    /// Waits until everything produced was read (or 30 s passed) and returns the counts
    /// against `acked_per_device`, the events the broker acknowledged for each device.
    pub fn finish(self, acked_per_device: &[u32], _spec: &EventSpec) -> Validation {
        let deadline = Instant::now() + CATCH_UP;
        let ends: Vec<i64> = (0..self.partitions as i32)
            .map(|p| {
                self.consumer
                    .fetch_watermarks(&self.topic, p, Duration::from_secs(10))
                    .map(|(_, high)| high)
                    .unwrap_or(-1)
            })
            .collect();
        let caught_up = || {
            let Ok(positions) = self.consumer.position() else { return false };
            ends.iter().enumerate().all(|(partition, &end)| {
                match positions.find_partition(&self.topic, partition as i32).map(|p| p.offset()) {
                    Some(Offset::Offset(position)) => position >= end,
                    _ => end <= 0,
                }
            })
        };
        let mut complete = false;
        while Instant::now() < deadline {
            if caught_up() {
                complete = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        Validation {
            consumed: tally.ledger.consumed,
            lost: tally.ledger.lost_against(acked_per_device),
            duplicated: tally.ledger.duplicated,
            out_of_order: tally.ledger.out_of_order,
            e2e_latency_ms: LatencyMs::from_micros(&tally.e2e),
            complete,
        }
    }
}

fn consume(consumer: &BaseConsumer, tally: &Mutex<Tally>, stop: &AtomicBool, prefix: &str, first_device: u64) {
    while !stop.load(Ordering::Relaxed) {
        let Some(result) = consumer.poll(Duration::from_millis(100)) else { continue };
        let Ok(message) = result else { continue };
        let Some(payload) = message.payload() else { continue };
        let Ok(event) = serde_json::from_slice::<EventIdentity>(payload) else {
            tally.lock().unwrap_or_else(|p| p.into_inner()).ledger.record(None, 0);
            continue;
        };
        let device = device_index(&event.device_id, prefix).and_then(|d| d.checked_sub(first_device));
        let e2e_us = humantime::parse_rfc3339(&event.timestamp)
            .ok()
            .and_then(|sent| SystemTime::now().duration_since(sent).ok())
            .map(|d| d.as_micros() as u64);
        let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
        tally.ledger.record(device, event.seq);
        if let Some(us) = e2e_us {
            tally.e2e.saturating_record(us.max(1));
        }
    }
}
