//! The signal catalog (`rules/signals.toml`): every signal the rules may use, with its
//! unit, its meaning, its scope, and its sources in order of preference — a field of the
//! agents' samples, a PromQL template, a JMX MBean attribute — so that one rule works
//! whether the data comes from plateau's agents, node exporter or JMX.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// A problem in a rule or catalog file, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl RuleError {
    /// An error at byte `offset` of `text`.
    pub fn at(file: &str, text: &str, offset: usize, message: String) -> RuleError {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
        RuleError { file: file.to_string(), line, column, message }
    }

    /// A TOML syntax or shape error.
    pub fn from_toml(file: &str, text: &str, err: &toml::de::Error) -> RuleError {
        let offset = err.span().map(|s| s.start).unwrap_or(0);
        RuleError::at(file, text, offset, err.message().to_string())
    }
}

/// A signal's index in the catalog, the typed id rules refer to signals by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignalId(pub u16);

/// What a signal's series are per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One series per host (agent, node exporter instance, broker JVM).
    Host,
    /// One series for the whole run (the producers together, the topic).
    Cluster,
}

/// Where a signal's values come from.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// A field of the agents' samples, dotted (`cpu.total.busy`); `*` walks every element
    /// of an array (`disks.*.util_ratio`), and `reduce` combines them.
    pub agent: Option<String>,
    /// How to combine the values a `*` path yields: `max` (default), `sum` or `avg`.
    pub reduce: Option<String>,
    /// A PromQL expression; `$window` becomes the rate window. Each result series is one
    /// instance (its `instance` label, else `cluster`).
    pub promql: Option<String>,
    /// A JMX MBean and attribute (Jolokia, or a jmx_exporter endpoint by `metric`).
    pub jmx: Option<JmxSource>,
    /// A value plateau measures itself (a probe result or the produce run), by name.
    pub measured: Option<String>,
}

/// An MBean attribute, and the name jmx_exporter gives it.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct JmxSource {
    /// The MBean (`kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec`).
    pub mbean: String,
    /// The attribute (`OneMinuteRate`, `Value`, `Mean`, ...).
    pub attribute: String,
    /// The metric jmx_exporter exposes for it.
    pub metric: Option<String>,
    /// Whether the metric is a counter whose rate is the signal.
    #[serde(default)]
    pub rate: bool,
    /// An idle share that a broker in combined mode (broker and controller in one process)
    /// sums over its two request handler pools, so that it reaches 2 (KAFKA-19606, seen on
    /// Kafka 4.1.1): a value above 1 is read as the broker pool's share plus an idle
    /// controller pool's, and 1 is subtracted.
    #[serde(default)]
    pub summed_with_controller_pool: bool,
    /// A quota's throttle time: an average over a window's events, which Kafka reports as
    /// NaN (null through Jolokia) when there were none, on beans that exist only once a
    /// quota is configured. Both — no events, and no beans for an MBean pattern — read as
    /// 0: nobody was throttled.
    #[serde(default)]
    pub absent_is_zero: bool,
}

impl JmxSource {
    /// The signal's value for a reading of the attribute.
    pub fn normalize(&self, value: f64) -> f64 {
        if self.absent_is_zero && value.is_nan() {
            0.0
        } else if self.summed_with_controller_pool && value > 1.0 {
            value - 1.0
        } else {
            value
        }
    }
}

/// One signal.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// The name rules use.
    pub name: String,
    /// Unit: `ratio`, `bytes_per_sec`, `bits_per_sec`, `ms`, `per_sec`, `count`, `msgs_per_sec`.
    pub unit: String,
    /// Per host or for the whole run.
    pub scope: Scope,
    /// What it means.
    pub description: String,
    /// Sources, most preferred first.
    #[serde(default)]
    pub source: Vec<Source>,
}

const UNITS: [&str; 9] =
    ["ratio", "bytes_per_sec", "bits_per_sec", "ms", "per_sec", "count", "msgs_per_sec", "seconds", "bytes"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    signal: Vec<toml::Spanned<Signal>>,
}

/// All signals, by name and by id.
#[derive(Debug, Clone, Default)]
pub struct SignalCatalog {
    signals: Vec<Signal>,
    by_name: BTreeMap<String, SignalId>,
}

impl SignalCatalog {
    /// Parses `signals.toml` text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<SignalCatalog, Vec<RuleError>> {
        let parsed: CatalogFile = toml::from_str(text).map_err(|err| vec![RuleError::from_toml(file, text, &err)])?;
        let mut catalog = SignalCatalog::default();
        let mut errors = Vec::new();
        for spanned in parsed.signal {
            let span = spanned.span();
            let signal = spanned.into_inner();
            let at = |message: String| RuleError::at(file, text, span.start, message);
            if !UNITS.contains(&signal.unit.as_str()) {
                errors.push(at(format!(
                    "signal '{}' has unknown unit '{}'; use one of {}",
                    signal.name,
                    signal.unit,
                    UNITS.join(", ")
                )));
            }
            if !signal.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || signal.name.is_empty() {
                errors.push(at(format!("signal name '{}' must be letters, digits and _", signal.name)));
            }
            if catalog.by_name.contains_key(&signal.name) {
                errors.push(at(format!("signal '{}' is defined twice", signal.name)));
                continue;
            }
            for source in &signal.source {
                let kinds =
                    [source.agent.is_some(), source.promql.is_some(), source.jmx.is_some(), source.measured.is_some()];
                if kinds.iter().filter(|k| **k).count() != 1 {
                    errors.push(at(format!(
                        "a source of signal '{}' must name exactly one of agent, promql, jmx, measured",
                        signal.name
                    )));
                }
                if let Some(reduce) = source.reduce.as_ref().filter(|r| !["max", "sum", "avg"].contains(&r.as_str())) {
                    errors.push(at(format!("signal '{}': reduce '{reduce}' is not max, sum or avg", signal.name)));
                }
            }
            catalog.by_name.insert(signal.name.clone(), SignalId(catalog.signals.len() as u16));
            catalog.signals.push(signal);
        }
        if errors.is_empty() { Ok(catalog) } else { Err(errors) }
    }

    /// The id of a signal name.
    pub fn id(&self, name: &str) -> Option<SignalId> {
        self.by_name.get(name).copied()
    }

    /// The signal with an id.
    pub fn get(&self, id: SignalId) -> &Signal {
        &self.signals[id.0 as usize]
    }

    /// Every signal, in id order.
    pub fn signals(&self) -> impl Iterator<Item = (SignalId, &Signal)> {
        self.signals.iter().enumerate().map(|(i, s)| (SignalId(i as u16), s))
    }

    /// Number of signals.
    pub fn len(&self) -> usize {
        self.signals.len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.signals.is_empty()
    }
}
