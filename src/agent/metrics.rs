//! The agent's `/metrics`: the sampler's counters and gauges in the OpenMetrics text
//! format, named by Prometheus conventions (`plateau_` prefix, base units, `_total`
//! counters) and close to node exporter's names so that dashboards translate easily.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::sampler::SamplerState;
use crate::sampler::raw::RawSnapshot;

/// Labels of one series, e.g. `[("device", "vda")]`.
type Labels = Vec<(&'static str, String)>;

/// The agent's produce run as metrics (the current or last run; counters restart with
/// each run, which `rate()` treats as a counter reset).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProduceMetrics {
    /// Whether a run is producing now.
    pub running: bool,
    /// Its target, msg/s.
    pub target_rate: f64,
    /// Records acknowledged.
    pub acked_records: f64,
    /// Records that failed.
    pub failed_records: f64,
    /// Bytes acknowledged.
    pub acked_bytes: f64,
    /// Delivery latency p99 over the last reporting interval, seconds.
    pub delivery_p99_seconds: Option<f64>,
}

/// Encodes the current sampler state (and the produce run, if any) as OpenMetrics text.
pub fn render(
    state: Arc<Mutex<SamplerState>>,
    start_time_secs: f64,
    produce: Option<ProduceMetrics>,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(HostCollector { state, start_time_secs }));
    if let Some(produce) = produce {
        registry.register_collector(Box::new(ProduceCollector(produce)));
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

#[derive(Debug)]
struct HostCollector {
    state: Arc<Mutex<SamplerState>>,
    start_time_secs: f64,
}

/// Writes one metric family with its series.
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    series: Vec<(Labels, f64)>,
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in series {
        let series_encoder = metric.encode_family(&labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(value).encode(series_encoder)?,
            _ => ConstGauge::new(value).encode(series_encoder)?,
        }
    }
    Ok(())
}

fn single(value: f64) -> Vec<(Labels, f64)> {
    vec![(Vec::new(), value)]
}

#[derive(Debug)]
struct ProduceCollector(ProduceMetrics);

impl Collector for ProduceCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter, Gauge};
        let p = &self.0;
        let enc = &mut encoder;
        let running = if p.running { 1.0 } else { 0.0 };
        family(enc, "plateau_produce_running", "Whether the agent's generator is producing.", Gauge, single(running))?;
        family(
            enc,
            "plateau_produce_target_rate",
            "The generator's target, records per second.",
            Gauge,
            single(p.target_rate),
        )?;
        family(
            enc,
            "plateau_produce_acked_records",
            "Records the broker acknowledged.",
            Counter,
            single(p.acked_records),
        )?;
        family(
            enc,
            "plateau_produce_failed_records",
            "Records that could not be delivered.",
            Counter,
            single(p.failed_records),
        )?;
        family(enc, "plateau_produce_acked_bytes", "Bytes the broker acknowledged.", Counter, single(p.acked_bytes))?;
        let p99 = p.delivery_p99_seconds.map(single).unwrap_or_default();
        family(enc, "plateau_produce_delivery_p99_seconds", "Delivery latency p99, last interval.", Gauge, p99)?;
        Ok(())
    }
}

impl Collector for HostCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let enc = &mut encoder;
        self.agent_families(enc, &state)?;
        let Some(raw) = &state.latest_raw else {
            return Ok(());
        };
        cpu_families(enc, raw, state.ticks_per_second.max(1) as f64)?;
        disk_and_network_families(enc, raw)?;
        memory_and_pressure_families(enc, raw)?;
        derived_families(enc, &state, raw)
    }
}

impl HostCollector {
    /// The agent's own: its version, start and the sampler's readings.
    fn agent_families(&self, enc: &mut DescriptorEncoder, state: &SamplerState) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter, Gauge};
        family(
            enc,
            "plateau_build_info",
            "plateau version.",
            Gauge,
            vec![(vec![("version", env!("CARGO_PKG_VERSION").to_string())], 1.0)],
        )?;
        family(
            enc,
            "plateau_agent_start_time_seconds",
            "Unix time the agent started.",
            Gauge,
            single(self.start_time_secs),
        )?;
        family(
            enc,
            "plateau_sampler_readings",
            "Readings the sampler took.",
            Counter,
            single(state.readings_total as f64),
        )?;
        family(
            enc,
            "plateau_sampler_problem_readings",
            "Readings in which some source could not be read.",
            Counter,
            single(state.readings_with_problems_total as f64),
        )?;

        Ok(())
    }
}

