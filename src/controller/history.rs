//! What the controller knows about each agent: its latest status card and a 15-minute
//! history of one point per poll, filled by a poller that asks every agent once a second.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::agent::{ProbeStatus, StatusResponse};
use crate::sampler::Sample;

/// Points kept per agent: 15 minutes at one a second.
const KEEP: usize = 900;

/// Whether an agent drives load or watches a broker host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A generator agent.
    Generator,
    /// An agent on a broker host.
    Broker,
    /// An agent on a consumer host.
    Consumer,
}

/// One agent's status card, as the page shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentCard {
    /// The agent's URL.
    pub url: String,
    /// Its host name (from `/status`), or the URL's host before it answered.
    pub host: String,
    /// Generator, broker or consumer host.
    pub role: Role,
    /// Whether the last poll got an answer.
    pub reachable: bool,
    /// Why the last poll failed.
    pub error: Option<String>,
    /// The produce run (seed 000's status card); `None` before the first run.
    pub produce: Option<ProbeStatus>,
    /// The consume run (rate, lag, end-to-end latency); `None` before the first run.
    pub consume: Option<ProbeStatus>,
    /// The host's CPU busy share, 0–1.
    pub cpu_busy: Option<f64>,
    /// The busiest disk's utilization, 0–1.
    pub disk_util: Option<f64>,
    /// The busiest NIC's traffic over its speed, 0–1.
    pub nic_util: Option<f64>,
    /// Unix ms of the last answer.
    pub last_seen_ms: Option<u64>,
}

/// One poll of one agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Point {
    /// Unix ms.
    pub ts_ms: u64,
    /// Target, msg/s (0 when not producing).
    pub target: f64,
    /// Acknowledged, msg/s.
    pub achieved: f64,
    /// Delivery p99, ms.
    pub p99_ms: Option<f64>,
    /// CPU busy, 0–1.
    pub cpu: Option<f64>,
    /// Busiest disk utilization, 0–1.
    pub disk: Option<f64>,
    /// Busiest NIC utilization, 0–1.
    pub nic: Option<f64>,
}

/// The cards and histories of all agents, in the order given.
#[derive(Debug, Default)]
pub struct History {
    /// Cards by URL.
    pub cards: BTreeMap<String, AgentCard>,
    /// Points by URL, oldest first.
    pub points: BTreeMap<String, VecDeque<Point>>,
    /// The newest sample seen per agent (for `?since=`).
    pub cursors: BTreeMap<String, u64>,
    /// Cluster throughput read from Prometheus, msg/s, by Unix ms.
    pub prometheus: VecDeque<(u64, f64)>,
    /// The last Prometheus error, if its last query failed.
    pub prometheus_error: Option<String>,
}

impl History {
    /// Cards for every agent before the first poll.
    pub fn new(generators: &[String], brokers: &[String], consumers: &[String]) -> History {
        let mut history = History::default();
        for (urls, role) in [(generators, Role::Generator), (brokers, Role::Broker), (consumers, Role::Consumer)] {
            for url in urls {
                let host = crate::net::Target::Agent(url.clone()).host();
                history.cards.insert(
                    url.clone(),
                    AgentCard {
                        url: url.clone(),
                        host,
                        role,
                        reachable: false,
                        error: Some("not polled yet".into()),
                        produce: None,
                        consume: None,
                        cpu_busy: None,
                        disk_util: None,
                        nic_util: None,
                        last_seen_ms: None,
                    },
                );
                history.points.insert(url.clone(), VecDeque::new());
            }
        }
        history
    }

