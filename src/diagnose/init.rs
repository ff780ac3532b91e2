//! `plateau init`: a plan for a cluster plateau did not build. It reads the cluster's
//! metadata (its brokers and the topic's layout), finds the agent on each broker's host
//! (an agent given with `--agent` whose address is a broker's, else the agent port on the
//! broker's own address), checks every agent's token and allow-list, and writes the plan
//! as a commented TOML file for the user to read and edit.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use super::preflight::{record, watching};
use super::{Agents, Check, Progress};
use crate::allow::AllowList;
use crate::kafka::admin::{AdvertisedBroker, TopicLayout};
use crate::net::bracket;

/// What `plateau init` is asked.
#[derive(Debug, Clone, Default)]
pub struct InitRequest {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// librdkafka properties to read the metadata with (a secured listener's).
    pub properties: Vec<(String, String)>,
    /// The topic the diagnosis will produce to.
    pub topic: String,
    /// Where the agents listen on the broker hosts.
    pub agent_port: u16,
    /// Agents on any host: matched to brokers by address, the others are generators.
    pub agents: Vec<String>,
    /// Agents on generator hosts.
    pub generators: Vec<String>,
    /// Agents on consumer hosts.
    pub consumers: Vec<String>,
    /// Agents on the sink's database hosts.
    pub databases: Vec<String>,
    /// The Prometheus that scrapes the cluster.
    pub prometheus: Option<String>,
    /// The command as typed, for the plan's header.
    pub command: String,
}

/// One broker of the cluster and its host's agent.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerHost {
    /// The broker as the metadata advertises it.
    pub broker: AdvertisedBroker,
    /// Its host's agent, when one answered.
    pub agent: Option<String>,
    /// How the agent was found, or why there is none.
    pub how: String,
}

/// What `plateau init` found.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Every broker of the cluster, by id.
    pub brokers: Vec<BrokerHost>,
    /// Generator agents: those given, and `--agent`s on no broker's host.
    pub generators: Vec<String>,
    /// The topic's layout, when it exists.
    pub topic: Option<TopicLayout>,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

impl Found {
    /// The failed checks.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.ok).collect()
    }
}

/// Reads the cluster and checks the agents; `Err` only when the cluster cannot be read.
pub fn discover(request: &InitRequest, agents: &Agents<'_>, progress: &dyn Progress) -> Result<Found, String> {
    let (advertised, topic) = crate::kafka::admin::cluster(&request.bootstrap, &request.properties, &request.topic)
        .map_err(|err| format!("cannot read the cluster's metadata at {}: {err}", request.bootstrap))?;
    let mut found = Found { topic, ..Found::default() };
    let check = |found: &mut Found, what: String, outcome: Result<String, String>| {
        record(&mut found.checks, progress, what, outcome)
    };
    let line = cluster_line(&advertised, &found.topic, request);
    check(&mut found, format!("cluster {}", request.bootstrap), Ok(line));

    // Each --agent on a broker's address is that broker's; the rest are generators.
    let given: Vec<(String, BTreeSet<IpAddr>)> = request
        .agents
        .iter()
        .map(|url| (url.clone(), addresses(&crate::net::Target::Agent(url.clone()).host())))
        .collect();
    found.generators = request.generators.clone();
    for (url, ips) in &given {
        if !advertised.iter().any(|b| !ips.is_disjoint(&addresses(&b.host))) {
            found.generators.push(url.clone());
        }
    }
    for broker in advertised {
        let ips = addresses(&broker.host);
        let host = match given.iter().find(|(_, agent_ips)| !agent_ips.is_disjoint(&ips)) {
            Some((url, _)) => BrokerHost { agent: Some(url.clone()), how: "given with --agent".into(), broker },
            None => {
                let url = format!("http://{}:{}", bracket(&broker.host), request.agent_port);
                match agents.client(&url, Duration::from_secs(3)).status() {
                    Ok(_) => BrokerHost { agent: Some(url), how: "on the broker's address".into(), broker },
                    Err(err) => BrokerHost {
                        how: format!(
                            "no agent answered at {url} ({err}): this broker is judged from Prometheus and JMX alone"
                        ),
                        agent: None,
                        broker,
                    },
                }
            }
        };
        if host.agent.is_none() {
            check(
                &mut found,
                format!("broker {} at {}:{}", host.broker.id, host.broker.host, host.broker.port),
                Err(host.how.clone()),
            );
        }
        found.brokers.push(host);
    }
    if found.generators.is_empty() {
        check(
            &mut found,
            "generators".into(),
            Err("no generator agent: give the producer hosts' agents with --generator URL (or --agent URL)".into()),
        );
    }

    // Every agent answers, takes the token, and may reach the hosts it will test and load.
    let broker_ips: Vec<(String, BTreeSet<IpAddr>)> = found
        .brokers
        .iter()
        .map(|b| (format!("broker {} ({})", b.broker.id, b.broker.host), addresses(&b.broker.host)))
        .collect();
    let roles = [
        ("generator", found.generators.clone()),
        ("broker", found.brokers.iter().filter_map(|b| b.agent.clone()).collect::<Vec<_>>()),
        ("consumer", request.consumers.clone()),
        ("database", request.databases.clone()),
    ];
    for (role, urls) in &roles {
        for url in urls {
            let outcome = agent_check(agents, url, role, &broker_ips);
            check(&mut found, format!("{role} agent {url}"), outcome);
        }
    }
    if let Some(url) = &request.prometheus {
        check(&mut found, format!("prometheus {url}"), crate::evidence::gather::prometheus_ready(url));
    }
    Ok(found)
}

