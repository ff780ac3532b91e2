//! The client side of a network test: connects to a plateau agent's data port or a
//! stock `iperf3 -s`, runs the test, and builds the report.
//!
//! Every wait is bounded: connecting (5 s), each protocol step (10 s), and the test
//! itself (its length plus a grace period), so a dead or silent peer gives an error
//! that names it, never a hang.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::kernel;
use super::report::{
    Connected, ConnectingTo, CpuUtilization, End, EndStream, Interval, LimitFacts, NetReport, PlateauFindings, Segment,
    Start, TestStart, Timestamp, judge,
};
use super::streams::{self, Role, StreamHandle, StreamSettings, UdpPeer};
use super::tally::{self, Measured, Snapshot};
use super::wire::{self, Results, State};
use super::{Endpoint, NetError, NetTestConfig, Protocol};
use crate::cancel::Cancel;

/// Time allowed for connecting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for each protocol step outside the test itself.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long datagrams in flight get to arrive before the test is ended.
const UDP_DRAIN: Duration = Duration::from_millis(50);
/// Socket buffer asked for on UDP sockets, so that bursts are not lost at this end.
const UDP_SOCKET_BUFFER: usize = 4 << 20;

/// Runs one test against `endpoint`, calling `on_interval` as each interval ends.
pub fn run_test(
    endpoint: &Endpoint,
    config: &NetTestConfig,
    cancel: &Cancel,
    on_interval: &mut dyn FnMut(&Interval),
) -> Result<NetReport, NetError> {
    let addr = resolve(&endpoint.host, endpoint.port)?;
    let display = format!("{}:{}", endpoint.host, endpoint.port);
    let protocol_error = |reason: String| NetError::Protocol { addr: display.clone(), reason };
    let mut control = connect_tcp(addr)?;
    control.set_nodelay(true).ok();
    set_timeouts(&control, STEP_TIMEOUT);
    let cookie = endpoint.cookie.clone().unwrap_or_else(wire::new_cookie);
    let io = |context: &'static str| {
        let display = display.clone();
        move |err: wire::WireError| NetError::Protocol { addr: display, reason: format!("{context}: {err}") }
    };
    control.write_all(&wire::cookie_bytes(&cookie)).map_err(|err| io("sending the cookie")(err.into()))?;

    let started_at = SystemTime::now();
    let mut streams: Vec<StreamHandle> = Vec::new();
    let mut pending: Vec<PendingStream> = Vec::new();
    // Senders stop when the time is up; receivers keep reading until the results are
    // due, so that datagrams still in flight are counted rather than taken as lost.
    let stop_send = Arc::new(AtomicBool::new(false));
    let stop_receive = Arc::new(AtomicBool::new(false));
    let mut run: Option<RunOutcome> = None;
    let mut remote: Option<Results> = None;
    let mut connected = Vec::new();

    loop {
        let state = match wire::read_state(&mut control) {
            Ok(state) => state,
            Err(wire::WireError::Io(err)) if err.kind() == ErrorKind::UnexpectedEof => {
                return Err(protocol_error(match run {
                    None => {
                        "the server closed the connection (a plateau agent does this for an unknown or expired cookie)"
                            .into()
                    }
                    Some(_) => "the server closed the connection before the results".into(),
                }));
            }
            Err(err) => return Err(io("waiting for the server")(err)),
        };
        match state {
            State::ParamExchange => {
                wire::write_json(&mut control, &config.params()).map_err(io("sending parameters"))?
            }
            State::CreateStreams => {
                pending = create_streams(addr, &cookie, config).map_err(&protocol_error)?;
                connected = pending.iter().enumerate().map(|(index, stream)| stream.connected(index)).collect();
            }
            State::TestStart => {}
            State::TestRunning => {
                streams = start_streams(std::mem::take(&mut pending), config, &stop_send, &stop_receive);
                let outcome = run_intervals(&mut control, &streams, config, cancel, on_interval);
                stop_send.store(true, Ordering::Relaxed);
                let mut outcome = match outcome {
                    Ok(outcome) => outcome,
                    Err(err) => {
                        stop_receive.store(true, Ordering::Relaxed);
                        for stream in &mut streams {
                            stream.join();
                        }
                        if matches!(err, NetError::Cancelled) {
                            let _ = wire::write_state(&mut control, State::ClientTerminate);
                        }
                        return Err(err);
                    }
                };
                outcome.measured.outcomes = join_role(&mut streams, Role::Sender);
                if config.protocol == Protocol::Udp && !outcome.measured.outcomes.is_empty() {
                    std::thread::sleep(UDP_DRAIN);
                }
                wire::write_state(&mut control, State::TestEnd).map_err(io("ending the test"))?;
                run = Some(outcome);
            }
            State::ExchangeResults => {
                let Some(run) = &mut run else {
                    return Err(protocol_error("results asked for before the test ran".into()));
                };
                stop_receive.store(true, Ordering::Relaxed);
                let received = join_role(&mut streams, Role::Receiver);
                let measured = &mut run.measured;
                measured.outcomes.extend(received);
                measured.last = streams.iter().map(Snapshot::take).collect();
                measured.rcvbuf_errors.1 = crate::sampler::raw::udp_rcvbuf_errors_now();
                let results = tally::local_results(&streams, config.protocol == Protocol::Udp, measured);
                wire::write_json(&mut control, &results).map_err(io("sending results"))?;
                remote = Some(wire::read_json(&mut control).map_err(io("reading the server's results"))?);
            }
            State::DisplayResults => {
                let _ = wire::write_state(&mut control, State::IperfDone);
                break;
            }
            State::AccessDenied => return Err(NetError::Busy(display)),
            State::ServerError => return Err(server_error(&mut control, &display)),
            State::ServerTerminate => {
                return Err(protocol_error("the server ended the test early".into()));
            }
            other => {
                return Err(protocol_error(format!("unexpected message {other:?} from the server")));
            }
        }
    }

    let (Some(run), Some(remote)) = (run, remote) else {
        return Err(protocol_error("the server ended the test without results".into()));
    };
    let receiver_is_local = addr.ip().is_loopback();
    Ok(build_report(endpoint, config, &cookie, started_at, connected, &streams, &run, &remote, receiver_is_local))
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, NetError> {
    let resolve_error = |reason: String| NetError::Resolve { host: host.to_string(), reason };
    (host, port)
        .to_socket_addrs()
        .map_err(|err| resolve_error(err.to_string()))?
        .next()
        .ok_or_else(|| resolve_error("no address".into()))
}

