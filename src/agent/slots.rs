//! The agent's single probe slot: at most one probe (or one network test it serves)
//! runs at a time, and `/status` shows each probe's state and counters.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::api::ProbeStatus;

/// Which probe holds the slot, and every probe's status.
#[derive(Debug, Default)]
pub struct ProbeBook {
    active: Option<String>,
    statuses: BTreeMap<String, ProbeStatus>,
}

/// Holds the slot; releases it when dropped, however the probe ends.
#[derive(Debug)]
pub struct Slot {
    book: Arc<Mutex<ProbeBook>>,
    name: String,
}

fn lock(book: &Mutex<ProbeBook>) -> std::sync::MutexGuard<'_, ProbeBook> {
    book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ProbeBook {
    /// Takes the slot for `name`, or says which probe holds it.
    pub fn acquire(book: &Arc<Mutex<ProbeBook>>, name: &str) -> Result<Slot, String> {
        let mut guard = lock(book);
        if let Some(running) = &guard.active {
            return Err(running.clone());
        }
        guard.active = Some(name.to_string());
        let status = guard.statuses.entry(name.to_string()).or_default();
        status.running = true;
        status.stats.started_at = Some(crate::sampler::raw::unix_ms_now());
        Ok(Slot { book: Arc::clone(book), name: name.to_string() })
    }

    /// Every probe's status, by name.
    pub fn statuses(&self) -> BTreeMap<String, ProbeStatus> {
        self.statuses.clone()
    }
}

impl Slot {
    /// Counts the run's outcome in the probe's status.
    pub fn record(&self, outcome: Result<(), String>) {
        let mut book = lock(&self.book);
        let stats = &mut book.statuses.entry(self.name.clone()).or_default().stats;
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
        assert_eq!(statuses["disk"].stats.runs_err, 1);
        assert!(ProbeBook::acquire(&book, "net").is_ok());
    }
}
