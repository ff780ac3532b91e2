//! `plateau sweep`: seed 002's benchmark scenarios as a grid — message size × partition
//! count, and optionally acks, compression and the number of producers. Every cell runs
//! on a topic of its own, created for it: the diagnosis's load (the rate search to the
//! knee, or a fixed ramp) with the plan's consumer group reading along, judged by the rules
//! like any diagnosis; then a catch-up run — a backlog produced at the cell's sustained
//! rate, read by a fresh consumer group from the backlog's first record — timed to the
//! drain. Each cell is recorded with seed 002's reporting template (`Cell`). The network
//! and disk probes run once, before the first cell; their capacities hold for every cell.
//! A failed cell is recorded and the sweep goes on; Ctrl-C keeps the cells finished.

mod catch_up;

use serde::{Deserialize, Serialize};

use super::plan::{merge, read_table};
use super::{Agents, Capacities, DiagnosePlan, Diagnosis, PlanError, Progress, now_ms, preflight};
use crate::cancel::Cancel;
use crate::plateau::RampStep;
use crate::rules::RuleSet;

/// The version of `sweep.json`'s layout.
pub const SWEEP_VERSION: u32 = 1;
/// The smallest cell size: events are padded to exactly the cell's size from here (seed
/// 000's event is about 230 bytes unpadded).
pub const MIN_SIZE: u64 = 512;
/// The most cells one sweep may have.
pub const MAX_CELLS: usize = 200;

/// The grid: every combination of its lists is a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepGrid {
    /// Event sizes, bytes (seed 002's: 1 KB, 10 KB, 100 KB).
    pub sizes: Vec<u64>,
    /// Partition counts of the cells' topics (seed 002's: 1, 3, 6, 12).
    pub partitions: Vec<u32>,
    /// `acks` settings (the plan's producer's when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acks: Vec<String>,
    /// `compression.type` settings (the plan's when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compression: Vec<String>,
    /// Generator counts: the first N of the plan's generators (all of them when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub producers: Vec<usize>,
    /// The catch-up's backlog: this many seconds of the cell's sustained rate (0: no
    /// catch-up run).
    #[serde(default = "default_catch_up_secs")]
    pub catch_up_secs: u32,
    /// The longest a catch-up read may take, seconds.
    #[serde(default = "default_catch_up_limit_secs")]
    pub catch_up_limit_secs: u32,
    /// Keep the cells' topics. By default each is deleted once measured, so that its
    /// partitions do not keep the brokers' replica fetchers busy during the next cell.
    #[serde(default)]
    pub keep_topics: bool,
}

fn default_catch_up_secs() -> u32 {
    10
}
fn default_catch_up_limit_secs() -> u32 {
    120
}

/// Seed 002's grid: 1 KB, 10 KB and 100 KB events on 1, 3, 6 and 12 partitions.
impl Default for SweepGrid {
    fn default() -> SweepGrid {
        SweepGrid {
            sizes: vec![1_000, 10_000, 100_000],
            partitions: vec![1, 3, 6, 12],
            acks: Vec::new(),
            compression: Vec::new(),
            producers: Vec::new(),
            catch_up_secs: default_catch_up_secs(),
            catch_up_limit_secs: default_catch_up_limit_secs(),
            keep_topics: false,
        }
    }
}

/// One cell of the grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellSpec {
    /// Event size, bytes.
    pub size: u64,
    /// Partitions of its topic.
    pub partitions: u32,
    /// The producers' `acks`.
    pub acks: String,
    /// The producers' `compression.type`.
    pub compression: String,
    /// Generators producing.
    pub producers: usize,
}

impl CellSpec {
    /// The cell's name: its topic's suffix and its report directory.
    pub fn name(&self) -> String {
        format!("{}b-{}p-acks{}-{}-{}g", self.size, self.partitions, self.acks, self.compression, self.producers)
    }
}

/// A sweep: the diagnosis every cell runs (its `topic` is the prefix of the cells'
/// topics), and the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    /// The diagnosis each cell runs, with the cell's settings over it.
    pub plan: DiagnosePlan,
    /// The grid.
    pub grid: SweepGrid,
}

