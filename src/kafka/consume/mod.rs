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
pub mod sink;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use self::lag::{LagReader, LagReport};
use self::ledger::{Ledger, device_index};
use self::sink::{Row, Sink, SinkConfig};
use super::brokers::BrokerCheck;
use super::report::{Errors, WindowUs};
use crate::cancel::Cancel;
use crate::latency::{LatencyMs, latency_histogram};

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

/// One event as the consumer reads it: seed 000's fields, metrics kept verbatim.
#[derive(Deserialize)]
struct WireEvent {
    event_id: uuid::Uuid,
    device_id: String,
    timestamp: String,
    seq: u64,
    metrics: Box<serde_json::value::RawValue>,
    status: String,
}

/// What every member adds to, once per batch.
#[derive(Debug)]
struct Totals {
    ledger: Ledger,
    bytes: u64,
    e2e_run: hdrhistogram::Histogram<u64>,
    e2e_interval: hdrhistogram::Histogram<u64>,
    record_run: hdrhistogram::Histogram<u64>,
    insert_run: hdrhistogram::Histogram<u64>,
    insert_interval: hdrhistogram::Histogram<u64>,
    sink: Option<SinkReport>,
    errors: Errors,
    members: Vec<MemberTime>,
    /// Records to read before the run counts as drained (`until_drained`).
    backlog: Option<u64>,
    /// When the backlog was read, with the records and bytes read by then.
    drained: Option<(Instant, u64, u64)>,
}

/// A member's view of its group membership, kept by the rebalance callbacks.
#[derive(Debug, Default)]
struct MemberState {
    subscribed: Option<Instant>,
    first_assignment_ms: Option<f64>,
    revocations: u64,
    revoked_at: Option<Instant>,
    rebalance_max_ms: f64,
}

