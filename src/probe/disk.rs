//! The disk probe: a sequential append like a Kafka log segment (with fsync as asked),
//! then random 4 KiB reads of what was written.
//!
//! The probe file is unlinked as soon as it is created, so it disappears when the probe
//! ends however it ends (an error, Ctrl-C, even SIGKILL): the kernel frees the space
//! when the last descriptor closes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::{Probe, ProbeError, ProbeOutput};
use crate::cancel::Cancel;
use crate::latency::{LatencyMs, latency_histogram};
use crate::units::{ByteSize, mb_per_sec};

/// Size of one random read, as a Kafka consumer fetching from a cold segment would see.
const READ_BYTES: usize = 4096;
/// O_DIRECT needs buffers and offsets aligned to the logical block size; 4 KiB covers
/// every common device.
const DIRECT_ALIGN: usize = 4096;
/// Free space left untouched beyond the probe file, so the probe never fills a disk.
const FREE_SPACE_MARGIN_BYTES: u64 = 64 << 20;
/// The largest block a single write may use.
const MAX_BLOCK_BYTES: u64 = 64 << 20;
/// The random-read phase stops after this long even if reads remain.
const MAX_READ_PHASE: Duration = Duration::from_secs(10);
/// The append phase stops after this long even if bytes remain: a tiny block with a
/// flush after each one on a slow disk would otherwise run for hours.
pub const MAX_WRITE_PHASE: Duration = Duration::from_secs(300);
/// The smallest block a write may use (a page).
const MIN_BLOCK_BYTES: u64 = 4096;

/// When the append phase flushes to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// After every block (a broker with `flush.messages=1`).
    #[default]
    Every,
    /// Once, after the last block (a segment roll).
    End,
    /// Never: measures the page cache, not the disk.
    Never,
}

impl std::fmt::Display for FsyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FsyncMode::Every => "every",
            FsyncMode::End => "end",
            FsyncMode::Never => "never",
        })
    }
}

/// What to run, as `plateau disk`'s flags and the agent's `POST /disk` body give it.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskConfig {
    /// Directory to write the probe file in.
    pub path: PathBuf,
    /// Total bytes to append.
    pub size: ByteSize,
    /// Bytes per write.
    pub block: ByteSize,
    /// When to flush.
    pub fsync: FsyncMode,
    /// Bypass the page cache (O_DIRECT).
    pub direct: bool,
    /// Random 4 KiB reads to do after the append (capped by a 10 s phase limit).
    pub reads: u64,
}

impl DiskConfig {
    /// A configuration with the defaults (`--size 256M --block 1M --fsync every
    /// --reads 10000`) for `path`.
    pub fn for_path(path: impl Into<PathBuf>) -> DiskConfig {
        DiskConfig {
            path: path.into(),
            size: ByteSize(256 << 20),
            block: ByteSize(1 << 20),
            fsync: FsyncMode::default(),
            direct: false,
            reads: 10_000,
        }
    }

    /// Checks the numbers that do not depend on the file system.
    pub fn validate(&self, max_size: ByteSize) -> Result<(), ProbeError> {
        let invalid = |msg: String| Err(ProbeError::InvalidInput(msg));
        let (size, block) = (self.size.bytes(), self.block.bytes());
        if !(MIN_BLOCK_BYTES..=MAX_BLOCK_BYTES).contains(&block) {
            return invalid(format!("block {} is out of range; use 4K to 64M", self.block));
        }
        if size < block {
            return invalid(format!("size {} is smaller than one block ({})", self.size, self.block));
        }
        if size > max_size.bytes() {
            return invalid(format!("size {} is over the limit of {}; use a smaller --size", self.size, max_size));
        }
        if self.direct && !block.is_multiple_of(DIRECT_ALIGN as u64) {
            return invalid(format!("--direct needs a block that is a multiple of 4K, not {}", self.block));
        }
        if self.reads > 1_000_000 {
            return invalid(format!("{} reads is too many; use at most 1000000", self.reads));
        }
        Ok(())
    }
}

