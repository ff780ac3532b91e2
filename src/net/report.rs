//! The result of a network test, laid out as iperf3's `-J` output where the two overlap
//! (`start`, `intervals[]`, `end.sum_sent`, `end.sum_received`, `end.sum`, ...), so that
//! scripts written for iperf3 keep working, plus plateau's own `plateau` object: who
//! limited the test.

use serde::{Deserialize, Serialize};

/// The whole result of one test.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct NetReport {
    /// How the test was set up.
    pub start: Start,
    /// One entry per reporting interval.
    pub intervals: Vec<Interval>,
    /// Totals.
    pub end: End,
    /// plateau's own findings.
    pub plateau: PlateauFindings,
}

/// iperf3's `start` object.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Start {
    /// One entry per data connection.
    pub connected: Vec<Connected>,
    /// `plateau X.Y.Z`.
    pub version: String,
    /// `uname` of this host.
    pub system_info: String,
    /// When the test started.
    pub timestamp: Timestamp,
    /// The server the test ran against.
    pub connecting_to: ConnectingTo,
    /// The test's cookie.
    pub cookie: String,
    /// Target rate per stream in bits/s (UDP).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_bitrate: Option<u64>,
    /// The parameters.
    pub test_start: TestStart,
}

/// One data connection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Connected {
    /// Stream number (iperf3 puts the socket descriptor here).
    pub socket: u32,
    /// Local address.
    pub local_host: String,
    /// Local port.
    pub local_port: u16,
    /// Remote address.
    pub remote_host: String,
    /// Remote port.
    pub remote_port: u16,
}

/// Wall-clock time of the start.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Timestamp {
    /// RFC 3339.
    pub time: String,
    /// Unix seconds.
    pub timesecs: u64,
}

/// Host and port of the server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ConnectingTo {
    /// Host as given.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// iperf3's `test_start`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TestStart {
    /// `TCP` or `UDP`.
    pub protocol: String,
    /// Streams per direction.
    pub num_streams: u32,
    /// Bytes per write or datagram.
    pub blksize: u32,
    /// Seconds omitted at the start.
    pub omit: u32,
    /// Seconds measured.
    pub duration: u32,
    /// Always 0 (plateau tests run for a time).
    pub bytes: u64,
    /// Always 0.
    pub blocks: u64,
    /// 1 when the server sent.
    pub reverse: u32,
    /// 1 when both sides sent.
    #[serde(default)]
    pub bidir: u32,
    /// Always 0.
    pub tos: u32,
    /// Target rate per stream in bits/s (UDP).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target_bitrate: Option<u64>,
}

/// A span of the test, for one stream or summed over streams. Fields that do not apply
/// (TCP_INFO for UDP, loss for TCP) are left out.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Segment {
    /// Stream number (absent in sums).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub socket: Option<u32>,
    /// Seconds since the test started.
    pub start: f64,
    /// Seconds since the test started.
    pub end: f64,
    /// `end - start`.
    pub seconds: f64,
    /// Payload bytes.
    pub bytes: u64,
    /// Payload bits per second.
    pub bits_per_second: f64,
    /// TCP segments retransmitted (sender).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retransmits: Option<u64>,
    /// Congestion window in bytes at the end of the span (TCP sender).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snd_cwnd: Option<u64>,
    /// Smoothed RTT in microseconds (TCP sender).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rtt: Option<u32>,
    /// RTT variation in microseconds (TCP sender).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rttvar: Option<u32>,
    /// Path MTU (TCP sender).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pmtu: Option<u32>,
    /// RFC 3550 jitter in milliseconds (UDP receiver).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jitter_ms: Option<f64>,
    /// Datagrams lost (UDP).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lost_packets: Option<u64>,
    /// Datagrams sent (UDP).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub packets: Option<u64>,
    /// `100 · lost / packets` (UDP).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lost_percent: Option<f64>,
    /// Datagrams that arrived after a later one (UDP).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub out_of_order: Option<u64>,
    /// Whether the span falls in the omitted start.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub omitted: Option<bool>,
    /// Whether the numbers are the sender's.
    pub sender: bool,
}

/// One reporting interval.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Interval {
    /// Per stream, as this end saw it.
    pub streams: Vec<Segment>,
    /// Summed over the streams of the first direction.
    pub sum: Segment,
    /// With `--bidir`: summed over the streams of the other direction.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sum_bidir_reverse: Option<Segment>,
}

/// Totals of one stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct EndStream {
    /// The sending side (TCP).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sender: Option<Segment>,
    /// The receiving side (TCP).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receiver: Option<Segment>,
    /// Both sides together (UDP).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub udp: Option<Segment>,
}

