//! The sampler's parsers and derivations on fixture text from `tests/data/`: two
//! readings of a made-up host one second apart, with a counter that wraps, a disk whose
//! counters reset, a disk that appears mid-run, a malformed line, an old kernel's PSI
//! file, and cgroup v1 and v2 accounting files.

use std::path::PathBuf;
use std::time::Duration;

use plateau::sampler::cgroup::{self, CgroupDirs, CgroupMounts};
use plateau::sampler::derive::derive;
use plateau::sampler::raw::{HostPaths, RawSnapshot, system_info};

fn data(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(path)
}

fn text(path: &str) -> String {
    std::fs::read_to_string(data(path)).unwrap()
}

fn reading(at: &str) -> RawSnapshot {
    let paths = HostPaths { proc_root: data(&format!("host/{at}/proc")), sys_root: data("host/sys") };
    RawSnapshot::read(&paths, &system_info())
}

/// The two fixture readings, the second exactly one second after the first.
fn two_readings() -> (RawSnapshot, RawSnapshot) {
    let t0 = reading("t0");
    let mut t1 = reading("t1");
    t1.taken_at = t0.taken_at + Duration::from_secs(1);
    t1.ts_ms = t0.ts_ms + 1000;
    (t0, t1)
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-9
}

#[test]
fn cpu_shares_come_from_tick_deltas() {
    let (t0, t1) = two_readings();
    let sample = derive(&t0, &t1);
    let total = sample.cpu.total;
    assert!(close(total.user, 0.35), "{total:?}");
    assert!(close(total.system, 0.15), "{total:?}");
    assert!(close(total.idle, 0.45), "{total:?}");
    assert!(close(total.iowait, 0.05), "{total:?}");
    assert!(close(total.busy, 0.50), "{total:?}");
    assert_eq!(sample.cpu.cores.len(), 2);
    assert!(close(sample.cpu.cores[0].user, 0.6));
    assert!(close(sample.cpu.cores[1].idle, 0.8));
    assert_eq!(sample.cpu.procs_running, Some(3));
    assert_eq!(sample.cpu.load1.map(|l| (l * 100.0).round()), Some(160.0));
    assert_eq!(sample.interval_ms, 1000);
}

#[test]
fn disks_are_derived_as_iostat_does() {
    let (t0, t1) = two_readings();
    let sample = derive(&t0, &t1);
    let vda = sample.disks.iter().find(|d| d.name == "vda").expect("vda reported");
    assert!(close(vda.reads_per_sec, 100.0));
    assert!(close(vda.read_bytes_per_sec, 800.0 * 512.0));
    assert!(close(vda.writes_per_sec, 50.0));
    assert!(close(vda.write_bytes_per_sec, 102_400.0 * 512.0));
    assert_eq!(vda.read_await_ms, Some(2.0));
    assert_eq!(vda.write_await_ms, Some(10.0));
    assert!(close(vda.util_ratio, 0.6));
    assert!(close(vda.queue_depth, 1.5));
}

#[test]
fn a_wrapped_32_bit_counter_is_unwrapped() {
    let (t0, t1) = two_readings();
    let sample = derive(&t0, &t1);
    let vdb = sample.disks.iter().find(|d| d.name == "vdb").expect("vdb reported");
    assert!(close(vdb.reads_per_sec, 11.0), "{vdb:?}");
}

#[test]
fn reset_new_pseudo_and_partition_devices_are_left_out() {
    let (t0, t1) = two_readings();
    let sample = derive(&t0, &t1);
    let names: Vec<&str> = sample.disks.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["vda", "vdb"], "sdb reset, nvme0n1 is new, loop0 is a pseudo-device, vda1 a partition");
    // The new device is remembered, so the next interval reports it.
    assert!(t1.disks.contains_key("nvme0n1"));
}

#[test]
fn a_malformed_line_is_a_problem_not_a_failure() {
    let t1 = reading("t1");
    assert!(t1.problems.iter().any(|p| p.contains("this is not a diskstats line")), "{:?}", t1.problems);
    assert_eq!(t1.disks.len(), 4, "vda, vdb, sdb and nvme0n1: whole disks only");
}

