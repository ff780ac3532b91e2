//! Raw counters as the kernel exposes them, read from /proc and /sys in one pass.
//!
//! Reading is kept apart from parsing: every `parse_*` function takes text (so the
//! tests feed it fixtures from `tests/data/`), and `RawSnapshot::read` is the only
//! place that opens files. A file that cannot be read or parsed leaves its part of the
//! snapshot empty and adds a problem; it never fails the whole snapshot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use procfs::prelude::*;

use super::watch::WatchRaw;
use procfs::{DiskStat, ExplicitSystemInfo, KernelStats, LoadAverage, Meminfo, PressureRecord, VmStat};

/// Where the kernel's files live; tests point this at a fixture tree.
#[derive(Debug, Clone)]
pub struct HostPaths {
    /// Usually `/proc`.
    pub proc_root: PathBuf,
    /// Usually `/sys`.
    pub sys_root: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths { proc_root: PathBuf::from("/proc"), sys_root: PathBuf::from("/sys") }
    }
}

/// TCP counters from the `Tcp:` section of /proc/net/snmp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpCounters {
    /// OutSegs.
    pub out_segs: u64,
    /// InSegs.
    pub in_segs: u64,
    /// RetransSegs.
    pub retrans_segs: u64,
    /// InErrs.
    pub in_errs: u64,
}

/// UDP counters from the `Udp:` section of /proc/net/snmp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UdpCounters {
    /// InDatagrams.
    pub in_datagrams: u64,
    /// InErrors.
    pub in_errors: u64,
    /// RcvbufErrors: datagrams dropped because a socket's receive buffer was full.
    pub rcvbuf_errors: u64,
}

/// One network interface's counters plus its link speed.
#[derive(Debug, Clone)]
pub struct NicCounters {
    /// The /proc/net/dev line.
    pub status: procfs::net::DeviceStatus,
    /// From /sys/class/net/NAME/speed, converted from Mbit/s.
    pub speed_bits_per_sec: Option<u64>,
}

/// The `some` and `full` lines of one /proc/pressure file.
#[derive(Debug, Clone)]
pub struct PressureCounters {
    /// Some tasks stalled.
    pub some: PressureRecord,
    /// All non-idle tasks stalled; older kernels have no such line for CPU.
    pub full: Option<PressureRecord>,
}

/// Everything the sampler reads once per interval.
#[derive(Debug, Clone)]
pub struct RawSnapshot {
    /// Monotonic time of the read, for interval lengths.
    pub taken_at: Instant,
    /// Wall-clock time of the read, for stamping samples.
    pub ts_ms: u64,
    /// /proc/stat.
    pub stat: Option<KernelStats>,
    /// /proc/loadavg.
    pub loadavg: Option<LoadAverage>,
    /// /proc/diskstats, whole disks only, by name.
    pub disks: BTreeMap<String, DiskStat>,
    /// /proc/net/dev, by interface name.
    pub nics: BTreeMap<String, NicCounters>,
    /// /proc/net/snmp, TCP part.
    pub tcp: Option<TcpCounters>,
    /// /proc/net/snmp, UDP part.
    pub udp: Option<UdpCounters>,
    /// /proc/meminfo.
    pub meminfo: Option<Meminfo>,
    /// /proc/vmstat.
    pub vmstat: Option<VmStat>,
    /// /proc/pressure/{cpu,io,memory}; all absent where the kernel has no PSI.
    pub psi_cpu: Option<PressureCounters>,
    /// I/O pressure.
    pub psi_io: Option<PressureCounters>,
    /// Memory pressure.
    pub psi_memory: Option<PressureCounters>,
    /// The watched workload, when there is one.
    pub watch: Option<WatchRaw>,
    /// Files that could not be read or parsed, with the reason.
    pub problems: Vec<String>,
}

