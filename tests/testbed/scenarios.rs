//! The scenario catalog's reader and judge, typed against plateau's own verdict types:
//! `tests/testbed/scenario.sh` asks it which scenarios a file holds, how to run one (as
//! shell assignments), and whether a diagnosis's `evidence.json` gave the verdict the
//! scenario expects. Run by `cargo test` without arguments, it checks the catalog: every
//! expectation names a bound and a cause that some rule can give, every fault a host the
//! testbed has, every load one that parses.
//!
//!   cargo test -q --test scenarios                         # check tests/testbed/scenarios.toml
//!   cargo test -q --test scenarios -- check FILE
//!   cargo test -q --test scenarios -- names FILE kafka|tansu
//!   cargo test -q --test scenarios -- plan FILE BROKER NAME
//!   cargo test -q --test scenarios -- score FILE BROKER NAME REPORT_DIR SECONDS ROWS_FILE

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use plateau::diagnose::{Diagnosis, RateSearch, SearchSpec};
use plateau::kafka::Ramp;
use plateau::rules::eval::RuleState;
use plateau::rules::{Bound, RuleSet};
use serde::Deserialize;

/// A catalog file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Catalog {
    /// The diagnose flags each broker's scenarios share.
    #[serde(default)]
    broker: BTreeMap<BrokerKind, Shared>,
    scenario: Vec<Scenario>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Shared {
    #[serde(default)]
    flags: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BrokerKind {
    #[default]
    Kafka,
    Tansu,
}

impl std::str::FromStr for BrokerKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "kafka" => Ok(BrokerKind::Kafka),
            "tansu" => Ok(BrokerKind::Tansu),
            _ => Err(format!("broker '{text}': use kafka or tansu")),
        }
    }
}

/// One labelled fault and the verdict it must give.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    name: String,
    #[serde(default)]
    broker: BrokerKind,
    about: String,
    expect: Expect,
    #[serde(default = "default_min_confidence")]
    min_confidence: f64,
    search: Option<String>,
    ramp: Option<String>,
    size: Option<u64>,
    devices: Option<u64>,
    generators: Option<usize>,
    #[serde(default)]
    flags: Vec<String>,
    base_flags: Option<Vec<String>>,
    topic: Option<Topic>,
    pipeline: Option<Pipeline>,
    storage: Option<String>,
    storage_on: Option<String>,
    #[serde(default)]
    fault: Vec<Fault>,
}

fn default_min_confidence() -> f64 {
    0.5
}

/// A bound as the table writes it, with its cause when it has one: `network:link`.
fn named(bound: Bound, cause: &Option<String>) -> String {
    match cause {
        Some(cause) => format!("{bound}:{cause}"),
        None => bound.to_string(),
    }
}

/// The verdict a scenario must give.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    bound: Bound,
    cause: Option<String>,
    /// A bound whose evidence the cause explains (its symptom).
    explains: Option<Bound>,
    runner_up: Option<Bound>,
    runner_up_cause: Option<String>,
}

impl Expect {
    /// As the table writes it: `bound:cause~symptom>runner-up:cause`.
    fn text(&self) -> String {
        let mut text = named(self.bound, &self.cause);
        if let Some(symptom) = self.explains {
            text.push_str(&format!("~{symptom}"));
        }
        if let Some(runner_up) = self.runner_up {
            text.push_str(&format!(">{}", named(runner_up, &self.runner_up_cause)));
        }
        text
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Topic {
    #[serde(default = "default_partitions")]
    partitions: u32,
    #[serde(default = "default_rf")]
    rf: u32,
    #[serde(default)]
    config: Vec<String>,
}

impl Default for Topic {
    fn default() -> Topic {
        Topic { partitions: default_partitions(), rf: default_rf(), config: Vec::new() }
    }
}

fn default_partitions() -> u32 {
    12
}

fn default_rf() -> u32 {
    3
}

/// Seed 000's stage past Kafka: the consumer host's group, the database host sampled.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pipeline {
    members: usize,
    #[serde(default)]
    sink: bool,
    sink_table: Option<String>,
}

/// A fault the testbed injects; each kind is implemented once, in scenario.sh's
/// `fault_<kind>`.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Fault {
    /// A tbf shaper on each host's link.
    Link { hosts: Vec<String>, rate: String },
    /// A CFS quota on each host or container.
    Cpu { hosts: Vec<String>, cores: f64 },
    /// A blkio write limit on each host or container.
    DiskWrite { hosts: Vec<String>, bytes_per_sec: u64 },
    /// A Kafka client quota.
    Quota { client: String, producer_byte_rate: u64 },
    /// Synchronous work per event on each consumer member.
    Processing { us_per_event: u64 },
}

