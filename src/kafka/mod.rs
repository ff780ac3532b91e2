//! The Kafka produce run: realistic telemetry at a controlled rate (fixed, or ramped to
//! the plateau), with delivery latency, publish delay, errors, partitions, librdkafka's
//! own statistics, and optional validation of what arrived.
//!
//! `event` writes the events, `pace` schedules them, `run` drives librdkafka, `report`
//! is the result, and `validate` reads the topic back. `consume` is the stage past Kafka:
//! a consumer group, its sink and its lag.

pub mod admin;
pub mod brokers;
pub mod consume;
mod delivery;
pub mod event;
mod native;
pub mod pace;
pub mod properties;
pub mod report;
pub mod run;
pub mod validate;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use event::EventSpec;
pub use report::ProduceReport;

/// The highest rate a run accepts, messages per second.
pub const MAX_RATE: u64 = 10_000_000;
/// The most steps a ramp may have.
pub const MAX_RAMP_STEPS: u64 = 1000;
/// The longest step of a ramp.
pub const MAX_STEP_LENGTH: Duration = Duration::from_secs(3600);

/// How the target rate evolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateSpec {
    /// One rate for the whole run, messages per second.
    Fixed(u64),
    /// A ramp towards the plateau.
    Ramp(Ramp),
}

/// A ramp: `start` msg/s, `step` more every `every`, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ramp {
    /// First target, msg/s.
    pub start: u64,
    /// Increase per step, msg/s.
    pub step: u64,
    /// Length of each step.
    #[serde(with = "secs")]
    pub every: Duration,
    /// Last target, msg/s.
    pub max: u64,
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

impl Ramp {
    /// The targets of the ramp's steps.
    pub fn targets(&self) -> Vec<u64> {
        let mut targets = vec![self.start];
        while self.step > 0 && targets.last().is_some_and(|last| last + self.step <= self.max) {
            targets.push(targets.last().unwrap() + self.step);
        }
        targets
    }
}

impl FromStr for Ramp {
    type Err = String;

    /// Parses `START:STEP:EVERY_S:MAX`, e.g. `20000:10000:10:200000`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid ramp '{text}'; use START:STEP:EVERY_S:MAX, e.g. 20000:10000:10:200000");
        let parts: Vec<&str> = text.split(':').collect();
        let [start, step, every, max] = parts[..] else { return Err(bad()) };
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        let every: f64 = every.trim().parse().map_err(|_| bad())?;
        let ramp = Ramp {
            start: number(start)?,
            step: number(step)?,
            every: Duration::try_from_secs_f64(every).map_err(|_| bad())?,
            max: number(max)?,
        };
        if ramp.start == 0 || ramp.max < ramp.start || ramp.max > MAX_RATE {
            return Err(format!("ramp '{text}': need 0 < START <= MAX <= {MAX_RATE} msg/s"));
        }
        if ramp.every < Duration::from_secs(1) {
            return Err(format!("ramp '{text}': steps shorter than 1 s measure nothing; use EVERY_S >= 1"));
        }
        if ramp.step == 0 && ramp.max != ramp.start {
            return Err(format!("ramp '{text}': STEP 0 never reaches MAX"));
        }
        if ramp.every > MAX_STEP_LENGTH {
            return Err(format!(
                "ramp '{text}': steps longer than {} s; use EVERY_S <= {0}",
                MAX_STEP_LENGTH.as_secs()
            ));
        }
        let n_steps = (ramp.max - ramp.start).checked_div(ramp.step).map_or(1, |steps| steps + 1);
        if n_steps > MAX_RAMP_STEPS {
            return Err(format!(
                "ramp '{text}' has {n_steps} steps; use at most {MAX_RAMP_STEPS} (a larger STEP or a lower MAX)"
            ));
        }
        Ok(ramp)
    }
}

impl fmt::Display for Ramp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}:{}", self.start, self.step, self.every.as_secs_f64(), self.max)
    }
}

/// Which key each event carries (and so how it is partitioned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyMode {
    /// The device id: per-device order within one partition (the keyed IoT case).
    #[default]
    Device,
    /// No key: the sticky partitioner spreads batches.
    None,
    /// A random key per event.
    Random,
}

/// Producer tuning; the defaults are seed 000's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProducerSettings {
    /// `acks`: `all`, `1` or `0`.
    pub acks: String,
    /// `compression.type`.
    pub compression: String,
    /// `linger.ms`.
    pub linger_ms: u32,
    /// `batch.num.messages`.
    pub batch_messages: u32,
    /// Extra librdkafka properties (`-X name=value`), applied last.
    pub extra: Vec<(String, String)>,
}

