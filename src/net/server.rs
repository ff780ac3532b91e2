//! The agent's data port: the server side of iperf3's protocol, admitting only tests
//! whose cookie the agent issued through its authenticated HTTP API.
//!
//! A connection that presents an unknown or expired cookie is dropped without a word;
//! one that arrives while another test runs gets iperf3's ACCESS_DENIED. Parameters are
//! checked against the agent's caps before any data flows, and a client that never ends
//! its test is cut off at the test length plus a grace period.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{client_role, enlarge_udp_buffers};
use super::streams::{self, Role, StreamHandle, StreamSettings, UdpPeer};
use super::tally::{self, Measured, Snapshot};
use super::wire::{self, Results, State};
use super::{NetCaps, NetError, NetTestConfig, Protocol};
use crate::cancel::Cancel;

/// How long an issued cookie stays valid without a test.
pub const SESSION_TTL: Duration = Duration::from_secs(30);
/// Time allowed for each protocol step.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections the data port holds open at once (each has a thread): two directions of
/// the most streams a test may have, its control connection, and room for a refused few.
const MAX_DATA_CONNECTIONS: usize = 2 * 32 + 16;
/// Time a client may run past its declared test length before it is cut off.
const GRACE: Duration = Duration::from_secs(10);

/// A test the agent has agreed to serve.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Session {
    /// The cookie the client must present.
    pub cookie: String,
    /// The data port (TCP and UDP).
    pub data_port: u16,
    /// Seconds the cookie stays valid.
    pub expires_in_secs: u64,
}

/// An issued cookie waiting for its test.
struct Pending {
    cookie: String,
    expires: Instant,
    /// The test the cookie was issued for: the client may ask for no more.
    config: NetTestConfig,
    /// Set when the agent is asked to stop the test (or is shutting down).
    cancel: Cancel,
    /// Released when the test ends or the cookie expires (the agent's probe slot).
    _slot: Box<dyn Send>,
}

#[derive(Default)]
struct Sessions {
    pending: Option<Pending>,
    /// Cookie of the running test and where its data connections go.
    active: Option<(String, mpsc::Sender<(usize, TcpStream)>)>,
}

struct Shared {
    sessions: Mutex<Sessions>,
    caps: NetCaps,
    udp: Arc<UdpSocket>,
    port: u16,
}

/// The running data server.
#[derive(Clone)]
pub struct DataServer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DataServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataServer").field("port", &self.shared.port).finish_non_exhaustive()
    }
}

