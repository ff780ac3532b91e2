//! The engine: applies a [`RuleSet`] to a window of [`Evidence`] and combines the rules
//! that fired into one [`Verdict`].
//!
//! It does no I/O and cannot fail. Logic is three-valued: a rule whose signals have no
//! data for an instance is *unknown* there (and the verdict lists what was missing),
//! never silently false; an expression that does not evaluate to a boolean is unknown too.
//! Host-scoped rules are evaluated per host; a rule fires when it holds on any host.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use evalexpr::{Context, DefaultNumericTypes, EvalexprError, EvalexprResult, Value};
use serde::{Deserialize, Serialize};

use super::{Bound, Rule, RuleSet, Scope, SignalId, TemplatePart, ValueFormat};
use crate::evidence::Evidence;

/// How one rule came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum RuleState {
    /// The condition held on these instances; one evidence line each.
    Fired {
        /// Where it held.
        instances: Vec<String>,
        /// The evidence template, filled in.
        evidence: Vec<String>,
    },
    /// The condition was evaluated and did not hold anywhere.
    Quiet,
    /// The condition could not be evaluated anywhere it could have held.
    Unknown {
        /// What was missing (`signal@instance`) or why it failed.
        missing: Vec<String>,
    },
    /// The run did not measure the stage the rule is about (its `applies_if` signal has
    /// no data at all): it counts neither for nor against the verdict.
    #[serde(rename = "not_applicable")]
    NotApplicable {
        /// The signal that had no data.
        absent: String,
    },
}

/// One rule's outcome, with what a report needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleOutcome {
    /// The rule id.
    pub id: String,
    /// The bound it points to.
    pub bound: Bound,
    /// The cause of that bound it names.
    #[serde(default)]
    pub cause: String,
    /// Its weight.
    pub weight: f64,
    /// The condition, as written.
    pub when: String,
    /// What happened.
    #[serde(flatten)]
    pub state: RuleState,
    /// What to do when it fired.
    pub advice: String,
    /// Where its threshold comes from.
    pub anchor: String,
    /// The bound whose symptoms its cause explains, if any (see [`super::Rule::explains`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explains: Option<Bound>,
}

/// One line of evidence in a verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceLine {
    /// The rule that produced it.
    pub rule: String,
    /// The bound it supports.
    pub bound: Bound,
    /// The line.
    pub text: String,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The bound resource.
    pub bound: Bound,
    /// How sure, 0–1.
    pub confidence: f64,
    /// Which cause of the bound: the one the heaviest fired rule of the bound names
    /// (`network: replication traffic`, `kafka: quota`); none for `none` and `unknown`.
    #[serde(default)]
    pub cause: Option<String>,
    /// The next most likely bound, if any rule pointed elsewhere.
    pub runner_up: Option<Bound>,
    /// The runner-up's cause, named the same way.
    #[serde(default)]
    pub runner_up_cause: Option<String>,
    /// Bounds whose fired rules the verdict's cause explains — its symptoms on the same
    /// hosts (a broker's link filled by keys parked on its partitions), with their causes;
    /// never the runner-up, which is the next independent limit.
    #[serde(default)]
    pub explained: Vec<(Bound, String)>,
    /// Score of each bound: the weights of its rules that fired.
    pub scores: BTreeMap<Bound, f64>,
    /// Evidence lines, the chosen bound's first.
    pub evidence: Vec<EvidenceLine>,
    /// Advice of the rules that fired for the chosen bound.
    pub advice: Vec<String>,
    /// What was missing (`signal@instance`), from rules that stayed unknown.
    pub missing: Vec<String>,
    /// Every rule's outcome.
    pub rules: Vec<RuleOutcome>,
}

/// The values of the signals a rule uses, for one instance.
struct Bindings<'a> {
    names: &'a [(String, SignalId)],
    handles: Vec<Value>,
    data: Vec<&'a [f64]>,
}

