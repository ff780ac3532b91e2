//! The consume run: seed 000's consumer stage past Kafka. A consumer group of N members
//! (rdkafka, one thread each) reads the topic the way an ingestion consumer does — poll a
//! batch, handle it (optional synchronous work per event, seed 004's event bus), write it
//! to the sink (PostgreSQL, `sink`), then store its offsets for the next commit — and
//! measures consumed rate, end-to-end latency (from the event's own timestamp and from
//! the record's produce time to the moment the batch was handled), per-device validation
//! (`ledger`), rebalances, and the group's lag as the cluster reports it (`lag`).
//!
//! A run with a fresh group starts at each partition's end offset: it reads only what is
//! produced after it starts, so earlier runs in the same topic never count as duplicates,
//! and every device's sequence is seen from its first event. A catch-up run starts it
//! earlier instead — at the first offset, or at the first record of a given time — and with
//! `until_drained` ends once it has read the backlog the topic held when it started, timing
//! the drain.

pub mod lag;
pub mod ledger;
mod member;
mod report;
mod run;
pub mod sink;

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use self::report::{CatchUp, ConsumeInterval, ConsumeReport, ConsumeValidation, Membership, SinkReport};
pub use self::run::run_consume;
use self::sink::SinkConfig;
use crate::cancel::Cancel;

/// The most members one run may start.
pub const MAX_MEMBERS: usize = 64;
/// The most records one member handles as a batch (Kafka's `max.poll.records`).
pub const MAX_BATCH: usize = 100_000;
/// The most synchronous work per event a run may simulate.
pub const MAX_PROCESS_US: u64 = 1_000_000;
/// How long the start of a run waits for the cluster to answer.
const METADATA_TIMEOUT: Duration = Duration::from_secs(8);
/// How long one poll waits for the first record of a batch.
const POLL_WAIT: Duration = Duration::from_millis(100);

/// Everything a consume run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumeConfig {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// The topic to consume.
    pub topic: String,
    /// The consumer group; a fresh `plateau-consume-<uuid>` when absent.
    #[serde(default)]
    pub group: Option<String>,
    /// Members of the group (one thread and one connection each).
    pub members: usize,
    /// How long to consume; until stopped when absent.
    #[serde(default, with = "optional_secs")]
    #[schema(value_type = Option<f64>)]
    pub time_secs: Option<Duration>,
    /// The device id prefix of the events (`sensor-`), for per-device validation.
    pub device_prefix: String,
    /// Where to write the events (PostgreSQL); nowhere when absent.
    #[serde(default)]
    pub sink: Option<SinkConfig>,
    /// The most records a member handles as one batch (`max.poll.records`).
    pub max_batch: usize,
    /// Synchronous work per event, microseconds, done on the polling thread.
    #[serde(default)]
    pub process_us: u64,
    /// Reporting interval.
    #[serde(with = "super::secs")]
    #[schema(value_type = f64)]
    pub interval: Duration,
    /// Extra librdkafka properties (security), applied last.
    #[serde(default)]
    pub extra: Vec<(String, String)>,
    /// Where a group without commits starts reading.
    #[serde(default)]
    pub start_at: StartAt,
    /// End the run once the group has read the backlog: every record between its start
    /// offsets and the topic's end offsets when it started (a catch-up run). `time_secs`
    /// still bounds it.
    #[serde(default)]
    pub until_drained: bool,
}

/// Where a group without committed offsets starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// Each partition's end: only what is produced after the run starts.
    #[default]
    Latest,
    /// Each partition's first offset: everything the topic holds.
    Earliest,
    /// The first record whose timestamp is at or after this Unix ms time.
    Time(u64),
}

impl std::str::FromStr for StartAt {
    type Err = String;

    /// `latest`, `earliest`, an RFC 3339 time (`2026-12-02T18:00:00Z`) or Unix milliseconds.
    fn from_str(text: &str) -> Result<StartAt, String> {
        match text.trim() {
            "latest" => Ok(StartAt::Latest),
            "earliest" => Ok(StartAt::Earliest),
            digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits
                .parse()
                .map(StartAt::Time)
                .map_err(|_| format!("'{digits}' is too large for a time in Unix milliseconds")),
            time => humantime::parse_rfc3339_weak(time).map(|at| StartAt::Time(unix_ms(at))).map_err(|_| {
                format!("'{time}' is not a start: use latest, earliest, an RFC 3339 time or Unix milliseconds")
            }),
        }
    }
}