impl DataServer {
    /// Binds TCP and UDP on `bind` (port 0 picks one free for both) and serves forever
    /// on background threads.
    pub fn start(bind: SocketAddr, caps: NetCaps) -> std::io::Result<DataServer> {
        let (listener, udp) = bind_both(bind)?;
        enlarge_udp_buffers(&udp);
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared { sessions: Mutex::default(), caps, udp: Arc::new(udp), port });
        let accept_shared = Arc::clone(&shared);
        std::thread::Builder::new().name("net-accept".into()).spawn(move || {
            // Connections are numbered in accept order: a client opens its data streams
            // one after another, and their order decides which way each one sends.
            let open = Arc::new(AtomicUsize::new(0));
            for (sequence, connection) in listener.incoming().flatten().enumerate() {
                // One thread per connection, so the number of connections is capped: a
                // test needs at most two streams per allowed stream plus its control.
                if open.load(Ordering::Relaxed) >= MAX_DATA_CONNECTIONS {
                    drop(connection);
                    continue;
                }
                open.fetch_add(1, Ordering::Relaxed);
                let (shared, still_open) = (Arc::clone(&accept_shared), Arc::clone(&open));
                let spawned = std::thread::Builder::new().name("net-conn".into()).spawn(move || {
                    handle_connection(&shared, sequence, connection);
                    still_open.fetch_sub(1, Ordering::Relaxed);
                });
                if spawned.is_err() {
                    open.fetch_sub(1, Ordering::Relaxed);
                }
            }
        })?;
        let janitor = Arc::downgrade(&shared);
        std::thread::Builder::new().name("net-expiry".into()).spawn(move || {
            while let Some(shared) = janitor.upgrade() {
                shared.expire_pending();
                drop(shared);
                std::thread::sleep(Duration::from_secs(1));
            }
        })?;
        Ok(DataServer { shared })
    }

    /// The data port.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// The caps tests must respect.
    pub fn caps(&self) -> NetCaps {
        self.shared.caps
    }

    /// Issues a cookie for one test of `config`, holding `slot` until the test ends or
    /// the cookie expires. Fails when a test is pending or running, or `config` is
    /// beyond the caps.
    pub fn issue(&self, config: &NetTestConfig, slot: Box<dyn Send>, cancel: Cancel) -> Result<Session, NetError> {
        config.validate(&self.shared.caps)?;
        self.shared.expire_pending();
        let mut sessions = self.shared.lock();
        if sessions.pending.is_some() || sessions.active.is_some() {
            return Err(NetError::Busy(format!("data port {}", self.shared.port)));
        }
        let cookie = wire::new_cookie();
        sessions.pending = Some(Pending {
            cookie: cookie.clone(),
            expires: Instant::now() + SESSION_TTL,
            config: config.clone(),
            cancel,
            _slot: slot,
        });
        Ok(Session { cookie, data_port: self.shared.port, expires_in_secs: SESSION_TTL.as_secs() })
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn expire_pending(&self) {
        let mut sessions = self.lock();
        if sessions.pending.as_ref().is_some_and(|p| p.expires <= Instant::now()) {
            sessions.pending = None;
        }
    }
}

