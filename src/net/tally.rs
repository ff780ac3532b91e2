//! Counting a test's streams at one end: snapshots of every stream's counters, turned
//! into interval segments and into the results message both ends exchange at the end.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::kernel::{self, CpuTimes, TcpInfo};
use super::report::Segment;
use super::streams::{Role, StreamHandle, StreamOutcome};
use super::udp_stats;
use super::wire::{self, Results, StreamResults};

/// One stream's counters at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Payload bytes moved.
    pub bytes: u64,
    /// UDP datagrams sent.
    pub packets_sent: u64,
    /// UDP datagrams received once (duplicates not counted).
    pub unique_received: u64,
    /// UDP highest sequence number seen.
    pub highest_seq: u64,
    /// UDP datagrams lost by sequence gaps.
    pub lost: u64,
    /// UDP late datagrams.
    pub out_of_order: u64,
    /// UDP duplicates.
    pub duplicates: u64,
    /// UDP jitter, seconds.
    pub jitter_secs: f64,
    /// TCP_INFO (TCP streams).
    pub tcp: Option<TcpInfo>,
}

impl Snapshot {
    /// Reads a stream's counters now.
    pub fn take(handle: &StreamHandle) -> Snapshot {
        let counters = &handle.counters;
        let udp = counters.udp.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Snapshot {
            bytes: counters.bytes.load(Ordering::Relaxed),
            packets_sent: counters.packets_sent.load(Ordering::Relaxed),
            unique_received: udp.unique_received(),
            highest_seq: udp.highest_seq,
            lost: udp.lost,
            out_of_order: udp.out_of_order,
            duplicates: udp.duplicates,
            jitter_secs: udp.jitter_secs,
            tcp: handle.tcp.as_deref().and_then(kernel::tcp_info),
        }
    }
}

/// The segment of one stream between two snapshots, as this end saw it.
pub fn segment(
    handle: &StreamHandle,
    udp: bool,
    before: &Snapshot,
    after: &Snapshot,
    span: (f64, f64),
    omitted: Option<bool>,
) -> Segment {
    stream_segment(handle.index, handle.role, udp, before, after, span, omitted)
}

/// The segment of stream `index` (this end's `role` in it) between two snapshots.
fn stream_segment(
    index: usize,
    role: Role,
    udp: bool,
    before: &Snapshot,
    after: &Snapshot,
    span: (f64, f64),
    omitted: Option<bool>,
) -> Segment {
    let seconds = (span.1 - span.0).max(1e-9);
    let bytes = after.bytes - before.bytes.min(after.bytes);
    let mut segment = Segment {
        socket: Some(wire::stream_id(index)),
        start: span.0,
        end: span.1,
        seconds,
        bytes,
        bits_per_second: bytes as f64 * 8.0 / seconds,
        omitted,
        sender: role == Role::Sender,
        ..Segment::default()
    };
    match (udp, role) {
        (false, Role::Sender) => {
            if let (Some(b), Some(a)) = (before.tcp, after.tcp) {
                segment.retransmits = Some(a.total_retrans.saturating_sub(b.total_retrans) as u64);
                segment.snd_cwnd = Some(a.snd_cwnd_bytes);
                segment.rtt = Some(a.rtt_us);
                segment.rttvar = Some(a.rttvar_us);
                segment.pmtu = Some(a.pmtu);
            }
        }
        (true, Role::Sender) => {
            segment.packets = Some(after.packets_sent - before.packets_sent.min(after.packets_sent))
        }
        (true, Role::Receiver) => {
            let expected = after.highest_seq.saturating_sub(before.highest_seq);
            let lost = after.lost.saturating_sub(before.lost);
            segment.packets = Some(expected);
            segment.lost_packets = Some(lost);
            segment.lost_percent = Some(udp_stats::loss_percent(lost, expected));
            segment.jitter_ms = Some(after.jitter_secs * 1000.0);
            segment.out_of_order = Some(after.out_of_order.saturating_sub(before.out_of_order));
        }
        (false, Role::Receiver) => {}
    }
    segment
}