struct MemberContext {
    state: Mutex<MemberState>,
    statistics: Mutex<Option<Statistics>>,
    stopping: Arc<AtomicBool>,
    brokers: Arc<BrokerCheck>,
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
        if let Rebalance::Revoke(_) = rebalance
            && !self.stopping.load(Ordering::Relaxed)
        {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.revocations += 1;
            state.revoked_at = Some(Instant::now());
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
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
struct MemberEnd {
    state: MemberState,
    assigned: usize,
    statistics: Option<Statistics>,
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The client properties every consumer of the run shares.
fn client_config(config: &ConsumeConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.bootstrap)
        .set("client.id", "plateau-consume")
        .set("socket.nagle.disable", "true")
        // A catch-up drains in seconds: its fetch round trips are read five times a second.
        .set("statistics.interval.ms", if config.until_drained { "200" } else { "1000" });
    for (name, value) in &config.extra {
        client.set(name, value);
    }
    client
}

/// Runs a consume run to its end (or until `control.cancel`), reporting intervals
/// through `on_interval`.
pub fn run_consume(
    config: &ConsumeConfig,
    control: &ConsumeControl,
    mut on_interval: impl FnMut(&ConsumeInterval),
) -> Result<ConsumeReport, ConsumeError> {
    config.validate_input().map_err(ConsumeError::InvalidInput)?;
    let group = config.group.clone().unwrap_or_else(|| format!("plateau-consume-{}", uuid::Uuid::new_v4()));
    let unreachable = |reason: String| ConsumeError::Unreachable { bootstrap: config.bootstrap.clone(), reason };

    // Every member's sink connection is made before the first record is read, so a sink
    // that cannot be written stops the run before it touches the group.
    let sinks: Vec<Option<Sink>> = (0..config.members)
        .map(|_| config.sink.as_ref().map(Sink::connect).transpose())
        .collect::<Result<_, _>>()
        .map_err(ConsumeError::Sink)?;

    // The topic's partitions and where the group starts on each.
    let setup: BaseConsumer = {
        let mut client = client_config(config);
        client.set("group.id", &group).set("enable.auto.commit", "false");
        client.create().map_err(|err| ConsumeError::Config(err.to_string()))?
    };
    let metadata =
        setup.fetch_metadata(Some(&config.topic), METADATA_TIMEOUT).map_err(|err| unreachable(err.to_string()))?;
    // No member joins before every broker the cluster advertises passed the check, so
    // librdkafka never opens a connection to a refused one.
    let brokers = Arc::new(BrokerCheck::new(control.allow.clone()));
    for broker in metadata.brokers() {
        brokers.check(broker.host(), broker.port().clamp(0, u16::MAX as i32) as u16).map_err(ConsumeError::Refused)?;
    }
    let partitions = match metadata.topics().first() {
        Some(topic) if topic.error().is_none() && !topic.partitions().is_empty() => topic.partitions().len(),
        _ => return Err(ConsumeError::NoTopic { topic: config.topic.clone(), bootstrap: config.bootstrap.clone() }),
    };
    let start = start_offsets(&setup, &config.topic, partitions, config.start_at).map_err(unreachable)?;
    drop(setup);

    let lag_reader = {
        let mut client = client_config(config);
        client.set("statistics.interval.ms", "0");
        LagReader::new(client, &group, &config.topic, start.offsets.clone()).map_err(ConsumeError::Config)?
    };

    let totals = Arc::new(Mutex::new(Totals {
        ledger: Ledger::starting_at_first_event(start.from_first_event),
        bytes: 0,
        e2e_run: latency_histogram(),
        e2e_interval: latency_histogram(),
        record_run: latency_histogram(),
        insert_run: latency_histogram(),
        insert_interval: latency_histogram(),
        sink: config.sink.as_ref().map(|sink| SinkReport { table: sink.table.clone(), ..SinkReport::default() }),
        errors: Errors::default(),
        members: vec![MemberTime::default(); config.members],
        backlog: config.until_drained.then_some(start.backlog),
        // Nothing to read: drained before the first poll.
        drained: (config.until_drained && start.backlog == 0).then(|| (Instant::now(), 0, 0)),
    }));
    let stopping = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let started_at = SystemTime::now();
    control.live.lock().unwrap_or_else(|p| p.into_inner()).started_at = Some(unix_ms(started_at));

    let mut members = Vec::new();
    for (index, sink) in sinks.into_iter().enumerate() {
        let mut client = client_config(config);
        client
            .set("group.id", &group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            // Offsets are stored only once a batch is handled (written to the sink), so a
            // commit never covers an event that is not yet stored: at-least-once delivery.
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "latest")
            .set("fetch.wait.max.ms", "100")
            .set("client.id", format!("plateau-consume-{index}"));
        let context = MemberContext {
            state: Mutex::new(MemberState::default()),
            statistics: Mutex::new(None),
            stopping: Arc::clone(&stopping),
            brokers: Arc::clone(&brokers),
        };
        let consumer: BaseConsumer<MemberContext> =
            client.create_with_context(context).map_err(|err| ConsumeError::Config(err.to_string()))?;
        let (totals, stopping, config) = (Arc::clone(&totals), Arc::clone(&stopping), config.clone());
        let thread = std::thread::Builder::new()
            .name(format!("consume-{index}"))
            .spawn(move || member(index, consumer, sink, &config, &totals, &stopping))
            .expect("spawning a consumer member");
        members.push(thread);
    }

    // The control loop: an interval's counts and the group's lag, until the end.
    let mut intervals = Vec::new();
    let lag_sampler = lag::LagSampler::start(lag_reader, config.interval);
    let mut last_consumed = 0;
    let mut last_bytes = 0;
    let mut last_members = vec![MemberTime::default(); config.members];
    let mut tick = started;
    let deadline = config.time_secs.map(|time| started + time);
    let mut stopped_early = None;
    let mut readings = 0u32;
    loop {
        // Paced against absolute deadlines: a slow lag reading does not push the next one back.
        readings += 1;
        let due = started + config.interval * readings;
        let next = deadline.map_or(due, |end| due.min(end));
        let drained = || totals.lock().unwrap_or_else(|p| p.into_inner()).drained.is_some();
        while Instant::now() < next && !control.cancel.is_cancelled() && !drained() {
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(50)));
        }
        let now = Instant::now();
        // The newest lag reading, whenever it came: a slow cluster delays the lag, not
        // the interval's counts.
        let lag = lag_sampler.latest();
        let at_ms = crate::sampler::raw::unix_ms_now();
        let interval = {
            let mut totals = totals.lock().unwrap_or_else(|p| p.into_inner());
            let seconds = (now - tick).as_secs_f64().max(1e-3);
            let records = totals.ledger.consumed - last_consumed;
            let bytes = totals.bytes - last_bytes;
            last_consumed = totals.ledger.consumed;
            last_bytes = totals.bytes;
            let e2e = LatencyMs::from_micros(&totals.e2e_interval);
            let insert = totals.sink.as_ref().map(|_| LatencyMs::from_micros(&totals.insert_interval));
            totals.e2e_interval.reset();
            totals.insert_interval.reset();
            let busy = busy_shares(&last_members, &totals.members, now - tick);
            last_members.clone_from(&totals.members);
            let mut live = control.live.lock().unwrap_or_else(|p| p.into_inner());
            live.consumed = totals.ledger.consumed;
            live.counted_at_ms = Some(at_ms);
            live.current_rate_mps = records as f64 / seconds;
            live.lag = lag;
            live.e2e_avg_ms = (e2e.count > 0).then_some(e2e.avg);
            live.e2e_p99_ms = (e2e.count > 0).then_some(e2e.p99);
            live.last_error = totals.errors.last_error.clone();
            ConsumeInterval {
                at_ms,
                end_secs: (now - started).as_secs_f64(),
                records,
                records_per_sec: records as f64 / seconds,
                mb_per_sec: crate::units::mb_per_sec(bytes, now - tick),
                e2e_avg_ms: e2e.avg,
                e2e_p99_ms: e2e.p99,
                lag,
                insert_p99_ms: insert.map(|i| i.p99),
                insert_avg_ms: insert.filter(|i| i.count > 0).map(|i| i.avg),
                members_busy_ratio: busy.map(|b| b.0),
                handling_busy_ratio: busy.map(|b| b.1),
                sink_busy_ratio: busy.map(|b| b.2),
            }
        };
        on_interval(&interval);
        intervals.push(interval);
        tick = now;
        if let Some(refusal) = brokers.refusal() {
            stopped_early = Some(refusal);
            break;
        }
        if control.cancel.is_cancelled() {
            if deadline.is_some_and(|end| now + Duration::from_millis(100) < end) {
                stopped_early = Some("stopped on request".to_string());
            }
            break;
        }
        if deadline.is_some_and(|end| now >= end) || drained() {
            break;
        }
    }
    stopping.store(true, Ordering::Relaxed);
    let ends: Vec<MemberEnd> = members.into_iter().map(|thread| thread.join().unwrap_or_default()).collect();
    let lag_report = lag_sampler.finish();
    let duration = started.elapsed().as_secs_f64();
    let totals = Arc::try_unwrap(totals)
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .unwrap_or_else(|shared| panic!("consumer members still hold the totals: {}", Arc::strong_count(&shared)));
    Ok(report(
        config,
        group,
        partitions,
        &start,
        (started, started_at),
        duration,
        totals,
        ends,
        lag_report,
        intervals,
        stopped_early,
    ))
}

