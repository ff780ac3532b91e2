//! The agent as a generator (seed 000's generator agents): `POST /kafka/produce` starts
//! a produce run on this host, `POST /kafka/rate` changes its target live, `POST
//! /kafka/step` closes a fixed-rate run's step (a rate search's), `POST /kafka/stop` ends it, `GET /kafka/report` returns the last run's report, and
//! `/status` shows it as `probes.produce` in the generator status shape.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::run::{RunState, start_in_background};
use super::{ApiError, ErrorBody, ProbeStatus, acquire, check_allowed};
use crate::agent::AgentShared;
use crate::allow::split_host_port;
use crate::kafka::report::Step;
use crate::kafka::run::{RunControl, run_produce};
use crate::kafka::{EventSpec, KeyMode, MAX_RATE, ProduceConfig, ProduceReport, ProducerSettings, Ramp, RateSpec};
use crate::units::{ByteSize, Span};

/// The produce run of this agent: the one running now, or the last one.
pub type ProduceRunState = RunState<ProduceConfig, RunControl, ProduceReport>;

/// Body of `POST /kafka/produce`; field names mirror `plateau produce`'s flags.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceRequest {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Topic.
    pub topic: String,
    /// Fixed rate, msg/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    /// Ramp `START:STEP:EVERY_S:MAX`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp: Option<String>,
    /// Length of a fixed-rate run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<Span>,
    /// Simulated devices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<u64>,
    /// Device id prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_prefix: Option<String>,
    /// Minimum digits of device ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_width: Option<usize>,
    /// The first device's number (generators of one run simulate distinct devices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_device: Option<u64>,
    /// Pad events to this size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
    /// `device`, `none` or `random`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyMode>,
    /// Producing threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// acks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acks: Option<String>,
    /// compression.type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// linger.ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linger_ms: Option<u32>,
    /// batch.num.messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_messages: Option<u32>,
    /// Extra librdkafka properties (`-X`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// Read the topic back.
    #[serde(default)]
    pub validate: bool,
    /// Latency SLA for the ramp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_p99_ms: Option<f64>,
    /// Reporting interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Span>,
    /// A ramp stops by itself after this many missed steps in a row (default 2; 0 never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_after_missed_steps: Option<u32>,
    /// Temperature range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<(f64, f64)>,
    /// Humidity range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub humidity: Option<(f64, f64)>,
    /// Pressure range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pressure: Option<(f64, f64)>,
    /// Probability of OK.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_ok: Option<f64>,
    /// Probability of WARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_warn: Option<f64>,
}

impl ProduceRequest {
    /// The request that starts a run of `config`.
    pub fn for_config(config: &ProduceConfig) -> ProduceRequest {
        let (rate, ramp) = match config.rate {
            RateSpec::Fixed(rate) => (Some(rate), None),
            RateSpec::Ramp(ramp) => (None, Some(ramp.to_string())),
        };
        let e = &config.events;
        ProduceRequest {
            bootstrap: config.bootstrap.clone(),
            topic: config.topic.clone(),
            rate,
            ramp,
            time: Some(Span(config.time)),
            devices: Some(e.devices),
            device_prefix: Some(e.device_prefix.clone()),
            device_width: Some(e.device_width),
            first_device: Some(e.first_device),
            size: Some(ByteSize(e.size as u64)),
            key: Some(config.key),
            workers: Some(config.workers),
            acks: Some(config.producer.acks.clone()),
            compression: Some(config.producer.compression.clone()),
            linger_ms: Some(config.producer.linger_ms),
            batch_messages: Some(config.producer.batch_messages),
            properties: config.producer.extra.iter().cloned().collect(),
            validate: config.validate,
            sla_p99_ms: config.sla_p99_ms,
            interval: Some(Span(config.interval)),
            stop_after_missed_steps: Some(config.stop_after_missed_steps),
            temperature: Some(e.temperature),
            humidity: Some(e.humidity),
            pressure: Some(e.pressure),
            status_ok: Some(e.status_ok),
            status_warn: Some(e.status_warn),
        }
    }

