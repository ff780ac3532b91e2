//! Evidence from JMX without Prometheus: a jmx_exporter HTTP endpoint scraped directly,
//! or MBean attributes read through Jolokia's JSON API
//! (`/jolokia/read/kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec/OneMinuteRate`).
//! A poller reads every catalog signal with a JMX source at each call, turning counters
//! into rates between polls.

use std::collections::HashMap;
use std::time::Duration;

use super::{Evidence, Series};
use crate::signals::{JmxSource, SignalCatalog};

/// A JMX endpoint of one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JmxEndpoint {
    /// A jmx_exporter `/metrics` URL.
    Exporter(String),
    /// A Jolokia base URL (`http://host:8778/jolokia`).
    Jolokia(String),
}

impl JmxEndpoint {
    /// Parses `jolokia+http://host:port/jolokia` or a plain http(s) URL (jmx_exporter).
    pub fn parse(text: &str) -> JmxEndpoint {
        match text.strip_prefix("jolokia+") {
            Some(url) => JmxEndpoint::Jolokia(url.trim_end_matches('/').to_string()),
            None => JmxEndpoint::Exporter(text.to_string()),
        }
    }

    fn url(&self) -> &str {
        match self {
            JmxEndpoint::Exporter(url) | JmxEndpoint::Jolokia(url) => url,
        }
    }

    /// The host the endpoint belongs to, as the instance name of its series.
    pub fn instance(&self) -> String {
        let url = self.url();
        let without_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
        let authority = without_scheme.split('/').next().unwrap_or_default();
        match authority.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.trim_matches(['[', ']']).to_string(),
            _ => authority.to_string(),
        }
    }
}

/// A metric name with label values it must have: `name{label="value",...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The metric name.
    pub name: String,
    /// Required label values.
    pub labels: Vec<(String, String)>,
}

impl Selector {
    /// Parses `name` or `name{a="x",b="y"}`.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let (name, rest) = match text.split_once('{') {
            Some((name, rest)) => {
                (name, Some(rest.strip_suffix('}').ok_or_else(|| format!("selector '{text}' lacks '}}'"))?))
            }
            None => (text, None),
        };
        let mut labels = Vec::new();
        for pair in rest.unwrap_or_default().split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) =
                pair.split_once('=').ok_or_else(|| format!("selector '{text}': '{pair}' is not label=\"value\""))?;
            labels.push((key.trim().to_string(), value.trim().trim_matches('"').to_string()));
        }
        Ok(Selector { name: name.trim().to_string(), labels })
    }

    /// The value of the selected metric in a scrape: the sample with the fewest labels
    /// among those that match (jmx_exporter exposes a broker-wide sample beside per-topic
    /// ones), summed if several remain.
    pub fn value(&self, scrape: &prometheus_parse::Scrape) -> Option<f64> {
        let matching: Vec<&prometheus_parse::Sample> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == self.name && self.labels.iter().all(|(k, v)| s.labels.get(k) == Some(v.as_str())))
            .collect();
        let fewest = matching.iter().map(|s| s.labels.len()).min()?;
        let values = matching.iter().filter(|s| s.labels.len() == fewest).filter_map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        });
        values.reduce(|a, b| a + b)
    }
}

/// Parses Prometheus text exposition, as a jmx_exporter endpoint serves it.
pub fn parse_exposition(text: &str) -> Result<prometheus_parse::Scrape, String> {
    prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).map_err(|err| err.to_string())
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().expect("building an HTTP client")
}

/// Reads one attribute through Jolokia. An MBean pattern (`client-id=*`) reads the
/// attribute of every match and yields the largest (the most throttled client).
pub fn jolokia_read(client: &reqwest::blocking::Client, base: &str, source: &JmxSource) -> Result<f64, String> {
    let url = format!("{base}/read/{}/{}", source.mbean, source.attribute);
    let body: serde_json::Value =
        client.get(&url).send().and_then(|r| r.json()).map_err(|err| format!("{url}: {err}"))?;
    let no_match =
        body.get("error_type").and_then(|e| e.as_str()) == Some("javax.management.InstanceNotFoundException");
    if source.absent_is_zero && source.mbean.contains('*') && no_match {
        return Ok(0.0);
    }
    if body.get("status").and_then(|s| s.as_u64()) != Some(200) {
        return Err(format!(
            "{url}: {}",
            body.get("error").and_then(|e| e.as_str()).unwrap_or("Jolokia answered an error")
        ));
    }
    let value = body.get("value");
    // Kafka's averages over no events are NaN, which Jolokia sends as null.
    let number = |v: &serde_json::Value| if v.is_null() { Some(f64::NAN) } else { v.as_f64() };
    let pattern_matches = value
        .and_then(serde_json::Value::as_object)
        .map(|beans| beans.values().filter_map(|bean| bean.get(&source.attribute).and_then(number)).reduce(f64::max));
    value.and_then(number).or(pattern_matches.flatten()).ok_or_else(|| format!("{url}: the value is not a number"))
}