impl<'a> Bindings<'a> {
    /// `data[i]` bound to `names[i]`.
    fn new(names: &'a [(String, SignalId)], data: Vec<&'a [f64]>) -> Bindings<'a> {
        Bindings { names, handles: (0..names.len()).map(|i| Value::Int(i as i64)).collect(), data }
    }
}

fn aggregate(name: &str, values: &[f64], threshold: Option<f64>) -> EvalexprResult<f64> {
    if values.is_empty() {
        return Err(EvalexprError::CustomMessage("no data in the window".into()));
    }
    let n = values.len() as f64;
    let quantile = |q: f64| {
        let mut sorted = values.to_vec();
        let rank = ((q * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1);
        let (_, value, _) = sorted.select_nth_unstable_by(rank, f64::total_cmp);
        *value
    };
    Ok(match (name, threshold) {
        ("avg", None) => values.iter().sum::<f64>() / n,
        ("min", None) => values.iter().copied().fold(f64::INFINITY, f64::min),
        ("max", None) => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ("p50", None) => quantile(0.50),
        ("p95", None) => quantile(0.95),
        ("p99", None) => quantile(0.99),
        ("last", None) => values[values.len() - 1],
        ("frac_above", Some(t)) => values.iter().filter(|v| **v > t).count() as f64 / n,
        ("frac_below", Some(t)) => values.iter().filter(|v| **v < t).count() as f64 / n,
        (name, _) => return Err(EvalexprError::CustomMessage(format!("wrong arguments to {name}"))),
    })
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Float(f) => Some(*f),
        Value::Int(i) => Some(*i as f64),
        _ => None,
    }
}

impl Context for Bindings<'_> {
    type NumericTypes = DefaultNumericTypes;

    fn get_value(&self, identifier: &str) -> Option<&Value> {
        self.names.iter().position(|(name, _)| name == identifier).map(|i| &self.handles[i])
    }

    fn call_function(&self, identifier: &str, argument: &Value) -> EvalexprResult<Value> {
        let (handle, threshold) = match argument {
            Value::Int(handle) => (*handle, None),
            Value::Tuple(args) if args.len() == 2 => match (&args[0], number(&args[1])) {
                (Value::Int(handle), Some(t)) => (*handle, Some(t)),
                _ => {
                    return Err(EvalexprError::CustomMessage(format!(
                        "{identifier}(signal, threshold) takes a signal and a number"
                    )));
                }
            },
            _ => return Err(EvalexprError::CustomMessage(format!("{identifier} takes a signal"))),
        };
        let values =
            self.data.get(handle as usize).ok_or_else(|| EvalexprError::CustomMessage("not a signal".into()))?;
        aggregate(identifier, values, threshold).map(Value::Float)
    }

    fn are_builtin_functions_disabled(&self) -> bool {
        true
    }

    fn set_builtin_functions_disabled(&mut self, _disabled: bool) -> EvalexprResult<()> {
        Err(EvalexprError::CustomMessage("builtin functions stay disabled".into()))
    }
}

/// Evaluates a compiled condition on made-up data, so that a condition that is not a
/// true/false expression (or calls a function wrongly) is an error at load time.
pub(crate) fn type_check(node: &evalexpr::Node, signals: &[(String, SignalId)], text: &str) -> Result<(), String> {
    let sample = [0.5, 1.0];
    let bindings = Bindings::new(signals, signals.iter().map(|_| &sample[..]).collect());
    match node.eval_with_context(&bindings) {
        Ok(Value::Boolean(_)) => Ok(()),
        Ok(_) => Err(format!("'{text}' is not a true/false condition")),
        Err(err) => Err(format!("'{text}' does not evaluate: {err}")),
    }
}

/// The series of the evidence, indexed by signal and instance, cut to the window.
struct Index<'a> {
    by_signal: HashMap<SignalId, BTreeMap<&'a str, &'a [f64]>>,
}

