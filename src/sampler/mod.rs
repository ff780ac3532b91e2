//! The host sampler: CPU, disks, NICs, TCP, memory, PSI and a watched workload, read
//! at a fixed interval and turned into [`Sample`]s.
//!
//! `raw` reads the kernel's counters, `derive` turns two readings into rates, `cgroup`
//! and `watch` follow a workload, and this module paces the readings against absolute
//! deadlines and keeps the recent ones in a ring buffer.

pub mod broker;
pub mod cgroup;
pub mod derive;
pub mod raw;
pub mod sample;
pub mod watch;

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use procfs::ExplicitSystemInfo;

pub use raw::{HostPaths, RawSnapshot};
pub use sample::Sample;
pub use watch::WatchTarget;

/// How the sampler is set up.
#[derive(Debug, Clone)]
pub struct SamplerConfig {
    /// Time between readings.
    pub interval: Duration,
    /// The workload to follow, if any.
    pub watch: Option<WatchTarget>,
    /// Where /proc and /sys are.
    pub paths: HostPaths,
    /// How much history the ring buffer keeps.
    pub retention: Duration,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            interval: Duration::from_secs(1),
            watch: None,
            paths: HostPaths::default(),
            retention: Duration::from_secs(15 * 60),
        }
    }
}

/// Reads snapshots and derives a sample from each consecutive pair.
#[derive(Debug)]
pub struct Sampler {
    paths: HostPaths,
    info: ExplicitSystemInfo,
    watcher: Option<watch::Watcher>,
    previous: Option<RawSnapshot>,
}

impl Sampler {
    /// A sampler for `config`; the first call to [`Sampler::step`] only takes a baseline.
    pub fn new(config: &SamplerConfig) -> Sampler {
        let info = raw::system_info();
        let watcher = config
            .watch
            .clone()
            .map(|target| watch::Watcher::new(target, &config.paths.proc_root, info.ticks_per_second));
        Sampler { paths: config.paths.clone(), info, watcher, previous: None }
    }

    /// Takes one reading; returns the sample for the interval since the previous one
    /// (none on the first call) and the problems met while reading.
    pub fn step(&mut self) -> (Option<Sample>, Vec<String>) {
        let mut snapshot = RawSnapshot::read(&self.paths, &self.info);
        if let Some(watch) = self.watcher.as_mut().and_then(watch::Watcher::read) {
            snapshot.problems.extend(watch.problem.clone());
            snapshot.watch = Some(watch);
        }
        let sample = self.previous.as_ref().map(|prev| derive::derive(prev, &snapshot));
        let problems = std::mem::take(&mut snapshot.problems);
        self.previous = Some(snapshot);
        (sample, problems)
    }

    /// What the workload reading follows now (`None`: the host alone) and why; `None`
    /// altogether when nothing was asked to be watched.
    pub fn watching(&self) -> Option<(Option<String>, String)> {
        self.watcher.as_ref().map(|w| {
            let (target, reason) = w.watching();
            (target, reason.to_string())
        })
    }

    /// The most recent raw reading (cumulative counters), for /metrics.
    pub fn latest_raw(&self) -> Option<&RawSnapshot> {
        self.previous.as_ref()
    }

    /// Clock ticks per second of this system.
    pub fn ticks_per_second(&self) -> u64 {
        self.info.ticks_per_second
    }
}

/// Calls `on_tick` every `interval`, scheduled against absolute deadlines
/// (`start + k * interval`) so that slow ticks do not make the schedule drift.
/// Returns when `on_tick` breaks or `stop` receives a message or is dropped.
/// Returns the number of deadlines that were missed entirely.
pub fn run_paced(interval: Duration, stop: &mpsc::Receiver<()>, mut on_tick: impl FnMut() -> ControlFlow<()>) -> u64 {
    let start = Instant::now();
    let mut missed = 0;
    let mut tick: u32 = 0;
    loop {
        if on_tick().is_break() {
            return missed;
        }
        tick += 1;
        let mut deadline = start + interval * tick;
        let now = Instant::now();
        if now > deadline {
            // Fell behind by more than an interval: skip to the next deadline ahead
            // instead of firing a burst of late ticks.
            let behind = (now - deadline).as_nanos() / interval.as_nanos().max(1);
            missed += behind as u64 + 1;
            tick += behind as u32 + 1;
            deadline = start + interval * tick;
        }
        match stop.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return missed,
        }
    }
}

/// The last samples, oldest first, kept for a fixed span of time.
#[derive(Debug, Clone, Default)]
pub struct SampleRing {
    samples: VecDeque<Sample>,
    retention_ms: u64,
}

impl SampleRing {
    /// An empty ring keeping `retention` of history.
    pub fn new(retention: Duration) -> SampleRing {
        SampleRing { samples: VecDeque::new(), retention_ms: retention.as_millis() as u64 }
    }

    /// Adds a sample and drops those older than the retention.
    pub fn push(&mut self, sample: Sample) {
        let horizon = sample.ts_ms.saturating_sub(self.retention_ms);
        self.samples.push_back(sample);
        while self.samples.front().is_some_and(|s| s.ts_ms < horizon) {
            self.samples.pop_front();
        }
    }

