//! Serving an axum app with the limits a daemon left running needs: a cap on open
//! connections, a deadline for each request's headers (which also closes keep-alive
//! connections left idle), a deadline for each request's body, and a raised open-file
//! limit. The agent and the controller both serve through here.
//!
//! `axum::serve` has none of these: 300 idle connections from a client with no token
//! once exhausted an agent's file descriptors, and `/status` stopped answering.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// The largest request head (request line and headers) read; longer ones are refused.
const MAX_REQUEST_HEAD_BYTES: usize = 64 << 10;

/// The limits one server applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, and the longest a kept-alive
    /// connection may sit idle between requests.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body.
    pub body_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so that the connection cap and
/// the probes' sockets, not the file descriptor table, decide what the process refuses.
/// Returns the limit now in force.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(err) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!("could not raise the open-file limit: {err}");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then lets open
/// requests finish (the caller bounds how long it waits).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_read_timeout));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors or similar: wait a little instead of spinning.
                    tracing::warn!("accepting a connection failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    "{refused} connection(s) refused so far: {} are open already (from {peer} now)",
                    limits.max_connections
                );
            }
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(MAX_REQUEST_HEAD_BYTES);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!("connection from {peer}: {err}");
                    }
                }
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    // Wait for the open connections to finish their requests.
    let _ = permits.acquire_many(limits.max_connections as u32).await;
    Ok(())
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is matched without
/// regard to case, as RFC 7235 says.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `text` for an error message: at most `MAX_ECHO_CHARS` characters of what a client sent,
/// so that a megabyte-long path is not sent back whole.
pub fn echo(text: &str) -> String {
    const MAX_ECHO_CHARS: usize = 80;
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let mut headers = axum::http::HeaderMap::new();
        for value in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret "] {
            headers.insert(axum::http::header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_token(&headers), Some("s3cret"), "{value}");
        }
        headers.insert(axum::http::header::AUTHORIZATION, "Basic czNjcmV0".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn long_input_is_shortened_in_messages() {
        assert_eq!(echo("short"), "short");
        let long = "x".repeat(2_000_000);
        let shown = echo(&long);
        assert!(shown.len() < 200 && shown.ends_with("(2000000 bytes)"), "{shown}");
    }
}