/// Clock ticks and page size, needed to turn /proc/stat ticks into seconds.
pub fn system_info() -> ExplicitSystemInfo {
    ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: rustix::param::clock_ticks_per_second(),
        page_size: rustix::param::page_size() as u64,
        is_little_endian: cfg!(target_endian = "little"),
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl RawSnapshot {
    /// Reads every source once. Missing or unreadable files become problems.
    pub fn read(paths: &HostPaths, info: &ExplicitSystemInfo) -> RawSnapshot {
        let taken_at = Instant::now();
        let ts_ms = unix_ms_now();
        let mut problems = Vec::new();
        let mut read = |name: &str| -> Option<String> {
            let path = paths.proc_root.join(name);
            std::fs::read_to_string(&path).map_err(|err| problems.push(format!("{}: {err}", path.display()))).ok()
        };
        let stat_text = read("stat");
        let loadavg_text = read("loadavg");
        let diskstats_text = read("diskstats");
        let netdev_text = read("net/dev");
        let snmp_text = read("net/snmp");
        let meminfo_text = read("meminfo");
        let vmstat_text = read("vmstat");
        // PSI is optional: its absence is a property of the kernel, not a problem.
        let psi = |name: &str| {
            let text = std::fs::read_to_string(paths.proc_root.join("pressure").join(name)).ok()?;
            parse_pressure(&text)
        };

        let stat = stat_text.and_then(|text| {
            keep(&mut problems, "/proc/stat", KernelStats::from_read(text.as_bytes(), info).map_err(|e| e.to_string()))
        });
        let loadavg = loadavg_text.and_then(|text| {
            keep(&mut problems, "/proc/loadavg", LoadAverage::from_read(text.as_bytes()).map_err(|e| e.to_string()))
        });
        let meminfo = meminfo_text.and_then(|text| {
            keep(&mut problems, "/proc/meminfo", Meminfo::from_read(text.as_bytes()).map_err(|e| e.to_string()))
        });
        let vmstat = vmstat_text.and_then(|text| {
            keep(&mut problems, "/proc/vmstat", VmStat::from_read(text.as_bytes()).map_err(|e| e.to_string()))
        });
        let tcp = snmp_text.as_deref().and_then(|text| keep(&mut problems, "/proc/net/snmp", parse_snmp_tcp(text)));
        let udp = snmp_text.as_deref().and_then(|text| keep(&mut problems, "/proc/net/snmp", parse_snmp_udp(text)));
        let nics = netdev_text
            .and_then(|text| keep(&mut problems, "/proc/net/dev", parse_net_dev(&text)))
            .unwrap_or_default()
            .into_iter()
            .map(|status| {
                let speed_bits_per_sec = read_link_speed(&paths.sys_root, &status.name);
                (status.name.clone(), NicCounters { status, speed_bits_per_sec })
            })
            .collect();
        let mut disks = BTreeMap::new();
        if let Some(text) = diskstats_text {
            let (parsed, bad_lines) = parse_diskstats(&text);
            let whole_disks = whole_disk_names(&paths.sys_root);
            disks = parsed
                .into_iter()
                .filter(|disk| is_reported_disk(&disk.name, whole_disks.as_deref()))
                .map(|disk| (disk.name.clone(), disk))
                .collect();
            problems
                .extend(bad_lines.into_iter().map(|line| format!("/proc/diskstats: skipped malformed line '{line}'")));
        }

        RawSnapshot {
            taken_at,
            ts_ms,
            stat,
            loadavg,
            disks,
            nics,
            tcp,
            udp,
            meminfo,
            vmstat,
            psi_cpu: psi("cpu"),
            psi_io: psi("io"),
            psi_memory: psi("memory"),
            watch: None,
            problems,
        }
    }
}

/// The parsed value, or `None` with the failure added to `problems`.
fn keep<T>(problems: &mut Vec<String>, what: &str, parsed: Result<T, String>) -> Option<T> {
    parsed.map_err(|err| problems.push(format!("{what}: {err}"))).ok()
}

/// Parses /proc/diskstats line by line, returning the good lines and the malformed ones
/// (one bad line must not hide every other disk).
pub fn parse_diskstats(text: &str) -> (Vec<DiskStat>, Vec<String>) {
    let mut disks = Vec::new();
    let mut bad_lines = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        match DiskStat::from_line(line) {
            Ok(disk) => disks.push(disk),
            Err(_) => bad_lines.push(line.trim().to_string()),
        }
    }
    (disks, bad_lines)
}

/// Parses /proc/net/dev.
pub fn parse_net_dev(text: &str) -> Result<Vec<procfs::net::DeviceStatus>, String> {
    procfs::net::InterfaceDeviceStatus::from_read(text.as_bytes())
        .map(|devices| devices.0.into_values().collect())
        .map_err(|err| err.to_string())
}

/// The fields of one /proc/net/snmp section (`Tcp:`, `Udp:`, ...) by name.
///
/// procfs has a parser for the whole file, but it insists on every IP, ICMP, TCP and
/// UDP field; retransmits must not disappear because a kernel renamed an ICMP field.
fn snmp_section<'a>(text: &'a str, prefix: &str) -> Result<BTreeMap<&'a str, &'a str>, String> {
    let mut lines = text.lines().filter(|line| line.split_whitespace().next() == Some(prefix));
    let (Some(header), Some(values)) = (lines.next(), lines.next()) else {
        return Err(format!("no {prefix} section"));
    };
    Ok(header.split_whitespace().skip(1).zip(values.split_whitespace().skip(1)).collect())
}

fn snmp_counter(fields: &BTreeMap<&str, &str>, section: &str, name: &str) -> Result<u64, String> {
    let value = fields.get(name).ok_or_else(|| format!("{section} section has no {name}"))?;
    value.parse().map_err(|_| format!("{section} {name} is not a counter: '{value}'"))
}

/// Parses the `Tcp:` header and value lines of /proc/net/snmp.
pub fn parse_snmp_tcp(text: &str) -> Result<TcpCounters, String> {
    let fields = snmp_section(text, "Tcp:")?;
    let field = |name: &str| snmp_counter(&fields, "Tcp:", name);
    Ok(TcpCounters {
        out_segs: field("OutSegs")?,
        in_segs: field("InSegs")?,
        retrans_segs: field("RetransSegs")?,
        in_errs: field("InErrs").unwrap_or(0),
    })
}