fn connect_tcp(addr: SocketAddr) -> Result<TcpStream, NetError> {
    TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|err| NetError::Connect {
        addr: addr.to_string(),
        reason: match err.kind() {
            ErrorKind::ConnectionRefused => {
                "connection refused: nothing listens on that port (is the server running?)".into()
            }
            ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                format!(
                    "no answer within {} s: the host is down or a firewall drops the traffic",
                    CONNECT_TIMEOUT.as_secs()
                )
            }
            _ => err.to_string(),
        },
    })
}

fn set_timeouts(socket: &TcpStream, timeout: Duration) {
    let _ = socket.set_read_timeout(Some(timeout));
    let _ = socket.set_write_timeout(Some(timeout));
}

fn server_error(control: &mut TcpStream, display: &str) -> NetError {
    let mut codes = [0u8; 8];
    let message = match control.read_exact(&mut codes) {
        Ok(()) => {
            let code = i32::from_be_bytes(codes[..4].try_into().unwrap());
            let errno = i32::from_be_bytes(codes[4..].try_into().unwrap());
            let os =
                if errno != 0 { format!(" ({})", std::io::Error::from_raw_os_error(errno)) } else { String::new() };
            format!("{}{os}", describe_iperf3_error(code))
        }
        Err(_) => "an unspecified error".to_string(),
    };
    NetError::Server { addr: display.to_string(), message }
}

/// Words for the iperf3 error codes a server sends most often.
pub fn describe_iperf3_error(code: i32) -> String {
    let text = match code {
        wire::ERROR_DURATION => "the test is longer than it allows",
        wire::ERROR_NUM_STREAMS => "the test has more parallel streams than it allows",
        wire::ERROR_BLOCK_SIZE | wire::ERROR_UDP_BLOCK_SIZE => "the block size is out of its range",
        wire::ERROR_RECV_PARAMS => "it could not read the test parameters",
        wire::ERROR_PLATEAU_REFUSED => "it refused the test (rate, length or protocol beyond its limits)",
        wire::ERROR_STREAM_ACCEPT => "it could not accept a data stream",
        wire::ERROR_STREAM_LISTEN => "it could not listen for data streams",
        wire::ERROR_RECV_RESULTS => "it could not read our results",
        wire::ERROR_CTRL_CLOSE => "the control connection closed",
        wire::ERROR_MESSAGE => "it received an unexpected message",
        _ => return format!("iperf3 error code {code}"),
    };
    format!("{text} (iperf3 error code {code})")
}

