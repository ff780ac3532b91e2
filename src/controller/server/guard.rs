//! The guard in front of the console: loopback Host names only on a loopback console, the
//! access token and its sessions (with a throttle on failed logins), and CSRF on every
//! state-changing request; the login page.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{ApiError, CSRF_HEADER, LOGIN, SESSION_COOKIE, Shared, bad_request, lock};

/// A session ends this long after its last request.
pub(super) const SESSION_IDLE: Duration = Duration::from_secs(3600);

/// A session ends this long after the login, however busy.
pub(super) const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The most sessions held; logging in beyond it ends the oldest.
pub(super) const MAX_SESSIONS: usize = 1000;

/// Wrong tokens allowed within `FAILURE_WINDOW` before every attempt is refused.
pub(super) const MAX_FAILURES: usize = 5;

/// The window over which wrong tokens are counted.
pub(super) const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Browser sessions: created at login, ended by idleness, age or count.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    /// Session id → (logged in, last used).
    by_id: HashMap<String, (Instant, Instant)>,
}

impl Sessions {
    fn start(&mut self, now: Instant) -> String {
        self.by_id.retain(|_, (born, used)| !expired(now, *born, *used));
        if self.by_id.len() >= MAX_SESSIONS
            && let Some(oldest) = self.by_id.iter().min_by_key(|(_, (born, _))| *born).map(|(id, _)| id.clone())
        {
            self.by_id.remove(&oldest);
        }
        let id = random_token();
        self.by_id.insert(id.clone(), (now, now));
        id
    }

    /// Whether `presented` is a live session; using it keeps it alive.
    fn touch(&mut self, presented: &str, now: Instant) -> bool {
        let found = self.by_id.iter_mut().find(|(id, _)| same(id, presented));
        match found {
            Some((_, (born, used))) if !expired(now, *born, *used) => {
                *used = now;
                true
            }
            _ => false,
        }
    }
}

pub(super) fn expired(now: Instant, born: Instant, used: Instant) -> bool {
    now.duration_since(used) > SESSION_IDLE || now.duration_since(born) > SESSION_LIFETIME
}

/// Wrong access tokens in the last minute; past `MAX_FAILURES`, every attempt is refused
/// until the oldest failure is a minute old, so guessing the token is slow.
#[derive(Debug, Default)]
pub(super) struct LoginThrottle {
    failures: VecDeque<Instant>,
}

impl LoginThrottle {
    /// `Err(seconds to wait)` while locked.
    fn check(&mut self, now: Instant) -> Result<(), u64> {
        while self.failures.front().is_some_and(|t| now.duration_since(*t) > FAILURE_WINDOW) {
            self.failures.pop_front();
        }
        match self.failures.front() {
            Some(oldest) if self.failures.len() >= MAX_FAILURES => {
                Err(FAILURE_WINDOW.saturating_sub(now.duration_since(*oldest)).as_secs() + 1)
            }
            _ => Ok(()),
        }
    }

    fn failed(&mut self, now: Instant) {
        self.failures.push_back(now);
    }
}

