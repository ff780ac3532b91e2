//! Driving librdkafka: worker threads generate events and send them on schedule (the
//! delivery callback and the statistics are `delivery`'s); the control loop reports
//! intervals, steps the ramp, and stops at the plateau, at the end, or on request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{Producer, ThreadedProducer};
use serde::{Deserialize, Serialize};

use super::brokers::BrokerCheck;
pub use super::delivery::MAX_DEVICES;
use super::delivery::{self, Context, broker_stats};
use super::event::EventGenerator;
use super::pace::{Pacer, SharedRate};
use super::report::{Partitions, ProduceInterval, ProduceReport, Step, expected_used_partitions, skew};
use super::validate::Validator;
use super::{KeyMode, ProduceConfig, ProduceError, RateSpec};
use crate::allow::AllowList;
use crate::cancel::Cancel;
use crate::latency::LatencyMs;

/// How long the end of a run waits for outstanding deliveries.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the start of a run waits for the cluster to answer.
const METADATA_TIMEOUT: Duration = Duration::from_secs(8);
/// How often the live counters for `/status` are refreshed.
const LIVE_EVERY: Duration = Duration::from_millis(500);
/// A worker hands its publish delays and sent count over after this many records…
const DELAY_BATCH: usize = 256;
/// …or this long, whichever comes first.
const DELAY_HAND_OVER_EVERY: Duration = Duration::from_millis(10);

fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    crate::latency::latency_histogram()
}

/// What a running produce run shows to `/status` (seed 000's generator `stats`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LiveStats {
    /// Unix ms the run started.
    pub started_at: Option<u64>,
    /// Records acknowledged.
    pub sent_ok: u64,
    /// Records that failed.
    pub sent_err: u64,
    /// Bytes acknowledged.
    pub bytes_sent: u64,
    /// Acknowledged records per second over the last interval.
    pub current_rate_mps: f64,
    /// The most recent error.
    pub last_error: Option<String>,
    /// The steps finished so far (a ramp's, or those a driver closed).
    pub steps: Vec<Step>,
    /// Delivery latency p99 over the last reporting interval, ms.
    pub latency_p99_ms: Option<f64>,
}

/// Controls a running produce run from outside: stop it, change its rate, watch it.
#[derive(Debug, Default)]
pub struct RunControl {
    /// Stops the run (it still reports what it measured).
    pub cancel: Cancel,
    /// The target rate; changing it starts a new schedule in every worker.
    pub rate: SharedRate,
    /// Live counters.
    pub live: Mutex<LiveStats>,
    /// Steps a driver asked a fixed-rate run to have closed so far ([`RunControl::close_step`]):
    /// a rate search holds each target for a step and reads it before choosing the next.
    pub steps_wanted: AtomicU64,
    /// Where the run may connect (an agent's `--allow`): every broker the cluster
    /// advertises is checked against it before the first record and whenever librdkafka's
    /// statistics name a new one; `None` for a run on the user's own machine.
    pub allow: Option<AllowList>,
}

