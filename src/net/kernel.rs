//! What the kernel knows about a test while it runs: a TCP socket's state (TCP_INFO)
//! and how much CPU a thread or the whole process used: two system calls that fill a
//! plain struct. Besides these, only `kafka::native` (librdkafka's produce call) and the
//! SIGPIPE default are `unsafe` in plateau.

use std::os::fd::AsRawFd;
use std::time::Duration;

/// The parts of TCP_INFO that a throughput test reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// Smoothed round-trip time in microseconds.
    pub rtt_us: u32,
    /// Round-trip time variation in microseconds.
    pub rttvar_us: u32,
    /// Congestion window in bytes (segments × MSS).
    pub snd_cwnd_bytes: u64,
    /// Segments retransmitted over the connection's life.
    pub total_retrans: u32,
    /// Path MTU.
    pub pmtu: u32,
}

/// Reads TCP_INFO of a connected TCP socket; `None` if the kernel refuses.
pub fn tcp_info(socket: &impl AsRawFd) -> Option<TcpInfo> {
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a valid, writable tcp_info and `len` holds its size; the kernel
    // writes at most `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then(|| TcpInfo {
        rtt_us: info.tcpi_rtt,
        rttvar_us: info.tcpi_rttvar,
        snd_cwnd_bytes: info.tcpi_snd_cwnd as u64 * info.tcpi_snd_mss as u64,
        total_retrans: info.tcpi_total_retrans,
        pmtu: info.tcpi_pmtu,
    })
}

/// CPU time split into user and system.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    /// Time in user mode.
    pub user: Duration,
    /// Time in kernel mode.
    pub system: Duration,
}

impl CpuTimes {
    /// User plus system time.
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// The CPU used since `earlier`.
    pub fn since(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes { user: self.user.saturating_sub(earlier.user), system: self.system.saturating_sub(earlier.system) }
    }
}

fn rusage(who: libc::c_int) -> CpuTimes {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage struct.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    if rc != 0 {
        return CpuTimes::default();
    }
    let duration = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, (tv.tv_usec as u32) * 1000);
    CpuTimes { user: duration(usage.ru_utime), system: duration(usage.ru_stime) }
}

/// CPU time of the calling thread.
pub fn thread_cpu() -> CpuTimes {
    rusage(libc::RUSAGE_THREAD)
}

/// CPU time of the whole process.
pub fn process_cpu() -> CpuTimes {
    rusage(libc::RUSAGE_SELF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_accumulates_cpu_time() {
        let before = thread_cpu();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        // Busy until the thread's own clock has 20 ms, or 2 s of wall time: on a shared,
        // stolen-from machine 50 ms of wall time held less than 20 ms of this thread's CPU.
        while thread_cpu().since(before).total() <= Duration::from_millis(20)
            && start.elapsed() < Duration::from_secs(2)
        {
            for _ in 0..10_000 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
        }
        assert!(x > 0);
        assert!(thread_cpu().since(before).total() > Duration::from_millis(20));
        assert!(process_cpu().total() >= thread_cpu().total());
    }

    #[test]
    fn tcp_info_of_a_loopback_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let info = tcp_info(&client).expect("TCP_INFO on a connected socket");
        assert!(info.snd_cwnd_bytes > 0);
        assert!(info.pmtu > 0);
        assert!(tcp_info(&std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).is_none());
    }
}