/// The testbed's hosts, with the octet of their address (their link's name).
const HOSTS: [(&str, u8); 7] =
    [("gen1", 11), ("gen2", 12), ("broker1", 21), ("broker2", 22), ("broker3", 23), ("cons1", 31), ("db1", 41)];

/// The containers inside hosts that faults may name.
const CONTAINERS: [&str; 4] = ["broker1/broker", "broker2/broker", "broker3/broker", "db1/postgres"];

fn octet(host: &str) -> Option<u8> {
    HOSTS.iter().find(|(name, _)| *name == host).map(|(_, octet)| *octet)
}

fn read_catalog(path: &Path) -> Result<Catalog, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: cannot read: {err}", path.display()))?;
    toml::from_str(&text).map_err(|err| format!("{}: {err}", path.display()))
}

/// Every mistake in `catalog` that would only show when its scenario runs.
fn check(catalog: &Catalog, rules: &RuleSet) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let causes = |bound: Bound| -> std::collections::BTreeSet<&str> {
        rules.rules.iter().filter(|r| r.bound == bound).map(|r| r.cause.as_str()).collect()
    };
    for s in &catalog.scenario {
        let at = |message: String| format!("scenario {} ({:?}): {message}", s.name, s.broker);
        if !seen.insert((s.broker, s.name.clone())) {
            problems.push(at("defined twice".into()));
        }
        for (bound, cause) in [(Some(s.expect.bound), &s.expect.cause), (s.expect.runner_up, &s.expect.runner_up_cause)]
        {
            if let (Some(bound), Some(cause)) = (bound, cause)
                && !causes(bound).contains(&cause.as_str())
            {
                problems.push(at(format!("no rule gives {bound}: {cause} (its rules' causes: {:?})", causes(bound))));
            }
        }
        if s.expect.runner_up.is_none() && s.expect.runner_up_cause.is_some() {
            problems.push(at("runner_up_cause without runner_up".into()));
        }
        if !(0.0..=1.0).contains(&s.min_confidence) {
            problems.push(at(format!("min_confidence {} is not 0 to 1", s.min_confidence)));
        }
        match (&s.search, &s.ramp) {
            (Some(search), None) => {
                if let Err(err) = search.parse::<SearchSpec>().map(RateSearch::new) {
                    problems.push(at(format!("search '{search}': {err}")));
                }
            }
            (None, Some(ramp)) => {
                if let Err(err) = ramp.parse::<Ramp>() {
                    problems.push(at(format!("ramp '{ramp}': {err}")));
                }
            }
            _ => problems.push(at("give either search or ramp".into())),
        }
        for fault in &s.fault {
            let hosts: &[String] = match fault {
                Fault::Link { hosts, .. } => {
                    if let Some(host) = hosts.iter().find(|h| octet(h).is_none()) {
                        problems.push(at(format!("link fault on '{host}': links are the hosts' ({HOSTS:?})")));
                    }
                    &[]
                }
                Fault::Cpu { hosts, cores } => {
                    if !(cores.is_finite() && *cores > 0.0) {
                        problems.push(at(format!("cpu fault of {cores} cores")));
                    }
                    hosts
                }
                Fault::DiskWrite { hosts, .. } => hosts,
                Fault::Quota { .. } | Fault::Processing { .. } => &[],
            };
            if let Some(host) = hosts.iter().find(|h| octet(h).is_none() && !CONTAINERS.contains(&h.as_str())) {
                problems.push(at(format!("no host or container '{host}' on the testbed")));
            }
            if matches!(fault, Fault::Quota { .. }) && s.broker == BrokerKind::Tansu {
                problems.push(at("tansu has no client quotas".into()));
            }
            if matches!(fault, Fault::Processing { .. }) && s.pipeline.is_none() {
                problems.push(at("a processing fault needs a pipeline (consumers)".into()));
            }
        }
        if s.broker == BrokerKind::Tansu && (s.pipeline.is_some() || s.topic.is_some()) {
            problems.push(at("the tansu testbed has no consumers and its own topic".into()));
        }
    }
    problems
}