/// Binds a TCP listener and a UDP socket on the same port.
fn bind_both(bind: SocketAddr) -> std::io::Result<(TcpListener, UdpSocket)> {
    if bind.port() != 0 {
        return Ok((TcpListener::bind(bind)?, UdpSocket::bind(bind)?));
    }
    let mut last_error = None;
    for _ in 0..20 {
        let listener = TcpListener::bind(bind)?;
        let port = listener.local_addr()?.port();
        match UdpSocket::bind(SocketAddr::new(bind.ip(), port)) {
            Ok(udp) => return Ok((listener, udp)),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no free port for TCP and UDP")))
}

enum Admission {
    Control(Pending, mpsc::Receiver<(usize, TcpStream)>),
    Stream,
    Denied,
    Unknown,
}

fn handle_connection(shared: &Shared, sequence: usize, mut connection: TcpStream) {
    let _ = connection.set_read_timeout(Some(Duration::from_secs(5)));
    let mut cookie = [0u8; wire::COOKIE_SIZE];
    if connection.read_exact(&mut cookie).is_err() {
        return;
    }
    let cookie = wire::cookie_from_bytes(&cookie);
    let admission = {
        let mut sessions = shared.lock();
        match (&sessions.active, &sessions.pending) {
            (Some((active, streams)), _) if *active == cookie => {
                match streams.send((sequence, connection.try_clone().expect("cloning a socket"))) {
                    Ok(()) => Admission::Stream,
                    Err(_) => Admission::Unknown,
                }
            }
            (Some(_), _) => Admission::Denied,
            (None, Some(pending)) if pending.cookie == cookie && pending.expires > Instant::now() => {
                let pending = sessions.pending.take().expect("checked above");
                let (streams_tx, streams_rx) = mpsc::channel();
                sessions.active = Some((cookie.clone(), streams_tx));
                Admission::Control(pending, streams_rx)
            }
            _ => Admission::Unknown,
        }
    };
    match admission {
        Admission::Control(pending, streams) => {
            let outcome = serve_test(shared, &pending, &mut connection, streams);
            if let Err(err) = outcome {
                tracing::warn!(
                    "network test from {}: {err}",
                    connection.peer_addr().map(|a| a.to_string()).unwrap_or_default()
                );
            }
            shared.lock().active = None;
            drop(pending);
        }
        Admission::Denied => {
            let _ = wire::write_state(&mut connection, State::AccessDenied);
        }
        // An unknown cookie learns nothing: the connection just closes.
        Admission::Stream | Admission::Unknown => {}
    }
}

fn refuse(control: &mut TcpStream, code: i32) {
    let _ = wire::write_state(control, State::ServerError);
    let mut codes = [0u8; 8];
    codes[..4].copy_from_slice(&code.to_be_bytes());
    let _ = std::io::Write::write_all(control, &codes);
}

fn refusal_code(config: &NetTestConfig, caps: &NetCaps) -> i32 {
    if config.time_secs == 0 || config.time_secs > caps.max_time_secs || config.omit_secs > caps.max_time_secs {
        wire::ERROR_DURATION
    } else if config.parallel == 0 || config.parallel > caps.max_parallel {
        wire::ERROR_NUM_STREAMS
    } else if config.protocol == Protocol::Udp && (config.len as usize) < wire::UdpHeader::len(true) {
        wire::ERROR_UDP_BLOCK_SIZE
    } else if config.protocol == Protocol::Tcp && (config.len == 0 || config.len > caps.max_tcp_len) {
        wire::ERROR_BLOCK_SIZE
    } else {
        wire::ERROR_PLATEAU_REFUSED
    }
}

/// Whether `asked` stays within the test `issued` was issued for; the message says how
/// it does not.
fn within_session(asked: &NetTestConfig, issued: &NetTestConfig) -> Result<(), String> {
    let same_shape = asked.protocol == issued.protocol
        && asked.reverse == issued.reverse
        && asked.bidir == issued.bidir
        && asked.parallel == issued.parallel;
    let not_longer = asked.time_secs <= issued.time_secs && asked.omit_secs <= issued.omit_secs;
    let not_more = asked.len <= issued.len
        && (asked.protocol == Protocol::Tcp
            || (asked.rate_bits_per_sec > 0 && asked.rate_bits_per_sec <= issued.rate_bits_per_sec));
    if same_shape && not_longer && not_more {
        Ok(())
    } else {
        Err(format!(
            "the client asked for a {} test of {} s with {} stream(s) but the cookie was issued for a {} test of {} s with {} stream(s); ask for a session that matches the test",
            asked.protocol, asked.time_secs, asked.parallel, issued.protocol, issued.time_secs, issued.parallel
        ))
    }
}

fn serve_test(
    shared: &Shared,
    pending: &Pending,
    control: &mut TcpStream,
    streams_rx: mpsc::Receiver<(usize, TcpStream)>,
) -> Result<(), String> {
    let _ = control.set_read_timeout(Some(STEP_TIMEOUT));
    let _ = control.set_write_timeout(Some(STEP_TIMEOUT));
    let _ = control.set_nodelay(true);
    let step = |what: &str| {
        let what = what.to_string();
        move |err: wire::WireError| format!("{what}: {err}")
    };
    wire::write_state(control, State::ParamExchange).map_err(step("asking for parameters"))?;
    let params: wire::Params = match wire::read_json(control) {
        Ok(params) => params,
        Err(err) => {
            refuse(control, wire::ERROR_RECV_PARAMS);
            return Err(format!("reading parameters: {err}"));
        }
    };
    let mut config = match NetTestConfig::from_params(&params) {
        Ok(config) => config,
        Err(err) => {
            refuse(control, wire::ERROR_PLATEAU_REFUSED);
            return Err(err.to_string());
        }
    };
    // iperf3 clients send no interval; the server reports none anyway.
    config.interval = Duration::from_secs(1);
    if let Err(err) = config.validate(&shared.caps) {
        refuse(control, refusal_code(&config, &shared.caps));
        return Err(err.to_string());
    }
    if let Err(err) = within_session(&config, &pending.config) {
        refuse(control, wire::ERROR_PLATEAU_REFUSED);
        return Err(err);
    }
    let client_ip = control.peer_addr().map_err(|err| err.to_string())?.ip();
    wire::write_state(control, State::CreateStreams).map_err(step("asking for streams"))?;
    let accepted = match accept_streams(shared, &config, client_ip, &streams_rx) {
        Ok(accepted) => accepted,
        Err(err) => {
            refuse(control, wire::ERROR_STREAM_ACCEPT);
            return Err(err);
        }
    };
    wire::write_state(control, State::TestStart).map_err(step("starting the test"))?;
    wire::write_state(control, State::TestRunning).map_err(step("starting the test"))?;

    let stop = Arc::new(AtomicBool::new(false));
    let udp = config.protocol == Protocol::Udp;
    let (mut handles, demux) = start_streams(shared, &config, accepted, &stop);
    let cpu_before = super::kernel::process_cpu();
    let rcvbuf_before = crate::sampler::raw::udp_rcvbuf_errors_now();
    let start = Instant::now();
    let omit = Duration::from_secs(config.omit_secs as u64);
    let deadline = omit + Duration::from_secs(config.time_secs as u64) + GRACE;
    let mut baseline: Option<Vec<Snapshot>> = omit.is_zero().then(|| handles.iter().map(Snapshot::take).collect());
    let _ = control.set_read_timeout(Some(Duration::from_millis(100)));
    let ended = loop {
        if baseline.is_none() && start.elapsed() >= omit {
            baseline = Some(handles.iter().map(Snapshot::take).collect());
        }
        if pending.cancel.is_cancelled() {
            let _ = wire::write_state(control, State::ServerTerminate);
            break Err("the test was cancelled on this agent".to_string());
        }
        match wire::read_state(control) {
            Ok(State::TestEnd) => break Ok(()),
            Ok(State::ClientTerminate) => break Err("the client ended the test early".to_string()),
            Ok(other) => break Err(format!("unexpected {other:?} during the test")),
            Err(wire::WireError::Io(err))
                if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                if start.elapsed() > deadline {
                    break Err(format!("the client did not end its test within {} s; cut off", deadline.as_secs()));
                }
            }
            Err(err) => break Err(format!("control connection during the test: {err}")),
        }
    };
    let measured = start.elapsed().saturating_sub(omit);
    stop.store(true, Ordering::Relaxed);
    let mut outcomes: Vec<(Role, streams::StreamOutcome)> = handles.iter_mut().map(|h| (h.role, h.join())).collect();
    if let Some(demux) = demux {
        outcomes.push((Role::Receiver, demux.join().unwrap_or_default()));
    }
    let last: Vec<Snapshot> = handles.iter().map(Snapshot::take).collect();
    ended?;
    let measured = Measured {
        baseline: baseline.unwrap_or_else(|| vec![Snapshot::default(); handles.len()]),
        last,
        measured,
        wall: start.elapsed(),
        process_cpu: super::kernel::process_cpu().since(cpu_before),
        outcomes,
        rcvbuf_errors: (rcvbuf_before, crate::sampler::raw::udp_rcvbuf_errors_now()),
    };
    let results: Results = tally::local_results(&handles, udp, &measured);
    let _ = control.set_read_timeout(Some(STEP_TIMEOUT));
    wire::write_state(control, State::ExchangeResults).map_err(step("asking for results"))?;
    let _client: Results = wire::read_json(control).map_err(step("reading the client's results"))?;
    wire::write_json(control, &results).map_err(step("sending results"))?;
    wire::write_state(control, State::DisplayResults).map_err(step("ending the test"))?;
    let _ = wire::read_state(control);
    Ok(())
}

/// A data stream accepted during CREATE_STREAMS.
enum Accepted {
    Tcp(TcpStream),
    Udp(SocketAddr),
}

fn accept_streams(
    shared: &Shared,
    config: &NetTestConfig,
    client_ip: IpAddr,
    streams_rx: &mpsc::Receiver<(usize, TcpStream)>,
) -> Result<Vec<Accepted>, String> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let wanted = config.n_streams();
    let mut accepted = Vec::with_capacity(wanted);
    match config.protocol {
        Protocol::Tcp => {
            let mut arrived = Vec::with_capacity(wanted);
            while arrived.len() < wanted {
                let wait = deadline.saturating_duration_since(Instant::now());
                let stream = streams_rx
                    .recv_timeout(wait)
                    .map_err(|_| format!("only {} of {wanted} data connections arrived", arrived.len()))?;
                arrived.push(stream);
            }
            // Cookies are read on one thread per connection and may finish out of order;
            // the accept order is the client's order.
            arrived.sort_by_key(|(sequence, _)| *sequence);
            accepted.extend(arrived.into_iter().map(|(_, stream)| Accepted::Tcp(stream)));
        }
        Protocol::Udp => {
            let mut buffer = [0u8; 64];
            let _ = shared.udp.set_read_timeout(Some(Duration::from_millis(100)));
            while accepted.len() < wanted {
                if Instant::now() >= deadline {
                    return Err(format!("only {} of {wanted} UDP streams announced themselves", accepted.len()));
                }
                let Ok((n, from)) = shared.udp.recv_from(&mut buffer) else {
                    continue;
                };
                // Only the client of this test, and only announcements (stray datagrams
                // of an earlier test may still arrive).
                let known = accepted.iter().any(|a| matches!(a, Accepted::Udp(addr) if *addr == from));
                if n == wire::UDP_CONNECT_MSG.len() && from.ip() == client_ip && !known {
                    shared
                        .udp
                        .send_to(&wire::UDP_CONNECT_REPLY, from)
                        .map_err(|err| format!("answering a UDP stream: {err}"))?;
                    accepted.push(Accepted::Udp(from));
                }
            }
        }
    }
    Ok(accepted)
}

