//! Network probes: iperf-style TCP and UDP tests between hosts, speaking iperf3's
//! protocol so that one client serves plateau agents and stock `iperf3 -s` alike.
//!
//! `wire` is the protocol, `client` runs a test, `server` is the agent's data port,
//! `streams` moves the data, `udp_stats` and `kernel` measure it, `report` lays the
//! result out as iperf3's JSON and says who limited the test, and `matrix` schedules
//! tests between many agents.

pub mod client;
pub mod kernel;
pub mod matrix;
pub mod report;
pub mod server;
pub mod streams;
mod tally;
pub mod udp_stats;
pub mod wire;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use report::{LimitedBy, NetReport};

/// iperf3's default port.
pub const IPERF3_PORT: u16 = 5201;
/// Default TCP write size, as iperf3's.
pub const DEFAULT_TCP_LEN: u32 = 128 * 1024;
/// Default UDP datagram payload: what fits an Ethernet frame of 1500 bytes.
pub const DEFAULT_UDP_LEN: u32 = 1460;
/// The largest UDP payload over IPv4.
pub const MAX_UDP_LEN: u32 = 65_507;

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// A TCP throughput test.
    Tcp,
    /// A UDP test at a fixed offered rate.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        })
    }
}

/// What a test does; shared by the CLI, the agent's API and the data server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetTestConfig {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Seconds measured (after the omitted start).
    pub time_secs: u32,
    /// Streams per direction.
    pub parallel: u32,
    /// The server sends.
    pub reverse: bool,
    /// Both directions at once.
    pub bidir: bool,
    /// Seconds at the start left out of the totals (TCP slow start).
    pub omit_secs: u32,
    /// Bytes per write (TCP) or datagram payload (UDP).
    pub len: u32,
    /// Reporting interval.
    pub interval: Duration,
    /// UDP offered rate per stream in bits/s (0: as fast as possible).
    pub rate_bits_per_sec: u64,
}

impl NetTestConfig {
    /// A TCP test with iperf3's defaults (10 s, 1 stream, 128 KiB writes, 1 s interval).
    pub fn tcp() -> NetTestConfig {
        NetTestConfig {
            protocol: Protocol::Tcp,
            time_secs: 10,
            parallel: 1,
            reverse: false,
            bidir: false,
            omit_secs: 0,
            len: DEFAULT_TCP_LEN,
            interval: Duration::from_secs(1),
            rate_bits_per_sec: 0,
        }
    }

    /// A UDP test at `rate_bits_per_sec` with 1460-byte datagrams.
    pub fn udp(rate_bits_per_sec: u64) -> NetTestConfig {
        NetTestConfig { protocol: Protocol::Udp, len: DEFAULT_UDP_LEN, rate_bits_per_sec, ..NetTestConfig::tcp() }
    }

    /// Streams in the test, both directions together.
    pub fn n_streams(&self) -> usize {
        self.parallel as usize * if self.bidir { 2 } else { 1 }
    }

    /// Checks the test against `caps`; the message says what to change.
    pub fn validate(&self, caps: &NetCaps) -> Result<(), NetError> {
        let invalid = |msg: String| Err(NetError::InvalidInput(msg));
        if self.time_secs == 0 || self.time_secs > caps.max_time_secs {
            return invalid(format!(
                "--time {} is out of range; use 1 to {} seconds",
                self.time_secs, caps.max_time_secs
            ));
        }
        if self.omit_secs > caps.max_time_secs {
            return invalid(format!(
                "--omit {} is out of range; use at most {} seconds",
                self.omit_secs, caps.max_time_secs
            ));
        }
        if self.parallel == 0 || self.parallel > caps.max_parallel {
            return invalid(format!("--parallel {} is out of range; use 1 to {}", self.parallel, caps.max_parallel));
        }
        let max_len = match self.protocol {
            Protocol::Tcp => caps.max_tcp_len,
            Protocol::Udp => MAX_UDP_LEN,
        };
        let min_len = match self.protocol {
            Protocol::Tcp => 1,
            Protocol::Udp => wire::UdpHeader::len(true) as u32,
        };
        if self.len < min_len || self.len > max_len {
            return invalid(format!(
                "--len {} is out of range for {}; use {min_len} to {max_len} bytes",
                self.len, self.protocol
            ));
        }
        if self.protocol == Protocol::Udp && self.rate_bits_per_sec == 0 {
            return invalid(format!(
                "a UDP --rate of 0 means unlimited, which is over the limit of {} per stream; give a rate",
                crate::units::BitRate(caps.max_rate_bits_per_sec)
            ));
        }
        if self.protocol == Protocol::Udp && self.rate_bits_per_sec > caps.max_rate_bits_per_sec {
            return invalid(format!(
                "--rate {} is over the limit of {} per stream",
                crate::units::BitRate(self.rate_bits_per_sec),
                crate::units::BitRate(caps.max_rate_bits_per_sec)
            ));
        }
        if self.interval < Duration::from_millis(100) || self.interval > Duration::from_secs(60) {
            return invalid("--interval is out of range; use 0.1 to 60 seconds".to_string());
        }
        Ok(())
    }

