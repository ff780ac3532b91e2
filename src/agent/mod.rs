//! `plateau agent`: the probe daemon on each host. It samples the host continuously,
//! serves `/status`, `/metrics` and `/samples`, and runs probes on authenticated request.

pub mod api;
pub mod client;
mod metrics;
pub mod remote;
mod slots;

pub use api::{
    DiskRequest, NetRequest, ProbeStats, ProbeStatus, ProduceReportResponse, ProduceRequest, RateRequest,
    SamplerStatus, SamplesResponse, StatusResponse,
};

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ipnet::IpNet;

use crate::allow::AllowList;
use crate::cancel::Cancel;
use crate::net::NetCaps;
use crate::net::server::DataServer;
use crate::sampler::{BackgroundSampler, SamplerConfig, SamplerState};
use crate::units::ByteSize;

/// How long in-flight requests get to finish after SIGTERM before the agent exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(1500);

/// The agent's validated configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The bearer token POSTs must carry; `None` only for loopback with `--no-auth`.
    pub token: Option<String>,
    /// Networks probe traffic may be sent to.
    pub allow: Vec<IpNet>,
    /// The host sampler's settings.
    pub sampler: SamplerConfig,
    /// The largest disk probe a request may ask for.
    pub max_disk_size: ByteSize,
    /// Port for network test traffic, TCP and UDP (0 picks a free one).
    pub data_port: u16,
    /// Limits on the network tests this agent serves or runs.
    pub net_caps: NetCaps,
    /// The broker's log directory on this host, where diagnose's disk probe writes.
    pub log_dir: Option<std::path::PathBuf>,
}

/// Errors in the agent's set-up that the user must fix.
#[derive(Debug, thiserror::Error)]
pub enum AgentSetupError {
    /// No token and no `--no-auth`.
    #[error(
        "the agent runs probes on request, so it needs a token: pass --token-file FILE (or --no-auth, on a loopback address only)"
    )]
    NoToken,
    /// `--no-auth` on a non-loopback address.
    #[error("--no-auth is allowed only when listening on a loopback address, not {0}; pass --token-file FILE")]
    NoAuthOffLoopback(SocketAddr),
    /// An empty token file.
    #[error("token file {0} is empty; put a long random string in it (e.g. `openssl rand -hex 32 > {0}`)")]
    EmptyToken(String),
}

impl AgentConfig {
    /// Checks the authentication rules: a token always, unless `no_auth` on loopback.
    pub fn check_auth(listen: SocketAddr, token: Option<&str>, no_auth: bool) -> Result<(), AgentSetupError> {
        match (token, no_auth) {
            (Some(_), _) => Ok(()),
            (None, true) if listen.ip().is_loopback() => Ok(()),
            (None, true) => Err(AgentSetupError::NoAuthOffLoopback(listen)),
            (None, false) => Err(AgentSetupError::NoToken),
        }
    }
}

/// Reads a token file: its content without surrounding whitespace, never empty.
pub fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("could not read token file '{}'", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!(AgentSetupError::EmptyToken(path.display().to_string()));
    }
    Ok(token.to_string())
}

/// What the request handlers share.
#[derive(Debug)]
pub struct AgentShared {
    token: Option<String>,
    allow: AllowList,
    hostname: String,
    started: Instant,
    started_at_ms: u64,
    max_disk_size: ByteSize,
    log_dir: Option<String>,
    sampler: Arc<Mutex<SamplerState>>,
    probes: Arc<Mutex<slots::ProbeBook>>,
    net: DataServer,
    produce: Mutex<api::ProduceRunState>,
    consume: Mutex<api::ConsumeRunState>,
    /// Set on shutdown; running probes watch it.
    shutting_down: Cancel,
}

/// Runs the agent on an already bound listener until SIGTERM or Ctrl-C.
pub async fn serve(config: AgentConfig, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    crate::http_serve::raise_open_file_limit();
    let data_bind = std::net::SocketAddr::new(config.listen.ip(), config.data_port);
    let net = DataServer::start(data_bind, config.net_caps).with_context(|| {
        format!("could not open the data port {data_bind} (TCP and UDP); pick another with --data-port")
    })?;
    // Tests and scripts read this first line to learn where the agent listens.
    let local = listener.local_addr()?;
    println!("plateau agent listening on http://{local} (data port {})", net.port());
    std::io::Write::flush(&mut std::io::stdout())?;
    let mut sampler = BackgroundSampler::start(config.sampler.clone());
    let shared = Arc::new(AgentShared {
        token: config.token.clone(),
        allow: AllowList::new(config.allow.clone()),
        hostname: rustix::system::uname().nodename().to_string_lossy().into_owned(),
        started: Instant::now(),
        started_at_ms: crate::sampler::raw::unix_ms_now(),
        max_disk_size: config.max_disk_size,
        log_dir: config.log_dir.as_ref().map(|dir| dir.display().to_string()),
        sampler: sampler.state(),
        probes: Arc::default(),
        net,
        produce: Mutex::default(),
        consume: Mutex::default(),
        shutting_down: Cancel::new(),
    });
    let app = api::router(Arc::clone(&shared));
    let shutting_down = shared.shutting_down.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::http_serve::serve(
        listener,
        app,
        crate::http_serve::ConnectionLimits::default(),
        async move {
            let _ = stop_rx.await;
        },
    ));

    shutdown_signal().await;
    tracing::info!("shutting down");
    shutting_down.cancel();
    if let Some(probe) = slots::ProbeBook::cancel_active(&shared.probes) {
        tracing::info!("stopping the running {probe} probe");
    }
    let _ = stop_tx.send(());
    sampler.stop();
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(result) => result.context("agent server task failed")?.context("agent server failed")?,
        Err(_) => tracing::warn!("requests still open after {SHUTDOWN_GRACE:?}; exiting anyway"),
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_auth_only_on_loopback() {
        let loopback: SocketAddr = "127.0.0.1:7070".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:7070".parse().unwrap();
        assert!(AgentConfig::check_auth(loopback, None, true).is_ok());
        assert!(matches!(AgentConfig::check_auth(public, None, true), Err(AgentSetupError::NoAuthOffLoopback(_))));
        assert!(matches!(AgentConfig::check_auth(loopback, None, false), Err(AgentSetupError::NoToken)));
        assert!(AgentConfig::check_auth(public, Some("secret"), false).is_ok());
    }

    #[test]
    fn an_empty_token_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  \n").unwrap();
        let err = read_token_file(&path).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(read_token_file(&path).unwrap(), "s3cret");
    }
}
