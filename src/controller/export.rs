//! `plateau export`: a Prometheus scrape configuration for the agents' `/metrics`, and a
//! Grafana dashboard over those metrics (seed 000 watched its runs in Grafana).

use std::time::Duration;

/// The Grafana dashboard (JSON model, schema version 39), over the agents' metrics.
pub const GRAFANA_DASHBOARD: &str = include_str!("assets/grafana-dashboard.json");

/// A Prometheus configuration scraping the generator agents (job `plateau-generators`) and
/// the broker hosts' agents (job `plateau-brokers`) every `interval`.
pub fn prometheus_config(generators: &[String], brokers: &[String], interval: Duration) -> Result<String, String> {
    // Prometheus's durations are whole units: 1500ms, not 1.5s.
    let interval = match interval.as_millis() {
        0 => return Err("--interval must be above 0".into()),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    };
    let mut text = format!(
        "# Prometheus scrape configuration for plateau agents (plateau export prometheus-config).\n\
         # /metrics needs no token; the agents' POST API does.\n\
         global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\nscrape_configs:\n"
    );
    for (job, urls) in [("plateau-generators", generators), ("plateau-brokers", brokers)] {
        if urls.is_empty() {
            continue;
        }
        let mut targets = Vec::new();
        let mut scheme = "http";
        for url in urls {
            let (url_scheme, rest) = url
                .split_once("://")
                .ok_or_else(|| format!("agent '{url}' is not a URL; write it as http://HOST:PORT"))?;
            scheme = url_scheme;
            let host_port = rest.trim_end_matches('/');
            if host_port.is_empty() || host_port.contains('/') {
                return Err(format!("agent '{url}' should be http://HOST:PORT, without a path"));
            }
            targets.push(format!("'{host_port}'"));
        }
        text.push_str(&format!(
            "  - job_name: {job}\n    scheme: {scheme}\n    metrics_path: /metrics\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_config_lists_both_jobs() {
        let text = prometheus_config(
            &["http://10.0.0.11:7070".into()],
            &["http://10.0.0.21:7070".into()],
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(text.contains("job_name: plateau-generators"));
        assert!(text.contains("targets: ['10.0.0.21:7070']"));
        assert!(
            prometheus_config(&["10.0.0.11:7070".into()], &[], Duration::from_secs(5))
                .unwrap_err()
                .contains("not a URL")
        );
        assert!(prometheus_config(&["http://a:1".into()], &[], Duration::ZERO).is_err());
        assert!(
            prometheus_config(&["http://a:1".into()], &[], Duration::from_millis(1500))
                .unwrap()
                .contains("scrape_interval: 1500ms")
        );
    }
}
