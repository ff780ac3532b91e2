//! The plan: what to diagnose, from a plan file (`probes/*.toml`) and flags, checked
//! once before anything runs.

use serde::{Deserialize, Serialize};

use super::search::SearchSpec;
use crate::kafka::{ProducerSettings, Ramp};
use crate::net::Target;

/// What to diagnose, from a plan file (`probes/*.toml`) or flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnosePlan {
    /// Agents on the generator hosts.
    #[serde(default)]
    pub generators: Vec<String>,
    /// Agents on the broker hosts.
    #[serde(default)]
    pub brokers: Vec<String>,
    /// Agents on consumer hosts: each runs `consumer_members` members of one consumer
    /// group through the ramp (seed 000's consumer stage), and is sampled.
    #[serde(default)]
    pub consumers: Vec<String>,
    /// Agents on the sink's database hosts (sampled over the run, not probed).
    #[serde(default)]
    pub databases: Vec<String>,
    /// Members of the consumer group on each consumer agent.
    #[serde(default = "default_consumer_members")]
    pub consumer_members: usize,
    /// The consumers' PostgreSQL sink (seed 000's table), a libpq connection string.
    #[serde(default)]
    pub sink: Option<String>,
    /// The sink's table.
    #[serde(default = "default_sink_table")]
    pub sink_table: String,
    /// Synchronous work per event on each consumer member, microseconds (seed 004's event bus).
    #[serde(default)]
    pub process_us: u64,
    /// Seed 004's SLA: the highest rate whose mean end-to-end latency stays under this.
    #[serde(default)]
    pub sla_e2e_ms: Option<f64>,
    /// The same with the 99th percentile end-to-end latency.
    #[serde(default)]
    pub sla_p99_ms: Option<f64>,
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Topic to produce to.
    pub topic: String,
    /// Create the topic with this many partitions when it does not exist.
    #[serde(default)]
    pub partitions: Option<u32>,
    /// Replication factor (for creating the topic and for the model).
    #[serde(default)]
    pub replication_factor: Option<u32>,
    /// The rate search, `START:MAX[:HOLD_S]` over all generators: the default load.
    #[serde(default = "default_search")]
    pub search: String,
    /// A fixed ramp instead of the search, `START:STEP:EVERY_S:MAX` over all generators
    /// (seed 000's: `20000:20000:10:200000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<String>,
    /// Simulated devices per generator.
    #[serde(default = "default_devices")]
    pub devices: u64,
    /// Pad events to this many bytes (0: unpadded).
    #[serde(default)]
    pub size: u64,
    /// Producer threads per generator.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Producer tuning (seed 000's by default).
    #[serde(default)]
    pub producer: ProducerSettings,
    /// Prometheus to query over the run.
    #[serde(default)]
    pub prometheus: Option<String>,
    /// JMX endpoints of the brokers (jmx_exporter URLs, or `jolokia+URL`).
    #[serde(default)]
    pub jmx: Vec<String>,
    /// Skip the disk probes (for production clusters).
    #[serde(default)]
    pub skip_disk: bool,
    /// Directory the disk probe writes in on each broker.
    #[serde(default = "default_disk_path")]
    pub disk_path: String,
    /// Bytes the disk probe appends.
    #[serde(default = "default_disk_size")]
    pub disk_size: u64,
    /// Seconds per network test.
    #[serde(default = "default_net_time")]
    pub net_time: u32,
    /// Parallel streams per TCP test of the network matrix (iperf3's `-P`).
    #[serde(default = "default_net_parallel")]
    pub net_parallel: u32,
    /// Skip the network matrix.
    #[serde(default)]
    pub skip_net: bool,
}

/// Seed 000's ramp: from 20,000 msg/s in steps every 10 s to 200,000.
pub const DEFAULT_RAMP: &str = "20000:20000:10:200000";
/// The search over seed 000's range: from 20,000 msg/s up to 200,000, 4 s a step.
pub const DEFAULT_SEARCH: &str = "20000:200000:4";

