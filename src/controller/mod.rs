//! `plateau controller`: seed 000's web console for the generator fleet. One page (HTML, CSS
//! and a little JavaScript embedded in the binary) to start, stop, rate and ramp the
//! generator agents, edit what they produce, watch live charts drawn from the agents'
//! samples (plotters SVG), and run "Diagnose now" over the last window.
//!
//! The browser talks only to the controller; the controller's server calls the agents with
//! their token, so the token never reaches a page. The console listens on loopback unless
//! given an access token; every state-changing request needs the page's CSRF token.

mod charts;
pub mod diagnose;
pub mod export;
mod form;
mod history;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use form::{LoadForm, RampForm};
pub use server::serve;

/// Everything the controller needs.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// Generator agents.
    pub generators: Vec<String>,
    /// Agents on broker hosts (watched only).
    pub brokers: Vec<String>,
    /// Agents on consumer hosts (their consume runs watched).
    pub consumers: Vec<String>,
    /// The agents' bearer token.
    pub agent_token: Option<String>,
    /// The token people log in with; required off loopback.
    pub access_token: Option<String>,
    /// Prometheus, an optional extra source for the throughput chart.
    pub prometheus: Option<String>,
    /// The form's starting bootstrap servers.
    pub bootstrap: String,
    /// The form's starting topic.
    pub topic: String,
    /// Where "Diagnose now" writes its reports.
    pub reports: PathBuf,
    /// Rule directory.
    pub rules: crate::rules::RuleSet,
}

impl ControllerConfig {
    /// Checks what can be checked before serving: agent URLs, and that a console reachable
    /// from other hosts has an access token.
    pub fn validate(&self) -> Result<(), String> {
        if self.generators.is_empty() {
            return Err("--agents is empty; give the generator agents' URLs (http://HOST:7070)".into());
        }
        for url in self.generators.iter().chain(&self.brokers).chain(&self.consumers) {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("agent '{url}' is not a URL; write it as http://HOST:PORT"));
            }
        }
        if let Some(url) = self.generators.iter().find(|url| self.brokers.contains(url)) {
            return Err(format!("agent {url} is given as a generator and as a broker host; give it once"));
        }
        if !self.listen.ip().is_loopback() && self.access_token.is_none() {
            return Err(format!(
                "--listen {} is reachable from other hosts; give --access-token-file so that only people with the token can drive the generators (or listen on 127.0.0.1)",
                self.listen
            ));
        }
        if self.access_token.as_deref().is_some_and(|t| t.len() < 16) {
            return Err("the access token is shorter than 16 characters; use a longer one".into());
        }
        Ok(())
    }
}
