//! Active probes: measurements that generate load on a host — the disk probe (appends with
//! fsync, then random reads) and the network tests (TCP and UDP, iperf3's protocol). Every
//! probe implements [`Probe`] and returns a [`ProbeOutput`]; probes never format output,
//! the report module does. [`PROBES`] is the registry: each probe's output tag, the agent
//! routes that run it and the catalog sources its results fill — what the rest of the
//! program must offer for a probe to reach a verdict, checked by a test.

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

/// A probe as the rest of the program meets it.
#[derive(Debug, Clone, Copy)]
pub struct ProbeKind {
    /// Its `ProbeOutput` variant's tag (`"probe": "disk"`) and its file under `probe/`.
    pub name: &'static str,
    /// The agent's routes that run it (`POST`), each in the agent's OpenAPI description.
    pub routes: &'static [&'static str],
    /// The catalog's `measured` sources its results become (`evidence::measured`).
    pub measured: &'static [&'static str],
}

/// Every probe. Adding one: a file under `probe/` implementing [`Probe`], a
/// [`ProbeOutput`] variant, an entry here, then what the entry names — the agent's route
/// and its client call (`agent::api`, `agent::client`), the run across agents
/// (`diagnose::probes`), the series it becomes (`evidence::measured`, with the catalog's
/// signal) and its report section. `tests/integration/architecture.rs` checks that every
/// entry's routes, sources and file exist, and that every variant has an entry.
pub const PROBES: &[ProbeKind] = &[
    ProbeKind { name: "disk", routes: &["/disk"], measured: &["disk.fsync_p99_ms"] },
    ProbeKind {
        name: "net",
        routes: &["/net/tcp", "/net/udp"],
        measured: &["net.capacity_bits_per_sec", "net.udp_loss_ratio"],
    },
];

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