/// A data connection opened during CREATE_STREAMS, not yet moving data.
enum PendingStream {
    Tcp(Role, TcpStream),
    Udp(Role, UdpSocket),
}

impl PendingStream {
    fn connected(&self, index: usize) -> Connected {
        let (local, remote) = match self {
            PendingStream::Tcp(_, s) => (s.local_addr().ok(), s.peer_addr().ok()),
            PendingStream::Udp(_, s) => (s.local_addr().ok(), s.peer_addr().ok()),
        };
        Connected {
            socket: wire::stream_id(index),
            local_host: local.map(|a| a.ip().to_string()).unwrap_or_default(),
            local_port: local.map(|a| a.port()).unwrap_or_default(),
            remote_host: remote.map(|a| a.ip().to_string()).unwrap_or_default(),
            remote_port: remote.map(|a| a.port()).unwrap_or_default(),
        }
    }
}

/// The role of stream `index` at the client: with `--bidir` the first half sends and
/// the second half receives, as iperf3 orders them.
pub fn client_role(config: &NetTestConfig, index: usize) -> Role {
    if config.bidir {
        if index < config.parallel as usize { Role::Sender } else { Role::Receiver }
    } else if config.reverse {
        Role::Receiver
    } else {
        Role::Sender
    }
}

fn create_streams(addr: SocketAddr, cookie: &str, config: &NetTestConfig) -> Result<Vec<PendingStream>, String> {
    (0..config.n_streams())
        .map(|index| {
            let role = client_role(config, index);
            match config.protocol {
                Protocol::Tcp => {
                    let mut socket = connect_tcp(addr).map_err(|err| err.to_string())?;
                    socket
                        .write_all(&wire::cookie_bytes(cookie))
                        .map_err(|err| format!("opening data stream {}: {err}", index + 1))?;
                    Ok(PendingStream::Tcp(role, socket))
                }
                Protocol::Udp => udp_connect(addr).map(|socket| PendingStream::Udp(role, socket)),
            }
        })
        .collect()
}

/// Announces a UDP stream: one datagram, one answer (iperf3 waits the same way).
fn udp_connect(addr: SocketAddr) -> Result<UdpSocket, String> {
    let local: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
    let socket = UdpSocket::bind(local).map_err(|err| format!("binding a UDP socket: {err}"))?;
    enlarge_udp_buffers(&socket);
    socket.connect(addr).map_err(|err| format!("connecting UDP to {addr}: {err}"))?;
    socket.set_read_timeout(Some(CONNECT_TIMEOUT)).ok();
    socket.send(&wire::UDP_CONNECT_MSG).map_err(|err| format!("announcing a UDP stream to {addr}: {err}"))?;
    let mut reply = [0u8; 4];
    match socket.recv(&mut reply) {
        Ok(_) => Ok(socket),
        Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(format!(
            "no answer to the UDP stream announcement within {} s: UDP to {addr} is blocked",
            CONNECT_TIMEOUT.as_secs()
        )),
        Err(err) => Err(format!("announcing a UDP stream to {addr}: {err}")),
    }
}

/// Asks for large UDP socket buffers; the kernel caps them at net.core.[rw]mem_max.
pub fn enlarge_udp_buffers(socket: &UdpSocket) {
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size(socket, UDP_SOCKET_BUFFER);
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(socket, UDP_SOCKET_BUFFER);
}

/// Joins the threads of the streams in `role`.
fn join_role(streams: &mut [StreamHandle], role: Role) -> Vec<(Role, streams::StreamOutcome)> {
    streams.iter_mut().filter(|s| s.role == role).map(|s| (role, s.join())).collect()
}

