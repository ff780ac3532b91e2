//! The load: the rate search (the default) or seed 000's rate ramp, split over every live
//! generator, driven through the agents, with JMX polled beside it. On a ramp, diagnose
//! judges the generators' summed steps each second with the same `plateau::find_plateau`
//! the report uses and stops them all at the knee (one generator's own missed steps say
//! nothing about the cluster). In a search, each generator runs at a fixed rate that
//! diagnose sets; at the end of each held step it closes the step on every generator,
//! judges their sum and sets the next target (`search::RateSearch`) until the search is
//! over. Either stops on Ctrl-C, or when the last generator ends. A dead agent drops out;
//! what it did is reported as missing.
//! With consumer agents, one consumer group runs on them from before the first record to
//! after the last, and a step's throughput is the pipeline's (`plateau::with_consumers`):
//! a knee where the producers keep up but the consumers fall behind stops the ramp too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::plan::Load;
use super::preflight::Preflight;
use super::search::{self, RateSearch};
use super::{Agents, ConsumerRun, DiagnosePlan, GeneratorRun, Progress, Run, now_ms};
use crate::agent::client::AgentClient;
use crate::evidence::jmx::{JmxEndpoint, JmxPoller};
use crate::kafka::consume::ConsumeInterval;
use crate::kafka::{ProduceConfig, Ramp, RateSpec};
use crate::plateau;
use crate::signals::SignalCatalog;

/// What the ramp phase produced.
pub struct Ramped {
    /// Each generator's run.
    pub produce: Vec<GeneratorRun>,
    /// Each consumer agent's run.
    pub consume: Vec<ConsumerRun>,
    /// Unix ms the ramp started and ended.
    pub started_ms: u64,
    /// Unix ms the last generator was seen ending.
    pub ended_ms: u64,
    /// Whether Ctrl-C cut it short.
    pub interrupted: bool,
    /// Whether each step kept up as the load's stop rule judged it while it ran (the
    /// pipeline's, with the consumers' readings of then): the knee that stopped the load
    /// is the one the verdict judges.
    pub decided: Vec<bool>,
    /// What JMX said over the ramp.
    pub jmx: Option<JmxPoller>,
}

/// The produce run each generator is asked for: its share of the load (a search's first
/// target, held until diagnose closes the step and sets the next).
pub fn per_generator(plan: &DiagnosePlan, load: &Load, generators: usize) -> ProduceConfig {
    let n = generators.max(1) as u64;
    let (rate, time) = match load {
        Load::Ramp(ramp) => {
            let share = Ramp {
                start: (ramp.start / n).max(1),
                step: ramp.step / n,
                every: ramp.every,
                max: (ramp.max / n).max(1),
            };
            (RateSpec::Ramp(share), ramp.every * ramp.targets().len() as u32)
        }
        // Long enough for the longest search; diagnose stops it when the search is over.
        Load::Search(spec) => (RateSpec::Fixed((spec.start / n).max(1)), spec.hold * (search::MAX_STEPS as u32 + 2)),
    };
    generator_config(plan, rate, time)
}

/// A generator's produce run of the plan's events and producer settings at `rate` for
/// `time` (a diagnosis's load, a sweep's backlog), reporting each second; it never stops
/// by itself at a plateau (diagnose judges the generators' sum).
pub fn generator_config(plan: &DiagnosePlan, rate: RateSpec, time: Duration) -> ProduceConfig {
    ProduceConfig {
        time,
        events: crate::kafka::EventSpec { devices: plan.devices, size: plan.size as usize, ..Default::default() },
        workers: plan.workers,
        producer: plan.producer.clone(),
        interval: Duration::from_secs(1),
        stop_after_missed_steps: 0,
        ..ProduceConfig::new(&plan.bootstrap, &plan.topic, rate)
    }
}

/// How the steps move on: a ramp steps itself; a search is stepped from here.
enum Driver {
    Ramp,
    Search { search: RateSearch, hold: Duration, step_started: Instant },
}

