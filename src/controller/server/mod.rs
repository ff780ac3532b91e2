//! The console's HTTP server (axum): the page and its assets, a JSON API the page calls,
//! live chart SVGs, "Diagnose now" reports, and the guard in front of all of it (`guard`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;

mod guard;

use self::guard::{LoginThrottle, Sessions, guard, login, login_page, random_token};
use super::ControllerConfig;
use super::charts::{self, Chart};
use super::diagnose::{self, DiagnoseSummary};
use super::form::{LoadForm, RampForm, check_rate};
use super::history::{AgentCard, History};
use crate::agent::api::ErrorBody;
use crate::agent::api::openapi::BearerAuth;
use crate::agent::client::{AgentClient, AgentError};
use crate::evidence::prometheus::ClusterRate;
use crate::rules::RuleSet;

const INDEX: &str = include_str!("../assets/index.html");
const LOGIN: &str = include_str!("../assets/login.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
const SESSION_COOKIE: &str = "plateau_session";
const CSRF_HEADER: &str = "x-plateau-csrf";

/// A ramp the console is running (or ran) on all generators.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
struct RampView {
    form: RampForm,
    targets: Vec<u64>,
    step_index: usize,
    started_ms: u64,
    /// Whether it reached its max and holds there.
    holding: bool,
    /// Whether it was stopped.
    stopped: bool,
}

struct Shared {
    config: ControllerConfig,
    rules: RuleSet,
    csrf: String,
    sessions: Mutex<Sessions>,
    logins: Mutex<LoginThrottle>,
    clients: BTreeMap<String, AgentClient>,
    history: Mutex<History>,
    form: Mutex<LoadForm>,
    ramp: Mutex<Option<RampView>>,
    ramp_cancel: Mutex<Arc<AtomicBool>>,
    diagnoses: Mutex<Vec<DiagnoseSummary>>,
    diagnosing: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// An error the page shows as it is.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(ErrorBody { error: self.1 })).into_response()
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// Serves the console until `shutdown` completes.
pub async fn serve(
    config: ControllerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let rules = config.rules.clone();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", config.listen))?;
    let address = listener.local_addr()?;
    // Blocking HTTP clients are built (and used) off the async threads.
    let (urls, token) = (
        config.generators.iter().chain(&config.brokers).chain(&config.consumers).cloned().collect::<Vec<_>>(),
        config.agent_token.clone(),
    );
    let clients = tokio::task::spawn_blocking(move || {
        urls.into_iter()
            .map(|url| {
                let client = AgentClient::new(&url, token.clone(), Duration::from_secs(10));
                (url, client)
            })
            .collect::<BTreeMap<_, _>>()
    })
    .await?;
    let shared = Arc::new(Shared {
        history: Mutex::new(History::new(&config.generators, &config.brokers, &config.consumers)),
        form: Mutex::new(LoadForm::seed(&config.bootstrap, &config.topic)),
        config,
        rules,
        csrf: random_token(),
        sessions: Mutex::default(),
        logins: Mutex::default(),
        clients,
        ramp: Mutex::new(None),
        ramp_cancel: Mutex::new(Arc::new(AtomicBool::new(false))),
        diagnoses: Mutex::new(Vec::new()),
        diagnosing: AtomicBool::new(false),
    });
    tokio::spawn(poll_forever(Arc::clone(&shared)));
    println!(
        "plateau controller on http://{address}/ ({} generators, {} broker hosts)",
        shared.config.generators.len(),
        shared.config.brokers.len()
    );
    crate::http_serve::raise_open_file_limit();
    crate::http_serve::serve(listener, router(shared), crate::http_serve::ConnectionLimits::default(), shutdown)
        .await?;
    Ok(())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/login", get(login_page).post(login))
        .route("/assets/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS) }))
        .route("/assets/app.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS) }))
        .route("/api/state", get(state))
        .route("/api/chart/{name}", get(chart))
        .route("/api/start", post(start))
        .route("/api/rate", post(set_rate))
        .route("/api/stop", post(stop))
        .route("/api/ramp", post(ramp))
        .route("/api/ramp/stop", post(stop_ramp))
        .route("/api/diagnose", post(diagnose_now))
        .route("/reports/{id}/{file}", get(report_file))
        .route("/openapi.json", get(openapi_json))
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), guard))
        .with_state(shared)
}

/// The console's API.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "plateau controller",
        description = "The web console's JSON API. Scripts send the access token as a bearer token; pages send their session cookie and the X-Plateau-Csrf header."
    ),
    paths(state, chart, start, set_rate, stop, ramp, stop_ramp, diagnose_now, report_file, openapi_json),
    modifiers(&BearerAuth)
)]
pub struct ControllerApi;

