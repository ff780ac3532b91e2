//! Rate control against absolute deadlines: message k of a worker is due at
//! `epoch + k / rate`, so small delays never add up (oha's lesson), and the lateness of
//! each send — the publish delay — shows coordinated omission instead of hiding it, as
//! the OpenMessaging Benchmark reports it. A new target rate starts a new epoch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Below this, a message due in the future is sent now rather than slept for: a sleep
/// costs tens of microseconds, and the schedule absorbs the difference.
const SLEEP_THRESHOLD: Duration = Duration::from_micros(200);
/// The longest single sleep, so that stop requests and rate changes are seen quickly.
const MAX_SLEEP: Duration = Duration::from_millis(20);
/// Behind schedule, the clock is read for every this many messages: the ones between are
/// overdue anyway, and a producer at its limit spends a tenth of its time reading the
/// clock otherwise. Their times are late by a few microseconds at most.
const OVERDUE_READS_EVERY: u32 = 8;

/// The target rate of a run, shared by its workers and changeable while it runs.
#[derive(Debug, Default)]
pub struct SharedRate {
    rate: AtomicU64,
    generation: AtomicU64,
}

impl SharedRate {
    /// A target of `rate` messages per second over all workers.
    pub fn new(rate: u64) -> SharedRate {
        SharedRate { rate: AtomicU64::new(rate), generation: AtomicU64::new(0) }
    }

    /// Sets a new target; the workers start a new schedule from now.
    pub fn set(&self, rate: u64) {
        self.rate.store(rate, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current target.
    pub fn get(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }
}

/// One worker's schedule.
#[derive(Debug)]
pub struct Pacer {
    workers: u64,
    epoch: Instant,
    sent_in_epoch: u64,
    rate_per_worker: f64,
    generation: u64,
    /// The clock's last reading, and how many messages were given it since.
    last_now: Instant,
    unread: u32,
}

impl Pacer {
    /// A schedule for one of `workers` workers sharing `shared`.
    pub fn new(shared: &SharedRate, workers: usize) -> Pacer {
        let mut pacer = Pacer {
            workers: workers.max(1) as u64,
            epoch: Instant::now(),
            sent_in_epoch: 0,
            rate_per_worker: 0.0,
            generation: u64::MAX,
            last_now: Instant::now(),
            unread: OVERDUE_READS_EVERY,
        };
        pacer.rebase(shared);
        pacer
    }

    fn rebase(&mut self, shared: &SharedRate) {
        self.generation = shared.generation.load(Ordering::Acquire);
        self.rate_per_worker = shared.get() as f64 / self.workers as f64;
        self.epoch = Instant::now();
        self.sent_in_epoch = 0;
        self.unread = OVERDUE_READS_EVERY;
    }

    /// Waits until the next message is due and returns its due time and the time now;
    /// `None` once `stop` is set. A rate of 0 pauses the worker.
    pub fn next_due(&mut self, shared: &SharedRate, stop: &AtomicBool) -> Option<(Instant, Instant)> {
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            if shared.generation.load(Ordering::Acquire) != self.generation {
                self.rebase(shared);
            }
            if self.rate_per_worker <= 0.0 {
                std::thread::sleep(MAX_SLEEP);
                continue;
            }
            let due = self.epoch + Duration::from_secs_f64(self.sent_in_epoch as f64 / self.rate_per_worker);
            if due <= self.last_now && self.unread < OVERDUE_READS_EVERY {
                self.unread += 1;
                self.sent_in_epoch += 1;
                return Some((due, self.last_now));
            }
            let now = Instant::now();
            (self.last_now, self.unread) = (now, 0);
            if due > now + SLEEP_THRESHOLD {
                std::thread::sleep((due - now).min(MAX_SLEEP));
                continue;
            }
            self.sent_in_epoch += 1;
            return Some((due, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_rate_holds_without_drift() {
        let shared = SharedRate::new(2000);
        let stop = AtomicBool::new(false);
        let mut pacer = Pacer::new(&shared, 1);
        let start = Instant::now();
        for _ in 0..400 {
            pacer.next_due(&shared, &stop).unwrap();
        }
        // 400 messages at 2000/s take 0.2 s (the first is due at once).
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(195) && elapsed < Duration::from_millis(260), "{elapsed:?}");
    }

    #[test]
    fn a_new_rate_starts_a_new_schedule_and_stop_ends_it() {
        let shared = SharedRate::new(10);
        let stop = AtomicBool::new(false);
        let mut pacer = Pacer::new(&shared, 2);
        pacer.next_due(&shared, &stop).unwrap();
        shared.set(1_000_000);
        let start = Instant::now();
        for _ in 0..1000 {
            pacer.next_due(&shared, &stop).unwrap();
        }
        assert!(start.elapsed() < Duration::from_millis(100), "the old slow schedule still applied");
        stop.store(true, Ordering::Relaxed);
        assert!(pacer.next_due(&shared, &stop).is_none());
    }
}
