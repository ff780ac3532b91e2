//! The agent's HTTP API: routes, wire types, authentication and error bodies.
//!
//! Every POST needs `Authorization: Bearer <token>`; a missing or wrong token gets 401
//! and changes nothing. Every error is a JSON body `{"error": "..."}` with a 4xx or 5xx
//! status; malformed requests never reach a probe.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

mod consume;
mod kafka;
pub mod openapi;
mod run;

pub use consume::{ConsumeReportResponse, ConsumeRequest, ConsumeRunState};
pub use kafka::{ProduceReportResponse, ProduceRequest, ProduceRunState, RateRequest};

use super::AgentShared;
use super::slots::{ProbeBook, Slot};
use crate::allow::AllowError;
use crate::net::server::Session;
use crate::net::{Endpoint, NetError, NetTestConfig, Protocol, Target};
use crate::probe::disk::{DiskConfig, DiskProbe, FsyncMode};
use crate::probe::net::NetProbe;
use crate::probe::{Probe, ProbeError, ProbeOutput};
use crate::sampler::Sample;
use crate::units::{BitRate, ByteSize, Span};

/// The routes of the agent.
pub fn router(shared: Arc<AgentShared>) -> Router {
    let mutating = Router::new()
        .route("/disk", post(run_disk))
        .route("/net/session", post(net_session))
        .route("/net/tcp", post(run_net_tcp))
        .route("/net/udp", post(run_net_udp))
        .route("/probes/cancel", post(cancel_probe))
        .route("/auth/check", post(check_auth))
        .route("/kafka/produce", post(kafka::start))
        .route("/kafka/rate", post(kafka::set_rate))
        .route("/kafka/step", post(kafka::close_step))
        .route("/kafka/stop", post(kafka::stop))
        .route("/kafka/consume", post(consume::start))
        .route("/kafka/consume/stop", post(consume::stop))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), require_token));
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/samples", get(samples))
        .route("/kafka/report", get(kafka::report))
        .route("/kafka/consume/report", get(consume::report))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(mutating)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see GET /status") })
        .with_state(shared)
}

/// An error answered as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }
}

/// Every error's body.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.message })).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        ApiError::new(rejection.status(), format!("invalid request body: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, format!("invalid query: {}", rejection.body_text()))
    }
}

impl From<ProbeError> for ApiError {
    fn from(err: ProbeError) -> ApiError {
        let status = match err {
            ProbeError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            ProbeError::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
            // The probe ran and its target failed: a gateway-style error.
            ProbeError::Failed(_) => StatusCode::BAD_GATEWAY,
            ProbeError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, err.to_string())
    }
}

async fn require_token(
    State(shared): State<Arc<AgentShared>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &shared.token else {
        return next.run(request).await;
    };
    match crate::http_serve::bearer_token(&headers) {
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => next.run(request).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "wrong token").into_response(),
        None => {
            ApiError::new(StatusCode::UNAUTHORIZED, "missing 'Authorization: Bearer <token>' header").into_response()
        }
    }
}

/// `GET /status`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusResponse {
    /// plateau version.
    pub version: String,
    /// The host's name.
    pub hostname: String,
    /// Seconds since the agent started.
    pub uptime_seconds: f64,
    /// Unix time in milliseconds the agent started.
    pub started_at_ms: u64,
    /// Whether POSTs need a token.
    pub auth: bool,
    /// Networks that probes may target.
    pub allow: Vec<String>,
    /// Port for network test traffic (TCP and UDP).
    pub data_port: u16,
    /// The broker's log directory on this host (`--log-dir`), where disk probes belong.
    #[serde(default)]
    pub log_dir: Option<String>,
    /// The background sampler.
    pub sampler: SamplerStatus,
    /// Each probe the agent can run, by name.
    pub probes: BTreeMap<String, ProbeStatus>,
}

