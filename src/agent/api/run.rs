//! What the agent's two background Kafka runs share: a produce run (`kafka`) and a consume
//! run (`consume`) each keep a `RunState` — the configuration, the controls of the run
//! going on, and the last run's report or error — start it on a blocking thread holding
//! the probe slot, and stop it through its cancel flag.

use std::sync::{Arc, MutexGuard};

use axum::http::StatusCode;

use super::ApiError;
use crate::agent::AgentShared;
use crate::agent::slots::Slot;
use crate::cancel::Cancel;
use crate::kafka::consume::ConsumeControl;
use crate::kafka::run::RunControl;

/// A run's controls: whatever else they hold, the flag that stops the run.
pub trait Stoppable {
    /// The run's cancel flag.
    fn cancel(&self) -> &Cancel;
}

impl Stoppable for RunControl {
    fn cancel(&self) -> &Cancel {
        &self.cancel
    }
}

impl Stoppable for ConsumeControl {
    fn cancel(&self) -> &Cancel {
        &self.cancel
    }
}

/// A background run of this agent: the one running now, or the last one.
#[derive(Debug)]
pub struct RunState<C, K, R> {
    /// The run's configuration.
    pub config: Option<C>,
    /// Controls of the running run.
    pub control: Option<Arc<K>>,
    /// Whether a run is going on.
    pub running: bool,
    /// The last finished run's report.
    pub report: Option<R>,
    /// Why the last run failed, if it did.
    pub error: Option<String>,
}

impl<C, K, R> Default for RunState<C, K, R> {
    fn default() -> Self {
        RunState { config: None, control: None, running: false, report: None, error: None }
    }
}

impl<C, K: Stoppable, R> RunState<C, K, R> {
    /// Stops the run going on; 409 naming `what` when none is.
    pub fn stop(&self, what: &str) -> Result<(), ApiError> {
        match (&self.control, self.running) {
            (Some(control), true) => {
                control.cancel().cancel();
                Ok(())
            }
            _ => Err(ApiError::new(StatusCode::CONFLICT, format!("no {what} run is going on"))),
        }
    }
}

/// The lock on one kind of run's state in the agent's shared state.
pub type StateOf<C, K, R> = fn(&AgentShared) -> MutexGuard<'_, RunState<C, K, R>>;

/// Records `config` and `control` as the run going on, then runs `run` on a blocking
/// thread that holds `slot` until the run's report (or error) is recorded in the state.
pub fn start_in_background<C, K, R, E>(
    shared: &Arc<AgentShared>,
    state: StateOf<C, K, R>,
    slot: Slot,
    config: C,
    control: Arc<K>,
    run: impl FnOnce(&C, &K) -> Result<R, E> + Send + 'static,
) where
    C: Clone + Send + 'static,
    K: Send + Sync + 'static,
    R: Send + 'static,
    E: std::fmt::Display,
{
    *state(shared) = RunState {
        config: Some(config.clone()),
        control: Some(Arc::clone(&control)),
        running: true,
        report: None,
        error: None,
    };
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || {
        let outcome = run(&config, &control);
        slot.record(outcome.as_ref().map(|_| ()).map_err(ToString::to_string));
        let mut run = state(&shared);
        run.running = false;
        match outcome {
            Ok(report) => run.report = Some(report),
            Err(err) => run.error = Some(err.to_string()),
        }
        drop(slot);
    });
}