/// Sums segments of several streams over the same span.
pub fn sum(segments: &[Segment], span: (f64, f64), sender: bool) -> Segment {
    let seconds = (span.1 - span.0).max(1e-9);
    let bytes: u64 = segments.iter().map(|s| s.bytes).sum();
    // A field is summed when some stream has it, and absent when none has.
    let total =
        |field: fn(&Segment) -> Option<u64>| -> Option<u64> { segments.iter().filter_map(field).reduce(|a, b| a + b) };
    let packets = total(|s| s.packets);
    let lost = total(|s| s.lost_packets);
    let jitters: Vec<f64> = segments.iter().filter_map(|s| s.jitter_ms).collect();
    Segment {
        start: span.0,
        end: span.1,
        seconds,
        bytes,
        bits_per_second: bytes as f64 * 8.0 / seconds,
        retransmits: total(|s| s.retransmits),
        packets,
        lost_packets: lost,
        lost_percent: lost.map(|lost| udp_stats::loss_percent(lost, packets.unwrap_or(0))),
        jitter_ms: (!jitters.is_empty()).then(|| jitters.iter().sum::<f64>() / jitters.len() as f64),
        out_of_order: total(|s| s.out_of_order),
        omitted: segments.first().and_then(|s| s.omitted),
        sender,
        ..Segment::default()
    }
}

/// What one end measured over a whole test.
#[derive(Debug, Default)]
pub struct Measured {
    /// Counters when the omitted start ended.
    pub baseline: Vec<Snapshot>,
    /// Counters at the end.
    pub last: Vec<Snapshot>,
    /// Time measured after the omitted start.
    pub measured: Duration,
    /// Wall time of the whole running phase.
    pub wall: Duration,
    /// Process CPU over the running phase.
    pub process_cpu: CpuTimes,
    /// Each stream thread's role and outcome.
    pub outcomes: Vec<(Role, StreamOutcome)>,
    /// This host's UDP RcvbufErrors before and after the test.
    pub rcvbuf_errors: (Option<u64>, Option<u64>),
}

impl Measured {
    /// UDP datagrams this host dropped at full socket buffers during the test.
    pub fn rcvbuf_errors(&self) -> Option<u64> {
        match self.rcvbuf_errors {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            _ => None,
        }
    }
}

/// One stream's end of test, from this end's counters and the peer's results.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEnd {
    /// The sender's side.
    pub sender: Segment,
    /// The receiver's side.
    pub receiver: Segment,
    /// UDP: loss, jitter and reordering over the whole test (iperf3's `end.streams[].udp`).
    pub udp: Option<Segment>,
    /// UDP: duplicated datagrams, when the receiver counts them.
    pub duplicates: Option<u64>,
}

/// Stream `index`'s end of a test `measured_secs` long, this end being its `role`: this
/// end's segment from its snapshots (`before` → `after`), the peer's from its results
/// (`theirs`), and for UDP the loss of `len`-byte datagrams.
#[allow(clippy::too_many_arguments)]
pub fn stream_end(
    index: usize,
    role: Role,
    udp: bool,
    len: usize,
    before: &Snapshot,
    after: &Snapshot,
    measured_secs: f64,
    theirs: &StreamResults,
) -> StreamEnd {
    let id = wire::stream_id(index);
    let local = stream_segment(index, role, udp, before, after, (0.0, measured_secs), None);
    let remote_seconds =
        if theirs.end_time > theirs.start_time { theirs.end_time - theirs.start_time } else { measured_secs };
    let remote = Segment {
        socket: Some(id),
        start: 0.0,
        end: remote_seconds,
        seconds: remote_seconds,
        bytes: theirs.bytes,
        bits_per_second: theirs.bytes as f64 * 8.0 / remote_seconds.max(1e-9),
        retransmits: (theirs.retransmits >= 0 && role == Role::Receiver).then_some(theirs.retransmits as u64),
        sender: role == Role::Receiver,
        ..Segment::default()
    };
    let (sender, receiver) = match role {
        Role::Sender => (local, remote),
        Role::Receiver => (remote, local),
    };
    if !udp {
        return StreamEnd { sender, receiver, udp: None, duplicates: None };
    }
    let sent = match role {
        Role::Sender => sender.packets.unwrap_or(0),
        Role::Receiver => theirs.packets.max(0) as u64,
    };
    let end = udp_end(role, sent, theirs, before, after, len);
    let udp = Segment {
        socket: Some(id),
        jitter_ms: Some(end.jitter_ms),
        lost_packets: Some(end.lost),
        packets: Some(sent),
        lost_percent: Some(udp_stats::loss_percent(end.lost, sent)),
        out_of_order: Some(end.out_of_order),
        sender: true,
        ..sender.clone()
    };
    StreamEnd { sender, receiver, udp: Some(udp), duplicates: end.duplicates }
}