/// The sampler's part of `/status`.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SamplerStatus {
    /// Whether the sampler thread is running.
    pub running: bool,
    /// Interval between readings.
    pub interval_ms: u64,
    /// Readings taken.
    pub readings_total: u64,
    /// Samples in the ring buffer.
    pub samples_held: usize,
    /// Timestamp of the newest sample.
    pub last_sample_ms: Option<u64>,
    /// The workload read beside the host (`cgroup:/system.slice/kafka.service`, `pid:4242`);
    /// none when the host alone is read.
    pub watch: Option<String>,
    /// Why that one: `as --watch says`, or what the search for this host's Kafka broker
    /// found (or did not).
    #[serde(default)]
    pub watch_reason: Option<String>,
    /// Problems of the most recent reading that had any.
    pub last_problems: Vec<String>,
}

/// One probe's part of `/status`, in the shape of seed 000's generator status
/// (`running`, `topic`, `target_rate_mps`, ..., `stats {started_at, sent_ok, ...}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProbeStatus {
    /// Whether it is running now.
    pub running: bool,
    /// Produce runs: the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Produce runs: the target rate, msg/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rate_mps: Option<u64>,
    /// Produce runs: simulated devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices_count: Option<u64>,
    /// Produce runs: padded event size (0: unpadded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_size_bytes: Option<u64>,
    /// Produce runs: producing threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Consume runs: members of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<usize>,
    /// Counters since the agent started.
    pub stats: ProbeStats,
    /// Produce ramps: the steps finished so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ramp_steps: Vec<crate::kafka::report::Step>,
}

/// Counters of one probe.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProbeStats {
    /// Unix ms the current or last run started.
    pub started_at: Option<u64>,
    /// Runs that finished with a result.
    pub runs_ok: u64,
    /// Runs that failed.
    pub runs_err: u64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Produce runs: records acknowledged in the current or last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_ok: Option<u64>,
    /// Produce runs: records that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_err: Option<u64>,
    /// Produce runs: bytes acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    /// Consume runs: records handled in the current or last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed: Option<u64>,
    /// Consume runs: Unix ms `consumed` was counted at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed_at_ms: Option<u64>,
    /// Consume runs: the group's lag at the last sample, records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<u64>,
    /// Consume runs: mean end-to-end latency over the last interval, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_avg_ms: Option<f64>,
    /// Consume runs: 99th percentile end-to-end latency over the last interval, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_p99_ms: Option<f64>,
    /// Produce runs: acknowledged records per second, last interval (consume runs:
    /// records handled per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_rate_mps: Option<f64>,
    /// Produce runs: delivery latency p99 over the last reporting interval, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_p99_ms: Option<f64>,
}

#[utoipa::path(get, path = "/status", tag = "host", responses((status = 200, body = StatusResponse)))]
async fn status(State(shared): State<Arc<AgentShared>>) -> Json<StatusResponse> {
    let sampler = {
        let state = shared.sampler.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        SamplerStatus {
            running: !shared.shutting_down.is_cancelled(),
            interval_ms: state.interval.as_millis() as u64,
            readings_total: state.readings_total,
            samples_held: state.ring.len(),
            last_sample_ms: state.ring.latest().map(|s| s.ts_ms),
            watch: state.watch.clone(),
            watch_reason: state.watch_reason.clone(),
            last_problems: state.last_problems.clone(),
        }
    };
    let records = shared.probes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).statuses();
    let mut probes: BTreeMap<String, ProbeStatus> = records
        .into_iter()
        .map(|(name, record)| {
            let stats = ProbeStats {
                started_at: record.started_at,
                runs_ok: record.runs_ok,
                runs_err: record.runs_err,
                last_error: record.last_error,
                ..ProbeStats::default()
            };
            (name, ProbeStatus { running: record.running, stats, ..ProbeStatus::default() })
        })
        .collect();
    kafka::overlay_status(&shared, &mut probes);
    consume::overlay_status(&shared, &mut probes);
    Json(StatusResponse {
        version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: shared.hostname.clone(),
        uptime_seconds: shared.started.elapsed().as_secs_f64(),
        started_at_ms: shared.started_at_ms,
        auth: shared.token.is_some(),
        allow: shared.allow.networks().iter().map(ToString::to_string).collect(),
        data_port: shared.net.port(),
        log_dir: shared.log_dir.clone(),
        sampler,
        probes,
    })
}