#[allow(clippy::too_many_arguments)]
fn report(
    config: &ConsumeConfig,
    group: String,
    partitions: usize,
    start: &Start,
    (started, started_at): (Instant, SystemTime),
    duration: f64,
    mut totals: Totals,
    ends: Vec<MemberEnd>,
    lag: LagReport,
    intervals: Vec<ConsumeInterval>,
    stopped_early: Option<String>,
) -> ConsumeReport {
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
    let assigned: Vec<usize> = ends.iter().map(|end| end.assigned).collect();
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
        started_at_ms: unix_ms(started_at),
        duration_secs: duration,
        consumed: ledger.consumed,
        bytes: totals.bytes,
        records_per_sec: ledger.consumed as f64 / duration.max(1e-3),
        mb_per_sec: crate::units::mb_per_sec(totals.bytes, Duration::from_secs_f64(duration)),
        e2e_ms: LatencyMs::from_micros(&totals.e2e_run),
        e2e_record_ms: LatencyMs::from_micros(&totals.record_run),
        fetch_rtt_us,
        validation: ConsumeValidation {
            from_first_event: start.from_first_event,
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

/// Where the group starts.
struct Start {
    /// Each partition's first offset to read.
    offsets: Vec<i64>,
    /// Whether no partition had a committed offset and the run starts at the end or at a
    /// time (so every device is read from its first event produced after that).
    from_first_event: bool,
    /// Records between the start offsets and the end offsets.
    backlog: u64,
}

/// Commits each partition's start offset for a group that has no offset there yet — its
/// end, its first offset, or its first record of a time (`start_at`) — so the run reads
/// only what it should, however long the group takes to form; a group's existing commits
/// are kept.
fn start_offsets(setup: &BaseConsumer, topic: &str, partitions: usize, start_at: StartAt) -> Result<Start, String> {
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        list.add_partition(topic, partition);
    }
    let committed = while_coordinator_loads(|| setup.committed_offsets(list.clone(), METADATA_TIMEOUT))
        .map_err(|err| format!("reading the group's offsets: {err}"))?;
    let at_time = match start_at {
        StartAt::Time(ms) => {
            let mut times = TopicPartitionList::new();
            for partition in 0..partitions as i32 {
                times
                    .add_partition_offset(topic, partition, Offset::Offset(ms as i64))
                    .map_err(|err| err.to_string())?;
            }
            Some(
                setup
                    .offsets_for_times(times, METADATA_TIMEOUT)
                    .map_err(|err| format!("reading the partitions' offsets at {ms} ms: {err}"))?,
            )
        }
        _ => None,
    };
    let mut offsets = Vec::with_capacity(partitions);
    let mut to_commit = TopicPartitionList::new();
    let mut backlog = 0;
    for partition in 0..partitions as i32 {
        let (first, end) = setup
            .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
            .map_err(|err| format!("reading partition {partition}'s offsets: {err}"))?;
        let offset = match committed.find_partition(topic, partition).map(|p| p.offset()) {
            Some(Offset::Offset(offset)) => offset,
            _ => {
                let offset = match (start_at, at_time.as_ref().and_then(|t| t.find_partition(topic, partition))) {
                    (StartAt::Earliest, _) => first,
                    // No record of that time or later: the partition's end.
                    (StartAt::Time(_), Some(found)) => match found.offset() {
                        Offset::Offset(offset) => offset,
                        _ => end,
                    },
                    _ => end,
                };
                to_commit
                    .add_partition_offset(topic, partition, Offset::Offset(offset))
                    .map_err(|err| err.to_string())?;
                offset
            }
        };
        backlog += (end - offset).max(0) as u64;
        offsets.push(offset);
    }
    let from_first_event = to_commit.count() == partitions && start_at != StartAt::Earliest;
    if to_commit.count() > 0 {
        while_coordinator_loads(|| setup.commit(&to_commit, CommitMode::Sync))
            .map_err(|err| format!("committing the start offsets: {err}"))?;
    }
    Ok(Start { offsets, from_first_event, backlog })
}

/// Retries `request` while the group's coordinator is still being chosen or loaded (a
/// cluster's first group creates `__consumer_offsets` on demand), for up to 30 s.
fn while_coordinator_loads<T>(
    mut request: impl FnMut() -> rdkafka::error::KafkaResult<T>,
) -> rdkafka::error::KafkaResult<T> {
    use rdkafka::types::RDKafkaErrorCode::{
        CoordinatorLoadInProgress, CoordinatorNotAvailable, NotCoordinator, UnknownTopicOrPartition,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match request() {
            Err(err)
                if Instant::now() < deadline
                    && matches!(
                        err.rdkafka_error_code(),
                        Some(
                            CoordinatorLoadInProgress
                                | CoordinatorNotAvailable
                                | NotCoordinator
                                | UnknownTopicOrPartition
                        )
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(250));
            }
            result => return result,
        }
    }
}

