//! Root-only tests with real cgroup v1 limits, run when `PLATEAU_ROOT_TESTS=1`
//! (`.ci/run` sets it): a CPU quota must show up as throttling in `plateau sample
//! --watch`, and a blkio write limit must show up in the disk probe's MB/s.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{plateau_bin, root_tests_enabled, wait_with_timeout};

/// A cgroup v1 group created for one test; its processes are killed and the group
/// removed when dropped, also when the test fails.
struct TestCgroup {
    dir: PathBuf,
}

impl TestCgroup {
    fn create(controller: &str, name: &str) -> TestCgroup {
        let dir = Path::new("/sys/fs/cgroup").join(controller).join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap_or_else(|err| panic!("creating {}: {err}", dir.display()));
        TestCgroup { dir }
    }

    fn write(&self, file: &str, value: &str) {
        std::fs::write(self.dir.join(file), value).unwrap_or_else(|err| panic!("writing {value} to {file}: {err}"));
    }

    /// A shell command that moves itself into this group and then runs `command`.
    fn spawn(&self, command: &str) -> Child {
        Command::new("sh")
            .arg("-c")
            .arg(format!("echo $$ > {}/cgroup.procs && exec {command}", self.dir.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            let pids = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
            for pid in pids.lines().filter_map(|line| line.trim().parse::<i32>().ok()) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

#[test]
fn a_cpu_quota_shows_up_as_throttling() {
    if !root_tests_enabled() {
        eprintln!("skipped: set PLATEAU_ROOT_TESTS=1 (as root) to run");
        return;
    }
    let group = TestCgroup::create("cpu", "plateau-test-cpu");
    group.write("cpu.cfs_period_us", "100000");
    group.write("cpu.cfs_quota_us", "20000");
    // Bounded: the busy loop ends by itself after 20 s even if the test dies.
    let mut busy = group.spawn("timeout 20 sh -c 'while :; do :; done'");
    std::thread::sleep(Duration::from_millis(300));

    let output = Command::new(plateau_bin())
        .args(["sample", "--json", "--interval", "1s", "--duration", "4s", "--watch"])
        .arg(&group.dir)
        .output()
        .unwrap();
    let _ = busy.kill();
    let _ = busy.wait();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let samples: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(samples.len() >= 3, "{samples:?}");
    for sample in &samples {
        let watch = &sample["watch"];
        assert_eq!(watch["cpu_quota_cores"].as_f64(), Some(0.2), "{watch}");
        let throttled = watch["throttled_periods"].as_u64().expect("throttled_periods");
        assert!(throttled >= 5, "a busy loop at a 20 % quota must be throttled most periods: {watch}");
        assert!(watch["throttled_seconds"].as_f64().unwrap() > 0.1, "{watch}");
        let used = watch["cpu_seconds_per_sec"].as_f64().expect("cpu_seconds_per_sec");
        assert!((0.14..=0.26).contains(&used), "CPU use {used} is not the 0.2-core quota: {watch}");
    }
}

/// The whole-disk device number (`major:minor`) holding `path`.
fn block_device_of(path: &Path) -> String {
    let dev = std::fs::metadata(path).unwrap().dev();
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}"))
        .unwrap_or_else(|err| panic!("{} is not on a block device ({major}:{minor}): {err}", path.display()));
    // Throttling applies to whole disks; a partition's parent directory is its disk.
    let disk = if sys.join("partition").exists() { sys.parent().unwrap().to_path_buf() } else { sys };
    std::fs::read_to_string(disk.join("dev")).unwrap().trim().to_string()
}

#[test]
fn a_blkio_write_limit_shows_up_in_the_disk_probe() {
    if !root_tests_enabled() {
        eprintln!("skipped: set PLATEAU_ROOT_TESTS=1 (as root) to run");
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let device = block_device_of(dir.path());
    let group = TestCgroup::create("blkio", "plateau-test-blkio");
    group.write("blkio.throttle.write_bps_device", &format!("{device} 5000000"));

    let mut probe = group.spawn(&format!(
        "{} disk --json --path {} --size 20M --block 1M --fsync every --reads 100",
        plateau_bin(),
        dir.path().display()
    ));
    let status = wait_with_timeout(&mut probe, Duration::from_secs(60)).expect("disk probe did not finish in 60 s");
    let output = probe.wait_with_output().unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mb_per_sec = result["write_mb_per_sec"].as_f64().unwrap();
    assert!(
        (5.0 * 0.85..=5.0 * 1.15).contains(&mb_per_sec),
        "throttled to 5 MB/s, the probe measured {mb_per_sec} MB/s"
    );
}