impl SweepPlan {
    /// The sweep from a plan file — a diagnose plan with a `[sweep]` table — with the
    /// diagnose flags (`plan_flags`) and the grid's (`grid_flags`) over it, each merged
    /// as diagnose merges its flags.
    pub fn resolve(
        file: Option<&std::path::Path>,
        plan_flags: toml::Table,
        grid_flags: toml::Table,
    ) -> anyhow::Result<SweepPlan> {
        let mut table = read_table(file, &plan_flags, "sweep")?;
        let mut grid = match table.remove("sweep") {
            Some(toml::Value::Table(grid)) => grid,
            Some(_) => anyhow::bail!(PlanError("plan: `sweep` must be a table ([sweep])".into())),
            None => toml::Table::new(),
        };
        merge(&mut grid, grid_flags);
        let grid: SweepGrid = if grid.is_empty() {
            SweepGrid::default()
        } else {
            let defaults = toml::Table::try_from(SweepGrid::default()).expect("the default grid is a table");
            let mut full = defaults;
            merge(&mut full, grid);
            toml::Value::Table(full)
                .try_into()
                .map_err(|err: toml::de::Error| anyhow::Error::new(PlanError(format!("plan: [sweep]: {err}"))))?
        };
        let plan = DiagnosePlan::resolve_table(table, plan_flags)?;
        let sweep = SweepPlan { plan, grid };
        sweep.cells()?;
        Ok(sweep)
    }

    /// The cells, in order (size, then partitions, acks, compression, producers), or why
    /// the grid cannot run.
    pub fn cells(&self) -> Result<Vec<CellSpec>, PlanError> {
        let grid = &self.grid;
        let producer = &self.plan.producer;
        // Without a list, the plan's setting as the producers would use it (a -X wins).
        let one = |list: &[String], property: &str, field: &str| {
            if !list.is_empty() {
                return list.to_vec();
            }
            let set = producer.extra.iter().rev().find(|(name, _)| name == property).map(|(_, value)| value.as_str());
            vec![set.unwrap_or(field).to_string()]
        };
        let acks = one(&grid.acks, "acks", &producer.acks);
        let compression = one(&grid.compression, "compression.type", &producer.compression);
        let generators = self.plan.generators.len();
        let producers = if grid.producers.is_empty() { vec![generators] } else { grid.producers.clone() };
        if grid.sizes.is_empty() || grid.partitions.is_empty() {
            return Err(PlanError("[sweep] needs at least one size and one partition count".into()));
        }
        if let Some(size) = grid.sizes.iter().find(|&&s| !(MIN_SIZE..=1 << 20).contains(&s)) {
            return Err(PlanError(format!(
                "[sweep] size {size} is out of range; use {MIN_SIZE} bytes to 1 MiB (events are padded to exactly it)"
            )));
        }
        if let Some(p) = grid.partitions.iter().find(|&&p| p == 0 || p > 10_000) {
            return Err(PlanError(format!("[sweep] partition count {p} is out of range; use 1 to 10000")));
        }
        if let Some(n) = producers.iter().find(|&&n| n == 0 || n > generators) {
            return Err(PlanError(format!(
                "[sweep] producers {n} is out of range: the plan has {generators} generator agent(s)"
            )));
        }
        if grid.catch_up_limit_secs == 0 || grid.catch_up_limit_secs > 3600 || grid.catch_up_secs > 3600 {
            return Err(PlanError("[sweep] catch_up_secs must be 0 to 3600 and catch_up_limit_secs 1 to 3600".into()));
        }
        let mut cells = Vec::new();
        for &size in &grid.sizes {
            for &partitions in &grid.partitions {
                for acks in &acks {
                    for compression in &compression {
                        for &producers in &producers {
                            let cell = CellSpec {
                                size,
                                partitions,
                                acks: acks.clone(),
                                compression: compression.clone(),
                                producers,
                            };
                            self.cell_plan(&cell)
                                .validate()
                                .map_err(|err| PlanError(format!("{}: {err}", cell.name())))?;
                            cells.push(cell);
                        }
                    }
                }
            }
        }
        if cells.len() > MAX_CELLS {
            return Err(PlanError(format!("the grid has {} cells; a sweep runs at most {MAX_CELLS}", cells.len())));
        }
        Ok(cells)
    }

    /// The diagnosis of one cell: its topic (created with its partitions), its event size,
    /// its producer settings and generators, no probes (they ran once, before the cells).
    pub fn cell_plan(&self, cell: &CellSpec) -> DiagnosePlan {
        let mut plan = self.plan.clone();
        plan.topic = format!("{}-{}", self.plan.topic, cell.name());
        plan.partitions = Some(cell.partitions);
        plan.size = cell.size;
        plan.generators.truncate(cell.producers);
        plan.producer.acks = cell.acks.clone();
        plan.producer.compression = cell.compression.clone();
        // The cell's settings are the grid's: a -X for the same property would undo them.
        plan.producer.extra.retain(|(name, _)| name != "acks" && name != "compression.type");
        plan.skip_net = true;
        plan.skip_disk = true;
        plan
    }
}