fn start_streams(
    pending: Vec<PendingStream>,
    config: &NetTestConfig,
    stop_send: &Arc<AtomicBool>,
    stop_receive: &Arc<AtomicBool>,
) -> Vec<StreamHandle> {
    let settings =
        StreamSettings { len: config.len as usize, rate_bits_per_sec: config.rate_bits_per_sec, counters_64bit: false };
    pending
        .into_iter()
        .enumerate()
        .map(|(index, stream)| match stream {
            PendingStream::Tcp(Role::Sender, socket) => {
                streams::start_tcp(index, Role::Sender, socket, settings, Arc::clone(stop_send))
            }
            PendingStream::Tcp(Role::Receiver, socket) => {
                streams::start_tcp(index, Role::Receiver, socket, settings, Arc::clone(stop_receive))
            }
            PendingStream::Udp(Role::Sender, socket) => {
                streams::start_udp_sender(index, UdpPeer::Connected(Arc::new(socket)), settings, Arc::clone(stop_send))
            }
            PendingStream::Udp(Role::Receiver, socket) => {
                streams::start_udp_receiver(index, Arc::new(socket), settings, Arc::clone(stop_receive))
            }
        })
        .collect()
}

/// What the running phase measured, and its reporting intervals.
#[derive(Debug, Default)]
struct RunOutcome {
    measured: Measured,
    intervals: Vec<Interval>,
}

/// Reports intervals until the test time is over; watches the control connection for
/// a server that gives up, and `cancel` for the user.
fn run_intervals(
    control: &mut TcpStream,
    streams: &[StreamHandle],
    config: &NetTestConfig,
    cancel: &Cancel,
    on_interval: &mut dyn FnMut(&Interval),
) -> Result<RunOutcome, NetError> {
    let udp = config.protocol == Protocol::Udp;
    let cpu_before = kernel::process_cpu();
    let rcvbuf_before = crate::sampler::raw::udp_rcvbuf_errors_now();
    let start = Instant::now();
    let omit = Duration::from_secs(config.omit_secs as u64);
    let total = omit + Duration::from_secs(config.time_secs as u64);
    let mut boundaries: Vec<Duration> = Vec::new();
    let mut at = Duration::ZERO;
    while at < total {
        // Interval boundaries fall on multiples of the interval, and on the end of the
        // omitted start so that no interval straddles it.
        let next = (at + config.interval).min(total);
        let next = if at < omit && next > omit { omit } else { next };
        boundaries.push(next);
        at = next;
    }
    let mut previous: Vec<Snapshot> = streams.iter().map(Snapshot::take).collect();
    let mut baseline = if omit.is_zero() { previous.clone() } else { Vec::new() };
    let mut intervals = Vec::new();
    let mut span_start = 0.0;
    for boundary in boundaries {
        while start.elapsed() < boundary {
            if cancel.is_cancelled() {
                return Err(NetError::Cancelled);
            }
            if let Some(state) = poll_control(control)? {
                return Err(match state {
                    State::ServerError => server_error(control, &peer_name(control)),
                    other => NetError::Protocol {
                        addr: peer_name(control),
                        reason: format!("the server sent {other:?} during the test"),
                    },
                });
            }
            let remaining = boundary.saturating_sub(start.elapsed());
            std::thread::sleep(remaining.min(Duration::from_millis(50)));
        }
        let now: Vec<Snapshot> = streams.iter().map(Snapshot::take).collect();
        let span = (span_start, boundary.as_secs_f64());
        let omitted = (!omit.is_zero()).then_some(boundary <= omit);
        let segments: Vec<Segment> = streams
            .iter()
            .zip(previous.iter().zip(&now))
            .map(|(s, (b, a))| tally::segment(s, udp, b, a, span, omitted))
            .collect();
        let interval = interval_of(config, segments, span);
        on_interval(&interval);
        intervals.push(interval);
        if boundary == omit {
            baseline = now.clone();
        }
        previous = now;
        span_start = boundary.as_secs_f64();
    }
    Ok(RunOutcome {
        measured: Measured {
            baseline,
            last: previous,
            measured: total - omit,
            wall: start.elapsed(),
            process_cpu: kernel::process_cpu().since(cpu_before),
            rcvbuf_errors: (rcvbuf_before, None),
            outcomes: Vec::new(),
        },
        intervals,
    })
}

fn interval_of(config: &NetTestConfig, segments: Vec<Segment>, span: (f64, f64)) -> Interval {
    let first_role = client_role(config, 0) == Role::Sender;
    if config.bidir {
        let (forward, backward) = segments.split_at(config.parallel as usize);
        Interval {
            sum: tally::sum(forward, span, first_role),
            sum_bidir_reverse: Some(tally::sum(backward, span, !first_role)),
            streams: segments,
        }
    } else {
        Interval { sum: tally::sum(&segments, span, first_role), sum_bidir_reverse: None, streams: segments }
    }
}