/// One UDP stream's end of test as this end reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UdpEnd {
    /// Datagrams lost.
    pub lost: u64,
    /// The receiver's jitter, ms.
    pub jitter_ms: f64,
    /// Late datagrams.
    pub out_of_order: u64,
    /// Duplicated datagrams, when the receiver counts them (plateau does, iperf3 does not).
    pub duplicates: Option<u64>,
}

/// A UDP stream's loss, jitter and reordering at the end of a test of `sent` datagrams of
/// `len` bytes: from the peer's results (`theirs`) when this end sent, from this end's
/// counters (`before` → `after`) when it received.
pub fn udp_end(
    role: Role,
    sent: u64,
    theirs: &StreamResults,
    before: &Snapshot,
    after: &Snapshot,
    len: usize,
) -> UdpEnd {
    match role {
        // The receiver counted gaps; the bytes it received show tail loss too.
        Role::Sender => UdpEnd {
            lost: udp_stats::lost(sent, theirs.bytes / len.max(1) as u64, theirs.errors.max(0) as u64),
            jitter_ms: theirs.jitter * 1000.0,
            out_of_order: theirs.plateau_out_of_order.unwrap_or(0),
            duplicates: theirs.plateau_duplicates,
        },
        Role::Receiver => UdpEnd {
            lost: udp_stats::lost(
                sent,
                after.unique_received.saturating_sub(before.unique_received),
                after.lost.saturating_sub(before.lost),
            ),
            jitter_ms: after.jitter_secs * 1000.0,
            out_of_order: after.out_of_order.saturating_sub(before.out_of_order),
            duplicates: Some(after.duplicates.saturating_sub(before.duplicates)),
        },
    }
}

/// This end's results message: per-stream totals since the end of the omitted start.
pub fn local_results(handles: &[StreamHandle], udp: bool, measured: &Measured) -> Results {
    let Measured { baseline, last, measured: elapsed, wall, process_cpu, outcomes, .. } = measured;
    let receiving = handles.iter().any(|h| h.role == Role::Receiver);
    let percent = |cpu: Duration| 100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9);
    let any_tcp_sender = !udp && handles.iter().any(|h| h.role == Role::Sender);
    let only_receiving = handles.iter().all(|h| h.role == Role::Receiver);
    let streams = handles
        .iter()
        .zip(baseline.iter().zip(last))
        .map(|(handle, (before, after))| {
            let sender = handle.role == Role::Sender;
            let retransmits = match (sender, before.tcp, after.tcp) {
                (true, Some(b), Some(a)) => a.total_retrans.saturating_sub(b.total_retrans) as i64,
                _ => -1,
            };
            StreamResults {
                id: wire::stream_id(handle.index),
                bytes: after.bytes.saturating_sub(before.bytes),
                retransmits,
                jitter: if sender { 0.0 } else { after.jitter_secs },
                errors: if sender { 0 } else { after.lost.saturating_sub(before.lost) as i64 },
                packets: if sender {
                    after.packets_sent.saturating_sub(before.packets_sent) as i64
                } else {
                    after.highest_seq.saturating_sub(before.highest_seq) as i64
                },
                start_time: 0.0,
                end_time: elapsed.as_secs_f64(),
                plateau_out_of_order: (!sender && udp).then(|| after.out_of_order.saturating_sub(before.out_of_order)),
                plateau_duplicates: (!sender && udp).then(|| after.duplicates.saturating_sub(before.duplicates)),
            }
        })
        .collect();
    Results {
        cpu_util_total: percent(process_cpu.total()),
        cpu_util_user: percent(process_cpu.user),
        cpu_util_system: percent(process_cpu.system),
        sender_has_retransmits: if only_receiving { -1 } else { i64::from(any_tcp_sender) },
        congestion_used: None,
        streams,
        plateau_busiest_thread_ratio: busiest_thread(outcomes, None),
        plateau_udp_rcvbuf_errors: if udp && receiving { measured.rcvbuf_errors() } else { None },
    }
}