/// CPU time per CPU and mode, runnable and blocked tasks, load averages.
fn cpu_families(enc: &mut DescriptorEncoder, raw: &RawSnapshot, ticks: f64) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    if let Some(stat) = &raw.stat {
        let mut cpu_series = Vec::new();
        for (index, cpu) in stat.cpu_time.iter().enumerate() {
            let modes = [
                ("user", Some(cpu.user)),
                ("nice", Some(cpu.nice)),
                ("system", Some(cpu.system)),
                ("idle", Some(cpu.idle)),
                ("iowait", cpu.iowait),
                ("irq", cpu.irq),
                ("softirq", cpu.softirq),
                ("steal", cpu.steal),
            ];
            for (mode, value) in modes {
                if let Some(value) = value {
                    cpu_series
                        .push((vec![("cpu", index.to_string()), ("mode", mode.to_string())], value as f64 / ticks));
                }
            }
        }
        family(enc, "plateau_cpu_seconds", "Seconds each CPU spent in each mode.", Counter, cpu_series)?;
        if let Some(running) = stat.procs_running {
            family(enc, "plateau_procs_running", "Runnable tasks.", Gauge, single(running as f64))?;
        }
        if let Some(blocked) = stat.procs_blocked {
            family(enc, "plateau_procs_blocked", "Tasks blocked on I/O.", Gauge, single(blocked as f64))?;
        }
    }
    if let Some(load) = &raw.loadavg {
        family(enc, "plateau_load1", "1-minute load average.", Gauge, single(load.one as f64))?;
        family(enc, "plateau_load5", "5-minute load average.", Gauge, single(load.five as f64))?;
        family(enc, "plateau_load15", "15-minute load average.", Gauge, single(load.fifteen as f64))?;
    }

    Ok(())
}