    /// Samples stamped strictly after `since_ms`, oldest first.
    pub fn since(&self, since_ms: u64) -> Vec<Sample> {
        let first = self.samples.partition_point(|s| s.ts_ms <= since_ms);
        self.samples.range(first..).cloned().collect()
    }

    /// The newest sample.
    pub fn latest(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the ring holds no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// What the background sampler shares with its readers.
#[derive(Debug)]
pub struct SamplerState {
    /// Recent samples.
    pub ring: SampleRing,
    /// The newest raw reading, for cumulative counters.
    pub latest_raw: Option<RawSnapshot>,
    /// Readings taken.
    pub readings_total: u64,
    /// Readings that met at least one problem.
    pub readings_with_problems_total: u64,
    /// The most recent problems.
    pub last_problems: Vec<String>,
    /// Deadlines missed because a reading took longer than the interval.
    pub missed_deadlines_total: u64,
    /// The configured interval.
    pub interval: Duration,
    /// What is watched, if anything (`cgroup:/system.slice/kafka.service`).
    pub watch: Option<String>,
    /// Why: `as --watch says`, or what the search for the host's broker found.
    pub watch_reason: Option<String>,
    /// Clock ticks per second, to turn /proc/stat ticks into seconds.
    pub ticks_per_second: u64,
}

/// A sampler running on its own thread until stopped or dropped.
pub struct BackgroundSampler {
    state: Arc<Mutex<SamplerState>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundSampler {
    /// Starts sampling on a new thread.
    pub fn start(config: SamplerConfig) -> BackgroundSampler {
        let mut sampler = Sampler::new(&config);
        let state = Arc::new(Mutex::new(SamplerState {
            ring: SampleRing::new(config.retention),
            latest_raw: None,
            readings_total: 0,
            readings_with_problems_total: 0,
            last_problems: Vec::new(),
            missed_deadlines_total: 0,
            interval: config.interval,
            watch: None,
            watch_reason: None,
            ticks_per_second: sampler.ticks_per_second(),
        }));
        let (stop_tx, stop_rx) = mpsc::channel();
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || {
                let missed = run_paced(config.interval, &stop_rx, || {
                    let (sample, problems) = sampler.step();
                    let mut state = shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    state.readings_total += 1;
                    if !problems.is_empty() {
                        state.readings_with_problems_total += 1;
                        state.last_problems = problems;
                    }
                    state.latest_raw = sampler.latest_raw().cloned();
                    (state.watch, state.watch_reason) = match sampler.watching() {
                        Some((target, reason)) => (target, Some(reason)),
                        None => (None, None),
                    };
                    if let Some(sample) = sample {
                        state.ring.push(sample);
                    }
                    ControlFlow::Continue(())
                });
                shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).missed_deadlines_total += missed;
            })
            .expect("spawning the sampler thread");
        BackgroundSampler { state, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// The shared state, for readers.
    pub fn state(&self) -> Arc<Mutex<SamplerState>> {
        Arc::clone(&self.state)
    }

    /// Stops the thread and waits for it (at most one reading's time).
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BackgroundSampler {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_at(ts_ms: u64) -> Sample {
        Sample {
            ts_ms,
            interval_ms: 1000,
            cpu: Default::default(),
            disks: vec![],
            nics: vec![],
            tcp: None,
            udp: None,
            memory: None,
            psi: None,
            watch: None,
        }
    }

    #[test]
    fn ring_drops_samples_older_than_retention() {
        let mut ring = SampleRing::new(Duration::from_secs(10));
        for ts in (0..=30_000).step_by(1000) {
            ring.push(sample_at(ts));
        }
        assert_eq!(ring.len(), 11);
        assert_eq!(ring.since(0).first().unwrap().ts_ms, 20_000);
        assert_eq!(ring.since(25_000).len(), 5);
        assert!(ring.since(30_000).is_empty());
    }

    #[test]
    fn paced_ticks_do_not_drift() {
        let (_tx, rx) = mpsc::channel();
        let start = Instant::now();
        let mut ticks = 0;
        run_paced(Duration::from_millis(20), &rx, || {
            ticks += 1;
            // Each tick does some work; deadlines absorb it rather than adding it up.
            std::thread::sleep(Duration::from_millis(5));
            if ticks == 10 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        });
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_millis(20 * 9 + 5 + 40), "{elapsed:?}");
        assert!(elapsed >= Duration::from_millis(20 * 9), "{elapsed:?}");
    }

    #[test]
    fn sampler_on_this_host_produces_a_sample() {
        let mut sampler = Sampler::new(&SamplerConfig::default());
        assert!(sampler.step().0.is_none());
        std::thread::sleep(Duration::from_millis(50));
        let (sample, problems) = sampler.step();
        let sample = sample.expect("second step yields a sample");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(sample.cpu.total.idle + sample.cpu.total.busy + sample.cpu.total.iowait > 0.99);
        assert!(sample.memory.unwrap().total_bytes > 0);
        assert!(sample.nics.iter().any(|nic| nic.name == "lo"));
    }
}
