//! Gathering the evidence of a run: the agents' samples (per broker and consumer host, the
//! generators' CPU as one cluster signal), the catalog's PromQL over the window, and what
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
    /// Agents whose samples are evidence per host (brokers, consumers).
    pub hosts: &'a [String],
    /// Generator agents: their CPU becomes `generator_cpu_busy` of the cluster.
    pub generators: &'a [String],
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
    let mut evidence =
        agent_evidence(catalog, sources.token, sources.hosts, since_ms, sources.generators, generators_since_ms);
    if let Some(url) = sources.prometheus {
        evidence.extend_missing(super::prometheus::collect(url, catalog, since_ms, until_ms, Duration::from_secs(1)));
    }
    if let Some(poller) = sources.jmx {
        evidence.extend_missing(poller.into_evidence());
    }
    drop_generator_hosts(&mut evidence, sources.hosts, sources.generators);
    evidence
}

/// A generator's host is the client's side: its CPU is `generator_cpu_busy`. A Prometheus
/// that scrapes it too (its agent, a node exporter) must not make it a broker host, unless
/// a broker or consumer agent shares the host.
fn drop_generator_hosts(evidence: &mut Evidence, hosts: &[String], generators: &[String]) {
    let host = |url: &String| Target::Agent(url.clone()).host();
    let judged: Vec<String> = hosts.iter().map(host).collect();
    let generators: Vec<String> = generators.iter().map(host).filter(|h| !judged.contains(h)).collect();
    evidence.series.retain(|s| !generators.contains(&s.instance));
}

/// Evidence from agents: the samples of `hosts` since `hosts_since_ms`, per host, and the
/// generators' CPU since `generators_since_ms` as one cluster signal (the busiest
/// generator each second).
fn agent_evidence(
    catalog: &SignalCatalog,
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
            Ok(samples) => evidence.series.extend(super::agent::from_samples(
                catalog,
                &Target::Agent(url.clone()).host(),
                &samples,
            )),
            Err(err) => evidence.unavailable.push(format!("samples of agent {url}: {err}")),
        }
    }
    let mut buckets: BTreeMap<u64, f64> = BTreeMap::new();
    for url in generators {
        match client(url).samples(generators_since_ms) {
            Ok(samples) => {
                for sample in samples {
                    let bucket = buckets.entry(sample.ts_ms / 1000 * 1000).or_insert(0.0);
                    *bucket = bucket.max(super::agent::cpu_busy(&sample));
                }
            }
            Err(err) => evidence.unavailable.push(format!("samples of generator agent {url}: {err}")),
        }
    }
    if let Some(signal) = catalog.id("generator_cpu_busy").map(|id| catalog.get(id)) {
        let mut generator_cpu = Series::new(&signal.name, "cluster", &signal.unit);
        for (ts, busy) in buckets {
            generator_cpu.push(ts, busy);
        }
        if !generator_cpu.values.is_empty() {
            evidence.series.push(generator_cpu);
        }
    }
    evidence
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
        drop_generator_hosts(&mut evidence, &hosts, &generators);
        let kept: Vec<&str> = evidence.series.iter().map(|s| s.instance.as_str()).collect();
        // The generator-only host goes; a host shared with a broker agent stays.
        assert_eq!(kept, ["10.0.0.21", "127.0.0.1", "cluster"]);
    }
}
