//! `plateau diagnose`: preflight, the network matrix and disk probes, the Kafka ramp on
//! every generator at once with every agent sampling, plateau detection, evidence from
//! agents, Prometheus, JMX and plateau's own measurements, the rules, the capacity model,
//! and the findings — all in one [`Diagnosis`], saved as `evidence.json`.
//!
//! Nothing here aborts on a failed part: an unreachable agent, Prometheus or broker is
//! recorded in the preflight and in what was missing, and the run goes on with the rest.
//! Ctrl-C stops the ramp and still produces a report from what was measured.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::agent::client::AgentClient;
use crate::cancel::Cancel;
use crate::evidence::jmx::{JmxEndpoint, JmxPoller};
use crate::evidence::{Evidence, Series, measured};
use crate::kafka::{ProduceConfig, ProduceReport, ProducerSettings, Ramp, RateSpec};
use crate::model::{Capacities, Prediction, Workload};
use crate::net::matrix::MatrixCell;
use crate::net::{NetTestConfig, Target};
use crate::plateau::{self, Plateau, RampStep};
use crate::rules::{RuleSet, Verdict};
use crate::units::ByteSize;

/// The version of `evidence.json`'s layout.
pub const EVIDENCE_VERSION: u32 = 1;

/// What to diagnose, from a plan file (`probes/*.toml`) or flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnosePlan {
    /// Agents on the generator hosts.
    #[serde(default)]
    pub generators: Vec<String>,
    /// Agents on the broker hosts.
    #[serde(default)]
    pub brokers: Vec<String>,
    /// Agents on consumer hosts (sampled over the run, not probed).
    #[serde(default)]
    pub consumers: Vec<String>,
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Topic to produce to.
    pub topic: String,
    /// Create the topic with this many partitions when it does not exist.
    #[serde(default)]
    pub partitions: Option<u32>,
    /// Replication factor (for creating the topic and for the model).
    #[serde(default)]
    pub replication_factor: Option<u32>,
    /// The ramp, `START:STEP:EVERY_S:MAX` over all generators (seed 000's by default).
    #[serde(default = "default_ramp")]
    pub ramp: String,
    /// Simulated devices per generator.
    #[serde(default = "default_devices")]
    pub devices: u64,
    /// Pad events to this many bytes (0: unpadded).
    #[serde(default)]
    pub size: u64,
    /// Producer threads per generator.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Producer tuning (seed 000's by default).
    #[serde(default)]
    pub producer: ProducerSettings,
    /// Prometheus to query over the run.
    #[serde(default)]
    pub prometheus: Option<String>,
    /// JMX endpoints of the brokers (jmx_exporter URLs, or `jolokia+URL`).
    #[serde(default)]
    pub jmx: Vec<String>,
    /// Skip the disk probes (for production clusters).
    #[serde(default)]
    pub skip_disk: bool,
    /// Directory the disk probe writes in on each broker.
    #[serde(default = "default_disk_path")]
    pub disk_path: String,
    /// Bytes the disk probe appends.
    #[serde(default = "default_disk_size")]
    pub disk_size: u64,
    /// Seconds per network test.
    #[serde(default = "default_net_time")]
    pub net_time: u32,
    /// Skip the network matrix.
    #[serde(default)]
    pub skip_net: bool,
}

/// Seed 000's ramp: from 20,000 msg/s in steps every 10 s to 200,000.
pub const DEFAULT_RAMP: &str = "20000:20000:10:200000";

fn default_ramp() -> String {
    DEFAULT_RAMP.into()
}
fn default_devices() -> u64 {
    10_000
}
fn default_workers() -> usize {
    2
}
/// Where the disk probe writes on a broker host whose agent has no `--log-dir`: on a disk
/// on Debian, where `/tmp` is memory.
const FALLBACK_DISK_PATH: &str = "/var/tmp";

/// Empty: each broker agent's `--log-dir`, else [`FALLBACK_DISK_PATH`].
fn default_disk_path() -> String {
    String::new()
}
fn default_disk_size() -> u64 {
    64 << 20
}
fn default_net_time() -> u32 {
    3
}

