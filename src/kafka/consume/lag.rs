//! Consumer lag from the cluster itself, and how it is judged. The group's committed
//! offsets and each partition's log end offset are read the way kafka_exporter and Burrow
//! read them (OffsetFetch and ListOffsets, not the consumers' own word), and a window of
//! samples is judged the way Burrow judges it rather than against a fixed threshold: a
//! partition whose lag reached zero in the window is fine; one whose committed offset did
//! not move while it had lag is stalled; one whose lag grew at every sample while its
//! commits moved is falling behind.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

/// How many samples Burrow's window holds (its default: ten offset commits).
pub const WINDOW: usize = 10;
/// How long one reading of the offsets may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One partition's offsets at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PartitionOffsets {
    /// The group's committed offset (the run's start offset before its first commit).
    pub committed: i64,
    /// The log end offset (high watermark).
    pub end: i64,
}

impl PartitionOffsets {
    /// Records produced but not yet committed as consumed.
    pub fn lag(&self) -> u64 {
        (self.end - self.committed).max(0) as u64
    }
}

/// The group's status over a window, Burrow's words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LagStatus {
    /// Not enough samples to judge.
    #[default]
    Unknown,
    /// The consumers keep up: every partition's lag reached zero or did not keep growing.
    Ok,
    /// Commits move but lag grew at every sample of the window on some partition.
    FallingBehind,
    /// Some partition had lag and its committed offset did not move for the whole window.
    Stalled,
}

/// Judges the last `WINDOW` samples (oldest first; each sample one entry per partition).
pub fn judge(samples: &[Vec<PartitionOffsets>]) -> LagStatus {
    let window = &samples[samples.len().saturating_sub(WINDOW)..];
    let Some(first) = window.first() else { return LagStatus::Unknown };
    if window.len() < 3 {
        return LagStatus::Unknown;
    }
    let mut status = LagStatus::Ok;
    for partition in 0..first.len() {
        let series: Vec<PartitionOffsets> = window.iter().filter_map(|sample| sample.get(partition).copied()).collect();
        if series.iter().any(|offsets| offsets.lag() == 0) {
            continue;
        }
        let partition_status = if series.iter().all(|offsets| offsets.committed == series[0].committed) {
            LagStatus::Stalled
        } else if series.windows(2).all(|pair| pair[1].lag() > pair[0].lag()) {
            LagStatus::FallingBehind
        } else {
            LagStatus::Ok
        };
        status = status.max(partition_status);
    }
    status
}

/// The group's lag over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct LagReport {
    /// Burrow's judgement of the last window.
    pub status: LagStatus,
    /// Lag at the last sample, records.
    pub last: Option<u64>,
    /// Highest lag sampled, records.
    pub max: u64,
    /// Samples that could not be read.
    pub unreadable: u64,
    /// Why the last unreadable sample failed.
    pub last_error: Option<String>,
}

/// Samples the lag every interval on a thread of its own, until finished.
pub struct LagSampler {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<(Vec<Vec<PartitionOffsets>>, LagReport)>>,
    thread: std::thread::JoinHandle<LagReader>,
}

impl LagSampler {
    /// Starts reading with `reader` every `interval`.
    pub fn start(reader: LagReader, interval: Duration) -> LagSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let state: Arc<Mutex<(Vec<Vec<PartitionOffsets>>, LagReport)>> = Arc::default();
        let (thread_stop, thread_state) = (Arc::clone(&stop), Arc::clone(&state));
        let thread = std::thread::Builder::new()
            .name("consume-lag".into())
            .spawn(move || {
                let started = Instant::now();
                let mut readings = 0u32;
                while !thread_stop.load(Ordering::Relaxed) {
                    let outcome = reader.read();
                    let mut state = thread_state.lock().unwrap_or_else(|p| p.into_inner());
                    let (samples, report) = &mut *state;
                    match outcome {
                        Ok(sample) => {
                            let total = sample.iter().map(PartitionOffsets::lag).sum::<u64>();
                            samples.push(sample);
                            report.max = report.max.max(total);
                            report.last = Some(total);
                        }
                        Err(err) => {
                            report.unreadable += 1;
                            report.last_error = Some(err);
                        }
                    }
                    drop(state);
                    readings += 1;
                    let due = started + interval * readings;
                    while Instant::now() < due && !thread_stop.load(Ordering::Relaxed) {
                        std::thread::sleep((due - Instant::now()).min(Duration::from_millis(50)));
                    }
                }
                reader
            })
            .expect("spawning the lag sampler");
        LagSampler { stop, state, thread }
    }

    /// The newest lag read, records.
    pub fn latest(&self) -> Option<u64> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).1.last
    }

    /// Stops sampling, judges the samples taken while the run consumed, and reads the lag
    /// once more for `last` (call it after the members' last commit).
    pub fn finish(self) -> LagReport {
        self.stop.store(true, Ordering::Relaxed);
        let reader = self.thread.join().ok();
        let (samples, mut report) = std::mem::take(&mut *self.state.lock().unwrap_or_else(|p| p.into_inner()));
        report.status = judge(&samples);
        if let Some(Ok(sample)) = reader.map(|reader| reader.read()) {
            report.last = Some(sample.iter().map(PartitionOffsets::lag).sum());
        }
        report
    }
}