impl<'a> Index<'a> {
    fn new(rules: &RuleSet, evidence: &'a Evidence, window: (u64, u64)) -> Index<'a> {
        let mut by_signal: HashMap<SignalId, BTreeMap<&str, &[f64]>> = HashMap::new();
        for series in &evidence.series {
            if let Some(id) = rules.catalog.id(&series.signal) {
                by_signal.entry(id).or_default().insert(series.instance.as_str(), series.window(window.0, window.1));
            }
        }
        Index { by_signal }
    }

    fn values(&self, id: SignalId, instance: Option<&str>) -> Option<&'a [f64]> {
        let series = self.by_signal.get(&id)?;
        let found = match instance {
            Some(instance) => series.get(instance),
            // A cluster-scoped signal: its one series, whatever it is called.
            None => series.values().next(),
        };
        found.copied().filter(|values| !values.is_empty())
    }

    fn instances(&self, id: SignalId) -> impl Iterator<Item = &'a str> + '_ {
        self.by_signal.get(&id).into_iter().flat_map(|series| series.keys().copied())
    }
}

fn format_value(value: f64, format: ValueFormat) -> String {
    match format {
        ValueFormat::Plain => format!("{value:.2}"),
        ValueFormat::Percent => format!("{:.0} %", value * 100.0),
        ValueFormat::MegabytesPerSec => format!("{:.1} MB/s", value / 1e6),
        ValueFormat::MegabitsPerSec => format!("{:.1} Mbit/s", value / 1e6),
        ValueFormat::Integer => format!("{value:.0}"),
    }
}

fn render(template: &[TemplatePart], instance: &str, bindings: &Bindings) -> String {
    let mut out = String::new();
    for part in template {
        match part {
            TemplatePart::Text(text) => out.push_str(text),
            TemplatePart::Instance => out.push_str(instance),
            TemplatePart::Value(node, format) => {
                match node.eval_with_context(bindings).ok().as_ref().and_then(number) {
                    Some(value) => out.push_str(&format_value(value, *format)),
                    None => out.push('?'),
                }
            }
        }
    }
    out
}

/// Binds `signals` to their windowed values on `instance` (a host-scoped signal's there, a
/// cluster-scoped one's the run's), or names each that has none (`signal@instance`).
fn bind<'a>(
    signals: &'a [(String, SignalId)],
    rules: &RuleSet,
    index: &Index<'a>,
    instance: &str,
) -> Result<Bindings<'a>, Vec<String>> {
    let (bindings, absent) = bind_each(signals, rules, index, instance);
    if absent.is_empty() { Ok(bindings) } else { Err(absent) }
}

/// Binds `signals` as [`bind`] does, a missing one to no values (its aggregates fail, and
/// the evidence text says `?`).
fn bind_present<'a>(
    signals: &'a [(String, SignalId)],
    rules: &RuleSet,
    index: &Index<'a>,
    instance: &str,
) -> Bindings<'a> {
    bind_each(signals, rules, index, instance).0
}

fn bind_each<'a>(
    signals: &'a [(String, SignalId)],
    rules: &RuleSet,
    index: &Index<'a>,
    instance: &str,
) -> (Bindings<'a>, Vec<String>) {
    let mut data = Vec::with_capacity(signals.len());
    let mut absent = Vec::new();
    for (name, id) in signals {
        let host = (rules.catalog.get(*id).scope == Scope::Host).then_some(instance);
        match index.values(*id, host) {
            Some(values) => data.push(values),
            None => {
                absent.push(format!("{name}@{}", host.unwrap_or("cluster")));
                data.push(&[][..]);
            }
        }
    }
    (Bindings::new(signals, data), absent)
}

/// Whether one of the rule's `unless` conditions holds on `instance` — each judged only
/// where every one of its signals was measured there: an unmeasured excuse excuses nothing.
fn excused(rule: &Rule, rules: &RuleSet, index: &Index, instance: &str) -> bool {
    rule.unless.iter().any(|unless| {
        bind(&unless.signals, rules, index, instance)
            .is_ok_and(|bindings| unless.when.eval_boolean_with_context(&bindings).unwrap_or(false))
    })
}