#[utoipa::path(get, path = "/metrics", tag = "host",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(shared): State<Arc<AgentShared>>) -> Result<Response, ApiError> {
    let produce = kafka::metrics(&shared);
    let text = super::metrics::render(Arc::clone(&shared.sampler), shared.started_at_ms as f64 / 1000.0, produce)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed"))?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}

/// Query of `GET /samples`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct SamplesQuery {
    /// Only samples stamped after this Unix time in milliseconds.
    #[serde(default)]
    since: u64,
}

/// `GET /samples`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SamplesResponse {
    /// The host's name.
    pub hostname: String,
    /// Samples after `since`, oldest first.
    pub samples: Vec<Sample>,
}

#[utoipa::path(get, path = "/samples", tag = "host", params(SamplesQuery),
    responses((status = 200, body = SamplesResponse), (status = 400, body = ErrorBody)))]
async fn samples(
    State(shared): State<Arc<AgentShared>>,
    query: Result<Query<SamplesQuery>, QueryRejection>,
) -> Result<Json<SamplesResponse>, ApiError> {
    let Query(query) = query?;
    let samples = shared.sampler.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).ring.since(query.since);
    Ok(Json(SamplesResponse { hostname: shared.hostname.clone(), samples }))
}

/// Body of `POST /disk`; field names mirror `plateau disk`'s flags.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskRequest {
    /// Directory to write in.
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// Bytes to append (`"256M"` or an integer).
    pub size: Option<ByteSize>,
    /// Bytes per write.
    pub block: Option<ByteSize>,
    /// `every`, `end` or `never`.
    pub fsync: Option<FsyncMode>,
    /// O_DIRECT.
    #[serde(default)]
    pub direct: bool,
    /// Random 4 KiB reads after the append.
    pub reads: Option<u64>,
}

impl DiskRequest {
    fn into_config(self) -> DiskConfig {
        let defaults = DiskConfig::for_path(self.path);
        DiskConfig {
            size: self.size.unwrap_or(defaults.size),
            block: self.block.unwrap_or(defaults.block),
            fsync: self.fsync.unwrap_or(defaults.fsync),
            direct: self.direct,
            reads: self.reads.unwrap_or(defaults.reads),
            ..defaults
        }
    }
}

/// Runs `probe` on a blocking thread unless another probe holds the slot (409).
///
/// The slot moves into the probe's thread: if the client goes away, the request's
/// future is dropped but the probe keeps the slot until it has really stopped.
async fn run_exclusive(shared: &Arc<AgentShared>, probe: impl Probe + Send + 'static) -> Result<ProbeOutput, ApiError> {
    let slot = acquire(shared, probe.name())?;
    let outcome = tokio::task::spawn_blocking(move || {
        let outcome = probe.run(slot.cancel());
        slot.record(outcome.as_ref().map(|_| ()).map_err(ToString::to_string));
        outcome
    })
    .await
    .unwrap_or_else(|join_err| Err(ProbeError::Failed(format!("probe thread failed: {join_err}"))));
    Ok(outcome?)
}

pub(super) fn acquire(shared: &Arc<AgentShared>, name: &str) -> Result<Slot, ApiError> {
    if shared.shutting_down.is_cancelled() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the agent is shutting down"));
    }
    ProbeBook::acquire(&shared.probes, name).map_err(|running| {
        ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "a {running} probe is already running on this agent; retry when it has finished, or stop it with POST /probes/cancel"
            ),
        )
    })
}

/// Answer of `POST /probes/cancel`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CancelResponse {
    /// The probe that was asked to stop; it frees the slot once it has stopped.
    pub cancelled: String,
}

/// `POST /auth/check`'s answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuthResponse {
    /// Always true: only a request that carried the agent's token gets this far.
    pub authenticated: bool,
}

/// `POST /auth/check`: whether the bearer token is this agent's (401 when it is not);
/// changes nothing. Diagnose's preflight asks it of every agent.
#[utoipa::path(post, path = "/auth/check", tag = "agent", security(("bearer" = [])),
    responses((status = 200, body = AuthResponse), (status = 401, body = ErrorBody)))]
