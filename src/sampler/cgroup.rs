//! Control groups, v1 and v2: where a workload's cgroup lives and what its CPU and
//! block-I/O accounting files say.
//!
//! Containers and Kubernetes pods hit their CPU limit as throttling, not as 100 % host
//! CPU, so this is how the sampler sees a CPU-bound container. Parsers take text; only
//! `CgroupDirs::read` touches files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use procfs::prelude::*;

/// Where each cgroup hierarchy is mounted, from /proc/mounts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupMounts {
    /// v1 hierarchies: the controllers bound to each and its mount point.
    pub v1: Vec<(Vec<String>, PathBuf)>,
    /// The v2 (unified) hierarchy, if mounted.
    pub v2: Option<PathBuf>,
}

impl CgroupMounts {
    /// Parses /proc/mounts text.
    pub fn parse(mounts_text: &str) -> CgroupMounts {
        let entries: Vec<procfs::MountEntry> = FromRead::from_read(mounts_text.as_bytes()).unwrap_or_default();
        let mut mounts = CgroupMounts::default();
        for entry in entries {
            match entry.fs_vfstype.as_str() {
                "cgroup2" => mounts.v2 = Some(PathBuf::from(entry.fs_file)),
                "cgroup" => {
                    let controllers = entry.fs_mntops.keys().filter(|opt| is_v1_controller(opt)).cloned().collect();
                    mounts.v1.push((controllers, PathBuf::from(entry.fs_file)));
                }
                _ => {}
            }
        }
        mounts
    }

    /// Reads the running system's mounts.
    pub fn read(proc_root: &Path) -> CgroupMounts {
        std::fs::read_to_string(proc_root.join("mounts")).map(|text| CgroupMounts::parse(&text)).unwrap_or_default()
    }

    fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(controllers, _)| controllers.iter().any(|c| c == controller))
            .map(|(_, path)| path.as_path())
    }

    /// The cgroup directories for a hierarchy-relative path (`/kubepods/pod1/...`).
    /// v1 controller directories are used where they exist (hybrid systems mount
    /// both, with the controllers on v1); otherwise the v2 directory.
    pub fn dirs_for_relative(&self, relative: &str) -> Option<CgroupDirs> {
        let relative = relative.trim_start_matches('/');
        let existing = |controller: &str| {
            let dir = self.v1_mount(controller)?.join(relative);
            dir.is_dir().then_some(dir)
        };
        let v1 = CgroupDirs {
            name: format!("/{relative}"),
            v2: false,
            cpu: existing("cpu"),
            cpuacct: existing("cpuacct"),
            blkio: existing("blkio"),
        };
        if v1.cpu.is_some() || v1.cpuacct.is_some() || v1.blkio.is_some() {
            return Some(v1);
        }
        let dir = self.v2.as_ref()?.join(relative);
        dir.is_dir().then(|| CgroupDirs::v2(format!("/{relative}"), dir))
    }

    /// The cgroup directories for a directory under one of the mounts
    /// (`/sys/fs/cgroup/cpu/mygroup`): its siblings in the other v1 controllers are found too.
    pub fn dirs_for_directory(&self, dir: &Path) -> Option<CgroupDirs> {
        if let Some(relative) = self.v2.as_ref().and_then(|v2| dir.strip_prefix(v2).ok()) {
            return Some(CgroupDirs::v2(format!("/{}", relative.display()), dir.to_path_buf()));
        }
        let relative = self.v1.iter().find_map(|(_, mount)| dir.strip_prefix(mount).ok())?;
        self.dirs_for_relative(&relative.to_string_lossy())
    }

    /// The cgroup directories of a process, from its /proc/PID/cgroup text.
    pub fn dirs_for_process(&self, proc_cgroup_text: &str) -> Option<CgroupDirs> {
        let groups = procfs::ProcessCGroups::from_read(proc_cgroup_text.as_bytes()).ok()?;
        let v1_path = |controller: &str| {
            groups.0.iter().find(|g| g.controllers.iter().any(|c| c == controller)).map(|g| g.pathname.clone())
        };
        // On v1 each controller has its own hierarchy, and a process may sit in a
        // different group in each (e.g. `cpu:/limited` but `cpuacct:/`).
        let v1_dir = |controller: &str| {
            let dir = self.v1_mount(controller)?.join(v1_path(controller)?.trim_start_matches('/'));
            dir.is_dir().then_some(dir)
        };
        if let Some(name) = v1_path("cpu").or_else(|| v1_path("cpuacct")).or_else(|| v1_path("blkio")) {
            return Some(CgroupDirs {
                name,
                v2: false,
                cpu: v1_dir("cpu"),
                cpuacct: v1_dir("cpuacct"),
                blkio: v1_dir("blkio"),
            });
        }
        let unified = groups.0.iter().find(|g| g.hierarchy == 0)?;
        let dir = self.v2.as_ref()?.join(unified.pathname.trim_start_matches('/'));
        Some(CgroupDirs::v2(unified.pathname.clone(), dir))
    }
}