    /// The parameters as iperf3's PARAM_EXCHANGE message carries them.
    pub fn params(&self) -> wire::Params {
        wire::Params {
            tcp: self.protocol == Protocol::Tcp,
            udp: self.protocol == Protocol::Udp,
            omit: self.omit_secs,
            time: self.time_secs,
            parallel: self.parallel,
            reverse: self.reverse,
            bidirectional: self.bidir,
            len: self.len,
            bandwidth: self.rate_bits_per_sec,
            pacing_timer: 1000,
            client_version: concat!("plateau ", env!("CARGO_PKG_VERSION")).to_string(),
            ..wire::Params::default()
        }
    }

    /// The configuration a PARAM_EXCHANGE message describes.
    pub fn from_params(params: &wire::Params) -> Result<NetTestConfig, NetError> {
        let protocol = match (params.tcp, params.udp) {
            (_, true) => Protocol::Udp,
            (true, false) => Protocol::Tcp,
            (false, false) => {
                return Err(NetError::InvalidInput("the test is neither TCP nor UDP".into()));
            }
        };
        if params.num != 0 || params.blockcount != 0 {
            return Err(NetError::InvalidInput("byte- and block-count tests are not supported; use a time".into()));
        }
        Ok(NetTestConfig {
            protocol,
            time_secs: params.time,
            parallel: params.parallel,
            reverse: params.reverse,
            bidir: params.bidirectional,
            omit_secs: params.omit,
            len: params.len,
            interval: Duration::from_secs(1),
            rate_bits_per_sec: params.bandwidth,
        })
    }
}

/// What the agent's data server accepts at most.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NetCaps {
    /// Longest test (omitted seconds not included).
    pub max_time_secs: u32,
    /// Most streams per direction.
    pub max_parallel: u32,
    /// Highest UDP rate per stream, bits/s.
    pub max_rate_bits_per_sec: u64,
    /// Largest TCP write.
    pub max_tcp_len: u32,
}

impl Default for NetCaps {
    fn default() -> Self {
        NetCaps { max_time_secs: 300, max_parallel: 32, max_rate_bits_per_sec: 100_000_000_000, max_tcp_len: 16 << 20 }
    }
}

/// Whom a test runs against, as the user names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A plateau agent's control API (`http://HOST:PORT`); its data port and a cookie
    /// are obtained from it.
    Agent(String),
    /// A stock iperf3 server (`iperf3://HOST[:PORT]`).
    Iperf3 {
        /// Host name or address.
        host: String,
        /// Port (5201 by default).
        port: u16,
    },
    /// A plateau agent's data port, as an agent is asked to test towards it
    /// (`plateau://HOST:PORT`, with a cookie from that agent).
    Data {
        /// Host name or address.
        host: String,
        /// The data port.
        port: u16,
    },
}

