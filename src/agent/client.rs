//! A client for agents' HTTP APIs, as the CLI (and later `diagnose`) uses them: every
//! failure becomes one sentence that names the agent and says what to check.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::api::{
    ConsumeReportResponse, ConsumeRequest, NetRequest, ProduceReportResponse, ProduceRequest, RateRequest,
    StatusResponse,
};
use crate::kafka::consume::{ConsumeConfig, ConsumeReport};
use crate::kafka::{ProduceConfig, ProduceReport};
use crate::net::server::Session;
use crate::net::{NetReport, NetTestConfig};
use crate::probe::ProbeOutput;

/// Errors talking to an agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The agent could not be reached.
    #[error("cannot reach the agent at {url}: {reason}")]
    Unreachable {
        /// The agent.
        url: String,
        /// Why.
        reason: String,
    },
    /// The agent refused the token.
    #[error("the agent at {url} refused the token ({message}); check --token-file")]
    Unauthorized {
        /// The agent.
        url: String,
        /// What it said.
        message: String,
    },
    /// The agent answered with an error.
    #[error("the agent at {url} answered {status}: {message}")]
    Refused {
        /// The agent.
        url: String,
        /// HTTP status.
        status: u16,
        /// Its `error` text.
        message: String,
    },
}

/// One agent's API.
#[derive(Debug, Clone)]
pub struct AgentClient {
    url: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl AgentClient {
    /// A client for the agent at `url` (`http://HOST:PORT`), using `token` for POSTs.
    /// `timeout` bounds every request, including the probes it runs.
    pub fn new(url: &str, token: Option<String>, timeout: Duration) -> AgentClient {
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .build()
            .expect("building an HTTP client");
        AgentClient { url: url.trim_end_matches('/').to_string(), token, http }
    }

    /// The agent's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The host part of the agent's URL.
    pub fn host(&self) -> String {
        crate::net::Target::Agent(self.url.clone()).host()
    }

    /// `GET /status`.
    pub fn status(&self) -> Result<StatusResponse, AgentError> {
        self.send(self.http.get(format!("{}/status", self.url)))
    }

    /// `POST /auth/check`: whether the agent takes this client's token.
    pub fn check_token(&self) -> Result<(), AgentError> {
        self.post::<_, serde_json::Value>("/auth/check", &serde_json::json!({})).map(|_| ())
    }

    /// `POST /net/session`: a cookie for a test of `config` served by this agent.
    pub fn net_session(&self, config: &NetTestConfig) -> Result<Session, AgentError> {
        self.post("/net/session", &NetRequest::for_config(config))
    }

    /// `POST /net/tcp` or `/net/udp`: runs a test from this agent to `target`.
    pub fn run_net(
        &self,
        target: &str,
        cookie: Option<String>,
        config: &NetTestConfig,
    ) -> Result<NetReport, AgentError> {
        let request =
            NetRequest { target: Some(target.to_string()), cookie, protocol: None, ..NetRequest::for_config(config) };
        let path = match config.protocol {
            crate::net::Protocol::Tcp => "/net/tcp",
            crate::net::Protocol::Udp => "/net/udp",
        };
        match self.post::<_, ProbeOutput>(path, &request)? {
            ProbeOutput::Net(report) => Ok(*report),
            other => Err(AgentError::Refused {
                url: self.url.clone(),
                status: 200,
                message: format!("expected a network result, got {other:?}"),
            }),
        }
    }

    /// `GET /samples?since=`.
    pub fn samples(&self, since_ms: u64) -> Result<Vec<crate::sampler::Sample>, AgentError> {
        let response: super::SamplesResponse =
            self.send(self.http.get(format!("{}/samples?since={since_ms}", self.url)))?;
        Ok(response.samples)
    }

    /// `POST /disk`: the disk probe on the agent's host.
    pub fn run_disk(
        &self,
        path: &str,
        size: crate::units::ByteSize,
    ) -> Result<crate::probe::disk::DiskResult, AgentError> {
        let body = serde_json::json!({"path": path, "size": size.bytes(), "reads": 2000});
        match self.post::<_, ProbeOutput>("/disk", &body)? {
            ProbeOutput::Disk(result) => Ok(*result),
            other => Err(AgentError::Refused {
                url: self.url.clone(),
                status: 200,
                message: format!("expected a disk result, got {other:?}"),
            }),
        }
    }

    /// `POST /kafka/produce`: starts a produce run on the agent.
    pub fn start_produce(&self, config: &ProduceConfig) -> Result<super::ProbeStatus, AgentError> {
        self.post("/kafka/produce", &ProduceRequest::for_config(config))
    }

    /// `POST /kafka/rate`.
    pub fn set_produce_rate(&self, rate: u64) -> Result<super::ProbeStatus, AgentError> {
        self.post("/kafka/rate", &RateRequest { rate })
    }

    /// `POST /kafka/step`: closes the fixed-rate run's current step and returns it.
    pub fn close_produce_step(&self) -> Result<crate::kafka::report::Step, AgentError> {
        self.post("/kafka/step", &serde_json::json!({}))
    }

    /// `POST /kafka/stop`.
    pub fn stop_produce(&self) -> Result<super::ProbeStatus, AgentError> {
        self.post("/kafka/stop", &serde_json::json!({}))
    }

    /// `GET /kafka/report`.
    pub fn produce_report(&self) -> Result<ProduceReportResponse, AgentError> {
        self.send(self.http.get(format!("{}/kafka/report", self.url)))
    }

    /// Starts a produce run on the agent, reports its progress through `on_progress`
    /// every second, and returns its report when it ends.
    pub fn produce_and_wait(
        &self,
        config: &ProduceConfig,
        on_progress: &mut dyn FnMut(String),
    ) -> Result<ProduceReport, AgentError> {
        self.start_produce(config)?;
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let status = self.status()?;
            let Some(run) = status.probes.get("produce") else { continue };
            if !run.running {
                break;
            }
            on_progress(format!(
                "{}: {} acked, {:.0} msg/s (target {})",
                self.url,
                run.stats.sent_ok.unwrap_or(0),
                run.stats.current_rate_mps.unwrap_or(0.0),
                run.target_rate_mps.unwrap_or(0)
            ));
        }
        let response = self.produce_report()?;
        match (response.report, response.error) {
            (Some(report), _) => Ok(report),
            (None, error) => Err(AgentError::Refused {
                url: self.url.clone(),
                status: 502,
                message: error.unwrap_or_else(|| "the run ended without a report".into()),
            }),
        }
    }

