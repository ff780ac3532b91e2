//! Counting a test's streams at one end: snapshots of every stream's counters, turned
//! into interval segments and into the results message both ends exchange at the end.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::kernel::{self, CpuTimes, TcpInfo};
use super::report::Segment;
use super::streams::{Role, StreamHandle, StreamOutcome};
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
    let seconds = (span.1 - span.0).max(1e-9);
    let bytes = after.bytes - before.bytes.min(after.bytes);
    let mut segment = Segment {
        socket: Some(wire::stream_id(handle.index)),
        start: span.0,
        end: span.1,
        seconds,
        bytes,
        bits_per_second: bytes as f64 * 8.0 / seconds,
        omitted,
        sender: handle.role == Role::Sender,
        ..Segment::default()
    };
    match (udp, handle.role) {
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
            segment.lost_percent = Some(if expected > 0 { 100.0 * lost as f64 / expected as f64 } else { 0.0 });
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
        lost_percent: match (lost, packets) {
            (Some(lost), Some(packets)) if packets > 0 => Some(100.0 * lost as f64 / packets as f64),
            (Some(_), _) => Some(0.0),
            _ => None,
        },
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

/// UDP RcvbufErrors of this host now (from /proc/net/snmp).
pub fn udp_rcvbuf_errors_now() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    crate::sampler::raw::parse_snmp_udp(&text).ok().map(|udp| udp.rcvbuf_errors)
}
