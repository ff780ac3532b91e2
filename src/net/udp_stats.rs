//! What a UDP receiver learns from sequence numbers and send times: loss, reordering,
//! duplicates, and jitter as RFC 3550 (section 6.4.1) defines it.
//!
//! Loss and reordering are counted as iperf3 counts them, so that both tools report the
//! same loss for the same traffic: a gap in the sequence counts as lost, and a late
//! arrival is out of order and takes one back from the lost count. Duplicates, which
//! iperf3 does not detect, are found with a window of recently seen sequence numbers.

/// Sequence numbers remembered for duplicate detection.
const SEEN_WINDOW: u64 = 1 << 16;

/// Datagrams lost of `sent`: those that never arrived once (`sent − arrived`), or the
/// sequence gaps the receiver counted when they are more (a sender's count that is short
/// or unknown, given as 0). The one loss formula of every UDP report.
pub fn lost(sent: u64, arrived: u64, gaps: u64) -> u64 {
    sent.saturating_sub(arrived).max(gaps)
}

/// `lost` as a percentage of `expected` datagrams; 0 when none were expected.
pub fn loss_percent(lost: u64, expected: u64) -> f64 {
    if expected == 0 { 0.0 } else { 100.0 * lost as f64 / expected as f64 }
}

/// Receiver statistics of one UDP stream, cumulative.
#[derive(Debug, Clone, Default)]
pub struct UdpReceiveStats {
    /// Datagrams received (including duplicates and late ones).
    pub received: u64,
    /// Bytes received.
    pub bytes: u64,
    /// Highest sequence number seen.
    pub highest_seq: u64,
    /// Sequence numbers skipped and not (yet) seen late.
    pub lost: u64,
    /// Datagrams that arrived after a higher sequence number.
    pub out_of_order: u64,
    /// Datagrams whose sequence number was already seen.
    pub duplicates: u64,
    /// RFC 3550 interarrival jitter, seconds.
    pub jitter_secs: f64,
    previous_transit: Option<f64>,
    seen: SeenWindow,
}

impl UdpReceiveStats {
    /// Accounts for one datagram of `bytes` with sequence number `seq` (from 1), sent at
    /// `sent_secs` and received at `arrived_secs` (both Unix time in seconds).
    pub fn record(&mut self, seq: u64, bytes: usize, sent_secs: f64, arrived_secs: f64) {
        self.received += 1;
        self.bytes += bytes as u64;
        if self.seen.contains(seq) {
            self.duplicates += 1;
            return;
        }
        self.seen.insert(seq);
        if seq > self.highest_seq {
            self.lost += seq - self.highest_seq - 1;
            self.highest_seq = seq;
        } else {
            self.out_of_order += 1;
            self.lost = self.lost.saturating_sub(1);
        }
        // The clocks of sender and receiver need not agree: only changes in transit
        // time matter.
        let transit = arrived_secs - sent_secs;
        if let Some(previous) = self.previous_transit {
            let change = (transit - previous).abs();
            self.jitter_secs += (change - self.jitter_secs) / 16.0;
        }
        self.previous_transit = Some(transit);
    }

    /// Datagrams received once, not counting duplicates.
    pub fn unique_received(&self) -> u64 {
        self.received - self.duplicates
    }

    /// Datagrams lost. With the sender's count (`sent`) this includes datagrams lost
    /// after the last one that arrived, which sequence gaps cannot show.
    pub fn lost_of(&self, sent: Option<u64>) -> u64 {
        lost(sent.unwrap_or(0), self.unique_received(), self.lost)
    }

    /// Lost datagrams as a percentage of those sent (or of the highest sequence number
    /// seen when the sender's count is unknown).
    pub fn lost_percent(&self, sent: Option<u64>) -> f64 {
        let expected = sent.unwrap_or(self.highest_seq).max(self.highest_seq);
        loss_percent(self.lost_of(sent), expected)
    }
}

/// Which of the last `SEEN_WINDOW` sequence numbers were seen: a ring of bits, so that
/// duplicate detection costs a few instructions per datagram at millions per second.
#[derive(Debug, Clone)]
struct SeenWindow {
    bits: Vec<u64>,
    /// The highest sequence number inserted.
    top: u64,
}

impl Default for SeenWindow {
    fn default() -> Self {
        SeenWindow { bits: vec![0; (SEEN_WINDOW / 64) as usize], top: 0 }
    }
}