impl Target {
    /// The host part.
    pub fn host(&self) -> String {
        match self {
            Target::Agent(url) => split_host_port(url.trim_start_matches("http://").trim_end_matches('/'))
                .map(|(host, _)| host)
                .unwrap_or_default(),
            Target::Iperf3 { host, .. } | Target::Data { host, .. } => host.clone(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Agent(url) => f.write_str(url),
            Target::Iperf3 { host, port } => write!(f, "iperf3://{}:{port}", bracket(host)),
            Target::Data { host, port } => write!(f, "plateau://{}:{port}", bracket(host)),
        }
    }
}

/// A host as it goes before `:PORT`: an IPv6 address in brackets.
pub fn bracket(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}

/// Splits `host:port` or `[v6]:port`; the port is optional.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host.to_string(), Some(port.parse().ok()?))),
        _ => Some((text.to_string(), None)),
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bad = || format!("invalid target '{text}'; use an agent URL (http://HOST:PORT) or iperf3://HOST[:PORT]");
        let host_port = |rest: &str| -> Result<(String, Option<u16>), String> {
            let (host, port) = split_host_port(rest.trim_end_matches('/')).ok_or_else(bad)?;
            if host.is_empty() { Err(bad()) } else { Ok((host, port)) }
        };
        if let Some(rest) = text.strip_prefix("iperf3://") {
            let (host, port) = host_port(rest)?;
            return Ok(Target::Iperf3 { host, port: port.unwrap_or(IPERF3_PORT) });
        }
        if let Some(rest) = text.strip_prefix("plateau://") {
            let (host, port) = host_port(rest)?;
            let port = port.ok_or_else(|| format!("plateau:// target '{text}' needs the data port"))?;
            return Ok(Target::Data { host, port });
        }
        if let Some(rest) = text.strip_prefix("http://") {
            host_port(rest)?;
            return Ok(Target::Agent(format!("http://{}", rest.trim_end_matches('/'))));
        }
        if text.starts_with("https://") {
            return Err(format!("'{text}': agents serve plain http://; TLS in front of an agent is not supported yet"));
        }
        Err(bad())
    }
}

/// Where the test traffic goes, with the cookie that admits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Control port (data port for agents).
    pub port: u16,
    /// The cookie an agent issued; `None` for iperf3 (the client makes one up).
    pub cookie: Option<String>,
    /// `plateau` or `iperf3`.
    pub peer: String,
}

/// Why a network test did not produce a result; each message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The request cannot be run as given.
    #[error("{0}")]
    InvalidInput(String),
    /// The host name does not resolve.
    #[error("cannot resolve '{host}': {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The connection failed.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// Address tried.
        addr: String,
        /// Why, in words.
        reason: String,
    },
    /// The server is running another test.
    #[error("the server at {0} is busy running another test; try again when it has finished")]
    Busy(String),
    /// The server reported an error.
    #[error("the server at {addr} reported an error: {message}")]
    Server {
        /// Address of the server.
        addr: String,
        /// What it said.
        message: String,
    },
    /// The peer broke the protocol or went silent.
    #[error("test with {addr} failed: {reason}")]
    Protocol {
        /// Address of the peer.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The test was interrupted.
    #[error("the test was interrupted")]
    Cancelled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_in_their_three_forms() {
        assert_eq!("http://10.0.0.1:7070".parse::<Target>().unwrap(), Target::Agent("http://10.0.0.1:7070".into()));
        assert_eq!(
            "iperf3://server".parse::<Target>().unwrap(),
            Target::Iperf3 { host: "server".into(), port: IPERF3_PORT }
        );
        assert_eq!("iperf3://[::1]:5300".parse::<Target>().unwrap(), Target::Iperf3 { host: "::1".into(), port: 5300 });
        assert_eq!("plateau://h:7071".parse::<Target>().unwrap(), Target::Data { host: "h".into(), port: 7071 });
        assert!("plateau://h".parse::<Target>().unwrap_err().contains("data port"));
        assert!("10.0.0.1".parse::<Target>().unwrap_err().contains("iperf3://HOST"));
        assert!("iperf3://h:notaport".parse::<Target>().is_err());
        assert_eq!("http://10.0.0.1:7070/".parse::<Target>().unwrap().host(), "10.0.0.1");
    }

    #[test]
    fn absurd_tests_are_refused_with_the_range() {
        let caps = NetCaps::default();
        let long = NetTestConfig { time_secs: 100_000, ..NetTestConfig::tcp() };
        assert!(long.validate(&caps).unwrap_err().to_string().contains("use 1 to 300 seconds"));
        let fast = NetTestConfig::udp(1_000_000_000_000);
        assert!(fast.validate(&caps).unwrap_err().to_string().contains("over the limit"));
        let wide = NetTestConfig { parallel: 1000, ..NetTestConfig::tcp() };
        assert!(wide.validate(&caps).is_err());
        let tiny = NetTestConfig { len: 4, ..NetTestConfig::udp(1_000_000) };
        assert!(tiny.validate(&caps).is_err());
        assert!(NetTestConfig::udp(100_000_000).validate(&caps).is_ok());
    }

    #[test]
    fn params_round_trip() {
        let config = NetTestConfig { parallel: 4, reverse: true, omit_secs: 2, ..NetTestConfig::udp(5_000_000) };
        let back = NetTestConfig::from_params(&config.params()).unwrap();
        assert_eq!(back, config);
    }
}