fn default_search() -> String {
    DEFAULT_SEARCH.into()
}

/// How a diagnosis loads the pipeline: a rate search (the default) or a fixed ramp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Seed 000's kind of ramp.
    Ramp(Ramp),
    /// The search for the knee.
    Search(SearchSpec),
}

impl Load {
    /// The highest target, msg/s over all generators: what the user wanted to reach.
    pub fn max(&self) -> u64 {
        match self {
            Load::Ramp(ramp) => ramp.max,
            Load::Search(search) => search.max,
        }
    }
}
fn default_consumer_members() -> usize {
    1
}
fn default_sink_table() -> String {
    "events".into()
}
fn default_devices() -> u64 {
    10_000
}
fn default_workers() -> usize {
    2
}

/// Empty: each broker agent's `--log-dir`, else /var/tmp (see `probes::disks`).
fn default_disk_path() -> String {
    String::new()
}
fn default_disk_size() -> u64 {
    64 << 20
}
fn default_net_time() -> u32 {
    3
}
fn default_net_parallel() -> u32 {
    4
}

impl DiagnosePlan {
    /// A plan with the defaults for everything but where to produce.
    pub fn new(bootstrap: String, topic: String) -> DiagnosePlan {
        DiagnosePlan {
            generators: Vec::new(),
            brokers: Vec::new(),
            consumers: Vec::new(),
            databases: Vec::new(),
            consumer_members: default_consumer_members(),
            sink: None,
            sink_table: default_sink_table(),
            process_us: 0,
            sla_e2e_ms: None,
            sla_p99_ms: None,
            bootstrap,
            topic,
            partitions: None,
            replication_factor: None,
            search: default_search(),
            ramp: None,
            devices: default_devices(),
            size: 0,
            workers: default_workers(),
            producer: ProducerSettings::default(),
            prometheus: None,
            jmx: Vec::new(),
            skip_disk: false,
            disk_path: default_disk_path(),
            disk_size: default_disk_size(),
            net_time: default_net_time(),
            net_parallel: default_net_parallel(),
            skip_net: false,
        }
    }

    /// Reads a plan file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<DiagnosePlan> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("cannot read plan {}: {err}", path.display()))?;
        toml::from_str(&text).map_err(|err| anyhow::Error::new(PlanError(format!("plan {}: {err}", path.display()))))
    }

    /// The plan from a plan file (or none) with `flags` over it: the flags are the plan's
    /// own keys (`cli::PlanFlags` serialized), so each key is merged here, once, by one
    /// rule — lists and values replace the file's, tables merge, `producer.extra` (`-X`)
    /// adds to the file's properties.
    pub fn resolve(file: Option<&std::path::Path>, flags: toml::Table) -> anyhow::Result<DiagnosePlan> {
        DiagnosePlan::resolve_table(read_table(file, &flags, "diagnose")?, flags)
    }

    /// `resolve` over a plan file's table already read (a sweep's, without its grid).
    pub(super) fn resolve_table(mut table: toml::Table, flags: toml::Table) -> anyhow::Result<DiagnosePlan> {
        // Either load, not both: a flag's replaces the file's.
        if flags.contains_key("search") {
            table.remove("ramp");
        }
        merge(&mut table, flags);
        let plan: DiagnosePlan = toml::Value::Table(table)
            .try_into()
            .map_err(|err: toml::de::Error| anyhow::Error::new(PlanError(format!("plan: {err}"))))?;
        plan.validate()?;
        Ok(plan)
    }

    /// Checks what can be checked before touching anything.
    pub fn validate(&self) -> Result<Load, PlanError> {
        if self.generators.is_empty() {
            return Err(PlanError("a diagnosis needs at least one generator agent (--generator URL)".into()));
        }
        for url in self.generators.iter().chain(&self.brokers).chain(&self.consumers).chain(&self.databases) {
            if !matches!(url.parse::<Target>(), Ok(Target::Agent(_))) {
                return Err(PlanError(format!("'{url}' is not an agent URL; use http://HOST:PORT")));
            }
        }
        let load = match &self.ramp {
            Some(ramp) => Load::Ramp(ramp.parse().map_err(PlanError)?),
            None => Load::Search(self.search.parse().map_err(PlanError)?),
        };
        if !self.consumers.is_empty() || self.sink.is_some() || self.process_us > 0 {
            self.consume_config(0).validate_input().map_err(|err| PlanError(format!("consumers: {err}")))?;
        }
        for (flag, sla) in [("--sla-e2e-ms", self.sla_e2e_ms), ("--sla-p99-ms", self.sla_p99_ms)] {
            match sla {
                Some(ms) if !(ms.is_finite() && ms > 0.0) => {
                    return Err(PlanError(format!("{flag} {ms} must be a positive number of milliseconds")));
                }
                Some(_) if self.consumers.is_empty() => {
                    return Err(PlanError(format!(
                        "{flag} needs --consumer agents: end-to-end latency is measured where events are consumed"
                    )));
                }
                _ => {}
            }
        }
        if self.consumers.is_empty() && (self.sink.is_some() || self.process_us > 0) {
            return Err(PlanError("--sink and --process-us need --consumer agents to run the consumers".into()));
        }
        self.producer.validate().map_err(PlanError)?;
        // The generators are agents: their produce runs take only what an agent allows.
        crate::kafka::properties::check_remote_properties(self.producer.extra.iter().map(|(name, _)| name.as_str()))
            .map_err(|err| PlanError(format!("-X: {err}")))?;
        Ok(load)
    }
}

