//! Preflight: which agents answer, the topic's layout as the cluster tells it (created
//! when the plan asks for it), and whether Prometheus is ready. Every check is recorded;
//! none stops the diagnosis.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Agents, Check, DiagnosePlan, Progress};

/// What the preflight found.
#[derive(Debug, Clone, Default)]
pub struct Preflight {
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// Generator agents that answered.
    pub generators: Vec<String>,
    /// Broker agents that answered.
    pub brokers: Vec<String>,
    /// Consumer agents that answered.
    pub consumers: Vec<String>,
    /// Database agents that answered.
    pub databases: Vec<String>,
    /// The topic's partitions, when it exists (or was created): no ramp without it.
    pub partitions: Option<usize>,
    /// The topic's replication factor: the cluster's for an existing topic (never the
    /// plan's to say), else the one it was created with.
    pub replication_factor: Option<u32>,
    /// The brokers in the cluster's metadata, when the topic was found.
    pub cluster_brokers: Option<usize>,
    /// What each agent that answered reads beside its host, and why (by URL).
    pub watching: BTreeMap<String, String>,
}

impl Preflight {
    /// The failed checks, as lines for the verdict's missing list.
    pub fn failures(&self) -> Vec<String> {
        self.checks.iter().filter_map(Check::failure).collect()
    }

    fn check(&mut self, progress: &dyn Progress, what: String, outcome: Result<String, String>) -> bool {
        record(&mut self.checks, progress, what, outcome)
    }
}

/// Records one check's outcome and says it on the progress (`ok` or `FAIL`); whether it
/// passed. Preflight's and `plateau init`'s checks alike.
pub(super) fn record(
    checks: &mut Vec<Check>,
    progress: &dyn Progress,
    what: String,
    outcome: Result<String, String>,
) -> bool {
    let ok = outcome.is_ok();
    let detail = outcome.unwrap_or_else(|e| e);
    progress.note(&format!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" }));
    checks.push(Check { what, ok, detail });
    ok
}

/// Runs the preflight of `plan`.
pub fn run(plan: &DiagnosePlan, agents: &Agents<'_>, progress: &dyn Progress) -> Preflight {
    let mut found = Preflight::default();
    for (role, urls) in [
        ("generator", &plan.generators),
        ("broker", &plan.brokers),
        ("consumer", &plan.consumers),
        ("database", &plan.databases),
    ] {
        for url in urls {
            // /status is open; the token is checked where it is needed, before anything runs.
            let client = agents.client(url, Duration::from_secs(5));
            let outcome = client
                .status()
                .and_then(|s| {
                    client.check_token()?;
                    let reads = watching(&s.sampler);
                    let line = format!("{} up {:.0} s, token accepted; reads {reads}", s.hostname, s.uptime_seconds);
                    found.watching.insert(url.clone(), reads);
                    Ok(line)
                })
                .map_err(|e| e.to_string());
            if found.check(progress, format!("{role} agent {url}"), outcome) {
                match role {
                    "generator" => found.generators.push(url.clone()),
                    "broker" => found.brokers.push(url.clone()),
                    "consumer" => found.consumers.push(url.clone()),
                    _ => found.databases.push(url.clone()),
                }
            }
        }
    }
    topic(plan, &mut found, progress);
    if let Some(url) = &plan.prometheus {
        found.check(progress, format!("prometheus {url}"), crate::evidence::gather::prometheus_ready(url));
    }
    found
}

/// What an agent's CPU and I/O figures follow beside the host's, and why.
pub(super) fn watching(sampler: &crate::agent::api::SamplerStatus) -> String {
    let why = sampler.watch_reason.as_deref().map(|why| format!(" ({why})")).unwrap_or_default();
    match &sampler.watch {
        Some(target) => format!("{target}{why}"),
        None => format!("the host alone{why}"),
    }
}

/// The topic's layout, or its creation when the plan gives partitions.
fn topic(plan: &DiagnosePlan, found: &mut Preflight, progress: &dyn Progress) {
    let what = format!("topic {}", plan.topic);
    match crate::kafka::admin::topic_layout(&plan.bootstrap, &plan.producer.extra, &plan.topic) {
        Ok(Some(layout)) => {
            found.replication_factor = Some(layout.replication_factor);
            found.cluster_brokers = Some(layout.brokers);
            found.partitions = Some(layout.partitions);
            let under = match layout.under_replicated {
                0 => String::new(),
                n => format!(", {n} under-replicated"),
            };
            let detail = format!(
                "{} partitions, RF {} on {} brokers{under}",
                layout.partitions, layout.replication_factor, layout.brokers
            );
            found.check(progress, what, Ok(detail));
        }
        Ok(None) => match plan.partitions {
            Some(n) => {
                let rf = plan.replication_factor.unwrap_or(1);
                let created =
                    crate::kafka::admin::create_topic(&plan.bootstrap, &plan.producer.extra, &plan.topic, n, rf);
                if found.check(progress, what, created.map(|()| format!("created with {n} partitions, RF {rf}"))) {
                    found.partitions = Some(n as usize);
                    found.replication_factor = Some(rf);
                }
            }
            None => {
                found.check(progress, what, Err("does not exist; pass --partitions to create it".into()));
            }
        },
        Err(err) => {
            found.check(progress, format!("cluster {}", plan.bootstrap), Err(err));
        }
    }
}