impl DiagnosePlan {
    /// A plan with the defaults for everything but where to produce and the ramp.
    pub fn new(bootstrap: String, topic: String, ramp: String) -> DiagnosePlan {
        DiagnosePlan {
            generators: Vec::new(),
            brokers: Vec::new(),
            consumers: Vec::new(),
            bootstrap,
            topic,
            partitions: None,
            replication_factor: None,
            ramp,
            devices: default_devices(),
            size: 0,
            workers: default_workers(),
            producer: ProducerSettings::default(),
            prometheus: None,
            jmx: Vec::new(),
            skip_disk: false,
            disk_path: default_disk_path(),
            disk_size: default_disk_size(),
            net_time: default_net_time(),
            skip_net: false,
        }
    }

    /// Reads a plan file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<DiagnosePlan> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("cannot read plan {}: {err}", path.display()))?;
        toml::from_str(&text).map_err(|err| anyhow::Error::new(PlanError(format!("plan {}: {err}", path.display()))))
    }

    /// Checks what can be checked before touching anything.
    pub fn validate(&self) -> Result<Ramp, PlanError> {
        if self.generators.is_empty() {
            return Err(PlanError("a diagnosis needs at least one generator agent (--generator URL)".into()));
        }
        for url in self.generators.iter().chain(&self.brokers).chain(&self.consumers) {
            if !matches!(url.parse::<Target>(), Ok(Target::Agent(_))) {
                return Err(PlanError(format!("'{url}' is not an agent URL; use http://HOST:PORT")));
            }
        }
        let ramp: Ramp = self.ramp.parse().map_err(PlanError)?;
        self.producer.validate().map_err(PlanError)?;
        // The generators are agents: their produce runs take only what an agent allows.
        crate::kafka::properties::check_remote_properties(self.producer.extra.iter().map(|(name, _)| name.as_str()))
            .map_err(|err| PlanError(format!("-X: {err}")))?;
        Ok(ramp)
    }
}

/// A plan that cannot run; the message says what to fix. `plateau diagnose` exits with
/// status 2 for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// One preflight check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// The disk probe on one broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskCell {
    /// The broker's agent.
    pub agent: String,
    /// Append throughput, MB/s.
    pub write_mb_per_sec: Option<f64>,
    /// fsync p99, ms.
    pub fsync_p99_ms: Option<f64>,
    /// Random 4 KiB reads per second.
    pub read_iops: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One generator's produce run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorRun {
    /// The generator's agent.
    pub agent: String,
    /// Its report.
    pub report: Option<ProduceReport>,
    /// Why it has none.
    pub error: Option<String>,
}

/// Everything a diagnosis found: the content of `evidence.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Layout version.
    pub version: u32,
    /// The command that reproduces it.
    pub command: String,
    /// The plan.
    pub plan: DiagnosePlan,
    /// Unix ms the diagnosis started.
    pub started_ms: u64,
    /// Unix ms the ramp started.
    pub ramp_started_ms: u64,
    /// Unix ms it ended.
    pub ended_ms: u64,
    /// Preflight.
    pub preflight: Vec<Check>,
    /// Network tests (indices into generators then brokers).
    pub network: Vec<MatrixCell>,
    /// The agents of the network tests, in index order.
    pub network_agents: Vec<String>,
    /// Disk probes.
    pub disks: Vec<DiskCell>,
    /// Produce runs.
    pub produce: Vec<GeneratorRun>,
    /// The ramp over all generators.
    pub ramp: Vec<RampStep>,
    /// The plateau.
    pub plateau: Plateau,
    /// The window the rules judged, Unix ms.
    pub window_ms: (u64, u64),
    /// All evidence.
    pub evidence: Evidence,
    /// The rules' verdict.
    pub verdict: Verdict,
    /// The capacity model, when capacities were measured.
    pub model: Option<Prediction>,
    /// The observed plateau in MB/s of producer ingress.
    pub observed_ingress_mbps: Option<f64>,
    /// Whether the model's ceiling matched the observed plateau within ±15 %.
    pub model_agrees: Option<bool>,
    /// Whether the run was interrupted.
    pub interrupted: bool,
}

