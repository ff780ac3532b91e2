//! Rules as data: the signal catalog (`rules/signals.toml`) and the rule files
//! (`rules/*.toml`), loaded and type-checked into a [`RuleSet`] that the engine
//! (`eval`) applies to evidence without I/O.
//!
//! A rule names the bound it points to, a `when` expression over windowed aggregations
//! of signals (`avg`, `min`, `max`, `p50`, `p95`, `p99`, `last`, `frac_above`,
//! `frac_below`), a weight, an evidence template and advice. Expressions are parsed by
//! evalexpr; every signal and function they name is checked at load time, so an unknown
//! name is an error with its file, line and column, never a silently false rule.

pub mod bench;
pub mod eval;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::signals::RuleError;
use crate::signals::{Scope, SignalCatalog, SignalId};
pub use eval::{RuleOutcome, Verdict, evaluate};

/// The resources a plateau can be bound by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    /// The network between hosts.
    Network,
    /// A disk.
    Disk,
    /// A broker host's or container's CPU.
    Cpu,
    /// The producers: their CPU or their settings.
    Client,
    /// The broker software or the topic layout.
    Kafka,
    /// The pipeline past Kafka: the consumers' CPU, their sink, too few partitions for the
    /// group, rebalancing.
    Consumer,
    /// No plateau up to the highest rate tried.
    None,
    /// The evidence cannot decide.
    Unknown,
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        f.write_str(&name)
    }
}

/// The aggregation functions a `when` expression may call.
pub const FUNCTIONS: [&str; 9] = ["avg", "min", "max", "p50", "p95", "p99", "last", "frac_above", "frac_below"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: toml::Spanned<String>,
    bound: toml::Spanned<String>,
    #[serde(default)]
    cause: Option<String>,
    when: toml::Spanned<String>,
    #[serde(default = "default_weight")]
    weight: f64,
    evidence: toml::Spanned<String>,
    advice: String,
    #[serde(default)]
    anchor: String,
    #[serde(default)]
    explains: Option<toml::Spanned<String>>,
    #[serde(default)]
    applies_if: Option<toml::Spanned<String>>,
    #[serde(default)]
    unless: Option<toml::Spanned<OneOrMany>>,
}

/// A rule's `unless`: one condition or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn default_weight() -> f64 {
    1.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: Vec<RawRule>,
}

/// A piece of an evidence template: text, or an expression to print.
#[derive(Debug, Clone)]
pub enum TemplatePart {
    /// Literal text.
    Text(String),
    /// `{instance}`.
    Instance,
    /// `{expression}` or `{expression:format}`.
    Value(Box<evalexpr::Node>, ValueFormat),
}

/// How a template value is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// Two decimals.
    Plain,
    /// A ratio as a percentage.
    Percent,
    /// Bytes/s as MB/s.
    MegabytesPerSec,
    /// Bits/s as Mbit/s.
    MegabitsPerSec,
    /// A whole number.
    Integer,
}

/// A rule, compiled.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id, e.g. `network.link_saturated`.
    pub id: String,
    /// The bound it points to.
    pub bound: Bound,
    /// Which cause of that bound it names (`link`, `replication traffic`, `quota`); the
    /// rule's name after the bound when the file gives none.
    pub cause: String,
    /// The condition.
    pub when: evalexpr::Node,
    /// The `when` text, for reports.
    pub when_text: String,
    /// The signals the condition and template use: the condition's first.
    pub signals: Vec<(String, SignalId)>,
    /// How many of `signals` the condition uses; the rest only fill in the evidence text,
    /// and where one is missing the text says `?` rather than the rule going unknown.
    pub when_signals: usize,
    /// Weight in the verdict.
    pub weight: f64,
    /// The evidence template.
    pub evidence: Vec<TemplatePart>,
    /// What to do about it.
    pub advice: String,
    /// Where the threshold comes from.
    pub anchor: String,
    /// The file it came from.
    pub file: String,
    /// The bound whose symptoms this rule's cause explains (`kafka.hot_leader` explains
    /// `cpu`): when that bound leads only on hosts where this rule fired too, the verdict
    /// is this rule's bound and cause, the explained bound its runner-up.
    pub explains: Option<Bound>,
    /// A signal of a stage a run may leave out (the consumers): when the evidence has none
    /// of it at all, the rule does not apply — the stage was not measured, which is not
    /// missing evidence — and it counts neither for nor against the verdict.
    pub applies_if: Option<(String, SignalId)>,
    /// Conditions each of which, where its own signals were measured and it holds, keeps
    /// the rule from firing on that instance: another explanation of the same symptom
    /// (`kafka.slow_broker` unless the leader's produce time went to waiting on
    /// followers, or unless the machine under it was busy). Where a condition's signals
    /// are missing it excuses nothing and the rule is judged by `when` alone.
    pub unless: Vec<Unless>,
}

