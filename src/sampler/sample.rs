//! The derived sample: what one sampling interval looked like, in rates and ratios.
//!
//! These types are the JSON contract of `plateau sample --json` and the agent's
//! `/samples`: field names carry their unit (`_per_sec`, `_ratio`, `_ms`, `_bytes`).

use serde::{Deserialize, Serialize};

/// One interval of host measurements, stamped with the wall-clock time it ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Sample {
    /// Unix time in milliseconds at the end of the interval.
    pub ts_ms: u64,
    /// Length of the interval the rates are computed over, in milliseconds.
    pub interval_ms: u64,
    /// CPU time split and scheduler pressure.
    pub cpu: CpuSample,
    /// Whole disks (partitions, loop and ram devices are left out).
    pub disks: Vec<DiskSample>,
    /// Network interfaces.
    pub nics: Vec<NicSample>,
    /// TCP counters from /proc/net/snmp; absent when that file could not be read.
    pub tcp: Option<TcpSample>,
    /// UDP counters from /proc/net/snmp.
    #[serde(default)]
    pub udp: Option<UdpSample>,
    /// Memory use and paging.
    pub memory: Option<MemorySample>,
    /// Pressure stall information; absent on kernels without /proc/pressure.
    pub psi: Option<PsiSample>,
    /// The watched workload, when `--watch` was given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub watch: Option<WatchSample>,
}

/// How CPU time was spent, as fractions of the interval (each between 0 and 1).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CpuShares {
    /// Time in user mode (without nice).
    pub user: f64,
    /// Time in user mode at a positive nice value.
    pub nice: f64,
    /// Time in kernel mode.
    pub system: f64,
    /// Idle time with I/O outstanding.
    pub iowait: f64,
    /// Hard and soft interrupt handling.
    pub irq: f64,
    /// Time the hypervisor gave to someone else.
    pub steal: f64,
    /// Idle time.
    pub idle: f64,
    /// Everything but idle and iowait.
    pub busy: f64,
}

/// CPU over the interval: all cores together, each core, and the run queue.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CpuSample {
    /// All cores together.
    pub total: CpuShares,
    /// One entry per online core, in /proc/stat order.
    pub cores: Vec<CpuShares>,
    /// Runnable tasks at the end of the interval (procs_running).
    pub procs_running: Option<u32>,
    /// Tasks blocked on I/O at the end of the interval.
    pub procs_blocked: Option<u32>,
    /// 1-minute load average.
    pub load1: Option<f64>,
    /// 5-minute load average.
    pub load5: Option<f64>,
    /// 15-minute load average.
    pub load15: Option<f64>,
}

/// One disk over the interval, derived as `iostat -x` does.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct DiskSample {
    /// Kernel device name (e.g. `vda`, `nvme0n1`).
    pub name: String,
    /// Completed reads per second (r/s).
    pub reads_per_sec: f64,
    /// Completed writes per second (w/s).
    pub writes_per_sec: f64,
    /// Bytes read per second.
    pub read_bytes_per_sec: f64,
    /// Bytes written per second.
    pub write_bytes_per_sec: f64,
    /// Fraction of the interval with I/O in flight (%util / 100).
    pub util_ratio: f64,
    /// Average number of requests in flight (aqu-sz).
    pub queue_depth: f64,
    /// Average read latency (r_await); absent without reads.
    pub read_await_ms: Option<f64>,
    /// Average write latency (w_await); absent without writes.
    pub write_await_ms: Option<f64>,
}

/// One network interface over the interval.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct NicSample {
    /// Interface name.
    pub name: String,
    /// Received bytes per second.
    pub rx_bytes_per_sec: f64,
    /// Transmitted bytes per second.
    pub tx_bytes_per_sec: f64,
    /// Received packets per second.
    pub rx_packets_per_sec: f64,
    /// Transmitted packets per second.
    pub tx_packets_per_sec: f64,
    /// Received packets dropped per second.
    pub rx_drops_per_sec: f64,
    /// Transmit packets dropped per second.
    pub tx_drops_per_sec: f64,
    /// Receive errors per second.
    pub rx_errors_per_sec: f64,
    /// Transmit errors per second.
    pub tx_errors_per_sec: f64,
    /// Link speed as the kernel reports it; absent for virtual links that have none.
    pub speed_bits_per_sec: Option<u64>,
}