    /// The run configuration, with `plateau produce`'s defaults for what is missing.
    pub fn config(&self) -> Result<ProduceConfig, String> {
        let rate = match (self.rate, &self.ramp) {
            (Some(_), Some(_)) => return Err("give either \"rate\" or \"ramp\", not both".into()),
            (Some(rate), None) => RateSpec::Fixed(rate),
            (None, Some(ramp)) => RateSpec::Ramp(ramp.parse::<Ramp>()?),
            (None, None) => return Err("give \"rate\" (msg/s) or \"ramp\" (START:STEP:EVERY_S:MAX)".into()),
        };
        let defaults = ProduceConfig::new(&self.bootstrap, &self.topic, rate);
        let events = EventSpec::default();
        let producer = ProducerSettings::default();
        let config = ProduceConfig {
            time: self.time.map(|t| t.0).unwrap_or(defaults.time),
            events: EventSpec {
                devices: self.devices.unwrap_or(events.devices),
                device_prefix: self.device_prefix.clone().unwrap_or(events.device_prefix),
                device_width: self.device_width.unwrap_or(events.device_width),
                temperature: self.temperature.unwrap_or(events.temperature),
                humidity: self.humidity.unwrap_or(events.humidity),
                pressure: self.pressure.unwrap_or(events.pressure),
                status_ok: self.status_ok.unwrap_or(events.status_ok),
                status_warn: self.status_warn.unwrap_or(events.status_warn),
                size: self.size.map(|s| s.bytes() as usize).unwrap_or(events.size),
                first_device: self.first_device.unwrap_or(events.first_device),
            },
            key: self.key.unwrap_or(defaults.key),
            workers: self.workers.unwrap_or(defaults.workers),
            producer: ProducerSettings {
                acks: self.acks.clone().unwrap_or(producer.acks),
                compression: self.compression.clone().unwrap_or(producer.compression),
                linger_ms: self.linger_ms.unwrap_or(producer.linger_ms),
                batch_messages: self.batch_messages.unwrap_or(producer.batch_messages),
                extra: self.properties.clone().into_iter().collect(),
            },
            validate: self.validate,
            sla_p99_ms: self.sla_p99_ms,
            interval: self.interval.map(|i| i.0).unwrap_or(defaults.interval),
            stop_after_missed_steps: self.stop_after_missed_steps.unwrap_or(defaults.stop_after_missed_steps),
            ..defaults
        };
        config.validate_input()?;
        crate::kafka::properties::check_remote_properties(config.producer.extra.iter().map(|(name, _)| name.as_str()))?;
        Ok(config)
    }
}

/// Body of `POST /kafka/rate`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateRequest {
    /// New target, msg/s over all workers.
    pub rate: u64,
}

fn state(shared: &AgentShared) -> std::sync::MutexGuard<'_, ProduceRunState> {
    shared.produce.lock().unwrap_or_else(|p| p.into_inner())
}

/// Shows the produce run in `/status` as `probes.produce`, in seed 000's shape.
pub fn overlay_status(shared: &AgentShared, probes: &mut BTreeMap<String, ProbeStatus>) {
    let run = state(shared);
    let Some(config) = &run.config else { return };
    let status = probes.entry("produce".to_string()).or_default();
    status.running = run.running;
    status.topic = Some(config.topic.clone());
    status.target_rate_mps = Some(run.control.as_ref().map(|c| c.rate.get()).unwrap_or(0));
    status.devices_count = Some(config.events.devices);
    status.msg_size_bytes = Some(config.events.size as u64);
    status.workers = Some(config.workers);
    if let Some(control) = &run.control {
        let live = control.live.lock().unwrap_or_else(|p| p.into_inner()).clone();
        status.stats.started_at = live.started_at.or(status.stats.started_at);
        status.stats.sent_ok = Some(live.sent_ok);
        status.stats.sent_err = Some(live.sent_err);
        status.stats.bytes_sent = Some(live.bytes_sent);
        status.stats.current_rate_mps = Some(if run.running { live.current_rate_mps } else { 0.0 });
        status.ramp_steps = live.steps;
        status.stats.delivery_p99_ms = live.latency_p99_ms;
        if live.last_error.is_some() {
            status.stats.last_error = live.last_error;
        }
    }
    if run.error.is_some() {
        status.stats.last_error = run.error.clone();
    }
}

/// The current or last produce run for `/metrics`; `None` before the first run.
pub fn metrics(shared: &AgentShared) -> Option<crate::agent::metrics::ProduceMetrics> {
    let run = state(shared);
    let control = run.control.as_ref()?;
    let live = control.live.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Some(crate::agent::metrics::ProduceMetrics {
        running: run.running,
        target_rate: if run.running { control.rate.get() as f64 } else { 0.0 },
        acked_records: live.sent_ok as f64,
        failed_records: live.sent_err as f64,
        acked_bytes: live.bytes_sent as f64,
        delivery_p99_seconds: live.latency_p99_ms.map(|ms| ms / 1000.0),
    })
}

