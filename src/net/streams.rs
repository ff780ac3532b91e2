//! The data streams of a network test: one thread per stream, blocking sockets, live
//! counters that the reporting thread reads at every interval.
//!
//! UDP sending is paced against absolute deadlines (datagram k is due at
//! `start + k · len · 8 / rate`), so a slow moment is caught up rather than lost, as
//! iperf3's pacing does. Each thread measures its own CPU time, so a test can tell when
//! a sender or receiver thread, not the network, was the limit.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::kernel::{self, CpuTimes};
use super::udp_stats::UdpReceiveStats;
use super::wire::UdpHeader;

/// How often a blocked socket call wakes up to look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Bytes a TCP receiver asks for per read, whatever the sender's write size. Measured on
/// loopback (one stream, 128 KiB writes, median of five 4 s runs against iperf3's pair):
/// 64 KiB reads 1.02× iperf3, 96 KiB 1.04×, 128 KiB 0.97×, 16 KiB 0.91×. The sender's
/// thread does most of the receive path's work on loopback; a receiver that reads and
/// acknowledges more often takes more of it onto its own core.
const RECEIVE_CHUNK: usize = 64 * 1024;

/// Which way a stream's data flows, seen from this end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This end writes.
    Sender,
    /// This end reads.
    Receiver,
}

/// Counters of one stream, shared between its thread and the reporter.
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Payload bytes moved.
    pub bytes: AtomicU64,
    /// Datagrams sent (UDP sender).
    pub packets_sent: AtomicU64,
    /// Receiver statistics (UDP receiver).
    pub udp: Mutex<UdpReceiveStats>,
}

/// How a stream ended.
#[derive(Debug, Clone, Default)]
pub struct StreamOutcome {
    /// CPU time of the stream's thread.
    pub thread_cpu: CpuTimes,
    /// How long the thread moved data.
    pub elapsed: Duration,
    /// The error that ended it early, if any.
    pub error: Option<String>,
}

/// A running stream.
pub struct StreamHandle {
    /// 0-based index in the test.
    pub index: usize,
    /// Which way data flows from this end.
    pub role: Role,
    /// Live counters.
    pub counters: Arc<StreamCounters>,
    /// The TCP socket, for TCP_INFO; `None` for UDP.
    pub tcp: Option<Arc<TcpStream>>,
    thread: Option<JoinHandle<StreamOutcome>>,
}

impl StreamHandle {
    /// Waits for the thread to end (after the stop flag was set).
    pub fn join(&mut self) -> StreamOutcome {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(outcome)) => outcome,
            Some(Err(_)) => StreamOutcome { error: Some("stream thread panicked".into()), ..StreamOutcome::default() },
            None => StreamOutcome::default(),
        }
    }
}

/// Where a UDP stream's datagrams go or come from.
#[derive(Debug, Clone)]
pub enum UdpPeer {
    /// A socket connected to its peer (the client's sockets).
    Connected(Arc<UdpSocket>),
    /// A shared socket and this stream's peer address (the agent's data port).
    Shared(Arc<UdpSocket>, SocketAddr),
}

/// Parameters every stream of a test shares.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// Bytes per write or datagram.
    pub len: usize,
    /// UDP target rate per stream in bits/s; 0 means as fast as possible.
    pub rate_bits_per_sec: u64,
    /// 64-bit UDP counters.
    pub counters_64bit: bool,
}

fn spawn(name: String, body: impl FnOnce() -> StreamOutcome + Send + 'static) -> JoinHandle<StreamOutcome> {
    std::thread::Builder::new().name(name).spawn(body).expect("spawning a stream thread")
}

/// Measures a stream thread's CPU and wall time around `work`.
fn measured(work: impl FnOnce() -> Result<(), std::io::Error>) -> StreamOutcome {
    let cpu_before = kernel::thread_cpu();
    let start = Instant::now();
    let error = work().err().map(|err| err.to_string());
    StreamOutcome { thread_cpu: kernel::thread_cpu().since(cpu_before), elapsed: start.elapsed(), error }
}

fn is_timeout(err: &std::io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted)
}

/// Whether an error only says the peer has gone, as it does at the end of every test.
fn is_peer_gone(err: &std::io::Error) -> bool {
    matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted)
}

/// Starts a TCP stream on a connected socket.
pub fn start_tcp(
    index: usize,
    role: Role,
    socket: TcpStream,
    settings: StreamSettings,
    stop: Arc<AtomicBool>,
) -> StreamHandle {
    let counters = Arc::new(StreamCounters::default());
    let socket = Arc::new(socket);
    let _ = socket.set_write_timeout(Some(POLL));
    let _ = socket.set_read_timeout(Some(POLL));
    let (thread_counters, thread_socket) = (Arc::clone(&counters), Arc::clone(&socket));
    let thread = spawn(format!("tcp-{index}"), move || {
        measured(|| match role {
            Role::Sender => tcp_send(&thread_socket, &thread_counters, settings.len, &stop),
            Role::Receiver => tcp_receive(&thread_socket, &thread_counters, &stop),
        })
    });
    StreamHandle { index, role, counters, tcp: Some(socket), thread: Some(thread) }
}