/// What the disk probe measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct DiskResult {
    /// Directory the probe wrote in.
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// Bytes appended.
    pub size_bytes: u64,
    /// Bytes per write.
    pub block_bytes: u64,
    /// Flush mode used.
    pub fsync: FsyncMode,
    /// Whether O_DIRECT was used.
    pub direct: bool,
    /// Append throughput in MB/s (10^6 bytes), up to and including the last flush.
    pub write_mb_per_sec: f64,
    /// Time the append phase took.
    pub write_seconds: f64,
    /// Latency of each write call.
    pub write_ms: LatencyMs,
    /// Latency of each flush (one per block with `every`, one with `end`, none with `never`).
    pub fsync_ms: LatencyMs,
    /// Random 4 KiB reads per second.
    pub read_iops: f64,
    /// Random-read throughput in MB/s.
    pub read_mb_per_sec: f64,
    /// Latency of each random read.
    pub read_ms: LatencyMs,
    /// Whether the reads went to the device: true with O_DIRECT or when the kernel
    /// accepted dropping the file from the page cache; false means they may be cache hits.
    pub reads_uncached: bool,
    /// Whether the append phase reached its time limit before `size` (then
    /// `size_bytes` is what was written).
    #[serde(default)]
    pub stopped_at_time_limit: bool,
    /// The file system the probe wrote on (`ext4`, `xfs`, `nfs`, ...).
    #[serde(default)]
    pub filesystem: String,
    /// Whether that file system is across the network: then the result is a server's
    /// and a link's, not a local disk's.
    #[serde(default)]
    pub network_filesystem: bool,
}

/// The disk probe, ready to run.
#[derive(Debug, Clone)]
pub struct DiskProbe {
    config: DiskConfig,
}

impl DiskProbe {
    /// The largest size accepted from the command line; the agent applies its own cap.
    pub const MAX_SIZE: ByteSize = ByteSize(1 << 40);

    /// Validates `config` against `max_size` and the directory it names.
    pub fn new(config: DiskConfig, max_size: ByteSize) -> Result<DiskProbe, ProbeError> {
        config.validate(max_size)?;
        check_directory(&config.path, config.size.bytes())?;
        Ok(DiskProbe { config })
    }

    /// Runs the probe and returns its result.
    pub fn measure(&self, cancel: &Cancel) -> Result<DiskResult, ProbeError> {
        run_disk_probe(&self.config, cancel)
    }
}

impl Probe for DiskProbe {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn run(&self, cancel: &Cancel) -> Result<ProbeOutput, ProbeError> {
        self.measure(cancel).map(|result| ProbeOutput::Disk(Box::new(result)))
    }
}

/// What kind of file system a directory is on, from statfs's magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// Kept in memory (tmpfs, ramfs): appends measure RAM, not a disk.
    Memory(&'static str),
    /// Across the network (NFS, SMB, Ceph, FUSE): appends measure a server and a link.
    Network(&'static str),
    /// A local disk file system (or one this table does not name).
    Local(&'static str),
}

impl FsKind {
    /// Classifies statfs's `f_type`.
    pub fn from_magic(magic: i64) -> FsKind {
        match magic as u32 {
            0x0102_1994 => FsKind::Memory("tmpfs"),
            0x8584_58f6 => FsKind::Memory("ramfs"),
            0x0000_6969 => FsKind::Network("nfs"),
            0xff53_4d42 => FsKind::Network("cifs"),
            0xfe53_4d42 => FsKind::Network("smb2"),
            0x00c3_6400 => FsKind::Network("ceph"),
            0x6573_5546 => FsKind::Network("fuse"),
            0x0000_ef53 => FsKind::Local("ext4"),
            0x5846_5342 => FsKind::Local("xfs"),
            0x9123_683e => FsKind::Local("btrfs"),
            0x2fc1_2fc1 => FsKind::Local("zfs"),
            0x794c_7630 => FsKind::Local("overlay"),
            _ => FsKind::Local("other"),
        }
    }

    /// The file system's name.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Memory(name) | FsKind::Network(name) | FsKind::Local(name) => name,
        }
    }
}

fn check_directory(path: &Path, size: u64) -> Result<(), ProbeError> {
    let metadata = std::fs::metadata(path)
        .map_err(|err| ProbeError::InvalidInput(format!("cannot use --path {}: {err}", path.display())))?;
    if !metadata.is_dir() {
        return Err(ProbeError::InvalidInput(format!("--path {} is not a directory", path.display())));
    }
    if let FsKind::Memory(name) = filesystem(path) {
        return Err(ProbeError::InvalidInput(format!(
            "{} is on {name}, which is memory: the probe would measure RAM, not a disk; point --path at the broker's log directory (or another directory on its disk)",
            path.display()
        )));
    }
    let stats = rustix::fs::statvfs(path).map_err(|err| ProbeError::Io {
        context: format!("checking free space on {}", path.display()),
        source: err.into(),
    })?;
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    if free < size.saturating_add(FREE_SPACE_MARGIN_BYTES) {
        return Err(ProbeError::InvalidInput(format!(
            "{} has {} free; the probe needs {} plus a 64M margin: use a smaller --size",
            path.display(),
            ByteSize(free),
            ByteSize(size)
        )));
    }
    Ok(())
}

/// A buffer whose usable part starts on a `DIRECT_ALIGN` boundary, as O_DIRECT requires.
struct AlignedBuffer {
    storage: Vec<u8>,
    offset: usize,
    len: usize,
}

