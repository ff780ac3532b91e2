//! From two raw snapshots to one sample: rates, ratios and latencies over the interval.
//!
//! The derivations are those of `iostat -x`, `vmstat` and `sar -n DEV`. Counters that
//! go backwards are handled here once: a 32-bit wrap is unwrapped, anything else is a
//! reset, and the affected device is left out of that one interval rather than being
//! reported with an absurd rate. A device that appears mid-run has no baseline and is
//! reported from its second interval on.

use std::collections::BTreeMap;

use procfs::{CpuTime, DiskStat};

use super::raw::{PressureCounters, RawSnapshot};
use super::sample::{
    CpuSample, CpuShares, DiskSample, MemorySample, NicSample, PsiResource, PsiSample, Sample, TcpSample, UdpSample,
    WatchSample,
};
use super::watch::WatchRaw;

/// Diskstats counts sectors of 512 bytes whatever the device's real sector size.
const SECTOR_BYTES: f64 = 512.0;

/// The increase of a cumulative counter, or `None` if it was reset.
///
/// Some kernel counters are 32 bits wide (e.g. diskstats fields on 32-bit kernels); when
/// such a counter wraps, the previous value fits in 32 bits and the unwrapped increase
/// is small, so it is taken as a wrap. Any other decrease is a reset.
pub fn counter_delta(prev: u64, cur: u64) -> Option<u64> {
    if cur >= prev {
        return Some(cur - prev);
    }
    const WRAP: u64 = 1 << 32;
    if prev < WRAP {
        let unwrapped = cur + (WRAP - prev);
        if unwrapped < WRAP / 2 {
            return Some(unwrapped);
        }
    }
    None
}

/// Derives the sample for the interval between `prev` and `cur`.
pub fn derive(prev: &RawSnapshot, cur: &RawSnapshot) -> Sample {
    let secs = cur.taken_at.saturating_duration_since(prev.taken_at).as_secs_f64().max(1e-3);
    Sample {
        ts_ms: cur.ts_ms,
        interval_ms: (secs * 1000.0).round() as u64,
        cpu: derive_cpu(prev, cur),
        disks: derive_disks(&prev.disks, &cur.disks, secs),
        nics: derive_nics(prev, cur, secs),
        tcp: match (prev.tcp, cur.tcp) {
            (Some(p), Some(c)) => derive_tcp(p, c, secs),
            _ => None,
        },
        udp: match (prev.udp, cur.udp) {
            (Some(p), Some(c)) => derive_udp(p, c, secs),
            _ => None,
        },
        memory: derive_memory(prev, cur, secs),
        psi: derive_psi(prev, cur, secs),
        watch: match (&prev.watch, &cur.watch) {
            (Some(p), Some(c)) if p.target == c.target => Some(derive_watch(p, c, secs)),
            _ => None,
        },
    }
}

fn cpu_shares(prev: &CpuTime, cur: &CpuTime) -> CpuShares {
    let delta = |p: u64, c: u64| counter_delta(p, c).unwrap_or(0) as f64;
    let opt = |v: Option<u64>| v.unwrap_or(0);
    let user = delta(prev.user, cur.user);
    let nice = delta(prev.nice, cur.nice);
    let system = delta(prev.system, cur.system);
    let idle = delta(prev.idle, cur.idle);
    // iowait is known to go backwards on some kernels; counter_delta then gives 0.
    let iowait = delta(opt(prev.iowait), opt(cur.iowait));
    let irq = delta(opt(prev.irq), opt(cur.irq)) + delta(opt(prev.softirq), opt(cur.softirq));
    let steal = delta(opt(prev.steal), opt(cur.steal));
    // guest time is already inside user time, so it is not added again.
    let total = user + nice + system + idle + iowait + irq + steal;
    if total <= 0.0 {
        return CpuShares::default();
    }
    CpuShares {
        user: user / total,
        nice: nice / total,
        system: system / total,
        iowait: iowait / total,
        irq: irq / total,
        steal: steal / total,
        idle: idle / total,
        busy: (user + nice + system + irq + steal) / total,
    }
}

