//! `plateau export`: a Prometheus scrape configuration for the agents' `/metrics`, and a
//! Grafana dashboard over those metrics (seed 000 watched its runs in Grafana).

/// The Grafana dashboard (JSON model, schema version 39), over the agents' metrics.
pub const GRAFANA_DASHBOARD: &str = include_str!("assets/grafana-dashboard.json");

/// A Prometheus configuration scraping the generator agents (job `plateau-generators`) and
/// the broker hosts' agents (job `plateau-brokers`) every `interval`.
pub fn prometheus_config(generators: &[String], brokers: &[String], interval: &str) -> Result<String, String> {
    humantime::parse_duration(interval)
        .map_err(|err| format!("--interval '{interval}' is not a duration like 5s: {err}"))?;
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
        let text =
            prometheus_config(&["http://10.0.0.11:7070".into()], &["http://10.0.0.21:7070".into()], "5s").unwrap();
        assert!(text.contains("job_name: plateau-generators"));
        assert!(text.contains("targets: ['10.0.0.21:7070']"));
        assert!(prometheus_config(&["10.0.0.11:7070".into()], &[], "5s").unwrap_err().contains("not a URL"));
        assert!(prometheus_config(&["http://a:1".into()], &[], "often").is_err());
    }
}