impl AlignedBuffer {
    fn new(len: usize) -> AlignedBuffer {
        let storage = vec![0u8; len + DIRECT_ALIGN];
        let offset = storage.as_ptr().align_offset(DIRECT_ALIGN);
        AlignedBuffer { storage, offset, len }
    }

    fn as_slice(&self) -> &[u8] {
        &self.storage[self.offset..self.offset + self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.offset..self.offset + self.len]
    }
}

/// Creates the probe file and unlinks it at once (see the module comment).
fn create_probe_file(config: &DiskConfig) -> Result<File, ProbeError> {
    let name = format!(".plateau-disk-probe-{}-{:08x}", std::process::id(), rand::rng().random::<u32>());
    let file_path = config.path.join(name);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    if config.direct {
        options.custom_flags(libc::O_DIRECT);
    }
    let file = options.open(&file_path).map_err(|err| match err.raw_os_error() {
        Some(libc::EINVAL) if config.direct => ProbeError::InvalidInput(format!(
            "the file system at {} does not support O_DIRECT (tmpfs does not); drop --direct or use another --path",
            config.path.display()
        )),
        _ => ProbeError::Io { context: format!("creating {}", file_path.display()), source: err },
    })?;
    std::fs::remove_file(&file_path).map_err(ProbeError::io(format!("unlinking {}", file_path.display())))?;
    Ok(file)
}

/// The kind of file system `path` is on (`Local("other")` when statfs fails).
pub fn filesystem(path: &Path) -> FsKind {
    // f_type is an i64 on x86_64 and narrower on other targets.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs(path).map(|stats| FsKind::from_magic(stats.f_type as i64)).unwrap_or(FsKind::Local("other"))
}

fn run_disk_probe(config: &DiskConfig, cancel: &Cancel) -> Result<DiskResult, ProbeError> {
    let mut file = create_probe_file(config)?;
    let block_len = config.block.bytes() as usize;
    let n_blocks = config.size.bytes() / config.block.bytes();

    let mut buffer = AlignedBuffer::new(block_len);
    // Random bytes, so that compressing or deduplicating storage cannot shortcut the writes.
    rand::rng().fill(buffer.as_mut_slice());

    let mut write_hist = latency_histogram();
    let mut fsync_hist = latency_histogram();
    let write_start = Instant::now();
    let mut blocks_written = 0;
    let mut stopped_at_time_limit = false;
    for _ in 0..n_blocks {
        cancel.check()?;
        if write_start.elapsed() >= MAX_WRITE_PHASE {
            stopped_at_time_limit = true;
            break;
        }
        let started = Instant::now();
        file.write_all(buffer.as_slice()).map_err(ProbeError::io("appending to the probe file"))?;
        record(&mut write_hist, started.elapsed());
        if config.fsync == FsyncMode::Every {
            let started = Instant::now();
            file.sync_data().map_err(ProbeError::io("fsync of the probe file"))?;
            record(&mut fsync_hist, started.elapsed());
        }
        blocks_written += 1;
    }
    let written_bytes = blocks_written * config.block.bytes();
    if config.fsync == FsyncMode::End {
        let started = Instant::now();
        file.sync_data().map_err(ProbeError::io("fsync of the probe file"))?;
        record(&mut fsync_hist, started.elapsed());
    }
    let write_elapsed = write_start.elapsed();

    // Dirty pages cannot be dropped from the cache; flush them (untimed) first.
    if config.fsync == FsyncMode::Never {
        file.sync_data().map_err(ProbeError::io("flushing the probe file before the read phase"))?;
    }
    let reads_uncached = config.direct || drop_from_page_cache(&file);
    let (read_hist, read_elapsed) = random_reads(&file, config, written_bytes, cancel)?;

    let n_reads = read_hist.len();
    let read_secs = read_elapsed.as_secs_f64();
    Ok(DiskResult {
        path: config.path.clone(),
        size_bytes: written_bytes,
        block_bytes: config.block.bytes(),
        fsync: config.fsync,
        direct: config.direct,
        write_mb_per_sec: mb_per_sec(written_bytes, write_elapsed),
        write_seconds: write_elapsed.as_secs_f64(),
        write_ms: LatencyMs::from_micros(&write_hist),
        fsync_ms: LatencyMs::from_micros(&fsync_hist),
        read_iops: if read_secs > 0.0 { n_reads as f64 / read_secs } else { 0.0 },
        read_mb_per_sec: mb_per_sec(n_reads * READ_BYTES as u64, read_elapsed),
        read_ms: LatencyMs::from_micros(&read_hist),
        reads_uncached,
        stopped_at_time_limit,
        filesystem: filesystem(&config.path).name().to_string(),
        network_filesystem: matches!(filesystem(&config.path), FsKind::Network(_)),
    })
}