fn evaluate_rule(rule: &Rule, rules: &RuleSet, index: &Index, evidence: &Evidence) -> RuleOutcome {
    let outcome = |state| RuleOutcome {
        id: rule.id.clone(),
        bound: rule.bound,
        cause: rule.cause.clone(),
        weight: rule.weight,
        when: rule.when_text.clone(),
        state,
        advice: rule.advice.clone(),
        anchor: rule.anchor.clone(),
        explains: rule.explains,
    };
    if let Some((name, _)) = &rule.applies_if
        && !evidence.series.iter().any(|s| &s.signal == name && !s.values.is_empty())
    {
        return outcome(RuleState::NotApplicable { absent: name.clone() });
    }
    let scope = |id: SignalId| rules.catalog.get(id).scope;
    // The condition's signals decide where and whether the rule is judged; a signal only
    // the evidence text uses shows as `?` where it is missing.
    let when_signals = &rule.signals[..rule.when_signals];
    let host_signals: Vec<SignalId> =
        when_signals.iter().map(|(_, id)| *id).filter(|id| scope(*id) == Scope::Host).collect();
    let instances: BTreeSet<&str> = if host_signals.is_empty() {
        BTreeSet::from(["cluster"])
    } else {
        host_signals.iter().flat_map(|id| index.instances(*id)).collect()
    };
    let mut fired = Vec::new();
    let mut evidence = Vec::new();
    let mut missing = Vec::new();
    let mut evaluated = false;
    if instances.is_empty() {
        missing.extend(when_signals.iter().map(|(name, _)| format!("{name}@any host")));
    }
    for instance in instances {
        let bindings = match bind(when_signals, rules, index, instance) {
            Ok(bindings) => bindings,
            Err(absent) => {
                missing.extend(absent);
                continue;
            }
        };
        match rule.when.eval_boolean_with_context(&bindings) {
            Ok(true) if excused(rule, rules, index, instance) => evaluated = true,
            Ok(true) => {
                evaluated = true;
                fired.push(instance.to_string());
                evidence.push(render(&rule.evidence, instance, &bind_present(&rule.signals, rules, index, instance)));
            }
            Ok(false) => evaluated = true,
            Err(err) => missing.push(format!("{}@{instance} ({err})", rule.id)),
        }
    }
    let state = if !fired.is_empty() {
        RuleState::Fired { instances: fired, evidence }
    } else if evaluated {
        RuleState::Quiet
    } else {
        RuleState::Unknown { missing }
    };
    outcome(state)
}