fn peer_name(control: &TcpStream) -> String {
    control.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "the server".into())
}

/// A state byte the server sent unasked, if any, without blocking.
fn poll_control(control: &mut TcpStream) -> Result<Option<State>, NetError> {
    let mut byte = [0u8; 1];
    control.set_nonblocking(true).ok();
    let read = control.read(&mut byte);
    control.set_nonblocking(false).ok();
    match read {
        Ok(0) => Err(NetError::Protocol {
            addr: peer_name(control),
            reason: "the server closed the connection during the test".into(),
        }),
        Ok(_) => Ok(Some(State::from_byte(byte[0]).unwrap_or(State::ServerTerminate))),
        Err(err) if err.kind() == ErrorKind::WouldBlock => Ok(None),
        Err(err) => Err(NetError::Protocol { addr: peer_name(control), reason: format!("control connection: {err}") }),
    }
}

/// Totals of one direction, from both ends' results.
struct Direction {
    sent: Segment,
    received: Segment,
    udp_sum: Option<Segment>,
    facts: LimitFacts,
    duplicates: Option<u64>,
}

/// What both ends said at the end of a test: the inputs of each direction's totals.
struct Ends<'a> {
    config: &'a NetTestConfig,
    run: &'a Measured,
    remote: &'a Results,
    receiver_is_local: bool,
}