/// Produce figures of a cell, from the step that kept up at the highest rate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProduceFigures {
    /// The highest rate of a step that kept up (the maximum sustainable rate), msg/s.
    pub msgs_per_sec: f64,
    /// Acknowledged megabytes (10^6, payload) per second in that step, as measured.
    pub mb_per_sec: f64,
    /// The worst generator's 95th percentile delivery latency in that step.
    pub latency_p95_ms: f64,
    /// Its 99th percentile.
    pub latency_p99_ms: f64,
    /// Whether the knee was found (the pipeline stopped keeping up below the load's top).
    pub knee_found: bool,
    /// The most any step delivered, msg/s (the plateau's level).
    pub plateau_msgs_per_sec: f64,
    /// Steps run.
    pub steps: usize,
    /// Records the producers could not deliver over the cell.
    pub errors: u64,
}

/// Consume figures of a cell, over the same step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsumeFigures {
    /// Records the consumers handled per second.
    pub msgs_per_sec: f64,
    /// Megabytes (10^6, payload) they handled per second.
    pub mb_per_sec: f64,
    /// Mean end-to-end latency (event time to handled).
    pub e2e_avg_ms: Option<f64>,
    /// The step's worst per-interval 99th percentile end-to-end latency.
    pub e2e_p99_ms: Option<f64>,
    /// Consumer errors over the cell.
    pub errors: u64,
}

/// The catch-up run of a cell: a backlog read by a fresh group from its first record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatchUpFigures {
    /// Records the producers acknowledged for the backlog.
    pub produced_records: u64,
    /// Records in the backlog, as the group found it (from its start offsets to the
    /// partitions' ends).
    pub backlog_records: u64,
    /// Records the group read by the drain (or by the limit).
    pub records: u64,
    /// Seconds from the group's start (its join included) to the backlog's last record
    /// handled; none when it was not drained within the limit.
    pub drained_secs: Option<f64>,
    /// The group's join, ms.
    pub join_ms: f64,
    /// Records read per second over the drain.
    pub records_per_sec: f64,
    /// Megabytes (10^6, payload) read per second over the drain.
    pub mb_per_sec: f64,
    /// librdkafka's fetch round trip on the slowest broker at the end of the drain: 95th
    /// percentile, ms.
    pub fetch_p95_ms: Option<f64>,
    /// Its 99th percentile, ms.
    pub fetch_p99_ms: Option<f64>,
    /// Records lost, duplicated or out of order in the backlog, as read.
    pub lost: u64,
    /// Duplicated.
    pub duplicated: u64,
    /// Why the catch-up did not run or measure, if it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One broker signal over a cell's judged window, at its worst across the brokers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthFigure {
    /// The catalog signal.
    pub signal: String,
    /// Its worst value (the highest, or the lowest for an idle share).
    pub worst: f64,
    /// Its unit.
    pub unit: String,
}

/// The broker signals a cell's "broker health" line shows (seed 002's "S3 health"), and
/// whether the lowest value is the worst.
pub const HEALTH_SIGNALS: [(&str, bool); 6] = [
    ("kafka_under_replicated_partitions", false),
    ("kafka_isr_shrinks_per_sec", false),
    ("kafka_request_handler_idle", true),
    ("kafka_network_processor_idle", true),
    ("kafka_produce_total_time_p99_ms", false),
    ("kafka_fetch_consumer_total_time_p99_ms", false),
];

/// The verdict of a cell, in brief.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellVerdict {
    /// The bound resource.
    pub bound: String,
    /// Its cause, when a rule named one.
    pub cause: Option<String>,
    /// Confidence, 0–1.
    pub confidence: f64,
    /// The next independent limit.
    pub runner_up: Option<String>,
    /// The strongest evidence line.
    pub evidence: Option<String>,
}