/// Judges the evidence in `[window.0, window.1]` (Unix ms). `plateau` says whether
/// throughput stopped following the target; without a plateau the verdict is `none`.
pub fn evaluate(rules: &RuleSet, evidence: &Evidence, window: (u64, u64), plateau: bool) -> Verdict {
    let index = Index::new(rules, evidence, window);
    // Rules are independent: judge them on every core, keeping their order.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(rules.rules.len().max(1));
    let chunk = rules.rules.len().div_ceil(threads).max(1);
    let outcomes: Vec<RuleOutcome> = std::thread::scope(|scope| {
        let index = &index;
        let handles: Vec<_> = rules
            .rules
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter().map(|rule| evaluate_rule(rule, rules, index, evidence)).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    combine(outcomes, plateau)
}

/// Whether a fired rule of bound `cause` explains bound `symptom`: its `explains` is
/// `symptom` and it fired on every host where `symptom`'s rules fired (a rule of `symptom`
/// judged on the cluster as a whole is not explained by a host's cause).
fn explains(outcomes: &[RuleOutcome], cause: Bound, symptom: Bound) -> bool {
    let fired = |o: &RuleOutcome| match &o.state {
        RuleState::Fired { instances, .. } => Some(instances.clone()),
        _ => None,
    };
    let symptoms: BTreeSet<String> =
        outcomes.iter().filter(|o| o.bound == symptom).filter_map(fired).flatten().collect();
    !symptoms.is_empty()
        && outcomes
            .iter()
            .filter(|o| o.bound == cause && o.explains == Some(symptom))
            .filter_map(fired)
            .any(|hosts| symptoms.iter().all(|h| hosts.contains(h)))
}

/// The bound of a fired rule that explains `top`, if any.
fn explainer(outcomes: &[RuleOutcome], top: Bound) -> Option<Bound> {
    outcomes.iter().map(|o| o.bound).find(|&cause| cause != top && explains(outcomes, cause, top))
}

/// The confidence a verdict one rule alone gives can reach: a single rule is one reading
/// of one source, however clear.
pub const SINGLE_RULE: f64 = 0.6;

/// How far the rules that fired for a verdict corroborate it: one rule [`SINGLE_RULE`],
/// each independent rule more a fifth, three or more in full.
fn corroboration(rules: usize) -> f64 {
    (SINGLE_RULE + 0.2 * rules.saturating_sub(1) as f64).min(1.0)
}

/// The fired rules behind verdict `verdict`: its own, the symptoms in `top` it explains
/// when they led, and those of any bound it explains (leaders waiting on followers whose
/// links are full).
fn support(outcomes: &[RuleOutcome], verdict: Bound, top: Bound) -> Vec<&str> {
    let behind = |o: &RuleOutcome| o.bound == verdict || o.bound == top || explains(outcomes, verdict, o.bound);
    let mut ids: Vec<&str> = outcomes
        .iter()
        .filter(|o| matches!(o.state, RuleState::Fired { .. }) && behind(o))
        .map(|o| o.id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Combines rule outcomes into a verdict: the bound whose fired rules weigh most wins;
/// confidence falls with a strong runner-up, with rules that could not be evaluated, and
/// with thin corroboration (one rule alone: [`SINGLE_RULE`]).
pub fn combine(outcomes: Vec<RuleOutcome>, plateau: bool) -> Verdict {
    let mut scores: BTreeMap<Bound, f64> = BTreeMap::new();
    let (mut unknown_weight, mut total_weight) = (0.0, 0.0);
    let mut missing = BTreeSet::new();
    for outcome in &outcomes {
        if matches!(outcome.state, RuleState::NotApplicable { .. }) {
            continue;
        }
        total_weight += outcome.weight;
        match &outcome.state {
            RuleState::Fired { .. } => *scores.entry(outcome.bound).or_default() += outcome.weight,
            RuleState::Unknown { missing: m } => {
                unknown_weight += outcome.weight;
                missing.extend(m.iter().cloned());
            }
            RuleState::Quiet | RuleState::NotApplicable { .. } => {}
        }
    }
    let mut ranked: Vec<(Bound, f64)> = scores.iter().map(|(b, s)| (*b, *s)).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let unknown_share = if total_weight > 0.0 { unknown_weight / total_weight } else { 1.0 };
    // The verdict, its confidence, the runner-up, and the fired rules behind the verdict.
    let (bound, confidence, runner_up, behind) = match (plateau, ranked.first()) {
        (false, _) => (Bound::None, 1.0 - 0.5 * unknown_share, ranked.first().map(|(b, _)| *b), Vec::new()),
        (true, None) => (Bound::Unknown, 0.0, None, Vec::new()),
        (true, Some(&(top, top_score))) => {
            // The leading bound's symptoms may have a cause in another bound: that bound
            // is the verdict, and the symptoms' weight counts for it against the rest.
            let verdict = explainer(&outcomes, top).unwrap_or(top);
            let together = top_score + if verdict == top { 0.0 } else { scores.get(&verdict).copied().unwrap_or(0.0) };
            // The runner-up is the next independent limit: not a bound whose symptoms
            // another fired bound explains (followers waiting on full links).
            let explained = |b: Bound| ranked.iter().any(|(c, _)| *c != b && explains(&outcomes, *c, b));
            let next = ranked.iter().find(|(b, _)| *b != top && *b != verdict && !explained(*b));
            let second = next.map(|(_, s)| *s).unwrap_or(0.0);
            let share = together / (together + second) * (1.0 - 0.5 * unknown_share);
            let behind = support(&outcomes, verdict, top);
            (verdict, share * corroboration(behind.len()), next.map(|(b, _)| *b), behind)
        }
    };
    let mut evidence: Vec<EvidenceLine> = Vec::new();
    let mut advice = Vec::new();
    for outcome in &outcomes {
        if let RuleState::Fired { evidence: lines, .. } = &outcome.state {
            for text in lines {
                evidence.push(EvidenceLine { rule: outcome.id.clone(), bound: outcome.bound, text: text.clone() });
            }
            if outcome.bound == bound {
                advice.push(outcome.advice.clone());
            }
        }
    }
    evidence.sort_by_key(|line| line.bound != bound);
    // A bound's cause: its heaviest fired rule's, the first such rule on a tie.
    let cause_of = |of: Bound| {
        outcomes
            .iter()
            .filter(|o| o.bound == of && matches!(o.state, RuleState::Fired { .. }))
            .fold(None::<&RuleOutcome>, |best, o| match best {
                Some(b) if b.weight >= o.weight => Some(b),
                _ => Some(o),
            })
            .map(|o| o.cause.clone())
    };
    let cause = if plateau { cause_of(bound) } else { None };
    // A verdict one rule gives says so: nothing else measured points the same way.
    if let [alone] = behind[..] {
        missing.insert(format!(
            "corroboration: the verdict rests on one rule ({alone}) — no other measurement points the same way, so its confidence is held to {:.0} %",
            SINGLE_RULE * 100.0
        ));
    }
    let runner_up_cause = runner_up.and_then(cause_of);
    let explained = if plateau && bound != Bound::Unknown {
        scores
            .keys()
            .filter(|&&b| b != bound && explains(&outcomes, bound, b))
            .filter_map(|&b| Some((b, cause_of(b)?)))
            .collect()
    } else {
        Vec::new()
    };
    Verdict {
        bound,
        cause,
        confidence: confidence.clamp(0.0, 1.0),
        runner_up,
        runner_up_cause,
        explained,
        scores,
        evidence,
        advice,
        missing: missing.into_iter().collect(),
        rules: outcomes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Series;
    use crate::signals::SignalCatalog;

    fn rules() -> RuleSet {
        let catalog = SignalCatalog::parse(
            "signals.toml",
            r#"
[[signal]]
name = "host_cpu_busy"
unit = "ratio"
scope = "host"
description = "CPU busy"
[[signal]]
name = "producer_achieved_ratio"
unit = "ratio"
scope = "cluster"
description = "achieved over target"
"#,
        )
        .unwrap();
        RuleSet::from_sources(
            catalog,
            &[(
                "r.toml".into(),
                r#"
[[rule]]
id = "cpu.saturated"
bound = "cpu"
weight = 2
when = "avg(host_cpu_busy) > 0.9 && frac_above(host_cpu_busy, 0.85) >= 0.8"
evidence = "{instance}: CPU busy {avg(host_cpu_busy):pct}"
advice = "Give the broker more CPU."
[[rule]]
id = "client.not_keeping_up"
bound = "client"
when = "avg(producer_achieved_ratio) < 0.95"
evidence = "producers achieved {avg(producer_achieved_ratio):pct} of target"
advice = "Check the producers."
"#
                .into(),
            )],
        )
        .unwrap()
    }

    fn series(signal: &str, instance: &str, values: &[f64]) -> Series {
        let mut s = Series::new(signal, instance, "ratio");
        for (i, v) in values.iter().enumerate() {
            s.push(1000 * (i as u64 + 1), *v);
        }
        s
    }

    #[test]
    fn a_busy_host_makes_the_cpu_rule_fire_there_only() {
        let evidence = Evidence {
            series: vec![
                series("host_cpu_busy", "broker-1", &[0.95, 0.97, 0.99]),
                series("host_cpu_busy", "broker-2", &[0.2, 0.3, 0.2]),
            ],
            unavailable: vec![],
        };
        let verdict = evaluate(&rules(), &evidence, (0, 10_000), true);
        assert_eq!(verdict.bound, Bound::Cpu);
        match &verdict.rules[0].state {
            RuleState::Fired { instances, evidence } => {
                assert_eq!(instances, &["broker-1"]);
                assert_eq!(evidence[0], "broker-1: CPU busy 97 %");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(verdict.rules[1].state, RuleState::Unknown { .. }), "no producer data: unknown, not false");
        assert!(verdict.missing.contains(&"producer_achieved_ratio@cluster".to_string()));
        // One rule alone, one host's CPU: held to what a single rule may give.
        assert!(verdict.confidence <= SINGLE_RULE && verdict.confidence > 0.4, "{}", verdict.confidence);
        assert!(
            verdict.missing.iter().any(|m| m.contains("rests on one rule (cpu.saturated)")),
            "{:?}",
            verdict.missing
        );
    }

    #[test]
    fn missing_inputs_give_unknown_and_no_plateau_gives_none() {
        let verdict = evaluate(&rules(), &Evidence::default(), (0, 10_000), true);
        assert_eq!(verdict.bound, Bound::Unknown);
        assert!(verdict.rules.iter().all(|r| matches!(r.state, RuleState::Unknown { .. })));
        assert!(!verdict.missing.is_empty());
        let calm = Evidence { series: vec![series("host_cpu_busy", "h", &[0.1])], unavailable: vec![] };
        assert_eq!(evaluate(&rules(), &calm, (0, 10_000), false).bound, Bound::None);
    }

    #[test]
    fn a_signal_only_the_evidence_uses_does_not_keep_the_rule_from_being_judged() {
        let rule = r#"
[[rule]]
id = "client.not_keeping_up"
bound = "client"
when = "avg(producer_achieved_ratio) < 0.95"
evidence = "producers achieved {avg(producer_achieved_ratio):pct} of target, the CPU {avg(host_cpu_busy):pct} busy"
advice = "Check the producers."
"#;
        let set = RuleSet::from_sources(rules().catalog, &[("r.toml".into(), rule.into())]).unwrap();
        let achieved = |ratio: f64| Evidence {
            series: vec![series("producer_achieved_ratio", "cluster", &[ratio, ratio])],
            unavailable: vec![],
        };
        let lagging = evaluate(&set, &achieved(0.5), (0, 10_000), true);
        match &lagging.rules[0].state {
            RuleState::Fired { evidence, .. } => {
                assert_eq!(evidence[0], "producers achieved 50 % of target, the CPU ? busy");
            }
            other => panic!("{other:?}"),
        }
        assert!(lagging.missing.iter().all(|m| m.starts_with("corroboration:")), "{:?}", lagging.missing);
        assert_eq!(evaluate(&set, &achieved(0.99), (0, 10_000), true).rules[0].state, RuleState::Quiet);
    }

    #[test]
    fn the_window_limits_what_is_judged() {
        let evidence =
            Evidence { series: vec![series("host_cpu_busy", "h", &[0.1, 0.1, 0.99, 0.99, 0.99])], unavailable: vec![] };
        assert_eq!(evaluate(&rules(), &evidence, (3000, 5000), true).bound, Bound::Cpu);
        assert_eq!(evaluate(&rules(), &evidence, (1000, 2000), true).bound, Bound::Unknown);
    }

    #[test]
    fn aggregations() {
        let values = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(aggregate("avg", &values, None).unwrap(), 22.0);
        assert_eq!(aggregate("max", &values, None).unwrap(), 100.0);
        assert_eq!(aggregate("min", &values, None).unwrap(), 1.0);
        assert_eq!(aggregate("p50", &values, None).unwrap(), 3.0);
        assert_eq!(aggregate("p95", &values, None).unwrap(), 100.0);
        assert_eq!(aggregate("last", &values, None).unwrap(), 100.0);
        assert_eq!(aggregate("frac_above", &values, Some(2.5)).unwrap(), 0.6);
        assert_eq!(aggregate("frac_below", &values, Some(2.5)).unwrap(), 0.4);
        assert!(aggregate("avg", &[], None).is_err());
    }
}
