//! The agent's HTTP API: routes, wire types, authentication and error bodies.
//!
//! Every POST needs `Authorization: Bearer <token>`; a missing or wrong token gets 401
//! and changes nothing. Every error is a JSON body `{"error": "..."}` with a 4xx or 5xx
//! status; malformed requests never reach a probe.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::AgentShared;
use crate::probe::disk::{DiskConfig, DiskProbe, FsyncMode};
use crate::probe::{Cancel, Probe, ProbeError, ProbeOutput};
use crate::sampler::Sample;
use crate::units::ByteSize;

/// The routes of the agent.
pub fn router(shared: Arc<AgentShared>) -> Router {
    let mutating =
        Router::new()
            .route("/disk", post(run_disk))
            .route_layer(middleware::from_fn_with_state(
                Arc::clone(&shared),
                require_token,
            ));
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/samples", get(samples))
        .merge(mutating)
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see GET /status")
        })
        .with_state(shared)
}

/// An error answered as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        ApiError::new(
            rejection.status(),
            format!("invalid request body: {}", rejection.body_text()),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("invalid query: {}", rejection.body_text()),
        )
    }
}

impl From<ProbeError> for ApiError {
    fn from(err: ProbeError) -> ApiError {
        let status = match err {
            ProbeError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            ProbeError::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
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
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => {
            next.run(request).await
        }
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "wrong token").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing 'Authorization: Bearer <token>' header",
        )
        .into_response(),
    }
}

/// `GET /status`.
#[derive(Debug, Serialize, Deserialize)]
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
    /// The background sampler.
    pub sampler: SamplerStatus,
    /// Each probe the agent can run, by name.
    pub probes: BTreeMap<String, ProbeStatus>,
}

/// The sampler's part of `/status`.
#[derive(Debug, Serialize, Deserialize)]
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
    /// The watched workload, if any.
    pub watch: Option<String>,
    /// Problems of the most recent reading that had any.
    pub last_problems: Vec<String>,
}

/// One probe's part of `/status`, in the shape of seed 000's generator status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProbeStatus {
    /// Whether it is running now.
    pub running: bool,
    /// Counters since the agent started.
    pub stats: ProbeStats,
}

/// Counters of one probe.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProbeStats {
    /// Unix ms the current or last run started.
    pub started_at: Option<u64>,
    /// Runs that finished with a result.
    pub runs_ok: u64,
    /// Runs that failed.
    pub runs_err: u64,
    /// The last failure.
    pub last_error: Option<String>,
}

async fn status(State(shared): State<Arc<AgentShared>>) -> Json<StatusResponse> {
    let sampler = {
        let state = shared
            .sampler
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        SamplerStatus {
            running: !shared.shutting_down.is_cancelled(),
            interval_ms: state.interval.as_millis() as u64,
            readings_total: state.readings_total,
            samples_held: state.ring.len(),
            last_sample_ms: state.ring.latest().map(|s| s.ts_ms),
            watch: state.watch.clone(),
            last_problems: state.last_problems.clone(),
        }
    };
    let probes = shared
        .probes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .statuses
        .clone();
    Json(StatusResponse {
        version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: shared.hostname.clone(),
        uptime_seconds: shared.started.elapsed().as_secs_f64(),
        started_at_ms: shared.started_at_ms,
        auth: shared.token.is_some(),
        allow: shared.allow.iter().map(ToString::to_string).collect(),
        sampler,
        probes,
    })
}

async fn metrics(State(shared): State<Arc<AgentShared>>) -> Result<Response, ApiError> {
    let text = super::metrics::render(
        Arc::clone(&shared.sampler),
        shared.started_at_ms as f64 / 1000.0,
    )
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Query of `GET /samples`.
#[derive(Debug, Deserialize)]
struct SamplesQuery {
    /// Only samples stamped after this Unix time in milliseconds.
    #[serde(default)]
    since: u64,
}

/// `GET /samples`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SamplesResponse {
    /// The host's name.
    pub hostname: String,
    /// Samples after `since`, oldest first.
    pub samples: Vec<Sample>,
}

async fn samples(
    State(shared): State<Arc<AgentShared>>,
    query: Result<Query<SamplesQuery>, QueryRejection>,
) -> Result<Json<SamplesResponse>, ApiError> {
    let Query(query) = query?;
    let samples = shared
        .sampler
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .ring
        .since(query.since);
    Ok(Json(SamplesResponse {
        hostname: shared.hostname.clone(),
        samples,
    }))
}

/// Body of `POST /disk`; field names mirror `plateau disk`'s flags.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskRequest {
    /// Directory to write in.
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

/// The probes running on this agent and their counters; one active probe at a time.
#[derive(Debug, Default)]
pub struct ProbeBook {
    /// Name and cancel flag of the probe running now.
    pub active: Option<(String, Cancel)>,
    /// Status of each probe ever run, by name.
    pub statuses: BTreeMap<String, ProbeStatus>,
}

/// Releases the agent's probe slot when the run ends, however it ends.
struct ActiveGuard {
    book: Arc<Mutex<ProbeBook>>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut book = self
            .book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((name, _)) = book.active.take() {
            book.statuses.entry(name).or_default().running = false;
        }
    }
}

/// Runs `probe` on a blocking thread unless another probe is running (409).
async fn run_exclusive(
    shared: &Arc<AgentShared>,
    probe: impl Probe + Send + 'static,
) -> Result<ProbeOutput, ApiError> {
    let name = probe.name().to_string();
    let cancel = shared.shutting_down.clone();
    {
        let mut book = shared
            .probes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((running, _)) = &book.active {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "a {running} probe is already running on this agent; retry when it has finished"
                ),
            ));
        }
        book.active = Some((name.clone(), cancel.clone()));
        let status = book.statuses.entry(name.clone()).or_default();
        status.running = true;
        status.stats.started_at = Some(crate::sampler::raw::unix_ms_now());
    }
    let guard = ActiveGuard {
        book: Arc::clone(&shared.probes),
    };
    let outcome = tokio::task::spawn_blocking(move || probe.run(&cancel))
        .await
        .unwrap_or_else(|join_err| {
            Err(ProbeError::InvalidInput(format!(
                "probe thread failed: {join_err}"
            )))
        });
    {
        let mut book = guard
            .book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let stats = &mut book.statuses.entry(name).or_default().stats;
        match &outcome {
            Ok(_) => stats.runs_ok += 1,
            Err(err) => {
                stats.runs_err += 1;
                stats.last_error = Some(err.to_string());
            }
        }
    }
    drop(guard);
    Ok(outcome?)
}

async fn run_disk(
    State(shared): State<Arc<AgentShared>>,
    body: Result<Json<DiskRequest>, JsonRejection>,
) -> Result<Json<ProbeOutput>, ApiError> {
    let Json(request) = body?;
    let probe = DiskProbe::new(request.into_config(), shared.max_disk_size)?;
    run_exclusive(&shared, probe).await.map(Json)
}