/// The CPU share of the busiest stream thread among `outcomes` (of `role`, or of any).
pub fn busiest_thread(outcomes: &[(Role, StreamOutcome)], role: Option<Role>) -> Option<f64> {
    outcomes
        .iter()
        .filter(|(r, o)| role.is_none_or(|role| *r == role) && o.elapsed > Duration::ZERO)
        .map(|(_, o)| o.thread_cpu.total().as_secs_f64() / o.elapsed.as_secs_f64())
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(unique_received: u64, lost: u64, duplicates: u64) -> Snapshot {
        Snapshot { unique_received, lost, duplicates, jitter_secs: 0.002, ..Snapshot::default() }
    }

    #[test]
    fn a_sender_counts_tail_loss_from_the_bytes_that_arrived() {
        // 100 sent, the receiver saw 60 datagrams' bytes and 10 gaps: 40 never arrived.
        let theirs = StreamResults { bytes: 60 * 1_000, errors: 10, jitter: 0.001, ..StreamResults::default() };
        let end = udp_end(Role::Sender, 100, &theirs, &Snapshot::default(), &Snapshot::default(), 1_000);
        assert_eq!(end.lost, 40);
        assert_eq!(end.jitter_ms, 1.0);
        assert_eq!(udp_stats::loss_percent(end.lost, 100), 40.0);
    }

    #[test]
    fn a_receiver_counts_loss_since_its_baseline() {
        // Since the baseline: 70 of 100 arrived once, 5 gaps, 2 duplicates.
        let end =
            udp_end(Role::Receiver, 100, &StreamResults::default(), &snapshot(10, 1, 0), &snapshot(80, 6, 2), 1_000);
        assert_eq!((end.lost, end.out_of_order, end.duplicates), (30, 0, Some(2)));
        assert_eq!(end.jitter_ms, 2.0);
    }

    #[test]
    fn a_udp_receivers_end_reports_loss_of_what_the_sender_sent() {
        // This end received stream 0 for 2 s: 800 of the 1,000 datagrams the peer sent.
        let before = Snapshot::default();
        let after =
            Snapshot { bytes: 800_000, unique_received: 800, highest_seq: 900, lost: 100, ..snapshot(800, 100, 0) };
        let theirs = StreamResults {
            bytes: 1_000_000,
            packets: 1_000,
            start_time: 0.0,
            end_time: 2.0,
            ..StreamResults::default()
        };
        let end = stream_end(0, Role::Receiver, true, 1_000, &before, &after, 2.0, &theirs);
        assert_eq!(end.sender.bits_per_second, 4e6);
        assert_eq!(end.receiver.bits_per_second, 3.2e6);
        let udp = end.udp.unwrap();
        assert_eq!((udp.packets, udp.lost_packets, udp.lost_percent), (Some(1_000), Some(200), Some(20.0)));
        assert_eq!(end.duplicates, Some(0));
    }

    #[test]
    fn a_tcp_senders_end_takes_the_receivers_bytes_from_its_results() {
        let after = Snapshot { bytes: 5_000_000, ..Snapshot::default() };
        let theirs = StreamResults { bytes: 4_000_000, start_time: 10.0, end_time: 12.0, ..StreamResults::default() };
        let end = stream_end(1, Role::Sender, false, 128 * 1024, &Snapshot::default(), &after, 2.0, &theirs);
        assert_eq!((end.sender.bytes, end.receiver.bytes), (5_000_000, 4_000_000));
        assert_eq!(end.receiver.bits_per_second, 16e6);
        assert!(end.sender.sender && !end.receiver.sender);
        assert_eq!(end.udp, None);
    }

    #[test]
    fn gaps_count_when_the_senders_figure_is_unknown() {
        let end =
            udp_end(Role::Receiver, 0, &StreamResults::default(), &snapshot(0, 0, 0), &snapshot(90, 10, 0), 1_000);
        assert_eq!(end.lost, 10);
    }
}
