//! iperf3's control protocol, as both plateau's client and plateau's agent speak it.
//!
//! A test runs over one TCP control connection plus one data connection (TCP) or
//! datagram flow (UDP) per stream:
//!
//! 1. the client sends a 37-byte cookie (36 printable characters and a NUL);
//! 2. the server drives the client with one-byte states: PARAM_EXCHANGE (the client
//!    answers with the test parameters as length-prefixed JSON), CREATE_STREAMS (the client
//!    opens each data connection and sends the cookie on it, or for UDP sends a 4-byte
//!    datagram and waits for a 4-byte answer), TEST_START, TEST_RUNNING;
//! 3. the client sends TEST_END when its timer fires; the server answers EXCHANGE_RESULTS,
//!    the client sends its results JSON and receives the server's, the server sends
//!    DISPLAY_RESULTS and the client ends with IPERF_DONE.
//!
//! A busy server answers the cookie with ACCESS_DENIED; a failing one with SERVER_ERROR
//! followed by two 32-bit big-endian numbers (iperf3's error code and errno). Length
//! prefixes are 32-bit big-endian. Stream ids in results are 1, 3, 4, 5, ... (iperf3
//! skips 2). UDP datagrams start with seconds and microseconds of the send time and a
//! packet counter, all big-endian (the counter is 64-bit when `udp_counters_64bit` is set).

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

/// Bytes in a cookie, including the trailing NUL.
pub const COOKIE_SIZE: usize = 37;
/// The largest JSON message accepted on the control connection.
const MAX_JSON_BYTES: u32 = 1 << 20;
/// What a UDP client sends to announce a stream: iperf3 writes a native-endian int,
/// and any 4 bytes do.
pub const UDP_CONNECT_MSG: [u8; 4] = 123_456_789u32.to_ne_bytes();
/// What the server answers (any 4 bytes do).
pub const UDP_CONNECT_REPLY: [u8; 4] = 987_654_321u32.to_ne_bytes();

/// iperf3's error codes (sent after SERVER_ERROR) that plateau sends or explains.
pub const ERROR_DURATION: i32 = 5;
/// Too many parallel streams.
pub const ERROR_NUM_STREAMS: i32 = 6;
/// Block size out of range.
pub const ERROR_BLOCK_SIZE: i32 = 7;
/// UDP block size out of range.
pub const ERROR_UDP_BLOCK_SIZE: i32 = 20;
/// The control connection closed unexpectedly.
pub const ERROR_CTRL_CLOSE: i32 = 109;
/// An unknown message arrived.
pub const ERROR_MESSAGE: i32 = 110;
/// The parameters could not be received.
pub const ERROR_RECV_PARAMS: i32 = 114;
/// The results could not be received.
pub const ERROR_RECV_RESULTS: i32 = 117;
/// A data stream could not be set up.
pub const ERROR_STREAM_LISTEN: i32 = 202;
/// A data stream could not be accepted.
pub const ERROR_STREAM_ACCEPT: i32 = 204;
/// plateau only: the UDP rate is over the agent's limit, or the test is otherwise refused.
pub const ERROR_PLATEAU_REFUSED: i32 = 1000;

/// One-byte protocol states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Server: streams are created, the test starts.
    TestStart,
    /// Server: data may flow.
    TestRunning,
    /// Client: the test time is over.
    TestEnd,
    /// Server: send the parameters.
    ParamExchange,
    /// Server: open the data streams.
    CreateStreams,
    /// Server: the server is going away.
    ServerTerminate,
    /// Client: the client is going away.
    ClientTerminate,
    /// Server: exchange results now.
    ExchangeResults,
    /// Server: results exchanged.
    DisplayResults,
    /// Client: all done.
    IperfDone,
    /// Server: busy with another test.
    AccessDenied,
    /// Server: an error follows (two 32-bit numbers).
    ServerError,
}