mod optional_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_some(&duration.as_secs_f64()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(deserializer)?
            .map(|secs| Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl ConsumeConfig {
    /// A run of `members` members with the defaults of a plain ingestion consumer.
    pub fn new(bootstrap: &str, topic: &str, members: usize) -> ConsumeConfig {
        ConsumeConfig {
            bootstrap: bootstrap.to_string(),
            topic: topic.to_string(),
            group: None,
            members,
            time_secs: Some(Duration::from_secs(10)),
            device_prefix: super::EventSpec::default().device_prefix,
            sink: None,
            max_batch: 500,
            process_us: 0,
            interval: Duration::from_secs(1),
            extra: Vec::new(),
            start_at: StartAt::Latest,
            until_drained: false,
        }
    }

    /// Checks everything that can be checked without a broker or a database.
    pub fn validate_input(&self) -> Result<(), String> {
        if self.bootstrap.trim().is_empty() {
            return Err("--bootstrap is empty; give HOST:PORT of a broker".into());
        }
        if self.topic.trim().is_empty() {
            return Err("--topic is empty".into());
        }
        if self.group.as_deref().is_some_and(|group| group.trim().is_empty()) {
            return Err("--group is empty; leave it out for a fresh group".into());
        }
        if self.members == 0 || self.members > MAX_MEMBERS {
            return Err(format!("--members {} is out of range; use 1 to {MAX_MEMBERS}", self.members));
        }
        if self.max_batch == 0 || self.max_batch > MAX_BATCH {
            return Err(format!("--max-batch {} is out of range; use 1 to {MAX_BATCH}", self.max_batch));
        }
        if self.process_us > MAX_PROCESS_US {
            return Err(format!("--process-us {} is out of range; use 0 to {MAX_PROCESS_US}", self.process_us));
        }
        if let Some(time) = self.time_secs
            && (time.is_zero() || time > Duration::from_secs(24 * 3600))
        {
            return Err("--time is out of range; use 1 s to 24 h".into());
        }
        if self.interval < Duration::from_millis(100) || self.interval > Duration::from_secs(3600) {
            return Err("--interval is out of range; use 100ms to 1h".into());
        }
        if self.device_prefix.len() > super::event::MAX_DEVICE_PREFIX_BYTES {
            return Err(format!(
                "--device-prefix is {} bytes long; use at most {}",
                self.device_prefix.len(),
                super::event::MAX_DEVICE_PREFIX_BYTES
            ));
        }
        match &self.sink {
            Some(sink) => sink.validate(),
            None => Ok(()),
        }
    }
}

/// Why a consume run could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// Bad input; the message says what to fix.
    #[error("{0}")]
    InvalidInput(String),
    /// librdkafka refused the configuration.
    #[error("the consumer configuration was refused: {0}")]
    Config(String),
    /// The cluster could not be reached.
    #[error("cannot reach the Kafka cluster at {bootstrap}: {reason}")]
    Unreachable {
        /// The bootstrap servers.
        bootstrap: String,
        /// Why.
        reason: String,
    },
    /// The topic does not exist.
    #[error("topic '{topic}' does not exist on {bootstrap}; produce to it or create it first")]
    NoTopic {
        /// The topic.
        topic: String,
        /// The bootstrap servers.
        bootstrap: String,
    },
    /// The sink could not be written.
    #[error("{0}")]
    Sink(String),
    /// The cluster led the run to an address it may not reach.
    #[error("{0}")]
    Refused(String),
}

/// Unix milliseconds of a time (0 before 1970).
fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What a running consume run shows to its caller while it runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ConsumeLive {
    /// Unix ms the run started.
    pub started_at: Option<u64>,
    /// Records consumed.
    pub consumed: u64,
    /// Unix ms `consumed` was counted at (the end of the last interval).
    #[serde(default)]
    pub counted_at_ms: Option<u64>,
    /// Records per second over the last interval.
    pub current_rate_mps: f64,
    /// The group's lag at the last sample, records.
    pub lag: Option<u64>,
    /// End-to-end latency over the last interval (event timestamp to handled).
    pub e2e_avg_ms: Option<f64>,
    /// Its 99th percentile.
    pub e2e_p99_ms: Option<f64>,
    /// The most recent error.
    pub last_error: Option<String>,
}

/// Controls a running consume run from outside: stop it, watch it.
#[derive(Debug, Default)]
pub struct ConsumeControl {
    /// Stops the run (it still reports what it measured).
    pub cancel: Cancel,
    /// Live counters.
    pub live: Mutex<ConsumeLive>,
    /// Where the run may connect (an agent's `--allow`): every broker the cluster
    /// advertises is checked before a member joins and whenever librdkafka's statistics
    /// name a new one; `None` for a run on the user's own machine.
    pub allow: Option<crate::allow::AllowList>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_is_latest_earliest_a_time_or_unix_milliseconds() {
        assert_eq!("latest".parse(), Ok(StartAt::Latest));
        assert_eq!("earliest".parse(), Ok(StartAt::Earliest));
        assert_eq!("1764700000000".parse(), Ok(StartAt::Time(1_764_700_000_000)));
        assert_eq!("2026-12-02T18:00:00Z".parse(), Ok(StartAt::Time(1_796_234_400_000)));
        let err = "yesterday".parse::<StartAt>().unwrap_err();
        assert!(err.contains("latest, earliest, an RFC 3339 time or Unix milliseconds"), "{err}");
        assert!("99999999999999999999999".parse::<StartAt>().unwrap_err().contains("too large"));
    }

    #[test]
    fn bad_input_says_what_to_fix() {
        let mut config = ConsumeConfig::new("h:9092", "t", 65);
        assert!(config.validate_input().unwrap_err().contains("use 1 to 64"));
        config.members = 2;
        config.process_us = MAX_PROCESS_US + 1;
        assert!(config.validate_input().unwrap_err().contains("--process-us"));
        config.process_us = 0;
        config.time_secs = Some(Duration::ZERO);
        assert!(config.validate_input().unwrap_err().contains("--time"));
        config.time_secs = None;
        assert!(config.validate_input().is_ok());
    }
}