/// A rule's `unless` condition, compiled.
#[derive(Debug, Clone)]
pub struct Unless {
    /// The condition.
    pub when: evalexpr::Node,
    /// The signals it uses.
    pub signals: Vec<(String, SignalId)>,
}

/// The catalog and every rule.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// The signals.
    pub catalog: SignalCatalog,
    /// The rules, in file and definition order.
    pub rules: Vec<Rule>,
}

fn parse_bound(text: &str) -> Option<Bound> {
    Some(match text {
        "network" => Bound::Network,
        "disk" => Bound::Disk,
        "cpu" => Bound::Cpu,
        "client" => Bound::Client,
        "kafka" => Bound::Kafka,
        "consumer" => Bound::Consumer,
        _ => return None,
    })
}

/// Parses an expression and checks every identifier it uses; returns its signals.
fn compile_expression(
    text: &str,
    catalog: &SignalCatalog,
) -> Result<(evalexpr::Node, Vec<(String, SignalId)>), String> {
    let node = evalexpr::build_operator_tree::<evalexpr::DefaultNumericTypes>(text)
        .map_err(|err| format!("'{text}' does not parse: {err}"))?;
    let mut signals = Vec::new();
    for name in node.iter_variable_identifiers() {
        match catalog.id(name) {
            Some(id) => {
                if !signals.iter().any(|(n, _)| n == name) {
                    signals.push((name.to_string(), id));
                }
            }
            None => return Err(format!("unknown signal '{name}'; signals are defined in signals.toml")),
        }
    }
    for function in node.iter_function_identifiers() {
        if !FUNCTIONS.contains(&function) {
            return Err(format!("unknown function '{function}'; use one of {}", FUNCTIONS.join(", ")));
        }
    }
    Ok((node, signals))
}

/// Splits an evidence template into text and `{expression[:format]}` parts.
fn compile_template(
    text: &str,
    catalog: &SignalCatalog,
    signals: &mut Vec<(String, SignalId)>,
) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(TemplatePart::Text(rest[..open].to_string()));
        }
        let close =
            rest[open..].find('}').ok_or_else(|| format!("unclosed '{{' in evidence template '{text}'"))? + open;
        let inner = rest[open + 1..close].trim();
        if inner == "instance" {
            parts.push(TemplatePart::Instance);
        } else {
            let (expression, format) = match inner.rsplit_once(':') {
                Some((expression, format)) => (expression, format.trim()),
                None => (inner, ""),
            };
            let format = match format {
                "" => ValueFormat::Plain,
                "pct" => ValueFormat::Percent,
                "MBps" => ValueFormat::MegabytesPerSec,
                "Mbps" => ValueFormat::MegabitsPerSec,
                "int" => ValueFormat::Integer,
                other => {
                    return Err(format!("unknown format ':{other}' in evidence template; use pct, MBps, Mbps or int"));
                }
            };
            let (node, used) = compile_expression(expression, catalog)?;
            for (name, id) in used {
                if !signals.iter().any(|(n, _)| *n == name) {
                    signals.push((name, id));
                }
            }
            parts.push(TemplatePart::Value(Box::new(node), format));
        }
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_string()));
    }
    Ok(parts)
}

/// The rule set plateau ships, built into the binary: the signal catalog first, then the
/// rule files, as `(file name, text)`. `plateau rules write DIR` writes them out for
/// editing; `--rules DIR` reads an edited set instead.
pub const BUILT_IN: [(&str, &str); 7] = [
    ("signals.toml", include_str!("../../rules/signals.toml")),
    ("client.toml", include_str!("../../rules/client.toml")),
    ("consumer.toml", include_str!("../../rules/consumer.toml")),
    ("cpu.toml", include_str!("../../rules/cpu.toml")),
    ("disk.toml", include_str!("../../rules/disk.toml")),
    ("kafka.toml", include_str!("../../rules/kafka.toml")),
    ("network.toml", include_str!("../../rules/network.toml")),
];