#[test]
fn nics_tcp_memory_and_psi() {
    let (t0, t1) = two_readings();
    let sample = derive(&t0, &t1);
    let eth0 = sample.nics.iter().find(|n| n.name == "eth0").unwrap();
    assert!(close(eth0.rx_bytes_per_sec, 12_500_000.0));
    assert!(close(eth0.tx_bytes_per_sec, 500_000.0));
    assert!(close(eth0.rx_drops_per_sec, 3.0));
    assert!(close(eth0.rx_errors_per_sec, 1.0));
    assert_eq!(eth0.speed_bits_per_sec, Some(1_000_000_000));
    let lo = sample.nics.iter().find(|n| n.name == "lo").unwrap();
    assert_eq!(lo.speed_bits_per_sec, None, "-1 means unknown");

    let tcp = sample.tcp.unwrap();
    assert!(close(tcp.out_segs_per_sec, 1000.0));
    assert!(close(tcp.retrans_segs_per_sec, 50.0));
    assert!(close(tcp.retrans_ratio, 0.05));

    let udp = sample.udp.unwrap();
    assert!(close(udp.in_datagrams_per_sec, 2000.0));
    assert!(close(udp.rcvbuf_errors_per_sec, 500.0), "{udp:?}");

    let memory = sample.memory.unwrap();
    assert!(memory.total_bytes > memory.available_bytes);
    assert!(close(memory.page_in_bytes_per_sec, 100.0 * 1024.0));
    assert!(close(memory.page_out_bytes_per_sec, 400.0 * 1024.0));
    assert!(close(memory.swap_out_pages_per_sec, 7.0));

    let psi = sample.psi.unwrap();
    let cpu = psi.cpu.unwrap();
    assert!(close(cpu.some_ratio, 0.25), "{cpu:?}");
    assert!(close(cpu.some_avg10_ratio, 0.225));
    assert_eq!(cpu.full_ratio, 0.0, "an old kernel has no full line for CPU");
    let io = psi.io.unwrap();
    assert!(close(io.some_ratio, 0.1));
    assert!(close(io.full_ratio, 0.05));
    assert!(psi.memory.is_none(), "no memory pressure file");
}

#[test]
fn cgroup_v1_files() {
    let dir = data("cgroup/v1");
    let dirs = CgroupDirs {
        name: "/test".into(),
        v2: false,
        cpu: Some(dir.clone()),
        cpuacct: Some(dir.clone()),
        blkio: Some(dir),
    };
    let counters = dirs.read();
    assert_eq!(counters.cpu.periods, Some(120));
    assert_eq!(counters.cpu.throttled_periods, Some(95));
    assert_eq!(counters.cpu.throttled_ns, Some(7_600_000_000));
    assert_eq!(counters.cpu.usage_ns, Some(2_400_000_000));
    assert_eq!(counters.quota_cores, Some(0.2));
    let io = counters.io.unwrap();
    assert_eq!((io.read, io.write), (4096 + 8192, 52_428_800), "Sync/Async/Total lines are not added again");
    assert_eq!(cgroup::parse_blkio_service_bytes(&text("cgroup/v1/blkio.throttle.io_service_bytes.empty")).read, 0);
}

#[test]
fn cgroup_v2_files() {
    let dir = data("cgroup/v2");
    let dirs = CgroupDirs {
        name: "/test".into(),
        v2: true,
        cpu: Some(dir.clone()),
        cpuacct: Some(dir.clone()),
        blkio: Some(dir),
    };
    let counters = dirs.read();
    assert_eq!(counters.cpu.usage_ns, Some(2_400_000_000));
    assert_eq!(counters.cpu.throttled_periods, Some(95));
    assert_eq!(counters.cpu.throttled_ns, Some(7_600_000_000));
    assert_eq!(counters.quota_cores, Some(0.2));
    assert_eq!(cgroup::parse_cpu_max(&text("cgroup/v2/cpu.max.unlimited")), None);
    let io = counters.io.unwrap();
    assert_eq!((io.read, io.write), (4096 + 8192, 52_428_800));
}

#[test]
fn a_missing_cgroup_file_leaves_its_field_empty() {
    let empty = tempfile::tempdir().unwrap();
    let dirs = CgroupDirs {
        name: "/gone".into(),
        v2: false,
        cpu: Some(empty.path().to_path_buf()),
        cpuacct: None,
        blkio: None,
    };
    let counters = dirs.read();
    assert_eq!(counters.cpu.periods, None);
    assert_eq!(counters.quota_cores, None);
    assert!(counters.io.is_none());
}

