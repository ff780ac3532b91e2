//! The run driver: checks and opens what the run needs, commits where the group starts,
//! starts the members, paces the intervals and samples the lag until the run ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::lag::{self, LagReader};
use super::ledger::Ledger;
use super::member::{MemberContext, MemberEnd, MemberState, MemberTime, Totals, busy_shares, member};
use super::report::{RunEnd, report};
use super::sink::Sink;
use super::{
    ConsumeConfig, ConsumeControl, ConsumeError, ConsumeInterval, ConsumeReport, METADATA_TIMEOUT, SinkReport, StartAt,
    unix_ms,
};
use crate::kafka::brokers::BrokerCheck;
use crate::kafka::report::Errors;
use crate::latency::{LatencyMs, latency_histogram};

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

/// What the run learns and opens before any member joins.
struct Setup {
    group: String,
    partitions: usize,
    start: Start,
    brokers: Arc<BrokerCheck>,
    sinks: Vec<Option<Sink>>,
    lag_reader: LagReader,
}

/// Runs a consume run to its end (or until `control.cancel`), reporting intervals
/// through `on_interval`.
pub fn run_consume(
    config: &ConsumeConfig,
    control: &ConsumeControl,
    mut on_interval: impl FnMut(&ConsumeInterval),
) -> Result<ConsumeReport, ConsumeError> {
    let Setup { group, partitions, start, brokers, sinks, lag_reader } = prepare(config, control)?;
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
    let members = spawn_members(config, &group, sinks, &brokers, &totals, &stopping)?;
    let lag_sampler = lag::LagSampler::start(lag_reader, config.interval);
    let (intervals, stopped_early) =
        control_loop(config, control, &totals, &brokers, &lag_sampler, started, &mut on_interval);
    stopping.store(true, Ordering::Relaxed);
    let ends: Vec<MemberEnd> = members.into_iter().map(|thread| thread.join().unwrap_or_default()).collect();
    let lag_report = lag_sampler.finish();
    let duration = started.elapsed().as_secs_f64();
    let totals = Arc::try_unwrap(totals)
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .unwrap_or_else(|shared| panic!("consumer members still hold the totals: {}", Arc::strong_count(&shared)));
    let run =
        RunEnd { group, partitions, started, started_at_ms: unix_ms(started_at), duration, intervals, stopped_early };
    Ok(report(config, run, start.from_first_event, totals, ends, lag_report))
}

/// Checks the input, connects the sinks, reads the topic's partitions and commits where
/// the group starts: everything that can refuse the run before it touches the group.
fn prepare(config: &ConsumeConfig, control: &ConsumeControl) -> Result<Setup, ConsumeError> {
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
    Ok(Setup { group, partitions, start, brokers, sinks, lag_reader })
}

/// Starts the group's members, one thread and connection each.
fn spawn_members(
    config: &ConsumeConfig,
    group: &str,
    sinks: Vec<Option<Sink>>,
    brokers: &Arc<BrokerCheck>,
    totals: &Arc<Mutex<Totals>>,
    stopping: &Arc<AtomicBool>,
) -> Result<Vec<std::thread::JoinHandle<MemberEnd>>, ConsumeError> {
    let mut members = Vec::new();
    for (index, sink) in sinks.into_iter().enumerate() {
        let mut client = client_config(config);
        client
            .set("group.id", group)
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
            stopping: Arc::clone(stopping),
            brokers: Arc::clone(brokers),
        };
        let consumer: BaseConsumer<MemberContext> =
            client.create_with_context(context).map_err(|err| ConsumeError::Config(err.to_string()))?;
        let (totals, stopping, config) = (Arc::clone(totals), Arc::clone(stopping), config.clone());
        let thread = std::thread::Builder::new()
            .name(format!("consume-{index}"))
            .spawn(move || member(index, consumer, sink, &config, &totals, &stopping))
            .expect("spawning a consumer member");
        members.push(thread);
    }
    Ok(members)
}

