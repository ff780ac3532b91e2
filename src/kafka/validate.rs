//! Delivery validation (`--validate`): a consumer reads the topic back while the run
//! produces and counts, per device, events lost (acknowledged but never read),
//! duplicated and out of order, and the end-to-end latency from event timestamp to
//! consumption.
//!
//! The consumer starts at each partition's end offset as the run begins, so older data
//! in the topic (earlier runs reuse the same device ids and sequence numbers) is never
//! mistaken for duplicates.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use super::event::{EventIdentity, EventSpec};
use super::report::Validation;
use super::{ProduceConfig, ProduceError};
use crate::latency::LatencyMs;

/// How long the consumer may take to catch up after the run ends.
const CATCH_UP: Duration = Duration::from_secs(30);

/// What was seen of one device.
#[derive(Debug, Default, Clone)]
struct DeviceSeen {
    /// Every sequence number up to this one was seen.
    contiguous: u64,
    /// Sequence numbers above `contiguous` that were seen.
    above: BTreeSet<u64>,
    /// Highest sequence number seen.
    highest: u64,
    /// Distinct events seen.
    unique: u64,
}

/// Counts across devices.
#[derive(Debug)]
struct Tally {
    devices: Vec<DeviceSeen>,
    consumed: u64,
    duplicated: u64,
    out_of_order: u64,
    foreign: u64,
    e2e: hdrhistogram::Histogram<u64>,
}

impl Tally {
    fn record(&mut self, device: usize, seq: u64, e2e_us: Option<u64>) {
        self.consumed += 1;
        if let Some(us) = e2e_us {
            self.e2e.saturating_record(us.max(1));
        }
        let Some(seen) = self.devices.get_mut(device) else {
            self.foreign += 1;
            return;
        };
        if seq <= seen.contiguous || seen.above.contains(&seq) {
            self.duplicated += 1;
            return;
        }
        seen.unique += 1;
        if seq < seen.highest {
            self.out_of_order += 1;
        }
        seen.highest = seen.highest.max(seq);
        if seq == seen.contiguous + 1 {
            seen.contiguous = seq;
            while seen.above.remove(&(seen.contiguous + 1)) {
                seen.contiguous += 1;
            }
        } else {
            seen.above.insert(seq);
        }
    }
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
        let tally = Arc::new(Mutex::new(Tally {
            devices: vec![DeviceSeen::default(); config.events.devices as usize],
            consumed: 0,
            duplicated: 0,
            out_of_order: 0,
            foreign: 0,
            e2e: crate::latency::latency_histogram(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_consumer, thread_tally, thread_stop) =
            (Arc::clone(&consumer), Arc::clone(&tally), Arc::clone(&stop));
        let prefix = config.events.device_prefix.clone();
        let thread = std::thread::Builder::new()
            .name("validate".into())
            .spawn(move || consume(&thread_consumer, &thread_tally, &thread_stop, &prefix))
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
        let lost = tally
            .devices
            .iter()
            .zip(acked_per_device)
            .map(|(seen, &acked)| (acked as u64).saturating_sub(seen.unique))
            .sum();
        Validation {
            consumed: tally.consumed,
            lost,
            duplicated: tally.duplicated,
            out_of_order: tally.out_of_order,
            e2e_latency_ms: LatencyMs::from_micros(&tally.e2e),
            complete,
        }
    }
}

fn consume(consumer: &BaseConsumer, tally: &Mutex<Tally>, stop: &AtomicBool, prefix: &str) {
    while !stop.load(Ordering::Relaxed) {
        let Some(result) = consumer.poll(Duration::from_millis(100)) else { continue };
        let Ok(message) = result else { continue };
        let Some(payload) = message.payload() else { continue };
        let Ok(event) = serde_json::from_slice::<EventIdentity>(payload) else {
            tally.lock().unwrap_or_else(|p| p.into_inner()).foreign += 1;
            continue;
        };
        let device = event.device_id.strip_prefix(prefix).and_then(|n| n.parse::<usize>().ok()).unwrap_or(usize::MAX);
        let e2e_us = humantime::parse_rfc3339(&event.timestamp)
            .ok()
            .and_then(|sent| SystemTime::now().duration_since(sent).ok())
            .map(|d| d.as_micros() as u64);
        tally.lock().unwrap_or_else(|p| p.into_inner()).record(device, event.seq, e2e_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(devices: usize) -> Tally {
        Tally {
            devices: vec![DeviceSeen::default(); devices],
            consumed: 0,
            duplicated: 0,
            out_of_order: 0,
            foreign: 0,
            e2e: crate::latency::latency_histogram(),
        }
    }

    #[test]
    fn duplicates_and_reordering_per_device() {
        let mut t = tally(2);
        for (device, seq) in [(0, 1), (0, 2), (1, 1), (0, 4), (0, 3), (0, 3), (1, 2), (1, 1)] {
            t.record(device, seq, Some(1000));
        }
        assert_eq!(t.consumed, 8);
        assert_eq!(t.duplicated, 2, "(0,3) and (1,1) arrived twice");
        assert_eq!(t.out_of_order, 1, "(0,3) after (0,4)");
        assert_eq!(t.devices[0].unique, 4);
        assert_eq!(t.devices[0].contiguous, 4);
        assert!(t.devices[0].above.is_empty());
    }

    #[test]
    fn unknown_devices_are_counted_apart() {
        let mut t = tally(1);
        t.record(7, 1, None);
        assert_eq!(t.foreign, 1);
        assert_eq!(t.duplicated, 0);
    }
}