/// UDP RcvbufErrors of this host now (from /proc/net/snmp), for the network tests'
/// before-and-after count.
pub fn udp_rcvbuf_errors_now() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").ok()?;
    parse_snmp_udp(&text).ok().map(|udp| udp.rcvbuf_errors)
}

/// Parses the `Udp:` header and value lines of /proc/net/snmp.
pub fn parse_snmp_udp(text: &str) -> Result<UdpCounters, String> {
    let fields = snmp_section(text, "Udp:")?;
    let field = |name: &str| snmp_counter(&fields, "Udp:", name);
    Ok(UdpCounters {
        in_datagrams: field("InDatagrams")?,
        in_errors: field("InErrors").unwrap_or(0),
        rcvbuf_errors: field("RcvbufErrors").unwrap_or(0),
    })
}

/// Parses one /proc/pressure file; `None` when it has no usable `some` line.
pub fn parse_pressure(text: &str) -> Option<PressureCounters> {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        if line.starts_with("some ") {
            some = procfs::parse_pressure_record(line).ok();
        } else if line.starts_with("full ") {
            full = procfs::parse_pressure_record(line).ok();
        }
    }
    Some(PressureCounters { some: some?, full })
}

/// Names under /sys/block (whole disks, not partitions); `None` when /sys is not there.
fn whole_disk_names(sys_root: &Path) -> Option<Vec<String>> {
    let entries = std::fs::read_dir(sys_root.join("block")).ok()?;
    Some(entries.filter_map(|entry| entry.ok()?.file_name().into_string().ok()).collect())
}

/// Whether a diskstats device belongs in the report: whole disks that hold data.
/// Without /sys/block to say what is a whole disk, everything but pseudo-devices counts.
fn is_reported_disk(name: &str, whole_disks: Option<&[String]>) -> bool {
    let pseudo = ["loop", "ram", "zram"].iter().any(|prefix| name.starts_with(prefix));
    match whole_disks {
        Some(names) => !pseudo && names.iter().any(|whole| whole == name),
        None => !pseudo,
    }
}

/// The kernel's link speed in bits/s; virtual links report -1 or refuse the read.
fn read_link_speed(sys_root: &Path, nic: &str) -> Option<u64> {
    let text = std::fs::read_to_string(sys_root.join("class/net").join(nic).join("speed")).ok()?;
    parse_link_speed(&text)
}

/// Parses /sys/class/net/NAME/speed (Mbit/s, -1 when unknown) into bits/s.
pub fn parse_link_speed(text: &str) -> Option<u64> {
    let mbits: i64 = text.trim().parse().ok()?;
    (mbits > 0).then(|| mbits as u64 * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_tcp_section_is_found_among_others() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm InSegs OutSegs RetransSegs InErrs\nTcp: 1 100 200 7 1\nUdp: InDatagrams\nUdp: 5\n";
        let tcp = parse_snmp_tcp(text).unwrap();
        assert_eq!(tcp, TcpCounters { out_segs: 200, in_segs: 100, retrans_segs: 7, in_errs: 1 });
    }

    #[test]
    fn snmp_without_retrans_is_an_error_naming_the_field() {
        let err = parse_snmp_tcp("Tcp: InSegs OutSegs\nTcp: 1 2\n").unwrap_err();
        assert!(err.contains("RetransSegs"), "{err}");
        assert!(parse_snmp_tcp("Ip: 1\nIp: 2\n").is_err());
    }

    #[test]
    fn snmp_udp_section_is_not_udplite() {
        let text = "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 100 1 7 50 6 0\nUdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\nUdpLite: 0 0 0 0 0\n";
        assert_eq!(parse_snmp_udp(text).unwrap(), UdpCounters { in_datagrams: 100, in_errors: 7, rcvbuf_errors: 6 });
    }

    #[test]
    fn cpu_pressure_without_full_line_still_parses() {
        let psi = parse_pressure("some avg10=1.50 avg60=0.20 avg300=0.00 total=12345\n").unwrap();
        assert_eq!(psi.some.total, 12345);
        assert!(psi.full.is_none());
        assert!(parse_pressure("").is_none());
    }

    #[test]
    fn link_speed_unknown_is_none() {
        assert_eq!(parse_link_speed("1000\n"), Some(1_000_000_000));
        assert_eq!(parse_link_speed("-1\n"), None);
        assert_eq!(parse_link_speed(""), None);
    }

    #[test]
    fn pseudo_disks_and_partitions_are_left_out() {
        let whole = vec!["vda".to_string(), "loop0".to_string()];
        assert!(is_reported_disk("vda", Some(&whole)));
        assert!(!is_reported_disk("vda1", Some(&whole)));
        assert!(!is_reported_disk("loop0", Some(&whole)));
        assert!(is_reported_disk("sdb", None));
        assert!(!is_reported_disk("zram0", None));
    }
}
