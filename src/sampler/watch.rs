//! The watched workload (`--watch`): a process, every process of a name, a cgroup, the
//! host's Kafka broker wherever it runs (an agent's default), or nothing but the host.
//!
//! Each snapshot records per-process CPU and I/O counters (so a process that exits
//! between two snapshots does not look like a counter reset) and, where the workload
//! has a cgroup, the cgroup's own accounting and throttling.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use procfs::prelude::*;

use super::cgroup::{CgroupCounters, CgroupDirs, CgroupMounts};

/// What `--watch` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchTarget {
    /// One process (`pid:1234` or `1234`).
    Pid(i32),
    /// Every process whose command name matches (`name:tansu` or `tansu`).
    Name(String),
    /// A cgroup: a directory under a cgroup mount, or a path inside the hierarchy
    /// (`/sys/fs/cgroup/cpu/kafka` or `/kubepods/pod1`).
    Cgroup(String),
    /// The Kafka broker on this host, found anew when it restarts (`broker`): its cgroup
    /// (a systemd unit, a container, a pod) or, in the root cgroup, its process.
    Broker,
    /// Nothing but the host itself (`host`).
    Host,
}

impl FromStr for WatchTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty --watch target; give a pid, a process name or a cgroup path".into());
        }
        if let Some(pid) = text.strip_prefix("pid:") {
            return pid.parse().map(WatchTarget::Pid).map_err(|_| format!("invalid pid in --watch '{text}'"));
        }
        if let Some(name) = text.strip_prefix("name:") {
            return Ok(WatchTarget::Name(name.to_string()));
        }
        match text {
            "broker" => return Ok(WatchTarget::Broker),
            "host" => return Ok(WatchTarget::Host),
            _ => {}
        }
        if let Some(path) = text.strip_prefix("cgroup:") {
            return Ok(WatchTarget::Cgroup(path.to_string()));
        }
        if let Ok(pid) = text.parse() {
            return Ok(WatchTarget::Pid(pid));
        }
        if text.starts_with('/') {
            return Ok(WatchTarget::Cgroup(text.to_string()));
        }
        Ok(WatchTarget::Name(text.to_string()))
    }
}

impl fmt::Display for WatchTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchTarget::Pid(pid) => write!(f, "pid:{pid}"),
            WatchTarget::Name(name) => write!(f, "name:{name}"),
            WatchTarget::Cgroup(path) => write!(f, "cgroup:{path}"),
            WatchTarget::Broker => write!(f, "broker"),
            WatchTarget::Host => write!(f, "host"),
        }
    }
}

/// Cumulative counters of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessCounters {
    /// utime + stime.
    pub cpu_ns: u64,
    /// Bytes this process caused to be read from storage (/proc/PID/io read_bytes).
    pub io_read_bytes: Option<u64>,
    /// Bytes written to storage on its behalf.
    pub io_write_bytes: Option<u64>,
}

/// The watched workload at one instant.
#[derive(Debug, Clone, Default)]
pub struct WatchRaw {
    /// What was read (`pid:123`, `cgroup:/system.slice/kafka.service`): two readings of
    /// different targets (a broker that moved) make no interval.
    pub target: String,
    /// Per-process counters by pid.
    pub processes: BTreeMap<i32, ProcessCounters>,
    /// The workload's cgroup and its counters, when it has one.
    pub cgroup: Option<(String, CgroupCounters)>,
    /// Whether the target is a cgroup (its own accounting then wins over the process sums).
    pub is_cgroup_target: bool,
    /// Why the target could not be read, if it could not.
    pub problem: Option<String>,
}

/// Reads the watched workload; keeps the cgroup mounts it discovered at start.
#[derive(Debug, Clone)]
pub struct Watcher {
    target: WatchTarget,
    proc_root: PathBuf,
    mounts: CgroupMounts,
    ticks_per_second: u64,
    /// What is read, and why: the target itself, or what `broker` found.
    resolved: Resolved,
    /// When `broker` last looked, so that a host without one is not searched every second.
    searched_at: Option<Instant>,
}