#[test]
fn a_process_cgroup_resolves_on_v2() {
    let root = tempfile::tempdir().unwrap();
    let unified = root.path().join("unified");
    std::fs::create_dir_all(unified.join("kubepods/pod1/ctr")).unwrap();
    let mounts = CgroupMounts::parse(&format!("cgroup2 {} cgroup2 rw 0 0\n", unified.display()));
    let dirs = mounts.dirs_for_process(&text("cgroup/proc-pid-cgroup.v2")).unwrap();
    assert!(dirs.v2);
    assert_eq!(dirs.cpu.unwrap(), unified.join("kubepods/pod1/ctr"));
}

#[test]
fn a_process_cgroup_resolves_on_hybrid_v1() {
    let root = tempfile::tempdir().unwrap();
    for controller in ["cpu", "cpuacct", "blkio"] {
        std::fs::create_dir_all(root.path().join(controller).join("plateau-test")).unwrap();
    }
    let mounts_text: String = ["cpu", "cpuacct", "blkio"]
        .iter()
        .map(|c| format!("cgroup {} cgroup rw,relatime,{c} 0 0\n", root.path().join(c).display()))
        .collect();
    let mounts = CgroupMounts::parse(&mounts_text);
    let dirs = mounts.dirs_for_process(&text("cgroup/proc-pid-cgroup.hybrid")).unwrap();
    assert!(!dirs.v2);
    assert_eq!(dirs.cpu.unwrap(), root.path().join("cpu/plateau-test"));
    assert_eq!(dirs.blkio.unwrap(), root.path().join("blkio/plateau-test"));
    assert_eq!(dirs.cpuacct.unwrap(), root.path().join("cpuacct"), "cpuacct:/ is the root group");
}

/// Copies `tests/data/<from>` into `to`, recursively.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn an_agent_on_a_cgroup_v2_host_reads_the_brokers_unit_not_its_own() {
    use plateau::sampler::watch::{WatchTarget, Watcher};
    let root = tempfile::tempdir().unwrap();
    copy_tree(&data("host-v2"), root.path());
    let unified = root.path().join("sys/fs/cgroup");
    std::fs::write(
        root.path().join("proc/mounts"),
        format!("cgroup2 {} cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n", unified.display()),
    )
    .unwrap();

    let mut watcher = Watcher::new(WatchTarget::Broker, &root.path().join("proc"), 100);
    let (target, why) = watcher.watching();
    assert_eq!(target.as_deref(), Some("cgroup:/system.slice/kafka.service"), "{why}");
    assert!(why.contains("kafka.Kafka") && why.contains("pid 4242"), "{why}");

    // Two readings one second apart: the broker's unit at 1.9 of its 2 cores, throttled in
    // 8 of 10 periods, 40 % of the second waiting for a CPU, writing 3 MiB/s of its 4.
    let mut read_at = |at: &str| {
        let mut raw = reading(at);
        raw.watch = watcher.read();
        raw
    };
    let t0 = read_at("t0");
    let unit = unified.join("system.slice/kafka.service");
    for file in ["cpu.stat", "cpu.pressure", "io.stat"] {
        std::fs::copy(root.path().join("t1").join(file), unit.join(file)).unwrap();
    }
    let mut t1 = read_at("t1");
    t1.taken_at = t0.taken_at + Duration::from_secs(1);
    let watch = derive(&t0, &t1).watch.expect("the broker's unit was read twice");
    assert_eq!(watch.target, "cgroup:/system.slice/kafka.service");
    assert_eq!(watch.n_processes, 1);
    assert!(close(watch.cpu_seconds_per_sec.unwrap(), 1.9), "{watch:?}");
    assert_eq!(watch.cpu_quota_cores, Some(2.0));
    assert!(close(watch.throttled_ratio.unwrap(), 0.8), "{watch:?}");
    assert!(close(watch.cpu_pressure_some_ratio.unwrap(), 0.4), "{watch:?}");
    assert!(close(watch.io_write_bytes_per_sec.unwrap(), 3.0 * 1_048_576.0), "{watch:?}");
    assert_eq!(watch.io_write_limit_bytes_per_sec, Some(4_194_304.0));

    // Without the broker the agent reads the host alone, and says why.
    std::fs::remove_dir_all(root.path().join("proc/4242")).unwrap();
    let mut watcher = Watcher::new(WatchTarget::Broker, &root.path().join("proc"), 100);
    assert!(watcher.read().is_none());
    let (target, why) = watcher.watching();
    assert_eq!(target, None);
    assert!(why.contains("no Kafka broker on this host") && why.contains("the host alone"), "{why}");
}