impl RunControl {
    /// Closes the running fixed-rate run's current step (its rate stays) and returns it,
    /// waiting up to `timeout`; `None` when the run did not close it in time (it ended).
    pub fn close_step(&self, timeout: Duration) -> Option<Step> {
        let wanted = self.steps_wanted.fetch_add(1, Ordering::SeqCst) + 1;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(step) = self.live.lock().unwrap_or_else(|p| p.into_inner()).steps.get(wanted as usize - 1) {
                return Some(step.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Creates a producer (or, with `group_id`, the properties for a consumer) for `config`;
/// librdkafka's own message explains a refused property.
pub fn client_config(config: &ProduceConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap);
    client.set("client.id", "plateau");
    for (name, value) in config.producer.properties() {
        client.set(name, value);
    }
    client
}

/// Publish delays recorded by one worker.
#[derive(Debug)]
struct WorkerDelays {
    run: hdrhistogram::Histogram<u64>,
    step: hdrhistogram::Histogram<u64>,
    sent: u64,
}

/// Runs a produce run to its end (or until `control.cancel`), reporting intervals
/// through `on_interval`.
pub fn run_produce(
    config: &ProduceConfig,
    control: &RunControl,
    on_interval: &mut dyn FnMut(&ProduceInterval),
) -> Result<ProduceReport, ProduceError> {
    config.validate_input().map_err(ProduceError::InvalidInput)?;
    // Each worker sends for the devices it owns: more workers than devices would leave
    // some with none, and their share of the rate unsent.
    let fewer_workers;
    let config = if config.workers as u64 > config.events.devices.max(1) {
        fewer_workers = ProduceConfig { workers: config.events.devices.max(1) as usize, ..config.clone() };
        &fewer_workers
    } else {
        config
    };
    let validate = config.validate;
    if validate && config.events.devices > MAX_DEVICES {
        return Err(ProduceError::InvalidInput(format!("--validate tracks at most {MAX_DEVICES} devices")));
    }
    let start = Instant::now();
    let devices_to_count = if validate { config.events.devices as usize } else { 0 };
    let context = Context::new(start, devices_to_count, BrokerCheck::new(control.allow.clone()));
    let producer: ThreadedProducer<Context> =
        client_config(config).create_with_context(context).map_err(|err| ProduceError::Config(err.to_string()))?;
    let partitions = topic_partitions(&producer, config)?;
    let validator = if validate { Some(Validator::start(config, partitions)?) } else { None };

    let (targets, step_length) = match config.rate {
        RateSpec::Fixed(rate) => (vec![rate], config.time),
        RateSpec::Ramp(ramp) => (ramp.targets(), ramp.every),
    };
    control.rate.set(targets[0]);
    let started_at_ms = crate::sampler::raw::unix_ms_now();
    {
        let mut live = control.live.lock().unwrap_or_else(|p| p.into_inner());
        *live = LiveStats { started_at: Some(started_at_ms), ..LiveStats::default() };
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sent_total = Arc::new(AtomicU64::new(0));
    let producer = Arc::new(producer);
    let delays: Vec<Arc<Mutex<WorkerDelays>>> = (0..config.workers)
        .map(|_| Arc::new(Mutex::new(WorkerDelays { run: latency_histogram(), step: latency_histogram(), sent: 0 })))
        .collect();

    let mut report = ProduceReport {
        bootstrap: config.bootstrap.clone(),
        topic: config.topic.clone(),
        started_at_ms,
        ..ProduceReport::default()
    };
    let mut steps: Vec<Step> = Vec::new();
    let outcome = std::thread::scope(|scope| {
        for (worker, delays) in delays.iter().enumerate() {
            let (producer, stop, sent_total, delays) =
                (Arc::clone(&producer), Arc::clone(&stop), Arc::clone(&sent_total), Arc::clone(delays));
            let rate = &control.rate;
            std::thread::Builder::new()
                .name(format!("produce-{worker}"))
                .spawn_scoped(scope, move || {
                    produce_worker(config, worker, &producer, rate, &stop, &sent_total, &delays, start)
                })
                .expect("spawning a producer worker");
        }
        let result = control_loop(
            config,
            control,
            &producer,
            &delays,
            &targets,
            step_length,
            start,
            &mut steps,
            &mut report,
            on_interval,
        );
        stop.store(true, Ordering::Relaxed);
        result
    });

    let acked_per_device =
        tally(&mut report, &producer, &delays, sent_total.load(Ordering::Relaxed), partitions, config, start);
    if let RateSpec::Fixed(rate) = config.rate {
        report.target_rate = Some(rate);
    }
    // A ramp's steps, or those a driver closed in a fixed-rate run.
    if matches!(config.rate, RateSpec::Ramp(_)) || !steps.is_empty() {
        let sustained = steps.iter().filter(|s| s.sustained).map(|s| s.achieved_rate).reduce(f64::max);
        report.max_sustained_rate = sustained.or_else(|| steps.iter().map(|s| s.achieved_rate).reduce(f64::max));
        report.max_rate_within_sla = config
            .sla_p99_ms
            .and_then(|sla| steps.iter().filter(|s| s.sustained && s.p99_ms <= sla).map(|s| s.target_rate).max());
        report.steps = Some(steps);
    }
    if let Some(validator) = validator {
        report.validation = Some(validator.finish(&acked_per_device, &config.events));
    }
    {
        let mut live = control.live.lock().unwrap_or_else(|p| p.into_inner());
        live.sent_ok = report.records_acked;
        live.sent_err = report.errors.total;
        live.last_error = report.errors.last_error.clone();
    }
    match outcome {
        Ok(stopped_early) => {
            report.stopped_early = stopped_early;
            Ok(report)
        }
        Err(err) => Err(err),
    }
}

/// Flushes what is queued, then fills in the report's totals from the deliveries: counts,
/// rates, latencies, publish delays, errors (what could not be delivered in time among
/// them), partitions and the brokers' windows. Returns the acknowledged events per device.
fn tally(
    report: &mut ProduceReport,
    producer: &ThreadedProducer<Context>,
    delays: &[Arc<Mutex<WorkerDelays>>],
    records_sent: u64,
    partitions: usize,
    config: &ProduceConfig,
    start: Instant,
) -> Vec<u32> {
    // Deliver what is queued; what cannot be delivered in time counts as an error.
    let flush_error = producer.flush(FLUSH_TIMEOUT).err();
    let duration = start.elapsed();
    let deliveries = producer.context().deliveries();
    report.records_sent = records_sent;
    report.records_acked = deliveries.acked;
    report.duration_secs = duration.as_secs_f64();
    report.records_per_sec = deliveries.acked as f64 / report.duration_secs.max(1e-9);
    report.mb_per_sec = deliveries.acked_bytes as f64 / 1e6 / report.duration_secs.max(1e-9);
    report.latency_ms = LatencyMs::from_micros(&deliveries.latency_run);
    let mut publish_delay = latency_histogram();
    for worker in delays {
        let _ = publish_delay.add(&worker.lock().unwrap_or_else(|p| p.into_inner()).run);
    }
    report.publish_delay_ms = LatencyMs::from_micros(&publish_delay);
    report.errors = deliveries.errors.clone();
    let undelivered = report.records_sent.saturating_sub(deliveries.acked + deliveries.errors.total);
    if flush_error.is_some() && undelivered > 0 {
        report.errors.total += undelivered;
        *report.errors.by_kind.entry("NotDeliveredInTime".into()).or_default() += undelivered;
        report.errors.last_error =
            Some(format!("{undelivered} records not delivered within {} s of the end", FLUSH_TIMEOUT.as_secs()));
    }
    let mut counts = deliveries.partition_counts.clone();
    counts.resize(counts.len().max(partitions), 0);
    let keyed = config.key == KeyMode::Device;
    report.partitions = Partitions {
        skew: skew(&counts),
        used: counts.iter().filter(|&&c| c > 0).count(),
        total: partitions,
        key_cardinality: keyed.then_some(config.events.devices),
        expected_used: keyed.then(|| expected_used_partitions(partitions, config.events.devices)),
        counts,
    };
    report.brokers = broker_stats(producer.context());
    deliveries.acked_per_device.clone()
}

/// The topic's partition count, or a clear error when the cluster or topic is missing.
fn topic_partitions(producer: &ThreadedProducer<Context>, config: &ProduceConfig) -> Result<usize, ProduceError> {
    let unreachable = |reason: String| ProduceError::Unreachable { bootstrap: config.bootstrap.clone(), reason };
    let metadata = producer.client().fetch_metadata(Some(&config.topic), METADATA_TIMEOUT).map_err(|err| {
        let detail = producer.context().last_client_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        unreachable(match detail {
            Some(detail) => format!("no answer within {} s ({detail})", METADATA_TIMEOUT.as_secs()),
            None => format!("no answer within {} s ({err})", METADATA_TIMEOUT.as_secs()),
        })
    })?;
    // No record is sent before every broker the cluster advertises passed the check, so
    // librdkafka never opens a connection to a refused one.
    for broker in metadata.brokers() {
        producer
            .context()
            .brokers
            .check(broker.host(), broker.port().clamp(0, u16::MAX as i32) as u16)
            .map_err(ProduceError::Refused)?;
    }
    let topic = metadata.topics().iter().find(|t| t.name() == config.topic);
    match topic {
        Some(topic) if topic.error().is_none() && !topic.partitions().is_empty() => Ok(topic.partitions().len()),
        _ => Err(ProduceError::NoTopic { topic: config.topic.clone(), bootstrap: config.bootstrap.clone() }),
    }
}

#[allow(clippy::too_many_arguments)]
fn produce_worker(
    config: &ProduceConfig,
    worker: usize,
    producer: &ThreadedProducer<Context>,
    rate: &SharedRate,
    stop: &AtomicBool,
    sent_total: &AtomicU64,
    delays: &Mutex<WorkerDelays>,
    start: Instant,
) {
    let mut generator = EventGenerator::new(&config.events, worker as u64, config.workers as u64);
    if !generator.has_devices() {
        return;
    }
    let topic = match super::native::TopicHandle::open(producer, &config.topic) {
        Ok(topic) => topic,
        Err(err) => {
            tracing::warn!("{err}");
            producer.context().deliveries().errors.record(&KafkaError::MessageProduction(RDKafkaErrorCode::Fail));
            return;
        }
    };
    let mut pacer = Pacer::new(rate, config.workers);
    // Publish delays are kept here and handed over in batches: a lock per record would
    // cost a producer at its limit more than the delays are worth.
    let mut pending: Vec<u64> = Vec::with_capacity(DELAY_BATCH);
    let mut handed_over = Instant::now();
    let hand_over = |pending: &mut Vec<u64>| {
        let mut delays = delays.lock().unwrap_or_else(|p| p.into_inner());
        for &delay_us in pending.iter() {
            delays.run.saturating_record(delay_us);
            delays.step.saturating_record(delay_us);
        }
        delays.sent += pending.len() as u64;
        sent_total.fetch_add(pending.len() as u64, Ordering::Relaxed);
        pending.clear();
    };
    while let Some((due, now)) = pacer.next_due(rate, stop) {
        let event = generator.next_event_at(now);
        let delay_us = now.saturating_duration_since(due).as_micros() as u64;
        let sent_us = now.duration_since(start).as_micros() as u64;
        let opaque = delivery::opaque(sent_us, event.device);
        let random_key: [u8; 16] = if config.key == KeyMode::Random { rand::random() } else { [0; 16] };
        let key: Option<&[u8]> = match config.key {
            KeyMode::Device => Some(event.device_key),
            KeyMode::None => None,
            KeyMode::Random => Some(&random_key),
        };
        let sent = loop {
            match topic.send(event.payload, key, opaque) {
                Ok(()) => break true,
                // The client's queue is full: the broker is behind. Waiting shows up as
                // publish delay, which is the point.
                Err(RDKafkaErrorCode::QueueFull) => {
                    if stop.load(Ordering::Relaxed) {
                        hand_over(&mut pending);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(code) => {
                    producer.context().deliveries().errors.record(&KafkaError::MessageProduction(code));
                    break false;
                }
            }
        };
        if sent {
            pending.push(delay_us.max(1));
        }
        if pending.len() >= DELAY_BATCH || now.duration_since(handed_over) >= DELAY_HAND_OVER_EVERY {
            hand_over(&mut pending);
            handed_over = now;
        }
    }
    hand_over(&mut pending);
}

/// One step in progress: when it started and its acknowledged count every tenth of a
/// second, so that its rate is measured after its settling share however long it runs
/// (a ramp's steps have a length; a driver closes a search's when it chooses).
struct StepTally {
    started: Instant,
    started_ms: u64,
    errors: u64,
    /// (when, records acknowledged by then, their bytes)
    marks: Vec<(Instant, u64, u64)>,
}

impl StepTally {
    const MARK_EVERY: Duration = Duration::from_millis(100);

    fn new(now: Instant, start: Instant, started_at_ms: u64, (acked, bytes): (u64, u64), errors: u64) -> StepTally {
        let started_ms = started_at_ms + now.duration_since(start).as_millis() as u64;
        StepTally { started: now, started_ms, errors, marks: vec![(now, acked, bytes)] }
    }

    fn mark(&mut self, now: Instant, (acked, bytes): (u64, u64)) {
        if self.marks.last().is_none_or(|(at, _, _)| now.duration_since(*at) >= Self::MARK_EVERY) {
            self.marks.push((now, acked, bytes));
        }
    }

    /// The step, ending `now` with `acked` and `errors` so far. A search's step (held
    /// for whatever its driver chose, often right after an overloaded one) is measured
    /// after its settling share; a ramp's over all of it, as seed 000's ramp was — the
    /// settled part counts for the consumers either way (`measured_from_ms`).
    fn close(&self, now: Instant, (acked, bytes): (u64, u64), errors: u64, target: u64, whole: bool) -> Step {
        let settled = self.started + now.duration_since(self.started).mul_f64(super::report::SETTLE_SHARE);
        let settled_mark =
            self.marks.iter().copied().find(|(at, _, _)| *at >= settled).unwrap_or(*self.marks.last().expect("a mark"));
        let (counted_from, counted_acked, counted_bytes) = if whole { self.marks[0] } else { settled_mark };
        let counted_for = now.duration_since(counted_from);
        let achieved = (acked - counted_acked) as f64 / counted_for.as_secs_f64().max(1e-3);
        let unix_ms = |at: Instant| self.started_ms + at.duration_since(self.started).as_millis() as u64;
        Step {
            target_rate: target,
            achieved_rate: achieved,
            mb_per_sec: crate::units::mb_per_sec(bytes - counted_bytes, counted_for.max(Duration::from_millis(1))),
            errors: errors - self.errors,
            sustained: super::report::kept_up(achieved, target as f64),
            started_ms: self.started_ms,
            measured_from_ms: unix_ms(settled_mark.0),
            ended_ms: unix_ms(now),
            ..Step::default()
        }
    }
}

/// Reports intervals and steps (a ramp's, or those a driver asks for through
/// `control.steps_wanted`); returns why the run ended early, if it did.
#[allow(clippy::too_many_arguments)]
fn control_loop(
    config: &ProduceConfig,
    control: &RunControl,
    producer: &ThreadedProducer<Context>,
    delays: &[Arc<Mutex<WorkerDelays>>],
    targets: &[u64],
    step_length: Duration,
    start: Instant,
    steps: &mut Vec<Step>,
    report: &mut ProduceReport,
    on_interval: &mut dyn FnMut(&ProduceInterval),
) -> Result<Option<String>, ProduceError> {
    let ramp = matches!(config.rate, RateSpec::Ramp(_));
    let mut step_index = 0;
    let mut step = StepTally::new(start, start, report.started_at_ms, (0, 0), 0);
    let mut next_report = start + config.interval;
    let mut interval_start = start;
    let (mut interval_acked, mut interval_bytes, mut interval_sent, mut interval_errors) = (0u64, 0u64, 0u64, 0u64);
    let mut misses_in_a_row = 0;
    let (mut live_at, mut live_acked) = (start, 0u64);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        if control.cancel.is_cancelled() {
            return Ok(Some("stopped on request".into()));
        }
        if let Some(refusal) = producer.context().brokers.refusal() {
            return Err(ProduceError::Refused(refusal));
        }
        // A ramp's step ends after its length; a fixed-rate run after its time.
        let step_over = ramp && now >= step.started + step_length;
        let run_over = !ramp && now >= start + step_length;
        // `/status` shows the run twice a second, whatever the reporting interval.
        if now.duration_since(live_at) >= LIVE_EVERY {
            let d = producer.context().deliveries();
            let mut live = control.live.lock().unwrap_or_else(|p| p.into_inner());
            live.sent_ok = d.acked;
            live.sent_err = d.errors.total;
            live.bytes_sent = d.acked_bytes;
            live.current_rate_mps = (d.acked - live_acked) as f64 / now.duration_since(live_at).as_secs_f64();
            live.last_error = d.errors.last_error.clone();
            (live_at, live_acked) = (now, d.acked);
        }
        step.mark(now, producer.context().deliveries().counts());
        if now >= next_report || step_over || run_over {
            let (acked, bytes, errors, latency) = {
                let mut d = producer.context().deliveries();
                let snapshot = (d.acked, d.acked_bytes, d.errors.total, d.latency_interval.clone());
                d.latency_interval.reset();
                snapshot
            };
            let sent: u64 = delays.iter().map(|d| d.lock().unwrap_or_else(|p| p.into_inner()).sent).sum();
            let secs = now.duration_since(interval_start).as_secs_f64().max(1e-9);
            let interval = ProduceInterval {
                end_secs: now.duration_since(start).as_secs_f64(),
                target_rate: control.rate.get(),
                records_sent: sent - interval_sent,
                records_acked: acked - interval_acked,
                records_per_sec: (acked - interval_acked) as f64 / secs,
                mb_per_sec: (bytes - interval_bytes) as f64 / 1e6 / secs,
                latency_avg_ms: if latency.is_empty() { 0.0 } else { latency.mean() / 1000.0 },
                latency_p99_ms: if latency.is_empty() { 0.0 } else { latency.value_at_quantile(0.99) as f64 / 1000.0 },
                latency_max_ms: latency.max() as f64 / 1000.0,
                errors: errors - interval_errors,
                ..delivery::interval_windows(producer.context())
            };
            if !latency.is_empty() {
                control.live.lock().unwrap_or_else(|p| p.into_inner()).latency_p99_ms = Some(interval.latency_p99_ms);
            }
            on_interval(&interval);
            report.intervals.push(interval);
            (interval_acked, interval_bytes, interval_sent, interval_errors) = (acked, bytes, sent, errors);
            interval_start = now;
            next_report = now + config.interval;
        }
        if run_over {
            return Ok(None);
        }
        let closing = step_over || (!ramp && control.steps_wanted.load(Ordering::SeqCst) > steps.len() as u64);
        if closing {
            let (counts, errors, latency) = {
                let mut d = producer.context().deliveries();
                let snapshot = (d.counts(), d.errors.total, d.latency_step.clone());
                d.latency_step.reset();
                snapshot
            };
            let mut delay = latency_histogram();
            for worker in delays {
                let mut worker = worker.lock().unwrap_or_else(|p| p.into_inner());
                let _ = delay.add(&worker.step);
                worker.step.reset();
            }
            let target = if ramp { targets[step_index] } else { control.rate.get() };
            let latency = LatencyMs::from_micros(&latency);
            let closed = Step {
                p50_ms: latency.p50,
                p95_ms: latency.p95,
                p99_ms: latency.p99,
                publish_delay_p99_ms: LatencyMs::from_micros(&delay).p99,
                ..step.close(now, counts, errors, target, ramp)
            };
            misses_in_a_row = if closed.sustained { 0 } else { misses_in_a_row + 1 };
            steps.push(closed);
            control.live.lock().unwrap_or_else(|p| p.into_inner()).steps = steps.clone();
            step = StepTally::new(now, start, report.started_at_ms, counts, errors);
            if !ramp {
                continue;
            }
            if config.stop_after_missed_steps > 0 && misses_in_a_row >= config.stop_after_missed_steps {
                return Ok(None);
            }
            step_index += 1;
            if step_index >= targets.len() {
                return Ok(None);
            }
            control.rate.set(targets[step_index]);
        }
    }
}