impl Default for ProducerSettings {
    fn default() -> Self {
        ProducerSettings {
            acks: "all".into(),
            compression: "lz4".into(),
            linger_ms: 5,
            batch_messages: 10_000,
            extra: Vec::new(),
        }
    }
}

impl ProducerSettings {
    /// `max.in.flight.requests.per.connection` as the run will use it (librdkafka's 5 unless
    /// `-X` sets it).
    pub fn max_in_flight(&self) -> u32 {
        self.extra
            .iter()
            .rev()
            .find(|(k, _)| k == "max.in.flight.requests.per.connection" || k == "max.in.flight")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(5)
    }

    /// Checks the settings librdkafka would otherwise refuse only once a run starts.
    pub fn validate(&self) -> Result<(), String> {
        const COMPRESSIONS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
        if !COMPRESSIONS.contains(&self.compression.as_str()) {
            return Err(format!(
                "compression '{}' is unknown; use one of {}",
                self.compression,
                COMPRESSIONS.join(", ")
            ));
        }
        if !["all", "-1", "1", "0"].contains(&self.acks.as_str()) {
            return Err(format!("acks '{}' is unknown; use all, 1 or 0", self.acks));
        }
        if self.linger_ms > 900_000 {
            return Err(format!("linger.ms {} is out of range; use 0 to 900000", self.linger_ms));
        }
        if self.batch_messages == 0 || self.batch_messages > 1_000_000 {
            return Err(format!("batch.num.messages {} is out of range; use 1 to 1000000", self.batch_messages));
        }
        Ok(())
    }

    /// The librdkafka properties for these settings (idempotence on, as seed 000 ran).
    /// Nagle's algorithm is off, as in Kafka's Java clients: librdkafka leaves it on, and
    /// against Apache Kafka (RF 3, acks=all) that alone put 5,000 records/s at a delivery
    /// p99 of 820 ms instead of 57 ms — the tool's latency, not the cluster's.
    pub fn properties(&self) -> Vec<(String, String)> {
        let mut properties = vec![
            ("socket.nagle.disable".to_string(), "true".to_string()),
            ("acks".to_string(), self.acks.clone()),
            ("enable.idempotence".to_string(), (self.acks == "all").to_string()),
            ("compression.type".to_string(), self.compression.clone()),
            ("linger.ms".to_string(), self.linger_ms.to_string()),
            ("batch.num.messages".to_string(), self.batch_messages.to_string()),
            ("statistics.interval.ms".to_string(), "1000".to_string()),
            // The client's buffer is bounded as the Java client's `buffer.memory` is
            // (32 MB), not librdkafka's 1 GB: a generator behind a slow cluster waits for
            // room (publish delay, which is the point) instead of copying hundreds of
            // megabytes of backlog into its queue, which took most of a generator's core.
            ("queue.buffering.max.kbytes".to_string(), "32768".to_string()),
        ];
        properties.extend(self.extra.iter().cloned());
        properties
    }
}

/// Parses `-X name=value`.
pub fn parse_property(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("-X '{text}' is not NAME=VALUE"))?;
    if name.trim().is_empty() {
        return Err(format!("-X '{text}' has no property name"));
    }
    Ok((name.trim().to_string(), value.to_string()))
}

/// Everything a produce run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProduceConfig {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// Topic to produce to.
    pub topic: String,
    /// Fixed rate or ramp.
    pub rate: RateSpec,
    /// Length of a fixed-rate run (a ramp lasts its steps).
    #[serde(with = "secs")]
    pub time: Duration,
    /// The events.
    pub events: EventSpec,
    /// Keys.
    pub key: KeyMode,
    /// Producing threads.
    pub workers: usize,
    /// Producer tuning.
    pub producer: ProducerSettings,
    /// Read the topic back and count lost, duplicated and reordered events.
    pub validate: bool,
    /// Latency SLA for the ramp: the highest rate whose p99 stays under it.
    pub sla_p99_ms: Option<f64>,
    /// Reporting interval.
    #[serde(with = "secs")]
    pub interval: Duration,
    /// A ramp stops by itself after this many steps in a row that did not keep up; 0 never
    /// stops early (diagnose judges the generators' summed ramp and stops them itself).
    #[serde(default = "two_missed_steps")]
    pub stop_after_missed_steps: u32,
}

fn two_missed_steps() -> u32 {
    2
}