/// `POST /kafka/produce`: starts a run in the background (202).
#[utoipa::path(post, path = "/kafka/produce", tag = "kafka", request_body = ProduceRequest, security(("bearer" = [])),
    responses((status = 202, body = ProbeStatus), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn start(
    State(shared): State<Arc<AgentShared>>,
    body: Result<Json<ProduceRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<ProbeStatus>), ApiError> {
    let Json(request) = body?;
    let mut config = request.config().map_err(|msg| ApiError::new(StatusCode::BAD_REQUEST, msg))?;
    config.bootstrap = checked_bootstrap(&shared, &config.bootstrap, &config.producer.extra).await?;
    let slot = acquire(&shared, "produce")?;
    // The slot's flag is the run's: POST /kafka/stop, POST /probes/cancel and the agent's
    // shutdown all stop the run through it.
    let control = Arc::new(RunControl {
        cancel: slot.cancel().clone(),
        allow: Some(shared.allow.clone()),
        ..RunControl::default()
    });
    start_in_background(&shared, state, slot, config, control, |config, control| {
        run_produce(config, control, &mut |_| {})
    });
    let mut probes = BTreeMap::new();
    overlay_status(&shared, &mut probes);
    Ok((StatusCode::ACCEPTED, Json(probes.remove("produce").unwrap_or_default())))
}

/// Checks every bootstrap server against the allow-list and returns the list to connect
/// to: the addresses that passed, so that librdkafka does not resolve the names again —
/// except where TLS verifies the broker's name, which needs the name itself.
pub(super) async fn checked_bootstrap(
    shared: &AgentShared,
    bootstrap: &str,
    properties: &[(String, String)],
) -> Result<String, ApiError> {
    let property = |name: &str| properties.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let tls = property("security.protocol").is_some_and(|p| p.to_ascii_uppercase().contains("SSL"));
    let verifies_name = tls && property("ssl.endpoint.identification.algorithm") != Some("none");
    let mut servers = Vec::new();
    for server in bootstrap.split(',').filter(|s| !s.trim().is_empty()) {
        let (host, port) = split_host_port(server)
            .map_err(|msg| ApiError::new(StatusCode::BAD_REQUEST, format!("bootstrap server {msg}")))?;
        let addresses = check_allowed(shared, "bootstrap server", host, port).await?;
        if verifies_name {
            servers.push(server.trim().to_string());
        } else {
            servers.extend(addresses.iter().map(ToString::to_string));
        }
    }
    Ok(servers.join(","))
}

/// `POST /kafka/rate`: a new target for the running fixed-rate run.
#[utoipa::path(post, path = "/kafka/rate", tag = "kafka", request_body = RateRequest, security(("bearer" = [])),
    responses((status = 200, body = ProbeStatus), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn set_rate(
    State(shared): State<Arc<AgentShared>>,
    body: Result<Json<RateRequest>, JsonRejection>,
) -> Result<Json<ProbeStatus>, ApiError> {
    let Json(request) = body?;
    if request.rate > MAX_RATE {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("rate {} is out of range; use 0 to {MAX_RATE} msg/s", request.rate),
        ));
    }
    fixed_rate_run(&shared, "a ramp sets the rate itself; stop it first")?.rate.set(request.rate);
    let mut probes = BTreeMap::new();
    overlay_status(&shared, &mut probes);
    Ok(Json(probes.remove("produce").unwrap_or_default()))
}

/// `POST /kafka/step`: closes the running fixed-rate run's current step — its rate stays,
/// the next step starts now — and returns it, measured after its settling share. A rate
/// search holds each target for a step and reads it before choosing the next.
#[utoipa::path(post, path = "/kafka/step", tag = "kafka", security(("bearer" = [])),
    responses((status = 200, body = Step), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn close_step(State(shared): State<Arc<AgentShared>>) -> Result<Json<Step>, ApiError> {
    let control = fixed_rate_run(&shared, "a ramp closes its steps itself")?;
    let closed = tokio::task::spawn_blocking(move || control.close_step(Duration::from_secs(2))).await;
    match closed {
        Ok(Some(step)) => Ok(Json(step)),
        _ => Err(ApiError::new(StatusCode::CONFLICT, "the produce run ended before its step could be closed")),
    }
}

/// The controls of the running fixed-rate run; 409 without a run, or with `for_ramp` for a
/// ramp (it steps itself).
fn fixed_rate_run(shared: &AgentShared, for_ramp: &str) -> Result<Arc<RunControl>, ApiError> {
    let run = state(shared);
    let (true, Some(control), Some(config)) = (run.running, &run.control, &run.config) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no produce run is going on; start one with POST /kafka/produce",
        ));
    };
    if matches!(config.rate, RateSpec::Ramp(_)) {
        return Err(ApiError::new(StatusCode::CONFLICT, for_ramp));
    }
    Ok(Arc::clone(control))
}

/// `POST /kafka/stop`: ends the running run; its report follows at `GET /kafka/report`.
#[utoipa::path(post, path = "/kafka/stop", tag = "kafka", security(("bearer" = [])),
    responses((status = 200, body = ProbeStatus), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn stop(State(shared): State<Arc<AgentShared>>) -> Result<Json<ProbeStatus>, ApiError> {
    state(&shared).stop("produce")?;
    let mut probes = BTreeMap::new();
    overlay_status(&shared, &mut probes);
    Ok(Json(probes.remove("produce").unwrap_or_default()))
}

/// `GET /kafka/report`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProduceReportResponse {
    /// Whether a run is going on.
    pub running: bool,
    /// The last finished run's report.
    pub report: Option<ProduceReport>,
    /// Why the last run failed.
    pub error: Option<String>,
}

/// `GET /kafka/report`: the last run's report.
#[utoipa::path(get, path = "/kafka/report", tag = "kafka", responses((status = 200, body = ProduceReportResponse)))]
pub async fn report(State(shared): State<Arc<AgentShared>>) -> Json<ProduceReportResponse> {
    let run = state(&shared);
    Json(ProduceReportResponse { running: run.running, report: run.report.clone(), error: run.error.clone() })
}