/// Process CPU use during the test, percent of one core.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CpuUtilization {
    /// This end, user + system.
    pub host_total: f64,
    /// This end, user.
    pub host_user: f64,
    /// This end, system.
    pub host_system: f64,
    /// The other end, user + system.
    pub remote_total: f64,
    /// The other end, user.
    pub remote_user: f64,
    /// The other end, system.
    pub remote_system: f64,
}

/// iperf3's `end` object.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct End {
    /// Per stream.
    pub streams: Vec<EndStream>,
    /// What the sender sent (first direction).
    pub sum_sent: Segment,
    /// What the receiver received (first direction).
    pub sum_received: Segment,
    /// UDP: the received side with the sender's packet count, as iperf3 reports it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sum: Option<Segment>,
    /// With `--bidir`: what was sent in the other direction.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sum_sent_bidir_reverse: Option<Segment>,
    /// With `--bidir`: what was received in the other direction.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sum_received_bidir_reverse: Option<Segment>,
    /// CPU of both ends.
    pub cpu_utilization_percent: CpuUtilization,
}

/// What limited the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LimitedBy {
    /// The path between the hosts.
    Network,
    /// The sending end could not produce more.
    Sender,
    /// The receiving end could not take more (CPU or socket buffers).
    Receiver,
    /// Nothing: the offered UDP rate arrived whole.
    None,
}

/// plateau's findings about a test.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PlateauFindings {
    /// The target as given.
    pub target: String,
    /// `plateau` or `iperf3`.
    pub peer: String,
    /// The agent that ran the test, when it was run remotely (`--from`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub from: Option<String>,
    /// Who limited the test.
    pub limited_by: LimitedBy,
    /// Why, in a sentence with the numbers.
    pub explanation: String,
    /// Throughput that arrived, bits/s (first direction).
    pub received_bits_per_second: f64,
    /// UDP: the offered rate over all streams, bits/s.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub offered_bits_per_second: Option<f64>,
    /// UDP: achieved send rate over offered rate.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sender_reached_ratio: Option<f64>,
    /// CPU share of the sender's busiest data thread (0–1); for iperf3 its process.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sender_busiest_thread_ratio: Option<f64>,
    /// CPU share of the receiver's busiest data thread (0–1); for iperf3 its process.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receiver_busiest_thread_ratio: Option<f64>,
    /// UDP datagrams the receiving host dropped for a full socket buffer during the test.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receiver_udp_rcvbuf_errors: Option<u64>,
    /// UDP datagrams received twice.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duplicates: Option<u64>,
}

/// The numbers that decide who limited a test.
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitFacts {
    /// Whether the test was UDP.
    pub udp: bool,
    /// UDP offered rate over all streams, bits/s.
    pub offered_bits_per_second: Option<f64>,
    /// Achieved send rate, bits/s.
    pub sent_bits_per_second: f64,
    /// Arrived rate, bits/s.
    pub received_bits_per_second: f64,
    /// UDP datagrams lost.
    pub lost_packets: u64,
    /// UDP loss percentage.
    pub lost_percent: f64,
    /// Busiest sender thread's CPU share.
    pub sender_busy: Option<f64>,
    /// Busiest receiver thread's CPU share.
    pub receiver_busy: Option<f64>,
    /// Datagrams the receiving host dropped at its socket buffers.
    pub receiver_rcvbuf_errors: Option<u64>,
}

/// A thread this busy is taken to be the limit.
const BUSY_THREAD_RATIO: f64 = 0.9;
/// A sender below this share of the offered rate did not keep up.
const SENDER_REACHED_RATIO: f64 = 0.95;
/// Loss below this percentage counts as none.
const NEGLIGIBLE_LOSS_PERCENT: f64 = 1.0;

fn mbit(bits_per_second: f64) -> String {
    format!("{:.1} Mbit/s", bits_per_second / 1e6)
}

fn busy_note(busy: Option<f64>) -> String {
    busy.map(|b| format!(" (busiest thread {:.0} % busy)", b * 100.0)).unwrap_or_default()
}