/// Progress reporting for the terminal.
pub trait Progress {
    /// A phase started.
    fn phase(&self, name: &str);
    /// A line of news within a phase.
    fn note(&self, line: &str);
    /// Ramp progress: seconds done of seconds planned, and the current rates.
    fn ramp(&self, done: u64, total: u64, message: &str);
}

/// Progress that says nothing (for `--json` and tests).
pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _: &str) {}
    fn note(&self, _: &str) {}
    fn ramp(&self, _: u64, _: u64, _: &str) {}
}

fn now_ms() -> u64 {
    crate::sampler::raw::unix_ms_now()
}

/// Runs a diagnosis. Fails only on a plan that cannot run at all; everything else that
/// goes wrong is in the result.
pub fn run(
    plan: &DiagnosePlan,
    rules: &RuleSet,
    token: Option<&str>,
    command: &str,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> anyhow::Result<Diagnosis> {
    let ramp = plan.validate()?;
    let started_ms = now_ms();
    let client = |url: &str, timeout: Duration| AgentClient::new(url, token.map(str::to_string), timeout);
    let host = |url: &str| Target::Agent(url.to_string()).host();
    let mut preflight = Vec::new();
    let mut check = |what: String, outcome: Result<String, String>| {
        let ok = outcome.is_ok();
        let detail = outcome.unwrap_or_else(|e| e);
        progress.note(&format!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" }));
        preflight.push(Check { what, ok, detail });
        ok
    };

    progress.phase("preflight");
    let mut live_generators = Vec::new();
    let mut live_brokers = Vec::new();
    let mut live_consumers = Vec::new();
    for (role, urls, live) in [
        ("generator", &plan.generators, &mut live_generators),
        ("broker", &plan.brokers, &mut live_brokers),
        ("consumer", &plan.consumers, &mut live_consumers),
    ] {
        for url in urls {
            let status = client(url, Duration::from_secs(5)).status();
            if check(
                format!("{role} agent {url}"),
                status.map(|s| format!("{} up {:.0} s", s.hostname, s.uptime_seconds)).map_err(|e| e.to_string()),
            ) {
                live.push(url.clone());
            }
        }
    }
    // The topic's replication factor as the cluster tells it (an existing topic's is not
    // the plan's to say), else the one it was created with.
    let mut topic_rf = None;
    let partitions = match crate::kafka::admin::topic_layout(&plan.bootstrap, &plan.producer.extra, &plan.topic) {
        Ok(Some(layout)) => {
            topic_rf = Some(layout.replication_factor);
            check(
                format!("topic {}", plan.topic),
                Ok(format!(
                    "{} partitions, RF {} on {} brokers{}",
                    layout.partitions,
                    layout.replication_factor,
                    layout.brokers,
                    match layout.under_replicated {
                        0 => String::new(),
                        n => format!(", {n} under-replicated"),
                    }
                )),
            );
            Some(layout.partitions)
        }
        Ok(None) => match plan.partitions {
            Some(n) => {
                let rf = plan.replication_factor.unwrap_or(1);
                topic_rf = Some(rf);
                let created =
                    crate::kafka::admin::create_topic(&plan.bootstrap, &plan.producer.extra, &plan.topic, n, rf);
                check(
                    format!("topic {}", plan.topic),
                    created.map(|()| format!("created with {n} partitions, RF {rf}")),
                )
                .then_some(n as usize)
            }
            None => {
                check(format!("topic {}", plan.topic), Err("does not exist; pass --partitions to create it".into()));
                None
            }
        },
        Err(err) => {
            check(format!("cluster {}", plan.bootstrap), Err(err));
            None
        }
    };
    if let Some(url) = &plan.prometheus {
        let up = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .ok()
            .and_then(|c| c.get(format!("{}/-/ready", url.trim_end_matches('/'))).send().ok())
            .filter(|r| r.status().is_success());
        check(format!("prometheus {url}"), up.map(|_| "ready".to_string()).ok_or_else(|| "not reachable".to_string()));
    }

    let mut evidence = Evidence::default();
    // Capacities measured before the ramp hold for the whole run: they are stamped at its
    // end, inside the window the rules judge.
    let mut capacities: Vec<Series> = Vec::new();
    let network_agents: Vec<String> = live_generators.iter().chain(&live_brokers).cloned().collect();
    let mut network = Vec::new();
    if !plan.skip_net && !live_brokers.is_empty() && !cancel.is_cancelled() {
        progress.phase("network");
        let config = NetTestConfig { time_secs: plan.net_time, ..NetTestConfig::tcp() };
        let g = live_generators.len();
        // The pairs that matter: generators to brokers, and brokers to each other.
        let mut pairs: Vec<(usize, usize)> =
            (0..g).flat_map(|from| (g..network_agents.len()).map(move |to| (from, to))).collect();
        pairs.extend(
            (g..network_agents.len())
                .flat_map(|a| (g..network_agents.len()).filter(move |b| *b != a).map(move |b| (a, b))),
        );
        for (from, to) in pairs {
            if cancel.is_cancelled() {
                break;
            }
            let (cell, report) = crate::agent::remote::run_pair(&network_agents, from, to, &config, token);
            if let Some(report) = report {
                capacities.extend(measured::from_net(&rules.catalog, &host(&network_agents[to]), &report, 0));
            }
            progress.note(&match (&cell.bits_per_second, &cell.error) {
                (Some(bits), _) => {
                    format!("{} → {}: {:.1} Mbit/s", network_agents[from], network_agents[to], bits / 1e6)
                }
                (_, Some(err)) => format!("{} → {}: failed: {err}", network_agents[from], network_agents[to]),
                _ => String::new(),
            });
            network.push(cell);
        }
    }

    let mut disks = Vec::new();
    if !plan.skip_disk && !cancel.is_cancelled() {
        progress.phase("disks");
        for url in &live_brokers {
            // Where the broker keeps its log, as its agent knows it (`--log-dir`), unless
            // the plan names a directory.
            let path = match plan.disk_path.as_str() {
                "" => client(url, Duration::from_secs(5))
                    .status()
                    .ok()
                    .and_then(|status| status.log_dir)
                    .unwrap_or_else(|| FALLBACK_DISK_PATH.to_string()),
                path => path.to_string(),
            };
            let outcome = client(url, Duration::from_secs(330)).run_disk(&path, ByteSize(plan.disk_size));
            let cell = match outcome {
                Ok(result) => {
                    capacities.extend(measured::from_disk(&rules.catalog, &host(url), &result, 0));
                    DiskCell {
                        agent: url.clone(),
                        write_mb_per_sec: Some(result.write_mb_per_sec),
                        fsync_p99_ms: Some(result.fsync_ms.p99),
                        read_iops: Some(result.read_iops),
                        error: None,
                    }
                }
                Err(err) => DiskCell {
                    agent: url.clone(),
                    write_mb_per_sec: None,
                    fsync_p99_ms: None,
                    read_iops: None,
                    error: Some(err.to_string()),
                },
            };
            progress.note(&match (&cell.write_mb_per_sec, &cell.fsync_p99_ms, &cell.error) {
                (Some(mbps), Some(p99), _) => format!("{url}: append {mbps:.0} MB/s, fsync p99 {p99:.2} ms"),
                (_, _, error) => format!("{url}: failed: {}", error.as_deref().unwrap_or("no result")),
            });
            disks.push(cell);
        }
    }

    // The ramp, split evenly over the generators.
    progress.phase("ramp");
    let n = live_generators.len().max(1) as u64;
    let share =
        Ramp { start: (ramp.start / n).max(1), step: ramp.step / n, every: ramp.every, max: (ramp.max / n).max(1) };
    let per_generator = ProduceConfig {
        time: ramp.every * ramp.targets().len() as u32,
        events: crate::kafka::EventSpec { devices: plan.devices, size: plan.size as usize, ..Default::default() },
        workers: plan.workers,
        producer: plan.producer.clone(),
        interval: Duration::from_secs(1),
        // The generators ramp on until diagnose, judging their sum, stops them all: one
        // generator's own missed steps say nothing about the cluster.
        stop_after_missed_steps: 0,
        ..ProduceConfig::new(&plan.bootstrap, &plan.topic, RateSpec::Ramp(share))
    };
    let ramp_started_ms = now_ms();
    let mut started = Vec::new();
    if partitions.is_some() {
        for url in &live_generators {
            match client(url, Duration::from_secs(30)).start_produce(&per_generator) {
                Ok(_) => started.push(url.clone()),
                Err(err) => progress.note(&format!("{url}: could not start: {err}")),
            }
        }
    }
    let mut jmx = (!plan.jmx.is_empty())
        .then(|| JmxPoller::new(&rules.catalog, plan.jmx.iter().map(|e| JmxEndpoint::parse(e)).collect()));
    let planned = per_generator.time.as_secs();
    let ramp_clock = Instant::now();
    let mut running: Vec<String> = started.clone();
    let mut interrupted = false;
    let (mut stopping, mut plateaued) = (false, false);
    while !running.is_empty() {
        std::thread::sleep(Duration::from_secs(1));
        if let Some(poller) = jmx.as_mut() {
            poller.poll(now_ms());
        }
        if cancel.is_cancelled() && !interrupted {
            interrupted = true;
        }
        // The plateau is judged on the generators' summed steps, as the report will judge
        // it: once found, the generators stop (one generator's own misses say nothing).
        if (interrupted || plateaued) && !stopping {
            stopping = true;
            for url in &running {
                let _ = client(url, Duration::from_secs(5)).stop_produce();
            }
        }
        let mut total = 0.0;
        let mut steps = Vec::new();
        running.retain(|url| match client(url, Duration::from_secs(5)).status() {
            Ok(status) => status.probes.get("produce").is_some_and(|p| {
                total += p.stats.current_rate_mps.unwrap_or(0.0);
                steps.push(p.ramp_steps.clone());
                p.running
            }),
            // A dead agent drops out of the run; what it did is reported as missing.
            Err(_) => false,
        });
        plateaued = plateau::find_plateau(&plateau::combine_steps(&steps)).found;
        progress.ramp(
            ramp_clock.elapsed().as_secs().min(planned),
            planned,
            &format!("{total:.0} msg/s over {} generators", running.len()),
        );
    }
    let mut produce = Vec::new();
    for url in &live_generators {
        let outcome = client(url, Duration::from_secs(10)).produce_report();
        produce.push(match outcome {
            Ok(response) => GeneratorRun { agent: url.clone(), report: response.report, error: response.error },
            Err(err) => GeneratorRun { agent: url.clone(), report: None, error: Some(err.to_string()) },
        });
    }
    let ended_ms = now_ms();

    progress.phase("evidence");
    // One value per host and signal: the best measured (a link is as fast as its fastest test).
    let mut best: std::collections::BTreeMap<(String, String), Series> = Default::default();
    for series in capacities {
        let Some(&value) = series.values.first() else { continue };
        let key = (series.signal.clone(), series.instance.clone());
        if best.get(&key).and_then(|s| s.values.first()).is_none_or(|kept| value > *kept) {
            let mut stamped = Series::new(&series.signal, &series.instance, &series.unit);
            stamped.push(ended_ms, value);
            best.insert(key, stamped);
        }
    }
    evidence.series.extend(best.into_values());
    let hosts: Vec<String> = live_brokers.iter().chain(&live_consumers).cloned().collect();
    evidence.extend(agent_evidence(&rules.catalog, token, &hosts, started_ms, &live_generators, ramp_started_ms));
    if let Some(url) = &plan.prometheus {
        evidence.extend(crate::evidence::prometheus::collect(
            url,
            &rules.catalog,
            started_ms,
            ended_ms,
            Duration::from_secs(1),
        ));
    }
    if let Some(poller) = jmx {
        evidence.extend(poller.into_evidence());
    }
    let reports: Vec<&ProduceReport> = produce.iter().filter_map(|p| p.report.as_ref()).collect();
    if let Some(first) = reports.first() {
        let in_flight = plan
            .producer
            .extra
            .iter()
            .find(|(k, _)| k == "max.in.flight.requests.per.connection")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(5);
        evidence.series.extend(measured::from_produce(&rules.catalog, first, ramp_started_ms, in_flight));
    }
    if let Some(rf) = topic_rf.or(plan.replication_factor) {
        evidence.series.extend(measured::constant(&rules.catalog, "topic_replication_factor", rf as f64, ended_ms));
    }
    for run in &produce {
        if let Some(err) = &run.error {
            evidence.unavailable.push(format!("produce run on {}: {err}", run.agent));
        }
    }

    let ramp_steps = plateau::combine_steps(&reports.iter().filter_map(|r| r.steps.clone()).collect::<Vec<_>>());
    let found = plateau::find_plateau(&ramp_steps);
    let window_ms = crate::verdict::judged_window(ramp_started_ms, ramp.every.as_millis() as u64, &found, ended_ms);
    progress.phase("verdict");

    // The capacity model from measured capacities, against the observed plateau.
    let bytes_per_record =
        reports.iter().filter(|r| r.records_per_sec > 0.0).map(|r| r.mb_per_sec * 1e6 / r.records_per_sec).next();
    let observed_ingress_mbps = bytes_per_record.map(|b| found.plateau_msgs_per_sec * b / 1e6);
    let link_mbps = network
        .iter()
        .filter(|c| c.to >= live_generators.len())
        .filter_map(|c| c.bits_per_second)
        .map(|b| b / 8e6)
        .reduce(f64::min);
    let disk_mbps = disks.iter().filter_map(|d| d.write_mb_per_sec).reduce(f64::min);
    let model = observed_ingress_mbps.filter(|_| link_mbps.is_some() || disk_mbps.is_some()).map(|ingress| {
        let workload = Workload {
            ingress_mbps: ingress.max(0.001),
            replication_factor: topic_rf.or(plan.replication_factor).unwrap_or(1),
            brokers: live_brokers.len().max(1) as u32,
            realtime_mbps: 0.0,
            delayed_mbps: 0.0,
            remote_mbps: 0.0,
            tiered: false,
        };
        crate::model::predict(workload, Capacities { link_mbps, disk_mbps })
    });
    let failed_checks: Vec<String> =
        preflight.iter().filter(|c| !c.ok).map(|c| format!("{}: {}", c.what, c.detail)).collect();
    let model_check = model
        .as_ref()
        .zip(observed_ingress_mbps)
        .map(|(prediction, observed_ingress_mbps)| crate::verdict::ModelCheck { prediction, observed_ingress_mbps });
    let crate::verdict::Judgment { verdict, model_agrees } =
        crate::verdict::judge(rules, &evidence, window_ms, &found, &ramp_steps, model_check, &failed_checks);

    Ok(Diagnosis {
        version: EVIDENCE_VERSION,
        command: command.to_string(),
        plan: plan.clone(),
        started_ms,
        ramp_started_ms,
        ended_ms,
        preflight,
        network,
        network_agents,
        disks,
        produce,
        ramp: ramp_steps,
        plateau: found,
        window_ms,
        evidence,
        verdict,
        model,
        observed_ingress_mbps,
        model_agrees,
        interrupted,
    })
}

/// Evidence from agents: the samples of broker and consumer hosts since `hosts_since_ms`,
/// per host, and the generators' CPU since `generators_since_ms` as one cluster signal
/// (the busiest generator each second). An agent that does not answer is recorded as
/// unavailable evidence.
pub fn agent_evidence(
    catalog: &crate::signals::SignalCatalog,
    token: Option<&str>,
    hosts: &[String],
    hosts_since_ms: u64,
    generators: &[String],
    generators_since_ms: u64,
) -> Evidence {
    let client = |url: &str| AgentClient::new(url, token.map(str::to_string), Duration::from_secs(10));
    let mut evidence = Evidence::default();
    for url in hosts {
        match client(url).samples(hosts_since_ms) {
            Ok(samples) => evidence.series.extend(crate::evidence::agent::from_samples(
                catalog,
                &Target::Agent(url.clone()).host(),
                &samples,
            )),
            Err(err) => evidence.unavailable.push(format!("samples of agent {url}: {err}")),
        }
    }
    let mut generator_cpu = Series::new("generator_cpu_busy", "cluster", "ratio");
    let mut buckets: std::collections::BTreeMap<u64, f64> = Default::default();
    for url in generators {
        match client(url).samples(generators_since_ms) {
            Ok(samples) => {
                for sample in samples {
                    let bucket = buckets.entry(sample.ts_ms / 1000 * 1000).or_insert(0.0);
                    *bucket = bucket.max(generator_busy(&sample));
                }
            }
            Err(err) => evidence.unavailable.push(format!("samples of generator agent {url}: {err}")),
        }
    }
    for (ts, busy) in buckets {
        generator_cpu.push(ts, busy);
    }
    if !generator_cpu.values.is_empty() {
        evidence.series.push(generator_cpu);
    }
    evidence
}

/// How busy a generator host was: the share of its CPU quota used when its agent watches a
/// workload with a quota (a container, a pod), else the host's CPU busy share.
fn generator_busy(sample: &crate::sampler::sample::Sample) -> f64 {
    let watched = sample.watch.as_ref().and_then(|w| Some((w.cpu_seconds_per_sec?, w.cpu_quota_cores?)));
    match watched {
        Some((used, quota)) if quota > 0.0 => (used / quota).min(1.0),
        _ => sample.cpu.total.busy,
    }
}

/// Where a diagnosis writes its report by default: `./plateau-report-<unix seconds>`.
pub fn default_out_dir() -> PathBuf {
    PathBuf::from(format!("plateau-report-{}", now_ms() / 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str) -> DiagnosePlan {
        DiagnosePlan::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("probes").join(name)).unwrap()
    }

    #[test]
    fn every_example_plan_loads_and_validates() {
        for entry in std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("probes")).unwrap() {
            let path = entry.unwrap().path();
            let plan = DiagnosePlan::load(&path).unwrap();
            plan.validate().unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        }
    }

    #[test]
    fn the_seed_plan_is_seed_000s_testbench() {
        let plan = plan("seed-openstack.toml");
        assert_eq!((plan.generators.len(), plan.brokers.len()), (2, 3));
        assert_eq!((plan.partitions, plan.replication_factor), (Some(12), Some(3)));
        assert_eq!(plan.producer, ProducerSettings::default());
        assert_eq!(
            (plan.producer.acks.as_str(), plan.producer.linger_ms, plan.producer.batch_messages),
            ("all", 5, 10_000)
        );
        assert_eq!(plan.devices, 10_000);
        let ramp = plan.validate().unwrap();
        assert_eq!((ramp.start, ramp.max, ramp.every.as_secs()), (20_000, 200_000, 10));
    }

    #[test]
    fn a_misspelt_plan_key_is_named() {
        let err = toml::from_str::<DiagnosePlan>("bootstrap = \"b:9092\"\ntopic = \"t\"\nparitions = 3\n").unwrap_err();
        assert!(err.to_string().contains("paritions"), "{err}");
        let err = toml::from_str::<DiagnosePlan>("bootstrap = \"b:9092\"\ntopic = \"t\"\n[producer]\nlinger = 5\n")
            .unwrap_err();
        assert!(err.to_string().contains("linger"), "{err}");
    }
}