fn cluster_line(brokers: &[AdvertisedBroker], topic: &Option<TopicLayout>, request: &InitRequest) -> String {
    let topic = match topic {
        Some(t) => format!("topic {}: {} partitions, RF {}", request.topic, t.partitions, t.replication_factor),
        None => format!("topic {} does not exist yet", request.topic),
    };
    format!("{} broker(s) advertised; {topic}", brokers.len())
}

/// One agent's check: it answers, takes the token, and its allow-list covers every broker
/// (the network tests and the Kafka connections go there).
fn agent_check(
    agents: &Agents<'_>,
    url: &str,
    role: &str,
    brokers: &[(String, BTreeSet<IpAddr>)],
) -> Result<String, String> {
    let client = agents.client(url, Duration::from_secs(5));
    let status = client.status().map_err(|err| err.to_string())?;
    client.check_token().map_err(|err| err.to_string())?;
    if role != "database" {
        let allow = AllowList::new(status.allow.iter().filter_map(|net| net.parse().ok()).collect());
        let outside: Vec<&str> = brokers
            .iter()
            .filter(|(_, ips)| !ips.iter().any(|ip| allow.contains(ip)))
            .map(|(name, _)| name.as_str())
            .collect();
        if !outside.is_empty() {
            return Err(format!(
                "its allow-list ({}) leaves out {}: add their network to PLATEAU_ALLOW in /etc/plateau/agent.env (or --allow) and restart it",
                status.allow.join(", "),
                outside.join(", ")
            ));
        }
    }
    let reads = watching(&status.sampler);
    Ok(format!(
        "{} up {:.0} s, token accepted, allow-list covers the brokers; reads {reads}",
        status.hostname, status.uptime_seconds
    ))
}

/// The addresses a host name resolves to (an address is itself).
fn addresses(host: &str) -> BTreeSet<IpAddr> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return BTreeSet::from([ip]);
    }
    (host, 0).to_socket_addrs().map(|all| all.map(|a| a.ip()).collect()).unwrap_or_default()
}