fn is_v1_controller(option: &str) -> bool {
    matches!(
        option,
        "cpu"
            | "cpuacct"
            | "blkio"
            | "memory"
            | "cpuset"
            | "pids"
            | "devices"
            | "freezer"
            | "net_cls"
            | "net_prio"
            | "perf_event"
            | "hugetlb"
            | "rdma"
            | "misc"
    )
}

/// The directories that hold one cgroup's accounting files.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupDirs {
    /// The cgroup's path inside its hierarchy, for display.
    pub name: String,
    /// Whether these are v2 (unified) files.
    pub v2: bool,
    /// v1 `cpu` controller directory, or the v2 directory.
    pub cpu: Option<PathBuf>,
    /// v1 `cpuacct` directory, or the v2 directory.
    pub cpuacct: Option<PathBuf>,
    /// v1 `blkio` directory, or the v2 directory.
    pub blkio: Option<PathBuf>,
}

impl CgroupDirs {
    fn v2(name: String, dir: PathBuf) -> CgroupDirs {
        CgroupDirs { name, v2: true, cpu: Some(dir.clone()), cpuacct: Some(dir.clone()), blkio: Some(dir) }
    }

    /// Any directory of this cgroup, to list its member processes.
    pub fn any_dir(&self) -> Option<&Path> {
        self.cpu.as_deref().or(self.cpuacct.as_deref()).or(self.blkio.as_deref())
    }

    /// Reads the cgroup's counters; files that do not exist leave their fields empty.
    pub fn read(&self) -> CgroupCounters {
        let read =
            |dir: &Option<PathBuf>, file: &str| dir.as_ref().and_then(|d| std::fs::read_to_string(d.join(file)).ok());
        let mut counters = CgroupCounters::default();
        if let Some(text) = read(&self.cpu, "cpu.stat") {
            counters.cpu = parse_cpu_stat(&text);
        }
        if self.v2 {
            counters.quota_cores = read(&self.cpu, "cpu.max").and_then(|text| parse_cpu_max(&text));
            if let Some(text) = read(&self.blkio, "io.stat") {
                counters.io = Some(parse_io_stat(&text));
            }
            counters.write_bps_limit = read(&self.blkio, "io.max").and_then(|text| parse_io_max_wbps(&text));
            counters.cpu_pressure_some_us = read(&self.cpu, "cpu.pressure").and_then(|text| parse_some_total(&text));
        } else {
            if let (Some(quota), Some(period)) =
                (read(&self.cpu, "cpu.cfs_quota_us"), read(&self.cpu, "cpu.cfs_period_us"))
            {
                counters.quota_cores = parse_cfs_quota(&quota, &period);
            }
            counters.cpu.usage_ns = read(&self.cpuacct, "cpuacct.usage").and_then(|text| text.trim().parse().ok());
            let service_bytes = read(&self.blkio, "blkio.throttle.io_service_bytes_recursive")
                .or_else(|| read(&self.blkio, "blkio.throttle.io_service_bytes"));
            counters.io = service_bytes.map(|text| parse_blkio_service_bytes(&text));
            counters.write_bps_limit =
                read(&self.blkio, "blkio.throttle.write_bps_device").and_then(|text| parse_bps_device(&text));
        }
        counters
    }

    /// Process ids in the cgroup (cgroup.procs).
    pub fn pids(&self) -> Vec<i32> {
        self.any_dir()
            .and_then(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
            .map(|text| text.lines().filter_map(|line| line.trim().parse().ok()).collect())
            .unwrap_or_default()
    }
}

/// Cumulative CPU accounting of a cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuStat {
    /// CPU time used by the cgroup (v1 cpuacct.usage, v2 usage_usec).
    pub usage_ns: Option<u64>,
    /// CFS enforcement periods elapsed.
    pub periods: Option<u64>,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: Option<u64>,
    /// Total time throttled.
    pub throttled_ns: Option<u64>,
}

/// Cumulative block I/O bytes of a cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoBytes {
    /// Bytes read.
    pub read: u64,
    /// Bytes written.
    pub write: u64,
}

/// Everything read from one cgroup at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CgroupCounters {
    /// CPU accounting and throttling.
    pub cpu: CpuStat,
    /// The CPU limit in cores; `None` when unlimited.
    pub quota_cores: Option<f64>,
    /// Block I/O.
    pub io: Option<IoBytes>,
    /// The write bandwidth limit in bytes/s (the smallest over devices); `None` when
    /// unlimited.
    pub write_bps_limit: Option<u64>,
    /// Time some of the cgroup's tasks waited for a CPU, µs (v2 `cpu.pressure`'s `some`
    /// total; v1 has no per-cgroup pressure).
    pub cpu_pressure_some_us: Option<u64>,
}