/// Polls JMX endpoints and builds series from the catalog's JMX sources.
#[derive(Debug)]
pub struct JmxPoller {
    endpoints: Vec<JmxEndpoint>,
    signals: Vec<(String, String, JmxSource)>,
    previous: HashMap<(usize, usize), (u64, f64)>,
    series: HashMap<(usize, usize), Series>,
    unavailable: Vec<String>,
    client: reqwest::blocking::Client,
}

impl JmxPoller {
    /// A poller for `endpoints` reading every catalog signal that has a JMX source.
    pub fn new(catalog: &SignalCatalog, endpoints: Vec<JmxEndpoint>) -> JmxPoller {
        let signals = catalog
            .signals()
            .filter_map(|(_, s)| {
                s.source.iter().find_map(|src| src.jmx.clone()).map(|jmx| (s.name.clone(), s.unit.clone(), jmx))
            })
            .collect();
        JmxPoller {
            endpoints,
            signals,
            previous: HashMap::new(),
            series: HashMap::new(),
            unavailable: Vec::new(),
            client: http(),
        }
    }

    /// Reads every signal from every endpoint, stamped `ts_ms`.
    pub fn poll(&mut self, ts_ms: u64) {
        let mut problems = Vec::new();
        for (e, endpoint) in self.endpoints.iter().enumerate() {
            let scrape = match endpoint {
                JmxEndpoint::Exporter(url) => {
                    match self
                        .client
                        .get(url)
                        .send()
                        .and_then(|r| r.text())
                        .map_err(|err| err.to_string())
                        .and_then(|t| parse_exposition(&t))
                    {
                        Ok(scrape) => Some(scrape),
                        Err(err) => {
                            problems.push(format!("jmx_exporter at {url}: {err}"));
                            continue;
                        }
                    }
                }
                JmxEndpoint::Jolokia(_) => None,
            };
            for (s, (name, unit, source)) in self.signals.iter().enumerate() {
                let reading = match (&scrape, endpoint) {
                    (Some(scrape), _) => source
                        .metric
                        .as_deref()
                        .and_then(|m| Selector::parse(m).ok())
                        .and_then(|sel| sel.value(scrape))
                        .ok_or(()),
                    (None, JmxEndpoint::Jolokia(base)) => {
                        jolokia_read(&self.client, base, source).map_err(|err| problems.push(err))
                    }
                    (None, JmxEndpoint::Exporter(_)) => Err(()),
                };
                let Ok(value) = reading else { continue };
                let value = if source.rate {
                    let previous = self.previous.insert((e, s), (ts_ms, value));
                    match previous {
                        Some((then, before)) if ts_ms > then && value >= before => {
                            (value - before) / ((ts_ms - then) as f64 / 1000.0)
                        }
                        _ => continue,
                    }
                } else {
                    source.normalize(value)
                };
                self.series
                    .entry((e, s))
                    .or_insert_with(|| Series::new(name, &endpoint.instance(), unit))
                    .push(ts_ms, value);
            }
        }
        self.note(problems);
    }

    fn note(&mut self, problems: Vec<String>) {
        for problem in problems {
            if !self.unavailable.contains(&problem) {
                self.unavailable.push(problem);
            }
        }
    }

    /// The series polled so far.
    pub fn into_evidence(self) -> Evidence {
        let mut series: Vec<Series> = self.series.into_values().collect();
        series.sort_by(|a, b| (&a.signal, &a.instance).cmp(&(&b.signal, &b.instance)));
        Evidence { series, unavailable: self.unavailable }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# HELP kafka_server_brokertopicmetrics_bytesin_total Incoming byte rate
# TYPE kafka_server_brokertopicmetrics_bytesin_total counter
kafka_server_brokertopicmetrics_bytesin_total 1.5E7
kafka_server_brokertopicmetrics_bytesin_total{topic="telemetry"} 1.2E7
kafka_server_brokertopicmetrics_bytesin_total{topic="other"} 3.0E6
# TYPE kafka_network_requestmetrics_totaltimems gauge
kafka_network_requestmetrics_totaltimems{request="Produce",quantile="0.99"} 41.5
kafka_network_requestmetrics_totaltimems{request="FetchConsumer",quantile="0.99"} 500.0
"#;

    #[test]
    fn selectors_pick_the_broker_wide_sample_and_filter_labels() {
        let scrape = parse_exposition(EXPOSITION).unwrap();
        let bytes_in = Selector::parse("kafka_server_brokertopicmetrics_bytesin_total").unwrap();
        assert_eq!(bytes_in.value(&scrape), Some(1.5e7));
        let produce =
            Selector::parse(r#"kafka_network_requestmetrics_totaltimems{request="Produce",quantile="0.99"}"#).unwrap();
        assert_eq!(produce.value(&scrape), Some(41.5));
        assert_eq!(Selector::parse("nothing_here").unwrap().value(&scrape), None);
        assert!(Selector::parse("broken{a=").is_err());
    }

    #[test]
    fn endpoints_name_their_host() {
        assert_eq!(JmxEndpoint::parse("http://broker-1:7071/metrics").instance(), "broker-1");
        assert_eq!(
            JmxEndpoint::parse("jolokia+http://10.0.0.2:8778/jolokia/"),
            JmxEndpoint::Jolokia("http://10.0.0.2:8778/jolokia".into())
        );
    }
}