async fn check_auth() -> Json<AuthResponse> {
    Json(AuthResponse { authenticated: true })
}

/// `POST /probes/cancel`: asks the running probe (disk, network test, produce run) to stop.
#[utoipa::path(post, path = "/probes/cancel", tag = "probes", security(("bearer" = [])),
    responses((status = 200, body = CancelResponse), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel_probe(State(shared): State<Arc<AgentShared>>) -> Result<Json<CancelResponse>, ApiError> {
    let cancelled = ProbeBook::cancel_active(&shared.probes)
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "no probe is running"))?;
    Ok(Json(CancelResponse { cancelled }))
}

#[utoipa::path(post, path = "/disk", tag = "probes", request_body = DiskRequest, security(("bearer" = [])),
    responses((status = 200, body = ProbeOutput), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 500, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn run_disk(
    State(shared): State<Arc<AgentShared>>,
    body: Result<Json<DiskRequest>, JsonRejection>,
) -> Result<Json<ProbeOutput>, ApiError> {
    let Json(request) = body?;
    let probe = DiskProbe::new(request.into_config(), shared.max_disk_size)?;
    run_exclusive(&shared, probe).await.map(Json)
}

/// Body of `POST /net/session` (the test this agent is asked to serve on its data
/// port), `POST /net/tcp` and `POST /net/udp` (a test from this agent to `target`).
/// Field names mirror `plateau net`'s flags.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NetRequest {
    /// `/net/tcp`, `/net/udp`: `iperf3://HOST[:PORT]`, or `plateau://HOST:DATA_PORT`
    /// with the `cookie` that agent issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The cookie the target agent issued (its `POST /net/session`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// `/net/session`: `tcp` or `udp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    /// Seconds measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<u32>,
    /// Streams per direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
    /// The receiving end sends.
    #[serde(default)]
    pub reverse: bool,
    /// Both directions.
    #[serde(default)]
    pub bidir: bool,
    /// Seconds omitted at the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omit: Option<u32>,
    /// Bytes per write or datagram.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<ByteSize>,
    /// Reporting interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Span>,
    /// UDP rate per stream (`"100M"` or bits/s); required for UDP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<BitRate>,
}

impl NetRequest {
    /// The same request for `config`, as the CLI sends it.
    pub fn for_config(config: &NetTestConfig) -> NetRequest {
        NetRequest {
            protocol: Some(config.protocol),
            time: Some(config.time_secs),
            parallel: Some(config.parallel),
            reverse: config.reverse,
            bidir: config.bidir,
            omit: Some(config.omit_secs),
            len: Some(ByteSize(config.len as u64)),
            interval: Some(Span(config.interval)),
            rate: (config.protocol == Protocol::Udp).then_some(BitRate(config.rate_bits_per_sec)),
            ..NetRequest::default()
        }
    }

    /// The test this request describes, with the defaults of `plateau net`.
    pub fn test_config(&self, protocol: Protocol) -> Result<NetTestConfig, NetError> {
        let base = match protocol {
            Protocol::Tcp => NetTestConfig::tcp(),
            Protocol::Udp => {
                let rate = self.rate.ok_or_else(|| {
                    NetError::InvalidInput("a UDP test needs a rate (e.g. \"rate\": \"100M\")".into())
                })?;
                NetTestConfig::udp(rate.0)
            }
        };
        if self.reverse && self.bidir {
            return Err(NetError::InvalidInput("reverse and bidir cannot be combined".into()));
        }
        Ok(NetTestConfig {
            time_secs: self.time.unwrap_or(base.time_secs),
            parallel: self.parallel.unwrap_or(base.parallel),
            reverse: self.reverse,
            bidir: self.bidir,
            omit_secs: self.omit.unwrap_or(base.omit_secs),
            len: self.len.map(|l| l.bytes().min(u32::MAX as u64) as u32).unwrap_or(base.len),
            interval: self.interval.map(|i| i.0).unwrap_or(base.interval),
            ..base
        })
    }
}