/// The control loop: an interval's counts and the group's lag, paced against absolute
/// deadlines (a slow lag reading does not push the next one back), until the run's time,
/// the drain, a cancel or a refused broker ends it. Returns the intervals and why the run
/// stopped early, if it did.
fn control_loop(
    config: &ConsumeConfig,
    control: &ConsumeControl,
    totals: &Mutex<Totals>,
    brokers: &BrokerCheck,
    lag_sampler: &lag::LagSampler,
    started: Instant,
    on_interval: &mut impl FnMut(&ConsumeInterval),
) -> (Vec<ConsumeInterval>, Option<String>) {
    let mut intervals = Vec::new();
    let mut counter = IntervalCounter {
        last_consumed: 0,
        last_bytes: 0,
        last_members: vec![MemberTime::default(); config.members],
        tick: started,
    };
    let deadline = config.time_secs.map(|time| started + time);
    let drained = || totals.lock().unwrap_or_else(|p| p.into_inner()).drained.is_some();
    for readings in 1u32.. {
        let due = started + config.interval * readings;
        let next = deadline.map_or(due, |end| due.min(end));
        while Instant::now() < next && !control.cancel.is_cancelled() && !drained() {
            std::thread::sleep((next - Instant::now()).min(Duration::from_millis(50)));
        }
        let now = Instant::now();
        // The newest lag reading, whenever it came: a slow cluster delays the lag, not
        // the interval's counts.
        let interval = counter.next(
            &mut totals.lock().unwrap_or_else(|p| p.into_inner()),
            control,
            lag_sampler.latest(),
            now,
            started,
        );
        on_interval(&interval);
        intervals.push(interval);
        if let Some(refusal) = brokers.refusal() {
            return (intervals, Some(refusal));
        }
        if control.cancel.is_cancelled() {
            let early = deadline.is_some_and(|end| now + Duration::from_millis(100) < end);
            return (intervals, early.then(|| "stopped on request".to_string()));
        }
        if deadline.is_some_and(|end| now >= end) || drained() {
            break;
        }
    }
    (intervals, None)
}

/// The counts at the last interval's end, from which the next interval is the difference.
struct IntervalCounter {
    last_consumed: u64,
    last_bytes: u64,
    last_members: Vec<MemberTime>,
    tick: Instant,
}

impl IntervalCounter {
    /// The interval ending `now`; updates the live counters.
    fn next(
        &mut self,
        totals: &mut Totals,
        control: &ConsumeControl,
        lag: Option<u64>,
        now: Instant,
        started: Instant,
    ) -> ConsumeInterval {
        let at_ms = crate::sampler::raw::unix_ms_now();
        let seconds = (now - self.tick).as_secs_f64().max(1e-3);
        let records = totals.ledger.consumed - self.last_consumed;
        let bytes = totals.bytes - self.last_bytes;
        self.last_consumed = totals.ledger.consumed;
        self.last_bytes = totals.bytes;
        let e2e = LatencyMs::from_micros(&totals.e2e_interval);
        let insert = totals.sink.as_ref().map(|_| LatencyMs::from_micros(&totals.insert_interval));
        totals.e2e_interval.reset();
        totals.insert_interval.reset();
        let busy = busy_shares(&self.last_members, &totals.members, now - self.tick);
        self.last_members.clone_from(&totals.members);
        let mut live = control.live.lock().unwrap_or_else(|p| p.into_inner());
        live.consumed = totals.ledger.consumed;
        live.counted_at_ms = Some(at_ms);
        live.current_rate_mps = records as f64 / seconds;
        live.lag = lag;
        live.e2e_avg_ms = (e2e.count > 0).then_some(e2e.avg);
        live.e2e_p99_ms = (e2e.count > 0).then_some(e2e.p99);
        live.last_error = totals.errors.last_error.clone();
        let interval = ConsumeInterval {
            at_ms,
            end_secs: (now - started).as_secs_f64(),
            records,
            records_per_sec: records as f64 / seconds,
            mb_per_sec: crate::units::mb_per_sec(bytes, now - self.tick),
            e2e_avg_ms: e2e.avg,
            e2e_p99_ms: e2e.p99,
            lag,
            insert_p99_ms: insert.map(|i| i.p99),
            insert_avg_ms: insert.filter(|i| i.count > 0).map(|i| i.avg),
            members_busy_ratio: busy.map(|b| b.0),
            handling_busy_ratio: busy.map(|b| b.1),
            sink_busy_ratio: busy.map(|b| b.2),
        };
        self.tick = now;
        interval
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