fn tcp_send(
    socket: &TcpStream,
    counters: &StreamCounters,
    len: usize,
    stop: &AtomicBool,
) -> Result<(), std::io::Error> {
    let buffer = payload(len);
    let mut writer = socket;
    while !stop.load(Ordering::Relaxed) {
        match writer.write(&buffer) {
            Ok(n) => {
                counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(err) if is_timeout(&err) => {}
            Err(err) if is_peer_gone(&err) && stop.load(Ordering::Relaxed) => return Ok(()),
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

fn tcp_receive(socket: &TcpStream, counters: &StreamCounters, stop: &AtomicBool) -> Result<(), std::io::Error> {
    let mut buffer = vec![0u8; RECEIVE_CHUNK];
    let mut reader = socket;
    while !stop.load(Ordering::Relaxed) {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(err) if is_timeout(&err) => {}
            Err(err) if is_peer_gone(&err) => return Ok(()),
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Random bytes, so that compressing links cannot flatter the result.
fn payload(len: usize) -> Vec<u8> {
    use rand::RngExt;
    let mut buffer = vec![0u8; len];
    rand::rng().fill(&mut buffer[..]);
    buffer
}

fn unix_now() -> (u32, u32, f64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (now.as_secs() as u32, now.subsec_micros(), now.as_secs_f64())
}

/// Starts a UDP sending stream.
pub fn start_udp_sender(index: usize, peer: UdpPeer, settings: StreamSettings, stop: Arc<AtomicBool>) -> StreamHandle {
    let counters = Arc::new(StreamCounters::default());
    let thread_counters = Arc::clone(&counters);
    let thread =
        spawn(format!("udp-send-{index}"), move || measured(|| udp_send(&peer, &thread_counters, settings, &stop)));
    StreamHandle { index, role: Role::Sender, counters, tcp: None, thread: Some(thread) }
}

fn udp_send(
    peer: &UdpPeer,
    counters: &StreamCounters,
    settings: StreamSettings,
    stop: &AtomicBool,
) -> Result<(), std::io::Error> {
    let mut buffer = payload(settings.len.max(UdpHeader::len(settings.counters_64bit)));
    let gap_secs = if settings.rate_bits_per_sec > 0 {
        buffer.len() as f64 * 8.0 / settings.rate_bits_per_sec as f64
    } else {
        0.0
    };
    let start = Instant::now();
    let mut sequence: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        // Send every datagram that is due, then sleep until the next one is.
        let due = if gap_secs > 0.0 { (start.elapsed().as_secs_f64() / gap_secs) as u64 + 1 } else { sequence + 64 };
        while sequence < due && !stop.load(Ordering::Relaxed) {
            sequence += 1;
            let (sec, usec, _) = unix_now();
            UdpHeader { sec, usec, count: sequence }.write(&mut buffer, settings.counters_64bit);
            let sent = match peer {
                UdpPeer::Connected(socket) => socket.send(&buffer),
                UdpPeer::Shared(socket, address) => socket.send_to(&buffer, address),
            };
            match sent {
                Ok(n) => {
                    counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    counters.packets_sent.fetch_add(1, Ordering::Relaxed);
                }
                // A full socket buffer or an ICMP error from an earlier datagram: the
                // datagram is not sent, and the sequence number shows it as lost.
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::ConnectionRefused) => {}
                Err(err) if err.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(err) => return Err(err),
            }
        }
        if gap_secs > 0.0 {
            // Sleep until the next datagram is due; a sleep overshoots by tens of
            // microseconds, and the next batch catches up, as iperf3's pacing timer does.
            let next_due = start + Duration::from_secs_f64(gap_secs * sequence as f64);
            let wait = next_due.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait.min(POLL));
            }
        }
    }
    Ok(())
}

/// Starts a UDP receiving stream on a socket connected to its peer.
pub fn start_udp_receiver(
    index: usize,
    socket: Arc<UdpSocket>,
    settings: StreamSettings,
    stop: Arc<AtomicBool>,
) -> StreamHandle {
    let counters = Arc::new(StreamCounters::default());
    let thread_counters = Arc::clone(&counters);
    let _ = socket.set_read_timeout(Some(POLL));
    let thread = spawn(format!("udp-recv-{index}"), move || {
        measured(|| {
            let mut buffer = vec![0u8; 65_536];
            while !stop.load(Ordering::Relaxed) {
                match socket.recv(&mut buffer) {
                    Ok(n) => record_datagram(&thread_counters, &buffer[..n], settings.counters_64bit),
                    Err(err) if is_timeout(&err) || err.kind() == ErrorKind::ConnectionRefused => {}
                    Err(err) => return Err(err),
                }
            }
            Ok(())
        })
    });
    StreamHandle { index, role: Role::Receiver, counters, tcp: None, thread: Some(thread) }
}

/// Starts one thread that receives the datagrams of several streams on a shared socket
/// and hands each to its stream by source address (the agent's data port).
pub fn start_udp_demux_receiver(
    socket: Arc<UdpSocket>,
    streams: Vec<(usize, SocketAddr)>,
    settings: StreamSettings,
    stop: Arc<AtomicBool>,
) -> (Vec<Arc<StreamCounters>>, JoinHandle<StreamOutcome>) {
    let counters: Vec<Arc<StreamCounters>> = streams.iter().map(|_| Arc::new(StreamCounters::default())).collect();
    let routes: Vec<(SocketAddr, Arc<StreamCounters>)> =
        streams.iter().map(|(_, address)| *address).zip(counters.iter().cloned()).collect();
    let _ = socket.set_read_timeout(Some(POLL));
    let thread = spawn("udp-recv".into(), move || {
        measured(|| {
            let mut buffer = vec![0u8; 65_536];
            while !stop.load(Ordering::Relaxed) {
                match socket.recv_from(&mut buffer) {
                    Ok((n, from)) => {
                        if let Some((_, counters)) = routes.iter().find(|(address, _)| *address == from) {
                            record_datagram(counters, &buffer[..n], settings.counters_64bit);
                        }
                    }
                    Err(err) if is_timeout(&err) => {}
                    Err(err) => return Err(err),
                }
            }
            Ok(())
        })
    });
    (counters, thread)
}

/// A receiving stream whose datagrams another thread records (see
/// [`start_udp_demux_receiver`]).
pub fn passive_receiver(index: usize, counters: Arc<StreamCounters>) -> StreamHandle {
    StreamHandle { index, role: Role::Receiver, counters, tcp: None, thread: None }
}

fn record_datagram(counters: &StreamCounters, datagram: &[u8], counters_64bit: bool) {
    let Some(header) = UdpHeader::read(datagram, counters_64bit) else {
        return;
    };
    let (_, _, arrived) = unix_now();
    let sent = header.sec as f64 + header.usec as f64 / 1e6;
    counters.bytes.fetch_add(datagram.len() as u64, Ordering::Relaxed);
    let mut stats = counters.udp.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    stats.record(header.count, datagram.len(), sent, arrived);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(len: usize, rate: u64) -> StreamSettings {
        StreamSettings { len, rate_bits_per_sec: rate, counters_64bit: false }
    }

    #[test]
    fn udp_pacing_holds_the_rate() {
        let receiver = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.connect(receiver.local_addr().unwrap()).unwrap();
        receiver.connect(sender.local_addr().unwrap()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        // 8 Mbit/s of 1000-byte datagrams: 1000 datagrams per second.
        let mut rx = start_udp_receiver(0, Arc::clone(&receiver), settings(1000, 0), Arc::clone(&stop));
        let mut tx =
            start_udp_sender(0, UdpPeer::Connected(Arc::new(sender)), settings(1000, 8_000_000), Arc::clone(&stop));
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        let sent_outcome = tx.join();
        rx.join();
        assert!(sent_outcome.error.is_none(), "{:?}", sent_outcome.error);
        let sent = tx.counters.packets_sent.load(Ordering::Relaxed);
        assert!((450..=560).contains(&sent), "sent {sent} datagrams in 0.5 s at 1000/s");
        let stats = rx.counters.udp.lock().unwrap();
        assert_eq!(stats.highest_seq, stats.received, "loopback at 8 Mbit/s loses nothing");
    }

    #[test]
    fn tcp_streams_move_bytes_and_stop() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tx = start_tcp(0, Role::Sender, client, settings(128 * 1024, 0), Arc::clone(&stop));
        let mut rx = start_tcp(0, Role::Receiver, server, settings(128 * 1024, 0), Arc::clone(&stop));
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        let (sent, received) = (tx.join(), rx.join());
        assert!(sent.error.is_none() && received.error.is_none(), "{sent:?} {received:?}");
        let moved = rx.counters.bytes.load(Ordering::Relaxed);
        assert!(moved > 1_000_000, "only {moved} bytes in 200 ms on loopback");
        assert!(tx.counters.bytes.load(Ordering::Relaxed) >= moved);
    }
}
