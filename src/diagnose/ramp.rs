//! The ramp: seed 000's rate ramp split over every live generator, driven through the
//! agents, with JMX polled beside it. Diagnose judges the generators' summed steps each
//! second with the same `plateau::find_plateau` the report uses and stops them all at the
//! knee (one generator's own missed steps say nothing about the cluster), on Ctrl-C, or
//! when the last one ends. A dead agent drops out; what it did is reported as missing.

use std::time::{Duration, Instant};

use super::{Agents, DiagnosePlan, GeneratorRun, Progress, now_ms};
use crate::agent::client::AgentClient;
use crate::cancel::Cancel;
use crate::evidence::jmx::{JmxEndpoint, JmxPoller};
use crate::kafka::{ProduceConfig, Ramp, RateSpec};
use crate::plateau;
use crate::signals::SignalCatalog;

/// What the ramp phase produced.
pub struct Ramped {
    /// Each generator's run.
    pub produce: Vec<GeneratorRun>,
    /// Unix ms the ramp started and ended.
    pub started_ms: u64,
    /// Unix ms the last generator was seen ending.
    pub ended_ms: u64,
    /// Whether Ctrl-C cut it short.
    pub interrupted: bool,
    /// What JMX said over the ramp.
    pub jmx: Option<JmxPoller>,
}

/// The produce run each generator is asked for: its share of `ramp`.
pub fn per_generator(plan: &DiagnosePlan, ramp: &Ramp, generators: usize) -> ProduceConfig {
    let n = generators.max(1) as u64;
    let share =
        Ramp { start: (ramp.start / n).max(1), step: ramp.step / n, every: ramp.every, max: (ramp.max / n).max(1) };
    ProduceConfig {
        time: ramp.every * ramp.targets().len() as u32,
        events: crate::kafka::EventSpec { devices: plan.devices, size: plan.size as usize, ..Default::default() },
        workers: plan.workers,
        producer: plan.producer.clone(),
        interval: Duration::from_secs(1),
        // The generators ramp on until diagnose, judging their sum, stops them all.
        stop_after_missed_steps: 0,
        ..ProduceConfig::new(&plan.bootstrap, &plan.topic, RateSpec::Ramp(share))
    }
}

/// Runs the ramp on `generators` (none when the topic is missing: then nothing runs and
/// each generator's run says so).
#[allow(clippy::too_many_arguments)]
pub fn run(
    plan: &DiagnosePlan,
    ramp: &Ramp,
    generators: &[String],
    topic_ready: bool,
    agents: &Agents<'_>,
    catalog: &SignalCatalog,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Ramped {
    let config = per_generator(plan, ramp, generators.len());
    // One client per generator, reused every second; a silent agent costs 5 s at most.
    let clients: Vec<AgentClient> = generators.iter().map(|url| agents.client(url, Duration::from_secs(5))).collect();
    let started_ms = now_ms();
    let mut running: Vec<&AgentClient> = Vec::new();
    if topic_ready {
        for client in &clients {
            // Starting waits for the run's producer to meet the cluster.
            match agents.client(client.url(), Duration::from_secs(30)).start_produce(&config) {
                Ok(_) => running.push(client),
                Err(err) => progress.note(&format!("{}: could not start: {err}", client.url())),
            }
        }
    }
    let mut jmx = (!plan.jmx.is_empty())
        .then(|| JmxPoller::new(catalog, plan.jmx.iter().map(|e| JmxEndpoint::parse(e)).collect()));
    let planned = config.time.as_secs();
    let clock = Instant::now();
    let (mut interrupted, mut stopping, mut plateaued) = (false, false, false);
    let mut tick = 0u32;
    while !running.is_empty() {
        // Paced against absolute deadlines: a slow poll does not push the next one back.
        tick += 1;
        std::thread::sleep((clock + Duration::from_secs(tick.into())).saturating_duration_since(Instant::now()));
        if let Some(poller) = jmx.as_mut() {
            poller.poll(now_ms());
        }
        interrupted |= cancel.is_cancelled();
        if (interrupted || plateaued) && !stopping {
            stopping = true;
            for client in &running {
                let _ = client.stop_produce();
            }
        }
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
        plateaued = plateau::find_plateau(&plateau::combine_steps(&steps)).found;
        progress.ramp(
            clock.elapsed().as_secs().min(planned),
            planned,
            &format!("{total:.0} msg/s over {} generators", running.len()),
        );
    }
    let produce = generators
        .iter()
        .map(|url| agents.client(url, Duration::from_secs(10)))
        .map(|client| match client.produce_report() {
            Ok(response) => {
                GeneratorRun { agent: client.url().to_string(), report: response.report, error: response.error }
            }
            Err(err) => GeneratorRun { agent: client.url().to_string(), report: None, error: Some(err.to_string()) },
        })
        .collect();
    Ramped { produce, started_ms, ended_ms: now_ms(), interrupted, jmx }
}