impl ProduceConfig {
    /// A fixed-rate run with seed 000's defaults.
    pub fn new(bootstrap: &str, topic: &str, rate: RateSpec) -> ProduceConfig {
        ProduceConfig {
            bootstrap: bootstrap.to_string(),
            topic: topic.to_string(),
            rate,
            time: Duration::from_secs(10),
            events: EventSpec::default(),
            key: KeyMode::Device,
            workers: 2,
            producer: ProducerSettings::default(),
            validate: false,
            sla_p99_ms: None,
            interval: Duration::from_secs(5),
            stop_after_missed_steps: two_missed_steps(),
        }
    }

    /// Checks everything that can be checked without a broker.
    pub fn validate_input(&self) -> Result<(), String> {
        if self.bootstrap.trim().is_empty() {
            return Err("--bootstrap is empty; give HOST:PORT of a broker".into());
        }
        if self.topic.trim().is_empty() {
            return Err("--topic is empty".into());
        }
        self.producer.validate()?;
        match self.rate {
            RateSpec::Fixed(rate) if rate == 0 || rate > MAX_RATE => {
                return Err(format!("--rate {rate} is out of range; use 1 to {MAX_RATE} msg/s"));
            }
            _ => {}
        }
        if self.time.is_zero() || self.time > Duration::from_secs(24 * 3600) {
            return Err("--time is out of range; use 1 s to 24 h".into());
        }
        if self.workers == 0 || self.workers > 64 {
            return Err(format!("--workers {} is out of range; use 1 to 64", self.workers));
        }
        if self.interval < Duration::from_millis(100) || self.interval > Duration::from_secs(3600) {
            return Err("--interval is out of range; use 100ms to 1h".into());
        }
        if let Some(sla) = self.sla_p99_ms.filter(|sla| !(sla.is_finite() && *sla > 0.0)) {
            return Err(format!("--sla-p99-ms {sla} must be a positive number of milliseconds"));
        }
        self.events.validate()
    }
}

/// Why a produce run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// Bad input; the message says what to fix.
    #[error("{0}")]
    InvalidInput(String),
    /// librdkafka refused the configuration.
    #[error("the producer configuration was refused: {0}")]
    Config(String),
    /// The broker could not be reached.
    #[error("cannot reach the Kafka cluster at {bootstrap}: {reason}")]
    Unreachable {
        /// The bootstrap servers.
        bootstrap: String,
        /// Why.
        reason: String,
    },
    /// The topic does not exist.
    #[error(
        "topic '{topic}' does not exist on {bootstrap}; create it first (e.g. `kafka-topics.sh --create` or `tansu topic create`)"
    )]
    NoTopic {
        /// The topic.
        topic: String,
        /// The bootstrap servers.
        bootstrap: String,
    },
    /// The run was interrupted.
    #[error("the run was interrupted")]
    Cancelled,
    /// The cluster led the run to an address it may not reach.
    #[error("{0}")]
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_parse_and_list_their_steps() {
        let ramp: Ramp = "20000:10000:10:60000".parse().unwrap();
        assert_eq!(ramp.every, Duration::from_secs(10));
        assert_eq!(ramp.targets(), [20000, 30000, 40000, 50000, 60000]);
        assert_eq!(ramp.to_string(), "20000:10000:10:60000");
        assert!("1:2:3".parse::<Ramp>().unwrap_err().contains("START:STEP:EVERY_S:MAX"));
        assert!("100:10:0.1:200".parse::<Ramp>().unwrap_err().contains("EVERY_S >= 1"));
        assert!("500:10:5:100".parse::<Ramp>().is_err());
        assert!("1:1:1:10000000".parse::<Ramp>().unwrap_err().contains("at most 1000"));
        assert!("1:1:100000:10".parse::<Ramp>().unwrap_err().contains("EVERY_S <= 3600"));
    }

    #[test]
    fn absurd_rates_are_refused() {
        let config = ProduceConfig::new("h:9092", "t", RateSpec::Fixed(0));
        assert!(config.validate_input().unwrap_err().contains("out of range"));
        let config = ProduceConfig::new("h:9092", "t", RateSpec::Fixed(MAX_RATE + 1));
        assert!(config.validate_input().is_err());
        assert!(ProduceConfig::new("h:9092", "t", RateSpec::Fixed(1000)).validate_input().is_ok());
    }

    #[test]
    fn properties_follow_seed_000_and_extra_wins() {
        let settings =
            ProducerSettings { extra: vec![("linger.ms".into(), "20".into())], ..ProducerSettings::default() };
        let properties = settings.properties();
        assert!(properties.contains(&("enable.idempotence".into(), "true".into())));
        assert!(properties.contains(&("compression.type".into(), "lz4".into())));
        assert_eq!(properties.last().unwrap(), &("linger.ms".to_string(), "20".to_string()));
        assert!(parse_property("security.protocol=SASL_SSL").is_ok());
        assert!(parse_property("nonsense").is_err());
    }
}
