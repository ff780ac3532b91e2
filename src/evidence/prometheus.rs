//! Evidence from Prometheus: each catalog signal with a PromQL source, as a range query
//! over the run window. Node exporter, jmx_exporter (Apache Kafka's metric names) and
//! kafka_exporter data all arrive this way. An unreachable Prometheus or a failing query
//! is recorded as unavailable evidence; it never fails the collection.

use std::time::Duration;

use super::{Evidence, Series};
use crate::signals::SignalCatalog;

/// The `instance` a Prometheus series belongs to: its `instance` label without the port
/// (so node exporter's `10.0.0.5:9100` and jmx_exporter's `10.0.0.5:7071` are one host),
/// or `cluster` when it has none.
pub fn instance_of(labels: &std::collections::HashMap<String, String>) -> String {
    match labels.get("instance") {
        Some(instance) => match instance.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.trim_matches(['[', ']']).to_string(),
            _ => instance.clone(),
        },
        None => "cluster".to_string(),
    }
}

/// The rate window for a query step: four steps and at least 10 s, as Grafana picks it.
pub fn rate_window(step: Duration) -> String {
    format!("{}s", (step.as_secs() * 4).max(10))
}

/// The cluster's produce rate as the controller shows it beside the generators' own:
/// Apache Kafka's MessagesInPerSec (jmx_exporter) when scraped, else plateau's agents'
/// acknowledged records.
pub struct ClusterRate {
    client: Result<prometheus_http_query::Client, String>,
}

impl ClusterRate {
    const QUERY: &str = "sum(rate(kafka_server_brokertopicmetrics_messagesin_total[30s])) or sum(rate(plateau_produce_acked_records_total[15s]))";

    /// A reader of the Prometheus at `url` (an unusable URL is said at every read).
    pub fn new(url: &str) -> ClusterRate {
        ClusterRate { client: prometheus_http_query::Client::try_from(url).map_err(|err| err.to_string()) }
    }

    /// Records per second now, or why there is no figure.
    pub async fn read(&self) -> Result<f64, String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let response = tokio::time::timeout(Duration::from_secs(3), client.query(Self::QUERY).get())
            .await
            .map_err(|_| "no answer within 3 s".to_string())?
            .map_err(|err| err.to_string())?;
        let vector = response.data().as_vector().map(Vec::as_slice).unwrap_or_default();
        vector.first().map(|sample| sample.sample().value()).ok_or_else(|| "no throughput series yet".to_string())
    }
}

/// Runs every PromQL source of the catalog against the Prometheus at `url` over
/// `[start_ms, end_ms]` with `step`.
pub fn collect(url: &str, catalog: &SignalCatalog, start_ms: u64, end_ms: u64, step: Duration) -> Evidence {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return Evidence { series: vec![], unavailable: vec![format!("prometheus at {url}: {err}")] },
    };
    runtime.block_on(collect_async(url, catalog, start_ms, end_ms, step))
}

async fn collect_async(url: &str, catalog: &SignalCatalog, start_ms: u64, end_ms: u64, step: Duration) -> Evidence {
    let mut evidence = Evidence::default();
    let client = match prometheus_http_query::Client::try_from(url) {
        Ok(client) => client,
        Err(err) => {
            evidence.unavailable.push(format!("prometheus at {url}: {err}"));
            return evidence;
        }
    };
    let window = rate_window(step);
    let (start, end) = ((start_ms / 1000) as i64, end_ms.div_ceil(1000) as i64);
    for (_, signal) in catalog.signals() {
        // The first PromQL source that returns data wins: plateau's agents, then node
        // exporter or jmx_exporter names.
        for promql in signal.source.iter().filter_map(|s| s.promql.as_deref()) {
            let query = promql.replace("$window", &window);
            let response = match tokio::time::timeout(
                Duration::from_secs(10),
                client.query_range(&query, start, end, step.as_secs_f64()).get(),
            )
            .await
            {
                Ok(Ok(response)) => response,
                Ok(Err(err)) => {
                    if !evidence.unavailable.iter().any(|u| u.starts_with("prometheus at")) {
                        evidence
                            .unavailable
                            .push(format!("prometheus at {url}: {err} (first failing signal: {})", signal.name));
                    }
                    continue;
                }
                Err(_) => {
                    evidence
                        .unavailable
                        .push(format!("prometheus at {url}: no answer within 10 s for {}", signal.name));
                    continue;
                }
            };
            let before = evidence.series.len();
            for range in response.data().as_matrix().map(Vec::as_slice).unwrap_or_default() {
                let mut series = Series::new(&signal.name, &instance_of(range.metric()), &signal.unit);
                for sample in range.samples() {
                    series.push((sample.timestamp() * 1000.0) as u64, sample.value());
                }
                if !series.values.is_empty() {
                    evidence.series.push(series);
                }
            }
            if evidence.series.len() > before {
                break;
            }
        }
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_drop_the_port() {
        let labels = |v: &str| std::collections::HashMap::from([("instance".to_string(), v.to_string())]);
        assert_eq!(instance_of(&labels("10.0.0.5:9100")), "10.0.0.5");
        assert_eq!(instance_of(&labels("[::1]:9100")), "::1");
        assert_eq!(instance_of(&labels("broker-1")), "broker-1");
        assert_eq!(instance_of(&Default::default()), "cluster");
        assert_eq!(rate_window(Duration::from_secs(1)), "10s");
        assert_eq!(rate_window(Duration::from_secs(15)), "60s");
    }
}