impl State {
    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        let value: i8 = match self {
            State::TestStart => 1,
            State::TestRunning => 2,
            State::TestEnd => 4,
            State::ParamExchange => 9,
            State::CreateStreams => 10,
            State::ServerTerminate => 11,
            State::ClientTerminate => 12,
            State::ExchangeResults => 13,
            State::DisplayResults => 14,
            State::IperfDone => 16,
            State::AccessDenied => -1,
            State::ServerError => -2,
        };
        value as u8
    }

    /// The state a byte stands for.
    pub fn from_byte(byte: u8) -> Option<State> {
        Some(match byte as i8 {
            1 => State::TestStart,
            2 => State::TestRunning,
            4 => State::TestEnd,
            9 => State::ParamExchange,
            10 => State::CreateStreams,
            11 => State::ServerTerminate,
            12 => State::ClientTerminate,
            13 => State::ExchangeResults,
            14 => State::DisplayResults,
            16 => State::IperfDone,
            -1 => State::AccessDenied,
            -2 => State::ServerError,
            _ => return None,
        })
    }
}

/// Errors on the control connection.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The socket failed or closed.
    #[error("control connection: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent a byte that is no known state.
    #[error("the peer sent an unknown protocol state {0}")]
    UnknownState(u8),
    /// The peer sent JSON that does not parse or is too large.
    #[error("the peer sent an invalid message: {0}")]
    BadMessage(String),
}

/// Reads one state byte.
pub fn read_state(reader: &mut impl Read) -> Result<State, WireError> {
    let mut byte = [0u8; 1];
    reader.read_exact(&mut byte)?;
    State::from_byte(byte[0]).ok_or(WireError::UnknownState(byte[0]))
}

/// Writes one state byte.
pub fn write_state(writer: &mut impl Write, state: State) -> Result<(), WireError> {
    writer.write_all(&[state.byte()])?;
    Ok(())
}

/// Writes a value as length-prefixed JSON.
pub fn write_json<T: Serialize>(writer: &mut impl Write, value: &T) -> Result<(), WireError> {
    let text = serde_json::to_vec(value).map_err(|err| WireError::BadMessage(err.to_string()))?;
    writer.write_all(&(text.len() as u32).to_be_bytes())?;
    writer.write_all(&text)?;
    Ok(())
}

/// Reads length-prefixed JSON.
pub fn read_json<T: for<'de> Deserialize<'de>>(reader: &mut impl Read) -> Result<T, WireError> {
    let mut length = [0u8; 4];
    reader.read_exact(&mut length)?;
    let length = u32::from_be_bytes(length);
    if length > MAX_JSON_BYTES {
        return Err(WireError::BadMessage(format!("{length}-byte message is too large")));
    }
    let mut text = vec![0u8; length as usize];
    reader.read_exact(&mut text)?;
    serde_json::from_slice(&text).map_err(|err| WireError::BadMessage(err.to_string()))
}

/// A fresh random cookie: 36 characters from iperf3's alphabet.
pub fn new_cookie() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rng();
    (0..COOKIE_SIZE - 1).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// The cookie as sent on the wire: its bytes and a NUL, padded to 37 bytes.
pub fn cookie_bytes(cookie: &str) -> [u8; COOKIE_SIZE] {
    let mut bytes = [0u8; COOKIE_SIZE];
    let text = cookie.as_bytes();
    let n = text.len().min(COOKIE_SIZE - 1);
    bytes[..n].copy_from_slice(&text[..n]);
    bytes
}