impl RuleSet {
    /// The rules built into plateau (`BUILT_IN`); errors name the file as `(built in)`.
    pub fn built_in() -> Result<RuleSet, Vec<RuleError>> {
        let name = |file: &str| format!("(built in) rules/{file}");
        let (catalog_file, catalog_text) = BUILT_IN[0];
        let catalog = SignalCatalog::parse(&name(catalog_file), catalog_text)?;
        let sources: Vec<(String, String)> =
            BUILT_IN[1..].iter().map(|(file, text)| (name(file), text.to_string())).collect();
        RuleSet::from_sources(catalog, &sources)
    }

    /// The rules in `dir`, or the built-in ones without a directory.
    pub fn load(dir: Option<&Path>) -> Result<RuleSet, Vec<RuleError>> {
        match dir {
            Some(dir) => RuleSet::load_dir(dir),
            None => RuleSet::built_in(),
        }
    }

    /// Writes the built-in rule files into `dir` (created when missing) and returns their
    /// paths; refuses, before writing anything, when one of them is already there.
    pub fn write_built_in(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
        let paths: Vec<std::path::PathBuf> = BUILT_IN.iter().map(|(file, _)| dir.join(file)).collect();
        if let Some(existing) = paths.iter().find(|path| path.exists()) {
            return Err(format!("{} exists; write the built-in rules into an empty directory", existing.display()));
        }
        std::fs::create_dir_all(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        for (path, (_, text)) in paths.iter().zip(BUILT_IN) {
            std::fs::write(path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        }
        Ok(paths)
    }

    /// Loads `signals.toml` and every other `*.toml` file of `dir`. Returns every error
    /// found, not only the first.
    pub fn load_dir(dir: &Path) -> Result<RuleSet, Vec<RuleError>> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|err| {
                vec![RuleError {
                    file: path.display().to_string(),
                    line: 1,
                    column: 1,
                    message: format!("cannot read: {err}"),
                }]
            })
        };
        let catalog_path = dir.join("signals.toml");
        let catalog_text = read(&catalog_path)?;
        let catalog = SignalCatalog::parse(&catalog_path.display().to_string(), &catalog_text)?;
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|err| {
                vec![RuleError {
                    file: dir.display().to_string(),
                    line: 1,
                    column: 1,
                    message: format!("cannot list: {err}"),
                }]
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| {
                path.extension().is_some_and(|e| e == "toml") && path.file_name().is_some_and(|n| n != "signals.toml")
            })
            .collect();
        files.sort();
        let mut sources = Vec::new();
        for path in files {
            sources.push((path.display().to_string(), read(&path)?));
        }
        RuleSet::from_sources(catalog, &sources)
    }

    /// Compiles rule files given as `(name, text)` against `catalog`.
    pub fn from_sources(catalog: SignalCatalog, sources: &[(String, String)]) -> Result<RuleSet, Vec<RuleError>> {
        let mut set = RuleSet { catalog, rules: Vec::new() };
        let mut errors = Vec::new();
        let mut ids = BTreeSet::new();
        for (file, text) in sources {
            let parsed: RuleFile = match toml::from_str(text) {
                Ok(parsed) => parsed,
                Err(err) => {
                    errors.push(RuleError::from_toml(file, text, &err));
                    continue;
                }
            };
            for raw in parsed.rule {
                let id = raw.id.get_ref().clone();
                if !ids.insert(id.clone()) {
                    errors.push(RuleError::at(file, text, raw.id.span().start, format!("duplicate rule id '{id}'")));
                    continue;
                }
                match compile_rule(raw, id, file, text, &set.catalog) {
                    Ok(rule) => set.rules.push(rule),
                    Err(found) => errors.extend(found),
                }
            }
        }
        if errors.is_empty() { Ok(set) } else { Err(errors) }
    }
}