/// Reads a group's committed offsets and the topic's end offsets.
pub struct LagReader {
    consumer: BaseConsumer,
    topic: String,
    partitions: i32,
    /// Where the run started on each partition: the lag's base before the first commit.
    start: Vec<i64>,
}

impl LagReader {
    /// A reader for `group` on `topic`; `client` carries bootstrap servers and security.
    pub fn new(
        mut client: rdkafka::config::ClientConfig,
        group: &str,
        topic: &str,
        start: Vec<i64>,
    ) -> Result<LagReader, String> {
        client.set("group.id", group).set("enable.auto.commit", "false").set("client.id", "plateau-lag");
        let consumer: BaseConsumer = client.create().map_err(|err| err.to_string())?;
        Ok(LagReader { consumer, topic: topic.to_string(), partitions: start.len() as i32, start })
    }

    /// One sample: every partition's committed and end offsets, in two requests' time
    /// (OffsetFetch for the group, ListOffsets for the latest offsets, each batched per
    /// broker), so that sampling keeps up with a reporting interval of a second.
    pub fn read(&self) -> Result<Vec<PartitionOffsets>, String> {
        let mut list = TopicPartitionList::new();
        for partition in 0..self.partitions {
            list.add_partition(&self.topic, partition);
        }
        let committed = self
            .consumer
            .committed_offsets(list.clone(), READ_TIMEOUT)
            .map_err(|err| format!("reading the group's committed offsets: {err}"))?;
        // The timestamp -1 (OFFSET_END) asks ListOffsets for each partition's latest offset.
        list.set_all_offsets(Offset::End).map_err(|err| err.to_string())?;
        let ends = self
            .consumer
            .offsets_for_times(list, READ_TIMEOUT)
            .map_err(|err| format!("reading the partitions' end offsets: {err}"))?;
        (0..self.partitions)
            .map(|partition| {
                let end = match ends.find_partition(&self.topic, partition).map(|p| (p.offset(), p.error())) {
                    Some((Offset::Offset(end), Ok(()))) => end,
                    _ => return Err(format!("no end offset for partition {partition}")),
                };
                let committed = match committed.find_partition(&self.topic, partition).map(|p| p.offset()) {
                    Some(Offset::Offset(offset)) => offset,
                    _ => self.start[partition as usize],
                };
                Ok(PartitionOffsets { committed, end })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pairs: &[(i64, i64)]) -> Vec<PartitionOffsets> {
        pairs.iter().map(|&(committed, end)| PartitionOffsets { committed, end }).collect()
    }

    #[test]
    fn lag_that_reaches_zero_is_fine_however_large_it_was() {
        let samples = vec![sample(&[(0, 5000)]), sample(&[(5000, 9000)]), sample(&[(9000, 9000)])];
        assert_eq!(judge(&samples), LagStatus::Ok);
    }

    #[test]
    fn growing_lag_with_moving_commits_is_falling_behind() {
        let samples: Vec<_> = (0..10).map(|i| sample(&[(i * 100, i * 150 + 10), (0, 0)])).collect();
        assert_eq!(judge(&samples), LagStatus::FallingBehind);
    }

    #[test]
    fn lag_without_commits_is_stalled_and_wins_over_falling_behind() {
        let samples: Vec<_> = (0..10).map(|i| sample(&[(i * 100, i * 150 + 10), (40, 50 + i)])).collect();
        assert_eq!(judge(&samples), LagStatus::Stalled);
    }

    #[test]
    fn lag_that_goes_up_and_down_is_ok_and_too_few_samples_are_unknown() {
        let samples: Vec<_> = (0..10).map(|i| sample(&[(i * 100, i * 100 + 10 + (i % 2) * 50)])).collect();
        assert_eq!(judge(&samples), LagStatus::Ok);
        assert_eq!(judge(&samples[..2]), LagStatus::Unknown);
    }
}