impl From<NetError> for ApiError {
    fn from(err: NetError) -> ApiError {
        let status = match err {
            NetError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            NetError::Busy(_) => StatusCode::CONFLICT,
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError::new(status, err.to_string())
    }
}

#[utoipa::path(post, path = "/net/session", tag = "network", request_body = NetRequest, security(("bearer" = [])),
    responses((status = 200, body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn net_session(
    State(shared): State<Arc<AgentShared>>,
    body: Result<Json<NetRequest>, JsonRejection>,
) -> Result<Json<Session>, ApiError> {
    let Json(request) = body?;
    let protocol = request.protocol.ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "say which test to serve: \"protocol\": \"tcp\" or \"udp\"")
    })?;
    let config = request.test_config(protocol)?;
    config.validate(&shared.net.caps())?;
    let slot = acquire(&shared, "net-server")?;
    let cancel = slot.cancel().clone();
    Ok(Json(shared.net.issue(&config, Box::new(slot), cancel)?))
}

#[utoipa::path(post, path = "/net/tcp", tag = "network", request_body = NetRequest, security(("bearer" = [])),
    responses((status = 200, body = ProbeOutput), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn run_net_tcp(
    state: State<Arc<AgentShared>>,
    body: Result<Json<NetRequest>, JsonRejection>,
) -> Result<Json<ProbeOutput>, ApiError> {
    run_net(state, Protocol::Tcp, body).await
}

#[utoipa::path(post, path = "/net/udp", tag = "network", request_body = NetRequest, security(("bearer" = [])),
    responses((status = 200, body = ProbeOutput), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
async fn run_net_udp(
    state: State<Arc<AgentShared>>,
    body: Result<Json<NetRequest>, JsonRejection>,
) -> Result<Json<ProbeOutput>, ApiError> {
    run_net(state, Protocol::Udp, body).await
}

async fn run_net(
    State(shared): State<Arc<AgentShared>>,
    protocol: Protocol,
    body: Result<Json<NetRequest>, JsonRejection>,
) -> Result<Json<ProbeOutput>, ApiError> {
    let Json(r) = body?;
    let config = r.test_config(protocol)?;
    config.validate(&shared.net.caps())?;
    let target: Target = r
        .target
        .as_deref()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing \"target\": iperf3://HOST[:PORT] or plateau://HOST:DATA_PORT",
            )
        })?
        .parse()
        .map_err(|msg: String| ApiError::new(StatusCode::BAD_REQUEST, msg))?;
    let (host, port, peer) = match &target {
        Target::Iperf3 { host, port } => (host.clone(), *port, "iperf3"),
        Target::Data { host, port } => (host.clone(), *port, "plateau"),
        Target::Agent(url) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "target {url} is an agent's API; ask it for a session (POST /net/session) and pass plateau://HOST:DATA_PORT with the cookie"
                ),
            ));
        }
    };
    if peer == "plateau" && r.cookie.is_none() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "a plateau:// target needs the cookie its agent issued"));
    }
    // The test connects to the address that passed the check, not to the name again.
    let addresses = check_allowed(&shared, "target", &host, port).await?;
    let endpoint = Endpoint { host: addresses[0].ip().to_string(), port, cookie: r.cookie, peer: peer.to_string() };
    let probe = NetProbe { endpoint, config, from: shared.hostname.clone() };
    run_exclusive(&shared, probe).await.map(Json)
}

/// Resolves `host` once and refuses (403) it unless every address is inside the agent's
/// `--allow` list; the caller connects to the addresses returned, never to the name.
pub(super) async fn check_allowed(
    shared: &AgentShared,
    what: &'static str,
    host: &str,
    port: u16,
) -> Result<Vec<std::net::SocketAddr>, ApiError> {
    let allow = shared.allow.clone();
    let host = host.to_string();
    tokio::task::spawn_blocking(move || allow.resolve(what, &host, port))
        .await
        .map_err(|err| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("resolving failed: {err}")))?
        .map_err(|err| match err {
            AllowError::Unresolved { .. } => ApiError::new(StatusCode::BAD_REQUEST, err.to_string()),
            AllowError::Outside { .. } => ApiError::new(StatusCode::FORBIDDEN, err.to_string()),
        })
}