fn key_values(text: &str) -> BTreeMap<&str, u64> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some((parts.next()?, parts.next()?.parse().ok()?))
        })
        .collect()
}

/// Parses `cpu.stat` of v1 (`throttled_time` in ns) or v2 (`usage_usec`, `throttled_usec`).
pub fn parse_cpu_stat(text: &str) -> CpuStat {
    let fields = key_values(text);
    let get = |key: &str| fields.get(key).copied();
    CpuStat {
        usage_ns: get("usage_usec").map(|us| us * 1000),
        periods: get("nr_periods"),
        throttled_periods: get("nr_throttled"),
        throttled_ns: get("throttled_time").or_else(|| get("throttled_usec").map(|us| us * 1000)),
    }
}

/// The `some` line's total (µs) of a v2 pressure file (`cpu.pressure`).
pub fn parse_some_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with("some "))?;
    procfs::parse_pressure_record(line).ok().map(|record| record.total)
}

/// Parses v2 `cpu.max` (`max 100000` or `20000 100000`) into cores.
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut parts = text.split_whitespace();
    let quota: f64 = parts.next()?.parse().ok()?;
    let period: f64 = parts.next().unwrap_or("100000").parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

/// Parses v1 `cpu.cfs_quota_us` (-1 when unlimited) and `cpu.cfs_period_us` into cores.
pub fn parse_cfs_quota(quota_text: &str, period_text: &str) -> Option<f64> {
    let quota: i64 = quota_text.trim().parse().ok()?;
    let period: i64 = period_text.trim().parse().ok()?;
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

/// Parses v1 `blkio.throttle.io_service_bytes` (`8:0 Read 4096` lines, then `Total N`).
pub fn parse_blkio_service_bytes(text: &str) -> IoBytes {
    let mut io = IoBytes::default();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [_device, op, value] = parts[..] {
            let value: u64 = value.parse().unwrap_or(0);
            match op {
                "Read" => io.read += value,
                "Write" => io.write += value,
                _ => {}
            }
        }
    }
    io
}

/// Parses v1 `blkio.throttle.write_bps_device` (`254:0 4194304` per device) into the
/// smallest limit.
pub fn parse_bps_device(text: &str) -> Option<u64> {
    text.lines().filter_map(|line| line.split_whitespace().nth(1)?.parse().ok()).filter(|&bps| bps > 0).min()
}

/// Parses v2 `io.max` (`254:0 rbps=max wbps=4194304 riops=max wiops=max` per device) into
/// the smallest write bandwidth limit.
pub fn parse_io_max_wbps(text: &str) -> Option<u64> {
    text.split_whitespace()
        .filter_map(|field| field.strip_prefix("wbps=")?.parse().ok())
        .filter(|&bps: &u64| bps > 0)
        .min()
}

/// Parses v2 `io.stat` (`8:0 rbytes=1 wbytes=2 rios=3 ...` per device).
pub fn parse_io_stat(text: &str) -> IoBytes {
    let mut io = IoBytes::default();
    for field in text.split_whitespace() {
        if let Some((key, value)) = field.split_once('=') {
            let value: u64 = value.parse().unwrap_or(0);
            match key {
                "rbytes" => io.read += value,
                "wbytes" => io.write += value,
                _ => {}
            }
        }
    }
    io
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_limits_parse_from_v1_and_v2() {
        assert_eq!(parse_bps_device("254:0 4194304\n8:0 1048576\n"), Some(1_048_576));
        assert_eq!(parse_bps_device(""), None);
        assert_eq!(parse_io_max_wbps("254:0 rbps=max wbps=2097152 riops=max wiops=max\n"), Some(2_097_152));
        assert_eq!(parse_io_max_wbps("254:0 rbps=1000 wbps=max riops=max wiops=max\n"), None);
    }

    #[test]
    fn hybrid_mounts_put_controllers_on_v1() {
        let mounts = CgroupMounts::parse(
            "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n\
             cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n\
             cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0\n\
             cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0\n\
             cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n",
        );
        assert_eq!(mounts.v1_mount("cpu"), Some(Path::new("/sys/fs/cgroup/cpu")));
        assert_eq!(mounts.v1_mount("cpuacct"), Some(Path::new("/sys/fs/cgroup/cpuacct")));
        assert_eq!(mounts.v1_mount("blkio"), None);
        assert_eq!(mounts.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn quotas_in_cores() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("20000 100000\n"), Some(0.2));
        assert_eq!(parse_cfs_quota("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs_quota("150000\n", "100000\n"), Some(1.5));
    }
}