pub(super) fn too_many_attempts(wait_secs: u64) -> Response {
    let mut response =
        ApiError(StatusCode::TOO_MANY_REQUESTS, format!("too many wrong tokens; try again in {wait_secs} s"))
            .into_response();
    if let Ok(value) = wait_secs.to_string().parse() {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

pub(super) fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Caller {
    /// Anyone who can reach a loopback console (no access token configured).
    Local,
    /// A browser session from the login page.
    Session,
    /// `Authorization: Bearer` with the access token (scripts; not a browser's ambient
    /// credential, so not forgeable cross-site).
    Bearer,
}

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

pub(super) fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Who is calling, `Ok(None)` for nobody known, `Err(seconds to wait)` while wrong tokens
/// have locked the console.
pub(super) fn caller(shared: &Shared, headers: &HeaderMap) -> Result<Option<Caller>, u64> {
    let Some(token) = &shared.config.access_token else { return Ok(Some(Caller::Local)) };
    let now = Instant::now();
    if let Some(bearer) = crate::http_serve::bearer_token(headers) {
        let mut logins = lock(&shared.logins);
        logins.check(now)?;
        if same(bearer, token) {
            return Ok(Some(Caller::Bearer));
        }
        logins.failed(now);
        return Ok(None);
    }
    let Some(session) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    Ok(lock(&shared.sessions).touch(session, now).then_some(Caller::Session))
}

/// The host part of a Host or Origin value (`http://a:1` → `a`, `[::1]:8080` → `::1`).
pub(super) fn host_name(value: &str) -> &str {
    let value = value.split_once("://").map(|(_, rest)| rest).unwrap_or(value);
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    value.split(':').next().unwrap_or("")
}

/// Every request passes here: a loopback console answers only to loopback Host names (no
/// DNS rebinding), a console with an access token only to its sessions or bearers, and a
/// state-changing request from a browser must carry the page's CSRF token and, when the
/// browser names its Origin, come from this console's own origin.
pub(super) async fn guard(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    if shared.config.listen.ip().is_loopback() && !matches!(host_name(host), "127.0.0.1" | "localhost" | "::1") {
        return ApiError(
            StatusCode::MISDIRECTED_REQUEST,
            format!("this console answers only to localhost, not '{}'", crate::http_serve::echo(host)),
        )
        .into_response();
    }
    let path = request.uri().path().to_string();
    let mutating = request.method() != Method::GET && request.method() != Method::HEAD;
    if mutating && let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let own = [format!("http://{host}"), format!("https://{host}")];
        if !own.iter().any(|o| o == origin) {
            return ApiError(
                StatusCode::FORBIDDEN,
                format!("cross-site request from {} refused", crate::http_serve::echo(origin)),
            )
            .into_response();
        }
    }
    if path == "/login" || path == "/openapi.json" || path.starts_with("/assets/") {
        return next.run(request).await;
    }
    let caller = match caller(&shared, headers) {
        Ok(caller) => caller,
        Err(wait_secs) => return too_many_attempts(wait_secs),
    };
    let Some(caller) = caller else {
        return if path == "/" {
            Redirect::to("/login").into_response()
        } else {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "log in first (or send Authorization: Bearer with the access token)".into(),
            )
            .into_response()
        };
    };
    if mutating && caller != Caller::Bearer {
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !same(sent, &shared.csrf) {
            return ApiError(StatusCode::FORBIDDEN, "missing or wrong CSRF token; reload the page".into())
                .into_response();
        }
    }
    next.run(request).await
}

pub(super) async fn login_page(State(shared): State<Arc<Shared>>) -> Response {
    if shared.config.access_token.is_none() {
        return Redirect::to("/").into_response();
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], LOGIN.replace("{{MESSAGE}}", "")).into_response()
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
}

pub(super) async fn login(State(shared): State<Arc<Shared>>, form: Result<Form<LoginForm>, FormRejection>) -> Response {
    let Some(token) = &shared.config.access_token else { return Redirect::to("/").into_response() };
    let Ok(Form(form)) = form else {
        return bad_request("send the form field 'token' (application/x-www-form-urlencoded)").into_response();
    };
    let now = Instant::now();
    if let Err(wait_secs) = lock(&shared.logins).check(now) {
        return too_many_attempts(wait_secs);
    }
    if !same(form.token.trim(), token) {
        lock(&shared.logins).failed(now);
        let page = LOGIN.replace("{{MESSAGE}}", "<p class=\"error\" role=\"alert\">Wrong token.</p>");
        return (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    }
    let session = lock(&shared.sessions).start(now);
    let cookie = format!(
        "{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_come_out_of_host_and_origin_values() {
        assert_eq!(host_name("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host_name("http://localhost:8080"), "localhost");
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("evil.example"), "evil.example");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; plateau_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