/// Runs the load on `live`'s generators (none when the topic is missing: then nothing
/// runs and each generator's run says so), with its consumers reading along.
pub fn run(ctx: &Run<'_>, load: &Load, live: &Preflight) -> Ramped {
    let (plan, agents, progress) = (ctx.plan, &ctx.agents, ctx.progress);
    let topic_ready = live.partitions.is_some();
    let config = per_generator(plan, load, live.generators.len());
    // One client per generator, reused every second; a silent agent costs 5 s at most.
    let clients: Vec<AgentClient> =
        live.generators.iter().map(|url| agents.client(url, Duration::from_secs(5))).collect();
    let started_ms = now_ms();
    let consumer_clients: Vec<AgentClient> =
        live.consumers.iter().map(|url| agents.client(url, Duration::from_secs(5))).collect();
    let consuming =
        if topic_ready { start_consumers(plan, &consumer_clients, started_ms, agents, progress) } else { Vec::new() };
    let running = if topic_ready { start_generators(ctx, &config, &clients) } else { Vec::new() };
    // JMX is polled every second on a thread of its own: a slow broker's answer must not
    // delay a search's step or the ramp's judgment.
    let polling = Arc::new(AtomicBool::new(true));
    let jmx = (!plan.jmx.is_empty()).then(|| poll_jmx(plan, &ctx.rules.catalog, Arc::clone(&polling)));
    let planned = match load {
        Load::Ramp(_) => config.time.as_secs(),
        Load::Search(spec) => spec.hold.as_secs() * RateSearch::new(*spec).planned_steps() as u64,
    };
    let (interrupted, decided, stopped_ms) = drive(ctx, load, running, &consuming, planned);
    // The load is over: the span the rules judge ends when it was stopped — not after the
    // generators drained their queues (seconds of a producer's flush are not the load), nor
    // after the seconds spent below collecting reports (idle samples would dilute every
    // average of the window).
    let ended_ms = stopped_ms.unwrap_or_else(now_ms);
    polling.store(false, Ordering::Relaxed);
    let jmx = jmx.and_then(|poller| poller.join().ok());
    let produce: Vec<GeneratorRun> = live
        .generators
        .iter()
        .map(|url| agents.client(url, Duration::from_secs(10)))
        .map(|client| match client.produce_report() {
            Ok(response) => {
                GeneratorRun { agent: client.url().to_string(), report: response.report, error: response.error }
            }
            Err(err) => GeneratorRun { agent: client.url().to_string(), report: None, error: Some(err.to_string()) },
        })
        .collect();
    // The consumers read on until they have what the producers had acknowledged (for a
    // while at most), so that every event is counted; then they stop.
    let acked: u64 = produce.iter().filter_map(|g| g.report.as_ref()).map(|r| r.records_acked).sum();
    drain(&consuming, acked, progress);
    for client in &consuming {
        let _ = client.stop_consume();
    }
    let consume = consumer_reports(&consumer_clients, &consuming, agents);
    Ramped { produce, consume, started_ms, ended_ms, interrupted, decided, jmx }
}

/// How long the consumers may take after the load to read what the producers had
/// acknowledged before they are stopped (a group far behind stops with its lag unread).
const DRAIN_LIMIT: Duration = Duration::from_secs(15);

