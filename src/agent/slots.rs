//! The agent's single probe slot: at most one probe (or one network test it serves)
//! runs at a time, and `/status` shows each probe's state and counters.
//!
//! The slot belongs to the probe, not to the request that started it: the [`Slot`]
//! guard moves into the thread that runs the probe and is dropped only when the probe
//! has ended, so a client that disconnects cannot free the slot while its probe runs on.
//! Each slot carries the probe's [`Cancel`] flag, which `POST /probes/cancel` and the
//! agent's shutdown set.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::cancel::Cancel;

/// Which probe holds the slot, and every probe's record.
#[derive(Debug, Default)]
pub struct ProbeBook {
    active: Option<(String, Cancel)>,
    statuses: BTreeMap<String, SlotRecord>,
}

/// What the book knows of one probe: `/status` shows it as the probe's `ProbeStatus`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotRecord {
    /// Whether it is running now.
    pub running: bool,
    /// Unix ms the current or last run started.
    pub started_at: Option<u64>,
    /// Runs that finished with a result.
    pub runs_ok: u64,
    /// Runs that failed.
    pub runs_err: u64,
    /// The last failure.
    pub last_error: Option<String>,
}

/// Holds the slot; releases it when dropped, however the probe ends.
#[derive(Debug)]
pub struct Slot {
    book: Arc<Mutex<ProbeBook>>,
    name: String,
    cancel: Cancel,
}

fn lock(book: &Mutex<ProbeBook>) -> std::sync::MutexGuard<'_, ProbeBook> {
    book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ProbeBook {
    /// Takes the slot for `name`, or says which probe holds it.
    pub fn acquire(book: &Arc<Mutex<ProbeBook>>, name: &str) -> Result<Slot, String> {
        let mut guard = lock(book);
        if let Some((running, _)) = &guard.active {
            return Err(running.clone());
        }
        let cancel = Cancel::new();
        guard.active = Some((name.to_string(), cancel.clone()));
        let status = guard.statuses.entry(name.to_string()).or_default();
        status.running = true;
        status.started_at = Some(crate::sampler::raw::unix_ms_now());
        Ok(Slot { book: Arc::clone(book), name: name.to_string(), cancel })
    }

    /// Asks the running probe to stop; returns its name, or `None` when the slot is free.
    pub fn cancel_active(book: &Mutex<ProbeBook>) -> Option<String> {
        let guard = lock(book);
        let (name, cancel) = guard.active.as_ref()?;
        cancel.cancel();
        Some(name.clone())
    }

    /// Every probe's record, by name.
    pub fn statuses(&self) -> BTreeMap<String, SlotRecord> {
        self.statuses.clone()
    }
}

impl Slot {
    /// The flag the probe must watch: set by `POST /probes/cancel` and at shutdown.
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// Counts the run's outcome in the probe's status.
    pub fn record(&self, outcome: Result<(), String>) {
        let mut book = lock(&self.book);
        let stats = book.statuses.entry(self.name.clone()).or_default();
        match outcome {
            Ok(()) => stats.runs_ok += 1,
            Err(err) => {
                stats.runs_err += 1;
                stats.last_error = Some(err);
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut book = lock(&self.book);
        book.active = None;
        book.statuses.entry(self.name.clone()).or_default().running = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slot_released_on_drop() {
        let book = Arc::new(Mutex::new(ProbeBook::default()));
        let slot = ProbeBook::acquire(&book, "disk").unwrap();
        assert_eq!(ProbeBook::acquire(&book, "net").unwrap_err(), "disk");
        assert!(lock(&book).statuses()["disk"].running);
        slot.record(Err("boom".into()));
        drop(slot);
        let statuses = lock(&book).statuses();
        assert!(!statuses["disk"].running);
        assert_eq!(statuses["disk"].runs_err, 1);
        assert!(ProbeBook::acquire(&book, "net").is_ok());
    }

    #[test]
    fn cancelling_reaches_the_running_probe_only() {
        let book = Arc::new(Mutex::new(ProbeBook::default()));
        assert_eq!(ProbeBook::cancel_active(&book), None);
        let slot = ProbeBook::acquire(&book, "disk").unwrap();
        assert!(!slot.cancel().is_cancelled());
        assert_eq!(ProbeBook::cancel_active(&book).as_deref(), Some("disk"));
        assert!(slot.cancel().is_cancelled());
        // Cancelling does not free the slot: the probe frees it when it has stopped.
        assert_eq!(ProbeBook::acquire(&book, "net").unwrap_err(), "disk");
        drop(slot);
        assert!(!ProbeBook::acquire(&book, "net").unwrap().cancel().is_cancelled());
    }
}