/// Parses a cookie as read from the wire (up to the first NUL).
pub fn cookie_from_bytes(bytes: &[u8; COOKIE_SIZE]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(COOKIE_SIZE);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The test parameters the client sends after PARAM_EXCHANGE (iperf3's field names).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Params {
    /// Set for a TCP test.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp: bool,
    /// Set for a UDP test.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub udp: bool,
    /// Seconds at the start left out of the results.
    #[serde(default)]
    pub omit: u32,
    /// Test length in seconds.
    #[serde(default)]
    pub time: u32,
    /// Bytes to send instead of a time (0: use time).
    #[serde(default)]
    pub num: u64,
    /// Blocks to send instead of a time (0: use time).
    #[serde(default)]
    pub blockcount: u64,
    /// Number of streams.
    #[serde(default = "one")]
    pub parallel: u32,
    /// The server sends, the client receives.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reverse: bool,
    /// Both directions at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bidirectional: bool,
    /// Bytes per write (TCP) or per datagram (UDP).
    #[serde(default)]
    pub len: u32,
    /// Target rate per stream in bits/s (UDP; 0 means unlimited).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bandwidth: u64,
    /// Pacing timer in microseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pacing_timer: u64,
    /// 64-bit UDP packet counters.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub udp_counters_64bit: bool,
    /// The client's version string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_version: String,
}

fn one() -> u32 {
    1
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// One stream's results as exchanged at the end of a test.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StreamResults {
    /// Stream id (1, 3, 4, ...).
    pub id: u32,
    /// Bytes this side sent (as sender) or received (as receiver).
    pub bytes: u64,
    /// TCP retransmits as sender; -1 when unknown.
    #[serde(deserialize_with = "lenient_i64")]
    pub retransmits: i64,
    /// UDP jitter in seconds, as receiver.
    pub jitter: f64,
    /// UDP packets lost, as receiver.
    #[serde(deserialize_with = "lenient_i64")]
    pub errors: i64,
    /// UDP packets sent (sender) or highest sequence seen (receiver).
    #[serde(deserialize_with = "lenient_i64")]
    pub packets: i64,
    /// Seconds from the stream's start to its start (always 0).
    #[serde(default)]
    pub start_time: f64,
    /// Seconds from the stream's start to its end.
    #[serde(default)]
    pub end_time: f64,
    /// plateau only: UDP datagrams that arrived behind a later one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plateau_out_of_order: Option<u64>,
    /// plateau only: UDP datagrams that arrived twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plateau_duplicates: Option<u64>,
}

/// One side's results as exchanged at the end of a test.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Results {
    /// Process CPU use during the test, percent of one core.
    pub cpu_util_total: f64,
    /// User part.
    pub cpu_util_user: f64,
    /// System part.
    pub cpu_util_system: f64,
    /// 1 when this side sent TCP and knows retransmits, -1 as receiver, 0 otherwise.
    #[serde(deserialize_with = "lenient_i64")]
    pub sender_has_retransmits: i64,
    /// TCP congestion control in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub congestion_used: Option<String>,
    /// Per-stream results.
    pub streams: Vec<StreamResults>,
    /// plateau only: how busy the busiest data thread was (0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plateau_busiest_thread_ratio: Option<f64>,
    /// plateau only: UDP datagrams this host dropped for a full socket buffer during the
    /// test (RcvbufErrors), i.e. loss at the receiver rather than in the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plateau_udp_rcvbuf_errors: Option<u64>,
}

/// Reads an integer the way iperf3 writes it: some versions write -1 as an unsigned
/// 64-bit number (18446744073709551615) or as a float.
fn lenient_i64<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = serde_json::Number::deserialize(deserializer)?;
    Ok(match (value.as_i64(), value.as_u64(), value.as_f64()) {
        (Some(n), _, _) => n,
        (None, Some(u), _) if u > i64::MAX as u64 => -((u64::MAX - u) as i64) - 1,
        (_, _, Some(f)) => f as i64,
        _ => -1,
    })
}

/// The stream id iperf3 gives the `index`-th stream (0-based): 1, 3, 4, 5, ...
pub fn stream_id(index: usize) -> u32 {
    if index == 0 { 1 } else { index as u32 + 2 }
}

/// The header at the start of every UDP test datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpHeader {
    /// Send time, seconds part (Unix time).
    pub sec: u32,
    /// Send time, microseconds part.
    pub usec: u32,
    /// Packet counter, starting at 1.
    pub count: u64,
}

impl UdpHeader {
    /// Bytes the header takes with 32-bit (12) or 64-bit (16) counters.
    pub fn len(counters_64bit: bool) -> usize {
        if counters_64bit { 16 } else { 12 }
    }

    /// Writes the header at the start of `buffer`.
    pub fn write(&self, buffer: &mut [u8], counters_64bit: bool) {
        buffer[0..4].copy_from_slice(&self.sec.to_be_bytes());
        buffer[4..8].copy_from_slice(&self.usec.to_be_bytes());
        if counters_64bit {
            buffer[8..16].copy_from_slice(&self.count.to_be_bytes());
        } else {
            buffer[8..12].copy_from_slice(&(self.count as u32).to_be_bytes());
        }
    }

