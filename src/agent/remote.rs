//! Tests that involve agents: turning an agent's URL into a data endpoint with a
//! cookie, asking an agent to run a test from its host (`--from`), and the matrix.

use std::time::{Duration, Instant};

use super::client::{AgentClient, AgentError};
use crate::cancel::Cancel;
use crate::net::matrix::{self, MatrixCell, MatrixReport};
use crate::net::{Endpoint, NetReport, NetTestConfig, Target};

/// How long a pair waits for an agent busy with another test before it is recorded as failed.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// Time allowed for an agent to answer around a test of `config`.
fn request_timeout(config: &NetTestConfig) -> Duration {
    Duration::from_secs(config.omit_secs as u64 + config.time_secs as u64 + 30)
}

/// The endpoint for `target`: an iperf3 server as is, an agent through a session
/// (cookie and data port) obtained with `token`.
pub fn endpoint_for(target: &Target, config: &NetTestConfig, token: Option<&str>) -> Result<Endpoint, AgentError> {
    match target {
        Target::Iperf3 { host, port } => {
            Ok(Endpoint { host: host.clone(), port: *port, cookie: None, peer: "iperf3".into() })
        }
        Target::Agent(url) => {
            let agent = AgentClient::new(url, token.map(str::to_string), Duration::from_secs(10));
            let session = agent.net_session(config)?;
            Ok(Endpoint {
                host: agent.host(),
                port: session.data_port,
                cookie: Some(session.cookie),
                peer: "plateau".into(),
            })
        }
        Target::Data { host, port } => Err(AgentError::Refused {
            url: format!("plateau://{host}:{port}"),
            status: 400,
            message: "give the agent's URL (http://HOST:PORT) instead of its data port".into(),
        }),
    }
}

/// The endpoint as a target string an agent accepts in `POST /net/*`.
pub fn target_string(endpoint: &Endpoint) -> String {
    let target = if endpoint.peer == "iperf3" {
        Target::Iperf3 { host: endpoint.host.clone(), port: endpoint.port }
    } else {
        Target::Data { host: endpoint.host.clone(), port: endpoint.port }
    };
    target.to_string()
}

/// Runs a test from the agent at `from_url` to `endpoint`.
pub fn run_from(
    from_url: &str,
    endpoint: &Endpoint,
    config: &NetTestConfig,
    token: Option<&str>,
) -> Result<NetReport, AgentError> {
    let agent = AgentClient::new(from_url, token.map(str::to_string), request_timeout(config));
    agent.run_net(&target_string(endpoint), endpoint.cookie.clone(), config)
}

/// Tests every ordered pair of `agents` (from → to), in rounds of disjoint pairs run
/// concurrently, or one at a time with `sequential`. A failed pair is recorded with
/// its error; it does not stop the matrix.
pub fn run_matrix(agents: &[String], config: &NetTestConfig, sequential: bool, token: Option<&str>) -> MatrixReport {
    let started = Instant::now();
    let rounds = if sequential { matrix::sequential_rounds(agents.len()) } else { matrix::rounds(agents.len()) };
    let cells =
        run_rounds(agents, &rounds, |_| config.clone(), token, &Cancel::new()).into_iter().map(|(cell, _)| cell);
    MatrixReport {
        agents: agents.to_vec(),
        cells: cells.collect(),
        rounds: rounds.len(),
        elapsed_secs: started.elapsed().as_secs_f64(),
    }
}

/// Runs `rounds` of `(from, to)` pairs of `agents`, the pairs of a round at once, each with
/// the test `config` gives it; stops between rounds once `cancel` is set. The cells come
/// back sorted by pair, with each full report when the test ran.
pub fn run_rounds(
    agents: &[String],
    rounds: &[Vec<(usize, usize)>],
    config: impl Fn((usize, usize)) -> NetTestConfig + Sync,
    token: Option<&str>,
    cancel: &Cancel,
) -> Vec<(MatrixCell, Option<NetReport>)> {
    let mut out = Vec::new();
    for round in rounds {
        if cancel.is_cancelled() {
            break;
        }
        let config = &config;
        let results: Vec<(MatrixCell, Option<NetReport>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = round
                .iter()
                .map(|&(from, to)| scope.spawn(move || run_pair(agents, from, to, &config((from, to)), token)))
                .collect();
            handles.into_iter().map(|h| h.join().expect("network test thread panicked")).collect()
        });
        out.extend(results);
    }
    out.sort_by_key(|(cell, _)| (cell.from, cell.to));
    out
}

/// Tests `agents[from]` → `agents[to]`: the matrix cell, and the full report when it ran.
pub fn run_pair(
    agents: &[String],
    from: usize,
    to: usize,
    config: &NetTestConfig,
    token: Option<&str>,
) -> (MatrixCell, Option<NetReport>) {
    // An agent still finishing the server side of its last test answers 409 for a moment
    // after the client has its report: the next round waits for it, briefly.
    let busy =
        |outcome: &Result<NetReport, AgentError>| matches!(outcome, Err(AgentError::Refused { status: 409, .. }));
    let deadline = Instant::now() + BUSY_WAIT;
    let outcome = loop {
        let outcome = endpoint_for(&Target::Agent(agents[to].clone()), config, token)
            .and_then(|endpoint| run_from(&agents[from], &endpoint, config, token));
        if !busy(&outcome) || Instant::now() >= deadline {
            break outcome;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    match outcome {
        Ok(report) => (
            MatrixCell {
                from,
                to,
                bits_per_second: Some(report.end.sum_received.bits_per_second),
                retransmits: report.end.sum_sent.retransmits,
                limited_by: Some(report.plateau.limited_by),
                offered_bits_per_second: report.plateau.offered_bits_per_second,
                loss_percent: report.end.sum.as_ref().and_then(|sum| sum.lost_percent),
                error: None,
            },
            Some(report),
        ),
        Err(err) => (
            MatrixCell {
                from,
                to,
                bits_per_second: None,
                retransmits: None,
                limited_by: None,
                offered_bits_per_second: None,
                loss_percent: None,
                error: Some(err.to_string()),
            },
            None,
        ),
    }
}