    /// `POST /kafka/consume`: starts a consume run on the agent.
    pub fn start_consume(&self, config: &ConsumeConfig) -> Result<super::ProbeStatus, AgentError> {
        self.post("/kafka/consume", &ConsumeRequest::for_config(config))
    }

    /// `POST /kafka/consume/stop`.
    pub fn stop_consume(&self) -> Result<super::ProbeStatus, AgentError> {
        self.post("/kafka/consume/stop", &serde_json::json!({}))
    }

    /// `GET /kafka/consume/report`.
    pub fn consume_report(&self) -> Result<ConsumeReportResponse, AgentError> {
        self.send(self.http.get(format!("{}/kafka/consume/report", self.url)))
    }

    /// The report of the consume run that ended (or was stopped), waiting up to `limit`
    /// for it to finish.
    pub fn wait_consume_report(&self, limit: Duration) -> Result<ConsumeReport, AgentError> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let response = self.consume_report()?;
            match (response.running, response.report, response.error) {
                (false, Some(report), _) => return Ok(report),
                (false, None, error) => {
                    return Err(AgentError::Refused {
                        url: self.url.clone(),
                        status: 502,
                        message: error.unwrap_or_else(|| "the consume run ended without a report".into()),
                    });
                }
                (true, ..) if std::time::Instant::now() >= deadline => {
                    return Err(AgentError::Unreachable {
                        url: self.url.clone(),
                        reason: format!("its consume run did not end within {} s", limit.as_secs()),
                    });
                }
                (true, ..) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, AgentError> {
        let mut request = self.http.post(format!("{}{path}", self.url)).json(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        self.send(request)
    }

    fn send<T: DeserializeOwned>(&self, request: reqwest::blocking::RequestBuilder) -> Result<T, AgentError> {
        let unreachable = |reason: String| AgentError::Unreachable { url: self.url.clone(), reason };
        let response = request.send().map_err(|err| {
            unreachable(if err.is_connect() {
                "connection refused or no route (is `plateau agent` running there?)".into()
            } else if err.is_timeout() {
                "no answer in time".into()
            } else {
                err.to_string()
            })
        })?;
        let status = response.status();
        if status.is_success() {
            return response.json().map_err(|err| unreachable(format!("unreadable answer: {err}")));
        }
        let message = response
            .json::<serde_json::Value>()
            .ok()
            .and_then(|body| body.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(AgentError::Unauthorized { url: self.url.clone(), message });
        }
        Err(AgentError::Refused { url: self.url.clone(), status: status.as_u16(), message })
    }
}