/// The plan, as a commented TOML file.
pub fn plan_text(request: &InitRequest, found: &Found) -> String {
    let list = |urls: &[String]| format!("[{}]", urls.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", "));
    let mut t = String::new();
    let _ = writeln!(t, "# A diagnosis plan for the cluster at {}, written by", request.bootstrap);
    let _ = writeln!(t, "#   {}", request.command);
    let _ = writeln!(t, "# Read it, edit it, then: plateau diagnose --plan THIS_FILE --token-file TOKEN_FILE");
    let failures = found.failures();
    if !failures.is_empty() {
        let _ = writeln!(t, "#\n# Fix these first (plateau init again checks them):");
        for failure in failures {
            let _ = writeln!(t, "#   {}: {}", failure.what, failure.detail);
        }
    }
    let _ = writeln!(t, "\n# Agents on the producer hosts: they run the load (a rate search for the knee).");
    let _ = writeln!(t, "generators = {}", list(&found.generators));
    let _ = writeln!(t, "\n# Agents on the broker hosts, matched to the cluster's brokers by address:");
    for host in &found.brokers {
        let b = &host.broker;
        match &host.agent {
            Some(url) => writeln!(t, "#   broker {} at {}:{}: {url} ({})", b.id, b.host, b.port, host.how),
            None => writeln!(t, "#   broker {} at {}:{}: {}", b.id, b.host, b.port, host.how),
        }
        .ok();
    }
    let broker_agents: Vec<String> = found.brokers.iter().filter_map(|b| b.agent.clone()).collect();
    let _ = writeln!(t, "brokers = {}", list(&broker_agents));
    if !request.consumers.is_empty() {
        let _ = writeln!(t, "\n# Agents on the consumer hosts: each runs a consumer group's members through the run.");
        let _ = writeln!(t, "consumers = {}", list(&request.consumers));
    }
    if !request.databases.is_empty() {
        let _ = writeln!(t, "# Agents on the sink's database hosts (sampled, not probed).");
        let _ = writeln!(t, "databases = {}", list(&request.databases));
    }
    let every: Vec<String> =
        found.brokers.iter().map(|b| format!("{}:{}", bracket(&b.broker.host), b.broker.port)).collect();
    let _ = writeln!(t, "\n# Every broker the cluster advertises.");
    let _ = writeln!(t, "bootstrap = {:?}", every.join(","));
    let _ = writeln!(t, "topic = {:?}", request.topic);
    match &found.topic {
        Some(layout) => {
            let _ = writeln!(
                t,
                "# The topic exists: {} partitions, RF {} (the cluster's: a diagnosis reads them, never changes them).",
                layout.partitions, layout.replication_factor
            );
        }
        None => {
            let brokers = found.brokers.len().max(1) as u32;
            let _ = writeln!(t, "# The topic does not exist: diagnose creates it with these.");
            let _ = writeln!(t, "partitions = {}", 4 * brokers);
            let _ = writeln!(t, "replication_factor = {}", brokers.min(3));
        }
    }
    match &request.prometheus {
        Some(url) => {
            let _ = writeln!(t, "\n# The Prometheus that scrapes the brokers (and node_exporter).");
            let _ = writeln!(t, "prometheus = {url:?}");
        }
        None => {
            let _ = writeln!(t, "\n# The Prometheus that scrapes the brokers, if there is one:");
            let _ = writeln!(t, "# prometheus = \"http://prometheus:9090\"");
        }
    }
    let _ = writeln!(t, "\n# The disk probe appends a file in each broker agent's log directory (PLATEAU_LOG_DIR);");
    let _ = writeln!(t, "# on a cluster in production, skip it. The produce run is real load on the topic above.");
    let _ = writeln!(t, "# skip_disk = true");
    let kept: Vec<&(String, String)> =
        request.properties.iter().filter(|(name, _)| !crate::kafka::properties::is_secret(name)).collect();
    let secret: Vec<&str> = request
        .properties
        .iter()
        .filter(|(name, _)| crate::kafka::properties::is_secret(name))
        .map(|(name, _)| name.as_str())
        .collect();
    if !kept.is_empty() || !secret.is_empty() {
        let _ = writeln!(t, "\n[producer]");
        if !secret.is_empty() {
            let _ =
                writeln!(t, "# Left out, being secrets: {}. Give them with -X when you diagnose.", secret.join(", "));
        }
        let pairs: Vec<String> = kept.iter().map(|(k, v)| format!("[{k:?}, {v:?}]")).collect();
        let _ = writeln!(t, "extra = [{}]", pairs.join(", "));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found() -> Found {
        let broker = |id: i32, host: &str| AdvertisedBroker { id, host: host.into(), port: 9092 };
        Found {
            brokers: vec![
                BrokerHost {
                    broker: broker(1, "10.0.0.21"),
                    agent: Some("http://10.0.0.21:7070".into()),
                    how: "on the broker's address".into(),
                },
                BrokerHost { broker: broker(2, "10.0.0.22"), agent: None, how: "no agent answered".into() },
            ],
            generators: vec!["http://10.0.0.11:7070".into()],
            topic: None,
            checks: vec![Check {
                what: "broker 2 at 10.0.0.22:9092".into(),
                ok: false,
                detail: "no agent answered".into(),
            }],
        }
    }

    #[test]
    fn the_plan_reads_back_as_a_plan_and_keeps_secrets_out() {
        let request = InitRequest {
            bootstrap: "10.0.0.21:9092".into(),
            topic: "telemetry".into(),
            agent_port: 7070,
            properties: vec![
                ("security.protocol".into(), "SASL_SSL".into()),
                ("sasl.password".into(), "hunter2".into()),
            ],
            command: "plateau init --bootstrap 10.0.0.21:9092".into(),
            ..InitRequest::default()
        };
        let text = plan_text(&request, &found());
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("Left out, being secrets: sasl.password"), "{text}");
        assert!(text.contains("Fix these first") && text.contains("broker 2 at 10.0.0.22:9092"), "{text}");
        let plan: crate::diagnose::DiagnosePlan = toml::from_str(&text).unwrap_or_else(|err| panic!("{err}\n{text}"));
        assert_eq!(plan.generators, ["http://10.0.0.11:7070"]);
        assert_eq!(plan.brokers, ["http://10.0.0.21:7070"]);
        assert_eq!(plan.bootstrap, "10.0.0.21:9092,10.0.0.22:9092");
        assert_eq!((plan.partitions, plan.replication_factor), (Some(8), Some(2)));
        assert_eq!(plan.producer.extra, [("security.protocol".to_string(), "SASL_SSL".to_string())]);
    }

    #[test]
    fn addresses_resolve_names_and_take_addresses_as_they_are() {
        assert_eq!(addresses("10.1.2.3"), BTreeSet::from(["10.1.2.3".parse::<IpAddr>().unwrap()]));
        assert!(addresses("localhost").iter().any(IpAddr::is_loopback));
        assert_eq!(bracket("::1"), "[::1]");
    }
}