/// Per-disk and per-NIC counters, link speeds and TCP segments.
fn disk_and_network_families(enc: &mut DescriptorEncoder, raw: &RawSnapshot) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    let per_disk = |value: fn(&procfs::DiskStat) -> f64| -> Vec<(Labels, f64)> {
        raw.disks.iter().map(|(name, disk)| (vec![("device", name.clone())], value(disk))).collect()
    };
    family(enc, "plateau_disk_reads_completed", "Reads completed.", Counter, per_disk(|d| d.reads as f64))?;
    family(enc, "plateau_disk_writes_completed", "Writes completed.", Counter, per_disk(|d| d.writes as f64))?;
    family(enc, "plateau_disk_read_bytes", "Bytes read.", Counter, per_disk(|d| d.sectors_read as f64 * 512.0))?;
    family(
        enc,
        "plateau_disk_written_bytes",
        "Bytes written.",
        Counter,
        per_disk(|d| d.sectors_written as f64 * 512.0),
    )?;
    family(
        enc,
        "plateau_disk_read_time_seconds",
        "Time spent reading.",
        Counter,
        per_disk(|d| d.time_reading as f64 / 1e3),
    )?;
    family(
        enc,
        "plateau_disk_write_time_seconds",
        "Time spent writing.",
        Counter,
        per_disk(|d| d.time_writing as f64 / 1e3),
    )?;
    family(
        enc,
        "plateau_disk_io_time_seconds",
        "Time with I/O in flight.",
        Counter,
        per_disk(|d| d.time_in_progress as f64 / 1e3),
    )?;
    family(
        enc,
        "plateau_disk_io_time_weighted_seconds",
        "I/O time weighted by requests in flight.",
        Counter,
        per_disk(|d| d.weighted_time_in_progress as f64 / 1e3),
    )?;

    let per_nic = |value: fn(&procfs::net::DeviceStatus) -> u64| -> Vec<(Labels, f64)> {
        raw.nics.iter().map(|(name, nic)| (vec![("device", name.clone())], value(&nic.status) as f64)).collect()
    };
    family(enc, "plateau_network_receive_bytes", "Bytes received.", Counter, per_nic(|n| n.recv_bytes))?;
    family(enc, "plateau_network_transmit_bytes", "Bytes transmitted.", Counter, per_nic(|n| n.sent_bytes))?;
    family(enc, "plateau_network_receive_packets", "Packets received.", Counter, per_nic(|n| n.recv_packets))?;
    family(enc, "plateau_network_transmit_packets", "Packets transmitted.", Counter, per_nic(|n| n.sent_packets))?;
    family(enc, "plateau_network_receive_drop", "Received packets dropped.", Counter, per_nic(|n| n.recv_drop))?;
    family(enc, "plateau_network_transmit_drop", "Transmit packets dropped.", Counter, per_nic(|n| n.sent_drop))?;
    family(enc, "plateau_network_receive_errs", "Receive errors.", Counter, per_nic(|n| n.recv_errs))?;
    family(enc, "plateau_network_transmit_errs", "Transmit errors.", Counter, per_nic(|n| n.sent_errs))?;
    let speeds = raw
        .nics
        .iter()
        .filter_map(|(name, nic)| Some((vec![("device", name.clone())], nic.speed_bits_per_sec? as f64 / 8.0)))
        .collect();
    family(enc, "plateau_network_speed_bytes", "Link speed in bytes per second.", Gauge, speeds)?;

    if let Some(tcp) = raw.tcp {
        family(enc, "plateau_tcp_out_segments", "TCP segments sent.", Counter, single(tcp.out_segs as f64))?;
        family(enc, "plateau_tcp_in_segments", "TCP segments received.", Counter, single(tcp.in_segs as f64))?;
        family(
            enc,
            "plateau_tcp_retransmitted_segments",
            "TCP segments retransmitted.",
            Counter,
            single(tcp.retrans_segs as f64),
        )?;
    }

    Ok(())
}

/// Memory, paging and pressure stall information.
fn memory_and_pressure_families(enc: &mut DescriptorEncoder, raw: &RawSnapshot) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    if let Some(mem) = &raw.meminfo {
        let available = mem.mem_available.unwrap_or(mem.mem_free + mem.cached);
        family(enc, "plateau_memory_total_bytes", "Usable memory.", Gauge, single(mem.mem_total as f64))?;
        family(
            enc,
            "plateau_memory_available_bytes",
            "Memory available without swapping.",
            Gauge,
            single(available as f64),
        )?;
        family(enc, "plateau_memory_cached_bytes", "Page cache.", Gauge, single(mem.cached as f64))?;
        family(
            enc,
            "plateau_memory_swap_used_bytes",
            "Swap in use.",
            Gauge,
            single(mem.swap_total.saturating_sub(mem.swap_free) as f64),
        )?;
    }
    if let Some(vmstat) = &raw.vmstat {
        let counter = |key: &str, scale: f64| vmstat.0.get(key).map(|v| single(*v as f64 * scale)).unwrap_or_default();
        family(enc, "plateau_memory_page_in_bytes", "Bytes paged in from disk.", Counter, counter("pgpgin", 1024.0))?;
        family(enc, "plateau_memory_page_out_bytes", "Bytes paged out to disk.", Counter, counter("pgpgout", 1024.0))?;
        family(enc, "plateau_memory_swap_in_pages", "Pages swapped in.", Counter, counter("pswpin", 1.0))?;
        family(enc, "plateau_memory_swap_out_pages", "Pages swapped out.", Counter, counter("pswpout", 1.0))?;
        family(enc, "plateau_memory_major_faults", "Major page faults.", Counter, counter("pgmajfault", 1.0))?;
    }

    let mut pressure = Vec::new();
    for (resource, counters) in [("cpu", &raw.psi_cpu), ("io", &raw.psi_io), ("memory", &raw.psi_memory)] {
        let Some(counters) = counters else { continue };
        let labels = |kind: &str| vec![("resource", resource.to_string()), ("kind", kind.to_string())];
        pressure.push((labels("some"), counters.some.total as f64 / 1e6));
        if let Some(full) = &counters.full {
            pressure.push((labels("full"), full.total as f64 / 1e6));
        }
    }
    family(enc, "plateau_pressure_stalled_seconds", "Time tasks stalled on a resource (PSI).", Counter, pressure)?;

    Ok(())
}

