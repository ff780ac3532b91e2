//! The agent as a consumer host (seed 000's consumer stage): `POST /kafka/consume` starts
//! a consume run on this host, `POST /kafka/consume/stop` ends it, `GET
//! /kafka/consume/report` returns the last run's report, and `/status` shows it as
//! `probes.consume` in the generator status shape (consumed, rate, lag, end-to-end latency).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::kafka::checked_bootstrap;
use super::run::{RunState, start_in_background};
use super::{ApiError, ErrorBody, ProbeStatus, acquire, check_allowed};
use crate::agent::AgentShared;
use crate::kafka::consume::sink::SinkConfig;
use crate::kafka::consume::{ConsumeConfig, ConsumeControl, ConsumeReport, StartAt, run_consume};
use crate::units::Span;

/// The consume run of this agent: the one running now, or the last one.
pub type ConsumeRunState = RunState<ConsumeConfig, ConsumeControl, ConsumeReport>;

/// Body of `POST /kafka/consume`; field names mirror `plateau consume`'s flags.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumeRequest {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Topic.
    pub topic: String,
    /// Consumer group (a fresh one when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Members of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<usize>,
    /// How long to consume (until stopped when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Span>,
    /// Device id prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_prefix: Option<String>,
    /// PostgreSQL connection string of the sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// The sink's table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink_table: Option<String>,
    /// Most records per batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch: Option<usize>,
    /// Synchronous work per event, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_us: Option<u64>,
    /// Reporting interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Span>,
    /// Extra librdkafka properties (`-X`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// Where a group without commits starts (`latest` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<StartAt>,
    /// End once the backlog the topic held at the start is read (a catch-up run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub until_drained: bool,
}

impl ConsumeRequest {
    /// The request that starts a run of `config`.
    pub fn for_config(config: &ConsumeConfig) -> ConsumeRequest {
        ConsumeRequest {
            bootstrap: config.bootstrap.clone(),
            topic: config.topic.clone(),
            group: config.group.clone(),
            members: Some(config.members),
            time: config.time_secs.map(Span),
            device_prefix: Some(config.device_prefix.clone()),
            sink: config.sink.as_ref().map(|sink| sink.url.clone()),
            sink_table: config.sink.as_ref().map(|sink| sink.table.clone()),
            max_batch: Some(config.max_batch),
            process_us: Some(config.process_us),
            interval: Some(Span(config.interval)),
            properties: config.extra.iter().cloned().collect(),
            start_at: (config.start_at != StartAt::Latest).then_some(config.start_at),
            until_drained: config.until_drained,
        }
    }

    /// The run configuration, with `plateau consume`'s defaults for what is missing.
    pub fn config(&self) -> Result<ConsumeConfig, String> {
        let defaults = ConsumeConfig::new(&self.bootstrap, &self.topic, 1);
        if self.sink.is_none() && self.sink_table.is_some() {
            return Err("\"sink_table\" needs \"sink\" (a PostgreSQL connection string)".into());
        }
        let config = ConsumeConfig {
            group: self.group.clone(),
            members: self.members.unwrap_or(defaults.members),
            time_secs: self.time.map(|time| time.0),
            device_prefix: self.device_prefix.clone().unwrap_or(defaults.device_prefix),
            sink: self.sink.as_ref().map(|url| SinkConfig {
                url: url.clone(),
                table: self.sink_table.clone().unwrap_or_else(|| "events".into()),
                addresses: Vec::new(),
            }),
            max_batch: self.max_batch.unwrap_or(defaults.max_batch),
            process_us: self.process_us.unwrap_or(defaults.process_us),
            interval: self.interval.map(|i| i.0).unwrap_or(defaults.interval),
            extra: self.properties.clone().into_iter().collect(),
            start_at: self.start_at.unwrap_or_default(),
            until_drained: self.until_drained,
            ..defaults
        };
        config.validate_input()?;
        crate::kafka::properties::check_remote_properties(config.extra.iter().map(|(name, _)| name.as_str()))?;
        Ok(config)
    }
}

fn state(shared: &AgentShared) -> std::sync::MutexGuard<'_, ConsumeRunState> {
    shared.consume.lock().unwrap_or_else(|p| p.into_inner())
}