impl Ends<'_> {
    /// The totals of the streams in `range` (one direction), their per-stream ends pushed
    /// onto `end_streams`, and the facts that say what limited them.
    fn direction(
        &self,
        streams: &[StreamHandle],
        range: std::ops::Range<usize>,
        end_streams: &mut Vec<EndStream>,
    ) -> Direction {
        let (config, run, remote) = (self.config, self.run, self.remote);
        let udp = config.protocol == Protocol::Udp;
        let measured = run.measured.as_secs_f64();
        let mut sent_parts = Vec::new();
        let mut received_parts = Vec::new();
        let mut udp_parts = Vec::new();
        let mut duplicates = None;
        let local_role = streams[range.start].role;
        for index in range.clone() {
            let id = wire::stream_id(index);
            let theirs = remote.streams.iter().find(|s| s.id == id).cloned().unwrap_or_default();
            let (before, after) = (&run.baseline[index], &run.last[index]);
            let end = tally::stream_end(index, local_role, udp, config.len as usize, before, after, measured, &theirs);
            if let Some(d) = end.duplicates {
                *duplicates.get_or_insert(0) += d;
            }
            match end.udp {
                Some(udp_segment) => {
                    end_streams.push(EndStream { udp: Some(udp_segment.clone()), ..EndStream::default() });
                    udp_parts.push(udp_segment);
                }
                None => end_streams.push(EndStream {
                    sender: Some(end.sender.clone()),
                    receiver: Some(end.receiver.clone()),
                    udp: None,
                }),
            }
            sent_parts.push(end.sender);
            received_parts.push(end.receiver);
        }
        let sent = tally::sum(&sent_parts, (0.0, measured), true);
        let received_seconds = received_parts.iter().map(|s| s.seconds).fold(0.0, f64::max).max(1e-9);
        let received = tally::sum(&received_parts, (0.0, received_seconds), false);
        let udp_sum = udp.then(|| tally::sum(&udp_parts, (0.0, measured), true));
        let local_busy = |role: Role| tally::busiest_thread(&run.outcomes, Some(role));
        // iperf3 reports its process CPU; it moves data on one thread, so that is the
        // busiest thread's share too.
        let remote_busy = remote.plateau_busiest_thread_ratio.or(Some(remote.cpu_util_total / 100.0));
        let (sender_busy, receiver_busy) = match local_role {
            Role::Sender => (local_busy(Role::Sender), remote_busy),
            Role::Receiver => (remote_busy, local_busy(Role::Receiver)),
        };
        let facts = LimitFacts {
            udp,
            offered_bits_per_second: (udp && config.rate_bits_per_sec > 0)
                .then(|| config.rate_bits_per_sec as f64 * range.len() as f64),
            sent_bits_per_second: sent.bits_per_second,
            received_bits_per_second: received.bits_per_second,
            lost_packets: udp_sum.as_ref().and_then(|s| s.lost_packets).unwrap_or(0),
            lost_percent: udp_sum.as_ref().and_then(|s| s.lost_percent).unwrap_or(0.0),
            sender_busy,
            receiver_busy,
            // An iperf3 server on this very host drops into this host's counters.
            receiver_rcvbuf_errors: match local_role {
                Role::Sender => {
                    remote.plateau_udp_rcvbuf_errors.or(if self.receiver_is_local { run.rcvbuf_errors() } else { None })
                }
                Role::Receiver => run.rcvbuf_errors(),
            },
        };
        Direction { sent, received, udp_sum, facts, duplicates }
    }
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    endpoint: &Endpoint,
    config: &NetTestConfig,
    cookie: &str,
    started_at: SystemTime,
    connected: Vec<Connected>,
    streams: &[StreamHandle],
    run: &RunOutcome,
    remote: &Results,
    receiver_is_local: bool,
) -> NetReport {
    let udp = config.protocol == Protocol::Udp;
    let intervals = &run.intervals;
    let run = &run.measured;
    let ends = Ends { config, run, remote, receiver_is_local };
    let mut end_streams = Vec::new();
    // With --bidir the first half of the streams goes one way, the second the other.
    let p = config.parallel as usize;
    let halves = if config.bidir { [Some(0..p), Some(p..2 * p)] } else { [Some(0..streams.len()), None] };
    let directions: Vec<Direction> =
        halves.into_iter().flatten().map(|range| ends.direction(streams, range, &mut end_streams)).collect();

    let first = &directions[0];
    let (limited_by, explanation) = judge(&first.facts);
    let cpu_percent = |cpu: Duration| 100.0 * cpu.as_secs_f64() / run.wall.as_secs_f64().max(1e-9);
    let timesecs = started_at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let target_bitrate = udp.then_some(config.rate_bits_per_sec);
    NetReport {
        start: Start {
            connected,
            version: concat!("plateau ", env!("CARGO_PKG_VERSION")).to_string(),
            system_info: system_info(),
            timestamp: Timestamp { time: humantime::format_rfc3339_seconds(started_at).to_string(), timesecs },
            connecting_to: ConnectingTo { host: endpoint.host.clone(), port: endpoint.port },
            cookie: cookie.to_string(),
            target_bitrate,
            test_start: TestStart {
                protocol: config.protocol.to_string(),
                num_streams: config.parallel,
                blksize: config.len,
                omit: config.omit_secs,
                duration: config.time_secs,
                bytes: 0,
                blocks: 0,
                reverse: u32::from(config.reverse),
                bidir: u32::from(config.bidir),
                tos: 0,
                target_bitrate,
            },
        },
        intervals: intervals.clone(),
        end: End {
            streams: end_streams,
            sum_sent: first.sent.clone(),
            sum_received: first.received.clone(),
            sum: first.udp_sum.clone(),
            sum_sent_bidir_reverse: directions.get(1).map(|d| d.sent.clone()),
            sum_received_bidir_reverse: directions.get(1).map(|d| d.received.clone()),
            cpu_utilization_percent: CpuUtilization {
                host_total: cpu_percent(run.process_cpu.total()),
                host_user: cpu_percent(run.process_cpu.user),
                host_system: cpu_percent(run.process_cpu.system),
                remote_total: remote.cpu_util_total,
                remote_user: remote.cpu_util_user,
                remote_system: remote.cpu_util_system,
            },
        },
        plateau: PlateauFindings {
            target: format!("{}:{}", endpoint.host, endpoint.port),
            peer: endpoint.peer.clone(),
            from: None,
            limited_by,
            explanation,
            received_bits_per_second: first.received.bits_per_second,
            offered_bits_per_second: first.facts.offered_bits_per_second,
            sender_reached_ratio: first
                .facts
                .offered_bits_per_second
                .map(|offered| first.sent.bits_per_second / offered.max(1.0)),
            sender_busiest_thread_ratio: first.facts.sender_busy,
            receiver_busiest_thread_ratio: first.facts.receiver_busy,
            receiver_udp_rcvbuf_errors: first.facts.receiver_rcvbuf_errors,
            duplicates: first.duplicates,
        },
    }
}

fn system_info() -> String {
    let uname = rustix::system::uname();
    format!(
        "{} {} {} {}",
        uname.sysname().to_string_lossy(),
        uname.nodename().to_string_lossy(),
        uname.release().to_string_lossy(),
        uname.machine().to_string_lossy()
    )
}