fn derive_cpu(prev: &RawSnapshot, cur: &RawSnapshot) -> CpuSample {
    let mut sample = CpuSample {
        load1: cur.loadavg.as_ref().map(|l| l.one as f64),
        load5: cur.loadavg.as_ref().map(|l| l.five as f64),
        load15: cur.loadavg.as_ref().map(|l| l.fifteen as f64),
        ..CpuSample::default()
    };
    let (Some(p), Some(c)) = (&prev.stat, &cur.stat) else {
        return sample;
    };
    sample.total = cpu_shares(&p.total, &c.total);
    // A core going offline shifts the list; per-core shares are then skipped once.
    if p.cpu_time.len() == c.cpu_time.len() {
        sample.cores = p.cpu_time.iter().zip(&c.cpu_time).map(|(p, c)| cpu_shares(p, c)).collect();
    }
    sample.procs_running = c.procs_running;
    sample.procs_blocked = c.procs_blocked;
    sample
}

fn derive_disk(prev: &DiskStat, cur: &DiskStat, secs: f64) -> Option<DiskSample> {
    let reads = counter_delta(prev.reads, cur.reads)? as f64;
    let writes = counter_delta(prev.writes, cur.writes)? as f64;
    let read_ms = counter_delta(prev.time_reading, cur.time_reading)? as f64;
    let write_ms = counter_delta(prev.time_writing, cur.time_writing)? as f64;
    let sectors_read = counter_delta(prev.sectors_read, cur.sectors_read)? as f64;
    let sectors_written = counter_delta(prev.sectors_written, cur.sectors_written)? as f64;
    let io_ms = counter_delta(prev.time_in_progress, cur.time_in_progress)? as f64;
    let weighted_ms = counter_delta(prev.weighted_time_in_progress, cur.weighted_time_in_progress)? as f64;
    let interval_ms = secs * 1000.0;
    Some(DiskSample {
        name: cur.name.clone(),
        reads_per_sec: reads / secs,
        writes_per_sec: writes / secs,
        read_bytes_per_sec: sectors_read * SECTOR_BYTES / secs,
        write_bytes_per_sec: sectors_written * SECTOR_BYTES / secs,
        util_ratio: (io_ms / interval_ms).min(1.0),
        queue_depth: weighted_ms / interval_ms,
        read_await_ms: (reads > 0.0).then(|| read_ms / reads),
        write_await_ms: (writes > 0.0).then(|| write_ms / writes),
    })
}

fn derive_disks(prev: &BTreeMap<String, DiskStat>, cur: &BTreeMap<String, DiskStat>, secs: f64) -> Vec<DiskSample> {
    cur.iter().filter_map(|(name, c)| derive_disk(prev.get(name)?, c, secs)).collect()
}

fn derive_nics(prev: &RawSnapshot, cur: &RawSnapshot, secs: f64) -> Vec<NicSample> {
    cur.nics
        .iter()
        .filter_map(|(name, c)| {
            let p = &prev.nics.get(name)?.status;
            let s = &c.status;
            let rate = |p: u64, c: u64| counter_delta(p, c).map(|d| d as f64 / secs);
            Some(NicSample {
                name: name.clone(),
                rx_bytes_per_sec: rate(p.recv_bytes, s.recv_bytes)?,
                tx_bytes_per_sec: rate(p.sent_bytes, s.sent_bytes)?,
                rx_packets_per_sec: rate(p.recv_packets, s.recv_packets)?,
                tx_packets_per_sec: rate(p.sent_packets, s.sent_packets)?,
                rx_drops_per_sec: rate(p.recv_drop, s.recv_drop)?,
                tx_drops_per_sec: rate(p.sent_drop, s.sent_drop)?,
                rx_errors_per_sec: rate(p.recv_errs, s.recv_errs)?,
                tx_errors_per_sec: rate(p.sent_errs, s.sent_errs)?,
                speed_bits_per_sec: c.speed_bits_per_sec,
            })
        })
        .collect()
}

fn derive_tcp(prev: super::raw::TcpCounters, cur: super::raw::TcpCounters, secs: f64) -> Option<TcpSample> {
    let out_segs = counter_delta(prev.out_segs, cur.out_segs)? as f64;
    let retrans = counter_delta(prev.retrans_segs, cur.retrans_segs)? as f64;
    Some(TcpSample {
        out_segs_per_sec: out_segs / secs,
        in_segs_per_sec: counter_delta(prev.in_segs, cur.in_segs)? as f64 / secs,
        retrans_segs_per_sec: retrans / secs,
        retrans_ratio: if out_segs > 0.0 { retrans / out_segs } else { 0.0 },
        in_errs_per_sec: counter_delta(prev.in_errs, cur.in_errs)? as f64 / secs,
    })
}