#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "this description")))]
async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(<ControllerApi as utoipa::OpenApi>::openapi())
}

async fn index(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let page = INDEX.replace("{{CSRF}}", &shared.csrf);
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], page)
}

/// What the page polls.
#[derive(Serialize, utoipa::ToSchema)]
struct StateView {
    agents: Vec<AgentCard>,
    form: LoadForm,
    ramp: Option<RampView>,
    totals: Option<(u64, f64, f64)>,
    #[schema(value_type = Option<Object>)]
    prometheus: Option<serde_json::Value>,
    diagnoses: Vec<DiagnoseSummary>,
    diagnosing: bool,
}

#[utoipa::path(get, path = "/api/state", tag = "console", security(("bearer" = [])), responses((status = 200, body = StateView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 421, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn state(State(shared): State<Arc<Shared>>) -> axum::Json<StateView> {
    let history = lock(&shared.history);
    let config = &shared.config;
    let agents =
        config.generators.iter().chain(&config.brokers).filter_map(|url| history.cards.get(url).cloned()).collect();
    let prometheus = config.prometheus.as_ref().map(|url| {
        json!({
            "url": url,
            "rate": history.prometheus.back().map(|(_, rate)| rate),
            "error": history.prometheus_error,
        })
    });
    axum::Json(StateView {
        agents,
        form: lock(&shared.form).clone(),
        ramp: lock(&shared.ramp).clone(),
        totals: history.totals(now_ms().saturating_sub(3000)).last().copied(),
        prometheus,
        diagnoses: lock(&shared.diagnoses).iter().rev().take(5).cloned().collect(),
        diagnosing: shared.diagnosing.load(Ordering::Relaxed),
    })
}

#[utoipa::path(get, path = "/api/chart/{name}", tag = "console", security(("bearer" = [])), params(("name" = String, Path, description = "throughput, latency or hosts")), responses((status = 200, description = "an SVG chart", content_type = "image/svg+xml", body = String), (status = 404, body = ErrorBody), (status = 500, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 421, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn chart(State(shared): State<Arc<Shared>>, name: Result<Path<String>, PathRejection>) -> Response {
    let Ok(Path(name)) = name else { return ApiError(StatusCode::NOT_FOUND, "no such chart".into()).into_response() };
    let Some(which) = Chart::from_name(&name) else {
        return ApiError(StatusCode::NOT_FOUND, format!("no chart '{}'", crate::http_serve::echo(&name)))
            .into_response();
    };
    let svg = charts::render(which, &lock(&shared.history), now_ms());
    match svg {
        Ok(svg) => {
            ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")], svg).into_response()
        }
        Err(err) => {
            ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("drawing {name} failed: {err}")).into_response()
        }
    }
}

/// Which generators a request is for: the named ones (each must be one of ours), or all.
fn targets(shared: &Shared, named: &[String]) -> Result<Vec<String>, ApiError> {
    if named.is_empty() {
        return Ok(shared.config.generators.clone());
    }
    for url in named {
        if !shared.config.generators.contains(url) {
            return Err(bad_request(format!("'{url}' is not one of this console's generators")));
        }
    }
    Ok(named.to_vec())
}

/// What each agent said.
#[derive(Serialize, utoipa::ToSchema)]
struct Outcome {
    agent: String,
    ok: bool,
    /// The agent answered and refused (a 4xx of its own), as opposed to being unreachable.
    refused: bool,
    error: Option<String>,
}