/// Quotes `text` for a POSIX shell.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn array(items: &[String]) -> String {
    format!("({})", items.iter().map(|i| quoted(i)).collect::<Vec<_>>().join(" "))
}

/// How scenario.sh runs `s`: shell assignments of its table text, topic, pipeline, the
/// diagnose flags and the faults (one `KIND ARG…` word list each).
fn plan(catalog: &Catalog, s: &Scenario) -> String {
    let mut flags = s
        .base_flags
        .clone()
        .unwrap_or_else(|| catalog.broker.get(&s.broker).map(|b| b.flags.clone()).unwrap_or_default());
    let mut add = |flag: &str, value: Option<String>| {
        if let Some(value) = value {
            flags.extend([flag.to_string(), value]);
        }
    };
    add("--search", s.search.clone());
    add("--ramp", s.ramp.clone());
    add("--size", s.size.map(|v| v.to_string()));
    add("--devices", s.devices.map(|v| v.to_string()));
    add("--consumer-members", s.pipeline.as_ref().map(|p| p.members.to_string()));
    add("--sink-table", s.pipeline.as_ref().and_then(|p| p.sink_table.clone()));
    let mut faults = Vec::new();
    for fault in &s.fault {
        match fault {
            Fault::Link { hosts, rate } => {
                faults.extend(hosts.iter().map(|h| format!("link {} {rate}", octet(h).unwrap_or_default())))
            }
            Fault::Cpu { hosts, cores } => faults.extend(hosts.iter().map(|h| format!("cpu {h} {cores}"))),
            Fault::DiskWrite { hosts, bytes_per_sec } => {
                faults.extend(hosts.iter().map(|h| format!("disk_write {h} {bytes_per_sec}")))
            }
            Fault::Quota { client, producer_byte_rate } => faults.push(format!("quota {client} {producer_byte_rate}")),
            Fault::Processing { us_per_event } => add("--process-us", Some(us_per_event.to_string())),
        }
    }
    flags.extend(s.flags.iter().cloned());
    let pipeline = s.pipeline.as_ref();
    let topic = s.topic.as_ref().map_or_else(Topic::default, |t| Topic { config: t.config.clone(), ..*t });
    [
        format!("about={}", quoted(&s.about)),
        format!("expected={}", quoted(&s.expect.text())),
        format!("min_confidence={}", s.min_confidence),
        format!("generators_used={}", s.generators.unwrap_or(2)),
        format!("topic_partitions={}", topic.partitions),
        format!("topic_rf={}", topic.rf),
        format!("topic_config={}", array(&topic.config)),
        format!("pipeline={}", u8::from(pipeline.is_some())),
        format!("sink={}", u8::from(pipeline.is_some_and(|p| p.sink))),
        format!("storage={}", quoted(s.storage.as_deref().unwrap_or(""))),
        format!("storage_on={}", quoted(s.storage_on.as_deref().unwrap_or(""))),
        format!("flags={}", array(&flags)),
        format!("faults={}", array(&faults)),
    ]
    .join("\n")
}

/// The judgment of one scenario's diagnosis, as the console line and the table's row.
struct Score {
    right: bool,
    line: String,
    row: String,
}