fn derive_udp(prev: super::raw::UdpCounters, cur: super::raw::UdpCounters, secs: f64) -> Option<UdpSample> {
    Some(UdpSample {
        in_datagrams_per_sec: counter_delta(prev.in_datagrams, cur.in_datagrams)? as f64 / secs,
        rcvbuf_errors_per_sec: counter_delta(prev.rcvbuf_errors, cur.rcvbuf_errors)? as f64 / secs,
        in_errors_per_sec: counter_delta(prev.in_errors, cur.in_errors)? as f64 / secs,
    })
}

fn derive_memory(prev: &RawSnapshot, cur: &RawSnapshot, secs: f64) -> Option<MemorySample> {
    let mem = cur.meminfo.as_ref()?;
    // Kernels before 3.14 have no MemAvailable; free + cache is the usual stand-in.
    let available = mem.mem_available.unwrap_or(mem.mem_free + mem.cached);
    let mut sample = MemorySample {
        total_bytes: mem.mem_total,
        available_bytes: available,
        used_bytes: mem.mem_total.saturating_sub(available),
        cached_bytes: mem.cached,
        swap_used_bytes: mem.swap_total.saturating_sub(mem.swap_free),
        ..MemorySample::default()
    };
    if let (Some(p), Some(c)) = (&prev.vmstat, &cur.vmstat) {
        let rate = |key: &str, scale: f64| {
            let (p, c) = (*p.0.get(key)?, *c.0.get(key)?);
            counter_delta(p.max(0) as u64, c.max(0) as u64).map(|d| d as f64 * scale / secs)
        };
        // pgpgin/pgpgout count KiB, pswpin/pswpout and pgmajfault count pages or events.
        sample.page_in_bytes_per_sec = rate("pgpgin", 1024.0).unwrap_or(0.0);
        sample.page_out_bytes_per_sec = rate("pgpgout", 1024.0).unwrap_or(0.0);
        sample.swap_in_pages_per_sec = rate("pswpin", 1.0).unwrap_or(0.0);
        sample.swap_out_pages_per_sec = rate("pswpout", 1.0).unwrap_or(0.0);
        sample.major_faults_per_sec = rate("pgmajfault", 1.0).unwrap_or(0.0);
    }
    Some(sample)
}

fn psi_resource(prev: &Option<PressureCounters>, cur: &Option<PressureCounters>, secs: f64) -> Option<PsiResource> {
    let cur = cur.as_ref()?;
    let stall_ratio = |p: u64, c: u64| counter_delta(p, c).map(|us| (us as f64 / 1e6 / secs).min(1.0)).unwrap_or(0.0);
    let mut resource = PsiResource {
        some_avg10_ratio: cur.some.avg10 as f64 / 100.0,
        full_avg10_ratio: cur.full.as_ref().map(|f| f.avg10 as f64 / 100.0).unwrap_or(0.0),
        ..PsiResource::default()
    };
    if let Some(prev) = prev {
        resource.some_ratio = stall_ratio(prev.some.total, cur.some.total);
        if let (Some(p), Some(c)) = (&prev.full, &cur.full) {
            resource.full_ratio = stall_ratio(p.total, c.total);
        }
    }
    Some(resource)
}

fn derive_psi(prev: &RawSnapshot, cur: &RawSnapshot, secs: f64) -> Option<PsiSample> {
    let psi = PsiSample {
        cpu: psi_resource(&prev.psi_cpu, &cur.psi_cpu, secs),
        io: psi_resource(&prev.psi_io, &cur.psi_io, secs),
        memory: psi_resource(&prev.psi_memory, &cur.psi_memory, secs),
    };
    (psi.cpu.is_some() || psi.io.is_some() || psi.memory.is_some()).then_some(psi)
}

/// Sums the increase of a per-process counter over the processes present both times.
fn process_sum(
    prev: &WatchRaw,
    cur: &WatchRaw,
    field: impl Fn(&super::watch::ProcessCounters) -> Option<u64>,
) -> Option<u64> {
    let mut total = None;
    for (pid, c) in &cur.processes {
        let Some(p) = prev.processes.get(pid) else {
            continue;
        };
        if let (Some(p), Some(c)) = (field(p), field(c)) {
            *total.get_or_insert(0) += counter_delta(p, c).unwrap_or(0);
        }
    }
    total
}