/// What the sampler derived over the last interval, and the watched workload's counters.
fn derived_families(
    enc: &mut DescriptorEncoder,
    state: &SamplerState,
    raw: &RawSnapshot,
) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    if let Some(sample) = state.ring.latest() {
        family(
            enc,
            "plateau_cpu_busy_ratio",
            "Share of CPU time busy in the last interval.",
            Gauge,
            single(sample.cpu.total.busy),
        )?;
        let disk_util = sample.disks.iter().map(|d| (vec![("device", d.name.clone())], d.util_ratio)).collect();
        family(
            enc,
            "plateau_disk_utilization_ratio",
            "Share of the last interval with I/O in flight.",
            Gauge,
            disk_util,
        )?;
    }
    if let Some(watch) = raw.watch.as_ref() {
        let target = state.watch.clone().unwrap_or_default();
        let labels = || vec![("target", target.clone())];
        let cpu_ns: u64 = watch.processes.values().map(|p| p.cpu_ns).sum();
        family(
            enc,
            "plateau_watch_processes",
            "Processes of the watched workload.",
            Gauge,
            vec![(labels(), watch.processes.len() as f64)],
        )?;
        family(
            enc,
            "plateau_watch_process_cpu_seconds",
            "CPU time of the watched processes now running.",
            Gauge,
            vec![(labels(), cpu_ns as f64 / 1e9)],
        )?;
        if let Some((_, cgroup)) = &watch.cgroup {
            let counter = |value: Option<f64>| value.map(|v| vec![(labels(), v)]).unwrap_or_default();
            family(
                enc,
                "plateau_watch_cgroup_cpu_seconds",
                "CPU time of the watched cgroup.",
                Counter,
                counter(cgroup.cpu.usage_ns.map(|ns| ns as f64 / 1e9)),
            )?;
            family(
                enc,
                "plateau_watch_cgroup_periods",
                "CFS periods of the watched cgroup.",
                Counter,
                counter(cgroup.cpu.periods.map(|n| n as f64)),
            )?;
            family(
                enc,
                "plateau_watch_cgroup_throttled_periods",
                "CFS periods in which the watched cgroup was throttled.",
                Counter,
                counter(cgroup.cpu.throttled_periods.map(|n| n as f64)),
            )?;
            family(
                enc,
                "plateau_watch_cgroup_throttled_seconds",
                "Time the watched cgroup was throttled.",
                Counter,
                counter(cgroup.cpu.throttled_ns.map(|ns| ns as f64 / 1e9)),
            )?;
            family(
                enc,
                "plateau_watch_cgroup_cpu_quota_cores",
                "CPU limit of the watched cgroup in cores.",
                Gauge,
                counter(cgroup.quota_cores),
            )?;
            family(
                enc,
                "plateau_watch_cgroup_io_read_bytes",
                "Bytes the watched cgroup read from block devices.",
                Counter,
                counter(cgroup.io.map(|io| io.read as f64)),
            )?;
            family(
                enc,
                "plateau_watch_cgroup_io_written_bytes",
                "Bytes the watched cgroup wrote to block devices.",
                Counter,
                counter(cgroup.io.map(|io| io.write as f64)),
            )?;
            family(
                enc,
                "plateau_watch_cgroup_io_write_limit_bytes_per_second",
                "Write bandwidth limit of the watched cgroup (smallest over devices).",
                Gauge,
                counter(cgroup.write_bps_limit.map(|bps| bps as f64)),
            )?;
        }
    }
    Ok(())
}