/// One cell, recorded with seed 002's reporting template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// What the cell varies.
    pub spec: CellSpec,
    /// Its topic.
    pub topic: String,
    /// The topic's replication factor, as the cluster reported it.
    pub replication_factor: Option<u32>,
    /// Unix ms the cell started and ended.
    pub started_ms: u64,
    /// Unix ms it ended.
    pub ended_ms: u64,
    /// The cell's diagnosis report directory, relative to the sweep's (`cells/<name>`),
    /// where the caller writes it.
    pub report: Option<String>,
    /// Produce figures (none when nothing was delivered).
    pub produce: Option<ProduceFigures>,
    /// Consume figures (with consumer agents).
    pub consume: Option<ConsumeFigures>,
    /// The catch-up run.
    pub catch_up: Option<CatchUpFigures>,
    /// Broker health over the judged window.
    pub broker_health: Vec<HealthFigure>,
    /// The rules' verdict on the cell's plateau.
    pub verdict: Option<CellVerdict>,
    /// What else a reader should know: interruptions, missing sources, failed parts.
    pub notes: Vec<String>,
    /// Why the cell failed, when it could not be measured at all.
    pub failed: Option<String>,
}

/// A whole sweep: the content of `sweep.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// Layout version.
    pub version: u32,
    /// The command that reproduces it.
    pub command: String,
    /// The plan.
    pub plan: SweepPlan,
    /// Unix ms it started.
    pub started_ms: u64,
    /// Unix ms it ended (the last cell's end so far).
    pub ended_ms: u64,
    /// Cells in the grid.
    pub planned_cells: usize,
    /// The cells run, in order.
    pub cells: Vec<Cell>,
    /// Whether Ctrl-C cut it short.
    pub interrupted: bool,
}

/// Runs the sweep. After each cell `on_cell` gets the sweep so far and the cell's
/// diagnosis (none for a cell that could not run), so that the caller writes both before
/// the next cell starts: what was measured survives a later failure or Ctrl-C.
pub fn run(
    sweep_plan: &SweepPlan,
    rules: &RuleSet,
    token: Option<&str>,
    command: &str,
    cancel: &Cancel,
    progress: &dyn Progress,
    on_cell: &mut dyn FnMut(&Sweep, Option<&Diagnosis>) -> anyhow::Result<()>,
) -> anyhow::Result<Sweep> {
    let specs = sweep_plan.cells()?;
    let agents = Agents { token };
    let mut sweep = Sweep {
        version: SWEEP_VERSION,
        command: command.to_string(),
        plan: sweep_plan.clone(),
        started_ms: now_ms(),
        ended_ms: now_ms(),
        planned_cells: specs.len(),
        cells: Vec::new(),
        interrupted: false,
    };

    // The probes once, over the whole plan's agents: a cell's capacities are the cluster's.
    // (The preflight is the first cell's, so its topic is created here.)
    progress.phase("preflight");
    let first = specs.first().map(|spec| sweep_plan.cell_plan(spec)).unwrap_or_else(|| sweep_plan.plan.clone());
    let live = preflight::run(&first, &agents, progress);
    let capacities = super::measure(&sweep_plan.plan, &live, &agents, &rules.catalog, cancel, progress);

    for (index, spec) in specs.iter().enumerate() {
        if cancel.is_cancelled() {
            sweep.interrupted = true;
            break;
        }
        progress.phase(&format!("cell {}/{}: {}", index + 1, specs.len(), spec.name()));
        let (cell, diagnosis) = run_cell(sweep_plan, spec, rules, &agents, command, &capacities, cancel, progress);
        sweep.interrupted |= diagnosis.as_ref().is_some_and(|d| d.interrupted);
        sweep.cells.push(cell);
        sweep.ended_ms = now_ms();
        on_cell(&sweep, diagnosis.as_ref())?;
    }
    Ok(sweep)
}