fn derive_watch(prev: &WatchRaw, cur: &WatchRaw, secs: f64) -> WatchSample {
    let prev_cg = prev.cgroup.as_ref().map(|(_, c)| c);
    let cur_cg = cur.cgroup.as_ref().map(|(_, c)| c);
    let cg_delta = |field: fn(&super::cgroup::CgroupCounters) -> Option<u64>| -> Option<u64> {
        counter_delta(field(prev_cg?)?, field(cur_cg?)?)
    };
    let cgroup_cpu_ns = cg_delta(|c| c.cpu.usage_ns);
    // A cgroup's own accounting includes processes that exited during the interval;
    // the per-process sum is the fallback (a v1 `cpu` group without `cpuacct`).
    let cpu_ns = match cur.is_cgroup_target {
        true => cgroup_cpu_ns.or_else(|| process_sum(prev, cur, |p| Some(p.cpu_ns))),
        false => process_sum(prev, cur, |p| Some(p.cpu_ns)),
    };
    let (io_read, io_write) = if cur.is_cgroup_target {
        (cg_delta(|c| c.io.map(|io| io.read)), cg_delta(|c| c.io.map(|io| io.write)))
    } else {
        (process_sum(prev, cur, |p| p.io_read_bytes), process_sum(prev, cur, |p| p.io_write_bytes))
    };
    let periods = cg_delta(|c| c.cpu.periods);
    let throttled_periods = cg_delta(|c| c.cpu.throttled_periods);
    let cpu_seconds_per_sec = cpu_ns.map(|ns| ns as f64 / 1e9 / secs);
    let cpu_quota_cores = cur_cg.and_then(|c| c.quota_cores);
    let write_limit = cur_cg.and_then(|c| c.write_bps_limit).map(|bps| bps as f64);
    let io_write_bytes_per_sec = io_write.map(|b| b as f64 / secs);
    WatchSample {
        target: cur.target.clone(),
        n_processes: cur.processes.len(),
        cpu_seconds_per_sec,
        cpu_quota_cores,
        periods,
        throttled_periods,
        throttled_ratio: match (throttled_periods, periods) {
            (Some(throttled), Some(periods)) if periods > 0 => Some(throttled as f64 / periods as f64),
            // A cgroup without a CPU limit is never throttled.
            (Some(_), Some(_)) if cpu_quota_cores.is_none() => Some(0.0),
            _ => None,
        },
        quota_used_ratio: match (cpu_seconds_per_sec, cpu_quota_cores) {
            (Some(used), Some(quota)) if quota > 0.0 => Some(used / quota),
            _ => None,
        },
        throttled_seconds: cg_delta(|c| c.cpu.throttled_ns).map(|ns| ns as f64 / 1e9),
        cpu_pressure_some_ratio: cg_delta(|c| c.cpu_pressure_some_us).map(|us| us as f64 / 1e6 / secs),
        io_read_bytes_per_sec: io_read.map(|b| b as f64 / secs),
        io_write_bytes_per_sec,
        io_write_limit_bytes_per_sec: write_limit,
        io_write_limit_used_ratio: match (io_write_bytes_per_sec, write_limit) {
            (Some(written), Some(limit)) if limit > 0.0 => Some(written / limit),
            // No write limit: none of it is used.
            (Some(_), None) if cur_cg.is_some() => Some(0.0),
            _ => None,
        },
        cgroup: cur.cgroup.as_ref().map(|(name, _)| name.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_that_grow_give_their_increase() {
        assert_eq!(counter_delta(10, 15), Some(5));
        assert_eq!(counter_delta(7, 7), Some(0));
    }

    #[test]
    fn a_32_bit_wrap_is_unwrapped() {
        assert_eq!(counter_delta(u32::MAX as u64 - 9, 5), Some(15));
    }

    #[test]
    fn a_reset_is_not_a_rate() {
        assert_eq!(counter_delta(5_000_000_000, 100), None);
        // Small counters that restart from zero look like a reset, not a wrap:
        // the unwrapped increase would be nearly 2^32.
        assert_eq!(counter_delta(1000, 10), None);
    }
}
