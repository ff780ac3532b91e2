//! The network probe as the agent runs it (`POST /net/tcp`, `/net/udp`): one test from
//! this host towards an endpoint, through the same client `plateau net` uses.

use super::{Probe, ProbeError, ProbeOutput};
use crate::cancel::Cancel;
use crate::net::{Endpoint, NetError, NetTestConfig, client};

/// A network test from this host.
#[derive(Debug, Clone)]
pub struct NetProbe {
    /// Where the traffic goes.
    pub endpoint: Endpoint,
    /// What the test does.
    pub config: NetTestConfig,
    /// This agent's name, recorded as the test's origin.
    pub from: String,
}

impl Probe for NetProbe {
    fn name(&self) -> &'static str {
        "net"
    }

    fn run(&self, cancel: &Cancel) -> Result<ProbeOutput, ProbeError> {
        let mut report =
            client::run_test(&self.endpoint, &self.config, cancel, &mut |_| {}).map_err(|err| match err {
                NetError::Cancelled => ProbeError::Cancelled,
                NetError::InvalidInput(message) => ProbeError::InvalidInput(message),
                other => ProbeError::Failed(other.to_string()),
            })?;
        report.plateau.from = Some(self.from.clone());
        Ok(ProbeOutput::Net(Box::new(report)))
    }
}