    /// Records one poll's answer from `url`: its status and the samples since the last.
    pub fn record(&mut self, url: &str, now_ms: u64, answer: Result<(StatusResponse, Vec<Sample>), String>) {
        let Some(card) = self.cards.get_mut(url) else { return };
        let (status, samples) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                card.reachable = false;
                card.error = Some(error);
                return;
            }
        };
        card.reachable = true;
        card.error = None;
        card.host = status.hostname.clone();
        card.last_seen_ms = Some(now_ms);
        card.produce = status.probes.get("produce").cloned();
        card.consume = status.probes.get("consume").cloned();
        if let Some(latest) = samples.last() {
            self.cursors.insert(url.to_string(), latest.ts_ms);
            card.cpu_busy = Some(latest.cpu.total.busy);
            card.disk_util = latest.disks.iter().map(|d| d.util_ratio).reduce(f64::max);
            card.nic_util = nic_util(latest);
        }
        let produce = card.produce.as_ref().filter(|p| p.running);
        let point = Point {
            ts_ms: now_ms,
            target: produce.and_then(|p| p.target_rate_mps).unwrap_or(0) as f64,
            achieved: produce.and_then(|p| p.stats.current_rate_mps).unwrap_or(0.0),
            p99_ms: produce.and_then(|p| p.stats.delivery_p99_ms),
            cpu: card.cpu_busy,
            disk: card.disk_util,
            nic: card.nic_util,
        };
        let points = self.points.entry(url.to_string()).or_default();
        points.push_back(point);
        while points.len() > KEEP {
            points.pop_front();
        }
    }

    /// Records the cluster's throughput from Prometheus (or why it could not be read).
    pub fn record_prometheus(&mut self, now_ms: u64, answer: Result<f64, String>) {
        match answer {
            Ok(rate) => {
                self.prometheus_error = None;
                self.prometheus.push_back((now_ms, rate));
                while self.prometheus.len() > KEEP {
                    self.prometheus.pop_front();
                }
            }
            Err(error) => self.prometheus_error = Some(error),
        }
    }

    /// The generators' summed target and achieved rate per second since `since_ms`.
    pub fn totals(&self, since_ms: u64) -> Vec<(u64, f64, f64)> {
        let mut by_second: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for (url, points) in &self.points {
            if self.cards.get(url).is_none_or(|c| c.role != Role::Generator) {
                continue;
            }
            for point in points.iter().filter(|p| p.ts_ms >= since_ms) {
                let entry = by_second.entry(point.ts_ms / 1000).or_default();
                entry.0 += point.target;
                entry.1 += point.achieved;
            }
        }
        by_second.into_iter().map(|(s, (target, achieved))| (s * 1000, target, achieved)).collect()
    }
}

/// The busiest NIC's traffic (the larger direction) over its speed; loopback and NICs of
/// unknown speed are left out.
fn nic_util(sample: &Sample) -> Option<f64> {
    sample
        .nics
        .iter()
        .filter(|n| n.name != "lo")
        .filter_map(|n| {
            let speed = n.speed_bits_per_sec.filter(|s| *s > 0)? as f64;
            Some(n.rx_bytes_per_sec.max(n.tx_bytes_per_sec) * 8.0 / speed)
        })
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(running: bool, target: u64, current: f64) -> StatusResponse {
        let produce = ProbeStatus {
            running,
            target_rate_mps: Some(target),
            stats: crate::agent::ProbeStats { current_rate_mps: Some(current), ..Default::default() },
            ..Default::default()
        };
        StatusResponse {
            version: "test".into(),
            hostname: "gen-1".into(),
            uptime_seconds: 1.0,
            started_at_ms: 0,
            auth: true,
            allow: Vec::new(),
            data_port: 7075,
            log_dir: None,
            sampler: Default::default(),
            probes: [("produce".to_string(), produce)].into(),
        }
    }

    #[test]
    fn polls_become_cards_and_summed_points() {
        let generators = vec!["http://10.0.0.11:7070".to_string(), "http://10.0.0.12:7070".to_string()];
        let mut history = History::new(&generators, &["http://10.0.0.21:7070".to_string()], &[]);
        assert!(!history.cards[&generators[0]].reachable);
        history.record(&generators[0], 1_000, Ok((status(true, 20_000, 19_500.0), Vec::new())));
        history.record(&generators[1], 1_200, Ok((status(true, 20_000, 20_100.0), Vec::new())));
        history.record("http://10.0.0.21:7070", 1_300, Err("cannot reach the agent".into()));
        let card = &history.cards[&generators[0]];
        assert!(card.reachable);
        assert_eq!(card.host, "gen-1");
        assert_eq!(card.produce.as_ref().unwrap().target_rate_mps, Some(20_000));
        assert_eq!(history.totals(0), vec![(1_000, 40_000.0, 39_600.0)]);
        assert_eq!(history.cards["http://10.0.0.21:7070"].error.as_deref(), Some("cannot reach the agent"));
        // A stopped generator counts as zero.
        history.record(&generators[0], 2_000, Ok((status(false, 20_000, 0.0), Vec::new())));
        assert_eq!(history.totals(2_000), vec![(2_000, 0.0, 0.0)]);
    }
}
