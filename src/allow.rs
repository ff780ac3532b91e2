//! The networks an agent may send traffic to (`plateau agent --allow`), and the one check
//! that every outgoing connection an agent is asked to make goes through: network test
//! targets, bootstrap servers, and the brokers a cluster advertises.
//!
//! A name is resolved once, here, and the caller connects to the addresses this check
//! returned; resolving again before connecting would let a changing DNS answer pass the
//! check with one address and connect to another.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use ipnet::IpNet;

/// The networks an agent may send traffic to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    networks: Vec<IpNet>,
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowError {
    /// The name did not resolve.
    #[error("cannot resolve '{host}': {reason}")]
    Unresolved {
        /// The name.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// An address is outside the list.
    #[error(
        "{what} {host} ({address}) is not in this agent's --allow list ({list}); start the agent with --allow including it"
    )]
    Outside {
        /// What the address was for (`target`, `bootstrap server`, `advertised broker`).
        what: &'static str,
        /// The name as given.
        host: String,
        /// The address outside the list.
        address: IpAddr,
        /// The list, for the message.
        list: String,
    },
}

impl AllowList {
    /// A list of these networks.
    pub fn new(networks: Vec<IpNet>) -> AllowList {
        AllowList { networks }
    }

    /// The networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }

    /// Whether `address` is inside the list.
    pub fn contains(&self, address: &IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(address))
    }

    /// Checks addresses already resolved; every one must be inside.
    pub fn check_addresses(&self, what: &'static str, host: &str, addresses: &[SocketAddr]) -> Result<(), AllowError> {
        if addresses.is_empty() {
            return Err(AllowError::Unresolved { host: host.to_string(), reason: "no address".into() });
        }
        match addresses.iter().find(|a| !self.contains(&a.ip())) {
            None => Ok(()),
            Some(outside) => {
                Err(AllowError::Outside { what, host: host.to_string(), address: outside.ip(), list: self.to_string() })
            }
        }
    }

    /// Resolves `host` once and returns its addresses if every one is inside the list.
    /// Blocks on the resolver: call it off async threads.
    pub fn resolve(&self, what: &'static str, host: &str, port: u16) -> Result<Vec<SocketAddr>, AllowError> {
        let host = host.trim_matches(['[', ']']);
        let addresses: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|err| AllowError::Unresolved { host: host.to_string(), reason: err.to_string() })?
            .collect();
        self.check_addresses(what, host, &addresses)?;
        Ok(addresses)
    }
}

impl std::fmt::Display for AllowList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list: Vec<String> = self.networks.iter().map(ToString::to_string).collect();
        f.write_str(&list.join(","))
    }
}

/// Splits `HOST:PORT` (with `[v6]:PORT`) into its parts.
pub fn split_host_port(server: &str) -> Result<(&str, u16), String> {
    let server = server.trim();
    let (host, port) = server.rsplit_once(':').ok_or_else(|| format!("'{server}' is not HOST:PORT"))?;
    let port = port.parse().map_err(|_| format!("'{server}' has no valid port"))?;
    let host = host.trim_matches(['[', ']']);
    if host.is_empty() {
        return Err(format!("'{server}' has no host"));
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> AllowList {
        AllowList::new(vec!["127.0.0.0/8".parse().unwrap()])
    }

    #[test]
    fn addresses_inside_pass_and_outside_are_named() {
        let list = loopback();
        assert_eq!(list.resolve("target", "127.0.0.1", 9092).unwrap(), ["127.0.0.1:9092".parse().unwrap()]);
        let err = list.resolve("advertised broker", "10.1.2.3", 9092).unwrap_err();
        assert!(err.to_string().contains("advertised broker 10.1.2.3 (10.1.2.3) is not in"), "{err}");
        assert!(err.to_string().contains("127.0.0.0/8"), "{err}");
    }

    #[test]
    fn host_and_port_split_with_brackets() {
        assert_eq!(split_host_port("[::1]:9092").unwrap(), ("::1", 9092));
        assert_eq!(split_host_port("b1:9092").unwrap(), ("b1", 9092));
        assert!(split_host_port("b1").is_err());
        assert!(split_host_port(":9092").is_err());
        assert!(split_host_port("b1:99999").is_err());
    }
}