/// Adds to member `index`'s time.
fn member_time(totals: &Mutex<Totals>, index: usize, add: impl FnOnce(&mut MemberTime)) {
    add(&mut totals.lock().unwrap_or_else(|p| p.into_inner()).members[index]);
}

/// Where one member's time went (cumulative): waiting for records, handling them (parsing,
/// the synchronous work per event), and writing them to the sink.
#[derive(Debug, Clone, Copy, Default)]
struct MemberTime {
    records: u64,
    waiting: Duration,
    handling: Duration,
    sink: Duration,
}

/// The busy shares of the members that handled records between two readings: the mean
/// over those members of their time handling and in the sink, as shares of `elapsed`.
fn busy_shares(before: &[MemberTime], after: &[MemberTime], elapsed: Duration) -> Option<(f64, f64, f64)> {
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
struct Handled {
    device: Option<u64>,
    seq: u64,
    event_ms: Option<u64>,
    record_ms: Option<u64>,
}

/// One member: poll a batch, handle it, write it, store its offsets; until stopped.
fn member(
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
    let mut handled: Vec<Handled> = Vec::with_capacity(config.max_batch);
    let mut rows: Vec<Row> = Vec::with_capacity(if sink.is_some() { config.max_batch } else { 0 });
    let mut offsets: BTreeMap<i32, i64> = BTreeMap::new();
    let mut errors: Vec<rdkafka::error::KafkaError> = Vec::new();
    while !stopping.load(Ordering::Relaxed) {
        handled.clear();
        rows.clear();
        offsets.clear();
        let mut bytes = 0u64;
        let mut wait = POLL_WAIT;
        let polled = Instant::now();
        let mut first_record = None;
        while handled.len() < config.max_batch {
            let Some(result) = consumer.poll(wait) else { break };
            wait = Duration::ZERO;
            first_record.get_or_insert_with(Instant::now);
            let message = match result {
                Ok(message) => message,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            offsets.insert(message.partition(), message.offset());
            let payload = message.payload().unwrap_or_default();
            bytes += payload.len() as u64;
            let record_ms = message.timestamp().to_millis().map(|ms| ms.max(0) as u64);
            match serde_json::from_slice::<WireEvent>(payload) {
                Ok(event) => {
                    handled.push(Handled {
                        device: device_index(&event.device_id, &config.device_prefix),
                        seq: event.seq,
                        event_ms: humantime::parse_rfc3339(&event.timestamp).ok().map(unix_ms),
                        record_ms,
                    });
                    if sink.is_some() {
                        rows.push(Row {
                            event_id: event.event_id,
                            device_id: event.device_id,
                            timestamp: event.timestamp,
                            seq: event.seq,
                            metrics: event.metrics.get().to_string(),
                            status: event.status,
                        });
                    }
                }
                Err(_) => handled.push(Handled { device: None, seq: 0, event_ms: None, record_ms }),
            }
        }
        let handling_from = first_record.unwrap_or_else(Instant::now);
        if handled.is_empty() && errors.is_empty() {
            member_time(totals, index, |time| time.waiting += handling_from - polled);
            continue;
        }
        if config.process_us > 0 && !handled.is_empty() {
            // Work done on the polling thread itself, as seed 004's synchronous event bus
            // did: the member polls again only after it.
            std::thread::sleep(Duration::from_micros(config.process_us * handled.len() as u64));
        }
        let sink_from = Instant::now();
        let written = match (&mut sink, rows.is_empty()) {
            (Some(sink), false) => Some(sink.write(&rows)),
            _ => None,
        };
        let sink_to = Instant::now();
        if !matches!(written, Some(Err(_))) {
            for (&partition, &offset) in &offsets {
                // A partition revoked mid-batch refuses the store; its new owner reads
                // the batch again, and the sink does not store it twice.
                let _ = consumer.store_offset(&config.topic, partition, offset);
            }
        }
        let now_ms = crate::sampler::raw::unix_ms_now();
        let mut totals = totals.lock().unwrap_or_else(|p| p.into_inner());
        totals.bytes += bytes;
        let time = &mut totals.members[index];
        time.records += handled.len() as u64;
        time.waiting += handling_from - polled;
        time.handling += sink_from - handling_from;
        time.sink += sink_to - sink_from;
        for record in &handled {
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
        for err in errors.drain(..) {
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
    // Commit what was handled before leaving the group, so that lag read after the run
    // is the truth and a next run with the same group starts after it.
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
    let assigned = consumer.assignment().map_or(0, |list| list.count());
    let context = consumer.context();
    MemberEnd {
        state: std::mem::take(&mut *context.state.lock().unwrap_or_else(|p| p.into_inner())),
        assigned,
        statistics: context.statistics.lock().unwrap_or_else(|p| p.into_inner()).take(),
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