/// Calls `action` on each agent, all at once, off the async threads.
async fn on_agents<F>(shared: &Shared, urls: &[String], action: F) -> Vec<Outcome>
where
    F: Fn(&AgentClient) -> Result<(), AgentError> + Send + Sync + Clone + 'static,
{
    let calls: Vec<_> = urls
        .iter()
        .map(|url| {
            let client = shared.clients[url].clone();
            let action = action.clone();
            let url = url.clone();
            tokio::task::spawn_blocking(move || {
                let result = action(&client);
                Outcome {
                    agent: url,
                    ok: result.is_ok(),
                    refused: matches!(result, Err(AgentError::Refused { .. })),
                    error: result.err().map(|err| err.to_string()),
                }
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for call in calls {
        if let Ok(outcome) = call.await {
            outcomes.push(outcome);
        }
    }
    outcomes
}

/// The answer to an action on generators: each agent's outcome, and the failures together.
#[derive(Serialize, utoipa::ToSchema)]
struct Answer {
    results: Vec<Outcome>,
    error: Option<String>,
}

fn answer(outcomes: Vec<Outcome>) -> Response {
    let failed: Vec<String> =
        outcomes.iter().filter_map(|o| o.error.as_ref().map(|e| format!("{}: {e}", o.agent))).collect();
    // An agent that refused says the request does not fit its state (409); only an agent
    // that could not be asked at all is the gateway's failure (502).
    let status = if failed.is_empty() {
        StatusCode::OK
    } else if outcomes.iter().all(|o| o.ok || o.refused) {
        StatusCode::CONFLICT
    } else {
        StatusCode::BAD_GATEWAY
    };
    let error = (!failed.is_empty()).then(|| failed.join("; "));
    (status, axum::Json(Answer { results: outcomes, error })).into_response()
}

fn start_on(client: &AgentClient, config: &crate::kafka::ProduceConfig) -> Result<(), AgentError> {
    client.start_produce(config).map(|_| ()).map_err(|err| match err {
        AgentError::Refused { url, status: 409, .. } => AgentError::Refused {
            url,
            status: 409,
            message: "already producing; use Set rate, or Stop first".to_string(),
        },
        err => err,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    #[serde(default)]
    agents: Vec<String>,
    rate: f64,
    settings: LoadForm,
}

/// The JSON body a page sent, as `T`; `what` names it in the error.
fn parse<T: serde::de::DeserializeOwned>(body: JsonBody, what: &str) -> Result<T, ApiError> {
    let axum::Json(value) = body.map_err(|rejection| {
        ApiError(rejection.status(), format!("{what} is not JSON: {}", crate::http_serve::echo(&rejection.body_text())))
    })?;
    serde_json::from_value(value).map_err(|err| bad_request(format!("{what} is incomplete: {err}")))
}

/// A JSON body, or why it is not one (answered as JSON, not axum's plain text).
type JsonBody = Result<axum::Json<serde_json::Value>, JsonRejection>;

#[utoipa::path(post, path = "/api/start", tag = "console", security(("bearer" = [])), request_body = StartRequest, responses((status = 200, body = Answer), (status = 409, body = Answer), (status = 502, body = Answer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 421, body = ErrorBody), (status = 429, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn start(State(shared): State<Arc<Shared>>, body: JsonBody) -> Result<Response, ApiError> {
    let request: StartRequest = parse(body, "the form")?;
    let urls = targets(&shared, &request.agents)?;
    let config = request.settings.config(request.rate).map_err(bad_request)?;
    *lock(&shared.form) = request.settings;
    Ok(answer(on_agents(&shared, &urls, move |client| start_on(client, &config)).await))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RateBody {
    #[serde(default)]
    agents: Vec<String>,
    rate: f64,
}

#[utoipa::path(post, path = "/api/rate", tag = "console", security(("bearer" = [])), request_body = RateBody, responses((status = 200, body = Answer), (status = 409, body = Answer), (status = 502, body = Answer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 421, body = ErrorBody), (status = 429, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_rate(State(shared): State<Arc<Shared>>, body: JsonBody) -> Result<Response, ApiError> {
    let request: RateBody = parse(body, "the request")?;
    let urls = targets(&shared, &request.agents)?;
    let rate = check_rate("rate", request.rate).map_err(bad_request)?;
    Ok(answer(on_agents(&shared, &urls, move |client| client.set_produce_rate(rate).map(|_| ())).await))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StopBody {
    #[serde(default)]
    agents: Vec<String>,
}

#[utoipa::path(post, path = "/api/stop", tag = "console", security(("bearer" = [])), request_body = StopBody, responses((status = 200, body = Answer), (status = 409, body = Answer), (status = 502, body = Answer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 421, body = ErrorBody), (status = 429, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn stop(State(shared): State<Arc<Shared>>, body: JsonBody) -> Result<Response, ApiError> {
    let request: StopBody = parse(body, "the request")?;
    let urls = targets(&shared, &request.agents)?;
    if request.agents.is_empty() {
        cancel_ramp(&shared);
    }
    // Stopping a generator that is not producing is not an error.
    Ok(answer(
        on_agents(&shared, &urls, |client| match client.stop_produce() {
            Ok(_) | Err(AgentError::Refused { status: 409, .. }) => Ok(()),
            Err(err) => Err(err),
        })
        .await,
    ))
}

fn cancel_ramp(shared: &Shared) {
    lock(&shared.ramp_cancel).store(true, Ordering::Relaxed);
    if let Some(ramp) = lock(&shared.ramp).as_mut() {
        ramp.stopped = true;
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RampBody {
    ramp: RampForm,
    settings: LoadForm,
}

#[utoipa::path(post, path = "/api/ramp", tag = "console", security(("bearer" = [])), request_body = RampBody, responses((status = 200, body = Answer), (status = 409, body = Answer), (status = 502, body = Answer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 421, body = ErrorBody), (status = 429, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn ramp(State(shared): State<Arc<Shared>>, body: JsonBody) -> Result<Response, ApiError> {
    let request: RampBody = parse(body, "the form")?;
    let (targets, every) = request.ramp.targets().map_err(bad_request)?;
    let config = request.settings.config(targets[0] as f64).map_err(bad_request)?;
    cancel_ramp(&shared);
    *lock(&shared.form) = request.settings;
    let cancel = Arc::new(AtomicBool::new(false));
    *lock(&shared.ramp_cancel) = Arc::clone(&cancel);
    *lock(&shared.ramp) = Some(RampView {
        form: request.ramp,
        targets: targets.clone(),
        step_index: 0,
        started_ms: now_ms(),
        holding: targets.len() == 1,
        stopped: false,
    });
    // The first step: running generators change rate, idle ones start.
    let urls = shared.config.generators.clone();
    let first = targets[0];
    let outcomes = on_agents(&shared, &urls, move |client| {
        let running = client.status()?.probes.get("produce").is_some_and(|p| p.running);
        if running { client.set_produce_rate(first).map(|_| ()) } else { start_on(client, &config) }
    })
    .await;
    let shared_for_task = Arc::clone(&shared);
    tokio::spawn(async move {
        for (index, &rate) in targets.iter().enumerate().skip(1) {
            tokio::time::sleep(every).await;
            if cancel.load(Ordering::Relaxed) {
                return;
            }
            let urls = shared_for_task.config.generators.clone();
            on_agents(&shared_for_task, &urls, move |client| client.set_produce_rate(rate).map(|_| ())).await;
            if let Some(view) = lock(&shared_for_task.ramp).as_mut() {
                view.step_index = index;
                view.holding = index + 1 == view.targets.len();
            }
        }
    });
    Ok(answer(outcomes))
}

#[utoipa::path(post, path = "/api/ramp/stop", tag = "console", security(("bearer" = [])), responses((status = 200, body = Answer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 421, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn stop_ramp(State(shared): State<Arc<Shared>>) -> Response {
    cancel_ramp(&shared);
    axum::Json(Answer { results: Vec::new(), error: None }).into_response()
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DiagnoseBody {
    /// Seconds back from now to judge (default: since the ramp started, else 60 s).
    window_secs: Option<u64>,
}

/// Holds the console's one diagnosis: released when dropped, however the diagnosis ends.
struct Diagnosing(Arc<Shared>);

impl Diagnosing {
    fn take(shared: &Arc<Shared>) -> Option<Diagnosing> {
        (!shared.diagnosing.swap(true, Ordering::SeqCst)).then(|| Diagnosing(Arc::clone(shared)))
    }
}

impl Drop for Diagnosing {
    fn drop(&mut self) {
        self.0.diagnosing.store(false, Ordering::SeqCst);
    }
}

#[utoipa::path(post, path = "/api/diagnose", tag = "console", security(("bearer" = [])), request_body(content = Option<DiagnoseBody>), responses((status = 200, body = DiagnoseSummary), (status = 409, body = ErrorBody), (status = 500, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 421, body = ErrorBody), (status = 429, body = ErrorBody), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn diagnose_now(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    // The body is optional: nothing, or `{"window_secs": N}`.
    let request: DiagnoseBody = if body.iter().all(u8::is_ascii_whitespace) {
        DiagnoseBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(err) => {
                return bad_request(format!("the request is not {{\"window_secs\": N}}: {err}")).into_response();
            }
        }
    };
    // The guard moves into the diagnosis's thread: a browser that goes away mid-diagnosis
    // neither frees it early nor keeps it forever.
    let Some(diagnosing) = Diagnosing::take(&shared) else {
        return ApiError(StatusCode::CONFLICT, "a diagnosis is already running".into()).into_response();
    };
    let end = now_ms();
    // A ramp still running (or holding at its max) sets the window's start and its steps.
    let ramp = lock(&shared.ramp).clone().filter(|r| !r.stopped || r.holding);
    let start = match (request.window_secs, &ramp) {
        (Some(secs), _) => end.saturating_sub(secs.clamp(10, 900) * 1000),
        (None, Some(ramp)) => ramp.started_ms.max(end.saturating_sub(900_000)),
        (None, None) => end.saturating_sub(60_000),
    };
    let window = diagnose::Window {
        totals: lock(&shared.history).totals(start),
        step_s: ramp.as_ref().map(|r| r.form.every as u64).unwrap_or(10).max(1),
        ramp: ramp.as_ref().map(|r| format!("{}:{}:{}:{}", r.form.start, r.form.step, r.form.every, r.form.max)),
        span_ms: (start, end),
    };
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let worker = Arc::clone(&shared);
    // Not a tokio blocking task: the Prometheus collector runs a runtime of its own.
    std::thread::spawn(move || {
        let outcome = diagnose::run(&worker.config, &worker.rules, &window)
            .map(|(diagnosis, dir)| diagnose::summary(&diagnosis, &dir));
        // The page lists it even if the browser that asked has gone.
        if let Ok(summary) = &outcome {
            lock(&worker.diagnoses).push(summary.clone());
        }
        drop(diagnosing);
        let _ = sender.send(outcome);
    });
    match receiver.await {
        Ok(Ok(summary)) => axum::Json(summary).into_response(),
        Ok(Err(err)) => bad_request(format!("{err:#}")).into_response(),
        Err(_) => {
            ApiError(StatusCode::INTERNAL_SERVER_ERROR, "the diagnosis stopped unexpectedly".into()).into_response()
        }
    }
}

#[utoipa::path(get, path = "/reports/{id}/{file}", tag = "console", security(("bearer" = [])), params(("id" = String, Path, description = "diagnosis-N"), ("file" = String, Path, description = "findings.md, timeline.svg or evidence.json")), responses((status = 200, description = "the file"), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 421, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn report_file(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let Ok(Path((id, file))) = path else {
        return ApiError(StatusCode::NOT_FOUND, "no such report file".into()).into_response();
    };
    let valid_id =
        id.strip_prefix("diagnosis-").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let content_type = match file.as_str() {
        "findings.md" => "text/plain; charset=utf-8",
        "timeline.svg" => "image/svg+xml",
        "evidence.json" => "application/json",
        _ => {
            return ApiError(StatusCode::NOT_FOUND, format!("no report file '{}'", crate::http_serve::echo(&file)))
                .into_response();
        }
    };
    if !valid_id {
        return ApiError(StatusCode::NOT_FOUND, format!("no report '{}'", crate::http_serve::echo(&id)))
            .into_response();
    }
    let path = shared.config.reports.join(&id).join(&file);
    match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        _ => ApiError(StatusCode::NOT_FOUND, format!("no report '{}'", crate::http_serve::echo(&id))).into_response(),
    }
}

/// Asks every agent for its status and new samples once a second (and Prometheus for the
/// cluster's rate), forever: one loop per agent, so that an agent that answers slowly (or
/// a black-holed address, 5 s to time out) delays only its own card.
async fn poll_forever(shared: Arc<Shared>) {
    for (url, client) in &shared.clients {
        tokio::spawn(poll_agent(Arc::clone(&shared), url.clone(), client.clone()));
    }
    let Some(prometheus) = shared.config.prometheus.as_deref().map(ClusterRate::new) else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let answer = prometheus.read().await;
        lock(&shared.history).record_prometheus(now_ms(), answer);
    }
}

async fn poll_agent(shared: Arc<Shared>, url: String, client: AgentClient) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let since = lock(&shared.history).cursors.get(&url).copied().unwrap_or_else(|| now_ms() - 3000);
        let client = client.clone();
        let call = tokio::task::spawn_blocking(move || {
            client.status().and_then(|status| Ok((status, client.samples(since)?))).map_err(|err| err.to_string())
        });
        if let Ok(answer) = call.await {
            lock(&shared.history).record(&url, now_ms(), answer);
        }
    }
}