impl DiagnosePlan {
    /// The consume run each consumer agent is asked for: `consumer_members` members of the
    /// diagnosis's group, until diagnose stops them, with the producers' security settings.
    pub fn consume_config(&self, started_ms: u64) -> crate::kafka::consume::ConsumeConfig {
        let security = |name: &str| ["security.", "sasl.", "ssl."].iter().any(|prefix| name.starts_with(prefix));
        crate::kafka::consume::ConsumeConfig {
            group: Some(format!("plateau-diagnose-{started_ms}")),
            time_secs: None,
            sink: self.sink.as_ref().map(|url| crate::kafka::consume::sink::SinkConfig {
                url: url.clone(),
                table: self.sink_table.clone(),
                addresses: Vec::new(),
            }),
            process_us: self.process_us,
            extra: self.producer.extra.iter().filter(|(name, _)| security(name)).cloned().collect(),
            ..crate::kafka::consume::ConsumeConfig::new(&self.bootstrap, &self.topic, self.consumer_members)
        }
    }
}

/// A plan that cannot run; the message says what to fix. `plateau diagnose` exits with
/// status 2 for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// The plan file's table (or an empty one, when the flags name the cluster themselves).
pub(super) fn read_table(
    file: Option<&std::path::Path>,
    flags: &toml::Table,
    command: &str,
) -> anyhow::Result<toml::Table> {
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|err| anyhow::anyhow!("cannot read plan {}: {err}", path.display()))?;
            Ok(text
                .parse::<toml::Table>()
                .map_err(|err| anyhow::Error::new(PlanError(format!("plan {}: {err}", path.display()))))?)
        }
        None => {
            let missing: Vec<&str> = ["bootstrap", "topic"].into_iter().filter(|k| !flags.contains_key(*k)).collect();
            if !missing.is_empty() {
                let flags: Vec<String> = missing.iter().map(|k| format!("--{k}")).collect();
                anyhow::bail!(PlanError(format!("without --plan, {command} needs {}", flags.join(", "))));
            }
            Ok(toml::Table::new())
        }
    }
}