/// Compiles one rule of `file` (whose text is `text`) against `catalog`: its bound, weight,
/// condition, evidence template, `explains`, `applies_if` and `unless`s; or the errors that
/// stop it.
fn compile_rule(
    raw: RawRule,
    id: String,
    file: &str,
    text: &str,
    catalog: &SignalCatalog,
) -> Result<Rule, Vec<RuleError>> {
    let at = |offset: usize, message: String| RuleError::at(file, text, offset, message);
    let Some(bound) = parse_bound(raw.bound.get_ref()) else {
        return Err(vec![at(
            raw.bound.span().start,
            format!("unknown bound '{}'; use network, disk, cpu, client, kafka or consumer", raw.bound.get_ref()),
        )]);
    };
    if !(raw.weight.is_finite() && raw.weight > 0.0) {
        return Err(vec![at(raw.id.span().start, format!("rule '{id}': weight must be a positive number"))]);
    }
    let (when, mut signals) = match compile_expression(raw.when.get_ref(), catalog) {
        Ok(compiled) => compiled,
        Err(message) => {
            return Err(vec![at(raw.when.span().start, format!("rule '{id}': {message}"))]);
        }
    };
    if signals.is_empty() {
        return Err(vec![at(raw.when.span().start, format!("rule '{id}': the condition uses no signal"))]);
    }
    if let Err(message) = eval::type_check(&when, &signals, raw.when.get_ref()) {
        return Err(vec![at(raw.when.span().start, format!("rule '{id}': {message}"))]);
    }
    let when_signals = signals.len();
    let evidence = match compile_template(raw.evidence.get_ref(), catalog, &mut signals) {
        Ok(parts) => parts,
        Err(message) => {
            return Err(vec![at(raw.evidence.span().start, format!("rule '{id}': {message}"))]);
        }
    };
    let explains = match &raw.explains {
        None => None,
        Some(text) => match parse_bound(text.get_ref()) {
            Some(explained) if explained != bound => Some(explained),
            _ => {
                return Err(vec![at(
                    text.span().start,
                    format!(
                        "rule '{id}': explains '{}' must name another bound (network, disk, cpu, client, kafka or consumer)",
                        text.get_ref()
                    ),
                )]);
            }
        },
    };
    let applies_if = match &raw.applies_if {
        None => None,
        Some(name) => match catalog.id(name.get_ref()) {
            Some(signal) => Some((name.get_ref().clone(), signal)),
            None => {
                return Err(vec![at(
                    name.span().start,
                    format!("rule '{id}': applies_if names '{}', which is not a catalog signal", name.get_ref()),
                )]);
            }
        },
    };
    let unless_texts = match raw.unless.as_ref().map(|u| (u.span().start, u.get_ref())) {
        None => Vec::new(),
        Some((start, OneOrMany::One(text))) => vec![(start, text.clone())],
        Some((start, OneOrMany::Many(texts))) => texts.iter().map(|t| (start, t.clone())).collect(),
    };
    let mut errors = Vec::new();
    let mut unless = Vec::new();
    for (start, text) in &unless_texts {
        match compile_expression(text, catalog).and_then(|(when, signals)| {
            eval::type_check(&when, &signals, text)?;
            Ok(Unless { when, signals })
        }) {
            Ok(condition) if !condition.signals.is_empty() => unless.push(condition),
            Ok(_) => errors.push(at(*start, format!("rule '{id}': unless '{text}' uses no signal"))),
            Err(message) => errors.push(at(*start, format!("rule '{id}': its unless '{text}': {message}"))),
        }
    }
    if unless.len() < unless_texts.len() {
        return Err(errors);
    }
    let cause = raw.cause.unwrap_or_else(|| id.split_once('.').map_or(&*id, |(_, name)| name).replace('_', " "));
    Ok(Rule {
        id,
        bound,
        cause,
        when,
        when_text: raw.when.get_ref().clone(),
        signals,
        when_signals,
        weight: raw.weight,
        evidence,
        advice: raw.advice,
        anchor: raw.anchor,
        file: file.to_string(),
        explains,
        applies_if,
        unless,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> SignalCatalog {
        SignalCatalog::parse(
            "signals.toml",
            r#"
[[signal]]
name = "host_cpu_busy"
unit = "ratio"
scope = "host"
description = "CPU busy"
[[signal.source]]
agent = "cpu.total.busy"
"#,
        )
        .unwrap()
    }

    fn load(text: &str) -> Result<RuleSet, Vec<RuleError>> {
        RuleSet::from_sources(catalog(), &[("r.toml".to_string(), text.to_string())])
    }

    #[test]
    fn a_rule_compiles_with_its_signals() {
        let set = load(
            r#"
[[rule]]
id = "cpu.busy"
bound = "cpu"
when = "avg(host_cpu_busy) > 0.9 && frac_above(host_cpu_busy, 0.8) > 0.5"
weight = 2
evidence = "{instance}: CPU busy {avg(host_cpu_busy):pct}"
advice = "Add cores."
"#,
        )
        .unwrap();
        assert_eq!(set.rules.len(), 1);
        assert_eq!(set.rules[0].signals.len(), 1);
        assert_eq!(set.rules[0].bound, Bound::Cpu);
    }

    #[test]
    fn unknown_names_are_errors_with_positions() {
        let errors = load("[[rule]]\nid = \"x\"\nbound = \"cpu\"\nwhen = \"avg(no_such_signal) > 1\"\nevidence = \"e\"\nadvice = \"a\"\n").unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "r.toml:4:8: rule 'x': unknown signal 'no_such_signal'; signals are defined in signals.toml"
        );
        let errors = load("[[rule]]\nid = \"x\"\nbound = \"cpu\"\nwhen = \"median(host_cpu_busy) > 1\"\nevidence = \"e\"\nadvice = \"a\"\n").unwrap_err();
        assert!(errors[0].message.contains("unknown function 'median'"), "{}", errors[0]);
        let errors = load("[[rule]]\nid = \"x\"\nbound = \"gpu\"\nwhen = \"avg(host_cpu_busy) > 1\"\nevidence = \"e\"\nadvice = \"a\"\n").unwrap_err();
        assert!(errors[0].message.contains("unknown bound 'gpu'"));
        let rule = |explains: &str| {
            format!(
                "[[rule]]\nid = \"x\"\nbound = \"kafka\"\nexplains = \"{explains}\"\nwhen = \"avg(host_cpu_busy) > 1\"\nevidence = \"e\"\nadvice = \"a\"\n"
            )
        };
        assert_eq!(load(&rule("cpu")).unwrap().rules[0].explains, Some(Bound::Cpu));
        for wrong in ["gpu", "kafka"] {
            let errors = load(&rule(wrong)).unwrap_err();
            assert!(errors[0].message.contains("must name another bound"), "{}", errors[0]);
        }
        let unless = |value: &str| {
            format!(
                "[[rule]]\nid = \"x\"\nbound = \"cpu\"\nwhen = \"avg(host_cpu_busy) > 1\"\nunless = {value}\nevidence = \"e\"\nadvice = \"a\"\n"
            )
        };
        assert_eq!(load(&unless("\"max(host_cpu_busy) > 2\"")).unwrap().rules[0].unless[0].signals.len(), 1);
        let two = load(&unless("[\"max(host_cpu_busy) > 2\", \"min(host_cpu_busy) > 0.5\"]")).unwrap();
        assert_eq!(two.rules[0].unless.len(), 2);
        let errors = load(&unless("[\"max(host_cpu_busy) > 2\", \"max(no_such_signal) > 2\"]")).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "r.toml:5:10: rule 'x': its unless 'max(no_such_signal) > 2': unknown signal 'no_such_signal'; signals are defined in signals.toml"
        );
        let errors = load(&unless("\"max(host_cpu_busy) + 2\"")).unwrap_err();
        assert!(errors[0].message.contains("is not a true/false condition"), "{}", errors[0]);
    }

    #[test]
    fn every_shipped_rule_file_is_built_in_and_the_built_in_set_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut shipped: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".toml"))
            .collect();
        shipped.sort();
        let mut built_in: Vec<String> = BUILT_IN.iter().map(|(file, _)| file.to_string()).collect();
        built_in.sort();
        assert_eq!(shipped, built_in, "a rule file under rules/ is missing from rules::BUILT_IN");
        let built = RuleSet::built_in().unwrap_or_else(|errors| panic!("{errors:?}"));
        let from_dir = RuleSet::load_dir(&dir).unwrap_or_else(|errors| panic!("{errors:?}"));
        assert_eq!(built.rules.len(), from_dir.rules.len());
        assert_eq!(built.catalog.len(), from_dir.catalog.len());
        assert!(built.rules.len() > 40);
    }
}