/// Decides who limited a test: the sender, the receiver, or the network.
pub fn judge(facts: &LimitFacts) -> (LimitedBy, String) {
    let busy = |ratio: Option<f64>| ratio.is_some_and(|r| r >= BUSY_THREAD_RATIO);
    if facts.udp {
        if let Some(offered) = facts.offered_bits_per_second.filter(|o| *o > 0.0) {
            let reached = facts.sent_bits_per_second / offered;
            if reached < SENDER_REACHED_RATIO {
                return (
                    LimitedBy::Sender,
                    format!(
                        "the sender reached only {} of the offered {} ({:.0} %){}: the test says nothing about the path above that",
                        mbit(facts.sent_bits_per_second),
                        mbit(offered),
                        reached * 100.0,
                        busy_note(facts.sender_busy)
                    ),
                );
            }
        }
        if facts.lost_percent < NEGLIGIBLE_LOSS_PERCENT {
            return (
                LimitedBy::None,
                format!(
                    "the path carried the offered {} with {:.2} % loss",
                    mbit(facts.sent_bits_per_second),
                    facts.lost_percent
                ),
            );
        }
        let dropped_at_receiver = facts.receiver_rcvbuf_errors.unwrap_or(0);
        if facts.lost_packets > 0 && dropped_at_receiver * 2 >= facts.lost_packets {
            return (
                LimitedBy::Receiver,
                format!(
                    "{dropped_at_receiver} of the {} lost datagrams were dropped at the receiver's full socket buffer{}: the receiving host could not keep up, so this loss is not the network's",
                    facts.lost_packets,
                    busy_note(facts.receiver_busy)
                ),
            );
        }
        if busy(facts.receiver_busy) {
            return (
                LimitedBy::Receiver,
                format!(
                    "{:.1} % loss with the receiver's busiest thread {:.0} % busy: the receiver, not the network, is the likely limit",
                    facts.lost_percent,
                    facts.receiver_busy.unwrap_or(0.0) * 100.0
                ),
            );
        }
        return (
            LimitedBy::Network,
            format!(
                "{:.1} % loss in transit at {} offered; the path delivered {}",
                facts.lost_percent,
                mbit(facts.sent_bits_per_second),
                mbit(facts.received_bits_per_second)
            ),
        );
    }
    if busy(facts.sender_busy) {
        return (
            LimitedBy::Sender,
            format!(
                "TCP reached {} with the sender's busiest thread {:.0} % busy: the sender's CPU is the limit",
                mbit(facts.received_bits_per_second),
                facts.sender_busy.unwrap_or(0.0) * 100.0
            ),
        );
    }
    if busy(facts.receiver_busy) {
        return (
            LimitedBy::Receiver,
            format!(
                "TCP reached {} with the receiver's busiest thread {:.0} % busy: the receiver's CPU is the limit",
                mbit(facts.received_bits_per_second),
                facts.receiver_busy.unwrap_or(0.0) * 100.0
            ),
        );
    }
    (
        LimitedBy::Network,
        format!(
            "TCP filled the path at {}; neither end was CPU-bound{}",
            mbit(facts.received_bits_per_second),
            busy_note(match (facts.sender_busy, facts.receiver_busy) {
                (Some(s), Some(r)) => Some(s.max(r)),
                (s, r) => s.or(r),
            })
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(offered: f64, sent: f64, lost_percent: f64, lost: u64) -> LimitFacts {
        LimitFacts {
            udp: true,
            offered_bits_per_second: Some(offered),
            sent_bits_per_second: sent,
            received_bits_per_second: sent * (1.0 - lost_percent / 100.0),
            lost_packets: lost,
            lost_percent,
            ..LimitFacts::default()
        }
    }

    #[test]
    fn a_slow_sender_is_named() {
        let (bound, why) = judge(&LimitFacts { sender_busy: Some(1.0), ..udp(1e9, 6e8, 0.0, 0) });
        assert_eq!(bound, LimitedBy::Sender);
        assert!(why.contains("600.0 Mbit/s") && why.contains("60 %"), "{why}");
    }

    #[test]
    fn clean_delivery_is_no_limit() {
        assert_eq!(judge(&udp(1e8, 1e8, 0.1, 10)).0, LimitedBy::None);
    }

    #[test]
    fn loss_at_the_receivers_socket_buffer_is_the_receivers() {
        let facts = LimitFacts { receiver_rcvbuf_errors: Some(40_000), ..udp(1e9, 1e9, 50.0, 42_000) };
        let (bound, why) = judge(&facts);
        assert_eq!(bound, LimitedBy::Receiver);
        assert!(why.contains("not the network's"), "{why}");
    }

    #[test]
    fn loss_in_transit_is_the_networks() {
        let facts =
            LimitFacts { receiver_rcvbuf_errors: Some(0), receiver_busy: Some(0.2), ..udp(2e8, 2e8, 50.0, 8_000) };
        assert_eq!(judge(&facts).0, LimitedBy::Network);
    }

    #[test]
    fn tcp_blames_a_saturated_end_before_the_network() {
        let base = LimitFacts { received_bits_per_second: 9e9, ..LimitFacts::default() };
        assert_eq!(judge(&LimitFacts { receiver_busy: Some(0.97), ..base }).0, LimitedBy::Receiver);
        assert_eq!(judge(&LimitFacts { sender_busy: Some(0.95), ..base }).0, LimitedBy::Sender);
        assert_eq!(judge(&LimitFacts { sender_busy: Some(0.3), ..base }).0, LimitedBy::Network);
    }
}