/// Merges `over` into `base`: tables key by key, `extra` lists appended, anything else
/// replaced.
pub(super) fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(value)) => merge(inner, value),
            (Some(toml::Value::Array(list)), toml::Value::Array(more)) if key == "extra" => list.extend(more),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str) -> DiagnosePlan {
        DiagnosePlan::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("probes").join(name)).unwrap()
    }

    #[test]
    fn every_example_plan_loads_and_validates() {
        for entry in std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("probes")).unwrap() {
            let path = entry.unwrap().path();
            if std::fs::read_to_string(&path).unwrap().contains("\n[sweep]\n") {
                // A sweep's plan: a diagnose plan with a grid.
                super::super::sweep::SweepPlan::resolve(Some(&path), toml::Table::new(), toml::Table::new())
                    .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
                continue;
            }
            let plan = DiagnosePlan::load(&path).unwrap();
            plan.validate().unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        }
    }

    #[test]
    fn the_seed_plan_is_seed_000s_testbench() {
        let plan = plan("seed-openstack.toml");
        assert_eq!((plan.generators.len(), plan.brokers.len()), (2, 3));
        assert_eq!((plan.partitions, plan.replication_factor), (Some(12), Some(3)));
        assert_eq!(plan.producer, ProducerSettings::default());
        assert_eq!(
            (plan.producer.acks.as_str(), plan.producer.linger_ms, plan.producer.batch_messages),
            ("all", 5, 10_000)
        );
        assert_eq!(plan.devices, 10_000);
        let Load::Ramp(ramp) = plan.validate().unwrap() else { panic!("the seed plan runs seed 000's ramp") };
        assert_eq!((ramp.start, ramp.max, ramp.every.as_secs()), (20_000, 200_000, 10));
    }

    #[test]
    fn a_misspelt_plan_key_is_named() {
        let err = toml::from_str::<DiagnosePlan>("bootstrap = \"b:9092\"\ntopic = \"t\"\nparitions = 3\n").unwrap_err();
        assert!(err.to_string().contains("paritions"), "{err}");
        let err = toml::from_str::<DiagnosePlan>("bootstrap = \"b:9092\"\ntopic = \"t\"\n[producer]\nlinger = 5\n")
            .unwrap_err();
        assert!(err.to_string().contains("linger"), "{err}");
    }

    #[test]
    fn flags_merge_over_a_plan_file_by_one_rule() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.toml");
        std::fs::write(
            &path,
            "generators = [\"http://g1:7070\", \"http://g2:7070\"]\nbootstrap = \"b:9092\"\ntopic = \"t\"\nnet_time = 10\n[producer]\nlinger_ms = 20\nextra = [[\"queue.buffering.max.kbytes\", \"65536\"]]\n",
        )
        .unwrap();
        let flags: toml::Table = toml::from_str(
            "generators = [\"http://g3:7070\"]\nskip_disk = true\nsize = 8000\n[producer]\nextra = [[\"compression.type\", \"none\"]]\n",
        )
        .unwrap();
        let plan = DiagnosePlan::resolve(Some(&path), flags).unwrap();
        // A list given as flags replaces the file's; values the flags leave alone stay.
        assert_eq!(plan.generators, ["http://g3:7070"]);
        assert_eq!((plan.net_time, plan.size, plan.skip_disk), (10, 8000, true));
        // Tables merge key by key; -X adds to the file's properties.
        assert_eq!(plan.producer.linger_ms, 20);
        assert_eq!(
            plan.producer.extra,
            [
                ("queue.buffering.max.kbytes".to_string(), "65536".to_string()),
                ("compression.type".into(), "none".into())
            ]
        );
        let err = DiagnosePlan::resolve(None, toml::Table::new()).unwrap_err();
        assert!(err.to_string().contains("--bootstrap, --topic"), "{err}");
        let bad: toml::Table = toml::from_str("bootstrap = \"b\"\ntopic = \"t\"\nramp = \"fast\"\n").unwrap();
        assert!(DiagnosePlan::resolve(None, bad).unwrap_err().downcast_ref::<PlanError>().is_some());
    }
}