/// TCP segment rates over the interval.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TcpSample {
    /// Segments sent per second.
    pub out_segs_per_sec: f64,
    /// Segments received per second.
    pub in_segs_per_sec: f64,
    /// Segments retransmitted per second.
    pub retrans_segs_per_sec: f64,
    /// Retransmitted segments as a fraction of segments sent.
    pub retrans_ratio: f64,
    /// Segments received with errors per second.
    pub in_errs_per_sec: f64,
}

/// UDP datagram rates over the interval.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct UdpSample {
    /// Datagrams delivered to sockets per second.
    pub in_datagrams_per_sec: f64,
    /// Datagrams dropped per second because a socket's receive buffer was full: a
    /// receiver that cannot keep up, not a lossy network.
    pub rcvbuf_errors_per_sec: f64,
    /// Datagrams received with errors per second.
    pub in_errors_per_sec: f64,
}

/// Memory at the end of the interval and paging during it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct MemorySample {
    /// Total usable memory.
    pub total_bytes: u64,
    /// Memory available for new work without swapping (MemAvailable).
    pub available_bytes: u64,
    /// Total minus available.
    pub used_bytes: u64,
    /// Page cache.
    pub cached_bytes: u64,
    /// Swap in use.
    pub swap_used_bytes: u64,
    /// Bytes paged in from disk per second (pgpgin).
    pub page_in_bytes_per_sec: f64,
    /// Bytes paged out to disk per second (pgpgout).
    pub page_out_bytes_per_sec: f64,
    /// Pages swapped in per second.
    pub swap_in_pages_per_sec: f64,
    /// Pages swapped out per second.
    pub swap_out_pages_per_sec: f64,
    /// Major page faults per second.
    pub major_faults_per_sec: f64,
}

/// Pressure stall information for one resource.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PsiResource {
    /// Kernel's 10-second average share of time some task stalled, as a ratio.
    pub some_avg10_ratio: f64,
    /// Share of this interval in which some task stalled (from the `total` counter).
    pub some_ratio: f64,
    /// Kernel's 10-second average share of time all tasks stalled, as a ratio.
    pub full_avg10_ratio: f64,
    /// Share of this interval in which all non-idle tasks stalled.
    pub full_ratio: f64,
}

/// Pressure stall information for CPU, I/O and memory.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PsiSample {
    /// CPU pressure.
    pub cpu: Option<PsiResource>,
    /// I/O pressure.
    pub io: Option<PsiResource>,
    /// Memory pressure.
    pub memory: Option<PsiResource>,
}

/// The watched workload over the interval (per interval, not cumulative).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct WatchSample {
    /// What was watched, as given (`pid:123`, `name:tansu`, or a cgroup path).
    pub target: String,
    /// Processes found for the target at the end of the interval.
    pub n_processes: usize,
    /// CPU seconds used per second of wall time (1.0 = one core busy).
    pub cpu_seconds_per_sec: Option<f64>,
    /// The cgroup's CPU limit in cores; absent when unlimited or unknown.
    pub cpu_quota_cores: Option<f64>,
    /// CFS periods in the interval.
    pub periods: Option<u64>,
    /// CFS periods in the interval in which the cgroup was throttled.
    pub throttled_periods: Option<u64>,
    /// Time the cgroup spent throttled during the interval.
    pub throttled_seconds: Option<f64>,
    /// Throttled periods over periods: how often the CPU limit bit.
    #[serde(default)]
    pub throttled_ratio: Option<f64>,
    /// CPU used over the CPU limit.
    #[serde(default)]
    pub quota_used_ratio: Option<f64>,
    /// Share of the interval in which some of the cgroup's tasks waited for a CPU (v2's
    /// per-cgroup `cpu.pressure`): waiting, whatever the quota or the neighbours.
    #[serde(default)]
    pub cpu_pressure_some_ratio: Option<f64>,
    /// Bytes read from block devices per second.
    pub io_read_bytes_per_sec: Option<f64>,
    /// Bytes written to block devices per second.
    pub io_write_bytes_per_sec: Option<f64>,
    /// The cgroup's write bandwidth limit, bytes/s; absent when unlimited or unknown.
    #[serde(default)]
    pub io_write_limit_bytes_per_sec: Option<f64>,
    /// Bytes written over the write bandwidth limit.
    #[serde(default)]
    pub io_write_limit_used_ratio: Option<f64>,
    /// The cgroup the numbers come from, when one was found.
    pub cgroup: Option<String>,
}