/// Asks the kernel to drop the file's pages and not to read ahead, so that the
/// random reads measure the device. Returns whether the kernel accepted.
fn drop_from_page_cache(file: &File) -> bool {
    use rustix::fs::{Advice, fadvise};
    fadvise(file, 0, None, Advice::DontNeed).is_ok() && fadvise(file, 0, None, Advice::Random).is_ok()
}

fn random_reads(
    file: &File,
    config: &DiskConfig,
    written_bytes: u64,
    cancel: &Cancel,
) -> Result<(hdrhistogram::Histogram<u64>, Duration), ProbeError> {
    let mut histogram = latency_histogram();
    let n_slots = written_bytes / READ_BYTES as u64;
    let mut buffer = AlignedBuffer::new(READ_BYTES);
    let mut rng = rand::rng();
    let start = Instant::now();
    for _ in 0..config.reads {
        if n_slots == 0 || start.elapsed() >= MAX_READ_PHASE {
            break;
        }
        cancel.check()?;
        let offset = rng.random_range(0..n_slots) * READ_BYTES as u64;
        let started = Instant::now();
        file.read_exact_at(buffer.as_mut_slice(), offset).map_err(ProbeError::io("reading the probe file"))?;
        record(&mut histogram, started.elapsed());
    }
    Ok((histogram, start.elapsed()))
}

fn record(histogram: &mut hdrhistogram::Histogram<u64>, elapsed: Duration) {
    // Values beyond the histogram's range are clamped, never dropped.
    histogram.saturating_record((elapsed.as_micros() as u64).max(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_config(dir: &Path) -> DiskConfig {
        DiskConfig { size: ByteSize(4 << 20), block: ByteSize(256 << 10), reads: 200, ..DiskConfig::for_path(dir) }
    }

    #[test]
    fn probe_measures_and_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let probe = DiskProbe::new(small_config(dir.path()), DiskProbe::MAX_SIZE).unwrap();
        let result = probe.measure(&Cancel::new()).unwrap();
        assert_eq!(result.size_bytes, 4 << 20);
        assert_eq!(result.fsync_ms.count, 16, "one fsync per block");
        assert_eq!(result.write_ms.count, 16);
        assert!(result.write_mb_per_sec > 0.0);
        assert_eq!(result.read_ms.count, 200);
        assert!(result.read_iops > 0.0);
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "probe file left behind");
    }

    #[test]
    fn fsync_end_flushes_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = DiskConfig { fsync: FsyncMode::End, ..small_config(dir.path()) };
        let result = DiskProbe::new(config, DiskProbe::MAX_SIZE).unwrap().measure(&Cancel::new()).unwrap();
        assert_eq!(result.fsync_ms.count, 1);
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let err = DiskProbe::new(DiskConfig::for_path(&file), DiskProbe::MAX_SIZE).unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
    }

    #[test]
    fn memory_file_systems_are_refused_and_kinds_are_named() {
        assert_eq!(FsKind::from_magic(0x0102_1994), FsKind::Memory("tmpfs"));
        assert_eq!(FsKind::from_magic(0x6969), FsKind::Network("nfs"));
        assert_eq!(FsKind::from_magic(0xef53), FsKind::Local("ext4"));
        if filesystem(Path::new("/dev/shm")) == FsKind::Memory("tmpfs") {
            let err = DiskProbe::new(DiskConfig::for_path("/dev/shm"), DiskProbe::MAX_SIZE).unwrap_err();
            assert!(err.to_string().contains("on tmpfs, which is memory"), "{err}");
        }
    }

    #[test]
    fn more_than_the_free_space_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = DiskConfig { size: ByteSize(1 << 50), ..DiskConfig::for_path(dir.path()) };
        let err = DiskProbe::new(config, ByteSize(u64::MAX)).unwrap_err();
        assert!(err.to_string().contains("free"), "{err}");
    }

    #[test]
    fn absurd_numbers_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let too_big = DiskConfig { size: ByteSize(2 << 30), ..DiskConfig::for_path(dir.path()) };
        let err = DiskProbe::new(too_big, ByteSize(1 << 30)).unwrap_err();
        assert!(err.to_string().contains("use a smaller --size"), "{err}");
        let zero_block = DiskConfig { block: ByteSize(0), ..DiskConfig::for_path(dir.path()) };
        assert!(DiskProbe::new(zero_block, DiskProbe::MAX_SIZE).is_err());
    }

    #[test]
    fn a_cancelled_probe_stops_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = Cancel::new();
        cancel.cancel();
        let probe = DiskProbe::new(small_config(dir.path()), DiskProbe::MAX_SIZE).unwrap();
        assert!(matches!(probe.run(&cancel), Err(ProbeError::Cancelled)));
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }
}
