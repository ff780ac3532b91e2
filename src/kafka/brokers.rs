//! The brokers a run may connect to: every broker a cluster advertises is checked against
//! an agent's allow-list before a client talks to it, for producers and consumers alike.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::allow::AllowList;

/// Checks the brokers a cluster advertises against an agent's allow-list, each
/// `host:port` once; the first refusal stops the run.
#[derive(Debug, Default)]
pub struct BrokerCheck {
    /// The agent's allow-list; `None` checks nothing (a run on the user's own machine).
    pub allow: Option<AllowList>,
    checked: Mutex<HashSet<String>>,
    refused: Mutex<Option<String>>,
}

impl BrokerCheck {
    /// A check against `allow` (nothing is checked without one).
    pub fn new(allow: Option<AllowList>) -> BrokerCheck {
        BrokerCheck { allow, ..BrokerCheck::default() }
    }

    /// Checks `host:port`; remembers and returns a refusal.
    pub fn check(&self, host: &str, port: u16) -> Result<(), String> {
        let Some(allow) = &self.allow else { return Ok(()) };
        let key = format!("{host}:{port}");
        if self.checked.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
            return Ok(());
        }
        match allow.resolve("advertised broker", host, port) {
            Ok(_) => {
                self.checked.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
                Ok(())
            }
            Err(err) => {
                let message = format!("the cluster advertises a broker this agent may not reach: {err}");
                self.refused.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(message.clone());
                Err(message)
            }
        }
    }

    /// The first refusal, if any.
    pub fn refusal(&self) -> Option<String> {
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
