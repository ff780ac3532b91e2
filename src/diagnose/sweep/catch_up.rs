//! A cell's catch-up: a backlog produced at the cell's sustained rate on its generators,
//! then read by a fresh consumer group from the backlog's first record, timed to the drain.

use std::time::{Duration, Instant};

use super::{CatchUpFigures, SweepGrid};
use crate::agent::client::{AgentClient, AgentError};
use crate::cancel::Cancel;
use crate::diagnose::{Agents, DiagnosePlan};
use crate::kafka::consume::{ConsumeConfig, ConsumeReport, StartAt};
use crate::kafka::{ProduceReport, RateSpec};

/// The catch-up run: `grid.catch_up_secs` of `rate` msg/s produced by the generators (the
/// backlog), then a fresh group of the plan's consumer members on `reader` reading from
/// the backlog's first record until it has read all of it.
pub(super) fn catch_up(
    plan: &DiagnosePlan,
    grid: &SweepGrid,
    rate: f64,
    generators: &[String],
    reader: &str,
    agents: &Agents<'_>,
    cancel: &Cancel,
) -> CatchUpFigures {
    let failed = |error: String| CatchUpFigures { error: Some(error), ..CatchUpFigures::default() };
    if rate < 1.0 {
        return failed("no sustainable rate to build a backlog at".into());
    }
    let per_generator = ((rate / generators.len().max(1) as f64).round() as u64).max(1);
    let config = super::super::ramp::generator_config(
        plan,
        RateSpec::Fixed(per_generator),
        Duration::from_secs(grid.catch_up_secs.into()),
    );
    let clients: Vec<AgentClient> = generators.iter().map(|url| agents.client(url, Duration::from_secs(30))).collect();
    let mut started = Vec::new();
    for (k, client) in clients.iter().enumerate() {
        let mut config = config.clone();
        config.events.first_device = k as u64 * plan.devices;
        match while_busy(|| client.start_produce(&config)) {
            Ok(_) => started.push(client),
            Err(err) => return failed(format!("the backlog could not start on {}: {err}", client.url())),
        }
    }
    let reports: Vec<Result<ProduceReport, String>> = started.iter().map(|c| wait_produced(c, cancel)).collect();
    let (mut produced, mut backlog_from_ms) = (0, u64::MAX);
    for report in reports {
        match report {
            // The backlog starts at its first run's start on that generator's own clock,
            // the clock its records' timestamps come from.
            Ok(report) => {
                produced += report.records_acked;
                backlog_from_ms = backlog_from_ms.min(report.started_at_ms);
            }
            Err(err) => return failed(err),
        }
    }
    if cancel.is_cancelled() {
        return failed("interrupted while the backlog was produced".into());
    }
    let consume = ConsumeConfig {
        time_secs: Some(Duration::from_secs(grid.catch_up_limit_secs.into())),
        start_at: StartAt::Time(backlog_from_ms),
        until_drained: true,
        group: None,
        sink: None,
        ..plan.consume_config(backlog_from_ms)
    };
    let client = agents.client(reader, Duration::from_secs(30));
    let report = while_busy(|| client.start_consume(&consume))
        .and_then(|_| client.wait_consume_report(Duration::from_secs(u64::from(grid.catch_up_limit_secs) + 60)));
    match report {
        Ok(report) => catch_up_figures(&report, produced),
        Err(err) => failed(format!("the catch-up read on {reader}: {err}")),
    }
}

/// Retries `start` while the agent is still releasing its last probe (its slot is freed by
/// the probe's thread, just after the run reports its end), for up to 15 s.
fn while_busy<T>(mut start: impl FnMut() -> Result<T, AgentError>) -> Result<T, AgentError> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match start() {
            Err(AgentError::Refused { status: 409, .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            result => return result,
        }
    }
}

/// Waits for a generator's fixed-rate run to end and returns its report.
fn wait_produced(client: &AgentClient, cancel: &Cancel) -> Result<ProduceReport, String> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        if cancel.is_cancelled() {
            let _ = client.stop_produce();
        }
        let status = client.status().map_err(|err| err.to_string())?;
        if status.probes.get("produce").is_none_or(|run| !run.running) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let response = client.produce_report().map_err(|err| err.to_string())?;
    response.report.ok_or_else(|| {
        format!("the backlog on {} ended without a report: {}", client.url(), response.error.unwrap_or_default())
    })
}

/// The catch-up figures of a consume run that read `produced` records of backlog.
fn catch_up_figures(report: &ConsumeReport, produced: u64) -> CatchUpFigures {
    let drain = report.catch_up.clone().unwrap_or_default();
    let ms = |us: i64| us as f64 / 1000.0;
    let mut figures = CatchUpFigures {
        produced_records: produced,
        backlog_records: drain.backlog_records,
        records: drain.records,
        drained_secs: drain.drained_secs,
        join_ms: report.membership.join_ms,
        records_per_sec: drain.records_per_sec,
        mb_per_sec: drain.mb_per_sec,
        fetch_p95_ms: report.fetch_rtt_us.map(|rtt| ms(rtt.p95)),
        fetch_p99_ms: report.fetch_rtt_us.map(|rtt| ms(rtt.p99)),
        lost: report.validation.lost,
        duplicated: report.validation.duplicated,
        error: None,
    };
    if drain.backlog_records < produced {
        figures.error =
            Some(format!("the backlog held {} records of the {produced} acknowledged", drain.backlog_records));
    } else if drain.drained_secs.is_none() {
        figures.error = Some(format!("not drained: {} of {} records read", drain.records, drain.backlog_records));
    }
    figures
}