/// One cell: its diagnosis, its catch-up run, its topic removed; never an error — a
/// failure is the cell's `failed`.
#[allow(clippy::too_many_arguments)]
fn run_cell(
    sweep_plan: &SweepPlan,
    spec: &CellSpec,
    rules: &RuleSet,
    agents: &Agents<'_>,
    command: &str,
    capacities: &Capacities,
    cancel: &Cancel,
    progress: &dyn Progress,
) -> (Cell, Option<Diagnosis>) {
    let plan = sweep_plan.cell_plan(spec);
    let started_ms = now_ms();
    let mut cell = Cell {
        spec: spec.clone(),
        topic: plan.topic.clone(),
        replication_factor: None,
        started_ms,
        ended_ms: started_ms,
        report: None,
        produce: None,
        consume: None,
        catch_up: None,
        broker_health: Vec::new(),
        verdict: None,
        notes: Vec::new(),
        failed: None,
    };
    let load = match plan.validate() {
        Ok(load) => load,
        Err(err) => {
            cell.failed = Some(err.to_string());
            return (cell, None);
        }
    };
    let live = preflight::run(&plan, agents, progress);
    if live.partitions.is_none() || live.generators.is_empty() {
        cell.failed = Some(live.failures().join("; "));
        cell.ended_ms = now_ms();
        return (cell, None);
    }
    if live.partitions != Some(spec.partitions as usize) {
        cell.notes.push(format!(
            "the topic existed with {} partitions, not the cell's {}",
            live.partitions.unwrap_or(0),
            spec.partitions
        ));
    }
    cell.replication_factor = live.replication_factor;
    let generators = live.generators.clone();
    let consumers = live.consumers.clone();
    let cell_command = format!("{command}  # cell {}", spec.name());
    let run = super::Run {
        plan: &plan,
        rules,
        agents: Agents { token: agents.token },
        command: &cell_command,
        started_ms,
        cancel,
        progress,
    };
    let diagnosis = super::load_and_judge(&run, &load, live, capacities.clone());
    cell.report = Some(format!("cells/{}", spec.name()));
    figures(&mut cell, &diagnosis);
    if sweep_plan.grid.catch_up_secs > 0 && !cancel.is_cancelled() {
        let rate = cell.produce.as_ref().map_or(0.0, |p| p.msgs_per_sec);
        progress.note(&format!("catch-up: a backlog of {} s at {rate:.0} msg/s", sweep_plan.grid.catch_up_secs));
        let reader = consumers.first().or(generators.first()).cloned().unwrap_or_default();
        cell.catch_up = Some(catch_up::catch_up(&plan, &sweep_plan.grid, rate, &generators, &reader, agents, cancel));
    }
    if !sweep_plan.grid.keep_topics
        && let Err(err) = crate::kafka::admin::delete_topic(&plan.bootstrap, &plan.producer.extra, &plan.topic)
    {
        cell.notes.push(format!("the cell's topic was not deleted: {err}"));
    }
    cell.ended_ms = now_ms();
    (cell, Some(diagnosis))
}

/// The template's figures from a cell's diagnosis.
fn figures(cell: &mut Cell, diagnosis: &Diagnosis) {
    let best = best_step(&diagnosis.ramp);
    let produce_errors: u64 = diagnosis.produce.iter().filter_map(|g| g.report.as_ref()).map(|r| r.errors.total).sum();
    let consume_errors: u64 = diagnosis.consume.iter().filter_map(|c| c.report.as_ref()).map(|r| r.errors.total).sum();
    if let Some(step) = best {
        cell.produce = Some(ProduceFigures {
            msgs_per_sec: step.achieved_rate,
            mb_per_sec: step.achieved_mb_per_sec,
            latency_p95_ms: step.latency_p95_ms,
            latency_p99_ms: step.latency_p99_ms,
            knee_found: diagnosis.plateau.found,
            plateau_msgs_per_sec: diagnosis.plateau.plateau_msgs_per_sec,
            steps: diagnosis.ramp.len(),
            errors: produce_errors,
        });
        if let (Some(rate), Some(mb)) = (step.consumed_rate, step.consumed_mb_per_sec) {
            cell.consume = Some(ConsumeFigures {
                msgs_per_sec: rate,
                mb_per_sec: mb,
                e2e_avg_ms: step.e2e_avg_ms,
                e2e_p99_ms: step.e2e_p99_ms,
                errors: consume_errors,
            });
        }
    } else {
        cell.notes.push("no step kept up: the cell has no sustainable rate".into());
    }
    let (from, to) = diagnosis.window_ms;
    for (signal, lowest_is_worst) in HEALTH_SIGNALS {
        let values: Vec<(f64, &str)> = diagnosis
            .evidence
            .series
            .iter()
            .filter(|s| s.signal == signal)
            .flat_map(|s| s.window(from, to).iter().map(move |v| (*v, s.unit.as_str())))
            .collect();
        let worst = values.iter().map(|(v, _)| *v).reduce(if lowest_is_worst { f64::min } else { f64::max });
        if let (Some(worst), Some((_, unit))) = (worst, values.first()) {
            cell.broker_health.push(HealthFigure { signal: signal.to_string(), worst, unit: unit.to_string() });
        }
    }
    let verdict = &diagnosis.verdict;
    cell.verdict = Some(CellVerdict {
        bound: verdict.bound.to_string(),
        cause: verdict.cause.clone(),
        confidence: verdict.confidence,
        runner_up: verdict.runner_up.map(|b| match &verdict.runner_up_cause {
            Some(cause) => format!("{b}: {cause}"),
            None => b.to_string(),
        }),
        evidence: verdict.evidence.iter().find(|line| line.bound == verdict.bound).map(|line| line.text.clone()),
    });
    if diagnosis.interrupted {
        cell.notes.push("interrupted (Ctrl-C): the cell's figures are from the steps run".into());
    }
    cell.notes.extend(diagnosis.evidence.unavailable.iter().map(|line| format!("missing: {line}")));
}