impl SeenWindow {
    fn slot(seq: u64) -> (usize, u64) {
        let index = seq % SEEN_WINDOW;
        ((index / 64) as usize, 1 << (index % 64))
    }

    /// Whether `seq` was seen; numbers older than the window count as unseen.
    fn contains(&self, seq: u64) -> bool {
        if seq > self.top || seq + SEEN_WINDOW <= self.top {
            return false;
        }
        let (word, bit) = Self::slot(seq);
        self.bits[word] & bit != 0
    }

    fn insert(&mut self, seq: u64) {
        if seq > self.top {
            // Forget the numbers the window slides past.
            if seq - self.top >= SEEN_WINDOW {
                self.bits.iter_mut().for_each(|word| *word = 0);
            } else {
                for skipped in self.top + 1..seq {
                    let (word, bit) = Self::slot(skipped);
                    self.bits[word] &= !bit;
                }
            }
            self.top = seq;
        } else if seq + SEEN_WINDOW <= self.top {
            return;
        }
        let (word, bit) = Self::slot(seq);
        self.bits[word] |= bit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(sequence: &[u64]) -> UdpReceiveStats {
        let mut stats = UdpReceiveStats::default();
        for (i, &seq) in sequence.iter().enumerate() {
            stats.record(seq, 100, i as f64 * 0.001, i as f64 * 0.001 + 0.010);
        }
        stats
    }

    #[test]
    fn in_order_traffic_has_no_loss_and_no_jitter() {
        let stats = receive(&[1, 2, 3, 4, 5]);
        assert_eq!((stats.lost, stats.out_of_order, stats.duplicates), (0, 0, 0));
        assert!(stats.jitter_secs < 1e-12, "{}", stats.jitter_secs);
        assert_eq!(stats.bytes, 500);
    }

    #[test]
    fn a_gap_is_loss() {
        let stats = receive(&[1, 2, 5, 6]);
        assert_eq!(stats.lost, 2);
        assert_eq!(stats.highest_seq, 6);
        assert!((stats.lost_percent(Some(6)) - 100.0 * 2.0 / 6.0).abs() < 1e-9);
    }

    #[test]
    fn a_late_datagram_is_reordering_not_loss() {
        let stats = receive(&[1, 3, 2, 4]);
        assert_eq!(stats.lost, 0);
        assert_eq!(stats.out_of_order, 1);
    }

    #[test]
    fn duplicates_are_counted_and_not_reordering() {
        let stats = receive(&[1, 2, 2, 3]);
        assert_eq!(stats.duplicates, 1);
        assert_eq!(stats.out_of_order, 0);
        assert_eq!(stats.lost, 0);
    }

    #[test]
    fn jitter_follows_rfc_3550() {
        let mut stats = UdpReceiveStats::default();
        // Transit times 10 ms, 12 ms, 10 ms: changes of 2 ms each.
        stats.record(1, 100, 0.000, 0.010);
        stats.record(2, 100, 0.001, 0.013);
        stats.record(3, 100, 0.002, 0.012);
        let expected_first = 0.002 / 16.0;
        let expected = expected_first + (0.002 - expected_first) / 16.0;
        assert!((stats.jitter_secs - expected).abs() < 1e-12, "{}", stats.jitter_secs);
    }

    #[test]
    fn tail_loss_needs_the_senders_count() {
        // Datagrams 4 and 5 were lost after the last arrival: no gap shows them.
        let stats = receive(&[1, 2, 3]);
        assert_eq!(stats.lost_of(None), 0);
        assert_eq!(stats.lost_of(Some(5)), 2);
        assert!((stats.lost_percent(Some(5)) - 40.0).abs() < 1e-9);
        let with_duplicate = receive(&[1, 2, 2, 3]);
        assert_eq!(with_duplicate.lost_of(Some(3)), 0);
    }

    #[test]
    fn the_duplicate_window_slides() {
        let mut window = SeenWindow::default();
        window.insert(1);
        window.insert(SEEN_WINDOW + 1);
        assert!(!window.contains(1), "fell out of the window");
        assert!(window.contains(SEEN_WINDOW + 1));
        // The slot of 1 is reused by SEEN_WINDOW + 1; an old number is not a duplicate.
        window.insert(2 * SEEN_WINDOW + 5);
        assert!(!window.contains(SEEN_WINDOW + 1));
        window.insert(2 * SEEN_WINDOW + 3);
        assert!(window.contains(2 * SEEN_WINDOW + 3));
        assert!(!window.contains(2 * SEEN_WINDOW + 4));
    }
}