    /// Reads the header from the start of a datagram; `None` if it is too short.
    pub fn read(datagram: &[u8], counters_64bit: bool) -> Option<UdpHeader> {
        if datagram.len() < UdpHeader::len(counters_64bit) {
            return None;
        }
        let word = |at: usize| u32::from_be_bytes(datagram[at..at + 4].try_into().unwrap());
        let count =
            if counters_64bit { u64::from_be_bytes(datagram[8..16].try_into().unwrap()) } else { word(8) as u64 };
        Some(UdpHeader { sec: word(0), usec: word(4), count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_including_negative_ones() {
        for state in
            [State::TestStart, State::ExchangeResults, State::IperfDone, State::AccessDenied, State::ServerError]
        {
            assert_eq!(State::from_byte(state.byte()), Some(state));
        }
        assert_eq!(State::AccessDenied.byte(), 0xff);
        assert_eq!(State::from_byte(3), None);
    }

    #[test]
    fn json_is_length_prefixed_big_endian() {
        let mut wire = Vec::new();
        write_json(&mut wire, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(&wire[..4], &[0, 0, 0, 7]);
        let back: serde_json::Value = read_json(&mut wire.as_slice()).unwrap();
        assert_eq!(back["a"], 1);
        let oversized = [0xffu8, 0xff, 0xff, 0xff];
        assert!(matches!(read_json::<serde_json::Value>(&mut oversized.as_slice()), Err(WireError::BadMessage(_))));
    }

    #[test]
    fn cookies_are_36_characters_and_a_nul() {
        let cookie = new_cookie();
        assert_eq!(cookie.len(), 36);
        let bytes = cookie_bytes(&cookie);
        assert_eq!(bytes[36], 0);
        assert_eq!(cookie_from_bytes(&bytes), cookie);
    }

    #[test]
    fn stream_ids_skip_two_as_iperf3_does() {
        assert_eq!((0..4).map(stream_id).collect::<Vec<_>>(), [1, 3, 4, 5]);
    }

    #[test]
    fn udp_headers_in_both_counter_widths() {
        let header = UdpHeader { sec: 1_700_000_000, usec: 123_456, count: 42 };
        for wide in [false, true] {
            let mut buffer = [0u8; 32];
            header.write(&mut buffer, wide);
            assert_eq!(UdpHeader::read(&buffer, wide), Some(header));
        }
        assert_eq!(UdpHeader::read(&[0u8; 11], false), None);
    }

    #[test]
    fn results_from_iperf3_with_unsigned_minus_one() {
        let text = r#"{"cpu_util_total":1.5,"cpu_util_user":1,"cpu_util_system":0.5,"sender_has_retransmits":18446744073709551615,"streams":[{"id":1,"bytes":100,"retransmits":18446744073709551615,"jitter":0,"errors":0,"packets":0,"start_time":0,"end_time":2.0}]}"#;
        let results: Results = serde_json::from_str(text).unwrap();
        assert_eq!(results.sender_has_retransmits, -1);
        assert_eq!(results.streams[0].retransmits, -1);
        assert_eq!(results.streams[0].end_time, 2.0);
    }

    #[test]
    fn params_use_iperf3_field_names() {
        let params = Params { tcp: true, time: 10, parallel: 2, len: 131072, ..Params::default() };
        let json = serde_json::to_value(&params).unwrap();
        assert_eq!(json["tcp"], true);
        assert_eq!(json["parallel"], 2);
        assert!(json.get("udp").is_none());
        let from_iperf3: Params = serde_json::from_str(
            r#"{"udp":true,"omit":0,"time":2,"num":0,"blockcount":0,"parallel":1,"len":1460,"bandwidth":100000000,"pacing_timer":1000,"client_version":"3.12"}"#,
        )
        .unwrap();
        assert!(from_iperf3.udp);
        assert_eq!(from_iperf3.bandwidth, 100_000_000);
    }
}