fn score(s: &Scenario, diagnosis: Option<&Diagnosis>, seconds: u64) -> Score {
    let expected = s.expect.text();
    let Some(d) = diagnosis else {
        return Score {
            right: false,
            line: format!(
                "{:<14} WRONG expected {expected:<30} got no verdict (diagnose failed)  {seconds:3} s",
                s.name
            ),
            row: format!("| {} | {} | {expected} | error | - | - | - | {seconds} s | WRONG |", s.name, s.about),
        };
    };
    let v = &d.verdict;
    let matches = |want: Bound, want_cause: &Option<String>, got: Bound, cause: &Option<String>| {
        want == got && (want_cause.is_none() || want_cause == cause)
    };
    let mut right = matches(s.expect.bound, &s.expect.cause, v.bound, &v.cause) && v.confidence >= s.min_confidence;
    if let Some(runner_up) = s.expect.runner_up {
        right &= v.runner_up.is_some_and(|got| matches(runner_up, &s.expect.runner_up_cause, got, &v.runner_up_cause));
    }
    if let Some(symptom) = s.expect.explains {
        right &= v.explained.iter().any(|(bound, _)| *bound == symptom);
    }
    let got = named(v.bound, &v.cause) + &v.explained.iter().map(|(b, _)| format!("~{b}")).collect::<String>();
    let runner_up = v.runner_up.map_or("-".to_string(), |b| named(b, &v.runner_up_cause));
    let mut scores: Vec<(Bound, f64)> = v.scores.iter().map(|(b, s)| (*b, *s)).collect();
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    let scores: Vec<String> = scores.iter().map(|(b, s)| format!("{b}={s}")).collect();
    // Which rules made the scores: a CI log is often all there is of a run gone wrong.
    let fired: Vec<&str> =
        v.rules.iter().filter(|r| matches!(r.state, RuleState::Fired { .. })).map(|r| r.id.as_str()).collect();
    let verdict = if right { "ok" } else { "WRONG" };
    let plateau = thousands(d.plateau.plateau_msgs_per_sec);
    Score {
        right,
        line: format!(
            "{:<14} {verdict:<5} expected {expected:<30} got {got:<30} runner-up {runner_up:<28} confidence {:.2} (min {})  plateau {plateau:>6} msg/s  {seconds:3} s  scores {} fired {}",
            s.name,
            v.confidence,
            s.min_confidence,
            if scores.is_empty() { "-".to_string() } else { scores.join(",") },
            if fired.is_empty() { "-".to_string() } else { fired.join(",") },
        ),
        row: format!(
            "| {} | {} | {expected} | {got} | {runner_up} | {:.2} (≥ {}) | {plateau} | {seconds} s | {verdict} |",
            s.name, s.about, v.confidence, s.min_confidence
        ),
    }
}

/// A rate as the table writes it: whole, with thousands separated (`20,790`).
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < -0.5 { format!("-{out}") } else { out }
}

fn find<'a>(catalog: &'a Catalog, broker: &str, name: &str) -> Result<&'a Scenario, String> {
    let broker: BrokerKind = broker.parse()?;
    catalog.scenario.iter().find(|s| s.broker == broker && s.name == name).ok_or_else(|| {
        let known: Vec<&str> =
            catalog.scenario.iter().filter(|s| s.broker == broker).map(|s| s.name.as_str()).collect();
        format!("unknown scenario '{name}' on {broker:?} (known: {})", known.join(" "))
    })
}

fn load_rules() -> Result<RuleSet, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    RuleSet::load_dir(&dir).map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
}

fn run(args: &[String]) -> Result<bool, String> {
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testbed/scenarios.toml");
    match args {
        [command, file, broker] if command == "names" => {
            let broker: BrokerKind = broker.parse()?;
            let catalog = read_catalog(Path::new(file))?;
            let names: Vec<&str> =
                catalog.scenario.iter().filter(|s| s.broker == broker).map(|s| s.name.as_str()).collect();
            println!("{}", names.join(" "));
            Ok(true)
        }
        [command, file, broker, name] if command == "plan" => {
            let catalog = read_catalog(Path::new(file))?;
            println!("{}", plan(&catalog, find(&catalog, broker, name)?));
            Ok(true)
        }
        [command, file, broker, name, report, seconds, rows] if command == "score" => {
            let catalog = read_catalog(Path::new(file))?;
            let scenario = find(&catalog, broker, name)?;
            let diagnosis = plateau::report::findings::read_evidence(&Path::new(report).join("evidence.json")).ok();
            let seconds = seconds.parse().map_err(|_| format!("seconds '{seconds}' is not a number"))?;
            let scored = score(scenario, diagnosis.as_ref(), seconds);
            println!("{}", scored.line);
            let mut table = std::fs::read_to_string(rows).unwrap_or_default();
            table.push_str(&scored.row);
            table.push('\n');
            std::fs::write(rows, table).map_err(|err| format!("{rows}: {err}"))?;
            Ok(scored.right)
        }
        [command, file] if command == "check" => check_file(Path::new(file)),
        // `cargo test` (any libtest flags or filters): the project's own catalog.
        _ => check_file(&default),
    }
}

fn check_file(path: &Path) -> Result<bool, String> {
    let catalog = read_catalog(path)?;
    let problems = check(&catalog, &load_rules()?);
    for problem in &problems {
        eprintln!("{}: {problem}", path.display());
    }
    if problems.is_empty() {
        println!("{}: {} scenarios checked", path.display(), catalog.scenario.len());
    }
    Ok(problems.is_empty())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("scenarios: {message}");
            ExitCode::from(2)
        }
    }
}