fn start_streams(
    shared: &Shared,
    config: &NetTestConfig,
    accepted: Vec<Accepted>,
    stop: &Arc<AtomicBool>,
) -> (Vec<StreamHandle>, Option<std::thread::JoinHandle<streams::StreamOutcome>>) {
    let settings =
        StreamSettings { len: config.len as usize, rate_bits_per_sec: config.rate_bits_per_sec, counters_64bit: false };
    let server_role = |index: usize| match client_role(config, index) {
        Role::Sender => Role::Receiver,
        Role::Receiver => Role::Sender,
    };
    let udp_receivers: Vec<(usize, SocketAddr)> = accepted
        .iter()
        .enumerate()
        .filter_map(|(index, a)| match a {
            Accepted::Udp(addr) if server_role(index) == Role::Receiver => Some((index, *addr)),
            _ => None,
        })
        .collect();
    let (mut demux_counters, demux) = if udp_receivers.is_empty() {
        (Vec::new(), None)
    } else {
        let (counters, thread) =
            streams::start_udp_demux_receiver(Arc::clone(&shared.udp), udp_receivers, settings, Arc::clone(stop));
        (counters, Some(thread))
    };
    demux_counters.reverse();
    let handles = accepted
        .into_iter()
        .enumerate()
        .map(|(index, stream)| match (stream, server_role(index)) {
            (Accepted::Tcp(socket), role) => streams::start_tcp(index, role, socket, settings, Arc::clone(stop)),
            (Accepted::Udp(addr), Role::Sender) => streams::start_udp_sender(
                index,
                UdpPeer::Shared(Arc::clone(&shared.udp), addr),
                settings,
                Arc::clone(stop),
            ),
            (Accepted::Udp(_), Role::Receiver) => {
                streams::passive_receiver(index, demux_counters.pop().expect("one counter per receiving stream"))
            }
        })
        .collect();
    (handles, demux)
}
