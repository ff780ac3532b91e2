//! What a consumer saw of each device: seed 000's "per-device ordering and correctness
//! validation", done where seed 000 did it — downstream. Every event carries its device
//! and a per-device sequence number counted from 1, so a reader that starts where the
//! producers started can count, per device, events missing below the highest seen (lost),
//! seen twice (duplicated) and seen after a later one (out of order).

use std::collections::{BTreeSet, HashMap};

/// What was seen of one device.
#[derive(Debug, Default, Clone)]
struct DeviceSeen {
    /// Every sequence number up to this one was seen.
    contiguous: u64,
    /// Sequence numbers above `contiguous` that were seen.
    above: BTreeSet<u64>,
    /// Highest sequence number seen.
    highest: u64,
    /// Distinct events seen.
    unique: u64,
}

/// The per-device account of everything read.
#[derive(Debug, Default)]
pub struct Ledger {
    devices: HashMap<u64, DeviceSeen>,
    /// Events read (each counted once per read).
    pub consumed: u64,
    /// Events read more than once.
    pub duplicated: u64,
    /// Events of a device read after a later one of the same device.
    pub out_of_order: u64,
    /// Records that are not plateau's events (or name a device without the prefix).
    pub foreign: u64,
    /// Whether each device's first event read may be later than its first produced (a
    /// reader that joined mid-stream): then a device's account starts at it.
    joined_mid_stream: bool,
}

impl Ledger {
    /// A ledger for a reader that starts where the producers start (`true`), or one that
    /// joined mid-stream and counts gaps only after each device's first event read.
    pub fn starting_at_first_event(from_first_event: bool) -> Ledger {
        Ledger { joined_mid_stream: !from_first_event, ..Ledger::default() }
    }

    /// Records one event of `device` (`None`: a record that is not one of ours).
    pub fn record(&mut self, device: Option<u64>, seq: u64) {
        self.consumed += 1;
        let Some(device) = device else {
            self.foreign += 1;
            return;
        };
        let joined_mid_stream = self.joined_mid_stream;
        let seen = self.devices.entry(device).or_insert_with(|| DeviceSeen {
            contiguous: if joined_mid_stream { seq.saturating_sub(1) } else { 0 },
            highest: if joined_mid_stream { seq.saturating_sub(1) } else { 0 },
            ..DeviceSeen::default()
        });
        if seq <= seen.contiguous || seen.above.contains(&seq) {
            self.duplicated += 1;
            return;
        }
        seen.unique += 1;
        if seq < seen.highest {
            self.out_of_order += 1;
        }
        seen.highest = seen.highest.max(seq);
        if seq == seen.contiguous + 1 {
            seen.contiguous = seq;
            while seen.above.remove(&(seen.contiguous + 1)) {
                seen.contiguous += 1;
            }
        } else {
            seen.above.insert(seq);
        }
    }

    /// Distinct events read.
    pub fn unique(&self) -> u64 {
        self.devices.values().map(|seen| seen.unique).sum()
    }

    /// Devices seen.
    pub fn devices(&self) -> usize {
        self.devices.len()
    }

    /// Events missing below each device's highest sequence number: lost on the way, as far
    /// as the reader alone can tell (an event lost after a device's last one read is
    /// visible only against what the producer had acknowledged, `lost_against`).
    pub fn gaps(&self) -> u64 {
        self.devices.values().map(|seen| seen.highest - seen.contiguous - seen.above.len() as u64).sum()
    }

    /// Events acknowledged to the producer (`acked_per_device[device]`) but never read.
    pub fn lost_against(&self, acked_per_device: &[u32]) -> u64 {
        acked_per_device
            .iter()
            .enumerate()
            .map(|(device, &acked)| {
                let unique = self.devices.get(&(device as u64)).map_or(0, |seen| seen.unique);
                (acked as u64).saturating_sub(unique)
            })
            .sum()
    }
}

/// The device number in `device_id` (`sensor-0042` with prefix `sensor-` → 42).
pub fn device_index(device_id: &str, prefix: &str) -> Option<u64> {
    device_id.strip_prefix(prefix)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_reordering_per_device() {
        let mut ledger = Ledger::default();
        for (device, seq) in [(0, 1), (0, 2), (1, 1), (0, 4), (0, 3), (0, 3), (1, 2), (1, 1)] {
            ledger.record(Some(device), seq);
        }
        assert_eq!(ledger.consumed, 8);
        assert_eq!(ledger.duplicated, 2, "(0,3) and (1,1) arrived twice");
        assert_eq!(ledger.out_of_order, 1, "(0,3) after (0,4)");
        assert_eq!(ledger.unique(), 6);
        assert_eq!(ledger.gaps(), 0);
    }

    #[test]
    fn gaps_below_the_highest_are_lost_and_the_tail_needs_the_producer() {
        let mut ledger = Ledger::default();
        for seq in [1, 2, 5, 6] {
            ledger.record(Some(3), seq);
        }
        assert_eq!(ledger.gaps(), 2, "3 and 4 never arrived");
        // The producer had 8 acknowledged for device 3: 7 and 8 are lost too.
        assert_eq!(ledger.lost_against(&[0, 0, 0, 8]), 4);
    }

    #[test]
    fn a_reader_that_joined_mid_stream_counts_gaps_from_its_first_event() {
        let mut ledger = Ledger::starting_at_first_event(false);
        for seq in [500, 501, 503] {
            ledger.record(Some(0), seq);
        }
        assert_eq!((ledger.gaps(), ledger.unique(), ledger.duplicated), (1, 3, 0));
        ledger.record(Some(0), 499);
        assert_eq!(ledger.duplicated, 1, "before the first event read counts as read before");
    }

    #[test]
    fn records_that_are_not_ours_are_counted_apart() {
        let mut ledger = Ledger::default();
        ledger.record(None, 1);
        assert_eq!((ledger.foreign, ledger.duplicated, ledger.unique()), (1, 0, 0));
        assert_eq!(device_index("sensor-0042", "sensor-"), Some(42));
        assert_eq!(device_index("pump-7", "sensor-"), None);
    }
}