#[derive(Debug, Clone, Default)]
struct Resolved {
    /// `None`: the host alone.
    target: Option<WatchTarget>,
    reason: String,
    /// The broker's pid, while it runs.
    broker: Option<i32>,
}

/// How often a host without a broker is searched again.
const SEARCH_AGAIN: Duration = Duration::from_secs(10);

impl Watcher {
    /// Prepares to watch `target` on the system whose /proc is at `proc_root`.
    pub fn new(target: WatchTarget, proc_root: &Path, ticks_per_second: u64) -> Watcher {
        let resolved = match &target {
            WatchTarget::Host => Resolved { reason: "the host, as --watch says".into(), ..Resolved::default() },
            WatchTarget::Broker => Resolved::default(),
            given => Resolved { target: Some(given.clone()), reason: "as --watch says".into(), broker: None },
        };
        let mut watcher = Watcher {
            target,
            mounts: CgroupMounts::read(proc_root),
            proc_root: proc_root.to_path_buf(),
            ticks_per_second,
            resolved,
            searched_at: None,
        };
        watcher.resolve();
        watcher
    }

    /// The target as given.
    pub fn target(&self) -> &WatchTarget {
        &self.target
    }

    /// What is read now (`None`: the host alone), and why.
    pub fn watching(&self) -> (Option<String>, &str) {
        (self.resolved.target.as_ref().map(ToString::to_string), &self.resolved.reason)
    }

    /// For `broker`: finds it again when it is gone or was never found (at most every
    /// [`SEARCH_AGAIN`] then).
    fn resolve(&mut self) {
        if self.target != WatchTarget::Broker {
            return;
        }
        match self.resolved.broker {
            Some(pid) if self.proc_root.join(pid.to_string()).is_dir() => return,
            None if self.searched_at.is_some_and(|at| at.elapsed() < SEARCH_AGAIN) => return,
            _ => {}
        }
        self.searched_at = Some(Instant::now());
        self.resolved = match super::broker::find(&self.proc_root) {
            Ok(found) => {
                let pid = found.pid;
                match self.process_cgroup(pid).map(|dirs| dirs.name).filter(|name| name != "/") {
                    Some(name) => Resolved {
                        reason: format!("{} (pid {pid}{}) runs in cgroup {name}", found.how, found.among),
                        target: Some(WatchTarget::Cgroup(name)),
                        broker: Some(pid),
                    },
                    None => Resolved {
                        reason: format!("{} (pid {pid}{}), in the host's root cgroup", found.how, found.among),
                        target: Some(WatchTarget::Pid(pid)),
                        broker: Some(pid),
                    },
                }
            }
            Err(why) => Resolved { reason: format!("{why}: the host alone"), ..Resolved::default() },
        };
    }

    /// Finds the target's processes and cgroup now and reads their counters; `None` when
    /// only the host is watched.
    pub fn read(&mut self) -> Option<WatchRaw> {
        self.resolve();
        let target = self.resolved.target.clone()?;
        let mut raw = WatchRaw {
            target: target.to_string(),
            is_cgroup_target: matches!(target, WatchTarget::Cgroup(_)),
            ..WatchRaw::default()
        };
        let (pids, dirs) = match &target {
            WatchTarget::Pid(pid) => {
                let dirs = self.process_cgroup(*pid);
                (vec![*pid], dirs)
            }
            WatchTarget::Name(name) => {
                let pids = self.pids_named(name);
                let dirs = pids.first().and_then(|pid| self.process_cgroup(*pid));
                (pids, dirs)
            }
            WatchTarget::Cgroup(path) => {
                let dirs = self.cgroup_dirs(path);
                let pids = dirs.as_ref().map(CgroupDirs::pids).unwrap_or_default();
                if dirs.is_none() {
                    raw.problem = Some(format!("cgroup '{path}' not found under any cgroup mount"));
                }
                (pids, dirs)
            }
            WatchTarget::Broker | WatchTarget::Host => unreachable!("resolved to what is read"),
        };
        for pid in pids {
            if let Some(counters) = self.process_counters(pid) {
                raw.processes.insert(pid, counters);
            }
        }
        if raw.processes.is_empty() && raw.problem.is_none() && !raw.is_cgroup_target {
            raw.problem = Some(format!("no process found for --watch {target}"));
        }
        raw.cgroup = dirs.map(|dirs| (dirs.name.clone(), dirs.read()));
        Some(raw)
    }