/// Shows the consume run in `/status` as `probes.consume`.
pub fn overlay_status(shared: &AgentShared, probes: &mut BTreeMap<String, ProbeStatus>) {
    let run = state(shared);
    let Some(config) = &run.config else { return };
    let status = probes.entry("consume".to_string()).or_default();
    status.running = run.running;
    status.topic = Some(config.topic.clone());
    status.members = Some(config.members);
    if let Some(control) = &run.control {
        let live = control.live.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // The group's start (its start offsets committed), not the request's: until then
        // the run reads nothing, and diagnose waits for it before the first record.
        status.stats.started_at = live.started_at;
        status.stats.consumed = Some(live.consumed);
        status.stats.consumed_at_ms = live.counted_at_ms;
        status.stats.current_rate_mps = Some(if run.running { live.current_rate_mps } else { 0.0 });
        status.stats.lag = live.lag;
        status.stats.e2e_avg_ms = live.e2e_avg_ms;
        status.stats.e2e_p99_ms = live.e2e_p99_ms;
        if live.last_error.is_some() {
            status.stats.last_error = live.last_error;
        }
    }
    if run.error.is_some() {
        status.stats.last_error = run.error.clone();
    }
}

/// `POST /kafka/consume`: starts a consume run in the background (202).
#[utoipa::path(post, path = "/kafka/consume", tag = "kafka", request_body = ConsumeRequest, security(("bearer" = [])),
    responses((status = 202, body = ProbeStatus), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn start(
    State(shared): State<Arc<AgentShared>>,
    body: Result<Json<ConsumeRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<ProbeStatus>), ApiError> {
    let Json(request) = body?;
    let mut config = request.config().map_err(|msg| ApiError::new(StatusCode::BAD_REQUEST, msg))?;
    config.bootstrap = checked_bootstrap(&shared, &config.bootstrap, &config.extra).await?;
    if let Some(sink) = config.sink.as_mut() {
        // The database is a connection the agent opens on request: it passes the
        // allow-list, and the connection goes to the address that passed.
        for (host, port) in sink.tcp_hosts().map_err(|msg| ApiError::new(StatusCode::BAD_REQUEST, msg))? {
            let addresses = check_allowed(&shared, "sink", &host, port).await?;
            sink.addresses.push(addresses[0].ip());
        }
    }
    let slot = acquire(&shared, "consume")?;
    let control = Arc::new(ConsumeControl {
        cancel: slot.cancel().clone(),
        allow: Some(shared.allow.clone()),
        ..ConsumeControl::default()
    });
    start_in_background(&shared, state, slot, config, control, |config, control| run_consume(config, control, |_| {}));
    let mut probes = BTreeMap::new();
    overlay_status(&shared, &mut probes);
    Ok((StatusCode::ACCEPTED, Json(probes.remove("consume").unwrap_or_default())))
}

/// `POST /kafka/consume/stop`: ends the running run; its report follows at
/// `GET /kafka/consume/report`.
#[utoipa::path(post, path = "/kafka/consume/stop", tag = "kafka", security(("bearer" = [])),
    responses((status = 200, body = ProbeStatus), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn stop(State(shared): State<Arc<AgentShared>>) -> Result<Json<ProbeStatus>, ApiError> {
    state(&shared).stop("consume")?;
    let mut probes = BTreeMap::new();
    overlay_status(&shared, &mut probes);
    Ok(Json(probes.remove("consume").unwrap_or_default()))
}

/// `GET /kafka/consume/report`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsumeReportResponse {
    /// Whether a run is going on.
    pub running: bool,
    /// The last finished run's report.
    pub report: Option<ConsumeReport>,
    /// Why the last run failed.
    pub error: Option<String>,
}

/// `GET /kafka/consume/report`: the last run's report.
#[utoipa::path(get, path = "/kafka/consume/report", tag = "kafka", responses((status = 200, body = ConsumeReportResponse)))]
pub async fn report(State(shared): State<Arc<AgentShared>>) -> Json<ConsumeReportResponse> {
    let run = state(&shared);
    Json(ConsumeReportResponse { running: run.running, report: run.report.clone(), error: run.error.clone() })
}