/// Waits until the consumers have read `acked` records between them, or [`DRAIN_LIMIT`].
fn drain(consuming: &[&AgentClient], acked: u64, progress: &dyn Progress) {
    if consuming.is_empty() || acked == 0 {
        return;
    }
    let deadline = Instant::now() + DRAIN_LIMIT;
    loop {
        let consumed: u64 =
            consuming.iter().filter_map(|client| client.status().ok()?.probes.get("consume")?.stats.consumed).sum();
        if consumed >= acked {
            return;
        }
        if Instant::now() >= deadline {
            progress.note(&format!(
                "the consumers had read {consumed} of the {acked} records acknowledged {} s after the load; they stop with the rest unread",
                DRAIN_LIMIT.as_secs()
            ));
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts `config` on every generator, each simulating devices of its own (so that the
/// consumers can validate every device's sequence); returns those that started.
fn start_generators<'c>(ctx: &Run<'_>, config: &ProduceConfig, clients: &'c [AgentClient]) -> Vec<&'c AgentClient> {
    let mut running = Vec::new();
    for (k, client) in clients.iter().enumerate() {
        let mut config = config.clone();
        config.events.first_device = k as u64 * ctx.plan.devices;
        // Starting waits for the run's producer to meet the cluster.
        match ctx.agents.client(client.url(), Duration::from_secs(30)).start_produce(&config) {
            Ok(_) => running.push(client),
            Err(err) => ctx.progress.note(&format!("{}: could not start: {err}", client.url())),
        }
    }
    running
}

/// Polls the plan's JMX endpoints once a second, on absolute deadlines, until `polling`
/// is cleared; the thread returns the poller with what it read.
fn poll_jmx(
    plan: &DiagnosePlan,
    catalog: &SignalCatalog,
    polling: Arc<AtomicBool>,
) -> std::thread::JoinHandle<JmxPoller> {
    let mut poller = JmxPoller::new(catalog, plan.jmx.iter().map(|e| JmxEndpoint::parse(e)).collect());
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut tick = 0u32;
        while polling.load(Ordering::Relaxed) {
            tick += 1;
            std::thread::sleep((start + Duration::from_secs(tick.into())).saturating_duration_since(Instant::now()));
            poller.poll(now_ms());
        }
        poller
    })
}

/// Drives the load until the last generator ends: each second, reads the generators and
/// consumers and judges the pipeline's steps (a ramp stops them all at its knee); a
/// search's held step is closed on every generator at once and the next target set.
/// Returns whether Ctrl-C cut it short, whether each step kept up as judged then, and
/// when (Unix ms) the generators were told to stop, if they were.
fn drive(
    ctx: &Run<'_>,
    load: &Load,
    mut running: Vec<&AgentClient>,
    consuming: &[&AgentClient],
    planned: u64,
) -> (bool, Vec<bool>, Option<u64>) {
    let progress = ctx.progress;
    let mut driver = match load {
        Load::Ramp(_) => Driver::Ramp,
        Load::Search(spec) => {
            Driver::Search { search: RateSearch::new(*spec), hold: spec.hold, step_started: Instant::now() }
        }
    };
    let mut live_consumed: Vec<LiveConsumer> = consuming.iter().map(|_| LiveConsumer::default()).collect();
    let clock = Instant::now();
    let (mut interrupted, mut stopping, mut over) = (false, false, false);
    let mut decided: Vec<bool> = Vec::new();
    let mut stopped_ms = None;
    let mut next_tick = clock + Duration::from_secs(1);
    while !running.is_empty() {
        // Paced against absolute deadlines: a slow poll does not push the next one back,
        // and a search's step ends on time, not at the next second's poll.
        let step_due = match &driver {
            Driver::Search { hold, step_started, .. } if !stopping => Some(*step_started + *hold),
            _ => None,
        };
        let wake = step_due.map_or(next_tick, |due| due.min(next_tick));
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        let now = Instant::now();
        let ticking = now >= next_tick;
        while next_tick <= now {
            next_tick += Duration::from_secs(1);
        }
        interrupted |= ctx.cancel.is_cancelled();
        // A search's held step ends: closed on every generator at once (a generator whose
        // step cannot be closed drops out), then judged with the others below.
        let mut closed = false;
        if let (Driver::Search { step_started, .. }, Some(due)) = (&mut driver, step_due)
            && now >= due
            && !interrupted
        {
            *step_started = Instant::now();
            running.retain(|client| match client.close_produce_step() {
                Ok(_) => true,
                Err(err) => {
                    progress.note(&format!("{}: its step could not be closed ({err}); it drops out", client.url()));
                    let _ = client.stop_produce();
                    false
                }
            });
            closed = true;
        }
        if !ticking && !closed && !interrupted {
            continue;
        }
        let (total, pipeline, consumed) = read_pipeline(&mut running, consuming, &mut live_consumed);
        // Once the stop rule has acted, what it saw is kept: the steps' later readings
        // (a stopped generator's, the consumers' last) must not move the knee.
        if !stopping && pipeline.len() >= decided.len() {
            decided = pipeline.iter().map(|step| step.sustained).collect();
        }
        match &mut driver {
            Driver::Ramp => over = plateau::find_plateau(&pipeline).found,
            Driver::Search { search, step_started, .. } if closed && !running.is_empty() => {
                match search.next(&pipeline) {
                    Some(target) => {
                        set_target(target, &running, progress);
                        *step_started = Instant::now();
                    }
                    None => over = true,
                }
            }
            Driver::Search { .. } => {}
        }
        if (interrupted || over) && !stopping {
            stopping = true;
            stopped_ms = Some(now_ms());
            for client in &running {
                let _ = client.stop_produce();
            }
        }
        progress.ramp(
            clock.elapsed().as_secs().min(planned),
            planned,
            &format!("{total:.0} msg/s over {} generators{consumed}", running.len()),
        );
    }
    (interrupted, decided, stopped_ms)
}

/// Reads every running generator (one that stopped or does not answer drops out) and
/// consumer: the generators' summed rate, the pipeline's steps so far (the producers'
/// combined with what the consumers took) and the consumers' rate for the progress line.
fn read_pipeline(
    running: &mut Vec<&AgentClient>,
    consuming: &[&AgentClient],
    live_consumed: &mut [LiveConsumer],
) -> (f64, Vec<plateau::RampStep>, String) {
    let mut total = 0.0;
    let mut steps = Vec::new();
    running.retain(|client| match client.status() {
        Ok(status) => status.probes.get("produce").is_some_and(|p| {
            total += p.stats.current_rate_mps.unwrap_or(0.0);
            steps.push(p.ramp_steps.clone());
            p.running
        }),
        Err(_) => false,
    });
    let mut pipeline = plateau::combine_steps(&steps);
    if consuming.is_empty() {
        return (total, pipeline, String::new());
    }
    for (client, live) in consuming.iter().zip(live_consumed.iter_mut()) {
        live.read(client);
    }
    let readings: Vec<Vec<ConsumeInterval>> = live_consumed.iter().map(|l| l.intervals.clone()).collect();
    let per_step = plateau::consumed_steps(&readings, &pipeline);
    pipeline = plateau::with_consumers(&pipeline, &per_step);
    let rate: f64 = live_consumed.iter().filter_map(|l| l.intervals.last()).map(|i| i.records_per_sec).sum();
    (total, pipeline, format!(", consumers {rate:.0} msg/s"))
}

/// Each consumer agent's report: waited for where its consumers ran, else why they did
/// not.
fn consumer_reports(clients: &[AgentClient], consuming: &[&AgentClient], agents: &Agents<'_>) -> Vec<ConsumerRun> {
    clients
        .iter()
        .map(|client| {
            let started = consuming.iter().any(|c| c.url() == client.url());
            let outcome = if started {
                agents.client(client.url(), Duration::from_secs(10)).wait_consume_report(Duration::from_secs(30))
            } else {
                client.consume_report().and_then(|r| match r.error {
                    Some(error) => Err(crate::agent::client::AgentError::Refused {
                        url: client.url().to_string(),
                        status: 502,
                        message: error,
                    }),
                    None => Err(crate::agent::client::AgentError::Refused {
                        url: client.url().to_string(),
                        status: 409,
                        message: "its consumers did not start (the topic is not ready)".into(),
                    }),
                })
            };
            match outcome {
                Ok(report) => ConsumerRun { agent: client.url().to_string(), report: Some(report), error: None },
                Err(err) => ConsumerRun { agent: client.url().to_string(), report: None, error: Some(err.to_string()) },
            }
        })
        .collect()
}

/// Splits a search's next `target` (msg/s over all generators) evenly over `running`.
fn set_target(target: u64, running: &[&AgentClient], progress: &dyn Progress) {
    let share = (target / running.len().max(1) as u64).max(1);
    for client in running {
        if let Err(err) = client.set_produce_rate(share) {
            progress.note(&format!("{}: could not set its rate to {share} msg/s: {err}", client.url()));
        }
    }
}

/// Starts the consumer group on every consumer agent and waits until each has joined
/// (its start offsets committed: it reads everything produced from then on). Returns the
/// agents whose consumers run.
fn start_consumers<'c>(
    plan: &DiagnosePlan,
    clients: &'c [AgentClient],
    started_ms: u64,
    agents: &Agents<'_>,
    progress: &dyn Progress,
) -> Vec<&'c AgentClient> {
    let config = plan.consume_config(started_ms);
    let mut consuming = Vec::new();
    for client in clients {
        match agents.client(client.url(), Duration::from_secs(30)).start_consume(&config) {
            Ok(_) => consuming.push(client),
            Err(err) => progress.note(&format!("{}: consumers could not start: {err}", client.url())),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    consuming.retain(|client| {
        loop {
            let consume = client.status().ok().and_then(|status| status.probes.get("consume").cloned());
            match consume {
                Some(run) if run.stats.started_at.is_some() && run.running => break true,
                Some(run) if !run.running => {
                    let why = run.stats.last_error.unwrap_or_else(|| "it ended".into());
                    progress.note(&format!("{}: consumers could not start: {why}", client.url()));
                    break false;
                }
                _ if Instant::now() >= deadline => {
                    progress.note(&format!("{}: consumers did not join within 40 s", client.url()));
                    let _ = client.stop_consume();
                    break false;
                }
                _ => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    });
    consuming
}

/// One consumer agent's progress as the ramp loop reads it: each new count the consume
/// run published, stamped when it was counted (not when it was read: a count a second old
/// would shift the consumers' steps against the producers'), in the consume run's own
/// interval shape, so that live and final judgments cut steps alike.
#[derive(Default)]
struct LiveConsumer {
    last: Option<(u64, u64)>,
    intervals: Vec<ConsumeInterval>,
}

impl LiveConsumer {
    fn read(&mut self, client: &AgentClient) {
        let Some(run) = client.status().ok().and_then(|status| status.probes.get("consume").cloned()) else { return };
        let (Some(consumed), Some(at_ms)) = (run.stats.consumed, run.stats.consumed_at_ms) else { return };
        if self.last.is_some_and(|(_, last_at)| at_ms <= last_at) {
            return;
        }
        let origin = self.intervals.first().map_or(at_ms, |first| first.at_ms);
        let end_secs = at_ms.saturating_sub(origin) as f64 / 1000.0;
        if let Some((last, _)) = self.last {
            let secs = end_secs - self.intervals.last().map_or(0.0, |i| i.end_secs);
            let records = consumed.saturating_sub(last);
            self.intervals.push(ConsumeInterval {
                at_ms,
                end_secs,
                records,
                records_per_sec: records as f64 / secs.max(1e-3),
                e2e_avg_ms: run.stats.e2e_avg_ms.unwrap_or(0.0),
                e2e_p99_ms: run.stats.e2e_p99_ms.unwrap_or(0.0),
                lag: run.stats.lag,
                ..ConsumeInterval::default()
            });
        } else {
            // The first reading is the origin the next one's records count from.
            self.intervals.push(ConsumeInterval { at_ms, end_secs, ..ConsumeInterval::default() });
        }
        self.last = Some((consumed, at_ms));
    }
}