    fn cgroup_dirs(&self, path: &str) -> Option<CgroupDirs> {
        let as_dir = Path::new(path);
        as_dir
            .is_dir()
            .then(|| self.mounts.dirs_for_directory(as_dir))
            .flatten()
            .or_else(|| self.mounts.dirs_for_relative(path))
    }

    fn process_cgroup(&self, pid: i32) -> Option<CgroupDirs> {
        let text = std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("cgroup")).ok()?;
        self.mounts.dirs_for_process(&text)
    }

    fn process_counters(&self, pid: i32) -> Option<ProcessCounters> {
        let dir = self.proc_root.join(pid.to_string());
        let stat_text = std::fs::read_to_string(dir.join("stat")).ok()?;
        let stat = procfs::process::Stat::from_read(stat_text.as_bytes()).ok()?;
        let ticks = stat.utime + stat.stime;
        let cpu_ns = ticks.saturating_mul(1_000_000_000) / self.ticks_per_second.max(1);
        // /proc/PID/io is readable only by the owner or root; CPU alone still helps.
        let io = std::fs::read_to_string(dir.join("io"))
            .ok()
            .and_then(|text| procfs::process::Io::from_read(text.as_bytes()).ok());
        Some(ProcessCounters {
            cpu_ns,
            io_read_bytes: io.as_ref().map(|io| io.read_bytes),
            io_write_bytes: io.as_ref().map(|io| io.write_bytes),
        })
    }

    fn pids_named(&self, name: &str) -> Vec<i32> {
        // The kernel keeps only the first 15 bytes of a command name.
        let wanted: String = name.chars().take(15).collect();
        let Ok(entries) = std::fs::read_dir(&self.proc_root) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("comm"))
                    .is_ok_and(|comm| comm.trim_end() == wanted)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_from_their_forms() {
        assert_eq!("1234".parse::<WatchTarget>().unwrap(), WatchTarget::Pid(1234));
        assert_eq!("pid:7".parse::<WatchTarget>().unwrap(), WatchTarget::Pid(7));
        assert_eq!("tansu".parse::<WatchTarget>().unwrap(), WatchTarget::Name("tansu".into()));
        assert_eq!("name:42".parse::<WatchTarget>().unwrap(), WatchTarget::Name("42".into()));
        assert_eq!(
            "/sys/fs/cgroup/cpu/kafka".parse::<WatchTarget>().unwrap(),
            WatchTarget::Cgroup("/sys/fs/cgroup/cpu/kafka".into())
        );
        assert_eq!("broker".parse::<WatchTarget>().unwrap(), WatchTarget::Broker);
        assert_eq!("host".parse::<WatchTarget>().unwrap(), WatchTarget::Host);
        assert_eq!("name:broker".parse::<WatchTarget>().unwrap(), WatchTarget::Name("broker".into()));
        assert!("pid:abc".parse::<WatchTarget>().unwrap_err().contains("invalid pid"));
        assert!("".parse::<WatchTarget>().is_err());
    }

    #[test]
    fn watching_this_process_sees_its_cpu() {
        let mut watcher = Watcher::new(WatchTarget::Pid(std::process::id() as i32), Path::new("/proc"), 100);
        let raw = watcher.read().unwrap();
        assert!(raw.problem.is_none(), "{:?}", raw.problem);
        assert_eq!(raw.processes.len(), 1);
    }

    #[test]
    fn a_missing_process_is_a_problem_not_a_panic() {
        let mut watcher = Watcher::new(WatchTarget::Name("no-such-proc-xyz".into()), Path::new("/proc"), 100);
        let raw = watcher.read().unwrap();
        assert!(raw.processes.is_empty());
        assert!(raw.problem.unwrap().contains("no process found"));
    }
}
