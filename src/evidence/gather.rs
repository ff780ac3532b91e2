//! Gathering the evidence of a run: the agents' samples (per broker host; the generators',
//! the consumers' and the sink's database hosts' CPU each as one cluster signal), the catalog's PromQL over the window, and what
//! a JMX poller read during it. `plateau diagnose` and the controller's "Diagnose now"
//! both gather through [`gather`], so their evidence has the same shape.

use std::collections::BTreeMap;
use std::time::Duration;

use super::jmx::JmxPoller;
use super::{Evidence, Series};
use crate::agent::client::AgentClient;
use crate::net::Target;
use crate::signals::SignalCatalog;

/// Where a run's evidence is.
pub struct Sources<'a> {
    /// The agents' bearer token.
    pub token: Option<&'a str>,
    /// Agents whose samples are evidence per host (the brokers).
    pub hosts: &'a [String],
    /// Generator agents: their CPU becomes `generator_cpu_busy` of the cluster.
    pub generators: &'a [String],
    /// Consumer agents: their CPU becomes `consumer_cpu_busy`.
    pub consumers: &'a [String],
    /// Agents on the sink's database hosts: their CPU becomes `sink_cpu_busy`.
    pub databases: &'a [String],
    /// Prometheus, when the cluster has one.
    pub prometheus: Option<&'a str>,
    /// What a JMX poller read over the run.
    pub jmx: Option<JmxPoller>,
}

/// The evidence of `sources` from `since_ms` (the hosts', and Prometheus's window start)
/// to `until_ms`; the generators' CPU from `generators_since_ms` (the load's start). Each
/// signal of each instance comes from one source, the first that has it (agents,
/// Prometheus, JMX). A source that does not answer is recorded in `unavailable`;
/// gathering never fails.
pub fn gather(
    catalog: &SignalCatalog,
    sources: Sources<'_>,
    since_ms: u64,
    generators_since_ms: u64,
    until_ms: u64,
) -> Evidence {
    let mut evidence = agent_evidence(catalog, sources.token, sources.hosts, since_ms);
    for (agents, signal) in [
        (sources.generators, "generator_cpu_busy"),
        (sources.consumers, "consumer_cpu_busy"),
        (sources.databases, "sink_cpu_busy"),
    ] {
        let (series, unavailable) = busiest_cpu(catalog, sources.token, agents, generators_since_ms, signal);
        evidence.series.extend(series);
        evidence.unavailable.extend(unavailable);
    }
    if let Some(url) = sources.prometheus {
        evidence.extend_missing(super::prometheus::collect(url, catalog, since_ms, until_ms, Duration::from_secs(1)));
    }
    if let Some(poller) = sources.jmx {
        evidence.extend_missing(poller.into_evidence());
    }
    let others: Vec<String> =
        sources.generators.iter().chain(sources.consumers).chain(sources.databases).cloned().collect();
    drop_client_hosts(&mut evidence, sources.hosts, &others);
    evidence
}

/// A generator's, consumer's or database's host is not a broker's: its CPU is a cluster
/// signal of its own. A Prometheus that scrapes it too (its agent, a node exporter) must
/// not make it a broker host, unless a broker agent shares the host.
fn drop_client_hosts(evidence: &mut Evidence, hosts: &[String], others: &[String]) {
    let host = |url: &String| Target::Agent(url.clone()).host();
    let judged: Vec<String> = hosts.iter().map(host).collect();
    let others: Vec<String> = others.iter().map(host).filter(|h| !judged.contains(h)).collect();
    evidence.series.retain(|s| !others.contains(&s.instance));
}

fn client(url: &str, token: Option<&str>) -> AgentClient {
    AgentClient::new(url, token.map(str::to_string), Duration::from_secs(10))
}

/// Evidence from the agents of `hosts`: their samples since `since_ms`, per host.
fn agent_evidence(catalog: &SignalCatalog, token: Option<&str>, hosts: &[String], since_ms: u64) -> Evidence {
    let mut evidence = Evidence::default();
    for url in hosts {
        match client(url, token).samples(since_ms) {
            Ok(samples) => evidence.series.extend(super::agent::from_samples(
                catalog,
                &Target::Agent(url.clone()).host(),
                &samples,
            )),
            Err(err) => evidence.unavailable.push(format!("samples of agent {url}: {err}")),
        }
    }
    evidence
}

/// The CPU of `agents` since `since_ms` as one cluster signal named `signal`: the busiest
/// agent each second (`evidence::agent::cpu_busy`, the one formula); with what could not
/// be read.
fn busiest_cpu(
    catalog: &SignalCatalog,
    token: Option<&str>,
    agents: &[String],
    since_ms: u64,
    signal: &str,
) -> (Option<Series>, Vec<String>) {
    let mut unavailable = Vec::new();
    let mut buckets: BTreeMap<u64, f64> = BTreeMap::new();
    for url in agents {
        match client(url, token).samples(since_ms) {
            Ok(samples) => {
                for sample in samples {
                    let bucket = buckets.entry(sample.ts_ms / 1000 * 1000).or_insert(0.0);
                    *bucket = bucket.max(super::agent::cpu_busy(&sample));
                }
            }
            Err(err) => unavailable.push(format!("samples of agent {url}: {err}")),
        }
    }
    let series = super::measured::series(catalog, signal, "cluster").and_then(|mut series| {
        for (ts, busy) in buckets {
            series.push(ts, busy);
        }
        (!series.values.is_empty()).then_some(series)
    });
    (series, unavailable)
}

/// Whether Prometheus at `url` answers its readiness check, for the preflight.
pub fn prometheus_ready(url: &str) -> Result<String, String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|err| format!("cannot build an HTTP client: {err}"))?;
    match client.get(format!("{}/-/ready", url.trim_end_matches('/'))).send() {
        Ok(response) if response.status().is_success() => Ok("ready".into()),
        Ok(response) => Err(format!("answered {} to /-/ready", response.status())),
        Err(err) => Err(format!("not reachable: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generator_host_scraped_by_prometheus_is_not_judged_as_a_broker_host() {
        let series = |instance: &str| {
            let mut s = Series::new("host_cpu_busy", instance, "ratio");
            s.push(1_000, 0.7);
            s
        };
        let mut evidence = Evidence {
            series: vec![series("10.0.0.21"), series("10.0.0.11"), series("127.0.0.1"), series("cluster")],
            unavailable: Vec::new(),
        };
        let hosts = ["http://10.0.0.21:7070".to_string(), "http://127.0.0.1:7070".to_string()];
        let generators = ["http://10.0.0.11:7070".to_string(), "http://127.0.0.1:7071".to_string()];
        drop_client_hosts(&mut evidence, &hosts, &generators);
        let kept: Vec<&str> = evidence.series.iter().map(|s| s.instance.as_str()).collect();
        // The generator-only host goes; a host shared with a broker agent stays.
        assert_eq!(kept, ["10.0.0.21", "127.0.0.1", "cluster"]);
    }
}
