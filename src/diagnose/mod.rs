//! `plateau diagnose`: preflight, the network matrix and disk probes, the Kafka ramp on
//! every generator at once with every agent sampling, plateau detection, evidence from
//! agents, Prometheus, JMX and plateau's own measurements, the rules, the capacity model,
//! and the findings — all in one [`Diagnosis`], saved as `evidence.json`.
//!
//! Nothing here aborts on a failed part: an unreachable agent, Prometheus or broker is
//! recorded in the preflight and in what was missing, and the run goes on with the rest.
//! Ctrl-C stops the ramp and still produces a report from what was measured.

mod diagnosis;
mod evidence;
pub mod init;
mod judgment;
mod plan;
mod preflight;
mod probes;
mod ramp;
mod search;
pub mod sweep;

use std::path::PathBuf;
use std::time::Duration;

pub use diagnosis::{Check, ConsumerRun, Diagnosis, DiskCell, EVIDENCE_VERSION, GeneratorRun, Judgment};
pub use plan::{DEFAULT_RAMP, DEFAULT_SEARCH, DiagnosePlan, Load, PlanError};
pub use search::{RateSearch, SearchSpec};

use crate::agent::client::AgentClient;
use crate::cancel::Cancel;
use crate::rules::RuleSet;

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

/// The agents' clients, all with the same token.
pub struct Agents<'a> {
    /// The agents' bearer token.
    pub token: Option<&'a str>,
}

impl Agents<'_> {
    /// A client for the agent at `url` whose requests give up after `timeout`.
    pub fn client(&self, url: &str, timeout: Duration) -> AgentClient {
        AgentClient::new(url, self.token.map(str::to_string), timeout)
    }
}

/// What every phase of one diagnosis (or of one sweep cell) shares.
pub(crate) struct Run<'a> {
    /// The plan.
    pub plan: &'a DiagnosePlan,
    /// The rules, with their signal catalog.
    pub rules: &'a RuleSet,
    /// The agents' clients.
    pub agents: Agents<'a>,
    /// The command that reproduces it.
    pub command: &'a str,
    /// Unix ms the diagnosis started.
    pub started_ms: u64,
    /// Ctrl-C.
    pub cancel: &'a Cancel,
    /// The terminal's progress.
    pub progress: &'a dyn Progress,
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
    let load = plan.validate()?;
    let run = Run { plan, rules, agents: Agents { token }, command, started_ms: now_ms(), cancel, progress };
    progress.phase("preflight");
    let live = preflight::run(plan, &run.agents, progress);
    let capacities = measure(plan, &live, &run.agents, &rules.catalog, cancel, progress);
    Ok(load_and_judge(&run, &load, live, capacities))
}

/// What the probes measured before the load: the network matrix and the disks.
#[derive(Debug, Clone, Default)]
struct Capacities {
    network: probes::Network,
    disks: Vec<DiskCell>,
    disk_series: Vec<crate::evidence::Series>,
}

/// The network and disk phases, unless the plan skips them.
fn measure(
    plan: &DiagnosePlan,
    live: &preflight::Preflight,
    agents: &Agents<'_>,
    catalog: &crate::signals::SignalCatalog,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> Capacities {
    let mut measured = Capacities::default();
    if !plan.skip_net && !live.brokers.is_empty() && !cancel.is_cancelled() {
        progress.phase("network");
        measured.network = probes::network(plan, &live.generators, &live.brokers, agents, catalog, cancel, progress);
    }
    if !plan.skip_disk && !cancel.is_cancelled() {
        progress.phase("disks");
        (measured.disks, measured.disk_series) = probes::disks(plan, &live.brokers, agents, catalog, cancel, progress);
    }
    measured
}

/// The load (search or ramp) with every agent sampling, the evidence, and the judgment:
/// the rest of a diagnosis once the preflight and the probes are done.
fn load_and_judge(run: &Run<'_>, load: &Load, live: preflight::Preflight, capacities: Capacities) -> Diagnosis {
    let Run { plan, rules, progress, .. } = *run;
    progress.phase("ramp");
    let mut ramped = ramp::run(run, load, &live);

    progress.phase("evidence");
    let evidence = evidence::gather(run, &live, &mut ramped, &capacities);

    progress.phase("verdict");
    let Capacities { network, disks, .. } = capacities;
    let facts = judgment::Facts {
        produce: &ramped.produce,
        consume: &ramped.consume,
        ramp_ms: (ramped.started_ms, ramped.ended_ms),
        decided: &ramped.decided,
        network: (&network.tcp, live.generators.len()),
        disks: &disks,
        replication_factor: live.replication_factor.or(plan.replication_factor),
        brokers: live.brokers.len(),
        failures: &live.failures(),
        target_msgs_per_sec: load.max() as f64,
        sla: (plan.sla_e2e_ms.is_some() || plan.sla_p99_ms.is_some())
            .then_some(crate::sla::SlaTarget { e2e_avg_ms: plan.sla_e2e_ms, e2e_p99_ms: plan.sla_p99_ms }),
    };
    let judged = judgment::judge(rules, &evidence, &facts);
    let span_ms = (run.started_ms, ramped.started_ms, ramped.ended_ms);
    Diagnosis {
        preflight: live.checks,
        watching: live.watching,
        network_secs: (network.rounds > 0).then_some(network.elapsed_secs),
        network: network.tcp,
        network_udp: network.udp,
        network_agents: network.agents,
        disks,
        produce: ramped.produce,
        consume: ramped.consume,
        interrupted: ramped.interrupted,
        ..Diagnosis::new(run.command.to_string(), plan.clone(), span_ms, evidence, judged)
    }
}

/// Where a diagnosis writes its report by default: `./plateau-report-<unix seconds>`.
pub fn default_out_dir() -> PathBuf {
    PathBuf::from(format!("plateau-report-{}", now_ms() / 1000))
}
