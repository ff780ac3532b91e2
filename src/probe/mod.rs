//! Active probes: measurements that generate load (disk appends and reads now; network
//! and Kafka produce runs later). Every probe implements [`Probe`] and returns a
//! [`ProbeOutput`]; probes never format output, the report module does.

pub mod disk;
pub mod net;

use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;

/// A probe: configured up front, run once, cancellable from another thread.
pub trait Probe {
    /// Short name used in logs and errors (`disk`, `net-tcp`, ...).
    fn name(&self) -> &'static str;

    /// Runs the probe to completion, or until `cancel` is set.
    fn run(&self, cancel: &Cancel) -> Result<ProbeOutput, ProbeError>;
}

/// The result of any probe.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "probe", rename_all = "snake_case")]
pub enum ProbeOutput {
    /// The disk probe's result.
    Disk(Box<disk::DiskResult>),
    /// A network test's result (iperf3's JSON layout plus plateau's findings).
    Net(Box<crate::net::NetReport>),
}

/// Why a probe did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The request cannot be run as given; the message says what to change.
    #[error("{0}")]
    InvalidInput(String),
    /// The probe ran but failed; the message says why and what to check.
    #[error("{0}")]
    Failed(String),
    /// The probe was interrupted before it finished.
    #[error("probe interrupted before it finished")]
    Cancelled,
    /// The system refused an operation the probe needs.
    #[error("{context}: {source}")]
    Io {
        /// What the probe was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl ProbeError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProbeError {
        let context = context.into();
        move |source| ProbeError::Io { context, source }
    }
}

impl From<crate::cancel::Cancelled> for ProbeError {
    fn from(_: crate::cancel::Cancelled) -> ProbeError {
        ProbeError::Cancelled
    }
}