/// The step that kept up at the highest pipeline rate (the maximum sustainable rate).
pub fn best_step(steps: &[RampStep]) -> Option<&RampStep> {
    steps.iter().filter(|s| s.sustained).max_by(|a, b| a.pipeline_rate().total_cmp(&b.pipeline_rate()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(grid: &str) -> anyhow::Result<SweepPlan> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.toml");
        std::fs::write(
            &path,
            format!(
                "generators = [\"http://g1:7070\", \"http://g2:7070\"]\nbootstrap = \"b:9092\"\ntopic = \"bench\"\n{grid}"
            ),
        )
        .unwrap();
        SweepPlan::resolve(Some(&path), toml::Table::new(), toml::Table::new())
    }

    #[test]
    fn a_plan_without_a_grid_sweeps_seed_002s() {
        let plan = sweep("").unwrap();
        let cells = plan.cells().unwrap();
        assert_eq!(cells.len(), 12);
        assert_eq!((cells[0].size, cells[0].partitions, cells[0].producers), (1_000, 1, 2));
        assert_eq!((cells[11].size, cells[11].partitions), (100_000, 12));
        assert_eq!(cells[0].name(), "1000b-1p-acksall-lz4-2g");
    }

    #[test]
    fn every_list_multiplies_the_grid_and_the_cell_plan_carries_the_cell() {
        let plan = sweep(
            "[producer]\nextra = [[\"compression.type\", \"none\"], [\"linger.ms\", \"20\"]]\n[sweep]\nsizes = [1000, 10000]\npartitions = [3]\nacks = [\"1\", \"all\"]\ncompression = [\"none\", \"zstd\"]\nproducers = [1, 2]\n",
        )
        .unwrap();
        let cells = plan.cells().unwrap();
        assert_eq!(cells.len(), 16);
        let cell = cells.iter().find(|c| c.acks == "1" && c.compression == "zstd" && c.producers == 1).unwrap();
        let cell_plan = plan.cell_plan(cell);
        assert_eq!(cell_plan.topic, "bench-1000b-3p-acks1-zstd-1g");
        assert_eq!((cell_plan.partitions, cell_plan.size), (Some(3), 1000));
        assert_eq!(cell_plan.generators, ["http://g1:7070"]);
        assert_eq!((cell_plan.producer.acks.as_str(), cell_plan.producer.compression.as_str()), ("1", "zstd"));
        // The grid's compression is not undone by the plan's -X; other properties stay.
        assert_eq!(cell_plan.producer.extra, [("linger.ms".to_string(), "20".to_string())]);
        assert!(cell_plan.skip_net && cell_plan.skip_disk);
    }

    #[test]
    fn a_grid_that_cannot_run_says_what_to_fix() {
        let err = |grid: &str| sweep(&format!("[sweep]\n{grid}")).unwrap_err().to_string();
        assert!(err("sizes = [100]\npartitions = [1]").contains("size 100 is out of range; use 512 bytes"));
        assert!(err("sizes = [1000]\npartitions = [0]").contains("partition count 0"));
        assert!(err("sizes = [1000]\npartitions = [1]\nproducers = [3]").contains("the plan has 2 generator agent(s)"));
        assert!(err("sizes = []\npartitions = [1]").contains("at least one size"));
        assert!(err("sizes = [1000]\npartitions = [1]\nsize = 3").contains("unknown field `size`"));
        assert!(err("sizes = [1000]\npartitions = [1]\nacks = [\"most\"]").contains("1000b-1p-acksmost"));
        let many = format!(
            "sizes = [{}]\npartitions = [1, 2, 3]",
            (1..=70).map(|k| (k * 1000).to_string()).collect::<Vec<_>>().join(", ")
        );
        assert!(err(&many).contains("210 cells"));
    }
}
